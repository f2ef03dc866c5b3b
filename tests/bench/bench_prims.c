/*
 * bench_prims: throughput of the data-path primitives, each next to the raw
 * library work it is built on, measured in the same run (issue #2 targets).
 *
 *   bench_prims [--size MiB] [--reps N]
 *
 * For random and for text-like data it prints MB/s of: chunking, keyed
 * hashing (block addresses), seal, open; and the references memcpy, plain
 * BLAKE2b (libsodium's: block addresses use crypto/blake2b.c, the same hash
 * through OpenSSL, so they can run past this reference), raw XChaCha20-Poly1305 encrypt/decrypt (libsodium's: seal and
 * open use crypto/aead.c, the same bytes through OpenSSL, so they can run
 * past this reference), raw zstd level 1
 * compress/decompress. Then each stage as a fraction of its reference:
 *   hash / BLAKE2b,  seal / (zstd-1 + AEAD encrypt),  open / (unzstd + AEAD
 *   decrypt). Each figure is the best of --reps runs. Every figure is also a
 *   `FIGURE name=value unit=...` line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zstd.h>

#include "chunker/chunker.h"
#include "crypto/keys.h"
#include "crypto/seal.h"

#define CHUNK (256u * 1024)

static size_t total;
static int reps = 3;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_text(uint8_t *b, size_t len)
{
	static const char *words[] = {
		"the ", "cairn ", "stone ", "static ", "int ", "return ", "struct ",
		"if (", "err) ", "{\n", "}\n", "\t", "= ", "0;\n", "path ", "of ",
		"mountain ", "#include <stdio.h>\n", "/* a comment */\n", "unsigned ",
		"char *", "size_t ", "len", ", ", "buf", "->", "next", "(void)",
	};
	uint32_t x = 12345;

	for (size_t i = 0; i < len;) {
		const char *w;

		x = x * 1103515245u + 12345u;
		w = words[(x >> 16) % (sizeof(words) / sizeof(words[0]))];
		for (; *w && i < len; w++)
			b[i++] = (uint8_t)*w;
	}
}

/* Each stage runs over the whole buffer in CHUNK pieces; returns the best
 * time of `reps` runs. */
typedef void (*stage_fn)(const uint8_t *in, size_t len, void *arg);

static double best_time(stage_fn fn, const uint8_t *data, void *arg)
{
	double best = 1e30;

	for (int r = 0; r < reps; r++) {
		double t0 = now_s();

		for (size_t off = 0; off < total; off += CHUNK)
			fn(data + off, total - off < CHUNK ? total - off : CHUNK, arg);
		if (now_s() - t0 < best)
			best = now_s() - t0;
	}
	return best;
}

struct ctx {
	struct keys *k;
	struct seal_ctx *s;
	const struct chunker *ck;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	uint8_t *out, *out2;
	uint8_t **sealed;          /* pre-sealed blocks per piece, for open */
	size_t *sealed_len;
	uint8_t **zbuf;            /* pre-compressed pieces */
	size_t *zlen;
	uint8_t **abuf;            /* pre-encrypted pieces */
	size_t *alen;
	size_t piece;              /* index while a stage runs */
	uint8_t key[32], nonce[24];
};

static void st_memcpy(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;

	memcpy(c->out, in, len);
	__asm__ volatile("" ::: "memory");
}

static void st_blake2b(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;

	crypto_generichash(c->out, 32, in, len, NULL, 0);
}

static void st_addr(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;

	seal_addr(c->k, in, len, c->out);
}

/* AEAD over what seal encrypts: the zstd output when it shrank, else the
 * raw chunk. */
static void st_aead_enc(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;
	size_t i = c->piece++ % (total / CHUNK);
	unsigned long long clen;

	if (c->zlen[i] < len) {
		in = c->zbuf[i];
		len = c->zlen[i];
	}
	crypto_aead_xchacha20poly1305_ietf_encrypt(c->out, &clen, in, len, c->nonce,
						   24, NULL, c->nonce, c->key);
}

