/*
 * handshake: pre-shared-key mutual authentication with ephemeral X25519,
 * then per-frame Poly1305 tags keyed per sequence number. The construction
 * is described in handshake.h; this file only implements it.
 *
 * Not here: sockets, framing, timeouts (the server and pool own those).
 */
#include "crypto/handshake.h"

#include "crypto/poly1305.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

struct handshake {
	uint8_t secret[HS_SECRET_BYTES];
	uint8_t e_sk[crypto_scalarmult_SCALARBYTES];
	uint8_t e_c[32], e_s[32];
	uint8_t k[32];                 /* session root key (server side) */
	uint8_t ctx[HS_CTX_MAX];
	size_t ctx_len;
	int is_server;
};

_Static_assert(HS_REPLY_BYTES == 32 + 32, "reply is e_s + auth_s");
_Static_assert(crypto_onetimeauth_BYTES == HS_TAG_BYTES, "Poly1305 tag size");

static struct handshake *hs_alloc(const uint8_t secret[HS_SECRET_BYTES])
{
	struct handshake *h = sodium_malloc(sizeof(*h));

	if (!h)
		return NULL;
	memset(h, 0, sizeof(*h));
	memcpy(h->secret, secret, HS_SECRET_BYTES);
	return h;
}

void handshake_free(struct handshake *h)
{
	if (h)
		sodium_free(h);     /* wipes */
}

/* K = BLAKE2b-256(key = secret, "cairn-hs-1" || dh || e_c || e_s || ctx) */
static int hs_root_key(const struct handshake *h, const uint8_t dh[32],
		       const void *ctx, size_t ctx_len, uint8_t k[32])
{
	crypto_generichash_state st;
	static const char label[] = "cairn-hs-1";

	if (crypto_generichash_init(&st, h->secret, HS_SECRET_BYTES, 32) ||
	    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1) ||
	    crypto_generichash_update(&st, dh, 32) ||
	    crypto_generichash_update(&st, h->e_c, 32) ||
	    crypto_generichash_update(&st, h->e_s, 32) ||
	    crypto_generichash_update(&st, ctx, ctx_len) ||
	    crypto_generichash_final(&st, k, 32))
		return -EINVAL;
	return 0;
}

/* MAC(K, label || T): BLAKE2b keyed by K over the label and transcript. */
static void hs_auth(const uint8_t k[32], const char *label,
		    const struct handshake *h, const void *ctx, size_t ctx_len,
		    uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, k, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&st, h->e_c, 32);
	crypto_generichash_update(&st, h->e_s, 32);
	crypto_generichash_update(&st, ctx, ctx_len);
	crypto_generichash_final(&st, out, 32);
}

static void hs_session_keys(const uint8_t k[32], struct hs_session *s,
			    int is_server)
{
	uint8_t c2s[32], s2c[32];

	crypto_generichash(c2s, 32, (const uint8_t *)"c2s", 3, k, 32);
	crypto_generichash(s2c, 32, (const uint8_t *)"s2c", 3, k, 32);
	memcpy(s->tx_key, is_server ? s2c : c2s, 32);
	memcpy(s->rx_key, is_server ? c2s : s2c, 32);
	s->tx_seq = s->rx_seq = 0;
	sodium_memzero(c2s, sizeof(c2s));
	sodium_memzero(s2c, sizeof(s2c));
}

int handshake_client_new(const uint8_t secret[HS_SECRET_BYTES],
			 uint8_t hello[HS_HELLO_BYTES], struct handshake **out)
{
	struct handshake *h;

	if (sodium_init() < 0)
		return -EIO;
	h = hs_alloc(secret);
	if (!h)
		return -ENOMEM;
	randombytes_buf(h->e_sk, sizeof(h->e_sk));
	crypto_scalarmult_base(h->e_c, h->e_sk);
	memcpy(hello, h->e_c, 32);
	*out = h;
	return 0;
}

int handshake_server_new(const uint8_t secret[HS_SECRET_BYTES],
			 const uint8_t hello[HS_HELLO_BYTES], const void *ctx,
			 size_t ctx_len, uint8_t reply[HS_REPLY_BYTES],
			 struct handshake **out)
{
	struct handshake *h;
	uint8_t dh[32];

