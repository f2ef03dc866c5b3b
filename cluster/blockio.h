/*
 * blockio: block operations against the cluster, following the map.
 *
 * It knows the current cluster map (fetched from any daemon it was given,
 * verified against the admin key, refreshed when a daemon answers STALE)
 * and turns "store this block" into PUTs to every owner of its slot in
 * parallel, and "fetch this block" into GETs that try the owners in order,
 * then a moving slot's previous owners. It does not open or seal blocks:
 * callers get the stored bytes and check them (seal_open) themselves, and
 * report a bad copy with blockio_get_next() semantics below.
 *
 * Thread-safety: all functions may be called from many threads at once.
 */
#ifndef CAIRN_BLOCKIO_H
#define CAIRN_BLOCKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cmap.h"
#include "cluster/pool.h"

struct blockio_opts {
	struct pool_opts pool;
	unsigned write_quorum;       /* 0: every owner must acknowledge */
};

struct blockio_counters {
	uint64_t puts, put_bytes, put_new;  /* put_new: owners that stored a new copy */
	uint64_t gets, get_bytes, get_failovers;
	uint64_t map_refreshes;
};

struct blockio;

/*
 * Connect to a cluster given some daemon addresses (`seeds`, "host:port"),
 * the cluster secret and the admin public key (maps not signed by it are
 * refused). Fetches the newest map from the seeds. Returns 0, -EKEYREJECTED
 * (wrong cluster secret), -EBADMSG (the maps offered do not verify against
 * admin_pk), -ENOENT (no daemon has a map yet), or the last connection
 * error when no seed answered.
 */
int blockio_new(const char *const *seeds, size_t n_seeds,
		const uint8_t secret[HS_SECRET_BYTES],
		const uint8_t admin_pk[CMAP_PK_BYTES],
		const struct blockio_opts *opts, struct blockio **out)
	__attribute__((warn_unused_result));
void blockio_free(struct blockio *b);

/* A copy of the current map (caller frees), and a forced refresh. */
int blockio_map(struct blockio *b, struct cmap **out);
int blockio_refresh_map(struct blockio *b);
struct pool *blockio_pool(struct blockio *b);

/* Store a block on every owner of its slot (in parallel). Returns 0 when all
 * (or the write quorum) acknowledged durably; else the first owner's error
 * (-ENOSPC, -ETIMEDOUT, ...). A STALE answer refreshes the map and retries. */
int blockio_put(struct blockio *b, const uint8_t addr[32], const void *blk,
		size_t len) __attribute__((warn_unused_result));

/* Many blocks at once, all pipelined; errs[i] gets each block's result.
 * Returns 0 when all succeeded, else the first error. */
int blockio_put_many(struct blockio *b, const uint8_t (*addrs)[32],
		     const void *const *blks, const size_t *lens, size_t n,
		     int *errs);

/*
 * A PUT batch for a caller that makes its blocks one by one (seals them):
 * each block is sent to its owners as soon as it is added, so they store
 * it while the caller makes the next, and the answers are waited for
 * together at the end. Blocks stay the caller's and must stay alive until
 * blockio_batch_finish(), which frees the batch (always), sets errs[i] (may
 * be NULL) for the i-th block added, retries those an owner called our map
 * old after a refresh, and returns 0 when every block was stored, else the
 * first error. blockio_batch_add() fails (-ENOBUFS) only past cap blocks;
 * a block it cannot send gets its error at the finish. Several threads may
 * add to one batch at once; finish it after the last add has returned.
 */
struct blockio_batch;
int blockio_batch_new(struct blockio *b, size_t cap, struct blockio_batch **out)
	__attribute__((warn_unused_result));
int blockio_batch_add(struct blockio_batch *bt, const uint8_t addr[32],
		      const void *blk, size_t len) __attribute__((warn_unused_result));
int blockio_batch_finish(struct blockio_batch *bt, int *errs);

/*
 * Fetch a block from holder number `skip` of its slot: the owners in order,
 * then a moving slot's previous owners. Callers walk skip = 0, 1, 2... until
 * a copy opens (a bad copy, an unreachable holder or a holder without it:
 * go on to the next). *blk is malloc'd (caller frees). Returns 0, -ENOENT
 * (this holder does not have it), a transport error (-ETIMEDOUT, ...), or
 * -ENODATA when skip is past the last holder.
 */
int blockio_get(struct blockio *b, const uint8_t addr[32], unsigned skip,
		uint8_t **blk, size_t *len) __attribute__((warn_unused_result));
/* Whether holder number `skip` of addr is a node that just timed out
 * (pool_node_hung): worth trying after the others. False past the last. */
bool blockio_holder_hung(struct blockio *b, const uint8_t addr[32],
			 unsigned skip);

/* Which of the addrs every owner holds (has[i] = true): one HAS per owner
 * and PROTO_HAS_MAX addresses, pipelined. An owner that cannot answer counts
 * as not holding (the caller uploads); the first such error is returned. */
int blockio_has(struct blockio *b, const uint8_t (*addrs)[32], size_t n,
		bool *has);

/* Delete a block from every owner and previous owner. -ENOENT is success. */
int blockio_delete(struct blockio *b, const uint8_t addr[32]);
/* The same for n blocks, pipelined; errs[i] gets each one's result (0 when
 * deleted or absent everywhere). Returns 0 or the first error. */
int blockio_delete_many(struct blockio *b, const uint8_t (*addrs)[32],
			size_t n, int *errs);

void blockio_counters(struct blockio *b, struct blockio_counters *out);

#endif
