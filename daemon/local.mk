# daemon: cairnd, the storage daemon (libev)
noinst_LIBRARIES += daemon/libdaemon.a
daemon_libdaemon_a_SOURCES = \
	daemon/store.c daemon/store.h
daemon_libdaemon_a_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
DAEMON_LIBS = daemon/libdaemon.a $(CLUSTER_LIBS) $(EV_LIBS)

check_PROGRAMS += tests/unit/test_store
TESTS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_store_LDADD = $(DAEMON_LIBS) $(CMOCKA_LIBS)
