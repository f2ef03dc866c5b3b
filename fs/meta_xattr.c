/*
 * meta_xattr: extended attributes of inodes (see meta.c for the databases and
 * transactions).
 */
#define _GNU_SOURCE
#include "fs/meta_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "cluster/log.h"

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
		meta_now(&in.a.ctime);
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
