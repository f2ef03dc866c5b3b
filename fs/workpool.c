/*
 * workpool: parallel loops over indexes (contract in workpool.h).
 *
 * A run is a job on the caller's stack, queued while it has indexes left.
 * Everyone (the caller and any pool thread) takes the next index under the
 * lock, runs fn outside it, and counts it done under the lock again. The
 * caller returns once every index is done, so the job outlives every use
 * of it.
 */
#include "fs/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cluster/threadname.h"

struct wp_job {
	size_t n, next, done;
	void (*fn)(void *arg, size_t i);
	void *arg;
	struct wp_job *qnext;
};

struct workpool {
	pthread_mutex_t lock;
	pthread_cond_t work;         /* a job was queued, or stopping */
	pthread_cond_t done;         /* some job's last index finished */
	struct wp_job *head, *tail;  /* jobs with indexes left to take */
	bool stopping;
	pthread_t *threads;
	unsigned n_threads;
};

/* Take job j's next index; the caller holds the lock and j has one left.
 * A job whose last index is taken leaves the queue. */
static size_t take_locked(struct workpool *wp, struct wp_job *j)
{
	size_t i = j->next++;

	if (j->next == j->n) {
		struct wp_job **pp = &wp->head, *prev = NULL;

		while (*pp != j) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		*pp = j->qnext;
		if (wp->tail == j)
			wp->tail = prev;
	}
	return i;
}

static void finish_locked(struct workpool *wp, struct wp_job *j)
{
	if (++j->done == j->n)
		pthread_cond_broadcast(&wp->done);
}

static void *wp_main(void *arg)
{
	struct workpool *wp = arg;

	thread_name("fs-workpool");

	pthread_mutex_lock(&wp->lock);
	for (;;) {
		struct wp_job *j;
		size_t i;

		while (!wp->head && !wp->stopping)
			pthread_cond_wait(&wp->work, &wp->lock);
		if (wp->stopping)
			break;
		j = wp->head;      /* the oldest loop first */
		i = take_locked(wp, j);
		pthread_mutex_unlock(&wp->lock);
		j->fn(j->arg, i);
		pthread_mutex_lock(&wp->lock);
		finish_locked(wp, j);
	}
	pthread_mutex_unlock(&wp->lock);
	return NULL;
}

int workpool_new(unsigned threads, struct workpool **out)
{
	struct workpool *wp = calloc(1, sizeof(*wp));
	int rc;

	*out = NULL;
	if (!wp)
		return -ENOMEM;
	pthread_mutex_init(&wp->lock, NULL);
	pthread_cond_init(&wp->work, NULL);
	pthread_cond_init(&wp->done, NULL);
	wp->threads = calloc(threads ? threads : 1, sizeof(*wp->threads));
	if (!wp->threads) {
		workpool_free(wp);
		return -ENOMEM;
	}
	for (; wp->n_threads < threads; wp->n_threads++) {
		rc = pthread_create(&wp->threads[wp->n_threads], NULL, wp_main, wp);
		if (rc) {
			workpool_free(wp);
			return -rc;
		}
	}
	*out = wp;
	return 0;
}

void workpool_free(struct workpool *wp)
{
	if (!wp)
		return;
	pthread_mutex_lock(&wp->lock);
	wp->stopping = true;
	pthread_cond_broadcast(&wp->work);
	pthread_mutex_unlock(&wp->lock);
	for (unsigned t = 0; t < wp->n_threads; t++)
		pthread_join(wp->threads[t], NULL);
	free(wp->threads);
	pthread_cond_destroy(&wp->done);
	pthread_cond_destroy(&wp->work);
	pthread_mutex_destroy(&wp->lock);
	free(wp);
}

void workpool_run(struct workpool *wp, size_t n,
		  void (*fn)(void *arg, size_t i), void *arg)
{
	struct wp_job job = { .n = n, .fn = fn, .arg = arg };

	if (n == 0)
		return;
	pthread_mutex_lock(&wp->lock);
	if (wp->tail)
		wp->tail->qnext = &job;
	else
		wp->head = &job;
	wp->tail = &job;
	if (n > 1)
		pthread_cond_broadcast(&wp->work);
	/* Work on our own job only: another caller's may run long. */
	while (job.next < job.n) {
		size_t i = take_locked(wp, &job);

		pthread_mutex_unlock(&wp->lock);
		fn(arg, i);
		pthread_mutex_lock(&wp->lock);
		finish_locked(wp, &job);
	}
	while (job.done < job.n)
		pthread_cond_wait(&wp->done, &wp->lock);
	pthread_mutex_unlock(&wp->lock);
}
