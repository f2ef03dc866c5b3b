/*
 * crashwriter: the writer and the checker of the client-crash tests
 * (T02, T03).
 *
 *   crashwriter write DIR MANIFEST N   write N files of 4 KiB into DIR, each
 *                                      fsync'd, then its name appended to
 *                                      MANIFEST (on another filesystem) and
 *                                      that fsync'd: the manifest lists only
 *                                      files the filesystem said were durable
 *   crashwriter check DIR MANIFEST     every listed file present, 4 KiB and
 *                                      byte-identical; prints FIGURE lines
 *
 * The contents of file i are a function of i, so the checker needs nothing
 * but the name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_BYTES 4096

static void fill(uint8_t *buf, unsigned long i)
{
	uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;

	for (size_t k = 0; k < FILE_BYTES; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[k] = (uint8_t)x;
	}
}

static int do_write(const char *dir, const char *manifest, unsigned long n)
{
	uint8_t buf[FILE_BYTES];
	char path[4096], line[64];
	int mfd = open(manifest, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (mfd < 0) {
		perror(manifest);
		return 1;
	}
	for (unsigned long i = 0; i < n; i++) {
		int fd, len;

		snprintf(path, sizeof(path), "%s/f%06lu", dir, i);
		fill(buf, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    fsync(fd) < 0) {
			fprintf(stderr, "crashwriter: %s: %s\n", path, strerror(errno));
			return 1;
		}
		close(fd);
		len = snprintf(line, sizeof(line), "f%06lu\n", i);
		if (write(mfd, line, (size_t)len) != len || fdatasync(mfd) < 0) {
			perror(manifest);
			return 1;
		}
	}
	close(mfd);
	return 0;
}

static int do_check(const char *dir, const char *manifest)
{
	uint8_t want[FILE_BYTES], got[FILE_BYTES + 1];
	char path[4096], name[64];
	unsigned long listed = 0, bad = 0;
	FILE *m = fopen(manifest, "r");

	if (!m) {
		perror(manifest);
		return 1;
	}
	while (fscanf(m, "%63s", name) == 1) {
		unsigned long i = strtoul(name + 1, NULL, 10);
		ssize_t r;
		int fd;

		listed++;
		fill(want, i);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			printf("MISSING %s: %s\n", name, strerror(errno));
			bad++;
			continue;
		}
		r = read(fd, got, sizeof(got));
		close(fd);
		if (r != FILE_BYTES || memcmp(want, got, FILE_BYTES)) {
			printf("CORRUPT %s (%zd bytes)\n", name, r);
			bad++;
		}
	}
	fclose(m);
	printf("FIGURE crash_files_recorded_durable=%lu unit=files\n", listed);
	printf("FIGURE crash_files_lost_or_corrupt=%lu unit=files\n", bad);
	if (!listed) {
		printf("precondition failed: no file was recorded durable\n");
		return 1;
	}
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "write"))
		return do_write(argv[2], argv[3], strtoul(argv[4], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "check"))
		return do_check(argv[2], argv[3]);
	fprintf(stderr, "usage: crashwriter write DIR MANIFEST N | check DIR MANIFEST\n");
	return 2;
}
