# chunker: content-defined chunking (libc only)
noinst_LIBRARIES += chunker/libchunker.a
chunker_libchunker_a_SOURCES = chunker/chunker.c chunker/chunker.h

check_PROGRAMS += tests/unit/test_chunker
TESTS += tests/unit/test_chunker
tests_unit_test_chunker_SOURCES = tests/unit/test_chunker.c
tests_unit_test_chunker_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_chunker_LDADD = chunker/libchunker.a $(CMOCKA_LIBS) $(SODIUM_LIBS)
