/*
 * ctl_get: cairnctl get.
 *
 * get fetches the manifest (every copy tried until one opens), then the
 * chunks on worker threads through chunkio_get() (next owner on failure or
 * on a copy that does not open), checks each length, and writes the file
 * through a temporary name that is renamed into place only when complete.
 *
 * Not here: the manifest format (manifest.h), storing a file (ctl_put.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/blockio.h"
#include "cluster/chunkio.h"
#include "cluster/ctl.h"
#include "cluster/log.h"
#include "cluster/manifest.h"
#include "cluster/progress.h"
#include "crypto/keys.h"
#include "crypto/seal.h"

#define GET_WORKERS 8

static int ctl_parse_ref(const char *ref, uint8_t addr[32])
{
	if (!strncmp(ref, CTL_REF_PREFIX, strlen(CTL_REF_PREFIX)))
		ref += strlen(CTL_REF_PREFIX);
	return ctl_unhex(ref, addr, 32);
}

/* Fetch and open a manifest block: every holder is tried until a copy opens. */
static int get_manifest_block(struct blockio *b, const struct keys *mk,
			      const uint8_t addr[32], uint8_t *out, size_t *len)
{
	struct seal_ctx *ctx = NULL;
	int last = -ENOENT, opened_bad = 0, rejected = 0, rc;

	rc = seal_ctx_new(CTL_ZSTD_LEVEL, &ctx);
	if (rc < 0)
		return rc;
	for (unsigned skip = 0;; skip++) {
		uint8_t *blk = NULL;
		size_t blen = 0;
		ssize_t n;

		rc = blockio_get(b, addr, skip, &blk, &blen);
		if (rc == -ENODATA)
			break;          /* no more holders */
		if (rc < 0) {
			/* One holder lacking it (a new owner before migration)
			 * or down: the next may have it. Not found wins only
			 * when nobody could say otherwise. */
			if (last == -ENOENT || rc != -ENOENT)
				last = rc;
			continue;
		}
		n = seal_open(ctx, mk, addr, blk, blen, out, MAN_MAX_BYTES);
		free(blk);
		if (n >= 0) {
			*len = (size_t)n;
			seal_ctx_free(ctx);
			return 0;
		}
		if (n == -EKEYREJECTED)
			rejected++;
		else
			opened_bad++;
		log_warn("manifest copy %u does not open: %s", skip, log_strerror((int)n));
	}
	seal_ctx_free(ctx);
	if (rejected && !opened_bad)
		return -EKEYREJECTED;
	if (opened_bad)
		return -EBADMSG;
	return last;
}

struct get_job {
	struct chunkio *io;
	const struct man_entry *e;
	const uint64_t *offs;
	size_t n;
	uint64_t max_len;
	int fd;
	struct progress prog;
	_Atomic size_t next;
	_Atomic int err;
	_Atomic size_t err_idx;
};

static void *get_worker(void *arg)
{
	struct get_job *j = arg;
	uint8_t *buf = malloc(j->max_len ? j->max_len : 1);

	if (!buf) {
		int zero = 0;

		atomic_compare_exchange_strong(&j->err, &zero, -ENOMEM);
		return NULL;
	}
	while (!atomic_load(&j->err)) {
		size_t i = atomic_fetch_add(&j->next, 1), done = 0;
		ssize_t n;
		int rc = 0, zero = 0;

		if (i >= j->n)
			break;
		n = chunkio_get(j->io, j->e[i].addr, buf, j->e[i].len);
		if (n < 0)
			rc = n == -ENOBUFS ? -EBADMSG : (int)n;
		else if ((uint64_t)n != j->e[i].len)
			rc = -EBADMSG;   /* authentic, but not what the manifest says */
		while (!rc && done < (size_t)n) {
			ssize_t w = pwrite(j->fd, buf + done, (size_t)n - done,
					   (off_t)(j->offs[i] + done));

			if (w < 0 && errno != EINTR)
				rc = -errno;
			else if (w > 0)
				done += (size_t)w;
		}
		if (rc) {
			if (atomic_compare_exchange_strong(&j->err, &zero, rc))
				atomic_store(&j->err_idx, i);
			break;
		}
		progress_add(&j->prog, (uint64_t)n);
	}
	free(buf);
	return NULL;
}

