/*
 * test_compaction: compaction: what it reads, copies and keeps, settling,
 * tombstones, and a storm of concurrent calls
 * (helpers and fixture: storetest.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <xxhash.h>

#include "daemon/pack.h"
#include "daemon/store.h"
#include "tests/unit/storetest.h"

/* Deleting most blocks makes packs mostly dead; compaction copies what
 * lives forward, removes the old packs, and the space comes back. */
static void test_compaction_frees_dead_packs_and_keeps_live_blocks(void **state)
{
	struct fixture *f = *state;
	enum { N = 120 };
	uint8_t addr[N][32];
	struct store_stats before, after;

	store_set_pack_limit(f->st, 64 * 1024);     /* 20 records a pack */
	for (int i = 0; i < N; i++)
		put_small(f->st, 8000 + (unsigned long long)i, addr[i]);
	store_get_stats(f->st, &before);
	assert_true(before.packs >= 6);
	/* the committer compacts by itself when idle; compact_all finishes */
	for (int i = 0; i < N; i++)
		if (i % 5)
			assert_int_equal(store_delete(f->st, addr[i]), 0);
	compact_all(f->st);
	store_get_stats(f->st, &after);
	printf("# packs %" PRIu64 " -> %" PRIu64 ", bytes %" PRIu64 " -> %" PRIu64
	       ", compactions %" PRIu64 "\n", before.packs, after.packs,
	       before.pack_bytes, after.pack_bytes, after.compactions);
	assert_true(after.compactions >= 5);
	assert_true(after.pack_bytes * 2 < before.pack_bytes);
	assert_true(after.packs <= 3);
	assert_int_equal(after.blocks, N / 5);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < N; i++) {
			assert_int_equal(store_has(f->st, addr[i]), i % 5 ? 0 : 1);
			if (!(i % 5))
				expect_small(f->st, 8000 + (unsigned long long)i);
		}
		reopen(f);                       /* the same after a restart */
	}
}

/* The compaction bytes read since stats were last taken into *s. */
static uint64_t compact_read_since(struct fixture *f, struct store_stats *s)
{
	uint64_t before = s->compact_read;

	store_get_stats(f->st, s);
	return s->compact_read - before;
}

/*
 * A listed pack is compacted from its list: only the records still live
 * are read, and a pack whose every block was deleted costs no read at all.
 * Without its list a pack is read whole, as before. A live record found
 * damaged on the way is not copied (its block is lost, as with a whole
 * read), and the rest are.
 */
static void test_compaction_reads_only_live_records(void **state)
{
	struct fixture *f = *state;
	enum { PACKS = 4, PER = 5, N = PACKS * PER };
	const uint64_t rec = PACK_REC_HEADER + SMALL;   /* read per record */
	uint8_t addr[N][32];
	char pack[PACKS][512], list[512], p[512];
	struct store_stats s;
	uint64_t off, read, damaged_off = 0;

	store_set_pack_limit(f->st, 15400);       /* 5 records a pack */
	for (int i = 0; i < N; i++)
		put_small(f->st, 9500 + (unsigned long long)i, addr[i]);
	reopen(f);                                /* every pack listed */
	for (int k = 0; k < PACKS; k++) {
		assert_int_equal(store_block_locate(f->st, addr[k * PER], pack[k],
						    512, &off), 0);
		for (int i = 1; i < PER; i++) {
			assert_int_equal(store_block_locate(f->st, addr[k * PER + i],
							    p, sizeof(p), &off), 0);
			assert_string_equal(p, pack[k]);   /* the layout meant */
		}
		idx_of_pack(pack[k], list, sizeof(list));
		assert_true(exists(list));
	}
	store_get_stats(f->st, &s);
	assert_int_equal(s.compact_read, 0);

	/* pack 0 all deleted, pack 1 three of five: at most the records
	 * live when a compaction began are read (the tidier may start one
	 * once three of a pack's five are gone) */
	for (int i = 0; i < PER + 3; i++)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	compact_all(f->st);
	read = compact_read_since(f, &s);
	printf("# listed: compaction read %" PRIu64 " bytes\n", read);
	assert_true(read >= 2 * rec);             /* pack 1's two live ones */
	assert_true(read <= 4 * rec);
	assert_false(exists(pack[0]));
	assert_false(exists(pack[1]));

	/* pack 2 without its list: read whole */
	idx_of_pack(pack[2], list, sizeof(list));
	assert_int_equal(unlink(list), 0);
	for (int i = 2 * PER; i < 2 * PER + 3; i++)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	compact_all(f->st);
	read = compact_read_since(f, &s);
	assert_true(read >= PER * rec);
	assert_false(exists(pack[2]));

	/* pack 3: one of its two live records damaged on disk */
	assert_int_equal(store_block_locate(f->st, addr[3 * PER + 3], p,
					    sizeof(p), &damaged_off), 0);
	flip_byte(p, damaged_off + 100, 0x10);
	for (int i = 3 * PER; i < 3 * PER + 3; i++)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	compact_all(f->st);
	read = compact_read_since(f, &s);
	assert_true(read >= 2 * rec && read <= 4 * rec);
	assert_false(exists(pack[3]));

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < N; i++) {
			bool live = i >= PER && i % PER >= 3 && i != 3 * PER + 3;

			assert_int_equal(store_has(f->st, addr[i]), live);
			if (live)
				expect_small(f->st, 9500 + (unsigned long long)i);
		}
		store_get_stats(f->st, &s);
		assert_int_equal(s.blocks, 2 + 2 + 1);
		reopen(f);                       /* the same after a restart */
	}
}

