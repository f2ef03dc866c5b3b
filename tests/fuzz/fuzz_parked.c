/*
 * fuzz_parked: parked_decode (fs/parked.h) on arbitrary bytes must return 0
 * or an error, never crash, leak or read out of bounds, and must pass
 * nothing on from an input it then refuses. What it accepts must keep the
 * format's promises (ranges non-empty, in order, not overlapping, inside
 * the input) and encode back to the very same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs/parked.h"
#include "fs/segs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct collect {
	const uint8_t *data;
	size_t size;
	struct seg *head, **tail;
	uint64_t next_off;
};

static int collect_range(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct collect *c = arg;
	struct seg *s;

	if (!len || off < c->next_off || p < c->data || p + len > c->data + c->size)
		abort();
	c->next_off = off + len;
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->off = off;
	s->len = len;
	s->buf = (uint8_t *)p;       /* points into the input: not freed */
	*c->tail = s;
	c->tail = &s->next;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collect c = { data, size, NULL, &c.head, 0 };
	uint64_t ino = 0;
	uint8_t *again = NULL;
	size_t again_len = 0;
	int rc = parked_decode(data, size, &ino, collect_range, &c);

	if (rc < 0) {
		if (c.head)
			abort();     /* refused after passing ranges on */
		return 0;
	}
	if (parked_encode(ino, c.head, &again, &again_len) < 0 ||
	    again_len != size || memcmp(again, data, size))
		abort();
	free(again);
	while (c.head) {
		struct seg *s = c.head;

		c.head = s->next;
		free(s);
	}
	return 0;
}
