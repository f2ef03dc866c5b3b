/*
 * test_workpool: parallel loops run every index exactly once, with the
 * pool's threads really taking part, from several callers at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/workpool.h"

#define N 1000

struct counts {
	atomic_uint hits[N];
	pthread_t who[N];
};

static void count(void *arg, size_t i)
{
	struct counts *c = arg;

	atomic_fetch_add(&c->hits[i], 1);
	c->who[i] = pthread_self();
}

static void every_index_runs_once(struct workpool *wp)
{
	struct counts *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	workpool_run(wp, N, count, c);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(atomic_load(&c->hits[i]), 1);
	free(c);
}

static void a_pool_without_threads_runs_the_loop_in_the_caller(void **state)
{
	struct workpool *wp;
	struct counts *c = calloc(1, sizeof(*c));

	(void)state;
	assert_int_equal(workpool_new(0, &wp), 0);
	workpool_run(wp, N, count, c);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&c->hits[i]), 1);
		assert_true(pthread_equal(c->who[i], pthread_self()));
	}
	workpool_run(wp, 0, count, c);     /* nothing to do: no call */
	for (size_t i = 0; i < N; i++)
		assert_int_equal(atomic_load(&c->hits[i]), 1);
	workpool_free(wp);
	free(c);
}

/* Each index waits (up to 5 s) until three runners have arrived: with the
 * caller and two pool threads all three wait together and pass at once; a
 * pool that did not help would leave the waits to time out one runner at a
 * time, and `together` short of 3. */
struct rendezvous {
	atomic_uint arrived;
	atomic_uint together;
};

static void meet(void *arg, size_t i)
{
	struct rendezvous *r = arg;
	struct timespec ts = { 0, 1000000 };

	(void)i;
	atomic_fetch_add(&r->arrived, 1);
	for (int t = 0; t < 5000 && atomic_load(&r->arrived) < 3; t++)
		nanosleep(&ts, NULL);
	if (atomic_load(&r->arrived) >= 3)
		atomic_fetch_add(&r->together, 1);
}

static void pool_threads_take_part(void **state)
{
	struct workpool *wp;
	struct rendezvous r = { 0 };

	(void)state;
	assert_int_equal(workpool_new(2, &wp), 0);
	workpool_run(wp, 3, meet, &r);
	assert_int_equal(atomic_load(&r.together), 3);
	every_index_runs_once(wp);
	workpool_free(wp);
}

static void *caller_main(void *arg)
{
	every_index_runs_once(arg);
	every_index_runs_once(arg);
	return NULL;
}

static void several_callers_at_once_each_get_their_loop_done(void **state)
{
	struct workpool *wp;
	pthread_t t[4];

	(void)state;
	assert_int_equal(workpool_new(3, &wp), 0);
	for (int k = 0; k < 4; k++)
		assert_int_equal(pthread_create(&t[k], NULL, caller_main, wp), 0);
	caller_main(wp);
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	workpool_free(wp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_pool_without_threads_runs_the_loop_in_the_caller),
		cmocka_unit_test(pool_threads_take_part),
		cmocka_unit_test(several_callers_at_once_each_get_their_loop_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
