/*
 * chunkio: seal + store, fetch + open, with failover over bad copies.
 *
 * Not here: chunking, dedup decisions (the caller knows what its volume
 * already references), caching (fs/bcache). This module only guarantees
 * that what goes out is sealed under the right address and that what comes
 * back opened, or an error says why not.
 */
#include "cluster/chunkio.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/log.h"
#include "crypto/seal.h"

struct chunkio {
	struct blockio *b;
	const struct keys *k;
	int level;
	pthread_key_t ctx_key;     /* this thread's struct seal_ctx */
	_Atomic uint64_t puts, put_plain, put_stored;
	_Atomic uint64_t gets, get_plain, get_stored, corrupt;
};

static void chunkio_ctx_destroy(void *ctx)
{
	seal_ctx_free(ctx);
}

int chunkio_new(struct blockio *b, const struct keys *k, int zstd_level,
		struct chunkio **out)
{
	struct chunkio *io = calloc(1, sizeof(*io));
	int rc;

	if (!io)
		return -ENOMEM;
	rc = pthread_key_create(&io->ctx_key, chunkio_ctx_destroy);
	if (rc) {
		free(io);
		return -rc;
	}
	io->b = b;
	io->k = k;
	io->level = zstd_level;
	*out = io;
	return 0;
}

void chunkio_free(struct chunkio *io)
{
	void *ctx;

	if (!io)
		return;
	/* Other threads' contexts are freed at their exit by the key's
	 * destructor; only a key deleted first would leak them, so callers
	 * free the chunkio after joining their workers. */
	ctx = pthread_getspecific(io->ctx_key);
	if (ctx) {
		seal_ctx_free(ctx);
		pthread_setspecific(io->ctx_key, NULL);
	}
	pthread_key_delete(io->ctx_key);
	free(io);
}

static struct seal_ctx *chunkio_ctx(struct chunkio *io)
{
	struct seal_ctx *ctx = pthread_getspecific(io->ctx_key);

