/*
 * cairnd: the storage daemon's main: options (cluster/conf.h), key files,
 * logging, then srv_new/srv_run. Does no protocol or disk work itself.
 *
 * Key files shared with cairnctl: the cluster secret file is one line of
 * 64 hex digits and must be mode 0600 (no group or other bits); the admin
 * public key file is one line of 64 hex digits.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "cluster/alloc.h"
#include "cluster/conf.h"
#include "cluster/log.h"
#include "daemon/srv.h"

#define CAIRND_DEFAULT_CONFIG "/etc/cairnfs/cairnd.conf"

static char *opt_data_dir, *opt_listen, *opt_secret_file, *opt_admin_pk_file;
static char *opt_log_level;
static long long opt_workers, opt_max_conns, opt_idle_ms, opt_hs_ms;
static long long opt_frame_ms, opt_gossip_ms;
static bool opt_direct_io;

static const struct conf_option options[] = {
	{ "data-dir", CONF_STRING, &opt_data_dir, "/var/lib/cairnd", 0, 0,
	  "directory of this node's blocks, identity and cluster map" },
	{ "listen", CONF_STRING, &opt_listen, "127.0.0.1:7420", 0, 0,
	  "address to serve on as host:port (port 0 picks a free one)" },
	{ "secret-file", CONF_STRING, &opt_secret_file, NULL, 0, 0,
	  "file holding the cluster secret as 64 hex digits, mode 0600" },
	{ "admin-pubkey-file", CONF_STRING, &opt_admin_pk_file, NULL, 0, 0,
	  "admin public key (64 hex digits) that must sign maps; unset: "
	  "pinned from the first accepted map" },
	{ "workers", CONF_INT, &opt_workers, "4", 1, 64,
	  "threads doing disk work" },
	{ "max-connections", CONF_INT, &opt_max_conns, "1024", 1, 1000000,
	  "connections served at once; more are closed at accept" },
	{ "idle-timeout", CONF_DURATION_MS, &opt_idle_ms, "300s", 100, 86400000,
	  "close a connection with nothing to do for this long" },
	{ "handshake-timeout", CONF_DURATION_MS, &opt_hs_ms, "10s", 50, 3600000,
	  "a peer must complete the handshake within this time" },
	{ "frame-timeout", CONF_DURATION_MS, &opt_frame_ms, "30s", 50, 3600000,
	  "a started frame must arrive whole, and queued answers be read, "
	  "within this time" },
	{ "gossip-interval", CONF_DURATION_MS, &opt_gossip_ms, "5s", 0, 3600000,
	  "how often to compare map epochs with every peer (0: never)" },
	{ "direct-io", CONF_BOOL, &opt_direct_io, "true", 0, 0,
	  "read block files left by versions before pack files with "
	  "O_DIRECT, past the page cache (falls back by itself where the "
	  "filesystem refuses it)" },
	{ "log-level", CONF_STRING, &opt_log_level, "info", 0, 0,
	  "error, warn, info or debug" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL },
};

/* One line of 2*n hex digits into out. Refuses a private file readable by
 * group or others. Fills err. */
static int read_hex_file(const char *path, bool private, uint8_t *out,
			 size_t n, char *err, size_t err_len)
{
	char buf[256];
	struct stat sb;
	size_t bin = 0;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0) {
		rc = -errno;
		snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		snprintf(err, err_len, "cannot stat %s", path);
		goto out;
	}
	if (private && (sb.st_mode & 077)) {
		rc = -EPERM;
		snprintf(err, err_len, "%s has mode %03o: it must be 0600 "
			 "(chmod 600 %s)", path, (unsigned)(sb.st_mode & 0777), path);
		goto out;
	}
	got = read(fd, buf, sizeof(buf) - 1);
	if (got < 0) {
		rc = -errno;
		snprintf(err, err_len, "cannot read %s", path);
		goto out;
	}
	buf[got] = '\0';
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r' ||
			   buf[got - 1] == ' '))
		buf[--got] = '\0';
	if ((size_t)got != 2 * n ||
	    sodium_hex2bin(out, n, buf, (size_t)got, NULL, &bin, NULL) != 0 ||
	    bin != n) {
		rc = -EINVAL;
		snprintf(err, err_len, "%s: expected one line of %zu hex digits",
			 path, 2 * n);
	}
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cairnd [--config FILE] [--OPTION=VALUE ...]\n"
		   "       cairnd --print-config | --help\n\n"
		   "The cairnfs storage daemon. Options (also keys of the "
		   "config file, default " CAIRND_DEFAULT_CONFIG "):\n");
	conf_print_help(f, options);
}

