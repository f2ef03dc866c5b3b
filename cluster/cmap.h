/*
 * cmap: the cluster map, one versioned, signed document.
 *
 * It holds the epoch, the cluster id, the admin public key that signs it,
 * the nodes (id, address, weight, state), the number of owners per slot
 * (the replication factor R; later K+M for erasure-coded volumes), and for
 * every one of the 16384 slots its ordered owner list and, while the slot
 * moves, its previous owners. Owners are indexes into the node table.
 *
 * Encoding (little-endian), signed with Ed25519 by the admin key:
 *
 *   magic "CRNM" | u8 version (1) | u8 width | u16 reserved (0)
 *   u64 epoch | cluster_id[16] | admin_pk[32]
 *   u16 node count | per node: id[16] | u32 weight | u8 state | u8 addr_len |
 *                              addr[addr_len]
 *   per slot (16384): u8 n_owners | idx owner x n | u8 n_prev | idx prev x n
 *   signature[64] over everything before it
 *
 * idx is a node index: one byte when the map has at most 256 nodes, else a
 * u16 (the node count, read before the slots, says which).
 *
 * Decoding checks every count and index against the limits below before it
 * allocates, and checks the signature before it returns anything.
 * Knows nothing of sockets or daemons. Never logs.
 * Thread-safety: a struct cmap is not locked; share it read-only or copy it.
 */
#ifndef CAIRN_CMAP_H
#define CAIRN_CMAP_H

#include <stddef.h>
#include <stdint.h>

#define CMAP_SLOTS 16384u
#define CMAP_MAX_NODES 1024u
#define CMAP_MAX_WIDTH 16u              /* owners per slot */
#define CMAP_NODE_ID_BYTES 16
#define CMAP_CLUSTER_ID_BYTES 16
#define CMAP_ADDR_MAX 255               /* "host:port" */
#define CMAP_PK_BYTES 32                /* crypto_sign_PUBLICKEYBYTES */
#define CMAP_SK_BYTES 64                /* crypto_sign_SECRETKEYBYTES */
#define CMAP_SIG_BYTES 64
#define CMAP_MAX_ENCODED (1u << 24)     /* 16 MiB: more is malformed */

enum cmap_node_state {
	CMAP_NODE_UP = 0,         /* owns slots by its weight */
	CMAP_NODE_DRAINING = 1,   /* owns nothing new, serves reads until empty */
	CMAP_NODE_OUT = 2,        /* gone; kept so indexes stay stable */
};

struct cmap_node {
	uint8_t id[CMAP_NODE_ID_BYTES];
	char addr[CMAP_ADDR_MAX + 1];
	uint32_t weight;          /* relative capacity, > 0 */
	uint8_t state;
};

/* The slot of a block address: its first 14 bits. */
static inline unsigned slot_of_addr(const uint8_t *addr)
{
	return ((unsigned)addr[0] << 6) | ((unsigned)addr[1] >> 2);
}

struct cmap;

/* An empty map: epoch 0, no nodes, `width` owners per slot (1..CMAP_MAX_WIDTH). */
int cmap_new(const uint8_t cluster_id[CMAP_CLUSTER_ID_BYTES],
	     const uint8_t admin_pk[CMAP_PK_BYTES], unsigned width,
	     struct cmap **out) __attribute__((warn_unused_result));
int cmap_copy(const struct cmap *m, struct cmap **out)
	__attribute__((warn_unused_result));
void cmap_free(struct cmap *m);

uint64_t cmap_epoch(const struct cmap *m);
void cmap_set_epoch(struct cmap *m, uint64_t epoch);
unsigned cmap_width(const struct cmap *m);
int cmap_set_width(struct cmap *m, unsigned width);
const uint8_t *cmap_cluster_id(const struct cmap *m);
const uint8_t *cmap_admin_pk(const struct cmap *m);

unsigned cmap_node_count(const struct cmap *m);
/* Node at index i (< cmap_node_count, else NULL), valid until the map changes. */
const struct cmap_node *cmap_node(const struct cmap *m, unsigned i);
/* Index of the node with this id, or -ENOENT. */
int cmap_node_find(const struct cmap *m, const uint8_t id[CMAP_NODE_ID_BYTES]);
/* Index of the node with this address, or -ENOENT. */
int cmap_node_find_addr(const struct cmap *m, const char *addr);
/* Append a node; returns its index, -EEXIST (same id), -ENOSPC (too many
 * nodes) or -EINVAL (empty or too long address, zero weight). */
