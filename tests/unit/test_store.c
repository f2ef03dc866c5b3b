/*
 * test_store: the block store's calls on a real temp directory: PUT, GET, HAS,
 * LIST, DELETE, blocks from before pack files, async and concurrent use
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

/*
 * A block file as a daemon from before pack files left it (they are still
 * read): DIR/blocks/SSSS/<hex address>, a 24-byte header (magic, u32
 * length, checksum: XXH3-128 for "CRB2", BLAKE2b-128 for "CRB1") and the
 * block. Its path goes to path.
 */
static void write_block_file(const char *dir, const uint8_t addr[32],
			     const char *magic, const void *b, size_t len,
			     char *path, size_t cap)
{
	uint8_t h[STORE_HEADER_BYTES];
	char hex[65];
	int fd;

	sodium_bin2hex(hex, sizeof(hex), addr, 32);
	snprintf(path, cap, "%s/blocks", dir);
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
	snprintf(path, cap, "%s/blocks/%04x", dir,
		 ((unsigned)addr[0] << 6) | ((unsigned)addr[1] >> 2));
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
	snprintf(path, cap, "%s/blocks/%04x/%s", dir,
		 ((unsigned)addr[0] << 6) | ((unsigned)addr[1] >> 2), hex);
	memcpy(h, magic, 4);
	for (int i = 0; i < 4; i++)
		h[4 + i] = (uint8_t)(len >> (8 * i));
	if (!memcmp(magic, "CRB1", 4)) {
		crypto_generichash(h + 8, STORE_SUM_BYTES, b, len, NULL, 0);
	} else {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits(b, len));
		memcpy(h + 8, c.digest, STORE_SUM_BYTES);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	assert_int_equal(pwrite(fd, b, len, sizeof(h)), (ssize_t)len);
	close(fd);
}

static void test_put_get_has_list_delete_round_trip(void **state)
{
	struct fixture *f = *state;
	enum { N = 20 };
	uint8_t addrs[N][32], *got;
	size_t got_len;
	struct store_stats s;

	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i * 997 + 1);
		uint8_t *b = malloc(len);

		fill(b, len, (unsigned long long)i);
		addr_for(addrs[i], b, len);
		/* put some into one slot so list has something to page */
		if (i % 2 == 0) {
			addrs[i][0] = 0x12;
			addrs[i][1] = 0x30;
		}
		assert_int_equal(store_has(f->st, addrs[i]), 0);
		assert_int_equal(store_put(f->st, addrs[i], b, len), 1);
		assert_int_equal(store_has(f->st, addrs[i]), 1);
		assert_int_equal(store_get(f->st, addrs[i], &got, &got_len), 0);
		assert_int_equal(got_len, len);
		assert_memory_equal(got, b, len);
		free(got);
		free(b);
	}
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, N);
	assert_int_equal(s.puts_new, N);

	/* slot 0x12<<6 | 0x30>>2 = 1164 holds the 10 even blocks: page by 3 */
	unsigned slot = (0x12u << 6) | (0x30u >> 2), total = 0;
	struct store_entry e[3];
	uint8_t after[32];
	bool more = true, have_after = false;

	while (more) {
		int n = store_list(f->st, slot, have_after ? after : NULL, e, 3,
				   &more);
		assert_true(n >= 0 && n <= 3);
		for (int i = 0; i < n; i++) {
			if (have_after || i)
				assert_true(memcmp(i ? e[i - 1].addr : after,
						   e[i].addr, 32) < 0);
		}
		if (n) {
			memcpy(after, e[n - 1].addr, 32);
			have_after = true;
		}
		total += (unsigned)n;
	}
	assert_int_equal(total, N / 2);

	assert_int_equal(store_delete(f->st, addrs[0]), 0);
	assert_int_equal(store_has(f->st, addrs[0]), 0);
	assert_int_equal(store_get(f->st, addrs[0], &got, &got_len), -ENOENT);
	assert_int_equal(store_delete(f->st, addrs[0]), -ENOENT);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, N - 1);
}

