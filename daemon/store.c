/*
 * store: the block store (see store.h): the pack store, and the block
 * files that daemons from before packs left behind.
 *
 * Every PUT appends to the pack store (packstore.h); the committer thread
 * takes every PUT queued, makes each pack the batch touched durable with
 * one fdatasync, indexes the blocks and only then answers them (group
 * commit). A DELETE takes the block out of the index at once and is
 * answered once its tombstone is durable, with the same batch.
 *
 * The tidier thread compacts packs and moves packs/verified up
 * (packstore_compact, packstore_checkpoint) whenever the committer has
 * nothing queued, one pack at a time, looking at the queue again between
 * two. It runs beside the committer, not on it: a PUT that comes in while
 * a 64 MiB pack is being copied is synced and answered by the committer at
 * once instead of waiting for the copy to end.
 *
 * Block files: older daemons kept each block in DIR/blocks/SSSS/<address>
 * (SSSS the slot in hex), a 24-byte header (magic "CRB2", u32 length,
 * XXH3-128 of the block; "CRB1" with BLAKE2b-128 in the first format)
 * and the block. They are still read, listed, counted and deleted, and a
 * PUT of a block held as a file stores nothing; new blocks never become
 * files. Larger files are read with O_DIRECT: their bytes would only
 * push hotter pages out of the page cache. A filesystem that refuses
 * O_DIRECT (EINVAL) turns it off for good.
 *
 * Does not know slots' owners, epochs or the network. Never logs.
 */
#define _GNU_SOURCE
#include "daemon/store.h"
#include "daemon/packstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cluster/monotime.h"
#include "cluster/threadname.h"

#define STORE_SLOTS 16384u

/* A pack still losing blocks waits this long before the tidier compacts
 * it (packstore_compact): the client deletes a removed file's blocks in
 * the order they were written, so a pack dies whole within a moment, and
 * is then removed without a copy. */
#define COMPACT_SETTLE_MS 2000
/* CRB2: the checksum is XXH3-128, which runs at memory speed; CRB1 (the
 * first format, still read) used BLAKE2b-128, which capped every GET and
 * PUT at ~600 MB/s of one core. The checksum only has to catch bit rot in
 * this daemon's own copy: forgery is the AEAD's job, checked by clients. */
#define STORE_MAGIC "CRB2"
#define STORE_MAGIC_V1 "CRB1"

_Static_assert(STORE_HEADER_BYTES == 4 + 4 + STORE_SUM_BYTES, "header layout");
_Static_assert(STORE_MAX_BLOCK < PACK_MAX_BLOCK, "every block fits a record");

struct store {
	int blocks_fd;                   /* DIR/blocks, -1 when there is none */
	char *root;                      /* DIR/blocks */
	struct store_stats stats;        /* atomic adds; blocks and bytes
					  * only of block files (the pack
					  * store counts its own) */
	/* PUTs appended and DELETEs done, waiting for the committer, under
	 * put_lock */
	pthread_mutex_t put_lock;
	pthread_cond_t put_cond;
	struct put_entry *put_head, **put_tail;
	bool committer_running, committer_stop;
	pthread_t committer;
	/* The tidier, under put_lock: `committing` while the committer works
	 * on a batch; `tidy_due` once a batch is done (packs may have died),
	 * until a tidy turn finds nothing to compact. */
	pthread_cond_t tidy_cond;
	bool committing, tidy_due, tidier_running, tidier_stop;
	pthread_t tidier;
	bool direct;                     /* atomic: O_DIRECT still in use */
	struct packstore *packs;
	/* Block files found at open. Only while there were any does a PUT
	 * look for its file: else that is a path lookup per PUT for nothing. */
	uint64_t old_files;
};

/* O_DIRECT wants buffers, offsets and lengths aligned to the logical block
 * size; 4096 covers every disk we expect. */
#define STORE_DIO_ALIGN 4096u
/* Smaller block files (left by daemons from before packs) are read
 * through the page cache: for them the syscall costs more than the copy,
 * and a direct read always waits for the disk (4 KiB GETs ran a third
 * slower direct). */
