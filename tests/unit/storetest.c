/*
 * storetest: the fixture and helpers the block store tests share
 * (test_store, test_packstore, test_compaction; storetest.h).
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

unsigned long long seed;

void fill(void *buf, size_t len, unsigned long long tag)
{
	uint8_t key[crypto_stream_chacha20_KEYBYTES] = {0};
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};

	memcpy(key, &seed, sizeof(seed));
	memcpy(nonce, &tag, sizeof(tag));
	crypto_stream_chacha20(buf, len, nonce, key);
}

void addr_for(uint8_t addr[32], const void *data, size_t len)
{
	crypto_generichash(addr, 32, data, len, NULL, 0);
}

/* The block of tag, len bytes, reads back whole at addr. */
void expect_block(struct store *st, const uint8_t addr[32],
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
void flip_byte(const char *path, uint64_t off, uint8_t mask)
{
	uint8_t byte;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, (off_t)off), 1);
	byte ^= mask;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)off), 1);
	close(fd);
}

int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(f->dir, &f->st), 0);
	*state = f;
	return 0;
}

void reopen(struct fixture *f)
{
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->dir, &f->st), 0);
}

/* A restart as after a crash in a run that wrote every pack there: none is
 * verified (packs/verified gone), so the open reads every byte of each. */
void crash_reopen(struct fixture *f)
{
	char mark[128];

	store_close(f->st);
	f->st = NULL;
	snprintf(mark, sizeof(mark), "%s/packs/verified", f->dir);
	assert_int_equal(unlink(mark), 0);
	assert_int_equal(store_open(f->dir, &f->st), 0);
}

int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

void put_small(struct store *st, unsigned long long tag, uint8_t addr[32])
{
	uint8_t b[SMALL];

	fill(b, sizeof(b), tag);
	addr_for(addr, b, sizeof(b));
	assert_int_equal(store_put(st, addr, b, sizeof(b)), 1);
}

/* The block of tag reads back whole. */
void expect_small(struct store *st, unsigned long long tag)
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

/* Compact until nothing is left to do. */
int compact_all(struct store *st)
{
	int n = 0, r;

	while ((r = store_compact(st)) == 1)
		n++;
	assert_int_equal(r, 0);
	return n;
}

/* The list file a pack file would have. */
void idx_of_pack(const char *pack, char *out, size_t len)
{
	const char *dot = strrchr(pack, '.');

	assert_non_null(dot);
	snprintf(out, len, "%.*s.idx", (int)(dot - pack), pack);
}

bool exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

int storetest_init(void)
{
	const char *env = getenv("CAIRNFS_TEST_SEED");

	if (sodium_init() < 0)
		return -1;
	seed = env ? strtoull(env, NULL, 0) : randombytes_random();
	printf("# CAIRNFS_TEST_SEED=%llu\n", seed);
	return 0;
}
