/*
 * flusher: the threads that write buffered bytes back. A flusher takes a
 * file from the queue (small files gathered, failed ones retried after a
 * pause), widens its dirty ranges to the extent edges around them, cuts
 * the span with the chunker, seals and sends the chunks the volume lacks
 * (helped by the sealer pool) and commits the new extents. A failed flush
 * leaves its bytes buffered for the retry.
 *
 * Not here: putting files on the queue and waiting for them (fsdata.c),
 * the seg lists (segs.c), metadata transactions (meta.c), sealing and the
 * network (chunkio/blockio).
 */
#include "fs/fsdata_int.h"
#include "fs/segs.h"
#include "fs/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/log.h"
#include "cluster/monotime.h"
#include "cluster/threadname.h"
#include "fs/fs.h"
#include "fs/meta.h"

/* A failed flush goes again after 1, 2, 4, 8, then every 10 s; idle
 * flushers look for due retries this often while any is waiting. */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 10000
#define RETRY_SCAN_MS 250

/* --- the queue ----------------------------------------------------------- */

/* Whether the queue should go to the flushers now rather than gather more
 * (GATHER_MS). Caller holds d->lock. */
static bool queue_goes_now(const struct fsdata *d)
{
	return d->gather_done || d->urgent || d->stopping ||
	       d->q_len >= FLUSHERS || !d->qhead ||
	       d->qhead->dirty_bytes >= GATHER_SMALL;
}

/* Take the queue's head; caller holds d->lock, the queue is not empty. */
static struct wfile *queue_pop(struct fsdata *d)
{
	struct wfile *w = d->qhead;

	d->qhead = w->qnext;
	if (!d->qhead) {
		d->qtail = NULL;
		d->gather_done = false;
	}
	d->q_len--;
	w->queued = false;
	return w;
}

/*
 * A flush that failed (daemons out of reach, a full cluster) leaves its
 * data buffered; it goes again after a pause that doubles up to
 * RETRY_MAX_MS, so the data reaches the cluster once it is back, with no
 * fsync needed, and writers held by the buffer bound go on. Caller holds
 * d->lock.
 */
static int64_t retry_delay_ms(unsigned retries)
{
	return retries >= 4 ? RETRY_MAX_MS : (int64_t)RETRY_FIRST_MS << retries;
}

/* Queue the files whose retry is due; clears d->retry_scan when none is
 * left waiting. Caller holds d->lock. */
static void retry_due(struct fsdata *d)
{
	int64_t now = mono_ms();
	bool waiting = false;

	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		for (struct wfile *w = d->files[b]; w; w = w->hnext) {
			if (!w->retry_at)
				continue;
			if (!w->dirty && !w->busy) {
				w->retry_at = 0;     /* nothing left to store */
				continue;
			}
			waiting = true;
			if (now >= w->retry_at && !w->busy)
				wfile_enqueue(d, w, false);
		}
	}
	d->retry_scan = waiting;
	if (!waiting)
		d->outage_since = 0;   /* every file got through: it is over */
}

/* Wait for a file to flush: returns with the queue's head to take, or NULL
 * when stopping with nothing queued. Caller holds d->lock. */
static struct wfile *flusher_wait(struct fsdata *d)
{
	for (;;) {
		int64_t due;
		struct timespec ts;

		if (!d->qhead) {
			if (d->stopping)
				return NULL;
			if (!d->retry_scan) {
				pthread_cond_wait(&d->work, &d->lock);
				continue;
			}
			ts = mono_timespec_ms(mono_ms() + RETRY_SCAN_MS);
			pthread_cond_timedwait(&d->work, &d->lock, &ts);
			retry_due(d);
			continue;
		}
		if (queue_goes_now(d))
			return queue_pop(d);
		due = d->gather_start + GATHER_MS;
		if (mono_ms() >= due) {
			d->gather_done = true;
			pthread_cond_broadcast(&d->work);
			return queue_pop(d);
		}
		ts = mono_timespec_ms(due);
		pthread_cond_timedwait(&d->work, &d->lock, &ts);
	}
}

/* --- the flusher --------------------------------------------------------- */

/*
 * Fill buf with the committed bytes of [off, off+len) that no seg covers:
 * only the gaps between segs are read (and zeroed where holes), since
 * seg_overlay writes the rest. For an append that is just the extent the
 * span was widened to, not the whole span.
 */
