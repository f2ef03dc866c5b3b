/*
 * test_seal: sealed blocks open to their chunk, and only to it: under the
 * right address, with the right volume key, with every bit intact (T23).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/keys.h"
#include "crypto/seal.h"

static struct keys *k1, *k2;
static struct seal_ctx *ctx;

static int setup(void **state)
{
	struct keys_volume v = { .name = "test", .chunk_min = 65536,
				 .chunk_avg = 262144, .chunk_max = 1048576 };

	(void)state;
	assert_int_equal(keys_generate(&v, &k1), 0);
	assert_int_equal(keys_generate(&v, &k2), 0);
	assert_int_equal(seal_ctx_new(1, &ctx), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	keys_free(k1);
	keys_free(k2);
	seal_ctx_free(ctx);
	return 0;
}

static uint8_t *text_like(size_t len)
{
	static const char *words[] = { "cairn ", "stone ", "path ", "the ", "of ",
				       "mountain\n", "{ int x = 0; }\n" };
	uint8_t *b = malloc(len + 1);

	for (size_t i = 0; i < len;) {
		const char *w = words[randombytes_uniform(7)];

		for (; *w && i < len; w++)
			b[i++] = (uint8_t)*w;
	}
	return b;
}

static ssize_t seal_of(const struct keys *k, const uint8_t *c, size_t len,
		       uint8_t addr[32], uint8_t **blk)
{
	*blk = malloc(seal_bound(len));
	seal_addr(k, c, len, addr);
	return seal_block(ctx, k, addr, c, len, *blk, seal_bound(len));
}

static void round_trip_of(size_t len, int text, int want_comp)
{
	uint8_t *c = text ? text_like(len) : malloc(len + 1), *blk, addr[32];
	uint8_t *back = malloc(len + 1);
	struct seal_info info;
	ssize_t n, m;

	if (!text)
		randombytes_buf(c, len);
	n = seal_of(k1, c, len, addr, &blk);
	assert_true(n >= (ssize_t)SEAL_OVERHEAD_BYTES);
	assert_int_equal(seal_peek(blk, (size_t)n, &info), 0);
	assert_int_equal(info.compression, want_comp ? SEAL_COMP_ZSTD : SEAL_COMP_NONE);
	assert_int_equal(info.plain_len, len);
	m = seal_open(ctx, k1, addr, blk, (size_t)n, back, len + 1);
	assert_int_equal(m, (ssize_t)len);
	assert_memory_equal(back, c, len);
	free(c);
	free(back);
	free(blk);
}

static void round_trips_empty_tiny_random_and_text(void **state)
{
	(void)state;
	round_trip_of(0, 0, 0);
	round_trip_of(1, 0, 0);
	round_trip_of(262144, 0, 0);      /* incompressible: stored raw */
	round_trip_of(262144, 1, 1);      /* text: compressed */
	round_trip_of(1 << 20, 1, 1);
}

/* Compression of a large chunk is decided by a sample from four places:
 * half random, half zeros compresses; random with compressible bytes only
 * between the sampled places is stored raw (the sample said no). */
static void large_chunks_are_judged_by_a_sample(void **state)
{
	size_t len = 262144;
	uint8_t *c = malloc(len), *blk, *back = malloc(len), addr[32];
	struct seal_info info;
	ssize_t n;

	(void)state;
	randombytes_buf(c, len);
	memset(c + len / 2, 0, len / 2);
	n = seal_of(k1, c, len, addr, &blk);
	assert_int_equal(seal_peek(blk, (size_t)n, &info), 0);
	assert_int_equal(info.compression, SEAL_COMP_ZSTD);
	assert_true((size_t)n < len / 2 + 4096);
	assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n, back, len), (ssize_t)len);
	assert_memory_equal(back, c, len);
	free(blk);

	randombytes_buf(c, len);
	memset(c + 8192, 0, 40960);       /* between the samples at 0 and 64 KiB */
	n = seal_of(k1, c, len, addr, &blk);
	assert_int_equal(seal_peek(blk, (size_t)n, &info), 0);
	assert_int_equal(info.compression, SEAL_COMP_NONE);
	assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n, back, len), (ssize_t)len);
	assert_memory_equal(back, c, len);
	free(blk);
	free(c);
	free(back);
}

