/*
 * srv: cairnd's event loop and operations.
 *
 * One libev loop owns every socket. A connection reads one frame at a time:
 * the 16-byte header is checked by proto_decode_header() before any payload
 * is buffered, and the payload buffer grows only as bytes arrive, so a
 * declared length costs nothing until it is sent. Before the handshake only
 * HELLO frames and PROTO_PREAUTH_MAX_BYTES in all are accepted; after it,
 * every frame must carry a valid tag (hs_verify_frame), so a replayed or
 * reordered frame closes the connection.
 *
 * Disk work (PUT, GET, HAS, DELETE, LIST_SLOT, NODE_STATUS, MAP_PUSH's
 * write) runs on the diskpool; answers come back on the loop. Answers may
 * leave in another order than requests came: request ids pair them.
 *
 * Limits that keep a bad peer from hurting others: a connection cap; a
 * handshake deadline; a frame deadline (a started frame must complete);
 * an idle timeout; at most CONN_MAX_INFLIGHT requests (and
 * CONN_INFLIGHT_BYTES_HIGH of their bytes) in flight and CONN_OUT_HIGH
 * bytes of answers queued before we stop reading; a peer
 * that does not read its answers for frame-timeout is dropped.
 *
 * The parts: this file has the loop, connections, the handshake and the
 * operations answered on the loop; srv_jobs.c the operations run on the
 * disk workers; srv_state.c the node's files, the map and gossip.
 */
#define _GNU_SOURCE
#include "daemon/srv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "cluster/log.h"
#include "cluster/proto.h"
#include "daemon/diskpool.h"
#include "daemon/peer.h"
#include "daemon/store.h"

/* ---------- connections: output ---------- */

static void outbuf_free(struct outbuf *b)
{
	free(b->ext_owned);
	free(b);
}

void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	while (c->out_head) {
		struct outbuf *b = c->out_head;

		c->out_head = b->next;
		outbuf_free(b);
	}
	free(c->body);
	handshake_free(c->hs);
	sodium_memzero(&c->sess, sizeof(c->sess));
	free(c);
}

static void conn_close(struct conn *c, const char *why)
{
	struct srv *s = c->srv;

	if (c->closed)
		return;
	if (why)
		log_warn("peer %s: %s, closing", c->peer, why);
	else
		log_debug("peer %s: closed", c->peer);
	c->closed = true;
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	close(c->fd);
	c->fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	conn_unref(c);
}

void conn_update_read(struct conn *c)
{
	bool want = !c->closed && !c->srv->stopping &&
		    c->inflight < CONN_MAX_INFLIGHT && c->out_bytes < CONN_OUT_HIGH &&
		    c->inflight_bytes < CONN_INFLIGHT_BYTES_HIGH;

	if (want && c->paused) {
		ev_io_start(c->srv->loop, &c->rio);
		c->paused = false;
	} else if (!want && !c->paused && !c->closed) {
		ev_io_stop(c->srv->loop, &c->rio);
		c->paused = true;
	}
}

/* Queue an answer: header, payload a then b (copied in), then ext (sent
 * from its own buffer, ext_owned freed after), then the tag when
 * authenticated. */