static int read_under_segs(struct fsdata *d, uint64_t ino, const struct seg *s,
			   uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t pos = off, end = off + len;

	for (; pos < end; s = s->next) {
		uint64_t gap_end = s && s->off < end ? s->off : end;

		if (s && s->off + s->len <= pos)
			continue;
		if (gap_end > pos) {
			int rc = read_committed(d, ino, buf + (pos - off), pos,
						(size_t)(gap_end - pos));

			if (rc < 0)
				return rc;
		}
		if (!s || s->off >= end)
			break;
		pos = s->off + s->len;
	}
	return 0;
}

static uint8_t *scratch_get(struct scratch *sc, size_t len)
{
	if (len > sc->cap) {
		uint8_t *nb = malloc(len);

		if (!nb)
			return NULL;
		free(sc->buf);
		sc->buf = nb;
		sc->cap = len;
	}
	return sc->buf;
}

/* A spare buffer for a flusher, or an empty one. Caller holds d->lock. */
static void scratch_take(struct fsdata *d, struct scratch *sc)
{
	sc->buf = NULL;
	sc->cap = 0;
	if (d->n_spare) {
		d->n_spare--;
		*sc = d->spare[d->n_spare];
	}
}

/* Keep a flusher's buffer for the next, or free it when enough are spare.
 * Caller holds d->lock. */
static void scratch_give(struct fsdata *d, struct scratch *sc)
{
	if (sc->buf && d->n_spare < SCRATCH_SPARES) {
		d->spare[d->n_spare++] = *sc;
	} else {
		free(sc->buf);
	}
	sc->buf = NULL;
	sc->cap = 0;
}

struct span {
	uint64_t start, end;
};

/*
 * Widen [a, b) to the committed extent boundaries around it, so that
 * chunks outside stay as they are. Extents are whole chunks (or a
 * truncated chunk's head), so their edges are where chunking may restart.
 */
static int span_widen(struct fsdata *d, uint64_t ino, uint64_t a, uint64_t b,
		      struct span *out)
{
	struct meta_extent *ext = NULL;
	size_t n = 0;
	int rc;

	out->start = a;
	out->end = b;
	/* From a-1: the extent that ends right at a comes in too, since its
	 * end may be a forced cut (the edge of an earlier flush, not of the
	 * content). Re-chunking it costs a read; if its end was natural the
	 * chunk comes out the same and dedup uploads nothing. */
	rc = meta_extents_get(d->fs->meta, ino, a ? a - 1 : 0, b - a + (a ? 1 : 0),
			      &ext, &n);
	if (rc < 0)
		return rc;
	/* The extent holding a-1 (if any) starts the span; the one holding
	 * b-1 ends it. meta_extents_get returns extents overlapping the range. */
	if (n) {
		if (ext[0].off < a)
			out->start = ext[0].off;
		if (ext[n - 1].off + ext[n - 1].len > b)
			out->end = ext[n - 1].off + ext[n - 1].len;
	}
	free(ext);
	return 0;
}

/*
 * Sealing a span's chunks, one workpool index per extent: hash it (its
 * address), claim the address, and unless the volume holds it already,
 * seal it and send it to its owners. Sealed blocks stay here until the
 * batch is finished; claimed[i] says whether extent i's claim was taken.
 */
struct span_seal {
	struct fsdata *d;
	const uint8_t *buf;          /* the span's bytes, from span_start */
	uint64_t span_start;
	struct meta_extent *ext;
	uint8_t **blks;
	bool *claimed;
	struct blockio_batch *batch;
	pthread_mutex_t lock;        /* err, n_sealed */
	int err;                     /* the first error */
	size_t n_sealed;
};

static void seal_one(void *arg, size_t i)
{
	struct span_seal *ss = arg;
	struct fsctx *fs = ss->d->fs;
	struct meta_extent *e = &ss->ext[i];
	const uint8_t *chunk = ss->buf + (e->off - ss->span_start);
	ssize_t bl = 0;
	int rc = 0;

	pthread_mutex_lock(&ss->lock);
	rc = ss->err;              /* one failed: the span is not committed */
	pthread_mutex_unlock(&ss->lock);
	if (rc < 0)
		return;
	chunkio_addr(fs->cio, chunk, e->len, e->addr);
	/* Dedup: an address the volume holds, or whose delete is queued
	 * but was never sent (a file removed and written again), is not
	 * sent again. The claim keeps the deleter off it until our commit
	 * references it (and so cancels a queued delete). */
	ss->claimed[i] = true;
	switch (meta_ref_claim(fs->meta, e->addr)) {
	case META_REF_PRESENT:
	case META_REF_QUEUED:
		return;
	default:
		break;
	}
	bl = chunkio_seal(fs->cio, e->addr, chunk, e->len, &ss->blks[i]);
	if (bl >= 0)
		rc = blockio_batch_add(ss->batch, e->addr, ss->blks[i], (size_t)bl);
	else
		rc = (int)bl;
	pthread_mutex_lock(&ss->lock);
	if (rc < 0 && !ss->err)
		ss->err = rc;
	if (bl >= 0)
		ss->n_sealed++;
	pthread_mutex_unlock(&ss->lock);
}

