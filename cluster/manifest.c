/*
 * manifest: encode and decode manifests; the format is in manifest.h.
 * man_decode checks what a manifest says (magic, version, level, the count
 * against the length, each entry's length, the sizes adding up) before it
 * returns an entry. No I/O, no logging.
 */
#include "cluster/manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/proto.h"
#include "crypto/seal.h"

_Static_assert(MAN_HEADER_BYTES == 4 + 1 + 1 + 2 + 8 + 4, "manifest header");
_Static_assert(MAN_ENTRY_BYTES == 32 + 8, "manifest entry");
_Static_assert(MAN_MAX_BYTES <= SEAL_MAX_CHUNK, "a manifest fits one block");

size_t man_encode(unsigned level, uint64_t size, const struct man_entry *e,
		  size_t n, uint8_t *out)
{
	uint8_t *p = out;

	memcpy(p, MAN_MAGIC, 4);
	p[4] = MAN_VERSION;
	p[5] = (uint8_t)level;
	proto_put_u16(p + 6, 0);
	proto_put_u64(p + 8, size);
	proto_put_u32(p + 16, (uint32_t)n);
	p += MAN_HEADER_BYTES;
	for (size_t i = 0; i < n; i++, p += MAN_ENTRY_BYTES) {
		memcpy(p, e[i].addr, 32);
		proto_put_u64(p + 32, e[i].len);
	}
	return (size_t)(p - out);
}

int man_decode(const uint8_t *buf, size_t len, unsigned *level,
	       uint64_t *size, struct man_entry **e, size_t *n)
{
	uint64_t sum = 0;
	uint32_t cnt;
	struct man_entry *out;

	if (len < MAN_HEADER_BYTES || memcmp(buf, MAN_MAGIC, 4))
		return -EPROTO;
	if (buf[4] != MAN_VERSION)
		return -ENOTSUP;
	if (buf[5] > MAN_MAX_LEVEL || proto_get_u16(buf + 6))
		return -EPROTO;
	cnt = proto_get_u32(buf + 16);
	if (cnt > MAN_MAX_ENTRIES ||
	    len != MAN_HEADER_BYTES + (size_t)cnt * MAN_ENTRY_BYTES)
		return -EPROTO;
	out = malloc((cnt ? cnt : 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *p = buf + MAN_HEADER_BYTES + (size_t)i * MAN_ENTRY_BYTES;

		memcpy(out[i].addr, p, 32);
		out[i].len = proto_get_u64(p + 32);
		if (!out[i].len || (buf[5] == 0 && out[i].len > SEAL_MAX_CHUNK) ||
		    out[i].len > UINT64_MAX - sum) {
			free(out);
			return -EPROTO;
		}
		sum += out[i].len;
	}
	if (sum != proto_get_u64(buf + 8)) {
		free(out);
		return -EPROTO;
	}
	*level = buf[5];
	*size = sum;
	*e = out;
	*n = cnt;
	return 0;
}
