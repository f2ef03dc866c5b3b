/*
 * tcpbench: the plain TCP loopback baseline for bench_cluster.sh.
 *
 * Sends BYTES over one TCP connection on 127.0.0.1 in writes of BLOCK bytes
 * to a receiver thread that reads and discards them, and reports the rate
 * from the first write until the receiver acknowledges the last byte. No
 * framing, no crypto, no disk: the ceiling the cluster's figures are
 * compared with in the same run.
 *
 * usage: tcpbench BYTES [BLOCK]     prints "TCP <MB/s> MB/s <bytes> bytes <s> s"
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct rx {
	int lfd;
	size_t block;
	unsigned long long got;
	int err;
};

static void *rx_main(void *arg)
{
	struct rx *r = arg;
	char *buf = malloc(r->block);
	int fd = accept(r->lfd, NULL, NULL);
	char ack = 1;

	if (fd < 0 || !buf) {
		r->err = fd < 0 ? errno : ENOMEM;
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf, r->block);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->err = n < 0 ? errno : 0;
			break;
		}
		r->got += (unsigned long long)n;
	}
	if (write(fd, &ack, 1) != 1)
		r->err = errno;
	close(fd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	unsigned long long total, sent = 0;
	struct rx r = { .block = 256 * 1024 };
	pthread_t th;
	char *buf, ack;
	double t0, el;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: tcpbench BYTES [BLOCK]\n");
		return 2;
	}
	total = strtoull(argv[1], NULL, 10);
	if (argc == 3)
		r.block = strtoul(argv[2], NULL, 10);
	if (!total || !r.block) {
		fprintf(stderr, "tcpbench: BYTES and BLOCK must be positive\n");
		return 2;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r.lfd < 0 || bind(r.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(r.lfd, 1) < 0 ||
	    getsockname(r.lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("tcpbench: listen");
		return 1;
	}
	if (pthread_create(&th, NULL, rx_main, &r)) {
		fprintf(stderr, "tcpbench: cannot start the receiver\n");
		return 1;
	}
	buf = calloc(1, r.block);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("tcpbench: connect");
		return 1;
	}
	for (size_t i = 0; i < r.block; i++)
		buf[i] = (char)(i * 2654435761u >> 24);
	t0 = now_s();
	while (sent < total) {
		size_t want = total - sent < r.block ? (size_t)(total - sent) : r.block;
		ssize_t n = write(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("tcpbench: write");
			return 1;
		}
		sent += (unsigned long long)n;
	}
	shutdown(fd, SHUT_WR);
	if (read(fd, &ack, 1) != 1) {
		fprintf(stderr, "tcpbench: no acknowledgement\n");
		return 1;
	}
	el = now_s() - t0;
	pthread_join(th, NULL);
	if (r.err || r.got != total) {
		fprintf(stderr, "tcpbench: receiver got %llu of %llu bytes (%s)\n",
			r.got, total, strerror(r.err));
		return 1;
	}
	printf("TCP %.1f MB/s %llu bytes %.4f s\n", (double)total / el / 1e6, total, el);
	close(fd);
	close(r.lfd);
	free(buf);
	return 0;
}
