/*
 * handshake: the mutual, pre-shared-key handshake every connection starts
 * with, and the per-frame authentication after it.
 *
 * Three messages, in the spirit of Noise NNpsk0 (our own construction, with
 * libsodium primitives):
 *
 *   C -> S  hello:   e_c                                 (32 bytes)
 *   S -> C  reply:   e_s, auth_s = MAC(K, "cairn-s" || T) (32 + 32 bytes)
 *   C -> S  finish:  auth_c = MAC(K, "cairn-c" || T)      (32 bytes)
 *
 *   dh = X25519(e, E');  T = transcript = e_c || e_s || ctx
 *   K  = BLAKE2b-256(key = cluster secret, "cairn-hs-1" || dh || T)
 *   tx/rx keys = BLAKE2b-256(key = K, "c2s") and ("s2c")
 *
 * Neither side can compute K without the cluster secret, so a completed
 * handshake proves both sides know it; fresh ephemeral keys on both sides
 * make every session's keys new, so a replayed hello or finish gets nowhere.
 * `ctx` binds what the server announces beside its reply (node id, cluster
 * id) into the transcript.
 *
 * After it, every frame carries a 16-byte tag: Poly1305 with a one-time key
 * taken from ChaCha20(direction key, nonce = sequence number), over the
 * frame's header and payload. Sequence numbers count frames per direction
 * from 0 and are never sent: a forged, reordered, replayed or dropped frame
 * fails verification. Payloads are not encrypted here (blocks already are).
 *
 * Never logs. Thread-safety: a struct handshake and a struct hs_session
 * belong to one connection; the caller serialises tx (and rx) per direction.
 */
#ifndef CAIRN_HANDSHAKE_H
#define CAIRN_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define HS_SECRET_BYTES 32
#define HS_HELLO_BYTES 32
#define HS_REPLY_BYTES 64
#define HS_FINISH_BYTES 32
#define HS_TAG_BYTES 16
#define HS_CTX_MAX 256

struct hs_session {
	uint8_t tx_key[32];
	uint8_t rx_key[32];
	uint64_t tx_seq;
	uint64_t rx_seq;
};

struct handshake;

/* Client, step 1: make e_c and the hello message. */
int handshake_client_new(const uint8_t secret[HS_SECRET_BYTES],
			 uint8_t hello[HS_HELLO_BYTES], struct handshake **out)
	__attribute__((warn_unused_result));

/* Server, step 2: answer a hello. ctx (<= HS_CTX_MAX bytes) is bound into
 * the transcript; the client must pass the same ctx to finish. */
int handshake_server_new(const uint8_t secret[HS_SECRET_BYTES],
			 const uint8_t hello[HS_HELLO_BYTES], const void *ctx,
			 size_t ctx_len, uint8_t reply[HS_REPLY_BYTES],
			 struct handshake **out)
	__attribute__((warn_unused_result));

/* Client, step 3: check the server's proof, make finish, fill the session.
 * Returns 0, or -EKEYREJECTED when the server does not know the secret
 * (or ctx differs). */
int handshake_client_finish(struct handshake *h,
			    const uint8_t reply[HS_REPLY_BYTES], const void *ctx,
			    size_t ctx_len, uint8_t finish[HS_FINISH_BYTES],
			    struct hs_session *out)
	__attribute__((warn_unused_result));

/* Server, step 4: check the client's proof and fill the session. Returns 0
 * or -EKEYREJECTED. */
int handshake_server_finish(struct handshake *h,
			    const uint8_t finish[HS_FINISH_BYTES],
			    struct hs_session *out)
	__attribute__((warn_unused_result));

/* Wipe and free (NULL is fine). */
void handshake_free(struct handshake *h);

/* Tag the next outgoing frame and advance tx_seq. The frame is the
 * concatenation of iov[0..iovcnt) (header first, then the payload in as many
 * pieces as the caller has it, so a block need not be copied). */
void hs_tag_frame(struct hs_session *s, const struct iovec *iov, int iovcnt,
		  uint8_t tag[HS_TAG_BYTES]);

/* Verify the next incoming frame; advances rx_seq only on success.
 * Returns 0 or -EBADMSG. */
int hs_verify_frame(struct hs_session *s, const struct iovec *iov, int iovcnt,
		    const uint8_t tag[HS_TAG_BYTES])
	__attribute__((warn_unused_result));

#endif
