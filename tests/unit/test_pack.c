/*
 * test_pack: the pack file format (daemon/pack.h) against what its comment
 * promises: headers that encode and decode to the same record, every header
 * byte guarded, block (and tombstone) bytes checked only by verify,
 * tombstone positions that read back as written, and a walk of a whole
 * pack that reports each record once, in order, and finds its way past
 * damage to the records after it.
 *
 * Addresses and block bytes come from a seed (printed; replay with
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
#include "tests/unit/testrng.h"

/* The block sum as pack.h defines it: XXH3-128 of the bytes seeded with
 * the XXH3-64 of the address, canonical. Worked out here, not taken from
 * pack.c, so a change to what is on disk shows up as a failure. */
static void data_sum(const uint8_t *addr, const void *data, uint32_t len,
		     uint8_t out[16])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_withSeed(
		len ? data : "", len, XXH3_64bits(addr, PACK_ADDR_BYTES)));
	memcpy(out, c.digest, 16);
}

/* Set a header's own checksum as pack.h defines it (XXH32 of the 64 bytes
 * with bytes 12..15 zero), so a test can change one field and still get
 * past the checksum to the check of that field. */
static void reseal(uint8_t hdr[PACK_REC_HEADER])
{
	proto_put_u32(hdr + 12, 0);
	proto_put_u32(hdr + 12, XXH32(hdr, PACK_REC_HEADER, 0));
}

/* A pack being built in memory, the way the store appends to one. */
struct builder {
	uint8_t *buf;
	size_t len, cap;
};

static void b_init(struct builder *b, uint32_t id)
{
	b->cap = 4096;
	b->buf = malloc(b->cap);
	assert_non_null(b->buf);
	pack_file_header(b->buf, id);
	b->len = PACK_FILE_HEADER;
}

static void b_reserve(struct builder *b, size_t more)
{
	while (b->len + more > b->cap) {
		uint8_t *p = realloc(b->buf, b->cap * 2);

		assert_non_null(p);
		b->buf = p;
		b->cap *= 2;
	}
}

/* Append a record (random address) and return its offset. */
static size_t b_add(struct builder *b, enum pack_type type, const void *data,
		    uint32_t len, uint8_t addr[PACK_ADDR_BYTES])
{
	size_t off = b->len, size = (size_t)pack_rec_size(len);

	fill(addr, PACK_ADDR_BYTES);
	b_reserve(b, size);
	pack_rec_header(b->buf + off, type, addr, data, len);
	if (len)
		memcpy(b->buf + off + PACK_REC_HEADER, data, len);
	memset(b->buf + off + PACK_REC_HEADER + len, 0,
	       size - PACK_REC_HEADER - len);
	b->len += size;
	return off;
}

/* What the walk passed to its callback. */
#define MAX_SEEN 32

struct seen {
	struct pack_rec r[MAX_SEEN];
	bool verified[MAX_SEEN];
	size_t n;
	size_t stop_at;          /* return stop_rc at this call (1-based); 0 never */
	int stop_rc;
};

static int collect(void *arg, const struct pack_rec *r, bool verified)
{
	struct seen *s = arg;

	assert_true(s->n < MAX_SEEN);
	s->r[s->n] = *r;
	s->verified[s->n] = verified;
	s->n++;
	return s->n == s->stop_at ? s->stop_rc : 0;
}

/* The standard pack: blocks on both sides of each alignment edge, the
 * largest block a pack holds, and a tombstone. */
static const uint32_t SIZES[] = { 0, 1, 15, 16, 17, 4096, PACK_MAX_BLOCK - 1 };
#define N_BLOCKS (sizeof(SIZES) / sizeof(SIZES[0]))
#define N_RECS (N_BLOCKS + 1)

struct std_pack {
	struct builder b;
	size_t off[N_RECS];
	uint32_t len[N_RECS];
	enum pack_type type[N_RECS];
	uint8_t addr[N_RECS][PACK_ADDR_BYTES];
};

