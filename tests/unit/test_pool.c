/*
 * test_pool: the connection pool against small in-test servers speaking the
 * real protocol (proto + handshake over loopback sockets), and blockio
 * against three of them with a signed map.
 *
 * The test server answers in reverse order whenever several requests are
 * waiting, so matching answers to calls by request id is really exercised.
 * Faults are switched on per server: never answer, close on the next
 * request, tamper with the next answer after tagging it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cluster/blockio.h"
#include "cluster/cmap.h"
#include "cluster/pool.h"
#include "cluster/proto.h"
#include "crypto/handshake.h"

static uint64_t g_seed;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_fill(uint64_t seed, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(&seed);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the test server ----------------------------------------------------- */

#define TS_BUCKETS 4096
#define TS_MAX_CONNS 32

struct ts_block {
	uint8_t addr[32];
	uint8_t *data;
	size_t len;
	struct ts_block *next;
};

struct tsrv {
	uint8_t secret[HS_SECRET_BYTES];
	uint8_t node_id[16];
	int lfd;
	char addr[64];
	pthread_t acceptor;
	atomic_bool stop;
	atomic_bool silent;        /* read requests, never answer */
	atomic_bool close_next;    /* close the connection on the next request */
	atomic_bool tamper_next;   /* flip a payload byte of the next answer */
	atomic_bool half_next;     /* send half a header for the next request, then stall */
	atomic_bool mute_hello;    /* accept connections, answer no HELLO */
	atomic_int accepted;
	atomic_int requests;
	pthread_mutex_t lock;      /* store, map, conns */
	struct ts_block *tab[TS_BUCKETS];
	uint64_t epoch;
	uint8_t *map;
	size_t map_len;
	int fds[TS_MAX_CONNS];
	pthread_t threads[TS_MAX_CONNS];
	int n_conns;
};

struct ts_conn {
	struct tsrv *s;
	int fd;
};

static int ts_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int ts_write(int fd, const void *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = send(fd, (const char *)buf + put, len - put, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		put += (size_t)n;
	}
	return 0;
}

static unsigned ts_bucket(const uint8_t addr[32])
{
	return (addr[4] | addr[5] << 8) % TS_BUCKETS;
}

static struct ts_block *ts_find_locked(struct tsrv *s, const uint8_t addr[32])
{
	for (struct ts_block *b = s->tab[ts_bucket(addr)]; b; b = b->next)
		if (!memcmp(b->addr, addr, 32))
			return b;
	return NULL;
}

