/*
 * store: blocks as files, one directory per slot, and small blocks in
 * packs (see store.h).
 *
 * Blocks under STORE_PACK_MIN go to the pack store (packstore.h): appended,
 * then the committer's batch syncs each pack it touched once and indexes
 * them. A batch of only packed PUTs costs no syncfs at all. What follows
 * is the path of the larger blocks, one file each.
 *
 * Order on disk for a PUT, and why:
 *   1. write header + block to blocks/SSSS/.tmp-<addr>-<n> (on the
 *      caller's thread), and queue the PUT for the committer thread;
 *   2. the committer takes every PUT queued, and one syncfs(2) puts all
 *      their bytes on stable storage before any name points at them;
 *   3. it renames each to blocks/SSSS/<addr> with RENAME_NOREPLACE
 *      (link + unlink where that is missing): atomic, and EEXIST when the
 *      block is already held, so a held block is never rewritten;
 *   4. a second syncfs makes the names durable, and only then is each PUT
 *      answered.
 * So a batch of any size costs two syncs, and the threads that write do not
 * wait for them. A crash leaves at worst a .tmp- file, removed by
 * store_open(). A DELETE unlinks at once and joins the same queue, to be
 * answered after the batch's syncs.
 *
 * Direct I/O: block bytes go between our buffers and the disk with
 * O_DIRECT, not through the page cache. Profiles of a PUT stream showed
 * the page-cache copy as the largest single cost on the daemon (a fresh
 * page is slow to get, on VMs most of all), and the page cache bought
 * little: clients keep a block cache of their own. Only the 4 KiB-aligned
 * head of a file is written direct; its tail (under 4 KiB) is written like
 * any file, so the format on disk is the same either way. Blocks under
 * 64 KiB are packed (packstore.h); those an older daemon left as files
 * are read through the page cache. A
 * filesystem that refuses O_DIRECT (EINVAL) turns it off for good.
 *
 * Does not know slots' owners, epochs or the network. Never logs.
 */
#define _GNU_SOURCE
#include "daemon/store.h"
#include "daemon/fileio.h"
#include "daemon/packstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "cluster/threadname.h"

#define STORE_SLOTS 16384u
/* CRB2: the checksum is XXH3-128, which runs at memory speed; CRB1 (the
 * first format, still read) used BLAKE2b-128, which capped every GET and
 * PUT at ~600 MB/s of one core. The checksum only has to catch bit rot in
 * this daemon's own copy: forgery is the AEAD's job, checked by clients. */
#define STORE_MAGIC "CRB2"
#define STORE_MAGIC_V1 "CRB1"

_Static_assert(STORE_HEADER_BYTES == 4 + 4 + STORE_SUM_BYTES, "header layout");
_Static_assert(STORE_PACK_MIN == PACK_MAX_BLOCK, "one threshold");

struct store {
	int blocks_fd;                   /* DIR/blocks */
	char *root;                      /* DIR/blocks */
	uint64_t tmp_seq;                /* atomic */
	struct store_stats stats;        /* atomic adds */
	/* PUTs written and DELETEs done, waiting for the committer, under
	 * put_lock */
	int commit_fd;                   /* blocks/ again, for the committer */
	pthread_mutex_t put_lock;
	pthread_cond_t put_cond;
	struct put_entry *put_head, **put_tail;
	bool committer_running, committer_stop;
	pthread_t committer;
	bool direct;                     /* atomic: O_DIRECT still in use */
	bool no_noreplace;               /* atomic: no RENAME_NOREPLACE here */
	struct packstore *packs;         /* blocks under PACK_MAX_BLOCK */
	/* Small blocks found as files at open (written before packs). Only
	 * while there are any does a small PUT look for its file: else that
	 * is a path lookup per PUT for nothing. */
	uint64_t small_files;
};

/* O_DIRECT wants buffers, offsets and lengths aligned to the logical block
 * size; 4096 covers every disk we expect. */
