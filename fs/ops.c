/*
 * ops: the FUSE low-level operations of cairnfs.
 *
 * Each handler turns one kernel request into metadata calls (meta.c, one
 * LMDB transaction each) and file-data calls (fsdata.c), and replies. No
 * handler waits on the network except read (a block not in the cache),
 * fsync and statfs; all of those have timeouts underneath.
 *
 * The kernel may cache entries and attributes: we are the only writer of
 * this volume (one read-write mount), so what it caches can only change
 * through us, and we reply with the new attributes every time.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cluster/log.h"
#include "cluster/pool.h"
#include "cluster/proto.h"
#include "fs/fs.h"
#include "fs/fsdata.h"
#include "fs/loop.h"
#include "fs/meta.h"

#define ATTR_TIMEOUT 30.0
#define ENTRY_TIMEOUT 30.0
#define MAX_WRITE (1u << 20)

static struct fsctx *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* --- kernel lookup counts -------------------------------------------------
 * An unlinked inode lives on while the kernel still knows it (open files,
 * cwd): meta keeps it as an orphan until its lookup count reaches zero here. */

#define NLOOKUP_BUCKETS 4096

struct nlookup {
	uint64_t ino, count;
	struct nlookup *next;
};

static struct nlookup *nlookup_table[NLOOKUP_BUCKETS];
static pthread_mutex_t nlookup_lock = PTHREAD_MUTEX_INITIALIZER;

static struct nlookup **nlookup_slot(uint64_t ino)
{
	struct nlookup **pp = &nlookup_table[(ino * 0x9E3779B97F4A7C15ull) >> 52];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

static void nlookup_inc(uint64_t ino)
{
	struct nlookup **pp, *n;

	pthread_mutex_lock(&nlookup_lock);
	pp = nlookup_slot(ino);
	if (*pp) {
		(*pp)->count++;
	} else {
		n = calloc(1, sizeof(*n));
		if (n) {
			n->ino = ino;
			n->count = 1;
			*pp = n;
		}
	}
	pthread_mutex_unlock(&nlookup_lock);
}

/* Returns true when the kernel has forgotten ino entirely. */
static bool nlookup_dec(uint64_t ino, uint64_t by)
{
	struct nlookup **pp, *n;
	bool gone = false;

	pthread_mutex_lock(&nlookup_lock);
	pp = nlookup_slot(ino);
	n = *pp;
	if (n) {
		n->count = n->count > by ? n->count - by : 0;
		if (!n->count) {
			*pp = n->next;
			free(n);
			gone = true;
		}
	}
	pthread_mutex_unlock(&nlookup_lock);
	return gone;
}

static bool nlookup_known(uint64_t ino)
{
	bool known;

	pthread_mutex_lock(&nlookup_lock);
	known = *nlookup_slot(ino) != NULL;
	pthread_mutex_unlock(&nlookup_lock);
	return known;
}

/* --- attributes ----------------------------------------------------------- */

static void attr_to_stat(struct fsctx *fs, const struct meta_attr *a,
			 struct stat *st)
{
	uint64_t size;

	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = 1 << 20;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
	/* Bytes still in the write buffer count already. */
	if (S_ISREG(a->mode) && fsdata_size(fs->data, a->ino, &size) &&
	    size != a->size) {
		st->st_size = (off_t)size;
		if ((uint64_t)st->st_blocks * 512 < size)
			st->st_blocks = (blkcnt_t)((size + 511) / 512);
	}
}

static void reply_entry(fuse_req_t req, const struct meta_attr *a)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = a->ino;
	e.generation = a->generation;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	attr_to_stat(fs_of(req), a, &e.attr);
	nlookup_inc(a->ino);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		nlookup_dec(a->ino, 1);     /* the kernel dropped it: interrupted */
}

