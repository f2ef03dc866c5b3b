/*
 * chunker: content-defined chunking in the FastCDC family.
 *
 * A gear hash rolls over the input; a cut point is where the hash, masked,
 * is zero. Normalized chunking uses a stricter mask before the average size
 * and a looser one after it, which pulls sizes toward the average. The gear
 * table (256 x 64-bit) is expanded from a 32-byte key, so boundaries differ
 * between volumes (hardening against fingerprinting, not a promise).
 *
 * Knows nothing of files, blocks or crypto libraries: libc only. Never logs.
 *
 * Thread-safety: a struct chunker holds one stream's state; use one per
 * thread or per stream. chunker_find() only reads the table and may be
 * called on one chunker from many threads at once.
 */
#ifndef CAIRN_CHUNKER_H
#define CAIRN_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNKER_KEY_BYTES 32
#define CHUNKER_MIN_DEFAULT (64u * 1024)
#define CHUNKER_AVG_DEFAULT (256u * 1024)
#define CHUNKER_MAX_DEFAULT (1024u * 1024)
#define CHUNKER_SIZE_LIMIT (64u * 1024 * 1024)   /* no size may exceed this */
#define CHUNKER_MIN_LIMIT 64u                    /* nor fall below this */

struct chunker_params {
	uint32_t min_size;
	uint32_t avg_size;      /* a power of two */
	uint32_t max_size;
};

/* The defaults: 64 KiB / 256 KiB / 1 MiB. */
void chunker_params_default(struct chunker_params *p);

/*
 * Check sizes. Returns 0 or one distinct code per mistake:
 *   -E2BIG   a size over CHUNKER_SIZE_LIMIT
 *   -EDOM    avg_size not a power of two
 *   -ERANGE  not min < avg < max, or min below CHUNKER_MIN_LIMIT
 */
int chunker_params_check(const struct chunker_params *p);
/* A sentence for a code of chunker_params_check(), for the caller to print. */
const char *chunker_params_strerror(int err);

struct chunker;

/* Make a chunker for `key` and `p`. Returns 0, a code of
 * chunker_params_check(), or -ENOMEM. *out is written only on success. */
int chunker_new(const uint8_t key[CHUNKER_KEY_BYTES],
		const struct chunker_params *p, struct chunker **out)
	__attribute__((warn_unused_result));
void chunker_free(struct chunker *c);

/*
 * One-shot: the length of the first chunk of buf[0..len), which starts a
 * chunk. Returns a length in [1, len] when a cut point is found, when len
 * reaches max_size, or when `eof` is set (the rest is the last chunk);
 * returns 0 when more input is needed to decide (len < max_size, no cut
 * found, not eof). Returns 0 for len == 0.
 */
size_t chunker_find(const struct chunker *c, const uint8_t *buf, size_t len,
		    bool eof);

/*
 * Streaming: feed any number of bytes in any split; the boundaries are the
 * same as chunker_find() over the whole stream.
 *
 * chunker_update() scans data[0..len) and returns how many bytes it consumed.
 * If a chunk ends inside them, it stops right after the chunk's last byte,
 * sets *cut = true and starts a new chunk; otherwise it consumes all of len
 * and sets *cut = false. Call it again with the rest. At end of input, the
 * bytes since the last cut (chunker_pending()) form the final chunk.
 */
size_t chunker_update(struct chunker *c, const uint8_t *data, size_t len,
		      bool *cut);
/* Bytes of the current, unfinished chunk seen so far. */
uint64_t chunker_pending(const struct chunker *c);
/* Forget the stream: the next byte starts a chunk. */
void chunker_reset(struct chunker *c);

#endif