static void queue_answer(struct conn *c, uint8_t op, uint8_t status,
			 uint64_t id, const void *a, size_t a_len,
			 const void *b, size_t b_len, void *ext_owned,
			 const uint8_t *ext, size_t ext_len)
{
	struct proto_header h = { .version = PROTO_VERSION, .opcode = op,
				  .flags = PROTO_F_RESPONSE, .status = status,
				  .length = (uint32_t)(a_len + b_len + ext_len),
				  .request_id = id };
	bool tag = c->state == CONN_AUTH;
	size_t head = PROTO_HEADER_BYTES + a_len + b_len;
	size_t tag_len = tag ? PROTO_TAG_BYTES : 0;
	struct outbuf *o;

	if (c->closed) {
		free(ext_owned);
		return;
	}
	o = malloc(sizeof(*o) + head + tag_len);
	if (!o) {
		free(ext_owned);
		conn_close(c, "out of memory for an answer");
		return;
	}
	o->next = NULL;
	o->len = head + ext_len + tag_len;
	o->off = 0;
	o->head_len = head;
	o->ext = ext;
	o->ext_len = ext_len;
	o->ext_owned = ext_owned;
	proto_encode_header(&h, o->data);
	if (a_len)
		memcpy(o->data + PROTO_HEADER_BYTES, a, a_len);
	if (b_len)
		memcpy(o->data + PROTO_HEADER_BYTES + a_len, b, b_len);
	if (tag) {
		struct iovec iov[2] = { { o->data, head },
					{ (void *)ext, ext_len } };

		hs_tag_frame(&c->sess, iov, ext_len ? 2 : 1, o->data + head);
	}
	if (!c->out_head)
		c->last_write = ev_now(c->srv->loop);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->len;
	ev_io_start(c->srv->loop, &c->wio);
	conn_update_read(c);
}

void conn_answer(struct conn *c, uint8_t op, uint8_t status,
		 uint64_t id, const void *a, size_t a_len,
		 const void *b, size_t b_len)
{
	queue_answer(c, op, status, id, a, a_len, b, b_len, NULL, NULL, 0);
}

void conn_answer_owned(struct conn *c, uint8_t op, uint64_t id, void *owned,
		       const uint8_t *body, size_t len)
{
	queue_answer(c, op, PROTO_ST_OK, id, NULL, 0, NULL, 0, owned, body, len);
}

void conn_status(struct conn *c, uint8_t op, int err, uint64_t id)
{
	conn_answer(c, op, proto_err_to_status(err), id, NULL, 0, NULL, 0);
}

/* The unsent parts of one answer as up to 3 iovecs. */
static int outbuf_iov(const struct outbuf *b, struct iovec *iov)
{
	struct iovec seg[3] = {
		{ (void *)b->data, b->head_len },
		{ (void *)b->ext, b->ext_len },
		{ (void *)(b->data + b->head_len), b->len - b->head_len - b->ext_len },
	};
	size_t skip = b->off;
	int n = 0;

	for (int i = 0; i < 3; i++) {
		if (skip >= seg[i].iov_len) {
			skip -= seg[i].iov_len;
			continue;
		}
		iov[n].iov_base = (uint8_t *)seg[i].iov_base + skip;
		iov[n].iov_len = seg[i].iov_len - skip;
		skip = 0;
		n++;
	}
	return n;
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct iovec iov[48];
	int n = 0;
	ssize_t got;

	(void)loop;
	(void)revents;
	for (struct outbuf *b = c->out_head; b && n + 3 <= 48; b = b->next)
		n += outbuf_iov(b, iov + n);
	if (!n) {
		ev_io_stop(c->srv->loop, &c->wio);
		return;
	}
	got = writev(c->fd, iov, n);
	if (got < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c, "write failed");
		return;
	}
	c->last_write = ev_now(c->srv->loop);
	c->out_bytes -= (size_t)got;
	while (got > 0) {
		struct outbuf *b = c->out_head;
		size_t left = b->len - b->off;

		if ((size_t)got < left) {
			b->off += (size_t)got;
			break;
		}
		got -= (ssize_t)left;
		c->out_head = b->next;
		if (!c->out_head)
			c->out_tail = NULL;
		outbuf_free(b);
	}
	if (!c->out_head)
		ev_io_stop(c->srv->loop, &c->wio);
	conn_update_read(c);
}

/* ---------- operations on the loop ---------- */

/* Requests that name an epoch: older than ours gets STALE (0: none yet). */
static bool op_check_epoch(struct conn *c, uint64_t id)
{
	uint64_t theirs = proto_get_u64(c->body), ours = srv_epoch(c->srv);
	uint8_t e[EPOCH_BYTES];

	if (theirs == 0 || theirs >= ours)
		return true;
	proto_put_u64(e, ours);
	conn_answer(c, c->h.opcode, PROTO_ST_STALE, id, e, sizeof(e), NULL, 0);
	return false;
}

