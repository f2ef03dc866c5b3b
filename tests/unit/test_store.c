/*
 * test_store: the block store on a real temp directory.
 *
 * Block contents and addresses come from a seed (printed; replay with
 * CAIRNFS_TEST_SEED).
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

static unsigned long long seed;

struct fixture {
	char dir[64];
	struct store *st;
};

static void fill(void *buf, size_t len, unsigned long long tag)
{
	uint8_t key[crypto_stream_chacha20_KEYBYTES] = {0};
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};

	memcpy(key, &seed, sizeof(seed));
	memcpy(nonce, &tag, sizeof(tag));
	crypto_stream_chacha20(buf, len, nonce, key);
}

static void addr_for(uint8_t addr[32], const void *data, size_t len)
{
	crypto_generichash(addr, 32, data, len, NULL, 0);
}

/* The block of tag, len bytes, reads back whole at addr. */
static void expect_block(struct store *st, const uint8_t addr[32],
			 unsigned long long tag, size_t len)
{
	uint8_t *b = malloc(len + 1), *got = NULL;
	size_t got_len = 0;

	assert_non_null(b);
	fill(b, len, tag);
	assert_int_equal(store_get(st, addr, &got, &got_len), 0);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, b, len);
	free(got);
	free(b);
}

/* Flip the bits of mask in the byte at off of the file at path: damage
 * on disk, for the tests that look for it. */
static void flip_byte(const char *path, uint64_t off, uint8_t mask)
{
	uint8_t byte;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, (off_t)off), 1);
	byte ^= mask;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)off), 1);
	close(fd);
}

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

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, &f->st), 0);
	*state = f;
	return 0;
}

static void reopen(struct fixture *f)
{
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->dir, &f->st), 0);
}

/* A restart as after a crash in a run that wrote every pack there: none is
 * verified (packs/verified gone), so the open reads every byte of each. */
static void crash_reopen(struct fixture *f)
{
	char mark[128];

	store_close(f->st);
	f->st = NULL;
	snprintf(mark, sizeof(mark), "%s/packs/verified", f->dir);
	assert_int_equal(unlink(mark), 0);
	assert_int_equal(store_open(f->dir, &f->st), 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
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


/* --- pack files ----------------------------------------------------------- */

enum { SMALL = 3000 };          /* a record of 3072 bytes */

static void put_small(struct store *st, unsigned long long tag, uint8_t addr[32])
{
	uint8_t b[SMALL];

	fill(b, sizeof(b), tag);
	addr_for(addr, b, sizeof(b));
	assert_int_equal(store_put(st, addr, b, sizeof(b)), 1);
}

/* The block of tag reads back whole. */
static void expect_small(struct store *st, unsigned long long tag)
{
	uint8_t b[SMALL], addr[32], *got = NULL;
	size_t got_len = 0;

	fill(b, sizeof(b), tag);
	addr_for(addr, b, sizeof(b));
	assert_int_equal(store_get(st, addr, &got, &got_len), 0);
	assert_int_equal(got_len, sizeof(b));
	assert_memory_equal(got, b, sizeof(b));
	free(got);
}

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

/* Compact until nothing is left to do. */
static int compact_all(struct store *st)
{
	int n = 0, r;

	while ((r = store_compact(st)) == 1)
		n++;
	assert_int_equal(r, 0);
	return n;
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

/* The list file a pack file would have. */
static void idx_of_pack(const char *pack, char *out, size_t len)
{
	const char *dot = strrchr(pack, '.');

	assert_non_null(dot);
	snprintf(out, len, "%.*s.idx", (int)(dot - pack), pack);
}

static bool exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
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
	const char *env = getenv("CAIRNFS_TEST_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_has_list_delete_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_twice_is_a_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_block_file_is_reported_not_returned, setup, teardown),
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
		cmocka_unit_test_setup_teardown(test_compaction_frees_dead_packs_and_keeps_live_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_reads_only_live_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tidier_lets_dying_packs_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_keeps_deleted_blocks_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_after_delete_survives_a_moved_tombstone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_put_delete_get_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_format_blocks_still_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocks_of_every_size_are_packed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_files_read_direct_and_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_puts_answer_once_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_removes_temp_files_and_counts_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_puts_store_each_block_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_buf_points_into_its_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_deletes_answer_once_each, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	seed = env ? strtoull(env, NULL, 0) : randombytes_random();
	printf("# CAIRNFS_TEST_SEED=%llu\n", seed);
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
