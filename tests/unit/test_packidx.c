/*
 * test_packidx: the record list file of a pack (daemon/packidx.h) against
 * what its comment promises: the documented layout, lists of blocks and
 * tombstones that come back exactly as written, a checksum that lets no
 * damaged byte through, a file that names another pack, size or length
 * refused, every entry rule kept on its own (entries that break one rule
 * under a right checksum are refused), nothing called back unless the
 * whole file checks, and a callback that can stop the walk.
 *
 * Addresses, lengths and kill points come from a seed (printed; replay with
 * CAIRNFS_TEST_SEED).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <xxhash.h>

#include "cluster/proto.h"
#include "daemon/pack.h"
#include "daemon/packidx.h"
#include "tests/unit/testrng.h"

/* Set a file's trailer as packidx.h defines it (XXH3-128 of everything
 * before it, canonical), so a test can change one field and still get past
 * the checksum to the check of that field. Worked out here, not taken from
 * packidx.c, so a change to what is on disk shows up as a failure. */
static void reseal(uint8_t *buf, size_t len)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len - PACKIDX_TRAILER));
	memcpy(buf + len - PACKIDX_TRAILER, c.digest, PACKIDX_TRAILER);
}

/* Where entry i of a file starts. */
static uint8_t *entry_at(uint8_t *buf, size_t i)
{
	return buf + PACKIDX_HEADER + i * PACKIDX_ENTRY;
}

/* What the decoder passed to its callback. */
#define MAX_SEEN 64

struct seen {
	const uint8_t *buf;      /* the file decoded, len bytes */
	size_t len;
	struct pack_rec r[MAX_SEEN];
	struct pack_pos kill[MAX_SEEN];
	size_t n;
	size_t stop_at;          /* return stop_rc at this call (1-based); 0 never */
	int stop_rc;
};

static int collect(void *arg, const struct pack_rec *r)
{
	struct seen *s = arg;

	assert_true(s->n < MAX_SEEN);
	s->r[s->n] = *r;
	s->kill[s->n] = (struct pack_pos){ 0, 0 };
	if (r->type == PACK_TOMBSTONE) {
		/* the kill point lies in the file itself, all 8 bytes of it */
		assert_non_null(r->data);
		assert_true((uintptr_t)r->data >= (uintptr_t)s->buf);
		assert_true((uintptr_t)r->data + PACK_TOMB_BYTES <=
			    (uintptr_t)s->buf + s->len);
		s->kill[s->n] = pack_tomb_decode(r->data);
	} else {
		assert_null(r->data);
	}
	s->n++;
	return s->n == s->stop_at ? s->stop_rc : 0;
}

static int decode(const uint8_t *buf, size_t len, uint32_t id,
		  uint64_t pack_size, struct seen *s)
{
	s->buf = buf;
	s->len = len;
	s->n = 0;
	return packidx_decode(buf, len, id, pack_size, collect, s);
}

/* Seen record j is entry i of the list, every field of it. */
static void check_seen(const struct packidx_ent *e, const struct seen *s,
		       size_t j)
{
	const struct pack_rec *r = &s->r[j];

	assert_int_equal(r->type, e->type);
	assert_memory_equal(r->addr, e->addr, PACK_ADDR_BYTES);
	assert_int_equal(r->off, e->off);
	assert_int_equal(r->len, e->len);
	if (e->type == PACK_TOMBSTONE) {
		assert_int_equal(s->kill[j].pack, e->kill.pack);
		assert_int_equal(s->kill[j].off, e->kill.off);
	}
}

/* A block length: mostly small, sometimes on an alignment edge, now and
 * then the largest a pack holds. */
static uint32_t rand_block_len(void)
{
	static const uint32_t edges[] = { 0, 1, 15, 16, 17, 4096,
					  PACK_MAX_BLOCK - 1 };

	switch (rng() % 4) {
	case 0:
		return edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return (uint32_t)(rng() % (1u << 20));
	default:
		return (uint32_t)(rng() % 200);
	}
}

/*
 * A random list of n records laid out as a pack holds them: back to back
 * from the file header on (now and then a gap, where a damaged header was
 * passed over), and the pack ending in the last record's padding or at its
 * end. Returns the pack size.
 */
