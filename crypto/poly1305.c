/*
 * poly1305: one-time Poly1305 tags through OpenSSL (see poly1305.h).
 */
#include "crypto/poly1305.h"

#include <stdbool.h>
#include <stddef.h>

#include <sodium.h>

#include "crypto/evpmac.h"

_Static_assert(POLY1305_TAG_BYTES == crypto_onetimeauth_BYTES, "tag");
_Static_assert(POLY1305_KEY_BYTES == crypto_onetimeauth_KEYBYTES, "key");

static struct evpmac mac = EVPMAC_INIT("POLY1305");

static void setup(void)
{
	evpmac_setup(&mac);
}

void poly1305_iov(uint8_t tag[POLY1305_TAG_BYTES], const struct iovec *iov,
		  int iovcnt, const uint8_t key[POLY1305_KEY_BYTES])
{
	EVP_MAC_CTX *ctx = evpmac_thread_ctx(&mac, setup);
	crypto_onetimeauth_state st;
	size_t out = 0;
	bool ok;

	if (ctx) {
		ok = EVP_MAC_init(ctx, key, POLY1305_KEY_BYTES, NULL) == 1;
		for (int i = 0; ok && i < iovcnt; i++)
			ok = !iov[i].iov_len ||
			     EVP_MAC_update(ctx, iov[i].iov_base, iov[i].iov_len) == 1;
		if (ok && EVP_MAC_final(ctx, tag, &out, POLY1305_TAG_BYTES) == 1 &&
		    out == POLY1305_TAG_BYTES)
			return;
		/* A library failure: the tag still has to be right. */
	}
	crypto_onetimeauth_init(&st, key);
	for (int i = 0; i < iovcnt; i++)
		crypto_onetimeauth_update(&st, iov[i].iov_base, iov[i].iov_len);
	crypto_onetimeauth_final(&st, tag);
	sodium_memzero(&st, sizeof(st));
}
