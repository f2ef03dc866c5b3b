/*
 * test_packstore: pack files on disk: reopen, torn tails, damaged records,
 * checkpoints and verified ids, record list files
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

/* --- pack files ----------------------------------------------------------- */

/* Packed blocks, their deletes and a PUT after a delete all survive a
 * restart: the index comes back from the packs alone. */
static void test_packed_blocks_and_deletes_survive_reopen(void **state)
{
	struct fixture *f = *state;
	enum { N = 60 };
	uint8_t addr[N][32];
	struct store_stats s;

	store_set_pack_limit(f->st, 32 * 1024);   /* several packs */
	for (int i = 0; i < N; i++)
		put_small(f->st, 5000 + (unsigned long long)i, addr[i]);
	for (int i = 0; i < N; i += 3)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	put_small(f->st, 5000, addr[0]);            /* back after its delete */
	if (seed & 1)
		reopen(f);
	else
		crash_reopen(f);
	for (int i = 0; i < N; i++) {
		assert_int_equal(store_has(f->st, addr[i]), i == 0 || i % 3 ? 1 : 0);
		if (i == 0 || i % 3)
			expect_small(f->st, 5000 + (unsigned long long)i);
	}
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, N - N / 3 + 1);
	assert_int_equal(s.bytes, (N - N / 3 + 1) * SMALL);
	assert_true(s.packs >= 4);
	assert_int_equal(s.corrupt, 0);
}

/* The file of the newest pack, for tests that damage it. */
static void newest_pack(struct fixture *f, char *path, size_t len)
{
	uint8_t addr[32];
	uint64_t off;

	/* a fresh block lands in the newest pack */
	put_small(f->st, 999999, addr);
	assert_int_equal(store_block_locate(f->st, addr, path, len, &off), 0);
	assert_non_null(strstr(path, ".pack"));
}

/* A crash in the middle of appending leaves a record cut short at the
 * end of a pack: it was never acknowledged, and everything before it
 * stays. */
static void test_torn_pack_tail_loses_nothing_acknowledged(void **state)
{
	struct fixture *f = *state;
	uint8_t addr[20][32], more[5][32], hdr[PACK_REC_HEADER], b[SMALL];
	char path[512];
	struct stat sb;
	int fd;

	for (int i = 0; i < 20; i++)
		put_small(f->st, 6000 + (unsigned long long)i, addr[i]);
	newest_pack(f, path, sizeof(path));
	store_close(f->st);
	f->st = NULL;
	/* the torn record: a whole header, half its bytes */
	fill(b, sizeof(b), 6999);
	pack_rec_header(hdr, PACK_BLOCK, addr[0], b, sizeof(b));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(write(fd, b, sizeof(b) / 2), (ssize_t)sizeof(b) / 2);
	close(fd);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/packs/verified", f->dir);
	assert_int_equal(unlink(path), 0);      /* it was a crash */
	assert_int_equal(store_open(f->dir, &f->st), 0);
	for (int i = 0; i < 20; i++)
		expect_small(f->st, 6000 + (unsigned long long)i);
	/* and the store goes on: new blocks, another restart */
	for (int i = 0; i < 5; i++)
		put_small(f->st, 6100 + (unsigned long long)i, more[i]);
	reopen(f);
	for (int i = 0; i < 20; i++)
		expect_small(f->st, 6000 + (unsigned long long)i);
	for (int i = 0; i < 5; i++)
		expect_small(f->st, 6100 + (unsigned long long)i);
}

/* Damage inside a pack: the block whose bytes rotted is reported, never
 * returned; a record whose header rotted is lost on this daemon, and the
 * records after it are still found. */
