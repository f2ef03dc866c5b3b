/*
 * pool: client connections to storage daemons, with pipelining.
 *
 * One connection per daemon address, opened on first use with the
 * handshake (crypto/handshake.h) and reused. Many requests may be in flight
 * on one connection (request ids match answers), from many threads at once:
 * senders write whole frames under the connection's send lock; one reader
 * thread per connection reads answers and completes the waiting calls.
 *
 * Every wait is bounded: connect, handshake and each call have timeouts;
 * a call that times out, or whose connection breaks, completes with
 * -ETIMEDOUT / -ECONNRESET and the connection is dropped and re-opened on
 * the next use. No lock is held across a network wait.
 *
 * A node that has just timed out (a hung daemon, a dropped network) is
 * not waited on for a full timeout again and again: until a connection to
 * it succeeds, a new one gets the short probe deadline, and callers that
 * queued behind a connect to it share that connect's failure instead of
 * each trying in turn. A daemon that comes back answers the next probe.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef CAIRN_POOL_H
#define CAIRN_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cmap.h"
#include "crypto/handshake.h"

struct pool_opts {
	int connect_timeout_ms;    /* default 3000 */
	int call_timeout_ms;       /* default 30000; per call, from sending */
	unsigned max_inflight;     /* per connection, default 256; more waits */
	int probe_timeout_ms;      /* default 1000, at most connect_timeout_ms:
				    * the connect and handshake deadline for a
				    * node that has just timed out */
};

/* What a daemon announced in its handshake. */
struct pool_peer_info {
	uint8_t node_id[CMAP_NODE_ID_BYTES];
	uint8_t cluster_id[CMAP_CLUSTER_ID_BYTES];
	uint64_t epoch;
};

/*
 * One request. The caller fills the "in" fields, keeps the struct and the
 * payload buffers alive until the call completes, and reads the "out"
 * fields after pool_wait(). The payload is req[0..req_len) followed by
 * data[0..data_len) (so a block is sent without being copied).
 */
struct pool_call {
	/* in */
	const char *node;          /* "host:port" */
	uint8_t opcode;
	const void *req;
	size_t req_len;
	const void *data;
	size_t data_len;
	/* out */
	int err;                   /* 0, the answer's status as -errno, or a
				    * transport error (-ETIMEDOUT, -ECONNRESET,
				    * -ECONNREFUSED, -EKEYREJECTED handshake) */
	uint8_t *resp;             /* answer payload, malloc'd; free() it */
	size_t resp_len;
	/* private to pool.c */
	struct pool_call *next_;
	uint64_t id_;
	int64_t deadline_;         /* monotonic ms */
	int state_;
	void *conn_;
	pthread_cond_t *waiter_;   /* of the thread in pool_wait(), if any */
};

struct pool;

int pool_new(const uint8_t secret[HS_SECRET_BYTES], const struct pool_opts *opts,
	     struct pool **out) __attribute__((warn_unused_result));
/* Close every connection; calls in flight complete with -ECANCELED. */
void pool_free(struct pool *p);

/* Send a call without waiting for its answer. Returns 0 (wait for it with
 * pool_wait) or -errno when it could not be sent (then c->err is set too and
 * pool_wait returns at once). */
int pool_start(struct pool *p, struct pool_call *c);
/* Complete call with err without sending it (its caller knows the node
 * is out of reach): pool_wait() returns err at once. */
void pool_skip(struct pool *p, struct pool_call *call, int err);
/* Wait for a started call; returns c->err. */
int pool_wait(struct pool *p, struct pool_call *c);
/* Start n calls, then wait for all; returns 0 when all succeeded, else the
 * first failure's code (each call has its own err). */
int pool_run(struct pool *p, struct pool_call *calls, size_t n);

/* Connect (if not yet) and return what the daemon announced. */
int pool_peer(struct pool *p, const char *node, struct pool_peer_info *out);
/* Drop the connection to node (the next call reconnects). */
void pool_forget(struct pool *p, const char *node);
/* Whether node's last connect or call timed out and no connect to it has
 * succeeded since (a hung daemon): callers with a choice try others first. */
bool pool_node_hung(struct pool *p, const char *node);

#endif
