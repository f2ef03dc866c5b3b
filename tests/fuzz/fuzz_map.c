/*
 * fuzz_map: cmap_decode on arbitrary bytes, once against a pinned admin key
 * and once trusting the key the map carries (TOFU), must return 0 or an
 * error, never crash, leak or read out of bounds. A map that decodes must
 * encode back to the very same bytes (the encoding is canonical and Ed25519
 * signing is deterministic), and copying and placing it must work.
 *
 * The admin key pair is derived from a fixed seed so the seed corpus (valid
 * maps signed with it) reaches the accept path. Built with
 * -DFUZZ_MAP_GEN_MAIN this file is instead the generator of that corpus:
 *   cc -DFUZZ_MAP_GEN_MAIN -I. -Ibuild tests/fuzz/fuzz_map.c cluster/cmap.c \
 *      -lsodium -o gen && ./gen tests/fuzz/corpus/fuzz_map
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cluster/cmap.h"

static const uint8_t fuzz_key_seed[crypto_sign_SEEDBYTES] =
	"cairnfs fuzz_map admin key seed";
static uint8_t fuzz_pk[CMAP_PK_BYTES], fuzz_sk[CMAP_SK_BYTES];

static void fuzz_keys(void)
{
	static int done;

	if (done)
		return;
	if (sodium_init() < 0 ||
	    crypto_sign_seed_keypair(fuzz_pk, fuzz_sk, fuzz_key_seed))
		abort();
	done = 1;
}

/* What every accepted map must satisfy. */
static void check_map(const struct cmap *m, const uint8_t *data, size_t size)
{
	uint16_t own[CMAP_MAX_WIDTH];
	struct cmap *c = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int err;

	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		unsigned n = cmap_slot_owners(m, s, own);

		if (n > cmap_width(m))
			abort();
		for (unsigned k = 0; k < n; k++)
			if (own[k] >= cmap_node_count(m))
				abort();
		n = cmap_slot_prev(m, s, own);
		for (unsigned k = 0; k < n; k++)
			if (own[k] >= cmap_node_count(m))
				abort();
	}
	if (!memcmp(cmap_admin_pk(m), fuzz_pk, CMAP_PK_BYTES)) {
		if (cmap_encode(m, fuzz_sk, &buf, &len))
			abort();
		if (len != size || memcmp(buf, data, size))
			abort();    /* decode accepted a non-canonical map */
		free(buf);
	}
	if (cmap_copy(m, &c))
		return;     /* out of memory is not a finding */
	/* Placement costs nodes x slots: only small tables, to stay fast. */
	if (cmap_node_count(c) <= 16) {
		err = cmap_place(m, c);
		if (err && err != -EAGAIN)
			abort();
	}
	cmap_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmap *m = NULL;

	fuzz_keys();
	if (!cmap_decode(data, size, fuzz_pk, &m)) {
		check_map(m, data, size);
		cmap_free(m);
	} else if (m) {
		abort();    /* a failed decode wrote its output */
	}
	m = NULL;
	if (!cmap_decode(data, size, NULL, &m)) {
		check_map(m, data, size);
		cmap_free(m);
	} else if (m) {
		abort();
	}
	return 0;
}

#ifdef FUZZ_MAP_GEN_MAIN
static void gen_write(const char *dir, const char *name, const uint8_t *buf,
		      size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		abort();
	printf("%s: %zu bytes\n", path, len);
}

static struct cmap *gen_map(unsigned n_nodes, unsigned width)
{
	static const uint8_t cid[CMAP_CLUSTER_ID_BYTES] = "fuzz cluster id";
	struct cmap *m;
	struct cmap_node node;

	if (cmap_new(cid, fuzz_pk, width, &m))
		abort();
	for (unsigned i = 0; i < n_nodes; i++) {
		memset(&node, 0, sizeof(node));
		crypto_generichash(node.id, sizeof(node.id), (const uint8_t *)&i,
				   sizeof(i), NULL, 0);
		snprintf(node.addr, sizeof(node.addr), "node%u.example:7070", i);
		node.weight = 100 + i;
		if (cmap_node_add(m, &node) != (int)i)
			abort();
	}
	return m;
}

static void gen_encode(const char *dir, const char *name, const struct cmap *m,
		       size_t keep)
{
	uint8_t *buf;
	size_t len;

	if (cmap_encode(m, fuzz_sk, &buf, &len))
		abort();
	gen_write(dir, name, buf, keep && keep < len ? keep : len);
	free(buf);
}

int main(int argc, char **argv)
{
	struct cmap *a, *b;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	fuzz_keys();
	/* A fresh cluster: no nodes, no slots assigned. */
	a = gen_map(0, 2);
	gen_encode(argv[1], "empty", a, 0);
	cmap_free(a);
	/* Two nodes, R=1, then a third joins: moving slots list prev owners. */
	a = gen_map(3, 1);
	cmap_node_set_state(a, 2, CMAP_NODE_OUT);
	if (cmap_place(NULL, a) || cmap_copy(a, &b) ||
	    cmap_node_set_state(b, 2, CMAP_NODE_UP) || cmap_place(a, b))
		abort();
	cmap_node_set_state(b, 1, CMAP_NODE_DRAINING);
	cmap_set_epoch(b, 7);
	gen_encode(argv[1], "moving", b, 0);
	/* Just the header and node table, for quick header mutations. */
	gen_encode(argv[1], "head", b, 64 + 2 + 3 * 40);
	cmap_free(a);
	cmap_free(b);
	/* 257 nodes: owner indexes take two bytes. */
	a = gen_map(257, 1);
	if (cmap_place(NULL, a))
		abort();
	gen_encode(argv[1], "wide", a, 0);
	cmap_free(a);
	return 0;
}
#endif