static void test_put_twice_is_a_noop(void **state)
{
	struct fixture *f = *state;
	uint8_t b[4096], other[4096], addr[32], *got;
	size_t got_len;
	struct store_stats s;

	fill(b, sizeof(b), 100);
	fill(other, sizeof(other), 101);
	addr_for(addr, b, sizeof(b));
	assert_int_equal(store_put(f->st, addr, b, sizeof(b)), 1);
	/* a second put of the address does not replace what is held */
	assert_int_equal(store_put(f->st, addr, other, sizeof(other)), 0);
	assert_int_equal(store_get(f->st, addr, &got, &got_len), 0);
	assert_memory_equal(got, b, sizeof(b));
	free(got);
	store_get_stats(f->st, &s);
	assert_int_equal(s.puts, 2);
	assert_int_equal(s.puts_new, 1);
	assert_int_equal(s.blocks, 1);
	assert_int_equal(s.bytes, sizeof(b));
}

/* A block file (from before packs) that fails its checksum, or was cut
 * short, is reported and never returned; large enough to be read with
 * O_DIRECT where the filesystem takes it. */
static void test_corrupt_block_file_is_reported_not_returned(void **state)
{
	struct fixture *f = *state;
	static uint8_t b[64 * 1024 + 10000];
	uint8_t addr[32], *got = NULL;
	size_t got_len = 0;
	char path[512];
	off_t off;
	struct store_stats s;

	fill(b, sizeof(b), 200);
	addr_for(addr, b, sizeof(b));
	write_block_file(f->dir, addr, "CRB2", b, sizeof(b), path, sizeof(path));
	reopen(f);
	assert_int_equal(store_get(f->st, addr, &got, &got_len), 0);
	assert_memory_equal(got, b, sizeof(b));
	free(got);
	got = NULL;
	off = STORE_HEADER_BYTES + (off_t)(seed % sizeof(b));
	flip_byte(path, off, 0x04);
	assert_int_equal(store_get(f->st, addr, &got, &got_len), -EBADMSG);
	assert_null(got);

	/* a truncated file is corrupt too */
	assert_int_equal(truncate(path, STORE_HEADER_BYTES + 10), 0);
	assert_int_equal(store_get(f->st, addr, &got, &got_len), -EBADMSG);
	store_get_stats(f->st, &s);
	assert_int_equal(s.corrupt, 2);
}

/* A block written in the first on-disk format (magic CRB1, BLAKE2b-128)
 * reads back, and still fails when damaged: the format change to XXH3
 * strands no data already stored. */
static void test_first_format_blocks_still_read(void **state)
{
	struct fixture *f = *state;
	uint8_t b[5000], addr[32], *got = NULL;
	size_t got_len = 0;
	char path[512], want[512];

	fill(b, sizeof(b), 250);
	addr_for(addr, b, sizeof(b));
	/* As a daemon of that format left it, a file of its own. */
	write_block_file(f->dir, addr, "CRB1", b, sizeof(b), path, sizeof(path));
	store_block_path(f->st, addr, want, sizeof(want));
	assert_string_equal(path, want);
	/* the daemon starts on that data dir */
	reopen(f);
	/* held: a PUT of it is a no-op, and HAS and LIST see it, once */
	assert_int_equal(store_has(f->st, addr), 1);
	assert_int_equal(store_put(f->st, addr, b, sizeof(b)), 0);
	{
		struct store_entry ent[4];
		bool more = true;

		assert_int_equal(store_list(f->st, ((unsigned)addr[0] << 6) |
						   ((unsigned)addr[1] >> 2),
					    NULL, ent, 4, &more), 1);
		assert_false(more);
		assert_memory_equal(ent[0].addr, addr, 32);
		assert_int_equal(ent[0].size, sizeof(b));
	}
	assert_int_equal(store_get(f->st, addr, &got, &got_len), 0);
	assert_int_equal(got_len, sizeof(b));
	assert_memory_equal(got, b, sizeof(b));
	free(got);
	got = NULL;

	/* the v1 checksum is really checked: one flipped byte fails */
	flip_byte(path, 8, 0x01);
	assert_int_equal(store_get(f->st, addr, &got, &got_len), -EBADMSG);
	assert_null(got);
}

