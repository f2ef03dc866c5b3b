/*
 * pool: one authenticated TCP connection per daemon, many calls in flight.
 *
 * A connection is opened on first use (non-blocking connect with a
 * deadline, then the HELLO handshake) and then shared: callers write whole
 * frames under the send lock (one sendmsg of header, request, data and
 * tag: a block is never copied), and one reader thread per connection matches
 * answers to calls by request id. Every wait is bounded: the reader wakes
 * at least every 200 ms and fails calls past their deadline; a failed or
 * timed-out connection fails all its calls and is replaced on next use.
 *
 * Locks: pool->lock guards the connection list and every call's state (one
 * lock keeps completion and waiting simple; it is never held across I/O).
 * conn->send_lock serialises frames on one socket and is the only lock held
 * during a network write, which is bounded by SO_SNDTIMEO.
 */
#include "cluster/pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster/log.h"
#include "cluster/monotime.h"
#include "cluster/proto.h"
#include "cluster/threadname.h"

enum { CALL_IDLE, CALL_PENDING, CALL_DONE };

struct conn {
	char *node;
	int fd;
	bool dead;
	struct hs_session hs;
	struct pool_peer_info peer;
	pthread_mutex_t send_lock;
	pthread_t reader;
	bool reader_started;
	struct pool_call *pending;     /* calls waiting for an answer */
	unsigned inflight;
	uint64_t next_id;
	unsigned refs;                 /* pool list + reader + callers */
	struct pool *pool;
	struct conn *next;
};

/* A connect under way (on the connecting thread's stack). */
struct connecting {
	const char *node;
	struct connecting *next;
};

/*
 * What the pool remembers of a node whose last connect failed or whose
 * connection timed out; forgotten when a connect to it succeeds. Without
 * it, a hung daemon cost each caller the full connect timeout in turn:
 * with every daemon stopped, a 64 KiB read of a mount took 97 s to fail
 * at a 2 s call timeout (t-fs-faults.sh), and 56 s at the default 10 s;
 * with it, 5 s and 12 s.
 */
struct trouble {
	char *node;
	int err;                       /* the last failure */
	int64_t failed_at;             /* when, monotonic ms */
	bool timed_out;                /* the last failure was a timeout:
					* the next connect is a probe */
	struct trouble *next;
};

struct pool {
	uint8_t secret[HS_SECRET_BYTES];
	struct pool_opts opts;
	pthread_mutex_t lock;
	/* Connection events: a slot freed on a full connection, a connect
	 * finished, a reader gone. A finished call wakes only its own
	 * waiter (call->waiter_): with one shared condition every answer
	 * woke every thread waiting on any call, several needless wake-ups
	 * per block on a busy client. */
	pthread_cond_t done;
	unsigned slot_waiters;         /* pool_start()s waiting for a slot */
	struct connecting *connecting; /* nodes being connected to now */
	struct trouble *troubles;
	struct conn *conns;
	unsigned readers;              /* reader threads still running */
	bool closing;
};

int pool_new(const uint8_t secret[HS_SECRET_BYTES], const struct pool_opts *opts,
	     struct pool **out)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	memcpy(p->secret, secret, HS_SECRET_BYTES);
	if (opts)
		p->opts = *opts;
	if (p->opts.connect_timeout_ms <= 0)
		p->opts.connect_timeout_ms = 3000;
	if (p->opts.call_timeout_ms <= 0)
		p->opts.call_timeout_ms = 30000;
	if (!p->opts.max_inflight)
		p->opts.max_inflight = 256;
	if (p->opts.probe_timeout_ms <= 0)
		p->opts.probe_timeout_ms = 1000;
	if (p->opts.probe_timeout_ms > p->opts.connect_timeout_ms)
		p->opts.probe_timeout_ms = p->opts.connect_timeout_ms;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done, NULL);
	*out = p;
	return 0;
}

static void conn_put_locked(struct pool *p, struct conn *c)
{
	(void)p;
	if (--c->refs)
		return;
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->send_lock);
	sodium_memzero(&c->hs, sizeof(c->hs));
	free(c->node);
	free(c);
}

/* Mark a call answered (err and resp already set) and wake the thread
 * waiting for it, if one is; caller holds p->lock. */
