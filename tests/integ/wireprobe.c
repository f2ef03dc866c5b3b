/*
 * wireprobe: a test client of cairnd that speaks the wire protocol both
 * properly and badly, for tests/integ/t-daemon-*.sh.
 *
 *   wireprobe ADDR SECRET_FILE MODE [ARGS]
 *
 * Each mode prints one line saying what it checked and exits 0 when the
 * daemon behaved as it must, 1 when not, 2 on a usage or local error.
 * Modes: normal, raw-header VERSION OPCODE FLAGS LEN, auth-header OPCODE LEN,
 * truncated, garbage N, silent MAX_S, idle MIN_S MAX_S, slowloris N MAX_S, wrong-secret,
 * replay, bitflip, unsupported, map-push KEYFILE EPOCH [badsig] [ADDR...]
 * (a map of this daemon and the ADDRs), map-epoch, put-many FROM TO FILE,
 * check-many FILE, delete-many FILE, status KEY, stale EPOCH, slow-frame MAX_S, noread MAX_S,
 * latency N (p99 of N PINGs in microseconds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cmap.h"
#include "cluster/log.h"
#include "cluster/proto.h"
#include "daemon/peer.h"

static const char *addr;
static uint8_t secret[HS_SECRET_BYTES];

static int load_hex(const char *path, uint8_t *out, size_t n)
{
	char buf[256] = "";
	size_t bin = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (sodium_hex2bin(out, n, buf, strlen(buf), NULL, &bin, NULL) || bin != n)
		return -EINVAL;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait until the daemon closes fd (read gives 0 or an error); returns the
 * seconds it took, or -1 after max_s. Answers that arrive are skipped. */
static double wait_closed(int fd, double max_s)
{
	double t0 = now_s();
	uint8_t buf[4096];

	while (now_s() - t0 < max_s) {
		struct pollfd p = { fd, POLLIN, 0 };
		int r = poll(&p, 1, 100);

		if (r > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return now_s() - t0;
		}
	}
	return -1;
}

static int dial(void)
{
	int fd = peer_dial(addr, 5000);

	if (fd < 0) {
		fprintf(stderr, "wireprobe: cannot connect to %s: %s\n", addr,
			log_strerror(fd));
		exit(2);
	}
	return fd;
}

static int open_auth(struct peer *p)
{
	int err = peer_open(addr, secret, 5000, p);

	if (err) {
		fprintf(stderr, "wireprobe: handshake with %s failed: %s\n", addr,
			log_strerror(err));
		exit(1);
	}
	return 0;
}

static int expect_closed(int fd, const char *what)
{
	double t = wait_closed(fd, 5);

	close(fd);
	if (t < 0) {
		printf("FAIL %s: connection still open after 5 s\n", what);
		return 1;
	}
	printf("ok %s: daemon closed the connection after %.3f s\n", what, t);
	return 0;
}