static void std_pack_build(struct std_pack *p)
{
	uint8_t *data = malloc(PACK_MAX_BLOCK);

	assert_non_null(data);
	b_init(&p->b, 7);
	for (size_t i = 0; i < N_RECS; i++) {
		p->type[i] = i < N_BLOCKS ? PACK_BLOCK : PACK_TOMBSTONE;
		p->len[i] = i < N_BLOCKS ? SIZES[i] : PACK_TOMB_BYTES;
		if (i < N_BLOCKS)
			fill(data, p->len[i]);
		else
			pack_tomb_encode(data, (struct pack_pos){ 7, 0x40 });
		p->off[i] = b_add(&p->b, p->type[i], data, p->len[i],
				  p->addr[i]);
	}
	free(data);
}

/* Record i of the pack came back as seen record j, whole and unchanged. */
static void check_seen(const struct std_pack *p, size_t i,
		       const struct seen *s, size_t j, bool verified)
{
	const struct pack_rec *r = &s->r[j];

	assert_int_equal(r->off, p->off[i]);
	assert_int_equal(r->type, p->type[i]);
	assert_int_equal(r->len, p->len[i]);
	assert_memory_equal(r->addr, p->addr[i], PACK_ADDR_BYTES);
	assert_ptr_equal(r->data, p->b.buf + p->off[i] + PACK_REC_HEADER);
	assert_int_equal(s->verified[j], verified);
}

static void test_rec_size_is_aligned_and_holds_the_record(void **state)
{
	for (uint32_t len = 0; len < PACK_MAX_BLOCK; len++) {
		uint64_t size = pack_rec_size(len);

		assert_int_equal(size % PACK_ALIGN, 0);
		assert_true(size >= (uint64_t)PACK_REC_HEADER + len);
		/* no more padding than alignment needs */
		assert_true(size < (uint64_t)PACK_REC_HEADER + len + PACK_ALIGN);
	}
	assert_int_equal(pack_rec_size(0), 64);
	assert_int_equal(pack_rec_size(1), 80);
	assert_int_equal(pack_rec_size(16), 80);
	assert_int_equal(pack_rec_size(17), 96);
	/* no wrap in 64 bits for any u32 length */
	assert_int_equal(pack_rec_size(UINT32_MAX), (uint64_t)UINT32_MAX + 65);
}

static void test_block_header_round_trips(void **state)
{
	static const uint32_t lens[] = { 0, 1, 15, 16, 17, 100, 4096,
					 PACK_MAX_BLOCK - 1 };
	uint8_t *buf = malloc(PACK_REC_HEADER + PACK_MAX_BLOCK + PACK_ALIGN);
	uint8_t addr[PACK_ADDR_BYTES], sum[16];

	assert_non_null(buf);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t len = lens[i];
		struct pack_rec r;

		fill(addr, sizeof(addr));
		fill(buf + PACK_REC_HEADER, len);
		pack_rec_header(buf, PACK_BLOCK, addr, buf + PACK_REC_HEADER, len);
		/* the layout pack.h documents, so other readers can rely on it */
		assert_memory_equal(buf, "CRK1", 4);
		assert_int_equal(buf[4], PACK_BLOCK);
		assert_true(!buf[5] && !buf[6] && !buf[7]);
		assert_int_equal(proto_get_u32(buf + 8), len);
		assert_memory_equal(buf + 16, addr, PACK_ADDR_BYTES);
		data_sum(addr, buf + PACK_REC_HEADER, len, sum);
		assert_memory_equal(buf + 48, sum, 16);

		/* exactly the header and bytes, padding not there yet */
		memset(&r, 0xAA, sizeof(r));
		assert_true(pack_rec_decode(buf, PACK_REC_HEADER + len, &r));
		assert_int_equal(r.type, PACK_BLOCK);
		assert_int_equal(r.len, len);
		assert_memory_equal(r.addr, addr, PACK_ADDR_BYTES);
		assert_ptr_equal(r.data, buf + PACK_REC_HEADER);
		assert_true(pack_rec_verify(buf, &r));

		/* and the same with more bytes after it */
		memset(&r, 0xAA, sizeof(r));
		assert_true(pack_rec_decode(buf, PACK_REC_HEADER + len + PACK_ALIGN,
					    &r));
		assert_int_equal(r.len, len);
		assert_true(pack_rec_verify(buf, &r));
	}
	free(buf);
}