static void call_done_locked(struct pool_call *call)
{
	call->state_ = CALL_DONE;
	call->conn_ = NULL;
	if (call->waiter_)
		pthread_cond_signal(call->waiter_);
}

static struct trouble *trouble_find_locked(struct pool *p, const char *node)
{
	struct trouble *t;

	for (t = p->troubles; t && strcmp(t->node, node); t = t->next)
		;
	return t;
}

/* Remember that node failed with err just now. Best effort: without
 * memory the node is only not remembered. Caller holds p->lock. */
static void trouble_note_locked(struct pool *p, const char *node, int err)
{
	struct trouble *t = trouble_find_locked(p, node);

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t || !(t->node = strdup(node))) {
			free(t);
			return;
		}
		t->next = p->troubles;
		p->troubles = t;
	}
	t->err = err;
	t->failed_at = mono_ms();
	t->timed_out = err == -ETIMEDOUT;
}

/* A connect to node succeeded: forget its trouble. Caller holds p->lock. */
static void trouble_clear_locked(struct pool *p, const char *node)
{
	for (struct trouble **pp = &p->troubles; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->node, node)) {
			struct trouble *t = *pp;

			*pp = t->next;
			free(t->node);
			free(t);
			return;
		}
	}
}

/* Complete every pending call of c with err; caller holds p->lock. */
static void conn_fail_locked(struct pool *p, struct conn *c, int err)
{
	struct pool_call *call;

	c->dead = true;
	if (err == -ETIMEDOUT)
		trouble_note_locked(p, c->node, err);
	while ((call = c->pending)) {
		c->pending = call->next_;
		call->err = err;
		call_done_locked(call);
		c->inflight--;
	}
	/* Unlist it so the next call reconnects. */
	for (struct conn **pp = &p->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			conn_put_locked(p, c);
			break;
		}
	}
	pthread_cond_broadcast(&p->done);
}

/* --- socket helpers ------------------------------------------------------ */

static int parse_hostport(const char *node, char *host, size_t hcap, char *port,
			  size_t pcap)
{
	const char *colon = strrchr(node, ':');
	size_t hl;

	if (!colon || colon == node || !colon[1])
		return -EINVAL;
	hl = (size_t)(colon - node);
	if (node[0] == '[' && colon[-1] == ']') {       /* [v6]:port */
		node++;
		hl -= 2;
	}
	if (hl >= hcap || strlen(colon + 1) >= pcap)
		return -EINVAL;
	memcpy(host, node, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static int connect_with_deadline(const char *node, int timeout_ms)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	int fd = -1, rc;

	if (parse_hostport(node, host, sizeof(host), port, sizeof(port)) < 0)
		return -EINVAL;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return -EHOSTUNREACH;
	rc = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int one = 1, soerr = 0, flags;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			rc = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1) {
			rc = -ETIMEDOUT;
			close(fd);
			fd = -1;
			continue;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			rc = -soerr;
			close(fd);
			fd = -1;
			continue;
		}
		fcntl(fd, F_SETFL, flags);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		rc = 0;
		break;
	}
	freeaddrinfo(res);
	return rc < 0 ? rc : fd;
}

static void set_timeouts(int fd, int send_ms, int recv_ms)
{
	struct timeval s = { send_ms / 1000, (send_ms % 1000) * 1000 };
	struct timeval r = { recv_ms / 1000, (recv_ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof(s));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof(r));
}

