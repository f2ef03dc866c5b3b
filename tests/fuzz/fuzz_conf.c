/*
 * fuzz_conf: arbitrary config files and flag vectors must give 0 or a clear
 * error, never a crash or a leak. The first half of the input is written as
 * a config file; the rest, split at NUL bytes, becomes argv.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/conf.h"

static char *f_dir;
static long long f_int, f_ms;
static uint64_t f_size;
static bool f_bool;

static const struct conf_option table[] = {
	{ "data-dir", CONF_STRING, &f_dir, "/d", 0, 0, "dir" },
	{ "workers", CONF_INT, &f_int, "4", 1, 64, "int" },
	{ "cache-size", CONF_SIZE, &f_size, "1M", 0, 0, "size" },
	{ "timeout", CONF_DURATION_MS, &f_ms, "1s", 1, 1000000, "ms" },
	{ "verbose", CONF_BOOL, &f_bool, "no", 0, 0, "bool" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	char err[256], *args, *argv[33];
	size_t half = size / 2;
	int argc = 1, first;
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz_conf.%d", (int)getpid());
	if (conf_defaults(table, err, sizeof(err)))
		abort();
	f = fopen(path, "w");
	if (!f)
		return 0;
	fwrite(data, 1, half, f);
	fclose(f);
	(void)conf_load_file(table, path, err, sizeof(err));

	args = malloc(size - half + 1);
	if (!args)
		return 0;
	memcpy(args, data + half, size - half);
	args[size - half] = '\0';
	argv[0] = "fuzz";
	for (char *p = args; argc < 32 && p < args + (size - half);) {
		argv[argc++] = p;
		p += strlen(p) + 1;
	}
	argv[argc] = NULL;
	(void)conf_parse_args(table, argc, argv, &first, err, sizeof(err));
	if (f_int < 1 || f_int > 64)
		abort();    /* a value outside its range slipped through */
	conf_release(table);
	free(args);
	unlink(path);
	return 0;
}
