/*
 * meta: a volume's filesystem metadata in LMDB — inodes, directory entries,
 * extents, block reference counts, the queue of freed blocks, xattrs,
 * symlink targets and the superblock.
 *
 * Every operation is atomic: it runs in a nested transaction of the shared
 * write transaction and is either wholly in it or not at all. The shared
 * transaction is committed (and so synced to disk: the environment is never
 * opened with MDB_NOSYNC, MDB_NOMETASYNC or MDB_WRITEMAP) every
 * META_COMMIT_MS by a timer thread, and at once by meta_sync(). That is the
 * group commit: untarring thousands of files costs a sync every 50 ms, not
 * one per file. Durability: a change is on disk when meta_sync() returns (or
 * at most META_COMMIT_MS after it was made); after a crash the database is
 * consistent at its last commit.
 *
 * A metadata dir is held by one process at a time (flock on DIR/lock): a
 * second open fails with -EBUSY. It belongs to one volume (the superblock
 * holds the volume id): another volume's key fails with -EXDEV.
 *
 * Errors are -errno as POSIX would give them for the operation (ENOENT,
 * EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, ENAMETOOLONG, EINVAL, EPERM, ENODATA,
 * ERANGE, ENOSPC when the map is full...).
 *
 * Thread-safety: all functions may be called from any thread; one mutex
 * serialises them (each holds it for microseconds).
 */
#ifndef CAIRN_META_H
#define CAIRN_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "crypto/keys.h"

#define META_ROOT_INO 1
#define META_NAME_MAX 255
#define META_COMMIT_MS 50
#define META_XATTR_MAX 65536

struct meta;

struct meta_attr {
	uint64_t ino, generation;
	uint32_t mode, nlink, uid, gid;
	uint64_t rdev, size, blocks;     /* blocks: 512-byte units referenced */
	struct timespec atime, mtime, ctime;
};

enum {
	META_SET_MODE = 1 << 0, META_SET_UID = 1 << 1, META_SET_GID = 1 << 2,
	META_SET_SIZE = 1 << 3, META_SET_ATIME = 1 << 4, META_SET_MTIME = 1 << 5,
	META_SET_CTIME = 1 << 6,
};

struct meta_setattr {
	unsigned set;
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/* A run of file bytes [off, off+len) held by the first len bytes of the
 * block at addr. Extents of one file never overlap; holes have none. */
struct meta_extent {
	uint64_t off;
	uint32_t len;
	uint8_t addr[32];
};

/*
 * What the volume knows of a block address:
 *   ABSENT          no reference, no delete pending;
 *   PRESENT         referenced: stored on its owners;
 *   QUEUED          unreferenced, its delete queued by this mount and never
 *                   sent: still whole on its owners, so a writer may use it
 *                   without an upload (claimed, the deleter leaves it alone,
 *                   and the commit that references it cancels the delete);
 *   PENDING_DELETE  a delete running, tried and failed (some owners may
 *                   have dropped it), or queued before this mount (a crash
 *                   may have cut its delete short): upload it again.
 */
enum meta_ref {
	META_REF_ABSENT = 0,
	META_REF_PRESENT = 1,
	META_REF_PENDING_DELETE = 2,
	META_REF_QUEUED = 3,
};

int meta_open(const char *dir, const struct keys_volume *vol, bool ro,
	      struct meta **out, char *err, size_t err_len)
	__attribute__((warn_unused_result));
/* Commit, sync and close. */
void meta_close(struct meta *m);
/* Commit the shared transaction now (synced to disk). */
int meta_sync(struct meta *m);

int meta_lookup(struct meta *m, uint64_t parent, const char *name,
		struct meta_attr *out);
int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out);
/* chmod/chown/utimens/truncate; truncation drops or shortens extents and
 * releases their blocks. */
int meta_setattr(struct meta *m, uint64_t ino, const struct meta_setattr *s,
		 struct meta_attr *out);
int meta_file_size(struct meta *m, uint64_t ino, uint64_t *size);

/* mode carries the type (S_IFREG, S_IFDIR, S_IFIFO, ...). */
int meta_mknod(struct meta *m, uint64_t parent, const char *name, uint32_t mode,
	       uint64_t rdev, uint32_t uid, uint32_t gid, struct meta_attr *out);
