/*
 * cmap: the cluster map in memory, its signed binary encoding, and placement
 * of the 16384 slots on the nodes by weighted rendezvous hashing.
 *
 * It does not fetch, store, gossip or compare epochs of maps (the daemon and
 * cairnctl do), and it does not move data: cmap_place() only records which
 * slots move and where they come from. Never logs (a bottom library: the
 * caller turns codes into words).
 */
#include "config.h"
#include "cluster/cmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define CMAP_MAGIC "CRNM"
#define CMAP_VERSION 1
/* magic, version, width, reserved, epoch, cluster id, admin key */
#define CMAP_HEADER_BYTES (4 + 1 + 1 + 2 + 8 + CMAP_CLUSTER_ID_BYTES + CMAP_PK_BYTES)
/* id, weight, state, addr_len; the address follows */
#define CMAP_NODE_FIXED_BYTES (CMAP_NODE_ID_BYTES + 4 + 1 + 1)
/* Up to this many nodes an owner index is one byte on the wire, above two. */
#define CMAP_SMALL_NODES 256u

_Static_assert(CMAP_HEADER_BYTES == 64, "map header layout");
_Static_assert(CMAP_NODE_FIXED_BYTES == 22, "map node layout");
_Static_assert(CMAP_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "admin key size");
_Static_assert(CMAP_SK_BYTES == crypto_sign_SECRETKEYBYTES, "admin secret size");
_Static_assert(CMAP_SIG_BYTES == crypto_sign_BYTES, "signature size");
/* Placement keys SipHash with the node id. */
_Static_assert(CMAP_NODE_ID_BYTES == crypto_shorthash_KEYBYTES, "node id as hash key");
_Static_assert(CMAP_MAX_NODES <= 65536u, "owner indexes are u16");
_Static_assert(CMAP_MAX_WIDTH <= 255u, "owner counts are u8");
_Static_assert(CMAP_ADDR_MAX <= 255, "addr_len is u8");
_Static_assert(CMAP_SLOTS == 1u << 14, "slot_of_addr takes 14 bits");

struct cmap_slot {
	uint8_t n;                          /* owners */
	uint8_t n_prev;                     /* previous owners while moving */
	uint16_t own[CMAP_MAX_WIDTH];
	uint16_t prev[CMAP_MAX_WIDTH];
};

struct cmap {
	uint64_t epoch;
	uint8_t cluster_id[CMAP_CLUSTER_ID_BYTES];
	uint8_t admin_pk[CMAP_PK_BYTES];
	unsigned width;
	unsigned n_nodes;
	unsigned cap_nodes;
	struct cmap_node *nodes;
	struct cmap_slot *slots;            /* CMAP_SLOTS of them */
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int cmap_alloc(unsigned cap_nodes, struct cmap **out)
{
	struct cmap *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->slots = calloc(CMAP_SLOTS, sizeof(*m->slots));
	if (cap_nodes)
		m->nodes = calloc(cap_nodes, sizeof(*m->nodes));
	if (!m->slots || (cap_nodes && !m->nodes)) {
		cmap_free(m);
		return -ENOMEM;
	}
	m->cap_nodes = cap_nodes;
	*out = m;
	return 0;
}

int cmap_new(const uint8_t cluster_id[CMAP_CLUSTER_ID_BYTES],
	     const uint8_t admin_pk[CMAP_PK_BYTES], unsigned width,
	     struct cmap **out)
{
	struct cmap *m;
	int err;

