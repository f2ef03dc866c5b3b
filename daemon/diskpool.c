/*
 * diskpool: worker threads for disk jobs (see diskpool.h). A FIFO of
 * submitted jobs under one mutex; finished jobs go on a done list and the
 * loop is woken with ev_async_send, whose callback runs their done().
 */
#include "daemon/diskpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cluster/threadname.h"

struct diskpool {
	struct ev_loop *loop;
	ev_async wake;
	pthread_mutex_t lock;            /* guards everything below */
	pthread_cond_t cond;             /* a job was queued, or stopping */
	pthread_cond_t drained;          /* stopping: a handed-on job finished */
	struct diskpool_job *head, *tail, *done;
	bool stopping;
	int handed_on;                   /* run() returned true, not finished */
	unsigned n_threads, pending;     /* pending: loop thread only */
	pthread_t *threads;
};

static void *worker_main(void *arg)
{
	struct diskpool *dp = arg;

	thread_name("disk-worker");

	pthread_mutex_lock(&dp->lock);
	for (;;) {
		struct diskpool_job *j = dp->head;

		if (!j) {
			if (dp->stopping)
				break;
			pthread_cond_wait(&dp->cond, &dp->lock);
			continue;
		}
		dp->head = j->next_;
		if (!dp->head)
			dp->tail = NULL;
		pthread_mutex_unlock(&dp->lock);
		if (j->run(j)) {
			/* j may be finished and freed already: count only
			 * (diskpool_finish may even have counted down first) */
			pthread_mutex_lock(&dp->lock);
			dp->handed_on++;
			continue;
		}
		pthread_mutex_lock(&dp->lock);
		j->next_ = dp->done;
		dp->done = j;
		ev_async_send(dp->loop, &dp->wake);
	}
	pthread_mutex_unlock(&dp->lock);
	return NULL;
}

static void run_done(struct diskpool *dp)
{
	struct diskpool_job *list, *rev = NULL;

	pthread_mutex_lock(&dp->lock);
	list = dp->done;
	dp->done = NULL;
	pthread_mutex_unlock(&dp->lock);
	while (list) {              /* reverse: hand back in finishing order */
		struct diskpool_job *n = list->next_;

		list->next_ = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct diskpool_job *n = rev->next_;

		dp->pending--;
		rev->done(rev);
		rev = n;
	}
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	run_done(w->data);
}

int diskpool_new(struct ev_loop *loop, unsigned threads, struct diskpool **out)
{
	struct diskpool *dp = calloc(1, sizeof(*dp));

	if (!dp)
		return -ENOMEM;
	if (threads == 0)
		threads = 1;
	dp->loop = loop;
	pthread_mutex_init(&dp->lock, NULL);
	pthread_cond_init(&dp->cond, NULL);
	pthread_cond_init(&dp->drained, NULL);
	ev_async_init(&dp->wake, wake_cb);
	dp->wake.data = dp;
	ev_async_start(loop, &dp->wake);
	dp->threads = calloc(threads, sizeof(*dp->threads));
	if (!dp->threads) {
		diskpool_free(dp);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < threads; i++) {
		int err = pthread_create(&dp->threads[i], NULL, worker_main, dp);

		if (err) {
			diskpool_free(dp);
			return -err;
		}
		dp->n_threads++;
	}
	*out = dp;
	return 0;
}

void diskpool_submit(struct diskpool *dp, struct diskpool_job *j)
{
	j->next_ = NULL;
	dp->pending++;
	pthread_mutex_lock(&dp->lock);
	if (dp->tail)
		dp->tail->next_ = j;
	else
		dp->head = j;
	dp->tail = j;
	pthread_cond_signal(&dp->cond);
	pthread_mutex_unlock(&dp->lock);
}

void diskpool_finish(struct diskpool *dp, struct diskpool_job *j)
{
	pthread_mutex_lock(&dp->lock);
	dp->handed_on--;
	j->next_ = dp->done;
	dp->done = j;
	ev_async_send(dp->loop, &dp->wake);
	/* Only diskpool_free waits for these, once the workers are gone; a
	 * broadcast on every finish woke every idle worker for nothing (perf
	 * counted 18 futex calls per PUT on the daemon). */
	if (dp->stopping)
		pthread_cond_broadcast(&dp->drained);
	pthread_mutex_unlock(&dp->lock);
}

unsigned diskpool_pending(struct diskpool *dp)
{
	return dp->pending;
}

void diskpool_free(struct diskpool *dp)
{
	if (!dp)
		return;
	pthread_mutex_lock(&dp->lock);
	dp->stopping = true;
	pthread_cond_broadcast(&dp->cond);
	pthread_mutex_unlock(&dp->lock);
	for (unsigned i = 0; i < dp->n_threads; i++)
		pthread_join(dp->threads[i], NULL);
	pthread_mutex_lock(&dp->lock);   /* every worker counted its hand-ons */
	while (dp->handed_on > 0)
		pthread_cond_wait(&dp->drained, &dp->lock);
	pthread_mutex_unlock(&dp->lock);
	run_done(dp);
	ev_async_stop(dp->loop, &dp->wake);
	pthread_mutex_destroy(&dp->lock);
	pthread_cond_destroy(&dp->cond);
	pthread_cond_destroy(&dp->drained);
	free(dp->threads);
	free(dp);
}