static void test_damaged_pack_records_are_reported_and_skipped(void **state)
{
	struct fixture *f = *state;
	uint8_t a[32], b[32], c[32];
	uint8_t *got = NULL;
	size_t got_len = 0;
	char pa[512], pb[512];
	uint64_t oa, ob;
	struct store_stats s;

	put_small(f->st, 7001, a);
	put_small(f->st, 7002, b);
	put_small(f->st, 7003, c);
	assert_int_equal(store_block_locate(f->st, a, pa, sizeof(pa), &oa), 0);
	assert_int_equal(store_block_locate(f->st, b, pb, sizeof(pb), &ob), 0);
	assert_string_equal(pa, pb);
	flip_byte(pb, ob + 1234, 0x10);           /* one bit of b's bytes */
	assert_int_equal(store_get(f->st, b, &got, &got_len), -EBADMSG);
	assert_null(got);
	/* one bit of a's header (its address); the open after a crash reads
	 * the pack whole (a clean one reads its record list: see
	 * test_record_lists_are_read_at_open) */
	flip_byte(pa, oa - PACK_REC_HEADER + 20, 0x01);
	crash_reopen(f);
	assert_int_equal(store_has(f->st, a), 0);
	assert_int_equal(store_has(f->st, b), 0);
	expect_small(f->st, 7003);
	store_get_stats(f->st, &s);
	assert_int_equal(s.corrupt, 1);          /* b: its header still checks */
	assert_int_equal(s.blocks, 1);
	/* a PUT stores them again */
	put_small(f->st, 7001, a);
	put_small(f->st, 7002, b);
	expect_small(f->st, 7001);
	expect_small(f->st, 7002);
}

/* The id in packs/verified, and setting it (a crash leaves the one the
 * last open wrote). */
static unsigned verified_id(struct fixture *f)
{
	char path[128];
	unsigned v = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/packs/verified", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%u", &v), 1);
	fclose(fp);
	return v;
}

static void set_verified_id(struct fixture *f, unsigned v)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/packs/verified", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%u\n", v);
	fclose(fp);
}

/* The pack id in a path ".../NNNNNNNN.pack". */
static unsigned pack_id_of(const char *path)
{
	const char *p = strrchr(path, '/');

	assert_non_null(p);
	return (unsigned)strtoul(p + 1, NULL, 16);
}

/* A crash costs a full read of only the packs written since the last open:
 * a block there whose bytes are bad is dropped; one in a pack verified
 * before is read by its header only (its GET still reports it). */
static void test_crash_reads_only_packs_written_since_open(void **state)
{
	struct fixture *f = *state;
	uint8_t a[32], b[32];
	uint8_t *got = NULL;
	size_t got_len = 0;
	char pa[512], pb[512];
	uint64_t oa, ob;
	unsigned at_open;

	put_small(f->st, 7601, a);
	reopen(f);                       /* a's pack: verified at this open */
	at_open = verified_id(f);
	put_small(f->st, 7602, b);       /* a new pack, after it */
	assert_int_equal(store_block_locate(f->st, a, pa, sizeof(pa), &oa), 0);
	assert_int_equal(store_block_locate(f->st, b, pb, sizeof(pb), &ob), 0);
	assert_true(pack_id_of(pa) <= at_open);
	assert_true(pack_id_of(pb) > at_open);
	store_close(f->st);
	f->st = NULL;
	set_verified_id(f, at_open);     /* the close never happened */
	flip_byte(pa, oa + 7, 0x02);
	flip_byte(pb, ob + 7, 0x02);
	assert_int_equal(store_open(f->dir, &f->st), 0);
	assert_int_equal(store_has(f->st, a), 1);
	assert_int_equal(store_get(f->st, a, &got, &got_len), -EBADMSG);
	assert_int_equal(store_has(f->st, b), 0);
	/* and every pack there is verified now */
	assert_true(verified_id(f) >= pack_id_of(pb));
}

/* While it runs, the store moves packs/verified up past the packs it has
 * moved on from, so a crash after hours of writing reads only the newest
 * pack whole, not all written since the start. */
