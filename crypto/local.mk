# crypto: keys, block sealing, connection handshake (libsodium, zstd; the
# block AEAD's bulk work in OpenSSL's libcrypto)
noinst_LIBRARIES += crypto/libcairncrypto.a
crypto_libcairncrypto_a_SOURCES = \
	crypto/aead.c crypto/aead.h \
	crypto/blake2b.c crypto/blake2b.h \
	crypto/evpmac.c crypto/evpmac.h \
	crypto/keys.c crypto/keys.h \
	crypto/poly1305.c crypto/poly1305.h \
	crypto/seal.c crypto/seal.h \
	crypto/handshake.c crypto/handshake.h
crypto_libcairncrypto_a_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(ZSTD_CFLAGS) $(OPENSSL_CFLAGS)
CRYPTO_LIBS = crypto/libcairncrypto.a $(SODIUM_LIBS) $(ZSTD_LIBS) $(OPENSSL_LIBS)

check_PROGRAMS += tests/unit/test_keys tests/unit/test_seal tests/unit/test_handshake tests/unit/test_aead tests/unit/test_poly1305 tests/unit/test_blake2b
TESTS += tests/unit/test_keys tests/unit/test_seal tests/unit/test_handshake tests/unit/test_aead tests/unit/test_poly1305 tests/unit/test_blake2b
tests_unit_test_blake2b_SOURCES = tests/unit/test_blake2b.c
tests_unit_test_blake2b_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_blake2b_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS) -lpthread
tests_unit_test_poly1305_SOURCES = tests/unit/test_poly1305.c
tests_unit_test_poly1305_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_poly1305_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS) -lpthread
tests_unit_test_aead_SOURCES = tests/unit/test_aead.c
tests_unit_test_aead_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_aead_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)
tests_unit_test_keys_SOURCES = tests/unit/test_keys.c
tests_unit_test_keys_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_keys_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)
tests_unit_test_seal_SOURCES = tests/unit/test_seal.c
tests_unit_test_seal_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_seal_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)
tests_unit_test_handshake_SOURCES = tests/unit/test_handshake.c
tests_unit_test_handshake_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_handshake_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/fuzz/fuzz_open tests/fuzz/fuzz_handshake tests/fuzz/fuzz_keyfile
tests_fuzz_fuzz_open_SOURCES = tests/fuzz/fuzz_open.c
tests_fuzz_fuzz_open_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_open_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_open_LDADD = $(FUZZ_MAIN_LIB) $(CRYPTO_LIBS)
tests_fuzz_fuzz_handshake_SOURCES = tests/fuzz/fuzz_handshake.c
tests_fuzz_fuzz_handshake_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_handshake_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_handshake_LDADD = $(FUZZ_MAIN_LIB) $(CRYPTO_LIBS)
tests_fuzz_fuzz_keyfile_SOURCES = tests/fuzz/fuzz_keyfile.c
tests_fuzz_fuzz_keyfile_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
tests_fuzz_fuzz_keyfile_LDFLAGS = $(AM_LDFLAGS) $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_keyfile_LDADD = $(FUZZ_MAIN_LIB) $(CRYPTO_LIBS)
FUZZ_TARGETS += fuzz_open fuzz_handshake fuzz_keyfile

# Microbenchmark of the primitives (built by make, run by hand: not a test).
noinst_PROGRAMS += tests/bench/bench_prims
tests_bench_bench_prims_SOURCES = tests/bench/bench_prims.c
tests_bench_bench_prims_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(ZSTD_CFLAGS)
tests_bench_bench_prims_LDADD = chunker/libchunker.a $(CRYPTO_LIBS)
