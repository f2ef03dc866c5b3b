/*
 * replay: a main() for fuzz targets built without libFuzzer (gcc builds).
 *
 * Runs LLVMFuzzerTestOneInput on every file named on the command line (or in
 * a directory named there), then on seeded mutations of them: bit flips,
 * byte overwrites, truncations and extensions. Not coverage-guided, but it
 * keeps every corpus file and its neighbours exercised in every `make check`,
 * under the sanitizers when they are on. CAIRNFS_FUZZ_MUTATIONS (default
 * 2000) sets the number of mutations, CAIRNFS_TEST_SEED the seed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	uint8_t *data;
	size_t len;
};

static struct input *inputs;
static size_t n_inputs, cap_inputs;

static int add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct input in = { NULL, 0 };
	size_t cap = 0;

	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (in.len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *p = realloc(in.data, cap);
			if (!p) {
				fclose(f);
				free(in.data);
				return -1;
			}
			in.data = p;
		}
		size_t n = fread(in.data + in.len, 1, cap - in.len, f);
		if (n == 0)
			break;
		in.len += n;
	}
	fclose(f);
	if (n_inputs == cap_inputs) {
		cap_inputs = cap_inputs ? cap_inputs * 2 : 64;
		struct input *p = realloc(inputs, cap_inputs * sizeof(*p));
		if (!p) {
			free(in.data);
			return -1;
		}
		inputs = p;
	}
	inputs[n_inputs++] = in;
	return 0;
}

static int add_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return add_file(path);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		char sub[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (add_path(sub) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

static uint64_t rng_state;
static uint64_t rng(void)
{
	/* splitmix64: fine for choosing mutations */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
	const char *s = getenv("CAIRNFS_FUZZ_MUTATIONS");
	long mutations = s ? strtol(s, NULL, 10) : 2000;
	s = getenv("CAIRNFS_TEST_SEED");
	rng_state = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
	uint64_t seed = rng_state;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;         /* libFuzzer flags: not ours */
		if (add_path(argv[i]) < 0)
			return 1;
	}
	for (size_t i = 0; i < n_inputs; i++)
		LLVMFuzzerTestOneInput(inputs[i].data, inputs[i].len);

	uint8_t *buf = malloc(1 << 20);
	if (!buf)
		return 1;
	for (long m = 0; m < mutations; m++) {
		size_t len = 0;
		if (n_inputs) {
			struct input *in = &inputs[rng() % n_inputs];
			len = in->len > (1 << 20) ? (1 << 20) : in->len;
			memcpy(buf, in->data, len);
		}
		switch (rng() % 5) {
		case 0: /* flip bits */
			for (int k = 0, n = 1 + (int)(rng() % 8); k < n && len; k++)
				buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1: /* overwrite bytes with extremes */
			for (int k = 0, n = 1 + (int)(rng() % 4); k < n && len; k++)
				buf[rng() % len] = (rng() & 1) ? 0xff : 0x00;
			break;
		case 2: /* truncate */
			len = len ? rng() % len : 0;
			break;
		case 3: /* extend with random bytes */
			for (size_t k = 0, n = rng() % 64; k < n && len < (1 << 20); k++)
				buf[len++] = (uint8_t)rng();
			break;
		default: /* fully random */
			len = rng() % 512;
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rng();
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	free(buf);
	for (size_t i = 0; i < n_inputs; i++)
		free(inputs[i].data);
	free(inputs);
	printf("replay: %zu corpus inputs and %ld mutations (seed %llu): no crash\n",
	       n_inputs, mutations, (unsigned long long)seed);
	return 0;
}