static int mode_normal(void)
{
	struct peer p;
	size_t len = 100000 + randombytes_uniform(100000), rl;
	uint8_t *blk = malloc(len), req[8 + 32], *resp = NULL, e[8] = { 0 };
	int err;

	open_auth(&p);
	randombytes_buf(blk, len);
	memset(req, 0, 8);
	crypto_generichash(req + 8, 32, blk, len, NULL, 0);
	err = peer_call(&p, PROTO_OP_PUT, req, sizeof(req), blk, len, &resp, &rl);
	if (err || rl != 1 || resp[0] != 1) {
		printf("FAIL normal: PUT: %s\n", log_strerror(err));
		return 1;
	}
	free(resp);
	err = peer_call(&p, PROTO_OP_PUT, req, sizeof(req), blk, len, &resp, &rl);
	if (err || rl != 1 || resp[0] != 0) {
		printf("FAIL normal: second PUT was not 'already held'\n");
		return 1;
	}
	free(resp);
	err = peer_call(&p, PROTO_OP_GET, req, sizeof(req), NULL, 0, &resp, &rl);
	if (err || rl != len || memcmp(resp, blk, len)) {
		printf("FAIL normal: GET returned other bytes (%s)\n",
		       log_strerror(err));
		return 1;
	}
	free(resp);
	/* HAS of the block and of an absent address */
	{
		uint8_t has[8 + 4 + 64] = { 0 };

		proto_put_u32(has + 8, 2);
		memcpy(has + 12, req + 8, 32);
		memset(has + 44, 0xee, 32);
		err = peer_call(&p, PROTO_OP_HAS, has, sizeof(has), NULL, 0, &resp,
				&rl);
		if (err || rl != 5 || proto_get_u32(resp) != 2 || resp[4] != 1) {
			printf("FAIL normal: HAS: %s\n", log_strerror(err));
			return 1;
		}
		free(resp);
	}
	/* LIST_SLOT of the block's slot finds it, with its size */
	{
		uint8_t ls[8 + 2 + 4 + 1 + 32] = { 0 };
		bool found = false;

		proto_put_u16(ls + 8, (uint16_t)slot_of_addr(req + 8));
		proto_put_u32(ls + 10, 100);
		err = peer_call(&p, PROTO_OP_LIST_SLOT, ls, sizeof(ls), NULL, 0,
				&resp, &rl);
		if (err || rl < 5) {
			printf("FAIL normal: LIST_SLOT: %s\n", log_strerror(err));
			return 1;
		}
		for (uint32_t i = 0; i < proto_get_u32(resp) &&
				     5 + (i + 1) * 36 <= rl; i++)
			found |= !memcmp(resp + 5 + i * 36, req + 8, 32) &&
				 proto_get_u32(resp + 5 + i * 36 + 32) == len;
		free(resp);
		if (!found) {
			printf("FAIL normal: LIST_SLOT does not show the block\n");
			return 1;
		}
	}
	err = peer_call(&p, PROTO_OP_PING, e, sizeof(e), NULL, 0, &resp, &rl);
	if (err || rl != 8) {
		printf("FAIL normal: PING: %s\n", log_strerror(err));
		return 1;
	}
	free(resp);
	err = peer_call(&p, PROTO_OP_DELETE, req, sizeof(req), NULL, 0, &resp, &rl);
	free(resp);
	if (err) {
		printf("FAIL normal: DELETE: %s\n", log_strerror(err));
		return 1;
	}
	err = peer_call(&p, PROTO_OP_GET, req, sizeof(req), NULL, 0, &resp, &rl);
	free(resp);
	if (err != -ENOENT) {
		printf("FAIL normal: GET after DELETE: %s\n", log_strerror(err));
		return 1;
	}
	printf("ok normal: handshake, PUT %zu bytes, PUT again (already held), "
	       "GET equal, HAS, LIST_SLOT, PING, DELETE, GET -> not found\n", len);
	peer_close(&p);
	free(blk);
	return 0;
}

