/*
 * threadname: name the calling thread, so that `top -H`, `ps -L`, perf
 * and gdb tell a process's threads apart (a FUSE worker from a flusher,
 * a disk worker from the committer). Linux keeps the first 15 bytes.
 * Best effort: a failure changes nothing else.
 */
#ifndef CAIRN_THREADNAME_H
#define CAIRN_THREADNAME_H

#include <sys/prctl.h>

static inline void thread_name(const char *name)
{
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
}

#endif
