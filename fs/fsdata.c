/*
 * fsdata: the files table (a record per file with buffered bytes or open
 * writers) and the flush queue, writes into the buffers, durability
 * (fsync, flush on close, truncate, forget) and the life cycle: the
 * threads start and stop here. How the parts fit (the layers, the one
 * lock): fsdata_int.h; the contract: fsdata.h.
 *
 * Not here: reads and the committed layer (fsdata_read.c), writing back
 * (flusher.c), deleting unused blocks (deleter.c), parking what an
 * unmount could not store (fsdata_parked.c).
 */
#include "fs/fsdata_int.h"
#include "fs/segs.h"
#include "fs/readahead.h"
#include "fs/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cluster/log.h"
#include "cluster/monotime.h"
#include "fs/fs.h"
#include "fs/meta.h"

/* How long writes wait, rather than fail, while flushes fail for want of
 * a daemon (flush_failure_waits): this many call timeouts (-o timeout),
 * 2 minutes at the default 10 s. */
#define WRITE_WAIT_TIMEOUTS 12

/* --- files --------------------------------------------------------------- */

static struct wfile **wfile_slot(struct fsdata *d, uint64_t ino)
{
	struct wfile **pp = &d->files[(ino * 0x9E3779B97F4A7C15ull) >> 54];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->hnext;
	return pp;
}

struct wfile *wfile_find(struct fsdata *d, uint64_t ino)
{
	return *wfile_slot(d, ino);
}

static struct wfile *wfile_get(struct fsdata *d, uint64_t ino, uint64_t size)
{
	struct wfile **pp = wfile_slot(d, ino), *w = *pp;

	if (w)
		return w;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->ino = ino;
	w->size = size;
	*pp = w;
	return w;
}

/* Free a file's record once nothing refers to it any more. */
void wfile_maybe_drop(struct fsdata *d, struct wfile *w)
{
	struct wfile **pp;

	if (w->writers || w->pins || w->dirty || w->inflight || w->busy ||
	    w->queued || w->err)
		return;
	pp = wfile_slot(d, w->ino);
	*pp = w->hnext;
	free(w);
}

void wfile_enqueue(struct fsdata *d, struct wfile *w, bool final)
{
	if (final)
		w->final = true;
	if (w->queued || !w->dirty)
		return;
	w->queued = true;
	w->qnext = NULL;
	if (d->qtail)
		d->qtail->qnext = w;
	else
		d->qhead = w;
	d->qtail = w;
	if (d->q_len++ == 0)
		d->gather_start = mono_ms();
	if (w->dirty_bytes >= GATHER_SMALL || d->q_len >= FLUSHERS || d->urgent) {
		/* no more gathering: every idle flusher takes a file */
		if (!d->gather_done) {
			d->gather_done = true;
			pthread_cond_broadcast(&d->work);
			return;
		}
	}
	/* One flusher is enough: it takes the file, or times the gathering
	 * and wakes the others when it ends. */
	pthread_cond_signal(&d->work);
}

/* Someone waits for flushes to finish: end any gathering now. */
static void urgent_begin(struct fsdata *d)
{
	d->urgent++;
	if (d->qhead && !d->gather_done) {
		d->gather_done = true;
		pthread_cond_broadcast(&d->work);
	}
}

static void urgent_end(struct fsdata *d)
{
	d->urgent--;
}

/* --- writes -------------------------------------------------------------- */

/*
 * Whether a flush that failed with err, a file's first failure at `since`
 * (ms), should hold writes back rather than fail them:
 * a daemon out of reach (hung, restarting, a network cut) is usually back
 * soon, and failing a WRITE drops the pages the kernel sends in it (they
 * were already acknowledged to the application: writeback cache). Up to
 * write_wait_ms, counted from the first failure of the outage, not of
 * this file: while a daemon stays away, each new file would otherwise
 * get a grace of its own, and close after close would succeed with the
 * data piling up unstored. After that, and for errors a retry will not
 * cure (a full cluster), the write fails as it did: a dead daemon must
 * not hang the mount for good. Caller holds d->lock.
 */
static bool failure_waits(const struct fsdata *d, int err, int64_t since)
{
	if (d->outage_since && d->outage_since < since)
		since = d->outage_since;
	switch (err) {
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EHOSTDOWN:
	case -EPIPE:
		return mono_ms() - since < d->write_wait_ms;
	default:
		return false;
	}
}

/* The same for w's kept error. Caller holds d->lock. */
static bool flush_failure_waits(const struct fsdata *d, const struct wfile *w)
{
	return failure_waits(d, w->err, w->failing_since);
}