/* A raw header before the handshake. */
static int mode_raw_header(int argc, char **argv)
{
	uint8_t h[PROTO_HEADER_BYTES] = { 0 };
	int fd;

	if (argc < 4)
		return 2;
	h[0] = (uint8_t)strtoul(argv[0], NULL, 0);
	h[1] = (uint8_t)strtoul(argv[1], NULL, 0);
	h[2] = (uint8_t)strtoul(argv[2], NULL, 0);
	proto_put_u32(h + 4, (uint32_t)strtoull(argv[3], NULL, 0));
	fd = dial();
	if (send(fd, h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		return 2;
	return expect_closed(fd, "raw header");
}

/* After the handshake: a tagged header declaring LEN, then nothing. */
static int mode_auth_header(int argc, char **argv)
{
	struct peer p;
	struct proto_header h = { .version = PROTO_VERSION, .request_id = 9 };
	uint8_t hb[PROTO_HEADER_BYTES];

	if (argc < 2)
		return 2;
	h.opcode = (uint8_t)strtoul(argv[0], NULL, 0);
	h.length = (uint32_t)strtoull(argv[1], NULL, 0);
	open_auth(&p);
	proto_encode_header(&h, hb);
	if (send(p.fd, hb, sizeof(hb), MSG_NOSIGNAL) != (ssize_t)sizeof(hb))
		return 2;
	return expect_closed(p.fd, "authenticated oversize header");
}

static int mode_truncated(void)
{
	uint8_t f[PROTO_HEADER_BYTES + 10] = { PROTO_VERSION, PROTO_OP_HELLO };
	int fd = dial();

	proto_put_u32(f + 4, 1 + HS_HELLO_BYTES);
	if (send(fd, f, sizeof(f), MSG_NOSIGNAL) != (ssize_t)sizeof(f))
		return 2;
	close(fd);
	/* header only, then close */
	fd = dial();
	if (send(fd, f, 8, MSG_NOSIGNAL) != 8)
		return 2;
	close(fd);
	printf("ok truncated: sent half a hello and half a header, then closed\n");
	return 0;
}

static int mode_garbage(int argc, char **argv)
{
	size_t n = argc ? strtoul(argv[0], NULL, 0) : 1000;
	uint8_t *b = malloc(n);
	int fd = dial();

	randombytes_buf(b, n);
	b[0] = PROTO_VERSION + 1 + (b[0] % 200);  /* never a valid start */
	(void)!send(fd, b, n, MSG_NOSIGNAL);
	free(b);
	return expect_closed(fd, "random garbage");
}

static int mode_silent(int argc, char **argv)
{
	double max = argc ? atof(argv[0]) : 5, t;
	int fd = dial();

	t = wait_closed(fd, max);
	close(fd);
	if (t < 0) {
		printf("FAIL silent: still open after %.1f s\n", max);
		return 1;
	}
	printf("ok silent: a connection that sent nothing was closed after "
	       "%.3f s\n", t);
	return 0;
}

/* An authenticated connection that then says nothing must be closed by
 * the daemon's idle timeout, and not before MIN_S. */
static int mode_idle(int argc, char **argv)
{
	double min = argc > 0 ? atof(argv[0]) : 0, max = argc > 1 ? atof(argv[1]) : 10, t;
	struct peer p;

	open_auth(&p);
	t = wait_closed(p.fd, max);
	close(p.fd);
	if (t < 0) {
		printf("FAIL idle: an idle authenticated connection still open after %.1f s\n", max);
		return 1;
	}
	if (t < min) {
		printf("FAIL idle: closed after %.3f s, before the idle timeout (%.1f s)\n", t, min);
		return 1;
	}
	printf("ok idle: an idle authenticated connection was closed after %.3f s\n", t);
	return 0;
}

static int mode_slowloris(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 100;
	double max = argc > 1 ? atof(argv[1]) : 10, t0 = now_s();
	int *fds = calloc((size_t)n, sizeof(int)), open_n = n, sent = 0;
	uint8_t h[PROTO_HEADER_BYTES] = { PROTO_VERSION, PROTO_OP_HELLO };

	proto_put_u32(h + 4, 1 + HS_HELLO_BYTES);
	for (int i = 0; i < n; i++)
		fds[i] = dial();
	while (open_n > 0 && now_s() - t0 < max) {
		/* one byte per connection per round, a round every 200 ms */
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0)
				continue;
			if (sent < (int)sizeof(h) &&
			    send(fds[i], h + sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
			    errno != EAGAIN) {
				close(fds[i]);
				fds[i] = -1;
				open_n--;
				continue;
			}
			uint8_t b;
			ssize_t r = recv(fds[i], &b, 1, MSG_DONTWAIT);

			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(fds[i]);
				fds[i] = -1;
				open_n--;
			}
		}
		if (sent < (int)sizeof(h) - 1)
			sent++;
		usleep(200000);
	}
	printf("%s slowloris: %d of %d slow connections closed by the daemon "
	       "in %.1f s\n", open_n ? "FAIL" : "ok", n - open_n, n, now_s() - t0);
	printf("FIGURE slowloris_drop_s=%.1f unit=s\n", now_s() - t0);
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return open_n ? 1 : 0;
}

