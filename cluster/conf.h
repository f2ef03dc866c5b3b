/*
 * conf: one option table per program drives its INI file, its command-line
 * flags, --help and --print-config.
 *
 * Built-in defaults < config file < flags. The file is INI (parsed by inih):
 * "name = value" lines, optionally under a [section] that is ignored except
 * that it is printed in errors; '#' and ';' start comments. Every option is
 * also a flag "--name=value" or "--name value" (booleans: "--name",
 * "--no-name"). Sizes take binary units (64K, 256M, 2G); durations take
 * ms, s, m, h (default seconds). Unknown names and bad values are errors
 * that name the file and line, or the flag.
 *
 * Thread-safety: for main() before threads start.
 */
#ifndef CAIRN_CONF_H
#define CAIRN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_type {
	CONF_STRING,      /* char ** target, malloc'd, conf_release frees */
	CONF_INT,         /* long long * target, in [min, max] */
	CONF_SIZE,        /* uint64_t * target, binary units, in [min, max] */
	CONF_DURATION_MS, /* long long * target, in milliseconds, in [min, max] */
	CONF_BOOL,        /* bool * target */
};

struct conf_option {
	const char *name;       /* "data-dir" */
	enum conf_type type;
	void *target;
	const char *def;        /* default as text, NULL for none */
	long long min, max;     /* for numbers; both 0 means no range */
	const char *help;       /* one sentence */
};
/* A table ends with an entry whose name is NULL. */

/* Set every target to its default. Returns 0 or -EINVAL (a bad default is a
 * bug in the table; err says which). */
int conf_defaults(const struct conf_option *opts, char *err, size_t err_len);

/* Apply a file. Returns 0, -ENOENT when it does not exist (callers decide
 * whether that is fine), or -EINVAL with "FILE:LINE: ..." in err. */
int conf_load_file(const struct conf_option *opts, const char *path, char *err,
		   size_t err_len);

/* Set one option from text; -ENOENT unknown name, -EINVAL bad value (err). */
int conf_set(const struct conf_option *opts, const char *name,
	     const char *value, char *err, size_t err_len);

/*
 * Apply flags from argv[1..argc): "--name=value", "--name value", "--name"
 * and "--no-name" for booleans. Stops at the first argument that does not
 * start with "--" or at "--"; *first_arg gets its index (the positional
 * arguments start there). Returns 0 or -EINVAL (err names the flag).
 * `--config`, `--help` and `--print-config` are not handled here: programs
 * look for them first with conf_find_flag().
 */
int conf_parse_args(const struct conf_option *opts, int argc, char **argv,
		    int *first_arg, char *err, size_t err_len);

/* Find "--name=value" or "--name value" in argv; returns the value or NULL.
 * For "--help"-style flags without value, conf_has_flag(). */
const char *conf_find_flag(int argc, char **argv, const char *name);
bool conf_has_flag(int argc, char **argv, const char *name);

/* Print every option with type, default and help (for --help). */
void conf_print_help(FILE *f, const struct conf_option *opts);
/* Print the effective configuration as an INI file (for --print-config). */
void conf_print(FILE *f, const struct conf_option *opts);
/* Free strings set by the table. */
void conf_release(const struct conf_option *opts);

/* Parsers shared with other input: sizes with binary units, durations. */
int conf_parse_size(const char *s, uint64_t *out);
int conf_parse_duration_ms(const char *s, long long *out);

#endif
