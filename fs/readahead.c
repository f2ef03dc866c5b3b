/*
 * readahead: background fetches ahead of sequential readers (contract in
 * readahead.h). Workers only ever fill the block cache; a failed fetch is
 * dropped silently, since the reader that needs the block will fetch it
 * again and report the error itself.
 */
#include "fs/readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/chunkio.h"
#include "cluster/threadname.h"
#include "fs/bcache.h"
#include "fs/fs.h"
#include "fs/meta.h"

#define RA_STREAMS 64          /* files followed at once (hashed by inode) */

struct ra_stream {
	uint64_t ino;
	uint64_t next_off;         /* where a sequential read continues */
	uint64_t ahead;            /* queued up to here */
};

struct ra_worker {
	struct readahead *ra;
	unsigned idx;
	pthread_t thread;
};

struct readahead {
	struct fsctx *fs;
	pthread_mutex_t lock;
	pthread_cond_t work;       /* the queue got a block */
	pthread_cond_t done;       /* a worker finished a block */
	uint8_t queue[READAHEAD_QUEUE][32];
	size_t q_head, q_n;
	uint8_t busy[READAHEAD_THREADS][32];
	bool busy_set[READAHEAD_THREADS];
	struct ra_stream streams[RA_STREAMS];
	struct ra_worker workers[READAHEAD_THREADS];
	unsigned n_workers;
	bool stopping;
};

static void *ra_main(void *arg)
{
	struct ra_worker *w = arg;
	struct readahead *ra = w->ra;
	struct fsctx *fs = ra->fs;

	thread_name("fs-readahead");

	pthread_mutex_lock(&ra->lock);
	for (;;) {
		uint8_t addr[32];
		struct bcache_entry *e;

		while (!ra->q_n && !ra->stopping)
			pthread_cond_wait(&ra->work, &ra->lock);
		if (ra->stopping)
			break;
		memcpy(addr, ra->queue[ra->q_head], 32);
		ra->q_head = (ra->q_head + 1) % READAHEAD_QUEUE;
		ra->q_n--;
		memcpy(ra->busy[w->idx], addr, 32);
		ra->busy_set[w->idx] = true;
		pthread_mutex_unlock(&ra->lock);

		e = bcache_get(fs->cache, addr);
		if (!e) {
			uint8_t *chunk = NULL;
			ssize_t got = chunkio_get_alloc(fs->cio, addr, &chunk);

			if (got >= 0) {
				e = bcache_insert_owned(fs->cache, addr, chunk, (size_t)got);
				if (!e)
					free(chunk);
			}
		}
		if (e)
			bcache_put(fs->cache, e);

		pthread_mutex_lock(&ra->lock);
		ra->busy_set[w->idx] = false;
		pthread_cond_broadcast(&ra->done);
	}
	pthread_mutex_unlock(&ra->lock);
	return NULL;
}

/* Whether addr is queued or being fetched; caller holds the lock. */
static bool ra_pending(const struct readahead *ra, const uint8_t addr[32])
{
	for (size_t i = 0; i < ra->q_n; i++)
		if (!memcmp(ra->queue[(ra->q_head + i) % READAHEAD_QUEUE], addr, 32))
			return true;
	for (unsigned i = 0; i < READAHEAD_THREADS; i++)
		if (ra->busy_set[i] && !memcmp(ra->busy[i], addr, 32))
			return true;
	return false;
}

void readahead_note(struct readahead *ra, uint64_t ino, uint64_t off,
		    size_t len)
{
	struct ra_stream *s = &ra->streams[ino % RA_STREAMS];
	struct meta_extent *ext = NULL;
	uint64_t from, to;
	size_t n = 0;
	bool seq;

	pthread_mutex_lock(&ra->lock);
	seq = s->ino == ino && s->next_off == off;
	if (!seq) {
		/* A new stream (another file, a seek, a reread): what was
		 * queued for the old one says nothing about this one. */
		s->ino = ino;
		s->ahead = 0;
		seq = off == 0;     /* from the start: cat, cp, sha256sum */
	}
	s->next_off = off + len;
	from = off + len;
	if (s->ahead > from)
		from = s->ahead;
	to = off + len + READAHEAD_WINDOW;
	/* Refill once a quarter of the window has been read: fewer, larger
	 * metadata lookups. */
	if (!seq || from >= to || to - from < READAHEAD_WINDOW / 4) {
		pthread_mutex_unlock(&ra->lock);
		return;
	}
	s->ahead = to;
	pthread_mutex_unlock(&ra->lock);

	if (meta_extents_get(ra->fs->meta, ino, from, to - from, &ext, &n) < 0)
		return;
	pthread_mutex_lock(&ra->lock);
	for (size_t i = 0; i < n && ra->q_n < READAHEAD_QUEUE; i++) {
		struct bcache_entry *e = bcache_get(ra->fs->cache, ext[i].addr);

		if (e) {
			bcache_put(ra->fs->cache, e);
			continue;
		}
		if (ra_pending(ra, ext[i].addr))
			continue;
		memcpy(ra->queue[(ra->q_head + ra->q_n) % READAHEAD_QUEUE],
		       ext[i].addr, 32);
		ra->q_n++;
		pthread_cond_signal(&ra->work);
	}
	pthread_mutex_unlock(&ra->lock);
	free(ext);
}

bool readahead_wait(struct readahead *ra, const uint8_t addr[32])
{
	bool waited = false;

	pthread_mutex_lock(&ra->lock);
	for (;;) {
		bool busy = false;

		for (unsigned i = 0; i < READAHEAD_THREADS && !busy; i++)
			busy = ra->busy_set[i] && !memcmp(ra->busy[i], addr, 32);
		if (!busy)
			break;
		pthread_cond_wait(&ra->done, &ra->lock);
		waited = true;
	}
	pthread_mutex_unlock(&ra->lock);
	return waited;
}

int readahead_new(struct fsctx *fs, struct readahead **out)
{
	struct readahead *ra = calloc(1, sizeof(*ra));
	int rc = 0;

	if (!ra)
		return -ENOMEM;
	ra->fs = fs;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->work, NULL);
	pthread_cond_init(&ra->done, NULL);
	for (unsigned i = 0; i < READAHEAD_THREADS; i++) {
		ra->workers[i].ra = ra;
		ra->workers[i].idx = i;
		rc = pthread_create(&ra->workers[i].thread, NULL, ra_main,
				    &ra->workers[i]);
		if (rc) {
			readahead_free(ra);
			return -rc;
		}
		ra->n_workers++;
	}
	*out = ra;
	return 0;
}

void readahead_free(struct readahead *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->lock);
	ra->stopping = true;
	pthread_cond_broadcast(&ra->work);
	pthread_mutex_unlock(&ra->lock);
	for (unsigned i = 0; i < ra->n_workers; i++)
		pthread_join(ra->workers[i].thread, NULL);
	pthread_cond_destroy(&ra->done);
	pthread_cond_destroy(&ra->work);
	pthread_mutex_destroy(&ra->lock);
	free(ra);
}
