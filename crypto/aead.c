/*
 * aead: XChaCha20-Poly1305 through OpenSSL's ChaCha20-Poly1305 (see
 * aead.h for why and how). Never logs.
 */
#include "crypto/aead.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

_Static_assert(AEAD_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(AEAD_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(AEAD_MAX_MSG <= INT_MAX, "EVP lengths are int");

struct aead_ctx {
	EVP_CIPHER *cipher;          /* NULL: libsodium does it all */
	EVP_CIPHER_CTX *enc, *dec;   /* initialised with cipher once */
	bool enc_ready, dec_ready;
};

struct aead_ctx *aead_new(void)
{
	struct aead_ctx *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	/* Fetched once: passing EVP_chacha20_poly1305() to every init would
	 * look the implementation up again on each call. */
	a->cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (a->cipher) {
		a->enc = EVP_CIPHER_CTX_new();
		a->dec = EVP_CIPHER_CTX_new();
		if (!a->enc || !a->dec) {
			aead_free(a);
			return NULL;
		}
	}
	return a;
}

void aead_free(struct aead_ctx *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	EVP_CIPHER_free(a->cipher);
	free(a);
}

int aead_uses_openssl(const struct aead_ctx *a)
{
	return a->cipher != NULL;
}

/* XChaCha20 -> ChaCha20-IETF: the subkey and the 12-byte nonce. */
static void derive(uint8_t subkey[32], uint8_t iv[12],
		   const uint8_t nonce[AEAD_NONCE_BYTES],
		   const uint8_t key[AEAD_KEY_BYTES])
{
	crypto_core_hchacha20(subkey, nonce, key, NULL);
	memset(iv, 0, 4);
	memcpy(iv + 4, nonce + 16, 8);
}

/* Key and IV into a context, the cipher only the first time. */
static bool ctx_init(struct aead_ctx *a, EVP_CIPHER_CTX *ctx, bool *ready,
		     bool enc, const uint8_t subkey[32], const uint8_t iv[12])
{
	const EVP_CIPHER *c = *ready ? NULL : a->cipher;
	int ok = enc ? EVP_EncryptInit_ex(ctx, c, NULL, subkey, iv)
		     : EVP_DecryptInit_ex(ctx, c, NULL, subkey, iv);

	if (ok == 1)
		*ready = true;
	return ok == 1;
}

int aead_encrypt(struct aead_ctx *a, uint8_t *c, const uint8_t *m, size_t mlen,
		 const uint8_t *ad, size_t adlen,
		 const uint8_t nonce[AEAD_NONCE_BYTES],
		 const uint8_t key[AEAD_KEY_BYTES])
{
	uint8_t subkey[32], iv[12];
	int n, fin, rc = -EIO;

	if (mlen > AEAD_MAX_MSG || adlen > AEAD_MAX_MSG)
		return -EINVAL;
	if (!a->cipher) {
		crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, mlen, ad,
							   adlen, NULL, nonce, key);
		return 0;
	}
	derive(subkey, iv, nonce, key);
	if (ctx_init(a, a->enc, &a->enc_ready, true, subkey, iv) &&
	    (!adlen || EVP_EncryptUpdate(a->enc, NULL, &n, ad, (int)adlen) == 1) &&
	    (!mlen || EVP_EncryptUpdate(a->enc, c, &n, m, (int)mlen) == 1) &&
	    EVP_EncryptFinal_ex(a->enc, c + mlen, &fin) == 1 &&
	    EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_BYTES,
				c + mlen) == 1)
		rc = 0;
	sodium_memzero(subkey, sizeof(subkey));
	return rc;
}

int aead_decrypt(struct aead_ctx *a, uint8_t *m, const uint8_t *c, size_t clen,
		 const uint8_t *ad, size_t adlen,
		 const uint8_t nonce[AEAD_NONCE_BYTES],
		 const uint8_t key[AEAD_KEY_BYTES])
{
	uint8_t subkey[32], iv[12], tag[AEAD_TAG_BYTES];
	size_t mlen;
	int n, fin, rc = -EIO;

	if (clen < AEAD_TAG_BYTES || clen - AEAD_TAG_BYTES > AEAD_MAX_MSG ||
	    adlen > AEAD_MAX_MSG)
		return -EINVAL;
	mlen = clen - AEAD_TAG_BYTES;
	if (!a->cipher) {
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen,
							       ad, adlen, nonce,
							       key) != 0) {
			sodium_memzero(m, mlen);
			return -EBADMSG;
		}
		return 0;
	}
	memcpy(tag, c + mlen, sizeof(tag));  /* m may overwrite c */
	derive(subkey, iv, nonce, key);
	if (ctx_init(a, a->dec, &a->dec_ready, false, subkey, iv) &&
	    EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_BYTES,
				tag) == 1 &&
	    (!adlen || EVP_DecryptUpdate(a->dec, NULL, &n, ad, (int)adlen) == 1) &&
	    (!mlen || EVP_DecryptUpdate(a->dec, m, &n, c, (int)mlen) == 1)) {
		/* Final checks the tag: failure there is a forgery, not a
		 * library fault. */
		rc = EVP_DecryptFinal_ex(a->dec, m + mlen, &fin) == 1 ? 0 : -EBADMSG;
	}
	sodium_memzero(subkey, sizeof(subkey));
	if (rc < 0)
		sodium_memzero(m, mlen);
	return rc;
}
