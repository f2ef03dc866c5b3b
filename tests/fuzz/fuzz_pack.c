/*
 * fuzz_pack: pack_parse (daemon/pack.h) on arbitrary bytes must return 0,
 * -EBADMSG or what the callback returned, never crash or read out of
 * bounds. What it reports must keep the format's promises: records inside
 * the input, in order, on PACK_ALIGN boundaries and not overlapping, of a
 * known type and a legal length; `verified` the same answer pack_rec_verify
 * gives; and a verified record's header exactly the one pack_rec_header
 * writes for it (one encoding per record, so a pack reads only one way).
 * The counts in the scan must add up to what the callback saw, and every
 * byte after the file header is either in a record or skipped.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walk {
	const uint8_t *data;
	size_t size;
	uint64_t calls, verified;
	uint64_t next_off;       /* the earliest the next record may start */
	uint64_t covered;        /* record bytes inside the input */
	uint64_t last_end;       /* after the last record, capped at size */
	uint64_t stop_at;        /* return 1 at this call; 0 never */
};

static int check_rec(void *arg, const struct pack_rec *r, bool verified)
{
	struct walk *w = arg;
	const uint8_t *hdr = w->data + r->off;
	uint8_t again[PACK_REC_HEADER];
	uint64_t size;

	if (r->off < w->next_off || r->off % PACK_ALIGN ||
	    r->off + PACK_REC_HEADER > w->size)
		abort();
	/* compared as integers: a pointer outside the input is the bug
	 * looked for, and arithmetic on it would be undefined */
	if ((uintptr_t)r->data != (uintptr_t)w->data + r->off + PACK_REC_HEADER ||
	    (uintptr_t)r->data < (uintptr_t)w->data ||
	    (uintptr_t)r->data + r->len > (uintptr_t)w->data + w->size)
		abort();
	switch (r->type) {
	case PACK_BLOCK:
		if (r->len >= PACK_MAX_BLOCK)
			abort();
		break;
	case PACK_TOMBSTONE:
		if (r->len != PACK_TOMB_BYTES)
			abort();
		break;
	default:
		abort();
	}
	if (verified != pack_rec_verify(hdr, r))
		abort();
	if (verified) {
		pack_rec_header(again, r->type, r->addr, r->data, r->len);
		if (memcmp(again, hdr, PACK_REC_HEADER))
			abort();
		w->verified++;
	}
	size = pack_rec_size(r->len);
	w->next_off = r->off + size;
	w->last_end = w->next_off < w->size ? w->next_off : w->size;
	w->covered += w->last_end - r->off;
	w->calls++;
	return w->calls == w->stop_at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walk w = { data, size, 0, 0, PACK_FILE_HEADER, 0,
			  PACK_FILE_HEADER, 0 };
	struct pack_scan scan;
	uint32_t id;
	int rc = pack_parse(data, size, check_rec, &w, &scan);

	if (rc == -EBADMSG) {
		if (w.calls || pack_check_file_header(data, size, &id) == 0)
			abort();
		return 0;
	}
	if (rc)
		abort();             /* check_rec never stopped it */
	if (scan.good + scan.bad_sum != w.calls || scan.good != w.verified)
		abort();
	/* each byte is in exactly one record or skipped */
	if (scan.end != w.last_end ||
	    scan.skipped + w.covered != size - PACK_FILE_HEADER)
		abort();

	/* stopped halfway, the walk saw the same records up to there */
	if (w.calls > 1) {
		struct walk w2 = { data, size, 0, 0, PACK_FILE_HEADER, 0,
				   PACK_FILE_HEADER, w.calls / 2 };

		if (pack_parse(data, size, check_rec, &w2, &scan) != 1 ||
		    w2.calls != w.calls / 2)
			abort();
	}
	return 0;
}
