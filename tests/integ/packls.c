/*
 * packls: where each block lies in cairnd's pack files, for tests that
 * damage or inspect blocks on disk (tests/integ/t-fs-faults.sh). Every
 * block is a record in some DATA/packs/NNNNNNNN.pack (daemon/pack.h), so
 * a block's bytes can no longer be found by a file name.
 *
 *   packls DATADIR...
 *
 * Prints one line per block record (tombstones are left out) in
 * DATADIR/packs/NAME.pack of each DATADIR, packs in name order:
 *
 *   ADDRESS PACK OFFSET LENGTH
 *
 * ADDRESS is the block address in 64 lowercase hex digits, PACK the pack
 * file's path, OFFSET the byte offset of the block's bytes in that file
 * (past the record header) and LENGTH their count. A record is listed
 * whenever its header checks, even when its bytes no longer match their
 * checksum or a later tombstone killed it: the tool says where a block's
 * bytes are on disk, not whether the store would serve them. Records
 * whose bytes fail their checksum, and bytes the parser passed over, are
 * counted on stderr.
 *
 * Each pack is read whole into memory and walked with pack_parse
 * (daemon/pack.c), the parser the store itself uses, so the offsets are
 * the store's. Read-only, and usable beside a running cairnd: a pack
 * compacted away between listing and opening it is skipped (its live
 * records were copied to a newer pack first), and a pack made but not yet
 * given its header holds no record.
 *
 * Exit status: 0 when every data dir and pack was read; 1 when one could
 * not be, or a file named NAME.pack is not a pack (the rest is still
 * listed), or stdout could not be written; 2 on a usage error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/pack.h"

static int print_block(void *arg, const struct pack_rec *r, bool verified)
{
	const char *path = arg;

	(void)verified;         /* listed either way: see the top of the file */
	if (r->type != PACK_BLOCK)
		return 0;
	for (int i = 0; i < PACK_ADDR_BYTES; i++)
		printf("%02x", r->addr[i]);
	printf(" %s %" PRIu64 " %" PRIu32 "\n", path,
	       r->off + PACK_REC_HEADER, r->len);
	return 0;
}

/* Read fd to its end, at most cap bytes, into buf; the count read, or -1
 * with errno set. */
static ssize_t read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;          /* shorter than fstat said: list what is there */
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* List the block records of one pack file; 0, or 1 after an error that
 * was reported. */
static int list_pack(const char *path)
{
	struct pack_scan scan;
	struct stat sb;
	uint8_t *buf;
	ssize_t got;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;       /* compacted away since the listing */
		fprintf(stderr, "packls: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (fstat(fd, &sb) < 0) {
		fprintf(stderr, "packls: cannot stat %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "packls: %s is not a regular file\n", path);
		close(fd);
		return 1;
	}
	/* The store makes a pack file, then writes its header; it drops one
	 * left without a header at start (packstore.c, scan_pack). */
	if (sb.st_size < PACK_FILE_HEADER) {
		close(fd);
		return 0;
	}
	if ((uint64_t)sb.st_size > SIZE_MAX) {
		fprintf(stderr, "packls: %s: too large to read into memory (%jd bytes)\n",
			path, (intmax_t)sb.st_size);
		close(fd);
		return 1;
	}
	buf = malloc((size_t)sb.st_size);
	if (!buf) {
		fprintf(stderr, "packls: %s: out of memory for %jd bytes\n", path,
			(intmax_t)sb.st_size);
		close(fd);
		return 1;
	}
	got = read_all(fd, buf, (size_t)sb.st_size);
	if (got < 0) {
		fprintf(stderr, "packls: cannot read %s: %s\n", path, strerror(errno));
		free(buf);
		close(fd);
		return 1;
	}
	close(fd);

	err = pack_parse(buf, (size_t)got, print_block, (void *)path, &scan);
	free(buf);
	if (err == -EBADMSG) {
		fprintf(stderr, "packls: %s is not a pack file (bad file header)\n", path);
		return 1;
	}
	if (err) {      /* not so far: print_block never stops the walk */
		fprintf(stderr, "packls: %s: parse failed: %s\n", path, strerror(-err));
		return 1;
	}
	if (scan.bad_sum || scan.skipped)
		fprintf(stderr,
			"packls: %s: %" PRIu64 " records fail their checksum, "
			"%" PRIu64 " bytes passed over (damage or a torn tail)\n",
			path, scan.bad_sum, scan.skipped);
	return 0;
}

static int is_pack_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 5 && !strcmp(e->d_name + n - 5, ".pack");
}

/* List every pack of one data dir; 0, or 1 after an error that was
 * reported. */
static int list_data_dir(const char *datadir)
{
	struct dirent **names;
	char *dir;
	int n, rc = 0;

	if (asprintf(&dir, "%s/packs", datadir) < 0) {
		fprintf(stderr, "packls: out of memory\n");
		return 1;
	}
	/* Pack names are 8 hex digits of a growing id: name order is the
	 * order they were written in. */
	n = scandir(dir, &names, is_pack_name, alphasort);
	if (n < 0) {
		fprintf(stderr, "packls: cannot list %s: %s\n", dir, strerror(errno));
		free(dir);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char *path;

		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0) {
			fprintf(stderr, "packls: out of memory\n");
			rc = 1;
		} else {
			rc |= list_pack(path);
			free(path);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: packls DATADIR...\n"
				"  one line per block record in DATADIR/packs/*.pack:\n"
				"  ADDRESS PACK OFFSET LENGTH\n");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		rc |= list_data_dir(argv[i]);
	/* A listing cut short must not pass for a whole one. */
	if (fflush(stdout) != 0) {
		fprintf(stderr, "packls: cannot write the listing: %s\n", strerror(errno));
		return 1;
	}
	if (ferror(stdout)) {
		fprintf(stderr, "packls: cannot write the listing\n");
		return 1;
	}
	return rc;
}