static bool ts_has(struct tsrv *s, const uint8_t addr[32])
{
	bool r;

	pthread_mutex_lock(&s->lock);
	r = ts_find_locked(s, addr) != NULL;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* An answer waiting to be sent: header fields and payload, tagged at send
 * time so tags follow the order frames go out in. */
struct ts_ans {
	uint8_t op, status;
	uint64_t id;
	uint8_t *p;
	size_t len;
};

static int ts_send(struct ts_conn *c, struct hs_session *hs, struct ts_ans *a)
{
	struct proto_header h = { PROTO_VERSION, a->op, PROTO_F_RESPONSE, a->status,
				  (uint32_t)a->len, a->id };
	uint8_t hb[PROTO_HEADER_BYTES], tag[HS_TAG_BYTES];
	struct iovec iov[2] = { { hb, sizeof(hb) }, { a->p, a->len } };
	int rc;

	proto_encode_header(&h, hb);
	hs_tag_frame(hs, iov, 2, tag);
	if (atomic_exchange(&c->s->tamper_next, false)) {
		if (a->len)
			a->p[0] ^= 1;
		else
			hb[8] ^= 1;
	}
	rc = ts_write(c->fd, hb, sizeof(hb));
	if (!rc && a->len)
		rc = ts_write(c->fd, a->p, a->len);
	if (!rc)
		rc = ts_write(c->fd, tag, sizeof(tag));
	free(a->p);
	a->p = NULL;
	return rc;
}

/* Serve one request; fills *a. */
static void ts_serve(struct tsrv *s, const struct proto_header *h, uint8_t *p,
		     struct ts_ans *a)
{
	uint64_t epoch = h->length >= 8 ? proto_get_u64(p) : 0;

	a->op = h->opcode;
	a->id = h->request_id;
	a->status = PROTO_ST_OK;
	a->p = NULL;
	a->len = 0;
	pthread_mutex_lock(&s->lock);
	if (h->opcode != PROTO_OP_MAP_GET && epoch < s->epoch) {
		a->status = PROTO_ST_STALE;
		a->p = malloc(8);
		a->len = 8;
		proto_put_u64(a->p, s->epoch);
		goto out;
	}
	switch (h->opcode) {
	case PROTO_OP_PING:
		a->p = malloc(8);
		a->len = 8;
		proto_put_u64(a->p, s->epoch);
		break;
	case PROTO_OP_PUT: {
		struct ts_block *b;

		if (h->length < 40) {
			a->status = PROTO_ST_BAD_REQUEST;
			break;
		}
		a->p = malloc(1);
		a->len = 1;
		a->p[0] = 0;
		if (ts_find_locked(s, p + 8))
			break;
		b = calloc(1, sizeof(*b));
		memcpy(b->addr, p + 8, 32);
		b->len = h->length - 40;
		b->data = malloc(b->len + 1);
		memcpy(b->data, p + 40, b->len);
		b->next = s->tab[ts_bucket(b->addr)];
		s->tab[ts_bucket(b->addr)] = b;
		a->p[0] = 1;
		break;
	}
	case PROTO_OP_GET: {
		struct ts_block *b = h->length == 40 ? ts_find_locked(s, p + 8) : NULL;

		if (!b) {
			a->status = PROTO_ST_NOT_FOUND;
			break;
		}
		a->p = malloc(b->len + 1);
		memcpy(a->p, b->data, b->len);
		a->len = b->len;
		break;
	}
	case PROTO_OP_DELETE: {
		struct ts_block **pp;

		a->status = PROTO_ST_NOT_FOUND;
		if (h->length != 40)
			break;
		for (pp = &s->tab[ts_bucket(p + 8)]; *pp; pp = &(*pp)->next) {
			if (!memcmp((*pp)->addr, p + 8, 32)) {
				struct ts_block *b = *pp;

				*pp = b->next;
				free(b->data);
				free(b);
				a->status = PROTO_ST_OK;
				break;
			}
		}
		break;
	}
	case PROTO_OP_HAS: {
		uint32_t n = h->length >= 12 ? proto_get_u32(p + 8) : 0;

		if (h->length != 12 + (size_t)n * 32 || n > PROTO_HAS_MAX) {
			a->status = PROTO_ST_BAD_REQUEST;
			break;
		}
		a->len = 4 + (n + 7) / 8;
		a->p = calloc(1, a->len);
		proto_put_u32(a->p, n);
		for (uint32_t i = 0; i < n; i++)
			if (ts_find_locked(s, p + 12 + i * 32))
				a->p[4 + i / 8] |= (uint8_t)(1u << (i % 8));
		break;
	}
	case PROTO_OP_MAP_GET:
		if (!s->map) {
			a->status = PROTO_ST_NOT_FOUND;
			break;
		}
		a->p = malloc(s->map_len);
		memcpy(a->p, s->map, s->map_len);
		a->len = s->map_len;
		break;
	default:
		a->status = PROTO_ST_UNSUPPORTED;
	}
out:
	pthread_mutex_unlock(&s->lock);
}

static int ts_hello(struct ts_conn *c, struct hs_session *hs)
{
	struct tsrv *s = c->s;
	uint8_t hb[PROTO_HEADER_BYTES], msg[1 + HS_FINISH_BYTES], ctx[40];
	uint8_t ans[HS_REPLY_BYTES + sizeof(ctx)];
	struct proto_header h;
	struct handshake *hsk = NULL;
	int rc = -1;

	if (ts_read(c->fd, hb, sizeof(hb)) || proto_decode_header(hb, PROTO_PREAUTH_MAX_BYTES, &h) ||
	    h.opcode != PROTO_OP_HELLO || h.length != 1 + HS_HELLO_BYTES ||
	    ts_read(c->fd, msg, h.length) || msg[0] != 1)
		return -1;
	memcpy(ctx, s->node_id, 16);
	memset(ctx + 16, 0x5a, 16);
	pthread_mutex_lock(&s->lock);
	proto_put_u64(ctx + 32, s->epoch);
	pthread_mutex_unlock(&s->lock);
	if (handshake_server_new(s->secret, msg + 1, ctx, sizeof(ctx), ans, &hsk))
		return -1;
	memcpy(ans + HS_REPLY_BYTES, ctx, sizeof(ctx));
	h.flags = PROTO_F_RESPONSE;
	h.length = sizeof(ans);
	proto_encode_header(&h, hb);
	if (ts_write(c->fd, hb, sizeof(hb)) || ts_write(c->fd, ans, sizeof(ans)))
		goto out;
	if (ts_read(c->fd, hb, sizeof(hb)) || proto_decode_header(hb, PROTO_PREAUTH_MAX_BYTES, &h) ||
	    h.opcode != PROTO_OP_HELLO || h.length != 1 + HS_FINISH_BYTES ||
	    ts_read(c->fd, msg, h.length) || msg[0] != 2)
		goto out;
	if (handshake_server_finish(hsk, msg + 1, hs))
		goto out;        /* wrong secret: just close, as cairnd does */
	{
		struct ts_ans a = { PROTO_OP_HELLO, PROTO_ST_OK, h.request_id, NULL, 0 };

		rc = ts_send(c, hs, &a);
	}
out:
	handshake_free(hsk);
	return rc;
}

static void *ts_conn_main(void *arg)
{
	struct ts_conn *c = arg;
	struct tsrv *s = c->s;
	struct hs_session hs;
	struct ts_ans batch[8];
	int nb = 0;

	while (atomic_load(&s->mute_hello) && !atomic_load(&s->stop))
		usleep(5 * 1000);
	if (ts_hello(c, &hs))
		goto out;
	for (;;) {
		uint8_t hb[PROTO_HEADER_BYTES], tag[HS_TAG_BYTES], *p;
		struct proto_header h;
		struct pollfd pfd = { c->fd, POLLIN, 0 };

		if (ts_read(c->fd, hb, sizeof(hb)) || proto_decode_header(hb, PROTO_MAX_PAYLOAD, &h))
			break;
		p = malloc(h.length + 1);
		if (ts_read(c->fd, p, h.length) || ts_read(c->fd, tag, sizeof(tag))) {
			free(p);
			break;
		}
		{
			struct iovec iov[2] = { { hb, sizeof(hb) }, { p, h.length } };

			if (hs_verify_frame(&hs, iov, 2, tag)) {
				free(p);
				break;
			}
		}
		atomic_fetch_add(&s->requests, 1);
		if (atomic_exchange(&s->close_next, false)) {
			free(p);
			break;
		}
		if (atomic_exchange(&s->half_next, false)) {
			uint8_t half[8] = { PROTO_VERSION, h.opcode, PROTO_F_RESPONSE };

			(void)ts_write(c->fd, half, sizeof(half));
			atomic_store(&s->silent, true);
		}
		if (atomic_load(&s->silent)) {
			free(p);
			continue;
		}
		ts_serve(s, &h, p, &batch[nb++]);
		free(p);
		/* More requests already waiting: answer them together, last first. */
		if (nb < 8 && poll(&pfd, 1, 0) == 1)
			continue;
		while (nb > 0)
			if (ts_send(c, &hs, &batch[--nb]))
				goto out;
	}
out:
	while (nb > 0)
		free(batch[--nb].p);
	shutdown(c->fd, SHUT_RDWR);
	free(c);
	return NULL;
}

static void *ts_accept_main(void *arg)
{
	struct tsrv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { s->lfd, POLLIN, 0 };
		struct ts_conn *c;
		int fd, one = 1;

		if (poll(&pfd, 1, 50) != 1)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		/* An answer goes out in three writes: without this, Nagle and
		 * delayed ACKs add 40 ms to each small one. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_mutex_lock(&s->lock);
		if (s->n_conns == TS_MAX_CONNS) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		c->s = s;
		c->fd = fd;
		s->fds[s->n_conns] = fd;
		pthread_create(&s->threads[s->n_conns], NULL, ts_conn_main, c);
		s->n_conns++;
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add(&s->accepted, 1);
	}
	return NULL;
}

static struct tsrv *ts_start(const uint8_t secret[HS_SECRET_BYTES])
{
	struct tsrv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	assert_non_null(s);
	memcpy(s->secret, secret, HS_SECRET_BYTES);
	randombytes_buf(s->node_id, sizeof(s->node_id));
	pthread_mutex_init(&s->lock, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 64), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(pthread_create(&s->acceptor, NULL, ts_accept_main, s), 0);
	return s;
}

static void ts_stop(struct tsrv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->acceptor, NULL);
	for (int i = 0; i < s->n_conns; i++)
		shutdown(s->fds[i], SHUT_RDWR);
	for (int i = 0; i < s->n_conns; i++) {
		pthread_join(s->threads[i], NULL);
		close(s->fds[i]);
	}
	close(s->lfd);
	for (unsigned i = 0; i < TS_BUCKETS; i++) {
		while (s->tab[i]) {
			struct ts_block *b = s->tab[i];

			s->tab[i] = b->next;
			free(b->data);
			free(b);
		}
	}
	free(s->map);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void ts_set_map(struct tsrv *s, const uint8_t *map, size_t len, uint64_t epoch)
{
	pthread_mutex_lock(&s->lock);
	free(s->map);
	s->map = malloc(len);
	memcpy(s->map, map, len);
	s->map_len = len;
	s->epoch = epoch;
	pthread_mutex_unlock(&s->lock);
}

static const uint8_t secret_a[HS_SECRET_BYTES] = { 1, 2, 3, 4, 5 };
static const uint8_t secret_b[HS_SECRET_BYTES] = { 9, 9, 9 };

static int ping(struct pool *p, const char *node)
{
	uint8_t e[8] = { 0 };
	struct pool_call c = { .node = node, .opcode = PROTO_OP_PING, .req = e,
			       .req_len = sizeof(e) };
	int rc = pool_run(p, &c, 1);

	free(c.resp);
	return rc;
}

/* --- pool cases ---------------------------------------------------------- */

static void handshake_succeeds_and_wrong_secret_is_rejected(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	struct pool_peer_info info;
	struct pool *good, *bad;

	(void)state;
	assert_int_equal(pool_new(secret_a, NULL, &good), 0);
	assert_int_equal(pool_new(secret_b, NULL, &bad), 0);
	assert_int_equal(pool_peer(good, s->addr, &info), 0);
	assert_memory_equal(info.node_id, s->node_id, 16);
	assert_int_equal(info.cluster_id[0], 0x5a);
	assert_int_equal(ping(good, s->addr), 0);
	assert_int_equal(pool_peer(bad, s->addr, &info), -EKEYREJECTED);
	assert_int_equal(ping(bad, s->addr), -EKEYREJECTED);
	/* The good connection is unharmed, and was reused (one accept). */
	assert_int_equal(ping(good, s->addr), 0);
	pool_free(bad);
	pool_free(good);
	assert_int_equal(atomic_load(&s->accepted), 3);
	ts_stop(s);
}

#define PIPE_THREADS 4
#define PIPE_OPS 2500          /* per thread: 10,000 PUTs then 10,000 GETs */
#define PIPE_WINDOW 64
#define PIPE_BLOCK 4096

struct pipe_arg {
	struct pool *p;
	const char *node;
	unsigned t;
	int failures;
};

static void pipe_addr(unsigned t, unsigned i, uint8_t addr[32])
{
	uint64_t v = g_seed ^ ((uint64_t)t << 32 | i);

	rng_fill(v, addr, 32);
}

static void *pipe_main(void *arg)
{
	struct pipe_arg *a = arg;
	struct pool_call *calls = calloc(PIPE_WINDOW, sizeof(*calls));
	uint8_t (*reqs)[40] = calloc(PIPE_WINDOW, 40);
	uint8_t (*blks)[PIPE_BLOCK] = calloc(PIPE_WINDOW, PIPE_BLOCK);
	uint8_t want[PIPE_BLOCK];

	for (int phase = 0; phase < 2; phase++) {
		for (unsigned base = 0; base < PIPE_OPS; base += PIPE_WINDOW) {
			unsigned n = PIPE_OPS - base < PIPE_WINDOW ? PIPE_OPS - base : PIPE_WINDOW;

			for (unsigned k = 0; k < n; k++) {
				struct pool_call *c = &calls[k];

				memset(c, 0, sizeof(*c));
				pipe_addr(a->t, base + k, reqs[k] + 8);
				c->node = a->node;
				c->req = reqs[k];
				c->req_len = 40;
				if (phase == 0) {
					rng_fill(g_seed + base + k + 1000003ull * a->t, blks[k], PIPE_BLOCK);
					c->opcode = PROTO_OP_PUT;
					c->data = blks[k];
					c->data_len = PIPE_BLOCK;
				} else {
					c->opcode = PROTO_OP_GET;
				}
				(void)pool_start(a->p, c);
			}
			for (unsigned k = 0; k < n; k++) {
				struct pool_call *c = &calls[k];
				int rc = pool_wait(a->p, c);

				if (phase == 0) {
					if (rc || c->resp_len != 1 || c->resp[0] != 1)
						a->failures++;
				} else {
					rng_fill(g_seed + base + k + 1000003ull * a->t, want, PIPE_BLOCK);
					if (rc || c->resp_len != PIPE_BLOCK ||
					    memcmp(c->resp, want, PIPE_BLOCK))
						a->failures++;
				}
				free(c->resp);
			}
		}
	}
	free(calls);
	free(reqs);
	free(blks);
	return NULL;
}

static void pipelined_calls_from_threads_all_get_their_own_answers(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	struct pool_opts o = { .max_inflight = 128 };
	struct pipe_arg args[PIPE_THREADS];
	pthread_t th[PIPE_THREADS];
	struct pool *p;
	int64_t t0, t1;

	(void)state;
	assert_int_equal(pool_new(secret_a, &o, &p), 0);
	assert_int_equal(ping(p, s->addr), 0);   /* connect outside the timing */
	t0 = now_ms();
	for (unsigned t = 0; t < PIPE_THREADS; t++) {
		args[t] = (struct pipe_arg){ p, s->addr, t, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, pipe_main, &args[t]), 0);
	}
	for (unsigned t = 0; t < PIPE_THREADS; t++)
		pthread_join(th[t], NULL);
	t1 = now_ms();
	for (unsigned t = 0; t < PIPE_THREADS; t++)
		assert_int_equal(args[t].failures, 0);
	assert_int_equal(atomic_load(&s->requests), 1 + 2 * PIPE_THREADS * PIPE_OPS);
	assert_int_equal(atomic_load(&s->accepted), 1);   /* one shared connection */
	printf("FIGURE pool_4k_ops_per_s=%.0f (%d PUT + %d GET of 4 KiB, %d threads, %lld ms)\n",
	       2.0 * PIPE_THREADS * PIPE_OPS * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1),
	       PIPE_THREADS * PIPE_OPS, PIPE_THREADS * PIPE_OPS, PIPE_THREADS,
	       (long long)(t1 - t0));
	pool_free(p);
	ts_stop(s);
}