/* Does this directory's filesystem take an aligned O_DIRECT read? */
static bool dir_takes_direct_io(const char *dir)
{
	char path[512];
	void *buf = NULL;
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/direct-probe", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	close(fd);
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		unlink(path);
		return false;
	}
	assert_int_equal(posix_memalign(&buf, 4096, 4096), 0);
	ok = read(fd, buf, 4096) == 4096;
	free(buf);
	close(fd);
	unlink(path);
	return ok;
}

/* Every new block goes to a pack file, whatever its size: nothing under
 * blocks/, which a data dir made since pack files does not have. */
static void test_blocks_of_every_size_are_packed(void **state)
{
	struct fixture *f = *state;
	static const size_t sizes[] = { 0, 1, 4095, 65536, 262144,
					4u << 20, (8u << 20) + 17 };
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	uint8_t addr[NS][32];
	char path[512];

	for (size_t i = 0; i < NS; i++) {
		uint8_t *b = malloc(sizes[i] + 1);
		uint64_t off;

		fill(b, sizes[i], 330 + (unsigned long long)i);
		addr_for(addr[i], b, sizes[i]);
		assert_int_equal(store_put(f->st, addr[i], b, sizes[i]), 1);
		assert_int_equal(store_block_locate(f->st, addr[i], path,
						    sizeof(path), &off), 0);
		assert_non_null(strstr(path, ".pack"));
		free(b);
	}
	snprintf(path, sizeof(path), "%s/blocks", f->dir);
	assert_int_equal(access(path, F_OK), -1);
	/* and each reads back after a restart, as after a crash too */
	for (int round = 0; round < 2; round++) {
		if (round)
			crash_reopen(f);
		else
			reopen(f);
		for (size_t i = 0; i < NS; i++)
			expect_block(f->st, addr[i], 330 + (unsigned long long)i,
				     sizes[i]);
	}
	/* one byte over the limit is refused, nothing stored */
	{
		struct store_stats s;
		uint8_t a[32] = { 1 };

		assert_int_equal(store_put(f->st, a, "", (size_t)STORE_MAX_BLOCK + 1),
				 -E2BIG);
		store_get_stats(f->st, &s);
		assert_int_equal(s.blocks, NS);
	}
}

/* Block files from before packs read back the same with O_DIRECT and
 * without: the sizes straddle every 4 KiB edge of header + block. */
static void test_block_files_read_direct_and_buffered(void **state)
{
	struct fixture *f = *state;
	/* 24-byte header + block: 69608 ends on a 4 KiB edge */
	static const size_t sizes[] = { 0, 4071, 65536, 69607, 69608, 69609,
					262144, 1048576 + 4072 };
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	bool direct = dir_takes_direct_io(f->dir);
	uint8_t addr[NS][32];
	char path[512];

	printf("# direct I/O on %s: %s\n", f->dir, direct ? "yes" : "refused");
	for (size_t i = 0; i < NS; i++) {
		uint8_t *b = malloc(sizes[i] + 1);

		fill(b, sizes[i], 300 + (unsigned long long)i);
		addr_for(addr[i], b, sizes[i]);
		write_block_file(f->dir, addr[i], "CRB2", b, sizes[i], path,
				 sizeof(path));
		free(b);
	}
	reopen(f);
	for (int mode = 0; mode < 2; mode++) {     /* 0 direct, 1 buffered */
		store_set_direct_io(f->st, mode == 0);
		for (size_t i = 0; i < NS; i++)
			expect_block(f->st, addr[i], 300 + (unsigned long long)i,
				     sizes[i]);
		/* where the filesystem takes O_DIRECT, the store kept it */
		if (mode == 0)
			assert_int_equal(store_direct_io(f->st), direct);
	}
}

