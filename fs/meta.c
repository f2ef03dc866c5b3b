/*
 * meta: filesystem metadata in LMDB (contract in meta.h).
 *
 * Databases (keys big-endian so that LMDB's byte order is numeric order):
 *   super      name -> value          format, volume id, next inode number
 *   inodes     ino -> packed attributes (+ parent and next cookie for dirs)
 *   dirents    parent|name -> child ino | cookie
 *   cookies    parent|cookie -> name  (readdir order and stable offsets)
 *   extents    ino|offset -> len | addr
 *   refs       addr -> count
 *   freeq      addr -> tag or ""      blocks to delete from the cluster
 *                                     (the tag: meta_blocks.c)
 *   freeorder  seq -> addr            the same, in the order they were freed
 *   xattrs     ino|name -> value
 *   symlinks   ino -> target
 *   orphans    ino -> ""             unlinked while open; freed on release
 *
 * Concurrency and durability: one mutex; one long-lived write transaction
 * shared by all operations, each of which runs in a nested child
 * transaction (so a failed operation leaves nothing behind); a timer
 * thread commits the shared transaction every META_COMMIT_MS, meta_sync()
 * at once. Commits sync (no MDB_NOSYNC anywhere).
 *
 * MDB_NOLOCK: the shared write transaction is begun by whichever thread
 * comes first and committed by another (the committer). LMDB's own writer
 * lock is a robust pthread mutex that only its owner thread may release,
 * so with it the next writer would wait forever. Our mutex already allows
 * one transaction at a time in this process, and the flock on DIR/lock
 * keeps every other process out, which is what MDB_NOLOCK asks of us.
 *
 * The parts: this file has the transactions, the records every part uses
 * (inodes, directory entries) and open/close; meta_blocks.c block
 * references, the free queue and extents; meta_ns.c inodes and names;
 * meta_xattr.c extended attributes. meta_int.h is what they share.
 */
#define _GNU_SOURCE
#include "fs/meta_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sodium.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cluster/log.h"
#include "cluster/threadname.h"

/* --- encoding ------------------------------------------------------------ */

static void put_ts(uint8_t *p, const struct timespec *t)
{
	le64(p, (uint64_t)t->tv_sec);
	le64(p + 8, (uint64_t)t->tv_nsec);
}

static void get_ts(const uint8_t *p, struct timespec *t)
{
	t->tv_sec = (time_t)get_le64(p);
	t->tv_nsec = (long)get_le64(p + 8);
}

static void inode_pack(const struct inode *in, uint8_t out[INODE_BYTES])
{
	le64(out + I_MODE, in->a.mode);
	le64(out + I_NLINK, in->a.nlink);
	le64(out + I_UID, in->a.uid);
	le64(out + I_GID, in->a.gid);
	le64(out + I_RDEV, in->a.rdev);
	le64(out + I_SIZE, in->a.size);
	le64(out + I_BLOCKS, in->a.blocks);
	le64(out + I_GEN, in->a.generation);
	put_ts(out + I_ATIME, &in->a.atime);
	put_ts(out + I_MTIME, &in->a.mtime);
	put_ts(out + I_CTIME, &in->a.ctime);
	le64(out + I_PARENT, in->parent);
	le64(out + I_COOKIE, in->next_cookie);
}

static int inode_unpack(uint64_t ino, const MDB_val *v, struct inode *in)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != INODE_BYTES)
		return -EUCLEAN;
	memset(in, 0, sizeof(*in));
	in->a.ino = ino;
	in->a.mode = (uint32_t)get_le64(p + I_MODE);
	in->a.nlink = (uint32_t)get_le64(p + I_NLINK);
	in->a.uid = (uint32_t)get_le64(p + I_UID);
	in->a.gid = (uint32_t)get_le64(p + I_GID);
	in->a.rdev = get_le64(p + I_RDEV);
	in->a.size = get_le64(p + I_SIZE);
	in->a.blocks = get_le64(p + I_BLOCKS);
	in->a.generation = get_le64(p + I_GEN);
	get_ts(p + I_ATIME, &in->a.atime);
	get_ts(p + I_MTIME, &in->a.mtime);
	get_ts(p + I_CTIME, &in->a.ctime);
	in->parent = get_le64(p + I_PARENT);
	in->next_cookie = get_le64(p + I_COOKIE);
	return 0;
}

int lmdb_err(int rc)
{
	switch (rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return -ENOENT;
	case MDB_MAP_FULL: return -ENOSPC;
	case MDB_KEYEXIST: return -EEXIST;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
		return -EUCLEAN;
	default: return rc > 0 ? -rc : -EIO;
	}
}

/* --- transactions ---------------------------------------------------------- */

