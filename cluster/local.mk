# cluster: map, placement, wire codec, client connections, config, logging; cairnctl
noinst_LIBRARIES += cluster/libcluster.a
cluster_libcluster_a_SOURCES = \
	cluster/log.c cluster/log.h \
	cluster/conf.c cluster/conf.h \
	cluster/proto.c cluster/proto.h \
	cluster/cmap.c cluster/cmap.h \
	cluster/pool.c cluster/pool.h \
	cluster/blockio.c cluster/blockio.h \
	cluster/chunkio.c cluster/chunkio.h \
	cluster/clientconf.c cluster/clientconf.h \
	cluster/alloc.h cluster/monotime.h cluster/threadname.h
cluster_libcluster_a_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(INIH_CFLAGS)
CLUSTER_LIBS = cluster/libcluster.a $(CRYPTO_LIBS) $(INIH_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += tests/unit/test_clientconf tests/unit/test_conf tests/unit/test_proto tests/unit/test_cmap tests/unit/test_pool
TESTS += tests/unit/test_clientconf tests/unit/test_conf tests/unit/test_proto tests/unit/test_cmap tests/unit/test_pool
tests_unit_test_clientconf_SOURCES = tests/unit/test_clientconf.c
tests_unit_test_clientconf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_clientconf_LDADD = $(CLUSTER_LIBS) $(CMOCKA_LIBS)
tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = $(CLUSTER_LIBS) $(CMOCKA_LIBS)
tests_unit_test_proto_SOURCES = tests/unit/test_proto.c
tests_unit_test_proto_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_proto_LDADD = $(CLUSTER_LIBS) $(CMOCKA_LIBS)
tests_unit_test_cmap_SOURCES = tests/unit/test_cmap.c
tests_unit_test_cmap_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_cmap_LDADD = $(CLUSTER_LIBS) $(CMOCKA_LIBS)
tests_unit_test_pool_SOURCES = tests/unit/test_pool.c
tests_unit_test_pool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_pool_LDADD = $(CLUSTER_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/fuzz/fuzz_frame tests/fuzz/fuzz_map tests/fuzz/fuzz_conf
tests_fuzz_fuzz_frame_SOURCES = tests/fuzz/fuzz_frame.c
tests_fuzz_fuzz_frame_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_frame_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_frame_LDADD = $(FUZZ_MAIN_LIB) $(CLUSTER_LIBS)
tests_fuzz_fuzz_map_SOURCES = tests/fuzz/fuzz_map.c
tests_fuzz_fuzz_map_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_map_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_map_LDADD = $(FUZZ_MAIN_LIB) $(CLUSTER_LIBS)
tests_fuzz_fuzz_conf_SOURCES = tests/fuzz/fuzz_conf.c
tests_fuzz_fuzz_conf_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS)
tests_fuzz_fuzz_conf_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_conf_LDADD = $(FUZZ_MAIN_LIB) $(CLUSTER_LIBS)
# manifest.c belongs to cairnctl, not libcluster: the target builds it in
check_PROGRAMS += tests/fuzz/fuzz_manifest
tests_fuzz_fuzz_manifest_SOURCES = tests/fuzz/fuzz_manifest.c cluster/manifest.c
tests_fuzz_fuzz_manifest_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_manifest_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_manifest_LDADD = $(FUZZ_MAIN_LIB)
FUZZ_TARGETS += fuzz_frame fuzz_map fuzz_conf fuzz_manifest

# cairnctl: the admin and scripting tool
bin_PROGRAMS += cluster/cairnctl
cluster_cairnctl_SOURCES = \
	cluster/cairnctl.c \
	cluster/ctl_cluster.c cluster/ctl_volume.c cluster/ctl.h \
	cluster/ctl_put.c cluster/ctl_get.c cluster/ctl_bench.c \
	cluster/manifest.c cluster/manifest.h \
	cluster/progress.c cluster/progress.h
cluster_cairnctl_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
cluster_cairnctl_LDADD = chunker/libchunker.a $(CLUSTER_LIBS)

# cairnctl: integration tests with real daemons, and the cluster benchmark
TESTS += tests/integ/t-ctl-putget.sh
dist_check_SCRIPTS += tests/integ/t-ctl-putget.sh
EXTRA_DIST += tests/bench/bench_cluster.sh
noinst_PROGRAMS += tests/bench/tcpbench
tests_bench_tcpbench_SOURCES = tests/bench/tcpbench.c
tests_bench_tcpbench_LDADD = $(PTHREAD_LIBS)