int cmap_node_add(struct cmap *m, const struct cmap_node *n);
int cmap_node_set_state(struct cmap *m, unsigned i, enum cmap_node_state st);
int cmap_node_set_addr(struct cmap *m, unsigned i, const char *addr);

/* Owners of a slot, in order; returns how many (0 for an unassigned slot). */
unsigned cmap_slot_owners(const struct cmap *m, unsigned slot,
			  uint16_t owners[CMAP_MAX_WIDTH]);
/* Previous owners of a moving slot; 0 when it is not moving. */
unsigned cmap_slot_prev(const struct cmap *m, unsigned slot,
			uint16_t prev[CMAP_MAX_WIDTH]);
/* Set a slot by hand; -EINVAL for a slot out of range, more than width
 * owners, an index not below the node count, or an index listed twice. */
int cmap_slot_set(struct cmap *m, unsigned slot, const uint16_t *owners,
		  unsigned n, const uint16_t *prev, unsigned n_prev);
/* Whether node i is an owner (or a previous owner) of slot. */
int cmap_slot_has_owner(const struct cmap *m, unsigned slot, unsigned node);
int cmap_slot_has_prev(const struct cmap *m, unsigned slot, unsigned node);

/* Encode and sign with the admin secret key. *out is malloc'd (caller frees).
 * -EKEYREJECTED if admin_sk is not the key of cmap_admin_pk(m); -EINVAL if
 * a slot has more owners than the width, or slots are assigned while there
 * are fewer nodes than the width (decode would refuse such a map). */
int cmap_encode(const struct cmap *m, const uint8_t admin_sk[CMAP_SK_BYTES],
		uint8_t **out, size_t *out_len)
	__attribute__((warn_unused_result));
/*
 * Decode a signed map. If `pinned_pk` is not NULL the map must carry that
 * admin key and be signed by it.
 *
 * Trust on first use: with pinned_pk NULL the map is verified against the
 * admin key it carries itself. That proves the map is intact and was signed
 * by whoever holds that key, not that the key is the cluster's: the caller
 * must pin cmap_admin_pk() of the result (e.g. at `cairnctl node add` or a
 * daemon's first map) and pass it on every later decode.
 *
 * Returns 0, or
 *   -EPROTO        malformed or truncated (bad magic, counts, indexes,
 *                  lengths, duplicate node ids, width above the node count)
 *   -EMSGSIZE      bytes after the signature, or longer than CMAP_MAX_ENCODED
 *   -ENOTSUP       unknown version
 *   -EKEYREJECTED  carries another admin key than pinned_pk
 *   -EBADMSG       the signature does not verify
 * *out is written only on success.
 */
int cmap_decode(const uint8_t *buf, size_t len,
		const uint8_t pinned_pk[CMAP_PK_BYTES], struct cmap **out)
	__attribute__((warn_unused_result));

/*
 * Placement (weighted rendezvous hashing). For every slot, rank the nodes
 * that are UP by score = -weight / ln(u), u = hash(node id, slot) mapped to
 * (0,1), and take the top `width` as owners. Deterministic; adding a node
 * moves only the slots it wins, removing one moves only its slots.
 *
 * DRAINING and OUT nodes get no slots (a draining node stays listed as a
 * previous owner of the slots it had, and serves reads until they moved).
 *
 * cmap_place() recomputes all owners of `next`. When `prev` is not NULL,
 * a slot whose owners changed keeps prev's owners as its previous owners
 * (node indexes are stable between maps: nodes are only appended), followed
 * by prev's own previous owners of that slot if it was still moving; a slot
 * whose owners did not change keeps prev's previous owners (an unfinished
 * move stays recorded). With prev NULL every slot's previous owners are
 * cleared. Returns 0, -EAGAIN when fewer than width nodes are UP (next is
 * then unchanged), or -EINVAL when prev's nodes are not a prefix of next's.
 */
int cmap_place(const struct cmap *prev, struct cmap *next)
	__attribute__((warn_unused_result));
/* Clear every slot's previous owners (after a rebalance completes). */
void cmap_clear_prev(struct cmap *m);
/* Number of slots whose owner sets differ between a and b. */
unsigned cmap_slots_moved(const struct cmap *a, const struct cmap *b);

#endif