/* Wait up to 10 s for the tidier to have made `want` compactions in all. */
static void await_compactions(struct fixture *f, uint64_t want,
			      struct store_stats *s)
{
	for (int n = 0; n < 1000; n++) {
		store_get_stats(f->st, s);
		if (s->compactions >= want)
			return;
		usleep(10000);
	}
	fail_msg("the tidier made %" PRIu64 " compactions, not %" PRIu64,
		 s->compactions, want);
}

/*
 * The tidier leaves a pack that is still losing blocks alone for a while
 * (a large file's delete kills its packs in order: compacted halfway, the
 * rest of a pack would be copied only to be deleted), then compacts it by
 * itself with no new batch to wake it. A pack whose every block is gone
 * goes at once, and costs no read.
 */
static void test_tidier_lets_dying_packs_settle(void **state)
{
	struct fixture *f = *state;
	enum { PER = 5, N = 2 * PER };
	uint8_t addr[N][32];
	char a[512], b[512];
	struct store_stats s;
	uint64_t off, c0;

	store_set_pack_limit(f->st, 15400);       /* 5 records a pack */
	for (int i = 0; i < N; i++)
		put_small(f->st, 9700 + (unsigned long long)i, addr[i]);
	reopen(f);
	assert_int_equal(store_block_locate(f->st, addr[0], a, sizeof(a), &off), 0);
	assert_int_equal(store_block_locate(f->st, addr[PER], b, sizeof(b), &off), 0);
	assert_string_not_equal(a, b);
	store_get_stats(f->st, &s);
	c0 = s.compactions;

	/* three of pack a's five: more than half dead, still dying */
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	usleep(300 * 1000);
	store_get_stats(f->st, &s);
	assert_int_equal(s.compactions, c0);
	assert_true(exists(a));

	/* all of pack b's: removed at once, unread */
	for (int i = PER; i < N; i++)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	await_compactions(f, c0 + 1, &s);
	assert_false(exists(b));
	assert_true(exists(a));
	assert_int_equal(s.compact_read, 0);

	/* pack a, settled, goes without another batch; its two live blocks
	 * were read and copied */
	await_compactions(f, c0 + 2, &s);
	assert_false(exists(a));
	assert_int_equal(s.compact_read, 2 * (PACK_REC_HEADER + SMALL));
	for (int i = 3; i < PER; i++)
		expect_small(f->st, 9700 + (unsigned long long)i);
}

/* A DELETE's tombstone outlives compaction while an older pack still
 * holds the block, so the block does not come back at the next start; and
 * a block PUT again after its DELETE, into a later pack, is not killed by
 * that tombstone when the tombstone is copied forward past it. */
