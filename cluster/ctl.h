/*
 * ctl: what the cairnctl subcommands share — the command context, argument
 * parsing, the one-line error printer, config-dir helpers and JSON output,
 * and for put, get and bench the volume key and the cluster connection.
 *
 * Each subcommand is `int ctl_cmd_x(struct ctl *c, int argc, char **argv)`
 * with argv[0] the subcommand's name; it returns the process exit status
 * (0 success, 1 failure, 2 usage). Only main() exits.
 *
 * Not a library: this is cairnctl's private header.
 */
#ifndef CAIRN_CTL_H
#define CAIRN_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster/clientconf.h"
#include "cluster/cmap.h"
#include "cluster/pool.h"

#define CTL_DEFAULT_CONFIG_DIR "/etc/cairnfs"
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_ADMIN_SK_BYTES 64     /* crypto_sign_SECRETKEYBYTES */
#define CTL_SECRET_BYTES 32
#define CTL_MAX_POS 8             /* positional arguments per subcommand */
#define CTL_REF_PREFIX "cairn:"   /* + manifest address: a reference */
#define CTL_ZSTD_LEVEL 1          /* put's and get's seal contexts */

struct blockio;
struct keys;

struct ctl {
	const char *config_dir;   /* --config-dir, $CAIRNCTL_CONFIG_DIR, default */
	bool json;                /* --json: machine-readable stdout */
	bool quiet;               /* --quiet: no progress, no notes */
	bool verbose;             /* --verbose: debug log lines */
	int timeout_ms;           /* --timeout: per network call */
};

/* One option of a subcommand. has_arg: value goes to *val; else *flag = true. */
struct ctl_opt {
	const char *name;         /* without "--" */
	bool has_arg;
	const char **val;
	bool *flag;
};

/*
 * Parse argv[1..argc) against opts plus the options every subcommand takes
 * (--config-dir, --json, --quiet, --verbose, --timeout). Options may come
 * before, between or after positionals; "--" ends options. Positionals go to
 * pos[0..*n_pos). Returns 0, -ECANCELED when --help was printed, or
 * -EINVAL after printing what was wrong; ctl_args_status() turns either
 * into the exit status.
 */
int ctl_args(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
	     const char **pos, size_t max_pos, size_t *n_pos);

int ctl_args_status(int rc);

/* "cairnctl: <message>" on stderr, one line. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A note for people (stderr), suppressed by --quiet. */
void ctl_note(const struct ctl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* DIR/name into buf; returns buf. */
char *ctl_path(const struct ctl *c, const char *name, char *buf, size_t len);

/* Load the config dir; prints a one-line error and returns -errno on failure. */
int ctl_load_conf(const struct ctl *c, struct clientconf *cc);

/* Rewrite DIR/cairnctl.conf (tmp + fsync + rename). */
int ctl_write_conf(const char *dir, const char *cluster_id_hex, long long replicas,
		   const char *const *seeds, size_t n_seeds);

/* Pool options from the context: short timeouts for admin commands. */
void ctl_pool_opts(const struct ctl *c, struct pool_opts *o, int call_ms);

/* Words for a connection failure to the cluster, for an error line. */
const char *ctl_conn_hint(int err);

/*
 * Fetch the newest valid map from the given daemons (MAP_GET on each,
 * verified against admin_pk). *out is NULL with 0 returned when daemons
 * answered but none has a map; -errno when none answered at all (the last
 * error; *reached = 0).
 */
int ctl_fetch_map(struct pool *p, const char *const *addrs, size_t n,
		  const uint8_t admin_pk[CMAP_PK_BYTES], struct cmap **out,
		  size_t *reached);

/* NODE_STATUS of one daemon: values[key] for key 1..PROTO_STAT_MAX, have[key]. */
#define CTL_STAT_SLOTS 32
struct ctl_node_stat {
	int err;                  /* 0 when it answered */
	uint64_t values[CTL_STAT_SLOTS];
	bool have[CTL_STAT_SLOTS];
	double rtt_ms;
};
int ctl_node_status(struct pool *p, const char *addr, struct ctl_node_stat *st);

/* JSON string output with escaping. */
void ctl_json_str(FILE *f, const char *s);
void ctl_hex(const uint8_t *bin, size_t n, char *out);  /* out: 2n+1 bytes */
int ctl_unhex(const char *hex, uint8_t *out, size_t n);   /* exact length */

/* Passphrase: $CAIRNCTL_PASSPHRASE, else asked on the terminal (twice when
 * confirm). Returns length, or -errno. buf is NUL-terminated. */
int ctl_read_passphrase(const char *prompt, bool confirm, char *buf, size_t cap);

/* ctl_volume.c: what put, get and bench share. */

/* Read the volume key file path_arg (NULL: DIR/volumes/default.key), asking
 * for its passphrase when it has one. Prints a one-line error and returns
 * -errno on failure. */
int ctl_load_volume(const struct ctl *c, const char *path_arg, struct keys **k);

/* Connect to the cluster through the config's seeds. Prints a one-line
 * error and returns -errno on failure. */
int ctl_connect(const struct ctl *c, const struct clientconf *cc,
		struct blockio **b);

/* Keys for manifests: a key set whose master is the metadata subkey, so
 * manifests get their own address space and encryption key. */
int ctl_meta_keys(const struct keys *k, struct keys **meta);

/* Subcommands. */
int ctl_cmd_cluster_init(struct ctl *c, int argc, char **argv);
int ctl_cmd_node_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_status(struct ctl *c, int argc, char **argv);
int ctl_cmd_map(struct ctl *c, int argc, char **argv);
int ctl_cmd_volume_create(struct ctl *c, int argc, char **argv);
int ctl_cmd_put(struct ctl *c, int argc, char **argv);
int ctl_cmd_get(struct ctl *c, int argc, char **argv);
int ctl_cmd_bench(struct ctl *c, int argc, char **argv);

#endif
