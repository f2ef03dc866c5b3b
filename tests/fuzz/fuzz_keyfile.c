/*
 * fuzz_keyfile: arbitrary text as a key file; the parser answers with a key
 * or an error code and a sentence, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keys *k = NULL;
	char err[256] = "";
	int rc;

	keys_set_pwhash_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
	rc = keys_parse((const char *)data, size, "pass", 4, &k, err, sizeof(err));
	if (rc == 0) {
		if (!k || strlen(keys_volume(k)->name) == 0)
			abort();
		keys_free(k);
	} else if (!memchr(err, '\0', sizeof(err))) {
		abort();
	}
	return 0;
}
