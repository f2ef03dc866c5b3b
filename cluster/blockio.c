/*
 * blockio: block PUT / GET / HAS / DELETE against the cluster, following
 * the signed cluster map.
 *
 * It keeps the newest map it has seen (fetched with MAP_GET from the seeds
 * and from the map's own nodes, all asked in parallel, verified against the
 * pinned admin key) and sends every request to the nodes the map names,
 * pipelined through one pool. A STALE (or NOT_OWNER) answer means our map
 * is old: the map is refreshed and the operation retried once (every
 * operation here is idempotent, so a retry after a partial success is
 * harmless).
 *
 * Not here: sealing and opening (callers check copies and walk holders with
 * `skip`), dedup decisions, repair of missing copies, slot migration.
 *
 * Maps are shared by reference count: an operation holds the map it started
 * with until it is done, so a refresh never frees owner addresses that
 * calls in flight still name, and nothing is copied per request.
 */
#include "cluster/blockio.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/log.h"
#include "cluster/proto.h"

/* epoch | addr: the request of PUT, GET and DELETE. */
#define BIO_REQ_BYTES (8 + PROTO_ADDR_BYTES)

struct bio_map {
	struct cmap *m;
	uint64_t epoch;
	unsigned refs;                 /* under blockio.lock */
};

struct blockio {
	struct pool *pool;
	struct blockio_opts opts;
	uint8_t admin_pk[CMAP_PK_BYTES];
	char **seeds;
	size_t n_seeds;
	pthread_mutex_t lock;          /* guards cur and every refs */
	pthread_mutex_t refresh_lock;  /* one map fetch at a time */
	struct bio_map *cur;
	_Atomic uint64_t puts, put_bytes, put_new;
	_Atomic uint64_t gets, get_bytes, get_failovers;
	_Atomic uint64_t map_refreshes;
};

/* --- maps ---------------------------------------------------------------- */

static struct bio_map *map_get(struct blockio *b)
{
	struct bio_map *bm;

	pthread_mutex_lock(&b->lock);
	bm = b->cur;
	if (bm)
		bm->refs++;
	pthread_mutex_unlock(&b->lock);
	return bm;
}

static void map_put(struct blockio *b, struct bio_map *bm)
{
	bool last;

	if (!bm)
		return;
	pthread_mutex_lock(&b->lock);
	last = --bm->refs == 0;
	pthread_mutex_unlock(&b->lock);
	if (last) {
		cmap_free(bm->m);
		free(bm);
	}
}

static uint64_t map_epoch(struct blockio *b)
{
	uint64_t e;

	pthread_mutex_lock(&b->lock);
	e = b->cur ? b->cur->epoch : 0;
	pthread_mutex_unlock(&b->lock);
	return e;
}

/* Where to ask for a map: the seeds, then every node the map knows (seeds
 * may have gone since the client was configured). */
