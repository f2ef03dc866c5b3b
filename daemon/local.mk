# daemon: cairnd, the storage daemon (libev)
noinst_LIBRARIES += daemon/libdaemon.a
daemon_libdaemon_a_SOURCES = \
	daemon/store.c daemon/store.h \
	daemon/fileio.c daemon/fileio.h \
	daemon/pack.c daemon/pack.h \
	daemon/packidx.c daemon/packidx.h \
	daemon/packstore.c daemon/packstore.h daemon/packstore_int.h \
	daemon/packcompact.c \
	daemon/diskpool.c daemon/diskpool.h \
	daemon/peer.c daemon/peer.h \
	daemon/srv.c daemon/srv.h daemon/srv_int.h \
	daemon/srv_jobs.c daemon/srv_state.c
daemon_libdaemon_a_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(XXHASH_CFLAGS)
DAEMON_LIBS = daemon/libdaemon.a $(CLUSTER_LIBS) $(XXHASH_LIBS) $(EV_LIBS)

sbin_PROGRAMS += daemon/cairnd
daemon_cairnd_SOURCES = daemon/cairnd.c
daemon_cairnd_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(SYSTEMD_CFLAGS)
daemon_cairnd_LDADD = $(DAEMON_LIBS) $(SYSTEMD_LIBS)

check_PROGRAMS += tests/unit/test_store
TESTS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c tests/unit/storetest.c tests/unit/storetest.h
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_store_LDADD = $(DAEMON_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_packstore
TESTS += tests/unit/test_packstore
tests_unit_test_packstore_SOURCES = tests/unit/test_packstore.c tests/unit/storetest.c tests/unit/storetest.h
tests_unit_test_packstore_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_packstore_LDADD = $(DAEMON_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_compaction
TESTS += tests/unit/test_compaction
tests_unit_test_compaction_SOURCES = tests/unit/test_compaction.c tests/unit/storetest.c tests/unit/storetest.h
tests_unit_test_compaction_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_compaction_LDADD = $(DAEMON_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_pack
TESTS += tests/unit/test_pack
tests_unit_test_pack_SOURCES = tests/unit/test_pack.c tests/unit/testrng.h
tests_unit_test_pack_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(XXHASH_CFLAGS)
tests_unit_test_pack_LDADD = $(DAEMON_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_packidx
TESTS += tests/unit/test_packidx
tests_unit_test_packidx_SOURCES = tests/unit/test_packidx.c tests/unit/testrng.h
tests_unit_test_packidx_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(XXHASH_CFLAGS)
tests_unit_test_packidx_LDADD = $(DAEMON_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/fuzz/fuzz_pack
tests_fuzz_fuzz_pack_SOURCES = tests/fuzz/fuzz_pack.c daemon/pack.c
tests_fuzz_fuzz_pack_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
tests_fuzz_fuzz_pack_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_pack_LDADD = $(FUZZ_MAIN_LIB) $(XXHASH_LIBS)
FUZZ_TARGETS += fuzz_pack

check_PROGRAMS += tests/fuzz/fuzz_packidx
tests_fuzz_fuzz_packidx_SOURCES = tests/fuzz/fuzz_packidx.c daemon/packidx.c daemon/pack.c
tests_fuzz_fuzz_packidx_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
tests_fuzz_fuzz_packidx_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_packidx_LDADD = $(FUZZ_MAIN_LIB) $(XXHASH_LIBS)
FUZZ_TARGETS += fuzz_packidx

# wireprobe: a raw and well-behaved test client of cairnd
check_PROGRAMS += tests/integ/wireprobe
tests_integ_wireprobe_SOURCES = tests/integ/wireprobe.c
tests_integ_wireprobe_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_integ_wireprobe_LDADD = $(DAEMON_LIBS)

# storebench: the block store alone, the ceiling for PUT and GET
# (tests/bench/bench_cluster.sh prints it next to them)
noinst_PROGRAMS += tests/bench/storebench
tests_bench_storebench_SOURCES = tests/bench/storebench.c
tests_bench_storebench_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_bench_storebench_LDADD = $(DAEMON_LIBS) $(PTHREAD_LIBS)

# tidybench: how long a PUT waits while the store compacts beside it
noinst_PROGRAMS += tests/bench/tidybench
tests_bench_tidybench_SOURCES = tests/bench/tidybench.c
tests_bench_tidybench_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_bench_tidybench_LDADD = $(DAEMON_LIBS) $(PTHREAD_LIBS)

DAEMON_INTEG = tests/integ/t-daemon-badinput.sh \
	tests/integ/t-daemon-durable.sh tests/integ/t-daemon-gossip.sh \
	tests/integ/t-daemon-fulldisk.sh
TESTS += $(DAEMON_INTEG)
dist_check_SCRIPTS += $(DAEMON_INTEG)
EXTRA_DIST += tests/integ/lib.sh
