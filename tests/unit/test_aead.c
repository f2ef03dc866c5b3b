/*
 * test_aead: crypto/aead.c gives exactly libsodium's XChaCha20-Poly1305
 * bytes both ways, at every length that matters, in place too, and
 * refuses every tampered input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/aead.h"

static const size_t lengths[] = { 0, 1, 15, 16, 63, 64, 65, 255, 4096,
				  65536 + 7, 256 * 1024 + 13, 1024 * 1024 };

static int setup(void **state)
{
	*state = aead_new();
	return sodium_init() < 0 || !*state;
}

static int teardown(void **state)
{
	aead_free(*state);
	return 0;
}

/* Where OpenSSL's ChaCha20-Poly1305 exists (every Debian), it is used:
 * otherwise the comparisons below would test libsodium against itself. */
static void test_openssl_does_the_work(void **state)
{
	assert_true(aead_uses_openssl(*state));
}

static void test_same_bytes_as_libsodium_both_ways(void **state)
{
	struct aead_ctx *a = *state;
	uint8_t key[AEAD_KEY_BYTES], nonce[AEAD_NONCE_BYTES], ad[56];

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t n = lengths[i], adlen = i % 2 ? sizeof(ad) : 0;
		uint8_t *m = malloc(n + 1), *ours = malloc(n + AEAD_TAG_BYTES);
		uint8_t *theirs = malloc(n + AEAD_TAG_BYTES), *back = malloc(n + 1);
		unsigned long long clen = 0, mlen = 0;

		assert_non_null(m);
		assert_non_null(ours);
		assert_non_null(theirs);
		assert_non_null(back);
		randombytes_buf(key, sizeof(key));
		randombytes_buf(nonce, sizeof(nonce));
		randombytes_buf(ad, sizeof(ad));
		randombytes_buf(m, n);
		assert_int_equal(aead_encrypt(a, ours, m, n, ad, adlen, nonce, key), 0);
		crypto_aead_xchacha20poly1305_ietf_encrypt(theirs, &clen, m, n, ad,
							   adlen, NULL, nonce, key);
		assert_int_equal(clen, n + AEAD_TAG_BYTES);
		assert_memory_equal(ours, theirs, n + AEAD_TAG_BYTES);
		/* theirs opened by us, ours by them */
		assert_int_equal(aead_decrypt(a, back, theirs, n + AEAD_TAG_BYTES,
					      ad, adlen, nonce, key), 0);
		assert_memory_equal(back, m, n);
		assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
					 back, &mlen, NULL, ours, n + AEAD_TAG_BYTES,
					 ad, adlen, nonce, key), 0);
		assert_int_equal(mlen, n);
		free(m);
		free(ours);
		free(theirs);
		free(back);
	}
}

static void test_in_place(void **state)
{
	struct aead_ctx *a = *state;
	uint8_t key[AEAD_KEY_BYTES], nonce[AEAD_NONCE_BYTES];
	size_t n = 100000;
	uint8_t *m = malloc(n), *buf = malloc(n + AEAD_TAG_BYTES);

	assert_non_null(m);
	assert_non_null(buf);
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(m, n);
	memcpy(buf, m, n);
	assert_int_equal(aead_encrypt(a, buf, buf, n, NULL, 0, nonce, key), 0);
	assert_memory_not_equal(buf, m, n);
	assert_int_equal(aead_decrypt(a, buf, buf, n + AEAD_TAG_BYTES, NULL, 0,
				      nonce, key), 0);
	assert_memory_equal(buf, m, n);
	free(m);
	free(buf);
}

/* Each of ciphertext, tag, ad, nonce and key changed by one bit is refused
 * with -EBADMSG and no plaintext; and the context still works after. */
static void test_tampering_is_refused(void **state)
{
	struct aead_ctx *a = *state;
	uint8_t key[AEAD_KEY_BYTES], nonce[AEAD_NONCE_BYTES], ad[40];
	enum { N = 5000 };
	uint8_t m[N], c[N + AEAD_TAG_BYTES], out[N];

	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(ad, sizeof(ad));
	randombytes_buf(m, sizeof(m));
	assert_int_equal(aead_encrypt(a, c, m, N, ad, sizeof(ad), nonce, key), 0);
	for (int what = 0; what < 5; what++) {
		uint8_t *p = what == 0 ? c + 1234 : what == 1 ? c + N + 3
			     : what == 2 ? ad + 7 : what == 3 ? nonce + 20 : key + 31;

		*p ^= 0x10;
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(aead_decrypt(a, out, c, sizeof(c), ad, sizeof(ad),
					      nonce, key), -EBADMSG);
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], 0);  /* nothing unverified leaks */
		*p ^= 0x10;
	}
	assert_int_equal(aead_decrypt(a, out, c, sizeof(c), ad, sizeof(ad), nonce,
				      key), 0);
	assert_memory_equal(out, m, N);
	/* too short to hold a tag */
	assert_int_equal(aead_decrypt(a, out, c, AEAD_TAG_BYTES - 1, NULL, 0,
				      nonce, key), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_openssl_does_the_work, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_bytes_as_libsodium_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampering_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
