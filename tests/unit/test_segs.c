/*
 * test_segs: the buffered-write lists of fs/segs.h against a plain byte
 * array that applies the same writes (the model): newest bytes win, the
 * list stays sorted and non-overlapping, the byte count is exact, and
 * truncate, copy_range and merge_under keep the same picture.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs/segs.h"

#define SPAN 4096

struct model {
	uint8_t byte[SPAN];
	uint8_t set[SPAN];
};

static void model_write(struct model *m, uint64_t off, const uint8_t *d, size_t len)
{
	memcpy(m->byte + off, d, len);
	memset(m->set + off, 1, len);
}

/* The list is sorted, non-overlapping, and holds exactly the model's bytes. */
static void check(const struct seg *head, const struct model *m)
{
	uint8_t got[SPAN], have[SPAN] = { 0 };
	size_t n = 0, want = 0;
	uint64_t prev_end = 0;

	memset(got, 0xEE, sizeof(got));
	for (const struct seg *s = head; s; s = s->next) {
		assert_true(s->len > 0);
		assert_true(s->off >= prev_end);
		prev_end = s->off + s->len;
		memset(have + s->off, 1, s->len);
		n += s->len;
	}
	seg_overlay(head, got, 0, SPAN);
	for (size_t i = 0; i < SPAN; i++) {
		assert_int_equal(have[i], m->set[i]);
		if (m->set[i]) {
			assert_int_equal(got[i], m->byte[i]);
			want++;
		} else {
			assert_int_equal(got[i], 0xEE);   /* overlay leaves gaps */
		}
	}
	assert_int_equal(n, want);
}

static size_t total(const struct seg *s)
{
	size_t n = 0;

	for (; s; s = s->next)
		n += s->len;
	return n;
}

static void random_writes_newest_wins(void **state)
{
	struct seg *head = NULL;
	struct model m = { 0 };
	uint8_t d[512];
	ssize_t bytes = 0;

	(void)state;
	srand(7);
	for (int i = 0; i < 2000; i++) {
		uint64_t off = (uint64_t)(rand() % (SPAN - 1));
		size_t len = 1 + (size_t)rand() % (i % 3 ? 64 : 512);
		ssize_t g;

		if (off + len > SPAN)
			len = SPAN - off;
		for (size_t k = 0; k < len; k++)
			d[k] = (uint8_t)rand();
		g = seg_insert(&head, off, d, len);
		assert_true(g >= 0);
		bytes += g;
		model_write(&m, off, d, len);
		assert_int_equal((size_t)bytes, total(head));
	}
	check(head, &m);
	seg_free_list(head);
}

static void truncate_drops_the_tail(void **state)
{
	struct seg *head = NULL;
	struct model m = { 0 };
	uint8_t d[1000];

	(void)state;
	memset(d, 'a', sizeof(d));
	assert_true(seg_insert(&head, 0, d, 1000) == 1000);
	assert_true(seg_insert(&head, 2000, d, 1000) == 1000);
	model_write(&m, 0, d, 1000);
	model_write(&m, 2000, d, 1000);
	assert_int_equal(seg_truncate(&head, 2500), 500);
	memset(m.set + 2500, 0, SPAN - 2500);
	check(head, &m);
	assert_int_equal(seg_truncate(&head, 100), 1400);
	memset(m.set + 100, 0, SPAN - 100);
	check(head, &m);
	seg_free_list(head);
}

static void copy_range_takes_only_the_range(void **state)
{
	struct seg *head = NULL, *out = NULL;
	struct model m = { 0 };
	uint8_t d[3000];

	(void)state;
	for (size_t k = 0; k < sizeof(d); k++)
		d[k] = (uint8_t)(k * 13);
	assert_true(seg_insert(&head, 100, d, 3000) == 3000);
	assert_int_equal(seg_copy_range(head, 1000, 2000, &out), 0);
	model_write(&m, 1000, d + 900, 1000);
	check(out, &m);
	seg_free_list(out);
	seg_free_list(head);
}

static void merge_under_keeps_newer_bytes(void **state)
{
	struct seg *dirty = NULL, *back = NULL;
	struct model m = { 0 };
	uint8_t old[2048], newer[600];
	size_t n;

	(void)state;
	memset(old, 'o', sizeof(old));
	memset(newer, 'n', sizeof(newer));
	/* back: what a flush gave back (older); dirty: written meanwhile */
	assert_true(seg_insert(&back, 0, old, 2048) == 2048);
	model_write(&m, 0, old, 2048);
	assert_true(seg_insert(&dirty, 500, newer, 600) == 600);
	assert_true(seg_insert(&dirty, 3000, newer, 600) == 600);
	model_write(&m, 500, newer, 600);
	model_write(&m, 3000, newer, 600);
	n = seg_merge_under(&dirty, back);
	check(dirty, &m);
	assert_int_equal(n, total(dirty));
	seg_free_list(dirty);
}

/* Random older and newer lists, every way of overlapping: a newer seg
 * inside one older seg, over several, at either end, or clear of them. */
static void merge_under_random_lists_match_the_model(void **state)
{
	uint8_t data[4096];

	(void)state;
	for (size_t k = 0; k < sizeof(data); k++)
		data[k] = (uint8_t)(k * 7 + 3);
	srand(4242);
	for (int round = 0; round < 2000; round++) {
		struct seg *dirty = NULL, *back = NULL;
		struct model m = { 0 };
		int nb = rand() % 5, nd = rand() % 5;
		size_t n;

		for (int i = 0; i < nb; i++) {
			uint64_t off = (uint64_t)(rand() % 2500);
			size_t len = 1 + (size_t)(rand() % 1500);

			assert_true(seg_insert(&back, off, data + (rand() % 2000), len) >= 0);
		}
		/* the model sees back first, then the newer writes on top */
		for (const struct seg *s = back; s; s = s->next)
			model_write(&m, s->off, s->buf, s->len);
		for (int i = 0; i < nd; i++) {
			uint64_t off = (uint64_t)(rand() % 2500);
			size_t len = 1 + (size_t)(rand() % 1500);
			const uint8_t *src = data + 2000 + (rand() % 500);

			assert_true(seg_insert(&dirty, off, src, len) >= 0);
			model_write(&m, off, src, len);
		}
		n = seg_merge_under(&dirty, back);
		assert_int_equal(n, total(dirty));
		check(dirty, &m);
		seg_free_list(dirty);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_writes_newest_wins),
		cmocka_unit_test(truncate_drops_the_tail),
		cmocka_unit_test(copy_range_takes_only_the_range),
		cmocka_unit_test(merge_under_keeps_newer_bytes),
		cmocka_unit_test(merge_under_random_lists_match_the_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