static void test_tombstone_round_trips(void **state)
{
	uint8_t rec[PACK_REC_HEADER + PACK_TOMB_BYTES], blk[sizeof(rec)];
	uint8_t addr[PACK_ADDR_BYTES], sum[16];
	struct pack_pos at = { 0x01020304u, 0xA0B0C0D0u }, back;
	struct pack_rec r;

	fill(addr, sizeof(addr));
	pack_tomb_encode(rec + PACK_REC_HEADER, at);
	pack_rec_header(rec, PACK_TOMBSTONE, addr, rec + PACK_REC_HEADER,
			PACK_TOMB_BYTES);
	assert_int_equal(rec[4], PACK_TOMBSTONE);
	assert_int_equal(proto_get_u32(rec + 8), PACK_TOMB_BYTES);
	data_sum(addr, rec + PACK_REC_HEADER, PACK_TOMB_BYTES, sum);
	assert_memory_equal(rec + 48, sum, 16);
	memset(&r, 0xAA, sizeof(r));
	assert_true(pack_rec_decode(rec, sizeof(rec), &r));
	assert_int_equal(r.type, PACK_TOMBSTONE);
	assert_int_equal(r.len, PACK_TOMB_BYTES);
	assert_memory_equal(r.addr, addr, PACK_ADDR_BYTES);
	assert_ptr_equal(r.data, rec + PACK_REC_HEADER);
	assert_true(pack_rec_verify(rec, &r));
	back = pack_tomb_decode(r.data);
	assert_int_equal(back.pack, at.pack);
	assert_int_equal(back.off, at.off);

	/* its position is covered by the sum: a damaged one is not trusted */
	rec[PACK_REC_HEADER + 5] ^= 0x01;
	assert_true(pack_rec_decode(rec, sizeof(rec), &r));
	assert_false(pack_rec_verify(rec, &r));
	rec[PACK_REC_HEADER + 5] ^= 0x01;

	/* a block of the same 8 bytes at the same address is another record */
	memcpy(blk, rec, sizeof(rec));
	pack_rec_header(blk, PACK_BLOCK, addr, blk + PACK_REC_HEADER,
			PACK_TOMB_BYTES);
	assert_memory_not_equal(blk, rec, PACK_REC_HEADER);
	assert_true(pack_rec_decode(blk, sizeof(blk), &r));
	assert_int_equal(r.type, PACK_BLOCK);
}

static void test_tombstone_position(void **state)
{
	uint8_t b[PACK_TOMB_BYTES];
	struct pack_pos p;

	/* pack id then offset, little-endian, as pack.h lays them out */
	pack_tomb_encode(b, (struct pack_pos){ 0x11223344u, 0x55667788u });
	assert_memory_equal(b, "\x44\x33\x22\x11\x88\x77\x66\x55", 8);
	for (int i = 0; i < 100; i++) {
		struct pack_pos at = { (uint32_t)rng(), (uint32_t)rng() };

		pack_tomb_encode(b, at);
		p = pack_tomb_decode(b);
		assert_int_equal(p.pack, at.pack);
		assert_int_equal(p.off, at.off);
	}

	/* ordered as written: the pack first, then the offset in it, over the
	 * whole u32 range (a subtraction would wrap) */
	static const struct {
		struct pack_pos a, b;
		int want;
	} cmp[] = {
		{ { 1, 100 }, { 1, 100 }, 0 },
		{ { 1, 100 }, { 1, 101 }, -1 },
		{ { 1, 101 }, { 1, 100 }, 1 },
		{ { 1, UINT32_MAX }, { 2, 0 }, -1 },
		{ { 2, 0 }, { 1, UINT32_MAX }, 1 },
		{ { 0, 0 }, { UINT32_MAX, UINT32_MAX }, -1 },
		{ { UINT32_MAX, 0 }, { 0, UINT32_MAX }, 1 },
		{ { 0, UINT32_MAX }, { 0, 0 }, 1 },
		{ { 0x80000000u, 0 }, { 0x7FFFFFFFu, 0 }, 1 },
		{ { 7, 0x80000000u }, { 7, 0x7FFFFFFFu }, 1 },
	};
	for (size_t i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++)
		assert_int_equal(pack_pos_cmp(cmp[i].a, cmp[i].b), cmp[i].want);
}

