/*
 * blockio: block operations routed by the cluster map.
 *
 * The map is fetched with MAP_GET from the seeds (and later from any node
 * in it), verified against the pinned admin key, and replaced only by a
 * newer epoch. Requests carry our epoch; a STALE answer makes us fetch the
 * map again and retry once, as a Redis Cluster client does on MOVED.
 * Everything is built on pool calls, so many threads can use one blockio.
 *
 * Not here: sealing and opening (chunkio), dedup decisions (callers).
 */
#include "cluster/blockio.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/log.h"
#include "cluster/proto.h"

#define MAX_SEEDS 64

struct blockio {
	struct pool *pool;
	uint8_t admin_pk[CMAP_PK_BYTES];
	struct blockio_opts opts;
	char *seeds[MAX_SEEDS];
	size_t n_seeds;
	pthread_rwlock_t map_lock;
	struct cmap *map;
	pthread_mutex_t refresh_lock;     /* one refresh at a time */
	_Atomic uint64_t puts, put_bytes, put_new;
	_Atomic uint64_t gets, get_bytes, get_failovers, map_refreshes;
};

/* Ask one node for its map; adopt it when valid and newer. */
static int fetch_map_from(struct blockio *b, const char *node)
{
	struct pool_call c = { .node = node, .opcode = PROTO_OP_MAP_GET };
	struct cmap *m = NULL;
	int rc;

	rc = pool_run(b->pool, &c, 1);
	if (rc < 0) {
		free(c.resp);
		return rc;
	}
	rc = cmap_decode(c.resp, c.resp_len, b->admin_pk, &m);
	free(c.resp);
	if (rc < 0) {
		log_warn("%s: its cluster map is not valid (%s): ignored", node,
			 rc == -EKEYREJECTED ? "signed by another admin key" :
			 log_strerror(rc));
		return rc;
	}
	pthread_rwlock_wrlock(&b->map_lock);
	if (!b->map || cmap_epoch(m) > cmap_epoch(b->map)) {
		cmap_free(b->map);
		b->map = m;
		m = NULL;
	}
	pthread_rwlock_unlock(&b->map_lock);
	cmap_free(m);
	return 0;
}

int blockio_refresh_map(struct blockio *b)
{
	int rc, last = -ENOENT, ok = 0;
	const char *nodes[MAX_SEEDS + 32];
	size_t n = 0;
	char *copies[32] = { 0 };
	size_t n_copies = 0;

	pthread_mutex_lock(&b->refresh_lock);
	for (size_t i = 0; i < b->n_seeds; i++)
		nodes[n++] = b->seeds[i];
	/* also every node of the map we hold: seeds may have gone */
	pthread_rwlock_rdlock(&b->map_lock);
	for (unsigned i = 0; b->map && i < cmap_node_count(b->map) && n_copies < 32; i++) {
		const struct cmap_node *nd = cmap_node(b->map, i);

		if (nd->state == CMAP_NODE_OUT)
			continue;
		copies[n_copies] = strdup(nd->addr);
		if (copies[n_copies])
			nodes[n++] = copies[n_copies++];
	}
	pthread_rwlock_unlock(&b->map_lock);

	for (size_t i = 0; i < n; i++) {
		rc = fetch_map_from(b, nodes[i]);
		if (rc == 0)
			ok = 1;
		else if (rc == -EKEYREJECTED && last != -ENOENT)
			;       /* keep the more telling transport error */
		else
			last = rc;
		/* a daemon without a map answers NOT_FOUND: keep asking */
	}
	for (size_t i = 0; i < n_copies; i++)
		free(copies[i]);
	atomic_fetch_add(&b->map_refreshes, 1);
	pthread_mutex_unlock(&b->refresh_lock);
	return ok ? 0 : last;
}

