/*
 * fuzz_manifest: man_decode on arbitrary bytes must return 0 or an error,
 * never crash, leak or read out of bounds. A manifest that decodes must
 * keep what the format promises (a known level, at most MAN_MAX_ENTRIES
 * entries, none empty, level-0 entries no longer than a chunk, lengths that
 * add up to the size) and encode back to the very same bytes: the format
 * has one encoding per manifest, so get can never read a manifest two ways.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/manifest.h"
#include "crypto/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct man_entry *e = NULL;
	unsigned level = 0;
	uint64_t total = 0, sum = 0;
	size_t n = 0;
	uint8_t *again;

	if (man_decode(data, size, &level, &total, &e, &n) < 0)
		return 0;
	if (level > MAN_MAX_LEVEL || n > MAN_MAX_ENTRIES)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!e[i].len || (level == 0 && e[i].len > SEAL_MAX_CHUNK))
			abort();
		sum += e[i].len;
	}
	if (sum != total)
		abort();
	again = malloc(MAN_HEADER_BYTES + n * MAN_ENTRY_BYTES);
	if (!again)
		abort();
	if (man_encode(level, total, e, n, again) != size ||
	    memcmp(again, data, size))
		abort();
	free(again);
	free(e);
	return 0;
}
