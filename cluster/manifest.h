/*
 * manifest: the codec of the manifests cairnctl put stores and get reads,
 * a file's chunks in file order as the plaintext of one block. Bytes only:
 * addresses, sealing and the network are the caller's (ctl_put.c,
 * ctl_get.c).
 *
 * Manifest (plaintext of a block, little-endian):
 *
 *   magic "CRNF" | u8 version (1) | u8 level | u16 reserved (0)
 *   u64 size (file bytes covered) | u32 n | (addr[32] | u64 length) x n
 *
 * Level 0 entries are data chunks; level L > 0 entries are manifests of
 * level L-1 covering `length` bytes, so a file of any size has a root of
 * at most MAN_MAX_ENTRIES entries. The sizes of every level must add up.
 *
 * Not here: the filesystem's metadata (fs/), deletes, snapshots.
 */
#ifndef CAIRN_MANIFEST_H
#define CAIRN_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MAN_MAGIC "CRNF"
#define MAN_VERSION 1
#define MAN_HEADER_BYTES 20
#define MAN_ENTRY_BYTES 40
#define MAN_MAX_ENTRIES 16384u
#define MAN_MAX_BYTES (MAN_HEADER_BYTES + MAN_MAX_ENTRIES * MAN_ENTRY_BYTES)
#define MAN_MAX_LEVEL 4

struct man_entry {
	uint8_t addr[32];
	uint64_t len;
};

/* Encode a manifest of `level` covering `size` bytes over e[0..n) into out
 * (MAN_HEADER_BYTES + n * MAN_ENTRY_BYTES bytes); returns its length. */
size_t man_encode(unsigned level, uint64_t size, const struct man_entry *e,
		  size_t n, uint8_t *out);

/* Decode and check a manifest; *e is malloc'd. Returns 0 or -EPROTO/-ENOTSUP. */
int man_decode(const uint8_t *buf, size_t len, unsigned *level,
	       uint64_t *size, struct man_entry **e, size_t *n);

#endif
