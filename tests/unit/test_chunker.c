/*
 * test_chunker: cut points are a function of the key and the bytes alone —
 * not of how the stream is split — they resynchronise after an insertion,
 * respect min/max, average near the target, and differ between keys (T24).
 * Random data comes from a printed seed (replay with CAIRNFS_TEST_SEED).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chunker/chunker.h"

#define MIB (1024u * 1024)

static uint64_t seed;

/* Deterministic bytes for (seed, tag): replayable from the printed seed. */
static void fill_random(void *buf, size_t len, uint32_t tag)
{
	uint8_t s[randombytes_SEEDBYTES] = { 0 };

	for (int i = 0; i < 8; i++)
		s[i] = (uint8_t)(seed >> (8 * i));
	for (int i = 0; i < 4; i++)
		s[8 + i] = (uint8_t)(tag >> (8 * i));
	randombytes_buf_deterministic(buf, len, s);
}

static uint8_t *random_buf(size_t len, uint32_t tag)
{
	uint8_t *b = malloc(len ? len : 1);

	assert_non_null(b);
	fill_random(b, len, tag);
	return b;
}

static struct chunker *make(uint8_t keybyte, uint32_t min, uint32_t avg,
			    uint32_t max)
{
	struct chunker_params p = { min, avg, max };
	uint8_t key[CHUNKER_KEY_BYTES];
	struct chunker *c = NULL;

	memset(key, keybyte, sizeof(key));
	key[0] ^= 0x5a;
	assert_int_equal(chunker_new(key, &p, &c), 0);
	assert_non_null(c);
	return c;
}

/* Chunk ends (exclusive offsets) by repeated chunker_find(); returns count. */
static size_t ends_oneshot(const struct chunker *c, const uint8_t *b,
			   size_t len, size_t **out)
{
	size_t cap = 16, n = 0, off = 0;
	size_t *e = malloc(cap * sizeof(*e));

	assert_non_null(e);
	while (off < len) {
		size_t k = chunker_find(c, b + off, len - off, true);

		assert_true(k >= 1 && k <= len - off);
		off += k;
		if (n == cap) {
			cap *= 2;
			e = realloc(e, cap * sizeof(*e));
			assert_non_null(e);
		}
		e[n++] = off;
	}
	*out = e;
	return n;
}

/*
 * Feed b in pieces (size from `piece`: 0 = random in [1, 2*maxpiece],
 * else fixed) through chunker_update and check each end against want[].
 */
static void check_stream(struct chunker *c, const uint8_t *b, size_t len,
			 const size_t *want, size_t nwant, size_t piece,
			 uint32_t tag)
{
	size_t off = 0, n = 0;
	uint32_t r = tag * 2654435761u + (uint32_t)seed;

	chunker_reset(c);
	while (off < len) {
		size_t step = piece;
		if (!step) {
			r = r * 1103515245u + 12345u;
			step = 1 + (r >> 8) % 70000;
		}
		step = step < len - off ? step : len - off;
		while (step) {
			bool cut;
			size_t k = chunker_update(c, b + off, step, &cut);

			assert_true(k <= step);
			off += k;
			step -= k;
			if (cut) {
				assert_true(n < nwant);
				assert_int_equal(off, want[n]);
				assert_int_equal(chunker_pending(c), 0);
				n++;
			} else {
				assert_int_equal(step, 0);
			}
		}
	}
	/* the tail (if any) is the last chunk */
	if (chunker_pending(c)) {
		assert_int_equal(n + 1, nwant);
		assert_int_equal(want[n], len);
		assert_int_equal(len - chunker_pending(c), n ? want[n - 1] : 0);
	} else {
		assert_int_equal(n, nwant);
	}
}

