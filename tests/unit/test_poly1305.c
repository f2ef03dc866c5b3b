/*
 * test_poly1305: poly1305_iov gives libsodium's crypto_onetimeauth tag for
 * any split of the bytes into iovecs (empty ones too), from several
 * threads at once (each has its own context).
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

#include "crypto/poly1305.h"

enum { MAXLEN = 300000 };

/* Tag msg[0..n) split at cut points derived from `seed`, check it. */
static int check_split(const uint8_t *msg, size_t n, unsigned seed)
{
	uint8_t key[POLY1305_KEY_BYTES], want[16], got[16];
	struct iovec iov[8];
	size_t pos = 0;
	int cnt = 0;

	randombytes_buf(key, sizeof(key));
	crypto_onetimeauth(want, msg, n, key);
	while (cnt < 7) {
		size_t take = n - pos ? (seed * 2654435761u + (unsigned)cnt) % (n - pos + 1) : 0;

		iov[cnt++] = (struct iovec){ (void *)(msg + pos), take };
		pos += take;
	}
	iov[cnt++] = (struct iovec){ (void *)(msg + pos), n - pos };
	poly1305_iov(got, iov, cnt, key);
	return memcmp(want, got, sizeof(got));
}

static void test_same_tag_as_libsodium_for_any_split(void **state)
{
	static const size_t lengths[] = { 0, 1, 15, 16, 17, 64, 4096, 65536 + 3,
					  262144, MAXLEN };
	uint8_t *msg = malloc(MAXLEN);

	(void)state;
	assert_non_null(msg);
	randombytes_buf(msg, MAXLEN);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
		for (unsigned seed = 0; seed < 5; seed++)
			assert_int_equal(check_split(msg, lengths[i], seed), 0);
	/* and a wrong key gives another tag: the check above can fail */
	{
		uint8_t key[32] = { 1 }, other[32] = { 2 }, a[16], b[16];
		struct iovec v = { msg, 1000 };

		poly1305_iov(a, &v, 1, key);
		poly1305_iov(b, &v, 1, other);
		assert_memory_not_equal(a, b, 16);
	}
	free(msg);
}

static void *thread_main(void *arg)
{
	const uint8_t *msg = arg;
	intptr_t bad = 0;

	for (unsigned i = 0; i < 200; i++)
		bad += check_split(msg, 1000 + i * 37, i) != 0;
	return (void *)bad;
}

static void test_threads_each_get_right_tags(void **state)
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
		cmocka_unit_test(test_same_tag_as_libsodium_for_any_split),
		cmocka_unit_test(test_threads_each_get_right_tags),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