static void silent_or_stalled_server_times_out_within_the_call_timeout(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	struct pool_opts o = { .call_timeout_ms = 300 };
	struct pool *p;
	int64_t t0, dt;

	(void)state;
	assert_int_equal(pool_new(secret_a, &o, &p), 0);
	assert_int_equal(ping(p, s->addr), 0);
	atomic_store(&s->silent, true);
	t0 = now_ms();
	assert_int_equal(ping(p, s->addr), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 290);
	assert_true(dt < 1500);     /* timeout + the reader's 200 ms wake-up + slack */
	/* The stuck connection was dropped: the next call uses a new one. */
	atomic_store(&s->silent, false);
	assert_int_equal(ping(p, s->addr), 0);
	assert_int_equal(atomic_load(&s->accepted), 2);
	/* Half a header, then silence: bounded too. */
	atomic_store(&s->half_next, true);
	t0 = now_ms();
	assert_int_equal(ping(p, s->addr), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 290);
	assert_true(dt < 1500);
	atomic_store(&s->silent, false);
	assert_int_equal(ping(p, s->addr), 0);
	assert_int_equal(atomic_load(&s->accepted), 3);
	pool_free(p);
	ts_stop(s);
}

static void server_closing_mid_call_resets_and_next_call_reconnects(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	struct pool *p;

	(void)state;
	assert_int_equal(pool_new(secret_a, NULL, &p), 0);
	assert_int_equal(ping(p, s->addr), 0);
	atomic_store(&s->close_next, true);
	assert_int_equal(ping(p, s->addr), -ECONNRESET);
	assert_int_equal(ping(p, s->addr), 0);
	assert_int_equal(atomic_load(&s->accepted), 2);
	pool_free(p);
	ts_stop(s);
}

