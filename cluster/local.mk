# cluster: map, placement, wire codec, client connections, config, logging; cairnctl
noinst_LIBRARIES += cluster/libcluster.a
cluster_libcluster_a_SOURCES = \
	cluster/log.c cluster/log.h \
	cluster/conf.c cluster/conf.h \
	cluster/proto.c cluster/proto.h \
	cluster/cmap.c cluster/cmap.h \
	cluster/pool.c cluster/pool.h \
	cluster/blockio.c cluster/blockio.h
cluster_libcluster_a_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(INIH_CFLAGS)
CLUSTER_LIBS = cluster/libcluster.a $(CRYPTO_LIBS) $(INIH_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += tests/unit/test_conf tests/unit/test_proto tests/unit/test_cmap tests/unit/test_pool
TESTS += tests/unit/test_conf tests/unit/test_proto tests/unit/test_cmap tests/unit/test_pool
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
