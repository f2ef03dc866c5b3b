/*
 * meta_int: what the parts of the metadata store share, and nothing else
 * includes: the struct, the record layout and the helpers that cross
 * between meta.c (transactions, records, open/close), meta_blocks.c (block
 * references, the free queue, extents), meta_ns.c (inodes and names) and
 * meta_xattr.c (extended attributes).
 */
#ifndef CAIRN_META_INT_H
#define CAIRN_META_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fs/meta.h"

#define META_FORMAT "cairnfs-meta-1"
#define META_MAPSIZE (256ull << 30)     /* virtual; the file grows as used */
#define MAX_DELETING 1024

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MOUNT_TAG_BYTES 8

struct meta {
	MDB_env *env;
	MDB_dbi super, inodes, dirents, cookies, extents, refs, freeq, xattrs,
		symlinks, orphans, freeorder;
	bool have_freeorder;           /* false only read-only, before it existed */
	uint64_t free_seq;             /* the next freeorder key */
	pthread_mutex_t lock;
	pthread_cond_t deleted;        /* a delete finished */
	MDB_txn *wtxn;                 /* shared write transaction */
	bool dirty, ro, stopping;
	pthread_t committer;
	bool committer_started;
	pthread_cond_t stop;
	int lock_fd;
	uint8_t deleting[MAX_DELETING][32];
	uint64_t deleting_seq[MAX_DELETING]; /* their freeorder keys */
	size_t n_deleting;
	uint8_t (*claimed)[32];        /* addresses writers are about to reference */
	size_t n_claimed, cap_claimed;
	/* Random per open: a free queue entry holding it was queued by this
	 * mount and its delete never sent (meta_blocks.c). */
	uint8_t mount_tag[MOUNT_TAG_BYTES];
};

static inline void be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le64(const uint8_t *p)
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

/* meta.c: transactions (op_begin/op_end run one operation in a child of
 * the shared write transaction) and records */
int inode_get(struct meta *m, MDB_txn *t, uint64_t ino, struct inode *in);
int inode_put(struct meta *m, MDB_txn *t, const struct inode *in);
int lmdb_err(int rc);
void meta_now(struct timespec *ts);
int op_begin(struct meta *m, bool write, MDB_txn **txn);
int op_end(struct meta *m, MDB_txn *txn, bool write, int rc);
int name_check(const char *name);
int dirent_add(struct meta *m, MDB_txn *t, struct inode *dir, const char *name,
	       uint64_t child);
int dirent_del(struct meta *m, MDB_txn *t, uint64_t parent, const char *name);
int dirent_get(struct meta *m, MDB_txn *t, uint64_t parent, const char *name,
	       uint64_t *child, uint64_t *cookie);
int dir_is_empty(struct meta *m, MDB_txn *t, uint64_t dir);
/* meta_blocks.c: drop the extents of [off, end), releasing their blocks */
int ext_remove(struct meta *m, MDB_txn *t, uint64_t ino, uint64_t off,
	       uint64_t end, bool cut_tail, uint64_t *freed_bytes);
/* meta_ns.c: free an inode with no links left and no opener */
int inode_free(struct meta *m, MDB_txn *t, uint64_t ino);
/* Open the freeorder database (meta_blocks.c): created, and filled from
 * the free queue of a volume from before it; its next key found. */
int meta_freeorder_open(struct meta *m, MDB_txn *t, char *err, size_t err_len);

#endif
