/*
 * test_bcache: the block cache keeps its byte bound, evicts least recently
 * used first, never frees a pinned entry, and survives concurrent use.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs/bcache.h"

static void addr_of(unsigned i, uint8_t addr[32])
{
	memset(addr, 0, 32);
	/* Spread over buckets like real hashes, plus a tail for uniqueness. */
	for (int b = 0; b < 8; b++)
		addr[b] = (uint8_t)((i * 2654435761u) >> (b * 3));
	memcpy(addr + 28, &i, sizeof(i));
}

static void hit_returns_the_inserted_bytes(void **state)
{
	struct bcache *c;
	struct bcache_entry *e;
	uint8_t a[32], data[1000];

	(void)state;
	assert_int_equal(bcache_new(1 << 20, &c), 0);
	addr_of(1, a);
	memset(data, 7, sizeof(data));
	assert_null(bcache_get(c, a));
	e = bcache_insert(c, a, data, sizeof(data));
	assert_non_null(e);
	bcache_put(c, e);
	data[0] = 9;  /* the cache holds its own copy */
	e = bcache_get(c, a);
	assert_non_null(e);
	assert_int_equal(e->len, 1000);
	assert_int_equal(e->data[0], 7);
	bcache_put(c, e);
	bcache_free(c);
}

static void bound_holds_and_oldest_goes_first(void **state)
{
	struct bcache *c;
	struct bcache_stats st;
	uint8_t a[32], buf[4096] = { 0 };

	(void)state;
	assert_int_equal(bcache_new(10 * 4096, &c), 0);
	for (unsigned i = 0; i < 10; i++) {
		addr_of(i, a);
		bcache_put(c, bcache_insert(c, a, buf, sizeof(buf)));
	}
	/* touch 0 so that 1 is now the oldest */
	addr_of(0, a);
	bcache_put(c, bcache_get(c, a));
	addr_of(10, a);
	bcache_put(c, bcache_insert(c, a, buf, sizeof(buf)));
	bcache_stats(c, &st);
	assert_true(st.bytes <= 10 * 4096);
	assert_int_equal(st.evictions, 1);
	addr_of(1, a);
	assert_null(bcache_get(c, a));
	addr_of(0, a);
	struct bcache_entry *e = bcache_get(c, a);
	assert_non_null(e);
	bcache_put(c, e);
	bcache_free(c);
}

static void pinned_entry_survives_eviction_and_forget(void **state)
{
	struct bcache *c;
	struct bcache_entry *pinned;
	uint8_t a[32], buf[4096];

	(void)state;
	assert_int_equal(bcache_new(2 * 4096, &c), 0);
	memset(buf, 0x5a, sizeof(buf));
	addr_of(100, a);
	pinned = bcache_insert(c, a, buf, sizeof(buf));
	bcache_forget(c, a);
	for (unsigned i = 0; i < 20; i++) {
		uint8_t b[32];

		addr_of(i, b);
		bcache_put(c, bcache_insert(c, b, buf, sizeof(buf)));
	}
	/* Still readable (ASan would flag a use after free). */
	for (size_t i = 0; i < pinned->len; i++)
		assert_int_equal(pinned->data[i], 0x5a);
	assert_null(bcache_get(c, a));
	bcache_put(c, pinned);
	bcache_free(c);
}

static void oversize_insert_is_refused(void **state)
{
	struct bcache *c;
	uint8_t a[32], *big = calloc(1, 8192);

	(void)state;
	assert_int_equal(bcache_new(4096, &c), 0);
	addr_of(1, a);
	assert_null(bcache_insert(c, a, big, 8192));
	free(big);
	bcache_free(c);
}

/* An owned insert keeps the very buffer (no copy); a second one for the
 * same address returns the first entry and frees its buffer (ASan would
 * report a leak or a double free); one too big leaves it to the caller. */
static void owned_insert_takes_the_buffer(void **state)
{
	struct bcache *c;
	struct bcache_entry *e, *again;
	uint8_t a[32], *mine = malloc(1000), *dup = malloc(1000), *big = malloc(8192);

	(void)state;
	assert_int_equal(bcache_new(4096, &c), 0);
	addr_of(7, a);
	memset(mine, 0x5a, 1000);
	memset(dup, 0xa5, 1000);
	e = bcache_insert_owned(c, a, mine, 1000);
	assert_non_null(e);
	assert_ptr_equal(e->data, mine);
	again = bcache_insert_owned(c, a, dup, 1000);
	assert_ptr_equal(again, e);
	assert_int_equal(again->data[999], 0x5a);
	bcache_put(c, again);
	bcache_put(c, e);
	assert_null(bcache_insert_owned(c, a, big, 8192));
	free(big);
	e = bcache_get(c, a);
	assert_non_null(e);
	assert_ptr_equal(e->data, mine);
	bcache_put(c, e);
	bcache_free(c);
}

#define THREADS 4
#define ROUNDS 20000

static void *hammer(void *arg)
{
	struct bcache *c = arg;
	uint8_t a[32], buf[512];

	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned i = (r * 7919u) % 300;
		struct bcache_entry *e;

		addr_of(i, a);
		e = bcache_get(c, a);
		if (!e) {
			memset(buf, (int)(i & 0xff), sizeof(buf));
			e = bcache_insert(c, a, buf, sizeof(buf));
		}
		if (!e || e->len != sizeof(buf) || e->data[511] != (uint8_t)i)
			return (void *)1;
		if (r % 97 == 0)
			bcache_forget(c, a);
		bcache_put(c, e);
	}
	return NULL;
}

static void concurrent_readers_see_consistent_entries(void **state)
{
	struct bcache *c;
	struct bcache_stats st;
	pthread_t t[THREADS];

	(void)state;
	assert_int_equal(bcache_new(100 * 512, &c), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, c), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rv;

		pthread_join(t[i], &rv);
		assert_null(rv);
	}
	bcache_stats(c, &st);
	assert_true(st.bytes <= 100 * 512);
	assert_int_equal(st.hits + st.misses, (uint64_t)THREADS * ROUNDS);
	bcache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hit_returns_the_inserted_bytes),
		cmocka_unit_test(bound_holds_and_oldest_goes_first),
		cmocka_unit_test(pinned_entry_survives_eviction_and_forget),
		cmocka_unit_test(oversize_insert_is_refused),
		cmocka_unit_test(owned_insert_takes_the_buffer),
		cmocka_unit_test(concurrent_readers_see_consistent_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
