# chunker: content-defined chunking (libc only)
noinst_LIBRARIES += chunker/libchunker.a
chunker_libchunker_a_SOURCES = chunker/chunker.c chunker/chunker.h

check_PROGRAMS += tests/unit/test_chunker
TESTS += tests/unit/test_chunker
tests_unit_test_chunker_SOURCES = tests/unit/test_chunker.c
tests_unit_test_chunker_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_chunker_LDADD = chunker/libchunker.a $(CMOCKA_LIBS) $(SODIUM_LIBS)

check_PROGRAMS += tests/fuzz/fuzz_chunker
tests_fuzz_fuzz_chunker_SOURCES = tests/fuzz/fuzz_chunker.c
tests_fuzz_fuzz_chunker_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_chunker_LDADD = $(FUZZ_MAIN_LIB) chunker/libchunker.a
FUZZ_TARGETS += fuzz_chunker
