/*
 * storebench: how fast the block store alone (daemon/store.c, no network,
 * no protocol) stores and reads blocks on this machine's disk. It is the
 * ceiling for the daemon's PUT and GET, printed next to them by
 * bench_cluster.sh so that a miss can be put where it belongs: on the wire
 * and the daemon's loop, or on the disk path that "acknowledged means
 * durable" (DESIGN.md) imposes.
 *
 *   storebench DIR SIZE COUNT [STORES [THREADS [WINDOW]]]
 *
 * Opens STORES stores (default 3, as a 3-daemon cluster on one disk) under
 * DIR, and from THREADS threads per store (default 4, cairnd's default
 * --workers) puts COUNT blocks of SIZE random bytes in all, each thread
 * keeping up to WINDOW (default 16) PUTs waiting for their group commit,
 * as a daemon's disk workers do. Then it reads every block back with
 * store_get_buf (checksum verified), from the same threads, then times a
 * reopen, caches dropped, three ways: after a clean close (each pack read
 * from its record list file), the same with those files removed (each
 * record header read, as before there were any), and as after a crash
 * (every pack byte read). Prints one JSON object: put_mb_s, put_ops_s,
 * get_mb_s, get_ops_s, open_s, open_headers_s, open_after_crash_s.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/store.h"

struct job {
	struct store *st;
	size_t size;
	unsigned first, count;     /* the blocks this thread puts and gets */
	unsigned window;
	const uint8_t *data;       /* one random buffer; each block differs by its
				    * first 8 bytes (the block number) */
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned waiting;          /* PUTs not yet durable */
	int err;
	pthread_t thread;
};

static uint8_t (*addrs)[STORE_ADDR_BYTES];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put_done(void *arg, int result)
{
	struct job *j = arg;

	pthread_mutex_lock(&j->lock);
	if (result < 0 && !j->err)
		j->err = result;
	j->waiting--;
	pthread_cond_signal(&j->done);
	pthread_mutex_unlock(&j->lock);
}

static void *put_main(void *arg)
{
	struct job *j = arg;
	uint8_t *block = malloc(j->size);

	if (!block) {
		j->err = -ENOMEM;
		return NULL;
	}
	memcpy(block, j->data, j->size);
	for (unsigned i = j->first; i < j->first + j->count; i++) {
		int rc;

		memcpy(block, &i, sizeof(i));
		pthread_mutex_lock(&j->lock);
		while (j->waiting >= j->window)
			pthread_cond_wait(&j->done, &j->lock);
		j->waiting++;
		pthread_mutex_unlock(&j->lock);
		rc = store_put_async(j->st, addrs[i], block, j->size, put_done, j);
		if (rc < 0) {
			pthread_mutex_lock(&j->lock);
			j->waiting--;
			if (!j->err)
				j->err = rc;
			pthread_mutex_unlock(&j->lock);
			break;
		}
	}
	pthread_mutex_lock(&j->lock);
	while (j->waiting)
		pthread_cond_wait(&j->done, &j->lock);
	pthread_mutex_unlock(&j->lock);
	free(block);
	return NULL;
}

static void *get_main(void *arg)
{
	struct job *j = arg;

	for (unsigned i = j->first; i < j->first + j->count; i++) {
		uint8_t *buf;
		const uint8_t *data;
		size_t len;
		int rc = store_get_buf(j->st, addrs[i], &buf, &data, &len);

		if (rc < 0 || len != j->size || memcmp(data, &i, sizeof(i))) {
			j->err = rc < 0 ? rc : -EBADMSG;
			if (rc >= 0)
				free(buf);
			return NULL;
		}
		free(buf);
	}
	return NULL;
}

/* Run fn on every job's thread; the seconds it took, or -1 on an error. */
static double run_all(struct job *jobs, unsigned n, void *(*fn)(void *))
{
	double t0 = now_s();
	unsigned started = 0;

	for (; started < n; started++)
		if (pthread_create(&jobs[started].thread, NULL, fn, &jobs[started])) {
			fprintf(stderr, "storebench: cannot start a thread\n");
			break;
		}
	for (unsigned i = 0; i < started; i++)
		pthread_join(jobs[i].thread, NULL);
	if (started < n)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (jobs[i].err) {
			fprintf(stderr, "storebench: block store failed: %s\n",
				strerror(-jobs[i].err));
			return -1;
		}
	return now_s() - t0;
}

enum reopen_as {
	AS_CLEAN,        /* after a clean close */
	AS_NO_LISTS,     /* the same, record list files removed */
	AS_CRASH,        /* after a crash in the run that wrote every pack:
			  * none verified (packs/verified removed) */
};

