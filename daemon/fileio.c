/*
 * fileio: whole writes at a given offset (fileio.h).
 */
#include "config.h"

#include "daemon/fileio.h"

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

int fileio_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	for (;;) {
		ssize_t n;

		while (cnt && iov->iov_len == 0) {   /* nothing left in it */
			iov++;
			cnt--;
		}
		if (!cnt)
			return 0;
		n = pwritev(fd, iov, cnt, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		off += (uint64_t)n;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
}
