/*
 * diskpool: a few worker threads that run disk jobs for the libev loop,
 * so the loop never blocks on a disk. A job's run() executes on a worker;
 * its done() then executes on the loop thread (handed back by ev_async).
 *
 * Knows nothing of what the jobs do. Never logs.
 * Thread-safety: submit and pending from the loop thread only.
 */
#ifndef CAIRN_DISKPOOL_H
#define CAIRN_DISKPOOL_H

#include <ev.h>
#include <stdbool.h>

struct diskpool_job {
	/* On a worker. Returns false when the job is finished, true when it
	 * handed itself to someone who calls diskpool_finish() later (the
	 * worker then never touches j again). */
	bool (*run)(struct diskpool_job *j);
	void (*done)(struct diskpool_job *j);    /* on the loop; may free j */
	struct diskpool_job *next_;
};

struct diskpool;

int diskpool_new(struct ev_loop *loop, unsigned threads, struct diskpool **out)
	__attribute__((warn_unused_result));
void diskpool_submit(struct diskpool *dp, struct diskpool_job *j);
/* Finish a job whose run() returned true; from any thread. */
void diskpool_finish(struct diskpool *dp, struct diskpool_job *j);
/* Jobs submitted whose done() has not run yet. */
unsigned diskpool_pending(struct diskpool *dp);
/* Stop the workers after the queue ran empty, wait for the jobs handed on
 * to be finished, and free; NULL is fine. Jobs finished but not yet handed
 * back get their done() run here. */
void diskpool_free(struct diskpool *dp);

#endif