static uint64_t rand_list(struct packidx_ent *e, size_t n)
{
	uint64_t off = PACK_FILE_HEADER, pad;

	for (size_t i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		fill(e[i].addr, PACK_ADDR_BYTES);
		if (rng() % 3 == 0) {
			e[i].type = PACK_TOMBSTONE;
			e[i].len = PACK_TOMB_BYTES;
			e[i].kill.pack = (uint32_t)rng();
			e[i].kill.off = (uint32_t)rng();
		} else {
			e[i].type = PACK_BLOCK;
			e[i].len = rand_block_len();
		}
		if (rng() % 8 == 0)
			off += PACK_ALIGN * (1 + rng() % 4);
		e[i].off = (uint32_t)off;
		off += pack_rec_size(e[i].len);
		assert_true(off <= UINT32_MAX);
	}
	if (!n)
		return PACK_FILE_HEADER;
	pad = pack_rec_size(e[n - 1].len) - PACK_REC_HEADER - e[n - 1].len;
	return off - rng() % (pad + 1);
}

/* Encode into a buffer with guard bytes after it; check encode wrote
 * exactly packidx_size(n) bytes. The caller frees. */
static uint8_t *encode(uint32_t id, uint64_t pack_size,
		       const struct packidx_ent *e, size_t n, size_t *len)
{
	size_t size = packidx_size(n);
	uint8_t *buf;

	assert_int_not_equal(size, 0);
	buf = malloc(size + 64);
	assert_non_null(buf);
	memset(buf, 0xEE, size + 64);
	packidx_encode(buf, id, pack_size, e, n);
	for (size_t i = size; i < size + 64; i++)
		assert_int_equal(buf[i], 0xEE);
	*len = size;
	return buf;
}

/* The standard list: block, tombstone, block (3 entries, 204 bytes),
 * back to back, the pack ending where the last record's bytes end. */
#define STD_N 3
#define STD_ID 0x0A0B0C0Du

static uint64_t std_list(struct packidx_ent e[STD_N])
{
	memset(e, 0, STD_N * sizeof(*e));
	for (size_t i = 0; i < STD_N; i++)
		fill(e[i].addr, PACK_ADDR_BYTES);
	e[0].type = PACK_BLOCK;
	e[0].len = 100;
	e[0].off = PACK_FILE_HEADER;
	e[1].type = PACK_TOMBSTONE;
	e[1].len = PACK_TOMB_BYTES;
	e[1].off = e[0].off + (uint32_t)pack_rec_size(e[0].len);
	e[1].kill = (struct pack_pos){ 0x11223344u, 0x55667788u };
	e[2].type = PACK_BLOCK;
	e[2].len = 37;
	e[2].off = e[1].off + (uint32_t)pack_rec_size(e[1].len);
	return (uint64_t)e[2].off + PACK_REC_HEADER + e[2].len;
}

/* --- tests ---------------------------------------------------------------- */

static void test_size_is_header_entries_and_trailer(void **state)
{
	assert_int_equal(PACKIDX_HEADER, 32);
	assert_int_equal(PACKIDX_ENTRY, 52);
	assert_int_equal(PACKIDX_TRAILER, 16);
	assert_int_equal(packidx_size(0), 48);
	assert_int_equal(packidx_size(1), 100);
	assert_int_equal(packidx_size(1000), 48 + 52000);
	assert_int_equal(packidx_size(UINT32_MAX),
			 48 + (size_t)52 * UINT32_MAX);
	/* no wrap: the largest n that fits, and one more is 0 */
	size_t max = (SIZE_MAX - 48) / 52;
	assert_int_equal(packidx_size(max), 48 + max * 52);
	assert_int_equal(packidx_size(max + 1), 0);
	assert_int_equal(packidx_size(SIZE_MAX), 0);
}

/* The bytes on disk are the ones packidx.h documents, so another reader
 * (or a later version) can rely on them; a block's kill point is written
 * as zero whatever the entry holds, so a list has one encoding. */
