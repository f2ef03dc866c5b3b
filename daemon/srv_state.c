/*
 * srv_state: what a cairnd node keeps of itself: its files in the data
 * dir (node-id, admin.pub pinned on first use, map), the cluster map it
 * holds now and the adoption of a newer one (MAP_PUSH or gossip), and the
 * gossip thread that compares epochs with every peer.
 *
 * The map: current map under map_lock (short holds, the loop takes it);
 * adopting a map holds adopt_lock across the file write, so the loop never
 * waits on a disk for the map.
 */
#define _GNU_SOURCE
#include "daemon/srv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/log.h"
#include "cluster/threadname.h"

/* ---------- small file helpers ---------- */

int srv_write_file_atomic(const char *dir, const char *name, const void *buf,
			  size_t len)
{
	char tmp[4096], path[4096];
	int fd = -1, dfd = -1, err = 0;
	const uint8_t *p = buf;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		err = -errno;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		err = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (err)
		unlink(tmp);
	return err;
}

static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || (size_t)sb.st_size > max) {
		err = fstat(fd, &sb) < 0 ? -errno : -EFBIG;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (have < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)sb.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			goto out;
		}
		have += (size_t)n;
	}
	buf[have] = '\0';
out:
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = have;
	return 0;
}

/* ---------- the map ---------- */

uint64_t srv_epoch(struct srv *s)
{
	uint64_t e;

	pthread_mutex_lock(&s->map_lock);
	e = s->epoch;
	pthread_mutex_unlock(&s->map_lock);
	return e;
}

/*
 * Adopt a signed map: valid signature (by the pinned admin key, or the key
 * it carries on first use), same cluster, higher epoch. Persists it (and a
 * first-use admin key) before it becomes current. Any thread.
 * Returns 0, -ESTALE (not newer), -EBADMSG/-EKEYREJECTED (signature),
 * -EPROTO (malformed), -EXDEV (another cluster) or an I/O error.
 */
int srv_map_adopt(struct srv *s, const uint8_t *buf, size_t len)
{
	struct cmap *m = NULL;
	uint8_t *copy = NULL, pk[CMAP_PK_BYTES];
	bool have_pk, pin = false;
	int err;

	pthread_mutex_lock(&s->adopt_lock);
	pthread_mutex_lock(&s->map_lock);
	have_pk = s->have_pk;
	memcpy(pk, s->pk, sizeof(pk));
	pthread_mutex_unlock(&s->map_lock);
	err = cmap_decode(buf, len, have_pk ? pk : NULL, &m);
	if (err)
		goto out;
	pthread_mutex_lock(&s->map_lock);
	if (s->map && cmap_epoch(m) <= s->epoch)
		err = -ESTALE;
	else if (s->map && memcmp(cmap_cluster_id(m), cmap_cluster_id(s->map),
				  CMAP_CLUSTER_ID_BYTES))
		err = -EXDEV;
	pthread_mutex_unlock(&s->map_lock);
	if (err)
		goto out;
	if (!have_pk) {
		char hex[2 * CMAP_PK_BYTES + 2];

		sodium_bin2hex(hex, sizeof(hex), cmap_admin_pk(m), CMAP_PK_BYTES);
		hex[2 * CMAP_PK_BYTES] = '\n';
		hex[2 * CMAP_PK_BYTES + 1] = '\0';
		err = srv_write_file_atomic(s->data_dir, "admin.pub", hex, strlen(hex));
		if (err)
			goto out;
		pin = true;
	}
	copy = malloc(len);
	if (!copy) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(copy, buf, len);
	err = srv_write_file_atomic(s->data_dir, "map", buf, len);
	if (err)
		goto out;
	pthread_mutex_lock(&s->map_lock);
	cmap_free(s->map);
	free(s->map_enc);
	s->map = m;
	s->map_enc = copy;
	s->map_len = len;
	s->epoch = cmap_epoch(m);
	if (pin) {
		memcpy(s->pk, cmap_admin_pk(m), CMAP_PK_BYTES);
		s->have_pk = true;
	}
	pthread_mutex_unlock(&s->map_lock);
	log_info("adopted cluster map epoch %llu",
		 (unsigned long long)cmap_epoch(m));
	m = NULL;
	copy = NULL;
out:
	pthread_mutex_unlock(&s->adopt_lock);
	cmap_free(m);
	free(copy);
	return err;
}

/* ---------- gossip ---------- */

/* One peer: compare epochs, push ours or fetch theirs. */
static void gossip_one(struct srv *s, const char *addr)
{
	struct peer p = { .fd = -1 };
	uint8_t e[EPOCH_BYTES], *resp = NULL;
	size_t len = 0;
	uint64_t ours = srv_epoch(s), theirs;
	int err;

	err = peer_open(addr, s->o.secret, 2000, &p);
	if (err) {
		log_debug("gossip: node %s unreachable: %s", addr,
			  log_strerror(err));
		return;
	}
	proto_put_u64(e, ours);
	err = peer_call(&p, PROTO_OP_PING, e, sizeof(e), NULL, 0, &resp, &len);
	if (err || len != EPOCH_BYTES)
		goto out;
	theirs = proto_get_u64(resp);
	free(resp);
	resp = NULL;
	if (theirs < ours) {
		uint8_t *enc = NULL;
		size_t elen = 0;

		pthread_mutex_lock(&s->map_lock);
		if (s->map_enc && (enc = malloc(s->map_len))) {
			memcpy(enc, s->map_enc, s->map_len);
			elen = s->map_len;
		}
		pthread_mutex_unlock(&s->map_lock);
		if (enc) {
			err = peer_call(&p, PROTO_OP_MAP_PUSH, enc, elen, NULL, 0,
					&resp, &len);
			log_info("gossip: pushed map epoch %llu to %s (had %llu): %s",
				 (unsigned long long)ours, addr,
				 (unsigned long long)theirs, log_strerror(err));
		}
		free(enc);
	} else if (theirs > ours) {
		err = peer_call(&p, PROTO_OP_MAP_GET, NULL, 0, NULL, 0, &resp, &len);
		if (!err)
			err = srv_map_adopt(s, resp, len);
		if (err && err != -ESTALE)
			log_warn("gossip: map epoch %llu from %s refused: %s",
				 (unsigned long long)theirs, addr,
				 log_strerror(err));
	}
out:
	free(resp);
	peer_close(&p);
}