static int map_sources(struct blockio *b, char ***out, size_t *n_out)
{
	struct bio_map *bm = map_get(b);
	unsigned nn = bm ? cmap_node_count(bm->m) : 0;
	char **v = calloc(b->n_seeds + nn + 1, sizeof(*v));
	size_t n = 0;
	int rc = 0;

	if (!v) {
		map_put(b, bm);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n_seeds + nn; i++) {
		const char *a;
		bool dup = false;

		if (i < b->n_seeds) {
			a = b->seeds[i];
		} else {
			const struct cmap_node *nd = cmap_node(bm->m, (unsigned)(i - b->n_seeds));

			if (nd->state == CMAP_NODE_OUT)
				continue;
			a = nd->addr;
		}
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(v[k], a);
		if (dup)
			continue;
		v[n] = strdup(a);
		if (!v[n]) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	map_put(b, bm);
	*out = v;
	*n_out = n;
	return rc;
}

/*
 * Ask every source for its map in parallel (one unreachable node costs one
 * connect timeout, not one per node) and adopt the newest one the admin key
 * signed, if newer than ours. Returns 0 when we have a map afterwards; else
 * -EKEYREJECTED if a daemon refused our secret, -ENOENT if daemons answered
 * but none has a map, -EBADMSG if the maps offered do not verify, or the
 * last error.
 */
static int map_fetch(struct blockio *b)
{
	struct pool_call *calls = NULL;
	struct cmap *best = NULL;
	char **src = NULL;
	size_t n = 0;
	int rc, last = -EHOSTUNREACH;
	bool rejected = false, empty = false, bad = false;

	rc = map_sources(b, &src, &n);
	if (rc < 0)
		goto out;
	calls = calloc(n + 1, sizeof(*calls));
	if (!calls) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		calls[i].node = src[i];
		calls[i].opcode = PROTO_OP_MAP_GET;
	}
	(void)pool_run(b->pool, calls, n);
	for (size_t i = 0; i < n; i++) {
		struct cmap *m = NULL;
		int err = calls[i].err;

		if (!err) {
			err = cmap_decode(calls[i].resp, calls[i].resp_len, b->admin_pk, &m);
			if (err < 0) {
				/* -EKEYREJECTED from decode means "another
				 * admin key", not "wrong secret": keep the
				 * two apart for callers' messages. */
				log_warn("%s: its cluster map is not valid (%s): ignored",
					 src[i], err == -EKEYREJECTED ?
					 "signed by another admin key" : log_strerror(err));
				err = -EBADMSG;
				bad = true;
			}
		}
		free(calls[i].resp);
		if (err == -EKEYREJECTED)
			rejected = true;
		else if (err == -ENOENT)
			empty = true;
		if (err < 0) {
			if (err != -EBADMSG)
				last = err;
			continue;
		}
		if (!best || cmap_epoch(m) > cmap_epoch(best)) {
			cmap_free(best);
			best = m;
		} else {
			cmap_free(m);
		}
	}
	atomic_fetch_add(&b->map_refreshes, 1);

	pthread_mutex_lock(&b->lock);
	if (best && (!b->cur || cmap_epoch(best) > b->cur->epoch)) {
		struct bio_map *bm = calloc(1, sizeof(*bm));

		if (bm) {
			struct bio_map *old = b->cur;

			bm->m = best;
			bm->epoch = cmap_epoch(best);
			bm->refs = 1;
			b->cur = bm;
			best = NULL;
			if (old && --old->refs == 0) {
				cmap_free(old->m);
				free(old);
			}
		}
	}
	rc = b->cur ? 0 : rejected ? -EKEYREJECTED : bad ? -EBADMSG :
	     empty ? -ENOENT : last;
	pthread_mutex_unlock(&b->lock);
out:
	cmap_free(best);
	for (size_t i = 0; i < n; i++)
		free(src[i]);
	free(src);
	free(calls);
	return rc;
}

/* Refresh because a daemon called our map (epoch `seen`) old; when another
 * thread fetched a newer one meanwhile, that is enough: a burst of STALE
 * answers costs one fetch, not one per call. */
static int map_refresh_after(struct blockio *b, uint64_t seen)
{
	int rc = 0;

	pthread_mutex_lock(&b->refresh_lock);
	if (map_epoch(b) <= seen)
		rc = map_fetch(b);
	pthread_mutex_unlock(&b->refresh_lock);
	return rc;
}

int blockio_refresh_map(struct blockio *b)
{
	int rc;

	pthread_mutex_lock(&b->refresh_lock);
	rc = map_fetch(b);
	pthread_mutex_unlock(&b->refresh_lock);
	return rc;
}

int blockio_map(struct blockio *b, struct cmap **out)
{
	struct bio_map *bm = map_get(b);
	int rc;

	if (!bm)
		return -ENOENT;
	rc = cmap_copy(bm->m, out);
	map_put(b, bm);
	return rc;
}

struct pool *blockio_pool(struct blockio *b)
{
	return b->pool;
}

/* Answers that mean "your map is old". */
static bool err_is_stale(int err)
{
	return err == -ESTALE || err == -EXDEV;
}

/* --- setup --------------------------------------------------------------- */

int blockio_new(const char *const *seeds, size_t n_seeds,
		const uint8_t secret[HS_SECRET_BYTES],
		const uint8_t admin_pk[CMAP_PK_BYTES],
		const struct blockio_opts *opts, struct blockio **out)
{
	struct blockio *b;
	int rc;

	if (!n_seeds)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->refresh_lock, NULL);
	if (opts)
		b->opts = *opts;
	memcpy(b->admin_pk, admin_pk, CMAP_PK_BYTES);
	b->seeds = calloc(n_seeds, sizeof(*b->seeds));
	if (!b->seeds) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n_seeds; i++) {
		b->seeds[i] = strdup(seeds[i]);
		if (!b->seeds[i]) {
			rc = -ENOMEM;
			goto fail;
		}
		b->n_seeds++;
	}
	rc = pool_new(secret, &b->opts.pool, &b->pool);
	if (rc < 0)
		goto fail;
	rc = blockio_refresh_map(b);
	if (rc < 0)
		goto fail;
	*out = b;
	return 0;