static void test_same_key_and_bytes_give_same_boundaries(void **state)
{
	size_t len = 8 * MIB, *e1, *e2, *e3, n1, n2, n3;
	uint8_t *b = random_buf(len, 1);
	struct chunker *c1 = make(1, 1024, 4096, 16384);
	struct chunker *c2 = make(1, 1024, 4096, 16384);

	(void)state;
	n1 = ends_oneshot(c1, b, len, &e1);
	n2 = ends_oneshot(c2, b, len, &e2);
	n3 = ends_oneshot(c1, b, len, &e3);
	assert_true(n1 > 100);
	assert_int_equal(n1, n2);
	assert_int_equal(n1, n3);
	assert_memory_equal(e1, e2, n1 * sizeof(*e1));
	assert_memory_equal(e1, e3, n1 * sizeof(*e1));
	free(e1);
	free(e2);
	free(e3);
	chunker_free(c1);
	chunker_free(c2);
	free(b);
}

static void test_boundaries_do_not_depend_on_input_split(void **state)
{
	static const uint32_t prm[][3] = {
		{ 64, 128, 256 },
		{ 1024, 4096, 16384 },
		{ CHUNKER_MIN_DEFAULT / 4, CHUNKER_AVG_DEFAULT / 4, CHUNKER_MAX_DEFAULT / 4 },
	};
	size_t len = 2 * MIB, *e, n;
	uint8_t *b = random_buf(len, 2);

	(void)state;
	for (size_t i = 0; i < sizeof(prm) / sizeof(prm[0]); i++) {
		struct chunker *c = make(2, prm[i][0], prm[i][1], prm[i][2]);

		n = ends_oneshot(c, b, len, &e);
		assert_true(n >= 2);
		for (uint32_t round = 0; round < 8; round++)
			check_stream(c, b, len, e, n, 0, round + 10 * (uint32_t)i);
		check_stream(c, b, len, e, n, 1, 0);
		check_stream(c, b, len, e, n, prm[i][0], 0);
		check_stream(c, b, len, e, n, prm[i][2], 0);
		free(e);
		chunker_free(c);
	}
	free(b);
}

static void test_one_byte_insert_changes_at_most_two_chunks(void **state)
{
	size_t len = 64 * MIB, *ea, *eb, na, nb, ia = 0, differ = 0, start;
	uint8_t *a = random_buf(len + 1, 3);
	struct chunker *c = make(3, CHUNKER_MIN_DEFAULT, CHUNKER_AVG_DEFAULT,
				 CHUNKER_MAX_DEFAULT);

	(void)state;
	na = ends_oneshot(c, a + 1, len, &ea);   /* original: a[1..len] */
	nb = ends_oneshot(c, a, len + 1, &eb);   /* with a[0] inserted */
	/* a chunk of b is unchanged when it equals a chunk of a shifted by 1 */
	start = 0;
	for (size_t j = 0; j < nb; j++) {
		size_t s = start, t = eb[j];

		start = t;
		while (ia < na && ea[ia] + 1 < t)
			ia++;
		if (s >= 1 && ia < na && ea[ia] + 1 == t &&
		    (ia ? ea[ia - 1] + 1 : 1) == s)
			continue;
		differ++;
	}
	printf("# insert: %zu chunks before, %zu after, %zu differ\n", na, nb,
	       differ);
	assert_true(na > 100);
	assert_true(differ >= 1);       /* the first chunk holds the new byte */
	assert_true(differ <= 2);
	free(ea);
	free(eb);
	chunker_free(c);
	free(a);
}

static void check_sizes(uint32_t min, uint32_t avg, uint32_t max, size_t len,
			uint32_t tag)
{
	uint8_t *b = random_buf(len, tag);
	struct chunker *c = make(4, min, avg, max);
	size_t *e, n, prev = 0;
	double mean;

	n = ends_oneshot(c, b, len, &e);
	for (size_t i = 0; i < n; i++) {
		size_t sz = e[i] - prev;

		prev = e[i];
		assert_true(sz <= max);
		if (i + 1 < n)
			assert_true(sz >= min);
	}
	mean = (double)(e[n - 2]) / (double)(n - 1);  /* whole chunks only */
	printf("# %u/%u/%u: %zu chunks, mean %.0f (%.3f x avg)\n", min, avg,
	       max, n, mean, mean / avg);
	assert_true(mean >= 0.85 * avg && mean <= 1.15 * avg);
	free(e);
	chunker_free(c);
	free(b);
}

