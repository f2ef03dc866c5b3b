/*
 * evpmac: one OpenSSL MAC context per thread for a MAC fetched once by
 * name (poly1305.c and blake2b.c take their bulk work to OpenSSL this way).
 *
 *	static struct evpmac mac = EVPMAC_INIT("POLY1305");
 *	static void setup(void) { evpmac_setup(&mac); }
 *	...
 *	EVP_MAC_CTX *ctx = evpmac_thread_ctx(&mac, setup);   // NULL: fall back
 *
 * pthread_once takes no argument, hence the caller's one-line setup.
 */
#ifndef CAIRN_EVPMAC_H
#define CAIRN_EVPMAC_H

#include <pthread.h>
#include <stdbool.h>

#include <openssl/evp.h>

struct evpmac {
	const char *name;
	pthread_once_t once;
	pthread_key_t ctx_key;
	EVP_MAC *mac;             /* NULL: OpenSSL does not have it */
	bool have_key;
};

#define EVPMAC_INIT(name) { (name), PTHREAD_ONCE_INIT, 0, NULL, false }

/* Fetch the MAC and make the per-thread key; for the caller's once setup. */
void evpmac_setup(struct evpmac *m);
/* This thread's context, made on first use; NULL when OpenSSL lacks the
 * MAC or a context cannot be had (the caller falls back to libsodium). */
EVP_MAC_CTX *evpmac_thread_ctx(struct evpmac *m, void (*setup)(void));

#endif
