/*
 * fuzz_packidx: packidx_decode (daemon/packidx.h) on arbitrary bytes must
 * return 0, -EBADMSG or what the callback returned, never crash or read out
 * of bounds. The input is the pack the file should describe, then the file:
 * u32 pack id and u64 pack size (little-endian), then the index file.
 *
 * What a decode that returns 0 reports must keep the format's promises:
 * records after the pack's file header, in order, on PACK_ALIGN boundaries
 * and not overlapping, each inside pack_size, of a known type and a legal
 * length, a tombstone's kill point inside the file and a block's data NULL;
 * and encoding those records again gives back exactly the input (one
 * encoding per list, so a stale or damaged file cannot pass as a good one
 * of other bytes). -EBADMSG means nothing was called back. A callback that
 * stops halfway stops the calls there and its value is returned.
 *
 * Each input is decoded as it is, then (when its trailer is wrong) once
 * more with the trailer recomputed, so that mutations get past the
 * checksum to the header and entry checks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "cluster/proto.h"
#include "daemon/pack.h"
#include "daemon/packidx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX 12

struct walk {
	const uint8_t *file;
	size_t len;
	uint64_t pack_size;
	uint64_t next_off;       /* the earliest the next record may start */
	struct packidx_ent *e;   /* what was reported, to encode again */
	size_t calls, cap;
	size_t stop_at;          /* return 1 at this call; 0 never */
};

static int check_rec(void *arg, const struct pack_rec *r)
{
	struct walk *w = arg;
	struct packidx_ent *e;

	if (r->off < w->next_off || r->off % PACK_ALIGN ||
	    r->off + PACK_REC_HEADER + r->len > w->pack_size ||
	    r->off > UINT32_MAX)
		abort();
	switch (r->type) {
	case PACK_BLOCK:
		if (r->len >= PACK_MAX_BLOCK || r->data)
			abort();
		break;
	case PACK_TOMBSTONE:
		/* compared as integers: a pointer outside the file is the bug
		 * looked for, and arithmetic on it would be undefined */
		if (r->len != PACK_TOMB_BYTES || !r->data ||
		    (uintptr_t)r->data < (uintptr_t)w->file + PACKIDX_HEADER ||
		    (uintptr_t)r->data + PACK_TOMB_BYTES >
			    (uintptr_t)w->file + w->len - PACKIDX_TRAILER)
			abort();
		break;
	default:
		abort();
	}
	w->next_off = r->off + pack_rec_size(r->len);
	if (w->calls == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct packidx_ent *p = realloc(w->e, cap * sizeof(*p));

		if (!p)
			abort();
		w->e = p;
		w->cap = cap;
	}
	e = &w->e[w->calls++];
	memset(e, 0, sizeof(*e));
	memcpy(e->addr, r->addr, PACK_ADDR_BYTES);
	e->off = (uint32_t)r->off;
	e->len = r->len;
	e->type = r->type;
	if (r->type == PACK_TOMBSTONE)
		e->kill = pack_tomb_decode(r->data);
	return w->calls == w->stop_at;
}

/* Decode file (len bytes, a buffer of its own so a read past its end is
 * seen by the sanitizers) and check what comes back. */
static void check_file(const uint8_t *file, size_t len, uint32_t id,
		       uint64_t pack_size)
{
	struct walk w = { 0 };
	int rc;

	w.file = file;
	w.len = len;
	w.pack_size = pack_size;
	w.next_off = PACK_FILE_HEADER;
	rc = packidx_decode(file, len, id, pack_size, check_rec, &w);
	if (rc == -EBADMSG) {
		if (w.calls)
			abort();
		free(w.e);
		return;
	}
	if (rc)
		abort();             /* check_rec never stopped it */

	/* one encoding per list: the records give back the file, byte for
	 * byte (count, id, size and checksum included) */
	size_t n = w.calls, want = packidx_size(n);
	uint8_t *again;

	if (!want || want != len)
		abort();
	again = malloc(want);
	if (!again)
		abort();
	packidx_encode(again, id, pack_size, w.e, n);
	if (memcmp(again, file, len))
		abort();
	free(again);

	/* stopped halfway, the calls stop there and its value comes back */
	if (w.calls > 1) {
		struct walk w2 = { 0 };

		w2.file = file;
		w2.len = len;
		w2.pack_size = pack_size;
		w2.next_off = PACK_FILE_HEADER;
		w2.stop_at = w.calls / 2;
		if (packidx_decode(file, len, id, pack_size, check_rec, &w2) != 1 ||
		    w2.calls != w.calls / 2 ||
		    memcmp(w2.e, w.e, w2.calls * sizeof(*w.e)))
			abort();
		free(w2.e);
	}
	free(w.e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t id;
	uint64_t pack_size;
	uint8_t *file;
	size_t len;

	if (size < PREFIX)
		return 0;
	id = proto_get_u32(data);
	pack_size = proto_get_u64(data + 4);
	len = size - PREFIX;
	file = malloc(len ? len : 1);
	if (!file)
		abort();
	memcpy(file, data + PREFIX, len);
	check_file(file, len, id, pack_size);

	/* A mutation nearly always breaks the checksum, and the decoder stops
	 * there: the same file with its trailer made right gets to the
	 * header and entry checks behind it. */
	if (len >= PACKIDX_HEADER + PACKIDX_TRAILER) {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits(file,
							  len - PACKIDX_TRAILER));
		if (memcmp(file + len - PACKIDX_TRAILER, c.digest,
			   PACKIDX_TRAILER)) {
			memcpy(file + len - PACKIDX_TRAILER, c.digest,
			       PACKIDX_TRAILER);
			check_file(file, len, id, pack_size);
		}
	}
	free(file);
	return 0;
}
