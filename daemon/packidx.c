/*
 * packidx: the pack index file format (see packidx.h).
 */
#include "config.h"

#include "daemon/packidx.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "cluster/proto.h"   /* the little-endian helpers */

static const uint8_t MAGIC[4] = { 'C', 'R', 'P', 'I' };
#define PACKIDX_VERSION 1u

static void checksum(const uint8_t *buf, size_t len, uint8_t out[PACKIDX_TRAILER])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len));
	memcpy(out, c.digest, PACKIDX_TRAILER);
}

size_t packidx_size(size_t n)
{
	if (n > (SIZE_MAX - PACKIDX_HEADER - PACKIDX_TRAILER) / PACKIDX_ENTRY)
		return 0;
	return PACKIDX_HEADER + n * PACKIDX_ENTRY + PACKIDX_TRAILER;
}

void packidx_encode(uint8_t *out, uint32_t id, uint64_t pack_size,
		    const struct packidx_ent *e, size_t n)
{
	uint8_t *p = out + PACKIDX_HEADER;

	memset(out, 0, PACKIDX_HEADER);
	memcpy(out, MAGIC, 4);
	proto_put_u32(out + 4, PACKIDX_VERSION);
	proto_put_u32(out + 8, id);
	proto_put_u32(out + 12, (uint32_t)n);
	proto_put_u64(out + 16, pack_size);
	for (size_t i = 0; i < n; i++, p += PACKIDX_ENTRY) {
		bool tomb = e[i].type == PACK_TOMBSTONE;

		memcpy(p, e[i].addr, PACK_ADDR_BYTES);
		proto_put_u32(p + 32, e[i].off);
		proto_put_u32(p + 36, e[i].len);
		p[40] = (uint8_t)e[i].type;
		p[41] = p[42] = p[43] = 0;
		proto_put_u32(p + 44, tomb ? e[i].kill.pack : 0);
		proto_put_u32(p + 48, tomb ? e[i].kill.off : 0);
	}
	checksum(out, (size_t)(p - out), p);
}

/* Whether the record at p may follow a record ending at *next in a pack of
 * pack_size bytes; moves *next past it. The same rules pack_parse keeps. */
static bool entry_ok(const uint8_t *p, uint64_t pack_size, uint64_t *next)
{
	uint32_t off = proto_get_u32(p + 32), len = proto_get_u32(p + 36);
	uint8_t type = p[40];

	if (p[41] || p[42] || p[43])
		return false;
	if (type == PACK_BLOCK) {
		if (len >= PACK_MAX_BLOCK || proto_get_u32(p + 44) || proto_get_u32(p + 48))
			return false;
	} else if (type != PACK_TOMBSTONE || len != PACK_TOMB_BYTES) {
		return false;
	}
	/* The padding of the last record may be cut, as in pack_parse. */
	if (off < *next || off % PACK_ALIGN ||
	    (uint64_t)off + PACK_REC_HEADER + len > pack_size)
		return false;
	*next = off + pack_rec_size(len);
	return true;
}

int packidx_decode(const uint8_t *buf, size_t len, uint32_t id,
		   uint64_t pack_size,
		   int (*rec)(void *arg, const struct pack_rec *r), void *arg)
{
	uint8_t sum[PACKIDX_TRAILER];
	uint64_t next = PACK_FILE_HEADER;
	uint32_t n;
	const uint8_t *p;

	if (len < PACKIDX_HEADER + PACKIDX_TRAILER || memcmp(buf, MAGIC, 4) ||
	    proto_get_u32(buf + 4) != PACKIDX_VERSION || proto_get_u32(buf + 8) != id ||
	    proto_get_u64(buf + 16) != pack_size || proto_get_u64(buf + 24))
		return -EBADMSG;
	n = proto_get_u32(buf + 12);
	if (packidx_size(n) != len)
		return -EBADMSG;
	checksum(buf, len - PACKIDX_TRAILER, sum);
	if (memcmp(sum, buf + len - PACKIDX_TRAILER, PACKIDX_TRAILER))
		return -EBADMSG;
	/* All of it checks before any of it is used: a bad file changes
	 * nothing, and the caller reads the pack instead. */
	p = buf + PACKIDX_HEADER;
	for (uint32_t i = 0; i < n; i++, p += PACKIDX_ENTRY)
		if (!entry_ok(p, pack_size, &next))
			return -EBADMSG;
	p = buf + PACKIDX_HEADER;
	for (uint32_t i = 0; i < n; i++, p += PACKIDX_ENTRY) {
		struct pack_rec r;
		int rc;

		memcpy(r.addr, p, PACK_ADDR_BYTES);
		r.off = proto_get_u32(p + 32);
		r.len = proto_get_u32(p + 36);
		r.type = (enum pack_type)p[40];
		/* the kill point, stored as the tombstone stores it */
		r.data = r.type == PACK_TOMBSTONE ? p + 44 : NULL;
		rc = rec(arg, &r);
		if (rc)
			return rc;
	}
	return 0;
}
