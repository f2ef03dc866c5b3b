/*
 * cairnctl: the admin and scripting tool of a cairnfs cluster.
 *
 * This file holds main(), the subcommand table, argument parsing and the
 * helpers every subcommand shares (errors, config dir, JSON, passphrases).
 * The subcommands live in ctl_cluster.c (cluster init, node add, status,
 * map), ctl_volume.c (volume create), ctl_put.c, ctl_get.c and ctl_bench.c
 * (the hidden bench).
 *
 * Output contract: results go to stdout (one reference for put, a table or
 * with --json one JSON object); errors are one line on stderr starting with
 * "cairnctl: "; progress only on a terminal. Exit status 0 success,
 * 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster/alloc.h"
#include "cluster/ctl.h"
#include "cluster/log.h"

struct ctl_cmd {
	const char *name;         /* "node add" */
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *usage;
	bool hidden;
};

static const struct ctl_cmd ctl_cmds[] = {
	{ "cluster init", ctl_cmd_cluster_init,
	  "cluster init [--replicas R]      make a new cluster's secret and admin key", false },
	{ "node add", ctl_cmd_node_add,
	  "node add HOST:PORT [--weight W]  add a daemon, place slots, push the map", false },
	{ "status", ctl_cmd_status,
	  "status                           nodes, epoch, blocks, slots covered", false },
	{ "map", ctl_cmd_map,
	  "map [--slot N]                   the current cluster map", false },
	{ "volume create", ctl_cmd_volume_create,
	  "volume create NAME [--out FILE] [--passphrase] [--chunk-avg N]\n"
	  "                                 write a new volume key file", false },
	{ "put", ctl_cmd_put,
	  "put [--volume KEYFILE] FILE|-    store a file, print its reference", false },
	{ "get", ctl_cmd_get,
	  "get [--volume KEYFILE] REF OUT   fetch a file by reference", false },
	{ "bench", ctl_cmd_bench, "bench ...", true },
};

