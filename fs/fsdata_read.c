/*
 * fsdata_read: the committed layer and the reads. A block of a committed
 * extent is held from the block cache, from a read-ahead worker already
 * fetching it, or from the cluster; the zero-copy read of the common case
 * answers from held blocks, the copying read overlays the inflight and
 * dirty bytes of fsdata.c's buffers on the committed ones.
 *
 * Not here: the buffers (fsdata.c), read-ahead (readahead.c), the block
 * cache (bcache.c), extents (meta_blocks.c).
 */
#include "fs/fsdata_int.h"
#include "fs/segs.h"
#include "fs/readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/log.h"
#include "fs/fs.h"
#include "fs/meta.h"

/* --- the committed layer ------------------------------------------------- */

/*
 * A block held for reading: pinned in the block cache, or (when the cache
 * would not take it) a buffer of our own.
 */
struct block_hold {
	struct bcache_entry *ce;
	uint8_t *own;
	const uint8_t *data;
	size_t len;
};

static void release_block(struct fsdata *d, struct block_hold *h)
{
	bcache_put(d->fs->cache, h->ce);
	free(h->own);
	memset(h, 0, sizeof(*h));
}

/* Hold the block of extent e of ino: from the cache, from a read-ahead
 * worker fetching it, or from the cluster. 0 or -errno (-EIO for a block
 * no holder could give back, logged; -ENODATA when cached_only and it is
 * not in the cache). */
static int hold_block(struct fsdata *d, uint64_t ino,
		      const struct meta_extent *e, bool cached_only,
		      struct block_hold *h)
{
	struct fsctx *fs = d->fs;
	uint8_t *data = NULL;
	ssize_t got;

	memset(h, 0, sizeof(*h));
	h->ce = bcache_get(fs->cache, e->addr);
	if (!h->ce && cached_only)
		return -ENODATA;
	/* A read-ahead worker may be fetching it right now: wait for that
	 * rather than fetch it twice. */
	if (!h->ce && d->ra && readahead_wait(d->ra, e->addr))
		h->ce = bcache_get(fs->cache, e->addr);
	if (!h->ce) {
		got = chunkio_get_alloc(fs->cio, e->addr, &data);
		if (got < 0) {
			char hex[17];

			for (int k = 0; k < 8; k++)
				snprintf(hex + 2 * k, 3, "%02x", e->addr[k]);
			log_err("inode %llu: block %s... at offset %llu: %s",
				(unsigned long long)ino, hex,
				(unsigned long long)e->off, log_strerror((int)got));
			return got == -ENOMEM ? -ENOMEM : -EIO;
		}
		if ((uint64_t)got < e->len) {
			log_err("inode %llu: block at offset %llu holds %zd bytes, extent says %u",
				(unsigned long long)ino, (unsigned long long)e->off,
				got, e->len);
			free(data);
			return -EIO;
		}
		h->ce = bcache_insert_owned(fs->cache, e->addr, data, (size_t)got);
		if (!h->ce) {
			/* Too big for the cache or no memory: read from
			 * our own copy. */
			h->own = data;
			h->data = data;
			h->len = (size_t)got;
			return 0;
		}
	}
	h->data = h->ce->data;
	h->len = h->ce->len;
	return 0;
}

/* Read committed bytes [off, off+len) of ino into buf (holes are zeros).
 * Returns 0 or -errno (-EIO for a block no holder could give back). */
int read_committed(struct fsdata *d, uint64_t ino, uint8_t *buf,
		   uint64_t off, size_t len)
{
	struct meta_extent *ext = NULL;
	uint64_t pos = off;
	size_t n = 0;
	int rc;

	rc = meta_extents_get(d->fs->meta, ino, off, len, &ext, &n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct meta_extent *e = &ext[i];
		uint64_t a = e->off > off ? e->off : off;
		uint64_t b = e->off + e->len < off + len ? e->off + e->len : off + len;
		struct block_hold h;

		if (a >= b)
			continue;
		if (a > pos)    /* a hole before this extent */
			memset(buf + (pos - off), 0, (size_t)(a - pos));
		rc = hold_block(d, ino, e, false, &h);
		if (rc < 0)
			break;
		memcpy(buf + (a - off), h.data + (a - e->off), (size_t)(b - a));
		release_block(d, &h);
		if (b > pos)
			pos = b;
	}
	if (rc == 0 && pos < off + len)
		memset(buf + (pos - off), 0, (size_t)(off + len - pos));
	free(ext);
	return rc;
}

/* What of a read of len bytes at off lies inside a file of size bytes. */
static size_t clamp_to_size(uint64_t size, uint64_t off, size_t len)
{
	if (off >= size)
		return 0;
	return len > size - off ? (size_t)(size - off) : len;
}