	if (width < 1 || width > CMAP_MAX_WIDTH)
		return -EINVAL;
	err = cmap_alloc(0, &m);
	if (err)
		return err;
	memcpy(m->cluster_id, cluster_id, CMAP_CLUSTER_ID_BYTES);
	memcpy(m->admin_pk, admin_pk, CMAP_PK_BYTES);
	m->width = width;
	*out = m;
	return 0;
}

int cmap_copy(const struct cmap *m, struct cmap **out)
{
	struct cmap *c;
	int err;

	err = cmap_alloc(m->n_nodes, &c);
	if (err)
		return err;
	c->epoch = m->epoch;
	memcpy(c->cluster_id, m->cluster_id, sizeof(c->cluster_id));
	memcpy(c->admin_pk, m->admin_pk, sizeof(c->admin_pk));
	c->width = m->width;
	c->n_nodes = m->n_nodes;
	if (m->n_nodes)
		memcpy(c->nodes, m->nodes, m->n_nodes * sizeof(*c->nodes));
	memcpy(c->slots, m->slots, CMAP_SLOTS * sizeof(*c->slots));
	*out = c;
	return 0;
}

void cmap_free(struct cmap *m)
{
	if (!m)
		return;
	free(m->nodes);
	free(m->slots);
	free(m);
}

uint64_t cmap_epoch(const struct cmap *m)
{
	return m->epoch;
}

void cmap_set_epoch(struct cmap *m, uint64_t epoch)
{
	m->epoch = epoch;
}

unsigned cmap_width(const struct cmap *m)
{
	return m->width;
}

int cmap_set_width(struct cmap *m, unsigned width)
{
	if (width < 1 || width > CMAP_MAX_WIDTH)
		return -EINVAL;
	m->width = width;
	return 0;
}

const uint8_t *cmap_cluster_id(const struct cmap *m)
{
	return m->cluster_id;
}

const uint8_t *cmap_admin_pk(const struct cmap *m)
{
	return m->admin_pk;
}

unsigned cmap_node_count(const struct cmap *m)
{
	return m->n_nodes;
}

const struct cmap_node *cmap_node(const struct cmap *m, unsigned i)
{
	return i < m->n_nodes ? &m->nodes[i] : NULL;
}

int cmap_node_find(const struct cmap *m, const uint8_t id[CMAP_NODE_ID_BYTES])
{
	for (unsigned i = 0; i < m->n_nodes; i++)
		if (!memcmp(m->nodes[i].id, id, CMAP_NODE_ID_BYTES))
			return (int)i;
	return -ENOENT;
}

int cmap_node_find_addr(const struct cmap *m, const char *addr)
{
	for (unsigned i = 0; i < m->n_nodes; i++)
		if (!strcmp(m->nodes[i].addr, addr))
			return (int)i;
	return -ENOENT;
}

/* An address is 1..CMAP_ADDR_MAX bytes; returns its length or -EINVAL. */
static int cmap_addr_len(const char *addr)
{
	size_t len = strnlen(addr, CMAP_ADDR_MAX + 1);

	if (len == 0 || len > CMAP_ADDR_MAX)
		return -EINVAL;
	return (int)len;
}

int cmap_node_add(struct cmap *m, const struct cmap_node *n)
{
	struct cmap_node *nodes, *dst;
	int len;

	len = cmap_addr_len(n->addr);
	if (len < 0 || n->weight == 0 || n->state > CMAP_NODE_OUT)
		return -EINVAL;
	if (cmap_node_find(m, n->id) >= 0)
		return -EEXIST;
	if (m->n_nodes >= CMAP_MAX_NODES)
		return -ENOSPC;
	if (m->n_nodes == m->cap_nodes) {
		unsigned cap = m->cap_nodes ? 2 * m->cap_nodes : 8;

		if (cap > CMAP_MAX_NODES)
			cap = CMAP_MAX_NODES;
		nodes = realloc(m->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return -ENOMEM;
		m->nodes = nodes;
		m->cap_nodes = cap;
	}
	/* Copy field by field so the stored address is always terminated. */
	dst = &m->nodes[m->n_nodes];
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->id, n->id, CMAP_NODE_ID_BYTES);
	memcpy(dst->addr, n->addr, (size_t)len);
	dst->weight = n->weight;
	dst->state = n->state;
	return (int)m->n_nodes++;
}

int cmap_node_set_state(struct cmap *m, unsigned i, enum cmap_node_state st)
{
	if (i >= m->n_nodes || (unsigned)st > CMAP_NODE_OUT)
		return -EINVAL;
	m->nodes[i].state = (uint8_t)st;
	return 0;
}

int cmap_node_set_addr(struct cmap *m, unsigned i, const char *addr)
{
	int len = cmap_addr_len(addr);

	if (i >= m->n_nodes || len < 0)
		return -EINVAL;
	memset(m->nodes[i].addr, 0, sizeof(m->nodes[i].addr));
	memcpy(m->nodes[i].addr, addr, (size_t)len);
	return 0;
}

unsigned cmap_slot_owners(const struct cmap *m, unsigned slot,
			  uint16_t owners[CMAP_MAX_WIDTH])
{
	const struct cmap_slot *s;

	if (slot >= CMAP_SLOTS)
		return 0;
	s = &m->slots[slot];
	memcpy(owners, s->own, s->n * sizeof(*owners));
	return s->n;
}

unsigned cmap_slot_prev(const struct cmap *m, unsigned slot,
			uint16_t prev[CMAP_MAX_WIDTH])
{
	const struct cmap_slot *s;

	if (slot >= CMAP_SLOTS)
		return 0;
	s = &m->slots[slot];
	memcpy(prev, s->prev, s->n_prev * sizeof(*prev));
	return s->n_prev;
}

static bool list_has(const uint16_t *list, unsigned n, unsigned v)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

/* Indexes below n_nodes and no duplicates. */
static bool list_valid(const uint16_t *list, unsigned n, unsigned n_nodes)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] >= n_nodes || list_has(list, i, list[i]))
			return false;
	return true;
}

