/*
 * fuzz_handshake: both sides of the handshake fed arbitrary messages by a
 * peer that does not know the secret. Nothing may crash, and neither side
 * may ever accept.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[HS_SECRET_BYTES] = "fuzzing cluster secret 32 bytes";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hello[HS_HELLO_BYTES] = { 0 }, reply[HS_REPLY_BYTES] = { 0 };
	uint8_t finish[HS_FINISH_BYTES] = { 0 }, ctx[HS_CTX_MAX + 8] = { 0 };
	size_t ctx_len = size > 96 ? (size - 96) % sizeof(ctx) : 0;
	struct handshake *h = NULL;
	struct hs_session s;

	memcpy(hello, data, size < 32 ? size : 32);
	if (size > 32)
		memcpy(finish, data + 32, size - 32 < 32 ? size - 32 : 32);
	if (size > 96)
		memcpy(ctx, data + 96, ctx_len);

	/* server side: attacker's hello and finish */
	if (handshake_server_new(secret, hello, ctx, ctx_len, reply, &h) == 0) {
		if (ctx_len > HS_CTX_MAX)
			abort();
		if (handshake_server_finish(h, finish, &s) == 0)
			abort();
		handshake_free(h);
	}
	/* client side: attacker's reply */
	if (handshake_client_new(secret, hello, &h) != 0)
		return 0;
	memcpy(reply, data, size < sizeof(reply) ? size : sizeof(reply));
	if (handshake_client_finish(h, reply, ctx, ctx_len > HS_CTX_MAX ? 0 : ctx_len,
				    finish, &s) == 0)
		abort();
	handshake_free(h);
	return 0;
}