#define STORE_DIRECT_MIN (64u * 1024)

/* A PUT or DELETE between its call and its answer. */
struct put_entry {
	struct put_entry *next;
	store_put_cb done;
	void *arg;
	size_t len;
	int result;                      /* store_put's result */
	bool is_delete;
	bool packed;                     /* a record (or tombstone) t to sync */
	struct pack_ticket t;
};

#define STAT_ADD(st, f, v) __atomic_fetch_add(&(st)->stats.f, (v), __ATOMIC_RELAXED)
#define STAT_SUB(st, f, v) __atomic_fetch_sub(&(st)->stats.f, (v), __ATOMIC_RELAXED)

static unsigned addr_slot(const uint8_t *a)
{
	return ((unsigned)a[0] << 6) | ((unsigned)a[1] >> 2);
}

static void addr_hex(const uint8_t *a, char out[2 * STORE_ADDR_BYTES + 1])
{
	sodium_bin2hex(out, 2 * STORE_ADDR_BYTES + 1, a, STORE_ADDR_BYTES);
}

static int hex_addr(const char *name, uint8_t out[STORE_ADDR_BYTES])
{
	size_t n = 0;

	if (strlen(name) != 2 * STORE_ADDR_BYTES)
		return -EINVAL;
	if (sodium_hex2bin(out, STORE_ADDR_BYTES, name, 2 * STORE_ADDR_BYTES,
			   NULL, &n, NULL) != 0 || n != STORE_ADDR_BYTES)
		return -EINVAL;
	return 0;
}

static void slot_name(unsigned slot, char out[8])
{
	snprintf(out, 8, "%04x", slot);
}

