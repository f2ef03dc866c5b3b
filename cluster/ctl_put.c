/*
 * ctl_put: cairnctl put.
 *
 * put streams a file through the volume's chunker; per batch of chunks a
 * worker thread computes the addresses, asks the owners which they already
 * hold (dedup: those are not sealed or sent), seals the rest and uploads
 * them pipelined with blockio_put_many(). Several batches are in flight at
 * once, so reading, sealing and the network overlap. Then it stores a
 * manifest (manifest.h) sealed under keys derived from the volume's metadata
 * subkey and prints its reference, "cairn:" + the manifest's address.
 *
 * Not here: the manifest format (manifest.h), reading a file back
 * (ctl_get.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunker/chunker.h"
#include "cluster/blockio.h"
#include "cluster/chunkio.h"
#include "cluster/ctl.h"
#include "cluster/log.h"
#include "cluster/manifest.h"
#include "cluster/progress.h"
#include "crypto/keys.h"

#define PUT_BATCH_BYTES (8u << 20)
#define PUT_HAS_MAX 1024u

struct put_batch {
	struct put_batch *next;       /* all batches, in file order */
	struct put_batch *qnext;      /* work queue */
	uint8_t *data;                /* the batch's chunks back to back */
	uint64_t bytes;
	size_t n, cap;
	uint32_t *lens;
	uint8_t (*addrs)[32];
};

struct put_job {
	const struct ctl *c;
	struct blockio *b;
	struct chunkio *io;
	struct progress prog;
	pthread_mutex_t lock;         /* guards everything below */
	pthread_cond_t cv;
	struct put_batch *q_head, *q_tail;
	unsigned queued, workers;
	bool closing;
	int err;                      /* first failure; later work is skipped */
	char err_what[128];
	uint64_t chunks, new_chunks, new_bytes, sealed_bytes;
	uint64_t man_blocks, man_new;
};

static void put_fail(struct put_job *j, int err, const char *what)
{
	pthread_mutex_lock(&j->lock);
	if (!j->err) {
		j->err = err;
		snprintf(j->err_what, sizeof(j->err_what), "%s", what);
	}
	pthread_mutex_unlock(&j->lock);
}

/* Which chunks the owners lack; duplicates inside the batch count once. */
static void put_find_missing(struct put_job *j, struct put_batch *bt, bool *has)
{
	for (size_t i = 0; i < bt->n; i += PUT_HAS_MAX) {
		size_t k = bt->n - i < PUT_HAS_MAX ? bt->n - i : PUT_HAS_MAX;

		/* A failed HAS is not fatal: we upload, and PUT says what is wrong. */
		if (blockio_has(j->b, (const uint8_t (*)[32])bt->addrs + i, k, has + i) < 0)
			memset(has + i, 0, k * sizeof(*has));
	}
	for (size_t i = 1; i < bt->n; i++) {
		size_t from = bt->n > 256 ? i - 1 : 0;

		for (size_t p = from; p < i && !has[i]; p++)
			if (!memcmp(bt->addrs[p], bt->addrs[i], 32))
				has[i] = true;
	}
}

static int put_batch_run(struct put_job *j, struct put_batch *bt)
{
	uint8_t (*maddrs)[32] = NULL;
	uint8_t **blks = NULL;
	size_t *slens = NULL, m = 0, off = 0;
	uint64_t new_bytes = 0, sealed = 0;
	bool *has = NULL;
	int *errs = NULL, rc = 0;

	for (size_t i = 0; i < bt->n; off += bt->lens[i], i++)
		chunkio_addr(j->io, bt->data + off, bt->lens[i], bt->addrs[i]);
	has = calloc(bt->n, sizeof(*has));
	maddrs = calloc(bt->n, sizeof(*maddrs));
	blks = calloc(bt->n, sizeof(*blks));
	slens = calloc(bt->n, sizeof(*slens));
	errs = calloc(bt->n, sizeof(*errs));
	if (!has || !maddrs || !blks || !slens || !errs) {
		rc = -ENOMEM;
		put_fail(j, rc, "out of memory");
		goto out;
	}
	put_find_missing(j, bt, has);
	off = 0;
	for (size_t i = 0; i < bt->n; off += bt->lens[i], i++) {
		ssize_t sl;

		if (has[i])
			continue;
		sl = chunkio_seal(j->io, bt->addrs[i], bt->data + off, bt->lens[i],
				  &blks[m]);
		if (sl < 0) {
			rc = (int)sl;
			put_fail(j, rc, "cannot seal a chunk");
			goto out;
		}
		memcpy(maddrs[m], bt->addrs[i], 32);
		slens[m] = (size_t)sl;
		new_bytes += bt->lens[i];
		sealed += (uint64_t)sl;
		m++;
	}
	if (m) {
		rc = blockio_put_many(j->b, (const uint8_t (*)[32])maddrs,
				      (const void *const *)blks, slens, m, errs);
		if (rc < 0) {
			char what[128], sa[9];

			for (size_t i = 0; i < m; i++)
				if (errs[i] < 0) {
					snprintf(what, sizeof(what), "cannot store block %s "
						 "(slot %u)", log_addr_short(maddrs[i], sa),
						 slot_of_addr(maddrs[i]));
					rc = errs[i];
					break;
				}
			put_fail(j, rc, what);
			goto out;
		}
	}
	pthread_mutex_lock(&j->lock);
	j->chunks += bt->n;
	j->new_chunks += m;
	j->new_bytes += new_bytes;
	j->sealed_bytes += sealed;
	pthread_mutex_unlock(&j->lock);
	progress_add(&j->prog, bt->bytes);
out:
	for (size_t i = 0; blks && i < m; i++)
		free(blks[i]);
	free(blks);
	free(has);
	free(maddrs);
	free(slens);
	free(errs);
	return rc;
}

