/*
 * pack: the format of a pack file, where the block store keeps its blocks
 * side by side instead of one file each.
 *
 * Why: a file per block costs a new inode, a directory entry and their
 * journal writes per PUT, the filesystem writes each file's data back on
 * its own, and a cold GET reads the file's inode (with ext4's inode
 * read-ahead, 128 KiB of inode table) before its bytes.
 * tests/bench/storebench, same disk, same run: 4 KiB PUTs 11,000/s as
 * files, over 90,000/s appended to one file with one fdatasync per batch;
 * 256 KiB PUTs 620 MB/s as files, 1,310 to 1,460 MB/s packed.
 *
 * A pack file is a 16-byte file header followed by records, each starting
 * on a PACK_ALIGN boundary (so a reader that meets a damaged header can
 * look for the next record without knowing the damaged one's length):
 *
 *   file header   "CRPK"  u32 version (1)  u32 pack id  u32 zero
 *   record        0  "CRK1"
 *                 4  u8 type: 1 a block, 2 a tombstone (see below)
 *                 5  3 bytes zero
 *                 8  u32 block bytes (8 for a tombstone)
 *                12  u32 XXH32 of the 64-byte header with these 4 bytes zero
 *                16  32-byte block address
 *                48  XXH3-128 of the block bytes, seeded with the XXH3-64
 *                    of the address
 *                64  the block bytes, then zeros up to PACK_ALIGN
 *
 * A tombstone says the block with its address is deleted. Its 8 bytes are
 * u32 pack id and u32 offset of where the DELETE was first written: it
 * kills the records of that address placed before that point, and no
 * later one. A tombstone copied forward when its pack is compacted keeps
 * that point, so it cannot kill a block PUT again between the DELETE and
 * the copy.
 *
 * All integers little-endian. Records only ever go at the end of the
 * newest pack; a pack is never changed once the store moved on from it,
 * only read and, once mostly dead, copied forward and removed (packstore.h).
 * Pure functions, no I/O: the parser is fuzzed (tests/fuzz/fuzz_pack.c).
 */
#ifndef CAIRN_PACK_H
#define CAIRN_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_ADDR_BYTES 32
#define PACK_FILE_HEADER 16
#define PACK_REC_HEADER 64
#define PACK_ALIGN 16
/* Records hold blocks shorter than this: every block the store takes
 * (STORE_MAX_BLOCK, 65 MiB), and no length that a damaged header could
 * make larger. */
#define PACK_MAX_BLOCK (65u * 1024 * 1024 + 1)

enum pack_type { PACK_BLOCK = 1, PACK_TOMBSTONE = 2 };

/* A place in the store: pack id, then offset, ordered as written. */
struct pack_pos {
	uint32_t pack, off;
};

static inline int pack_pos_cmp(struct pack_pos a, struct pack_pos b)
{
	if (a.pack != b.pack)
		return a.pack < b.pack ? -1 : 1;
	return a.off < b.off ? -1 : a.off > b.off;
}

#define PACK_TOMB_BYTES 8

struct pack_rec {
	enum pack_type type;
	uint8_t addr[PACK_ADDR_BYTES];
	uint32_t len;            /* block bytes */
	uint64_t off;            /* of the record header in the pack */
	const uint8_t *data;     /* len bytes, inside the parsed buffer */
};

/* Bytes a record of len block bytes takes, padding included. */
static inline uint64_t pack_rec_size(uint32_t len)
{
	return ((uint64_t)PACK_REC_HEADER + len + PACK_ALIGN - 1) &
	       ~(uint64_t)(PACK_ALIGN - 1);
}

void pack_file_header(uint8_t out[PACK_FILE_HEADER], uint32_t id);
/* 0, or -EBADMSG when buf (len bytes) does not start with a pack header
 * of a version we read; *id is the pack id it names. */
int pack_check_file_header(const uint8_t *buf, size_t len, uint32_t *id);

/* The header of a record (a tombstone's data: pack_tomb_encode). */
void pack_rec_header(uint8_t out[PACK_REC_HEADER], enum pack_type type,
		     const uint8_t addr[PACK_ADDR_BYTES], const void *data,
		     uint32_t len);

/* A tombstone's 8 bytes, and back. */
void pack_tomb_encode(uint8_t out[PACK_TOMB_BYTES], struct pack_pos killed_before);
struct pack_pos pack_tomb_decode(const uint8_t in[PACK_TOMB_BYTES]);

/* Whether buf (avail bytes) starts with a record header whose own checksum,
 * magic, type and length are right, the record fitting in avail. On true
 * *out is filled, data pointing into buf. Does not check the block bytes. */
bool pack_rec_decode(const uint8_t *buf, size_t avail, struct pack_rec *out);
/* The same for a header read alone (PACK_REC_HEADER bytes at buf), the
 * record's avail bytes left in the file: out->data is NULL. */
bool pack_rec_decode_header(const uint8_t *buf, uint64_t avail,
			    struct pack_rec *out);
/* Whether a decoded record's block bytes match its checksum. */
bool pack_rec_verify(const uint8_t *hdr, const struct pack_rec *r);

/* What a parse of a whole pack found. */
struct pack_scan {
	uint64_t good;           /* records whose header and bytes check */
	uint64_t bad_sum;        /* headers fine, block bytes not */
	uint64_t skipped;        /* bytes passed over for lack of a header */
	uint64_t end;            /* after the last record whose header checks
				  * (at most len: padding may be cut) */
};

/*
 * Walk the records of a pack file held in buf (len bytes, the file header
 * first) in order, calling rec(arg, r, verified) for each record whose
 * header checks; verified says whether its block bytes do too. After a
 * damaged header it looks on at each PACK_ALIGN boundary for the next
 * header that checks (a torn tail after a crash, or damage on disk).
 * Returns 0, -EBADMSG for a bad file header, or what rec returned when not
 * 0 (the walk stops there).
 */
int pack_parse(const uint8_t *buf, size_t len,
	       int (*rec)(void *arg, const struct pack_rec *r, bool verified),
	       void *arg, struct pack_scan *scan);

#endif
