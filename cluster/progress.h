/*
 * progress: a progress line for long transfers.
 *
 * On a terminal (stderr is a tty) it redraws one line on stderr at most ten
 * times a second: label, a bar when the total is known, bytes done, rate
 * and ETA. In JSON mode it writes a line {"event":"progress",...} to stdout
 * at most once a second instead, so scripts can follow a long put or get.
 * Otherwise it stays silent. Never changes what a command prints as its
 * result.
 *
 * Thread-safety: progress_add() may be called from any thread; the others
 * belong to the thread that owns the transfer.
 */
#ifndef CAIRN_PROGRESS_H
#define CAIRN_PROGRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *label;        /* borrowed until progress_finish() */
	uint64_t total;           /* 0: unknown */
	_Atomic uint64_t done;
	double start_s;
	double last_draw_s;       /* under lock */
	bool tty, json;
	bool drawn;               /* a line is on the terminal (under lock) */
	pthread_mutex_t lock;
};

/* Start: tty drawing only when stderr is a terminal and not quiet. */
void progress_init(struct progress *p, const char *label, uint64_t total,
		   bool json, bool quiet);
void progress_set_total(struct progress *p, uint64_t total);
/* Count n more bytes done; redraws when it is time. */
void progress_add(struct progress *p, uint64_t n);
/* Final draw and newline on the terminal; frees nothing the caller owns. */
void progress_finish(struct progress *p);
/* Seconds since progress_init(). */
double progress_elapsed(const struct progress *p);

/* Monotonic seconds. */
double progress_now(void);
/* "12.3 MiB" into buf. */
char *progress_fmt_bytes(double bytes, char *buf, size_t len);

#endif
