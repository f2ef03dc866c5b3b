/*
 * aead: XChaCha20-Poly1305 (IETF), byte for byte what libsodium's
 * crypto_aead_xchacha20poly1305_ietf_* compute, but fast.
 *
 * Why not libsodium's own: on the 2-core machines we measure on it runs at
 * ~1.5 GB/s, and opening blocks was a quarter of the client's CPU in a
 * sequential read. OpenSSL's ChaCha20-Poly1305 (AVX-512/AVX2 code) runs at
 * ~3.8 GB/s on the same core. XChaCha20-Poly1305 is HChaCha20 to a subkey
 * from the first 16 nonce bytes, then ChaCha20-Poly1305-IETF under that
 * subkey with nonce 0^4 || the last 8 nonce bytes; we do the first step
 * with libsodium's crypto_core_hchacha20 and the second with OpenSSL. If
 * OpenSSL's cipher cannot be had (a FIPS-only provider set), libsodium
 * does the whole job: the bytes are the same either way.
 *
 * Layout as libsodium's combined mode: ciphertext (mlen bytes) then the
 * 16-byte tag. One aead_ctx per thread.
 */
#ifndef CAIRN_AEAD_H
#define CAIRN_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define AEAD_KEY_BYTES 32
#define AEAD_NONCE_BYTES 24
#define AEAD_TAG_BYTES 16
/* EVP takes int lengths; blocks are far smaller. */
#define AEAD_MAX_MSG ((size_t)1 << 30)

struct aead_ctx;

/* NULL when out of memory. */
struct aead_ctx *aead_new(void);
void aead_free(struct aead_ctx *a);

/* c gets mlen + AEAD_TAG_BYTES bytes (c may equal m). 0, or -EINVAL when
 * a length is over AEAD_MAX_MSG, -EIO when the library fails. */
int aead_encrypt(struct aead_ctx *a, uint8_t *c, const uint8_t *m, size_t mlen,
		 const uint8_t *ad, size_t adlen,
		 const uint8_t nonce[AEAD_NONCE_BYTES],
		 const uint8_t key[AEAD_KEY_BYTES])
	__attribute__((warn_unused_result));

/* clen includes the tag; m gets clen - AEAD_TAG_BYTES bytes (m may equal
 * c). 0, or -EBADMSG when the tag does not verify (m is then zeroed),
 * -EINVAL for a length out of range, -EIO when the library fails. */
int aead_decrypt(struct aead_ctx *a, uint8_t *m, const uint8_t *c, size_t clen,
		 const uint8_t *ad, size_t adlen,
		 const uint8_t nonce[AEAD_NONCE_BYTES],
		 const uint8_t key[AEAD_KEY_BYTES])
	__attribute__((warn_unused_result));

/* Whether OpenSSL does the bulk work (for tests and benchmarks). */
int aead_uses_openssl(const struct aead_ctx *a);

#endif
