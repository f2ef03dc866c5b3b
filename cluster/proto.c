/*
 * proto: frame headers, status numbers and bounded payload readers.
 *
 * Everything a peer sends passes proto_decode_header() before a byte of
 * payload is buffered, so a hostile length costs nothing. Status numbers on
 * the wire are pinned in proto.h; this is the only place they meet errno.
 */
#include "cluster/proto.h"

#include <errno.h>
#include <string.h>

_Static_assert(PROTO_HEADER_BYTES == 16, "frame header is 16 bytes");

void proto_encode_header(const struct proto_header *h,
			 uint8_t out[PROTO_HEADER_BYTES])
{
	out[0] = h->version;
	out[1] = h->opcode;
	out[2] = h->flags;
	out[3] = h->status;
	proto_put_u32(out + 4, h->length);
	proto_put_u64(out + 8, h->request_id);
}

int proto_decode_header(const uint8_t in[PROTO_HEADER_BYTES], uint32_t limit,
			struct proto_header *out)
{
	struct proto_header h = {
		.version = in[0], .opcode = in[1], .flags = in[2], .status = in[3],
		.length = proto_get_u32(in + 4), .request_id = proto_get_u64(in + 8),
	};

	if (h.version != PROTO_VERSION)
		return -ENOTSUP;
	if (h.opcode == 0 || h.opcode > PROTO_OP_MAX)
		return -EPROTO;
	if (h.flags & ~PROTO_F_RESPONSE)
		return -EPROTO;
	if (!(h.flags & PROTO_F_RESPONSE) && h.status != PROTO_ST_OK)
		return -EPROTO;
	if (h.status > PROTO_ST_BAD_SIGNATURE)
		return -EPROTO;
	if (h.length > limit)
		return -E2BIG;
	*out = h;
	return 0;
}

const char *proto_op_name(unsigned op)
{
	static const char *const names[] = {
		[PROTO_OP_HELLO] = "HELLO", [PROTO_OP_PUT] = "PUT",
		[PROTO_OP_GET] = "GET", [PROTO_OP_HAS] = "HAS",
		[PROTO_OP_DELETE] = "DELETE", [PROTO_OP_LIST_SLOT] = "LIST_SLOT",
		[PROTO_OP_MAP_GET] = "MAP_GET", [PROTO_OP_MAP_PUSH] = "MAP_PUSH",
		[PROTO_OP_NODE_STATUS] = "NODE_STATUS", [PROTO_OP_PING] = "PING",
		[PROTO_OP_SLOT_PULL] = "SLOT_PULL", [PROTO_OP_ROOT_GET] = "ROOT_GET",
		[PROTO_OP_ROOT_CAS] = "ROOT_CAS", [PROTO_OP_FRAG_PUT] = "FRAG_PUT",
		[PROTO_OP_FRAG_GET] = "FRAG_GET", [PROTO_OP_CAPABILITY] = "CAPABILITY",
	};

	if (op >= sizeof(names) / sizeof(names[0]) || !names[op])
		return "?";
	return names[op];
}

/* The pinned pairs; index = status. */
static const int status_errno[] = {
	[PROTO_ST_OK] = 0,
	[PROTO_ST_NOT_FOUND] = -ENOENT,
	[PROTO_ST_STALE] = -ESTALE,
	[PROTO_ST_NO_SPACE] = -ENOSPC,
	[PROTO_ST_IO] = -EIO,
	[PROTO_ST_BAD_REQUEST] = -EPROTO,
	[PROTO_ST_UNSUPPORTED] = -ENOTSUP,
	[PROTO_ST_CORRUPT] = -EBADMSG,
	[PROTO_ST_NOT_OWNER] = -EXDEV,
	[PROTO_ST_BUSY] = -EAGAIN,
	[PROTO_ST_DENIED] = -EACCES,
	[PROTO_ST_TOO_BIG] = -E2BIG,
	[PROTO_ST_BAD_SIGNATURE] = -EKEYREJECTED,
};

int proto_status_to_err(unsigned status)
{
	if (status >= sizeof(status_errno) / sizeof(status_errno[0]))
		return -EIO;
	return status_errno[status];
}

uint8_t proto_err_to_status(int err)
{
	if (err > 0)
		err = -err;
	for (uint8_t s = 0; s < sizeof(status_errno) / sizeof(status_errno[0]); s++)
		if (status_errno[s] == err)
			return s;
	/* Anything else the far side can only treat as an I/O failure. */
	return PROTO_ST_IO;
}

static bool proto_take(struct proto_reader *r, size_t n, const uint8_t **p)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return false;
	}
	*p = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

bool proto_read_u8(struct proto_reader *r, uint8_t *v)
{
	const uint8_t *p;

	if (!proto_take(r, 1, &p))
		return false;
	*v = p[0];
	return true;
}

bool proto_read_u16(struct proto_reader *r, uint16_t *v)
{
	const uint8_t *p;

	if (!proto_take(r, 2, &p))
		return false;
	*v = proto_get_u16(p);
	return true;
}

bool proto_read_u32(struct proto_reader *r, uint32_t *v)
{
	const uint8_t *p;

	if (!proto_take(r, 4, &p))
		return false;
	*v = proto_get_u32(p);
	return true;
}

bool proto_read_u64(struct proto_reader *r, uint64_t *v)
{
	const uint8_t *p;

	if (!proto_take(r, 8, &p))
		return false;
	*v = proto_get_u64(p);
	return true;
}

bool proto_read_bytes(struct proto_reader *r, size_t n, const uint8_t **v)
{
	return proto_take(r, n, v);
}