/* The directory of a slot's block files. */
static int slot_dir_open(struct store *st, unsigned slot)
{
	char name[8];
	int fd;

	if (st->blocks_fd < 0)
		return -ENOENT;
	slot_name(slot, name);
	fd = openat(st->blocks_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Remove the .tmp- files an older daemon's crash left in one slot dir and
 * count its blocks. */
static int slot_scan(struct store *st, unsigned slot)
{
	DIR *d;
	struct dirent *e;
	struct stat sb;
	int fd = slot_dir_open(st, slot);

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		uint8_t a[STORE_ADDR_BYTES];

		if (!strncmp(e->d_name, ".tmp-", 5)) {
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (hex_addr(e->d_name, a))
			continue;
		if (fstatat(dirfd(d), e->d_name, &sb, 0) == 0 &&
		    sb.st_size >= STORE_HEADER_BYTES) {
			st->stats.blocks++;
			st->stats.bytes += (uint64_t)sb.st_size - STORE_HEADER_BYTES;
			st->old_files++;
		}
	}
	closedir(d);
	return 0;
}

static void *committer_main(void *arg);
static void *tidier_main(void *arg);

/* The pack files, DIR/packs (packstore.h). */
static int open_packs(struct store *st, const char *dir)
{
	struct packstore_stats ps;
	char *path;
	int err;

	if (asprintf(&path, "%s/packs", dir) < 0)
		return -ENOMEM;
	err = packstore_open(path, &st->packs);
	free(path);
	if (err)
		return err;
	packstore_get_stats(st->packs, &ps);
	st->stats.corrupt += ps.bad_records;
	return 0;
}

int store_open(const char *dir, struct store **out)
{
	struct store *st;
	char *path = NULL;
	int err = 0;

	if (sodium_init() < 0)
		return -EIO;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->blocks_fd = -1;
	pthread_mutex_init(&st->put_lock, NULL);
	pthread_cond_init(&st->put_cond, NULL);
	{
		pthread_condattr_t ca;   /* the tidier times its waits */

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&st->tidy_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	st->tidy_due = true;             /* a pack may be half dead from before */
	st->put_tail = &st->put_head;
	st->direct = true;
	if (asprintf(&path, "%s/blocks", dir) < 0) {
		path = NULL;
		err = -ENOMEM;
		goto out;
	}
	/* Only a data dir from before packs has blocks/. */
	st->blocks_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->blocks_fd < 0 && errno != ENOENT) {
		err = -errno;
		goto out;
	}
	st->root = path;
	path = NULL;
	for (unsigned s = 0; s < STORE_SLOTS && st->blocks_fd >= 0 && !err; s++)
		err = slot_scan(st, s);
	if (!err)
		err = open_packs(st, dir);
	if (!err) {
		err = -pthread_create(&st->committer, NULL, committer_main, st);
		st->committer_running = !err;
	}
	if (!err) {
		err = -pthread_create(&st->tidier, NULL, tidier_main, st);
		st->tidier_running = !err;
	}
out:
	free(path);
	if (err) {
		store_close(st);
		return err;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->tidier_running) {        /* a compaction under way ends first */
		pthread_mutex_lock(&st->put_lock);
		st->tidier_stop = true;
		pthread_cond_signal(&st->tidy_cond);
		pthread_mutex_unlock(&st->put_lock);
		pthread_join(st->tidier, NULL);
	}
	if (st->committer_running) {     /* it answers what is queued first */
		pthread_mutex_lock(&st->put_lock);
		st->committer_stop = true;
		pthread_cond_signal(&st->put_cond);
		pthread_mutex_unlock(&st->put_lock);
		pthread_join(st->committer, NULL);
	}
	packstore_close(st->packs);
	pthread_mutex_destroy(&st->put_lock);
	pthread_cond_destroy(&st->put_cond);
	pthread_cond_destroy(&st->tidy_cond);
	if (st->blocks_fd >= 0)
		close(st->blocks_fd);
	free(st->root);
	free(st);
}

/* The checksum of a block's bytes under the format its magic names. */
static void block_sum(const uint8_t magic[4], const void *data, size_t len,
		      uint8_t sum[STORE_SUM_BYTES])
{
	if (!memcmp(magic, STORE_MAGIC_V1, 4)) {
		crypto_generichash(sum, STORE_SUM_BYTES, data, len, NULL, 0);
	} else {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
		_Static_assert(sizeof(c.digest) == STORE_SUM_BYTES, "sum size");
		memcpy(sum, c.digest, STORE_SUM_BYTES);
	}
}

/* Make durable the packs the batch's packed entries appended to. */
static int sync_packs(struct store *st, struct put_entry *batch)
{
	struct pack_ticket **t;
	size_t n = 0;
	int err;

	for (struct put_entry *e = batch; e; e = e->next)
		n += e->packed;
	if (!n)
		return 0;
	t = malloc(n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	n = 0;
	for (struct put_entry *e = batch; e; e = e->next)
		if (e->packed)
			t[n++] = &e->t;
	err = packstore_sync_tickets(st->packs, t, n);
	free(t);
	return err;
}

/* One batch: its packs durable, its blocks indexed, then the answers. */
static void commit_batch(struct store *st, struct put_entry *batch)
{
	int err = sync_packs(st, batch);

	while (batch) {
		struct put_entry *e = batch;

		batch = e->next;
		if (!e->packed) {
			e->result = 0;   /* held already, or a block file removed */
		} else if (err) {
			packstore_release(st->packs, &e->t);
			e->result = err;
		} else {
			e->result = packstore_commit(st->packs, &e->t);
		}
		if (e->result < 0) {
			STAT_ADD(st, errors, 1);
		} else if (e->is_delete) {
			STAT_ADD(st, deletes, 1);
		} else {
			STAT_ADD(st, puts, 1);
			if (e->result == 1) {
				STAT_ADD(st, puts_new, 1);
				STAT_ADD(st, bytes_written, e->len);
			}
		}
		e->done(e->arg, e->result);
		free(e);
	}
}

static void *committer_main(void *arg)
{
	struct store *st = arg;

	thread_name("store-commit");

	pthread_mutex_lock(&st->put_lock);
	for (;;) {
		struct put_entry *batch = st->put_head;

		if (!batch) {
			if (st->committer_stop)
				break;
			pthread_cond_wait(&st->put_cond, &st->put_lock);
			continue;
		}
		st->put_head = NULL;
		st->put_tail = &st->put_head;
		st->committing = true;
		pthread_mutex_unlock(&st->put_lock);
		commit_batch(st, batch);
		pthread_mutex_lock(&st->put_lock);
		st->committing = false;
		st->tidy_due = true;
		if (!st->put_head)       /* idle now: the tidier's turn */
			pthread_cond_signal(&st->tidy_cond);
	}
	pthread_mutex_unlock(&st->put_lock);
	return NULL;
}

/*
 * The tidier runs only on CPU time nothing else wants (SCHED_IDLE): what it
 * does can wait, and on a small machine a compaction's copying and
 * checksumming took CPU from the PUTs, GETs and the client beside it.
 * Compaction still gets done whenever a core is idle, and a full disk
 * does not wait on it (a DELETE's tombstone uses the reserve). Failing to
 * switch costs nothing but that.
 */
static void tidier_in_background(void)
{
	struct sched_param sp = { .sched_priority = 0 };

	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
}

/* Compact one pack at a time while the committer has nothing to do, then
 * mark what is sealed as verified; sleep until a batch is done, or until a
 * pack passed over for dying just now has settled (packstore_compact). */
static void *tidier_main(void *arg)
{
	struct store *st = arg;
	int64_t settled_at = 0;          /* 0: no pack waits to settle */

	thread_name("store-tidy");
	tidier_in_background();

	pthread_mutex_lock(&st->put_lock);
	while (!st->tidier_stop) {
		int64_t wait_ms = -1;
		int r;

		if (settled_at && mono_ms() >= settled_at) {
			settled_at = 0;
			st->tidy_due = true;
		}
		if (!st->tidy_due || st->committing || st->put_head) {
			if (settled_at) {
				struct timespec ts = mono_timespec_ms(settled_at);

				pthread_cond_timedwait(&st->tidy_cond, &st->put_lock, &ts);
			} else {
				pthread_cond_wait(&st->tidy_cond, &st->put_lock);
			}
			continue;
		}
		/* A batch done during this turn sets it again. */
		st->tidy_due = false;
		pthread_mutex_unlock(&st->put_lock);
		r = packstore_compact(st->packs, COMPACT_SETTLE_MS, &wait_ms);
		if (r == 0)              /* nothing left to compact */
			r = packstore_checkpoint(st->packs) < 0 ? -1 : 0;
		if (r < 0)
			STAT_ADD(st, errors, 1);
		pthread_mutex_lock(&st->put_lock);
		if (r == 1)              /* one pack done, maybe more to do */
			st->tidy_due = true;
		else if (wait_ms >= 0)
			settled_at = mono_ms() + wait_ms;
	}
	pthread_mutex_unlock(&st->put_lock);
	return NULL;
}

void store_set_direct_io(struct store *st, bool on)
{
	__atomic_store_n(&st->direct, on, __ATOMIC_RELAXED);
}

bool store_direct_io(struct store *st)
{
	return __atomic_load_n(&st->direct, __ATOMIC_RELAXED);
}

/* The filesystem refused O_DIRECT: every later call goes buffered. */
static void direct_refused(struct store *st)
{
	__atomic_store_n(&st->direct, false, __ATOMIC_RELAXED);
}

static int set_direct(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* The committer's queue takes e. */
static void commit_enqueue(struct store *st, struct put_entry *e)
{
	pthread_mutex_lock(&st->put_lock);
	*st->put_tail = e;
	st->put_tail = &e->next;
	pthread_cond_signal(&st->put_cond);
	pthread_mutex_unlock(&st->put_lock);
}

/* A block file's name under blocks/: "SSSS/<hex address>". */
static void old_file_name(const uint8_t *addr, char out[80])
{
	char hex[2 * STORE_ADDR_BYTES + 1];

	addr_hex(addr, hex);
	snprintf(out, 80, "%04x/%s", addr_slot(addr), hex);
}

/* 1 when a block is held as a file (left by a daemon from before packs),
 * 0 when not, or -errno. No path lookup when there were none at open:
 * no new ones are ever made. */
static int old_file_held(struct store *st, const uint8_t *addr)
{
	char name[80];

	if (!st->old_files)
		return 0;
	old_file_name(addr, name);
	if (faccessat(st->blocks_fd, name, F_OK, 0) == 0)
		return 1;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

int store_put_async(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		    const void *data, size_t len, store_put_cb done, void *arg)
{
	struct put_entry *e;
	int err = 0;

	if (len > STORE_MAX_BLOCK)
		return -E2BIG;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->done = done;
	e->arg = arg;
	e->len = len;
	/* Held (indexed only once durable, or a file): answered with the
	 * batch, storing nothing. */
	if (!packstore_has(st->packs, addr) &&
	    old_file_held(st, addr) != 1) {
		err = packstore_append(st->packs, addr, data, len, &e->t);
		e->packed = !err;
	}
	if (err) {
		STAT_ADD(st, errors, 1);
		free(e);
		return err;
	}
	commit_enqueue(st, e);
	return 0;
}

struct put_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int result;
};

static void put_wait_done(void *arg, int result)
{
	struct put_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->result = result;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int put_wait_for(struct put_wait *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return w->result;
}

int store_put(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
	      const void *data, size_t len)
{
	struct put_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER,
			      .cond = PTHREAD_COND_INITIALIZER };
	int err = store_put_async(st, addr, data, len, put_wait_done, &w);

	if (err)
		return err;
	return put_wait_for(&w);
}

void store_block_path(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		      char *buf, size_t len)
{
	char hex[2 * STORE_ADDR_BYTES + 1], sn[8];

	addr_hex(addr, hex);
	slot_name(addr_slot(addr), sn);
	snprintf(buf, len, "%s/%s/%s", st->root, sn, hex);
}

int store_block_locate(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		       char *path, size_t len, uint64_t *off)
{
	if (packstore_locate(st->packs, addr, path, len, off) == 0)
		return 0;
	store_block_path(st, addr, path, len);
	*off = STORE_HEADER_BYTES;
	return access(path, F_OK) == 0 ? 0 : -ENOENT;
}

int store_compact(struct store *st)
{
	return packstore_compact(st->packs, 0, NULL);
}

void store_set_pack_limit(struct store *st, uint64_t bytes)
{
	packstore_set_pack_limit(st->packs, bytes);
}

static int block_open(struct store *st, const uint8_t *addr, int flags)
{
	char name[80];
	int fd;

	if (!st->old_files)
		return -ENOENT;
	old_file_name(addr, name);
	fd = openat(st->blocks_fd, name, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* size bytes of a block file into buf (cap bytes, a multiple of
 * STORE_DIO_ALIGN when fd is O_DIRECT: reads ask for whole blocks and the
 * last one comes back short at the end of the file). */
static int read_whole(int fd, uint8_t *buf, size_t size, size_t cap)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = pread(fd, buf + got, cap - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;         /* shorter than it was */
		got += (size_t)n;
	}
	return 0;
}

/* The whole file, header and block, into a buffer of its own (malloc'd or
 * posix_memalign'd: free() releases either). */
static int read_block_file(struct store *st, int fd, size_t size,
			   uint8_t **out)
{
	size_t cap = (size + STORE_DIO_ALIGN - 1) & ~(size_t)(STORE_DIO_ALIGN - 1);
	uint8_t *buf = NULL;
	int err;

	if (size >= STORE_DIRECT_MIN && store_direct_io(st)) {
		err = set_direct(fd, true);
		if (err == -EINVAL)
			direct_refused(st);
	} else {
		err = -EAGAIN;                   /* buffered, below */
	}
	if (!err) {
		if (posix_memalign((void **)&buf, STORE_DIO_ALIGN, cap))
			return -ENOMEM;
		err = read_whole(fd, buf, size, cap);
		if (err != -EINVAL) {
			*out = buf;
			return err;
		}
		direct_refused(st);      /* then read it buffered, below */
		free(buf);
		if (set_direct(fd, false) < 0)
			return -errno;
	}
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	*out = buf;
	return read_whole(fd, buf, size, size);
}

int store_get_buf(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		  uint8_t **out, const uint8_t **data, size_t *out_len)
{
	uint8_t sum[STORE_SUM_BYTES], *buf = NULL;
	struct stat sb;
	uint32_t len = 0;
	int fd = -1, err;

	err = packstore_get(st->packs, addr, &buf, data, out_len);
	if (err != -ENOENT) {
		if (!err) {
			STAT_ADD(st, gets, 1);
			STAT_ADD(st, bytes_read, *out_len);
			*out = buf;
		} else if (err == -EBADMSG) {
			STAT_ADD(st, corrupt, 1);
		} else {
			STAT_ADD(st, errors, 1);
		}
		return err;
	}
	buf = NULL;
	fd = block_open(st, addr, O_RDONLY);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	if (fstat(fd, &sb) < 0) {
		err = -errno;
		goto out;
	}
	if (sb.st_size < STORE_HEADER_BYTES ||
	    (uint64_t)sb.st_size > (uint64_t)STORE_MAX_BLOCK + STORE_HEADER_BYTES) {
		err = -EBADMSG;
		goto out;
	}
	err = read_block_file(st, fd, (size_t)sb.st_size, &buf);
	if (err)
		goto out;
	for (int i = 0; i < 4; i++)
		len |= (uint32_t)buf[4 + i] << (8 * i);
	if ((memcmp(buf, STORE_MAGIC, 4) && memcmp(buf, STORE_MAGIC_V1, 4)) ||
	    (uint64_t)sb.st_size != (uint64_t)len + STORE_HEADER_BYTES) {
		err = -EBADMSG;
		goto out;
	}
	block_sum(buf, buf + STORE_HEADER_BYTES, len, sum);
	if (memcmp(sum, buf + 8, sizeof(sum)) != 0) {
		err = -EBADMSG;
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		free(buf);
		if (err == -EBADMSG)
			STAT_ADD(st, corrupt, 1);
		else if (err != -ENOENT)
			STAT_ADD(st, errors, 1);
		return err;
	}
	STAT_ADD(st, gets, 1);
	STAT_ADD(st, bytes_read, len);
	*out = buf;
	*data = buf + STORE_HEADER_BYTES;
	*out_len = len;
	return 0;
}

int store_get(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
	      uint8_t **out, size_t *out_len)
{
	const uint8_t *data;
	int err = store_get_buf(st, addr, out, &data, out_len);

	/* The caller gets the block alone, at the start of the buffer. */
	if (!err)
		memmove(*out, data, *out_len);
	return err;
}

int store_has(struct store *st, const uint8_t addr[STORE_ADDR_BYTES])
{
	if (packstore_has(st->packs, addr))
		return 1;
	return old_file_held(st, addr);
}

/* Remove a block file, durably: unlinked, then its directory synced (a
 * rare event: only blocks from before packs are files). The counts drop
 * once it is unlinked, whether or not the sync then fails. 0 or -errno
 * (-ENOENT: no such file). */
static int delete_old_file(struct store *st, const uint8_t *addr)
{
	char hex[2 * STORE_ADDR_BYTES + 1];
	struct stat sb;
	int dfd, err = 0;

	if (!st->old_files)
		return -ENOENT;
	dfd = slot_dir_open(st, addr_slot(addr));
	if (dfd < 0)
		return dfd == -ENOTDIR ? -ENOENT : dfd;
	addr_hex(addr, hex);
	if (fstatat(dfd, hex, &sb, 0) < 0 || unlinkat(dfd, hex, 0) < 0) {
		err = -errno;
	} else {
		STAT_SUB(st, blocks, 1);
		if (sb.st_size >= STORE_HEADER_BYTES)
			STAT_SUB(st, bytes, (uint64_t)sb.st_size - STORE_HEADER_BYTES);
		if (fsync(dfd) < 0)
			err = -errno;
	}
	close(dfd);
	return err;
}

int store_delete_async(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		       store_put_cb done, void *arg)
{
	struct put_entry *e;
	uint32_t plen = 0;
	int err;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->done = done;
	e->arg = arg;
	e->is_delete = true;
	/* In a pack: out of the index now, its tombstone durable with the
	 * batch. */
	err = packstore_delete(st->packs, addr, &e->t, &plen);
	if (err != -ENOENT) {
		if (err) {
			free(e);
			return err;
		}
		e->packed = true;
		commit_enqueue(st, e);
		return 0;
	}
	err = delete_old_file(st, addr);
	if (err) {
		free(e);
		return err;
	}
	commit_enqueue(st, e);
	return 0;
}

int store_delete(struct store *st, const uint8_t addr[STORE_ADDR_BYTES])
{
	struct put_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER,
			      .cond = PTHREAD_COND_INITIALIZER };
	int err = store_delete_async(st, addr, put_wait_done, &w);

	if (err)
		return err;
	return put_wait_for(&w);
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_ADDR_BYTES);
}

/* The block files of a slot after `after`, appended to *all. */
static int list_files(struct store *st, unsigned slot, const uint8_t *after,
		      struct store_entry **all, size_t *n, size_t *cap)
{
	struct dirent *e;
	struct stat sb;
	DIR *d;
	int fd, err = 0;

	fd = slot_dir_open(st, slot);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		uint8_t a[STORE_ADDR_BYTES];

		if (hex_addr(e->d_name, a))
			continue;
		if (after && memcmp(a, after, STORE_ADDR_BYTES) <= 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &sb, 0) < 0 ||
		    sb.st_size < STORE_HEADER_BYTES)
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? 2 * *cap : 256;
			struct store_entry *na = realloc(*all, nc * sizeof(*na));

			if (!na) {
				err = -ENOMEM;
				break;
			}
			*all = na;
			*cap = nc;
		}
		memcpy((*all)[*n].addr, a, STORE_ADDR_BYTES);
		(*all)[*n].size = (uint32_t)(sb.st_size - STORE_HEADER_BYTES);
		(*n)++;
	}
	closedir(d);
	return err;
}

