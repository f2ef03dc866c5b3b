/*
 * loop: the FUSE request loop, leader/follower with a spinning leader
 * (contract and reasons in loop.h).
 *
 * Roles, under lp->lock: at most one thread is the leader (has_leader) and
 * reads /dev/fuse; idle threads wait on lp->turn for the role; the others
 * are answering a request handed off to them. The device fd is switched to
 * non-blocking, so the leader can keep trying for spin_us and then sleep
 * in poll() (only the leader polls: no herd of woken threads). The poll
 * has a timeout so that a fuse_session_exit() from a signal handler that
 * ran on another thread is seen within LOOP_POLL_MS.
 */
#define FUSE_USE_VERSION 312
#include "fs/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/log.h"
#include "cluster/monotime.h"
#include "cluster/threadname.h"

#define LOOP_POLL_MS 500

struct lpool {
	struct fuse_session *se;
	int fd;
	int64_t spin_ns;
	int64_t *stamp;             /* opts->last_request_ns */
	unsigned max_threads, max_idle;
	pthread_mutex_t lock;
	pthread_cond_t turn;        /* the leader role is free, or exiting */
	pthread_cond_t gone;        /* a thread ended */
	bool has_leader;
	bool exiting;
	unsigned n_threads, n_idle;
	int err;                    /* first device error */
	bool spawn_failed_logged;
};

/* The pool whose leader this thread is while it answers a request inline;
 * NULL on every other thread, and once loop_may_block() gave the role up. */
static __thread struct lpool *tl_leading;

bool loop_answers_inline(unsigned opcode, bool setattr_size)
{
	switch (opcode) {
	/* Answered from the block cache when every block is there; op_read
	 * calls loop_may_block() before it waits for one. */
	case FUSE_READ:
		return true;
	/* Metadata only: LMDB and the write buffers' lock, never the
	 * network, never waiting for a flush. */
	case FUSE_LOOKUP:
	case FUSE_GETATTR:
	case FUSE_READLINK:
	case FUSE_SYMLINK:
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_OPEN:
	case FUSE_CREATE:
	case FUSE_FLUSH:            /* queues the file, does not wait */
	case FUSE_RELEASE:
	case FUSE_OPENDIR:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_RELEASEDIR:
	case FUSE_SETXATTR:
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
	case FUSE_REMOVEXATTR:
	case FUSE_ACCESS:
	case FUSE_INTERRUPT:
		return true;
	case FUSE_SETATTR:
		return !setattr_size;   /* a truncate waits for a flush */
	default:
		/* write (back-pressure), fsync, statfs (asks the
		 * cluster), forget (waits for a flush), init, destroy, and
		 * whatever a newer kernel sends */
		return false;
	}
}

static bool request_inline(const struct fuse_buf *fb)
{
	const struct fuse_in_header *in = fb->mem;
	bool size = false;

	if ((fb->flags & FUSE_BUF_IS_FD) || fb->size < sizeof(*in))
		return false;   /* spliced, or short: libfuse will judge it */
	if (in->opcode == FUSE_SETATTR) {
		const struct fuse_setattr_in *a = (const void *)(in + 1);

		if (fb->size < sizeof(*in) + sizeof(*a))
			return false;
		size = (a->valid & FATTR_SIZE) != 0;
	}
	return loop_answers_inline(in->opcode, size);
}

/*
 * As the leader: read the next request into fb. Returns its size, 0 when
 * the session ended (unmounted, or exit asked), or -errno for a device
 * error. *last_ns is when the leader last had work: it spins until
 * spin_ns after it.
 */
static int read_request(struct lpool *lp, struct fuse_buf *fb, int64_t *last_ns)
{
	for (;;) {
		int res;

		if (fuse_session_exited(lp->se))
			return 0;
		res = fuse_session_receive_buf(lp->se, fb);
		if (res > 0) {
			*last_ns = mono_ns();
			if (lp->stamp)
				__atomic_store_n(lp->stamp, *last_ns, __ATOMIC_RELAXED);
			return res;
		}
		if (res == 0)
			return 0;   /* libfuse saw ENODEV (unmounted) or exit */
		if (res == -EINTR)
			continue;   /* also ENOENT: an interrupted request */
		if (res != -EAGAIN)
			return res;
		if (mono_ns() - *last_ns < lp->spin_ns)
			continue;
		{
			struct pollfd p = { .fd = lp->fd, .events = POLLIN };

			if (poll(&p, 1, LOOP_POLL_MS) < 0 && errno != EINTR)
				return -errno;
			/* spin again after the next request, not after a
			 * wake-up that brought nothing */
			*last_ns = mono_ns() - lp->spin_ns;
		}
	}
}

static void *worker_main(void *arg);

