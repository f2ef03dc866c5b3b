/*
 * loop: the FUSE request loop of cairnfs, in place of libfuse's
 * fuse_session_loop_mt().
 *
 * Why our own: a FUSE request is a round trip between the application and
 * this process, and on the machines we measured (paravirtualised guests)
 * most of its cost is waking the thread that reads /dev/fuse. A stat, a
 * create or a tar -x is one round trip after another. Here one thread at a
 * time, the leader, reads requests, and after each one it keeps reading
 * (non-blocking) for spin_us before it sleeps: a sequential application's
 * next request is usually there by then, and no thread had to wake for
 * it. smallfiles on the quickstart mount: stats 36k/s -> 57k/s, creates
 * 3.4k/s -> 5.3k/s, tar -x of /usr/include 8.0 s -> 6.9 s.
 *
 * Requests that cannot wait on the network or on a flush (lookups,
 * getattr, create, rename, xattrs, ...: see loop.c) are answered by the
 * leader itself. Any other (write, fsync, statfs, truncate, forget) first
 * hands the leader role to an idle thread (or a new one, up to
 * max_threads), so a slow request never stops the others being read. A
 * read is answered by the leader too when its blocks are in the cache;
 * one that has to wait for a block hands the role off first
 * (loop_may_block()).
 *
 * Ends when the filesystem is unmounted or fuse_session_exit() is called
 * (the signal handlers do), after every thread finished its request.
 */
#ifndef CAIRN_LOOP_H
#define CAIRN_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;

struct loop_opts {
	unsigned max_threads;     /* at most this many (>= 1); default 16 */
	unsigned max_idle;        /* more idle threads than this exit; default 8 */
	unsigned spin_us;         /* read on this long before sleeping; 0: never */
	int64_t *last_request_ns; /* if set: each request's CLOCK_MONOTONIC
				   * time is stored there (atomic) */
};

/* Run the session until it ends; 0, or -errno when the device failed. */
int loop_run(struct fuse_session *se, const struct loop_opts *opts);

/* For a request handler about to wait (on the network, on a flush): when
 * the calling thread is the leader answering inline, another thread takes
 * the leader role first, so requests keep being read meanwhile. A no-op on
 * any other thread, and under libfuse's own loop (-s). */
void loop_may_block(void);

/* Whether the leader answers a request of this opcode itself (exposed for
 * tests). setattr_size: a SETATTR that changes the size (it waits for a
 * flush in progress). */
bool loop_answers_inline(unsigned opcode, bool setattr_size);

#endif