/* The header checksum covers all 64 bytes (the data sum at 48..63 too), so
 * no single damaged byte gets a header past decode. */
static void test_any_damaged_header_byte_is_refused(void **state)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xFF };
	uint8_t rec[PACK_REC_HEADER + 100], bad[sizeof(rec)];
	uint8_t addr[PACK_ADDR_BYTES];
	struct pack_rec r;

	for (int kind = 0; kind < 2; kind++) {
		uint32_t len = kind ? PACK_TOMB_BYTES : 100;

		fill(addr, sizeof(addr));
		fill(rec + PACK_REC_HEADER, 100);
		pack_rec_header(rec, kind ? PACK_TOMBSTONE : PACK_BLOCK, addr,
				rec + PACK_REC_HEADER, len);
		assert_true(pack_rec_decode(rec, PACK_REC_HEADER + len, &r));
		for (int pos = 0; pos < PACK_REC_HEADER; pos++) {
			for (size_t m = 0; m < sizeof(masks); m++) {
				memcpy(bad, rec, sizeof(rec));
				bad[pos] ^= masks[m];
				if (pack_rec_decode(bad, sizeof(bad), &r))
					fail_msg("%s header byte %d ^ 0x%02x decoded",
						 kind ? "tombstone" : "block", pos,
						 masks[m]);
			}
		}
	}
}

/* Block bytes are not the header's business: decode takes them, verify
 * catches them. */
static void test_damaged_block_byte_fails_verify_only(void **state)
{
	enum { LEN = 37 };
	uint8_t rec[PACK_REC_HEADER + LEN], bad[sizeof(rec)];
	uint8_t addr[PACK_ADDR_BYTES];
	struct pack_rec r;

	fill(addr, sizeof(addr));
	fill(rec + PACK_REC_HEADER, LEN);
	pack_rec_header(rec, PACK_BLOCK, addr, rec + PACK_REC_HEADER, LEN);
	for (int pos = PACK_REC_HEADER; pos < (int)sizeof(rec); pos++) {
		memcpy(bad, rec, sizeof(rec));
		bad[pos] ^= 0x01;
		assert_true(pack_rec_decode(bad, sizeof(bad), &r));
		assert_ptr_equal(r.data, bad + PACK_REC_HEADER);
		if (pack_rec_verify(bad, &r))
			fail_msg("block byte %d flipped still verifies", pos);
	}
	/* the sum covers the address as well: the same bytes under another
	 * address do not verify */
	assert_true(pack_rec_decode(rec, sizeof(rec), &r));
	r.addr[0] ^= 1;
	assert_false(pack_rec_verify(rec, &r));
}

/* Each field is checked on its own, not only through the checksum: these
 * headers carry a right checksum over a wrong field. */
