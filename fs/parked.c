/*
 * parked: sealed files of buffered data an unmount could not store (the
 * format and the contract are in parked.h).
 */
#include "fs/parked.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster/proto.h"
#include "crypto/seal.h"
#include "fs/segs.h"

int parked_encode(uint64_t ino, const struct seg *segs, uint8_t **out,
		  size_t *out_len)
{
	size_t len = PARKED_HEADER_BYTES, n = 0;
	uint8_t *buf, *p;

	for (const struct seg *s = segs; s; s = s->next) {
		if (s->len > UINT32_MAX)
			return -E2BIG;
		len += PARKED_RANGE_HEADER_BYTES + s->len;
		n++;
		if (len > SEAL_MAX_CHUNK)
			return -E2BIG;
	}
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, PARKED_MAGIC, 4);
	buf[4] = PARKED_VERSION;
	memset(buf + 5, 0, 3);
	proto_put_u64(buf + 8, ino);
	proto_put_u32(buf + 16, (uint32_t)n);
	p = buf + PARKED_HEADER_BYTES;
	for (const struct seg *s = segs; s; s = s->next) {
		proto_put_u64(p, s->off);
		proto_put_u32(p + 8, (uint32_t)s->len);
		memcpy(p + PARKED_RANGE_HEADER_BYTES, s->buf, s->len);
		p += PARKED_RANGE_HEADER_BYTES + s->len;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int parked_decode(const uint8_t *buf, size_t len, uint64_t *ino,
		  parked_range_fn fn, void *arg)
{
	const uint8_t *p, *end = buf + len;
	uint64_t next_off = 0;
	uint32_t n;

	if (len < PARKED_HEADER_BYTES || memcmp(buf, PARKED_MAGIC, 4))
		return -EPROTO;
	if (buf[4] != PARKED_VERSION)
		return -ENOTSUP;
	if (buf[5] || buf[6] || buf[7])
		return -EPROTO;
	n = proto_get_u32(buf + 16);
	/* First the whole of it, so that a damaged file writes nothing. */
	p = buf + PARKED_HEADER_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t off;
		uint32_t rlen;

		if ((size_t)(end - p) < PARKED_RANGE_HEADER_BYTES)
			return -EPROTO;
		off = proto_get_u64(p);
		rlen = proto_get_u32(p + 8);
		p += PARKED_RANGE_HEADER_BYTES;
		if (!rlen || rlen > (size_t)(end - p) || off < next_off ||
		    off > UINT64_MAX - rlen)
			return -EPROTO;
		next_off = off + rlen;
		p += rlen;
	}
	if (p != end)
		return -EPROTO;
	*ino = proto_get_u64(buf + 8);
	p = buf + PARKED_HEADER_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rlen = proto_get_u32(p + 8);
		int rc = fn(arg, proto_get_u64(p), p + PARKED_RANGE_HEADER_BYTES, rlen);

		if (rc < 0)
			return rc;
		p += PARKED_RANGE_HEADER_BYTES + rlen;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int parked_save(const struct keys *k, const char *meta_dir, uint64_t ino,
		const struct seg *segs)
{
	char dir[4096], tmp[4200], path[4200];
	struct seal_ctx *sc = NULL;
	uint8_t *plain = NULL, *blk = NULL, addr[SEAL_ADDR_BYTES];
	size_t plain_len;
	ssize_t blk_len;
	int fd = -1, rc;

	snprintf(dir, sizeof(dir), "%s/%s", meta_dir, PARKED_DIR);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%llu", dir, (unsigned long long)ino);
	snprintf(path, sizeof(path), "%s/%llu", dir, (unsigned long long)ino);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	rc = parked_encode(ino, segs, &plain, &plain_len);
	if (rc < 0)
		return rc;
	rc = seal_ctx_new(0, &sc);
	if (rc < 0)
		goto out;
	blk = malloc(seal_bound(plain_len));
	if (!blk) {
		rc = -ENOMEM;
		goto out;
	}
	seal_addr(k, plain, plain_len, addr);
	blk_len = seal_block(sc, k, addr, plain, plain_len, blk,
			     seal_bound(plain_len));
	if (blk_len < 0) {
		rc = (int)blk_len;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, addr, sizeof(addr));
	if (!rc)
		rc = write_all(fd, blk, (size_t)blk_len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	fd = -1;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (!rc)
		rc = sync_dir(dir);
	if (rc)
		unlink(tmp);
out:
	free(blk);
	if (plain)
		sodium_memzero(plain, plain_len);
	free(plain);
	seal_ctx_free(sc);
	return rc;
}

int parked_load(const struct keys *k, const char *meta_dir, const char *name,
		uint8_t **plain, size_t *plain_len)
{
	char path[4200];
	struct seal_ctx *sc = NULL;
	struct seal_info info;
	struct stat st;
	uint8_t *file = NULL, *out = NULL;
	ssize_t got;
	size_t have = 0;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s/%s", meta_dir, PARKED_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size < SEAL_ADDR_BYTES ||
	    (uint64_t)st.st_size > SEAL_ADDR_BYTES + (uint64_t)seal_bound(SEAL_MAX_CHUNK)) {
		rc = -EPROTO;
		goto out;
	}
	file = malloc((size_t)st.st_size);
	if (!file) {
		rc = -ENOMEM;
		goto out;
	}
	while (have < (size_t)st.st_size &&
	       (got = read(fd, file + have, (size_t)st.st_size - have)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		have += (size_t)got;
	}
	if (have != (size_t)st.st_size) {
		rc = -EPROTO;
		goto out;
	}
	rc = seal_peek(file + SEAL_ADDR_BYTES, have - SEAL_ADDR_BYTES, &info);
	if (rc < 0)
		goto out;
	out = malloc(info.plain_len ? info.plain_len : 1);
	rc = out ? seal_ctx_new(0, &sc) : -ENOMEM;
	if (rc < 0)
		goto out;
	got = seal_open(sc, k, file, file + SEAL_ADDR_BYTES, have - SEAL_ADDR_BYTES,
			out, info.plain_len);
	if (got < 0) {
		rc = (int)got;
		goto out;
	}
	*plain = out;
	*plain_len = (size_t)got;
	out = NULL;
out:
	free(out);
	free(file);
	seal_ctx_free(sc);
	close(fd);
	return rc;
}

int parked_remove(const char *meta_dir, const char *name)
{
	char dir[4096], path[4200];

	snprintf(dir, sizeof(dir), "%s/%s", meta_dir, PARKED_DIR);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) < 0)
		return -errno;
	return sync_dir(dir);
}