static void *put_worker(void *arg)
{
	struct put_job *j = arg;

	for (;;) {
		struct put_batch *bt;
		bool skip;

		pthread_mutex_lock(&j->lock);
		while (!j->q_head && !j->closing)
			pthread_cond_wait(&j->cv, &j->lock);
		bt = j->q_head;
		if (!bt) {
			pthread_mutex_unlock(&j->lock);
			break;
		}
		j->q_head = bt->qnext;
		if (!j->q_head)
			j->q_tail = NULL;
		j->queued--;
		skip = j->err != 0;
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->lock);
		if (!skip)
			put_batch_run(j, bt);
		free(bt->data);         /* the addresses stay for the manifest */
		bt->data = NULL;
	}
	return NULL;
}

/* Hand a batch to the workers; waits while enough work is queued. */
static void put_submit(struct put_job *j, struct put_batch *bt)
{
	pthread_mutex_lock(&j->lock);
	while (j->queued >= j->workers && !j->err)
		pthread_cond_wait(&j->cv, &j->lock);
	bt->qnext = NULL;
	if (j->q_tail)
		j->q_tail->qnext = bt;
	else
		j->q_head = bt;
	j->q_tail = bt;
	j->queued++;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->lock);
}

static int put_batch_add_chunk(struct put_batch *bt, uint32_t len)
{
	if (bt->n == bt->cap) {
		size_t cap = bt->cap ? 2 * bt->cap : 64;
		uint32_t *lens = realloc(bt->lens, cap * sizeof(*lens));

		if (!lens)
			return -ENOMEM;
		bt->lens = lens;
		bt->cap = cap;
	}
	bt->lens[bt->n++] = len;
	bt->bytes += len;
	return 0;
}

static struct put_batch *put_batch_new(size_t cap_bytes)
{
	struct put_batch *bt = calloc(1, sizeof(*bt));

	if (bt && !(bt->data = malloc(cap_bytes))) {
		free(bt);
		bt = NULL;
	}
	return bt;
}

/*
 * Read fd to the end, cutting chunks; each batch of whole chunks goes to
 * the workers and the unfinished tail moves to the next batch's buffer.
 * Batches are appended to *list in file order. Returns 0 or -errno.
 */
static int put_read_file(struct put_job *j, int fd, struct chunker *ck,
			 uint32_t chunk_max, struct put_batch ***tail,
			 uint64_t *file_size)
{
	size_t cap = PUT_BATCH_BYTES + chunk_max, len = 0, scanned = 0, cut_at = 0;
	struct put_batch *bt = put_batch_new(cap);
	bool eof = false;
	int rc = 0;

	if (!bt)
		return -ENOMEM;
	while (!eof) {
		ssize_t got = read(fd, bt->data + len, cap - len);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		eof = got == 0;
		len += (size_t)got;
		*file_size += (uint64_t)got;
		while (scanned < len) {
			bool cut = false;

			scanned += chunker_update(ck, bt->data + scanned, len - scanned, &cut);
			if (cut) {
				rc = put_batch_add_chunk(bt, (uint32_t)(scanned - cut_at));
				cut_at = scanned;
				if (rc < 0)
					break;
			}
		}
		if (rc < 0)
			break;
		if (eof && cut_at < len) {
			rc = put_batch_add_chunk(bt, (uint32_t)(len - cut_at));
			if (rc < 0)
				break;
			cut_at = len;
		}
		if (eof || (len >= PUT_BATCH_BYTES && cut_at > 0)) {
			struct put_batch *nb = NULL;

			if (!eof) {
				nb = put_batch_new(cap);
				if (!nb) {
					rc = -ENOMEM;
					break;
				}
				memcpy(nb->data, bt->data + cut_at, len - cut_at);
			}
			bt->addrs = calloc(bt->n ? bt->n : 1, 32);
			if (!bt->addrs) {
				free(nb ? nb->data : NULL);
				free(nb);
				rc = -ENOMEM;
				break;
			}
			**tail = bt;
			*tail = &bt->next;
			if (bt->n)
				put_submit(j, bt);
			else {
				free(bt->data);
				bt->data = NULL;
			}
			bt = nb;
			len -= cut_at;
			scanned = len;
			cut_at = 0;
		}
		if (len == cap) {
			rc = -EOVERFLOW;   /* the chunker did not cut at chunk-max */
			break;
		}
		pthread_mutex_lock(&j->lock);
		if (j->err)
			rc = j->err;
		pthread_mutex_unlock(&j->lock);
		if (rc)
			break;
	}
	if (bt) {
		free(bt->data);
		free(bt->lens);
		free(bt);
	}
	return rc;
}