	if (ctx_len > HS_CTX_MAX)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	h = hs_alloc(secret);
	if (!h)
		return -ENOMEM;
	h->is_server = 1;
	memcpy(h->e_c, hello, 32);
	randombytes_buf(h->e_sk, sizeof(h->e_sk));
	crypto_scalarmult_base(h->e_s, h->e_sk);
	/* A low-order e_c gives an all-zero result: refuse it. */
	if (crypto_scalarmult(dh, h->e_sk, h->e_c) != 0) {
		handshake_free(h);
		return -EKEYREJECTED;
	}
	memcpy(h->ctx, ctx, ctx_len);
	h->ctx_len = ctx_len;
	if (hs_root_key(h, dh, ctx, ctx_len, h->k) < 0) {
		handshake_free(h);
		return -EINVAL;
	}
	sodium_memzero(dh, sizeof(dh));
	memcpy(reply, h->e_s, 32);
	hs_auth(h->k, "cairn-s", h, ctx, ctx_len, reply + 32);
	*out = h;
	return 0;
}

int handshake_client_finish(struct handshake *h,
			    const uint8_t reply[HS_REPLY_BYTES], const void *ctx,
			    size_t ctx_len, uint8_t finish[HS_FINISH_BYTES],
			    struct hs_session *out)
{
	uint8_t dh[32], k[32], want[32];
	int rc = -EKEYREJECTED;

	if (h->is_server || ctx_len > HS_CTX_MAX)
		return -EINVAL;
	memcpy(h->e_s, reply, 32);
	if (crypto_scalarmult(dh, h->e_sk, h->e_s) != 0)
		goto out;
	if (hs_root_key(h, dh, ctx, ctx_len, k) < 0)
		goto out;
	hs_auth(k, "cairn-s", h, ctx, ctx_len, want);
	if (sodium_memcmp(want, reply + 32, 32) != 0)
		goto out;
	hs_auth(k, "cairn-c", h, ctx, ctx_len, finish);
	hs_session_keys(k, out, 0);
	rc = 0;
out:
	sodium_memzero(dh, sizeof(dh));
	sodium_memzero(k, sizeof(k));
	return rc;
}

int handshake_server_finish(struct handshake *h,
			    const uint8_t finish[HS_FINISH_BYTES],
			    struct hs_session *out)
{
	uint8_t want[32];

	if (!h->is_server)
		return -EINVAL;
	hs_auth(h->k, "cairn-c", h, h->ctx, h->ctx_len, want);
	if (sodium_memcmp(want, finish, 32) != 0)
		return -EKEYREJECTED;
	hs_session_keys(h->k, out, 1);
	return 0;
}

/* The one-time Poly1305 key of frame `seq`: ChaCha20(key, nonce = seq). */
static void hs_frame_tag(const uint8_t key[32], uint64_t seq,
			 const struct iovec *iov, int iovcnt,
			 uint8_t tag[HS_TAG_BYTES])
{
	uint8_t otk[crypto_onetimeauth_KEYBYTES];
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = { 0 };

	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(seq >> (8 * i));
	crypto_stream_chacha20(otk, sizeof(otk), nonce, key);
	poly1305_iov(tag, iov, iovcnt, otk);
	sodium_memzero(otk, sizeof(otk));
}

void hs_tag_frame(struct hs_session *s, const struct iovec *iov, int iovcnt,
		  uint8_t tag[HS_TAG_BYTES])
{
	hs_frame_tag(s->tx_key, s->tx_seq++, iov, iovcnt, tag);
}

int hs_verify_frame(struct hs_session *s, const struct iovec *iov, int iovcnt,
		    const uint8_t tag[HS_TAG_BYTES])
{
	uint8_t want[HS_TAG_BYTES];

	hs_frame_tag(s->rx_key, s->rx_seq, iov, iovcnt, want);
	if (crypto_verify_16(want, tag) != 0)
		return -EBADMSG;
	s->rx_seq++;
	return 0;
}
