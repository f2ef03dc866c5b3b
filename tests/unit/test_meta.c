/*
 * test_meta: the client's LMDB metadata (fs/meta.c) without FUSE: names,
 * link counts, rename rules, readdir offsets, xattrs, extents and block
 * reference counts, the free queue, and durability across reopen and a
 * crash of the process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>
#include <lmdb.h>

#include "crypto/keys.h"
#include "fs/meta.h"

#define ROOT 1

struct fixture {
	char dir[64];
	struct keys *keys;
	struct meta *m;
};

static struct keys *new_keys(const char *name)
{
	struct keys_volume v = { .chunk_min = 65536, .chunk_avg = 262144,
				 .chunk_max = 1048576 };
	struct keys *k = NULL;

	snprintf(v.name, sizeof(v.name), "%s", name);
	assert_int_equal(keys_generate(&v, &k), 0);
	return k;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256] = "";

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_meta.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->keys = new_keys("vol");
	assert_int_equal(meta_open(f->dir, keys_volume(f->keys), false, &f->m,
				   err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	meta_close(f->m);
	keys_free(f->keys);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	char err[256] = "";

	meta_close(f->m);
	f->m = NULL;
	assert_int_equal(meta_open(f->dir, keys_volume(f->keys), false, &f->m,
				   err, sizeof(err)), 0);
}

static uint64_t mk(struct meta *m, uint64_t parent, const char *name,
		   uint32_t mode)
{
	struct meta_attr a;

	assert_int_equal(meta_mknod(m, parent, name, mode, 0, 0, 0, &a), 0);
	return a.ino;
}

static uint32_t nlink_of(struct meta *m, uint64_t ino)
{
	struct meta_attr a;

	assert_int_equal(meta_getattr(m, ino, &a), 0);
	return a.nlink;
}

static void addr_of(uint8_t addr[32], unsigned n)
{
	memset(addr, 0, 32);
	addr[0] = (uint8_t)n;
	addr[1] = (uint8_t)(n >> 8);
	addr[31] = 0xa5;
}

/* --- cases ----------------------------------------------------------------- */

static void fresh_volume_has_a_root_dir_and_survives_reopen(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;

	assert_int_equal(meta_getattr(f->m, ROOT, &a), 0);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(a.nlink, 2);
	mk(f->m, ROOT, "kept", S_IFREG | 0644);
	reopen(f);
	assert_int_equal(meta_lookup(f->m, ROOT, "kept", &a), 0);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(a.mode & 07777, 0644);
}

/* A read-only open reads what a read-write one wrote, and refuses
 * changes. (It used to abort the transaction that opened the database
 * handles, which closed them: every read of a read-only mount failed
 * with EINVAL.) */
static void read_only_open_reads_and_refuses_changes(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;
	char err[256] = "";
	uint64_t ino = mk(f->m, ROOT, "kept", S_IFREG | 0640);

	meta_close(f->m);
	f->m = NULL;
	assert_int_equal(meta_open(f->dir, keys_volume(f->keys), true, &f->m,
				   err, sizeof(err)), 0);
	assert_int_equal(meta_getattr(f->m, ROOT, &a), 0);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(meta_lookup(f->m, ROOT, "kept", &a), 0);
	assert_int_equal(a.ino, ino);
	assert_int_equal(a.mode & 07777, 0640);
	assert_int_equal(meta_getattr(f->m, ino, &a), 0);
	assert_int_equal(meta_mknod(f->m, ROOT, "new", S_IFREG | 0644, 0, 0, 0, &a),
			 -EROFS);
	assert_int_equal(meta_lookup(f->m, ROOT, "new", &a), -ENOENT);
}

static void another_volume_key_or_second_writer_is_refused(void **state)
{
	struct fixture *f = *state;
	struct keys *other = new_keys("other");
	struct meta *m2 = NULL;
	char err[256] = "";

	/* the first is still open: the flock refuses a second writer */
	assert_int_equal(meta_open(f->dir, keys_volume(f->keys), false, &m2, err,
				   sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "already in use"));
	meta_close(f->m);
	f->m = NULL;
	err[0] = 0;
	assert_int_equal(meta_open(f->dir, keys_volume(other), false, &m2, err,
				   sizeof(err)), -EXDEV);
	assert_true(strlen(err) > 0);
	keys_free(other);
	reopen(f);
}

