# fs: cairnfs, the FUSE client (libfuse3, lmdb)
noinst_LIBRARIES += fs/libfs.a
fs_libfs_a_SOURCES = \
	fs/meta.c fs/meta.h fs/meta_int.h fs/meta_blocks.c fs/meta_ns.c \
	fs/meta_xattr.c \
	fs/bcache.c fs/bcache.h \
	fs/fsdata.c fs/fsdata.h fs/fsdata_int.h fs/fsdata_read.c \
	fs/flusher.c fs/deleter.c \
	fs/segs.c fs/segs.h \
	fs/parked.c fs/parked.h fs/fsdata_parked.c \
	fs/readahead.c fs/readahead.h \
	fs/workpool.c fs/workpool.h \
	fs/loop.c fs/loop.h \
	fs/ops.c fs/fs.h
fs_libfs_a_CFLAGS = $(AM_CFLAGS) $(FUSE_CFLAGS) $(LMDB_CFLAGS) $(SODIUM_CFLAGS)
FS_LIBS = fs/libfs.a chunker/libchunker.a $(CLUSTER_LIBS) $(FUSE_LIBS) $(LMDB_LIBS)

bin_PROGRAMS += fs/cairnfs
fs_cairnfs_SOURCES = fs/main.c
fs_cairnfs_CFLAGS = $(AM_CFLAGS) $(FUSE_CFLAGS) $(SODIUM_CFLAGS)
fs_cairnfs_LDADD = $(FS_LIBS)

# mount(8) runs mount.cairnfs for -t cairnfs (and mount.fuse3 runs cairnfs
# for -t fuse.cairnfs): the same program under both names. mount(8) looks
# for mount.TYPE in /sbin and /usr/sbin only, so -t cairnfs needs
# --prefix=/usr (or --sbindir=/usr/sbin); fuse.cairnfs works from any
# prefix whose bin is on PATH.
install-exec-hook: install-cairnfs-mount-helper
install-cairnfs-mount-helper:
	$(MKDIR_P) $(DESTDIR)$(sbindir)
	ln -sf $(bindir)/cairnfs $(DESTDIR)$(sbindir)/mount.cairnfs
uninstall-hook:
	rm -f $(DESTDIR)$(sbindir)/mount.cairnfs
.PHONY: install-cairnfs-mount-helper

check_PROGRAMS += tests/unit/test_meta tests/unit/test_bcache tests/unit/test_workpool \
	tests/unit/test_loop tests/unit/test_segs
TESTS += tests/unit/test_meta tests/unit/test_bcache tests/unit/test_workpool \
	tests/unit/test_loop tests/unit/test_segs
tests_unit_test_meta_SOURCES = tests/unit/test_meta.c
tests_unit_test_meta_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LMDB_CFLAGS)
tests_unit_test_meta_LDADD = $(FS_LIBS) $(CMOCKA_LIBS)
tests_unit_test_bcache_SOURCES = tests/unit/test_bcache.c
tests_unit_test_bcache_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_bcache_LDADD = $(FS_LIBS) $(CMOCKA_LIBS)
tests_unit_test_workpool_SOURCES = tests/unit/test_workpool.c
tests_unit_test_workpool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_workpool_LDADD = $(FS_LIBS) $(CMOCKA_LIBS)
tests_unit_test_loop_SOURCES = tests/unit/test_loop.c
tests_unit_test_loop_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(FUSE_CFLAGS)
tests_unit_test_loop_LDADD = $(FS_LIBS) $(CMOCKA_LIBS)
tests_unit_test_segs_SOURCES = tests/unit/test_segs.c
tests_unit_test_segs_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_segs_LDADD = $(FS_LIBS) $(CMOCKA_LIBS)

# The parked-file decoder (fs/parked.h) reads files from local disk.
check_PROGRAMS += tests/fuzz/fuzz_parked
tests_fuzz_fuzz_parked_SOURCES = tests/fuzz/fuzz_parked.c fs/parked.c
tests_fuzz_fuzz_parked_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_parked_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_parked_LDADD = $(FUZZ_MAIN_LIB) $(CRYPTO_LIBS)
FUZZ_TARGETS += fuzz_parked

# Mount tests: a real cairnfs over real daemons.
FS_INTEG_TESTS = tests/integ/t-fs-posix.sh tests/integ/t-fs-apps.sh \
	tests/integ/t-fs-data.sh tests/integ/t-fs-crash.sh tests/integ/t-fs-bad.sh \
	tests/integ/t-fs-faults.sh tests/integ/t-fs-full.sh \
	tests/integ/t-fs-overwrite.sh
TESTS += $(FS_INTEG_TESTS)
dist_check_SCRIPTS += $(FS_INTEG_TESTS)
EXTRA_DIST += tests/integ/fslib.sh

# The mount against a local directory (needs a mounted volume: see the script).
EXTRA_DIST += tests/bench/bench_fs.sh
