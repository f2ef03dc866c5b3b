/*
 * peer: blocking wire-protocol client (see peer.h). Does the client side
 * of the handshake in cairnd's framing: HELLO step 1 and step 2 requests
 * and the step 1 answer are untagged; the empty answer to step 2 is the
 * first tagged frame in each direction's count.
 */
#define _GNU_SOURCE
#include "daemon/peer.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

static int split_addr(const char *addr, char *host, size_t hl, char *port,
		      size_t pl)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	if (!colon || !colon[1] || strlen(colon + 1) >= pl)
		return -EINVAL;
	n = (size_t)(colon - addr);
	if (n && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n == 0 || n >= hl)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	snprintf(port, pl, "%s", colon + 1);
	return 0;
}

int peer_dial(const char *addr, int timeout_ms)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int fd = -1, err, one = 1;

	err = split_addr(addr, host, sizeof(host), port, sizeof(port));
	if (err)
		return err;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		err = errno == EINPROGRESS || errno == EAGAIN ? -ETIMEDOUT : -errno;
out:
	freeaddrinfo(ai);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

static int io_full(int fd, void *buf, size_t len, bool wr)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = wr ? send(fd, p, len, MSG_NOSIGNAL) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT
								       : -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int peer_send(int fd, struct hs_session *s, const struct proto_header *h,
	      const void *a, size_t a_len, const void *b, size_t b_len)
{
	uint8_t hdr[PROTO_HEADER_BYTES], tag[PROTO_TAG_BYTES];
	struct iovec iov[3] = {
		{ hdr, sizeof(hdr) }, { (void *)a, a_len }, { (void *)b, b_len },
	};
	int err;

	proto_encode_header(h, hdr);
	if (s)
		hs_tag_frame(s, iov, 3, tag);
	err = io_full(fd, hdr, sizeof(hdr), true);
	if (!err && a_len)
		err = io_full(fd, (void *)a, a_len, true);
	if (!err && b_len)
		err = io_full(fd, (void *)b, b_len, true);
	if (!err && s)
		err = io_full(fd, tag, sizeof(tag), true);
	return err;
}

int peer_recv(int fd, struct hs_session *s, uint32_t limit,
	      struct proto_header *h, uint8_t **payload)
{
	uint8_t hdr[PROTO_HEADER_BYTES], tag[PROTO_TAG_BYTES], *buf;
	struct iovec iov[2];
	int err;

	err = io_full(fd, hdr, sizeof(hdr), false);
	if (err)
		return err;
	err = proto_decode_header(hdr, limit, h);
	if (err)
		return err;
	buf = malloc(h->length ? h->length : 1);
	if (!buf)
		return -ENOMEM;
	err = io_full(fd, buf, h->length, false);
	if (!err && s) {
		err = io_full(fd, tag, sizeof(tag), false);
		iov[0] = (struct iovec){ hdr, sizeof(hdr) };
		iov[1] = (struct iovec){ buf, h->length };
		if (!err)
			err = hs_verify_frame(s, iov, 2, tag);
	}
	if (err) {
		free(buf);
		return err;
	}
	*payload = buf;
	return 0;
}

int peer_handshake(int fd, const uint8_t secret[HS_SECRET_BYTES],
		   struct peer *out)
{
	uint8_t hello[1 + HS_HELLO_BYTES], fin[1 + HS_FINISH_BYTES];
	struct handshake *hs = NULL;
	struct proto_header h = { .version = PROTO_VERSION,
				  .opcode = PROTO_OP_HELLO };
	uint8_t *ans = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	out->fd = fd;
	hello[0] = 1;
	err = handshake_client_new(secret, hello + 1, &hs);
	if (err)
		return err;
	h.length = sizeof(hello);
	err = peer_send(fd, NULL, &h, hello, sizeof(hello), NULL, 0);
	if (!err)
		err = peer_recv(fd, NULL, PROTO_PREAUTH_MAX_BYTES, &h, &ans);
	if (err)
		goto out;
	if (h.opcode != PROTO_OP_HELLO || h.status != PROTO_ST_OK ||
	    h.length != HS_REPLY_BYTES + PEER_CTX_BYTES) {
		err = h.status ? proto_status_to_err(h.status) : -EPROTO;
		goto out;
	}
	fin[0] = 2;
	err = handshake_client_finish(hs, ans, ans + HS_REPLY_BYTES,
				      PEER_CTX_BYTES, fin + 1, &out->sess);
	if (err)
		goto out;
	memcpy(out->node_id, ans + HS_REPLY_BYTES, CMAP_NODE_ID_BYTES);
	memcpy(out->cluster_id, ans + HS_REPLY_BYTES + 16, CMAP_CLUSTER_ID_BYTES);
	out->epoch = proto_get_u64(ans + HS_REPLY_BYTES + 32);
	free(ans);
	ans = NULL;
	h = (struct proto_header){ .version = PROTO_VERSION,
				   .opcode = PROTO_OP_HELLO, .request_id = 1,
				   .length = sizeof(fin) };
	err = peer_send(fd, NULL, &h, fin, sizeof(fin), NULL, 0);
	if (!err)    /* the server's proof that it accepted ours: a tagged OK */
		err = peer_recv(fd, &out->sess, PROTO_PREAUTH_MAX_BYTES, &h, &ans);
	if (err == -ECONNRESET)  /* the daemon hangs up on a wrong proof */
		err = -EKEYREJECTED;
	if (!err && h.status != PROTO_ST_OK)
		err = proto_status_to_err(h.status);
	out->next_id = 2;
out:
	if (err == -EBADMSG)
		err = -EKEYREJECTED;
	free(ans);
	handshake_free(hs);
	return err;
}

int peer_open(const char *addr, const uint8_t secret[HS_SECRET_BYTES],
	      int timeout_ms, struct peer *out)
{
	int fd = peer_dial(addr, timeout_ms), err;

	if (fd < 0)
		return fd;
	err = peer_handshake(fd, secret, out);
	if (err) {
		close(fd);
		out->fd = -1;
	}
	return err;
}

void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

int peer_call(struct peer *p, uint8_t op, const void *req, size_t req_len,
	      const void *data, size_t data_len, uint8_t **resp,
	      size_t *resp_len)
{
	struct proto_header h = { .version = PROTO_VERSION, .opcode = op,
				  .request_id = p->next_id++ };
	uint64_t id = h.request_id;
	uint8_t *ans = NULL;
	int err;

	if (req_len + data_len > PROTO_MAX_PAYLOAD)
		return -E2BIG;
	h.length = (uint32_t)(req_len + data_len);
	err = peer_send(p->fd, &p->sess, &h, req, req_len, data, data_len);
	if (!err)
		err = peer_recv(p->fd, &p->sess, PROTO_MAX_PAYLOAD, &h, &ans);
	if (err)
		return err;
	if (!(h.flags & PROTO_F_RESPONSE) || h.request_id != id ||
	    h.opcode != op) {
		free(ans);
		return -EPROTO;
	}
	*resp = ans;
	*resp_len = h.length;
	return proto_status_to_err(h.status);
}
