/*
 * fs: what every part of the cairnfs client shares — the mounted volume's
 * context. main.c builds it; ops.c serves FUSE requests with it; the
 * write and read pipelines move file data through it.
 */
#ifndef CAIRN_FS_H
#define CAIRN_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/blockio.h"
#include "cluster/chunkio.h"
#include "cluster/clientconf.h"
#include "crypto/keys.h"
#include "fs/bcache.h"

struct meta;
struct fsdata;

struct fs_opts {
	char *cluster_dir;        /* -o cluster=DIR: made by cairnctl cluster init */
	char *key_file;           /* -o key=FILE: volume key file */
	char *meta_dir;           /* -o meta=DIR: the LMDB metadata */
	char *cache_size;         /* -o cache=SIZE: block cache bound */
	char *pass_file;          /* -o passfile=FILE: passphrase for a wrapped key */
	int ro;                   /* -o ro */
	int allow_other;          /* -o allow_other (implies default_permissions) */
	int timeout_ms;           /* -o timeout=MS: network call timeout */
	int zstd_level;           /* -o zstd=N */
	char *log_level;          /* -o log=LEVEL: error, warn, info, debug */
	int write_quorum;         /* -o quorum=N: owners that must store a block (0: all) */
	int spin_us;              /* -o spin=US: the request loop's spin (fs/loop.h) */
};

struct fsctx {
	struct fs_opts opts;
	struct keys *keys;
	struct clientconf cluster;
	struct blockio *bio;
	struct chunkio *cio;
	struct bcache *cache;
	uint64_t cache_bytes;
	struct meta *meta;
	struct fsdata *data;      /* file data: write buffers, pipeline, reads */
	bool ro;
	/* CLOCK_MONOTONIC ns of the last FUSE request (atomic; fs/loop.c
	 * stores it): background work yields while the mount is busy */
	int64_t last_request_ns;
};

/* The low-level operations (ops.c). */
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops cairnfs_ll_ops;

#endif