static void reply_attr(fuse_req_t req, const struct meta_attr *a)
{
	struct stat st;

	attr_to_stat(fs_of(req), a, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static int ro_check(fuse_req_t req)
{
	if (fs_of(req)->ro) {
		fuse_reply_err(req, EROFS);
		return -1;
	}
	return 0;
}

/* --- lifecycle ------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = MAX_WRITE;
	conn->max_readahead = MAX_WRITE;
	/* One background request at a time: cached pages then come back in
	 * file order, not shuffled by our worker threads, so the write
	 * buffer sees an append, not a file with gaps, and chunk cuts stay
	 * content-defined (same bytes, same chunks, dedup). A write is a copy
	 * into the buffer, so one at a time costs little. */
	conn->max_background = 1;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Reads are sent by the reading thread, not as background requests:
	 * with a single background slot, one read waiting on a hung daemon
	 * would hold back the write-back of every other file until its call
	 * timed out. Our own read-ahead (fs/readahead.h) fetches ahead of a
	 * sequential reader either way; cold 2 GiB reads measured the same
	 * with the kernel's asynchronous reads (649, 669, 642 MiB/s) as
	 * without (645, 645, 632). */
	conn->want &= ~(unsigned)FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	/* flock and fcntl locks are left to the kernel: local locking is
	 * exact for the one mount that writes this volume. */
	conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

static void op_destroy(void *userdata)
{
	struct fsctx *fs = userdata;
	int rc = fsdata_sync_for_unmount(fs->data);

	if (rc < 0)
		log_err("unmount: flushing file data failed: %s", log_strerror(rc));
}

/* --- names ---------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct meta_attr a;
	int rc = meta_lookup(fs_of(req)->meta, parent, name, &a);

	if (rc < 0) {
		if (rc == -ENOENT) {
			/* A negative entry the kernel may cache too. */
			struct fuse_entry_param e = { .entry_timeout = ENTRY_TIMEOUT };

			fuse_reply_entry(req, &e);
			return;
		}
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, &a);
}

static void inode_drop_if_gone(struct fsctx *fs, uint64_t ino)
{
	/* Last kernel reference to an unlinked inode: free it and its data. */
	int rc = meta_inode_release(fs->meta, ino);

	if (rc == 1)
		fsdata_forget(fs->data, ino);
	else if (rc < 0 && rc != -ENOENT)
		log_warn("inode %llu: release failed: %s", (unsigned long long)ino,
			 log_strerror(rc));
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (nlookup_dec(ino, nlookup))
		inode_drop_if_gone(fs_of(req), ino);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (nlookup_dec(forgets[i].ino, forgets[i].nlookup))
			inode_drop_if_gone(fs_of(req), forgets[i].ino);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct meta_attr a;
	int rc = meta_getattr(fs_of(req)->meta, ino, &a);

	(void)fi;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_attr(req, &a);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fsctx *fs = fs_of(req);
	struct meta_setattr s = { 0 };
	struct meta_attr a;
	int rc;

	(void)fi;
	if (ro_check(req))
		return;
	if (to_set & FUSE_SET_ATTR_MODE) {
		s.set |= META_SET_MODE;
		s.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		s.set |= META_SET_UID;
		s.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		s.set |= META_SET_GID;
		s.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		s.set |= META_SET_SIZE;
		s.size = (uint64_t)attr->st_size;
		rc = fsdata_truncate(fs->data, ino, s.size);
		if (rc < 0) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		s.set |= META_SET_ATIME;
		clock_gettime(CLOCK_REALTIME, &s.atime);
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		s.set |= META_SET_ATIME;
		s.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		s.set |= META_SET_MTIME;
		clock_gettime(CLOCK_REALTIME, &s.mtime);
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		s.set |= META_SET_MTIME;
		s.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		s.set |= META_SET_CTIME;
		s.ctime = attr->st_ctim;
	}
	rc = meta_setattr(fs->meta, ino, &s, &a);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_attr(req, &a);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	int rc = meta_readlink(fs_of(req)->meta, ino, buf, sizeof(buf));

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct meta_attr a;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_mknod(fs_of(req)->meta, parent, name, mode & ~ctx->umask, rdev,
			ctx->uid, ctx->gid, &a);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct meta_attr a;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_mknod(fs_of(req)->meta, parent, name,
			S_IFDIR | (mode & ~ctx->umask & 07777), 0, ctx->uid,
			ctx->gid, &a);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct meta_attr a;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_symlink(fs_of(req)->meta, parent, name, link, ctx->uid,
			  ctx->gid, &a);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct meta_attr a;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_link(fs_of(req)->meta, ino, newparent, newname, &a);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &a);
}

