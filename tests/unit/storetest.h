/*
 * storetest: the fixture and helpers the block store tests share:
 * test_store (the store's calls, block files, async and concurrent use),
 * test_packstore (pack files, checkpoints, record lists) and
 * test_compaction. Block contents and addresses come from a seed
 * (printed; replay with CAIRNFS_TEST_SEED).
 */
#ifndef CAIRN_STORETEST_H
#define CAIRN_STORETEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/store.h"

extern unsigned long long seed;

struct fixture {
	char dir[64];
	struct store *st;
};

enum { SMALL = 3000 };          /* a record of 3072 bytes */

void fill(void *buf, size_t len, unsigned long long tag);

void addr_for(uint8_t addr[32], const void *data, size_t len);

/* The block of tag, len bytes, reads back whole at addr. */
void expect_block(struct store *st, const uint8_t addr[32],
		  unsigned long long tag, size_t len);

/* Flip the bits of mask in the byte at off of the file at path: damage
 * on disk, for the tests that look for it. */
void flip_byte(const char *path, uint64_t off, uint8_t mask);

int setup(void **state);

void reopen(struct fixture *f);

/* A restart as after a crash in a run that wrote every pack there: none is
 * verified (packs/verified gone), so the open reads every byte of each. */
void crash_reopen(struct fixture *f);

int teardown(void **state);

void put_small(struct store *st, unsigned long long tag, uint8_t addr[32]);

/* The block of tag reads back whole. */
void expect_small(struct store *st, unsigned long long tag);

/* Compact until nothing is left to do. */
int compact_all(struct store *st);

/* The list file a pack file would have. */
void idx_of_pack(const char *pack, char *out, size_t len);

bool exists(const char *path);

/* sodium_init and the seed (from CAIRNFS_TEST_SEED or random, printed);
 * -1 when sodium cannot start. */
int storetest_init(void);

#endif
