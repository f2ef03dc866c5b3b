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

struct diskpool_job {
	void (*run)(struct diskpool_job *j);     /* on a worker */
	void (*done)(struct diskpool_job *j);    /* on the loop; may free j */
	struct diskpool_job *next_;
};

struct diskpool;

int diskpool_new(struct ev_loop *loop, unsigned threads, struct diskpool **out)
	__attribute__((warn_unused_result));
void diskpool_submit(struct diskpool *dp, struct diskpool_job *j);
/* Jobs submitted whose done() has not run yet. */
unsigned diskpool_pending(struct diskpool *dp);
/* Stop the workers after the queue ran empty and free; NULL is fine. Jobs
 * finished but not yet handed back get their done() run here. */
void diskpool_free(struct diskpool *dp);

#endif