static int op_block(struct conn *c)
{
	size_t min = EPOCH_BYTES + PROTO_ADDR_BYTES;

	if (c->h.length < min)
		return -EPROTO;
	if (c->h.opcode != PROTO_OP_PUT && c->h.length != min)
		return -EPROTO;
	if (op_check_epoch(c, c->h.request_id))
		srv_job_submit(c, c->h.opcode, c->h.request_id);
	return 0;
}

static int op_epoch_job(struct conn *c)
{
	if (c->h.length < EPOCH_BYTES)
		return -EPROTO;
	if (op_check_epoch(c, c->h.request_id))
		srv_job_submit(c, c->h.opcode, c->h.request_id);
	return 0;
}

static int op_map_get(struct conn *c)
{
	struct srv *s = c->srv;
	uint8_t *copy = NULL;
	size_t len = 0;

	if (c->h.length)
		return -EPROTO;
	pthread_mutex_lock(&s->map_lock);
	if (s->map_enc && (copy = malloc(s->map_len))) {
		memcpy(copy, s->map_enc, s->map_len);
		len = s->map_len;
	}
	pthread_mutex_unlock(&s->map_lock);
	if (copy)
		conn_answer(c, c->h.opcode, PROTO_ST_OK, c->h.request_id, copy,
			    len, NULL, 0);
	else
		conn_status(c, c->h.opcode, -ENOENT, c->h.request_id);
	free(copy);
	return 0;
}

static int op_map_push(struct conn *c)
{
	if (c->h.length == 0 || c->h.length > CMAP_MAX_ENCODED)
		return -EPROTO;
	srv_job_submit(c, c->h.opcode, c->h.request_id);
	return 0;
}

static int op_status(struct conn *c)
{
	struct srv *s = c->srv;
	uint8_t *p;

	if (c->h.length)
		return -EPROTO;
	/* hand loop-owned figures to the job in the payload buffer */
	p = realloc(c->body, 32);
	if (!p)
		return -ENOMEM;
	c->body = p;
	proto_put_u64(p, (uint64_t)(ev_now(s->loop) - s->started));
	proto_put_u64(p + 8, s->n_conns);
	proto_put_u64(p + 16, s->proto_errors);
	proto_put_u64(p + 24, s->auth_failures);
	c->h.length = 32;
	srv_job_submit(c, c->h.opcode, c->h.request_id);
	return 0;
}

static int op_ping(struct conn *c)
{
	uint8_t e[EPOCH_BYTES];

	if (c->h.length != EPOCH_BYTES)
		return -EPROTO;
	proto_put_u64(e, srv_epoch(c->srv));
	conn_answer(c, c->h.opcode, PROTO_ST_OK, c->h.request_id, e, sizeof(e),
		    NULL, 0);
	return 0;
}

struct op_entry {
	int (*fn)(struct conn *c);       /* 0, or -EPROTO to drop the peer */
};

static const struct op_entry op_table[PROTO_OP_MAX + 1] = {
	[PROTO_OP_PUT] = { op_block },
	[PROTO_OP_GET] = { op_block },
	[PROTO_OP_DELETE] = { op_block },
	[PROTO_OP_HAS] = { op_epoch_job },
	[PROTO_OP_LIST_SLOT] = { op_epoch_job },
	[PROTO_OP_MAP_GET] = { op_map_get },
	[PROTO_OP_MAP_PUSH] = { op_map_push },
	[PROTO_OP_NODE_STATUS] = { op_status },
	[PROTO_OP_PING] = { op_ping },
};

/* ---------- the handshake ---------- */

static void hello_ctx(struct srv *s, uint8_t ctx[PEER_CTX_BYTES])
{
	memcpy(ctx, s->node_id, CMAP_NODE_ID_BYTES);
	pthread_mutex_lock(&s->map_lock);
	if (s->map)
		memcpy(ctx + 16, cmap_cluster_id(s->map), CMAP_CLUSTER_ID_BYTES);
	else
		memset(ctx + 16, 0, CMAP_CLUSTER_ID_BYTES);
	proto_put_u64(ctx + 32, s->epoch);
	pthread_mutex_unlock(&s->map_lock);
}