/* Expand a manifest tree into its data chunks (appended to *e). */
static int get_expand(struct blockio *b, const struct keys *mk,
		      const uint8_t addr[32], unsigned want_level, uint64_t want_size,
		      uint8_t *buf, struct man_entry **all, size_t *n_all,
		      size_t *cap_all, uint64_t *size)
{
	struct man_entry *e = NULL;
	unsigned level;
	size_t len = 0, n = 0;
	uint64_t sz;
	int rc;

	rc = get_manifest_block(b, mk, addr, buf, &len);
	if (rc < 0)
		return rc;
	rc = man_decode(buf, len, &level, &sz, &e, &n);
	if (rc < 0)
		return rc == -ENOTSUP ? rc : -EUCLEAN;
	if ((want_level != UINT_MAX && level != want_level) ||
	    (want_size != UINT64_MAX && sz != want_size)) {
		free(e);
		return -EUCLEAN;
	}
	if (want_level == UINT_MAX)
		*size = sz;
	if (level == 0) {
		if (*n_all + n > *cap_all) {
			size_t cap = (*n_all + n) * 2;
			struct man_entry *grown = realloc(*all, cap * sizeof(*grown));

			if (!grown) {
				free(e);
				return -ENOMEM;
			}
			*all = grown;
			*cap_all = cap;
		}
		if (n)
			memcpy(*all + *n_all, e, n * sizeof(*e));
		*n_all += n;
	}
	for (size_t i = 0; level > 0 && i < n && !rc; i++)
		rc = get_expand(b, mk, e[i].addr, level - 1, e[i].len, buf, all, n_all,
				cap_all, size);
	free(e);
	return rc;
}

static const char *get_manifest_hint(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "no such reference: no owner holds that block";
	case -EKEYREJECTED:
		return "it belongs to another volume (use that volume's key file)";
	case -EBADMSG:
		return "every copy is corrupt (or not a manifest of this volume)";
	case -EUCLEAN:
		return "the manifest opened but is malformed";
	case -ENOTSUP:
		return "the manifest has a format this version does not know";
	default:
		return ctl_conn_hint(rc);
	}
}

static int get_write_out(const struct ctl *c, struct get_job *j, const char *out,
			 uint64_t size)
{
	char tmp[4200], dir[4096], *slash;
	pthread_t th[GET_WORKERS];
	unsigned started = 0;
	mode_t mask;
	int fd, rc = 0, dfd;

	snprintf(tmp, sizeof(tmp), "%s.cairnget.XXXXXX", out);
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		ctl_err("cannot create a temporary file next to %s: %s", out,
			strerror(errno));
		return rc;
	}
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		ctl_err("cannot size %s: %s", tmp, strerror(errno));
		goto out;
	}
	j->fd = fd;
	for (; started < GET_WORKERS && started < (j->n ? j->n : 1); started++)
		if (pthread_create(&th[started], NULL, get_worker, j))
			break;
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	rc = atomic_load(&j->err);
	if (!rc && !started && j->n)
		rc = -EAGAIN;
	progress_finish(&j->prog);
	if (rc) {
		char sa[9];
		size_t i = atomic_load(&j->err_idx);

		if (i < j->n)
			ctl_err("cannot fetch chunk %zu (block %s, slot %u): %s", i,
				log_addr_short(j->e[i].addr, sa), slot_of_addr(j->e[i].addr),
				rc == -EIO ? "every copy found is corrupt" :
				rc == -ENOENT ? "no owner holds it" :
				rc == -EBADMSG ? "its length differs from the manifest" :
				ctl_conn_hint(rc));
		else
			ctl_err("cannot write %s: %s", out, log_strerror(rc));
		goto out;
	}
	if (fsync(fd) < 0 || rename(tmp, out) < 0) {
		rc = -errno;
		ctl_err("cannot write %s: %s", out, strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", out);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);     /* the rename itself is durable */
		close(dfd);
	}
	(void)c;
out:
	close(fd);
	if (rc)
		unlink(tmp);
	return rc;
}

