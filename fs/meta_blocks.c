/*
 * meta_blocks: the block side of the metadata: reference counts of block addresses,
 * the claims writers hold and the queue of blocks to delete from the
 * cluster, and the extents that map a file's bytes to blocks (see meta.c
 * for the databases and transactions).
 */
#define _GNU_SOURCE
#include "fs/meta_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster/log.h"

/* --- references and the free queue ---------------------------------------- */

/*
 * The free queue is freeq (addr -> tag: looked up by address) and
 * freeorder (seq -> addr: the order the blocks were freed in), and the
 * deleter takes them in that order. Why: a removed file's blocks were
 * written together, so the daemons' pack files that hold them die whole
 * one after another and go without a copy. Taken in address order (what
 * freeq alone gives) a slow delete left every pack part dead for its whole
 * length, and a file written again meanwhile (its queued blocks used again,
 * META_REF_QUEUED) left them all part live: the daemons then copied
 * hundreds of MB forward while the next write ran.
 * An address referenced again keeps its freeorder entry until the deleter
 * meets it and drops it.
 */
static int freeorder_push(struct meta *m, MDB_txn *t, const uint8_t addr[32])
{
	uint8_t k[8];
	MDB_val key = { sizeof(k), k }, val = { 32, (void *)addr };

	be64(k, m->free_seq++);
	return lmdb_err(mdb_put(t, m->freeorder, &key, &val, MDB_APPEND));
}

/* mdb_del where a missing key is no error. */
static int del_found(MDB_txn *t, MDB_dbi dbi, MDB_val *key)
{
	int rc = mdb_del(t, dbi, key, NULL);

	return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc);
}

int meta_freeorder_open(struct meta *m, MDB_txn *t, char *err, size_t err_len)
{
	MDB_cursor *c = NULL;
	MDB_val key, val;
	int rc;

	rc = mdb_dbi_open(t, "freeorder", m->ro ? 0 : MDB_CREATE, &m->freeorder);
	if (rc == MDB_NOTFOUND && m->ro)
		return 0;                /* read-only never deletes */
	if (rc) {
		snprintf(err, err_len, "metadata database 'freeorder': %s",
			 mdb_strerror(rc));
		return lmdb_err(rc);
	}
	m->have_freeorder = true;
	rc = mdb_cursor_open(t, m->freeorder, &c);
	if (rc)
		return lmdb_err(rc);
	rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
	mdb_cursor_close(c);
	if (rc == 0) {
		m->free_seq = key.mv_size == 8 ? get_be64(key.mv_data) + 1 : 0;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return lmdb_err(rc);
	if (m->ro)
		return 0;
	/* A volume from before freeorder: its queue in address order. */
	rc = mdb_cursor_open(t, m->freeq, &c);
	if (rc)
		return lmdb_err(rc);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		int prc;

		if (key.mv_size != 32)
			continue;
		prc = freeorder_push(m, t, key.mv_data);
		if (prc < 0) {
			mdb_cursor_close(c);
			return prc;
		}
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc);
}

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
		/* nobody references it: queue it for deletion, tagged as
		 * queued by this mount (meta_ref_state) */
		val.mv_size = sizeof(m->mount_tag);
		val.mv_data = m->mount_tag;
		rc = mdb_put(t, m->freeq, &key, &val, 0);
		return rc ? lmdb_err(rc) : freeorder_push(m, t, addr);
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
		/* Only this mount's tag says no delete was ever sent: a failed
		 * one drops the tag, and one cut short by a crash left the
		 * tag of an earlier mount. */
		st = val.mv_size == sizeof(m->mount_tag) &&
		     !memcmp(val.mv_data, m->mount_tag, sizeof(m->mount_tag)) ?
		     META_REF_QUEUED : META_REF_PENDING_DELETE;
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
	MDB_val key, val, tag;
	size_t n = 0;
	bool dropped = false;
	int rc;

	if (op_begin(m, true, &t) < 0)
		return 0;
	if (m->have_freeorder && mdb_cursor_open(t, m->freeorder, &c) == 0) {
		for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
		     rc == 0 && n < max && m->n_deleting < MAX_DELETING;
		     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			MDB_val ak = { 32, val.mv_data };

			if (key.mv_size != 8 || val.mv_size != 32 ||
			    mdb_get(t, m->freeq, &ak, &tag) != 0) {
				/* referenced again since (or not ours) */
				dropped |= mdb_cursor_del(c, 0) == 0;
				continue;
			}
			if (is_deleting(m, val.mv_data) || is_claimed(m, val.mv_data))
				continue;
			memcpy(addrs[n++], val.mv_data, 32);
			memcpy(m->deleting[m->n_deleting], val.mv_data, 32);
			m->deleting_seq[m->n_deleting++] = get_be64(key.mv_data);
		}
		mdb_cursor_close(c);
	}
	/* Nothing dropped: no change to commit (an idle mount's deleter
	 * looks every second, and would cost a sync each time). */
	op_end(m, t, true, dropped ? 0 : -ECANCELED);
	return n;
}

void meta_free_done(struct meta *m, const uint8_t addr[32], bool deleted)
{
	MDB_txn *t;
	MDB_val key = { 32, (void *)addr }, val;
	uint8_t sk[8];
	MDB_val seq = { sizeof(sk), sk };
	bool taken = false;
	int rc = 0;

	if (op_begin(m, true, &t) < 0)
		return;
	for (size_t i = 0; i < m->n_deleting; i++) {
		if (!memcmp(m->deleting[i], addr, 32)) {
			be64(sk, m->deleting_seq[i]);
			taken = true;
			m->n_deleting--;
			memcpy(m->deleting[i], m->deleting[m->n_deleting], 32);
			m->deleting_seq[i] = m->deleting_seq[m->n_deleting];
			break;
		}
	}
	if (taken)
		rc = del_found(t, m->freeorder, &seq);
	/* still queued means still unreferenced: the delete stands */
	if (rc == 0 && deleted) {
		rc = del_found(t, m->freeq, &key);
	} else if (rc == 0 && mdb_get(t, m->freeq, &key, &val) == 0) {
		/* Some owners may have dropped it: never used without an
		 * upload again. Tried again later, behind the rest. */
		val.mv_size = 0;
		val.mv_data = (void *)addr;
		rc = lmdb_err(mdb_put(t, m->freeq, &key, &val, 0));
		if (rc == 0)
			rc = freeorder_push(m, t, addr);
	}
	pthread_cond_broadcast(&m->deleted);
	/* On failure nothing changes: its freeorder entry stays, and the
	 * deleter takes it again (a freeq entry with none would never be). */
	if (op_end(m, t, true, rc) < 0)
		log_warn("metadata: cannot note the delete of block %02x%02x%02x%02x: %s",
			 addr[0], addr[1], addr[2], addr[3], log_strerror(rc));
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

int ext_remove(struct meta *m, MDB_txn *t, uint64_t ino, uint64_t off,
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
	meta_now(&in.a.mtime);
	in.a.ctime = in.a.mtime;
	rc = inode_put(m, t, &in);
out:
	return op_end(m, t, true, rc);
}