/* Returns NULL, or why the peer is dropped. */
static const char *conn_hello(struct conn *c)
{
	struct srv *s = c->srv;
	const uint8_t *p = c->body;

	if (c->h.opcode != PROTO_OP_HELLO)
		return "request before the handshake";
	if (c->h.flags)
		return "answer where a hello was expected";
	if (c->state == CONN_HELLO) {
		uint8_t ans[HS_REPLY_BYTES + PEER_CTX_BYTES];

		if (c->h.length != 1 + HS_HELLO_BYTES || p[0] != 1)
			return "malformed hello";
		hello_ctx(s, ans + HS_REPLY_BYTES);
		if (handshake_server_new(s->o.secret, p + 1, ans + HS_REPLY_BYTES,
					 PEER_CTX_BYTES, ans, &c->hs))
			return "handshake failed";
		c->state = CONN_FINISH;
		conn_answer(c, PROTO_OP_HELLO, PROTO_ST_OK, c->h.request_id, ans,
			    sizeof(ans), NULL, 0);
		return NULL;
	}
	if (c->h.length != 1 + HS_FINISH_BYTES || p[0] != 2)
		return "malformed hello finish";
	if (handshake_server_finish(c->hs, p + 1, &c->sess)) {
		s->auth_failures++;
		return "handshake refused: wrong cluster secret";
	}
	handshake_free(c->hs);
	c->hs = NULL;
	c->state = CONN_AUTH;
	conn_answer(c, PROTO_OP_HELLO, PROTO_ST_OK, c->h.request_id, NULL, 0,
		    NULL, 0);
	log_debug("peer %s: authenticated", c->peer);
	return NULL;
}

/* ---------- connections: input ---------- */

/* A whole frame is in c->hdr/c->body. Returns NULL or why to drop. */
static const char *conn_frame(struct conn *c)
{
	struct srv *s = c->srv;
	const struct op_entry *e;
	int err;

	if (c->state != CONN_AUTH)
		return conn_hello(c);
	{
		struct iovec iov[2] = { { c->hdr, PROTO_HEADER_BYTES },
					{ c->body, c->h.length } };

		if (hs_verify_frame(&c->sess, iov, 2, c->body + c->h.length)) {
			s->auth_failures++;
			return "frame failed authentication (forged, replayed or reordered)";
		}
	}
	if (c->h.flags & PROTO_F_RESPONSE)
		return "answer where a request was expected";
	if (c->h.opcode == PROTO_OP_HELLO)
		return "hello after the handshake";
	e = &op_table[c->h.opcode];
	if (!e->fn) {
		conn_status(c, c->h.opcode, -ENOTSUP, c->h.request_id);
		return NULL;
	}
	err = e->fn(c);
	if (err == -EPROTO) {
		/* a malformed payload: answer, and keep the (authenticated) peer */
		log_warn("peer %s: malformed %s request %llu", c->peer,
			 proto_op_name(c->h.opcode),
			 (unsigned long long)c->h.request_id);
		s->proto_errors++;
		conn_status(c, c->h.opcode, -EPROTO, c->h.request_id);
	} else if (err) {
		conn_status(c, c->h.opcode, err, c->h.request_id);
	}
	return NULL;
}

static const char *header_reason(int err)
{
	switch (err) {
	case -ENOTSUP:
		return "bad protocol version";
	case -E2BIG:
		return "frame length over the limit";
	default:
		return "malformed frame header (opcode, flags or status)";
	}
}

/* Read some; returns NULL or why to drop (""=quiet EOF). *again is
 * cleared when the socket has nothing more for now. */
