/*
 * monotime: CLOCK_MONOTONIC readings for timeouts and pacing, and the
 * absolute timespec a pthread_cond_timedwait on a monotonic condition
 * variable wants. Header only: each is a vDSO call and some arithmetic.
 */
#ifndef CAIRN_MONOTIME_H
#define CAIRN_MONOTIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

/* Monotonic time at_ms (as mono_ms gives it) as a timespec. */
static inline struct timespec mono_timespec_ms(int64_t at_ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(at_ms / 1000);
	ts.tv_nsec = (long)(at_ms % 1000) * 1000000;
	return ts;
}

#endif
