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
 *   freeq      addr -> ""             blocks to delete from the cluster
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
 */
#define _GNU_SOURCE
#include "fs/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
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

#define META_FORMAT "cairnfs-meta-1"
#define META_MAPSIZE (256ull << 30)     /* virtual; the file grows as used */
#define MAX_DELETING 1024

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

struct meta {
	MDB_env *env;
	MDB_dbi super, inodes, dirents, cookies, extents, refs, freeq, xattrs,
		symlinks, orphans;
	pthread_mutex_t lock;
	pthread_cond_t deleted;        /* a delete finished */
	MDB_txn *wtxn;                 /* shared write transaction */
	bool dirty, ro, stopping;
	pthread_t committer;
	bool committer_started;
	pthread_cond_t stop;
	int lock_fd;
	uint8_t deleting[MAX_DELETING][32];
	size_t n_deleting;
	uint8_t (*claimed)[32];        /* addresses writers are about to reference */
	size_t n_claimed, cap_claimed;
};

/* --- encoding ------------------------------------------------------------ */

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* An inode as stored: meta_attr plus what directories need. */
struct inode {
	struct meta_attr a;
	uint64_t parent;        /* directories: for ".." and rename checks */
	uint64_t next_cookie;   /* directories: next readdir cookie */
};

#define INODE_BYTES 128
enum { I_MODE = 0, I_NLINK = 8, I_UID = 16, I_GID = 24, I_RDEV = 32, I_SIZE = 40,
       I_BLOCKS = 48, I_GEN = 56, I_ATIME = 64, I_MTIME = 80, I_CTIME = 96,
       I_PARENT = 112, I_COOKIE = 120 };
_Static_assert(I_COOKIE + 8 == INODE_BYTES, "inode record layout");

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

static int lmdb_err(int rc)
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
static int op_begin(struct meta *m, bool write, MDB_txn **txn)
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

static int op_end(struct meta *m, MDB_txn *txn, bool write, int rc)
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

static int inode_get(struct meta *m, MDB_txn *t, uint64_t ino, struct inode *in)
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