static void tampered_answer_is_rejected_and_connection_dropped(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	uint8_t req[40] = { 0 };
	struct pool_call c = { .opcode = PROTO_OP_GET, .req = req, .req_len = sizeof(req) };
	uint8_t blk[100];
	struct pool *p;

	(void)state;
	assert_int_equal(pool_new(secret_a, NULL, &p), 0);
	c.node = s->addr;
	memset(blk, 7, sizeof(blk));
	{
		struct pool_call put = { .node = s->addr, .opcode = PROTO_OP_PUT, .req = req,
					 .req_len = sizeof(req), .data = blk,
					 .data_len = sizeof(blk) };

		assert_int_equal(pool_run(p, &put, 1), 0);
		free(put.resp);
	}
	/* A flipped payload byte: the tag no longer verifies. */
	atomic_store(&s->tamper_next, true);
	assert_int_equal(pool_run(p, &c, 1), -ECONNRESET);
	assert_null(c.resp);
	/* A flipped request id (an empty NOT_FOUND answer: the header is hit). */
	{
		uint8_t other[40] = { 0 };
		struct pool_call d = { .node = s->addr, .opcode = PROTO_OP_DELETE,
				       .req = other, .req_len = sizeof(other) };

		struct pool_peer_info info;

		other[8] = 0x42;
		/* Reconnect first: a tampered handshake answer is refused
		 * as -EKEYREJECTED, which is not the case proven here. */
		assert_int_equal(pool_peer(p, s->addr, &info), 0);
		atomic_store(&s->tamper_next, true);
		assert_int_equal(pool_run(p, &d, 1), -ECONNRESET);
		free(d.resp);
	}
	assert_int_equal(pool_run(p, &c, 1), 0);
	assert_int_equal(c.resp_len, sizeof(blk));
	assert_memory_equal(c.resp, blk, sizeof(blk));
	free(c.resp);
	assert_int_equal(atomic_load(&s->accepted), 3);
	pool_free(p);
	ts_stop(s);
}

static void refused_and_missing_answers_map_to_errno(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	uint8_t req[40] = { 0 };
	struct pool_call c = { .opcode = PROTO_OP_GET, .req = req, .req_len = sizeof(req) };
	struct pool_opts o = { .connect_timeout_ms = 500 };
	struct pool *p;
	char dead[64];

	(void)state;
	assert_int_equal(pool_new(secret_a, &o, &p), 0);
	c.node = s->addr;
	req[8] = 0xee;
	assert_int_equal(pool_run(p, &c, 1), -ENOENT);     /* NOT_FOUND status */
	free(c.resp);
	c.opcode = PROTO_OP_LIST_SLOT;
	assert_int_equal(pool_run(p, &c, 1), -ENOTSUP);    /* UNSUPPORTED */
	free(c.resp);
	pool_free(p);
	/* Nobody listening: refused at once. */
	snprintf(dead, sizeof(dead), "%s", s->addr);
	ts_stop(s);
	assert_int_equal(pool_new(secret_a, &o, &p), 0);
	assert_int_equal(ping(p, dead), -ECONNREFUSED);
	pool_free(p);
}

struct slow_arg {
	struct pool *p;
	const char *node;
	int rc;
};

static void *slow_main(void *arg)
{
	struct slow_arg *a = arg;

	a->rc = ping(a->p, a->node);
	return NULL;
}