fail:
	blockio_free(b);
	return rc;
}

void blockio_free(struct blockio *b)
{
	if (!b)
		return;
	pool_free(b->pool);
	map_put(b, b->cur);
	for (size_t i = 0; i < b->n_seeds; i++)
		free(b->seeds[i]);
	free(b->seeds);
	pthread_mutex_destroy(&b->refresh_lock);
	pthread_mutex_destroy(&b->lock);
	free(b);
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

/* --- calls to nodes that may be out of reach ----------------------------- */

/*
 * The nodes one write (a batch, a put_many or delete_many round) found out
 * of reach: a connect that timed out or was refused. Its later calls to
 * them fail at once instead of each waiting for a connect of its own:
 * with one owner hung, a flush of 16 MiB took 20 s to fail, one probe
 * after another for its 31 blocks, and a mount's writers waited that long
 * to learn what the first probe had said. The next write tries the node
 * afresh.
 */
#define UNREACHABLE_MAX 8

struct unreachable {
	pthread_mutex_t lock;          /* a batch's adders share it */
	const char *node[UNREACHABLE_MAX];
	int err[UNREACHABLE_MAX];
	unsigned n;
};

static void unreachable_init(struct unreachable *u)
{
	pthread_mutex_init(&u->lock, NULL);
	u->n = 0;
}

static bool err_is_unreachable(int e)
{
	return e == -ETIMEDOUT || e == -ECONNREFUSED || e == -EHOSTUNREACH ||
	       e == -ENETUNREACH || e == -EHOSTDOWN;
}

/* Start calls[0..n), but not to nodes u holds; note the nodes whose
 * connect fails. */
static void start_unless_unreachable(struct blockio *b, struct pool_call *calls,
				     size_t n, struct unreachable *u)
{
	for (size_t k = 0; k < n; k++) {
		struct pool_call *c = &calls[k];
		int known = 0, rc;

		pthread_mutex_lock(&u->lock);
		for (unsigned i = 0; i < u->n && !known; i++)
			if (!strcmp(u->node[i], c->node))
				known = u->err[i];
		pthread_mutex_unlock(&u->lock);
		if (known) {
			pool_skip(b->pool, c, known);
			continue;
		}
		rc = pool_start(b->pool, c);
		if (!err_is_unreachable(rc))
			continue;
		pthread_mutex_lock(&u->lock);
		if (u->n < UNREACHABLE_MAX) {
			u->node[u->n] = c->node;   /* the map's: alive as long as the calls */
			u->err[u->n++] = rc;
		}
		pthread_mutex_unlock(&u->lock);
	}
}

/* pool_run() with start_unless_unreachable(): results in calls[].err. */
static void run_unless_unreachable(struct blockio *b, struct pool_call *calls,
				   size_t n)
{
	struct unreachable u;

	unreachable_init(&u);
	start_unless_unreachable(b, calls, n, &u);
	for (size_t i = 0; i < n; i++)
		(void)pool_wait(b->pool, &calls[i]);
	pthread_mutex_destroy(&u.lock);
}

/* --- PUT ----------------------------------------------------------------- */

/*
 * Fill calls[0..) with a PUT of blk to every owner of addr's slot under map
 * bm (req: BIO_REQ_BYTES of the caller's, alive as long as the calls).
 * Returns how many owners, or 0 when the slot has none yet.
 */
static unsigned put_prepare(const struct bio_map *bm, const uint8_t addr[32],
			    const void *blk, size_t len, uint8_t *req,
			    struct pool_call *calls)
{
	unsigned w = cmap_width(bm->m);
	uint16_t own[CMAP_MAX_WIDTH];
	unsigned n_own = cmap_slot_owners(bm->m, slot_of_addr(addr), own);

	if (n_own > w)
		n_own = w;
	proto_put_u64(req, bm->epoch);
	memcpy(req + 8, addr, PROTO_ADDR_BYTES);
	for (unsigned k = 0; k < n_own; k++) {
		struct pool_call *c = &calls[k];

		memset(c, 0, sizeof(*c));
		c->node = cmap_node(bm->m, own[k])->addr;
		c->opcode = PROTO_OP_PUT;
		c->req = req;
		c->req_len = BIO_REQ_BYTES;
		c->data = blk;
		c->data_len = len;
	}
	return n_own;
}

/*
 * Wait for the n_own started PUTs of one block and judge them: 0 when
 * every owner (or the write quorum) took it, -EINPROGRESS when an owner
 * called our map old (retry after a refresh), else the first error.
 */
static int put_collect(struct blockio *b, struct pool_call *calls,
		       unsigned n_own, size_t len)
{
	unsigned ok = 0, need;
	int first = 0;
	bool stale = false;

	for (unsigned k = 0; k < n_own; k++) {
		struct pool_call *c = &calls[k];
		int e = pool_wait(b->pool, c);

		if (!e) {
			ok++;
			if (c->resp_len >= 1 && c->resp[0] == 1)
				atomic_fetch_add(&b->put_new, 1);
		} else {
			if (err_is_stale(e))
				stale = true;
			if (!first)
				first = e;
			log_debug("PUT to %s: %s", c->node, log_strerror(e));
		}
		free(c->resp);
		c->resp = NULL;
	}
	/* A write quorum below every owner lets a block through when
	 * enough owners took it (repair copies it later). */
	need = b->opts.write_quorum && b->opts.write_quorum < n_own ?
	       b->opts.write_quorum : n_own;
	if (ok >= need) {
		atomic_fetch_add(&b->puts, 1);
		atomic_fetch_add(&b->put_bytes, len);
		return 0;
	}
	return stale ? -EINPROGRESS : first;
}

/*
 * One round of PUTs for the blocks whose errs[i] is -EINPROGRESS, all
 * pipelined. Sets errs[i] to the result, or leaves -EINPROGRESS (and sets
 * *stale) for blocks an owner called our map old.
 */
static int put_round(struct blockio *b, struct bio_map *bm,
		     const uint8_t (*addrs)[32], const void *const *blks,
		     const size_t *lens, size_t n, int *errs, bool *stale)
{
	unsigned w = cmap_width(bm->m);
	struct pool_call *calls = calloc(n * w + 1, sizeof(*calls));
	uint8_t *reqs = malloc(n * BIO_REQ_BYTES + 1);
	unsigned *n_own = calloc(n + 1, sizeof(*n_own));
	struct unreachable u;
	int rc = 0;

	unreachable_init(&u);
	if (!calls || !reqs || !n_own) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (errs[i] != -EINPROGRESS)
			continue;
		n_own[i] = put_prepare(bm, addrs[i], blks[i], lens[i],
				       reqs + i * BIO_REQ_BYTES, &calls[i * w]);
		if (!n_own[i])
			errs[i] = -EHOSTUNREACH;   /* slot has no owner yet */
	}
	/* Start everything before waiting: the pool's back-pressure paces us. */
	for (size_t i = 0; i < n; i++)
		if (errs[i] == -EINPROGRESS)
			start_unless_unreachable(b, &calls[i * w], n_own[i], &u);
	for (size_t i = 0; i < n; i++) {
		if (errs[i] != -EINPROGRESS)
			continue;
		errs[i] = put_collect(b, &calls[i * w], n_own[i], lens[i]);
		if (errs[i] == -EINPROGRESS)
			*stale = true;     /* retried after a map refresh */
	}
out:
	pthread_mutex_destroy(&u.lock);
	free(calls);
	free(reqs);
	free(n_own);
	return rc;
}