/*
 * The flush error to report to a write or a close, cleared as it is
 * reported (once, as close(2) reports a write-back error): none while a
 * retry may still cure it (flush_failure_waits), since its data is kept
 * and goes again. A copy made while a daemon hung for a few seconds
 * used to end in "cp: failed to close: Connection timed out" although
 * every byte reached the cluster moments later. fsync still reports a
 * failure of the flush it starts. Caller holds d->lock.
 */
static int wfile_take_lasting_err(const struct fsdata *d, struct wfile *w)
{
	int rc;

	if (!w->err || flush_failure_waits(d, w))
		return 0;
	rc = w->err;
	w->err = 0;
	return rc;
}

ssize_t fsdata_write(struct fsdata *d, uint64_t ino, const void *buf,
		     size_t len, uint64_t off, uint64_t committed_size)
{
	struct wfile *w;
	ssize_t delta;
	bool waited = false;

	pthread_mutex_lock(&d->lock);
	w = wfile_get(d, ino, committed_size);
	if (!w) {
		pthread_mutex_unlock(&d->lock);
		return -ENOMEM;
	}
	/*
	 * Back-pressure: wait while everything buffered is over the bound.
	 * A failed flush of this file ends the wait with its error only when
	 * waiting will not help (flush_failure_waits): refusing a WRITE made
	 * the kernel drop its pages, and a file copied while a daemon hung
	 * for a few seconds read back with 13 MB of zeros. Otherwise the
	 * data waits for a retry (retry_due), and the error is reported by
	 * the fsync whose own flush fails, or once it lasts
	 * (wfile_take_lasting_err).
	 */
	while (d->total_dirty + len > FSDATA_TOTAL_DIRTY && d->total_dirty > 0 &&
	       (!w->err || flush_failure_waits(d, w))) {
		/* Over the bound with no flush running or queued: what is
		 * left is held back for content-defined cuts (flush_file).
		 * Memory comes first: flush this file's held data too. A
		 * failed file goes at its retry time, not in a loop here,
		 * and its wait is timed: write_wait_ms may pass. */
		if (!w->retry_at)
			wfile_enqueue(d, w, waited && !d->flushing && !d->qhead);
		waited = true;
		w->pins++;
		urgent_begin(d);
		if (w->err) {
			struct timespec ts = mono_timespec_ms(mono_ms() + 1000);

			pthread_cond_timedwait(&d->changed, &d->lock, &ts);
		} else {
			pthread_cond_wait(&d->changed, &d->lock);
		}
		urgent_end(d);
		w->pins--;
	}
	delta = wfile_take_lasting_err(d, w);
	if (delta < 0) {               /* the data stays buffered */
		wfile_enqueue(d, w, false);
		pthread_mutex_unlock(&d->lock);
		return delta;
	}
	delta = seg_insert(&w->dirty, off, buf, len);
	if (delta < 0) {
		pthread_mutex_unlock(&d->lock);
		return delta;
	}
	w->dirty_bytes = (size_t)((ssize_t)w->dirty_bytes + delta);
	d->total_dirty = (size_t)((ssize_t)d->total_dirty + delta);
	if (off + len > w->size)
		w->size = off + len;
	w->written++;
	/* A write with no writer open (the kernel writing back cached pages
	 * after close) is flushed at once: no release will come for it. */
	if (w->dirty_bytes >= FSDATA_FILE_FLUSH || !w->writers)
		wfile_enqueue(d, w, !w->writers);
	pthread_mutex_unlock(&d->lock);
	return (ssize_t)len;
}

/* --- durability ---------------------------------------------------------- */

/*
 * Wait until everything written to w before now is committed, or an error.
 * Only a flush begun after this call can fail it: the error of an earlier
 * attempt, made while the daemons were out of reach, says nothing about
 * now, and its data is still buffered, so the file goes again at once
 * (an fsync right after a daemon came back failed on the stale error,
 * then on the attempt already under way). Caller holds d->lock.
 */
static int wfile_wait_committed(struct fsdata *d, struct wfile *w)
{
	uint64_t target = w->written;
	uint64_t begun_before = w->attempts;
	int rc = 0;

	urgent_begin(d);
	while (w->committed < target &&
	       !(w->err && w->err_attempt > begun_before)) {
		if (!w->busy)
			wfile_enqueue(d, w, true);
		else
			w->final = true;
		if (!w->dirty && !w->busy && !w->inflight) {
			/* nothing buffered: all that was written is committed */
			w->committed = target;
			break;
		}
		pthread_cond_wait(&d->changed, &d->lock);
	}
	urgent_end(d);
	if (w->err && w->err_attempt > begun_before) {
		rc = w->err;
		w->err = 0;
	}
	return rc;
}