static const char *conn_read(struct conn *c, bool *again)
{
	struct srv *s = c->srv;
	bool auth = c->state == CONN_AUTH;
	ssize_t n;

	if (!c->in_body) {
		n = read(c->fd, c->hdr + c->hdr_have,
			 PROTO_HEADER_BYTES - c->hdr_have);
		if (n <= 0)
			goto rd_err;
		if (c->hdr_have == 0)
			c->frame_start = ev_now(s->loop);
		c->hdr_have += (size_t)n;
		c->preauth_bytes += auth ? 0 : (size_t)n;
		if (c->hdr_have < PROTO_HEADER_BYTES)
			return NULL;
		int err = proto_decode_header(c->hdr, auth ? PROTO_MAX_PAYLOAD
				: PROTO_PREAUTH_MAX_BYTES, &c->h);
		if (err) {
			s->proto_errors++;
			return header_reason(err);
		}
		if (!auth && c->h.opcode != PROTO_OP_HELLO) {
			s->proto_errors++;
			return "request before the handshake";
		}
		if (!auth && c->preauth_bytes + c->h.length > PROTO_PREAUTH_MAX_BYTES) {
			s->proto_errors++;
			return "over the pre-authentication byte limit";
		}
		c->in_body = true;
		c->body_need = c->h.length + (auth ? PROTO_TAG_BYTES : 0);
		c->body_have = 0;
	}
	if (c->body_need > c->body_cap) {
		/* grow with what arrives, never to the declared length at once */
		size_t cap = c->body_have + CONN_BODY_STEP;
		uint8_t *p;

		if (cap < 2 * c->body_cap)
			cap = 2 * c->body_cap;
		if (cap > c->body_need)
			cap = c->body_need;
		if (c->body_have == c->body_cap) {
			p = realloc(c->body, cap ? cap : 1);
			if (!p)
				return "out of memory";
			c->body = p;
			c->body_cap = cap;
		}
	}
	if (c->body_have < c->body_need) {
		size_t want = (c->body_cap < c->body_need ? c->body_cap : c->body_need)
			      - c->body_have;

		n = read(c->fd, c->body + c->body_have, want);
		if (n <= 0)
			goto rd_err;
		c->body_have += (size_t)n;
		c->preauth_bytes += auth ? 0 : (size_t)n;
		if (c->body_have < c->body_need)
			return NULL;
	}
	if (!c->body) {
		c->body = malloc(1);
		if (!c->body)
			return "out of memory";
		c->body_cap = 1;
	}
	c->last_active = ev_now(s->loop);
	const char *why = conn_frame(c);

	c->hdr_have = 0;
	c->in_body = false;
	c->body_have = 0;
	if (c->body_cap > (1u << 20)) {  /* keep no big buffer for idle peers */
		free(c->body);
		c->body = NULL;
		c->body_cap = 0;
	}
	return why;
rd_err:
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		*again = false;
		return NULL;
	}
	if (c->hdr_have == 0 && !c->in_body && c->state == CONN_AUTH)
		return "";                       /* a clean close between frames */
	if (n < 0)
		return "read failed";
	return c->state == CONN_AUTH ? "closed in the middle of a frame"
				     : "closed during the handshake";
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	/* a few frames per wake-up, so one peer cannot starve the others */
	bool again = true;

	for (int i = 0; i < 64 && again && !c->closed && !c->paused; i++) {
		const char *why = conn_read(c, &again);

		if (why) {
			conn_close(c, *why ? why : NULL);
			return;
		}
	}
}

