/*
 * readahead: fetch the blocks ahead of a sequential reader into the block
 * cache, several at a time, so that a streaming read waits on the network
 * once per window instead of once per block.
 *
 * A read that starts where the previous read of the same file ended is
 * sequential; each sequential read queues the blocks of the next
 * READAHEAD_WINDOW bytes that are not cached yet. READAHEAD_THREADS workers
 * fetch, verify and open them (chunkio_get) and insert them into the cache.
 * A reader that misses the cache on a block a worker is fetching waits for
 * that fetch rather than doing it twice.
 *
 * Not done here: write-behind, or read-ahead of metadata.
 */
#ifndef CAIRN_READAHEAD_H
#define CAIRN_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 8 blocks in flight: a cold GET costs the daemon three disk reads (slot
 * directory, inode, block), and with 4 in flight a cold 2 GiB read left
 * 1.5-1.7 of 8 CPU-seconds idle; with 8, 1.1-1.2 and 4 % more MB/s. */
#define READAHEAD_THREADS 8
#define READAHEAD_WINDOW (16u << 20)
#define READAHEAD_QUEUE 128

struct fsctx;
struct readahead;

int readahead_new(struct fsctx *fs, struct readahead **out)
	__attribute__((warn_unused_result));
void readahead_free(struct readahead *ra);

/* A read of [off, off+len) of ino was served. */
void readahead_note(struct readahead *ra, uint64_t ino, uint64_t off,
		    size_t len);
/* If a worker is fetching addr, wait until it is done and return true. */
bool readahead_wait(struct readahead *ra, const uint8_t addr[32]);

#endif
