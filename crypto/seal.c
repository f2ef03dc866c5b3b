/*
 * seal: chunk -> stored block (zstd when it helps, then XChaCha20-Poly1305
 * with a random nonce and ad = header || addr) and back. Layout in seal.h.
 *
 * The compressor writes into a scratch buffer kept in the seal_ctx and the
 * AEAD encrypts from there straight into the caller's output, so sealing a
 * chunk costs one compression pass and one encryption pass, no more
 * copies; an incompressible chunk is encrypted from the caller's buffer.
 * The AEAD itself is crypto/aead.c (the same bytes as libsodium's, faster).
 * Never logs.
 */
#include "crypto/seal.h"

#include "crypto/aead.h"
#include "crypto/blake2b.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zstd.h>

_Static_assert(SEAL_HEADER_BYTES == 16 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "header = 16 fixed bytes + 24-byte nonce");
_Static_assert(SEAL_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "Poly1305 tag");

struct seal_ctx {
	int level;               /* < 0: never compress */
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	struct aead_ctx *aead;
	uint8_t *scratch;
	size_t scratch_cap;
	const struct keys *check_for;  /* whose key check is cached below */
	uint8_t check[4];
};

size_t seal_bound(size_t chunk_len)
{
	/* Stored raw when zstd does not shrink it: never more than this. */
	return SEAL_OVERHEAD_BYTES + chunk_len;
}

void seal_addr(const struct keys *k, const void *chunk, size_t len,
	       uint8_t addr[SEAL_ADDR_BYTES])
{
	blake2b_keyed(addr, SEAL_ADDR_BYTES, chunk, len,
		      keys_subkey(k, KEYS_BLOCK_ID), KEYS_SUBKEY_BYTES);
}

