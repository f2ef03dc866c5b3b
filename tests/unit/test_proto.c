/*
 * test_proto: headers round-trip; every limit and malformed field is caught
 * at header time with its own code; status numbers map both ways.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/proto.h"

static void enc(uint8_t v, uint8_t op, uint8_t fl, uint8_t st, uint32_t len,
		uint8_t out[PROTO_HEADER_BYTES])
{
	struct proto_header h = { v, op, fl, st, len, 0x1122334455667788ull };

	proto_encode_header(&h, out);
}

static void header_round_trips(void **state)
{
	struct proto_header h = { PROTO_VERSION, PROTO_OP_PUT, 0, 0, 262144,
				  0xdeadbeefcafef00dull }, g;
	uint8_t b[PROTO_HEADER_BYTES];

	(void)state;
	proto_encode_header(&h, b);
	assert_int_equal(b[4], 0x00);   /* little-endian length */
	assert_int_equal(b[6], 0x04);
	assert_int_equal(b[8], 0x0d);   /* little-endian request id */
	assert_int_equal(proto_decode_header(b, PROTO_MAX_PAYLOAD, &g), 0);
	assert_memory_equal(&h, &g, sizeof(h));
	for (unsigned op = 1; op <= PROTO_OP_MAX; op++) {
		enc(1, (uint8_t)op, PROTO_F_RESPONSE, PROTO_ST_NOT_FOUND, 0, b);
		assert_int_equal(proto_decode_header(b, 0, &g), 0);
		assert_string_not_equal(proto_op_name(op), "?");
	}
}

static void lengths_are_checked_against_the_limit(void **state)
{
	struct proto_header g;
	uint8_t b[PROTO_HEADER_BYTES];

	(void)state;
	enc(1, PROTO_OP_PUT, 0, 0, PROTO_MAX_PAYLOAD, b);
	assert_int_equal(proto_decode_header(b, PROTO_MAX_PAYLOAD, &g), 0);
	enc(1, PROTO_OP_PUT, 0, 0, PROTO_MAX_PAYLOAD + 1, b);
	assert_int_equal(proto_decode_header(b, PROTO_MAX_PAYLOAD, &g), -E2BIG);
	enc(1, PROTO_OP_PUT, 0, 0, UINT32_MAX, b);
	assert_int_equal(proto_decode_header(b, PROTO_MAX_PAYLOAD, &g), -E2BIG);
	enc(1, PROTO_OP_HELLO, 0, 0, PROTO_PREAUTH_MAX_BYTES + 1, b);
	assert_int_equal(proto_decode_header(b, PROTO_PREAUTH_MAX_BYTES, &g), -E2BIG);
}

static void malformed_fields_are_refused(void **state)
{
	struct proto_header g;
	uint8_t b[PROTO_HEADER_BYTES];

	(void)state;
	enc(2, PROTO_OP_PUT, 0, 0, 0, b);
	assert_int_equal(proto_decode_header(b, 100, &g), -ENOTSUP);
	enc(0, PROTO_OP_PUT, 0, 0, 0, b);
	assert_int_equal(proto_decode_header(b, 100, &g), -ENOTSUP);
	enc(1, 0, 0, 0, 0, b);
	assert_int_equal(proto_decode_header(b, 100, &g), -EPROTO);
	enc(1, PROTO_OP_MAX + 1, 0, 0, 0, b);
	assert_int_equal(proto_decode_header(b, 100, &g), -EPROTO);
	enc(1, 255, 0, 0, 0, b);
	assert_int_equal(proto_decode_header(b, 100, &g), -EPROTO);
	enc(1, PROTO_OP_GET, 0x02, 0, 0, b);            /* unknown flag */
	assert_int_equal(proto_decode_header(b, 100, &g), -EPROTO);
	enc(1, PROTO_OP_GET, 0, PROTO_ST_IO, 0, b);     /* status in a request */
	assert_int_equal(proto_decode_header(b, 100, &g), -EPROTO);
	enc(1, PROTO_OP_GET, PROTO_F_RESPONSE, 200, 0, b);
	assert_int_equal(proto_decode_header(b, 100, &g), -EPROTO);
	assert_string_equal(proto_op_name(0), "?");
	assert_string_equal(proto_op_name(99), "?");
}

static void status_mapping_is_a_bijection(void **state)
{
	(void)state;
	for (unsigned s = 0; s <= PROTO_ST_BAD_SIGNATURE; s++) {
		int err = proto_status_to_err(s);

		assert_int_equal(proto_err_to_status(err), s);
		for (unsigned t = 0; t < s; t++)
			assert_int_not_equal(proto_status_to_err(t), err);
	}
	assert_int_equal(proto_err_to_status(-ENOSPC), PROTO_ST_NO_SPACE);
	assert_int_equal(proto_err_to_status(ENOSPC), PROTO_ST_NO_SPACE);
	assert_int_equal(proto_err_to_status(-ELOOP), PROTO_ST_IO);
	assert_int_equal(proto_status_to_err(250), -EIO);
}

static void readers_stop_at_the_end(void **state)
{
	uint8_t buf[11] = { 1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0 };
	struct proto_reader r;
	const uint8_t *p;
	uint8_t a;
	uint16_t b;
	uint32_t c;
	uint64_t d;

	(void)state;
	proto_reader_init(&r, buf, sizeof(buf));
	assert_true(proto_read_u8(&r, &a) && a == 1);
	assert_true(proto_read_u16(&r, &b) && b == 2);
	assert_true(proto_read_u32(&r, &c) && c == 3);
	assert_false(proto_read_u64(&r, &d));     /* only 4 left */
	assert_true(r.bad);
	assert_false(proto_read_u8(&r, &a));      /* stays bad */
	proto_reader_init(&r, buf, 3);
	assert_true(proto_read_bytes(&r, 3, &p) && p == buf);
	assert_false(proto_read_bytes(&r, 1, &p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_round_trips),
		cmocka_unit_test(lengths_are_checked_against_the_limit),
		cmocka_unit_test(malformed_fields_are_refused),
		cmocka_unit_test(status_mapping_is_a_bijection),
		cmocka_unit_test(readers_stop_at_the_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