static void after_unlink(fuse_req_t req, uint64_t ino)
{
	/* Not known to the kernel any more (no open file, no cached entry):
	 * free it now; otherwise forget() will. Runs before the reply, which
	 * frees req. */
	if (ino && !nlookup_known(ino))
		inode_drop_if_gone(fs_of(req), ino);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	uint64_t ino = 0;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_unlink(fs_of(req)->meta, parent, name, &ino);
	if (rc == 0)
		after_unlink(req, ino);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	uint64_t ino = 0;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_rmdir(fs_of(req)->meta, parent, name, &ino);
	if (rc == 0)
		after_unlink(req, ino);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned flags)
{
	uint64_t replaced = 0;
	int rc;

	if (ro_check(req))
		return;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = meta_rename(fs_of(req)->meta, parent, name, newparent, newname,
			 flags, &replaced);
	if (rc == 0)
		after_unlink(req, replaced);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

/* --- files ---------------------------------------------------------------- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsctx *fs = fs_of(req);
	struct meta_attr a;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY && fs->ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	rc = meta_getattr(fs->meta, ino, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (S_ISDIR(a.mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* Only this mount changes the volume: the page cache stays valid
	 * across opens. */
	fi->keep_cache = 1;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fsdata_open_write(fs->data, ino);
		fi->fh = 1;             /* a writer: release tells fsdata */
	}
	if (fuse_reply_open(req, fi) == -ENOENT && fi->fh)
		(void)fsdata_release_write(fs->data, ino);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fsctx *fs = fs_of(req);
	struct fuse_entry_param e;
	struct meta_attr a;
	int rc;

	if (ro_check(req))
		return;
	rc = meta_mknod(fs->meta, parent, name,
			S_IFREG | (mode & ~ctx->umask & 07777), 0, ctx->uid,
			ctx->gid, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	e.generation = a.generation;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	attr_to_stat(fs, &a, &e.attr);
	fi->keep_cache = 1;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fsdata_open_write(fs->data, a.ino);
		fi->fh = 1;
	}
	nlookup_inc(a.ino);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		nlookup_dec(a.ino, 1);
		if (fi->fh)
			(void)fsdata_release_write(fs->data, a.ino);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fsdata *data = fs_of(req)->data;
	struct iovec iov[FSDATA_READ_IOV_MAX];
	size_t iovcnt;
	void *hold;
	uint8_t *buf;
	ssize_t n;

	(void)fi;
	/* Most reads are of stored blocks that read-ahead has cached: answer
	 * straight from the block cache, without a copy of our own, and on
	 * the loop's leader thread (no hand-off). Anything that has to wait
	 * gives the leader role up first. */
	n = fsdata_read_direct(data, ino, size, (uint64_t)off,
			       FSDATA_READ_CACHED_ONLY, iov, &iovcnt, &hold);
	if (n == -ENODATA) {
		loop_may_block();
		n = fsdata_read_direct(data, ino, size, (uint64_t)off,
				       FSDATA_READ_NOTED, iov, &iovcnt, &hold);
	}
	if (n != -EAGAIN) {
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else if (n == 0)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_iov(req, iov, (int)iovcnt);
		fsdata_read_done(data, hold);
		return;
	}
	loop_may_block();
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fsdata_read(data, ino, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, (const char *)buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fsctx *fs = fs_of(req);
	uint64_t committed = 0;
	ssize_t n;

	(void)fi;
	if (meta_file_size(fs->meta, ino, &committed) < 0)
		committed = 0;
	n = fsdata_write(fs->data, ino, buf, size, (uint64_t)off, committed);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc = 0;

	if (fi->fh)
		rc = fsdata_flush(fs_of(req)->data, ino);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh)
		(void)fsdata_release_write(fs_of(req)->data, ino);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	int rc;

	(void)datasync;
	(void)fi;
	rc = fsdata_fsync(fs_of(req)->data, ino);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