/*
 * Every pack file stays open while the daemon runs (one per 64 MiB held:
 * 16,384 for 1 TiB), besides the clients' connections, so take the hard
 * limit on open files rather than the soft 1,024 a shell often gives.
 */
static void raise_open_files_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("cannot raise the open files limit to %llu: %s",
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

int main(int argc, char **argv)
{
	char err[LOG_ERRBUF] = "";
	const char *cfg = conf_find_flag(argc, argv, "config");
	struct srv_opts so = { 0 };
	struct srv *s = NULL;
	enum log_level lvl;
	int first = 0, rc = 1, r;

	log_set_ident("cairnd");
	alloc_tune_for_blocks();
	if (conf_has_flag(argc, argv, "help")) {
		usage(stdout);
		return 0;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "cairnd: libsodium failed to initialise\n");
		return 1;
	}
	if (conf_defaults(options, err, sizeof(err)) ||
	    (r = conf_load_file(options, cfg ? cfg : CAIRND_DEFAULT_CONFIG, err,
				sizeof(err)), r && !(r == -ENOENT && !cfg)) ||
	    conf_parse_args(options, argc, argv, &first, err, sizeof(err))) {
		if (!err[0])
			snprintf(err, sizeof(err), "cannot read %s", cfg);
		fprintf(stderr, "cairnd: %s\n", err);
		goto out;
	}
	if (first < argc) {
		fprintf(stderr, "cairnd: unexpected argument '%s' (see --help)\n",
			argv[first]);
		goto out;
	}
	if (conf_has_flag(argc, argv, "print-config")) {
		conf_print(stdout, options);
		rc = 0;
		goto out;
	}
	if (log_parse_level(opt_log_level, &lvl)) {
		fprintf(stderr, "cairnd: log-level '%s' is not error, warn, info "
			"or debug\n", opt_log_level);
		goto out;
	}
	log_set_level(lvl);
	if (!opt_secret_file) {
		log_err("no secret-file given: the cluster secret is required "
			"(cairnctl cluster init makes one)");
		goto out;
	}
	if (read_hex_file(opt_secret_file, true, so.secret, sizeof(so.secret),
			  err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	if (opt_admin_pk_file) {
		if (read_hex_file(opt_admin_pk_file, false, so.admin_pk,
				  sizeof(so.admin_pk), err, sizeof(err))) {
			log_err("%s", err);
			goto out;
		}
		so.have_admin_pk = true;
	}
	so.data_dir = opt_data_dir;
	so.listen = opt_listen;
	so.workers = (unsigned)opt_workers;
	so.max_connections = (unsigned)opt_max_conns;
	so.idle_timeout_s = (double)opt_idle_ms / 1000;
	so.handshake_timeout_s = (double)opt_hs_ms / 1000;
	so.frame_timeout_s = (double)opt_frame_ms / 1000;
	so.gossip_interval_s = (double)opt_gossip_ms / 1000;
	so.buffered_io = !opt_direct_io;
	raise_open_files_limit();
	signal(SIGPIPE, SIG_IGN);
	if (srv_new(&so, &s))
		goto out;
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	rc = srv_run(s) ? 1 : 0;
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
out:
	srv_free(s);
	sodium_memzero(&so, sizeof(so));
	conf_release(options);
	return rc;
}
