# tests: fuzz driver, benchmarks and integration scripts shared across modules.
# Unit tests live in the local.mk of the module they test; so do fuzz targets,
# which add themselves to FUZZ_TARGETS:
#
#   check_PROGRAMS += tests/fuzz/fuzz_thing
#   tests_fuzz_fuzz_thing_SOURCES = tests/fuzz/fuzz_thing.c
#   tests_fuzz_fuzz_thing_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
#   tests_fuzz_fuzz_thing_LDADD = $(FUZZ_MAIN_LIB) <libraries>
#   FUZZ_TARGETS += fuzz_thing      (seed corpus in tests/fuzz/corpus/fuzz_thing/)
#
# With --enable-fuzzing (clang) the targets are libFuzzer binaries and
# tests/fuzz/run.sh fuzzes each for a bounded time; otherwise they link the
# replay driver, which runs the corpus plus seeded mutations of it.

if ENABLE_FUZZING
FUZZER_LINK_FLAGS = -fsanitize=fuzzer
FUZZ_MAIN_LIB =
else
noinst_LIBRARIES += tests/fuzz/libfuzzreplay.a
tests_fuzz_libfuzzreplay_a_SOURCES = tests/fuzz/replay.c
FUZZER_LINK_FLAGS =
FUZZ_MAIN_LIB = tests/fuzz/libfuzzreplay.a
endif

TESTS += tests/fuzz/run.sh
dist_check_SCRIPTS += tests/fuzz/run.sh
AM_TESTS_ENVIRONMENT += FUZZ_TARGETS='$(FUZZ_TARGETS)'; export FUZZ_TARGETS;
if ENABLE_FUZZING
AM_TESTS_ENVIRONMENT += CAIRNFS_FUZZ_MODE=libfuzzer; export CAIRNFS_FUZZ_MODE;
endif
EXTRA_DIST += tests/fuzz/corpus

# posixcheck: the POSIX surface with errno expectations (T15), run by the
# mount tests against cairnfs and, as a control, against a local directory.
check_PROGRAMS += tests/integ/posixcheck
tests_integ_posixcheck_SOURCES = tests/integ/posixcheck.c
check_PROGRAMS += tests/integ/crashwriter
tests_integ_crashwriter_SOURCES = tests/integ/crashwriter.c
check_PROGRAMS += tests/integ/overwriter
tests_integ_overwriter_SOURCES = tests/integ/overwriter.c

# packls: where each block lies in cairnd's pack files, for the tests that
# damage blocks on disk. daemon/pack.c lives in libdaemon.a; only its
# object is linked from there, and it needs libxxhash.
check_PROGRAMS += tests/integ/packls
tests_integ_packls_SOURCES = tests/integ/packls.c
tests_integ_packls_LDADD = daemon/libdaemon.a $(XXHASH_LIBS)
