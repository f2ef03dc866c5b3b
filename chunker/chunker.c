/*
 * chunker: FastCDC-style content-defined cut points over a keyed gear hash.
 *
 * Does: expand a 32-byte key into the 256-entry gear table (a ChaCha20
 * keystream, written here so the module stays libc only), check sizes, and
 * find cut points one-shot or over a stream split anywhere.
 * Does not: hold data, hash chunks, allocate per call, log, or know files.
 *
 * Cut rule, shared by chunker_find() and chunker_update() so they agree:
 * the bytes at chunk offsets [0, min) are skipped and the hash starts at 0 at
 * offset min; byte i >= min rolls h = (h << 1) + gear[byte] and ends a chunk
 * of length i + 1 when the top bits of h selected by the mask are all zero
 * (strict mask while i < avg, loose mask after), or when i + 1 == max.
 * The top bits are used because with a left-shifting gear hash bit k only
 * depends on the last k + 1 bytes.
 *
 * The keyed table is hardening, not a secrecy promise: published attacks
 * recover gear-style keys from enough observed chunk sizes (DESIGN.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunker/chunker.h"

/*
 * Normalized chunking bits around log2(avg). Stricter by 2 bits before avg
 * and looser by 3 after: the skipped min bytes and the strict region push the
 * mean above avg, and the looser-after mask pulls it back; on random data
 * with min = avg/4 the expected size is about 1.04 * avg (2/2 would give 1.14).
 */
#define CHUNKER_STRICT_BITS 2
#define CHUNKER_LOOSE_BITS 3

struct chunker {
	uint64_t gear[256];
	uint64_t mask_strict;
	uint64_t mask_loose;
	uint32_t min_size;
	uint32_t avg_size;
	uint32_t max_size;
	/* stream state */
	uint64_t pending;       /* bytes of the current chunk seen */
	uint64_t hash;
};

void chunker_params_default(struct chunker_params *p)
{
	p->min_size = CHUNKER_MIN_DEFAULT;
	p->avg_size = CHUNKER_AVG_DEFAULT;
	p->max_size = CHUNKER_MAX_DEFAULT;
}

int chunker_params_check(const struct chunker_params *p)
{
	if (!p)
		return -EINVAL;
	if (p->min_size > CHUNKER_SIZE_LIMIT || p->avg_size > CHUNKER_SIZE_LIMIT ||
	    p->max_size > CHUNKER_SIZE_LIMIT)
		return -E2BIG;
	if (p->avg_size == 0 || (p->avg_size & (p->avg_size - 1)) != 0)
		return -EDOM;
	if (p->min_size < CHUNKER_MIN_LIMIT || p->min_size >= p->avg_size ||
	    p->avg_size >= p->max_size)
		return -ERANGE;
	return 0;
}

const char *chunker_params_strerror(int err)
{
	switch (err) {
	case 0:
		return "chunk sizes are valid";
	case -EINVAL:
		return "no chunk sizes given";
	case -E2BIG:
		return "a chunk size is over the 64 MiB limit";
	case -EDOM:
		return "the average chunk size is not a power of two";
	case -ERANGE:
		return "chunk sizes must satisfy 64 <= min < avg < max";
	case -ENOMEM:
		return "out of memory";
	default:
		return "unknown chunker error";
	}
}

static inline uint32_t rotl32(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

#define QR(a, b, c, d) do { \
	a += b; d ^= a; d = rotl32(d, 16); \
	c += d; b ^= c; b = rotl32(b, 12); \
	a += b; d ^= a; d = rotl32(d, 8);  \
	c += d; b ^= c; b = rotl32(b, 7);  \
} while (0)

/* One ChaCha20 block (RFC 8439 layout) as 16 little-endian words. */
static void chacha20_block(const uint32_t in[16], uint32_t out[16])
{
	uint32_t x[16];

	memcpy(x, in, sizeof(x));
	for (int r = 0; r < 10; r++) {
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 16; i++)
		out[i] = x[i] + in[i];
}

/*
 * Gear table = the first 2048 bytes of ChaCha20(key, nonce "cairn-gear\0\0")
 * read as little-endian u64: any key gives a well-mixed table, and the nonce
 * keeps this stream apart from any other ChaCha use of the same bytes.
 */
