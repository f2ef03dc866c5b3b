/*
 * overwriter: the same random sequence of writes on two files, so that a
 * file on the mount can be compared byte for byte with one on local disk.
 *
 *   overwriter SEED OPS MAXSIZE FILE_A FILE_B
 *
 * Each operation is one of: a write of 1 byte to 3 MiB at a random offset
 * below MAXSIZE (inside the data, across its end, or past it leaving a
 * hole), an append, a truncate (down or up), or an fsync. Writes land on
 * committed data, on data still buffered and on both at once, which is
 * what the write pipeline's merging of buffered and committed bytes has to
 * get right. Prints the operation count and the final size; exits 1 on any
 * failed call (with the call named).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_WRITE (3u << 20)

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: reproducible from the seed alone */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "overwriter: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void write_both(int fd[2], char *const path[2], const uint8_t *buf,
		       size_t len, off_t off)
{
	for (int i = 0; i < 2; i++) {
		size_t done = 0;

		while (done < len) {
			ssize_t n = pwrite(fd[i], buf + done, len - done,
					   off + (off_t)done);

			if (n < 0)
				die("pwrite", path[i]);
			done += (size_t)n;
		}
	}
}

int main(int argc, char **argv)
{
	char *path[2];
	uint8_t *buf;
	unsigned long ops, maxsize;
	int fd[2];
	off_t size = 0;

	if (argc != 6) {
		fprintf(stderr, "usage: overwriter SEED OPS MAXSIZE FILE_A FILE_B\n");
		return 2;
	}
	/* splitmix64 of the seed: nearby seeds give unrelated sequences */
	rng_state = strtoull(argv[1], NULL, 0) + 0x9E3779B97F4A7C15ull;
	rng_state = (rng_state ^ (rng_state >> 30)) * 0xBF58476D1CE4E5B9ull;
	rng_state = (rng_state ^ (rng_state >> 27)) * 0x94D049BB133111EBull;
	rng_state ^= rng_state >> 31;
	if (!rng_state)
		rng_state = 1;
	ops = strtoul(argv[2], NULL, 0);
	maxsize = strtoul(argv[3], NULL, 0);
	path[0] = argv[4];
	path[1] = argv[5];
	buf = malloc(MAX_WRITE);
	if (!buf || maxsize < 2 * MAX_WRITE) {
		fprintf(stderr, "overwriter: MAXSIZE must be at least %u\n", 2 * MAX_WRITE);
		return 2;
	}
	for (int i = 0; i < 2; i++) {
		fd[i] = open(path[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd[i] < 0)
			die("open", path[i]);
	}
	for (unsigned long op = 0; op < ops; op++) {
		uint64_t r = rng();
		unsigned kind = (unsigned)(r % 16);
		size_t len = 1 + (size_t)(rng() % MAX_WRITE);
		off_t off;

		if (kind < 9) {                   /* write anywhere */
			off = (off_t)(rng() % (maxsize - len));
		} else if (kind < 13) {           /* append */
			off = size;
			if ((uint64_t)off + len > maxsize)
				off = (off_t)(maxsize - len);
		} else if (kind < 14) {           /* truncate down or up */
			off_t to = (off_t)(rng() % maxsize);

			for (int i = 0; i < 2; i++)
				if (ftruncate(fd[i], to) < 0)
					die("ftruncate", path[i]);
			size = to;
			continue;
		} else {                          /* fsync the mount's file */
			if (fsync(fd[0]) < 0)
				die("fsync", path[0]);
			continue;
		}
		for (size_t i = 0; i < len; i += 8) {
			uint64_t v = rng();

			memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
		}
		/* every so often a run of zeros: the same bytes as a hole */
		if (r % 7 == 0)
			memset(buf, 0, len / 2);
		write_both(fd, path, buf, len, off);
		if (off + (off_t)len > size)
			size = off + (off_t)len;
	}
	for (int i = 0; i < 2; i++)
		if (fsync(fd[i]) < 0 || close(fd[i]) < 0)
			die("fsync/close", path[i]);
	free(buf);
	printf("overwriter: %lu operations, final size %lld\n", ops, (long long)size);
	return 0;
}
