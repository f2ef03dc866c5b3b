/*
 * testrng: a seeded splitmix64 for unit tests' bytes and choices. A test
 * sets rng_state from its printed seed (CAIRNFS_TEST_SEED) so that a
 * failure replays. Not for anything that needs unpredictable numbers.
 */
#ifndef CAIRN_TESTRNG_H
#define CAIRN_TESTRNG_H

#include <stddef.h>
#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void fill(void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng();
}

#endif
