# crypto: keys, block sealing, connection handshake (libsodium, zstd)
noinst_LIBRARIES += crypto/libcairncrypto.a
crypto_libcairncrypto_a_SOURCES = \
	crypto/keys.c crypto/keys.h \
	crypto/seal.c crypto/seal.h \
	crypto/handshake.c crypto/handshake.h
crypto_libcairncrypto_a_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(ZSTD_CFLAGS)
CRYPTO_LIBS = crypto/libcairncrypto.a $(SODIUM_LIBS) $(ZSTD_LIBS)

check_PROGRAMS += tests/unit/test_keys tests/unit/test_seal tests/unit/test_handshake
TESTS += tests/unit/test_keys tests/unit/test_seal tests/unit/test_handshake
tests_unit_test_keys_SOURCES = tests/unit/test_keys.c
tests_unit_test_keys_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_keys_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)
tests_unit_test_seal_SOURCES = tests/unit/test_seal.c
tests_unit_test_seal_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_seal_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)
tests_unit_test_handshake_SOURCES = tests/unit/test_handshake.c
tests_unit_test_handshake_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_unit_test_handshake_LDADD = $(CRYPTO_LIBS) $(CMOCKA_LIBS)
