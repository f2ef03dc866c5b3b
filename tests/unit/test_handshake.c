/*
 * test_handshake: both sides agree only when both know the secret; old
 * messages and tampered ones get nowhere; frame tags stop forgery, replay,
 * reordering and reflection.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/handshake.h"

static const uint8_t secret[32] = "0123456789abcdef0123456789abcde";
static const uint8_t other[32] = "another cluster's secret.......";
static const char ctx[] = "node-id|cluster-id|epoch";

/* Run a full handshake; returns the first failing step's code. */
static int run(const uint8_t *csec, const uint8_t *ssec, struct hs_session *cs,
	       struct hs_session *ss)
{
	uint8_t hello[HS_HELLO_BYTES], reply[HS_REPLY_BYTES], fin[HS_FINISH_BYTES];
	struct handshake *c, *s;
	int rc;

	assert_int_equal(handshake_client_new(csec, hello, &c), 0);
	assert_int_equal(handshake_server_new(ssec, hello, ctx, sizeof(ctx), reply, &s), 0);
	rc = handshake_client_finish(c, reply, ctx, sizeof(ctx), fin, cs);
	if (rc == 0)
		rc = handshake_server_finish(s, fin, ss);
	handshake_free(c);
	handshake_free(s);
	return rc;
}

static void both_sides_agree_on_keys(void **state)
{
	struct hs_session cs, ss;

	(void)state;
	assert_int_equal(run(secret, secret, &cs, &ss), 0);
	assert_memory_equal(cs.tx_key, ss.rx_key, 32);
	assert_memory_equal(cs.rx_key, ss.tx_key, 32);
	assert_memory_not_equal(cs.tx_key, cs.rx_key, 32);
}

static void sessions_get_fresh_keys(void **state)
{
	struct hs_session a, b, x, y;

	(void)state;
	assert_int_equal(run(secret, secret, &a, &x), 0);
	assert_int_equal(run(secret, secret, &b, &y), 0);
	assert_memory_not_equal(a.tx_key, b.tx_key, 32);
}

static void wrong_secret_is_rejected_by_the_client(void **state)
{
	struct hs_session cs, ss;

	(void)state;
	assert_int_equal(run(secret, other, &cs, &ss), -EKEYREJECTED);
	assert_int_equal(run(other, secret, &cs, &ss), -EKEYREJECTED);
}

static void client_without_secret_cannot_finish(void **state)
{
	uint8_t hello[HS_HELLO_BYTES], reply[HS_REPLY_BYTES], fin[HS_FINISH_BYTES];
	struct handshake *s;
	struct hs_session ss;

	(void)state;
	/* An attacker sends a hello and a guessed finish. */
	randombytes_buf(hello, sizeof(hello));
	assert_int_equal(handshake_server_new(secret, hello, ctx, sizeof(ctx), reply, &s), 0);
	randombytes_buf(fin, sizeof(fin));
	assert_int_equal(handshake_server_finish(s, fin, &ss), -EKEYREJECTED);
	handshake_free(s);
}

static void replayed_finish_of_old_session_is_rejected(void **state)
{
	uint8_t hello[HS_HELLO_BYTES], reply[HS_REPLY_BYTES], fin[HS_FINISH_BYTES];
	uint8_t reply2[HS_REPLY_BYTES];
	struct handshake *c, *s, *s2;
	struct hs_session cs, ss;

	(void)state;
	assert_int_equal(handshake_client_new(secret, hello, &c), 0);
	assert_int_equal(handshake_server_new(secret, hello, ctx, sizeof(ctx), reply, &s), 0);
	assert_int_equal(handshake_client_finish(c, reply, ctx, sizeof(ctx), fin, &cs), 0);
	assert_int_equal(handshake_server_finish(s, fin, &ss), 0);
	/* The recorded hello + finish, replayed to a new server session. */
	assert_int_equal(handshake_server_new(secret, hello, ctx, sizeof(ctx), reply2, &s2), 0);
	assert_int_equal(handshake_server_finish(s2, fin, &ss), -EKEYREJECTED);
	handshake_free(c);
	handshake_free(s);
	handshake_free(s2);
}

static void tampered_reply_or_ctx_is_rejected(void **state)
{
	uint8_t hello[HS_HELLO_BYTES], reply[HS_REPLY_BYTES], fin[HS_FINISH_BYTES];
	struct handshake *c, *s;
	struct hs_session cs;

	(void)state;
	for (int bit = 0; bit < HS_REPLY_BYTES * 8; bit += 7) {
		assert_int_equal(handshake_client_new(secret, hello, &c), 0);
		assert_int_equal(handshake_server_new(secret, hello, ctx, sizeof(ctx), reply, &s), 0);
		reply[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(handshake_client_finish(c, reply, ctx, sizeof(ctx), fin, &cs),
				 -EKEYREJECTED);
		handshake_free(c);
		handshake_free(s);
	}
	/* The server announced another ctx than the client sees. */
	assert_int_equal(handshake_client_new(secret, hello, &c), 0);
	assert_int_equal(handshake_server_new(secret, hello, ctx, sizeof(ctx), reply, &s), 0);
	assert_int_equal(handshake_client_finish(c, reply, "other", 5, fin, &cs), -EKEYREJECTED);
	handshake_free(c);
	handshake_free(s);
}

static void frame_tags_stop_forgery_replay_reorder(void **state)
{
	struct hs_session cs, ss, snap;
	uint8_t f1[100], f2[100], t1[16], t2[16];
	struct iovec v1[2] = { { f1, 16 }, { f1 + 16, 84 } }, v2 = { f2, 100 };
	struct iovec w1 = { f1, 100 };

	(void)state;
	assert_int_equal(run(secret, secret, &cs, &ss), 0);
	randombytes_buf(f1, sizeof(f1));
	randombytes_buf(f2, sizeof(f2));
	hs_tag_frame(&cs, v1, 2, t1);
	hs_tag_frame(&cs, &v2, 1, t2);
	assert_int_equal(cs.tx_seq, 2);

	/* reordered: frame 2 first */
	snap = ss;
	assert_int_equal(hs_verify_frame(&ss, &v2, 1, t2), -EBADMSG);
	assert_int_equal(ss.rx_seq, 0);
	/* in order, split differently: same bytes, same tag */
	assert_int_equal(hs_verify_frame(&ss, &w1, 1, t1), 0);
	/* replayed frame 1 */
	assert_int_equal(hs_verify_frame(&ss, &w1, 1, t1), -EBADMSG);
	/* one flipped bit in frame 2 */
	f2[50] ^= 4;
	assert_int_equal(hs_verify_frame(&ss, &v2, 1, t2), -EBADMSG);
	f2[50] ^= 4;
	assert_int_equal(hs_verify_frame(&ss, &v2, 1, t2), 0);
	assert_int_equal(ss.rx_seq, 2);

	/* reflected: the server's own frame sent back to it */
	hs_tag_frame(&ss, &w1, 1, t1);
	assert_int_equal(hs_verify_frame(&snap, &w1, 1, t1), -EBADMSG);
	/* the client accepts it */
	assert_int_equal(hs_verify_frame(&cs, &w1, 1, t1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(both_sides_agree_on_keys),
		cmocka_unit_test(sessions_get_fresh_keys),
		cmocka_unit_test(wrong_secret_is_rejected_by_the_client),
		cmocka_unit_test(client_without_secret_cannot_finish),
		cmocka_unit_test(replayed_finish_of_old_session_is_rejected),
		cmocka_unit_test(tampered_reply_or_ctx_is_rejected),
		cmocka_unit_test(frame_tags_stop_forgery_replay_reorder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