struct async_count {
	pthread_mutex_t lock;
	int stored, held, failed;
};

static void async_done(void *arg, int result)
{
	struct async_count *c = arg;

	pthread_mutex_lock(&c->lock);
	if (result == 1)
		c->stored++;
	else if (result == 0)
		c->held++;
	else
		c->failed++;
	pthread_mutex_unlock(&c->lock);
}

/* Asynchronous PUTs, each block twice, all queued before any is durable:
 * every callback comes (by store_close at the latest), each block is stored
 * exactly once and the other PUT of it finds it held, and all read back. */
static void test_async_puts_answer_once_each(void **state)
{
	struct fixture *f = *state;
	enum { N = 100 };
	static uint8_t b[N][3000];
	uint8_t addrs[N][32], *got;
	size_t got_len;
	struct async_count c = { .lock = PTHREAD_MUTEX_INITIALIZER };

	for (int i = 0; i < N; i++) {
		fill(b[i], sizeof(b[i]), 1000u + (unsigned)i);
		addr_for(addrs[i], b[i], sizeof(b[i]));
	}
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < N; i++)
			assert_int_equal(store_put_async(f->st, addrs[i], b[i],
							 sizeof(b[i]), async_done, &c), 0);
	store_close(f->st);              /* answers everything queued first */
	assert_int_equal(c.stored, N);
	assert_int_equal(c.held, N);
	assert_int_equal(c.failed, 0);
	assert_int_equal(store_open(f->dir, &f->st), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(store_get(f->st, addrs[i], &got, &got_len), 0);
		assert_int_equal(got_len, sizeof(b[i]));
		assert_memory_equal(got, b[i], sizeof(b[i]));
		free(got);
	}
}

/* A data dir from before packs: open removes the temp files a crash left
 * beside its block files, keeps the blocks and counts them with the
 * packed ones. */
static void test_open_removes_temp_files_and_counts_blocks(void **state)
{
	struct fixture *f = *state;
	static uint8_t b[64 * 1024 + 300];
	uint8_t small[300], addr[32];
	char path[512], tmp[600];
	struct store_stats s;
	int fd;

	fill(small, sizeof(small), 301);
	addr_for(addr, small, sizeof(small));
	assert_int_equal(store_put(f->st, addr, small, sizeof(small)), 1);
	fill(b, sizeof(b), 300);
	addr_for(addr, b, sizeof(b));
	write_block_file(f->dir, addr, "CRB2", b, sizeof(b), path, sizeof(path));
	/* a crash mid-PUT left a temp file beside the blocks */
	snprintf(tmp, sizeof(tmp), "%.*s/.tmp-dead-1",
		 (int)(strrchr(path, '/') - path), path);
	fd = open(tmp, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "partial", 7), 7);
	close(fd);
	reopen(f);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(access(path, F_OK), 0);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, 2);
	assert_int_equal(s.bytes, sizeof(b) + sizeof(small));
	/* deleting the file is durable and counted */
	assert_int_equal(store_delete(f->st, addr), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(store_has(f->st, addr), 0);
	reopen(f);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, 1);
	assert_int_equal(s.bytes, sizeof(small));
}

struct worker {
	struct store *st;
	int id;
	int stored;
};

enum { THREADS = 4, PER_THREAD = 50 };

static void *put_worker(void *arg)
{
	struct worker *w = arg;
	uint8_t b[2048], addr[32];

	for (int i = 0; i < PER_THREAD; i++) {
		/* threads put overlapping sets: block i is put by every thread */
		fill(b, sizeof(b), 1000 + (unsigned long long)i);
		addr_for(addr, b, sizeof(b));
		if (store_put(w->st, addr, b, sizeof(b)) == 1)
			w->stored++;
		fill(b, sizeof(b), 100000 + (unsigned long long)(w->id * 1000 + i));
		addr_for(addr, b, sizeof(b));
		if (store_put(w->st, addr, b, sizeof(b)) == 1)
			w->stored++;
	}
	return NULL;
}

