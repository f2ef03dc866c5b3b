/*
 * srv_int: what the parts of cairnd's server share, and nothing else
 * includes: the connection and server structs and the functions that
 * cross between srv.c (the loop, connections, the handshake, operations),
 * srv_jobs.c (operations run on the disk workers) and srv_state.c (the
 * node's files, the cluster map it holds, gossip).
 */
#ifndef CAIRN_SRV_INT_H
#define CAIRN_SRV_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "cluster/cmap.h"
#include "cluster/proto.h"
#include "crypto/handshake.h"
#include "daemon/diskpool.h"
#include "daemon/peer.h"
#include "daemon/srv.h"
#include "daemon/store.h"

#define CONN_MAX_INFLIGHT 64
#define CONN_OUT_HIGH (8u << 20)
#define CONN_INFLIGHT_BYTES_HIGH (128u << 20)   /* request bytes held by jobs */
#define CONN_BODY_STEP (64u << 10)
#define EPOCH_BYTES 8

_Static_assert(PEER_CTX_BYTES == 40, "handshake ctx layout");

enum conn_state { CONN_HELLO, CONN_FINISH, CONN_AUTH };

/* One answer on its way out: data[] holds the header (and any small
 * payload), then the tag; a large payload (a GET's block) is sent from the
 * buffer it was read into, ext, instead of being copied in. */
struct outbuf {
	struct outbuf *next;
	size_t len, off;                 /* whole answer; bytes already sent */
	size_t head_len;                 /* data[] bytes before ext */
	const uint8_t *ext;              /* NULL or ext_len payload bytes */
	size_t ext_len;
	void *ext_owned;                 /* freed with the outbuf */
	uint8_t data[];
};

struct conn {
	struct srv *srv;
	struct conn *prev, *next;
	int fd;
	char peer[80];
	ev_io rio, wio;
	enum conn_state state;
	struct handshake *hs;
	struct hs_session sess;
	size_t preauth_bytes;
	/* the frame being read */
	uint8_t hdr[PROTO_HEADER_BYTES];
	size_t hdr_have;
	struct proto_header h;
	uint8_t *body;                   /* payload then tag */
	size_t body_need, body_have, body_cap;
	bool in_body;
	/* answers */
	struct outbuf *out_head, *out_tail;
	size_t out_bytes;
	unsigned inflight;
	size_t inflight_bytes;
	int refs;                        /* the loop's + one per job */
	bool closed, paused;
	ev_tstamp accepted, last_active, frame_start, last_write;
};

struct srv {
	struct srv_opts o;
	char *data_dir;
	struct ev_loop *loop;
	struct store *st;
	struct diskpool *dp;
	int lfd;
	char listen_addr[300];
	ev_io lio;
	ev_timer sweep, accept_retry, drain;
	ev_signal sigterm, sigint;
	struct conn *conns;
	unsigned n_conns;
	bool stopping;
	ev_tstamp stop_time;
	uint8_t node_id[CMAP_NODE_ID_BYTES];
	ev_tstamp started;
	uint64_t proto_errors, auth_failures;   /* loop thread only */
	/* the map */
	pthread_mutex_t map_lock;        /* guards map, map_enc, admin pk */
	pthread_mutex_t adopt_lock;      /* serialises adoption; taken first */
	struct cmap *map;
	uint8_t *map_enc;
	size_t map_len;
	uint64_t epoch;
	bool have_pk;
	uint8_t pk[CMAP_PK_BYTES];
	/* gossip */
	pthread_t gossip;
	bool gossip_started;
	pthread_mutex_t gossip_lock;
	pthread_cond_t gossip_cond;
	bool gossip_stop;
};

/* srv.c: answers on a connection (loop thread) */
void conn_unref(struct conn *c);
void conn_update_read(struct conn *c);
/* Queue an answer: header, payload a then b, tag when authenticated. */
void conn_answer(struct conn *c, uint8_t op, uint8_t status, uint64_t id,
		 const void *a, size_t a_len, const void *b, size_t b_len);
/* Queue an OK answer whose payload is len bytes at body, sent from there;
 * owned (the buffer holding body) is freed once sent or dropped. */
void conn_answer_owned(struct conn *c, uint8_t op, uint64_t id, void *owned,
		       const uint8_t *body, size_t len);
void conn_status(struct conn *c, uint8_t op, int err, uint64_t id);

/* srv_jobs.c: hand the frame being read (c->body) to a disk worker; the
 * answer comes back on the loop. */
void srv_job_submit(struct conn *c, uint8_t op, uint64_t id);

/* srv_state.c */
uint64_t srv_epoch(struct srv *s);
int srv_map_adopt(struct srv *s, const uint8_t *buf, size_t len);
/* Node id (made on first start), pinned admin key, saved map. Logged. */
int srv_load_state(struct srv *s);
/* Write DIR/NAME durably and atomically (temp file, fsync, rename). */
int srv_write_file_atomic(const char *dir, const char *name, const void *buf,
			  size_t len);
/* The gossip thread (pthread entry point). */
void *srv_gossip_main(void *arg);

#endif
