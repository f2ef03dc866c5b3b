/*
 * fuzz_open: arbitrary bytes as a stored block. seal_open must return an
 * error or a plaintext no longer than its buffer, never crash; and nothing
 * a fuzzer makes up without the key may open.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "crypto/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct keys *k;
	static struct seal_ctx *s;
	static uint8_t out[1 << 16];
	static const uint8_t master[32] = "fuzz_open master key, not secret";
	struct keys_volume v = { .name = "fuzz" };
	struct seal_info info;
	uint8_t addr[32] = { 0 };
	ssize_t n;

	if (!k && (keys_from_master(master, &v, &k) || seal_ctx_new(1, &s)))
		abort();
	(void)seal_peek(data, size, &info);
	n = seal_open(s, k, addr, data, size, out, sizeof(out));
	if (n > (ssize_t)sizeof(out))
		abort();
	/* The same bytes under an address taken from the input. */
	if (size >= 32)
		memcpy(addr, data + size - 32, 32);
	n = seal_open(s, k, addr, data, size, out, sizeof(out));
	if (n >= 0 && size > 0)
		abort();    /* forged a block without the key */
	return 0;
}