int blockio_put_many(struct blockio *b, const uint8_t (*addrs)[32],
		     const void *const *blks, const size_t *lens, size_t n,
		     int *errs)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		errs[i] = -EINPROGRESS;
		if (lens[i] > PROTO_MAX_PAYLOAD - BIO_REQ_BYTES)
			errs[i] = -E2BIG;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		struct bio_map *bm = map_get(b);
		bool stale = false;
		uint64_t epoch;

		if (!bm) {
			rc = -ENOENT;
			break;
		}
		epoch = bm->epoch;
		rc = put_round(b, bm, addrs, blks, lens, n, errs, &stale);
		map_put(b, bm);
		if (rc < 0 || !stale)
			break;
		rc = map_refresh_after(b, epoch);
		if (rc < 0)
			break;
	}
	for (size_t i = 0; i < n; i++)
		if (errs[i] == -EINPROGRESS)
			errs[i] = rc < 0 ? rc : -ESTALE;
	for (size_t i = 0; i < n; i++)
		if (errs[i] < 0)
			return errs[i];
	return 0;
}

int blockio_put(struct blockio *b, const uint8_t addr[32], const void *blk,
		size_t len)
{
	const void *blks[1] = { blk };
	int err;

	return blockio_put_many(b, (const uint8_t (*)[32])addr, blks, &len, 1, &err);
}

