/*
 * blake2b: keyed BLAKE2b through OpenSSL (see blake2b.h).
 */
#include "crypto/blake2b.h"

#include <pthread.h>
#include <stdbool.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

_Static_assert(BLAKE2B_OUT_MIN >= crypto_generichash_BYTES_MIN &&
	       BLAKE2B_OUT_MAX <= crypto_generichash_BYTES_MAX, "out range");
_Static_assert(BLAKE2B_KEY_MIN >= crypto_generichash_KEYBYTES_MIN &&
	       BLAKE2B_KEY_MAX <= crypto_generichash_KEYBYTES_MAX, "key range");

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
	mac = EVP_MAC_fetch(NULL, "BLAKE2BMAC", NULL);
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

void blake2b_keyed(uint8_t *out, size_t out_len, const void *in, size_t in_len,
		   const uint8_t *key, size_t key_len)
{
	EVP_MAC_CTX *ctx = thread_ctx();

	if (ctx) {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &out_len),
			OSSL_PARAM_construct_end(),
		};
		size_t got = 0;

		if (EVP_MAC_init(ctx, key, key_len, params) == 1 &&
		    (!in_len || EVP_MAC_update(ctx, in, in_len) == 1) &&
		    EVP_MAC_final(ctx, out, &got, out_len) == 1 && got == out_len)
			return;
		/* A library failure: the hash still has to be right. */
	}
	crypto_generichash(out, out_len, in, in_len, key, key_len);
}
