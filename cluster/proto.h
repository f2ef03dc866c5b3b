/*
 * proto: the wire protocol's frame codec, opcodes, status numbers and the
 * payload layouts of every operation.
 *
 * A frame (all integers little-endian):
 *
 *   off len  field
 *     0   1  version (PROTO_VERSION = 1)
 *     1   1  opcode (enum proto_op)
 *     2   1  flags: PROTO_F_RESPONSE on answers
 *     3   1  status (enum proto_status; 0 in requests)
 *     4   4  payload length
 *     8   8  request id (chosen by the requester, echoed in the answer)
 *    16   n  payload
 *  16+n  16  tag (hs_tag_frame), on every frame after the handshake
 *
 * Before the handshake completes only HELLO frames are allowed and a peer
 * may send at most PROTO_PREAUTH_MAX_BYTES in all. After it, a payload may
 * be up to PROTO_MAX_PAYLOAD. proto_decode_header() checks version, opcode,
 * flags and length before anyone looks at a payload.
 *
 * Payloads (requests / answers; "addr" is 32 bytes; "epoch" u64 is the
 * requester's cluster map epoch, 0 when it has none):
 *
 *   HELLO      step 1: u8 1 | e_c[32]
 *                 ans: e_s+auth_s[64] | node_id[16] | cluster_id[16] | epoch
 *                      (node_id, cluster_id and epoch are the handshake ctx;
 *                       an unconfigured node sends zero cluster_id)
 *              step 2: u8 2 | auth_c[32]          ans: empty, tagged
 *   PUT        epoch | addr | block bytes          ans: u8 1 stored, 0 already held
 *   GET        epoch | addr                        ans: block bytes
 *   HAS        epoch | u32 n | addr x n            ans: u32 n | bitmap[(n+7)/8]
 *   DELETE     epoch | addr                        ans: empty (NOT_FOUND if absent)
 *   LIST_SLOT  epoch | u16 slot | u32 max | u8 has_after | addr after
 *                                                  ans: u32 n | u8 more |
 *                                                       (addr | u32 size) x n
 *   MAP_GET    empty                               ans: signed map (cmap_encode)
 *   MAP_PUSH   signed map                          ans: empty
 *   NODE_STATUS empty                              ans: u16 n | (u16 key | u64 value) x n
 *   PING       epoch                               ans: epoch of the answerer
 *
 * A request naming an epoch older than the daemon's gets STALE with the
 * daemon's epoch (u64) as payload: the client fetches the map and retries.
 *
 * The wire carries pinned status numbers, never host errno:
 * proto_status_to_err() and proto_err_to_status() are the only mappings.
 *
 * Never logs. Thread-safety: pure functions.
 */
#ifndef CAIRN_PROTO_H
#define CAIRN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_HEADER_BYTES 16
#define PROTO_TAG_BYTES 16
#define PROTO_ADDR_BYTES 32
#define PROTO_PREAUTH_MAX_BYTES 4096
#define PROTO_MAX_PAYLOAD (65u * 1024 * 1024)  /* a sealed 64 MiB chunk fits */
#define PROTO_HAS_MAX 4096                     /* addresses in one HAS */
#define PROTO_LIST_MAX 8192                    /* entries in one LIST_SLOT answer */
#define PROTO_F_RESPONSE 0x01

enum proto_op {
	PROTO_OP_HELLO = 1,
	PROTO_OP_PUT = 2,
	PROTO_OP_GET = 3,
	PROTO_OP_HAS = 4,
	PROTO_OP_DELETE = 5,
	PROTO_OP_LIST_SLOT = 6,
	PROTO_OP_MAP_GET = 7,
	PROTO_OP_MAP_PUSH = 8,
	PROTO_OP_NODE_STATUS = 9,
	PROTO_OP_PING = 10,
	/* reserved for later issues; a daemon answers UNSUPPORTED */
	PROTO_OP_SLOT_PULL = 11,       /* migration */
	PROTO_OP_ROOT_GET = 12,        /* volume roots */
	PROTO_OP_ROOT_CAS = 13,
	PROTO_OP_FRAG_PUT = 14,        /* erasure-coded fragments */
	PROTO_OP_FRAG_GET = 15,
	PROTO_OP_CAPABILITY = 16,      /* per-volume access */
	PROTO_OP_MAX = 16,
};