static void slow_handshake_does_not_hold_up_other_nodes(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct pool_opts o = { .connect_timeout_ms = 1000 };
	struct slow_arg a;
	char mute[64];
	pthread_t th;
	int64_t t0, dt;
	int lfd;

	(void)state;
	/* A listener that never accepts: TCP connects, HELLO gets no answer. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(mute, sizeof(mute), "127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(pool_new(secret_a, &o, &a.p), 0);
	a.node = mute;
	t0 = now_ms();
	assert_int_equal(pthread_create(&th, NULL, slow_main, &a), 0);
	usleep(100 * 1000);
	assert_int_equal(ping(a.p, s->addr), 0);
	dt = now_ms() - t0;
	assert_true(dt < 700);      /* did not wait for the mute node's 1 s */
	pthread_join(th, NULL);
	assert_int_equal(a.rc, -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 900);
	pool_free(a.p);
	close(lfd);
	ts_stop(s);
}

struct ping_arg {
	struct pool *p;
	const char *node;
	pthread_t th;
	int rc;
};

static void *ping_main(void *arg)
{
	struct ping_arg *a = arg;

	a->rc = ping(a->p, a->node);
	return NULL;
}

static void a_hung_node_gets_short_probes_that_its_callers_share(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	struct pool_opts o = { .call_timeout_ms = 300, .connect_timeout_ms = 3000,
			       .probe_timeout_ms = 300 };
	struct ping_arg a[8];
	struct pool *p;
	int64_t t0, dt;

	(void)state;
	assert_int_equal(pool_new(secret_a, &o, &p), 0);
	assert_int_equal(ping(p, s->addr), 0);
	/* The daemon hangs: the call times out, and so would every new
	 * connection's handshake, for the full 3 s each without probes. */
	atomic_store(&s->mute_hello, true);
	atomic_store(&s->silent, true);
	assert_int_equal(ping(p, s->addr), -ETIMEDOUT);
	/* Eight callers at once: one probe of 300 ms, its failure shared.
	 * (In turn, with the full timeout: 24 s; in turn with probes: 2.4 s.) */
	t0 = now_ms();
	for (int i = 0; i < 8; i++) {
		a[i] = (struct ping_arg){ .p = p, .node = s->addr };
		assert_int_equal(pthread_create(&a[i].th, NULL, ping_main, &a[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(a[i].th, NULL);
		assert_int_equal(a[i].rc, -ETIMEDOUT);
	}
	dt = now_ms() - t0;
	assert_true(dt >= 250);
	assert_true(dt < 1500);
	/* Connections: the first, and a probe or two (a caller that came
	 * after a probe failed starts the next) — not one per caller. */
	assert_in_range(atomic_load(&s->accepted), 2, 4);
	/* It is back: the next call's probe succeeds at once; no lock-out. */
	atomic_store(&s->mute_hello, false);
	atomic_store(&s->silent, false);
	t0 = now_ms();
	assert_int_equal(ping(p, s->addr), 0);
	assert_true(now_ms() - t0 < 300);
	/* And it is trusted again: a connect gets the full timeout. */
	atomic_store(&s->mute_hello, true);
	assert_int_equal(pool_peer(p, s->addr, &(struct pool_peer_info){ 0 }), 0);
	pool_forget(p, s->addr);
	t0 = now_ms();
	assert_int_equal(ping(p, s->addr), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 2900);
	atomic_store(&s->mute_hello, false);
	pool_free(p);
	ts_stop(s);
}

/* --- blockio against three servers with a signed map --------------------- */

struct bio_fixture {
	struct tsrv *s[3];
	uint8_t pk[CMAP_PK_BYTES], sk[CMAP_SK_BYTES];
	struct cmap *m;
};

static void fixture_publish(struct bio_fixture *f, uint64_t epoch)
{
	uint8_t *enc;
	size_t len;

	cmap_set_epoch(f->m, epoch);
	assert_int_equal(cmap_encode(f->m, f->sk, &enc, &len), 0);
	for (int i = 0; i < 3; i++)
		ts_set_map(f->s[i], enc, len, epoch);
	free(enc);
}

/* A new map with `node` out (slots re-placed), published as `epoch`. */
static void fixture_take_out(struct bio_fixture *f, uint16_t node, uint64_t epoch)
{
	struct cmap *next;

	assert_int_equal(cmap_copy(f->m, &next), 0);
	assert_int_equal(cmap_node_set_state(next, node, CMAP_NODE_OUT), 0);
	assert_int_equal(cmap_place(f->m, next), 0);
	cmap_free(f->m);
	f->m = next;
	fixture_publish(f, epoch);
}

static void fixture_start(struct bio_fixture *f)
{
	uint8_t cid[CMAP_CLUSTER_ID_BYTES] = { 0x5a };

	crypto_sign_keypair(f->pk, f->sk);
	assert_int_equal(cmap_new(cid, f->pk, 2, &f->m), 0);
	for (int i = 0; i < 3; i++) {
		struct cmap_node n = { .weight = 100, .state = CMAP_NODE_UP };

		f->s[i] = ts_start(secret_a);
		memcpy(n.id, f->s[i]->node_id, 16);
		snprintf(n.addr, sizeof(n.addr), "%s", f->s[i]->addr);
		assert_int_equal(cmap_node_add(f->m, &n), i);
	}
	assert_int_equal(cmap_place(NULL, f->m), 0);
	fixture_publish(f, 1);
}

static void fixture_stop(struct bio_fixture *f)
{
	for (int i = 0; i < 3; i++)
		if (f->s[i])
			ts_stop(f->s[i]);
	cmap_free(f->m);
}

/* Which servers hold addr, as a bit set; and which the map says own it. */
static unsigned held_by(struct bio_fixture *f, const uint8_t addr[32])
{
	unsigned set = 0;

	for (int i = 0; i < 3; i++)
		if (ts_has(f->s[i], addr))
			set |= 1u << i;
	return set;
}

static unsigned owned_by(const struct cmap *m, const uint8_t addr[32])
{
	uint16_t own[CMAP_MAX_WIDTH];
	unsigned n = cmap_slot_owners(m, slot_of_addr(addr), own), set = 0;

	for (unsigned i = 0; i < n; i++)
		set |= 1u << own[i];
	return set;
}

#define BIO_N 64

static void blockio_follows_the_signed_map(void **state)
{
	struct bio_fixture f;
	const char *seeds[1];
	uint8_t addrs[BIO_N][32], *data[BIO_N];
	const void *blks[BIO_N];
	size_t lens[BIO_N];
	int errs[BIO_N];
	bool has[BIO_N];
	struct blockio_counters ctr;
	struct blockio *b;

	(void)state;
	fixture_start(&f);
	seeds[0] = f.s[1]->addr;
	/* A map signed by another key is refused; a wrong secret too. */
	{
		uint8_t other[CMAP_PK_BYTES];

		memcpy(other, f.pk, sizeof(other));
		other[0] ^= 1;
		assert_int_equal(blockio_new(seeds, 1, secret_a, other, NULL, &b), -EBADMSG);
		assert_int_equal(blockio_new(seeds, 1, secret_b, f.pk, NULL, &b), -EKEYREJECTED);
	}
	assert_int_equal(blockio_new(seeds, 1, secret_a, f.pk, NULL, &b), 0);
	for (int i = 0; i < BIO_N; i++) {
		rng_fill(g_seed + 77 + (uint64_t)i, addrs[i], 32);
		lens[i] = 1000 + (size_t)i * 37;
		data[i] = malloc(lens[i]);
		rng_fill(g_seed + 1000 + (uint64_t)i, data[i], lens[i]);
		blks[i] = data[i];
	}
	assert_int_equal(blockio_has(b, (const uint8_t (*)[32])addrs, BIO_N, has), 0);
	for (int i = 0; i < BIO_N; i++)
		assert_false(has[i]);
	assert_int_equal(blockio_put_many(b, (const uint8_t (*)[32])addrs, blks, lens,
					  BIO_N, errs), 0);
	blockio_counters(b, &ctr);
	assert_int_equal(ctr.puts, BIO_N);
	assert_int_equal(ctr.put_new, 2 * BIO_N);
	for (int i = 0; i < BIO_N; i++) {
		uint8_t *got;
		size_t len;

		assert_int_equal(errs[i], 0);
		/* Stored on exactly the two owners the map names. */
		assert_int_equal(held_by(&f, addrs[i]), owned_by(f.m, addrs[i]));
		for (unsigned skip = 0; skip < 2; skip++) {
			assert_int_equal(blockio_get(b, addrs[i], skip, &got, &len), 0);
			assert_int_equal(len, lens[i]);
			assert_memory_equal(got, data[i], len);
			free(got);
		}
		assert_int_equal(blockio_get(b, addrs[i], 2, &got, &len), -ENODATA);
	}
	assert_int_equal(blockio_has(b, (const uint8_t (*)[32])addrs, BIO_N, has), 0);
	for (int i = 0; i < BIO_N; i++)
		assert_true(has[i]);
	/* PUT of a held block stores nothing new. */
	assert_int_equal(blockio_put(b, addrs[0], data[0], lens[0]), 0);
	blockio_counters(b, &ctr);
	assert_int_equal(ctr.put_new, 2 * BIO_N);

	/* A newer map with node 0 out: requests naming epoch 1 get STALE, the
	 * client refreshes and writes to the new owners. */
	{
		uint64_t before;
		uint8_t a2[32];

		fixture_take_out(&f, 0, 2);
		blockio_counters(b, &ctr);
		before = ctr.map_refreshes;
		rng_fill(g_seed + 5, a2, 32);
		assert_int_equal(blockio_put(b, a2, "fresh", 5), 0);
		blockio_counters(b, &ctr);
		assert_true(ctr.map_refreshes > before);
		assert_int_equal(owned_by(f.m, a2), 6u);
		assert_int_equal(held_by(&f, a2), 6u);
	}
	/* Holders are the owners (nodes 1, 2), then previous owner node 0:
	 * a copy only node 0 has is found at position 2. */
	{
		int on_prev = 0;

		for (int i = 0; i < BIO_N; i++) {
			uint8_t *got;
			size_t len;

			assert_int_equal(blockio_get(b, addrs[i], 0, &got, &len), 0);
			assert_memory_equal(got, data[i], len);
			free(got);
			if (!(held_by(&f, addrs[i]) & 1u)) {
				assert_int_equal(blockio_get(b, addrs[i], 2, &got, &len), -ENODATA);
				continue;
			}
			on_prev++;
			assert_int_equal(blockio_get(b, addrs[i], 2, &got, &len), 0);
			assert_memory_equal(got, data[i], len);
			free(got);
		}
		assert_true(on_prev > 0);
	}
	/* DELETE reaches owners and previous owners; absent is success. The
	 * first half one at a time, the rest in one pipelined call that also
	 * names a block already gone. */
	for (int i = 0; i < BIO_N / 2; i++) {
		uint8_t *got;
		size_t len;

		assert_int_equal(blockio_delete(b, addrs[i]), 0);
		assert_int_equal(held_by(&f, addrs[i]), 0);
		assert_int_equal(blockio_delete(b, addrs[i]), 0);
		assert_int_equal(blockio_get(b, addrs[i], 0, &got, &len), -ENOENT);
	}
	{
		int del_errs[BIO_N];

		memset(del_errs, 0x55, sizeof(del_errs));
		assert_int_equal(blockio_delete_many(b, (const uint8_t (*)[32])addrs,
						     BIO_N, del_errs), 0);
		for (int i = 0; i < BIO_N; i++) {
			uint8_t *got;
			size_t len;

			assert_int_equal(del_errs[i], 0);
			assert_int_equal(held_by(&f, addrs[i]), 0);
			assert_int_equal(blockio_get(b, addrs[i], 0, &got, &len), -ENOENT);
			free(data[i]);
		}
	}
	blockio_free(b);
	fixture_stop(&f);
}

/* --- PUT batches ---------------------------------------------------------- */

struct batch_adder {
	struct blockio_batch *bt;
	uint8_t (*addrs)[32];
	uint8_t **data;
	size_t *lens;
	size_t from, to;
	int rc;
};

static void *batch_adder_main(void *arg)
{
	struct batch_adder *a = arg;

	a->rc = 0;
	for (size_t i = a->from; i < a->to && a->rc == 0; i++)
		a->rc = blockio_batch_add(a->bt, a->addrs[i], a->data[i], a->lens[i]);
	return NULL;
}

/* Add blocks [0, n) to bt from two threads at once. */
static void batch_add_from_two_threads(struct blockio_batch *bt, uint8_t (*addrs)[32],
				       uint8_t **data, size_t *lens, size_t n)
{
	struct batch_adder a[2];
	pthread_t t[2];

	for (int k = 0; k < 2; k++) {
		a[k] = (struct batch_adder){ bt, addrs, data, lens, k * n / 2,
					     (k + 1) * n / 2, -1 };
		assert_int_equal(pthread_create(&t[k], NULL, batch_adder_main, &a[k]), 0);
	}
	for (int k = 0; k < 2; k++) {
		pthread_join(t[k], NULL);
		assert_int_equal(a[k].rc, 0);
	}
}

#define BATCH_N 16

static void blockio_batch_sends_as_added_and_retries_a_stale_map(void **state)
{
	struct bio_fixture f;
	const char *seeds[1];
	uint8_t addrs[2 * BATCH_N][32], *data[2 * BATCH_N];
	size_t lens[2 * BATCH_N];
	int errs[BATCH_N];
	struct blockio_counters ctr;
	struct blockio_batch *bt;
	struct blockio *b;
	uint64_t refreshes;

	(void)state;
	fixture_start(&f);
	seeds[0] = f.s[0]->addr;
	assert_int_equal(blockio_new(seeds, 1, secret_a, f.pk, NULL, &b), 0);
	for (int i = 0; i < 2 * BATCH_N; i++) {
		rng_fill(g_seed + 300 + (uint64_t)i, addrs[i], 32);
		lens[i] = 4000 + (size_t)i * 101;
		data[i] = malloc(lens[i]);
		rng_fill(g_seed + 400 + (uint64_t)i, data[i], lens[i]);
	}

	/* An added block is on its way at once: its owners hold it before
	 * the batch is finished. */
	assert_int_equal(blockio_batch_new(b, BATCH_N, &bt), 0);
	assert_int_equal(blockio_batch_add(bt, addrs[0], data[0], lens[0]), 0);
	for (int tries = 0; held_by(&f, addrs[0]) != owned_by(f.m, addrs[0]); tries++) {
		assert_true(tries < 500);
		usleep(10000);
	}
	/* The rest from two threads at once; all stored where the map says. */
	batch_add_from_two_threads(bt, addrs + 1, data + 1, lens + 1, BATCH_N - 1);
	assert_int_equal(blockio_batch_add(bt, addrs[BATCH_N], data[BATCH_N],
					   lens[BATCH_N]), -ENOBUFS);
	assert_int_equal(blockio_batch_finish(bt, errs), 0);
	blockio_counters(b, &ctr);
	assert_int_equal(ctr.puts, BATCH_N);
	for (int i = 0; i < BATCH_N; i++) {
		assert_int_equal(errs[i], 0);
		assert_int_equal(held_by(&f, addrs[i]), owned_by(f.m, addrs[i]));
	}

	/* A newer map with node 2 out, which the client has not seen: the
	 * batch goes out under epoch 1, owners answer STALE, and finish
	 * refreshes the map and stores those blocks on the new owners. */
	fixture_take_out(&f, 2, 2);
	refreshes = ctr.map_refreshes;
	assert_int_equal(blockio_batch_new(b, BATCH_N, &bt), 0);
	batch_add_from_two_threads(bt, addrs + BATCH_N, data + BATCH_N, lens + BATCH_N,
				   BATCH_N);
	assert_int_equal(blockio_batch_finish(bt, errs), 0);
	blockio_counters(b, &ctr);
	assert_true(ctr.map_refreshes > refreshes);
	assert_int_equal(ctr.puts, 2 * BATCH_N);
	for (int i = BATCH_N; i < 2 * BATCH_N; i++) {
		assert_int_equal(owned_by(f.m, addrs[i]), 3u);
		assert_int_equal(held_by(&f, addrs[i]), 3u);
	}
	/* Pipelined DELETEs under a map the client has not seen yet (epoch
	 * 3): the owners answer STALE, the client refreshes and deletes. */
	fixture_publish(&f, 3);
	blockio_counters(b, &ctr);
	refreshes = ctr.map_refreshes;
	{
		int del_errs[2 * BATCH_N];

		assert_int_equal(blockio_delete_many(b, (const uint8_t (*)[32])addrs,
						     2 * BATCH_N, del_errs), 0);
		for (int i = 0; i < 2 * BATCH_N; i++) {
			assert_int_equal(del_errs[i], 0);
			assert_int_equal(held_by(&f, addrs[i]), 0);
		}
	}
	blockio_counters(b, &ctr);
	assert_true(ctr.map_refreshes > refreshes);
	for (int i = 0; i < 2 * BATCH_N; i++)
		free(data[i]);
	blockio_free(b);
	fixture_stop(&f);
}

static bool is_down(int rc)
{
	return rc == -ECONNREFUSED || rc == -ECONNRESET;
}

static void blockio_with_an_owner_down_fails_over_and_honours_the_quorum(void **state)
{
	struct bio_fixture f;
	struct blockio_opts o = { .pool = { .connect_timeout_ms = 1000 } };
	struct blockio *all, *one;
	uint8_t addr[32], *got;
	uint16_t own[CMAP_MAX_WIDTH];
	const char *seeds[3];
	struct blockio_counters ctr;
	unsigned down;
	size_t len;
	bool has;

	(void)state;
	fixture_start(&f);
	for (int i = 0; i < 3; i++)
		seeds[i] = f.s[i]->addr;
	assert_int_equal(blockio_new(seeds, 3, secret_a, f.pk, &o, &all), 0);
	o.write_quorum = 1;
	assert_int_equal(blockio_new(seeds, 3, secret_a, f.pk, &o, &one), 0);
	rng_fill(g_seed + 99, addr, 32);
	assert_int_equal(blockio_put(all, addr, "before", 6), 0);
	assert_int_equal(cmap_slot_owners(f.m, slot_of_addr(addr), own), 2);
	/* The first owner goes away (refused connections from now on). */
	down = own[0];
	ts_stop(f.s[down]);
	f.s[down] = NULL;
	/* (the old connection may not have noticed the close yet: reset) */
	assert_true(is_down(blockio_get(all, addr, 0, &got, &len)));
	assert_int_equal(blockio_get(all, addr, 1, &got, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(got, "before", 6);
	free(got);
	blockio_counters(all, &ctr);
	assert_int_equal(ctr.get_failovers, 1);
	assert_true(is_down(blockio_has(all, (const uint8_t (*)[32])addr, 1, &has)));
	assert_false(has);
	/* Every owner must acknowledge, unless a write quorum says fewer. */
	assert_true(is_down(blockio_put(all, addr, "before", 6)));
	assert_int_equal(blockio_put(one, addr, "before", 6), 0);
	blockio_free(one);
	blockio_free(all);
	fixture_stop(&f);
}

/* One owner hung (it accepts, then never answers): a batch learns so from
 * its first PUT there and fails the others to it at once. Before, every
 * block waited for a probe of its own: 64 blocks, 2 of 3 owners each,
 * about 43 probes of 300 ms in a row. */
static void blockio_batch_waits_once_for_a_hung_owner(void **state)
{
	struct bio_fixture f;
	struct blockio_opts o = { .pool = { .call_timeout_ms = 300,
					    .connect_timeout_ms = 600,
					    .probe_timeout_ms = 300 } };
	const char *seeds[1];
	uint8_t addrs[BIO_N][32], data[BIO_N][64];
	int errs[BIO_N], failed = 0;
	struct blockio_batch *bt;
	struct blockio *b;
	unsigned accepted;
	int64_t t0, dt;

	(void)state;
	fixture_start(&f);
	seeds[0] = f.s[1]->addr;
	assert_int_equal(blockio_new(seeds, 1, secret_a, f.pk, &o, &b), 0);
	atomic_store(&f.s[0]->mute_hello, true);
	atomic_store(&f.s[0]->silent, true);
	accepted = atomic_load(&f.s[0]->accepted);
	t0 = now_ms();
	assert_int_equal(blockio_batch_new(b, BIO_N, &bt), 0);
	for (int i = 0; i < BIO_N; i++) {
		rng_fill(g_seed + 700 + (uint64_t)i, addrs[i], 32);
		rng_fill(g_seed + 800 + (uint64_t)i, data[i], sizeof(data[i]));
		assert_int_equal(blockio_batch_add(bt, addrs[i], data[i], sizeof(data[i])), 0);
	}
	assert_int_equal(blockio_batch_finish(bt, errs), -ETIMEDOUT);
	dt = now_ms() - t0;
	for (int i = 0; i < BIO_N; i++) {
		bool on_hung = owned_by(f.m, addrs[i]) & 1u;

		assert_int_equal(errs[i], on_hung ? -ETIMEDOUT : 0);
		failed += on_hung;
	}
	assert_true(failed >= 8);         /* the case is made */
	/* one connect that times out (600 ms), not one probe per block */
	printf("FIGURE batch_with_hung_owner_ms=%lld (%d of %d blocks on it)\n",
	       (long long)dt, failed, BIO_N);
	assert_true(dt < 2000);
	assert_true(atomic_load(&f.s[0]->accepted) - accepted <= 2);
	/* Deletes of those blocks likewise: one probe, not one per block.
	 * Those on the hung node fail (the deleter tries them later). */
	t0 = now_ms();
	assert_int_equal(blockio_delete_many(b, (const uint8_t (*)[32])addrs, BIO_N,
					     errs), -ETIMEDOUT);
	dt = now_ms() - t0;
	printf("FIGURE deletes_with_hung_owner_ms=%lld\n", (long long)dt);
	assert_true(dt < 2000);
	/* The next write tries the node afresh: it is back, and answers. */
	atomic_store(&f.s[0]->mute_hello, false);
	atomic_store(&f.s[0]->silent, false);
	assert_int_equal(blockio_put_many(b, (const uint8_t (*)[32])addrs,
					  (const void *const[]){ data[0], data[1] },
					  (const size_t[]){ 64, 64 }, 2, errs), 0);
	blockio_free(b);
	fixture_stop(&f);
}

static void blockio_reports_no_map_as_enoent(void **state)
{
	struct tsrv *s = ts_start(secret_a);
	const char *seeds[1] = { s->addr };
	uint8_t pk[CMAP_PK_BYTES] = { 0 };
	struct blockio *b = NULL;

	(void)state;
	assert_int_equal(blockio_new(seeds, 1, secret_a, pk, NULL, &b), -ENOENT);
	ts_stop(s);
}

int main(void)
{
	const char *env = getenv("CAIRNFS_TEST_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handshake_succeeds_and_wrong_secret_is_rejected),
		cmocka_unit_test(pipelined_calls_from_threads_all_get_their_own_answers),
		cmocka_unit_test(silent_or_stalled_server_times_out_within_the_call_timeout),
		cmocka_unit_test(server_closing_mid_call_resets_and_next_call_reconnects),
		cmocka_unit_test(tampered_answer_is_rejected_and_connection_dropped),
		cmocka_unit_test(refused_and_missing_answers_map_to_errno),
		cmocka_unit_test(a_hung_node_gets_short_probes_that_its_callers_share),
		cmocka_unit_test(slow_handshake_does_not_hold_up_other_nodes),
		cmocka_unit_test(blockio_follows_the_signed_map),
		cmocka_unit_test(blockio_with_an_owner_down_fails_over_and_honours_the_quorum),
		cmocka_unit_test(blockio_batch_sends_as_added_and_retries_a_stale_map),
		cmocka_unit_test(blockio_batch_waits_once_for_a_hung_owner),
		cmocka_unit_test(blockio_reports_no_map_as_enoent),
	};

	if (sodium_init() < 0)
		return 1;
	g_seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
	printf("test_pool: seed %llu (replay with CAIRNFS_TEST_SEED)\n",
	       (unsigned long long)g_seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