/*
 * The committed extents right after the span, which chunking may run on
 * into until its cuts fall in step with theirs again (resync): their
 * starts into *starts (malloc'd), and the end of the last one within
 * FSDATA_RESYNC_MAX of the span's end into *limit (the span's end when
 * no extent follows it directly).
 */
static int resync_window(struct fsdata *d, uint64_t ino, uint64_t end,
			 uint64_t **starts, size_t *n_starts, uint64_t *limit)
{
	struct meta_extent *ext = NULL;
	size_t n = 0, k = 0;
	int rc;

	*starts = NULL;
	*n_starts = 0;
	*limit = end;
	rc = meta_extents_get(d->fs->meta, ino, end, FSDATA_RESYNC_MAX, &ext, &n);
	if (rc < 0)
		return rc;
	if (n && ext[0].off == end) {
		*starts = malloc(n * sizeof(**starts));
		if (!*starts) {
			free(ext);
			return -ENOMEM;
		}
		/* Only a run of touching extents: a hole ends the window. */
		for (k = 0; k < n && ext[k].off == *limit; k++) {
			(*starts)[k] = ext[k].off;
			*limit = ext[k].off + ext[k].len;
		}
		*n_starts = k;
	}
	free(ext);
	return 0;
}

static bool is_old_start(const uint64_t *starts, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (starts[i] == off)
			return true;
	return false;
}

/*
 * Flush one span: chunk it, upload what the cluster lacks, commit the
 * extents. `keep_tail` holds back the bytes after the last natural
 * boundary (an append still going on); *kept gets their length. A tail is
 * kept only past `durable_size` (the committed size): bytes that were
 * committed before must never drop out of the committed layer, or a crash
 * would lose data that was already safe.
 * The commit replaces the whole span and raises the committed size to the
 * end of what it stored (never past `file_size`).
 */
static int flush_span(struct fsdata *d, struct wfile *w, const struct seg *segs,
		      struct span *spp, uint64_t durable_size, bool keep_tail,
		      struct scratch *sc, size_t *kept)
{
	struct fsctx *fs = d->fs;
	struct span sp = *spp;
	size_t len, pos = 0, n_ext = 0, cap_ext, n_starts = 0, n_claims = 0;
	struct meta_extent *ext = NULL;
	struct span_seal ss = { .d = d, .span_start = sp.start };
	uint8_t (*claims)[32] = NULL;
	uint64_t *starts = NULL, limit;
	const struct chunker *ck = d->chunker;
	uint8_t *buf = NULL;
	int rc;

