/*
 * srv_jobs: the operations that touch the disk (PUT, GET, HAS, DELETE,
 * LIST_SLOT, NODE_STATUS, MAP_PUSH's write), run on the diskpool's workers
 * so the loop never waits on a disk. A job owns its request payload; its
 * answer goes back through the loop (job_done). A PUT's worker moves on
 * once the block is written: the store's committer makes a batch durable
 * and finishes each job (put_committed).
 */
#define _GNU_SOURCE
#include "daemon/srv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cluster/log.h"

struct job {
	struct diskpool_job dj;
	struct conn *c;
	uint8_t op;
	uint64_t id;
	uint8_t *frame;                  /* the request payload, owned */
	size_t len;
	int err;
	uint8_t *resp;                   /* answer payload, malloc'd */
	const uint8_t *resp_data;        /* NULL, or the payload inside resp */
	size_t resp_len;
	bool resp_borrowed;
};

static bool job_run(struct diskpool_job *dj);

static void job_done(struct diskpool_job *dj)
{
	struct job *j = (struct job *)dj;
	struct conn *c = j->c;
	char a[9] = "";

	if (j->err && j->err != -ENOENT && j->err != -ESTALE &&
	    j->frame && j->len >= EPOCH_BYTES + PROTO_ADDR_BYTES)
		log_addr_short(j->frame + EPOCH_BYTES, a);
	if (j->err == -EBADMSG && j->op == PROTO_OP_GET)
		log_err("block %s is corrupt on disk (checksum mismatch), "
			"answering CORRUPT to %s", a, c->peer);
	else if (j->err == -ENOSPC)
		log_warn("cannot store block %s for %s: %s", a, c->peer,
			 log_strerror(j->err));
	else if (j->err && j->err != -ENOENT && j->err != -ESTALE &&
		 j->op != PROTO_OP_MAP_PUSH)
		log_warn("%s %s from %s failed: %s", proto_op_name(j->op), a,
			 c->peer, log_strerror(j->err));
	if (j->op == PROTO_OP_MAP_PUSH && j->err)
		log_warn("peer %s: map push refused: %s", c->peer,
			 log_strerror(j->err));
	if (!c->closed) {
		if (j->err == -ESTALE) {
			uint8_t e[EPOCH_BYTES];

			proto_put_u64(e, srv_epoch(c->srv));
			conn_answer(c, j->op, PROTO_ST_STALE, j->id, e, sizeof(e),
				    NULL, 0);
		} else if (j->err == -EBADMSG && j->op == PROTO_OP_MAP_PUSH) {
			conn_answer(c, j->op, PROTO_ST_BAD_SIGNATURE, j->id,
				    NULL, 0, NULL, 0);
		} else if (j->err) {
			conn_status(c, j->op, j->err, j->id);
		} else if (j->resp_data) {
			/* a block: sent from the buffer it was read into */
			conn_answer_owned(c, j->op, j->id, j->resp,
					  j->resp_data, j->resp_len);
			j->resp = NULL;
		} else {
			conn_answer(c, j->op, PROTO_ST_OK, j->id, j->resp,
				    j->resp_len, NULL, 0);
		}
	}
	c->inflight--;
	c->inflight_bytes -= j->len;
	conn_update_read(c);
	conn_unref(c);
	free(j->frame);
	free(j->resp);
	free(j);
}

void srv_job_submit(struct conn *c, uint8_t op, uint64_t id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		conn_status(c, op, -ENOMEM, id);
		return;
	}
	j->dj.run = job_run;
	j->dj.done = job_done;
	j->c = c;
	j->op = op;
	j->id = id;
	j->frame = c->body;              /* the job takes the payload */
	j->len = c->h.length;
	c->body = NULL;
	c->body_cap = 0;
	c->refs++;
	c->inflight++;
	c->inflight_bytes += j->len;
	diskpool_submit(c->srv->dp, &j->dj);
	conn_update_read(c);         /* pipelining stops at the bounds */
}

static int job_alloc(struct job *j, size_t len)
{
	j->resp = malloc(len ? len : 1);
	j->resp_len = len;
	return j->resp ? 0 : -ENOMEM;
}

static void run_has(struct job *j, struct store *st)
{
	struct proto_reader r;
	uint64_t epoch;
	uint32_t n;
	const uint8_t *addrs;

	proto_reader_init(&r, j->frame, j->len);
	proto_read_u64(&r, &epoch);
	proto_read_u32(&r, &n);
	if (r.bad || n > PROTO_HAS_MAX ||
	    !proto_read_bytes(&r, (size_t)n * PROTO_ADDR_BYTES, &addrs) || r.left) {
		j->err = -EPROTO;
		return;
	}
	j->err = job_alloc(j, 4 + (n + 7) / 8);
	if (j->err)
		return;
	memset(j->resp, 0, j->resp_len);
	proto_put_u32(j->resp, n);
	for (uint32_t i = 0; i < n; i++) {
		int h = store_has(st, addrs + (size_t)i * PROTO_ADDR_BYTES);

		if (h < 0) {
			j->err = h;
			return;
		}
		if (h)
			j->resp[4 + i / 8] |= (uint8_t)(1u << (i % 8));
	}
}