/* Same members, any order; both lists are free of duplicates. */
static bool list_same_set(const uint16_t *a, unsigned na,
			  const uint16_t *b, unsigned nb)
{
	if (na != nb)
		return false;
	for (unsigned i = 0; i < na; i++)
		if (!list_has(b, nb, a[i]))
			return false;
	return true;
}

int cmap_slot_set(struct cmap *m, unsigned slot, const uint16_t *owners,
		  unsigned n, const uint16_t *prev, unsigned n_prev)
{
	struct cmap_slot *s;

	if (slot >= CMAP_SLOTS || n > m->width || n_prev > CMAP_MAX_WIDTH)
		return -EINVAL;
	if (!list_valid(owners, n, m->n_nodes) ||
	    !list_valid(prev, n_prev, m->n_nodes))
		return -EINVAL;
	s = &m->slots[slot];
	s->n = (uint8_t)n;
	s->n_prev = (uint8_t)n_prev;
	if (n)
		memcpy(s->own, owners, n * sizeof(*owners));
	if (n_prev)
		memcpy(s->prev, prev, n_prev * sizeof(*prev));
	return 0;
}

int cmap_slot_has_owner(const struct cmap *m, unsigned slot, unsigned node)
{
	if (slot >= CMAP_SLOTS)
		return 0;
	return list_has(m->slots[slot].own, m->slots[slot].n, node);
}

int cmap_slot_has_prev(const struct cmap *m, unsigned slot, unsigned node)
{
	if (slot >= CMAP_SLOTS)
		return 0;
	return list_has(m->slots[slot].prev, m->slots[slot].n_prev, node);
}

/*
 * Checks that hold for every map we encode or accept: no slot has more
 * owners than the width, and a map that assigns any slot has at least width
 * nodes. A map with no assignments at all (a cluster just initialised) may
 * have fewer nodes than its width.
 */
static bool cmap_consistent(const struct cmap *m)
{
	bool assigned = false;

	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		if (m->slots[s].n > m->width)
			return false;
		if (m->slots[s].n)
			assigned = true;
	}
	return !assigned || m->width <= m->n_nodes;
}

static size_t cmap_idx_bytes(unsigned n_nodes)
{
	return n_nodes <= CMAP_SMALL_NODES ? 1 : 2;
}

static uint8_t *put_idx(uint8_t *p, size_t ib, uint16_t v)
{
	if (ib == 1) {
		*p = (uint8_t)v;
	} else {
		put_le16(p, v);
	}
	return p + ib;
}