#define STORE_DIO_ALIGN 4096u
/* Smaller block files (left by daemons from before packs) are read
 * through the page cache: for them the syscall costs more than the copy,
 * and a direct read always waits for the disk (4 KiB GETs ran a third
 * slower direct). */
#define STORE_DIRECT_MIN (64u * 1024)

/* A PUT between its write and its answer (see the top of this file). */
struct put_entry {
	struct put_entry *next;
	store_put_cb done;
	void *arg;
	size_t len;
	int result;                      /* store_put's result */
	bool written;                    /* a temp file to link (else held) */
	bool is_delete;                  /* a DELETE: only the syncs */
	bool packed;                     /* in a pack: t says where */
	bool held_in_pack;               /* already indexed: durable */
	struct pack_ticket t;
	char tmp[96], name[80];          /* relative to blocks/ */
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

/* Open (creating if asked) the directory of a slot. */
static int slot_dir_open(struct store *st, unsigned slot, bool create)
{
	char name[8];
	int fd;

	slot_name(slot, name);
	fd = openat(st->blocks_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(st->blocks_fd, name, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (fsync(st->blocks_fd) < 0)    /* the new slot dir is durable */
			return -errno;
		fd = openat(st->blocks_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* Remove .tmp- files of one slot dir and count its blocks. */
static int slot_scan(struct store *st, unsigned slot)
{
	DIR *d;
	struct dirent *e;
	struct stat sb;
	int fd = slot_dir_open(st, slot, false);

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
			if ((uint64_t)sb.st_size - STORE_HEADER_BYTES < STORE_PACK_MIN)
				st->small_files++;
		}
	}
	closedir(d);
	return 0;
}

static void *committer_main(void *arg);

/* The pack files of the small blocks, DIR/packs (packstore.h). */
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
	st->stats.blocks += ps.blocks;
	st->stats.bytes += ps.bytes;
	st->stats.corrupt += ps.bad_records;
	return 0;
}

/*
 * Ask the filesystem to spread the slot directories over the disk, as ext4
 * spreads top-level directories (the FS_TOPDIR_FL flag, `chattr +T`).
 * Without it ext4 packs them, and so every block file, into the block
 * groups of blocks/; on ext4 without a journal, allocating an inode then
 * scans past every inode deleted there in the last minutes (a rebalance or
 * a big rm makes thousands), and profiles of a PUT stream showed that scan
 * as 40% of the daemon's time. Best effort: other filesystems say ENOTTY.
 */
static void spread_slot_dirs(int blocks_fd)
{
	int fl;

	if (ioctl(blocks_fd, FS_IOC_GETFLAGS, &fl) == 0 && !(fl & FS_TOPDIR_FL)) {
		fl |= FS_TOPDIR_FL;
		(void)ioctl(blocks_fd, FS_IOC_SETFLAGS, &fl);
	}
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
	st->commit_fd = -1;
	pthread_mutex_init(&st->put_lock, NULL);
	pthread_cond_init(&st->put_cond, NULL);
	st->put_tail = &st->put_head;
	st->direct = true;
	if (asprintf(&path, "%s/blocks", dir) < 0) {
		path = NULL;
		err = -ENOMEM;
		goto out;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	st->blocks_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->blocks_fd < 0) {
		err = -errno;
		goto out;
	}
	st->commit_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->commit_fd < 0) {
		err = -errno;
		goto out;
	}
	spread_slot_dirs(st->blocks_fd);
	st->root = path;
	path = NULL;
	for (unsigned s = 0; s < STORE_SLOTS && !err; s++)
		err = slot_scan(st, s);
	if (!err)
		err = open_packs(st, dir);
	if (!err) {
		err = -pthread_create(&st->committer, NULL, committer_main, st);
		st->committer_running = !err;
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
	if (st->blocks_fd >= 0)
		close(st->blocks_fd);
	if (st->commit_fd >= 0)
		close(st->commit_fd);
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

static void make_header(uint8_t h[STORE_HEADER_BYTES], const void *data,
			size_t len)
{
	memcpy(h, STORE_MAGIC, 4);
	for (int i = 0; i < 4; i++)
		h[4 + i] = (uint8_t)(len >> (8 * i));
	block_sum(h, data, len, h + 8);
}

/*
 * Give a written temporary file its block name: 1 when named, 0 when the
 * name was taken (a racing PUT won; blocks never change), else -errno.
 * renameat2(RENAME_NOREPLACE) does it in one directory operation where
 * the filesystem has it; link + unlink elsewhere.
 */
static int name_block(struct store *st, const char *tmp, const char *name)
{
	int r;

	if (!__atomic_load_n(&st->no_noreplace, __ATOMIC_RELAXED)) {
		if (renameat2(st->blocks_fd, tmp, st->blocks_fd, name,
			      RENAME_NOREPLACE) == 0)
			return 1;
		if (errno != EINVAL && errno != ENOSYS) {
			r = errno == EEXIST ? 0 : -errno;
			unlinkat(st->blocks_fd, tmp, 0);
			return r;
		}
		__atomic_store_n(&st->no_noreplace, true, __ATOMIC_RELAXED);
	}
	if (linkat(st->blocks_fd, tmp, st->blocks_fd, name, 0) == 0)
		r = 1;
	else
		r = errno == EEXIST ? 0 : -errno;
	unlinkat(st->blocks_fd, tmp, 0);
	return r;
}

/* Whether e waits on the filesystem's syncs (a block file written, held
 * or removed), not only on its pack's. */
static bool needs_syncfs(const struct put_entry *e)
{
	return !e->packed && !e->held_in_pack;
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

/* One batch: data durable, names given, names durable; then answers. A
 * batch of packed blocks only costs one fdatasync per pack. */
static void commit_batch(struct store *st, struct put_entry *batch)
{
	bool files = false;
	int err = 0, perr;

	for (struct put_entry *e = batch; e; e = e->next)
		files |= needs_syncfs(e);
	/* commit_fd is an open file of its own, synced by no one else:
	 * syncfs reports a writeback error once per open file, so no other
	 * sync can take the error that belongs to this batch. */
	if (files && syncfs(st->commit_fd) < 0)
		err = -errno;
	perr = sync_packs(st, batch);

	for (struct put_entry *e = batch; e; e = e->next) {
		if (e->packed) {
			if (perr) {
				packstore_release(st->packs, &e->t);
				e->result = perr;
			} else {
				e->result = packstore_commit(st->packs, &e->t);
			}
		} else if (!e->written) {
			e->result = 0;           /* held or deleted: only the syncs */
		} else if (err) {
			unlinkat(st->blocks_fd, e->tmp, 0);
			e->result = err;
		} else {
			e->result = name_block(st, e->tmp, e->name);
		}
	}
	/* Also makes durable the names of held blocks that a racing PUT
	 * linked in an earlier batch still syncing: every answer is durable. */
	if (files && !err && syncfs(st->commit_fd) < 0)
		err = -errno;
	while (batch) {
		struct put_entry *e = batch;

		batch = e->next;
		if (err && needs_syncfs(e) && e->result >= 0)
			e->result = err;
		if (e->result < 0) {
			STAT_ADD(st, errors, 1);
		} else if (e->is_delete) {
			STAT_ADD(st, deletes, 1);
		} else {
			STAT_ADD(st, puts, 1);
			if (e->result == 1) {
				STAT_ADD(st, puts_new, 1);
				STAT_ADD(st, blocks, 1);
				STAT_ADD(st, bytes, e->len);
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
	bool compact_due = true;         /* a pack may be half dead from before */

	thread_name("store-commit");

	pthread_mutex_lock(&st->put_lock);
	for (;;) {
		struct put_entry *batch = st->put_head;

		if (!batch) {
			if (st->committer_stop)
				break;
			if (compact_due) {
				/* Idle: compact one pack, then look at the
				 * queue again before the next. */
				int r;

				pthread_mutex_unlock(&st->put_lock);
				r = packstore_compact(st->packs);
				if (r == 0)      /* then mark what is sealed */
					r = packstore_checkpoint(st->packs) < 0 ? -1 : 0;
				if (r < 0)
					STAT_ADD(st, errors, 1);
				compact_due = r == 1;
				pthread_mutex_lock(&st->put_lock);
				continue;
			}
			pthread_cond_wait(&st->put_cond, &st->put_lock);
			continue;
		}
		st->put_head = NULL;
		st->put_tail = &st->put_head;
		pthread_mutex_unlock(&st->put_lock);
		commit_batch(st, batch);
		compact_due = true;
		pthread_mutex_lock(&st->put_lock);
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

/*
 * Write the aligned head of header + block with O_DIRECT (through an
 * aligned copy: a memcpy between warm buffers is far cheaper than the
 * page-cache copy it replaces). Returns the bytes written (a multiple of
 * STORE_DIO_ALIGN, 0 when direct I/O is off or refused) or -errno.
 */
static ssize_t write_head_direct(struct store *st, int fd, const uint8_t *h,
				 const void *data, size_t len)
{
	size_t head = (STORE_HEADER_BYTES + len) & ~(size_t)(STORE_DIO_ALIGN - 1);
	uint8_t *buf;
	int err;

	if (!store_direct_io(st))        /* files are >= STORE_PACK_MIN */
		return 0;
	if (posix_memalign((void **)&buf, STORE_DIO_ALIGN, head))
		return -ENOMEM;
	memcpy(buf, h, STORE_HEADER_BYTES);
	memcpy(buf + STORE_HEADER_BYTES, data, head - STORE_HEADER_BYTES);
	err = set_direct(fd, true);
	if (!err) {
		struct iovec iov = { buf, head };

		err = fileio_pwritev_full(fd, &iov, 1, 0);
	}
	free(buf);
	if (err == -EINVAL) {            /* no O_DIRECT here: start over */
		direct_refused(st);
		if (set_direct(fd, false) < 0 || ftruncate(fd, 0) < 0)
			return -errno;
		return 0;
	}
	if (err)
		return err;
	err = set_direct(fd, false);     /* the tail goes buffered */
	return err ? err : (ssize_t)head;
}

/*
 * Create a temporary file of a slot directory, making the directory on
 * first use. No fsync for the new directory: the block is only linked
 * after the committer's first syncfs, which makes the directory durable
 * too, and only answered after the second (syncing each new directory
 * on its own cost a disk flush per slot: a quarter of a fresh daemon's
 * 4 KiB PUT time).
 */
static int open_temp(struct store *st, const char *tmp)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = openat(st->blocks_fd, tmp,
				O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		char dir[8];

		if (fd >= 0 || errno != ENOENT || tries)
			return fd < 0 ? -errno : fd;
		memcpy(dir, tmp, 4);     /* "ssss/.tmp-...": the slot part */
		dir[4] = '\0';
		if (mkdirat(st->blocks_fd, dir, 0700) < 0 && errno != EEXIST)
			return -errno;
	}
	return -ENOENT;
}

/* Write header + block to a new temporary file (path relative to
 * blocks/, "ssss/.tmp-..."). */
static int write_temp(struct store *st, const char *tmp, const void *data,
		      size_t len)
{
	uint8_t h[STORE_HEADER_BYTES];
	ssize_t done;
	int fd, err = 0;

	fd = open_temp(st, tmp);
	if (fd < 0)
		return fd;
	make_header(h, data, len);
	done = write_head_direct(st, fd, h, data, len);
	if (done < 0) {
		err = (int)done;
	} else if (done == 0) {
		/* Buffered: header and block in one call. */
		struct iovec iov[2] = { { h, sizeof(h) }, { (void *)data, len } };

		err = fileio_pwritev_full(fd, iov, 2, 0);
	} else {
		size_t skip = (size_t)done - STORE_HEADER_BYTES;
		struct iovec iov = { (uint8_t *)data + skip, len - skip };

		err = fileio_pwritev_full(fd, &iov, 1, (uint64_t)done);
	}
	if (close(fd) < 0 && !err)
		err = -errno;
	if (err)
		unlinkat(st->blocks_fd, tmp, 0);
	return err;
}

/* The committer's queue takes e (a PUT written or held, or a DELETE). */
static void commit_enqueue(struct store *st, struct put_entry *e)
{
	pthread_mutex_lock(&st->put_lock);
	*st->put_tail = e;
	st->put_tail = &e->next;
	pthread_cond_signal(&st->put_cond);
	pthread_mutex_unlock(&st->put_lock);
}

int store_put_async(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		    const void *data, size_t len, store_put_cb done, void *arg)
{
	char hex[2 * STORE_ADDR_BYTES + 1];
	unsigned slot = addr_slot(addr);
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
	addr_hex(addr, hex);
	/* Paths relative to blocks/ rather than an fd per slot directory:
	 * the dcache resolves "ssss/" for less than an open and a close. */
	snprintf(e->name, sizeof(e->name), "%04x/%s", slot, hex);
	if (len < PACK_MAX_BLOCK && packstore_has(st->packs, addr)) {
		e->held_in_pack = true;      /* indexed only once durable */
	} else if ((len >= PACK_MAX_BLOCK || st->small_files) &&
		   faccessat(st->blocks_fd, e->name, F_OK, 0) == 0) {
		/* held as a file (small blocks were files before packs) */
	} else if (len < PACK_MAX_BLOCK) {
		err = packstore_append(st->packs, addr, data, len, &e->t);
		e->packed = !err;
	} else {
		snprintf(e->tmp, sizeof(e->tmp), "%04x/.tmp-%.16s-%llu", slot, hex,
			 (unsigned long long)__atomic_add_fetch(&st->tmp_seq, 1,
								__ATOMIC_RELAXED));
		err = write_temp(st, e->tmp, data, len);
		e->written = true;
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
	return packstore_compact(st->packs);
}

void store_set_pack_limit(struct store *st, uint64_t bytes)
{
	packstore_set_pack_limit(st->packs, bytes);
}

static int block_open(struct store *st, const uint8_t *addr, int flags)
{
	char hex[2 * STORE_ADDR_BYTES + 1], path[80];
	int fd;

	addr_hex(addr, hex);
	snprintf(path, sizeof(path), "%04x/%s", addr_slot(addr), hex);
	fd = openat(st->blocks_fd, path, flags | O_CLOEXEC);
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
	char hex[2 * STORE_ADDR_BYTES + 1], path[80];

	if (packstore_has(st->packs, addr))
		return 1;
	addr_hex(addr, hex);
	snprintf(path, sizeof(path), "%04x/%s", addr_slot(addr), hex);
	if (faccessat(st->blocks_fd, path, F_OK, 0) == 0)
		return 1;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

int store_delete_async(struct store *st, const uint8_t addr[STORE_ADDR_BYTES],
		       store_put_cb done, void *arg)
{
	char hex[2 * STORE_ADDR_BYTES + 1], name[80];
	struct put_entry *e;
	struct stat sb;
	uint32_t plen = 0;
	int err;

	addr_hex(addr, hex);
	snprintf(name, sizeof(name), "%04x/%s", addr_slot(addr), hex);
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
		STAT_SUB(st, blocks, 1);
		STAT_SUB(st, bytes, plen);
		commit_enqueue(st, e);
		return 0;
	}
	if (fstatat(st->blocks_fd, name, &sb, 0) < 0 ||
	    unlinkat(st->blocks_fd, name, 0) < 0) {
		err = errno == ENOTDIR ? -ENOENT : -errno;
		free(e);
		return err;
	}
	STAT_SUB(st, blocks, 1);
	if (sb.st_size >= STORE_HEADER_BYTES)
		STAT_SUB(st, bytes, (uint64_t)sb.st_size - STORE_HEADER_BYTES);
	/* Answered once the committer's next sync made the unlink durable:
	 * a batch of DELETEs (a file removed) shares one sync, as PUTs do. */
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

	fd = slot_dir_open(st, slot, false);
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
	out->packs = ps.packs;
	out->pack_bytes = ps.pack_bytes;
	out->pack_dead_bytes = ps.dead_bytes;
	out->compactions = ps.compactions;
}