static void test_concurrent_puts_store_each_block_once(void **state)
{
	struct fixture *f = *state;
	pthread_t t[THREADS];
	struct worker w[THREADS];
	int stored = 0;
	struct store_stats s;

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .st = f->st, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, put_worker, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		stored += w[i].stored;
	}
	/* shared blocks stored once, private ones once each */
	assert_int_equal(stored, PER_THREAD + THREADS * PER_THREAD);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, PER_THREAD + THREADS * PER_THREAD);
	assert_int_equal(s.puts, 2 * THREADS * PER_THREAD);
	for (int i = 0; i < PER_THREAD; i++) {
		uint8_t b[2048], addr[32], *got;
		size_t len;

		fill(b, sizeof(b), 1000 + (unsigned long long)i);
		addr_for(addr, b, sizeof(b));
		assert_int_equal(store_get(f->st, addr, &got, &len), 0);
		assert_memory_equal(got, b, sizeof(b));
		free(got);
	}
}

/* Asynchronous DELETEs: unlinked at once (gone for GET and HAS before the
 * answer), each answered once with 0 after the committer's sync, counted;
 * an absent block is -ENOENT at once with no callback. */
static void test_async_deletes_answer_once_each(void **state)
{
	struct fixture *f = *state;
	enum { N = 40 };
	static uint8_t b[N][2000];
	uint8_t addrs[N][32], *got;
	size_t got_len;
	struct async_count c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct store_stats s;

	for (int i = 0; i < N; i++) {
		fill(b[i], sizeof(b[i]), 5000u + (unsigned)i);
		addr_for(addrs[i], b[i], sizeof(b[i]));
		assert_int_equal(store_put(f->st, addrs[i], b[i], sizeof(b[i])), 1);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(store_delete_async(f->st, addrs[i], async_done, &c), 0);
		assert_int_equal(store_has(f->st, addrs[i]), 0);
		assert_int_equal(store_get(f->st, addrs[i], &got, &got_len), -ENOENT);
		assert_int_equal(store_delete_async(f->st, addrs[i], async_done, &c),
				 -ENOENT);
	}
	store_close(f->st);              /* answers everything queued first */
	f->st = NULL;
	assert_int_equal(c.held, N);     /* result 0 each */
	assert_int_equal(c.stored + c.failed, 0);
	assert_int_equal(store_open(f->dir, &f->st), 0);
	store_get_stats(f->st, &s);
	assert_int_equal(s.blocks, 0);   /* durable: gone after reopening */
	for (int i = 0; i < N; i++)
		assert_int_equal(store_has(f->st, addrs[i]), 0);
}

/* store_get_buf hands out the block where it was read, inside its buffer. */
static void test_get_buf_points_into_its_buffer(void **state)
{
	struct fixture *f = *state;
	size_t sizes[] = { 4096, 300 * 1024 };

	for (int i = 0; i < 2; i++) {
		uint8_t *b = malloc(sizes[i]), addr[32], *buf;
		const uint8_t *data;
		size_t len;

		fill(b, sizes[i], 77 + (unsigned long long)i);
		addr_for(addr, b, sizes[i]);
		assert_int_equal(store_put(f->st, addr, b, sizes[i]), 1);
		assert_int_equal(store_get_buf(f->st, addr, &buf, &data, &len), 0);
		assert_int_equal(len, sizes[i]);
		/* after the pack record's header */
		assert_true(data >= buf && data <= buf + PACK_REC_HEADER);
		assert_memory_equal(data, b, len);
		free(buf);
		free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_has_list_delete_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_twice_is_a_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_block_file_is_reported_not_returned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_format_blocks_still_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocks_of_every_size_are_packed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_files_read_direct_and_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_puts_answer_once_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_removes_temp_files_and_counts_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_puts_store_each_block_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_buf_points_into_its_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_deletes_answer_once_each, setup, teardown),
	};

	if (storetest_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