/* Write all of iov; -errno (EAGAIN from SO_SNDTIMEO becomes ETIMEDOUT). */
static int write_all(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		/* sendmsg, not writev: MSG_NOSIGNAL turns a peer's reset into
		 * EPIPE instead of a SIGPIPE that would kill the client. */
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Read exactly len bytes. With a deadline (>= 0), keep going across
 * SO_RCVTIMEO wake-ups until it passes; *idle (if set) returns 1 when
 * nothing at all arrived before a wake-up, so the reader can check calls. */
static int read_full(int fd, void *buf, size_t len, int64_t deadline, int *idle)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (idle && got == 0) {
			*idle = 1;
			return 0;
		}
		if (deadline >= 0 && mono_ms() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

/* --- handshake ----------------------------------------------------------- */

static int send_plain_frame(int fd, uint8_t op, uint64_t id, const void *p,
			    size_t len)
{
	struct proto_header h = { PROTO_VERSION, op, 0, 0, (uint32_t)len, id };
	uint8_t hb[PROTO_HEADER_BYTES];
	struct iovec iov[2] = { { hb, sizeof(hb) }, { (void *)p, len } };

	proto_encode_header(&h, hb);
	return write_all(fd, iov, 2);
}

/* Read one answer frame (tagged or not) into buf. */
static int read_answer(int fd, struct hs_session *hs, uint8_t *buf, size_t cap,
		       size_t *len, struct proto_header *h, int64_t deadline)
{
	uint8_t hb[PROTO_HEADER_BYTES], tag[HS_TAG_BYTES];
	int rc;

	rc = read_full(fd, hb, sizeof(hb), deadline, NULL);
	if (rc < 0)
		return rc;
	rc = proto_decode_header(hb, (uint32_t)cap, h);
	if (rc < 0)
		return -EPROTO;
	if (!(h->flags & PROTO_F_RESPONSE) || h->opcode != PROTO_OP_HELLO)
		return -EPROTO;
	rc = read_full(fd, buf, h->length, deadline, NULL);
	if (rc < 0)
		return rc;
	*len = h->length;
	if (hs) {
		struct iovec iov[2] = { { hb, sizeof(hb) }, { buf, h->length } };

		rc = read_full(fd, tag, sizeof(tag), deadline, NULL);
		if (rc < 0)
			return rc;
		if (hs_verify_frame(hs, iov, 2, tag) < 0)
			return -EKEYREJECTED;
	}
	return 0;
}

static int conn_handshake(struct pool *p, struct conn *c, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	uint8_t msg[1 + HS_REPLY_BYTES], ans[256], fin[1 + HS_FINISH_BYTES];
	const size_t ctx_len = CMAP_NODE_ID_BYTES + CMAP_CLUSTER_ID_BYTES + 8;
	struct handshake *h = NULL;
	struct proto_header ph;
	size_t len = 0;
	int rc;

	msg[0] = 1;
	rc = handshake_client_new(p->secret, msg + 1, &h);
	if (rc < 0)
		return rc;
	rc = send_plain_frame(c->fd, PROTO_OP_HELLO, 0, msg, 1 + HS_HELLO_BYTES);
	if (rc < 0)
		goto out;
	rc = read_answer(c->fd, NULL, ans, sizeof(ans), &len, &ph, deadline);
	if (rc < 0)
		goto out;
	if (ph.status != PROTO_ST_OK) {
		rc = proto_status_to_err(ph.status);
		goto out;
	}
	if (len != HS_REPLY_BYTES + ctx_len) {
		rc = -EPROTO;
		goto out;
	}
	fin[0] = 2;
	rc = handshake_client_finish(h, ans, ans + HS_REPLY_BYTES, ctx_len, fin + 1,
				     &c->hs);
	if (rc < 0)
		goto out;
	memcpy(c->peer.node_id, ans + HS_REPLY_BYTES, CMAP_NODE_ID_BYTES);
	memcpy(c->peer.cluster_id, ans + HS_REPLY_BYTES + CMAP_NODE_ID_BYTES,
	       CMAP_CLUSTER_ID_BYTES);
	c->peer.epoch = proto_get_u64(ans + HS_REPLY_BYTES + CMAP_NODE_ID_BYTES +
				      CMAP_CLUSTER_ID_BYTES);
	rc = send_plain_frame(c->fd, PROTO_OP_HELLO, 0, fin, sizeof(fin));
	if (rc < 0)
		goto out;
	/* The server's tagged empty answer proves it accepted our proof; a
	 * server that refused us closes the connection instead. */
	rc = read_answer(c->fd, &c->hs, ans, sizeof(ans), &len, &ph, deadline);
	if (rc == -ECONNRESET)
		rc = -EKEYREJECTED;
	else if (rc == 0 && ph.status != PROTO_ST_OK)
		rc = proto_status_to_err(ph.status);
out:
	handshake_free(h);
	return rc;
}

/* --- reader -------------------------------------------------------------- */

/* Whether any pending call of c is past its deadline; caller holds lock. */
static bool conn_overdue_locked(const struct conn *c, int64_t t)
{
	for (const struct pool_call *call = c->pending; call; call = call->next_)
		if (t > call->deadline_)
			return true;
	return false;
}

static void *reader_main(void *arg)
{
	struct conn *c = arg;
	struct pool *p = c->pool;
	int err = 0;

	thread_name("net-reader");

	for (;;) {
		uint8_t hb[PROTO_HEADER_BYTES], tag[HS_TAG_BYTES];
		struct proto_header h;
		struct pool_call *call, **pp;
		uint8_t *payload = NULL;
		int idle = 0, rc;

		/* Nothing at all: an idle wake-up. Part of a header and
		 * then silence: bounded like any answer. */
		rc = read_full(c->fd, hb, sizeof(hb), mono_ms() + p->opts.call_timeout_ms,
			       &idle);
		if (rc == 0 && idle) {
			bool stop, overdue;

			/* Woken by SO_RCVTIMEO: a call past its deadline
			 * means the daemon is stuck; the connection goes. */
			pthread_mutex_lock(&p->lock);
			stop = c->dead || p->closing;
			overdue = conn_overdue_locked(c, mono_ms());
			pthread_mutex_unlock(&p->lock);
			if (stop)
				break;
			if (overdue) {
				err = -ETIMEDOUT;
				goto fail;
			}
			continue;
		}
		if (rc < 0) {
			err = rc;
			goto fail;
		}
		rc = proto_decode_header(hb, PROTO_MAX_PAYLOAD, &h);
		if (rc < 0 || !(h.flags & PROTO_F_RESPONSE)) {
			log_warn("%s: malformed answer header: dropping the connection", c->node);
			err = -EPROTO;
			goto fail;
		}
		payload = malloc(h.length ? h.length : 1);
		if (!payload) {
			err = -ENOMEM;
			goto fail;
		}
		rc = read_full(c->fd, payload, h.length, mono_ms() + p->opts.call_timeout_ms, NULL);
		if (rc == 0)
			rc = read_full(c->fd, tag, sizeof(tag),
				       mono_ms() + p->opts.call_timeout_ms, NULL);
		if (rc < 0) {
			free(payload);
			err = rc;
			goto fail;
		}
		{
			struct iovec iov[2] = { { hb, sizeof(hb) }, { payload, h.length } };

			if (hs_verify_frame(&c->hs, iov, 2, tag) < 0) {
				log_warn("%s: answer failed authentication: dropping the connection",
					 c->node);
				free(payload);
				err = -EBADMSG;
				goto fail;
			}
		}
		pthread_mutex_lock(&p->lock);
		for (pp = &c->pending; *pp && (*pp)->id_ != h.request_id; pp = &(*pp)->next_)
			;
		call = *pp;
		if (call) {
			*pp = call->next_;
			c->inflight--;
			call->err = proto_status_to_err(h.status);
			call->resp = payload;
			call->resp_len = h.length;
			call_done_locked(call);
			payload = NULL;
			if (p->slot_waiters)
				pthread_cond_broadcast(&p->done);
		}
		pthread_mutex_unlock(&p->lock);
		free(payload);     /* an answer to a call that gave up */
	}
	pthread_mutex_lock(&p->lock);
	conn_put_locked(p, c);
	p->readers--;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	return NULL;
fail:
	pthread_mutex_lock(&p->lock);
	if (!c->dead && !p->closing && err != -ECONNRESET)
		log_info("%s: connection lost: %s", c->node, log_strerror(err));
	shutdown(c->fd, SHUT_RDWR);
	if (!c->dead)
		conn_fail_locked(p, c, err == -ETIMEDOUT ? -ETIMEDOUT : -ECONNRESET);
	conn_put_locked(p, c);
	p->readers--;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* --- connections --------------------------------------------------------- */

/* The live connection to node, opened if needed; a reference the caller
 * drops with conn_put_locked(). */
static int conn_get(struct pool *p, const char *node, struct conn **out)
{
	struct connecting me = { node, NULL }, **pp;
	struct trouble *t;
	int64_t waited_from = -1;
	int timeout_ms;
	struct conn *c;
	int rc, fd;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct connecting *k;

		for (c = p->conns; c; c = c->next) {
			if (!strcmp(c->node, node) && !c->dead) {
				c->refs++;
				pthread_mutex_unlock(&p->lock);
				*out = c;
				return 0;
			}
		}
		if (p->closing) {
			pthread_mutex_unlock(&p->lock);
			return -ECANCELED;
		}
		/* The connect we waited for failed: so do we, rather than
		 * each waiter trying (and waiting) in its turn. */
		t = trouble_find_locked(p, node);
		if (t && waited_from >= 0 && t->failed_at >= waited_from) {
			rc = t->err;
			pthread_mutex_unlock(&p->lock);
			return rc;
		}
		/* Concurrent first calls to one node share one connection
		 * instead of racing to open several: wait for the connect
		 * under way (bounded by its connect and handshake timeouts). */
		for (k = p->connecting; k && strcmp(k->node, node); k = k->next)
			;
		if (!k)
			break;
		if (waited_from < 0)
			waited_from = mono_ms();
		pthread_cond_wait(&p->done, &p->lock);
	}
	/* A node that just timed out gets a probe: if it is back it answers
	 * at once; if not, the caller learns so soon. */
	timeout_ms = t && t->timed_out ? p->opts.probe_timeout_ms
				       : p->opts.connect_timeout_ms;
	me.next = p->connecting;
	p->connecting = &me;
	pthread_mutex_unlock(&p->lock);

	/* Connect outside p->lock, and per node: calls to other daemons, and
	 * connects to them, go on while this one waits for a slow node. */
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto fail;
	}
	c->node = strdup(node);
	c->pool = p;
	c->fd = -1;
	pthread_mutex_init(&c->send_lock, NULL);
	fd = c->node ? connect_with_deadline(node, timeout_ms) : -ENOMEM;
	if (fd < 0) {
		rc = fd;
		goto fail;
	}
	c->fd = fd;
	set_timeouts(fd, p->opts.call_timeout_ms, timeout_ms);
	rc = conn_handshake(p, c, timeout_ms);
	if (rc < 0)
		goto fail;
	/* From now on the reader wakes every 200 ms to check deadlines. */
	set_timeouts(fd, p->opts.call_timeout_ms, 200);
	c->refs = 3;      /* the list, the reader, our caller */
	pthread_mutex_lock(&p->lock);
	trouble_clear_locked(p, node);
	c->next = p->conns;
	p->conns = c;
	p->readers++;
	for (pp = &p->connecting; *pp != &me; pp = &(*pp)->next)
		;
	*pp = me.next;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	rc = pthread_create(&c->reader, NULL, reader_main, c);
	if (rc) {
		pthread_mutex_lock(&p->lock);
		p->readers--;
		c->refs--;         /* no reader */
		conn_fail_locked(p, c, -ECONNRESET);
		conn_put_locked(p, c);     /* ours */
		pthread_mutex_unlock(&p->lock);
		return -rc;
	}
	pthread_detach(c->reader);
	*out = c;
	return 0;
fail:
	if (c) {
		if (c->fd >= 0)
			close(c->fd);
		pthread_mutex_destroy(&c->send_lock);
		free(c->node);
		free(c);
	}
	pthread_mutex_lock(&p->lock);
	if (rc != -ENOMEM)
		trouble_note_locked(p, node, rc);
	for (pp = &p->connecting; *pp != &me; pp = &(*pp)->next)
		;
	*pp = me.next;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int pool_peer(struct pool *p, const char *node, struct pool_peer_info *out)
{
	struct conn *c;
	int rc = conn_get(p, node, &c);

	if (rc < 0)
		return rc;
	*out = c->peer;
	pthread_mutex_lock(&p->lock);
	conn_put_locked(p, c);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void pool_forget(struct pool *p, const char *node)
{
	pthread_mutex_lock(&p->lock);
	for (struct conn *c = p->conns; c; c = c->next) {
		if (!strcmp(c->node, node)) {
			shutdown(c->fd, SHUT_RDWR);
			conn_fail_locked(p, c, -ECONNRESET);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

bool pool_node_hung(struct pool *p, const char *node)
{
	struct trouble *t;
	bool hung;

	pthread_mutex_lock(&p->lock);
	t = trouble_find_locked(p, node);
	hung = t && t->timed_out;
	pthread_mutex_unlock(&p->lock);
	return hung;
}

/* --- calls --------------------------------------------------------------- */

static void call_fail(struct pool *p, struct pool_call *call, int err)
{
	pthread_mutex_lock(&p->lock);
	call->err = err;
	call_done_locked(call);
	pthread_mutex_unlock(&p->lock);
}

void pool_skip(struct pool *p, struct pool_call *call, int err)
{
	call->resp = NULL;
	call->resp_len = 0;
	call->conn_ = NULL;
	call->waiter_ = NULL;
	call_fail(p, call, err);
}

int pool_start(struct pool *p, struct pool_call *call)
{
	uint8_t hb[PROTO_HEADER_BYTES], tag[HS_TAG_BYTES];
	struct proto_header h = { PROTO_VERSION, call->opcode, 0, 0, 0, 0 };
	struct iovec iov[4];
	struct conn *c;
	int rc;

	call->err = 0;
	call->resp = NULL;
	call->resp_len = 0;
	call->conn_ = NULL;
	call->waiter_ = NULL;
	if (call->req_len + call->data_len > PROTO_MAX_PAYLOAD) {
		call_fail(p, call, -E2BIG);
		return -E2BIG;
	}
	rc = conn_get(p, call->node, &c);
	if (rc < 0) {
		call_fail(p, call, rc);
		return rc;
	}

	pthread_mutex_lock(&p->lock);
	while (c->inflight >= p->opts.max_inflight && !c->dead) {
		p->slot_waiters++;
		pthread_cond_wait(&p->done, &p->lock);
		p->slot_waiters--;
	}
	if (c->dead) {
		conn_put_locked(p, c);
		pthread_mutex_unlock(&p->lock);
		call_fail(p, call, -ECONNRESET);
		return -ECONNRESET;
	}
	call->id_ = ++c->next_id;
	call->deadline_ = mono_ms() + p->opts.call_timeout_ms;
	call->state_ = CALL_PENDING;
	call->conn_ = c;
	call->next_ = c->pending;
	c->pending = call;
	c->inflight++;
	pthread_mutex_unlock(&p->lock);

	h.length = (uint32_t)(call->req_len + call->data_len);
	h.request_id = call->id_;
	proto_encode_header(&h, hb);
	iov[0] = (struct iovec){ hb, sizeof(hb) };
	iov[1] = (struct iovec){ (void *)call->req, call->req_len };
	iov[2] = (struct iovec){ (void *)call->data, call->data_len };
	pthread_mutex_lock(&c->send_lock);
	hs_tag_frame(&c->hs, iov, 3, tag);
	iov[3] = (struct iovec){ tag, sizeof(tag) };
	rc = c->dead ? -ECONNRESET : write_all(c->fd, iov, 4);
	pthread_mutex_unlock(&c->send_lock);

	pthread_mutex_lock(&p->lock);
	if (rc < 0 && !c->dead) {
		/* A half-written frame leaves the stream unusable. */
		shutdown(c->fd, SHUT_RDWR);
		conn_fail_locked(p, c, rc == -ETIMEDOUT ? -ETIMEDOUT : -ECONNRESET);
	}
	rc = call->state_ == CALL_DONE ? call->err : 0;
	conn_put_locked(p, c);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int pool_wait(struct pool *p, struct pool_call *call)
{
	pthread_cond_t mine = PTHREAD_COND_INITIALIZER;

	pthread_mutex_lock(&p->lock);
	call->waiter_ = &mine;
	while (call->state_ == CALL_PENDING)
		pthread_cond_wait(&mine, &p->lock);
	call->waiter_ = NULL;
	call->state_ = CALL_IDLE;
	pthread_mutex_unlock(&p->lock);
	pthread_cond_destroy(&mine);
	return call->err;
}

int pool_run(struct pool *p, struct pool_call *calls, size_t n)
{
	int first = 0;

	for (size_t i = 0; i < n; i++)
		(void)pool_start(p, &calls[i]);
	for (size_t i = 0; i < n; i++) {
		int rc = pool_wait(p, &calls[i]);

		if (rc < 0 && !first)
			first = rc;
	}
	return first;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->closing = true;
	while (p->conns) {
		struct conn *c = p->conns;

		shutdown(c->fd, SHUT_RDWR);
		conn_fail_locked(p, c, -ECANCELED);
	}
	pthread_mutex_unlock(&p->lock);
	/* Readers see the shutdown at once and drop their references; wait
	 * for them so none touches the pool after it is freed. */
	pthread_mutex_lock(&p->lock);
	while (p->readers)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
	while (p->troubles) {
		struct trouble *t = p->troubles;

		p->troubles = t->next;
		free(t->node);
		free(t);
	}
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
	sodium_memzero(p->secret, sizeof(p->secret));
	free(p);
}