int fsdata_fsync(struct fsdata *d, uint64_t ino)
{
	struct wfile *w;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	w = wfile_find(d, ino);
	if (w) {
		w->writers++;          /* pin the record while we wait */
		rc = wfile_wait_committed(d, w);
		w->writers--;
		wfile_maybe_drop(d, w);
	}
	pthread_mutex_unlock(&d->lock);
	if (rc < 0)
		return rc;
	return meta_sync(d->fs->meta);
}

int fsdata_sync_all(struct fsdata *d)
{
	int first = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		for (struct wfile *w = d->files[b]; w; w = w->hnext)
			wfile_enqueue(d, w, true);
	}
	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		for (struct wfile *w = d->files[b], *next; w; w = next) {
			int rc;

			w->writers++;
			rc = wfile_wait_committed(d, w);
			w->writers--;
			next = w->hnext;
			if (rc < 0 && !first)
				first = rc;
			wfile_maybe_drop(d, w);
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (first < 0)
		return first;
	return meta_sync(d->fs->meta);
}

int fsdata_flush(struct fsdata *d, uint64_t ino)
{
	struct wfile *w;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	w = wfile_find(d, ino);
	if (w) {
		rc = wfile_take_lasting_err(d, w);
		wfile_enqueue(d, w, true);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void fsdata_open_write(struct fsdata *d, uint64_t ino)
{
	struct wfile *w;
	uint64_t size = 0;

	if (meta_file_size(d->fs->meta, ino, &size) < 0)
		size = 0;
	pthread_mutex_lock(&d->lock);
	w = wfile_get(d, ino, size);
	if (w)
		w->writers++;
	pthread_mutex_unlock(&d->lock);
}

int fsdata_release_write(struct fsdata *d, uint64_t ino)
{
	struct wfile *w;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	w = wfile_find(d, ino);
	if (w) {
		if (w->writers)
			w->writers--;
		rc = wfile_take_lasting_err(d, w);
		if (!w->writers)
			wfile_enqueue(d, w, true);
		wfile_maybe_drop(d, w);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

bool fsdata_size(struct fsdata *d, uint64_t ino, uint64_t *size)
{
	struct wfile *w;
	bool have = false;

	pthread_mutex_lock(&d->lock);
	w = wfile_find(d, ino);
	if (w && (w->dirty || w->inflight || w->busy)) {
		*size = w->size;
		have = true;
	}
	pthread_mutex_unlock(&d->lock);
	return have;
}

int fsdata_truncate(struct fsdata *d, uint64_t ino, uint64_t new_size)
{
	struct wfile *w;

	pthread_mutex_lock(&d->lock);
	w = wfile_find(d, ino);
	if (w) {
		/* A flush in progress commits extents for the old size:
		 * let it finish, then cut the buffers. */
		w->pins++;             /* the flusher may drop it meanwhile */
		while (w->busy)
			pthread_cond_wait(&d->changed, &d->lock);
		w->pins--;
		size_t dropped = seg_truncate(&w->dirty, new_size);

		w->dirty_bytes -= dropped;
		d->total_dirty -= dropped;
		w->size = new_size;
		pthread_cond_broadcast(&d->changed);
		wfile_maybe_drop(d, w);
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void fsdata_forget(struct fsdata *d, uint64_t ino)
{
	struct wfile *w;

	pthread_mutex_lock(&d->lock);
	w = wfile_find(d, ino);
	if (w) {
		w->pins++;
		while (w->busy)
			pthread_cond_wait(&d->changed, &d->lock);
		w->pins--;
		d->total_dirty -= w->dirty_bytes;
		seg_free_list(w->dirty);
		w->dirty = NULL;
		w->dirty_bytes = 0;
		w->err = 0;
		w->writers = 0;
		if (w->queued) {
			/* unlink from the queue */
			struct wfile **pp = &d->qhead, *prev = NULL;

			while (*pp && *pp != w) {
				prev = *pp;
				pp = &(*pp)->qnext;
			}
			if (*pp) {
				*pp = w->qnext;
				if (d->qtail == w)
					d->qtail = prev;
				if (--d->q_len == 0)
					d->gather_done = false;
			}
			w->queued = false;
		}
		pthread_cond_broadcast(&d->changed);
		wfile_maybe_drop(d, w);
	}
	pthread_mutex_unlock(&d->lock);
}

/* --- life cycle ---------------------------------------------------------- */

/* Sealing helpers: a flusher works on its own span too, so one core per
 * helper beyond the first, within reason. */
static unsigned sealer_threads(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 2)
		return 0;
	return cpus > 8 ? 7 : (unsigned)cpus - 1;
}

int fsdata_new(struct fsctx *fs, struct fsdata **out)
{
	const struct keys_volume *vol = keys_volume(fs->keys);
	struct fsdata *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->fs = fs;
	d->write_wait_ms = (int64_t)WRITE_WAIT_TIMEOUTS *
			   (fs->opts.timeout_ms > 0 ? fs->opts.timeout_ms : 10000);
	d->params.min_size = vol->chunk_min;
	d->params.avg_size = vol->chunk_avg;
	d->params.max_size = vol->chunk_max;
	rc = chunker_new(keys_subkey(fs->keys, KEYS_GEAR), &d->params,
			 &d->chunker);
	if (rc < 0) {
		free(d);
		return rc;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->changed, NULL);
	{
		/* timed waits (gathering, the deleter) count in monotonic
		 * time: a clock step must not stall them */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&d->work, &ca);
		pthread_cond_init(&d->deleter_wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	rc = readahead_new(fs, &d->ra);
	if (rc == 0)
		rc = workpool_new(sealer_threads(), &d->sealers);
	if (rc < 0) {
		fsdata_free(d);
		return rc;
	}
	for (unsigned i = 0; i < FLUSHERS; i++) {
		rc = pthread_create(&d->flushers[i], NULL, flusher_main, d);
		if (rc) {
			fsdata_free(d);
			return -rc;
		}
		d->n_flushers++;
	}
	if (!fs->ro) {
		rc = pthread_create(&d->deleter, NULL, deleter_main, d);
		if (rc) {
			fsdata_free(d);
			return -rc;
		}
		d->deleter_started = true;
	}
	*out = d;
	return 0;
}

/*
 * The unmount's store: while flushes fail for want of a daemon (a restart,
 * a network blip), try again every second for as long as a writer would
 * have waited (flush_failure_waits: 12 call timeouts from the outage's
 * first failure), then give up with the error. One try was all it had
 * before, so a daemon restarting during an unmount cost the data still
 * buffered. The kernel has let go of the mountpoint by now: nobody waits
 * for this but the process's exit.
 */
int fsdata_sync_for_unmount(struct fsdata *d)
{
	int64_t said = 0;

	for (;;) {
		int rc = fsdata_sync_all(d);
		size_t left = 0;
		bool waits = false;

		if (rc >= 0 || !d->n_flushers)
			return rc;
		pthread_mutex_lock(&d->lock);
		/* The error came from fsdata_sync_all, which took it off
		 * the file (wfile_wait_committed): judge it by itself. */
		for (size_t b = 0; b < FILE_BUCKETS; b++) {
			for (struct wfile *w = d->files[b]; w; w = w->hnext) {
				size_t n = w->dirty_bytes + w->inflight_bytes;

				left += n;
				if (n && failure_waits(d, rc, w->failing_since ?
						       w->failing_since : mono_ms()))
					waits = true;
			}
		}
		pthread_mutex_unlock(&d->lock);
		if (!waits || !left)
			return rc;
		if (!said || mono_ms() - said >= 10000) {
			log_warn("unmount: %zu buffered bytes wait for the cluster (%s); "
				 "trying again for up to %lld s", left,
				 log_strerror(rc), (long long)d->write_wait_ms / 1000);
			said = mono_ms();
		}
		sleep(1);
	}
}

void fsdata_free(struct fsdata *d)
{
	if (!d)
		return;
	readahead_free(d->ra);
	d->ra = NULL;
	if (d->n_flushers && !d->discard_on_free) {
		int rc = fsdata_sync_for_unmount(d);

		if (rc < 0)
			log_err("unmount: buffered data could not be stored: %s",
				log_strerror(rc));
	}
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->work);
	pthread_cond_signal(&d->deleter_wake);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->n_flushers; i++)
		pthread_join(d->flushers[i], NULL);
	if (d->deleter_started)
		pthread_join(d->deleter, NULL);
	workpool_free(d->sealers);
	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		for (struct wfile *w = d->files[b], *next; w; w = next) {
			next = w->hnext;
			if (w->dirty_bytes && !d->discard_on_free)
				wfile_park(d, w);
			seg_free_list(w->dirty);
			free(w);
		}
	}
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->deleter_wake);
	for (unsigned i = 0; i < d->n_spare; i++)
		free(d->spare[i].buf);
	pthread_cond_destroy(&d->changed);
	pthread_mutex_destroy(&d->lock);
	chunker_free(d->chunker);
	free(d);
}
