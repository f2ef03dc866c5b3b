/*
 * conf: option tables shared by a program's config file, its flags, --help
 * and --print-config.
 *
 * The table is the single source of truth: a new option is one line in the
 * program's table and is at once a file key, a flag and a help entry. This
 * module does not know any option's meaning, never exits and never logs;
 * errors come back as codes with text in the caller's buffer.
 */
#include "cluster/conf.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void conf_errf(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conf_errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

static const struct conf_option *conf_lookup(const struct conf_option *opts,
					     const char *name)
{
	for (; opts->name; opts++)
		if (!strcmp(opts->name, name))
			return opts;
	return NULL;
}

int conf_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	/* Accept "64K", "64KiB" and "64KB" alike: all mean binary units here. */
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (shift && (*end == 'b' || *end == 'B'))
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int conf_parse_duration_ms(const char *s, long long *out)
{
	char *end;
	long long v, mul;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (!*end || !strcmp(end, "s"))
		mul = 1000;
	else if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mul = 60 * 1000;
	else if (!strcmp(end, "h"))
		mul = 3600 * 1000;
	else
		return -EINVAL;
	if (v > LLONG_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static int conf_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static bool conf_in_range(const struct conf_option *o, long long v)
{
	if (!o->min && !o->max)
		return true;
	return v >= o->min && v <= o->max;
}

static int conf_apply(const struct conf_option *o, const char *value,
		      char *err, size_t err_len)
{
	int rc;

	switch (o->type) {
	case CONF_STRING: {
		char *copy = strdup(value);
		char **target = o->target;

		if (!copy)
			return -ENOMEM;
		free(*target);
		*target = copy;
		return 0;
	}
	case CONF_INT: {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(value, &end, 0);
		if (errno || end == value || *end) {
			conf_errf(err, err_len, "%s: '%s' is not a whole number",
				  o->name, value);
			return -EINVAL;
		}
		if (!conf_in_range(o, v)) {
			conf_errf(err, err_len, "%s: %lld is outside %lld..%lld",
				  o->name, v, o->min, o->max);
			return -EINVAL;
		}
		*(long long *)o->target = v;
		return 0;
	}
	case CONF_SIZE: {
		uint64_t v;

		rc = conf_parse_size(value, &v);
		if (rc < 0 || v > (uint64_t)LLONG_MAX) {
			conf_errf(err, err_len,
				  "%s: '%s' is not a size (examples: 4096, 64K, 256M, 2G)",
				  o->name, value);
			return -EINVAL;
		}
		if (!conf_in_range(o, (long long)v)) {
			conf_errf(err, err_len, "%s: %s is outside %lld..%lld bytes",
				  o->name, value, o->min, o->max);
			return -EINVAL;
		}
		*(uint64_t *)o->target = v;
		return 0;
	}
	case CONF_DURATION_MS: {
		long long v;

		rc = conf_parse_duration_ms(value, &v);
		if (rc < 0) {
			conf_errf(err, err_len,
				  "%s: '%s' is not a duration (examples: 500ms, 10s, 5m, 1h)",
				  o->name, value);
			return -EINVAL;
		}
		if (!conf_in_range(o, v)) {
			conf_errf(err, err_len, "%s: %s is outside %lld..%lld ms",
				  o->name, value, o->min, o->max);
			return -EINVAL;
		}
		*(long long *)o->target = v;
		return 0;
	}
	case CONF_BOOL:
		if (conf_parse_bool(value, o->target) < 0) {
			conf_errf(err, err_len,
				  "%s: '%s' is not a boolean (yes/no, true/false, 1/0, on/off)",
				  o->name, value);
			return -EINVAL;
		}
		return 0;
	}
	conf_errf(err, err_len, "%s: unknown option type", o->name);
	return -EINVAL;
}

int conf_set(const struct conf_option *opts, const char *name,
	     const char *value, char *err, size_t err_len)
{
	const struct conf_option *o = conf_lookup(opts, name);

	if (!o) {
		conf_errf(err, err_len, "unknown option '%s'", name);
		return -ENOENT;
	}
	return conf_apply(o, value, err, err_len);
}

int conf_defaults(const struct conf_option *opts, char *err, size_t err_len)
{
	for (const struct conf_option *o = opts; o->name; o++) {
		int rc;

		if (!o->def) {
			if (o->type == CONF_STRING) {
				free(*(char **)o->target);
				*(char **)o->target = NULL;
			}
			continue;
		}
		rc = conf_apply(o, o->def, err, err_len);
		if (rc < 0)
			return rc == -ENOMEM ? rc : -EINVAL;
	}
	return 0;
}

struct conf_file_state {
	const struct conf_option *opts;
	char why[256];      /* the first bad entry, without file and line */
	int rc;
};

/* inih callback: returns 0 to make inih report this line as the error.
 * inih goes on parsing after an error, so the first one is latched. */
static int conf_file_entry(void *user, const char *section, const char *name,
			   const char *value)
{
	struct conf_file_state *st = user;
	char why[200];
	int rc;

	(void)section;
	if (st->rc)
		return 1;
	rc = conf_set(st->opts, name, value, why, sizeof(why));
	if (rc < 0) {
		snprintf(st->why, sizeof(st->why), "%s", why);
		st->rc = rc == -ENOMEM ? rc : -EINVAL;
		return 0;
	}
	return 1;
}

int conf_load_file(const struct conf_option *opts, const char *path, char *err,
		   size_t err_len)
{
	struct conf_file_state st = { .opts = opts };
	FILE *f;
	int line;

	f = fopen(path, "r");
	if (!f) {
		int e = errno;

		conf_errf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	/* inih returns the number of the first line it (or we) rejected. */
	line = ini_parse_file(f, conf_file_entry, &st);
	fclose(f);
	if (st.rc) {
		conf_errf(err, err_len, "%s:%d: %s", path, line, st.why);
		return st.rc;
	}
	if (line != 0) {
		conf_errf(err, err_len, "%s:%d: not a 'name = value' line", path,
			  line);
		return -EINVAL;
	}
	return 0;
}

const char *conf_find_flag(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (strncmp(a, "--", 2) || strncmp(a + 2, name, n))
			continue;
		if (a[2 + n] == '=')
			return a + 3 + n;
		if (a[2 + n] == '\0' && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

bool conf_has_flag(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (!strncmp(a, "--", 2) && !strncmp(a + 2, name, n) &&
		    (a[2 + n] == '\0' || a[2 + n] == '='))
			return true;
	}
	return false;
}

/* Flags every program handles itself before conf_parse_args() sees argv. */
static bool conf_is_program_flag(const char *name, size_t len, bool *takes_value)
{
	static const struct { const char *name; bool value; } own[] = {
		{ "config", true }, { "help", false }, { "print-config", false },
	};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		if (strlen(own[i].name) == len && !strncmp(name, own[i].name, len)) {
			*takes_value = own[i].value;
			return true;
		}
	}
	return false;
}

int conf_parse_args(const struct conf_option *opts, int argc, char **argv,
		    int *first_arg, char *err, size_t err_len)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *value;
		const struct conf_option *o;
		char namebuf[128];
		size_t len;
		bool takes_value;
		int rc;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (strncmp(a, "--", 2) || !a[2])
			break;
		name = a + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		if (len >= sizeof(namebuf)) {
			conf_errf(err, err_len, "flag '%.40s...' is too long", a);
			return -EINVAL;
		}
		memcpy(namebuf, name, len);
		namebuf[len] = '\0';

		if (conf_is_program_flag(namebuf, len, &takes_value)) {
			if (takes_value && !eq)
				i++;
			continue;
		}
		o = conf_lookup(opts, namebuf);
		if (!o && !strncmp(namebuf, "no-", 3)) {
			o = conf_lookup(opts, namebuf + 3);
			if (o && o->type == CONF_BOOL && !eq) {
				*(bool *)o->target = false;
				continue;
			}
			o = NULL;
		}
		if (!o) {
			conf_errf(err, err_len, "unknown flag '--%s' (see --help)",
				  namebuf);
			return -EINVAL;
		}
		if (eq) {
			value = eq + 1;
		} else if (o->type == CONF_BOOL) {
			value = "yes";
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			conf_errf(err, err_len, "flag '--%s' needs a value", namebuf);
			return -EINVAL;
		}
		rc = conf_apply(o, value, err, err_len);
		if (rc < 0)
			return rc == -ENOMEM ? rc : -EINVAL;
	}
	if (first_arg)
		*first_arg = i;
	return 0;
}

static const char *conf_type_name(enum conf_type t)
{
	switch (t) {
	case CONF_STRING: return "text";
	case CONF_INT: return "number";
	case CONF_SIZE: return "size";
	case CONF_DURATION_MS: return "duration";
	case CONF_BOOL: return "yes|no";
	}
	return "?";
}

void conf_print_help(FILE *f, const struct conf_option *opts)
{
	for (const struct conf_option *o = opts; o->name; o++) {
		/* a switch is turned off with --no-NAME: say so */
		fprintf(f, "  --%s%s%s%s\n", o->type == CONF_BOOL ? "[no-]" : "",
			o->name, o->type == CONF_BOOL ? "" : "=",
			o->type == CONF_BOOL ? "" : conf_type_name(o->type));
		fprintf(f, "        %s", o->help ? o->help : "");
		if (o->def && *o->def)
			fprintf(f, " (default: %s)", o->def);
		if (o->min || o->max)
			fprintf(f, " [%lld..%lld]", o->min, o->max);
		fputc('\n', f);
	}
}

void conf_print(FILE *f, const struct conf_option *opts)
{
	for (const struct conf_option *o = opts; o->name; o++) {
		switch (o->type) {
		case CONF_STRING: {
			const char *s = *(char **)o->target;

			if (s)
				fprintf(f, "%s = %s\n", o->name, s);
			else
				fprintf(f, "# %s is not set\n", o->name);
			break;
		}
		case CONF_INT:
			fprintf(f, "%s = %lld\n", o->name, *(long long *)o->target);
			break;
		case CONF_SIZE:
			fprintf(f, "%s = %" PRIu64 "\n", o->name,
				*(uint64_t *)o->target);
			break;
		case CONF_DURATION_MS:
			fprintf(f, "%s = %lldms\n", o->name,
				*(long long *)o->target);
			break;
		case CONF_BOOL:
			fprintf(f, "%s = %s\n", o->name,
				*(bool *)o->target ? "yes" : "no");
			break;
		}
	}
}

void conf_release(const struct conf_option *opts)
{
	for (const struct conf_option *o = opts; o->name; o++) {
		if (o->type == CONF_STRING) {
			free(*(char **)o->target);
			*(char **)o->target = NULL;
		}
	}
}
