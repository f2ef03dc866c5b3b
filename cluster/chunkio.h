/*
 * chunkio: chunks in and out of the cluster, end to end — the one place
 * where plaintext meets the network, shared by cairnctl put/get and the
 * cairnfs pipelines.
 *
 *   put: address = keyed hash of the chunk, seal (zstd + AEAD), PUT to every
 *        owner (blockio_put).
 *   get: GET from the first holder; a copy that does not open (corrupt, or
 *        stored under another address, or another volume's) is logged with
 *        the address and the next holder is tried. Never returns wrong
 *        bytes: every copy is checked by seal_open's tag.
 *
 * One seal context per calling thread is made on first use and freed at
 * thread exit, so any number of worker threads may call in at once.
 */
#ifndef CAIRN_CHUNKIO_H
#define CAIRN_CHUNKIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cluster/blockio.h"
#include "crypto/keys.h"

struct chunkio;

struct chunkio_counters {
	uint64_t puts, put_plain_bytes, put_stored_bytes;
	uint64_t gets, get_plain_bytes, get_stored_bytes;
	uint64_t corrupt_copies;     /* copies that failed to open */
};

/* zstd_level as seal_ctx_new(). b and k must outlive the chunkio. */
int chunkio_new(struct blockio *b, const struct keys *k, int zstd_level,
		struct chunkio **out) __attribute__((warn_unused_result));
void chunkio_free(struct chunkio *io);

/* The address a chunk gets (no I/O). */
void chunkio_addr(const struct chunkio *io, const void *chunk, size_t len,
		  uint8_t addr[32]);

/* Seal chunk and store it on every owner; addr is filled in. Returns 0 or
 * the storing error (-ENOSPC, -ETIMEDOUT, ...). */
int chunkio_put(struct chunkio *io, const void *chunk, size_t len,
		uint8_t addr[32]) __attribute__((warn_unused_result));

/* Seal only: *blk gets a malloc'd sealed block (caller frees), for callers
 * that batch their uploads with blockio_put_many(). Returns its length or
 * -errno. */
ssize_t chunkio_seal(struct chunkio *io, const uint8_t addr[32],
		     const void *chunk, size_t len, uint8_t **blk);

/*
 * Fetch the chunk stored under addr into out[0..cap). Returns its length,
 * -ENOBUFS when cap is too small, -ENOENT when no holder has it, -EIO when
 * every copy found failed to open (each one logged), or the transport
 * error when no holder could be reached.
 */
ssize_t chunkio_get(struct chunkio *io, const uint8_t addr[32], void *out,
		    size_t cap) __attribute__((warn_unused_result));

/*
 * Like chunkio_get(), into a malloc'd buffer of exactly the chunk's length
 * (*out, the caller frees it): no bound to guess and no copy for a caller
 * that keeps the chunk, such as the block cache.
 */
ssize_t chunkio_get_alloc(struct chunkio *io, const uint8_t addr[32],
			  uint8_t **out) __attribute__((warn_unused_result));

void chunkio_counters(struct chunkio *io, struct chunkio_counters *out);

#endif
