/*
 * workpool: a few threads that help a caller run one loop body over the
 * indexes 0..n-1 in parallel.
 *
 * The write pipeline seals a span's chunks this way: hashing, compressing
 * and encrypting a chunk take milliseconds each and do not depend on each
 * other, while one flusher thread doing them in turn was the busiest thread
 * of a sequential write (perf: 8 of 12 seconds) with a core left idle.
 *
 * workpool_run() returns only when fn has returned for every index. The
 * caller works on the loop too, so a pool of 0 threads runs it serially and
 * a run never waits for a pool busy with another caller's loop. Several
 * callers may run loops at once; pool threads help the oldest first.
 *
 * Thread-safety: workpool_run() may be called from many threads at once.
 */
#ifndef CAIRN_WORKPOOL_H
#define CAIRN_WORKPOOL_H

#include <stddef.h>

struct workpool;

int workpool_new(unsigned threads, struct workpool **out)
	__attribute__((warn_unused_result));
/* Joins the threads; no run may be going on. NULL is a no-op. */
void workpool_free(struct workpool *wp);

void workpool_run(struct workpool *wp, size_t n,
		  void (*fn)(void *arg, size_t i), void *arg);

#endif
