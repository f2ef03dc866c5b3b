/*
 * tidybench: how long a PUT waits while the block store compacts packs
 * beside it (daemon/store.c, the tidier thread).
 *
 *   tidybench DIR [SIZE [BLOCKS [PUTS]]]
 *
 * Fills a store in DIR with BLOCKS blocks of SIZE random bytes (default
 * 150,000 of 4 KiB: ten 64 MiB packs), then times PUTS (default 1,000)
 * PUTs of new blocks made one after the other, as a lone client does:
 * first with nothing else going on (the control), then right after three
 * blocks in four were deleted, while the store compacts the dead packs.
 * A compaction copies a pack's live records and syncs them; a PUT that
 * waited for that would take as long as the copy. Prints one JSON object:
 * the median, 99th percentile and longest PUT of each run in ms, and how
 * many compactions ran during the second.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "daemon/store.h"

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned waiting;
	int err;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void op_done(void *arg, int result)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->lock);
	if (result < 0 && !w->err)
		w->err = result;
	w->waiting--;
	pthread_cond_signal(&w->done);
	pthread_mutex_unlock(&w->lock);
}

/* Wait until at most `left` operations are still waiting. */
static void wait_down_to(struct waiter *w, unsigned left)
{
	pthread_mutex_lock(&w->lock);
	while (w->waiting > left)
		pthread_cond_wait(&w->done, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

/* Blocks [first, first + n) of addrs, deleted (del) or put, WINDOW at a
 * time; 0 or -errno. */
static int stream(struct store *st, uint8_t (*addrs)[STORE_ADDR_BYTES],
		  unsigned first, unsigned n, uint8_t *block, size_t size,
		  bool del, unsigned skip_mod)
{
	enum { WINDOW = 256 };
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	int rc = 0;

	for (unsigned i = first; i < first + n && !rc; i++) {
		if (skip_mod && i % skip_mod == 0)
			continue;        /* kept */
		wait_down_to(&w, WINDOW - 1);
		pthread_mutex_lock(&w.lock);
		w.waiting++;
		pthread_mutex_unlock(&w.lock);
		memcpy(block, &i, sizeof(i));
		rc = del ? store_delete_async(st, addrs[i], op_done, &w)
			 : store_put_async(st, addrs[i], block, size, op_done, &w);
		if (rc < 0) {
			pthread_mutex_lock(&w.lock);
			w.waiting--;
			pthread_mutex_unlock(&w.lock);
		}
	}
	wait_down_to(&w, 0);
	return rc < 0 ? rc : w.err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct timing {
	double p50, p99, max;
};

/* PUTs of blocks [first, first + n), one at a time; their times. */
static int timed_puts(struct store *st, uint8_t (*addrs)[STORE_ADDR_BYTES],
		      unsigned first, unsigned n, uint8_t *block, size_t size,
		      struct timing *out)
{
	double *ms = malloc(n * sizeof(*ms));

	if (!ms)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = first + i;
		double t0 = now_ms();
		int rc;

		memcpy(block, &k, sizeof(k));
		rc = store_put(st, addrs[k], block, size);
		if (rc < 0) {
			free(ms);
			return rc;
		}
		ms[i] = now_ms() - t0;
	}
	qsort(ms, n, sizeof(*ms), cmp_double);
	out->p50 = ms[n / 2];
	out->p99 = ms[(size_t)n * 99 / 100];
	out->max = ms[n - 1];
	free(ms);
	return 0;
}

static long arg_long(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < lo || v > hi) {
		fprintf(stderr, "tidybench: %s must be %ld..%ld, not '%s'\n",
			what, lo, hi, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	size_t size = 4096;
	unsigned blocks = 150000, puts = 1000;
	uint8_t (*addrs)[STORE_ADDR_BYTES] = NULL;
	uint8_t *block = NULL;
	struct store *st = NULL;
	struct store_stats s0, s1;
	struct timing ctl, busy;
	int rc = 1, e;

	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: tidybench DIR [SIZE [BLOCKS [PUTS]]]\n");
		return 2;
	}
	if (argc > 2)
		size = (size_t)arg_long(argv[2], "SIZE", 8, 1 << 20);
	if (argc > 3)
		blocks = (unsigned)arg_long(argv[3], "BLOCKS", 4, 10000000);
	if (argc > 4)
		puts = (unsigned)arg_long(argv[4], "PUTS", 10, 1000000);
	if (sodium_init() < 0)
		return 1;
	addrs = malloc(((size_t)blocks + 2 * puts) * sizeof(*addrs));
	block = malloc(size);
	if (!addrs || !block) {
		fprintf(stderr, "tidybench: out of memory\n");
		goto out;
	}
	randombytes_buf(addrs, ((size_t)blocks + 2 * puts) * sizeof(*addrs));
	randombytes_buf(block, size);
	e = store_open(argv[1], &st);
	if (e < 0) {
		fprintf(stderr, "tidybench: cannot open a store in %s: %s\n",
			argv[1], strerror(-e));
		goto out;
	}
	e = stream(st, addrs, 0, blocks, block, size, false, 0);
	if (!e)
		e = timed_puts(st, addrs, blocks, puts, block, size, &ctl);
	if (e < 0) {
		fprintf(stderr, "tidybench: PUT failed: %s\n", strerror(-e));
		goto out;
	}
	/* three in four die: every pack of the fill is worth compacting */
	e = stream(st, addrs, 0, blocks, block, size, true, 4);
	store_get_stats(st, &s0);
	if (!e)
		e = timed_puts(st, addrs, blocks + puts, puts, block, size, &busy);
	if (e < 0) {
		fprintf(stderr, "tidybench: DELETE or PUT failed: %s\n", strerror(-e));
		goto out;
	}
	store_get_stats(st, &s1);
	printf("{\"control_p50_ms\":%.3f,\"control_p99_ms\":%.3f,\"control_max_ms\":%.3f,"
	       "\"compacting_p50_ms\":%.3f,\"compacting_p99_ms\":%.3f,"
	       "\"compacting_max_ms\":%.3f,\"compactions\":%llu}\n",
	       ctl.p50, ctl.p99, ctl.max, busy.p50, busy.p99, busy.max,
	       (unsigned long long)(s1.compactions - s0.compactions));
	rc = 0;
out:
	store_close(st);
	free(addrs);
	free(block);
	return rc;
}