static void names_give_the_right_errno(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;
	char name[300];
	uint64_t d, ino = 0;

	d = mk(f->m, ROOT, "d", S_IFDIR | 0755);
	mk(f->m, d, "file", S_IFREG | 0644);
	assert_int_equal(meta_mknod(f->m, ROOT, "d", S_IFREG | 0644, 0, 0, 0, &a), -EEXIST);
	assert_int_equal(meta_lookup(f->m, ROOT, "missing", &a), -ENOENT);
	memset(name, 'n', 255);
	name[255] = 0;
	assert_int_equal(meta_mknod(f->m, ROOT, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	name[255] = 'n';
	name[256] = 0;
	assert_int_equal(meta_mknod(f->m, ROOT, name, S_IFREG | 0644, 0, 0, 0, &a),
			 -ENAMETOOLONG);
	assert_int_equal(meta_rmdir(f->m, ROOT, "d", &ino), -ENOTEMPTY);
	assert_int_equal(meta_unlink(f->m, ROOT, "d", &ino), -EISDIR);
	assert_int_equal(meta_rmdir(f->m, d, "file", &ino), -ENOTDIR);
	assert_int_equal(meta_mknod(f->m, meta_lookup(f->m, d, "file", &a) == 0 ?
				    a.ino : 0, "x", S_IFREG | 0644, 0, 0, 0, &a),
			 -ENOTDIR);
}

static void link_counts_follow_links_and_subdirs(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;
	uint64_t d, file, ino = 0;

	d = mk(f->m, ROOT, "d", S_IFDIR | 0755);
	assert_int_equal(nlink_of(f->m, ROOT), 3);
	mk(f->m, d, "sub1", S_IFDIR | 0755);
	mk(f->m, d, "sub2", S_IFDIR | 0755);
	assert_int_equal(nlink_of(f->m, d), 4);
	file = mk(f->m, d, "f", S_IFREG | 0644);
	assert_int_equal(meta_link(f->m, file, ROOT, "hard", &a), 0);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(meta_unlink(f->m, d, "f", &ino), 0);
	assert_int_equal(ino, file);
	assert_int_equal(nlink_of(f->m, file), 1);
	assert_int_equal(meta_unlink(f->m, ROOT, "hard", &ino), 0);
	/* no links left: an orphan until the kernel forgets it */
	assert_int_equal(meta_getattr(f->m, file, &a), 0);
	assert_int_equal(a.nlink, 0);
	assert_int_equal(meta_inode_release(f->m, file), 1);
	assert_int_equal(meta_getattr(f->m, file, &a), -ENOENT);
	assert_int_equal(meta_rmdir(f->m, d, "sub1", &ino), 0);
	assert_int_equal(nlink_of(f->m, d), 3);
}

static void orphan_left_at_close_is_freed_at_open(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;
	uint64_t file, ino = 0;

	file = mk(f->m, ROOT, "o", S_IFREG | 0644);
	assert_int_equal(meta_unlink(f->m, ROOT, "o", &ino), 0);
	assert_int_equal(meta_getattr(f->m, file, &a), 0);   /* still open */
	reopen(f);
	assert_int_equal(meta_getattr(f->m, file, &a), -ENOENT);
}

static void rename_follows_posix(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a, b;
	uint64_t x, y, d1, d2, replaced = 0;

	x = mk(f->m, ROOT, "x", S_IFREG | 0644);
	y = mk(f->m, ROOT, "y", S_IFREG | 0644);
	/* plain */
	assert_int_equal(meta_rename(f->m, ROOT, "x", ROOT, "x2", 0, &replaced), 0);
	assert_int_equal(replaced, 0);
	assert_int_equal(meta_lookup(f->m, ROOT, "x", &a), -ENOENT);
	assert_int_equal(meta_lookup(f->m, ROOT, "x2", &a), 0);
	assert_int_equal(a.ino, x);
	/* NOREPLACE over an existing name */
	assert_int_equal(meta_rename(f->m, ROOT, "x2", ROOT, "y", RENAME_NOREPLACE,
				     &replaced), -EEXIST);
	/* EXCHANGE swaps */
	assert_int_equal(meta_rename(f->m, ROOT, "x2", ROOT, "y", RENAME_EXCHANGE,
				     &replaced), 0);
	assert_int_equal(meta_lookup(f->m, ROOT, "y", &a), 0);
	assert_int_equal(meta_lookup(f->m, ROOT, "x2", &b), 0);
	assert_int_equal(a.ino, x);
	assert_int_equal(b.ino, y);
	/* over an existing file: the target loses its last link */
	assert_int_equal(meta_rename(f->m, ROOT, "x2", ROOT, "y", 0, &replaced), 0);
	assert_int_equal(replaced, x);
	assert_int_equal(meta_lookup(f->m, ROOT, "y", &a), 0);
	assert_int_equal(a.ino, y);
	assert_int_equal(nlink_of(f->m, x), 0);
	/* a dir over a non-empty dir; a dir into its own subtree */
	d1 = mk(f->m, ROOT, "d1", S_IFDIR | 0755);
	d2 = mk(f->m, ROOT, "d2", S_IFDIR | 0755);
	mk(f->m, d2, "inside", S_IFREG | 0644);
	assert_int_equal(meta_rename(f->m, ROOT, "d1", ROOT, "d2", 0, &replaced), -ENOTEMPTY);
	mk(f->m, d1, "child", S_IFDIR | 0755);
	assert_int_equal(meta_lookup(f->m, d1, "child", &a), 0);
	assert_int_equal(meta_rename(f->m, ROOT, "d1", a.ino, "loop", 0, &replaced), -EINVAL);
	/* a dir moved between parents moves a link count with it */
	assert_int_equal(meta_rename(f->m, ROOT, "d1", d2, "moved", 0, &replaced), 0);
	assert_int_equal(nlink_of(f->m, d2), 3);
}

struct listing {
	char (*names)[16];
	size_t n, cap, stop_after;
	uint64_t last_off;
};

static int collect(void *arg, const char *name, const struct meta_attr *attr,
		   uint64_t next_off)
{
	struct listing *l = arg;

	(void)attr;
	if (l->stop_after && l->n >= l->stop_after)
		return 1;
	assert_true(l->n < l->cap);
	snprintf(l->names[l->n++], 16, "%s", name);
	l->last_off = next_off;
	return 0;
}

static void readdir_lists_10000_entries_once_with_stable_offsets(void **state)
{
	struct fixture *f = *state;
	enum { N = 10000 };
	struct listing l = { .cap = N + 100 };
	uint64_t d, ino = 0;
	char name[16];
	static unsigned char seen[N + 100];

	l.names = calloc(l.cap, sizeof(*l.names));
	assert_non_null(l.names);
	d = mk(f->m, ROOT, "big", S_IFDIR | 0755);
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "e%05u", i);
		mk(f->m, d, name, S_IFREG | 0644);
	}
	assert_int_equal(meta_readdir(f->m, d, 0, collect, &l), 0);
	assert_int_equal(l.n, N + 2);
	assert_string_equal(l.names[0], ".");
	assert_string_equal(l.names[1], "..");
	memset(seen, 0, sizeof(seen));
	for (size_t i = 2; i < l.n; i++) {
		unsigned k = (unsigned)atoi(l.names[i] + 1);

		assert_true(k < N);
		assert_int_equal(seen[k], 0);
		seen[k] = 1;
	}

	/* Resume: read 3000, then delete some not yet listed and add new
	 * ones; entries present throughout must each appear exactly once. */
	l.n = 0;
	l.stop_after = 3000;
	assert_int_equal(meta_readdir(f->m, d, 0, collect, &l), 0);
	memset(seen, 0, sizeof(seen));
	for (size_t i = 2; i < l.n; i++)
		seen[atoi(l.names[i] + 1)]++;
	for (unsigned i = 0; i < N; i += 7) {
		snprintf(name, sizeof(name), "e%05u", i);
		if (!seen[i])
			assert_int_equal(meta_unlink(f->m, d, name, &ino), 0);
		if (!seen[i])
			seen[i] = 2;     /* gone: must not be listed */
	}
	for (unsigned i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%05u", i);
		mk(f->m, d, name, S_IFREG | 0644);
	}
	{
		uint64_t off = l.last_off;

		l.n = 0;
		l.stop_after = 0;
		assert_int_equal(meta_readdir(f->m, d, off, collect, &l), 0);
	}
	for (size_t i = 0; i < l.n; i++) {
		unsigned k;

		if (l.names[i][0] == 'n')
			continue;        /* new ones may or may not show */
		k = (unsigned)atoi(l.names[i] + 1);
		assert_int_equal(seen[k], 0);   /* neither twice nor deleted */
		seen[k] = 1;
	}
	for (unsigned i = 0; i < N; i++)
		assert_true(seen[i] == 1 || seen[i] == 2);
	free(l.names);
}