static void test_compaction_keeps_deleted_blocks_deleted(void **state)
{
	struct fixture *f = *state;
	uint8_t x[32], y[32], k[5][32], j[3][32];
	char px[512], pk[512], py[512], py2[512];
	uint64_t off;
	struct store_stats s;

	/* 16 + 5 x 3072 fits, and not one record more */
	store_set_pack_limit(f->st, 15400);
	put_small(f->st, 9000, x);                  /* pack A: x k0..k3 */
	for (int i = 0; i < 4; i++)
		put_small(f->st, 9100 + (unsigned long long)i, k[i]);
	assert_int_equal(store_delete(f->st, x), 0); /* pack B: T(x) */
	put_small(f->st, 9200, y);                  /* B: y */
	assert_int_equal(store_block_locate(f->st, y, py, sizeof(py), &off), 0);
	assert_int_equal(store_delete(f->st, y), 0); /* B: T(y) */
	for (int i = 0; i < 3; i++)                 /* B: j0..j2, now full */
		put_small(f->st, 9300 + (unsigned long long)i, j[i]);
	put_small(f->st, 9200, y);                  /* pack C: y again */
	put_small(f->st, 9104, k[4]);               /* C: k4 */
	assert_int_equal(store_block_locate(f->st, x, px, sizeof(px), &off), -ENOENT);
	assert_int_equal(store_block_locate(f->st, k[0], pk, sizeof(pk), &off), 0);
	assert_int_equal(store_block_locate(f->st, y, py2, sizeof(py2), &off), 0);
	assert_string_not_equal(pk, py);            /* the layout meant above */
	assert_string_not_equal(py, py2);
	for (int i = 0; i < 3; i++)                 /* B is now all dead but
						     * its tombstones */
		assert_int_equal(store_delete(f->st, j[i]), 0);
	compact_all(f->st);              /* the committer may have begun */
	store_get_stats(f->st, &s);
	assert_true(s.compactions >= 1);
	for (int pass = 0; pass < 2; pass++) {
		/* B is gone, A still holds x's record: T(x) must live on */
		assert_int_equal(store_has(f->st, x), 0);
		/* T(y) must not kill the y stored after it */
		expect_small(f->st, 9200);
		for (int i = 0; i < 5; i++)
			expect_small(f->st, 9100 + (unsigned long long)i);
		for (int i = 0; i < 3; i++)
			assert_int_equal(store_has(f->st, j[i]), 0);
		reopen(f);
		compact_all(f->st);
	}
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, 6);
}

/* A block PUT again after its DELETE while its first record still sits in
 * an older pack: when compaction moves the DELETE's tombstone past the new
 * record, a restart must keep the new one (the later record of an address
 * stands; the tombstone kills only what came before the DELETE). */
static void test_put_after_delete_survives_a_moved_tombstone(void **state)
{
	struct fixture *f = *state;
	uint8_t x[32], k[5][32], j[4][32];
	char p1[512], p2[512], p3[512];
	uint64_t off;

	store_set_pack_limit(f->st, 15400);         /* 5 records a pack */
	put_small(f->st, 9500, x);                  /* P1: x k0..k3 */
	for (int i = 0; i < 4; i++)
		put_small(f->st, 9600 + (unsigned long long)i, k[i]);
	assert_int_equal(store_block_locate(f->st, x, p1, sizeof(p1), &off), 0);
	assert_int_equal(store_delete(f->st, x), 0); /* P2: T(x) */
	for (int i = 0; i < 4; i++)                 /* P2: j0..j3, full */
		put_small(f->st, 9700 + (unsigned long long)i, j[i]);
	assert_int_equal(store_block_locate(f->st, j[0], p2, sizeof(p2), &off), 0);
	put_small(f->st, 9500, x);                  /* P3: x again */
	put_small(f->st, 9604, k[4]);               /* P3: k4 */
	assert_int_equal(store_block_locate(f->st, x, p3, sizeof(p3), &off), 0);
	assert_string_not_equal(p1, p2);
	assert_string_not_equal(p2, p3);
	for (int i = 0; i < 4; i++)                 /* P2 dead but T(x) */
		assert_int_equal(store_delete(f->st, j[i]), 0);
	compact_all(f->st);              /* T(x) now lies after x in P3 */
	assert_int_equal(access(p2, F_OK), -1);
	for (int pass = 0; pass < 3; pass++) {
		expect_small(f->st, 9500);
		for (int i = 0; i < 5; i++)
			expect_small(f->st, 9600 + (unsigned long long)i);
		if (pass == 0)
			reopen(f);
		else
			crash_reopen(f);
	}
}

/* Threads PUT, DELETE, GET and compact at once over a store that starts a
 * pack every 5 records, so that compaction moves blocks under their feet
 * all the time. Each thread owns its own addresses, so it knows what each
 * call must answer; after the storm a clean and a crash restart must show
 * exactly the blocks that stand. */
enum { STORM_THREADS = 4, STORM_ADDRS = 40, STORM_OPS = 1500 };