static void chunker_gear_expand(uint64_t gear[256], const uint8_t key[CHUNKER_KEY_BYTES])
{
	static const uint8_t nonce[12] = "cairn-gear";
	uint32_t in[16], out[16];

	in[0] = 0x61707865;     /* "expand 32-byte k" */
	in[1] = 0x3320646e;
	in[2] = 0x79622d32;
	in[3] = 0x6b206574;
	for (int i = 0; i < 8; i++)
		in[4 + i] = load_le32(key + 4 * i);
	for (int i = 0; i < 3; i++)
		in[13 + i] = load_le32(nonce + 4 * i);
	for (uint32_t blk = 0; blk < 32; blk++) {
		in[12] = blk;
		chacha20_block(in, out);
		for (int j = 0; j < 8; j++)
			gear[blk * 8 + j] = (uint64_t)out[2 * j] |
					    (uint64_t)out[2 * j + 1] << 32;
	}
}

static unsigned log2_u32(uint32_t v)
{
	unsigned b = 0;

	while (v >>= 1)
		b++;
	return b;
}

int chunker_new(const uint8_t key[CHUNKER_KEY_BYTES],
		const struct chunker_params *p, struct chunker **out)
{
	struct chunker *c;
	unsigned bits;
	int err;

	err = chunker_params_check(p);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	chunker_gear_expand(c->gear, key);
	/* avg >= 128 after the check, so bits - LOOSE >= 4 */
	bits = log2_u32(p->avg_size);
	c->mask_strict = ~0ULL << (64 - (bits + CHUNKER_STRICT_BITS));
	c->mask_loose = ~0ULL << (64 - (bits - CHUNKER_LOOSE_BITS));
	c->min_size = p->min_size;
	c->avg_size = p->avg_size;
	c->max_size = p->max_size;
	*out = c;
	return 0;
}

void chunker_free(struct chunker *c)
{
	free(c);
}

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/*
 * Scan p[0..len), where p[0] sits at chunk offset `pos` and *hp is the hash
 * so far. Returns the bytes consumed; sets *cut when a chunk ends at the last
 * consumed byte. The one place that implements the cut rule.
 */
static size_t chunker_scan(const struct chunker *c, const uint8_t *p,
			   size_t len, uint64_t pos, uint64_t *hp, bool *cut)
{
	const uint64_t *gear = c->gear;
	uint64_t h = *hp, m, base;
	size_t i = 0, end;

	*cut = false;
	if (pos < c->min_size) {
		if (c->min_size - pos >= len)
			return len;
		i = c->min_size - pos;
		pos = c->min_size;
	}
	base = pos - i;         /* chunk offset of p[0] */
	if (base + i < c->avg_size) {
		end = min_sz(len, (size_t)(c->avg_size - base));
		m = c->mask_strict;
		for (; i < end; i++) {
			h = (h << 1) + gear[p[i]];
			if (!(h & m)) {
				*cut = true;
				*hp = 0;
				return i + 1;
			}
		}
	}
	end = min_sz(len, (size_t)(c->max_size - base));
	m = c->mask_loose;
	for (; i < end; i++) {
		h = (h << 1) + gear[p[i]];
		if (!(h & m)) {
			*cut = true;
			*hp = 0;
			return i + 1;
		}
	}
	if (base + i == c->max_size) {
		*cut = true;
		*hp = 0;
		return i;
	}
	*hp = h;
	return i;
}

size_t chunker_find(const struct chunker *c, const uint8_t *buf, size_t len,
		    bool eof)
{
	uint64_t h = 0;
	bool cut;
	size_t n;

	if (len == 0)
		return 0;
	n = chunker_scan(c, buf, len, 0, &h, &cut);
	if (cut)
		return n;
	return eof ? len : 0;
}

size_t chunker_update(struct chunker *c, const uint8_t *data, size_t len,
		      bool *cut)
{
	size_t n;

	if (len == 0) {
		*cut = false;
		return 0;
	}
	n = chunker_scan(c, data, len, c->pending, &c->hash, cut);
	c->pending = *cut ? 0 : c->pending + n;
	return n;
}

uint64_t chunker_pending(const struct chunker *c)
{
	return c->pending;
}

void chunker_reset(struct chunker *c)
{
	c->pending = 0;
	c->hash = 0;
}
