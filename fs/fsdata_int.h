/*
 * fsdata_int: what the parts of fsdata share, and nothing else includes
 * (everyone else uses fsdata.h): the structs, the bounds more than one
 * part uses, and the functions that cross between the parts:
 *   fsdata.c       the files table and the flush queue, writes,
 *                  durability (fsync, close, truncate, forget), life cycle
 *   fsdata_read.c  the committed layer and the reads
 *   flusher.c      the flushers, which write buffered bytes back
 *   deleter.c      the deleter, which deletes blocks no file uses any more
 *   fsdata_parked.c  data an unmount could not store: parked, and
 *                  stored by the next mount (parked.h has the files)
 */
#ifndef CAIRN_FSDATA_INT_H
#define CAIRN_FSDATA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunker/chunker.h"
#include "fs/fsdata.h"

struct readahead;
struct seg;
struct workpool;

/*
 * fsdata: write buffers, the background write pipeline and the read path.
 * The contract is in fsdata.h; this comment says how.
 *
 * One mutex (d->lock) guards every file's buffer lists and counters; it is
 * never held across network or disk work. A file's bytes live in three
 * layers, newest on top:
 *   dirty     written since the last hand-off (sorted, non-overlapping segs)
 *   inflight  handed to a flusher, being uploaded and committed
 *   committed extents in the metadata, fetched through the block cache
 * A read copies the committed layer first, then overlays inflight and dirty
 * under the lock; `commits` (bumped when a flush commits) tells a reader
 * that raced with a commit to read again.
 *
 * Not here: the seg lists themselves (segs.c), metadata transactions
 * (meta.c), sealing and the network (chunkio/blockio), FUSE (ops.c).
 */

#define FLUSHERS 4
#define FILE_BUCKETS 1024

/*
 * Small files closed one after another (tar -x, cp -r, git checkout) are
 * written back in groups: a file queued while the queue was empty waits up
 * to GATHER_MS for others, then the flushers take them all at once. Their
 * PUTs then reach each daemon together and share one group commit there;
 * one file at a time cost two syncfs on every daemon per file (counted with
 * perf during a tar -x: 22,624 syncfs for 11,506 PUTs). Nobody waits for
 * this: close() does not, and fsync, a writer held back by the dirty bound,
 * or a file of GATHER_SMALL bytes or more end the wait at once.
 */
#define GATHER_MS 10
#define GATHER_SMALL (1u << 20)

#define SCRATCH_SPARES 1

/*
 * A flusher assembles each span in a scratch buffer that is reused from
 * span to span instead of malloc'd afresh: a fresh buffer of a span's size
 * (8 MiB and more) comes from mmap, and filling it cost a page fault per
 * 4 KiB (on a paravirtualised guest perf put those faults at a third of
 * the client's CPU during a sequential write). Idle buffers wait in
 * d->spare, at most SCRATCH_SPARES of them: one per flusher would hold
 * FLUSHERS x 12 MiB for good, past the memory bound of the mount.
 */
struct scratch {
	uint8_t *buf;
	size_t cap;
};

struct wfile {
	uint64_t ino;
	unsigned writers;            /* open handles for writing */
	unsigned pins;               /* callers waiting on it: not freed */
	struct seg *dirty, *inflight;
	size_t dirty_bytes, inflight_bytes;
	uint64_t size;               /* logical size, buffered writes included */
	uint64_t written, committed; /* write generations, for fsync */
	uint64_t commits;            /* bumped at each commit (readers retry) */
	bool queued, busy, final;
	int err;                     /* kept upload/commit error */
	uint64_t attempts;           /* flushes started */
	uint64_t err_attempt;        /* the one whose failure set err */
	int64_t retry_at;            /* ms; a failed flush goes again then (0: none) */
	int64_t failing_since;       /* ms, first failed flush of the streak */
	unsigned retries;            /* failed flushes in a row */
	struct wfile *hnext, *qnext;
};

struct fsdata {
	struct fsctx *fs;
	struct chunker_params params;
	struct chunker *chunker;     /* one-shot chunker_find() is stateless */
	pthread_mutex_t lock;
	pthread_cond_t changed;      /* any flush finished or buffer shrank */
	pthread_cond_t work;         /* the queue got a file (flushers only) */
	pthread_cond_t deleter_wake; /* stopping: the deleter's 1 s nap ends */
	struct wfile *files[FILE_BUCKETS];
	struct wfile *qhead, *qtail;
	unsigned q_len;
	int64_t gather_start;        /* ms, when the queue last became non-empty */
	bool gather_done;            /* the queue goes now (until it empties) */
	bool retry_scan;             /* a file's flush failed: idle flushers
				      * look for due retries (retry_due) */
	int64_t outage_since;        /* ms, first failed flush since no file
				      * was waiting for a retry (0: none) */
	int64_t write_wait_ms;       /* see WRITE_WAIT_TIMEOUTS */
	unsigned urgent;             /* callers waiting for a flush: no gathering */
	struct scratch spare[SCRATCH_SPARES]; /* idle flushers' span buffers */
	unsigned n_spare;
	size_t total_dirty;          /* dirty + inflight, all files */
	unsigned flushing;           /* flushers at work on a file */
	bool stopping;
	bool discard_on_free;         /* a refused mount: what is buffered came
				      * from parked files and stays there */
	pthread_t flushers[FLUSHERS];
	unsigned n_flushers;
	pthread_t deleter;
	bool deleter_started;
	struct readahead *ra;        /* fetches ahead of sequential readers */
	struct workpool *sealers;    /* help flushers hash and seal chunks */
};

/* fsdata.c: the files table and the flush queue. Caller holds d->lock. */
struct wfile *wfile_find(struct fsdata *d, uint64_t ino);
void wfile_maybe_drop(struct fsdata *d, struct wfile *w);
void wfile_enqueue(struct fsdata *d, struct wfile *w, bool final);
/* fsdata_read.c: read committed bytes [off, off+len) of ino into buf
 * (holes are zeros); 0 or -errno */
int read_committed(struct fsdata *d, uint64_t ino, uint8_t *buf,
		   uint64_t off, size_t len);
/* flusher.c, deleter.c: the threads' bodies; arg is the struct fsdata */
void *flusher_main(void *arg);
void *deleter_main(void *arg);
/* fsdata_parked.c: keep w's buffered data in a parked file, at unmount
 * (flushers stopped), or log that it is dropped */
void wfile_park(struct fsdata *d, struct wfile *w);

#endif