static void test_bad_fields_are_refused(void **state)
{
	size_t big = PACK_REC_HEADER + PACK_MAX_BLOCK + PACK_ALIGN;
	uint8_t *buf = calloc(1, big);
	uint8_t addr[PACK_ADDR_BYTES], good[PACK_REC_HEADER];
	struct pack_rec r;

	assert_non_null(buf);
	fill(addr, sizeof(addr));
	pack_rec_header(good, PACK_BLOCK, addr, NULL, 0);
	/* reseal is the format's checksum: it leaves a good header alone */
	memcpy(buf, good, PACK_REC_HEADER);
	reseal(buf);
	assert_memory_equal(buf, good, PACK_REC_HEADER);

	/* the largest block fits; one byte more is a file of its own */
	proto_put_u32(buf + 8, PACK_MAX_BLOCK - 1);
	reseal(buf);
	assert_true(pack_rec_decode(buf, big, &r));
	assert_int_equal(r.len, PACK_MAX_BLOCK - 1);
	proto_put_u32(buf + 8, PACK_MAX_BLOCK);
	reseal(buf);
	assert_false(pack_rec_decode(buf, big, &r));
	proto_put_u32(buf + 8, PACK_MAX_BLOCK + 1);
	reseal(buf);
	assert_false(pack_rec_decode(buf, big, &r));
	/* decode must refuse on the length alone, before it would look at
	 * bytes: avail claims room it does not have, and nothing is read */
	proto_put_u32(buf + 8, UINT32_MAX);
	reseal(buf);
	assert_false(pack_rec_decode(buf, SIZE_MAX, &r));

	/* a tombstone has its 8 bytes, no more, no less */
	static const uint32_t tlens[] = { 0, 1, PACK_TOMB_BYTES - 1,
					  PACK_TOMB_BYTES + 1, 16,
					  PACK_MAX_BLOCK - 1 };
	for (size_t i = 0; i < sizeof(tlens) / sizeof(tlens[0]); i++) {
		memcpy(buf, good, PACK_REC_HEADER);
		buf[4] = PACK_TOMBSTONE;
		proto_put_u32(buf + 8, tlens[i]);
		reseal(buf);
		assert_false(pack_rec_decode(buf, big, &r));
	}
	memcpy(buf, good, PACK_REC_HEADER);
	buf[4] = PACK_TOMBSTONE;
	proto_put_u32(buf + 8, PACK_TOMB_BYTES);
	reseal(buf);
	assert_true(pack_rec_decode(buf, big, &r));
	assert_int_equal(r.type, PACK_TOMBSTONE);
	assert_int_equal(r.len, PACK_TOMB_BYTES);

	/* types the format does not have */
	static const uint8_t types[] = { 0, 3, 0x81, 0xFF };
	for (size_t i = 0; i < sizeof(types); i++) {
		memcpy(buf, good, PACK_REC_HEADER);
		buf[4] = types[i];
		reseal(buf);
		assert_false(pack_rec_decode(buf, big, &r));
	}
	/* the zero bytes after the type, and the magic */
	for (int pos = 5; pos < 8; pos++) {
		memcpy(buf, good, PACK_REC_HEADER);
		buf[pos] = 1;
		reseal(buf);
		assert_false(pack_rec_decode(buf, big, &r));
	}
	for (int pos = 0; pos < 4; pos++) {
		memcpy(buf, good, PACK_REC_HEADER);
		buf[pos] ^= 0x20;
		reseal(buf);
		assert_false(pack_rec_decode(buf, big, &r));
	}
	free(buf);
}

static void test_record_must_fit_in_avail(void **state)
{
	enum { LEN = 100 };
	uint8_t rec[PACK_REC_HEADER + LEN];
	uint8_t addr[PACK_ADDR_BYTES];
	struct pack_rec r;

	fill(addr, sizeof(addr));
	fill(rec + PACK_REC_HEADER, LEN);
	pack_rec_header(rec, PACK_BLOCK, addr, rec + PACK_REC_HEADER, LEN);
	assert_true(pack_rec_decode(rec, sizeof(rec), &r));
	assert_false(pack_rec_decode(rec, sizeof(rec) - 1, &r));
	assert_false(pack_rec_decode(rec, PACK_REC_HEADER, &r));
	assert_false(pack_rec_decode(rec, PACK_REC_HEADER - 1, &r));
	assert_false(pack_rec_decode(rec, 0, &r));

	/* a tombstone needs its position as well as its header */
	pack_tomb_encode(rec + PACK_REC_HEADER, (struct pack_pos){ 3, 4 });
	pack_rec_header(rec, PACK_TOMBSTONE, addr, rec + PACK_REC_HEADER,
			PACK_TOMB_BYTES);
	assert_true(pack_rec_decode(rec, PACK_REC_HEADER + PACK_TOMB_BYTES, &r));
	assert_false(pack_rec_decode(rec, PACK_REC_HEADER + PACK_TOMB_BYTES - 1,
				     &r));
	assert_false(pack_rec_decode(rec, PACK_REC_HEADER, &r));
}