int blockio_new(const char *const *seeds, size_t n_seeds,
		const uint8_t secret[HS_SECRET_BYTES],
		const uint8_t admin_pk[CMAP_PK_BYTES],
		const struct blockio_opts *opts, struct blockio **out)
{
	struct blockio *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return -ENOMEM;
	if (opts)
		b->opts = *opts;
	memcpy(b->admin_pk, admin_pk, CMAP_PK_BYTES);
	pthread_rwlock_init(&b->map_lock, NULL);
	pthread_mutex_init(&b->refresh_lock, NULL);
	rc = pool_new(secret, &b->opts.pool, &b->pool);
	if (rc < 0) {
		free(b);
		return rc;
	}
	for (size_t i = 0; i < n_seeds && i < MAX_SEEDS; i++) {
		b->seeds[i] = strdup(seeds[i]);
		if (!b->seeds[i]) {
			blockio_free(b);
			return -ENOMEM;
		}
		b->n_seeds++;
	}
	rc = blockio_refresh_map(b);
	if (rc < 0 || !b->map) {
		blockio_free(b);
		return rc < 0 ? rc : -ENOENT;
	}
	*out = b;
	return 0;
}

void blockio_free(struct blockio *b)
{
	if (!b)
		return;
	pool_free(b->pool);
	for (size_t i = 0; i < b->n_seeds; i++)
		free(b->seeds[i]);
	cmap_free(b->map);
	pthread_rwlock_destroy(&b->map_lock);
	pthread_mutex_destroy(&b->refresh_lock);
	free(b);
}

int blockio_map(struct blockio *b, struct cmap **out)
{
	int rc;

	pthread_rwlock_rdlock(&b->map_lock);
	rc = b->map ? cmap_copy(b->map, out) : -ENOENT;
	pthread_rwlock_unlock(&b->map_lock);
	return rc;
}

struct pool *blockio_pool(struct blockio *b)
{
	return b->pool;
}

/* Addresses of the holders of addr: owners first, then previous owners
 * (readers only). Returns how many; node strings are copies in buf. */
struct holders {
	unsigned n, n_owners;
	char addr[2 * CMAP_MAX_WIDTH][CMAP_ADDR_MAX + 1];
};

static void holders_of(struct blockio *b, const uint8_t addr[32], bool with_prev,
		       struct holders *h, uint64_t *epoch)
{
	uint16_t idx[CMAP_MAX_WIDTH];
	unsigned slot = slot_of_addr(addr), n;

	h->n = h->n_owners = 0;
	pthread_rwlock_rdlock(&b->map_lock);
	*epoch = cmap_epoch(b->map);
	n = cmap_slot_owners(b->map, slot, idx);
	for (unsigned i = 0; i < n; i++)
		strcpy(h->addr[h->n++], cmap_node(b->map, idx[i])->addr);
	h->n_owners = h->n;
	if (with_prev) {
		n = cmap_slot_prev(b->map, slot, idx);
		for (unsigned i = 0; i < n; i++) {
			const char *a = cmap_node(b->map, idx[i])->addr;
			bool dup = false;

			for (unsigned j = 0; j < h->n; j++)
				dup |= !strcmp(h->addr[j], a);
			if (!dup)
				strcpy(h->addr[h->n++], a);
		}
	}
	pthread_rwlock_unlock(&b->map_lock);
}

/* --- PUT ----------------------------------------------------------------- */

struct put_req {
	uint8_t hdr[8 + 32];            /* epoch | addr */
};

