/*
 * cairnfs: mount a cairnfs volume.
 *
 *   cairnfs [-f] [-d] -o cluster=DIR,key=FILE,meta=DIR[,...] VOLUME MOUNTPOINT
 *   mount -t fuse.cairnfs VOLUME MOUNTPOINT -o cluster=...   (mount.cairnfs)
 *
 * Start-up order matters: everything that can fail for a reason the user
 * must read (a bad key file, an unreachable cluster, a metadata dir already
 * mounted or of another volume) fails before we detach, with the message on
 * the caller's terminal and a non-zero exit, so `mount` reports it. We fork
 * first (threads do not survive fork) and the parent waits on a pipe until
 * the child has mounted or failed.
 */
#include "config.h"
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cluster/alloc.h"
#include "cluster/conf.h"
#include "cluster/log.h"
#include "fs/fs.h"
#include "fs/fsdata.h"
#include "fs/loop.h"
#include "fs/meta.h"

struct cmdline {
	struct fs_opts o;
	char *volume;
	int help;
	int version;
};

#define CF_OPT(t, p, v) { t, offsetof(struct cmdline, p), v }

static const struct fuse_opt cairnfs_opt_spec[] = {
	CF_OPT("cluster=%s", o.cluster_dir, 0),
	CF_OPT("key=%s", o.key_file, 0),
	CF_OPT("meta=%s", o.meta_dir, 0),
	CF_OPT("cache=%s", o.cache_size, 0),
	CF_OPT("passfile=%s", o.pass_file, 0),
	CF_OPT("timeout=%d", o.timeout_ms, 0),
	CF_OPT("zstd=%d", o.zstd_level, 0),
	CF_OPT("log=%s", o.log_level, 0),
	CF_OPT("quorum=%d", o.write_quorum, 0),
	CF_OPT("spin=%d", o.spin_us, 0),
	CF_OPT("ro", o.ro, 1),
	CF_OPT("allow_other", o.allow_other, 1),
	CF_OPT("--help", help, 1),
	CF_OPT("-h", help, 1),
	CF_OPT("--version", version, 1),
	/* What mount(8) and fstab pass along that means nothing to us. */
	FUSE_OPT_KEY("rw", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("x-systemd.", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("x-", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

static int cairnfs_opt_proc(void *data, const char *arg, int key,
			    struct fuse_args *outargs)
{
	struct cmdline *cl = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT && !cl->volume) {
		cl->volume = strdup(arg);
		return 0;               /* consumed; the mountpoint stays */
	}
	/* fuse_opt matches "x-systemd.automount" against "x-systemd." only
	 * when the template ends in a wildcard; drop every x-* here. */
	if (key == FUSE_OPT_KEY_OPT && !strncmp(arg, "x-", 2))
		return 0;
	return 1;
}

/* The strings fuse_opt_parse() allocated for us. */
static void cmdline_free(struct cmdline *cl)
{
	free(cl->volume);
	free(cl->o.cluster_dir);
	free(cl->o.key_file);
	free(cl->o.meta_dir);
	free(cl->o.cache_size);
	free(cl->o.pass_file);
	free(cl->o.log_level);
}

static void usage(const char *prog)
{
	printf("usage: %s [options] VOLUME MOUNTPOINT\n\n"
	       "cairnfs options (-o name=value,...):\n"
	       "    cluster=DIR     cluster config dir made by 'cairnctl cluster init'\n"
	       "                    (cluster.secret, admin.pub, cairnctl.conf)\n"
	       "    key=FILE        volume key file ('cairnctl volume create'); mode 0600\n"
	       "    meta=DIR        metadata dir (LMDB) of this volume on this machine\n"
	       "    cache=SIZE      memory for file data: write buffers take up to half\n"
	       "                    (at most 128M), the block cache the rest (default 256M)\n"
	       "    passfile=FILE   passphrase for a wrapped key (else asked on the tty)\n"
	       "    timeout=MS      network call timeout (default 10000)\n"
	       "    zstd=N          zstd level for new blocks, 1..19 (default 1; -1: none)\n"
	       "    log=LEVEL       error, warn, info (default) or debug\n"
	       "    quorum=N        a write succeeds once N owners of each block stored it\n"
	       "                    (default: all R; lower keeps writes going with an owner\n"
	       "                    down, at the price of fewer copies until repair)\n"
	       "    spin=US         after a request, look for the next one this long\n"
	       "                    before sleeping (default 100; 0 never spins): a\n"
	       "                    run of stats or creates skips a thread wake-up each\n"
	       "    ro              read-only\n"
	       "    allow_other     let other users in (with default_permissions)\n\n",
	       prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* Read a passphrase without echo from the terminal, or from a file. */
static int read_passphrase(const char *file, char *buf, size_t cap)
{
	struct termios old, quiet;
	FILE *f;
	int tty = 0;
	size_t n;

	if (file) {
		f = fopen(file, "r");
		if (!f)
			return -errno;
	} else {
		f = fopen("/dev/tty", "r+");
		if (!f)
			return -ENOTTY;
		tty = 1;
		fputs("volume passphrase: ", f);
		fflush(f);
		tcgetattr(fileno(f), &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(f), TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, (int)cap, f))
		buf[0] = '\0';
	if (tty) {
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fputc('\n', f);
	}
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return (int)n;
}

static int open_volume_key(struct fsctx *fs, char *err, size_t err_len)
{
	char pass[512];
	int need, rc, n;

	need = keys_file_needs_passphrase(fs->opts.key_file);
	if (need < 0)
		need = 0;           /* keys_file_read reports the real problem */
	if (!need)
		return keys_file_read(fs->opts.key_file, NULL, 0, &fs->keys, err,
				      err_len);
	n = read_passphrase(fs->opts.pass_file, pass, sizeof(pass));
	if (n < 0) {
		snprintf(err, err_len,
			 "%s is passphrase-protected and there is no terminal to ask on: use -o passfile=FILE",
			 fs->opts.key_file);
		return -ENOKEY;
	}
	rc = keys_file_read(fs->opts.key_file, pass, (size_t)n, &fs->keys, err,
			    err_len);
	explicit_bzero(pass, sizeof(pass));
	return rc;
}

/*
 * cache=SIZE bounds the mount's memory for file data: the write pipeline
 * (up to FSDATA_TOTAL_DIRTY of dirty data plus what is being sealed and
 * uploaded, ~130 MiB at peak in a 2 GiB write) takes its share off the top
 * and the block cache gets the rest, so resident memory stays within SIZE +
 * 64 MiB whatever ran before. With the whole SIZE for the block cache, a
 * write after a large read peaked at SIZE + 170 MiB (256M cache: 425 MiB).
 */
#define WRITE_RESERVE_MAX (128ull << 20)
#define BLOCK_CACHE_MIN (8ull << 20)

static uint64_t block_cache_share(uint64_t cache_bytes)
{
	uint64_t reserve = cache_bytes / 2 < WRITE_RESERVE_MAX ? cache_bytes / 2
							       : WRITE_RESERVE_MAX;

	return cache_bytes - reserve < BLOCK_CACHE_MIN ? BLOCK_CACHE_MIN
						       : cache_bytes - reserve;
}

/* Everything but the FUSE session: key, cluster, cache, metadata, data path. */
static int fs_open(struct fsctx *fs, const char *volume, char *err,
		   size_t err_len)
{
	struct blockio_opts bo = { 0 };
	const char *seeds[CLIENTCONF_MAX_SEEDS];
	int rc;

	rc = open_volume_key(fs, err, err_len);
	if (rc < 0)
		return rc;
	if (strcmp(keys_volume(fs->keys)->name, volume)) {
		snprintf(err, err_len, "%s is the key of volume '%s', not '%s'",
			 fs->opts.key_file, keys_volume(fs->keys)->name, volume);
		return -EKEYREJECTED;
	}
	rc = clientconf_load(fs->opts.cluster_dir, &fs->cluster, err, err_len);
	if (rc < 0)
		return rc;
	if (!fs->cluster.n_seeds) {
		snprintf(err, err_len, "%s/cairnctl.conf lists no daemons (seeds): add nodes with 'cairnctl node add'",
			 fs->opts.cluster_dir);
		return -ENOENT;
	}
	for (size_t i = 0; i < fs->cluster.n_seeds; i++)
		seeds[i] = fs->cluster.seeds[i];
	bo.pool.connect_timeout_ms = 3000;
	bo.pool.call_timeout_ms = fs->opts.timeout_ms;
	bo.write_quorum = (unsigned)fs->opts.write_quorum;
	rc = blockio_new(seeds, fs->cluster.n_seeds, fs->cluster.secret,
			 fs->cluster.admin_pk, &bo, &fs->bio);
	if (rc < 0) {
		snprintf(err, err_len, "cannot reach the cluster of %s (%s): %s",
			 fs->opts.cluster_dir, fs->cluster.seeds[0],
			 rc == -EKEYREJECTED ? "the daemons refused our cluster secret" :
			 rc == -ENOENT ? "no daemon has a cluster map yet" :
			 log_strerror(rc));
		return rc;
	}
	rc = chunkio_new(fs->bio, fs->keys, fs->opts.zstd_level, &fs->cio);
	if (rc < 0)
		return rc;
	rc = bcache_new(block_cache_share(fs->cache_bytes), &fs->cache);
	if (rc < 0)
		return rc;
	rc = meta_open(fs->opts.meta_dir, keys_volume(fs->keys), fs->ro,
		       &fs->meta, err, err_len);
	if (rc < 0)
		return rc;
	rc = fsdata_new(fs, &fs->data);
	if (rc < 0) {
		snprintf(err, err_len, "cannot start the data pipeline: %s",
			 log_strerror(rc));
		return rc;
	}
	return fsdata_replay_parked(fs->data, err, err_len);
}

static void fs_close(struct fsctx *fs)
{
	if (fs->data)
		fsdata_free(fs->data);     /* flushes everything still buffered */
	if (fs->meta)
		meta_close(fs->meta);
	chunkio_free(fs->cio);
	bcache_free(fs->cache);
	blockio_free(fs->bio);
	clientconf_release(&fs->cluster);
	keys_free(fs->keys);
}

/* Tell the waiting parent how start-up went: "" for success, else why. */
static void report_to_parent(int fd, const char *msg)
{
	if (fd < 0)
		return;
	if (write(fd, msg, strlen(msg) + 1) < 0)
		return;                  /* parent gone: nothing to tell */
	close(fd);
}

static int wait_for_child(int fd, pid_t child)
{
	char msg[1024];
	ssize_t n, total = 0;
	int status;

	while ((n = read(fd, msg + total, sizeof(msg) - 1 - (size_t)total)) > 0)
		total += n;
	msg[total] = '\0';
	if (total > 0 && msg[0] == '\0')
		return 0;
	if (total > 0) {
		fprintf(stderr, "cairnfs: %s\n", msg);
		return 1;
	}
	waitpid(child, &status, 0);
	fprintf(stderr, "cairnfs: start-up failed (exit status %d)\n",
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 1;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	/* stderr stays where it was if it is a file (logs), else /dev/null. */
	if (isatty(STDERR_FILENO))
		dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts fo = { 0 };
	struct fuse_session *se = NULL;
	struct cmdline cl = { 0 };
	struct fsctx fs = { 0 };
	char err[1024] = "";
	int report_fd = -1, rc = 1;

	log_set_ident("cairnfs");
	alloc_tune_for_blocks();
	alloc_limit_arenas(2);
	cl.o.timeout_ms = 10000;
	cl.o.zstd_level = 1;
	cl.o.spin_us = 100;
	if (fuse_opt_parse(&args, &cl, cairnfs_opt_spec, cairnfs_opt_proc) < 0)
		{ rc = 2; goto out; }
	if (cl.help) {
		usage(argv[0]);
		rc = 0;
		goto out;
	}
	if (cl.version) {
		printf("cairnfs %s, libfuse %s\n", PACKAGE_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (fuse_parse_cmdline(&args, &fo) < 0)
		{ rc = 2; goto out; }
	if (!cl.volume || !fo.mountpoint) {
		fprintf(stderr, "usage: %s [options] VOLUME MOUNTPOINT (see --help)\n", argv[0]);
		{ rc = 2; goto out; }
	}
	fs.opts = cl.o;
	fs.ro = cl.o.ro;
	if (!fs.opts.cluster_dir || !fs.opts.key_file || !fs.opts.meta_dir) {
		fprintf(stderr, "cairnfs: -o cluster=DIR,key=FILE,meta=DIR are all required (see --help)\n");
		{ rc = 2; goto out; }
	}
	fs.cache_bytes = 256ull << 20;
	if (fs.opts.cache_size && conf_parse_size(fs.opts.cache_size, &fs.cache_bytes) < 0) {
		fprintf(stderr, "cairnfs: cache=%s is not a size (e.g. 512M)\n", fs.opts.cache_size);
		{ rc = 2; goto out; }
	}
	if (fs.opts.log_level) {
		enum log_level lv;

		if (log_parse_level(fs.opts.log_level, &lv) < 0) {
			fprintf(stderr, "cairnfs: log=%s: not a level (error, warn, info, debug)\n",
				fs.opts.log_level);
			{ rc = 2; goto out; }
		}
		log_set_level(lv);
	}
	if (fs.opts.write_quorum < 0 || fs.opts.write_quorum > 16) {
		fprintf(stderr, "cairnfs: quorum=%d: give 1..16, or 0 for every owner\n",
			fs.opts.write_quorum);
		{ rc = 2; goto out; }
	}
	/* Checked here: the sealers make their zstd contexts later, on
	 * their own threads, and a level zstd refuses would fail every
	 * write of a mount that had come up. */
	if (fs.opts.zstd_level < -1 || fs.opts.zstd_level > 19) {
		fprintf(stderr, "cairnfs: zstd=%d: give 1..19, or -1 for no compression\n",
			fs.opts.zstd_level);
		{ rc = 2; goto out; }
	}
	if (fs.opts.spin_us < 0 || fs.opts.spin_us > 10000) {
		fprintf(stderr, "cairnfs: spin=%d: give 0..10000 microseconds\n", fs.opts.spin_us);
		{ rc = 2; goto out; }
	}
	if (fs.opts.timeout_ms < 100) {
		fprintf(stderr, "cairnfs: timeout=%d is too short (at least 100 ms)\n", fs.opts.timeout_ms);
		{ rc = 2; goto out; }
	}
	/* allow_other without permission checks would let every local user
	 * read every file (libfuse #15): the kernel checks modes for us. */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	if (fs.opts.allow_other)
		fuse_opt_add_arg(&args, "-oallow_other");
	if (fs.ro)
		fuse_opt_add_arg(&args, "-oro");
	fuse_opt_add_arg(&args, "-ofsname=cairnfs");
	fuse_opt_add_arg(&args, "-osubtype=cairnfs");

	if (!fo.foreground) {
		int pfd[2];
		pid_t pid;

		if (pipe(pfd) < 0) {
			perror("cairnfs: pipe");
			goto out;
		}
		pid = fork();
		if (pid < 0) {
			perror("cairnfs: fork");
			goto out;
		}
		if (pid > 0) {
			close(pfd[1]);
			rc = wait_for_child(pfd[0], pid);
			goto out;
		}
		close(pfd[0]);
		report_fd = pfd[1];
		setsid();
	}

	rc = fs_open(&fs, cl.volume, err, sizeof(err));
	if (rc < 0) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", log_strerror(rc));
		goto fail;
	}
	se = fuse_session_new(&args, &cairnfs_ll_ops, sizeof(cairnfs_ll_ops), &fs);
	if (!se) {
		snprintf(err, sizeof(err), "bad FUSE options");
		goto fail;
	}
	if (fuse_set_signal_handlers(se) < 0) {
		snprintf(err, sizeof(err), "cannot install signal handlers");
		goto fail;
	}
	if (fuse_session_mount(se, fo.mountpoint) < 0) {
		snprintf(err, sizeof(err), "cannot mount on %s (does it exist? is /dev/fuse there?)",
			 fo.mountpoint);
		goto fail;
	}
	log_info("volume %s mounted on %s%s", cl.volume, fo.mountpoint,
		 fs.ro ? " read-only" : "");
	if (report_fd >= 0) {
		if (chdir("/") < 0)
			log_warn("chdir /: %s", log_strerror(-errno));
		detach_stdio();
		report_to_parent(report_fd, "");
		report_fd = -1;
	}

	if (fo.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		struct loop_opts lo = { .max_threads = 16, .max_idle = 8,
					.spin_us = (unsigned)cl.o.spin_us,
					.last_request_ns = &fs.last_request_ns };

		rc = loop_run(se, &lo);
		if (rc < 0)
			log_err("reading /dev/fuse: %s", log_strerror(rc));
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	se = NULL;
	fs_close(&fs);
	log_info("volume %s unmounted", cl.volume);
	rc = rc ? 1 : 0;
	goto out;

fail:
	if (report_fd >= 0)
		report_to_parent(report_fd, err);
	else
		fprintf(stderr, "cairnfs: %s\n", err);
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fs_close(&fs);
	rc = 1;
out:
	free(fo.mountpoint);
	fuse_opt_free_args(&args);
	cmdline_free(&cl);
	return rc;
}