/* --- PUT batches: started as they come, waited for together ------------- */

struct put_item {
	uint8_t addr[32];
	const void *blk;
	size_t len;
	uint8_t req[BIO_REQ_BYTES];
	unsigned n_own;
	int err;
	struct pool_call calls[CMAP_MAX_WIDTH];
};

struct blockio_batch {
	struct blockio *b;
	struct bio_map *bm;          /* the map the batch's PUTs were sent under */
	pthread_mutex_t lock;        /* adders take their item under it */
	struct unreachable unreach;
	size_t n, cap;
	struct put_item items[];     /* fixed: the pool points into the calls */
};

int blockio_batch_new(struct blockio *b, size_t cap, struct blockio_batch **out)
{
	struct blockio_batch *bt;

	*out = NULL;
	if (cap > (SIZE_MAX - sizeof(*bt)) / sizeof(bt->items[0]))
		return -EOVERFLOW;
	bt = calloc(1, sizeof(*bt) + cap * sizeof(bt->items[0]));
	if (!bt)
		return -ENOMEM;
	bt->bm = map_get(b);
	if (!bt->bm) {
		free(bt);
		return -ENOENT;
	}
	bt->b = b;
	bt->cap = cap;
	pthread_mutex_init(&bt->lock, NULL);
	unreachable_init(&bt->unreach);
	*out = bt;
	return 0;
}

int blockio_batch_add(struct blockio_batch *bt, const uint8_t addr[32],
		      const void *blk, size_t len)
{
	struct put_item *it;

	pthread_mutex_lock(&bt->lock);
	it = bt->n < bt->cap ? &bt->items[bt->n++] : NULL;
	pthread_mutex_unlock(&bt->lock);
	if (!it)
		return -ENOBUFS;
	memcpy(it->addr, addr, 32);
	it->blk = blk;
	it->len = len;
	it->err = -EINPROGRESS;
	if (len > PROTO_MAX_PAYLOAD - BIO_REQ_BYTES) {
		it->err = -E2BIG;
		return 0;
	}
	it->n_own = put_prepare(bt->bm, addr, blk, len, it->req, it->calls);
	if (!it->n_own) {
		it->err = -EHOSTUNREACH;   /* slot has no owner yet */
		return 0;
	}
	/* Sent now: the owners store it while the caller seals the next. */
	start_unless_unreachable(bt->b, it->calls, it->n_own, &bt->unreach);
	return 0;
}