	if (ctx)
		return ctx;
	if (seal_ctx_new(io->level, &ctx) < 0)
		return NULL;
	if (pthread_setspecific(io->ctx_key, ctx)) {
		seal_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

void chunkio_addr(const struct chunkio *io, const void *chunk, size_t len,
		  uint8_t addr[32])
{
	seal_addr(io->k, chunk, len, addr);
}

ssize_t chunkio_seal(struct chunkio *io, const uint8_t addr[32],
		     const void *chunk, size_t len, uint8_t **blk)
{
	struct seal_ctx *ctx = chunkio_ctx(io);
	size_t cap = seal_bound(len);
	ssize_t n;
	uint8_t *buf;

	if (!ctx)
		return -ENOMEM;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	n = seal_block(ctx, io->k, addr, chunk, len, buf, cap);
	if (n < 0) {
		free(buf);
		return n;
	}
	*blk = buf;
	return n;
}

int chunkio_put(struct chunkio *io, const void *chunk, size_t len,
		uint8_t addr[32])
{
	uint8_t *blk;
	ssize_t n;
	int rc;

	seal_addr(io->k, chunk, len, addr);
	n = chunkio_seal(io, addr, chunk, len, &blk);
	if (n < 0)
		return (int)n;
	rc = blockio_put(io->b, addr, blk, (size_t)n);
	free(blk);
	if (rc < 0)
		return rc;
	atomic_fetch_add(&io->puts, 1);
	atomic_fetch_add(&io->put_plain, len);
	atomic_fetch_add(&io->put_stored, (uint64_t)n);
	return 0;
}

/* The ways one try at a holder can end, besides a plaintext length. */
enum { TRY_NEXT = -1000, TRY_NO_MORE = -1001 };

/* Fetch and open addr's copy at holder `skip`: the plaintext length, a
 * final error (-ENOBUFS, -ENOMEM), TRY_NO_MORE past the last holder, or
 * TRY_NEXT (absent, out of reach or corrupt there: *last_err and *corrupt
 * say which). */
static ssize_t fetch_from(struct chunkio *io, struct seal_ctx *ctx,
			  const uint8_t addr[32], unsigned skip, void *out,
			  size_t cap, uint8_t **alloced, int *last_err,
			  unsigned *corrupt)
{
	uint8_t *blk = NULL;
	size_t blen = 0;
	ssize_t n;
	int rc;

	rc = blockio_get(io->b, addr, skip, &blk, &blen);
	if (rc == -ENODATA)
		return TRY_NO_MORE;
	if (rc < 0) {
		/* a holder without it, or out of reach: the next one; a
		 * transport error is more telling than "absent" */
		if (rc != -ENOENT)
			*last_err = rc;
		return TRY_NEXT;
	}
	if (alloced) {
		struct seal_info info;

		/* A copy that does not parse fails seal_open below the same
		 * way: size the buffer only when it does. */
		cap = seal_peek(blk, blen, &info) == 0 ? info.plain_len : 0;
		out = malloc(cap ? cap : 1);
		if (!out) {
			free(blk);
			return -ENOMEM;
		}
	}
	n = seal_open(ctx, io->k, addr, blk, blen, out, cap);
	free(blk);
	if (alloced) {
		if (n >= 0)
			*alloced = out;
		else
			free(out);
	}
	if (n >= 0) {
		atomic_fetch_add(&io->gets, 1);
		atomic_fetch_add(&io->get_plain, (uint64_t)n);
		atomic_fetch_add(&io->get_stored, blen);
		return n;
	}
	if (n == -ENOBUFS)
		return n;
	(*corrupt)++;
	atomic_fetch_add(&io->corrupt, 1);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", addr[i]);
	log_warn("block %s: copy %u does not open (%s); trying the next holder",
		 hex, skip, n == -EBADMSG ? "corrupt or stored under another address" :
		 n == -EKEYREJECTED ? "sealed with another volume's key" :
		 n == -ENOTSUP ? "unknown format version" : "malformed");
	return TRY_NEXT;
}

/*
 * Fetch addr from its holders in order until a copy opens; out/cap as
 * chunkio_get, or (alloced set) a buffer of the plaintext's exact size,
 * its plaintext length, handed to the caller on success. A holder that
 * just timed out (a hung daemon: pool_node_hung) is tried after the
 * others: with one of three daemons frozen, every block it owned first
 * otherwise cost a probe of it before the next holder was asked.
 */
static ssize_t chunkio_fetch(struct chunkio *io, const uint8_t addr[32],
			     void *out, size_t cap, uint8_t **alloced)
{
	struct seal_ctx *ctx = chunkio_ctx(io);
	unsigned hung[2 * CMAP_MAX_WIDTH], n_hung = 0, corrupt = 0;
	int last_err = -ENOENT;
	ssize_t n;

	if (!ctx)
		return -ENOMEM;
	for (unsigned skip = 0;; skip++) {
		if (n_hung < 2 * CMAP_MAX_WIDTH &&
		    blockio_holder_hung(io->b, addr, skip)) {
			hung[n_hung++] = skip;
			continue;
		}
		n = fetch_from(io, ctx, addr, skip, out, cap, alloced,
			       &last_err, &corrupt);
		if (n == TRY_NO_MORE)
			break;
		if (n != TRY_NEXT)
			return n;
	}
	for (unsigned i = 0; i < n_hung; i++) {
		n = fetch_from(io, ctx, addr, hung[i], out, cap, alloced,
			       &last_err, &corrupt);
		if (n == TRY_NO_MORE)
			break;
		if (n != TRY_NEXT)
			return n;
	}
	return corrupt ? -EIO : last_err;
}

ssize_t chunkio_get(struct chunkio *io, const uint8_t addr[32], void *out,
		    size_t cap)
{
	return chunkio_fetch(io, addr, out, cap, NULL);
}

ssize_t chunkio_get_alloc(struct chunkio *io, const uint8_t addr[32],
			  uint8_t **out)
{
	*out = NULL;
	return chunkio_fetch(io, addr, NULL, 0, out);
}

void chunkio_counters(struct chunkio *io, struct chunkio_counters *out)
{
	out->puts = atomic_load(&io->puts);
	out->put_plain_bytes = atomic_load(&io->put_plain);
	out->put_stored_bytes = atomic_load(&io->put_stored);
	out->gets = atomic_load(&io->gets);
	out->get_plain_bytes = atomic_load(&io->get_plain);
	out->get_stored_bytes = atomic_load(&io->get_stored);
	out->corrupt_copies = atomic_load(&io->corrupt);
}