/* Another thread takes the leader role: an idle one, else a new one.
 * Caller holds lp->lock and has just given the role up. */
static void hand_off(struct lpool *lp)
{
	pthread_t t;
	pthread_attr_t attr;
	int rc;

	if (lp->n_idle) {
		pthread_cond_signal(&lp->turn);
		return;
	}
	if (lp->n_threads >= lp->max_threads)
		return;     /* the first thread to finish leads */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, worker_main, lp);
	pthread_attr_destroy(&attr);
	if (rc == 0) {
		lp->n_threads++;
	} else if (!lp->spawn_failed_logged) {
		lp->spawn_failed_logged = true;
		log_warn("request loop: cannot start a thread (%s); %u answer requests",
			 strerror(rc), lp->n_threads);
	}
}

/* A thread of the pool: leads while requests are quick, answers a handed
 * off one, then waits to lead again. One that may retire ends when enough
 * others are idle already (the first thread, loop_run's, never does). */
static void worker_loop(struct lpool *lp, bool may_retire)
{
	struct fuse_buf fb = { 0 };
	int64_t last = 0;

	pthread_mutex_lock(&lp->lock);
	for (;;) {
		while (lp->has_leader && !lp->exiting) {
			if (may_retire && lp->n_idle >= lp->max_idle)
				goto out;   /* enough threads wait already */
			lp->n_idle++;
			pthread_cond_wait(&lp->turn, &lp->lock);
			lp->n_idle--;
		}
		if (lp->exiting)
			break;
		lp->has_leader = true;
		pthread_mutex_unlock(&lp->lock);

		for (;;) {
			int res = read_request(lp, &fb, &last);

			if (res <= 0) {
				pthread_mutex_lock(&lp->lock);
				lp->has_leader = false;
				lp->exiting = true;
				if (res < 0 && !lp->err)
					lp->err = res;
				pthread_cond_broadcast(&lp->turn);
				break;
			}
			if (request_inline(&fb)) {
				tl_leading = lp;
				fuse_session_process_buf(lp->se, &fb);
				if (tl_leading) {
					tl_leading = NULL;
					continue;
				}
				/* it gave the role up to wait: done leading */
				pthread_mutex_lock(&lp->lock);
				break;
			}
			pthread_mutex_lock(&lp->lock);
			lp->has_leader = false;
			hand_off(lp);
			pthread_mutex_unlock(&lp->lock);
			fuse_session_process_buf(lp->se, &fb);
			pthread_mutex_lock(&lp->lock);
			break;
		}
	}
out:
	/* Our buffer goes before the count drops: at 0 loop_run returns
	 * and the process may exit. */
	free(fb.mem);
	lp->n_threads--;
	pthread_cond_broadcast(&lp->gone);
	pthread_mutex_unlock(&lp->lock);
}

void loop_may_block(void)
{
	struct lpool *lp = tl_leading;

	if (!lp)
		return;
	tl_leading = NULL;
	pthread_mutex_lock(&lp->lock);
	lp->has_leader = false;
	hand_off(lp);
	pthread_mutex_unlock(&lp->lock);
}

static void *worker_main(void *arg)
{
	thread_name("fs-fuse");
	worker_loop(arg, true);
	return NULL;
}

int loop_run(struct fuse_session *se, const struct loop_opts *opts)
{
	struct lpool lp = { 0 };
	int fl;

	lp.se = se;
	lp.fd = fuse_session_fd(se);
	lp.spin_ns = (int64_t)opts->spin_us * 1000;
	lp.stamp = opts->last_request_ns;
	lp.max_threads = opts->max_threads ? opts->max_threads : 16;
	lp.max_idle = opts->max_idle ? opts->max_idle : 8;
	fl = fcntl(lp.fd, F_GETFL);
	if (fl < 0 || fcntl(lp.fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	pthread_mutex_init(&lp.lock, NULL);
	pthread_cond_init(&lp.turn, NULL);
	pthread_cond_init(&lp.gone, NULL);
	/* This thread is the first of the pool; the pool lives on its stack,
	 * so wait for every other thread before returning. */
	lp.n_threads = 1;
	worker_loop(&lp, false);
	pthread_mutex_lock(&lp.lock);
	lp.exiting = true;
	pthread_cond_broadcast(&lp.turn);
	while (lp.n_threads)
		pthread_cond_wait(&lp.gone, &lp.lock);
	pthread_mutex_unlock(&lp.lock);
	pthread_cond_destroy(&lp.gone);
	pthread_cond_destroy(&lp.turn);
	pthread_mutex_destroy(&lp.lock);
	if (fcntl(lp.fd, F_SETFL, fl) < 0 && !lp.err)
		lp.err = -errno;
	return lp.err;
}