int seal_ctx_new(int level, struct seal_ctx **out)
{
	struct seal_ctx *s;

	if (sodium_init() < 0)
		return -EIO;
	if (level > ZSTD_maxCLevel())
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->level = level == 0 ? SEAL_LEVEL_DEFAULT : level;
	s->cctx = ZSTD_createCCtx();
	s->dctx = ZSTD_createDCtx();
	s->aead = aead_new();
	if (!s->cctx || !s->dctx || !s->aead) {
		seal_ctx_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void seal_ctx_free(struct seal_ctx *s)
{
	if (!s)
		return;
	ZSTD_freeCCtx(s->cctx);
	ZSTD_freeDCtx(s->dctx);
	aead_free(s->aead);
	free(s->scratch);
	free(s);
}

static int seal_scratch(struct seal_ctx *s, size_t need)
{
	uint8_t *p;

	if (s->scratch_cap >= need)
		return 0;
	p = realloc(s->scratch, need);
	if (!p)
		return -ENOMEM;
	s->scratch = p;
	s->scratch_cap = need;
	return 0;
}

/* The 4-byte check that tells "another volume's key" from corruption;
 * cached per context, since a context almost always serves one volume. */
static void seal_key_check(struct seal_ctx *s, const struct keys *k,
			   uint8_t out[4])
{
	static const char label[] = "cairnfs-keycheck";
	uint8_t h[16];

	if (s->check_for != k) {
		crypto_generichash(h, sizeof(h), (const uint8_t *)label,
				   sizeof(label) - 1, keys_subkey(k, KEYS_ENCRYPT),
				   KEYS_SUBKEY_BYTES);
		memcpy(s->check, h, 4);
		s->check_for = k;
	}
	memcpy(out, s->check, 4);
}

/*
 * Incompressible data (media, archives, encrypted files) is much of what a
 * big volume holds, and zstd spends about as long failing on it as it
 * spends succeeding: profiles of a write of random data showed zstd as the
 * client's largest cost. So a large chunk is first judged by a 16 KiB
 * sample from four places (an early abort, as btrfs and ZFS do), and one
 * the sample cannot shrink by an eighth is stored raw (ZFS's rule too:
 * saving less is not worth zstd's time on every read and write; fio's
 * default data, for one, shrinks by 4%). The cost: a chunk compressible
 * only away from the samples is stored raw too.
 */
#define SEAL_SAMPLE_FROM (64u * 1024)
#define SEAL_SAMPLE_PARTS 4u
#define SEAL_SAMPLE_PART 4096u

static bool seal_worth_compressing(struct seal_ctx *s, const uint8_t *chunk,
				   size_t len)
{
	uint8_t sample[SEAL_SAMPLE_PARTS * SEAL_SAMPLE_PART];
	size_t z;

	if (len < SEAL_SAMPLE_FROM)
		return true;
	for (unsigned i = 0; i < SEAL_SAMPLE_PARTS; i++)
		memcpy(sample + i * SEAL_SAMPLE_PART,
		       chunk + i * (len / SEAL_SAMPLE_PARTS), SEAL_SAMPLE_PART);
	/* s->scratch holds ZSTD_compressBound(len), more than this needs */
	z = ZSTD_compressCCtx(s->cctx, s->scratch, s->scratch_cap, sample,
			      sizeof(sample), s->level);
	return !ZSTD_isError(z) && z <= sizeof(sample) - sizeof(sample) / 8;
}

/* ad = header || addr, built in one small buffer. */
static void seal_ad(const uint8_t *header, const uint8_t addr[SEAL_ADDR_BYTES],
		    uint8_t ad[SEAL_HEADER_BYTES + SEAL_ADDR_BYTES])
{
	memcpy(ad, header, SEAL_HEADER_BYTES);
	memcpy(ad + SEAL_HEADER_BYTES, addr, SEAL_ADDR_BYTES);
}

ssize_t seal_block(struct seal_ctx *s, const struct keys *k,
		   const uint8_t addr[SEAL_ADDR_BYTES], const void *chunk,
		   size_t len, void *out, size_t cap)
{
	uint8_t *o = out, ad[SEAL_HEADER_BYTES + SEAL_ADDR_BYTES];
	const uint8_t *payload = chunk;
	size_t payload_len = len;
	unsigned comp = SEAL_COMP_NONE;
	int rc;

	if (len > SEAL_MAX_CHUNK)
		return -E2BIG;
	if (cap < seal_bound(len))
		return -ENOBUFS;
	if (s->level > 0 && len >= 64) {
		size_t bound = ZSTD_compressBound(len), z;

		if (seal_scratch(s, bound) < 0)
			return -ENOMEM;
		z = seal_worth_compressing(s, chunk, len)
			? ZSTD_compressCCtx(s->cctx, s->scratch, bound, chunk, len, s->level)
			: len;
		if (!ZSTD_isError(z) && z < len) {
			payload = s->scratch;
			payload_len = z;
			comp = SEAL_COMP_ZSTD;
		}
	}
	memcpy(o, SEAL_MAGIC, 4);
	o[4] = SEAL_VERSION;
	o[5] = (uint8_t)comp;
	o[6] = o[7] = 0;
	for (int i = 0; i < 4; i++)
		o[8 + i] = (uint8_t)(len >> (8 * i));
	seal_key_check(s, k, o + 12);
	randombytes_buf(o + 16, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	seal_ad(o, addr, ad);
	rc = aead_encrypt(s->aead, o + SEAL_HEADER_BYTES, payload, payload_len,
			  ad, sizeof(ad), o + 16, keys_subkey(k, KEYS_ENCRYPT));
	if (rc < 0)
		return rc;
	return (ssize_t)(SEAL_HEADER_BYTES + payload_len + SEAL_TAG_BYTES);
}

int seal_peek(const void *blk, size_t len, struct seal_info *info)
{
	const uint8_t *b = blk;

	if (len < SEAL_OVERHEAD_BYTES || memcmp(b, SEAL_MAGIC, 4))
		return -EPROTO;
	if (b[4] != SEAL_VERSION)
		return -ENOTSUP;
	if (b[5] & ~7u)
		return -EPROTO;
	if ((b[5] & 7u) > SEAL_COMP_ZSTD)
		return -ENOTSUP;
	if (b[6] || b[7])
		return -EPROTO;
	info->version = b[4];
	info->compression = b[5] & 7u;
	info->plain_len = (uint32_t)b[8] | (uint32_t)b[9] << 8 |
			  (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
	if (info->plain_len > SEAL_MAX_CHUNK)
		return -EPROTO;
	/* Raw payloads are exactly as long as the plaintext. */
	if (info->compression == SEAL_COMP_NONE &&
	    len != SEAL_OVERHEAD_BYTES + info->plain_len)
		return -EPROTO;
	if (info->compression == SEAL_COMP_ZSTD &&
	    len - SEAL_OVERHEAD_BYTES >= info->plain_len)
		return -EPROTO;     /* we never store zstd that did not shrink */
	return 0;
}

ssize_t seal_open(struct seal_ctx *s, const struct keys *k,
		  const uint8_t addr[SEAL_ADDR_BYTES], const void *blk,
		  size_t len, void *out, size_t cap)
{
	const uint8_t *b = blk;
	uint8_t ad[SEAL_HEADER_BYTES + SEAL_ADDR_BYTES], check[4];
	size_t plen;
	struct seal_info info;
	uint8_t *dst;
	int rc;

	rc = seal_peek(blk, len, &info);
	if (rc < 0)
		goto fail;
	seal_key_check(s, k, check);
	if (memcmp(check, b + 12, 4)) {
		rc = -EKEYREJECTED;
		goto fail;
	}
	if (cap < info.plain_len) {
		rc = -ENOBUFS;
		goto fail;
	}
	if (info.compression == SEAL_COMP_NONE) {
		dst = out;
	} else {
		if (seal_scratch(s, len - SEAL_OVERHEAD_BYTES) < 0) {
			rc = -ENOMEM;
			goto fail;
		}
		dst = s->scratch;
	}
	seal_ad(b, addr, ad);
	rc = aead_decrypt(s->aead, dst, b + SEAL_HEADER_BYTES,
			  len - SEAL_HEADER_BYTES, ad, sizeof(ad), b + 16,
			  keys_subkey(k, KEYS_ENCRYPT));
	if (rc < 0)
		goto fail;
	plen = len - SEAL_OVERHEAD_BYTES;
	if (info.compression == SEAL_COMP_ZSTD) {
		size_t z = ZSTD_decompressDCtx(s->dctx, out, cap, dst, (size_t)plen);

		/* Authentic but inconsistent: written by a broken sealer. */
		if (ZSTD_isError(z) || z != info.plain_len) {
			rc = -EPROTO;
			goto fail;
		}
	}
	return (ssize_t)info.plain_len;
fail:
	if (out && cap)
		sodium_memzero(out, cap);
	return rc;
}