static void test_sizes_within_bounds_and_average_near_target(void **state)
{
	(void)state;
	check_sizes(CHUNKER_MIN_DEFAULT, CHUNKER_AVG_DEFAULT,
		    CHUNKER_MAX_DEFAULT, 96 * MIB, 5);
	check_sizes(1024, 4096, 16384, 8 * MIB, 6);
	check_sizes(2048, 4096, 65536, 8 * MIB, 7);
	check_sizes(64, 256, 1024, 2 * MIB, 8);
}

static void test_constant_data_cuts_at_max(void **state)
{
	uint32_t max = 16384;
	size_t len = 10 * max, *e, n;
	uint8_t *b = calloc(1, len);
	struct chunker *c = make(9, 1024, 4096, max);

	(void)state;
	assert_non_null(b);
	/* a buffer of exactly max bytes is always decided, even without eof */
	assert_true(chunker_find(c, b, max, false) >= 1);
	assert_true(chunker_find(c, b, max, false) <= max);
	n = ends_oneshot(c, b, len, &e);
	for (size_t i = 0; i < n; i++)
		assert_true(e[i] - (i ? e[i - 1] : 0) <= max);
	free(e);
	chunker_free(c);
	free(b);
}

static void test_different_keys_give_different_boundaries(void **state)
{
	size_t len = 32 * MIB, *ea, *eb, na, nb, shared = 0, j = 0;
	uint8_t *b = random_buf(len, 10);
	struct chunker *ca = make(11, CHUNKER_MIN_DEFAULT / 4,
				  CHUNKER_AVG_DEFAULT / 4, CHUNKER_MAX_DEFAULT / 4);
	struct chunker *cb = make(12, CHUNKER_MIN_DEFAULT / 4,
				  CHUNKER_AVG_DEFAULT / 4, CHUNKER_MAX_DEFAULT / 4);
	double frac;

	(void)state;
	na = ends_oneshot(ca, b, len, &ea);
	nb = ends_oneshot(cb, b, len, &eb);
	/* inner boundaries only: the end of the data is shared by definition */
	for (size_t i = 0; i + 1 < na; i++) {
		while (j + 1 < nb && eb[j] < ea[i])
			j++;
		if (eb[j] == ea[i] && j + 1 < nb)
			shared++;
	}
	frac = na > 1 ? (double)shared / (double)(na - 1) : 1.0;
	printf("FIGURE chunker_shared_boundaries=%.4f unit=fraction\n", frac);
	assert_true(na > 100 && nb > 100);
	assert_true(frac < 0.05);
	free(ea);
	free(eb);
	chunker_free(ca);
	chunker_free(cb);
	free(b);
}