void *srv_gossip_main(void *arg)
{
	struct srv *s = arg;

	thread_name("gossip");

	for (;;) {
		struct timespec ts;
		char (*addrs)[CMAP_ADDR_MAX + 1] = NULL;
		unsigned n = 0;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)s->o.gossip_interval_s;
		ts.tv_nsec += (long)((s->o.gossip_interval_s -
				      (double)(time_t)s->o.gossip_interval_s) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&s->gossip_lock);
		while (!s->gossip_stop &&
		       pthread_cond_timedwait(&s->gossip_cond, &s->gossip_lock,
					      &ts) != ETIMEDOUT)
			;
		bool stop = s->gossip_stop;
		pthread_mutex_unlock(&s->gossip_lock);
		if (stop)
			break;
		pthread_mutex_lock(&s->map_lock);
		if (s->map) {
			unsigned total = cmap_node_count(s->map);

			addrs = calloc(total ? total : 1, sizeof(*addrs));
			for (unsigned i = 0; addrs && i < total; i++) {
				const struct cmap_node *nd = cmap_node(s->map, i);

				if (nd->state == CMAP_NODE_OUT ||
				    !memcmp(nd->id, s->node_id, CMAP_NODE_ID_BYTES))
					continue;
				memcpy(addrs[n++], nd->addr, sizeof(addrs[0]));
			}
		}
		pthread_mutex_unlock(&s->map_lock);
		for (unsigned i = 0; i < n; i++)
			gossip_one(s, addrs[i]);
		free(addrs);
	}
	return NULL;
}

/* ---------- the node's files ---------- */

static int load_node_id(struct srv *s)
{
	char path[4096], hex[2 * CMAP_NODE_ID_BYTES + 2];
	uint8_t *buf = NULL;
	size_t len = 0, bin = 0;
	int err;

	snprintf(path, sizeof(path), "%s/node-id", s->data_dir);
	err = read_file(path, 4096, &buf, &len);
	if (err == -ENOENT) {
		randombytes_buf(s->node_id, sizeof(s->node_id));
		sodium_bin2hex(hex, sizeof(hex), s->node_id, sizeof(s->node_id));
		hex[2 * CMAP_NODE_ID_BYTES] = '\n';
		hex[2 * CMAP_NODE_ID_BYTES + 1] = '\0';
		err = srv_write_file_atomic(s->data_dir, "node-id", hex, strlen(hex));
		if (!err)
			log_info("new node id %.32s", hex);
		return err;
	}
	if (err)
		return err;
	if (sodium_hex2bin(s->node_id, sizeof(s->node_id), (char *)buf, len,
			   "\n", &bin, NULL) || bin != sizeof(s->node_id))
		err = -EINVAL;
	free(buf);
	if (err)
		log_err("%s: not a node id (32 hex digits)", path);
	return err;
}

static int load_pinned_pk(struct srv *s)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t len = 0, bin = 0;
	int err;

	if (s->o.have_admin_pk) {
		memcpy(s->pk, s->o.admin_pk, sizeof(s->pk));
		s->have_pk = true;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/admin.pub", s->data_dir);
	err = read_file(path, 4096, &buf, &len);
	if (err == -ENOENT)
		return 0;                /* trust on first use */
	if (err)
		return err;
	if (sodium_hex2bin(s->pk, sizeof(s->pk), (char *)buf, len, "\n", &bin,
			   NULL) || bin != sizeof(s->pk)) {
		log_err("%s: not an admin public key (64 hex digits)", path);
		err = -EINVAL;
	} else {
		s->have_pk = true;
	}
	free(buf);
	return err;
}

static int load_map(struct srv *s)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t len = 0;
	int err;

	snprintf(path, sizeof(path), "%s/map", s->data_dir);
	err = read_file(path, CMAP_MAX_ENCODED, &buf, &len);
	if (err == -ENOENT)
		return 0;
	if (!err)
		err = cmap_decode(buf, len, s->have_pk ? s->pk : NULL, &s->map);
	if (err) {
		log_err("cannot load cluster map %s: %s", path, log_strerror(err));
		free(buf);
		return err;
	}
	s->map_enc = buf;
	s->map_len = len;
	s->epoch = cmap_epoch(s->map);
	if (!s->have_pk) {
		memcpy(s->pk, cmap_admin_pk(s->map), sizeof(s->pk));
		s->have_pk = true;
	}
	log_info("loaded cluster map epoch %llu", (unsigned long long)s->epoch);
	return 0;
}

int srv_load_state(struct srv *s)
{
	int err = load_node_id(s);

	if (!err)
		err = load_pinned_pk(s);
	if (!err)
		err = load_map(s);
	return err;
}