int blockio_put_many(struct blockio *b, const uint8_t (*addrs)[32],
		     const void *const *blks, const size_t *lens, size_t n,
		     int *errs)
{
	int first = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct pool_call *calls;
		struct put_req *reqs;
		size_t *owner_of;      /* call -> block index */
		size_t n_calls = 0;
		bool stale = false;
		unsigned *acks;

		calls = calloc(n * CMAP_MAX_WIDTH, sizeof(*calls));
		reqs = calloc(n, sizeof(*reqs));
		owner_of = calloc(n * CMAP_MAX_WIDTH, sizeof(*owner_of));
		acks = calloc(n, sizeof(*acks));
		if (!calls || !reqs || !owner_of || !acks) {
			free(calls);
			free(reqs);
			free(owner_of);
			free(acks);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			struct holders h;
			uint64_t epoch;

			if (attempt > 0 && errs[i] != -ESTALE)
				continue;
			errs[i] = 0;
			holders_of(b, addrs[i], false, &h, &epoch);
			if (!h.n) {
				errs[i] = -EHOSTUNREACH;   /* slot unassigned */
				continue;
			}
			proto_put_u64(reqs[i].hdr, epoch);
			memcpy(reqs[i].hdr + 8, addrs[i], 32);
			for (unsigned o = 0; o < h.n; o++) {
				struct pool_call *c = &calls[n_calls];

				/* the node string must outlive the call: it
				 * lives in the map copy below via strdup */
				c->node = strdup(h.addr[o]);
				c->opcode = PROTO_OP_PUT;
				c->req = reqs[i].hdr;
				c->req_len = sizeof(reqs[i].hdr);
				c->data = blks[i];
				c->data_len = lens[i];
				owner_of[n_calls++] = i;
			}
		}
		/* Start everything, then wait: the pool pipelines it all. */
		for (size_t k = 0; k < n_calls; k++)
			if (calls[k].node)
				(void)pool_start(b->pool, &calls[k]);
			else
				calls[k].err = -ENOMEM;
		for (size_t k = 0; k < n_calls; k++) {
			size_t i = owner_of[k];
			int rc = calls[k].node ? pool_wait(b->pool, &calls[k]) : calls[k].err;

			if (rc == 0) {
				acks[i]++;
				if (calls[k].resp_len >= 1 && calls[k].resp[0] == 1)
					atomic_fetch_add(&b->put_new, 1);
			} else if (rc == -ESTALE) {
				stale = true;
				if (!errs[i])
					errs[i] = rc;
			} else {
				if (!errs[i] || errs[i] == -ESTALE)
					errs[i] = rc;
				log_debug("PUT to %s: %s", calls[k].node, log_strerror(rc));
			}
			free(calls[k].resp);
			free((char *)calls[k].node);
		}
		/* A write quorum below every owner lets a block through when
		 * enough owners took it (repair copies it later). */
		if (b->opts.write_quorum) {
			for (size_t i = 0; i < n; i++)
				if (errs[i] && errs[i] != -ESTALE &&
				    acks[i] >= b->opts.write_quorum)
					errs[i] = 0;
		}
		free(calls);
		free(reqs);
		free(owner_of);
		free(acks);
		if (!stale || attempt == 1)
			break;
		if (blockio_refresh_map(b) < 0)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (errs[i] == 0) {
			atomic_fetch_add(&b->puts, 1);
			atomic_fetch_add(&b->put_bytes, lens[i]);
		} else if (!first) {
			first = errs[i];
		}
	}
	return first;
}

int blockio_put(struct blockio *b, const uint8_t addr[32], const void *blk,
		size_t len)
{
	int err = 0;
	const uint8_t (*addrs)[32] = (const uint8_t (*)[32])addr;

	return blockio_put_many(b, addrs, &blk, &len, 1, &err);
}

/* --- GET, HAS, DELETE ---------------------------------------------------- */

int blockio_get(struct blockio *b, const uint8_t addr[32], unsigned skip,
		uint8_t **blk, size_t *len)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct holders h;
		uint64_t epoch;
		uint8_t req[8 + 32];
		struct pool_call c = { .opcode = PROTO_OP_GET, .req = req,
				       .req_len = sizeof(req) };
		int rc;

		holders_of(b, addr, true, &h, &epoch);
		if (skip >= h.n)
			return -ENODATA;
		proto_put_u64(req, epoch);
		memcpy(req + 8, addr, 32);
		c.node = h.addr[skip];
		rc = pool_run(b->pool, &c, 1);
		if (rc == 0) {
			*blk = c.resp;
			*len = c.resp_len;
			atomic_fetch_add(&b->gets, 1);
			atomic_fetch_add(&b->get_bytes, c.resp_len);
			if (skip)
				atomic_fetch_add(&b->get_failovers, 1);
			return 0;
		}
		free(c.resp);
		if (rc != -ESTALE) {
			if (rc != -ENOENT)
				log_debug("GET from %s: %s", c.node, log_strerror(rc));
			return rc;
		}
		if (blockio_refresh_map(b) < 0)
			return -ESTALE;
	}
	return -ESTALE;
}