/* Remove the record list files (NNNNNNNN.idx) of the store in path. */
static int remove_lists(const char *path)
{
	char dir[4200], f[4500];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/packs", path);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l <= 4 || strcmp(e->d_name + l - 4, ".idx"))
			continue;
		snprintf(f, sizeof(f), "%s/%s", dir, e->d_name);
		if (unlink(f) < 0) {
			fprintf(stderr, "storebench: unlink %s: %s\n", f, strerror(errno));
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* Close and open every store again; seconds taken by the opens, or -1. */
static double reopen_all(const char *dir, struct store **stores, unsigned n,
			 enum reopen_as as)
{
	double t = 0;

	for (unsigned s = 0; s < n; s++) {
		char path[4096], mark[4200];
		double t0;
		int e;

		store_close(stores[s]);
		stores[s] = NULL;
		snprintf(path, sizeof(path), "%s/store%u", dir, s);
		snprintf(mark, sizeof(mark), "%s/packs/verified", path);
		if (as == AS_CRASH && unlink(mark) < 0 && errno != ENOENT) {
			fprintf(stderr, "storebench: unlink %s: %s\n", mark, strerror(errno));
			return -1;
		}
		if (as == AS_NO_LISTS && remove_lists(path) < 0)
			return -1;
		/* cold, as after a reboot */
		sync();
		{
			FILE *f = fopen("/proc/sys/vm/drop_caches", "w");

			if (f) {
				fputs("3\n", f);
				fclose(f);
			}
		}
		t0 = now_s();
		e = store_open(path, &stores[s]);
		t += now_s() - t0;
		if (e < 0) {
			fprintf(stderr, "storebench: cannot open the store in %s again: %s\n",
				path, strerror(-e));
			return -1;
		}
	}
	return t;
}

static long arg_long(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < lo || v > hi) {
		fprintf(stderr, "storebench: %s must be %ld..%ld, not '%s'\n",
			what, lo, hi, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned n_stores = 3, threads = 4, window = 16, count, n_jobs;
	size_t size;
	struct store **stores;
	struct job *jobs;
	uint8_t *data;
	double t_put, t_get, t_open, t_headers, t_crash;
	int rc = 1;

	if (argc < 4 || argc > 7) {
		fprintf(stderr, "usage: storebench DIR SIZE COUNT "
			"[STORES [THREADS [WINDOW]]]\n");
		return 2;
	}
	size = (size_t)arg_long(argv[2], "SIZE", 8, STORE_MAX_BLOCK);
	count = (unsigned)arg_long(argv[3], "COUNT", 1, 100000000);
	if (argc > 4)
		n_stores = (unsigned)arg_long(argv[4], "STORES", 1, 64);
	if (argc > 5)
		threads = (unsigned)arg_long(argv[5], "THREADS", 1, 256);
	if (argc > 6)
		window = (unsigned)arg_long(argv[6], "WINDOW", 1, 100000);
	if (sodium_init() < 0)
		return 1;
	n_jobs = n_stores * threads;
	stores = calloc(n_stores, sizeof(*stores));
	jobs = calloc(n_jobs, sizeof(*jobs));
	addrs = malloc((size_t)count * sizeof(*addrs));
	data = malloc(size);
	if (!stores || !jobs || !addrs || !data) {
		fprintf(stderr, "storebench: out of memory\n");
		free(stores);
		free(jobs);
		free(addrs);
		free(data);
		return 1;
	}
	for (unsigned i = 0; i < n_jobs; i++) {
		pthread_mutex_init(&jobs[i].lock, NULL);
		pthread_cond_init(&jobs[i].done, NULL);
	}
	randombytes_buf(data, size);
	randombytes_buf(addrs, (size_t)count * sizeof(*addrs));
	for (unsigned s = 0; s < n_stores; s++) {
		char path[4096];
		int e;

		snprintf(path, sizeof(path), "%s/store%u", argv[1], s);
		if (mkdir(path, 0700) && errno != EEXIST) {
			fprintf(stderr, "storebench: mkdir %s: %s\n", path, strerror(errno));
			goto out;
		}
		e = store_open(path, &stores[s]);
		if (e < 0) {
			fprintf(stderr, "storebench: cannot open a store in %s: %s\n",
				path, strerror(-e));
			goto out;
		}
	}
	for (unsigned i = 0; i < n_jobs; i++) {
		struct job *j = &jobs[i];

		j->st = stores[i % n_stores];
		j->size = size;
		j->first = (unsigned)((uint64_t)count * i / n_jobs);
		j->count = (unsigned)((uint64_t)count * (i + 1) / n_jobs) - j->first;
		j->window = window;
		j->data = data;
	}
	t_put = run_all(jobs, n_jobs, put_main);
	if (t_put < 0)
		goto out;
	t_get = run_all(jobs, n_jobs, get_main);
	if (t_get < 0)
		goto out;
	/* What a restart costs: after a clean close (record list files),
	 * without those (record headers), and as after a crash (every pack
	 * byte read and checked). */
	t_open = reopen_all(argv[1], stores, n_stores, AS_CLEAN);
	t_headers = t_open < 0 ? -1 : reopen_all(argv[1], stores, n_stores, AS_NO_LISTS);
	t_crash = t_headers < 0 ? -1 : reopen_all(argv[1], stores, n_stores, AS_CRASH);
	if (t_crash < 0)
		goto out;
	printf("{\"put_mb_s\":%.1f,\"put_ops_s\":%.0f,\"get_mb_s\":%.1f,"
	       "\"get_ops_s\":%.0f,\"open_s\":%.3f,\"open_headers_s\":%.3f,"
	       "\"open_after_crash_s\":%.3f}\n",
	       (double)size * count / t_put / 1e6, count / t_put,
	       (double)size * count / t_get / 1e6, count / t_get,
	       t_open, t_headers, t_crash);
	rc = 0;
out:
	for (unsigned s = 0; s < n_stores; s++)
		store_close(stores[s]);
	for (unsigned i = 0; i < n_jobs; i++) {
		pthread_mutex_destroy(&jobs[i].lock);
		pthread_cond_destroy(&jobs[i].done);
	}
	free(stores);
	free(jobs);
	free(addrs);
	free(data);
	return rc;
}