/* Store one manifest block (skipped when the owners hold it already). */
static int put_store_manifest(struct put_job *j, struct chunkio *mio,
			      const uint8_t *buf, size_t len, uint8_t addr[32])
{
	uint8_t *blk = NULL;
	bool has = false;
	ssize_t sl;
	int rc;

	chunkio_addr(mio, buf, len, addr);
	j->man_blocks++;
	if (blockio_has(j->b, (const uint8_t (*)[32])addr, 1, &has) == 0 && has)
		return 0;
	sl = chunkio_seal(mio, addr, buf, len, &blk);
	if (sl < 0)
		return (int)sl;
	rc = blockio_put(j->b, addr, blk, (size_t)sl);
	free(blk);
	if (!rc) {
		j->man_new++;
		j->sealed_bytes += (uint64_t)sl;
	}
	return rc;
}

/* Store the manifest tree over e[0..n) (consumed) and return the root. */
static int put_manifest_tree(struct put_job *j, struct chunkio *mio,
			     struct man_entry *e, size_t n, uint64_t size,
			     uint8_t root[32])
{
	uint8_t *buf = malloc(MAN_MAX_BYTES);
	unsigned level = 0;
	int rc = 0;

	if (!buf) {
		free(e);
		return -ENOMEM;
	}
	while (n > MAN_MAX_ENTRIES && !rc) {
		size_t groups = (n + MAN_MAX_ENTRIES - 1) / MAN_MAX_ENTRIES;
		struct man_entry *up = calloc(groups, sizeof(*up));

		if (!up) {
			rc = -ENOMEM;
			break;
		}
		for (size_t g = 0; g < groups && !rc; g++) {
			size_t from = g * MAN_MAX_ENTRIES;
			size_t k = n - from < MAN_MAX_ENTRIES ? n - from : MAN_MAX_ENTRIES;
			uint64_t sum = 0;

			for (size_t i = 0; i < k; i++)
				sum += e[from + i].len;
			rc = put_store_manifest(j, mio, buf,
						man_encode(level, sum, e + from, k, buf),
						up[g].addr);
			up[g].len = sum;
		}
		free(e);
		e = up;
		n = groups;
		level++;
	}
	if (!rc)
		rc = put_store_manifest(j, mio, buf, man_encode(level, size, e, n, buf),
					root);
	free(e);
	free(buf);
	return rc;
}

static unsigned ctl_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 3 ? 3 : n > 6 ? 6 : (unsigned)n;   /* one more than cores: one waits on the network */
}

