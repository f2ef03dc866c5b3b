/*
 * packidx: the format of a pack's index file, the list of its records that
 * lets an open rebuild the block index without reading the pack.
 *
 * Why: an open reads every record header of a pack it checked before, one
 * small random read each with read-ahead off. A data dir of 1 TiB in 1 MiB
 * blocks is a million such reads: minutes on an SSD, hours on a disk that
 * seeks. Its index files are 52 bytes a record, read in one go per pack.
 *
 * A pack is never written again once the store has moved on from it
 * (pack.h), so its index file is written once, when the pack is checked
 * and synced (packstore_checkpoint, a clean close, an open), and removed
 * with the pack. It is only a copy of what the pack's headers say: a
 * missing, torn or stale one (it names another size or id) is ignored, the
 * pack's headers are read instead, and the file is written again.
 *
 *   header    0  "CRPI"
 *             4  u32 version (1)
 *             8  u32 pack id
 *            12  u32 records
 *            16  u64 bytes in the pack when it was indexed
 *            24  8 bytes zero
 *   record    0  32-byte block address
 *            32  u32 offset of the record in the pack
 *            36  u32 block bytes (8 for a tombstone)
 *            40  u8 type (pack.h), 3 bytes zero
 *            44  u32 pack id, u32 offset: a tombstone's kill point (zero
 *                for a block)
 *   trailer   XXH3-128 of everything before it (canonical)
 *
 * All integers little-endian. Pure functions, no I/O: the decoder is
 * fuzzed (tests/fuzz/fuzz_packidx.c).
 */
#ifndef CAIRN_PACKIDX_H
#define CAIRN_PACKIDX_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/pack.h"

#define PACKIDX_HEADER 32
#define PACKIDX_ENTRY 52
#define PACKIDX_TRAILER 16

/* One record of a pack, as the index file lists it. */
struct packidx_ent {
	uint8_t addr[PACK_ADDR_BYTES];
	uint32_t off, len;
	enum pack_type type;
	struct pack_pos kill;    /* a tombstone's kill point */
};

/* Bytes of the index file of a pack of n records; 0 when that does not fit
 * a size_t. */
size_t packidx_size(size_t n);

/* Write the index file of pack `id` (pack_size bytes, n records in order)
 * to out, packidx_size(n) bytes. */
void packidx_encode(uint8_t *out, uint32_t id, uint64_t pack_size,
		    const struct packidx_ent *e, size_t n);

/*
 * Check an index file (buf, len bytes) against the pack it should describe
 * (id, pack_size bytes), and only when every part of it checks call
 * rec(arg, r) for each record in order, r as pack_parse would give it (a
 * tombstone's data the 8 bytes of its kill point, a block's NULL). What it
 * checks: magic, version, id, size, count against len, the checksum, and
 * that records lie in the pack after its header, on PACK_ALIGN boundaries,
 * in order and apart, each of a known type and a legal length.
 * Returns 0, -EBADMSG when it does not check (nothing was called), or what
 * rec returned when not 0 (the calls stop there).
 */
int packidx_decode(const uint8_t *buf, size_t len, uint32_t id,
		   uint64_t pack_size,
		   int (*rec)(void *arg, const struct pack_rec *r), void *arg);

#endif