/* ---------- accept, timers, signals ---------- */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct srv *s = w->data;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	char host[64] = "?", port[16] = "?";
	struct conn *c;
	int fd, one = 1;

	(void)revents;
	fd = accept4(s->lfd, (struct sockaddr *)&sa, &sl,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
			log_warn("cannot accept: %s; pausing accept",
				 log_strerror(-errno));
			ev_io_stop(loop, &s->lio);
			ev_timer_start(loop, &s->accept_retry);
		}
		return;
	}
	getnameinfo((struct sockaddr *)&sa, sl, host, sizeof(host), port,
		    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	if (s->n_conns >= s->o.max_connections) {
		log_warn("peer %s:%s: connection cap %u reached, closing", host,
			 port, s->o.max_connections);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = s;
	c->fd = fd;
	c->refs = 1;
	snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
	c->accepted = c->last_active = c->last_write = ev_now(loop);
	ev_io_init(&c->rio, read_cb, fd, EV_READ);
	ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	ev_io_start(loop, &c->rio);
	log_debug("peer %s: connected", c->peer);
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct srv *s = w->data;

	(void)revents;
	if (!s->stopping)
		ev_io_start(loop, &s->lio);
}

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct srv *s = w->data;
	ev_tstamp now = ev_now(loop);
	struct conn *c = s->conns, *next;

	(void)revents;
	for (; c; c = next) {
		next = c->next;
		if (c->state != CONN_AUTH &&
		    now - c->accepted > s->o.handshake_timeout_s)
			conn_close(c, "handshake deadline passed");
		else if ((c->hdr_have || c->in_body) && !c->paused &&
			 now - c->frame_start > s->o.frame_timeout_s)
			conn_close(c, "frame deadline passed (slow sender)");
		else if (c->out_head && now - c->last_write > s->o.frame_timeout_s)
			conn_close(c, "peer does not read its answers");
		else if (!c->out_head && !c->inflight && !c->hdr_have &&
			 !c->in_body && now - c->last_active > s->o.idle_timeout_s)
			conn_close(c, "idle timeout");
	}
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct srv *s = w->data;
	bool out = false;

	(void)revents;
	for (struct conn *c = s->conns; c; c = c->next)
		out |= c->out_head != NULL;
	/* disk work in flight finishes; answers get a short grace to leave */
	if (diskpool_pending(s->dp) == 0 &&
	    (!out || ev_now(loop) - s->stop_time > 2.0))
		ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct srv *s = w->data;

	(void)revents;
	if (s->stopping)
		return;
	log_info("signal %d: stop accepting, finishing %u disk jobs", w->signum,
		 diskpool_pending(s->dp));
	s->stopping = true;
	s->stop_time = ev_now(loop);
	ev_io_stop(loop, &s->lio);
	ev_timer_stop(loop, &s->accept_retry);
	for (struct conn *c = s->conns; c; c = c->next)
		conn_update_read(c);
	ev_timer_start(loop, &s->drain);
}

