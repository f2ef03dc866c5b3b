/*
 * packstore: the block store's blocks, appended to pack files
 * (format in pack.h) under DIR/packs, with an index in memory.
 *
 * Life of a block:
 *   - packstore_append writes its record at the end of the newest pack (in
 *     the page cache) and hands back a ticket; nothing can find the block
 *     yet.
 *   - The store's committer makes every pack its tickets name durable
 *     (packstore_sync_tickets: one fdatasync per pack, shared by the
 *     batch), then packstore_commit puts each block in the index. Only
 *     then is the PUT answered, so a HAS or GET never reports a block a
 *     crash could still take away.
 *   - packstore_delete takes it out of the index at once and appends a
 *     tombstone, which is durable with the next batch.
 *   - A pack the store has moved on from is never written again. Once
 *     more than half of it is dead (blocks deleted or stored twice,
 *     tombstones that no older pack needs), packstore_compact copies what
 *     is live to the newest pack, makes that durable, points the index at
 *     the copies and removes the old pack.
 *
 * packstore_open rebuilds the index from the packs. Those written since the
 * last open, clean close or checkpoint (packstore_checkpoint) are read
 * whole, records checked against their checksums: a record torn by a crash
 * (never acknowledged: its PUT waited for the sync) or damaged on disk is
 * dropped (its header wiped) and the walk goes on at the next record that
 * checks. Older packs, checked then and never written since, are read from
 * their record list files (packidx.h), written when they were checked; a
 * pack whose list is missing or does not check is read a record header at
 * a time, and gets its list again.
 *
 * Records of one pack are appended in order under one lock, so a sync that
 * covers a record covers every record before it in that pack.
 *
 * Thread-safety: every function may be called from any thread at once.
 * Never logs.
 */
#ifndef CAIRN_PACKSTORE_H
#define CAIRN_PACKSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/pack.h"

struct packstore;
struct pack_file;

/* What an append wrote and the commit needs. */
struct pack_ticket {
	struct pack_file *pf;    /* held until packstore_commit/_release */
	struct pack_pos pos;
	uint8_t addr[PACK_ADDR_BYTES];
	uint32_t len;
	bool tombstone;
};

struct packstore_stats {
	uint64_t blocks, bytes;          /* in the index */
	uint64_t packs, pack_bytes;      /* files and their sizes */
	uint64_t dead_bytes;             /* of those, what compaction frees */
	uint64_t bad_records;            /* failed their checksum at open */
	uint64_t compactions;
	uint64_t compact_read;           /* bytes those read from packs */
	/* How the open read the packs: from their record list files
	 * (packidx.h), by their record headers, or every byte. */
	uint64_t open_index, open_headers, open_whole;
};

/* Open DIR (created if missing) and read every pack in it. Returns 0 or
 * -errno. */
int packstore_open(const char *dir, struct packstore **out)
	__attribute__((warn_unused_result));
/* NULL is fine. No call may be running, no ticket outstanding. */
void packstore_close(struct packstore *ps);
/* Start a new pack once the newest reaches this many bytes (default 64 MiB;
 * tests make it small to see rotation and compaction). */
void packstore_set_pack_limit(struct packstore *ps, uint64_t bytes);

/* 1 in the index, 0 not. */
int packstore_has(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES]);
/* Read and verify a block: *buf malloc'd (caller frees), the block is
 * *len bytes at *data inside it. -ENOENT not here, -EBADMSG its record
 * fails its checksum, -EIO or another -errno. */
int packstore_get(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		  uint8_t **buf, const uint8_t **data, size_t *len)
	__attribute__((warn_unused_result));

/* Append a block (len < PACK_MAX_BLOCK). 0 and *t filled, or -errno
 * (-ENOSPC, -EIO...: nothing appended, no ticket). */
int packstore_append(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		     const void *data, size_t len, struct pack_ticket *t)
	__attribute__((warn_unused_result));
/* Make durable every pack the n tickets name. 0 or -errno. */
int packstore_sync_tickets(struct packstore *ps, struct pack_ticket *const *t,
			   size_t n) __attribute__((warn_unused_result));
/* After the sync: index the block. 1 new, 0 already held (the record is
 * then dead weight). A tombstone's ticket just ends here (returns 0).
 * Frees the ticket's hold on its pack either way. */
int packstore_commit(struct packstore *ps, struct pack_ticket *t);
/* A ticket whose sync failed: the record stays dead weight. */
void packstore_release(struct packstore *ps, struct pack_ticket *t);

/* Take a block out of the index and append its tombstone. 0 and *t filled
 * (sync it like a PUT's), -ENOENT not here, else -errno (the block stays).
 * *len is set to the block's size. */
int packstore_delete(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		     struct pack_ticket *t, uint32_t *len)
	__attribute__((warn_unused_result));

/* The slot of an address: its top 14 bits (DESIGN.md, as store.c). */
static inline unsigned pack_addr_slot(const uint8_t *a)
{
	return ((unsigned)a[0] << 6) | ((unsigned)a[1] >> 2);
}

/* The blocks of a slot, appended to *arr (*n entries, *cap allocated;
 * realloc'd as needed), in no order. 0 or -ENOMEM. */
struct store_entry;
int packstore_list(struct packstore *ps, unsigned slot,
		   struct store_entry **arr, size_t *n, size_t *cap);

/* Move packs/verified up past the packs the store has moved on from: each
 * is whole (every record synced) and never written again, so a crash from
 * now on reads only newer packs whole. 1 moved, 0 nothing to do, -errno. */
int packstore_checkpoint(struct packstore *ps);

/*
 * Compact one pack that is more than half dead, if any. A pack that still
 * holds live blocks and lost one less than settle_ms ago is passed over:
 * a big delete (rm of a large file) kills its packs in order, and a pack
 * compacted halfway through would have the rest of its blocks copied
 * forward only to be deleted a moment later; settled, it is all dead and
 * costs no copy. Not while the disk is short of space (the reserve was
 * used up): then space comes first. *wait_ms (may be NULL) gets the ms
 * until the first pack passed over settles, -1 when none was. 1 did one,
 * 0 nothing to do, -errno (nothing lost: the old pack stays).
 */
int packstore_compact(struct packstore *ps, int64_t settle_ms, int64_t *wait_ms);

/* Where a block's record is (for tests that damage it): the pack's path
 * and the offset of the block bytes in it. 0 or -ENOENT. */
int packstore_locate(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		     char *path, size_t path_len, uint64_t *off);

void packstore_get_stats(struct packstore *ps, struct packstore_stats *out);

#endif