struct storm {
	struct store *st;
	int id;
	bool held[STORM_ADDRS];
	unsigned long long gen[STORM_ADDRS];   /* which content it holds */
	int failures;
};

static unsigned long long storm_tag(int id, int i, unsigned long long gen)
{
	return 1000000ull * (unsigned long long)(id + 1) + 1000ull * gen +
	       (unsigned long long)i;
}

static void *storm_main(void *arg)
{
	struct storm *w = arg;
	unsigned long long rnd = seed * 7919 + (unsigned long long)w->id * 104729 + 1;

	for (int op = 0; op < STORM_OPS && !w->failures; op++) {
		uint8_t b[SMALL], addr[32], *got = NULL;
		size_t got_len = 0;
		unsigned long long tag;
		int i, r, kind;

		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		i = (int)((rnd >> 33) % STORM_ADDRS);
		kind = (int)((rnd >> 20) % 16);
		/* slot i holds generation gen[i] of its bytes: a new
		 * generation is another address */
		tag = storm_tag(w->id, i, w->gen[i]);
		fill(b, sizeof(b), tag);
		addr_for(addr, b, sizeof(b));
		if (kind < 6) {
			r = store_put(w->st, addr, b, sizeof(b));
			if (r != (w->held[i] ? 0 : 1))
				w->failures++;
			w->held[i] = true;
		} else if (kind < 10) {
			r = store_delete(w->st, addr);
			if (r != (w->held[i] ? 0 : -ENOENT))
				w->failures++;
			/* half the time the same bytes come back later: a PUT
			 * after a DELETE of one address, compaction between */
			if (w->held[i] && (rnd >> 40) & 1)
				w->gen[i]++;
			w->held[i] = false;
		} else if (kind < 15) {
			r = store_get(w->st, addr, &got, &got_len);
			if (w->held[i] ? r != 0 || got_len != sizeof(b) ||
					 memcmp(got, b, sizeof(b))
				       : r != -ENOENT)
				w->failures++;
			free(got);
		} else {
			if (store_compact(w->st) < 0)
				w->failures++;
		}
	}
	return NULL;
}

static void storm_check(struct fixture *f, struct storm *w)
{
	for (int t = 0; t < STORM_THREADS; t++)
		for (int i = 0; i < STORM_ADDRS; i++) {
			uint8_t b[SMALL], addr[32];

			fill(b, sizeof(b), storm_tag(t, i, w[t].gen[i]));
			addr_for(addr, b, sizeof(b));
			assert_int_equal(store_has(f->st, addr), w[t].held[i] ? 1 : 0);
			if (w[t].held[i])
				expect_small(f->st, storm_tag(t, i, w[t].gen[i]));
			if (w[t].gen[i]) {       /* the one before: deleted */
				fill(b, sizeof(b), storm_tag(t, i, w[t].gen[i] - 1));
				addr_for(addr, b, sizeof(b));
				assert_int_equal(store_has(f->st, addr), 0);
			}
		}
}

static void test_concurrent_put_delete_get_compact(void **state)
{
	struct fixture *f = *state;
	struct storm w[STORM_THREADS];
	pthread_t th[STORM_THREADS];
	struct store_stats s;

	memset(w, 0, sizeof(w));
	store_set_pack_limit(f->st, 16 * 1024);
	for (int t = 0; t < STORM_THREADS; t++) {
		w[t].st = f->st;
		w[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, storm_main, &w[t]), 0);
	}
	for (int t = 0; t < STORM_THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].failures, 0);
	}
	store_get_stats(f->st, &s);
	printf("# storm: %" PRIu64 " compactions, %" PRIu64 " packs, %" PRIu64
	       " blocks\n", s.compactions, s.packs, s.blocks);
	assert_true(s.compactions >= 10);
	printf("# live\n");
	storm_check(f, w);
	printf("# clean reopen\n");
	reopen(f);
	storm_check(f, w);
	printf("# crash reopen\n");
	crash_reopen(f);
	storm_check(f, w);
	compact_all(f->st);
	crash_reopen(f);
	storm_check(f, w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compaction_frees_dead_packs_and_keeps_live_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_reads_only_live_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tidier_lets_dying_packs_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_keeps_deleted_blocks_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_after_delete_survives_a_moved_tombstone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_put_delete_get_compact, setup, teardown),
	};

	if (storetest_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("compaction", tests, NULL, NULL);
}