static void every_bit_flip_fails(void **state)
{
	uint8_t c[200], *blk, addr[32], out[256];
	ssize_t n;

	(void)state;
	randombytes_buf(c, sizeof(c));
	n = seal_of(k1, c, sizeof(c), addr, &blk);
	for (size_t bit = 0; bit < (size_t)n * 8; bit++) {
		ssize_t r;

		blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = seal_open(ctx, k1, addr, blk, (size_t)n, out, sizeof(out));
		blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_true(r < 0);
		/* header structure -> EPROTO/ENOTSUP; key check -> EKEYREJECTED;
		 * nonce, ciphertext, tag -> EBADMSG */
		if (bit / 8 >= 16)
			assert_int_equal(r, -EBADMSG);
		else if (bit / 8 >= 12)
			assert_int_equal(r, -EKEYREJECTED);
		else
			assert_true(r == -EPROTO || r == -ENOTSUP || r == -EBADMSG);
	}
	assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n, out, sizeof(out)),
			 (ssize_t)sizeof(c));
	free(blk);
}

static void random_flips_in_a_large_compressed_block_fail(void **state)
{
	size_t len = 262144;
	uint8_t *c = text_like(len), *blk, addr[32], *out = malloc(len);
	ssize_t n = seal_of(k1, c, len, addr, &blk);

	(void)state;
	for (int i = 0; i < 300; i++) {
		size_t bit = 16 * 8 + randombytes_uniform((uint32_t)(n - 16) * 8);

		blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n, out, len), -EBADMSG);
		blk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(c);
	free(out);
	free(blk);
}

static void another_address_or_key_or_truncation_fails_distinctly(void **state)
{
	uint8_t c[5000], *blk, addr[32], other[32], out[5000];
	ssize_t n;

	(void)state;
	randombytes_buf(c, sizeof(c));
	n = seal_of(k1, c, sizeof(c), addr, &blk);
	memcpy(other, addr, 32);
	other[31] ^= 1;
	assert_int_equal(seal_open(ctx, k1, other, blk, (size_t)n, out, sizeof(out)), -EBADMSG);
	assert_int_equal(seal_open(ctx, k2, addr, blk, (size_t)n, out, sizeof(out)), -EKEYREJECTED);
	assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n - 1, out, sizeof(out)), -EPROTO);
	assert_int_equal(seal_open(ctx, k1, addr, blk, 10, out, sizeof(out)), -EPROTO);
	assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n, out, 100), -ENOBUFS);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0);    /* zeroed on failure */
	blk[4] = 9;
	assert_int_equal(seal_open(ctx, k1, addr, blk, (size_t)n, out, sizeof(out)), -ENOTSUP);
	free(blk);
	assert_int_equal(seal_block(ctx, k1, addr, c, sizeof(c), out, 100), -ENOBUFS);
}

static void sealing_twice_differs_and_both_open(void **state)
{
	uint8_t c[3000], *b1, *b2, a1[32], a2[32], out[3000];
	ssize_t n1, n2;

	(void)state;
	randombytes_buf(c, sizeof(c));
	n1 = seal_of(k1, c, sizeof(c), a1, &b1);
	n2 = seal_of(k1, c, sizeof(c), a2, &b2);
	assert_memory_equal(a1, a2, 32);          /* same chunk, same address */
	assert_int_equal(n1, n2);
	assert_memory_not_equal(b1, b2, (size_t)n1);
	assert_int_equal(seal_open(ctx, k1, a1, b1, (size_t)n1, out, sizeof(out)), (ssize_t)sizeof(c));
	assert_int_equal(seal_open(ctx, k1, a1, b2, (size_t)n2, out, sizeof(out)), (ssize_t)sizeof(c));
	seal_addr(k2, c, sizeof(c), a2);
	assert_memory_not_equal(a1, a2, 32);      /* other volume, other address */
	free(b1);
	free(b2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trips_empty_tiny_random_and_text),
		cmocka_unit_test(large_chunks_are_judged_by_a_sample),
		cmocka_unit_test(every_bit_flip_fails),
		cmocka_unit_test(random_flips_in_a_large_compressed_block_fail),
		cmocka_unit_test(another_address_or_key_or_truncation_fails_distinctly),
		cmocka_unit_test(sealing_twice_differs_and_both_open),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