static void st_zstd(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;

	ZSTD_compressCCtx(c->zc, c->out, ZSTD_compressBound(CHUNK), in, len, 1);
}

static void st_seal(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;
	uint8_t addr[32] = { 0 };

	if (seal_block(c->s, c->k, addr, in, len, c->out, seal_bound(CHUNK)) < 0)
		abort();
}

/* The decrypt-side stages walk the pre-made pieces by index. */
static void st_unzstd(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;
	size_t i = c->piece++ % (total / CHUNK);

	(void)in;
	(void)len;
	ZSTD_decompressDCtx(c->zd, c->out2, CHUNK, c->zbuf[i], c->zlen[i]);
}

static void st_aead_dec(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;
	size_t i = c->piece++ % (total / CHUNK);
	unsigned long long plen;

	(void)in;
	(void)len;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(c->out2, &plen, NULL, c->abuf[i],
						       c->alen[i], c->nonce, 24,
						       c->nonce, c->key))
		abort();
}

static void st_open(const uint8_t *in, size_t len, void *arg)
{
	struct ctx *c = arg;
	size_t i = c->piece++ % (total / CHUNK);
	uint8_t addr[32] = { 0 };

	(void)in;
	(void)len;
	if (seal_open(c->s, c->k, addr, c->sealed[i], c->sealed_len[i], c->out2, CHUNK) < 0)
		abort();
}

static double chunk_time(const struct chunker *ck, const uint8_t *data)
{
	double best = 1e30;

	for (int r = 0; r < reps; r++) {
		double t0 = now_s();
		size_t pos = 0, n = 0;

		while (pos < total) {
			pos += chunker_find(ck, data + pos, total - pos, true);
			n++;
		}
		if (now_s() - t0 < best)
			best = now_s() - t0;
		if (!n)
			abort();
	}
	return best;
}

static void prepare(struct ctx *c, const uint8_t *data)
{
	size_t n = total / CHUNK;
	uint8_t addr[32] = { 0 };

	for (size_t i = 0; i < n; i++) {
		const uint8_t *in = data + i * CHUNK;
		unsigned long long clen;
		ssize_t sl;

		free(c->sealed[i]);
		free(c->zbuf[i]);
		free(c->abuf[i]);
		c->sealed[i] = malloc(seal_bound(CHUNK));
		sl = seal_block(c->s, c->k, addr, in, CHUNK, c->sealed[i], seal_bound(CHUNK));
		if (sl < 0)
			abort();
		c->sealed_len[i] = (size_t)sl;
		c->zbuf[i] = malloc(ZSTD_compressBound(CHUNK));
		c->zlen[i] = ZSTD_compressCCtx(c->zc, c->zbuf[i], ZSTD_compressBound(CHUNK), in, CHUNK, 1);
		/* the AEAD reference encrypts what open decrypts: the zstd
		 * output when it shrank, else the raw chunk */
		const uint8_t *payload = c->zlen[i] < CHUNK ? c->zbuf[i] : in;
		size_t plen = c->zlen[i] < CHUNK ? c->zlen[i] : CHUNK;

		c->abuf[i] = malloc(plen + 16);
		crypto_aead_xchacha20poly1305_ietf_encrypt(c->abuf[i], &clen, payload, plen,
							   c->nonce, 24, NULL, c->nonce, c->key);
		c->alen[i] = (size_t)clen;
	}
}

static void figure(const char *kind, const char *name, double secs)
{
	double mbs = (double)total / secs / 1e6;

	printf("  %-28s %9.0f MB/s\n", name, mbs);
	printf("FIGURE prims_%s_%s=%.0f unit=MB/s\n", kind, name, mbs);
}

static void ratio(const char *kind, const char *name, double stage, double ref,
		  double target)
{
	double r = ref / stage;

	printf("  %-28s %9.2f of reference (target %.2f) %s\n", name, r, target,
	       r >= target ? "ok" : "BELOW TARGET");
	printf("FIGURE prims_%s_%s_ratio=%.3f unit=fraction\n", kind, name, r);
}

