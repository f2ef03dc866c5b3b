/*
 * fileio: whole writes at a given offset, for the block store's files and
 * packs. Short writes and EINTR are carried on, so a caller sees only "all
 * of it" or an error.
 */
#ifndef CAIRN_FILEIO_H
#define CAIRN_FILEIO_H

#include <stdint.h>
#include <sys/uio.h>

/* Write every byte of iov[0..cnt) at off. 0 or -errno (-EIO when the
 * filesystem takes nothing). iov is used up (changed) on the way. */
int fileio_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
	__attribute__((warn_unused_result));

#endif
