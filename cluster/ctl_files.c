/*
 * ctl_files: cairnctl volume create, put, get (and the hidden bench).
 *
 * put streams a file through the volume's chunker; per batch of chunks a
 * worker thread computes the addresses, asks the owners which they already
 * hold (dedup: those are not sealed or sent), seals the rest and uploads
 * them pipelined with blockio_put_many(). Several batches are in flight at
 * once, so reading, sealing and the network overlap. Then it stores a
 * manifest (below) sealed under keys derived from the volume's metadata
 * subkey and prints its reference, "cairn:" + the manifest's address.
 *
 * get fetches the manifest (every copy tried until one opens), then the
 * chunks on worker threads through chunkio_get() (next owner on failure or
 * on a copy that does not open), checks each length, and writes the file
 * through a temporary name that is renamed into place only when complete.
 *
 * Manifest (plaintext of a block, little-endian):
 *
 *   magic "CRNF" | u8 version (1) | u8 level | u16 reserved (0)
 *   u64 size (file bytes covered) | u32 n | (addr[32] | u64 length) x n
 *
 * Level 0 entries are data chunks; level L > 0 entries are manifests of
 * level L-1 covering `length` bytes, so a file of any size has a root of
 * at most MAN_MAX_ENTRIES entries. The sizes of every level must add up.
 *
 * Not here: the filesystem's metadata (fs/), deletes, snapshots.
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

#include <sodium.h>

#include "chunker/chunker.h"
#include "cluster/blockio.h"
#include "cluster/chunkio.h"
#include "cluster/conf.h"
#include "cluster/ctl.h"
#include "cluster/log.h"
#include "cluster/progress.h"
#include "cluster/proto.h"
#include "crypto/keys.h"
#include "crypto/seal.h"

#define MAN_MAGIC "CRNF"
#define MAN_VERSION 1
#define MAN_HEADER_BYTES 20
#define MAN_ENTRY_BYTES 40
#define MAN_MAX_ENTRIES 16384u
#define MAN_MAX_BYTES (MAN_HEADER_BYTES + MAN_MAX_ENTRIES * MAN_ENTRY_BYTES)
#define MAN_MAX_LEVEL 4
#define CTL_REF_PREFIX "cairn:"
#define PUT_BATCH_BYTES (8u << 20)
#define PUT_HAS_MAX 1024u
#define GET_WORKERS 8
#define CTL_ZSTD_LEVEL 1

_Static_assert(MAN_HEADER_BYTES == 4 + 1 + 1 + 2 + 8 + 4, "manifest header");
_Static_assert(MAN_ENTRY_BYTES == 32 + 8, "manifest entry");
_Static_assert(MAN_MAX_BYTES <= SEAL_MAX_CHUNK, "a manifest fits one block");

struct man_entry {
	uint8_t addr[32];
	uint64_t len;
};

/* ---- manifest codec -------------------------------------------------- */

static size_t man_encode(unsigned level, uint64_t size, const struct man_entry *e,
			 size_t n, uint8_t *out)
{
	uint8_t *p = out;

	memcpy(p, MAN_MAGIC, 4);
	p[4] = MAN_VERSION;
	p[5] = (uint8_t)level;
	proto_put_u16(p + 6, 0);
	proto_put_u64(p + 8, size);
	proto_put_u32(p + 16, (uint32_t)n);
	p += MAN_HEADER_BYTES;
	for (size_t i = 0; i < n; i++, p += MAN_ENTRY_BYTES) {
		memcpy(p, e[i].addr, 32);
		proto_put_u64(p + 32, e[i].len);
	}
	return (size_t)(p - out);
}

