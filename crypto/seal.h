/*
 * seal: a chunk of plaintext becomes a self-describing stored block, and back.
 *
 * Block layout (all integers little-endian):
 *
 *   off len  field
 *     0   4  magic "CRNB"
 *     4   1  format version (SEAL_VERSION = 1)
 *     5   1  flags: bits 0-2 compression (0 none, 1 zstd), others zero
 *     6   2  reserved, zero
 *     8   4  plaintext length
 *    12   4  key check: first 4 bytes of BLAKE2b(key = enc-key, "cairnfs-keycheck")
 *    16  24  nonce (random, randombytes_buf)
 *    40   n  ciphertext of the payload (zstd output, or the raw chunk)
 *  40+n  16  Poly1305 tag
 *
 * ciphertext, tag = XChaCha20-Poly1305(enc-key, nonce, payload,
 *                                      ad = header[0..40) || addr)
 *
 * The address is BLAKE2b-256(key = block-id subkey, plaintext): identical
 * chunks of one volume share an address (dedup), and the associated data
 * binds every block to it, so a block stored under the wrong name fails.
 * Nonces are random, never derived: sealing one chunk twice gives different
 * bytes that both open. zstd is skipped when it does not shrink the chunk,
 * and for a chunk of 64 KiB or more when a 16 KiB sample of it does not
 * shrink by an eighth (incompressible data costs no compression attempt).
 *
 * Never logs. Thread-safety: a struct seal_ctx (zstd contexts, scratch) is
 * one thread's; keys may be shared.
 */
#ifndef CAIRN_SEAL_H
#define CAIRN_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/keys.h"

#define SEAL_MAGIC "CRNB"
#define SEAL_VERSION 1
#define SEAL_HEADER_BYTES 40
#define SEAL_TAG_BYTES 16
#define SEAL_OVERHEAD_BYTES (SEAL_HEADER_BYTES + SEAL_TAG_BYTES)
#define SEAL_ADDR_BYTES 32
#define SEAL_MAX_CHUNK (64u * 1024 * 1024)
#define SEAL_COMP_NONE 0
#define SEAL_COMP_ZSTD 1
#define SEAL_LEVEL_DEFAULT 1

/* Largest sealed size of a chunk of `chunk_len` bytes. */
size_t seal_bound(size_t chunk_len);

/* The block address of a chunk. */
void seal_addr(const struct keys *k, const void *chunk, size_t len,
	       uint8_t addr[SEAL_ADDR_BYTES]);

struct seal_ctx;
/* level: zstd level 1..19 (0 means SEAL_LEVEL_DEFAULT; negative: never compress). */
int seal_ctx_new(int level, struct seal_ctx **out)
	__attribute__((warn_unused_result));
void seal_ctx_free(struct seal_ctx *s);

/*
 * Seal chunk[0..len) known under `addr` into out[0..cap). Returns the block's
 * length, or -E2BIG (len > SEAL_MAX_CHUNK), -ENOBUFS (cap < seal_bound(len)),
 * -ENOMEM.
 */
ssize_t seal_block(struct seal_ctx *s, const struct keys *k,
		   const uint8_t addr[SEAL_ADDR_BYTES], const void *chunk,
		   size_t len, void *out, size_t cap)
	__attribute__((warn_unused_result));

/*
 * Open blk[0..len) stored under `addr` into out[0..cap). Returns the
 * plaintext length, or (out is zeroed on every failure):
 *   -EPROTO       truncated, bad magic, nonzero reserved bits, lengths that
 *                 do not add up
 *   -ENOTSUP      unknown format version or compression
 *   -EKEYREJECTED key check differs: sealed with another volume's key
 *   -EBADMSG      tag fails: corrupt, or stored under another address
 *   -ENOBUFS      cap smaller than the plaintext length
 */
ssize_t seal_open(struct seal_ctx *s, const struct keys *k,
		  const uint8_t addr[SEAL_ADDR_BYTES], const void *blk,
		  size_t len, void *out, size_t cap)
	__attribute__((warn_unused_result));

/* Header fields of a block without opening it (no key needed). Returns 0,
 * -EPROTO or -ENOTSUP as seal_open() does. */
struct seal_info {
	unsigned version;
	unsigned compression;
	uint32_t plain_len;
};
int seal_peek(const void *blk, size_t len, struct seal_info *info);

#endif