static void test_file_header(void **state)
{
	uint8_t h[PACK_FILE_HEADER + 8], bad[sizeof(h)];
	uint8_t rec[PACK_REC_HEADER], addr[PACK_ADDR_BYTES] = { 0 };
	uint32_t id = 0;

	memset(h, 0xEE, sizeof(h));
	pack_file_header(h, 0xA1B2C3D4u);
	assert_memory_equal(h, "CRPK\x01\x00\x00\x00\xD4\xC3\xB2\xA1\0\0\0\0",
			    PACK_FILE_HEADER);
	assert_int_equal(pack_check_file_header(h, PACK_FILE_HEADER, &id), 0);
	assert_int_equal(id, 0xA1B2C3D4u);
	id = 0;
	assert_int_equal(pack_check_file_header(h, sizeof(h), &id), 0);
	assert_int_equal(id, 0xA1B2C3D4u);

	assert_int_equal(pack_check_file_header(h, PACK_FILE_HEADER - 1, &id),
			 -EBADMSG);
	assert_int_equal(pack_check_file_header(h, 0, &id), -EBADMSG);
	for (int pos = 0; pos < 4; pos++) {
		memcpy(bad, h, sizeof(h));
		bad[pos] ^= 0x01;
		assert_int_equal(pack_check_file_header(bad, sizeof(bad), &id),
				 -EBADMSG);
	}
	static const uint32_t versions[] = { 0, 2, 0x01000000u, UINT32_MAX };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		memcpy(bad, h, sizeof(h));
		proto_put_u32(bad + 4, versions[i]);
		assert_int_equal(pack_check_file_header(bad, sizeof(bad), &id),
				 -EBADMSG);
	}
	/* the reserved word must stay zero, so a later version can use it */
	memcpy(bad, h, sizeof(h));
	bad[15] = 1;
	assert_int_equal(pack_check_file_header(bad, sizeof(bad), &id), -EBADMSG);
	/* a record header is not a file header */
	pack_rec_header(rec, PACK_BLOCK, addr, NULL, 0);
	assert_int_equal(pack_check_file_header(rec, sizeof(rec), &id), -EBADMSG);
}

static void test_parse_walks_every_record_in_order(void **state)
{
	struct std_pack p;
	struct seen s = { .n = 0 };
	struct pack_scan scan;

	std_pack_build(&p);
	memset(&scan, 0xAA, sizeof(scan));
	assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan), 0);
	assert_int_equal(s.n, N_RECS);
	for (size_t i = 0; i < N_RECS; i++)
		check_seen(&p, i, &s, i, true);
	assert_int_equal(scan.good, N_RECS);
	assert_int_equal(scan.bad_sum, 0);
	assert_int_equal(scan.skipped, 0);
	assert_int_equal(scan.end, p.b.len);

	/* a pack of only its file header is empty, not damaged */
	s.n = 0;
	memset(&scan, 0xAA, sizeof(scan));
	assert_int_equal(pack_parse(p.b.buf, PACK_FILE_HEADER, collect, &s, &scan),
			 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(scan.good, 0);
	assert_int_equal(scan.bad_sum, 0);
	assert_int_equal(scan.skipped, 0);
	assert_int_equal(scan.end, PACK_FILE_HEADER);
	free(p.b.buf);
}

/* Damage to one header (zeroed, as a lost sector reads) costs that record
 * only: the walk finds every later one at its alignment and counts the
 * bytes it passed over. Each record in turn, and two side by side. */