static void test_bad_params_give_distinct_codes(void **state)
{
	static const struct {
		struct chunker_params p;
		int err;
	} cases[] = {
		{ { 65536, 262144, 1048576 }, 0 },
		{ { 64, 128, 129 }, 0 },
		{ { 1024, 4096, CHUNKER_SIZE_LIMIT }, 0 },
		{ { 1024, 4096, CHUNKER_SIZE_LIMIT + 1 }, -E2BIG },
		{ { CHUNKER_SIZE_LIMIT + 1, 4096, 16384 }, -E2BIG },
		{ { 1024, 2u * CHUNKER_SIZE_LIMIT, UINT32_MAX }, -E2BIG },
		{ { 1024, 5000, 16384 }, -EDOM },
		{ { 1024, 0, 16384 }, -EDOM },
		{ { 8192, 4096, 16384 }, -ERANGE },       /* min > avg */
		{ { 4096, 4096, 16384 }, -ERANGE },       /* min == avg */
		{ { 1024, 4096, 4096 }, -ERANGE },        /* max == avg */
		{ { 1024, 4096, 2048 }, -ERANGE },        /* max < avg */
		{ { 63, 4096, 16384 }, -ERANGE },         /* min below limit */
		{ { 0, 4096, 16384 }, -ERANGE },
	};
	uint8_t key[CHUNKER_KEY_BYTES] = { 0 };
	struct chunker_params d;

	(void)state;
	chunker_params_default(&d);
	assert_int_equal(d.min_size, 64 * 1024);
	assert_int_equal(d.avg_size, 256 * 1024);
	assert_int_equal(d.max_size, 1024 * 1024);
	assert_int_equal(chunker_params_check(&d), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct chunker *c = (struct chunker *)&d;   /* sentinel */
		int err = chunker_new(key, &cases[i].p, &c);

		assert_int_equal(chunker_params_check(&cases[i].p), cases[i].err);
		assert_int_equal(err, cases[i].err);
		if (err)
			assert_ptr_equal(c, (struct chunker *)&d);  /* untouched */
		else
			chunker_free(c);
	}
	assert_string_not_equal(chunker_params_strerror(-E2BIG),
				chunker_params_strerror(-EDOM));
	assert_string_not_equal(chunker_params_strerror(-EDOM),
				chunker_params_strerror(-ERANGE));
	assert_string_not_equal(chunker_params_strerror(-E2BIG),
				chunker_params_strerror(-ERANGE));
	assert_non_null(strstr(chunker_params_strerror(-EDOM), "power of two"));
	chunker_free(NULL);
}

static void test_empty_and_short_input(void **state)
{
	struct chunker *c = make(13, 1024, 4096, 16384);
	uint8_t b[100] = { 1, 2, 3 };
	bool cut = true;

	(void)state;
	assert_int_equal(chunker_find(c, b, 0, false), 0);
	assert_int_equal(chunker_find(c, b, 0, true), 0);
	assert_int_equal(chunker_find(c, NULL, 0, true), 0);
	/* shorter than min: undecided without eof, all of it with eof */
	assert_int_equal(chunker_find(c, b, sizeof(b), false), 0);
	assert_int_equal(chunker_find(c, b, sizeof(b), true), sizeof(b));
	assert_int_equal(chunker_find(c, b, 1, true), 1);
	assert_int_equal(chunker_update(c, b, 0, &cut), 0);
	assert_false(cut);
	assert_int_equal(chunker_pending(c), 0);
	assert_int_equal(chunker_update(c, b, sizeof(b), &cut), sizeof(b));
	assert_false(cut);
	assert_int_equal(chunker_pending(c), sizeof(b));
	chunker_reset(c);
	assert_int_equal(chunker_pending(c), 0);
	chunker_free(c);
}

int main(void)
{
	const char *env = getenv("CAIRNFS_TEST_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_key_and_bytes_give_same_boundaries),
		cmocka_unit_test(test_boundaries_do_not_depend_on_input_split),
		cmocka_unit_test(test_one_byte_insert_changes_at_most_two_chunks),
		cmocka_unit_test(test_sizes_within_bounds_and_average_near_target),
		cmocka_unit_test(test_constant_data_cuts_at_max),
		cmocka_unit_test(test_different_keys_give_different_boundaries),
		cmocka_unit_test(test_bad_params_give_distinct_codes),
		cmocka_unit_test(test_empty_and_short_input),
	};

	if (sodium_init() < 0)
		return 1;
	seed = env ? strtoull(env, NULL, 0) : randombytes_random();
	printf("# CAIRNFS_TEST_SEED=%" PRIu64 "\n", seed);
	return cmocka_run_group_tests_name("chunker", tests, NULL, NULL);
}