int blockio_batch_finish(struct blockio_batch *bt, int *errs)
{
	struct blockio *b = bt->b;
	const uint8_t (*addrs)[32] = NULL;
	const void **blks = NULL;
	size_t *lens = NULL, n_stale = 0, *which = NULL;
	int *stale_errs = NULL, rc = 0;

	for (size_t i = 0; i < bt->n; i++) {
		struct put_item *it = &bt->items[i];

		if (it->err == -EINPROGRESS)
			it->err = put_collect(b, it->calls, it->n_own, it->len);
		if (it->err == -EINPROGRESS)
			n_stale++;
	}
	map_put(b, bt->bm);
	if (n_stale) {
		/* Our map was old for some: those go again, the way
		 * blockio_put_many() does it (refresh, then resend). */
		uint8_t (*a)[32] = calloc(n_stale, 32);

		addrs = (const uint8_t (*)[32])a;
		blks = calloc(n_stale, sizeof(*blks));
		lens = calloc(n_stale, sizeof(*lens));
		which = calloc(n_stale, sizeof(*which));
		stale_errs = calloc(n_stale, sizeof(*stale_errs));
		if (!a || !blks || !lens || !which || !stale_errs) {
			rc = -ENOMEM;
		} else {
			size_t k = 0;

			for (size_t i = 0; i < bt->n; i++) {
				if (bt->items[i].err != -EINPROGRESS)
					continue;
				memcpy(a[k], bt->items[i].addr, 32);
				blks[k] = bt->items[i].blk;
				lens[k] = bt->items[i].len;
				which[k++] = i;
			}
			(void)blockio_put_many(b, addrs, blks, lens, n_stale, stale_errs);
			for (k = 0; k < n_stale; k++)
				bt->items[which[k]].err = stale_errs[k];
		}
	}
	for (size_t i = 0; i < bt->n; i++) {
		int e = bt->items[i].err == -EINPROGRESS ? rc : bt->items[i].err;

		if (errs)
			errs[i] = e;
		if (e < 0 && !rc)
			rc = e;
	}
	free((void *)addrs);
	free(blks);
	free(lens);
	free(which);
	free(stale_errs);
	pthread_mutex_destroy(&bt->lock);
	pthread_mutex_destroy(&bt->unreach.lock);
	free(bt);
	return rc;
}

/* --- GET ----------------------------------------------------------------- */

/* The holders of slot: owners in order, then previous owners not already
 * listed. Returns how many. */
static unsigned holders(const struct cmap *m, unsigned slot,
			uint16_t out[2 * CMAP_MAX_WIDTH])
{
	uint16_t prev[CMAP_MAX_WIDTH];
	unsigned n = cmap_slot_owners(m, slot, out);
	unsigned np = cmap_slot_prev(m, slot, prev);

	for (unsigned i = 0; i < np; i++) {
		bool dup = false;

		for (unsigned k = 0; k < n && !dup; k++)
			dup = out[k] == prev[i];
		if (!dup)
			out[n++] = prev[i];
	}
	return n;
}

int blockio_get(struct blockio *b, const uint8_t addr[32], unsigned skip,
		uint8_t **blk, size_t *len)
{
	int rc = -ESTALE;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct bio_map *bm = map_get(b);
		uint16_t h[2 * CMAP_MAX_WIDTH];
		uint8_t req[BIO_REQ_BYTES];
		struct pool_call c = { .opcode = PROTO_OP_GET, .req = req,
				       .req_len = sizeof(req) };
		uint64_t epoch;

		if (!bm)
			return -ENOENT;
		epoch = bm->epoch;
		if (skip >= holders(bm->m, slot_of_addr(addr), h)) {
			map_put(b, bm);
			return -ENODATA;
		}
		proto_put_u64(req, epoch);
		memcpy(req + 8, addr, PROTO_ADDR_BYTES);
		c.node = cmap_node(bm->m, h[skip])->addr;
		rc = pool_run(b->pool, &c, 1);
		if (rc == 0) {
			*blk = c.resp ? c.resp : malloc(1);
			*len = c.resp_len;
			map_put(b, bm);
			if (!*blk)
				return -ENOMEM;
			atomic_fetch_add(&b->gets, 1);
			atomic_fetch_add(&b->get_bytes, c.resp_len);
			if (skip)
				atomic_fetch_add(&b->get_failovers, 1);
			return 0;
		}
		free(c.resp);
		if (rc != -ENOENT)
			log_debug("GET from %s: %s", c.node, log_strerror(rc));
		map_put(b, bm);
		if (!err_is_stale(rc))
			return rc;
		rc = -ESTALE;
		if (map_refresh_after(b, epoch) < 0)
			break;
	}
	return rc;
}

bool blockio_holder_hung(struct blockio *b, const uint8_t addr[32],
			 unsigned skip)
{
	struct bio_map *bm = map_get(b);
	uint16_t h[2 * CMAP_MAX_WIDTH];
	bool hung = false;

	if (!bm)
		return false;
	if (skip < holders(bm->m, slot_of_addr(addr), h))
		hung = pool_node_hung(b->pool, cmap_node(bm->m, h[skip])->addr);
	map_put(b, bm);
	return hung;
}

/* --- HAS ----------------------------------------------------------------- */

/* One HAS request: addrs[idx[0..k)], all owned by one node. */
struct has_req {
	struct pool_call call;
	const size_t *idx;
	uint32_t k;
	uint8_t *buf;
};

