/*
 * alloc: malloc settings for the programs that move blocks (cairnd,
 * cairnctl, cairnfs).
 *
 * glibc serves every allocation over 128 KiB with a fresh mmap and returns
 * it with munmap on free, so each 256 KiB block buffer page-faults on all
 * of its 64 pages again, on every request. In a virtual machine that fault
 * path was the largest cost of a GET (perf: page faults under memmove and
 * read in cairnd and cairnctl); keeping block-sized buffers in the heap
 * took 256 KiB GETs from ~250 to ~650 MB/s on 3 daemons (bench_cluster).
 * The same holds for cairnfs's flush buffers (a span of up to ~13 MiB).
 * So buffers up to 32 MiB (glibc's largest setting) come from the heap,
 * and at most 16 MiB of freed memory is kept at an arena's top.
 */
#ifndef CAIRN_ALLOC_H
#define CAIRN_ALLOC_H

#include <malloc.h>

static inline void alloc_tune_for_blocks(void)
{
	/* fixed values also turn off glibc's own threshold adjustment */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

/*
 * At most n malloc arenas (glibc makes up to 8 per core, one per thread
 * that finds the others busy). Each arena keeps up to M_TRIM_THRESHOLD of
 * freed memory, so cairnfs's 16 FUSE threads and its flushers and
 * read-ahead workers held ~480 MiB resident after a cold 2 GiB read with a
 * 256 MiB block cache. With 2 arenas: 310 MiB after the read, 167 MiB
 * during the write (was ~220), and no loss of speed in the same runs (fio
 * 2 GiB on the quickstart mount, write 140/123 vs 129/126 MB/s, read
 * 441/354 vs 303/371). Call before any thread starts.
 */
static inline void alloc_limit_arenas(int n)
{
	mallopt(M_ARENA_MAX, n);
}

#endif