static void run_kind(const char *kind, const uint8_t *data, struct ctx *c)
{
	double t_copy, t_b2, t_addr, t_enc, t_z, t_seal, t_unz, t_dec, t_open, t_chunk;

	prepare(c, data);
	t_copy = best_time(st_memcpy, data, c);
	t_chunk = chunk_time(c->ck, data);
	t_b2 = best_time(st_blake2b, data, c);
	t_addr = best_time(st_addr, data, c);
	t_z = best_time(st_zstd, data, c);
	t_enc = best_time(st_aead_enc, data, c);
	t_seal = best_time(st_seal, data, c);
	t_unz = best_time(st_unzstd, data, c);
	t_dec = best_time(st_aead_dec, data, c);
	t_open = best_time(st_open, data, c);

	printf("%s data (%zu MiB, best of %d):\n", kind, total >> 20, reps);
	figure(kind, "memcpy", t_copy);
	figure(kind, "chunking", t_chunk);
	figure(kind, "blake2b", t_b2);
	figure(kind, "keyed_hash", t_addr);
	figure(kind, "zstd1_compress", t_z);
	figure(kind, "aead_encrypt", t_enc);
	figure(kind, "seal", t_seal);
	figure(kind, "zstd_decompress", t_unz);
	figure(kind, "aead_decrypt", t_dec);
	figure(kind, "open", t_open);
	ratio(kind, "chunking_vs_memcpy", t_chunk, t_copy, 0);
	ratio(kind, "keyed_hash", t_addr, t_b2, 0.9);
	ratio(kind, "seal", t_seal, t_z + t_enc, 0.9);
	ratio(kind, "open", t_open, t_unz + t_dec, 0.9);
	if (!strcmp(kind, "random"))
		printf("  chunking target >= 1000 MB/s: %s\n",
		       (double)total / t_chunk / 1e6 >= 1000 ? "ok" : "BELOW TARGET");
}

int main(int argc, char **argv)
{
	struct keys_volume vol = { .name = "bench" };
	struct chunker_params p;
	struct chunker *ck;
	struct ctx c = { 0 };
	size_t mib = 64, n;
	uint8_t *data;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			mib = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_prims [--size MiB] [--reps N]\n");
			return 2;
		}
	}
	if (mib < 1 || reps < 1 || sodium_init() < 0)
		return 2;
	total = mib << 20;
	n = total / CHUNK;
	chunker_params_default(&p);
	if (keys_generate(&vol, &c.k) || seal_ctx_new(1, &c.s) ||
	    chunker_new(keys_subkey(c.k, KEYS_GEAR), &p, &ck)) {
		fprintf(stderr, "bench_prims: set-up failed\n");
		return 1;
	}
	c.ck = ck;
	c.zc = ZSTD_createCCtx();
	c.zd = ZSTD_createDCtx();
	c.out = malloc(ZSTD_compressBound(CHUNK) + seal_bound(CHUNK));
	c.out2 = malloc(CHUNK);
	c.sealed = calloc(n, sizeof(*c.sealed));
	c.sealed_len = calloc(n, sizeof(size_t));
	c.zbuf = calloc(n, sizeof(*c.zbuf));
	c.zlen = calloc(n, sizeof(size_t));
	c.abuf = calloc(n, sizeof(*c.abuf));
	c.alen = calloc(n, sizeof(size_t));
	data = malloc(total);
	if (!data || !c.out || !c.out2 || !c.sealed || !c.zbuf || !c.abuf) {
		fprintf(stderr, "bench_prims: out of memory\n");
		return 1;
	}
	randombytes_buf(c.key, sizeof(c.key));
	randombytes_buf(c.nonce, sizeof(c.nonce));

	randombytes_buf(data, total);
	run_kind("random", data, &c);
	fill_text(data, total);
	run_kind("text", data, &c);
	return 0;
}