static void test_sealed_packs_are_verified_while_running(void **state)
{
	struct fixture *f = *state;
	uint8_t a[32], b[32];
	char pa[512], pb[512];
	uint64_t oa, ob;
	unsigned v = 0;

	store_set_pack_limit(f->st, 15400);         /* 5 records a pack */
	put_small(f->st, 7801, a);
	for (int i = 0; i < 12; i++) {              /* a's pack fills, and more */
		uint8_t x[32];

		put_small(f->st, 7810 + (unsigned long long)i, x);
	}
	put_small(f->st, 7802, b);
	assert_int_equal(store_block_locate(f->st, a, pa, sizeof(pa), &oa), 0);
	assert_int_equal(store_block_locate(f->st, b, pb, sizeof(pb), &ob), 0);
	for (int n = 0; n < 200 && v < pack_id_of(pa); n++) {
		usleep(10000);                      /* the tidier's turn */
		v = verified_id(f);
	}
	assert_true(v >= pack_id_of(pa));
	assert_true(v < pack_id_of(pb));            /* b's pack is written to */
	store_close(f->st);
	f->st = NULL;
	set_verified_id(f, v);                      /* a crash now */
	flip_byte(pa, oa + 3, 0x08);
	flip_byte(pb, ob + 3, 0x08);
	assert_int_equal(store_open(f->dir, &f->st), 0);
	assert_int_equal(store_has(f->st, a), 1);   /* header walk only */
	assert_int_equal(store_has(f->st, b), 0);   /* read whole, dropped */
}

/* Once compaction has removed every pack, new packs still take ids above
 * the verified one: a pack written after it is never taken for checked. */
static void test_new_packs_never_reuse_a_verified_id(void **state)
{
	struct fixture *f = *state;
	uint8_t x[32], y[32];
	char path[512];
	uint64_t off;
	struct store_stats s;
	unsigned v;

	put_small(f->st, 7701, x);
	assert_int_equal(store_delete(f->st, x), 0);
	reopen(f);
	compact_all(f->st);
	store_get_stats(f->st, &s);
	assert_int_equal(s.packs, 0);
	reopen(f);
	v = verified_id(f);
	assert_true(v >= 1);
	put_small(f->st, 7702, y);
	assert_int_equal(store_block_locate(f->st, y, path, sizeof(path), &off), 0);
	assert_true(pack_id_of(path) > v);
}

/* After a clean close an open reads the packs' headers only: a block whose
 * bytes rotted meanwhile is still listed, and its GET reports it. After a
 * crash the open reads everything, drops the bad record and wipes its
 * header, so that later clean opens do not list it again (a PUT of it
 * would otherwise be taken for a no-op). */
static void test_clean_open_reads_headers_crash_open_reads_all(void **state)
{
	struct fixture *f = *state;
	uint8_t b[32], c[32], *got = NULL;
	size_t got_len = 0;
	char path[512];
	uint64_t off;
	struct store_stats s;

	put_small(f->st, 7501, b);
	put_small(f->st, 7502, c);
	assert_int_equal(store_block_locate(f->st, b, path, sizeof(path), &off), 0);
	store_close(f->st);
	f->st = NULL;
	flip_byte(path, off + 99, 0x40);
	assert_int_equal(store_open(f->dir, &f->st), 0);
	assert_int_equal(store_has(f->st, b), 1);   /* bytes not read */
	assert_int_equal(store_get(f->st, b, &got, &got_len), -EBADMSG);
	crash_reopen(f);
	assert_int_equal(store_has(f->st, b), 0);
	store_get_stats(f->st, &s);
	assert_int_equal(s.corrupt, 1);
	expect_small(f->st, 7502);
	reopen(f);                                  /* clean again */
	assert_int_equal(store_has(f->st, b), 0);
	expect_small(f->st, 7502);
	put_small(f->st, 7501, b);                  /* stored again, really */
	reopen(f);
	expect_small(f->st, 7501);
	(void)c;
}

/* --- record list files (daemon/packidx.h) --------------------------------- */

/* The record list files in the store's packs dir, sorted, as full paths
 * (at most max); returns how many there are. */
