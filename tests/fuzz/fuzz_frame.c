/*
 * fuzz_frame: arbitrary bytes as a stream of frames. Headers are decoded
 * with the pre-auth and the full limit, and payloads walked with the
 * bounded readers the way the daemon parses them; nothing may crash, and a
 * header that passes must respect the limit it was checked against.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cluster/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_payload(unsigned op, const uint8_t *p, size_t len)
{
	struct proto_reader r;
	const uint8_t *addr;
	uint64_t epoch;
	uint32_t n, max;
	uint16_t slot, k;
	uint8_t u8;

	proto_reader_init(&r, p, len);
	switch (op) {
	case PROTO_OP_HAS:
		proto_read_u64(&r, &epoch);
		if (proto_read_u32(&r, &n) && n <= PROTO_HAS_MAX)
			for (uint32_t i = 0; i < n && !r.bad; i++)
				proto_read_bytes(&r, PROTO_ADDR_BYTES, &addr);
		break;
	case PROTO_OP_LIST_SLOT:
		proto_read_u64(&r, &epoch);
		proto_read_u16(&r, &slot);
		proto_read_u32(&r, &max);
		proto_read_u8(&r, &u8);
		proto_read_bytes(&r, PROTO_ADDR_BYTES, &addr);
		break;
	case PROTO_OP_NODE_STATUS:
		if (proto_read_u16(&r, &k))
			for (unsigned i = 0; i < k && !r.bad; i++) {
				proto_read_u16(&r, &slot);
				proto_read_u64(&r, &epoch);
			}
		break;
	default:
		proto_read_u64(&r, &epoch);
		proto_read_bytes(&r, PROTO_ADDR_BYTES, &addr);
		break;
	}
	if (r.left > len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool authed = false;

	while (size >= PROTO_HEADER_BYTES) {
		struct proto_header h;
		uint32_t limit = authed ? PROTO_MAX_PAYLOAD : PROTO_PREAUTH_MAX_BYTES;
		int rc = proto_decode_header(data, limit, &h);

		if (rc < 0)
			return 0;       /* the connection would be closed */
		if (h.length > limit)
			abort();
		data += PROTO_HEADER_BYTES;
		size -= PROTO_HEADER_BYTES;
		if (h.length > size)
			return 0;       /* truncated: wait for more, or time out */
		walk_payload(h.opcode, data, h.length);
		(void)proto_status_to_err(h.status);
		data += h.length;
		size -= h.length;
		authed = true;
	}
	return 0;
}