static int mode_wrong_secret(void)
{
	struct peer p;
	uint8_t other[HS_SECRET_BYTES];
	int err;

	randombytes_buf(other, sizeof(other));
	err = peer_open(addr, other, 5000, &p);
	if (!err) {
		printf("FAIL wrong-secret: handshake succeeded\n");
		return 1;
	}
	printf("ok wrong-secret: our side refused the daemon's proof (%s)\n",
	       log_strerror(err));
	/* and the daemon's side: a finish with a proof made without the secret */
	struct proto_header h = { .version = PROTO_VERSION,
				  .opcode = PROTO_OP_HELLO, .length = 33 };
	uint8_t msg[33], *ans = NULL;
	int fd = dial();

	msg[0] = 1;
	randombytes_buf(msg + 1, 32);
	if (peer_send(fd, NULL, &h, msg, sizeof(msg), NULL, 0) ||
	    peer_recv(fd, NULL, PROTO_PREAUTH_MAX_BYTES, &h, &ans))
		return 2;
	free(ans);
	h = (struct proto_header){ .version = PROTO_VERSION,
				   .opcode = PROTO_OP_HELLO, .length = 33 };
	msg[0] = 2;
	randombytes_buf(msg + 1, 32);
	if (peer_send(fd, NULL, &h, msg, sizeof(msg), NULL, 0))
		return 2;
	return expect_closed(fd, "finish with a wrong proof");
}

/* Send a PING, then the very same bytes again (replay) or flipped. */
static int mode_replay(bool flip)
{
	struct peer p;
	struct proto_header h = { .version = PROTO_VERSION,
				  .opcode = PROTO_OP_PING, .length = 8,
				  .request_id = 77 };
	uint8_t frame[PROTO_HEADER_BYTES + 8 + HS_TAG_BYTES] = { 0 }, *resp;
	struct iovec iov = { frame, PROTO_HEADER_BYTES + 8 };
	struct proto_header ah;
	int err;

	open_auth(&p);
	proto_encode_header(&h, frame);
	hs_tag_frame(&p.sess, &iov, 1, frame + PROTO_HEADER_BYTES + 8);
	if (flip) {
		frame[PROTO_HEADER_BYTES + 3] ^= 0x10;
		(void)!send(p.fd, frame, sizeof(frame), MSG_NOSIGNAL);
		return expect_closed(p.fd, "bit-flipped frame");
	}
	if (send(p.fd, frame, sizeof(frame), MSG_NOSIGNAL) != (ssize_t)sizeof(frame))
		return 2;
	err = peer_recv(p.fd, &p.sess, PROTO_MAX_PAYLOAD, &ah, &resp);
	if (err) {
		printf("FAIL replay: the original frame was not answered: %s\n",
		       log_strerror(err));
		return 1;
	}
	free(resp);
	(void)!send(p.fd, frame, sizeof(frame), MSG_NOSIGNAL);
	return expect_closed(p.fd, "replayed authenticated frame");
}

static int mode_unsupported(void)
{
	struct peer p;
	uint8_t *resp = NULL;
	size_t rl;
	int err;

	open_auth(&p);
	err = peer_call(&p, PROTO_OP_SLOT_PULL, NULL, 0, NULL, 0, &resp, &rl);
	free(resp);
	if (err != -ENOTSUP) {
		printf("FAIL unsupported: reserved opcode answered %s\n",
		       log_strerror(err));
		return 1;
	}
	/* a malformed payload of a known op is answered, not fatal */
	err = peer_call(&p, PROTO_OP_GET, "x", 1, NULL, 0, &resp, &rl);
	free(resp);
	if (err != -EPROTO) {
		printf("FAIL unsupported: short GET answered %s\n", log_strerror(err));
		return 1;
	}
	printf("ok unsupported: reserved opcode -> UNSUPPORTED, short GET -> "
	       "BAD_REQUEST, connection kept\n");
	peer_close(&p);
	return 0;
}

