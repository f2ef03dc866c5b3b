/*
 * evpmac: per-thread OpenSSL MAC contexts (see evpmac.h).
 */
#include "crypto/evpmac.h"

static void ctx_destroy(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

void evpmac_setup(struct evpmac *m)
{
	m->mac = EVP_MAC_fetch(NULL, m->name, NULL);
	m->have_key = pthread_key_create(&m->ctx_key, ctx_destroy) == 0;
}

EVP_MAC_CTX *evpmac_thread_ctx(struct evpmac *m, void (*setup)(void))
{
	EVP_MAC_CTX *ctx;

	pthread_once(&m->once, setup);
	if (!m->mac || !m->have_key)
		return NULL;
	ctx = pthread_getspecific(m->ctx_key);
	if (!ctx) {
		ctx = EVP_MAC_CTX_new(m->mac);
		if (ctx && pthread_setspecific(m->ctx_key, ctx) != 0) {
			EVP_MAC_CTX_free(ctx);
			ctx = NULL;
		}
	}
	return ctx;
}