enum proto_status {                    /* pinned: never renumber */
	PROTO_ST_OK = 0,
	PROTO_ST_NOT_FOUND = 1,        /* -ENOENT */
	PROTO_ST_STALE = 2,            /* -ESTALE */
	PROTO_ST_NO_SPACE = 3,         /* -ENOSPC */
	PROTO_ST_IO = 4,               /* -EIO */
	PROTO_ST_BAD_REQUEST = 5,      /* -EPROTO */
	PROTO_ST_UNSUPPORTED = 6,      /* -ENOTSUP */
	PROTO_ST_CORRUPT = 7,          /* -EBADMSG: stored copy failed its checksum */
	PROTO_ST_NOT_OWNER = 8,        /* -EXDEV: slot not owned by this node */
	PROTO_ST_BUSY = 9,             /* -EAGAIN */
	PROTO_ST_DENIED = 10,          /* -EACCES */
	PROTO_ST_TOO_BIG = 11,         /* -E2BIG */
	PROTO_ST_BAD_SIGNATURE = 12,   /* -EKEYREJECTED: map signature */
};

/* NODE_STATUS keys: pinned. */
enum proto_stat_key {
	PROTO_STAT_EPOCH = 1,
	PROTO_STAT_BLOCKS = 2,
	PROTO_STAT_BYTES = 3,          /* bytes of stored blocks */
	PROTO_STAT_DISK_TOTAL = 4,
	PROTO_STAT_DISK_FREE = 5,
	PROTO_STAT_PUTS = 6,           /* PUT requests answered OK */
	PROTO_STAT_PUT_NEW = 7,        /* ... of which stored a new block */
	PROTO_STAT_PUT_BYTES = 8,      /* bytes of newly stored blocks */
	PROTO_STAT_GETS = 9,
	PROTO_STAT_GET_BYTES = 10,
	PROTO_STAT_DELETES = 11,
	PROTO_STAT_UPTIME_S = 12,
	PROTO_STAT_CONNECTIONS = 13,
	PROTO_STAT_PROTO_ERRORS = 14,  /* connections dropped for bad frames */
	PROTO_STAT_AUTH_FAILURES = 15,
	PROTO_STAT_CORRUPT_BLOCKS = 16,
	PROTO_STAT_PACK_BYTES = 17,    /* pack files of small blocks */
	PROTO_STAT_PACK_DEAD_BYTES = 18, /* ... that compaction would free */
	PROTO_STAT_COMPACTIONS = 19,   /* packs compacted since start */
	PROTO_STAT_COMPACT_READ_BYTES = 20, /* ... and the bytes that read */
	PROTO_STAT_MAX = 20,
};

struct proto_header {
	uint8_t version;
	uint8_t opcode;
	uint8_t flags;
	uint8_t status;
	uint32_t length;
	uint64_t request_id;
};

void proto_encode_header(const struct proto_header *h,
			 uint8_t out[PROTO_HEADER_BYTES]);
/*
 * Decode and check a header. `limit` is the largest payload allowed now
 * (PROTO_PREAUTH_MAX_BYTES before the handshake). Returns 0, or
 *   -ENOTSUP  another protocol version
 *   -EPROTO   unknown opcode, unknown flag bits, status in a request
 *   -E2BIG    length over limit
 */
int proto_decode_header(const uint8_t in[PROTO_HEADER_BYTES], uint32_t limit,
			struct proto_header *out);

/* A name for an opcode ("PUT"), "?" for unknown ones. */
const char *proto_op_name(unsigned op);

int proto_status_to_err(unsigned status);   /* 0 or -errno */
uint8_t proto_err_to_status(int err);        /* any -errno -> a status */

/* Little-endian helpers for payloads. */
static inline void proto_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void proto_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void proto_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t proto_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t proto_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t proto_get_u64(const uint8_t *p)
{
	return (uint64_t)proto_get_u32(p) | (uint64_t)proto_get_u32(p + 4) << 32;
}

/*
 * A bounds-checked reader over a payload: each get fails (returns false and
 * sets r->bad) once the payload is exhausted, so a decoder checks r->bad once
 * at the end instead of every length by hand.
 */
struct proto_reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};
static inline void proto_reader_init(struct proto_reader *r, const void *p,
				     size_t len)
{
	r->p = p;
	r->left = len;
	r->bad = false;
}
bool proto_read_u8(struct proto_reader *r, uint8_t *v);
bool proto_read_u16(struct proto_reader *r, uint16_t *v);
bool proto_read_u32(struct proto_reader *r, uint32_t *v);
bool proto_read_u64(struct proto_reader *r, uint64_t *v);
/* Borrow n bytes (valid while the payload is). */
bool proto_read_bytes(struct proto_reader *r, size_t n, const uint8_t **v);

#endif