/* Admin key file: 64 bytes of Ed25519 secret key in hex, made if absent. */
static int admin_key(const char *path, uint8_t pk[32], uint8_t sk[64])
{
	if (load_hex(path, sk, 64) == 0) {
		crypto_sign_ed25519_sk_to_pk(pk, sk);
		return 0;
	}
	char hex[129];
	FILE *f;

	crypto_sign_keypair(pk, sk);
	sodium_bin2hex(hex, sizeof(hex), sk, 64);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", hex);
	fclose(f);
	return 0;
}

static int mode_map_push(int argc, char **argv)
{
	uint8_t pk[32], sk[64], cid[16] = "wireprobe-clust", *enc = NULL, *resp;
	struct cmap *m = NULL;
	struct cmap_node nd = { .weight = 1, .state = CMAP_NODE_UP };
	struct peer p;
	size_t len, rl;
	bool badsig = argc > 2 && !strcmp(argv[2], "badsig");
	uint64_t epoch;
	int err;

	if (argc < 2 || admin_key(argv[0], pk, sk))
		return 2;
	epoch = strtoull(argv[1], NULL, 0);
	open_auth(&p);
	if (cmap_new(cid, pk, 1, &m))
		return 2;
	memcpy(nd.id, p.node_id, sizeof(nd.id));
	snprintf(nd.addr, sizeof(nd.addr), "%s", addr);
	if (cmap_node_add(m, &nd) < 0)
		return 2;
	/* more nodes: ARGS after the epoch that are addresses */
	for (int i = 2; i < argc; i++) {
		struct peer q;

		if (!strcmp(argv[i], "badsig"))
			continue;
		if (peer_open(argv[i], secret, 5000, &q))
			return 2;
		memcpy(nd.id, q.node_id, sizeof(nd.id));
		snprintf(nd.addr, sizeof(nd.addr), "%s", argv[i]);
		peer_close(&q);
		if (cmap_node_add(m, &nd) < 0)
			return 2;
	}
	if (cmap_place(NULL, m))
		return 2;
	cmap_set_epoch(m, epoch);
	if (cmap_encode(m, sk, &enc, &len))
		return 2;
	if (badsig)
		enc[len - 5] ^= 0x01;
	err = peer_call(&p, PROTO_OP_MAP_PUSH, enc, len, NULL, 0, &resp, &rl);
	free(resp);
	printf("map-push epoch %llu%s: %s\n", (unsigned long long)epoch,
	       badsig ? " (bad signature)" : "", err ? log_strerror(err) : "OK");
	free(enc);
	cmap_free(m);
	peer_close(&p);
	/* exit codes: 0 accepted, 3 stale, 4 bad signature, 1 other */
	return err == 0 ? 0 : err == -ESTALE ? 3 :
	       err == -EKEYREJECTED || err == -EBADMSG ? 4 : 1;
}

/* Block i of a run: bytes from (i), address = their hash. */
static size_t block_make(unsigned long i, uint8_t *buf, uint8_t out[32])
{
	uint8_t key[32] = { 0 }, nonce[8] = { 0 };
	size_t len = 1000 + (i * 7919) % 60000;

	memcpy(nonce, &i, sizeof(i) < 8 ? sizeof(i) : 8);
	crypto_stream_chacha20(buf, len, nonce, key);
	crypto_generichash(out, 32, buf, len, NULL, 0);
	return len;
}

