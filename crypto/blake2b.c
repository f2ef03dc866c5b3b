/*
 * blake2b: keyed BLAKE2b through OpenSSL (see blake2b.h).
 */
#include "crypto/blake2b.h"

#include <stdbool.h>

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <sodium.h>

#include "crypto/evpmac.h"

_Static_assert(BLAKE2B_OUT_MIN >= crypto_generichash_BYTES_MIN &&
	       BLAKE2B_OUT_MAX <= crypto_generichash_BYTES_MAX, "out range");
_Static_assert(BLAKE2B_KEY_MIN >= crypto_generichash_KEYBYTES_MIN &&
	       BLAKE2B_KEY_MAX <= crypto_generichash_KEYBYTES_MAX, "key range");

static struct evpmac mac = EVPMAC_INIT("BLAKE2BMAC");

static void setup(void)
{
	evpmac_setup(&mac);
}

void blake2b_keyed(uint8_t *out, size_t out_len, const void *in, size_t in_len,
		   const uint8_t *key, size_t key_len)
{
	EVP_MAC_CTX *ctx = evpmac_thread_ctx(&mac, setup);

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
