/*
 * parked: file data that an unmount could not store in the cluster (every
 * try failed for as long as writers would have waited), kept on local disk
 * until the next mount stores it. One file per inode, META/parked/<ino>,
 * written to a temporary name, synced and renamed, mode 0600.
 *
 * A parked file is the volume's data, so it is sealed like a block (see
 * crypto/seal.h: zstd, XChaCha20-Poly1305 under the volume key, bound to
 * its address): a copy of the metadata dir shows no file contents, and a
 * parked file that was damaged, or made by another volume, fails to open
 * with a clear error instead of writing garbage into a file.
 *
 *   file       addr[32] | sealed block of the plaintext below
 *   plaintext  magic "CRNP" | u8 version (1) | u8[3] zero | u64 ino |
 *              u32 n | (u64 off | u32 len | len bytes) x n
 * (little-endian). Ranges are in file order and do not overlap.
 *
 * Not here: when to park or replay (fsdata.c), the metadata (meta.c).
 */
#ifndef CAIRN_PARKED_H
#define CAIRN_PARKED_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

#define PARKED_MAGIC "CRNP"
#define PARKED_VERSION 1
#define PARKED_HEADER_BYTES 20
#define PARKED_RANGE_HEADER_BYTES 12
#define PARKED_DIR "parked"

struct seg;

/* The plaintext of ino's ranges `segs` (a seg list, segs.h): *out is
 * malloc'd. 0, -E2BIG (more than one sealed block holds) or -ENOMEM. */
int parked_encode(uint64_t ino, const struct seg *segs, uint8_t **out,
		  size_t *out_len) __attribute__((warn_unused_result));

/* Check a plaintext and call fn for each range in it (p points into buf).
 * Returns 0, -EPROTO (malformed: nothing is passed to fn before the whole
 * of it checked), -ENOTSUP (another version), or fn's first negative. */
typedef int (*parked_range_fn)(void *arg, uint64_t off, const uint8_t *p,
			       size_t len);
int parked_decode(const uint8_t *buf, size_t len, uint64_t *ino,
		  parked_range_fn fn, void *arg)
	__attribute__((warn_unused_result));

/* Seal ino's ranges into META/parked/<ino>, durably (replacing an older
 * one). 0 or -errno. */
int parked_save(const struct keys *k, const char *meta_dir, uint64_t ino,
		const struct seg *segs) __attribute__((warn_unused_result));

/* Open the parked file `name` of META/parked: *plain gets its plaintext
 * (malloc'd). 0, -errno, or seal_open's errors (-EBADMSG damaged,
 * -EKEYREJECTED another volume's). */
int parked_load(const struct keys *k, const char *meta_dir, const char *name,
		uint8_t **plain, size_t *plain_len)
	__attribute__((warn_unused_result));

/* Remove META/parked/<name> durably. 0 or -errno. */
int parked_remove(const char *meta_dir, const char *name);

#endif