static void test_parse_resyncs_after_a_damaged_header(void **state)
{
	struct std_pack p;
	struct pack_scan scan;
	uint8_t *copy;

	std_pack_build(&p);
	copy = malloc(p.b.len);
	assert_non_null(copy);
	for (size_t d = 0; d < N_RECS; d++) {
		struct seen s = { .n = 0 };
		size_t j = 0;

		memcpy(copy, p.b.buf, p.b.len);
		memset(copy + p.off[d], 0, PACK_REC_HEADER);
		assert_int_equal(pack_parse(copy, p.b.len, collect, &s, &scan), 0);
		assert_int_equal(s.n, N_RECS - 1);
		/* by hand: check_seen expects data pointers into p.b.buf */
		for (size_t i = 0; i < N_RECS; i++) {
			if (i == d)
				continue;
			assert_int_equal(s.r[j].off, p.off[i]);
			assert_int_equal(s.r[j].type, p.type[i]);
			assert_int_equal(s.r[j].len, p.len[i]);
			assert_memory_equal(s.r[j].addr, p.addr[i], PACK_ADDR_BYTES);
			assert_ptr_equal(s.r[j].data, copy + p.off[i] + PACK_REC_HEADER);
			assert_true(s.verified[j]);
			j++;
		}
		assert_int_equal(scan.good, N_RECS - 1);
		assert_int_equal(scan.bad_sum, 0);
		assert_int_equal(scan.skipped, pack_rec_size(p.len[d]));
		/* the last record damaged is a torn tail: the end is before it */
		assert_int_equal(scan.end, d == N_RECS - 1 ? p.off[d] : p.b.len);
	}

	/* records 2 and 3 (15 and 16 bytes) both gone */
	struct seen s = { .n = 0 };
	memcpy(copy, p.b.buf, p.b.len);
	memset(copy + p.off[2], 0, PACK_REC_HEADER);
	memset(copy + p.off[3], 0xFF, PACK_REC_HEADER);
	assert_int_equal(pack_parse(copy, p.b.len, collect, &s, &scan), 0);
	assert_int_equal(s.n, N_RECS - 2);
	assert_int_equal(s.r[1].off, p.off[1]);
	assert_int_equal(s.r[2].off, p.off[4]);
	assert_int_equal(s.r[N_RECS - 3].off, p.off[N_RECS - 1]);
	assert_int_equal(scan.good, N_RECS - 2);
	assert_int_equal(scan.skipped, pack_rec_size(15) + pack_rec_size(16));
	free(copy);
	free(p.b.buf);
}

/* A crash mid-append leaves the last record short: it is not reported,
 * the ones before it are, and the end is where it began. */
static void test_parse_leaves_out_a_torn_tail(void **state)
{
	struct builder b;
	uint8_t data[4096], tomb[PACK_TOMB_BYTES], addr[3][PACK_ADDR_BYTES];
	size_t off[3];

	b_init(&b, 1);
	fill(data, sizeof(data));
	pack_tomb_encode(tomb, (struct pack_pos){ 1, 16 });
	off[0] = b_add(&b, PACK_BLOCK, data, 100, addr[0]);
	off[1] = b_add(&b, PACK_TOMBSTONE, tomb, PACK_TOMB_BYTES, addr[1]);
	off[2] = b_add(&b, PACK_BLOCK, data, sizeof(data), addr[2]);

	size_t cuts[] = { 1, 16, 63, 64, 65, 64 + 4095 };
	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		struct seen s = { .n = 0 };
		struct pack_scan scan;
		size_t len = off[2] + cuts[c];

		assert_int_equal(pack_parse(b.buf, len, collect, &s, &scan), 0);
		assert_int_equal(s.n, 2);
		assert_int_equal(s.r[0].off, off[0]);
		assert_int_equal(s.r[0].len, 100);
		assert_true(s.verified[0]);
		assert_int_equal(s.r[1].off, off[1]);
		assert_int_equal(s.r[1].type, PACK_TOMBSTONE);
		assert_true(s.verified[1]);
		assert_int_equal(scan.good, 2);
		assert_int_equal(scan.bad_sum, 0);
		assert_int_equal(scan.end, off[2]);
		assert_int_equal(scan.skipped, cuts[c]);
	}

	/* cut in the padding only: the bytes are all there, it counts */
	struct seen s = { .n = 0 };
	struct pack_scan scan;
	free(b.buf);
	b_init(&b, 1);
	b_add(&b, PACK_BLOCK, data, 17, addr[0]);
	assert_int_equal(pack_parse(b.buf, b.len - 1, collect, &s, &scan), 0);
	assert_int_equal(s.n, 1);
	assert_true(s.verified[0]);
	assert_int_equal(scan.good, 1);
	free(b.buf);
}