int ctl_cmd_get(struct ctl *c, int argc, char **argv)
{
	const char *vol_s = NULL, *pos[2];
	const struct ctl_opt opts[] = {
		{ "volume", true, &vol_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct clientconf cc;
	struct keys *k = NULL, *mk = NULL;
	struct blockio *b = NULL;
	struct chunkio *io = NULL;
	struct chunkio_counters ctr;
	struct blockio_counters bctr;
	struct man_entry *all = NULL;
	struct get_job j;
	uint64_t *offs = NULL, size = 0, sum = 0;
	uint8_t root[32], *buf = NULL;
	size_t n_pos, n_all = 0, cap_all = 0;
	int rc, status = CTL_EXIT_FAIL;
	bool have_conf = false;

	memset(&j, 0, sizeof(j));
	rc = ctl_args(c, argc, argv, opts, pos, 2, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (n_pos != 2) {
		ctl_err("get: usage: cairnctl get [--volume KEYFILE] REF OUT");
		return CTL_EXIT_USAGE;
	}
	if (ctl_parse_ref(pos[0], root) < 0) {
		ctl_err("get: '%s' is not a reference (cairn: and 64 hex characters)",
			pos[0]);
		return CTL_EXIT_USAGE;
	}
	if (ctl_load_volume(c, vol_s, &k) < 0)
		goto out;
	if (ctl_load_conf(c, &cc) < 0)
		goto out;
	have_conf = true;
	if (ctl_connect(c, &cc, &b) < 0)
		goto out;
	rc = ctl_meta_keys(k, &mk);
	if (!rc)
		rc = chunkio_new(b, k, CTL_ZSTD_LEVEL, &io);
	buf = malloc(MAN_MAX_BYTES);
	if (rc < 0 || !buf) {
		ctl_err("cannot set up: %s", log_strerror(rc ? rc : -ENOMEM));
		goto out;
	}
	rc = get_expand(b, mk, root, UINT_MAX, UINT64_MAX, buf, &all, &n_all,
			&cap_all, &size);
	if (rc < 0) {
		ctl_err("cannot read %s: %s", pos[0], get_manifest_hint(rc));
		goto out;
	}
	offs = calloc(n_all ? n_all : 1, sizeof(*offs));
	if (!offs) {
		ctl_err("out of memory for %zu chunks", n_all);
		goto out;
	}
	for (size_t i = 0; i < n_all; i++) {
		offs[i] = sum;
		sum += all[i].len;
		if (all[i].len > j.max_len)
			j.max_len = all[i].len;
	}
	if (sum != size) {
		ctl_err("cannot read %s: %s", pos[0], get_manifest_hint(-EUCLEAN));
		goto out;
	}
	j.io = io;
	j.e = all;
	j.offs = offs;
	j.n = n_all;
	progress_init(&j.prog, "get", size, c->json, c->quiet);
	rc = get_write_out(c, &j, pos[1], size);
	if (rc < 0)
		goto out;
	chunkio_counters(io, &ctr);
	blockio_counters(b, &bctr);
	if (c->json) {
		printf("{\"event\":\"result\",\"ref\":");
		ctl_json_str(stdout, pos[0]);
		printf(",\"out\":");
		ctl_json_str(stdout, pos[1]);
		printf(",\"bytes\":%llu,\"chunks\":%zu,\"fetched_bytes\":%llu,"
		       "\"failovers\":%llu,\"corrupt_copies\":%llu,\"seconds\":%.3f}\n",
		       (unsigned long long)size, n_all,
		       (unsigned long long)ctr.get_stored_bytes,
		       (unsigned long long)bctr.get_failovers,
		       (unsigned long long)ctr.corrupt_copies, progress_elapsed(&j.prog));
	} else {
		char b1[32];

		ctl_note(c, "wrote %s: %s in %zu chunks in %.1f s%s", pos[1],
			 progress_fmt_bytes((double)size, b1, sizeof(b1)), n_all,
			 progress_elapsed(&j.prog),
			 ctr.corrupt_copies ? " (corrupt copies were skipped)" : "");
	}
	status = CTL_EXIT_OK;
out:
	free(buf);
	free(all);
	free(offs);
	chunkio_free(io);
	blockio_free(b);
	keys_free(mk);
	keys_free(k);
	if (have_conf)
		clientconf_release(&cc);
	return status;
}
