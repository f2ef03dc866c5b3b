/*
 * pack: the pack file format (see pack.h).
 */
#include "config.h"

#include "daemon/pack.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/proto.h"   /* the little-endian helpers */

static const uint8_t FILE_MAGIC[4] = { 'C', 'R', 'P', 'K' };
static const uint8_t REC_MAGIC[4] = { 'C', 'R', 'K', '1' };
#define PACK_VERSION 1u

void pack_file_header(uint8_t out[PACK_FILE_HEADER], uint32_t id)
{
	memcpy(out, FILE_MAGIC, 4);
	proto_put_u32(out + 4, PACK_VERSION);
	proto_put_u32(out + 8, id);
	proto_put_u32(out + 12, 0);
}

int pack_check_file_header(const uint8_t *buf, size_t len, uint32_t *id)
{
	if (len < PACK_FILE_HEADER || memcmp(buf, FILE_MAGIC, 4) ||
	    proto_get_u32(buf + 4) != PACK_VERSION || proto_get_u32(buf + 12) != 0)
		return -EBADMSG;
	*id = proto_get_u32(buf + 8);
	return 0;
}

/* XXH3-128 of the block bytes seeded with a hash of the address, so that
 * both are covered without a streaming state; canonical (big-endian). */
static void data_sum(const uint8_t *addr, const void *data, uint32_t len,
		     uint8_t out[16])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_withSeed(
		len ? data : "", len, XXH3_64bits(addr, PACK_ADDR_BYTES)));
	memcpy(out, c.digest, 16);
}

static uint32_t header_sum(const uint8_t *hdr)
{
	uint8_t tmp[PACK_REC_HEADER];

	memcpy(tmp, hdr, sizeof(tmp));
	memset(tmp + 12, 0, 4);
	return XXH32(tmp, sizeof(tmp), 0);
}

void pack_rec_header(uint8_t out[PACK_REC_HEADER], enum pack_type type,
		     const uint8_t addr[PACK_ADDR_BYTES], const void *data,
		     uint32_t len)
{
	memset(out, 0, PACK_REC_HEADER);
	memcpy(out, REC_MAGIC, 4);
	out[4] = (uint8_t)type;
	proto_put_u32(out + 8, len);
	memcpy(out + 16, addr, PACK_ADDR_BYTES);
	data_sum(addr, data, len, out + 48);
	proto_put_u32(out + 12, header_sum(out));
}

void pack_tomb_encode(uint8_t out[PACK_TOMB_BYTES], struct pack_pos killed_before)
{
	proto_put_u32(out, killed_before.pack);
	proto_put_u32(out + 4, killed_before.off);
}

struct pack_pos pack_tomb_decode(const uint8_t in[PACK_TOMB_BYTES])
{
	struct pack_pos p = { proto_get_u32(in), proto_get_u32(in + 4) };

	return p;
}

bool pack_rec_decode(const uint8_t *buf, size_t avail, struct pack_rec *out)
{
	if (!pack_rec_decode_header(buf, avail, out))
		return false;
	out->data = buf + PACK_REC_HEADER;
	return true;
}

bool pack_rec_decode_header(const uint8_t *buf, uint64_t avail,
			    struct pack_rec *out)
{
	uint32_t len;

	if (avail < PACK_REC_HEADER || memcmp(buf, REC_MAGIC, 4) ||
	    buf[5] || buf[6] || buf[7] || proto_get_u32(buf + 12) != header_sum(buf))
		return false;
	len = proto_get_u32(buf + 8);
	switch (buf[4]) {
	case PACK_BLOCK:
		if (len >= PACK_MAX_BLOCK)
			return false;
		break;
	case PACK_TOMBSTONE:
		if (len != PACK_TOMB_BYTES)
			return false;
		break;
	default:
		return false;
	}
	/* The padding is part of the record: a record cut short in it is
	 * still whole, but the next one starts after it. */
	if ((uint64_t)PACK_REC_HEADER + len > avail)
		return false;
	out->type = (enum pack_type)buf[4];
	memcpy(out->addr, buf + 16, PACK_ADDR_BYTES);
	out->len = len;
	out->data = NULL;
	return true;
}

bool pack_rec_verify(const uint8_t *hdr, const struct pack_rec *r)
{
	uint8_t sum[16];

	data_sum(r->addr, r->data, r->len, sum);
	return memcmp(sum, hdr + 48, 16) == 0;
}

int pack_parse(const uint8_t *buf, size_t len,
	       int (*rec)(void *arg, const struct pack_rec *r, bool verified),
	       void *arg, struct pack_scan *scan)
{
	uint32_t id;
	uint64_t off = PACK_FILE_HEADER;

	memset(scan, 0, sizeof(*scan));
	scan->end = PACK_FILE_HEADER;
	if (pack_check_file_header(buf, len, &id) < 0)
		return -EBADMSG;
	while (off + PACK_REC_HEADER <= len) {
		struct pack_rec r;
		bool ok;
		int rc;

		if (!pack_rec_decode(buf + off, len - off, &r)) {
			scan->skipped += PACK_ALIGN;
			off += PACK_ALIGN;
			continue;
		}
		r.off = off;
		ok = pack_rec_verify(buf + off, &r);
		if (ok)
			scan->good++;
		else
			scan->bad_sum++;
		rc = rec(arg, &r, ok);
		if (rc)
			return rc;
		off += pack_rec_size(r.len);
		scan->end = off < len ? off : len;
	}
	if (off < len)
		scan->skipped += len - off;
	return 0;
}
