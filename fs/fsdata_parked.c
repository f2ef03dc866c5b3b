/*
 * fsdata_parked: the fsdata side of parked files (parked.h). An unmount
 * that could not store a file's buffered data parks it (wfile_park, from
 * fsdata_free); the next read-write mount stores it through the ordinary
 * write path and an fsync before it serves anything
 * (fsdata_replay_parked), and is refused while it cannot.
 *
 * Why before it serves: once the mount is live, newer writes could reach
 * the cluster while a parked file still holds older bytes of the same
 * range, and a crash then would replay the old bytes over the new.
 */
#include "fs/fsdata_int.h"
#include "fs/parked.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cluster/log.h"
#include "fs/fs.h"
#include "fs/meta.h"

/*
 * What the unmount could not store goes to a parked file (parked.h), which
 * the next read-write mount stores before it serves anything. Only if that
 * fails too is the data lost; then the log says which file lost what, so
 * that the user knows what to copy again.
 */
void wfile_park(struct fsdata *d, struct wfile *w)
{
	struct fsctx *fs = d->fs;
	int rc = fs->ro ? -EROFS : parked_save(fs->keys, fs->opts.meta_dir,
					       w->ino, w->dirty);

	if (rc == 0) {
		log_warn("unmount: inode %llu: %zu buffered bytes parked in %s/%s; "
			 "the next read-write mount stores them first",
			 (unsigned long long)w->ino, w->dirty_bytes,
			 fs->opts.meta_dir, PARKED_DIR);
		return;
	}
	log_err("unmount: inode %llu: %zu buffered bytes dropped (parking them failed: %s)",
		(unsigned long long)w->ino, w->dirty_bytes, log_strerror(rc));
}

struct replay {
	struct fsdata *d;
	uint64_t ino, size;
	size_t bytes;
};

static int replay_range(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct replay *r = arg;
	ssize_t n = fsdata_write(r->d, r->ino, p, len, off, r->size);

	if (n < 0)
		return (int)n;
	r->bytes += len;
	return 0;
}

/* Store one parked file's data: 0 stored (or its file is gone), else
 * -errno with err filled in. */
static int replay_one(struct fsdata *d, const char *name, uint64_t ino,
		      char *err, size_t err_len)
{
	struct fsctx *fs = d->fs;
	struct replay r = { d, ino, 0, 0 };
	struct meta_attr a;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	uint64_t plain_ino = 0;
	int rc = parked_load(fs->keys, fs->opts.meta_dir, name, &plain, &plain_len);

	if (rc < 0) {
		snprintf(err, err_len, "cannot open %s/%s/%s, data an earlier unmount "
			 "could not store: %s (move it away to mount without it; "
			 "its data is then lost)", fs->opts.meta_dir, PARKED_DIR,
			 name, log_strerror(rc));
		return rc;
	}
	rc = meta_getattr(fs->meta, ino, &a);
	if (rc == -ENOENT) {
		log_warn("parked data of inode %llu dropped: the file is gone",
			 (unsigned long long)ino);
		free(plain);
		return parked_remove(fs->opts.meta_dir, name);
	}
	if (rc == 0) {
		r.size = a.size;
		rc = parked_decode(plain, plain_len, &plain_ino, replay_range, &r);
		if (rc == 0 && plain_ino != ino)
			rc = -EPROTO;
	}
	if (plain)
		sodium_memzero(plain, plain_len);
	free(plain);
	if (rc == 0)
		rc = fsdata_fsync(d, ino);
	if (rc < 0) {
		snprintf(err, err_len, "%zu bytes of inode %llu that an earlier unmount "
			 "could not store (kept in %s/%s/%s) cannot be stored yet: %s; "
			 "mount again once the cluster answers", r.bytes,
			 (unsigned long long)ino, fs->opts.meta_dir, PARKED_DIR,
			 name, log_strerror(rc));
		d->discard_on_free = true;     /* the parked file keeps them */
		return rc;
	}
	log_info("inode %llu: %zu bytes parked by an earlier unmount are stored",
		 (unsigned long long)ino, r.bytes);
	return parked_remove(fs->opts.meta_dir, name);
}

int fsdata_replay_parked(struct fsdata *d, char *err, size_t err_len)
{
	char dir[4096];
	struct dirent *de;
	DIR *dp;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/%s", d->fs->opts.meta_dir, PARKED_DIR);
	dp = opendir(dir);
	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while (!rc && (de = readdir(dp))) {
		char *end;
		unsigned long long ino;

		if (de->d_name[0] == '.') {
			/* a save cut short by a crash: its older copy, if
			 * any, is still under the plain name */
			if (!strncmp(de->d_name, ".tmp-", 5) && !d->fs->ro)
				parked_remove(d->fs->opts.meta_dir, de->d_name);
			continue;
		}
		errno = 0;
		ino = strtoull(de->d_name, &end, 10);
		if (errno || *end || !ino) {
			log_warn("%s/%s: not a parked file, left alone", dir, de->d_name);
			continue;
		}
		if (d->fs->ro) {
			log_warn("%s/%s: data an earlier unmount could not store is not "
				 "shown by a read-only mount; mount read-write to store it",
				 dir, de->d_name);
			continue;
		}
		rc = replay_one(d, de->d_name, ino, err, err_len);
	}
	closedir(dp);
	return rc;
}
