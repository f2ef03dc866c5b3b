/*
 * store: the block store on local disk.
 *
 * Blocks are appended to pack files, DIR/packs/NNNNNNNN.pack (format in
 * daemon/pack.h, life of a block in daemon/packstore.h): one fdatasync
 * per batch of PUTs, an index in memory rebuilt at open, and a slot that
 * lists, moves and drops as a unit through that index. A PUT is answered
 * only once its block is durable; all PUTs waiting share each sync (group
 * commit). A PUT of a block already held stores nothing. Every record
 * carries a checksum of its bytes; GET verifies it and never returns bytes
 * that fail it.
 *
 * Data dirs from before packs also hold DIR/blocks/SSSS/<64 hex address>
 * (SSSS the slot in hex), one file per block: those are still read,
 * listed, counted and deleted, and never written (store.c).
 *
 * Knows nothing of the network or the cluster map. Never logs.
 * Thread-safety: every function may be called from any thread at once.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ADDR_BYTES 32
#define STORE_HEADER_BYTES 24
#define STORE_SUM_BYTES 16
#define STORE_MAX_BLOCK (65u * 1024 * 1024)

struct store;

struct store_stats {
	uint64_t blocks, bytes;          /* held now */
	uint64_t puts, puts_new, bytes_written;
	uint64_t gets, bytes_read;
	uint64_t deletes, errors, corrupt;
	uint64_t packs, pack_bytes;      /* pack files and their bytes */
	uint64_t pack_dead_bytes;        /* of those, what compaction frees */
	uint64_t compactions;
	uint64_t compact_read;           /* bytes those read from packs */
	/* How the open read the packs: from their record list files, by
	 * their record headers, or every byte (packstore.h). */
	uint64_t packs_open_index, packs_open_headers, packs_open_whole;
};

struct store_entry {
	uint8_t addr[STORE_ADDR_BYTES];
	uint32_t size;                   /* block bytes, without the header */
};

/* Open (creating DIR/packs if needed), rebuild the index and count what
 * is held. Returns 0 or -errno. */
int store_open(const char *dir, struct store **out)
	__attribute__((warn_unused_result));
/* NULL is fine. Callers make sure no call is running. */
void store_close(struct store *st);
/* Block files of 64 KiB and more (from before packs) are read with
 * O_DIRECT unless turned off here; on by default, and off for good once
 * the filesystem refuses it. */
void store_set_direct_io(struct store *st, bool on);
/* Whether O_DIRECT is (still) in use. */
bool store_direct_io(struct store *st);

/* Store a block durably. Returns 1 stored, 0 already held, -ENOSPC disk
 * full, -E2BIG over STORE_MAX_BLOCK, -EIO or another -errno. */
int store_put(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
	      const void *data, size_t len) __attribute__((warn_unused_result));

/* The same without waiting: the block is written before this returns (data
 * may be freed then), and done(arg, result) is called once it is durable,
 * on the store's committer thread, with store_put's result. Returns 0 when
 * done will be called, or a -errno (nothing stored, done never called). */
typedef void (*store_put_cb)(void *arg, int result);
int store_put_async(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		    const void *data, size_t len, store_put_cb done, void *arg)
	__attribute__((warn_unused_result));
/* Read and verify a block; *out is malloc'd (caller frees). -ENOENT absent,
 * -EBADMSG the stored copy fails its checksum or header. */
int store_get(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
	      uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));
/* The same without moving the block to the front of its buffer: *buf is
 * malloc'd (caller frees), the block is *out_len bytes at *data inside it.
 * For callers that send it on (the daemon's GET answers). */
int store_get_buf(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		  uint8_t **buf, const uint8_t **data, size_t *out_len)
	__attribute__((warn_unused_result));
/* 1 held, 0 absent, -errno. */
int store_has(struct store *st, const uint8_t addr[STORE_ADDR_BYTES]);
/* 0 or -ENOENT. The removal is durable on return. */
int store_delete(struct store *st, const uint8_t addr[STORE_ADDR_BYTES]);
/* The same without waiting: the block is unlinked now and done(arg, 0) is
 * called (committer thread) once that is durable, or done(arg, -errno) if
 * the sync failed. Returns 0 when done will be called, else -errno (-ENOENT
 * absent; done never called). */
int store_delete_async(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		       store_put_cb done, void *arg)
	__attribute__((warn_unused_result));
/* Up to max entries of a slot in address order, after `after` (NULL: from
 * the start). Returns the count; *more says whether entries remain. */
int store_list(struct store *st, unsigned slot, const uint8_t *after,
	       struct store_entry *out, unsigned max, bool *more);
void store_get_stats(struct store *st, struct store_stats *out);
/* Path a block file of this address has in a data dir from before packs
 * (for tests that make one). */
void store_block_path(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		      char *buf, size_t len);
/* Where a held block's bytes are: the file and their offset in it (for
 * tests and tools that check or damage them in place). 0 or -ENOENT. */
int store_block_locate(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		       char *path, size_t len, uint64_t *off);
/* Start a new pack file once the newest reaches this size (default 64 MiB;
 * tests make it small to see rotation and compaction). */
void store_set_pack_limit(struct store *st, uint64_t bytes);
/* Compact one pack file that is more than half dead (the store's tidier
 * thread does this by itself whenever no PUT is waiting). 1 did one, 0
 * none to do, -errno. */
int store_compact(struct store *st);

#endif