int store_list(struct store *st, unsigned slot, const uint8_t *after,
	       struct store_entry *out, unsigned max, bool *more)
{
	struct store_entry *all = NULL;
	size_t n = 0, cap = 0, kept = 0;
	int err;

	*more = false;
	if (slot >= STORE_SLOTS)
		return -EINVAL;
	err = packstore_list(st->packs, slot, &all, &n, &cap);
	if (!err)
		err = list_files(st, slot, after, &all, &n, &cap);
	if (err) {
		free(all);
		return err;
	}
	if (n)
		qsort(all, n, sizeof(*all), entry_cmp);
	/* Packed entries come unfiltered; and a block can be both a file
	 * (from before packs) and packed: name it once. */
	for (size_t i = 0; i < n; i++) {
		if (after && memcmp(all[i].addr, after, STORE_ADDR_BYTES) <= 0)
			continue;
		if (kept && !memcmp(all[kept - 1].addr, all[i].addr, STORE_ADDR_BYTES))
			continue;
		all[kept++] = all[i];
	}
	n = kept;
	if (n > max) {
		*more = true;
		n = max;
	}
	if (n)
		memcpy(out, all, n * sizeof(*out));
	free(all);
	return (int)n;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	uint64_t *src = (uint64_t *)&st->stats, *dst = (uint64_t *)out;

	struct packstore_stats ps;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	packstore_get_stats(st->packs, &ps);
	/* Packed blocks as the pack store counts them: compaction too drops
	 * blocks (records found damaged), and a count of our own would miss
	 * those. */
	out->blocks += ps.blocks;
	out->bytes += ps.bytes;
	out->packs = ps.packs;
	out->pack_bytes = ps.pack_bytes;
	out->pack_dead_bytes = ps.dead_bytes;
	out->compactions = ps.compactions;
	out->compact_read = ps.compact_read;
	out->packs_open_index = ps.open_index;
	out->packs_open_headers = ps.open_headers;
	out->packs_open_whole = ps.open_whole;
}