/*
 * Group the addresses by owner (counting sort over node indexes) and send
 * each owner one HAS per PROTO_HAS_MAX addresses, all pipelined. has[i] is
 * true when every owner holds addrs[i]; an owner that fails counts as "does
 * not hold" (the caller uploads, and PUT reports what is wrong).
 */
static int has_round(struct blockio *b, struct bio_map *bm,
		     const uint8_t (*addrs)[32], size_t n, bool *has, bool *stale)
{
	unsigned nn = cmap_node_count(bm->m);
	size_t *count = calloc(nn + 1, sizeof(*count));
	size_t *start = calloc(nn + 1, sizeof(*start));
	size_t *fill = calloc(nn + 1, sizeof(*fill));
	size_t *idx = NULL, n_req = 0, total = 0;
	struct has_req *reqs = NULL;
	int rc = 0;

	if (!count || !start || !fill) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint16_t own[CMAP_MAX_WIDTH];
		unsigned k = cmap_slot_owners(bm->m, slot_of_addr(addrs[i]), own);

		has[i] = k > 0;
		for (unsigned j = 0; j < k; j++)
			count[own[j]]++;
	}
	for (unsigned o = 0; o < nn; o++) {
		start[o] = total;
		total += count[o];
		n_req += (count[o] + PROTO_HAS_MAX - 1) / PROTO_HAS_MAX;
	}
	idx = malloc((total + 1) * sizeof(*idx));
	reqs = calloc(n_req + 1, sizeof(*reqs));
	if (!idx || !reqs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint16_t own[CMAP_MAX_WIDTH];
		unsigned k = cmap_slot_owners(bm->m, slot_of_addr(addrs[i]), own);

		for (unsigned j = 0; j < k; j++)
			idx[start[own[j]] + fill[own[j]]++] = i;
	}
	n_req = 0;
	for (unsigned o = 0; o < nn; o++) {
		for (size_t off = 0; off < count[o]; off += PROTO_HAS_MAX) {
			struct has_req *r = &reqs[n_req++];
			size_t k = count[o] - off < PROTO_HAS_MAX ? count[o] - off : PROTO_HAS_MAX;

			r->idx = idx + start[o] + off;
			r->k = (uint32_t)k;
			r->buf = malloc(12 + k * PROTO_ADDR_BYTES);
			if (!r->buf) {
				rc = -ENOMEM;
				goto out;
			}
			proto_put_u64(r->buf, bm->epoch);
			proto_put_u32(r->buf + 8, r->k);
			for (size_t j = 0; j < k; j++)
				memcpy(r->buf + 12 + j * PROTO_ADDR_BYTES, addrs[r->idx[j]],
				       PROTO_ADDR_BYTES);
			r->call.node = cmap_node(bm->m, o)->addr;
			r->call.opcode = PROTO_OP_HAS;
			r->call.req = r->buf;
			r->call.req_len = 12 + k * PROTO_ADDR_BYTES;
		}
	}
	for (size_t i = 0; i < n_req; i++)
		(void)pool_start(b->pool, &reqs[i].call);
	for (size_t i = 0; i < n_req; i++) {
		struct has_req *r = &reqs[i];
		int e = pool_wait(b->pool, &r->call);
		struct proto_reader rd;
		const uint8_t *bits = NULL;
		uint32_t got = 0;

		if (!e) {
			proto_reader_init(&rd, r->call.resp, r->call.resp_len);
			proto_read_u32(&rd, &got);
			if (!rd.bad && got == r->k)
				proto_read_bytes(&rd, (got + 7) / 8, &bits);
			if (rd.bad || got != r->k || rd.left)
				e = -EPROTO;
		}
		if (e < 0) {
			if (err_is_stale(e))
				*stale = true;
			if (!rc || (rc == -ESTALE && !err_is_stale(e)))
				rc = err_is_stale(e) ? -ESTALE : e;
			for (uint32_t j = 0; j < r->k; j++)
				has[r->idx[j]] = false;
		} else {
			for (uint32_t j = 0; j < r->k; j++)
				if (!(bits[j / 8] & (1u << (j % 8))))
					has[r->idx[j]] = false;
		}
		free(r->call.resp);
		r->call.resp = NULL;
	}