static void setattr_keeps_modes_owners_and_nanoseconds(void **state)
{
	struct fixture *f = *state;
	struct meta_setattr s = { 0 };
	struct meta_attr a;
	uint64_t ino = mk(f->m, ROOT, "t", S_IFREG | 0644);

	s.set = META_SET_MODE | META_SET_UID | META_SET_GID | META_SET_ATIME |
		META_SET_MTIME;
	s.mode = S_IFREG | 0600;
	s.uid = 1234;
	s.gid = 5678;
	s.atime.tv_sec = 1000000000;
	s.atime.tv_nsec = 123456789;
	s.mtime.tv_sec = 1500000000;
	s.mtime.tv_nsec = 987654321;
	assert_int_equal(meta_setattr(f->m, ino, &s, &a), 0);
	reopen(f);
	assert_int_equal(meta_getattr(f->m, ino, &a), 0);
	assert_int_equal(a.mode & 07777, 0600);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(a.uid, 1234);
	assert_int_equal(a.gid, 5678);
	assert_int_equal(a.atime.tv_sec, 1000000000);
	assert_int_equal(a.atime.tv_nsec, 123456789);
	assert_int_equal(a.mtime.tv_sec, 1500000000);
	assert_int_equal(a.mtime.tv_nsec, 987654321);
}

