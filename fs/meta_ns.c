/*
 * meta_ns: inodes and names: lookup, create, link, unlink, rename, setattr,
 * readdir and the release of unlinked inodes (see meta.c for the
 * databases and transactions).
 */
#define _GNU_SOURCE
#include "fs/meta_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster/log.h"

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
	meta_now(&in.a.atime);
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
		meta_now(&in.a.ctime);
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
	meta_now(&in->a.ctime);
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
	meta_now(&src.a.ctime);
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
int inode_free(struct meta *m, MDB_txn *t, uint64_t ino)
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
		meta_now(&in.a.mtime);
	}
	if (s->set & META_SET_ATIME)
		in.a.atime = s->atime;
	if (s->set & META_SET_MTIME)
		in.a.mtime = s->mtime;
	if (s->set & META_SET_CTIME)
		in.a.ctime = s->ctime;
	else
		meta_now(&in.a.ctime);
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