static void test_parse_reports_damaged_bytes_as_unverified(void **state)
{
	struct std_pack p;
	struct pack_scan scan;

	std_pack_build(&p);
	/* records with bytes, the tombstone too: damage each in turn */
	static const size_t which[] = { 1, 4, 6, N_RECS - 1 };
	for (size_t w = 0; w < sizeof(which) / sizeof(which[0]); w++) {
		size_t d = which[w];
		size_t pos = p.off[d] + PACK_REC_HEADER + p.len[d] / 2;
		struct seen s = { .n = 0 };

		p.b.buf[pos] ^= 0x40;
		assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan), 0);
		assert_int_equal(s.n, N_RECS);
		for (size_t i = 0; i < N_RECS; i++)
			check_seen(&p, i, &s, i, i != d);
		assert_int_equal(scan.good, N_RECS - 1);
		assert_int_equal(scan.bad_sum, 1);
		assert_int_equal(scan.skipped, 0);
		assert_int_equal(scan.end, p.b.len);
		p.b.buf[pos] ^= 0x40;
	}
	free(p.b.buf);
}

static void test_parse_stops_when_the_callback_says(void **state)
{
	struct std_pack p;
	struct pack_scan scan;
	static const int rcs[] = { 42, -EIO, 1 };

	std_pack_build(&p);
	for (size_t k = 0; k < sizeof(rcs) / sizeof(rcs[0]); k++) {
		struct seen s = { .n = 0, .stop_at = 3 + k, .stop_rc = rcs[k] };

		assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan),
				 rcs[k]);
		assert_int_equal(s.n, 3 + k);
		for (size_t i = 0; i < s.n; i++)
			check_seen(&p, i, &s, i, true);
	}
	/* stopping at the last record is still a stop */
	struct seen s = { .n = 0, .stop_at = N_RECS, .stop_rc = 9 };
	assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan), 9);
	assert_int_equal(s.n, N_RECS);
	free(p.b.buf);
}

static void test_parse_refuses_a_bad_file_header(void **state)
{
	struct std_pack p;
	struct pack_scan scan;
	struct seen s = { .n = 0 };

	std_pack_build(&p);
	p.b.buf[0] = 'X';
	assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan),
			 -EBADMSG);
	assert_int_equal(s.n, 0);
	assert_int_equal(scan.good, 0);
	p.b.buf[0] = 'C';
	proto_put_u32(p.b.buf + 4, 2);
	assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan),
			 -EBADMSG);
	assert_int_equal(s.n, 0);
	proto_put_u32(p.b.buf + 4, 1);
	assert_int_equal(pack_parse(p.b.buf, PACK_FILE_HEADER - 1, collect, &s,
				    &scan), -EBADMSG);
	assert_int_equal(pack_parse(p.b.buf, 0, collect, &s, &scan), -EBADMSG);
	assert_int_equal(s.n, 0);
	/* put back, it reads again */
	assert_int_equal(pack_parse(p.b.buf, p.b.len, collect, &s, &scan), 0);
	assert_int_equal(s.n, N_RECS);
	free(p.b.buf);
}

int main(void)
{
	const char *env = getenv("CAIRNFS_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rec_size_is_aligned_and_holds_the_record),
		cmocka_unit_test(test_block_header_round_trips),
		cmocka_unit_test(test_tombstone_round_trips),
		cmocka_unit_test(test_tombstone_position),
		cmocka_unit_test(test_any_damaged_header_byte_is_refused),
		cmocka_unit_test(test_damaged_block_byte_fails_verify_only),
		cmocka_unit_test(test_bad_fields_are_refused),
		cmocka_unit_test(test_record_must_fit_in_avail),
		cmocka_unit_test(test_file_header),
		cmocka_unit_test(test_parse_walks_every_record_in_order),
		cmocka_unit_test(test_parse_resyncs_after_a_damaged_header),
		cmocka_unit_test(test_parse_leaves_out_a_torn_tail),
		cmocka_unit_test(test_parse_reports_damaged_bytes_as_unverified),
		cmocka_unit_test(test_parse_stops_when_the_callback_says),
		cmocka_unit_test(test_parse_refuses_a_bad_file_header),
	};

	printf("# CAIRNFS_TEST_SEED=%" PRIu64 "\n", seed);
	rng_state = seed;
	return cmocka_run_group_tests_name("pack", tests, NULL, NULL);
}