out:
	for (size_t i = 0; reqs && i < n_req; i++)
		free(reqs[i].buf);
	free(reqs);
	free(idx);
	free(count);
	free(start);
	free(fill);
	return rc;
}

int blockio_has(struct blockio *b, const uint8_t (*addrs)[32], size_t n,
		bool *has)
{
	int rc = -ENOENT;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct bio_map *bm = map_get(b);
		bool stale = false;
		uint64_t epoch;

		if (!bm)
			break;
		epoch = bm->epoch;
		rc = has_round(b, bm, addrs, n, has, &stale);
		map_put(b, bm);
		if (!stale)
			break;
		if (map_refresh_after(b, epoch) < 0)
			break;
	}
	if (rc == -ENOMEM || rc == -ENOENT)
		memset(has, 0, n * sizeof(*has));
	return rc;
}

/* --- DELETE -------------------------------------------------------------- */

/*
 * Delete addrs from every owner and previous owner, all at once: the
 * DELETEs are pipelined, so a daemon makes many of them durable with one
 * sync (one at a time, removing a large file cost a daemon sync per block,
 * for minutes of background disk work). errs[i] gets each one's result.
 */
int blockio_delete_many(struct blockio *b, const uint8_t (*addrs)[32],
			size_t n, int *errs)
{
	struct pool_call *calls = NULL;
	uint8_t (*req)[BIO_REQ_BYTES] = NULL;
	size_t *first = NULL;            /* each address's first call */
	bool *pending = NULL;
	int rc = 0;

	calls = calloc(n * 2 * CMAP_MAX_WIDTH + 1, sizeof(*calls));
	req = calloc(n + 1, sizeof(*req));
	first = calloc(n + 1, sizeof(*first));
	pending = calloc(n + 1, sizeof(*pending));
	if (!calls || !req || !first || !pending) {
		rc = -ENOMEM;
		for (size_t i = 0; i < n; i++)
			errs[i] = rc;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		pending[i] = true;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct bio_map *bm = map_get(b);
		size_t nc = 0;
		uint64_t epoch;
		bool stale = false;

		if (!bm) {
			for (size_t i = 0; i < n; i++)
				if (pending[i])
					errs[i] = -ENOENT;
			break;
		}
		epoch = bm->epoch;
		memset(calls, 0, n * 2 * CMAP_MAX_WIDTH * sizeof(*calls));
		for (size_t i = 0; i < n; i++) {
			uint16_t h[2 * CMAP_MAX_WIDTH];
			unsigned k;

			first[i] = nc;
			if (!pending[i])
				continue;
			k = holders(bm->m, slot_of_addr(addrs[i]), h);
			proto_put_u64(req[i], epoch);
			memcpy(req[i] + 8, addrs[i], PROTO_ADDR_BYTES);
			for (unsigned j = 0; j < k; j++, nc++) {
				calls[nc].node = cmap_node(bm->m, h[j])->addr;
				calls[nc].opcode = PROTO_OP_DELETE;
				calls[nc].req = req[i];
				calls[nc].req_len = sizeof(req[i]);
			}
		}
		first[n] = nc;
		run_unless_unreachable(b, calls, nc);
		for (size_t i = 0; i < n; i++) {
			bool this_stale = false;

			if (!pending[i])
				continue;
			errs[i] = 0;
			for (size_t c = first[i]; c < first[i + 1]; c++) {
				int e = calls[c].err;

				free(calls[c].resp);
				calls[c].resp = NULL;
				if (e == -ENOENT || !e)
					continue;
				if (err_is_stale(e))
					this_stale = true;
				else if (!errs[i])
					errs[i] = e;
			}
			if (this_stale) {
				errs[i] = -ESTALE;   /* tried again under a newer map */
				stale = true;
			} else {
				pending[i] = false;
			}
		}
		map_put(b, bm);
		if (!stale || map_refresh_after(b, epoch) < 0)
			break;
	}
	for (size_t i = 0; i < n; i++)
		if (errs[i] && !rc)
			rc = errs[i];
out:
	free(calls);
	free(req);
	free(first);
	free(pending);
	return rc;
}

int blockio_delete(struct blockio *b, const uint8_t addr[32])
{
	int err = 0;

	(void)blockio_delete_many(b, (const uint8_t (*)[32])addr, 1, &err);
	return err;
}
