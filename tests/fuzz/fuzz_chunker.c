/*
 * fuzz_chunker: arbitrary bytes pick small valid sizes, a key and split
 * points; the rest is the stream. Streaming cut points must equal one-shot
 * ones and every chunk but the last must lie in [min, max] (abort otherwise).
 * Header: 8 bytes (min, avg, max, key byte, split seed); shorter input is
 * padded with zeros so every input runs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunker/chunker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR] = { 0 }, key[CHUNKER_KEY_BYTES];
	struct chunker_params p;
	struct chunker *c;
	const uint8_t *b;
	size_t len, off = 0, prev = 0;
	uint32_t r;

	memcpy(h, data, size < HDR ? size : HDR);
	b = size > HDR ? data + HDR : data;
	len = size > HDR ? size - HDR : 0;
	p.avg_size = 128u << (h[1] % 4);                        /* 128..1024 */
	p.min_size = CHUNKER_MIN_LIMIT + h[0] % (p.avg_size - CHUNKER_MIN_LIMIT);
	p.max_size = p.avg_size + 1 + (h[2] | (uint32_t)h[3] << 8) % (4 * p.avg_size);
	memset(key, h[4], sizeof(key));
	key[1] ^= h[3];
	r = h[5] | (uint32_t)h[6] << 8 | (uint32_t)h[7] << 16;
	if (chunker_new(key, &p, &c) != 0)
		abort();

	/* one-shot and streaming walk side by side */
	while (off < len) {
		size_t want = chunker_find(c, b + off, len - off, true);
		size_t got = 0, noeof;
		bool cut = false;

		if (want < 1 || want > len - off || want > p.max_size)
			abort();
		if (off + want < len && want < p.min_size)
			abort();
		/* without eof: the same cut when it lies before the end, else
		 * that cut or "undecided" */
		noeof = chunker_find(c, b + off, len - off, false);
		if (noeof != want && (off + want < len || noeof != 0))
			abort();
		while (!cut && prev < len) {
			size_t step, k;

			r = r * 1103515245u + 12345u;
			step = 1 + (r >> 16) % (2 * p.max_size);
			if (step > len - prev)
				step = len - prev;
			k = chunker_update(c, b + prev, step, &cut);
			if (k > step || (!cut && k != step))
				abort();
			prev += k;
			got += k;
			if (cut && chunker_pending(c) != 0)
				abort();
		}
		if (!cut && chunker_pending(c) != got)
			abort();
		if (got != want)
			abort();
		off += want;
	}
	chunker_free(c);
	return 0;
}
