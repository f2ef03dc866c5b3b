/*
 * fsdata: file contents of a mounted volume — write buffers, the background
 * write pipeline, and reads.
 *
 * Writes land in a bounded per-file buffer and return at once. A file whose
 * buffer passes FSDATA_FILE_FLUSH bytes, or that is flushed, closed or
 * fsync'd, is handed to a flusher thread, which
 *   1. widens each dirty range to the extent boundaries around it (so an
 *      edit re-chunks only the chunks it touched, and extents already in
 *      place stay as they are),
 *   2. builds that span from the old contents plus the new bytes and cuts it
 *      with the volume's chunker,
 *   3. skips chunks whose address the volume already holds (dedup), seals
 *      and uploads the others to every owner, pipelined,
 *   4. commits the new extents in one metadata transaction.
 * A tail after the last natural chunk boundary at the end of a file that is
 * still open for writing waits for more data (appends do not re-upload the
 * tail). Until the commit, reads see buffered and in-flight bytes over the
 * committed ones. Writers wait when all files together buffer more than
 * FSDATA_TOTAL_DIRTY (bounded memory). A failed upload keeps its data
 * buffered and goes again after a pause (1 s doubling to 10 s) until it
 * succeeds. Its error is returned by the next write or close only when a
 * retry will not cure it: a full cluster, or flushes failing for want of
 * a daemon for over 12 call timeouts (2 minutes at the default
 * timeout=10000), counted from the first failure of the outage, whichever
 * file it was; meanwhile writers over the bound wait.
 *
 * fsync = every byte written before it is acknowledged by every owner and
 * committed, then the metadata synced to disk; it fails when the flush it
 * starts fails, not for attempts made before it.
 *
 * Thread-safety: all functions may be called from any FUSE thread.
 */
#ifndef CAIRN_FSDATA_H
#define CAIRN_FSDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define FSDATA_FILE_FLUSH (8u << 20)
#define FSDATA_TOTAL_DIRTY (48u << 20)
/* Per file, what a non-final flush may hold back to keep chunk boundaries
 * content-defined (see flush_file). */
#define FSDATA_KEEP_MAX (4u << 20)
/* How far past a flushed span chunking may run on into committed extents
 * to fall in step with their boundaries again. */
#define FSDATA_RESYNC_MAX (4u << 20)

struct fsctx;
struct fsdata;

int fsdata_new(struct fsctx *fs, struct fsdata **out)
	__attribute__((warn_unused_result));
/* Flush every file and wait for it; stop the threads. */
void fsdata_free(struct fsdata *d);

/* A file was opened / released for writing (counts open writers). */
void fsdata_open_write(struct fsdata *d, uint64_t ino);
/* Last writer gone: flush in the background. Returns a kept upload error
 * that retries will not cure (see above). */
int fsdata_release_write(struct fsdata *d, uint64_t ino);

/* Buffer a write: len or -errno (-ENOMEM). Waits while the mount's buffer
 * is over its bound, even when flushes fail: the bytes are never refused
 * for an upload error, which fsync and close report instead. */
ssize_t fsdata_write(struct fsdata *d, uint64_t ino, const void *buf,
		     size_t len, uint64_t off, uint64_t committed_size);
/*
 * The zero-copy read of the common case: when [off, off+len) of a file with
 * no writes waiting to be stored is covered by at most FSDATA_READ_IOV_MAX
 * blocks without a hole, iov[0..*iovcnt) point into those blocks, held
 * until fsdata_read_done(d, *hold). Returns the bytes there (short at end
 * of file, 0 past it), -EAGAIN when fsdata_read() must do it (a hole, too
 * many blocks, writes in flight), or another -errno.
 * Flags:
 * - FSDATA_READ_CACHED_ONLY never waits for a block: -ENODATA when one
 *   is not in the cache (read-ahead was told of the read all the same).
 *   Not -EWOULDBLOCK: on Linux that is -EAGAIN, the copy-path answer.
 * - FSDATA_READ_NOTED: read-ahead already knows of this read (the retry
 *   after a CACHED_ONLY attempt); do not tell it twice.
 */
#define FSDATA_READ_IOV_MAX 32
#define FSDATA_READ_CACHED_ONLY 1u
#define FSDATA_READ_NOTED 2u
ssize_t fsdata_read_direct(struct fsdata *d, uint64_t ino, size_t len,
			   uint64_t off, unsigned flags,
			   struct iovec iov[FSDATA_READ_IOV_MAX], size_t *iovcnt,
			   void **hold);
void fsdata_read_done(struct fsdata *d, void *hold);
/* Read into buf; returns the bytes read (short at end of file). */
ssize_t fsdata_read(struct fsdata *d, uint64_t ino, void *buf, size_t len,
		    uint64_t off);

/* Start a background flush (close(2) -> FUSE flush). Returns a kept
 * upload error that retries will not cure (see above). */
int fsdata_flush(struct fsdata *d, uint64_t ino);
/* Make the file durable (see above). */
int fsdata_fsync(struct fsdata *d, uint64_t ino);
/* Every file durable (syncfs). */
int fsdata_sync_all(struct fsdata *d);
/* The same for an unmount: while flushes fail for want of a daemon, try
 * again every second for as long as writers would wait (above), then
 * return the error. */
int fsdata_sync_for_unmount(struct fsdata *d);
/* At mount: store the data that an earlier unmount could not store and
 * parked (parked.h), before anything is served. 0, or -errno with err
 * filled in: the mount must then be refused (the parked files stay). A
 * read-only mount stores nothing and says so in the log. */
int fsdata_replay_parked(struct fsdata *d, char *err, size_t err_len)
	__attribute__((warn_unused_result));

/* The size including buffered writes, if anything is buffered. */
bool fsdata_size(struct fsdata *d, uint64_t ino, uint64_t *size);

/* Before a truncate: wait out the file's flush and drop buffered bytes at
 * or past new_size. The caller then truncates the metadata. */
int fsdata_truncate(struct fsdata *d, uint64_t ino, uint64_t new_size);

/* The inode is gone (last link and last open): drop its buffers. */
void fsdata_forget(struct fsdata *d, uint64_t ino);

#endif