static void test_encode_writes_the_documented_layout(void **state)
{
	struct packidx_ent e[STD_N], e2[STD_N];
	uint64_t pack_size = std_list(e);
	uint8_t *buf, *buf2, sum[16];
	size_t len, len2;
	XXH128_canonical_t c;

	buf = encode(STD_ID, 0x0102030405060708ull, e, STD_N, &len);
	assert_int_equal(len, packidx_size(STD_N));
	assert_memory_equal(buf, "CRPI", 4);
	assert_int_equal(proto_get_u32(buf + 4), 1);
	assert_int_equal(proto_get_u32(buf + 8), STD_ID);
	assert_int_equal(proto_get_u32(buf + 12), STD_N);
	assert_int_equal(proto_get_u64(buf + 16), 0x0102030405060708ull);
	assert_int_equal(proto_get_u64(buf + 24), 0);
	/* little-endian, byte by byte */
	assert_memory_equal(buf + 8, "\x0D\x0C\x0B\x0A", 4);
	assert_memory_equal(buf + 16, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	for (size_t i = 0; i < STD_N; i++) {
		uint8_t *p = entry_at(buf, i);

		assert_memory_equal(p, e[i].addr, PACK_ADDR_BYTES);
		assert_int_equal(proto_get_u32(p + 32), e[i].off);
		assert_int_equal(proto_get_u32(p + 36), e[i].len);
		assert_int_equal(p[40], e[i].type);
		assert_true(!p[41] && !p[42] && !p[43]);
		if (e[i].type == PACK_TOMBSTONE) {
			uint8_t tomb[PACK_TOMB_BYTES];

			/* stored as the tombstone itself stores it */
			pack_tomb_encode(tomb, e[i].kill);
			assert_memory_equal(p + 44, tomb, PACK_TOMB_BYTES);
		} else {
			assert_int_equal(proto_get_u64(p + 44), 0);
		}
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, len - 16));
	assert_memory_equal(buf + len - 16, c.digest, 16);
	/* reseal is the format's checksum: it leaves a good file alone */
	memcpy(sum, buf + len - 16, 16);
	reseal(buf, len);
	assert_memory_equal(buf + len - 16, sum, 16);
	free(buf);

	/* a kill point in a block's entry is not written */
	memcpy(e2, e, sizeof(e2));
	e2[0].kill = (struct pack_pos){ 5, 6 };
	e2[2].kill = (struct pack_pos){ UINT32_MAX, UINT32_MAX };
	buf = encode(STD_ID, pack_size, e, STD_N, &len);
	buf2 = encode(STD_ID, pack_size, e2, STD_N, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf);
	free(buf2);

	/* an empty list is a header and a trailer */
	buf = encode(STD_ID, PACK_FILE_HEADER, NULL, 0, &len);
	assert_int_equal(len, 48);
	assert_int_equal(proto_get_u32(buf + 12), 0);
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, 32));
	assert_memory_equal(buf + 32, c.digest, 16);
	free(buf);
}

/* Random lists of blocks and tombstones come back whole, in order, each
 * record once: type, address, offset, length and a tombstone's kill point;
 * n = 0 too. */
static void test_random_lists_round_trip(void **state)
{
	struct packidx_ent e[MAX_SEEN];
	struct seen s = { .n = 0 };

	for (int iter = 0; iter < 300; iter++) {
		size_t n = iter < 5 ? 0 : (size_t)(rng() % (MAX_SEEN + 1));
		uint64_t pack_size = rand_list(e, n);
		uint32_t id = (uint32_t)rng();
		size_t len;
		uint8_t *buf = encode(id, pack_size, e, n, &len);

		assert_int_equal(len, packidx_size(n));
		assert_int_equal(decode(buf, len, id, pack_size, &s), 0);
		assert_int_equal(s.n, n);
		for (size_t i = 0; i < n; i++)
			check_seen(&e[i], &s, i);
		free(buf);
	}

	/* the same with pack_size at each end of the last record's padding */
	for (int iter = 0; iter < 50; iter++) {
		size_t n = 1 + (size_t)(rng() % 8);
		uint64_t pack_size;
		size_t len;
		uint8_t *buf;

		rand_list(e, n);
		for (int end = 0; end < 2; end++) {
			pack_size = end ? e[n - 1].off + pack_rec_size(e[n - 1].len)
					: (uint64_t)e[n - 1].off + PACK_REC_HEADER +
						  e[n - 1].len;
			buf = encode(9, pack_size, e, n, &len);
			assert_int_equal(decode(buf, len, 9, pack_size, &s), 0);
			assert_int_equal(s.n, n);
			for (size_t i = 0; i < n; i++)
				check_seen(&e[i], &s, i);
			free(buf);
		}
	}
}

/* The checksum covers every byte before it, and the trailer is the
 * checksum: no single damaged byte anywhere gets a file through, and
 * nothing is called back. */