/* PUT blocks FROM..TO-1, appending each index to FILE once acknowledged. */
static int mode_put_many(int argc, char **argv)
{
	struct peer p;
	uint8_t buf[64000], req[40] = { 0 }, *resp;
	unsigned long from, to;
	size_t rl;
	FILE *f;

	if (argc < 3)
		return 2;
	from = strtoul(argv[0], NULL, 0);
	to = strtoul(argv[1], NULL, 0);
	f = fopen(argv[2], "a");
	if (!f)
		return 2;
	open_auth(&p);
	for (unsigned long i = from; i < to; i++) {
		size_t len = block_make(i, buf, req + 8);
		int err = peer_call(&p, PROTO_OP_PUT, req, sizeof(req), buf, len,
				    &resp, &rl);

		free(resp);
		if (err) {
			printf("put-many: block %lu: %s\n", i, log_strerror(err));
			fclose(f);
			return 1;
		}
		fprintf(f, "%lu\n", i);
		fflush(f);
	}
	fclose(f);
	peer_close(&p);
	printf("ok put-many: %lu blocks acknowledged\n", to - from);
	return 0;
}

/* GET every block listed in FILE and compare with what was put. */
static int mode_check_many(int argc, char **argv)
{
	struct peer p;
	uint8_t buf[64000], req[40] = { 0 }, *resp;
	unsigned long i, n = 0, bad = 0;
	size_t rl;
	FILE *f;

	if (argc < 1 || !(f = fopen(argv[0], "r")))
		return 2;
	open_auth(&p);
	while (fscanf(f, "%lu", &i) == 1) {
		size_t len = block_make(i, buf, req + 8);
		int err = peer_call(&p, PROTO_OP_GET, req, sizeof(req), NULL, 0,
				    &resp, &rl);

		if (err || rl != len || memcmp(resp, buf, len)) {
			printf("block %lu: %s\n", i, err ? log_strerror(err)
							  : "other bytes");
			bad++;
		}
		free(resp);
		n++;
	}
	fclose(f);
	peer_close(&p);
	printf("%s check-many: %lu of %lu acknowledged blocks intact\n",
	       bad ? "FAIL" : "ok", n - bad, n);
	return bad ? 1 : 0;
}

/* DELETE every block listed in FILE; each must be answered OK. */
static int mode_delete_many(int argc, char **argv)
{
	struct peer p;
	uint8_t buf[64000], req[40] = { 0 }, *resp;
	unsigned long i, n = 0;
	size_t rl;
	FILE *f;

	if (argc < 1 || !(f = fopen(argv[0], "r")))
		return 2;
	open_auth(&p);
	while (fscanf(f, "%lu", &i) == 1) {
		int err;

		block_make(i, buf, req + 8);
		err = peer_call(&p, PROTO_OP_DELETE, req, sizeof(req), NULL, 0,
				&resp, &rl);
		free(resp);
		if (err) {
			printf("delete-many: block %lu: %s\n", i, log_strerror(err));
			fclose(f);
			return 1;
		}
		n++;
	}
	fclose(f);
	peer_close(&p);
	printf("ok delete-many: %lu blocks deleted\n", n);
	return 0;
}

/* Print a NODE_STATUS value by key number. */
static int mode_status(int argc, char **argv)
{
	struct peer p;
	uint8_t *resp = NULL;
	size_t rl;
	unsigned key = argc ? (unsigned)atoi(argv[0]) : PROTO_STAT_BLOCKS;
	int err;

	open_auth(&p);
	err = peer_call(&p, PROTO_OP_NODE_STATUS, NULL, 0, NULL, 0, &resp, &rl);
	if (err || rl < 2)
		return 1;
	for (unsigned i = 0; i < proto_get_u16(resp) && 2 + (i + 1) * 10 <= rl; i++)
		if (proto_get_u16(resp + 2 + i * 10) == key)
			printf("%llu\n", (unsigned long long)
			       proto_get_u64(resp + 4 + i * 10));
	free(resp);
	peer_close(&p);
	return 0;
}