int ctl_cmd_put(struct ctl *c, int argc, char **argv)
{
	const char *vol_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
		{ "volume", true, &vol_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct clientconf cc;
	struct keys *k = NULL, *mk = NULL;
	struct blockio *b = NULL;
	struct chunkio *io = NULL, *mio = NULL;
	struct chunker *ck = NULL;
	struct chunker_params cp;
	struct put_job j;
	struct put_batch *list = NULL, **tail = &list;
	pthread_t th[8];
	unsigned started = 0;
	struct man_entry *e = NULL;
	uint64_t file_size = 0, total = 0;
	uint8_t root[32];
	char hex[65];
	size_t n_pos, n_e = 0;
	struct stat st;
	int fd = -1, rc, status = CTL_EXIT_FAIL;
	bool have_conf = false;

	memset(&j, 0, sizeof(j));
	rc = ctl_args(c, argc, argv, opts, pos, 1, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (n_pos != 1) {
		ctl_err("put: usage: cairnctl put [--volume KEYFILE] FILE (or - for stdin)");
		return CTL_EXIT_USAGE;
	}
	if (strcmp(pos[0], "-")) {
		fd = open(pos[0], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ctl_err("cannot open %s: %s", pos[0], strerror(errno));
			return CTL_EXIT_FAIL;
		}
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			total = (uint64_t)st.st_size;
		else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			ctl_err("%s is a directory: put stores one file", pos[0]);
			goto out;
		}
	} else {
		fd = STDIN_FILENO;
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
	if (!rc)
		rc = chunkio_new(b, mk, CTL_ZSTD_LEVEL, &mio);
	cp.min_size = keys_volume(k)->chunk_min;
	cp.avg_size = keys_volume(k)->chunk_avg;
	cp.max_size = keys_volume(k)->chunk_max;
	if (!rc)
		rc = chunker_new(keys_subkey(k, KEYS_GEAR), &cp, &ck);
	if (rc < 0) {
		ctl_err("cannot set up: %s", rc == -ERANGE || rc == -EDOM || rc == -E2BIG ?
			chunker_params_strerror(rc) : log_strerror(rc));
		goto out;
	}

	j.c = c;
	j.b = b;
	j.io = io;
	j.workers = ctl_workers();
	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cv, NULL);
	progress_init(&j.prog, "put", total, c->json, c->quiet);
	for (; started < j.workers; started++)
		if (pthread_create(&th[started], NULL, put_worker, &j))
			break;
	if (!started) {
		ctl_err("cannot start worker threads");
		goto out_job;
	}
	j.workers = started;
	rc = put_read_file(&j, fd, ck, cp.max_size, &tail, &file_size);
	if (rc < 0)
		put_fail(&j, rc, strcmp(pos[0], "-") ? "cannot read the file" :
			 "cannot read stdin");
	pthread_mutex_lock(&j.lock);
	j.closing = true;
	pthread_cond_broadcast(&j.cv);
	pthread_mutex_unlock(&j.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (j.err) {
		progress_finish(&j.prog);
		ctl_err("put %s failed: %s: %s", pos[0], j.err_what,
			ctl_conn_hint(j.err));
		goto out_job;
	}

	/* The manifest: every chunk in file order. */
	for (struct put_batch *bt = list; bt; bt = bt->next)
		n_e += bt->n;
	e = calloc(n_e ? n_e : 1, sizeof(*e));
	if (!e) {
		ctl_err("out of memory for the manifest of %zu chunks", n_e);
		goto out_job;
	}
	n_e = 0;
	for (struct put_batch *bt = list; bt; bt = bt->next)
		for (size_t i = 0; i < bt->n; i++, n_e++) {
			memcpy(e[n_e].addr, bt->addrs[i], 32);
			e[n_e].len = bt->lens[i];
		}
	rc = put_manifest_tree(&j, mio, e, n_e, file_size, root);
	progress_finish(&j.prog);
	if (rc < 0) {
		ctl_err("put %s failed: cannot store the manifest: %s", pos[0],
			ctl_conn_hint(rc));
		goto out_job;
	}
	ctl_hex(root, 32, hex);
	if (c->json) {
		printf("{\"event\":\"result\",\"ref\":\"" CTL_REF_PREFIX "%s\",\"file\":", hex);
		ctl_json_str(stdout, pos[0]);
		printf(",\"bytes\":%llu,\"chunks\":%llu,\"new_chunks\":%llu,"
		       "\"new_bytes\":%llu,\"uploaded_bytes\":%llu,"
		       "\"manifest_blocks\":%llu,\"new_manifest_blocks\":%llu,"
		       "\"seconds\":%.3f}\n",
		       (unsigned long long)file_size, (unsigned long long)j.chunks,
		       (unsigned long long)j.new_chunks, (unsigned long long)j.new_bytes,
		       (unsigned long long)j.sealed_bytes,
		       (unsigned long long)j.man_blocks, (unsigned long long)j.man_new,
		       progress_elapsed(&j.prog));
	} else {
		char b1[32], b2[32];

		printf(CTL_REF_PREFIX "%s\n", hex);
		ctl_note(c, "stored %s in %llu chunks (%llu new, %s uploaded) in %.1f s",
			 progress_fmt_bytes((double)file_size, b1, sizeof(b1)),
			 (unsigned long long)j.chunks, (unsigned long long)j.new_chunks,
			 progress_fmt_bytes((double)j.sealed_bytes, b2, sizeof(b2)),
			 progress_elapsed(&j.prog));
	}
	status = CTL_EXIT_OK;
out_job:
	while (list) {
		struct put_batch *nx = list->next;

		free(list->data);
		free(list->lens);
		free(list->addrs);
		free(list);
		list = nx;
	}
	if (j.workers) {
		pthread_mutex_destroy(&j.lock);
		pthread_cond_destroy(&j.cv);
	}
out:
	chunker_free(ck);
	chunkio_free(mio);
	chunkio_free(io);
	blockio_free(b);
	keys_free(mk);
	keys_free(k);
	if (have_conf)
		clientconf_release(&cc);
	if (fd > STDIN_FILENO)
		close(fd);
	return status;
}