static void run_list(struct job *j, struct store *st)
{
	struct proto_reader r;
	uint64_t epoch;
	uint16_t slot;
	uint32_t max;
	uint8_t has_after;
	const uint8_t *after;
	struct store_entry *e;
	bool more;
	int n;

	proto_reader_init(&r, j->frame, j->len);
	proto_read_u64(&r, &epoch);
	proto_read_u16(&r, &slot);
	proto_read_u32(&r, &max);
	proto_read_u8(&r, &has_after);
	proto_read_bytes(&r, PROTO_ADDR_BYTES, &after);
	if (r.bad || r.left || slot >= CMAP_SLOTS || has_after > 1) {
		j->err = -EPROTO;
		return;
	}
	if (max == 0 || max > PROTO_LIST_MAX)
		max = PROTO_LIST_MAX;
	e = malloc(max * sizeof(*e));
	if (!e) {
		j->err = -ENOMEM;
		return;
	}
	n = store_list(st, slot, has_after ? after : NULL, e, max, &more);
	if (n < 0) {
		j->err = n;
		goto out;
	}
	j->err = job_alloc(j, 5 + (size_t)n * (PROTO_ADDR_BYTES + 4));
	if (j->err)
		goto out;
	proto_put_u32(j->resp, (uint32_t)n);
	j->resp[4] = more;
	for (int i = 0; i < n; i++) {
		uint8_t *p = j->resp + 5 + (size_t)i * (PROTO_ADDR_BYTES + 4);

		memcpy(p, e[i].addr, PROTO_ADDR_BYTES);
		proto_put_u32(p + PROTO_ADDR_BYTES, e[i].size);
	}
out:
	free(e);
}

static void run_status(struct job *j, struct srv *s)
{
	struct store_stats st;
	struct statvfs vfs;
	uint64_t v[PROTO_STAT_MAX + 1] = { 0 };

	store_get_stats(s->st, &st);
	if (statvfs(s->data_dir, &vfs) == 0) {
		v[PROTO_STAT_DISK_TOTAL] = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		v[PROTO_STAT_DISK_FREE] = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	}
	v[PROTO_STAT_EPOCH] = srv_epoch(s);
	v[PROTO_STAT_BLOCKS] = st.blocks;
	v[PROTO_STAT_BYTES] = st.bytes;
	v[PROTO_STAT_PUTS] = st.puts;
	v[PROTO_STAT_PUT_NEW] = st.puts_new;
	v[PROTO_STAT_PUT_BYTES] = st.bytes_written;
	v[PROTO_STAT_GETS] = st.gets;
	v[PROTO_STAT_GET_BYTES] = st.bytes_read;
	v[PROTO_STAT_DELETES] = st.deletes;
	v[PROTO_STAT_CORRUPT_BLOCKS] = st.corrupt;
	v[PROTO_STAT_PACK_BYTES] = st.pack_bytes;
	v[PROTO_STAT_PACK_DEAD_BYTES] = st.pack_dead_bytes;
	v[PROTO_STAT_COMPACTIONS] = st.compactions;
	v[PROTO_STAT_COMPACT_READ_BYTES] = st.compact_read;
	/* loop-owned figures were copied into the request payload slot */
	if (j->len == 4 * 8) {
		v[PROTO_STAT_UPTIME_S] = proto_get_u64(j->frame);
		v[PROTO_STAT_CONNECTIONS] = proto_get_u64(j->frame + 8);
		v[PROTO_STAT_PROTO_ERRORS] = proto_get_u64(j->frame + 16);
		v[PROTO_STAT_AUTH_FAILURES] = proto_get_u64(j->frame + 24);
	}
	j->err = job_alloc(j, 2 + PROTO_STAT_MAX * 10);
	if (j->err)
		return;
	proto_put_u16(j->resp, PROTO_STAT_MAX);
	for (unsigned k = 1; k <= PROTO_STAT_MAX; k++) {
		proto_put_u16(j->resp + 2 + (k - 1) * 10, (uint16_t)k);
		proto_put_u64(j->resp + 4 + (k - 1) * 10, v[k]);
	}
}

/* A PUT is durable (store committer thread): its answer, then the loop. */
static void put_committed(void *arg, int r)
{
	struct job *j = arg;

	if (r >= 0 && !(j->err = job_alloc(j, 1)))
		j->resp[0] = (uint8_t)r;
	else if (r < 0)
		j->err = r;
	diskpool_finish(j->c->srv->dp, &j->dj);
}

/* A DELETE is durable (store committer thread). */
static void delete_committed(void *arg, int r)
{
	struct job *j = arg;

	j->err = r < 0 ? r : 0;
	diskpool_finish(j->c->srv->dp, &j->dj);
}

static bool job_run(struct diskpool_job *dj)
{
	struct job *j = (struct job *)dj;
	struct srv *s = j->c->srv;
	const uint8_t *addr = j->frame + EPOCH_BYTES;
	int r;

	switch (j->op) {
	case PROTO_OP_PUT:
		/* written now; the worker moves on while the store makes a
		 * whole batch durable (group commit) and answers it */
		r = store_put_async(s->st, addr, addr + PROTO_ADDR_BYTES,
				    j->len - EPOCH_BYTES - PROTO_ADDR_BYTES,
				    put_committed, j);
		if (r == 0)
			return true;
		j->err = r;
		break;
	case PROTO_OP_GET:
		j->err = store_get_buf(s->st, addr, &j->resp, &j->resp_data,
				       &j->resp_len);
		break;
	case PROTO_OP_DELETE:
		/* unlinked now; answered when the committer's sync made it
		 * durable (many DELETEs share one sync) */
		r = store_delete_async(s->st, addr, delete_committed, j);
		if (r == 0)
			return true;
		j->err = r;
		break;
	case PROTO_OP_HAS:
		run_has(j, s->st);
		break;
	case PROTO_OP_LIST_SLOT:
		run_list(j, s->st);
		break;
	case PROTO_OP_NODE_STATUS:
		run_status(j, s);
		break;
	case PROTO_OP_MAP_PUSH:
		j->err = srv_map_adopt(s, j->frame, j->len);
		if (j->err == -EKEYREJECTED)
			j->err = -EBADMSG;   /* both: not signed by our admin */
		break;
	default:
		abort();                 /* dispatch submits only the above */
	}
	return false;
}