/* The blocks a zero-copy read holds until its answer is sent. */
struct read_hold {
	size_t n;
	struct block_hold h[FSDATA_READ_IOV_MAX];
};

ssize_t fsdata_read_direct(struct fsdata *d, uint64_t ino, size_t len,
			   uint64_t off, unsigned flags,
			   struct iovec iov[FSDATA_READ_IOV_MAX], size_t *iovcnt,
			   void **hold)
{
	bool cached_only = flags & FSDATA_READ_CACHED_ONLY;
	struct meta_extent *ext = NULL;
	struct read_hold *rh;
	uint64_t size, pos;
	size_t n = 0;
	int rc;

	*iovcnt = 0;
	*hold = NULL;
	pthread_mutex_lock(&d->lock);
	rc = wfile_find(d, ino) ? -EAGAIN : 0;   /* writes not yet stored */
	pthread_mutex_unlock(&d->lock);
	if (rc < 0)
		return rc;
	rc = meta_file_size(d->fs->meta, ino, &size);
	if (rc < 0)
		return rc;
	len = clamp_to_size(size, off, len);
	if (!len)
		return 0;
	rc = meta_extents_get(d->fs->meta, ino, off, len, &ext, &n);
	if (rc < 0)
		return rc;
	/* Blocks that cover the range end to end, and not too many of
	 * them; a hole is left to fsdata_read(). */
	pos = off;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ext[i].off > pos)
			rc = -EAGAIN;
		else if (ext[i].off + ext[i].len > pos)
			pos = ext[i].off + ext[i].len;
	}
	if (rc == 0 && (n > FSDATA_READ_IOV_MAX || pos < off + len))
		rc = -EAGAIN;
	rh = rc == 0 ? calloc(1, sizeof(*rh)) : NULL;
	if (rc == 0 && !rh)
		rc = -ENOMEM;
	if (rc < 0) {
		free(ext);
		return rc;
	}
	if (d->ra && !(flags & FSDATA_READ_NOTED))
		readahead_note(d->ra, ino, off, len);
	pos = off;
	for (size_t i = 0; i < n && pos < off + len; i++) {
		const struct meta_extent *e = &ext[i];
		uint64_t end = e->off + e->len < off + len ? e->off + e->len : off + len;

		if (end <= pos)
			continue;
		rc = hold_block(d, ino, e, cached_only, &rh->h[rh->n]);
		if (rc < 0)
			break;
		iov[rh->n].iov_base = (void *)(rh->h[rh->n].data + (pos - e->off));
		iov[rh->n].iov_len = (size_t)(end - pos);
		rh->n++;
		pos = end;
	}
	free(ext);
	if (rc < 0) {
		fsdata_read_done(d, rh);
		return rc;
	}
	*iovcnt = rh->n;
	*hold = rh;
	return (ssize_t)len;
}

void fsdata_read_done(struct fsdata *d, void *hold)
{
	struct read_hold *rh = hold;

	if (!rh)
		return;
	for (size_t i = 0; i < rh->n; i++)
		release_block(d, &rh->h[i]);
	free(rh);
}

ssize_t fsdata_read(struct fsdata *d, uint64_t ino, void *buf, size_t len,
		    uint64_t off)
{
	for (int attempt = 0;; attempt++) {
		uint64_t size, commits = 0;
		struct wfile *w;
		int rc;

		pthread_mutex_lock(&d->lock);
		w = wfile_find(d, ino);
		if (w) {
			size = w->size;
			commits = w->commits;
		}
		pthread_mutex_unlock(&d->lock);
		if (!w) {
			rc = meta_file_size(d->fs->meta, ino, &size);
			if (rc < 0)
				return rc;
		}
		len = clamp_to_size(size, off, len);
		if (!len)
			return 0;
		if (attempt == 0 && d->ra)
			readahead_note(d->ra, ino, off, len);
		rc = read_committed(d, ino, buf, off, len);
		if (rc < 0)
			return rc;
		if (!w)
			return (ssize_t)len;

		pthread_mutex_lock(&d->lock);
		w = wfile_find(d, ino);
		if (!w || w->commits == commits || attempt >= 8) {
			if (w) {
				seg_overlay(w->inflight, buf, off, len);
				seg_overlay(w->dirty, buf, off, len);
			}
			pthread_mutex_unlock(&d->lock);
			if (!w && attempt < 8)
				continue;   /* committed and dropped: reread */
			return (ssize_t)len;
		}
		pthread_mutex_unlock(&d->lock);
		/* A flush committed while we read: read again. */
	}
}