/* --- directories ---------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct meta_attr a;
	int rc = meta_getattr(fs_of(req)->meta, ino, &a);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (!S_ISDIR(a.mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

struct readdir_fill {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus;
};

/* Called by meta_readdir for each entry; returns 1 when the buffer is full. */
static int readdir_add(void *arg, const char *name, const struct meta_attr *a,
		       uint64_t next_off)
{
	struct readdir_fill *f = arg;
	size_t need;

	if (f->plus) {
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.ino = a->ino;
		e.generation = a->generation;
		e.attr_timeout = ATTR_TIMEOUT;
		e.entry_timeout = ENTRY_TIMEOUT;
		attr_to_stat(fs_of(f->req), a, &e.attr);
		need = fuse_add_direntry_plus(f->req, f->buf + f->used,
					      f->size - f->used, name, &e,
					      (off_t)next_off);
		if (need > f->size - f->used)
			return 1;
		/* "." and ".." do not count as lookups (libfuse rule) */
		if (strcmp(name, ".") && strcmp(name, ".."))
			nlookup_inc(a->ino);
	} else {
		struct stat st = { .st_ino = a->ino, .st_mode = a->mode };

		need = fuse_add_direntry(f->req, f->buf + f->used, f->size - f->used,
					 name, &st, (off_t)next_off);
		if (need > f->size - f->used)
			return 1;
	}
	f->used += need;
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, bool plus)
{
	struct readdir_fill f = { .req = req, .size = size, .plus = plus };
	int rc;

	f.buf = malloc(size ? size : 1);
	if (!f.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = meta_readdir(fs_of(req)->meta, ino, (uint64_t)off, readdir_add, &f);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, f.buf, f.used);
	free(f.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, true);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	int rc;

	(void)ino;
	(void)datasync;
	(void)fi;
	rc = meta_sync(fs_of(req)->meta);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

/* --- statfs: the cluster's real capacity --------------------------------- */

struct capacity {
	uint64_t total, free;
};

/* Sum the disks of the nodes that are up, divided by the replication
 * factor: what the volume can still store. Cached for a few seconds. */
static int cluster_capacity(struct fsctx *fs, struct capacity *out)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct capacity cached;
	static time_t cached_at;
	struct pool *p = blockio_pool(fs->bio);
	struct capacity cap = { 0 };
	struct cmap *m = NULL;
	unsigned width = 1;
	time_t now = time(NULL);
	int rc;

	pthread_mutex_lock(&lock);
	if (cached_at && now - cached_at < 5) {
		*out = cached;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	pthread_mutex_unlock(&lock);

	rc = blockio_map(fs->bio, &m);
	if (rc < 0)
		return rc;
	width = cmap_width(m) ? cmap_width(m) : 1;
	for (unsigned i = 0; i < cmap_node_count(m); i++) {
		const struct cmap_node *n = cmap_node(m, i);
		struct pool_call c = { .node = n->addr, .opcode = PROTO_OP_NODE_STATUS };
		struct proto_reader r;
		uint16_t count = 0;

		if (n->state == CMAP_NODE_OUT || pool_run(p, &c, 1) < 0) {
			free(c.resp);
			continue;
		}
		proto_reader_init(&r, c.resp, c.resp_len);
		proto_read_u16(&r, &count);
		for (unsigned k = 0; k < count && !r.bad; k++) {
			uint16_t key = 0;
			uint64_t v = 0;

			proto_read_u16(&r, &key);
			proto_read_u64(&r, &v);
			if (key == PROTO_STAT_DISK_TOTAL)
				cap.total += v;
			else if (key == PROTO_STAT_DISK_FREE)
				cap.free += v;
		}
		free(c.resp);
	}
	cmap_free(m);
	cap.total /= width;
	cap.free /= width;
	pthread_mutex_lock(&lock);
	cached = cap;
	cached_at = now;
	pthread_mutex_unlock(&lock);
	*out = cap;
	return 0;
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fsctx *fs = fs_of(req);
	struct statvfs sv;
	struct capacity cap = { 0 };
	uint64_t inodes = 0;
	const unsigned long bsize = 4096;

	(void)ino;
	if (cluster_capacity(fs, &cap) < 0)
		log_warn("statfs: the cluster did not answer; reporting zero capacity");
	(void)meta_count_inodes(fs->meta, &inodes);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = bsize;
	sv.f_frsize = bsize;
	sv.f_blocks = cap.total / bsize;
	sv.f_bfree = cap.free / bsize;
	sv.f_bavail = cap.free / bsize;
	/* Inodes are LMDB records: bounded by space, not by a table. */
	sv.f_files = inodes + (1ull << 32);
	sv.f_ffree = 1ull << 32;
	sv.f_favail = 1ull << 32;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* --- xattrs --------------------------------------------------------------- */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	int rc;

	if (ro_check(req))
		return;
	rc = meta_setxattr(fs_of(req)->meta, ino, name, value, size, flags);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = meta_getxattr(fs_of(req)->meta, ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = meta_listxattr(fs_of(req)->meta, ino, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int rc;

	if (ro_check(req))
		return;
	rc = meta_removexattr(fs_of(req)->meta, ino, name);
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

const struct fuse_lowlevel_ops cairnfs_ll_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};