static void test_every_damaged_byte_is_refused(void **state)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xFF };
	struct packidx_ent e[STD_N];
	uint64_t pack_size = std_list(e);
	struct seen s = { .n = 0 };

	for (size_t n = 0; n <= STD_N; n += STD_N) {
		size_t len;
		uint8_t *buf = encode(STD_ID, pack_size, e, n, &len);

		assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), 0);
		assert_int_equal(s.n, n);
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t m = 0; m < sizeof(masks); m++) {
				int rc;

				buf[pos] ^= masks[m];
				rc = decode(buf, len, STD_ID, pack_size, &s);
				if (rc != -EBADMSG || s.n)
					fail_msg("n=%zu byte %zu ^ 0x%02x: rc %d, %zu calls",
						 n, pos, masks[m], rc, s.n);
				buf[pos] ^= masks[m];
			}
		}
		/* put back, it reads again */
		assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), 0);
		assert_int_equal(s.n, n);
		free(buf);
	}
}

/* A file written for another pack, another size of this pack, or cut or
 * grown by a byte is stale or torn: refused as a whole. */
static void test_another_pack_size_or_length_is_refused(void **state)
{
	struct packidx_ent e[STD_N];
	uint64_t pack_size = std_list(e) + 5;
	struct seen s = { .n = 0 };
	size_t len;
	uint8_t *buf = encode(STD_ID, pack_size, e, STD_N, &len), *big;

	assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), 0);
	assert_int_equal(s.n, STD_N);

	static const uint32_t ids[] = { STD_ID + 1, STD_ID - 1, STD_ID ^ 0x80000000u,
					0, UINT32_MAX };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(decode(buf, len, ids[i], pack_size, &s), -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	/* larger (the pack grew since) or smaller (it was cut) alike, even
	 * where every record would still fit */
	static const int64_t deltas[] = { 1, -1, 16, -5, 4096,
					  (int64_t)1 << 32 };
	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		assert_int_equal(decode(buf, len, STD_ID,
					pack_size + (uint64_t)deltas[i], &s),
				 -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	assert_int_equal(decode(buf, len, STD_ID, 0, &s), -EBADMSG);
	assert_int_equal(decode(buf, len, STD_ID, UINT64_MAX, &s), -EBADMSG);

	/* cut short: by a byte, by a whole entry, down to nothing */
	const size_t cuts[] = { 1, 16, PACKIDX_ENTRY, len - 48,
				       len - 47, len - 32, len - 1, len };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		assert_int_equal(decode(buf, len - cuts[i], STD_ID, pack_size, &s),
				 -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	/* grown: a byte more, or a whole entry's worth */
	big = malloc(len + PACKIDX_ENTRY);
	assert_non_null(big);
	memcpy(big, buf, len);
	memset(big + len, 0, PACKIDX_ENTRY);
	assert_int_equal(decode(big, len + 1, STD_ID, pack_size, &s), -EBADMSG);
	assert_int_equal(s.n, 0);
	assert_int_equal(decode(big, len + PACKIDX_ENTRY, STD_ID, pack_size, &s),
			 -EBADMSG);
	assert_int_equal(s.n, 0);
	/* a count that disagrees with the length, resealed: refused by the
	 * count, not the checksum */
	for (uint32_t n = 0; n < 8; n++) {
		if (n == STD_N)
			continue;
		memcpy(big, buf, len);
		proto_put_u32(big + 12, n);
		reseal(big, len);
		assert_int_equal(decode(big, len, STD_ID, pack_size, &s), -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	proto_put_u32(big + 12, UINT32_MAX);
	reseal(big, len);
	assert_int_equal(decode(big, len, STD_ID, pack_size, &s), -EBADMSG);
	free(big);
	free(buf);
}

/* The header's fields are checked on their own, not only through the
 * checksum: these files carry a right checksum over a wrong field. */
static void test_bad_header_fields_are_refused(void **state)
{
	struct packidx_ent e[STD_N];
	uint64_t pack_size = std_list(e);
	struct seen s = { .n = 0 };
	size_t len;
	uint8_t *good = encode(STD_ID, pack_size, e, STD_N, &len);
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	for (int pos = 0; pos < 4; pos++) {
		memcpy(buf, good, len);
		buf[pos] ^= 0x20;
		reseal(buf, len);
		assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	/* a pack's own header is not an index file's */
	memcpy(buf, good, len);
	memcpy(buf, "CRPK", 4);
	reseal(buf, len);
	assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), -EBADMSG);
	static const uint32_t versions[] = { 0, 2, 0x01000000u, UINT32_MAX };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		memcpy(buf, good, len);
		proto_put_u32(buf + 4, versions[i]);
		reseal(buf, len);
		assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	/* the reserved 8 bytes stay zero, so a later version can use them */
	for (int pos = 24; pos < 32; pos++) {
		memcpy(buf, good, len);
		buf[pos] = 1;
		reseal(buf, len);
		assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	/* id and size resealed to another pack's: refused for that pack
	 * here, read for it there */
	memcpy(buf, good, len);
	proto_put_u32(buf + 8, STD_ID + 1);
	proto_put_u64(buf + 16, pack_size + 16);
	reseal(buf, len);
	assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), -EBADMSG);
	assert_int_equal(decode(buf, len, STD_ID + 1, pack_size, &s), -EBADMSG);
	assert_int_equal(decode(buf, len, STD_ID, pack_size + 16, &s), -EBADMSG);
	assert_int_equal(decode(buf, len, STD_ID + 1, pack_size + 16, &s), 0);
	assert_int_equal(s.n, STD_N);
	free(buf);
	free(good);
}

/*
 * Decode the list e (n entries, pack_size) encoded as it is: `want` 0 and
 * every record back, or -EBADMSG and no call. The bad entry is placed
 * after good ones, so a decoder that called back before it looked at
 * every entry is caught.
 */
static void expect_list(const struct packidx_ent *e, size_t n,
			uint64_t pack_size, int want, const char *what)
{
	struct seen s = { .n = 0 };
	size_t len;
	uint8_t *buf = encode(STD_ID, pack_size, e, n, &len);
	int rc = decode(buf, len, STD_ID, pack_size, &s);

	if (rc != want || (want == 0 ? s.n != n : s.n != 0))
		fail_msg("%s: rc %d (want %d), %zu calls", what, rc, want, s.n);
	free(buf);
}

/* Each entry rule, kept on its own: every list here carries a right
 * checksum (packidx_encode does not check what it writes) and breaks one
 * rule, next to a control that keeps it. */
static void test_bad_entries_are_refused(void **state)
{
	struct packidx_ent base[STD_N], e[STD_N];
	uint64_t pack_size = std_list(base);
	const size_t L = STD_N - 1;   /* the entry made bad */
	uint64_t end_last = (uint64_t)base[L].off + PACK_REC_HEADER + base[L].len;

	expect_list(base, STD_N, pack_size, 0, "control");

	/* offsets: not inside the pack's file header */
	memcpy(e, base, sizeof(e));
	e[0].off = 0;
	expect_list(e, 1, pack_size, -EBADMSG, "offset 0");
	e[0].off = PACK_FILE_HEADER - PACK_ALIGN;
	expect_list(e, 1, pack_size, -EBADMSG, "offset in the file header");
	e[0].off = PACK_FILE_HEADER;
	expect_list(e, 1, pack_size, 0, "offset just after the file header");

	/* on PACK_ALIGN boundaries: the last record moved by less than that,
	 * room made after the one before so it overlaps nothing */
	for (uint32_t d = 1; d < PACK_ALIGN; d++) {
		memcpy(e, base, sizeof(e));
		e[L].off += PACK_ALIGN + d;
		expect_list(e, STD_N, pack_size + PACK_ALIGN + d, -EBADMSG,
			    "misaligned offset");
	}
	memcpy(e, base, sizeof(e));
	e[L].off += PACK_ALIGN;
	expect_list(e, STD_N, pack_size + PACK_ALIGN, 0, "gap of PACK_ALIGN");
	/* the first record misaligned too */
	memcpy(e, base, sizeof(e));
	e[0].off = PACK_FILE_HEADER + 8;
	expect_list(e, 1, pack_size, -EBADMSG, "first record misaligned");

	/* apart: the last record starting inside the one before (the
	 * tombstone's record is 64 + 8 bytes and 8 of padding), in its last
	 * aligned 16 bytes, in its header, or where it starts */
	memcpy(e, base, sizeof(e));
	e[L].off = base[L - 1].off + (uint32_t)pack_rec_size(base[L - 1].len) -
		   PACK_ALIGN;
	expect_list(e, STD_N, pack_size, -EBADMSG, "overlaps the end before");
	e[L].off = base[L - 1].off + PACK_ALIGN;
	expect_list(e, STD_N, pack_size, -EBADMSG, "overlaps the record before");
	e[L].off = base[L - 1].off;
	expect_list(e, STD_N, pack_size, -EBADMSG, "same offset as the one before");

	/* in order: a record before the one listed ahead of it */
	memcpy(e, base, sizeof(e));
	e[L].off = base[0].off;
	expect_list(e, STD_N, pack_size, -EBADMSG, "back to the first offset");
	memcpy(e, base, sizeof(e));
	e[0] = base[1];
	e[1] = base[0];
	expect_list(e, 2, pack_size, -EBADMSG, "two records swapped");

	/* inside the pack: its header and bytes up to pack_size, only the
	 * padding may be cut */
	expect_list(base, STD_N, end_last, 0, "ends at pack_size");
	expect_list(base, STD_N, end_last - 1, -EBADMSG, "a byte past pack_size");
	expect_list(base, STD_N, base[L].off + PACK_REC_HEADER, -EBADMSG,
		    "only the header inside");
	expect_list(base, STD_N, base[L].off, -EBADMSG, "starts at pack_size");
	/* a middle record past the end (the last one then lies past it too) */
	expect_list(base, STD_N, (uint64_t)base[1].off + PACK_REC_HEADER + 7,
		    -EBADMSG, "tombstone a byte past pack_size");
	/* offsets near the top of u32 do not wrap */
	memcpy(e, base, sizeof(e));
	e[L].off = UINT32_MAX - PACK_ALIGN + 1;
	expect_list(e, STD_N, UINT32_MAX, -EBADMSG, "offset near UINT32_MAX");
	expect_list(e, STD_N, (uint64_t)e[L].off + PACK_REC_HEADER + e[L].len, 0,
		    "offset near UINT32_MAX, pack big enough");

	/* types the format does not have (encode writes the byte as given) */
	static const unsigned types[] = { 0, 3, 0x81, 0xFF };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memcpy(e, base, sizeof(e));
		e[L].type = (enum pack_type)types[i];
		expect_list(e, STD_N, pack_size, -EBADMSG, "unknown type");
		/* with a tombstone's length too */
		e[L].len = PACK_TOMB_BYTES;
		expect_list(e, STD_N, pack_size, -EBADMSG, "unknown type, len 8");
	}

	/* a tombstone has its 8 bytes, no more, no less; the pack big
	 * enough that the length alone decides */
	static const uint32_t tlens[] = { 0, 1, PACK_TOMB_BYTES - 1,
					  PACK_TOMB_BYTES + 1, 16, 37 };
	for (size_t i = 0; i < sizeof(tlens) / sizeof(tlens[0]); i++) {
		memcpy(e, base, sizeof(e));
		e[L].type = PACK_TOMBSTONE;
		e[L].len = tlens[i];
		expect_list(e, STD_N, pack_size + 64, -EBADMSG, "tombstone length");
	}
	memcpy(e, base, sizeof(e));
	e[L].type = PACK_TOMBSTONE;
	e[L].len = PACK_TOMB_BYTES;
	expect_list(e, STD_N, pack_size + 64, 0, "tombstone of 8 bytes");

	/* the largest block a pack holds fits; one byte more is refused, the
	 * pack big enough that the length alone decides */
	uint64_t huge = (uint64_t)base[L].off + PACK_REC_HEADER + UINT32_MAX + 1;
	static const uint32_t blens[] = { PACK_MAX_BLOCK, PACK_MAX_BLOCK + 1,
					  UINT32_MAX };
	for (size_t i = 0; i < sizeof(blens) / sizeof(blens[0]); i++) {
		memcpy(e, base, sizeof(e));
		e[L].len = blens[i];
		expect_list(e, STD_N, huge, -EBADMSG, "block length");
	}
	memcpy(e, base, sizeof(e));
	e[L].len = PACK_MAX_BLOCK - 1;
	expect_list(e, STD_N, huge, 0, "largest block");
	expect_list(e, STD_N, (uint64_t)e[L].off + PACK_REC_HEADER + e[L].len, 0,
		    "largest block, pack ends with it");
}

/* The fields encode always writes as zero (pad bytes, a block's kill
 * point) are checked too: each byte set, the file resealed. */
static void test_nonzero_reserved_entry_bytes_are_refused(void **state)
{
	struct packidx_ent e[STD_N];
	uint64_t pack_size = std_list(e);
	struct seen s = { .n = 0 };
	size_t len;
	uint8_t *good = encode(STD_ID, pack_size, e, STD_N, &len);
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < STD_N; i++) {
		/* the 3 bytes after the type, any entry */
		for (int pos = 41; pos < 44; pos++) {
			for (unsigned v = 1; v < 0x100; v <<= 1) {
				memcpy(buf, good, len);
				entry_at(buf, i)[pos] = (uint8_t)v;
				reseal(buf, len);
				if (decode(buf, len, STD_ID, pack_size, &s) !=
				    -EBADMSG || s.n)
					fail_msg("entry %zu pad byte %d = 0x%02x taken",
						 i, pos, v);
			}
		}
		if (e[i].type != PACK_BLOCK)
			continue;
		/* a block kills nothing: its 8 kill point bytes stay zero */
		for (int pos = 44; pos < 52; pos++) {
			memcpy(buf, good, len);
			entry_at(buf, i)[pos] = 0x80;
			reseal(buf, len);
			if (decode(buf, len, STD_ID, pack_size, &s) != -EBADMSG ||
			    s.n)
				fail_msg("block entry %zu kill byte %d taken", i,
					 pos);
		}
	}
	/* a tombstone's kill point is any 8 bytes */
	memcpy(buf, good, len);
	memset(entry_at(buf, 1) + 44, 0xFF, 8);
	reseal(buf, len);
	assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), 0);
	assert_int_equal(s.n, STD_N);
	assert_int_equal(s.kill[1].pack, UINT32_MAX);
	assert_int_equal(s.kill[1].off, UINT32_MAX);
	memset(entry_at(buf, 1) + 44, 0, 8);
	reseal(buf, len);
	assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), 0);
	assert_int_equal(s.kill[1].pack, 0);
	assert_int_equal(s.kill[1].off, 0);
	free(buf);
	free(good);
}