static void ctl_usage(FILE *f)
{
	fputs("usage: cairnctl [--config-dir DIR] COMMAND [options]\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (!ctl_cmds[i].hidden)
			fprintf(f, "  %s\n", ctl_cmds[i].usage);
	fputs("\noptions every command takes:\n"
	      "  --config-dir DIR   cluster config dir (default $CAIRNCTL_CONFIG_DIR or "
	      CTL_DEFAULT_CONFIG_DIR ")\n"
	      "  --json             machine-readable output on stdout\n"
	      "  --quiet            no progress and no notes\n"
	      "  --verbose          debug log lines\n"
	      "  --timeout MS       per network call (default 30000; status 2000)\n"
	      "\nA passphrase-protected volume key reads $CAIRNCTL_PASSPHRASE or asks.\n",
	      f);
}

static void ctl_usage_of(const char *name)
{
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (!strcmp(ctl_cmds[i].name, name))
			printf("usage: cairnctl %s\n", ctl_cmds[i].usage);
	puts("(every command also takes --config-dir DIR, --json, --quiet, "
	     "--verbose, --timeout MS)");
}

int ctl_args_status(int rc)
{
	return rc == -ECANCELED ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

void ctl_err(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cairnctl: %s\n", line);
}

void ctl_note(const struct ctl *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (c->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

char *ctl_path(const struct ctl *c, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", c->config_dir, name);
	return buf;
}

static const struct ctl_opt *ctl_opt_find(const struct ctl_opt *opts,
					  const char *name, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len && !strncmp(opts->name, name, len))
			return opts;
	return NULL;
}

int ctl_args(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
	     const char **pos, size_t max_pos, size_t *n_pos)
{
	const char *timeout = NULL, *config_dir = NULL;
	const struct ctl_opt common[] = {
		{ "config-dir", true, &config_dir, NULL },
		{ "json", false, NULL, &c->json },
		{ "quiet", false, NULL, &c->quiet },
		{ "verbose", false, NULL, &c->verbose },
		{ "timeout", true, &timeout, NULL },
		{ NULL, false, NULL, NULL },
	};
	bool only_pos = false;

	*n_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		const struct ctl_opt *o;
		size_t len;

		if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
			if (*n_pos == max_pos) {
				ctl_err("%s: unexpected argument '%s'", argv[0], a);
				return -EINVAL;
			}
			pos[(*n_pos)++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (!strcmp(a, "--help")) {
			ctl_usage_of(argv[0]);
			return -ECANCELED;
		}
		if (strncmp(a, "--", 2)) {
			ctl_err("%s: unknown option '%s' (options are --long)", argv[0], a);
			return -EINVAL;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		o = ctl_opt_find(opts, a, len);
		if (!o)
			o = ctl_opt_find(common, a, len);
		if (!o) {
			ctl_err("%s: unknown option '--%.*s'", argv[0], (int)len, a);
			return -EINVAL;
		}
		if (!o->has_arg) {
			if (eq) {
				ctl_err("%s: option '--%s' takes no value", argv[0], o->name);
				return -EINVAL;
			}
			*o->flag = true;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			ctl_err("%s: option '--%s' needs a value", argv[0], o->name);
			return -EINVAL;
		}
		*o->val = val;
	}
	if (config_dir)
		c->config_dir = config_dir;
	if (timeout) {
		char *end;
		long v = strtol(timeout, &end, 10);

		if (*end || v <= 0 || v > 3600 * 1000) {
			ctl_err("--timeout: '%s' is not a number of milliseconds", timeout);
			return -EINVAL;
		}
		c->timeout_ms = (int)v;
	}
	if (c->verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	return 0;
}

int ctl_load_conf(const struct ctl *c, struct clientconf *cc)
{
	char err[LOG_ERRBUF] = "";
	int rc = clientconf_load(c->config_dir, cc, err, sizeof(err));

	if (rc == -ENOENT)
		ctl_err("no cluster config in %s (%s): run 'cairnctl cluster init' "
			"or pass --config-dir", c->config_dir, err[0] ? err : "missing");
	else if (rc < 0)
		ctl_err("cannot load the cluster config in %s: %s", c->config_dir,
			err[0] ? err : log_strerror(rc));
	return rc;
}

int ctl_write_conf(const char *dir, const char *cluster_id_hex, long long replicas,
		   const char *const *seeds, size_t n_seeds)
{
	char path[4096], tmp[4200];
	FILE *f = NULL;
	int fd = -1, err = 0;

	snprintf(path, sizeof(path), "%s/cairnctl.conf", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		goto out;
	}
	fd = -1;
	fprintf(f, "# cairnctl: written by 'cairnctl cluster init' and 'node add'\n"
		   "cluster-id = %s\nreplicas = %lld\nseeds = ",
		cluster_id_hex, replicas);
	for (size_t i = 0; i < n_seeds; i++)
		fprintf(f, "%s%s", i ? "," : "", seeds[i]);
	fputc('\n', f);
	if (fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	f = NULL;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (f)
		fclose(f);
	if (err)
		unlink(tmp);
	return err;
}

void ctl_pool_opts(const struct ctl *c, struct pool_opts *o, int call_ms)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 3000;
	o->call_timeout_ms = c->timeout_ms ? c->timeout_ms : call_ms;
	if (o->connect_timeout_ms > o->call_timeout_ms)
		o->connect_timeout_ms = o->call_timeout_ms;
	o->max_inflight = 256;
}

const char *ctl_conn_hint(int err)
{
	switch (err) {
	case -EKEYREJECTED:
		return "wrong cluster secret: the daemon refused the handshake "
		       "(compare cluster.secret with the daemons' --secret-file)";
	case -ECONNREFUSED:
		return "connection refused: no daemon listens there";
	case -ETIMEDOUT:
		return "timed out: the daemon does not answer";
	case -EHOSTUNREACH:
	case -ENETUNREACH:
		return "host unreachable";
	default:
		return log_strerror(err);
	}
}

void ctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void ctl_hex(const uint8_t *bin, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, bin, n);
}

int ctl_unhex(const char *hex, uint8_t *out, size_t n)
{
	size_t got = 0;

	if (strlen(hex) != 2 * n ||
	    sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) || got != n)
		return -EINVAL;
	return 0;
}

static int ctl_ask(const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	int fd, rc = 0;
	ssize_t n;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -ENOTTY;
	if (tcgetattr(fd, &old) < 0) {
		close(fd);
		return -ENOTTY;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	if (write(fd, prompt, strlen(prompt)) < 0)
		rc = -errno;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	n = rc ? -1 : read(fd, buf, cap - 1);
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0)
		rc = rc ? rc : -errno;
	close(fd);
	if (rc)
		return rc;
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return (int)strlen(buf);
}

int ctl_read_passphrase(const char *prompt, bool confirm, char *buf, size_t cap)
{
	const char *env = getenv("CAIRNCTL_PASSPHRASE");
	char again[512];
	int n;

	if (env) {
		if (strlen(env) >= cap)
			return -E2BIG;
		memcpy(buf, env, strlen(env) + 1);
		return (int)strlen(buf);
	}
	n = ctl_ask(prompt, buf, cap);
	if (n < 0 || !confirm)
		return n;
	if (ctl_ask("Again: ", again, sizeof(again)) < 0 || strcmp(again, buf)) {
		sodium_memzero(again, sizeof(again));
		sodium_memzero(buf, cap);
		return -EINVAL;
	}
	sodium_memzero(again, sizeof(again));
	return n;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	const char *env = getenv("CAIRNCTL_CONFIG_DIR");
	int first = 1;

	c.config_dir = env && *env ? env : CTL_DEFAULT_CONFIG_DIR;
	log_set_ident("cairnctl");
	alloc_tune_for_blocks();
	log_set_level(LOG_LEVEL_WARN);
	if (sodium_init() < 0) {
		ctl_err("libsodium failed to initialise");
		return CTL_EXIT_FAIL;
	}
	/* Options before the command: only the ones every command takes. */
	while (first < argc && !strncmp(argv[first], "--", 2)) {
		if (!strcmp(argv[first], "--help")) {
			ctl_usage(stdout);
			return CTL_EXIT_OK;
		} else if (!strcmp(argv[first], "--config-dir") && first + 1 < argc) {
			c.config_dir = argv[first + 1];
			first += 2;
		} else if (!strncmp(argv[first], "--config-dir=", 13)) {
			c.config_dir = argv[first] + 13;
			first++;
		} else if (!strcmp(argv[first], "--json")) {
			c.json = true;
			first++;
		} else if (!strcmp(argv[first], "--quiet")) {
			c.quiet = true;
			first++;
		} else if (!strcmp(argv[first], "--verbose")) {
			c.verbose = true;
			log_set_level(LOG_LEVEL_DEBUG);
			first++;
		} else {
			ctl_err("unknown option '%s' before the command", argv[first]);
			ctl_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (first >= argc) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
		const char *name = ctl_cmds[i].name, *sp = strchr(name, ' ');

		if (!sp) {
			if (!strcmp(argv[first], name))
				return ctl_cmds[i].run(&c, argc - first, argv + first);
			continue;
		}
		/* two-word commands: "node add" */
		if (strlen(argv[first]) == (size_t)(sp - name) &&
		    !strncmp(argv[first], name, (size_t)(sp - name)) &&
		    first + 1 < argc && !strcmp(argv[first + 1], sp + 1)) {
			argv[first + 1] = (char *)name;
			return ctl_cmds[i].run(&c, argc - first - 1, argv + first + 1);
		}
	}
	if (!strcmp(argv[first], "help")) {
		ctl_usage(stdout);
		return CTL_EXIT_OK;
	}
	ctl_err("unknown command '%s%s%s'", argv[first], first + 1 < argc ? " " : "",
		first + 1 < argc ? argv[first + 1] : "");
	ctl_usage(stderr);
	return CTL_EXIT_USAGE;
}