/* Send an authenticated frame without waiting for its answer. */
static int send_req(struct peer *p, uint8_t op, const void *a, size_t al,
		    const void *b, size_t bl)
{
	struct proto_header h = { .version = PROTO_VERSION, .opcode = op,
				  .length = (uint32_t)(al + bl),
				  .request_id = p->next_id++ };

	return peer_send(p->fd, &p->sess, &h, a, al, b, bl);
}

/* After the handshake, a PUT frame trickling in one byte per 200 ms must
 * be dropped at the frame deadline. */
static int mode_slow_frame(int argc, char **argv)
{
	double max = argc ? atof(argv[0]) : 10, t0;
	struct peer p;
	struct proto_header h = { .version = PROTO_VERSION,
				  .opcode = PROTO_OP_PUT, .length = 1000,
				  .request_id = 5 };
	uint8_t hb[PROTO_HEADER_BYTES], b = 0;

	open_auth(&p);
	proto_encode_header(&h, hb);
	if (send(p.fd, hb, sizeof(hb), MSG_NOSIGNAL) != (ssize_t)sizeof(hb))
		return 2;
	t0 = now_s();
	while (now_s() - t0 < max) {
		if (send(p.fd, &b, 1, MSG_NOSIGNAL) != 1 || wait_closed(p.fd, 0.2) >= 0) {
			printf("ok slow-frame: a frame sent at 5 bytes/s was dropped "
			       "after %.1f s\n", now_s() - t0);
			close(p.fd);
			return 0;
		}
	}
	printf("FAIL slow-frame: still open after %.1f s\n", max);
	return 1;
}

/* Pipeline GETs of a 1 MiB block and never read an answer: the daemon must
 * stop reading, then drop us; detected without reading (RDHUP/HUP/ERR). */