int blockio_has(struct blockio *b, const uint8_t (*addrs)[32], size_t n,
		bool *has)
{
	int first = 0;

	/* One HAS per block and owner, pipelined: a block is "held" when
	 * every owner holds it, so a missing replica gets uploaded again. */
	for (size_t base = 0; base < n; base += PROTO_HAS_MAX / 4) {
		size_t m = n - base < PROTO_HAS_MAX / 4 ? n - base : PROTO_HAS_MAX / 4;
		struct pool_call *calls = calloc(m * CMAP_MAX_WIDTH, sizeof(*calls));
		uint8_t (*reqs)[8 + 4 + 32] = calloc(m, sizeof(*reqs));
		size_t *of = calloc(m * CMAP_MAX_WIDTH, sizeof(*of)), k = 0;
		char (*nodes)[CMAP_ADDR_MAX + 1] = calloc(m * CMAP_MAX_WIDTH, sizeof(*nodes));

		if (!calls || !reqs || !of || !nodes) {
			free(calls);
			free(reqs);
			free(of);
			free(nodes);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m; i++) {
			struct holders h;
			uint64_t epoch;

			has[base + i] = true;
			holders_of(b, addrs[base + i], false, &h, &epoch);
			if (!h.n)
				has[base + i] = false;
			proto_put_u64(reqs[i], epoch);
			proto_put_u32(reqs[i] + 8, 1);
			memcpy(reqs[i] + 12, addrs[base + i], 32);
			for (unsigned o = 0; o < h.n; o++) {
				strcpy(nodes[k], h.addr[o]);
				calls[k] = (struct pool_call){ .node = nodes[k],
					.opcode = PROTO_OP_HAS, .req = reqs[i],
					.req_len = sizeof(reqs[i]) };
				of[k++] = base + i;
			}
		}
		for (size_t j = 0; j < k; j++)
			(void)pool_start(b->pool, &calls[j]);
		for (size_t j = 0; j < k; j++) {
			int rc = pool_wait(b->pool, &calls[j]);

			/* answer: u32 n | bitmap */
			if (rc < 0 || calls[j].resp_len < 5 || !(calls[j].resp[4] & 1))
				has[of[j]] = false;
			if (rc < 0 && !first)
				first = rc;
			free(calls[j].resp);
		}
		free(calls);
		free(reqs);
		free(of);
		free(nodes);
	}
	return first;
}

int blockio_delete(struct blockio *b, const uint8_t addr[32])
{
	struct holders h;
	struct pool_call calls[2 * CMAP_MAX_WIDTH];
	uint8_t req[8 + 32];
	uint64_t epoch;
	int first = 0;

	holders_of(b, addr, true, &h, &epoch);
	proto_put_u64(req, epoch);
	memcpy(req + 8, addr, 32);
	for (unsigned o = 0; o < h.n; o++)
		calls[o] = (struct pool_call){ .node = h.addr[o], .opcode = PROTO_OP_DELETE,
					       .req = req, .req_len = sizeof(req) };
	(void)pool_run(b->pool, calls, h.n);
	for (unsigned o = 0; o < h.n; o++) {
		if (calls[o].err < 0 && calls[o].err != -ENOENT && !first)
			first = calls[o].err;
		free(calls[o].resp);
	}
	return first;
}

void blockio_counters(struct blockio *b, struct blockio_counters *out)
{
	out->puts = atomic_load(&b->puts);
	out->put_bytes = atomic_load(&b->put_bytes);
	out->put_new = atomic_load(&b->put_new);
	out->gets = atomic_load(&b->gets);
	out->get_bytes = atomic_load(&b->get_bytes);
	out->get_failovers = atomic_load(&b->get_failovers);
	out->map_refreshes = atomic_load(&b->map_refreshes);
}
