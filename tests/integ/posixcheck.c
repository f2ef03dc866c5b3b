/*
 * posixcheck: the POSIX surface of DESIGN.md with exact errno expectations
 * (T15), run against any directory: a cairnfs mount in the integration
 * tests, a local directory to prove the expectations themselves.
 *
 *   posixcheck DIR                 every case, one line each, exit 1 on failure
 *   posixcheck --diff SEED N A B   N random operations on A and on B side by
 *                                  side; results (return, errno, content) must
 *                                  agree (differential testing)
 *
 * Prints `FIGURE posix_cases_run=...` and `posix_cases_failed=...`.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int cases, failed;
static const char *root;
static char cur_case[128];

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("FAIL %s: %s:%d: ", cur_case, __FILE__, __LINE__); \
			printf(__VA_ARGS__);                                  \
			printf(" (errno %d %s)\n", errno, strerror(errno));   \
			return -1;                                            \
		}                                                             \
	} while (0)

/* Expect a call to fail with a given errno. */
#define EXPECT_ERR(call, err)                                                 \
	do {                                                                  \
		errno = 0;                                                    \
		long rv_ = (long)(call);                                      \
		if (rv_ != -1 || errno != (err)) {                            \
			printf("FAIL %s: %s:%d: %s returned %ld errno %d (%s), want %s\n", \
			       cur_case, __FILE__, __LINE__, #call, rv_, errno,  \
			       strerror(errno), #err);                         \
			return -1;                                            \
		}                                                             \
	} while (0)

#define EXPECT_OK(call)                                                       \
	do {                                                                  \
		errno = 0;                                                    \
		if ((long)(call) < 0) {                                       \
			printf("FAIL %s: %s:%d: %s failed: %s\n", cur_case,    \
			       __FILE__, __LINE__, #call, strerror(errno));    \
			return -1;                                            \
		}                                                             \
	} while (0)

static char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Paths under the case's scratch dir; a ring so several may be live. */
static char *P(const char *fmt, ...)
{
	static char ring[8][PATH_MAX];
	static int n;
	char *buf = ring[n++ % 8];
	int off = snprintf(buf, PATH_MAX, "%s/%s/", root, cur_case);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + off, PATH_MAX - off, fmt, ap);
	va_end(ap);
	return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, data, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static ssize_t read_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n, total = 0;

	if (fd < 0)
		return -1;
	while ((size_t)total < cap && (n = read(fd, (char *)buf + total, cap - total)) > 0)
		total += n;
	close(fd);
	return total;
}

static int case_create_and_errors(void)
{
	char name[300];
	struct stat st;
	int fd;

	fd = open(P("f"), O_CREAT | O_EXCL | O_WRONLY, 0640);
	CHECK(fd >= 0, "create");
	close(fd);
	EXPECT_ERR(open(P("f"), O_CREAT | O_EXCL | O_WRONLY, 0640), EEXIST);
	EXPECT_ERR(open(P("nope"), O_RDONLY), ENOENT);
	EXPECT_ERR(open(P("nodir/x"), O_CREAT | O_WRONLY, 0644), ENOENT);
	EXPECT_ERR(open(P("f/x"), O_CREAT | O_WRONLY, 0644), ENOTDIR);
	EXPECT_OK(stat(P("f"), &st));
	CHECK((st.st_mode & 07777) == 0640, "mode %o", st.st_mode);
	CHECK(S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size == 0, "attrs");
	memset(name, 'n', 255);
	name[255] = '\0';
	fd = open(P("%s", name), O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0, "255-byte name");
	close(fd);
	name[255] = 'n';
	name[256] = '\0';
	EXPECT_ERR(open(P("%s", name), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	EXPECT_ERR(mkdir(P("%s", name), 0755), ENAMETOOLONG);
	return 0;
}

static int case_dirs(void)
{
	struct stat st;

	EXPECT_OK(mkdir(P("d"), 0755));
	EXPECT_ERR(mkdir(P("d"), 0755), EEXIST);
	EXPECT_OK(mkdir(P("d/sub"), 0700));
	EXPECT_OK(stat(P("d"), &st));
	CHECK(S_ISDIR(st.st_mode) && st.st_nlink == 3, "dir nlink %lu", (unsigned long)st.st_nlink);
	EXPECT_ERR(rmdir(P("d")), ENOTEMPTY);
	EXPECT_OK(write_file(P("file"), "x", 1));
	EXPECT_ERR(rmdir(P("file")), ENOTDIR);
	EXPECT_ERR(unlink(P("d")), EISDIR);
	EXPECT_ERR(rmdir(P("nope")), ENOENT);
	EXPECT_OK(rmdir(P("d/sub")));
	EXPECT_OK(rmdir(P("d")));
	EXPECT_ERR(stat(P("d"), &st), ENOENT);
	return 0;
}

static int case_rename(void)
{
	char buf[16];
	struct stat a, b;

	EXPECT_OK(write_file(P("a"), "AAAA", 4));
	EXPECT_OK(write_file(P("b"), "BB", 2));
	EXPECT_OK(stat(P("a"), &a));
	EXPECT_OK(rename(P("a"), P("b")));       /* over an existing file */
	EXPECT_ERR(stat(P("a"), &b), ENOENT);
	EXPECT_OK(stat(P("b"), &b));
	CHECK(a.st_ino == b.st_ino && b.st_size == 4, "rename over: inode kept");
	CHECK(read_file(P("b"), buf, sizeof(buf)) == 4 && !memcmp(buf, "AAAA", 4), "content");

	EXPECT_OK(write_file(P("c"), "C", 1));
	EXPECT_ERR(renameat2(AT_FDCWD, P("c"), AT_FDCWD, P("b"), RENAME_NOREPLACE), EEXIST);
	EXPECT_OK(renameat2(AT_FDCWD, P("c"), AT_FDCWD, P("b"), RENAME_EXCHANGE));
	CHECK(read_file(P("b"), buf, sizeof(buf)) == 1 && buf[0] == 'C', "exchanged b");
	CHECK(read_file(P("c"), buf, sizeof(buf)) == 4 && buf[0] == 'A', "exchanged c");

	EXPECT_OK(mkdir(P("d1"), 0755));
	EXPECT_OK(mkdir(P("d2"), 0755));
	EXPECT_OK(write_file(P("d2/x"), "x", 1));
	EXPECT_ERR(rename(P("d1"), P("d2")), ENOTEMPTY);
	EXPECT_ERR(rename(P("d1"), P("b")), ENOTDIR);
	EXPECT_ERR(rename(P("b"), P("d1")), EISDIR);
	EXPECT_ERR(rename(P("d1"), P("d1/inside")), EINVAL);
	EXPECT_OK(unlink(P("d2/x")));
	EXPECT_OK(rename(P("d1"), P("d2")));     /* over an empty dir */
	EXPECT_ERR(stat(P("d1"), &a), ENOENT);
	EXPECT_OK(mkdir(P("d3"), 0755));
	EXPECT_OK(rename(P("d2"), P("d3/moved")));
	EXPECT_OK(stat(P("d3"), &a));
	CHECK(a.st_nlink == 3, "parent nlink after dir move in: %lu", (unsigned long)a.st_nlink);
	EXPECT_ERR(rename(P("nope"), P("x")), ENOENT);
	return 0;
}

static int case_links(void)
{
	struct stat st;
	char target[64];
	ssize_t n;

	EXPECT_OK(write_file(P("f"), "hello", 5));
	EXPECT_OK(link(P("f"), P("g")));
	EXPECT_OK(link(P("f"), P("h")));
	EXPECT_OK(stat(P("g"), &st));
	CHECK(st.st_nlink == 3, "nlink %lu", (unsigned long)st.st_nlink);
	EXPECT_ERR(link(P("f"), P("g")), EEXIST);
	EXPECT_OK(mkdir(P("dir"), 0755));
	EXPECT_ERR(link(P("dir"), P("dirlink")), EPERM);
	EXPECT_OK(unlink(P("f")));
	EXPECT_OK(stat(P("h"), &st));
	CHECK(st.st_nlink == 2 && st.st_size == 5, "after unlink nlink %lu", (unsigned long)st.st_nlink);

	EXPECT_OK(symlink("h", P("s")));
	EXPECT_OK(lstat(P("s"), &st));
	CHECK(S_ISLNK(st.st_mode) && st.st_size == 1, "symlink lstat");
	n = readlink(P("s"), target, sizeof(target));
	CHECK(n == 1 && target[0] == 'h', "readlink");
	EXPECT_OK(stat(P("s"), &st));
	CHECK(S_ISREG(st.st_mode) && st.st_size == 5, "follow");
	EXPECT_ERR(symlink("x", P("s")), EEXIST);
	EXPECT_ERR(readlink(P("h"), target, sizeof(target)), EINVAL);
	EXPECT_OK(symlink("dangling", P("dl")));
	EXPECT_ERR(stat(P("dl"), &st), ENOENT);
	return 0;
}

static int case_attrs(void)
{
	struct timespec ts[2] = { { 1000000000, 123456789 }, { 1500000000, 987654321 } };
	struct stat st;

	EXPECT_OK(write_file(P("f"), "x", 1));
	EXPECT_OK(chmod(P("f"), 0604));
	EXPECT_OK(chown(P("f"), 1234, 5678));
	EXPECT_OK(utimensat(AT_FDCWD, P("f"), ts, 0));
	EXPECT_OK(stat(P("f"), &st));
	CHECK((st.st_mode & 07777) == 0604, "chmod %o", st.st_mode);
	CHECK(st.st_uid == 1234 && st.st_gid == 5678, "chown");
	CHECK(st.st_atim.tv_sec == ts[0].tv_sec && st.st_atim.tv_nsec == ts[0].tv_nsec, "atime ns");
	CHECK(st.st_mtim.tv_sec == ts[1].tv_sec && st.st_mtim.tv_nsec == ts[1].tv_nsec, "mtime ns");
	EXPECT_ERR(chmod(P("nope"), 0600), ENOENT);
	return 0;
}

static int case_truncate_and_holes(void)
{
	char buf[8192];
	struct stat st;
	int fd;

	EXPECT_OK(write_file(P("f"), "0123456789", 10));
	EXPECT_OK(truncate(P("f"), 4));
	CHECK(read_file(P("f"), buf, sizeof(buf)) == 4 && !memcmp(buf, "0123", 4), "truncate down");
	EXPECT_OK(truncate(P("f"), 6000));
	CHECK(read_file(P("f"), buf, sizeof(buf)) == 6000, "truncate up size");
	for (int i = 4; i < 6000; i++)
		CHECK(buf[i] == 0, "zeros after truncate up at %d", i);

	fd = open(P("sparse"), O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0, "open sparse");
	CHECK(pwrite(fd, "end", 3, (off_t)1 << 30) == 3, "pwrite at 1 GiB");
	CHECK(pwrite(fd, "beg", 3, 0) == 3, "pwrite at 0");
	EXPECT_OK(fsync(fd));
	close(fd);
	EXPECT_OK(stat(P("sparse"), &st));
	CHECK(st.st_size == ((off_t)1 << 30) + 3, "sparse size");
	CHECK(st.st_blocks * 512 < 64 * 1024 * 1024, "sparse file uses %lld bytes",
	      (long long)st.st_blocks * 512);
	fd = open(P("sparse"), O_RDONLY);
	CHECK(fd >= 0, "reopen");
	memset(buf, 1, sizeof(buf));
	CHECK(pread(fd, buf, 4096, 512 << 20) == 4096, "read hole");
	close(fd);
	for (int i = 0; i < 4096; i++)
		CHECK(buf[i] == 0, "hole reads zero at %d", i);
	return 0;
}

static int case_append_and_fsync(void)
{
	char buf[16];
	int fd;

	EXPECT_OK(write_file(P("f"), "abc", 3));
	fd = open(P("f"), O_WRONLY | O_APPEND);
	CHECK(fd >= 0, "open append");
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "seek");
	CHECK(write(fd, "def", 3) == 3, "append write");
	EXPECT_OK(fsync(fd));
	EXPECT_OK(fdatasync(fd));
	close(fd);
	CHECK(read_file(P("f"), buf, sizeof(buf)) == 6 && !memcmp(buf, "abcdef", 6), "appended");
	return 0;
}

static int case_xattrs(void)
{
	char val[64], list[256];
	ssize_t n;

	EXPECT_OK(write_file(P("f"), "x", 1));
	EXPECT_OK(setxattr(P("f"), "user.one", "1", 1, 0));
	EXPECT_OK(setxattr(P("f"), "user.two", "22", 2, 0));
	EXPECT_ERR(setxattr(P("f"), "user.one", "x", 1, XATTR_CREATE), EEXIST);
	EXPECT_ERR(setxattr(P("f"), "user.none", "x", 1, XATTR_REPLACE), ENODATA);
	n = getxattr(P("f"), "user.two", val, sizeof(val));
	CHECK(n == 2 && !memcmp(val, "22", 2), "getxattr");
	EXPECT_ERR(getxattr(P("f"), "user.two", val, 1), ERANGE);
	CHECK(getxattr(P("f"), "user.two", NULL, 0) == 2, "size query");
	n = listxattr(P("f"), list, sizeof(list));
	CHECK(n == (ssize_t)sizeof("user.one") + (ssize_t)sizeof("user.two"), "listxattr %zd", n);
	EXPECT_OK(removexattr(P("f"), "user.one"));
	EXPECT_ERR(getxattr(P("f"), "user.one", val, sizeof(val)), ENODATA);
	EXPECT_ERR(removexattr(P("f"), "user.one"), ENODATA);
	return 0;
}

static int case_locks(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	int fd, status;
	pid_t pid;

	EXPECT_OK(write_file(P("f"), "x", 1));
	fd = open(P("f"), O_RDWR);
	CHECK(fd >= 0, "open");
	EXPECT_OK(flock(fd, LOCK_EX));
	EXPECT_OK(fcntl(fd, F_SETLK, &fl));
	pid = fork();
	if (pid == 0) {
		int fd2 = open(P("f"), O_RDWR);
		struct flock f2 = fl;

		/* Another open file description sees both locks. */
		if (flock(fd2, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(1);
		if (fcntl(fd2, F_SETLK, &f2) == 0 || (errno != EAGAIN && errno != EACCES))
			_exit(2);
		f2.l_start = 200;           /* a range nobody holds */
		if (fcntl(fd2, F_SETLK, &f2) != 0)
			_exit(3);
		_exit(0);
	}
	CHECK(pid > 0, "fork");
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw locks wrong: %d",
	      WEXITSTATUS(status));
	close(fd);
	return 0;
}

static int case_mmap(void)
{
	char buf[8192], *map;
	int fd;

	memset(buf, 'a', sizeof(buf));
	EXPECT_OK(write_file(P("f"), buf, sizeof(buf)));
	fd = open(P("f"), O_RDWR);
	CHECK(fd >= 0, "open");
	map = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED, "mmap shared writable");
	memcpy(map + 4000, "MAPPED", 6);
	EXPECT_OK(msync(map, sizeof(buf), MS_SYNC));
	munmap(map, sizeof(buf));
	close(fd);
	CHECK(read_file(P("f"), buf, sizeof(buf)) == 8192, "read back");
	CHECK(!memcmp(buf + 4000, "MAPPED", 6) && buf[3999] == 'a', "mmap write visible");
	return 0;
}

static int case_big_directory(void)
{
	const int n = 10000;
	struct dirent *de;
	int seen = 0, fd;
	DIR *d;

	EXPECT_OK(mkdir(P("big"), 0755));
	for (int i = 0; i < n; i++) {
		fd = open(P("big/entry-%05d", i), O_CREAT | O_WRONLY, 0644);
		CHECK(fd >= 0, "create %d", i);
		close(fd);
	}
	d = opendir(P("big"));
	CHECK(d != NULL, "opendir");
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			seen++;
	closedir(d);
	CHECK(seen == n, "readdir saw %d of %d", seen, n);
	return 0;
}

static int case_statfs(void)
{
	struct statvfs sv;

	EXPECT_OK(statvfs(P("."), &sv));
	CHECK(sv.f_bsize > 0 && sv.f_blocks > 0, "statfs reports capacity");
	CHECK(sv.f_bavail <= sv.f_blocks, "available <= total");
	CHECK(sv.f_namemax >= 255, "namemax %lu", sv.f_namemax);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} all_cases[] = {
	{ "create_and_errors", case_create_and_errors },
	{ "dirs", case_dirs },
	{ "rename", case_rename },
	{ "links", case_links },
	{ "attrs", case_attrs },
	{ "truncate_and_holes", case_truncate_and_holes },
	{ "append_and_fsync", case_append_and_fsync },
	{ "xattrs", case_xattrs },
	{ "locks", case_locks },
	{ "mmap", case_mmap },
	{ "big_directory", case_big_directory },
	{ "statfs", case_statfs },
};

/* --- differential mode --------------------------------------------------- */

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One random operation on base dir; result folded into a string. */
static void diff_op(const char *base, uint64_t r, char *out, size_t cap)
{
	char a[PATH_MAX], b[PATH_MAX], buf[4096];
	const char *names[] = { "a", "b", "c", "d/a", "d/b", "d", "e" };
	int op = (int)(r % 10), fd;
	long rv = 0;
	size_t len = 0;

	snprintf(a, sizeof(a), "%s/%s", base, names[(r >> 8) % 7]);
	snprintf(b, sizeof(b), "%s/%s", base, names[(r >> 16) % 7]);
	errno = 0;
	switch (op) {
	case 0:
		fd = open(a, O_CREAT | O_WRONLY, 0644);
		rv = fd;
		if (fd >= 0) {
			memset(buf, (int)(r >> 24), sizeof(buf));
			len = (r >> 32) % sizeof(buf);
			rv = pwrite(fd, buf, len, (off_t)((r >> 44) % 20000));
			close(fd);
		}
		break;
	case 1: rv = mkdir(a, 0755); break;
	case 2: rv = unlink(a); break;
	case 3: rv = rmdir(a); break;
	case 4: rv = rename(a, b); break;
	case 5: rv = link(a, b); break;
	case 6: rv = truncate(a, (off_t)((r >> 24) % 30000)); break;
	case 7: {
		struct stat st;

		rv = stat(a, &st);
		/* A directory's st_size is the filesystem's own business
		 * (4096 on ext4, 0 on tmpfs and here): compare only files'. */
		if (!rv)
			rv = (S_ISDIR(st.st_mode) ? 1 : (long)st.st_size * 10) +
			     (long)st.st_nlink * 1000000;
		break;
	}
	case 8:
		rv = read_file(a, buf, sizeof(buf));
		if (rv > 0) {
			uint64_t h = 1469598103934665603ull;

			for (long i = 0; i < rv; i++)
				h = (h ^ (uint8_t)buf[i]) * 1099511628211ull;
			rv = (long)(h & 0x7fffffff);
		}
		break;
	case 9: rv = renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE); break;
	}
	snprintf(out, cap, "op%d %s %s -> %ld errno %d", op, names[(r >> 8) % 7],
		 names[(r >> 16) % 7], rv < 0 ? -1 : rv, rv < 0 ? errno : 0);
}

static int run_diff(uint64_t seed, long n, const char *a, const char *b)
{
	char ra[512], rb[512];
	long bad = 0;

	rng = seed ? seed : 1;
	for (long i = 0; i < n; i++) {
		uint64_t r = rnd();

		diff_op(a, r, ra, sizeof(ra));
		diff_op(b, r, rb, sizeof(rb));
		if (strcmp(ra, rb)) {
			printf("DIFF at op %ld (seed %llu): %s | %s\n", i,
			       (unsigned long long)seed, ra, rb);
			if (++bad > 10)
				break;
		}
	}
	printf("FIGURE posix_diff_ops=%ld unit=ops\n", n);
	printf("FIGURE posix_diff_mismatches=%ld unit=ops\n", bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *only = getenv("POSIXCHECK_ONLY");

	if (argc == 6 && !strcmp(argv[1], "--diff"))
		return run_diff(strtoull(argv[2], NULL, 10), atol(argv[3]), argv[4], argv[5]);
	if (argc != 2) {
		fprintf(stderr, "usage: posixcheck DIR | posixcheck --diff SEED N DIR_A DIR_B\n");
		return 2;
	}
	root = argv[1];
	for (size_t i = 0; i < sizeof(all_cases) / sizeof(all_cases[0]); i++) {
		char dir[PATH_MAX];

		if (only && strcmp(only, all_cases[i].name))
			continue;
		snprintf(cur_case, sizeof(cur_case), "%s", all_cases[i].name);
		snprintf(dir, sizeof(dir), "%s/%s", root, cur_case);
		cases++;
		if (mkdir(dir, 0755) < 0) {
			printf("FAIL %s: mkdir %s: %s\n", cur_case, dir, strerror(errno));
			failed++;
			continue;
		}
		if (all_cases[i].fn() < 0)
			failed++;
		else
			printf("ok   %s\n", cur_case);
	}
	printf("FIGURE posix_cases_run=%d unit=cases\n", cases);
	printf("FIGURE posix_cases_failed=%d unit=cases\n", failed);
	return failed ? 1 : 0;
}