	*kept = 0;
	pthread_mutex_init(&ss.lock, NULL);
	/* Chunk on past the span's end into the extents after it until a cut
	 * lands on one of their starts: from there on the old chunks are
	 * what chunking the new content gives. Without this an edit that
	 * moves a boundary would leave the next chunk cut where the content
	 * does not say, and the same bytes stored elsewhere would not dedup. */
	rc = resync_window(d, w->ino, sp.end, &starts, &n_starts, &limit);
	if (rc < 0)
		goto out;
	if (n_starts)
		keep_tail = false;       /* the window ends at an old extent edge */
	len = (size_t)(limit - sp.start);
	buf = scratch_get(sc, len ? len : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_under_segs(d, w->ino, segs, buf, sp.start, len);
	if (rc < 0)
		goto out;
	seg_overlay(segs, buf, sp.start, len);

	cap_ext = len / d->params.min_size + 2;
	ext = calloc(cap_ext, sizeof(*ext));
	ss.blks = calloc(cap_ext, sizeof(*ss.blks));
	ss.claimed = calloc(cap_ext, sizeof(*ss.claimed));
	claims = calloc(cap_ext, sizeof(*claims));
	if (!ext || !ss.blks || !ss.claimed || !claims) {
		rc = -ENOMEM;
		goto out;
	}
	/* Where the chunks are: cheap, in order (each cut depends on the
	 * one before). */
	while (pos < len) {
		/* The span's end is a fixed boundary (an extent edge or the
		 * end of the file): the last chunk stops there. */
		size_t cut = chunker_find(ck, buf + pos, len - pos, !keep_tail);
		struct meta_extent *e;

		if (cut == 0 && sp.start + pos < durable_size)
			cut = chunker_find(ck, buf + pos, len - pos, true);
		if (cut == 0) {
			/* No natural boundary before the end and more data
			 * may come: keep the tail buffered. */
			*kept = len - pos;
			break;
		}
		if (sp.start + pos >= sp.end && is_old_start(starts, n_starts, sp.start + pos)) {
			len = pos;       /* in step with the old chunks again */
			break;
		}
		e = &ext[n_ext++];
		e->off = sp.start + pos;
		e->len = (uint32_t)cut;
		pos += cut;
	}
	/* What they are called and what gets stored: the costly part, on
	 * every core. */
	if (n_ext) {
		rc = blockio_batch_new(fs->bio, n_ext, &ss.batch);
		if (rc < 0)
			goto out;
		ss.buf = buf;
		ss.ext = ext;
		workpool_run(d->sealers, n_ext, seal_one, &ss);
		rc = blockio_batch_finish(ss.batch, NULL);
		ss.batch = NULL;
		if (ss.err < 0)
			rc = ss.err;
		if (rc < 0) {
			log_err("inode %llu: storing %zu blocks failed: %s; data stays buffered",
				(unsigned long long)w->ino, ss.n_sealed, log_strerror(rc));
			goto out;
		}
	}
	/* One transaction: the span's old extents go, the new ones come,
	 * reference counts follow. */
	spp->end = sp.start + len;
	rc = meta_extents_replace(fs->meta, w->ino, sp.start, len, ext, n_ext,
				  spp->end - *kept);
out:
	for (size_t i = 0; ss.claimed && i < n_ext; i++)
		if (ss.claimed[i])
			memcpy(claims[n_claims++], ext[i].addr, 32);
	if (n_claims)
		meta_ref_unclaim(fs->meta, (const uint8_t (*)[32])claims, n_claims);
	for (size_t i = 0; ss.blks && i < n_ext; i++)
		free(ss.blks[i]);
	free(ss.blks);
	free(ss.claimed);
	pthread_mutex_destroy(&ss.lock);
	free(starts);
	free(claims);
	free(ext);
	return rc;
}

/* Flush a file's inflight list; returns 0 or the first error. Segments
 * that were not committed (a kept tail, or everything after an error) are
 * returned through *back for the caller to put under the dirty layer. */
static int flush_file(struct fsdata *d, struct wfile *w, struct seg *segs,
		      uint64_t size, bool final, struct scratch *sc,
		      struct seg **back)
{
	const struct seg *s = segs;
	uint64_t durable = 0;
	size_t kept_total = 0;
	int rc;