static int srv_listen(struct srv *s)
{
	char host[256], port[16], nh[INET6_ADDRSTRLEN], np[16], text[sizeof(s->listen_addr) + 2];
	const char *colon = strrchr(s->o.listen, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *ai = NULL;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	size_t hl;
	int one = 1, err = 0, r;

	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(port))
		goto bad;
	hl = (size_t)(colon - s->o.listen);
	const char *h = s->o.listen;
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	r = getaddrinfo(hl ? host : NULL, port, &hints, &ai);
	if (r || !ai) {
		log_err("cannot resolve listen address %s: %s", s->o.listen,
			gai_strerror(r));
		return -EINVAL;
	}
	s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		err = -errno;
		goto out;
	}
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(s->lfd, 1024) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &sl) < 0) {
		err = -errno;
		goto out;
	}
	getnameinfo((struct sockaddr *)&sa, sl, nh, sizeof(nh), np, sizeof(np),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(s->listen_addr, sizeof(s->listen_addr),
		 sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", nh, np);
	snprintf(text, sizeof(text), "%s\n", s->listen_addr);
	err = srv_write_file_atomic(s->data_dir, "listen-addr", text, strlen(text));
out:
	if (err)
		log_err("cannot listen on %s: %s", s->o.listen, log_strerror(err));
	freeaddrinfo(ai);
	return err;
bad:
	log_err("listen address %s is not host:port", s->o.listen);
	return -EINVAL;
}

int srv_new(const struct srv_opts *o, struct srv **out)
{
	struct srv *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->lfd = -1;
	pthread_mutex_init(&s->map_lock, NULL);
	pthread_mutex_init(&s->adopt_lock, NULL);
	pthread_mutex_init(&s->gossip_lock, NULL);
	pthread_cond_init(&s->gossip_cond, NULL);
	s->data_dir = strdup(o->data_dir);
	s->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!s->data_dir || !s->loop) {
		err = -ENOMEM;
		goto out;
	}
	if (mkdir(s->data_dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		log_err("cannot create data dir %s: %s", s->data_dir,
			log_strerror(err));
		goto out;
	}
	err = srv_load_state(s);
	if (err)
		goto out;
	err = store_open(s->data_dir, &s->st);
	if (err) {
		log_err("cannot open block store in %s: %s", s->data_dir,
			log_strerror(err));
		goto out;
	}
	{
		struct store_stats ss;

		store_get_stats(s->st, &ss);
		log_info("block store: %llu blocks, %llu bytes; %llu pack files "
			 "holding %llu bytes", (unsigned long long)ss.blocks,
			 (unsigned long long)ss.bytes, (unsigned long long)ss.packs,
			 (unsigned long long)ss.pack_bytes);
		log_info("block store: packs read at start: %llu from their "
			 "record lists, %llu by record headers, %llu whole",
			 (unsigned long long)ss.packs_open_index,
			 (unsigned long long)ss.packs_open_headers,
			 (unsigned long long)ss.packs_open_whole);
		/* Dropped at open: torn by a crash (never acknowledged) or
		 * rotted on disk; the other owners keep their copies. */
		if (ss.corrupt)
			log_warn("block store: %llu packed block records failed their "
				 "checksum at start and were dropped",
				 (unsigned long long)ss.corrupt);
	}
	store_set_direct_io(s->st, !o->buffered_io);
	err = diskpool_new(s->loop, o->workers, &s->dp);
	if (!err)
		err = srv_listen(s);
out:
	if (err) {
		srv_free(s);
		return err;
	}
	*out = s;
	return 0;
}

int srv_run(struct srv *s)
{
	struct ev_loop *loop = s->loop;
	double sweep = s->o.handshake_timeout_s / 4;

	if (sweep > 1)
		sweep = 1;
	if (sweep < 0.05)
		sweep = 0.05;
	s->started = ev_now(loop);
	ev_io_init(&s->lio, accept_cb, s->lfd, EV_READ);
	ev_timer_init(&s->sweep, sweep_cb, sweep, sweep);
	ev_timer_init(&s->accept_retry, accept_retry_cb, 0.1, 0);
	ev_timer_init(&s->drain, drain_cb, 0.02, 0.02);
	ev_signal_init(&s->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&s->sigint, signal_cb, SIGINT);
	s->lio.data = s->sweep.data = s->accept_retry.data = s;
	s->drain.data = s->sigterm.data = s->sigint.data = s;
	ev_io_start(loop, &s->lio);
	ev_timer_start(loop, &s->sweep);
	ev_signal_start(loop, &s->sigterm);
	ev_signal_start(loop, &s->sigint);
	if (s->o.gossip_interval_s > 0 &&
	    pthread_create(&s->gossip, NULL, srv_gossip_main, s) == 0)
		s->gossip_started = true;
	log_info("node %02x%02x%02x%02x listening on %s, map epoch %llu",
		 s->node_id[0], s->node_id[1], s->node_id[2], s->node_id[3],
		 s->listen_addr, (unsigned long long)srv_epoch(s));
	ev_run(loop, 0);
	if (s->gossip_started) {
		pthread_mutex_lock(&s->gossip_lock);
		s->gossip_stop = true;
		pthread_cond_broadcast(&s->gossip_cond);
		pthread_mutex_unlock(&s->gossip_lock);
		pthread_join(s->gossip, NULL);
		s->gossip_started = false;
	}
	while (s->conns)
		conn_close(s->conns, NULL);
	log_info("stopped");
	return 0;
}

void srv_free(struct srv *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns, NULL);
	diskpool_free(s->dp);
	if (s->lfd >= 0)
		close(s->lfd);
	store_close(s->st);
	cmap_free(s->map);
	free(s->map_enc);
	if (s->loop)
		ev_loop_destroy(s->loop);
	sodium_memzero(s->o.secret, sizeof(s->o.secret));
	free(s->data_dir);
	free(s);
}
