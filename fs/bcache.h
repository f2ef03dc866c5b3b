/*
 * bcache: the client's block cache, an LRU of opened (plaintext) chunks
 * bounded by bytes.
 *
 * Keyed by block address. Entries are reference counted: a reader gets a
 * pinned entry and copies out of it without holding the cache lock, so a
 * slow reader never blocks the cache and an entry evicted meanwhile stays
 * alive until its last reader lets go. Pinned bytes count toward the bound,
 * but are never freed under a reader; the bound can be exceeded only by what
 * readers hold at that moment.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef CAIRN_BCACHE_H
#define CAIRN_BCACHE_H

#include <stddef.h>
#include <stdint.h>

struct bcache;

struct bcache_entry {
	uint8_t addr[32];
	size_t len;
	const uint8_t *data;       /* len bytes, read-only while pinned */
	/* private to bcache.c */
	struct bcache_entry *lru_prev_, *lru_next_, *hash_next_;
	unsigned refs_;
	int linked_;
};

struct bcache_stats {
	uint64_t hits, misses, inserts, evictions;
	uint64_t bytes, entries, limit;
};

int bcache_new(size_t limit_bytes, struct bcache **out)
	__attribute__((warn_unused_result));
void bcache_free(struct bcache *c);

/* A pinned entry or NULL; bcache_put() it when done. */
struct bcache_entry *bcache_get(struct bcache *c, const uint8_t addr[32]);

/* Insert a copy of data (or find the one already there) and return it
 * pinned; NULL on allocation failure or when len exceeds the whole limit. */
struct bcache_entry *bcache_insert(struct bcache *c, const uint8_t addr[32],
				   const void *data, size_t len);

/* The same without the copy: the cache takes data (malloc'd, len bytes)
 * and frees it in time, even when an entry already there is returned
 * instead. On NULL (too big, no memory) data stays the caller's. */
struct bcache_entry *bcache_insert_owned(struct bcache *c,
					 const uint8_t addr[32], uint8_t *data,
					 size_t len);
void bcache_put(struct bcache *c, struct bcache_entry *e);

/* Drop an address (its block was freed); readers holding it keep it. */
void bcache_forget(struct bcache *c, const uint8_t addr[32]);

void bcache_stats(struct bcache *c, struct bcache_stats *out);

#endif