/* A callback that returns nonzero stops the calls there, and its value is
 * what decode returns; the records up to it were the right ones. */
static void test_callback_stops_the_walk(void **state)
{
	struct packidx_ent e[MAX_SEEN];
	size_t n = 20, len;
	uint64_t pack_size = rand_list(e, n);
	uint8_t *buf = encode(STD_ID, pack_size, e, n, &len);
	static const int rcs[] = { 42, -EIO, 1, -1, INT32_MAX, INT32_MIN };
	static const size_t at[] = { 1, 2, 10, 19, 20 };

	for (size_t k = 0; k < sizeof(rcs) / sizeof(rcs[0]); k++) {
		for (size_t a = 0; a < sizeof(at) / sizeof(at[0]); a++) {
			struct seen s = { .n = 0, .stop_at = at[a],
					  .stop_rc = rcs[k] };

			assert_int_equal(decode(buf, len, STD_ID, pack_size, &s),
					 rcs[k]);
			assert_int_equal(s.n, at[a]);
			for (size_t i = 0; i < s.n; i++)
				check_seen(&e[i], &s, i);
		}
	}
	/* and the file still reads whole afterwards: nothing was changed */
	struct seen s = { .n = 0 };
	assert_int_equal(decode(buf, len, STD_ID, pack_size, &s), 0);
	assert_int_equal(s.n, n);
	free(buf);
}

int main(void)
{
	const char *env = getenv("CAIRNFS_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_is_header_entries_and_trailer),
		cmocka_unit_test(test_encode_writes_the_documented_layout),
		cmocka_unit_test(test_random_lists_round_trip),
		cmocka_unit_test(test_every_damaged_byte_is_refused),
		cmocka_unit_test(test_another_pack_size_or_length_is_refused),
		cmocka_unit_test(test_bad_header_fields_are_refused),
		cmocka_unit_test(test_bad_entries_are_refused),
		cmocka_unit_test(test_nonzero_reserved_entry_bytes_are_refused),
		cmocka_unit_test(test_callback_stops_the_walk),
	};

	printf("# CAIRNFS_TEST_SEED=%" PRIu64 "\n", seed);
	rng_state = seed;
	return cmocka_run_group_tests_name("packidx", tests, NULL, NULL);
}