int cmap_encode(const struct cmap *m, const uint8_t admin_sk[CMAP_SK_BYTES],
		uint8_t **out, size_t *out_len)
{
	uint8_t pk[CMAP_PK_BYTES], *buf, *p;
	size_t len, ib = cmap_idx_bytes(m->n_nodes);
	int err = 0;

	if (sodium_init() < 0)
		return -EIO;
	if (!cmap_consistent(m))
		return -EINVAL;
	/* A map signed with a key other than the one it carries never verifies. */
	if (crypto_sign_ed25519_sk_to_pk(pk, admin_sk) ||
	    sodium_memcmp(pk, m->admin_pk, sizeof(pk)))
		return -EKEYREJECTED;

	len = CMAP_HEADER_BYTES + 2;
	for (unsigned i = 0; i < m->n_nodes; i++)
		len += CMAP_NODE_FIXED_BYTES + strlen(m->nodes[i].addr);
	for (unsigned s = 0; s < CMAP_SLOTS; s++)
		len += 2 + ib * (m->slots[s].n + m->slots[s].n_prev);
	len += CMAP_SIG_BYTES;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;

	p = buf;
	memcpy(p, CMAP_MAGIC, 4);
	p[4] = CMAP_VERSION;
	p[5] = (uint8_t)m->width;
	put_le16(p + 6, 0);
	put_le64(p + 8, m->epoch);
	memcpy(p + 16, m->cluster_id, CMAP_CLUSTER_ID_BYTES);
	memcpy(p + 16 + CMAP_CLUSTER_ID_BYTES, m->admin_pk, CMAP_PK_BYTES);
	p += CMAP_HEADER_BYTES;
	put_le16(p, (uint16_t)m->n_nodes);
	p += 2;
	for (unsigned i = 0; i < m->n_nodes; i++) {
		const struct cmap_node *n = &m->nodes[i];
		size_t alen = strlen(n->addr);

		memcpy(p, n->id, CMAP_NODE_ID_BYTES);
		put_le32(p + 16, n->weight);
		p[20] = n->state;
		p[21] = (uint8_t)alen;
		memcpy(p + CMAP_NODE_FIXED_BYTES, n->addr, alen);
		p += CMAP_NODE_FIXED_BYTES + alen;
	}
	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		const struct cmap_slot *sl = &m->slots[s];

		*p++ = sl->n;
		for (unsigned k = 0; k < sl->n; k++)
			p = put_idx(p, ib, sl->own[k]);
		*p++ = sl->n_prev;
		for (unsigned k = 0; k < sl->n_prev; k++)
			p = put_idx(p, ib, sl->prev[k]);
	}
	if (crypto_sign_detached(p, NULL, buf, (size_t)(p - buf), admin_sk)) {
		err = -EIO;
		goto out;
	}
	p += CMAP_SIG_BYTES;
	if ((size_t)(p - buf) != len)
		abort();    /* the size computation above and the writer disagree */
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(buf);
	return err;
}

/* A bounded cursor: every read checks what is left; a short read is -EPROTO. */
struct cmap_reader {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *rd_take(struct cmap_reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->left < n)
		return NULL;
	r->p += n;
	r->left -= n;
	return p;
}

/* Reads a count byte and that many node indexes into list. */
static int rd_list(struct cmap_reader *r, size_t ib, unsigned max,
		   unsigned n_nodes, uint16_t *list, uint8_t *n_out)
{
	const uint8_t *p = rd_take(r, 1);
	unsigned n;

	if (!p || *p > max)
		return -EPROTO;
	n = *p;
	p = rd_take(r, n * ib);
	if (!p)
		return -EPROTO;
	for (unsigned k = 0; k < n; k++)
		list[k] = ib == 1 ? p[k] : get_le16(p + 2 * k);
	if (!list_valid(list, n, n_nodes))
		return -EPROTO;
	*n_out = (uint8_t)n;
	return 0;
}

