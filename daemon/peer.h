/*
 * peer: a small blocking client of the wire protocol, for the daemon's
 * gossip thread and for test tools (tests/integ/wireprobe). cairnctl and
 * cairnfs use cluster/pool.h instead.
 *
 * One connection, one request at a time, every read and write bounded by
 * the socket timeouts set at peer_open(). Never logs.
 * Thread-safety: a struct peer belongs to one thread.
 */
#ifndef CAIRN_PEER_H
#define CAIRN_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/cmap.h"
#include "cluster/proto.h"
#include "crypto/handshake.h"

struct peer {
	int fd;
	struct hs_session sess;
	uint8_t node_id[CMAP_NODE_ID_BYTES];
	uint8_t cluster_id[CMAP_CLUSTER_ID_BYTES];
	uint64_t epoch;          /* the daemon's map epoch at the handshake */
	uint64_t next_id;
};

/* The handshake context a daemon announces: node_id | cluster_id | epoch. */
#define PEER_CTX_BYTES (CMAP_NODE_ID_BYTES + CMAP_CLUSTER_ID_BYTES + 8)

/* TCP connect to "host:port" with timeouts on connect, reads and writes.
 * Returns an fd or -errno. */
int peer_dial(const char *addr, int timeout_ms);
/* Dial and handshake. -EKEYREJECTED when the daemon does not know the
 * secret, -ECONNRESET when it hung up, -ETIMEDOUT. */
int peer_open(const char *addr, const uint8_t secret[HS_SECRET_BYTES],
	      int timeout_ms, struct peer *out) __attribute__((warn_unused_result));
/* The handshake alone on a dialled fd. */
int peer_handshake(int fd, const uint8_t secret[HS_SECRET_BYTES],
		   struct peer *out) __attribute__((warn_unused_result));
void peer_close(struct peer *p);

/* Send one frame (payload = a then b); tagged when s is not NULL. */
int peer_send(int fd, struct hs_session *s, const struct proto_header *h,
	      const void *a, size_t a_len, const void *b, size_t b_len);
/* Receive one frame; payload malloc'd (caller frees). -EBADMSG bad tag,
 * -ECONNRESET closed. */
int peer_recv(int fd, struct hs_session *s, uint32_t limit,
	      struct proto_header *h, uint8_t **payload);
/*
 * One request and its answer. Returns 0 (answer in *resp, malloc'd), the
 * answer's status as -errno (then *resp still holds its payload, e.g. the
 * newer epoch of a STALE answer), or a transport error.
 */
int peer_call(struct peer *p, uint8_t op, const void *req, size_t req_len,
	      const void *data, size_t data_len, uint8_t **resp,
	      size_t *resp_len) __attribute__((warn_unused_result));

#endif