static int idx_files(struct fixture *f, char (*out)[512], int max)
{
	char dir[128];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/packs", f->dir);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l < 4 || strcmp(e->d_name + l - 4, ".idx"))
			continue;
		assert_true(n < max);
		snprintf(out[n++], 512, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	qsort(out, (size_t)n, sizeof(*out), (int (*)(const void *, const void *))strcmp);
	return n;
}

static void expect_open_counts(struct fixture *f, uint64_t index,
			       uint64_t headers, uint64_t whole)
{
	struct store_stats s;

	store_get_stats(f->st, &s);
	assert_int_equal(s.packs_open_index, index);
	assert_int_equal(s.packs_open_headers, headers);
	assert_int_equal(s.packs_open_whole, whole);
}

/* The blocks of tags [base, base + n), every third deleted. */
static void expect_thirds(struct fixture *f, unsigned long long base, int n,
			  uint8_t (*addr)[32])
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(store_has(f->st, addr[i]), i % 3 ? 1 : 0);
		if (i % 3)
			expect_small(f->st, base + (unsigned long long)i);
	}
}

/* A store of N small blocks of tags [base, base + n) over several packs,
 * every third deleted, closed cleanly and opened again; its pack count,
 * which is also the number of list files it has. */
static uint64_t listed_store(struct fixture *f, unsigned long long base,
			     int n, uint8_t (*addr)[32])
{
	char lists[64][512];
	struct store_stats s;

	store_set_pack_limit(f->st, 32 * 1024);    /* several packs */
	for (int i = 0; i < n; i++)
		put_small(f->st, base + (unsigned long long)i, addr[i]);
	for (int i = 0; i < n; i += 3)
		assert_int_equal(store_delete(f->st, addr[i]), 0);
	reopen(f);
	store_get_stats(f->st, &s);
	assert_true(s.packs >= 4);
	assert_int_equal(idx_files(f, lists, 64), (int)s.packs);
	assert_int_equal(s.blocks, n - (n + 2) / 3);
	return s.packs;
}

/* After a clean close every pack has a record list file, and the next
 * open reads those instead of the packs; what it finds is what a walk of
 * the headers finds. Damage to a record's header after its pack was
 * listed goes unseen by the open, and its GET reports it. */
static void test_record_lists_are_read_at_open(void **state)
{
	struct fixture *f = *state;
	enum { N = 60 };
	uint8_t addr[N][32], *got = NULL;
	char lists[64][512], pa[512];
	size_t got_len = 0;
	struct store_stats s;
	uint64_t oa, packs;
	int n;

	packs = listed_store(f, 8000, N, addr);
	expect_open_counts(f, packs, 0, 0);
	expect_thirds(f, 8000, N, addr);

	assert_int_equal(store_block_locate(f->st, addr[1], pa, sizeof(pa), &oa), 0);
	store_close(f->st);
	f->st = NULL;
	flip_byte(pa, oa - PACK_REC_HEADER + 20, 0x01);   /* a's address */
	assert_int_equal(store_open(f->dir, &f->st), 0);
	expect_open_counts(f, packs, 0, 0);
	assert_int_equal(store_has(f->st, addr[1]), 1);
	assert_int_equal(store_get(f->st, addr[1], &got, &got_len), -EBADMSG);
	assert_null(got);

	/* Without the lists: the headers, and the damaged pack whole. */
	n = idx_files(f, lists, 64);
	for (int i = 0; i < n; i++)
		assert_int_equal(unlink(lists[i]), 0);
	reopen(f);
	expect_open_counts(f, 0, packs - 1, 1);
	assert_int_equal(store_has(f->st, addr[1]), 0);
	for (int i = 2; i < N; i++) {
		assert_int_equal(store_has(f->st, addr[i]), i % 3 ? 1 : 0);
		if (i % 3)
			expect_small(f->st, 8000 + (unsigned long long)i);
	}
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, N - N / 3 - 1);
	/* and they were written again */
	assert_int_equal(idx_files(f, lists, 64), (int)packs);
	reopen(f);
	expect_open_counts(f, packs, 0, 0);
	assert_int_equal(store_has(f->st, addr[1]), 0);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, N - N / 3 - 1);
}

/* A list file that does not check is not used: damaged, cut short, or one
 * of another pack. The open reads those packs' headers, finds every block,
 * and writes their lists again. */