int cmap_decode(const uint8_t *buf, size_t len,
		const uint8_t pinned_pk[CMAP_PK_BYTES], struct cmap **out)
{
	struct cmap_reader r = { buf, len };
	struct cmap *m = NULL;
	const uint8_t *p, *sig;
	unsigned width, n_nodes;
	size_t ib, body;
	int err;

	if (len > CMAP_MAX_ENCODED)
		return -EMSGSIZE;
	if (len < 5 || memcmp(buf, CMAP_MAGIC, 4))
		return -EPROTO;
	if (buf[4] != CMAP_VERSION)
		return -ENOTSUP;
	p = rd_take(&r, CMAP_HEADER_BYTES + 2);
	if (!p)
		return -EPROTO;
	width = p[5];
	n_nodes = get_le16(p + CMAP_HEADER_BYTES);
	if (width < 1 || width > CMAP_MAX_WIDTH || get_le16(p + 6) != 0 ||
	    n_nodes > CMAP_MAX_NODES)
		return -EPROTO;
	/* The smallest possible node and slot tables and the signature must
	 * fit before we allocate anything. */
	if (r.left < (size_t)n_nodes * CMAP_NODE_FIXED_BYTES + 2 * CMAP_SLOTS +
		     CMAP_SIG_BYTES)
		return -EPROTO;
	err = cmap_alloc(n_nodes, &m);
	if (err)
		return err;
	m->width = width;
	m->epoch = get_le64(p + 8);
	memcpy(m->cluster_id, p + 16, CMAP_CLUSTER_ID_BYTES);
	memcpy(m->admin_pk, p + 16 + CMAP_CLUSTER_ID_BYTES, CMAP_PK_BYTES);

	err = -EPROTO;
	for (unsigned i = 0; i < n_nodes; i++) {
		struct cmap_node *n = &m->nodes[i];
		unsigned alen;

		p = rd_take(&r, CMAP_NODE_FIXED_BYTES);
		if (!p)
			goto out;
		alen = p[21];
		if (get_le32(p + 16) == 0 || p[20] > CMAP_NODE_OUT || alen == 0)
			goto out;
		memcpy(n->id, p, CMAP_NODE_ID_BYTES);
		n->weight = get_le32(p + 16);
		n->state = p[20];
		p = rd_take(&r, alen);
		if (!p || memchr(p, '\0', alen))
			goto out;
		memcpy(n->addr, p, alen);
		n->addr[alen] = '\0';
		for (unsigned j = 0; j < i; j++)
			if (!memcmp(m->nodes[j].id, n->id, CMAP_NODE_ID_BYTES))
				goto out;
		m->n_nodes = i + 1;
	}
	ib = cmap_idx_bytes(n_nodes);
	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		struct cmap_slot *sl = &m->slots[s];

		if (rd_list(&r, ib, width, n_nodes, sl->own, &sl->n) ||
		    rd_list(&r, ib, CMAP_MAX_WIDTH, n_nodes, sl->prev, &sl->n_prev))
			goto out;
	}
	if (!cmap_consistent(m))
		goto out;
	/* What is left must be exactly the signature. */
	if (r.left < CMAP_SIG_BYTES)
		goto out;
	if (r.left > CMAP_SIG_BYTES) {
		err = -EMSGSIZE;
		goto out;
	}
	body = len - CMAP_SIG_BYTES;
	sig = buf + body;

	if (pinned_pk && sodium_memcmp(pinned_pk, m->admin_pk, CMAP_PK_BYTES)) {
		err = -EKEYREJECTED;
		goto out;
	}
	if (sodium_init() < 0) {
		err = -EIO;
		goto out;
	}
	if (crypto_sign_verify_detached(sig, buf, body, m->admin_pk)) {
		err = -EBADMSG;
		goto out;
	}
	*out = m;
	m = NULL;
	err = 0;
out:
	cmap_free(m);
	return err;
}

/*
 * Natural log of u = x / 2^53 for odd x < 2^53, in plain double arithmetic
 * (no libm): placement is then the same bit for bit wherever it runs, and
 * the library needs no -lm. x = m * 2^k with m in [sqrt(1/2), sqrt(2)], and
 * ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172: 12 terms of the series
 * reach double precision.
 */
static double cmap_ln_unit(uint64_t x)
{
	static const double ln2 = 0.69314718055994530942;
	double m, s, s2, term, sum;
	int k = 63 - __builtin_clzll(x);

	m = (double)x / (double)(1ull << k);      /* exact: a power of two */
	if (m > 1.41421356237309504880) {
		m *= 0.5;
		k++;
	}
	s = (m - 1.0) / (m + 1.0);
	s2 = s * s;
	term = s;
	sum = 0.0;
	for (int i = 0; i < 12; i++) {
		sum += term / (double)(2 * i + 1);
		term *= s2;
	}
	return 2.0 * sum + (double)(k - 53) * ln2;
}

/*
 * Rendezvous cost of putting `slot` on a node: -ln(u) / weight, where u in
 * (0,1) comes from SipHash keyed by the node id. The lowest cost wins; this
 * is the same ranking as the highest score weight / -ln(u), which makes a
 * node's share of first places proportional to its weight.
 */
