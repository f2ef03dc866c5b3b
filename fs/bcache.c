/*
 * bcache: byte-bounded LRU of opened chunks, keyed by block address.
 *
 * One mutex guards the hash table and the LRU list; it is held only for
 * pointer work, never while copying a chunk (readers pin an entry and copy
 * after unlocking). Addresses are uniformly random hashes, so the first
 * eight bytes are a good enough bucket index without rehashing.
 *
 * Not here: fetching missing blocks (the read pipeline does that and
 * inserts the result) and read-ahead policy.
 */
#include "fs/bcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bcache {
	pthread_mutex_t lock;
	struct bcache_entry **buckets;
	size_t n_buckets;           /* power of two */
	struct bcache_entry lru;    /* sentinel: lru.lru_next_ is the newest */
	struct bcache_stats st;
};

static size_t bcache_bucket(const struct bcache *c, const uint8_t addr[32])
{
	uint64_t h;

	memcpy(&h, addr, sizeof(h));
	return (size_t)h & (c->n_buckets - 1);
}

int bcache_new(size_t limit_bytes, struct bcache **out)
{
	struct bcache *c;
	size_t n = 1024;

	/* About one bucket per 64 KiB chunk (the smallest chunk size). */
	while (n < limit_bytes / 65536 && n < ((size_t)1 << 24))
		n <<= 1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->buckets = calloc(n, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->n_buckets = n;
	c->lru.lru_next_ = c->lru.lru_prev_ = &c->lru;
	c->st.limit = limit_bytes;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void bcache_entry_free(struct bcache_entry *e)
{
	free((void *)e->data);
	free(e);
}

void bcache_free(struct bcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_buckets; i++) {
		struct bcache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hash_next_;
			bcache_entry_free(e);
		}
	}
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

static void lru_unlink(struct bcache_entry *e)
{
	e->lru_prev_->lru_next_ = e->lru_next_;
	e->lru_next_->lru_prev_ = e->lru_prev_;
}

static void lru_push_front(struct bcache *c, struct bcache_entry *e)
{
	e->lru_next_ = c->lru.lru_next_;
	e->lru_prev_ = &c->lru;
	c->lru.lru_next_->lru_prev_ = e;
	c->lru.lru_next_ = e;
}

static struct bcache_entry *bcache_find_locked(struct bcache *c,
					       const uint8_t addr[32])
{
	struct bcache_entry *e = c->buckets[bcache_bucket(c, addr)];

	for (; e; e = e->hash_next_)
		if (!memcmp(e->addr, addr, 32))
			return e;
	return NULL;
}

/* Take e out of the table and the LRU; it is freed now if unpinned, else by
 * the last bcache_put(). Caller holds the lock. */
static void bcache_unlink_locked(struct bcache *c, struct bcache_entry *e)
{
	struct bcache_entry **pp = &c->buckets[bcache_bucket(c, e->addr)];

	while (*pp != e)
		pp = &(*pp)->hash_next_;
	*pp = e->hash_next_;
	lru_unlink(e);
	e->linked_ = 0;
	c->st.bytes -= e->len;
	c->st.entries--;
	if (!e->refs_)
		bcache_entry_free(e);
}

/* Evict from the old end until `need` more bytes fit, skipping pinned
 * entries (they go when their reader is done). */
static void bcache_evict_locked(struct bcache *c, size_t need)
{
	struct bcache_entry *e = c->lru.lru_prev_, *prev;

	for (; e != &c->lru && c->st.bytes + need > c->st.limit; e = prev) {
		prev = e->lru_prev_;
		if (e->refs_)
			continue;
		bcache_unlink_locked(c, e);
		c->st.evictions++;
	}
}

struct bcache_entry *bcache_get(struct bcache *c, const uint8_t addr[32])
{
	struct bcache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = bcache_find_locked(c, addr);
	if (e) {
		e->refs_++;
		lru_unlink(e);
		lru_push_front(c, e);
		c->st.hits++;
	} else {
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

struct bcache_entry *bcache_insert(struct bcache *c, const uint8_t addr[32],
				   const void *data, size_t len)
{
	struct bcache_entry *e;
	uint8_t *copy;

	if (len > c->st.limit)
		return NULL;
	/* Copy outside the lock: chunks are up to megabytes. */
	copy = malloc(len ? len : 1);
	if (!copy)
		return NULL;
	memcpy(copy, data, len);
	e = bcache_insert_owned(c, addr, copy, len);
	if (!e)
		free(copy);
	return e;
}

struct bcache_entry *bcache_insert_owned(struct bcache *c,
					 const uint8_t addr[32], uint8_t *data,
					 size_t len)
{
	struct bcache_entry *e, *have;

	if (len > c->st.limit)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->addr, addr, 32);
	e->data = data;
	e->len = len;
	e->refs_ = 1;

	pthread_mutex_lock(&c->lock);
	have = bcache_find_locked(c, addr);
	if (have) {
		/* Another reader fetched it first: keep theirs. */
		have->refs_++;
		pthread_mutex_unlock(&c->lock);
		bcache_entry_free(e);
		return have;
	}
	bcache_evict_locked(c, len);
	e->hash_next_ = c->buckets[bcache_bucket(c, addr)];
	c->buckets[bcache_bucket(c, addr)] = e;
	lru_push_front(c, e);
	e->linked_ = 1;
	c->st.bytes += len;
	c->st.entries++;
	c->st.inserts++;
	pthread_mutex_unlock(&c->lock);
	return e;
}

void bcache_put(struct bcache *c, struct bcache_entry *e)
{
	int release;

	if (!e)
		return;
	pthread_mutex_lock(&c->lock);
	release = --e->refs_ == 0 && !e->linked_;
	if (!release && !e->refs_ && c->st.bytes > c->st.limit)
		bcache_evict_locked(c, 0);
	pthread_mutex_unlock(&c->lock);
	if (release)
		bcache_entry_free(e);
}

void bcache_forget(struct bcache *c, const uint8_t addr[32])
{
	struct bcache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = bcache_find_locked(c, addr);
	if (e)
		bcache_unlink_locked(c, e);
	pthread_mutex_unlock(&c->lock);
}

void bcache_stats(struct bcache *c, struct bcache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}