static int mode_noread(int argc, char **argv)
{
	double max = argc ? atof(argv[0]) : 20, t0;
	struct peer p;
	size_t len = 1 << 20, rl;
	uint8_t *blk = malloc(len), req[40] = { 0 }, *resp = NULL;
	int sent = 0, fl;

	open_auth(&p);
	randombytes_buf(blk, len);
	crypto_generichash(req + 8, 32, blk, len, NULL, 0);
	if (peer_call(&p, PROTO_OP_PUT, req, sizeof(req), blk, len, &resp, &rl))
		return 1;
	free(resp);
	free(blk);
	fl = fcntl(p.fd, F_GETFL);
	fcntl(p.fd, F_SETFL, fl | O_NONBLOCK);
	t0 = now_s();
	while (now_s() - t0 < max) {
		struct pollfd pf = { p.fd, POLLRDHUP, 0 };

		if (sent < 500 && send_req(&p, PROTO_OP_GET, req, sizeof(req),
					   NULL, 0) == 0)
			sent++;
		if (poll(&pf, 1, 50) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
			printf("ok noread: %d GETs of 1 MiB unread; dropped after "
			       "%.1f s\n", sent, now_s() - t0);
			close(p.fd);
			return 0;
		}
	}
	printf("FAIL noread: still connected after %.1f s (%d GETs sent)\n", max,
	       sent);
	return 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* N PING round trips on one connection; prints the p99 in microseconds. */
static int mode_latency(int argc, char **argv)
{
	int n = argc ? atoi(argv[0]) : 200;
	double *t = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
	struct peer p;
	uint8_t e[8] = { 0 }, *resp;
	size_t rl;

	if (n <= 0 || !t)
		return 2;
	open_auth(&p);
	for (int i = 0; i < n; i++) {
		double t0 = now_s();

		if (peer_call(&p, PROTO_OP_PING, e, sizeof(e), NULL, 0, &resp, &rl))
			return 1;
		free(resp);
		t[i] = (now_s() - t0) * 1e6;
		usleep(2000);
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	printf("%.0f\n", t[(size_t)n * 99 / 100 < (size_t)n ? (size_t)n * 99 / 100
							   : (size_t)n - 1]);
	free(t);
	peer_close(&p);
	return 0;
}

/* A GET naming epoch E gets STALE with the daemon's epoch, printed. */
static int mode_stale(int argc, char **argv)
{
	struct peer p;
	uint8_t req[40] = { 0 }, *resp = NULL;
	size_t rl = 0;
	int err;

	proto_put_u64(req, argc ? strtoull(argv[0], NULL, 0) : 1);
	open_auth(&p);
	err = peer_call(&p, PROTO_OP_GET, req, sizeof(req), NULL, 0, &resp, &rl);
	if (err == -ESTALE && rl == 8)
		printf("%llu\n", (unsigned long long)proto_get_u64(resp));
	else
		printf("not stale: %s\n", log_strerror(err));
	free(resp);
	peer_close(&p);
	return err == -ESTALE ? 0 : 1;
}

static int mode_map_epoch(void)
{
	struct peer p;
	uint8_t *resp = NULL;
	size_t rl;
	struct cmap *m = NULL;
	int err;

	open_auth(&p);
	err = peer_call(&p, PROTO_OP_MAP_GET, NULL, 0, NULL, 0, &resp, &rl);
	if (err == -ENOENT) {
		free(resp);
		peer_close(&p);
		printf("0\n");
		return 0;
	}
	if (err || cmap_decode(resp, rl, NULL, &m))
		return 1;
	printf("%llu\n", (unsigned long long)cmap_epoch(m));
	cmap_free(m);
	free(resp);
	peer_close(&p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 4) {
		fprintf(stderr, "usage: wireprobe ADDR SECRET_FILE MODE [ARGS]\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 2;
	addr = argv[1];
	if (load_hex(argv[2], secret, sizeof(secret))) {
		fprintf(stderr, "wireprobe: bad secret file %s\n", argv[2]);
		return 2;
	}
	mode = argv[3];
	argc -= 4;
	argv += 4;
	if (!strcmp(mode, "normal"))
		return mode_normal();
	if (!strcmp(mode, "raw-header"))
		return mode_raw_header(argc, argv);
	if (!strcmp(mode, "auth-header"))
		return mode_auth_header(argc, argv);
	if (!strcmp(mode, "truncated"))
		return mode_truncated();
	if (!strcmp(mode, "garbage"))
		return mode_garbage(argc, argv);
	if (!strcmp(mode, "silent"))
		return mode_silent(argc, argv);
	if (!strcmp(mode, "slowloris"))
		return mode_slowloris(argc, argv);
	if (!strcmp(mode, "idle"))
		return mode_idle(argc, argv);
	if (!strcmp(mode, "wrong-secret"))
		return mode_wrong_secret();
	if (!strcmp(mode, "replay"))
		return mode_replay(false);
	if (!strcmp(mode, "bitflip"))
		return mode_replay(true);
	if (!strcmp(mode, "unsupported"))
		return mode_unsupported();
	if (!strcmp(mode, "map-push"))
		return mode_map_push(argc, argv);
	if (!strcmp(mode, "put-many"))
		return mode_put_many(argc, argv);
	if (!strcmp(mode, "delete-many"))
		return mode_delete_many(argc, argv);
	if (!strcmp(mode, "check-many"))
		return mode_check_many(argc, argv);
	if (!strcmp(mode, "slow-frame"))
		return mode_slow_frame(argc, argv);
	if (!strcmp(mode, "noread"))
		return mode_noread(argc, argv);
	if (!strcmp(mode, "latency"))
		return mode_latency(argc, argv);
	if (!strcmp(mode, "stale"))
		return mode_stale(argc, argv);
	if (!strcmp(mode, "status"))
		return mode_status(argc, argv);
	if (!strcmp(mode, "map-epoch"))
		return mode_map_epoch();
	fprintf(stderr, "wireprobe: unknown mode %s\n", mode);
	return 2;
}