static void symlink_target_round_trips(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;
	char target[4096], back[4200];

	memset(target, 'p', 4095);
	target[4095] = 0;
	for (int i = 100; i < 4095; i += 100)
		target[i] = '/';
	assert_int_equal(meta_symlink(f->m, ROOT, "l", target, 0, 0, &a), 0);
	assert_true(S_ISLNK(a.mode));
	assert_int_equal(a.size, 4095);
	reopen(f);
	assert_int_equal(meta_readlink(f->m, a.ino, back, sizeof(back)), 4095);
	assert_string_equal(back, target);
}

static void xattrs_set_get_list_remove(void **state)
{
	struct fixture *f = *state;
	uint64_t ino = mk(f->m, ROOT, "x", S_IFREG | 0644);
	char buf[256];
	ssize_t n;

	assert_int_equal(meta_setxattr(f->m, ino, "user.a", "one", 3, 0), 0);
	assert_int_equal(meta_setxattr(f->m, ino, "user.b", "twotwo", 6, 0), 0);
	assert_int_equal(meta_setxattr(f->m, ino, "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	assert_int_equal(meta_setxattr(f->m, ino, "user.c", "x", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(meta_getxattr(f->m, ino, "user.b", NULL, 0), 6);
	assert_int_equal(meta_getxattr(f->m, ino, "user.b", buf, 3), -ERANGE);
	n = meta_getxattr(f->m, ino, "user.b", buf, sizeof(buf));
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "twotwo", 6);
	n = meta_listxattr(f->m, ino, buf, sizeof(buf));
	assert_int_equal(n, (ssize_t)sizeof("user.a") + (ssize_t)sizeof("user.b"));
	assert_non_null(memmem(buf, (size_t)n, "user.a", 7));
	assert_non_null(memmem(buf, (size_t)n, "user.b", 7));
	assert_int_equal(meta_removexattr(f->m, ino, "user.a"), 0);
	assert_int_equal(meta_getxattr(f->m, ino, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(meta_removexattr(f->m, ino, "user.a"), -ENODATA);
}

static void extents_and_refcounts_drive_the_free_queue(void **state)
{
	struct fixture *f = *state;
	uint64_t a = mk(f->m, ROOT, "a", S_IFREG | 0644);
	uint64_t b = mk(f->m, ROOT, "b", S_IFREG | 0644);
	struct meta_extent e[2], *got = NULL;
	uint8_t shared[32], other[32], taken[8][32];
	uint64_t size, ino = 0;
	size_t n = 0;

	addr_of(shared, 1);
	addr_of(other, 2);
	assert_int_equal(meta_ref_state(f->m, shared), META_REF_ABSENT);
	e[0] = (struct meta_extent){ .off = 0, .len = 1000 };
	memcpy(e[0].addr, shared, 32);
	assert_int_equal(meta_extents_replace(f->m, a, 0, 1000, e, 1, 1000), 0);
	assert_int_equal(meta_extents_replace(f->m, b, 0, 1000, e, 1, 1000), 0);
	assert_int_equal(meta_ref_state(f->m, shared), META_REF_PRESENT);
	assert_int_equal(meta_file_size(f->m, a, &size), 0);
	assert_int_equal(size, 1000);

	/* a's extent replaced by another block: shared still held by b */
	memcpy(e[0].addr, other, 32);
	assert_int_equal(meta_extents_replace(f->m, a, 0, 1000, e, 1, 1000), 0);
	assert_int_equal(meta_ref_state(f->m, shared), META_REF_PRESENT);
	assert_int_equal(meta_free_take(f->m, taken, 8), 0);

	/* b goes: shared reaches zero and is queued */
	assert_int_equal(meta_unlink(f->m, ROOT, "b", &ino), 0);
	assert_int_equal(meta_inode_release(f->m, b), 1);
	assert_int_equal(meta_free_take(f->m, taken, 8), 1);
	assert_memory_equal(taken[0], shared, 32);
	assert_int_equal(meta_ref_state(f->m, shared), META_REF_PENDING_DELETE);
	meta_free_done(f->m, shared, true);
	assert_int_equal(meta_ref_state(f->m, shared), META_REF_ABSENT);
	assert_int_equal(meta_free_take(f->m, taken, 8), 0);

	/* an extent starting before off is cut at off; min_size grows */
	e[0] = (struct meta_extent){ .off = 1000, .len = 500 };
	memcpy(e[0].addr, shared, 32);
	assert_int_equal(meta_extents_replace(f->m, a, 500, 1000, e, 1, 3000), 0);
	assert_int_equal(meta_extents_get(f->m, a, 0, 5000, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].off, 0);
	assert_int_equal(got[0].len, 500);
	assert_memory_equal(got[0].addr, other, 32);
	assert_int_equal(got[1].off, 1000);
	assert_int_equal(got[1].len, 500);
	free(got);
	assert_int_equal(meta_file_size(f->m, a, &size), 0);
	assert_int_equal(size, 3000);
	/* a hole (500..1000 and past 1500) has no extent */
	got = NULL;
	assert_int_equal(meta_extents_get(f->m, a, 1600, 1000, &got, &n), 0);
	assert_int_equal(n, 0);
	free(got);
}

static void truncate_down_drops_extents_and_refs(void **state)
{
	struct fixture *f = *state;
	uint64_t a = mk(f->m, ROOT, "t", S_IFREG | 0644);
	struct meta_extent e[2], *got = NULL;
	struct meta_setattr s = { .set = META_SET_SIZE, .size = 100 };
	struct meta_attr at;
	uint8_t taken[4][32];
	size_t n = 0;

	e[0] = (struct meta_extent){ .off = 0, .len = 1000 };
	addr_of(e[0].addr, 10);
	e[1] = (struct meta_extent){ .off = 1000, .len = 1000 };
	addr_of(e[1].addr, 11);
	assert_int_equal(meta_extents_replace(f->m, a, 0, 2000, e, 2, 2000), 0);
	assert_int_equal(meta_setattr(f->m, a, &s, &at), 0);
	assert_int_equal(at.size, 100);
	assert_int_equal(meta_extents_get(f->m, a, 0, 5000, &got, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].len, 100);
	free(got);
	assert_int_equal(meta_ref_state(f->m, e[1].addr), META_REF_QUEUED);
	assert_int_equal(meta_free_take(f->m, taken, 4), 1);
	assert_memory_equal(taken[0], e[1].addr, 32);
	meta_free_done(f->m, taken[0], true);
}

static void claimed_block_is_not_deleted_until_unclaimed(void **state)
{
	struct fixture *f = *state;
	uint64_t a = mk(f->m, ROOT, "c", S_IFREG | 0644), ino = 0;
	struct meta_extent e = { .off = 0, .len = 10 };
	uint8_t taken[4][32];

	addr_of(e.addr, 20);
	assert_int_equal(meta_extents_replace(f->m, a, 0, 10, &e, 1, 10), 0);
	assert_int_equal(meta_ref_claim(f->m, e.addr), META_REF_PRESENT);
	assert_int_equal(meta_unlink(f->m, ROOT, "c", &ino), 0);
	assert_int_equal(meta_inode_release(f->m, a), 1);
	assert_int_equal(meta_free_take(f->m, taken, 4), 0);
	meta_ref_unclaim(f->m, (const uint8_t (*)[32])&e.addr, 1);
	assert_int_equal(meta_free_take(f->m, taken, 4), 1);
	assert_memory_equal(taken[0], e.addr, 32);
	meta_free_done(f->m, taken[0], true);
}

/* One file f of one extent, the block of tag n; its inode number. */
static uint64_t file_of_block(struct meta *m, const char *name, unsigned n)
{
	uint64_t ino = mk(m, ROOT, name, S_IFREG | 0644);
	struct meta_extent e = { .off = 0, .len = 10 };

	addr_of(e.addr, n);
	assert_int_equal(meta_extents_replace(m, ino, 0, 10, &e, 1, 10), 0);
	return ino;
}

static void remove_file(struct meta *m, const char *name, uint64_t ino)
{
	uint64_t got = 0;

	assert_int_equal(meta_unlink(m, ROOT, name, &got), 0);
	assert_int_equal(got, ino);
	assert_int_equal(meta_inode_release(m, ino), 1);
}

/*
 * A block whose delete this mount queued and never sent is QUEUED: still
 * whole on its owners, so a writer uses it without an upload, and the
 * commit that references it cancels the delete. One whose delete was sent
 * and failed, and one queued before this mount (a crash may have cut its
 * delete short), are PENDING_DELETE: uploaded again.
 */
static void a_queued_delete_never_sent_can_be_cancelled(void **state)
{
	struct fixture *f = *state;
	uint8_t x[32], y[32], taken[4][32];
	uint64_t a, b;

	addr_of(x, 30);
	addr_of(y, 31);
	a = file_of_block(f->m, "a", 30);
	remove_file(f->m, "a", a);
	assert_int_equal(meta_ref_state(f->m, x), META_REF_QUEUED);

	/* written again: claimed, the deleter leaves it; the commit that
	 * references it empties the queue */
	assert_int_equal(meta_ref_claim(f->m, x), META_REF_QUEUED);
	assert_int_equal(meta_free_take(f->m, taken, 4), 0);
	b = file_of_block(f->m, "b", 30);
	meta_ref_unclaim(f->m, (const uint8_t (*)[32])x, 1);
	assert_int_equal(meta_ref_state(f->m, x), META_REF_PRESENT);
	assert_int_equal(meta_free_take(f->m, taken, 4), 0);

	/* a delete sent and failed: some owners may have dropped it */
	remove_file(f->m, "b", b);
	assert_int_equal(meta_free_take(f->m, taken, 4), 1);
	assert_memory_equal(taken[0], x, 32);
	assert_int_equal(meta_ref_state(f->m, x), META_REF_PENDING_DELETE);
	meta_free_done(f->m, x, false);
	assert_int_equal(meta_ref_state(f->m, x), META_REF_PENDING_DELETE);
	assert_int_equal(meta_free_take(f->m, taken, 4), 1);   /* tried again */
	meta_free_done(f->m, x, true);
	assert_int_equal(meta_ref_state(f->m, x), META_REF_ABSENT);

	/* queued before this mount */
	a = file_of_block(f->m, "c", 31);
	remove_file(f->m, "c", a);
	assert_int_equal(meta_ref_state(f->m, y), META_REF_QUEUED);
	reopen(f);
	assert_int_equal(meta_ref_state(f->m, y), META_REF_PENDING_DELETE);
	assert_int_equal(meta_free_take(f->m, taken, 4), 1);
	meta_free_done(f->m, y, true);
}

/* Take everything the deleter would take now, and report it deleted. */
static size_t take_all(struct meta *m, uint8_t (*taken)[32], size_t max)
{
	size_t n = meta_free_take(m, taken, max);

	for (size_t i = 0; i < n; i++)
		meta_free_done(m, taken[i], true);
	return n;
}

/*
 * The deleter gets blocks in the order they were freed, not in address
 * order (a removed file's blocks, written together, die together on the
 * daemons); one referenced again meanwhile is skipped, one whose delete
 * failed goes again behind the rest, and a volume from before the order
 * was kept gets its queue back at open.
 */
static void the_free_queue_keeps_the_order_blocks_were_freed(void **state)
{
	struct fixture *f = *state;
	const unsigned order[5] = { 53, 51, 54, 50, 52 };
	uint8_t taken[8][32], want[32];
	uint64_t ino[5];
	char name[8];
	MDB_env *env;
	MDB_txn *t;
	MDB_dbi dbi;

	for (unsigned i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%u", order[i]);
		ino[i] = file_of_block(f->m, name, order[i]);
	}
	for (unsigned i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%u", order[i]);
		remove_file(f->m, name, ino[i]);
	}
	assert_int_equal(meta_free_take(f->m, taken, 2), 2);
	addr_of(want, 53);
	assert_memory_equal(taken[0], want, 32);
	addr_of(want, 51);
	assert_memory_equal(taken[1], want, 32);
	meta_free_done(f->m, taken[0], true);
	meta_free_done(f->m, taken[1], false);     /* 51 failed: behind */

	/* 54 is used again before its turn */
	ino[0] = file_of_block(f->m, "again", 54);
	assert_int_equal(meta_free_take(f->m, taken, 8), 3);
	addr_of(want, 50);
	assert_memory_equal(taken[0], want, 32);
	addr_of(want, 52);
	assert_memory_equal(taken[1], want, 32);
	addr_of(want, 51);
	assert_memory_equal(taken[2], want, 32);
	for (int i = 0; i < 3; i++)
		meta_free_done(f->m, taken[i], true);
	assert_int_equal(meta_free_take(f->m, taken, 8), 0);

	/* a volume whose queue has no order yet (made before it was kept) */
	remove_file(f->m, "again", ino[0]);
	ino[1] = file_of_block(f->m, "g", 55);
	remove_file(f->m, "g", ino[1]);
	meta_close(f->m);
	f->m = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 1u << 30), 0);
	assert_int_equal(mdb_env_open(env, f->dir, MDB_NOLOCK, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
	assert_int_equal(mdb_dbi_open(t, "freeorder", 0, &dbi), 0);
	assert_int_equal(mdb_drop(t, dbi, 1), 0);
	assert_int_equal(mdb_txn_commit(t), 0);
	mdb_env_close(env);
	reopen(f);
	assert_int_equal(take_all(f->m, taken, 8), 2);
	assert_int_equal(take_all(f->m, taken, 8), 0);
}

static void a_killed_process_keeps_what_was_synced(void **state)
{
	struct fixture *f = *state;
	struct meta_attr a;
	char name[32];
	pid_t pid;
	int status;

	meta_close(f->m);
	f->m = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct meta *m = NULL;
		char err[256];

		if (meta_open(f->dir, keys_volume(f->keys), false, &m, err, sizeof(err)))
			_exit(2);
		for (int i = 0; i < 200; i++) {
			struct meta_attr ca;

			snprintf(name, sizeof(name), "s%03d", i);
			if (meta_mknod(m, ROOT, name, S_IFREG | 0644, 0, 0, 0, &ca))
				_exit(3);
		}
		if (meta_sync(m))
			_exit(4);
		for (int i = 0; i < 200; i++) {
			struct meta_attr ca;

			snprintf(name, sizeof(name), "u%03d", i);
			(void)meta_mknod(m, ROOT, name, S_IFREG | 0644, 0, 0, 0, &ca);
		}
		_exit(0);     /* no meta_close: as if killed */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	reopen(f);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		assert_int_equal(meta_lookup(f->m, ROOT, name, &a), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fresh_volume_has_a_root_dir_and_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(read_only_open_reads_and_refuses_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(another_volume_key_or_second_writer_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(names_give_the_right_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(link_counts_follow_links_and_subdirs, setup, teardown),
		cmocka_unit_test_setup_teardown(orphan_left_at_close_is_freed_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(rename_follows_posix, setup, teardown),
		cmocka_unit_test_setup_teardown(readdir_lists_10000_entries_once_with_stable_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(setattr_keeps_modes_owners_and_nanoseconds, setup, teardown),
		cmocka_unit_test_setup_teardown(symlink_target_round_trips, setup, teardown),
		cmocka_unit_test_setup_teardown(xattrs_set_get_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(extents_and_refcounts_drive_the_free_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(truncate_down_drops_extents_and_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(claimed_block_is_not_deleted_until_unclaimed, setup, teardown),
		cmocka_unit_test_setup_teardown(a_queued_delete_never_sent_can_be_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(the_free_queue_keeps_the_order_blocks_were_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(a_killed_process_keeps_what_was_synced, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
