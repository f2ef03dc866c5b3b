/*
 * test_blake2b: blake2b_keyed gives libsodium's crypto_generichash output
 * for every length, key size and output size we use, from several threads
 * at once, and matches the BLAKE2 reference known answer.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/blake2b.h"

enum { MAXLEN = 1100000 };

static int differs(const uint8_t *msg, size_t n, size_t out_len, size_t key_len)
{
	uint8_t key[BLAKE2B_KEY_MAX], want[BLAKE2B_OUT_MAX], got[BLAKE2B_OUT_MAX];

	randombytes_buf(key, key_len);
	crypto_generichash(want, out_len, msg, n, key, key_len);
	memset(got, 0xee, sizeof(got));
	blake2b_keyed(got, out_len, msg, n, key, key_len);
	return memcmp(want, got, out_len);
}

static void test_same_hash_as_libsodium(void **state)
{
	static const size_t lengths[] = { 0, 1, 127, 128, 129, 4096, 65536 + 3,
					  262144, 1048576, MAXLEN };
	static const size_t outs[] = { 16, 32, 64 }, keys[] = { 16, 32, 64 };
	uint8_t *msg = malloc(MAXLEN);

	(void)state;
	assert_non_null(msg);
	randombytes_buf(msg, MAXLEN);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
		for (size_t o = 0; o < 3; o++)
			for (size_t k = 0; k < 3; k++)
				assert_int_equal(differs(msg, lengths[i], outs[o], keys[k]), 0);
	free(msg);
}

/* BLAKE2b-512 keyed with 00 01 .. 3f over the empty message (blake2b-kat
 * of the BLAKE2 reference code, first entry). */
static void test_known_answer(void **state)
{
	static const char want_hex[] =
		"10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
		"b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568";
	uint8_t key[64], got[64], want[64];
	uint8_t other[32] = { 0 }, a[32], b[32];

	(void)state;
	for (unsigned i = 0; i < 64; i++)
		key[i] = (uint8_t)i;
	assert_int_equal(sodium_hex2bin(want, sizeof(want), want_hex, 128, NULL,
					NULL, NULL), 0);
	blake2b_keyed(got, 64, "", 0, key, 64);
	assert_memory_equal(got, want, 64);
	/* another key gives another hash: the comparisons can fail */
	blake2b_keyed(a, 32, "x", 1, key, 32);
	blake2b_keyed(b, 32, "x", 1, other, 32);
	assert_memory_not_equal(a, b, 32);
}

static void *thread_main(void *arg)
{
	const uint8_t *msg = arg;
	intptr_t bad = 0;

	for (unsigned i = 0; i < 200; i++)
		bad += differs(msg, 1000 + i * 997, 32, 32) != 0;
	return (void *)bad;
}

static void test_threads_each_get_right_hashes(void **state)
{
	uint8_t *msg = malloc(MAXLEN);
	pthread_t t[4];

	(void)state;
	assert_non_null(msg);
	randombytes_buf(msg, MAXLEN);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, msg), 0);
	for (int i = 0; i < 4; i++) {
		void *bad;

		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((intptr_t)bad, 0);
	}
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_hash_as_libsodium),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_threads_each_get_right_hashes),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