static double cmap_cost(const struct cmap_node *n, unsigned slot)
{
	uint8_t msg[2], h[crypto_shorthash_BYTES];
	uint64_t x;

	put_le16(msg, (uint16_t)slot);
	crypto_shorthash(h, msg, sizeof(msg), n->id);
	x = ((get_le64(h) >> 12) << 1) | 1;         /* odd, below 2^53 */
	return -cmap_ln_unit(x) / (double)n->weight;
}

/* The `width` UP nodes with the lowest cost for slot, cheapest first. */
static void cmap_rank(const struct cmap *m, const uint16_t *up, unsigned n_up,
		      unsigned slot, uint16_t *own)
{
	double best[CMAP_MAX_WIDTH];
	unsigned have = 0;

	for (unsigned i = 0; i < n_up; i++) {
		double c = cmap_cost(&m->nodes[up[i]], slot);
		unsigned pos = have;

		/* up[] is in index order, so equal costs keep the lower index. */
		while (pos > 0 && c < best[pos - 1])
			pos--;
		if (pos >= m->width)
			continue;
		if (have < m->width)
			have++;
		for (unsigned j = have - 1; j > pos; j--) {
			best[j] = best[j - 1];
			own[j] = own[j - 1];
		}
		best[pos] = c;
		own[pos] = up[i];
	}
}

/*
 * The previous owners to record for a slot of `next` given the slot in the
 * map before. A slot whose owners change keeps the old owners; if the old
 * slot was itself still moving, its previous owners are appended (they may
 * hold blocks the old owners never received), up to CMAP_MAX_WIDTH. A slot
 * whose owners stay keeps an unfinished move's previous owners, so placing
 * again in the middle of a rebalance never forgets where data still lives.
 */
static void cmap_carry_prev(const struct cmap_slot *old, struct cmap_slot *s)
{
	unsigned n = 0;

	if (list_same_set(s->own, s->n, old->own, old->n)) {
		memcpy(s->prev, old->prev, old->n_prev * sizeof(*s->prev));
		s->n_prev = old->n_prev;
		return;
	}
	for (unsigned k = 0; k < old->n; k++)
		s->prev[n++] = old->own[k];
	for (unsigned k = 0; k < old->n_prev && n < CMAP_MAX_WIDTH; k++)
		if (!list_has(s->prev, n, old->prev[k]))
			s->prev[n++] = old->prev[k];
	s->n_prev = (uint8_t)n;
}

int cmap_place(const struct cmap *prev, struct cmap *next)
{
	uint16_t *up;
	unsigned n_up = 0;

	if (prev) {
		/* Indexes must mean the same nodes in both maps. */
		if (prev->n_nodes > next->n_nodes)
			return -EINVAL;
		for (unsigned i = 0; i < prev->n_nodes; i++)
			if (memcmp(prev->nodes[i].id, next->nodes[i].id,
				   CMAP_NODE_ID_BYTES))
				return -EINVAL;
	}
	up = malloc((next->n_nodes ? next->n_nodes : 1) * sizeof(*up));
	if (!up)
		return -ENOMEM;
	for (unsigned i = 0; i < next->n_nodes; i++)
		if (next->nodes[i].state == CMAP_NODE_UP)
			up[n_up++] = (uint16_t)i;
	if (n_up < next->width) {
		free(up);
		return -EAGAIN;
	}
	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		struct cmap_slot *sl = &next->slots[s];

		cmap_rank(next, up, n_up, s, sl->own);
		sl->n = (uint8_t)next->width;
		sl->n_prev = 0;
		if (prev)
			cmap_carry_prev(&prev->slots[s], sl);
	}
	free(up);
	return 0;
}

void cmap_clear_prev(struct cmap *m)
{
	for (unsigned s = 0; s < CMAP_SLOTS; s++)
		m->slots[s].n_prev = 0;
}

unsigned cmap_slots_moved(const struct cmap *a, const struct cmap *b)
{
	unsigned moved = 0;

	for (unsigned s = 0; s < CMAP_SLOTS; s++)
		if (!list_same_set(a->slots[s].own, a->slots[s].n,
				   b->slots[s].own, b->slots[s].n))
			moved++;
	return moved;
}