static int inode_put(struct meta *m, MDB_txn *t, const struct inode *in)
{
	uint8_t k[8], v[INODE_BYTES];
	MDB_val key = { 8, k }, val = { INODE_BYTES, v };

	be64(k, in->a.ino);
	inode_pack(in, v);
	return lmdb_err(mdb_put(t, m->inodes, &key, &val, 0));
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static int name_check(const char *name)
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
static int dirent_get(struct meta *m, MDB_txn *t, uint64_t parent,
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
static int dirent_add(struct meta *m, MDB_txn *t, struct inode *dir,
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

static int dirent_del(struct meta *m, MDB_txn *t, uint64_t parent, const char *name)
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
static int dir_is_empty(struct meta *m, MDB_txn *t, uint64_t dir)
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

/* --- references and the free queue ---------------------------------------- */

static bool is_deleting(struct meta *m, const uint8_t addr[32])
{
	for (size_t i = 0; i < m->n_deleting; i++)
		if (!memcmp(m->deleting[i], addr, 32))
			return true;
	return false;
}

static int ref_add(struct meta *m, MDB_txn *t, const uint8_t addr[32], int64_t d)
{
	MDB_val key = { 32, (void *)addr }, val;
	uint8_t v[8];
	uint64_t count = 0;
	int rc;

	rc = mdb_get(t, m->refs, &key, &val);
	if (rc == 0 && val.mv_size == 8)
		count = get_le64(val.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return lmdb_err(rc);
	if (d < 0 && count < (uint64_t)-d)
		return -EUCLEAN;
	count = (uint64_t)((int64_t)count + d);
	if (count == 0) {
		rc = mdb_del(t, m->refs, &key, NULL);
		if (rc)
			return lmdb_err(rc);
		/* nobody references it: queue it for deletion */
		val.mv_size = 0;
		val.mv_data = v;
		return lmdb_err(mdb_put(t, m->freeq, &key, &val, 0));
	}
	if (d > 0) {
		/* referenced (again): a queued delete is cancelled */
		rc = mdb_del(t, m->freeq, &key, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return lmdb_err(rc);
	}
	le64(v, count);
	val.mv_size = 8;
	val.mv_data = v;
	return lmdb_err(mdb_put(t, m->refs, &key, &val, 0));
}

enum meta_ref meta_ref_state(struct meta *m, const uint8_t addr[32])
{
	MDB_txn *t;
	MDB_val key = { 32, (void *)addr }, val;
	enum meta_ref st = META_REF_ABSENT;

	if (op_begin(m, false, &t) < 0)
		return META_REF_ABSENT;
	if (is_deleting(m, addr))
		st = META_REF_PENDING_DELETE;
	else if (mdb_get(t, m->freeq, &key, &val) == 0)
		st = META_REF_PENDING_DELETE;
	else if (mdb_get(t, m->refs, &key, &val) == 0)
		st = META_REF_PRESENT;
	op_end(m, t, false, 0);
	return st;
}

static bool is_claimed(struct meta *m, const uint8_t addr[32])
{
	for (size_t i = 0; i < m->n_claimed; i++)
		if (!memcmp(m->claimed[i], addr, 32))
			return true;
	return false;
}

enum meta_ref meta_ref_claim(struct meta *m, const uint8_t addr[32])
{
	enum meta_ref st;

	pthread_mutex_lock(&m->lock);
	while (is_deleting(m, addr))
		pthread_cond_wait(&m->deleted, &m->lock);
	if (m->n_claimed == m->cap_claimed) {
		size_t cap = m->cap_claimed ? 2 * m->cap_claimed : 256;
		uint8_t (*nc)[32] = realloc(m->claimed, cap * 32);

		if (nc) {
			m->claimed = nc;
			m->cap_claimed = cap;
		}
	}
	if (m->n_claimed < m->cap_claimed)
		memcpy(m->claimed[m->n_claimed++], addr, 32);
	pthread_mutex_unlock(&m->lock);
	st = meta_ref_state(m, addr);
	/* Without a claim slot (no memory) never trust PRESENT: upload. */
	return st;
}

void meta_ref_unclaim(struct meta *m, const uint8_t (*addrs)[32], size_t n)
{
	pthread_mutex_lock(&m->lock);
	for (size_t k = 0; k < n; k++) {
		for (size_t i = 0; i < m->n_claimed; i++) {
			if (!memcmp(m->claimed[i], addrs[k], 32)) {
				memcpy(m->claimed[i], m->claimed[--m->n_claimed], 32);
				break;
			}
		}
	}
	pthread_mutex_unlock(&m->lock);
}

size_t meta_free_take(struct meta *m, uint8_t (*addrs)[32], size_t max)
{
	MDB_txn *t;
	MDB_cursor *c;
	MDB_val key, val;
	size_t n = 0;
	int rc;

	if (op_begin(m, false, &t) < 0)
		return 0;
	if (mdb_cursor_open(t, m->freeq, &c) == 0) {
		for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
		     rc == 0 && n < max && m->n_deleting < MAX_DELETING;
		     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			if (key.mv_size != 32 || is_deleting(m, key.mv_data) ||
			    is_claimed(m, key.mv_data))
				continue;
			memcpy(addrs[n++], key.mv_data, 32);
			memcpy(m->deleting[m->n_deleting++], key.mv_data, 32);
		}
		mdb_cursor_close(c);
	}
	op_end(m, t, false, 0);
	return n;
}

void meta_free_done(struct meta *m, const uint8_t addr[32], bool deleted)
{
	MDB_txn *t;
	MDB_val key = { 32, (void *)addr };

	if (op_begin(m, true, &t) < 0)
		return;
	for (size_t i = 0; i < m->n_deleting; i++) {
		if (!memcmp(m->deleting[i], addr, 32)) {
			memcpy(m->deleting[i], m->deleting[--m->n_deleting], 32);
			break;
		}
	}
	/* still queued means still unreferenced: the delete stands */
	if (deleted)
		(void)mdb_del(t, m->freeq, &key, NULL);
	pthread_cond_broadcast(&m->deleted);
	op_end(m, t, true, 0);
}

void meta_delete_wait(struct meta *m, const uint8_t addr[32])
{
	pthread_mutex_lock(&m->lock);
	while (is_deleting(m, addr))
		pthread_cond_wait(&m->deleted, &m->lock);
	pthread_mutex_unlock(&m->lock);
}

/* --- extents ----------------------------------------------------------------- */

static void ext_key(uint8_t k[16], uint64_t ino, uint64_t off)
{
	be64(k, ino);
	be64(k + 8, off);
}

static void ext_decode(const MDB_val *key, const MDB_val *val, struct meta_extent *e)
{
	e->off = get_be64((uint8_t *)key->mv_data + 8);
	e->len = (uint32_t)get_le64(val->mv_data);
	memcpy(e->addr, (uint8_t *)val->mv_data + 8, 32);
}

static int ext_put(struct meta *m, MDB_txn *t, uint64_t ino,
		   const struct meta_extent *e)
{
	uint8_t k[16], v[40];
	MDB_val key = { 16, k }, val = { 40, v };

	ext_key(k, ino, e->off);
	le64(v, e->len);
	memcpy(v + 8, e->addr, 32);
	return lmdb_err(mdb_put(t, m->extents, &key, &val, 0));
}

/*
 * Remove extents overlapping [off, end) of ino, dropping their references.
 * An extent that starts before off is cut at off (it keeps its head); one
 * that runs past end is refused with -EINVAL unless `cut_tail` (truncate),
 * where everything from off on goes. *freed_bytes gets the bytes dropped.
 */
/*
 * The extents of ino that overlap [off, end), in order: the first call
 * (first = true) seeks to the extent at or before off, since one that
 * starts before off may reach into the range; later calls step on.
 * Returns 0 with *e filled, MDB_NOTFOUND past the last, or an LMDB error.
 * The cursor stays on *e, so the caller may update or delete it.
 */
static int ext_next(MDB_cursor *c, uint64_t ino, uint64_t off, uint64_t end,
		    bool first, MDB_val *key, MDB_val *val, struct meta_extent *e)
{
	uint8_t k[16];
	int rc;

	if (first) {
		ext_key(k, ino, off);
		key->mv_size = sizeof(k);
		key->mv_data = k;
		rc = mdb_cursor_get(c, key, val, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(c, key, val, MDB_LAST);
		else if (rc == 0 && (get_be64(key->mv_data) != ino ||
				     get_be64((uint8_t *)key->mv_data + 8) > off))
			rc = mdb_cursor_get(c, key, val, MDB_PREV) == 0 ? 0 :
			     mdb_cursor_get(c, key, val, MDB_FIRST);
	} else {
		rc = mdb_cursor_get(c, key, val, MDB_NEXT);
	}
	for (; rc == 0; rc = mdb_cursor_get(c, key, val, MDB_NEXT)) {
		if (key->mv_size != 16 || val->mv_size != 40)
			return MDB_CORRUPTED;
		if (get_be64(key->mv_data) < ino)
			continue;
		if (get_be64(key->mv_data) > ino)
			return MDB_NOTFOUND;
		ext_decode(key, val, e);
		if (e->off >= end)
			return MDB_NOTFOUND;
		if (e->off + e->len > off)
			return 0;
	}
	return rc;
}

static int ext_remove(struct meta *m, MDB_txn *t, uint64_t ino, uint64_t off,
		      uint64_t end, bool cut_tail, uint64_t *freed_bytes)
{
	MDB_val key, val;
	struct meta_extent e;
	MDB_cursor *c;
	int rc;

	*freed_bytes = 0;
	rc = mdb_cursor_open(t, m->extents, &c);
	if (rc)
		return lmdb_err(rc);
	for (rc = ext_next(c, ino, off, end, true, &key, &val, &e); rc == 0;
	     rc = ext_next(c, ino, off, end, false, &key, &val, &e)) {
		if (e.off < off) {
			/* keep its head [e.off, off) */
			uint8_t v[40];
			MDB_val nv = { 40, v };

			*freed_bytes += e.off + e.len - off;
			le64(v, off - e.off);
			memcpy(v + 8, e.addr, 32);
			rc = mdb_cursor_put(c, &key, &nv, MDB_CURRENT);
			if (rc)
				break;
			continue;
		}
		if (e.off + e.len > end && !cut_tail) {
			mdb_cursor_close(c);
			return -EINVAL;
		}
		*freed_bytes += e.len;
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
		rc = ref_add(m, t, e.addr, -1);
		if (rc < 0) {
			mdb_cursor_close(c);
			return rc;
		}
		rc = 0;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return lmdb_err(rc);
	return 0;
}

int meta_extents_get(struct meta *m, uint64_t ino, uint64_t off, uint64_t len,
		     struct meta_extent **out, size_t *n)
{
	MDB_val key, val;
	struct meta_extent e, *arr = NULL;
	size_t cap = 0, cnt = 0;
	MDB_cursor *c;
	MDB_txn *t;
	uint64_t end = off + len;
	int rc;

	rc = op_begin(m, false, &t);
	if (rc < 0)
		return rc;
	rc = mdb_cursor_open(t, m->extents, &c);
	if (rc) {
		rc = lmdb_err(rc);
		goto out;
	}
	for (rc = ext_next(c, ino, off, end, true, &key, &val, &e); rc == 0;
	     rc = ext_next(c, ino, off, end, false, &key, &val, &e)) {
		if (cnt == cap) {
			struct meta_extent *na;

			cap = cap ? cap * 2 : 16;
			na = realloc(arr, cap * sizeof(*arr));
			if (!na) {
				rc = ENOMEM;
				break;
			}
			arr = na;
		}
		arr[cnt++] = e;
	}
	mdb_cursor_close(c);
	rc = rc == MDB_NOTFOUND ? 0 : rc == ENOMEM ? -ENOMEM : lmdb_err(rc);
out:
	op_end(m, t, false, rc);
	if (rc < 0) {
		free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

int meta_extents_replace(struct meta *m, uint64_t ino, uint64_t off,
			 uint64_t len, const struct meta_extent *ext, size_t n,
			 uint64_t min_size)
{
	struct inode in;
	uint64_t freed = 0, added = 0;
	MDB_txn *t;
	int rc;

	rc = op_begin(m, true, &t);
	if (rc < 0)
		return rc;
	rc = inode_get(m, t, ino, &in);
	if (rc < 0)
		goto out;
	if (!S_ISREG(in.a.mode)) {
		rc = -EISDIR;
		goto out;
	}
	rc = ext_remove(m, t, ino, off, off + len, false, &freed);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (ext[i].off < off || ext[i].off + ext[i].len > off + len ||
		    !ext[i].len) {
			rc = -EINVAL;
			break;
		}
		rc = ext_put(m, t, ino, &ext[i]);
		if (rc == 0)
			rc = ref_add(m, t, ext[i].addr, 1);
		added += ext[i].len;
	}
	if (rc < 0)
		goto out;
	in.a.blocks = in.a.blocks + (added + 511) / 512 >= (freed + 511) / 512 ?
		      in.a.blocks + (added + 511) / 512 - (freed + 511) / 512 : 0;
	if (min_size > in.a.size)
		in.a.size = min_size;
	now(&in.a.mtime);
	in.a.ctime = in.a.mtime;
	rc = inode_put(m, t, &in);
out:
	return op_end(m, t, true, rc);
}

/* --- inodes -------------------------------------------------------------------- */

static int next_ino(struct meta *m, MDB_txn *t, uint64_t *ino)
{
	MDB_val key = { 8, "next-ino" }, val;
	uint8_t v[8];
	int rc;

	rc = mdb_get(t, m->super, &key, &val);
	if (rc || val.mv_size != 8)
		return rc ? lmdb_err(rc) : -EUCLEAN;
	*ino = get_le64(val.mv_data);
	le64(v, *ino + 1);
	val.mv_size = 8;
	val.mv_data = v;
	return lmdb_err(mdb_put(t, m->super, &key, &val, 0));
}

int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out)
{
	struct inode in;
	MDB_txn *t;
	int rc = op_begin(m, false, &t);

	if (rc < 0)
		return rc;
	rc = inode_get(m, t, ino, &in);
	if (rc == 0)
		*out = in.a;
	return op_end(m, t, false, rc);
}

int meta_file_size(struct meta *m, uint64_t ino, uint64_t *size)
{
	struct meta_attr a;
	int rc = meta_getattr(m, ino, &a);

	if (rc == 0)
		*size = a.size;
	return rc;
}

int meta_lookup(struct meta *m, uint64_t parent, const char *name,
		struct meta_attr *out)
{
	struct inode in;
	uint64_t child;
	MDB_txn *t;
	int rc = op_begin(m, false, &t);

	if (rc < 0)
		return rc;
	if (strlen(name) > META_NAME_MAX) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = inode_get(m, t, parent, &in);
	if (rc == 0 && !S_ISDIR(in.a.mode))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = dirent_get(m, t, parent, name, &child, NULL);
	if (rc == 0)
		rc = inode_get(m, t, child, &in);
	if (rc == 0)
		*out = in.a;
out:
	return op_end(m, t, false, rc);
}

/* Make an inode and link it into parent. */
static int make_node(struct meta *m, MDB_txn *t, uint64_t parent, const char *name,
		     uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid,
		     struct inode *out)
{
	struct inode dir, in;
	uint64_t dummy;
	int rc;

	rc = name_check(name);
	if (rc < 0)
		return rc == -EINVAL ? -EEXIST : rc;
	rc = inode_get(m, t, parent, &dir);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(dir.a.mode))
		return -ENOTDIR;
	if (dir.a.nlink == 0)
		return -ENOENT;       /* removed directory */
	rc = dirent_get(m, t, parent, name, &dummy, NULL);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	memset(&in, 0, sizeof(in));
	rc = next_ino(m, t, &in.a.ino);
	if (rc < 0)
		return rc;
	in.a.mode = mode;
	in.a.uid = uid;
	in.a.gid = gid;
	in.a.rdev = rdev;
	in.a.nlink = S_ISDIR(mode) ? 2 : 1;
	in.a.generation = 1;
	now(&in.a.atime);
	in.a.mtime = in.a.ctime = in.a.atime;
	if (S_ISDIR(mode)) {
		in.parent = parent;
		in.next_cookie = 3;     /* 1 ".", 2 ".." */
		dir.a.nlink++;
	}
	rc = dirent_add(m, t, &dir, name, in.a.ino);
	if (rc < 0)
		return rc;
	dir.a.mtime = dir.a.ctime = in.a.mtime;
	rc = inode_put(m, t, &dir);
	if (rc == 0)
		rc = inode_put(m, t, &in);
	if (rc == 0)
		*out = in;
	return rc;
}

int meta_mknod(struct meta *m, uint64_t parent, const char *name, uint32_t mode,
	       uint64_t rdev, uint32_t uid, uint32_t gid, struct meta_attr *out)
{
	struct inode in;
	MDB_txn *t;
	int rc = op_begin(m, true, &t);

	if (rc < 0)
		return rc;
	rc = make_node(m, t, parent, name, mode, rdev, uid, gid, &in);
	if (rc == 0)
		*out = in.a;
	return op_end(m, t, true, rc);
}

int meta_symlink(struct meta *m, uint64_t parent, const char *name,
		 const char *target, uint32_t uid, uint32_t gid,
		 struct meta_attr *out)
{
	struct inode in;
	uint8_t k[8];
	MDB_val key = { 8, k }, val = { strlen(target), (void *)target };
	MDB_txn *t;
	int rc;

	if (strlen(target) >= 4096)
		return -ENAMETOOLONG;
	rc = op_begin(m, true, &t);
	if (rc < 0)
		return rc;
	rc = make_node(m, t, parent, name, S_IFLNK | 0777, 0, uid, gid, &in);
	if (rc == 0) {
		in.a.size = strlen(target);
		rc = inode_put(m, t, &in);
	}
	if (rc == 0) {
		be64(k, in.a.ino);
		rc = lmdb_err(mdb_put(t, m->symlinks, &key, &val, 0));
	}
	if (rc == 0)
		*out = in.a;
	return op_end(m, t, true, rc);
}

int meta_readlink(struct meta *m, uint64_t ino, char *buf, size_t cap)
{
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	MDB_txn *t;
	int rc = op_begin(m, false, &t);

	if (rc < 0)
		return rc;
	be64(k, ino);
	rc = mdb_get(t, m->symlinks, &key, &val);
	if (rc) {
		rc = rc == MDB_NOTFOUND ? -EINVAL : lmdb_err(rc);
	} else if (val.mv_size >= cap) {
		rc = -ENAMETOOLONG;
	} else {
		memcpy(buf, val.mv_data, val.mv_size);
		buf[val.mv_size] = '\0';
		rc = (int)val.mv_size;
	}
	return op_end(m, t, false, rc);
}

int meta_link(struct meta *m, uint64_t ino, uint64_t newparent,
	      const char *newname, struct meta_attr *out)
{
	struct inode in, dir;
	uint64_t dummy;
	MDB_txn *t;
	int rc = op_begin(m, true, &t);

	if (rc < 0)
		return rc;
	rc = name_check(newname);
	if (rc == -EINVAL)
		rc = -EEXIST;
	if (rc == 0)
		rc = inode_get(m, t, ino, &in);
	if (rc == 0 && S_ISDIR(in.a.mode))
		rc = -EPERM;
	if (rc == 0)
		rc = inode_get(m, t, newparent, &dir);
	if (rc == 0 && !S_ISDIR(dir.a.mode))
		rc = -ENOTDIR;
	if (rc == 0 && dirent_get(m, t, newparent, newname, &dummy, NULL) == 0)
		rc = -EEXIST;
	if (rc == 0)
		rc = dirent_add(m, t, &dir, newname, ino);
	if (rc == 0) {
		if (in.a.nlink == 0) {       /* was an orphan: linked again */
			uint8_t k[8];
			MDB_val key = { 8, k };

			be64(k, ino);
			(void)mdb_del(t, m->orphans, &key, NULL);
		}
		in.a.nlink++;
		now(&in.a.ctime);
		dir.a.mtime = dir.a.ctime = in.a.ctime;
		rc = inode_put(m, t, &dir);
	}
	if (rc == 0)
		rc = inode_put(m, t, &in);
	if (rc == 0)
		*out = in.a;
	return op_end(m, t, true, rc);
}

/* One link of `in` went away; with none left it becomes an orphan. */
static int drop_link(struct meta *m, MDB_txn *t, struct inode *in)
{
	in->a.nlink = S_ISDIR(in->a.mode) ? 0 : in->a.nlink - 1;
	now(&in->a.ctime);
	if (in->a.nlink == 0) {
		uint8_t k[8], v = 0;
		MDB_val key = { 8, k }, val = { 1, &v };
		int rc;

		be64(k, in->a.ino);
		rc = mdb_put(t, m->orphans, &key, &val, 0);
		if (rc)
			return lmdb_err(rc);
	}
	return inode_put(m, t, in);
}

static int remove_entry(struct meta *m, uint64_t parent, const char *name,
			bool want_dir, uint64_t *ino)
{
	struct inode dir, in;
	uint64_t child;
	MDB_txn *t;
	int rc = op_begin(m, true, &t);

	if (rc < 0)
		return rc;
	if (strlen(name) > META_NAME_MAX) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		rc = want_dir ? (!strcmp(name, ".") ? -EINVAL : -ENOTEMPTY) : -EISDIR;
		goto out;
	}
	rc = inode_get(m, t, parent, &dir);
	if (rc == 0)
		rc = dirent_get(m, t, parent, name, &child, NULL);
	if (rc == 0)
		rc = inode_get(m, t, child, &in);
	if (rc < 0)
		goto out;
	if (want_dir && !S_ISDIR(in.a.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (!want_dir && S_ISDIR(in.a.mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (want_dir) {
		rc = dir_is_empty(m, t, child);
		if (rc < 0)
			goto out;
		if (!rc) {
			rc = -ENOTEMPTY;
			goto out;
		}
		dir.a.nlink--;
	}
	rc = dirent_del(m, t, parent, name);
	if (rc == 0)
		rc = drop_link(m, t, &in);
	if (rc == 0) {
		dir.a.mtime = dir.a.ctime = in.a.ctime;
		rc = inode_put(m, t, &dir);
	}
	if (rc == 0)
		*ino = child;
out:
	return op_end(m, t, true, rc);
}

int meta_unlink(struct meta *m, uint64_t parent, const char *name, uint64_t *ino)
{
	return remove_entry(m, parent, name, false, ino);
}

int meta_rmdir(struct meta *m, uint64_t parent, const char *name, uint64_t *ino)
{
	return remove_entry(m, parent, name, true, ino);
}

/* Whether `dir` is `anc` or lies below it. */
static int is_within(struct meta *m, MDB_txn *t, uint64_t dir, uint64_t anc)
{
	for (int depth = 0; depth < 4096; depth++) {
		struct inode in;
		int rc;

		if (dir == anc)
			return 1;
		if (dir == META_ROOT_INO)
			return 0;
		rc = inode_get(m, t, dir, &in);
		if (rc < 0)
			return rc;
		dir = in.parent;
	}
	return -ELOOP;
}

int meta_rename(struct meta *m, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname, unsigned flags,
		uint64_t *replaced)
{
	struct inode src_dir, dst_dir, src, dst;
	uint64_t src_ino, dst_ino = 0;
	bool have_dst;
	MDB_txn *t;
	int rc = op_begin(m, true, &t);

	*replaced = 0;
	if (rc < 0)
		return rc;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
		rc = -EINVAL;
		goto out;
	}
	rc = name_check(newname);
	if (rc == 0)
		rc = name_check(name);
	if (rc == -EINVAL)
		rc = -EBUSY;           /* "." or ".." */
	if (rc == 0)
		rc = inode_get(m, t, parent, &src_dir);
	if (rc == 0)
		rc = inode_get(m, t, newparent, &dst_dir);
	if (rc == 0 && (!S_ISDIR(src_dir.a.mode) || !S_ISDIR(dst_dir.a.mode)))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = dirent_get(m, t, parent, name, &src_ino, NULL);
	if (rc == 0)
		rc = inode_get(m, t, src_ino, &src);
	if (rc < 0)
		goto out;
	rc = dirent_get(m, t, newparent, newname, &dst_ino, NULL);
	if (rc < 0 && rc != -ENOENT)
		goto out;
	have_dst = rc == 0;
	rc = 0;
	if (have_dst) {
		rc = inode_get(m, t, dst_ino, &dst);
		if (rc < 0)
			goto out;
	}
	if (flags & RENAME_EXCHANGE) {
		if (!have_dst) {
			rc = -ENOENT;
			goto out;
		}
	} else if (have_dst && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	if (have_dst && dst_ino == src_ino)
		goto out;              /* same inode: nothing to do (POSIX) */
	/* a directory may not move below itself */
	if (S_ISDIR(src.a.mode) && parent != newparent) {
		rc = is_within(m, t, newparent, src_ino);
		if (rc < 0)
			goto out;
		if (rc) {
			rc = -EINVAL;
			goto out;
		}
	}
	if ((flags & RENAME_EXCHANGE) && S_ISDIR(dst.a.mode) && parent != newparent) {
		rc = is_within(m, t, parent, dst_ino);
		if (rc < 0)
			goto out;
		if (rc) {
			rc = -EINVAL;
			goto out;
		}
	}
	if (have_dst && !(flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(src.a.mode) && !S_ISDIR(dst.a.mode)) {
			rc = -ENOTDIR;
			goto out;
		}
		if (!S_ISDIR(src.a.mode) && S_ISDIR(dst.a.mode)) {
			rc = -EISDIR;
			goto out;
		}
		if (S_ISDIR(dst.a.mode)) {
			rc = dir_is_empty(m, t, dst_ino);
			if (rc < 0)
				goto out;
			if (!rc) {
				rc = -ENOTEMPTY;
				goto out;
			}
		}
	}

	/* Entries: drop the old names, add the new ones. */
	rc = dirent_del(m, t, parent, name);
	if (rc == 0 && have_dst)
		rc = dirent_del(m, t, newparent, newname);
	if (rc < 0)
		goto out;
	if (parent == newparent) {
		rc = dirent_add(m, t, &src_dir, newname, src_ino);
		if (rc == 0 && (flags & RENAME_EXCHANGE))
			rc = dirent_add(m, t, &src_dir, name, dst_ino);
		dst_dir = src_dir;
	} else {
		rc = dirent_add(m, t, &dst_dir, newname, src_ino);
		if (rc == 0 && (flags & RENAME_EXCHANGE))
			rc = dirent_add(m, t, &src_dir, name, dst_ino);
	}
	if (rc < 0)
		goto out;

	/* Link counts and parents. */
	if (S_ISDIR(src.a.mode) && parent != newparent) {
		src_dir.a.nlink--;
		dst_dir.a.nlink++;
		src.parent = newparent;
	}
	if ((flags & RENAME_EXCHANGE) && S_ISDIR(dst.a.mode) && parent != newparent) {
		dst_dir.a.nlink--;
		src_dir.a.nlink++;
		dst.parent = parent;
	}
	now(&src.a.ctime);
	if (have_dst && !(flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(dst.a.mode))
			dst_dir.a.nlink--;
		rc = drop_link(m, t, &dst);
		if (rc < 0)
			goto out;
		if (dst.a.nlink == 0)
			*replaced = dst_ino;
	} else if (have_dst) {
		dst.a.ctime = src.a.ctime;
		rc = inode_put(m, t, &dst);
		if (rc < 0)
			goto out;
	}
	src_dir.a.mtime = src_dir.a.ctime = src.a.ctime;
	dst_dir.a.mtime = dst_dir.a.ctime = src.a.ctime;
	if (parent == newparent) {
		/* one record: take the later counts from dst_dir */
		dst_dir.a.nlink = dst_dir.a.nlink;
		rc = inode_put(m, t, &dst_dir);
	} else {
		rc = inode_put(m, t, &src_dir);
		if (rc == 0)
			rc = inode_put(m, t, &dst_dir);
	}
	if (rc == 0)
		rc = inode_put(m, t, &src);
out:
	return op_end(m, t, true, rc);
}

/* Free an inode with no links: extents, xattrs, symlink, record. */
static int inode_free(struct meta *m, MDB_txn *t, uint64_t ino)
{
	uint8_t k[8 + META_NAME_MAX];
	MDB_val key, val;
	MDB_cursor *c;
	uint64_t freed;
	int rc;

	rc = ext_remove(m, t, ino, 0, UINT64_MAX, true, &freed);
	if (rc < 0)
		return rc;
	rc = mdb_cursor_open(t, m->xattrs, &c);
	if (rc)
		return lmdb_err(rc);
	be64(k, ino);
	key.mv_size = 8;
	key.mv_data = k;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	     rc == 0 && key.mv_size >= 8 && get_be64(key.mv_data) == ino;
	     rc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT)) {
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND && rc != EINVAL)
		return lmdb_err(rc);
	be64(k, ino);
	key.mv_size = 8;
	key.mv_data = k;
	(void)mdb_del(t, m->symlinks, &key, NULL);
	(void)mdb_del(t, m->orphans, &key, NULL);
	return lmdb_err(mdb_del(t, m->inodes, &key, NULL));
}

int meta_inode_release(struct meta *m, uint64_t ino)
{
	struct inode in;
	MDB_txn *t;
	int rc;

	if (m->ro)
		return 0;
	rc = op_begin(m, true, &t);
	if (rc < 0)
		return rc;
	rc = inode_get(m, t, ino, &in);
	if (rc == 0 && in.a.nlink == 0 && ino != META_ROOT_INO) {
		rc = inode_free(m, t, ino);
		if (rc == 0)
			rc = 1;
	}
	return op_end(m, t, true, rc);
}

int meta_setattr(struct meta *m, uint64_t ino, const struct meta_setattr *s,
		 struct meta_attr *out)
{
	struct inode in;
	MDB_txn *t;
	int rc = op_begin(m, true, &t);

	if (rc < 0)
		return rc;
	rc = inode_get(m, t, ino, &in);
	if (rc < 0)
		goto out;
	if (s->set & META_SET_MODE)
		in.a.mode = (in.a.mode & S_IFMT) | (s->mode & 07777);
	if (s->set & META_SET_UID)
		in.a.uid = s->uid;
	if (s->set & META_SET_GID)
		in.a.gid = s->gid;
	if (s->set & META_SET_SIZE) {
		if (S_ISDIR(in.a.mode)) {
			rc = -EISDIR;
			goto out;
		}
		if (s->size < in.a.size) {
			uint64_t freed = 0;

			rc = ext_remove(m, t, ino, s->size, UINT64_MAX, true, &freed);
			if (rc < 0)
				goto out;
			in.a.blocks = in.a.blocks >= (freed + 511) / 512 ?
				      in.a.blocks - (freed + 511) / 512 : 0;
		}
		in.a.size = s->size;
		now(&in.a.mtime);
	}
	if (s->set & META_SET_ATIME)
		in.a.atime = s->atime;
	if (s->set & META_SET_MTIME)
		in.a.mtime = s->mtime;
	if (s->set & META_SET_CTIME)
		in.a.ctime = s->ctime;
	else
		now(&in.a.ctime);
	rc = inode_put(m, t, &in);
	if (rc == 0)
		*out = in.a;
out:
	return op_end(m, t, true, rc);
}

int meta_readdir(struct meta *m, uint64_t ino, uint64_t off, meta_fill_fn fill,
		 void *arg)
{
	struct inode dir, child;
	uint8_t k[16];
	MDB_val key = { 16, k }, val;
	MDB_cursor *c;
	MDB_txn *t;
	int rc = op_begin(m, false, &t);

	if (rc < 0)
		return rc;
	rc = inode_get(m, t, ino, &dir);
	if (rc < 0)
		goto out;
	if (!S_ISDIR(dir.a.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (off < 1 && fill(arg, ".", &dir.a, 1))
		goto out;
	if (off < 2) {
		struct inode up;

		if (inode_get(m, t, dir.parent ? dir.parent : ino, &up) < 0)
			up = dir;
		if (fill(arg, "..", &up.a, 2))
			goto out;
	}
	rc = mdb_cursor_open(t, m->cookies, &c);
	if (rc) {
		rc = lmdb_err(rc);
		goto out;
	}
	be64(k, ino);
	be64(k + 8, off < 3 ? 3 : off + 1);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		char name[META_NAME_MAX + 1];
		uint64_t child_ino, cookie;

		if (key.mv_size != 16 || get_be64(key.mv_data) != ino)
			break;
		cookie = get_be64((uint8_t *)key.mv_data + 8);
		if (val.mv_size > META_NAME_MAX) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(name, val.mv_data, val.mv_size);
		name[val.mv_size] = '\0';
		if (dirent_get(m, t, ino, name, &child_ino, NULL) < 0 ||
		    inode_get(m, t, child_ino, &child) < 0)
			continue;
		if (fill(arg, name, &child.a, cookie))
			break;
	}
	mdb_cursor_close(c);
	rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : lmdb_err(rc);
out:
	return op_end(m, t, false, rc);
}

/* --- xattrs ------------------------------------------------------------------ */

static int xattr_key(uint8_t *k, uint64_t ino, const char *name, size_t *len)
{
	size_t n = strlen(name);

	if (!n)
		return -EINVAL;
	if (n > 255)
		return -ERANGE;
	be64(k, ino);
	memcpy(k + 8, name, n);
	*len = 8 + n;
	return 0;
}

int meta_setxattr(struct meta *m, uint64_t ino, const char *name,
		  const void *value, size_t size, int flags)
{
	uint8_t k[8 + 256];
	MDB_val key = { 0, k }, val = { size, (void *)value }, old;
	struct inode in;
	MDB_txn *t;
	int rc;

	if (size > META_XATTR_MAX)
		return -E2BIG;
	rc = op_begin(m, true, &t);
	if (rc < 0)
		return rc;
	rc = xattr_key(k, ino, name, &key.mv_size);
	if (rc == 0)
		rc = inode_get(m, t, ino, &in);
	if (rc < 0)
		goto out;
	rc = mdb_get(t, m->xattrs, &key, &old);
	if (rc == 0 && (flags & XATTR_CREATE)) {
		rc = -EEXIST;
		goto out;
	}
	if (rc == MDB_NOTFOUND && (flags & XATTR_REPLACE)) {
		rc = -ENODATA;
		goto out;
	}
	rc = lmdb_err(mdb_put(t, m->xattrs, &key, &val, 0));
	if (rc == 0) {
		now(&in.a.ctime);
		rc = inode_put(m, t, &in);
	}
out:
	return op_end(m, t, true, rc);
}

ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf,
		      size_t size)
{
	uint8_t k[8 + 256];
	MDB_val key = { 0, k }, val;
	MDB_txn *t;
	int rc = op_begin(m, false, &t);
	ssize_t n = 0;

	if (rc < 0)
		return rc;
	rc = xattr_key(k, ino, name, &key.mv_size);
	if (rc < 0)
		goto out;
	rc = mdb_get(t, m->xattrs, &key, &val);
	if (rc) {
		rc = rc == MDB_NOTFOUND ? -ENODATA : lmdb_err(rc);
		goto out;
	}
	n = (ssize_t)val.mv_size;
	if (size) {
		if (val.mv_size > size)
			rc = -ERANGE;
		else
			memcpy(buf, val.mv_data, val.mv_size);
	}
out:
	rc = op_end(m, t, false, rc);
	return rc < 0 ? rc : n;
}

ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t size)
{
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	MDB_cursor *c;
	MDB_txn *t;
	size_t total = 0;
	int rc = op_begin(m, false, &t);

	if (rc < 0)
		return rc;
	rc = mdb_cursor_open(t, m->xattrs, &c);
	if (rc) {
		rc = lmdb_err(rc);
		goto out;
	}
	be64(k, ino);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		size_t n;

		if (key.mv_size <= 8 || get_be64(key.mv_data) != ino)
			break;
		n = key.mv_size - 8;
		if (size) {
			if (total + n + 1 > size) {
				rc = ERANGE;
				break;
			}
			memcpy(buf + total, (uint8_t *)key.mv_data + 8, n);
			buf[total + n] = '\0';
		}
		total += n + 1;
	}
	mdb_cursor_close(c);
	rc = rc == ERANGE ? -ERANGE : (rc == 0 || rc == MDB_NOTFOUND) ? 0 : lmdb_err(rc);
out:
	rc = op_end(m, t, false, rc);
	return rc < 0 ? rc : (ssize_t)total;
}

int meta_removexattr(struct meta *m, uint64_t ino, const char *name)
{
	uint8_t k[8 + 256];
	MDB_val key = { 0, k };
	MDB_txn *t;
	int rc = op_begin(m, true, &t);

	if (rc < 0)
		return rc;
	rc = xattr_key(k, ino, name, &key.mv_size);
	if (rc == 0) {
		rc = mdb_del(t, m->xattrs, &key, NULL);
		rc = rc == MDB_NOTFOUND ? -ENODATA : lmdb_err(rc);
	}
	return op_end(m, t, true, rc);
}

int meta_count_inodes(struct meta *m, uint64_t *n)
{
	MDB_stat st;
	MDB_txn *t;
	int rc = op_begin(m, false, &t);

	if (rc < 0)
		return rc;
	rc = lmdb_err(mdb_stat(t, m->inodes, &st));
	if (rc == 0)
		*n = st.ms_entries;
	return op_end(m, t, false, rc);
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
		now(&root.a.atime);
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
	if (rc == 0 && !ro)
		rc = meta_clean_orphans(m, t, &orphans);
	if (rc < 0)
		goto fail;
	if (ro) {
		mdb_txn_abort(t);
	} else {
		rc = mdb_txn_commit(t);
		if (rc) {
			t = NULL;
			rc = lmdb_err(rc);
			errf(err, err_len, "metadata commit: %s", mdb_strerror(-rc));
			goto fail;
		}
	}
	t = NULL;
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