/* Start an operation: take the lock, and give a child of the shared write
 * transaction (write) or a read view. */
int op_begin(struct meta *m, bool write, MDB_txn **txn)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	if (write && m->ro) {
		pthread_mutex_unlock(&m->lock);
		return -EROFS;
	}
	if (m->ro) {
		rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, txn);
		goto out;
	}
	if (!m->wtxn) {
		rc = mdb_txn_begin(m->env, NULL, 0, &m->wtxn);
		if (rc)
			goto out;
	}
	if (!write) {
		*txn = m->wtxn;         /* reads see every change made so far */
		return 0;
	}
	rc = mdb_txn_begin(m->env, m->wtxn, 0, txn);
out:
	if (rc) {
		pthread_mutex_unlock(&m->lock);
		return lmdb_err(rc);
	}
	return 0;
}

int op_end(struct meta *m, MDB_txn *txn, bool write, int rc)
{
	if (m->ro) {
		mdb_txn_abort(txn);
	} else if (write) {
		if (rc < 0) {
			mdb_txn_abort(txn);
		} else {
			int c = mdb_txn_commit(txn);   /* into the parent */

			if (c)
				rc = lmdb_err(c);
			else
				m->dirty = true;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Commit the shared transaction; caller holds the lock. */
static int commit_locked(struct meta *m)
{
	int rc;

	if (!m->wtxn)
		return 0;
	if (!m->dirty) {
		mdb_txn_abort(m->wtxn);
		m->wtxn = NULL;
		return 0;
	}
	rc = mdb_txn_commit(m->wtxn);
	m->wtxn = NULL;
	m->dirty = false;
	if (rc) {
		log_err("metadata commit failed: %s", mdb_strerror(rc));
		return lmdb_err(rc);
	}
	return 0;
}

int meta_sync(struct meta *m)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = m->ro ? 0 : commit_locked(m);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static void *committer_main(void *arg)
{
	struct meta *m = arg;

	thread_name("fs-meta-commit");

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += META_COMMIT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&m->stop, &m->lock, &ts);
		if (m->dirty)
			(void)commit_locked(m);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* --- records --------------------------------------------------------------- */

int inode_get(struct meta *m, MDB_txn *t, uint64_t ino, struct inode *in)
{
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	int rc;

	be64(k, ino);
	rc = mdb_get(t, m->inodes, &key, &val);
	if (rc)
		return lmdb_err(rc);
	return inode_unpack(ino, &val, in);
}

int inode_put(struct meta *m, MDB_txn *t, const struct inode *in)
{
	uint8_t k[8], v[INODE_BYTES];
	MDB_val key = { 8, k }, val = { INODE_BYTES, v };

	be64(k, in->a.ino);
	inode_pack(in, v);
	return lmdb_err(mdb_put(t, m->inodes, &key, &val, 0));
}

void meta_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

int name_check(const char *name)
{
	size_t n = strlen(name);

	if (!n || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (n > META_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static size_t dirent_key(uint8_t *k, uint64_t parent, const char *name)
{
	size_t n = strlen(name);

	be64(k, parent);
	memcpy(k + 8, name, n);
	return 8 + n;
}

/* Look a name up: child inode and cookie. */
int dirent_get(struct meta *m, MDB_txn *t, uint64_t parent,
		      const char *name, uint64_t *child, uint64_t *cookie)
{
	uint8_t k[8 + META_NAME_MAX];
	MDB_val key, val;
	int rc;

	if (strlen(name) > META_NAME_MAX)
		return -ENAMETOOLONG;
	key.mv_size = dirent_key(k, parent, name);
	key.mv_data = k;
	rc = mdb_get(t, m->dirents, &key, &val);
	if (rc)
		return lmdb_err(rc);
	if (val.mv_size != 16)
		return -EUCLEAN;
	*child = get_le64(val.mv_data);
	if (cookie)
		*cookie = get_le64((uint8_t *)val.mv_data + 8);
	return 0;
}

/* Add name -> child in dir (whose record the caller holds and saves). */
int dirent_add(struct meta *m, MDB_txn *t, struct inode *dir,
		      const char *name, uint64_t child)
{
	uint8_t k[8 + META_NAME_MAX], v[16], ck[16];
	MDB_val key, val = { 16, v }, ckey = { 16, ck }, cval;
	uint64_t cookie = dir->next_cookie++;
	int rc;

	key.mv_size = dirent_key(k, dir->a.ino, name);
	key.mv_data = k;
	le64(v, child);
	le64(v + 8, cookie);
	rc = mdb_put(t, m->dirents, &key, &val, MDB_NOOVERWRITE);
	if (rc)
		return lmdb_err(rc);
	be64(ck, dir->a.ino);
	be64(ck + 8, cookie);
	cval.mv_size = strlen(name);
	cval.mv_data = (void *)name;
	return lmdb_err(mdb_put(t, m->cookies, &ckey, &cval, 0));
}

int dirent_del(struct meta *m, MDB_txn *t, uint64_t parent, const char *name)
{
	uint8_t k[8 + META_NAME_MAX], ck[16];
	MDB_val key, ckey = { 16, ck };
	uint64_t child, cookie;
	int rc;

	rc = dirent_get(m, t, parent, name, &child, &cookie);
	if (rc)
		return rc;
	key.mv_size = dirent_key(k, parent, name);
	key.mv_data = k;
	rc = mdb_del(t, m->dirents, &key, NULL);
	if (rc)
		return lmdb_err(rc);
	be64(ck, parent);
	be64(ck + 8, cookie);
	return lmdb_err(mdb_del(t, m->cookies, &ckey, NULL));
}

/* Whether a directory has entries. */
int dir_is_empty(struct meta *m, MDB_txn *t, uint64_t dir)
{
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	MDB_cursor *c;
	int rc, empty;

	be64(k, dir);
	rc = mdb_cursor_open(t, m->dirents, &c);
	if (rc)
		return lmdb_err(rc);
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	empty = rc == MDB_NOTFOUND || key.mv_size < 8 ||
		get_be64(key.mv_data) != dir;
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return lmdb_err(rc);
	return empty;
}

/* --- open / close ------------------------------------------------------------ */

static void errf(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* First open: superblock and root; later: check the volume. */
static int meta_init(struct meta *m, MDB_txn *t, const struct keys_volume *vol,
		     char *err, size_t err_len)
{
	MDB_val key = { 9, "volume-id" }, val;
	int rc = mdb_get(t, m->super, &key, &val);

	if (rc == 0) {
		MDB_val fk = { 6, "format" }, fv;

		if (mdb_get(t, m->super, &fk, &fv) || fv.mv_size != strlen(META_FORMAT) ||
		    memcmp(fv.mv_data, META_FORMAT, fv.mv_size)) {
			errf(err, err_len, "metadata format is not %s", META_FORMAT);
			return -ENOTSUP;
		}
		if (val.mv_size != KEYS_VOLUME_ID_BYTES ||
		    memcmp(val.mv_data, vol->volume_id, KEYS_VOLUME_ID_BYTES)) {
			errf(err, err_len,
			     "this metadata dir belongs to another volume than '%s'",
			     vol->name);
			return -EXDEV;
		}
		return 0;
	}
	if (rc != MDB_NOTFOUND || m->ro) {
		errf(err, err_len, "metadata dir holds no volume%s",
		     m->ro ? " (and a read-only mount cannot create one)" : "");
		return rc == MDB_NOTFOUND ? -ENOENT : lmdb_err(rc);
	}
	{
		struct inode root = { 0 };
		uint8_t v[8];
		MDB_val fk = { 6, "format" }, fv = { strlen(META_FORMAT), META_FORMAT };
		MDB_val nk = { 8, "next-ino" }, nv = { 8, v };

		val.mv_size = KEYS_VOLUME_ID_BYTES;
		val.mv_data = (void *)vol->volume_id;
		le64(v, META_ROOT_INO + 1);
		rc = mdb_put(t, m->super, &key, &val, 0);
		if (!rc)
			rc = mdb_put(t, m->super, &fk, &fv, 0);
		if (!rc)
			rc = mdb_put(t, m->super, &nk, &nv, 0);
		if (rc)
			return lmdb_err(rc);
		root.a.ino = META_ROOT_INO;
		root.a.mode = S_IFDIR | 0755;
		root.a.nlink = 2;
		root.a.uid = geteuid();
		root.a.gid = getegid();
		root.a.generation = 1;
		meta_now(&root.a.atime);
		root.a.mtime = root.a.ctime = root.a.atime;
		root.parent = META_ROOT_INO;
		root.next_cookie = 3;
		return inode_put(m, t, &root);
	}
}

/* After a crash nothing is open any more: free every orphan. */
static int meta_clean_orphans(struct meta *m, MDB_txn *t, unsigned *freed)
{
	for (;;) {
		MDB_cursor *c;
		MDB_val key, val;
		uint64_t ino;
		int rc;

		rc = mdb_cursor_open(t, m->orphans, &c);
		if (rc)
			return lmdb_err(rc);
		rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc || key.mv_size != 8)
			return rc ? lmdb_err(rc) : -EUCLEAN;
		ino = get_be64(key.mv_data);
		rc = inode_free(m, t, ino);
		if (rc == -ENOENT) {
			rc = lmdb_err(mdb_del(t, m->orphans, &key, NULL));
		}
		if (rc < 0)
			return rc;
		(*freed)++;
	}
}

int meta_open(const char *dir, const struct keys_volume *vol, bool ro,
	      struct meta **out, char *err, size_t err_len)
{
	struct meta *m = calloc(1, sizeof(*m));
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = {
		{ "super", NULL }, { "inodes", NULL }, { "dirents", NULL },
		{ "cookies", NULL }, { "extents", NULL }, { "refs", NULL },
		{ "freeq", NULL }, { "xattrs", NULL }, { "symlinks", NULL },
		{ "orphans", NULL },
	};
	char path[4096];
	unsigned orphans = 0;
	MDB_txn *t = NULL;
	int rc;

	if (!m)
		return -ENOMEM;
	dbs[0].dbi = &m->super; dbs[1].dbi = &m->inodes; dbs[2].dbi = &m->dirents;
	dbs[3].dbi = &m->cookies; dbs[4].dbi = &m->extents; dbs[5].dbi = &m->refs;
	dbs[6].dbi = &m->freeq; dbs[7].dbi = &m->xattrs; dbs[8].dbi = &m->symlinks;
	dbs[9].dbi = &m->orphans;
	m->ro = ro;
	m->lock_fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	randombytes_buf(m->mount_tag, sizeof(m->mount_tag));
	pthread_cond_init(&m->deleted, NULL);
	pthread_cond_init(&m->stop, NULL);

	if (!ro && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		errf(err, err_len, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	m->lock_fd = open(path, (ro ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0600);
	if (m->lock_fd < 0) {
		rc = -errno;
		errf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(m->lock_fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		rc = -EBUSY;
		errf(err, err_len,
		     "%s is already in use by another cairnfs mount of this volume (one read-write mount at a time)",
		     dir);
		goto fail;
	}
	rc = mdb_env_create(&m->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(m->env, 16);
	if (!rc)
		rc = mdb_env_set_mapsize(m->env, META_MAPSIZE);
	if (!rc)
		rc = mdb_env_open(m->env, dir, (ro ? MDB_RDONLY : 0) | MDB_NOLOCK, 0600);
	if (rc) {
		errf(err, err_len, "cannot open the metadata in %s: %s%s", dir,
		     mdb_strerror(rc),
		     rc == MDB_CORRUPTED || rc == MDB_INVALID ?
		     " (the database is damaged: restore it from a snapshot)" : "");
		rc = lmdb_err(rc);
		goto fail;
	}
	rc = mdb_txn_begin(m->env, NULL, ro ? MDB_RDONLY : 0, &t);
	if (rc) {
		rc = lmdb_err(rc);
		errf(err, err_len, "metadata: %s", mdb_strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(t, dbs[i].name, ro ? 0 : MDB_CREATE, dbs[i].dbi);
		if (rc) {
			errf(err, err_len, "metadata database '%s': %s", dbs[i].name,
			     mdb_strerror(rc));
			rc = rc == MDB_NOTFOUND ? -ENOENT : lmdb_err(rc);
			goto fail;
		}
	}
	rc = meta_init(m, t, vol, err, err_len);
	if (rc == 0)
		rc = meta_freeorder_open(m, t, err, err_len);
	if (rc == 0 && !ro)
		rc = meta_clean_orphans(m, t, &orphans);
	if (rc < 0)
		goto fail;
	/* Committed even when read-only: aborting the transaction that
	 * opened the database handles would close them, and every later
	 * read would fail with EINVAL. */
	rc = mdb_txn_commit(t);
	t = NULL;
	if (rc) {
		rc = lmdb_err(rc);
		errf(err, err_len, "metadata commit: %s", mdb_strerror(-rc));
		goto fail;
	}
	if (orphans)
		log_info("metadata: freed %u inodes left unlinked by an earlier crash", orphans);
	if (!ro) {
		rc = pthread_create(&m->committer, NULL, committer_main, m);
		if (rc) {
			rc = -rc;
			goto fail;
		}
		m->committer_started = true;
	}
	*out = m;
	return 0;
fail:
	if (t)
		mdb_txn_abort(t);
	if (m->env)
		mdb_env_close(m->env);
	if (m->lock_fd >= 0)
		close(m->lock_fd);
	free(m);
	return rc;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->stop);
	pthread_mutex_unlock(&m->lock);
	if (m->committer_started)
		pthread_join(m->committer, NULL);
	pthread_mutex_lock(&m->lock);
	if (!m->ro)
		(void)commit_locked(m);
	pthread_mutex_unlock(&m->lock);
	mdb_env_close(m->env);
	close(m->lock_fd);
	pthread_cond_destroy(&m->stop);
	pthread_cond_destroy(&m->deleted);
	pthread_mutex_destroy(&m->lock);
	free(m->claimed);
	free(m);
}