int meta_symlink(struct meta *m, uint64_t parent, const char *name,
		 const char *target, uint32_t uid, uint32_t gid,
		 struct meta_attr *out);
int meta_link(struct meta *m, uint64_t ino, uint64_t newparent,
	      const char *newname, struct meta_attr *out);
/* *ino gets the inode unlinked; when its last link went it stays as an
 * orphan until meta_inode_release(). */
int meta_unlink(struct meta *m, uint64_t parent, const char *name, uint64_t *ino);
int meta_rmdir(struct meta *m, uint64_t parent, const char *name, uint64_t *ino);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE. *replaced gets an inode that
 * lost its last link by being replaced (0 if none). */
int meta_rename(struct meta *m, uint64_t parent, const char *name,
		uint64_t newparent, const char *newname, unsigned flags,
		uint64_t *replaced);
/* The kernel forgot ino: free it if it has no links. Returns 1 freed, 0
 * still linked, or -errno. */
int meta_inode_release(struct meta *m, uint64_t ino);
int meta_readlink(struct meta *m, uint64_t ino, char *buf, size_t cap);

/*
 * List directory entries from offset `off` (0 = start; "." and ".." come
 * first). For each, fill(arg, name, attr, next_off) is called; it returns
 * nonzero to stop (its buffer is full). Offsets stay valid while entries
 * come and go: each entry keeps the cookie it got when it was made.
 */
typedef int (*meta_fill_fn)(void *arg, const char *name,
			    const struct meta_attr *attr, uint64_t next_off);
int meta_readdir(struct meta *m, uint64_t ino, uint64_t off, meta_fill_fn fill,
		 void *arg);

int meta_setxattr(struct meta *m, uint64_t ino, const char *name,
		  const void *value, size_t size, int flags);
ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf,
		      size_t size);
ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t size);
int meta_removexattr(struct meta *m, uint64_t ino, const char *name);

int meta_count_inodes(struct meta *m, uint64_t *n);

/* Extents overlapping [off, off+len), in order; *out malloc'd. */
int meta_extents_get(struct meta *m, uint64_t ino, uint64_t off, uint64_t len,
		     struct meta_extent **out, size_t *n);
/*
 * One transaction: the extents in [off, off+len) are replaced by ext[0..n)
 * (which must lie in that range); references of new blocks go up, those of
 * replaced blocks down (a block reaching zero is queued for deletion). An
 * old extent that starts before off is cut at off. The file size becomes at
 * least min_size; mtime and ctime are set to now.
 */
int meta_extents_replace(struct meta *m, uint64_t ino, uint64_t off,
			 uint64_t len, const struct meta_extent *ext, size_t n,
			 uint64_t min_size);

/* Whether the volume references addr, or its delete is queued or running:
 * dedup may skip uploading only a PRESENT block. */
enum meta_ref meta_ref_state(struct meta *m, const uint8_t addr[32]);

/*
 * The writer's side: state of addr as meta_ref_state(), after waiting out a
 * delete of it that is running, and with addr claimed: the deleter leaves a
 * claimed address alone until meta_ref_unclaim() (called after the extents
 * that reference it are committed, or the flush failed). So a block a
 * writer decided not to upload cannot be deleted before it is referenced.
 */
enum meta_ref meta_ref_claim(struct meta *m, const uint8_t addr[32]);
void meta_ref_unclaim(struct meta *m, const uint8_t (*addrs)[32], size_t n);

/*
 * The deleter's side of the free queue: take up to max queued addresses
 * (they are then "deleting": meta_ref_state says PENDING and a writer that
 * needs one of them waits in meta_delete_wait); after the cluster delete,
 * meta_free_done() drops each from the queue unless it was referenced
 * again meanwhile; one whose delete failed stays queued, PENDING_DELETE
 * from then on (never QUEUED).
 */
size_t meta_free_take(struct meta *m, uint8_t (*addrs)[32], size_t max);
void meta_free_done(struct meta *m, const uint8_t addr[32], bool deleted);
/* Wait until addr is no longer being deleted. */
void meta_delete_wait(struct meta *m, const uint8_t addr[32]);

#endif