	*back = NULL;
	rc = meta_file_size(d->fs->meta, w->ino, &durable);
	while (s && rc == 0) {
		struct span sp;
		const struct seg *t = s;
		size_t kept = 0;
		bool at_eof, keep;

		/* Group segs whose widened spans touch into one span. */
		rc = span_widen(d, w->ino, s->off, s->off + s->len, &sp);
		if (rc < 0)
			break;
		while (t->next) {
			struct span next;

			rc = span_widen(d, w->ino, t->next->off,
					t->next->off + t->next->len, &next);
			if (rc < 0)
				break;
			if (next.start > sp.end)
				break;
			if (next.end > sp.end)
				sp.end = next.end;
			t = t->next;
		}
		if (rc < 0)
			break;
		at_eof = sp.end >= size;
		if (sp.end > size)
			sp.end = size;
		if (sp.start >= sp.end) {
			s = t->next;
			continue;    /* wholly truncated away meanwhile */
		}
		/*
		 * The kernel writes cached pages back out of order, so the
		 * dirty data of a growing file can have a gap whose bytes are
		 * still on their way. Cutting chunks at a gap would put
		 * boundaries where the content does not: the same bytes
		 * written again would chunk differently and dedup nothing.
		 * So, unless this flush is final: a span that starts past the
		 * committed size (after a gap) is held back whole, and one
		 * that ends at EOF or before a gap keeps its tail after the
		 * last natural boundary. Both are bounded by FSDATA_KEEP_MAX
		 * per file (below FSDATA_FILE_FLUSH, so a flush that keeps
		 * everything is not re-queued at once).
		 */
		if (!final && sp.start > durable &&
		    kept_total + (sp.end - sp.start) <= FSDATA_KEEP_MAX) {
			rc = seg_copy_range(segs, sp.start, sp.end, back);
			if (rc < 0)
				break;
			kept_total += (size_t)(sp.end - sp.start);
			s = t->next;
			continue;
		}
		keep = !final && (at_eof || sp.end > durable) &&
		       kept_total + d->params.max_size <= FSDATA_KEEP_MAX;
		rc = flush_span(d, w, segs, &sp, durable, keep, sc, &kept);
		log_debug("inode %llu: flushed [%llu, %llu) durable %llu keep %d kept %zu final %d rc %d",
			  (unsigned long long)w->ino, (unsigned long long)sp.start,
			  (unsigned long long)sp.end, (unsigned long long)durable,
			  keep, kept, final, rc);
		if (rc < 0)
			break;
		kept_total += kept;
		if (sp.end - kept > durable)
			durable = sp.end - kept;   /* committed up to there now */
		if (kept) {
			/* Keep the tail's bytes: rebuild them from what the
			 * span held (committed layer + these segs). The span
			 * is done with the scratch buffer. */
			uint8_t *tail = scratch_get(sc, kept);

			if (!tail) {
				rc = -ENOMEM;
				break;
			}
			rc = read_committed(d, w->ino, tail, sp.end - kept, kept);
			if (rc == 0) {
				seg_overlay(segs, tail, sp.end - kept, kept);
				if (seg_insert(back, sp.end - kept, tail, kept) < 0)
					rc = -ENOMEM;
			}
			if (rc < 0)
				break;
		}
		s = t->next;
	}
	if (rc < 0) {
		/* Nothing after the failure point was committed: give it all
		 * back (committed spans are re-sent harmlessly: dedup). */
		for (s = segs; s; s = s->next)
			if (seg_insert(back, s->off, s->buf, s->len) < 0)
				break;
	}
	return rc;
}

void *flusher_main(void *arg)
{
	struct fsdata *d = arg;

	thread_name("fs-flush");

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct wfile *w;
		struct seg *back = NULL;
		struct scratch sc;
		uint64_t gen, size;
		bool final;
		size_t merged;
		uint64_t attempt;
		int rc;

		w = flusher_wait(d);
		if (!w)
			break;
		if (w->busy || !w->dirty) {
			/* Another flusher has it; it re-queues when done. */
			continue;
		}
		w->busy = true;
		attempt = ++w->attempts;
		w->inflight = w->dirty;
		w->inflight_bytes = w->dirty_bytes;
		w->dirty = NULL;
		w->dirty_bytes = 0;
		gen = w->written;
		size = w->size;
		final = w->final || !w->writers;
		w->final = false;
		d->flushing++;
		scratch_take(d, &sc);
		pthread_mutex_unlock(&d->lock);

		rc = flush_file(d, w, w->inflight, size, final, &sc, &back);

		pthread_mutex_lock(&d->lock);
		scratch_give(d, &sc);
		d->flushing--;
		d->total_dirty -= w->inflight_bytes;
		seg_free_list(w->inflight);
		w->inflight = NULL;
		w->inflight_bytes = 0;
		/* dirty_bytes recomputed: back + newer, overlaps removed */
		merged = seg_merge_under(&w->dirty, back);
		d->total_dirty += merged - w->dirty_bytes;
		w->dirty_bytes = merged;
		w->commits++;
		if (rc < 0) {
			if (!w->retry_at)
				w->failing_since = mono_ms();
			if (!d->outage_since)
				d->outage_since = w->failing_since;
			w->err = rc;
			w->err_attempt = attempt;
			w->retry_at = mono_ms() + retry_delay_ms(w->retries);
			if (w->retries < 16)
				w->retries++;
			d->retry_scan = true;
			pthread_cond_signal(&d->work);   /* an idle flusher times it */
		} else {
			/* A retry stored what an earlier attempt could not:
			 * nothing is lost, so nothing is left to report. */
			w->err = 0;
			w->retry_at = 0;
			w->retries = 0;
			/* all written before `gen` is committed, except a
			 * kept tail, which fsync flushes as final */
			if (!w->dirty && !back)
				w->committed = gen;
		}
		w->busy = false;
		if (rc == 0 && w->dirty && (w->dirty_bytes >= FSDATA_FILE_FLUSH ||
				 (!w->writers && !back && rc == 0) || w->final))
			wfile_enqueue(d, w, false);
		pthread_cond_broadcast(&d->changed);
		wfile_maybe_drop(d, w);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}
