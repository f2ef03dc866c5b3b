/*
 * poly1305: one-time Poly1305 tags through OpenSSL (see poly1305.h).
 */
#include "crypto/poly1305.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <sodium.h>

_Static_assert(POLY1305_TAG_BYTES == crypto_onetimeauth_BYTES, "tag");
_Static_assert(POLY1305_KEY_BYTES == crypto_onetimeauth_KEYBYTES, "key");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static EVP_MAC *mac;             /* NULL: libsodium */
static bool have_key;

static void ctx_destroy(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void setup(void)
{
	mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
	have_key = pthread_key_create(&ctx_key, ctx_destroy) == 0;
}

/* This thread's context, made on first use; NULL: use libsodium. */
static EVP_MAC_CTX *thread_ctx(void)
{
	EVP_MAC_CTX *ctx;

	pthread_once(&once, setup);
	if (!mac || !have_key)
		return NULL;
	ctx = pthread_getspecific(ctx_key);
	if (!ctx) {
		ctx = EVP_MAC_CTX_new(mac);
		if (ctx && pthread_setspecific(ctx_key, ctx) != 0) {
			EVP_MAC_CTX_free(ctx);
			ctx = NULL;
		}
	}
	return ctx;
}

void poly1305_iov(uint8_t tag[POLY1305_TAG_BYTES], const struct iovec *iov,
		  int iovcnt, const uint8_t key[POLY1305_KEY_BYTES])
{
	EVP_MAC_CTX *ctx = thread_ctx();
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