/* Decode and check a manifest; *e is malloc'd. Returns 0 or -EPROTO/-ENOTSUP. */
static int man_decode(const uint8_t *buf, size_t len, unsigned *level,
		      uint64_t *size, struct man_entry **e, size_t *n)
{
	uint64_t sum = 0;
	uint32_t cnt;
	struct man_entry *out;

	if (len < MAN_HEADER_BYTES || memcmp(buf, MAN_MAGIC, 4))
		return -EPROTO;
	if (buf[4] != MAN_VERSION)
		return -ENOTSUP;
	if (buf[5] > MAN_MAX_LEVEL || proto_get_u16(buf + 6))
		return -EPROTO;
	cnt = proto_get_u32(buf + 16);
	if (cnt > MAN_MAX_ENTRIES ||
	    len != MAN_HEADER_BYTES + (size_t)cnt * MAN_ENTRY_BYTES)
		return -EPROTO;
	out = malloc((cnt ? cnt : 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (uint32_t i = 0; i < cnt; i++) {
		const uint8_t *p = buf + MAN_HEADER_BYTES + (size_t)i * MAN_ENTRY_BYTES;

		memcpy(out[i].addr, p, 32);
		out[i].len = proto_get_u64(p + 32);
		if (!out[i].len || (buf[5] == 0 && out[i].len > SEAL_MAX_CHUNK) ||
		    out[i].len > UINT64_MAX - sum) {
			free(out);
			return -EPROTO;
		}
		sum += out[i].len;
	}
	if (sum != proto_get_u64(buf + 8)) {
		free(out);
		return -EPROTO;
	}
	*level = buf[5];
	*size = sum;
	*e = out;
	*n = cnt;
	return 0;
}

/* ---- volume keys and the cluster --------------------------------------- */

static int ctl_load_volume(const struct ctl *c, const char *path_arg,
			   struct keys **k)
{
	char path[4096], err[LOG_ERRBUF] = "", pass[512];
	const char *path_s = path_arg;
	int rc, pl = 0, need;

	if (!path_s)
		path_s = ctl_path(c, "volumes/default.key", path, sizeof(path));
	need = keys_file_needs_passphrase(path_s);
	if (need == -ENOENT) {
		if (path_arg)
			ctl_err("no volume key file at %s", path_s);
		else
			ctl_err("no volume key: pass --volume KEYFILE, or create the "
				"default one with 'cairnctl volume create default' (%s)",
				path_s);
		return need;
	}
	if (need > 0) {
		pl = ctl_read_passphrase("Volume passphrase: ", false, pass, sizeof(pass));
		if (pl < 0) {
			ctl_err("%s is protected by a passphrase: set CAIRNCTL_PASSPHRASE "
				"or run on a terminal", path_s);
			return pl;
		}
	}
	rc = keys_file_read(path_s, need > 0 ? pass : NULL, (size_t)(pl > 0 ? pl : 0),
			    k, err, sizeof(err));
	sodium_memzero(pass, sizeof(pass));
	if (rc == -EKEYREJECTED)
		ctl_err("wrong passphrase for %s", path_s);
	else if (rc < 0)
		ctl_err("cannot read the volume key: %s",
			err[0] ? err : log_strerror(rc));
	return rc;
}

static int ctl_connect(const struct ctl *c, const struct clientconf *cc,
		       struct blockio **b)
{
	struct blockio_opts bo;
	int rc;

	if (!cc->n_seeds) {
		ctl_err("no nodes yet: add one with 'cairnctl node add HOST:PORT'");
		return -ENOENT;
	}
	memset(&bo, 0, sizeof(bo));
	ctl_pool_opts(c, &bo.pool, 30000);
	rc = blockio_new((const char *const *)cc->seeds, cc->n_seeds, cc->secret,
			 cc->admin_pk, &bo, b);
	if (rc == -ENOENT)
		ctl_err("no daemon has a cluster map yet: add a node with "
			"'cairnctl node add HOST:PORT'");
	else if (rc < 0)
		ctl_err("cannot connect to the cluster (seeds %s%s): %s", cc->seeds[0],
			cc->n_seeds > 1 ? ",..." : "", rc == -ECONNREFUSED ||
			rc == -ETIMEDOUT || rc == -EHOSTUNREACH ?
			"no daemon reachable" : ctl_conn_hint(rc));
	return rc;
}

/* Keys for manifests: a key set whose master is the metadata subkey, so
 * manifests get their own address space and encryption key. */
static int ctl_meta_keys(const struct keys *k, struct keys **meta)
{
	return keys_from_master(keys_subkey(k, KEYS_META), keys_volume(k), meta);
}

static int ctl_parse_ref(const char *ref, uint8_t addr[32])
{
	if (!strncmp(ref, CTL_REF_PREFIX, strlen(CTL_REF_PREFIX)))
		ref += strlen(CTL_REF_PREFIX);
	return ctl_unhex(ref, addr, 32);
}

/* ---- volume create ------------------------------------------------------ */

static int ctl_size_opt(const char *name, const char *s, uint32_t *out)
{
	uint64_t v;

	if (!s)
		return 0;
	if (conf_parse_size(s, &v) < 0 || v > UINT32_MAX) {
		ctl_err("--%s: '%s' is not a size (e.g. 256K)", name, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

int ctl_cmd_volume_create(struct ctl *c, int argc, char **argv)
{
	const char *out_s = NULL, *min_s = NULL, *avg_s = NULL, *max_s = NULL, *pos[1];
	bool use_pass = false;
	const struct ctl_opt opts[] = {
		{ "out", true, &out_s, NULL },
		{ "passphrase", false, NULL, &use_pass },
		{ "chunk-min", true, &min_s, NULL },
		{ "chunk-avg", true, &avg_s, NULL },
		{ "chunk-max", true, &max_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct keys_volume vol;
	struct chunker_params cp;
	struct keys *k = NULL;
	char path[4096], pass[512], idhex[2 * KEYS_VOLUME_ID_BYTES + 1];
	size_t n_pos;
	int rc, pl = 0;

	rc = ctl_args(c, argc, argv, opts, pos, 1, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (n_pos != 1) {
		ctl_err("volume create: usage: cairnctl volume create NAME [--out FILE]");
		return CTL_EXIT_USAGE;
	}
	if (!pos[0][0] || strlen(pos[0]) > KEYS_NAME_MAX || strchr(pos[0], '/') ||
	    pos[0][0] == '.') {
		ctl_err("volume create: '%s' is not a volume name (1..%d characters, "
			"no '/', not starting with '.')", pos[0], KEYS_NAME_MAX);
		return CTL_EXIT_USAGE;
	}
	memset(&vol, 0, sizeof(vol));
	snprintf(vol.name, sizeof(vol.name), "%s", pos[0]);
	chunker_params_default(&cp);
	if (ctl_size_opt("chunk-min", min_s, &cp.min_size) ||
	    ctl_size_opt("chunk-avg", avg_s, &cp.avg_size) ||
	    ctl_size_opt("chunk-max", max_s, &cp.max_size))
		return CTL_EXIT_USAGE;
	rc = chunker_params_check(&cp);
	if (rc < 0) {
		ctl_err("volume create: chunk sizes %u/%u/%u: %s", cp.min_size,
			cp.avg_size, cp.max_size, chunker_params_strerror(rc));
		return CTL_EXIT_USAGE;
	}
	vol.chunk_min = cp.min_size;
	vol.chunk_avg = cp.avg_size;
	vol.chunk_max = cp.max_size;
	if (out_s) {
		snprintf(path, sizeof(path), "%s", out_s);
	} else {
		ctl_path(c, "volumes", path, sizeof(path));
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			ctl_err("cannot create %s: %s", path, strerror(errno));
			return CTL_EXIT_FAIL;
		}
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s.key",
			 pos[0]);
	}
	if (use_pass) {
		pl = ctl_read_passphrase("New volume passphrase: ", true, pass,
					 sizeof(pass));
		if (pl <= 0) {
			ctl_err("volume create: %s", pl == -EINVAL ? "the passphrases differ" :
				pl == 0 ? "an empty passphrase protects nothing" :
				"no passphrase: set CAIRNCTL_PASSPHRASE or run on a terminal");
			return CTL_EXIT_FAIL;
		}
	}
	rc = keys_generate(&vol, &k);
	if (!rc)
		rc = keys_file_write(path, k, use_pass ? pass : NULL, (size_t)pl);
	sodium_memzero(pass, sizeof(pass));
	if (rc < 0) {
		ctl_err("cannot write the volume key %s: %s", path, rc == -EEXIST ?
			"it exists already (a volume key is never overwritten)" :
			log_strerror(rc));
		keys_free(k);
		return CTL_EXIT_FAIL;
	}
	ctl_hex(keys_volume(k)->volume_id, KEYS_VOLUME_ID_BYTES, idhex);
	if (c->json) {
		printf("{\"volume\":");
		ctl_json_str(stdout, vol.name);
		printf(",\"volume_id\":\"%s\",\"key_file\":", idhex);
		ctl_json_str(stdout, path);
		printf(",\"passphrase\":%s}\n", use_pass ? "true" : "false");
	} else {
		printf("%s\n", path);
		ctl_note(c, "volume %s (id %s): key written to %s; keep a copy, "
			 "nothing can be read without it", vol.name, idhex, path);
	}
	keys_free(k);
	return CTL_EXIT_OK;
}

/* ---- put ------------------------------------------------------------------ */

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

/* ---- get ------------------------------------------------------------------ */

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

/* ---- bench (hidden): block PUT/GET throughput through blockio/pool ------- */

struct bench_job {
	struct blockio *b;
	const uint8_t (*addrs)[32];
	const uint8_t *blk;
	size_t blk_len, count, batch;
	_Atomic size_t next;
	_Atomic int err;
};

static void *bench_put_worker(void *arg)
{
	struct bench_job *j = arg;
	const void **blks = calloc(j->batch, sizeof(*blks));
	size_t *lens = calloc(j->batch, sizeof(*lens));
	int *errs = calloc(j->batch, sizeof(*errs));

	for (size_t i = 0; blks && lens && errs && i < j->batch; i++) {
		blks[i] = j->blk;
		lens[i] = j->blk_len;
	}
	while (blks && lens && errs && !atomic_load(&j->err)) {
		size_t from = atomic_fetch_add(&j->next, j->batch), k;
		int rc, zero = 0;

		if (from >= j->count)
			break;
		k = j->count - from < j->batch ? j->count - from : j->batch;
		rc = blockio_put_many(j->b, j->addrs + from, (const void *const *)blks,
				      lens, k, errs);
		if (rc < 0)
			atomic_compare_exchange_strong(&j->err, &zero, rc);
	}
	if (!blks || !lens || !errs) {
		int zero = 0;

		atomic_compare_exchange_strong(&j->err, &zero, -ENOMEM);
	}
	free(blks);
	free(lens);
	free(errs);
	return NULL;
}

/* GETs kept `window` deep on the connections of the first owners. */
static int bench_get(struct blockio *b, const struct cmap *m,
		     const uint8_t (*addrs)[32], size_t count, size_t blk_len,
		     size_t window)
{
	struct pool *p = blockio_pool(b);
	struct pool_call *calls = calloc(window, sizeof(*calls));
	uint8_t (*reqs)[40] = calloc(window, sizeof(*reqs));
	size_t started = 0, done = 0;
	int rc = 0;

	if (!calls || !reqs) {
		free(calls);
		free(reqs);
		return -ENOMEM;
	}
	while (done < count) {
		while (started < count && started - done < window) {
			struct pool_call *pc = &calls[started % window];
			uint8_t *rq = reqs[started % window];
			uint16_t own[CMAP_MAX_WIDTH];

			if (!cmap_slot_owners(m, slot_of_addr(addrs[started]), own)) {
				rc = -ENOENT;
				goto out;
			}
			memset(pc, 0, sizeof(*pc));
			proto_put_u64(rq, cmap_epoch(m));
			memcpy(rq + 8, addrs[started], 32);
			pc->node = cmap_node(m, own[0])->addr;
			pc->opcode = PROTO_OP_GET;
			pc->req = rq;
			pc->req_len = 40;
			pool_start(p, pc);
			started++;
		}
		{
			struct pool_call *pc = &calls[done % window];
			int err = pool_wait(p, pc);

			if (!err && pc->resp_len != blk_len)
				err = -EBADMSG;
			free(pc->resp);
			pc->resp = NULL;
			if (err && !rc)
				rc = err;
			done++;
		}
	}
out:
	while (done < started) {
		pool_wait(p, &calls[done % window]);
		free(calls[done % window].resp);
		done++;
	}
	free(calls);
	free(reqs);
	return rc;
}

int ctl_cmd_bench(struct ctl *c, int argc, char **argv)
{
	const char *size_s = NULL, *count_s = NULL, *window_s = NULL,
		   *threads_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
		{ "size", true, &size_s, NULL },
		{ "count", true, &count_s, NULL },
		{ "window", true, &window_s, NULL },
		{ "threads", true, &threads_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct clientconf cc;
	struct blockio *b = NULL;
	struct cmap *m = NULL;
	struct keys *k = NULL;
	struct keys_volume vol = { .name = "bench" };
	struct seal_ctx *sc = NULL;
	struct bench_job j;
	uint8_t (*addrs)[32] = NULL, *plain = NULL, *blk = NULL, zaddr[32] = { 0 };
	uint64_t size = 256 * 1024, count = 0, window = 256, threads = 4;
	pthread_t th[16];
	unsigned started = 0;
	double t0, put_s, get_s;
	size_t n_pos;
	ssize_t bl;
	int rc, status = CTL_EXIT_FAIL;
	bool have_conf = false;

	rc = ctl_args(c, argc, argv, opts, pos, 0, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if ((size_s && (conf_parse_size(size_s, &size) < 0 || size < 1024 ||
			size > SEAL_MAX_CHUNK)) ||
	    (count_s && conf_parse_size(count_s, &count) < 0) ||
	    (window_s && (conf_parse_size(window_s, &window) < 0 || !window)) ||
	    (threads_s && (conf_parse_size(threads_s, &threads) < 0 || !threads ||
			   threads > 16))) {
		ctl_err("bench: usage: cairnctl bench [--size 256K] [--count N] "
			"[--window W] [--threads T]");
		return CTL_EXIT_USAGE;
	}
	if (!count)
		count = size >= 65536 ? (256u << 20) / size : 100000;
	if (ctl_load_conf(c, &cc) < 0)
		return CTL_EXIT_FAIL;
	have_conf = true;
	if (ctl_connect(c, &cc, &b) < 0)
		goto out;
	rc = blockio_map(b, &m);
	vol.chunk_min = CHUNKER_MIN_DEFAULT;
	vol.chunk_avg = CHUNKER_AVG_DEFAULT;
	vol.chunk_max = CHUNKER_MAX_DEFAULT;
	if (!rc)
		rc = keys_generate(&vol, &k);
	if (!rc)
		rc = seal_ctx_new(-1, &sc);
	addrs = malloc(count * sizeof(*addrs));
	plain = malloc(size);
	blk = malloc(seal_bound(size));
	if (rc < 0 || !addrs || !plain || !blk) {
		ctl_err("bench: cannot set up: %s", log_strerror(rc ? rc : -ENOMEM));
		goto out;
	}
	/* One real sealed block of exactly `size` bytes, stored under many
	 * random addresses: daemons see realistic blocks and no two PUTs dedup. */
	randombytes_buf(plain, size);
	bl = seal_block(sc, k, zaddr, plain, size - SEAL_OVERHEAD_BYTES, blk,
			seal_bound(size));
	randombytes_buf(addrs, count * sizeof(*addrs));
	if (bl < 0) {
		ctl_err("bench: cannot seal: %s", log_strerror((int)bl));
		goto out;
	}

	memset(&j, 0, sizeof(j));
	j.b = b;
	j.addrs = (const uint8_t (*)[32])addrs;
	j.blk = blk;
	j.blk_len = (size_t)bl;
	j.count = count;
	j.batch = window / threads ? window / threads : 1;
	t0 = progress_now();
	for (; started < threads; started++)
		if (pthread_create(&th[started], NULL, bench_put_worker, &j))
			break;
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	put_s = progress_now() - t0;
	if (atomic_load(&j.err) || !started) {
		ctl_err("bench: PUT failed: %s", ctl_conn_hint(atomic_load(&j.err)));
		goto out;
	}
	t0 = progress_now();
	rc = bench_get(b, m, (const uint8_t (*)[32])addrs, count, (size_t)bl, window);
	get_s = progress_now() - t0;
	if (rc < 0) {
		ctl_err("bench: GET failed: %s", ctl_conn_hint(rc));
		goto out;
	}
	if (c->json)
		printf("{\"size\":%zd,\"count\":%llu,\"width\":%u,\"window\":%llu,"
		       "\"put_seconds\":%.4f,\"get_seconds\":%.4f,\"put_mb_s\":%.1f,"
		       "\"get_mb_s\":%.1f,\"put_ops_s\":%.0f,\"get_ops_s\":%.0f}\n",
		       bl, (unsigned long long)count, cmap_width(m),
		       (unsigned long long)window, put_s, get_s,
		       (double)bl * (double)count / put_s / 1e6,
		       (double)bl * (double)count / get_s / 1e6,
		       (double)count / put_s, (double)count / get_s);
	else
		printf("blocks of %zd bytes x %llu, %u owners each, window %llu:\n"
		       "  PUT %.1f MB/s  %.0f ops/s\n  GET %.1f MB/s  %.0f ops/s\n",
		       bl, (unsigned long long)count, cmap_width(m),
		       (unsigned long long)window,
		       (double)bl * (double)count / put_s / 1e6, (double)count / put_s,
		       (double)bl * (double)count / get_s / 1e6, (double)count / get_s);
	status = CTL_EXIT_OK;
out:
	free(addrs);
	free(plain);
	free(blk);
	seal_ctx_free(sc);
	keys_free(k);
	cmap_free(m);
	blockio_free(b);
	if (have_conf)
		clientconf_release(&cc);
	return status;
}