static void test_bad_record_lists_are_ignored(void **state)
{
	struct fixture *f = *state;
	enum { N = 60 };
	uint8_t addr[N][32];
	char lists[64][512], cmd[1200];
	struct store_stats s;
	uint64_t packs;

	packs = listed_store(f, 8100, N, addr);
	assert_int_equal(idx_files(f, lists, 64), (int)packs);
	store_close(f->st);
	f->st = NULL;
	flip_byte(lists[0], 40, 0x04);           /* inside the first record */
	assert_int_equal(truncate(lists[1], 100), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", lists[3], lists[2]);
	assert_int_equal(system(cmd), 0);        /* another pack's */
	assert_int_equal(store_open(f->dir, &f->st), 0);
	expect_open_counts(f, packs - 3, 3, 0);
	expect_thirds(f, 8100, N, addr);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, N - N / 3);
	assert_int_equal(s.corrupt, 0);
	reopen(f);
	expect_open_counts(f, packs, 0, 0);
	expect_thirds(f, 8100, N, addr);
}

/* A pack gets its list once the store has moved on from it and checked
 * it, while running; the list goes when compaction removes the pack, and
 * lists without a pack (a crash between the two) go at the next open. */
static void test_record_lists_follow_their_packs(void **state)
{
	struct fixture *f = *state;
	enum { N = 13 };
	uint8_t addr[N][32];
	char pa[512], pn[512], la[512], ln[512], stray[3][512];
	uint64_t off;
	unsigned v = 0;

	store_set_pack_limit(f->st, 15400);      /* 5 records a pack */
	for (int i = 0; i < N; i++)
		put_small(f->st, 8200 + (unsigned long long)i, addr[i]);
	assert_int_equal(store_block_locate(f->st, addr[0], pa, sizeof(pa), &off), 0);
	assert_int_equal(store_block_locate(f->st, addr[N - 1], pn, sizeof(pn), &off), 0);
	idx_of_pack(pa, la, sizeof(la));
	idx_of_pack(pn, ln, sizeof(ln));
	for (int n = 0; n < 200 && (v < pack_id_of(pa) || !exists(la)); n++) {
		usleep(10000);                   /* the tidier's turn */
		v = verified_id(f);
	}
	assert_true(v >= pack_id_of(pa));
	assert_true(exists(la));
	assert_false(exists(ln));                /* still written to */

	/* every block of the first pack deleted: compaction removes it */
	for (int i = 0; i < N; i++) {
		char p[512];

		assert_int_equal(store_block_locate(f->st, addr[i], p, sizeof(p), &off), 0);
		if (!strcmp(p, pa))
			assert_int_equal(store_delete(f->st, addr[i]), 0);
	}
	compact_all(f->st);       /* the committer may have done it already */
	assert_false(exists(pa));
	assert_false(exists(la));

	snprintf(stray[0], 512, "%s/packs/0000abcd.idx", f->dir);
	snprintf(stray[1], 512, "%s/packs/%.8s.idx.tmp", f->dir, strrchr(pn, '/') + 1);
	snprintf(stray[2], 512, "%s/packs/notes.idx", f->dir);
	for (int i = 0; i < 3; i++) {
		FILE *fp = fopen(stray[i], "w");

		assert_non_null(fp);
		fputs("x\n", fp);
		fclose(fp);
	}
	reopen(f);
	assert_false(exists(stray[0]));
	assert_false(exists(stray[1]));
	assert_true(exists(stray[2]));           /* not a name we make */
	assert_true(exists(ln));                 /* the close listed it */
	for (int i = 0; i < N; i++)
		if (store_has(f->st, addr[i]))
			expect_small(f->st, 8200 + (unsigned long long)i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_packed_blocks_and_deletes_survive_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_pack_tail_loses_nothing_acknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_pack_records_are_reported_and_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_open_reads_headers_crash_open_reads_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_lists_are_read_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_record_lists_are_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_lists_follow_their_packs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_reads_only_packs_written_since_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_packs_never_reuse_a_verified_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sealed_packs_are_verified_while_running, setup, teardown),
	};

	if (storetest_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("packstore", tests, NULL, NULL);
}
