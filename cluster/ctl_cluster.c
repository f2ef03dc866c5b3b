/*
 * ctl_cluster: the cluster subcommands of cairnctl — cluster init, node add,
 * status, map — and the shared helpers that talk to daemons directly
 * (MAP_GET from several daemons, NODE_STATUS).
 *
 * The admin key in the config dir is the one writer of the cluster map:
 * node add reads the newest signed map from the daemons, computes the next
 * epoch with cmap_place() and pushes it to every node. Moving existing data
 * to new owners is not done here (rebalance, a later issue); when slots
 * that may hold blocks move, node add keeps their previous owners in the
 * map (reads fall back to them) and says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster/ctl.h"
#include "cluster/log.h"
#include "cluster/proto.h"
#include "cluster/progress.h"

#define CTL_STATUS_TIMEOUT_MS 2000
#define CTL_ADMIN_TIMEOUT_MS 10000
#define CTL_DEFAULT_WEIGHT 100

_Static_assert(CTL_ADMIN_SK_BYTES == crypto_sign_SECRETKEYBYTES, "admin.key size");
_Static_assert(CMAP_SK_BYTES == crypto_sign_SECRETKEYBYTES, "map signing key");
_Static_assert(CMAP_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "admin.pub size");
_Static_assert(CTL_SECRET_BYTES == HS_SECRET_BYTES, "cluster.secret size");

/* ---- talking to daemons -------------------------------------------- */

int ctl_fetch_map(struct pool *p, const char *const *addrs, size_t n,
		  const uint8_t admin_pk[CMAP_PK_BYTES], struct cmap **out,
		  size_t *reached)
{
	struct pool_call *calls = NULL;
	struct cmap *best = NULL;
	int last_err = -ENOENT, bad_err = 0;

	*out = NULL;
	*reached = 0;
	if (!n)
		return 0;
	calls = calloc(n, sizeof(*calls));
	if (!calls)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		calls[i].node = addrs[i];
		calls[i].opcode = PROTO_OP_MAP_GET;
	}
	pool_run(p, calls, n);
	for (size_t i = 0; i < n; i++) {
		struct cmap *m = NULL;
		int rc = calls[i].err;

		if (rc == -ENOENT || (!rc && !calls[i].resp_len)) {
			(*reached)++;          /* answered: it has no map yet */
			goto next;
		}
		if (rc < 0) {
			log_debug("map from %s: %s", addrs[i], log_strerror(rc));
			/* A refused handshake says more than a node that is down. */
			if (last_err != -EKEYREJECTED)
				last_err = rc;
			goto next;
		}
		(*reached)++;
		rc = cmap_decode(calls[i].resp, calls[i].resp_len, admin_pk, &m);
		if (rc < 0) {
			log_warn("map from %s refused: %s", addrs[i], log_strerror(rc));
			bad_err = rc;
			goto next;
		}
		if (!best || cmap_epoch(m) > cmap_epoch(best)) {
			cmap_free(best);
			best = m;
			m = NULL;
		}
		cmap_free(m);
next:
		free(calls[i].resp);
	}
	free(calls);
	if (!*reached)
		return last_err;
	if (!best && bad_err)
		return bad_err;
	*out = best;
	return 0;
}

int ctl_node_status(struct pool *p, const char *addr, struct ctl_node_stat *st)
{
	struct pool_call call = { .node = addr, .opcode = PROTO_OP_NODE_STATUS };
	struct proto_reader r;
	uint16_t n = 0;
	double t0 = progress_now();

	memset(st, 0, sizeof(*st));
	st->err = pool_run(p, &call, 1);
	st->rtt_ms = (progress_now() - t0) * 1000;
	if (st->err < 0)
		goto out;
	proto_reader_init(&r, call.resp, call.resp_len);
	proto_read_u16(&r, &n);
	for (unsigned i = 0; i < n && !r.bad; i++) {
		uint16_t key = 0;
		uint64_t v = 0;

		proto_read_u16(&r, &key);
		proto_read_u64(&r, &v);
		if (!r.bad && key < CTL_STAT_SLOTS) {
			st->values[key] = v;
			st->have[key] = true;
		}
	}
	if (r.bad)
		st->err = -EPROTO;
out:
	free(call.resp);
	return st->err;
}

/* Load admin.key (64-byte Ed25519 secret key, hex, mode 0600). */
static int ctl_load_admin_sk(const struct ctl *c, uint8_t sk[CTL_ADMIN_SK_BYTES])
{
	char path[4096], err[LOG_ERRBUF] = "";
	int rc;

	ctl_path(c, "admin.key", path, sizeof(path));
	rc = clientconf_read_hex_file(path, sk, CTL_ADMIN_SK_BYTES, 1, err, sizeof(err));
	if (rc == -ENOENT)
		ctl_err("no admin key at %s: changing the cluster map needs the "
			"config dir made by 'cairnctl cluster init'", path);
	else if (rc < 0)
		ctl_err("cannot load the admin key: %s", err[0] ? err : log_strerror(rc));
	return rc;
}

/* ---- cluster init --------------------------------------------------- */

static int ctl_write_secret_file(const char *path, const uint8_t *bin, size_t n)
{
	char *hex = malloc(2 * n + 2);
	int fd = -1, err = 0;

	if (!hex)
		return -ENOMEM;
	ctl_hex(bin, n, hex);
	hex[2 * n] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (write(fd, hex, 2 * n + 1) != (ssize_t)(2 * n + 1) || fsync(fd) < 0)
		err = errno ? -errno : -EIO;
out:
	if (fd >= 0)
		close(fd);
	if (err && fd >= 0)
		unlink(path);
	sodium_memzero(hex, 2 * n + 2);
	free(hex);
	return err;
}

int ctl_cmd_cluster_init(struct ctl *c, int argc, char **argv)
{
	const char *replicas_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
		{ "replicas", true, &replicas_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	uint8_t secret[CTL_SECRET_BYTES], pk[CMAP_PK_BYTES], sk[CMAP_SK_BYTES];
	uint8_t cid[CMAP_CLUSTER_ID_BYTES];
	char path[4096], cid_hex[2 * CMAP_CLUSTER_ID_BYTES + 1];
	long replicas = 2;
	size_t n_pos;
	struct stat st;
	int rc;

	rc = ctl_args(c, argc, argv, opts, pos, 0, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (replicas_s) {
		char *end;

		replicas = strtol(replicas_s, &end, 10);
		if (*end || replicas < 1 || replicas > (long)CMAP_MAX_WIDTH) {
			ctl_err("--replicas: '%s' is not a number from 1 to %u",
				replicas_s, CMAP_MAX_WIDTH);
			return CTL_EXIT_USAGE;
		}
	}
	if (mkdir(c->config_dir, 0700) < 0 && errno != EEXIST) {
		ctl_err("cannot create %s: %s", c->config_dir, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	if (stat(ctl_path(c, "cairnctl.conf", path, sizeof(path)), &st) == 0 ||
	    stat(ctl_path(c, "cluster.secret", path, sizeof(path)), &st) == 0 ||
	    stat(ctl_path(c, "admin.key", path, sizeof(path)), &st) == 0) {
		ctl_err("%s already holds a cluster (%s exists): refusing to "
			"overwrite it", c->config_dir, path);
		return CTL_EXIT_FAIL;
	}
	chmod(c->config_dir, 0700);
	randombytes_buf(secret, sizeof(secret));
	randombytes_buf(cid, sizeof(cid));
	crypto_sign_keypair(pk, sk);
	ctl_hex(cid, sizeof(cid), cid_hex);

	/* Secrets first, the conf last: the conf's presence marks a finished init. */
	rc = ctl_write_secret_file(ctl_path(c, "cluster.secret", path, sizeof(path)),
				   secret, sizeof(secret));
	if (!rc)
		rc = ctl_write_secret_file(ctl_path(c, "admin.key", path, sizeof(path)),
					   sk, sizeof(sk));
	if (!rc)
		rc = ctl_write_secret_file(ctl_path(c, "admin.pub", path, sizeof(path)),
					   pk, sizeof(pk));
	if (!rc) {
		chmod(path, 0644);     /* the public key may be read by anyone */
		rc = ctl_write_conf(c->config_dir, cid_hex, replicas, NULL, 0);
		ctl_path(c, "cairnctl.conf", path, sizeof(path));
	}
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(sk, sizeof(sk));
	if (rc < 0) {
		ctl_err("cannot write %s: %s", path, log_strerror(rc));
		return CTL_EXIT_FAIL;
	}
	if (c->json) {
		printf("{\"cluster_id\":\"%s\",\"replicas\":%ld,\"config_dir\":",
		       cid_hex, replicas);
		ctl_json_str(stdout, c->config_dir);
		puts("}");
	} else {
		printf("cluster %s created in %s (replicas %ld)\n", cid_hex,
		       c->config_dir, replicas);
		ctl_note(c, "next: give every daemon %s/cluster.secret (cairnd "
			 "--secret-file), then 'cairnctl node add HOST:PORT' for each",
			 c->config_dir);
	}
	return CTL_EXIT_OK;
}

/* ---- node add -------------------------------------------------------- */

static int ctl_push_map(struct pool *p, const struct cmap *m, const uint8_t *enc,
			size_t enc_len, const char *must_addr, unsigned *pushed,
			unsigned *failed)
{
	unsigned n = cmap_node_count(m), k = 0;
	struct pool_call *calls = calloc(n ? n : 1, sizeof(*calls));
	int rc = 0;

	if (!calls)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		const struct cmap_node *nd = cmap_node(m, i);

		if (nd->state == CMAP_NODE_OUT)
			continue;
		calls[k].node = nd->addr;
		calls[k].opcode = PROTO_OP_MAP_PUSH;
		calls[k].data = enc;
		calls[k].data_len = enc_len;
		k++;
	}
	pool_run(p, calls, k);
	*pushed = *failed = 0;
	for (unsigned i = 0; i < k; i++) {
		if (calls[i].err < 0) {
			(*failed)++;
			if (!strcmp(calls[i].node, must_addr)) {
				ctl_err("%s refused the new map: %s", calls[i].node,
					calls[i].err == -ESTALE ?
					"it holds a newer epoch (another admin changed "
					"the map: retry)" : ctl_conn_hint(calls[i].err));
				rc = calls[i].err;
			} else {
				fprintf(stderr, "cairnctl: warning: %s did not take the "
					"new map (%s); it will learn it from its peers\n",
					calls[i].node, ctl_conn_hint(calls[i].err));
			}
		} else {
			(*pushed)++;
		}
		free(calls[i].resp);
	}
	free(calls);
	return rc;
}

static uint64_t ctl_blocks_stored(struct pool *p, const struct cmap *m)
{
	uint64_t blocks = 0;

	for (unsigned i = 0; m && i < cmap_node_count(m); i++) {
		struct ctl_node_stat st;

		if (cmap_node(m, i)->state == CMAP_NODE_OUT)
			continue;
		if (ctl_node_status(p, cmap_node(m, i)->addr, &st) < 0)
			return UINT64_MAX;   /* unknown: assume there are blocks */
		blocks += st.values[PROTO_STAT_BLOCKS];
	}
	return blocks;
}

static unsigned ctl_nodes_up(const struct cmap *m)
{
	unsigned up = 0;

	for (unsigned i = 0; i < cmap_node_count(m); i++)
		up += cmap_node(m, i)->state == CMAP_NODE_UP;
	return up;
}

static int ctl_save_seeds(const struct ctl *c, const struct clientconf *cc,
			  const struct cmap *m)
{
	const char *seeds[CLIENTCONF_MAX_SEEDS];
	size_t n = 0;

	for (unsigned i = 0; i < cmap_node_count(m) && n < CLIENTCONF_MAX_SEEDS; i++)
		if (cmap_node(m, i)->state != CMAP_NODE_OUT)
			seeds[n++] = cmap_node(m, i)->addr;
	return ctl_write_conf(c->config_dir, cc->cluster_id, cc->replicas, seeds, n);
}

int ctl_cmd_node_add(struct ctl *c, int argc, char **argv)
{
	const char *weight_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
		{ "weight", true, &weight_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct clientconf cc;
	struct pool_opts po;
	struct pool *p = NULL;
	struct pool_peer_info peer;
	struct cmap *prev = NULL, *next = NULL;
	struct cmap_node node;
	struct ctl_node_stat st;
	uint8_t sk[CTL_ADMIN_SK_BYTES], cid[CMAP_CLUSTER_ID_BYTES];
	uint8_t zero_cid[CMAP_CLUSTER_ID_BYTES] = { 0 };
	uint8_t *enc = NULL;
	size_t enc_len = 0, n_pos, reached = 0;
	uint64_t blocks = 0;
	unsigned width, moved = 0, pushed = 0, failed = 0;
	char idhex[2 * CMAP_NODE_ID_BYTES + 1];
	const char *addr;
	long weight = 0;
	int rc, idx, status = CTL_EXIT_FAIL;
	bool have_conf = false, have_sk = false;

	rc = ctl_args(c, argc, argv, opts, pos, 1, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (n_pos != 1) {
		ctl_err("node add: which node? usage: cairnctl node add HOST:PORT");
		return CTL_EXIT_USAGE;
	}
	addr = pos[0];
	if (!strchr(addr, ':') || strlen(addr) > CMAP_ADDR_MAX) {
		ctl_err("node add: '%s' is not HOST:PORT", addr);
		return CTL_EXIT_USAGE;
	}
	if (weight_s) {
		char *end;

		weight = strtol(weight_s, &end, 10);
		if (*end || weight < 1 || weight > 1000000) {
			ctl_err("--weight: '%s' is not a number from 1 to 1000000", weight_s);
			return CTL_EXIT_USAGE;
		}
	}
	if (ctl_load_conf(c, &cc) < 0)
		return CTL_EXIT_FAIL;
	have_conf = true;
	if (!cc.cluster_id || ctl_unhex(cc.cluster_id, cid, sizeof(cid)) < 0) {
		ctl_err("%s/cairnctl.conf: cluster-id is not %d hex characters",
			c->config_dir, 2 * CMAP_CLUSTER_ID_BYTES);
		goto out;
	}
	if (ctl_load_admin_sk(c, sk) < 0)
		goto out;
	have_sk = true;
	ctl_pool_opts(c, &po, CTL_ADMIN_TIMEOUT_MS);
	rc = pool_new(cc.secret, &po, &p);
	if (rc < 0) {
		ctl_err("cannot set up connections: %s", log_strerror(rc));
		goto out;
	}

	/* 1. Who is it? The handshake proves it knows our secret. */
	rc = pool_peer(p, addr, &peer);
	if (rc < 0) {
		ctl_err("cannot reach %s: %s", addr, ctl_conn_hint(rc));
		goto out;
	}
	ctl_hex(peer.node_id, sizeof(peer.node_id), idhex);
	if (memcmp(peer.cluster_id, zero_cid, sizeof(zero_cid)) &&
	    memcmp(peer.cluster_id, cid, sizeof(cid))) {
		char other[2 * CMAP_CLUSTER_ID_BYTES + 1];

		ctl_hex(peer.cluster_id, sizeof(peer.cluster_id), other);
		ctl_err("%s (node %.8s) belongs to another cluster (%s), not %s: "
			"refusing to add it", addr, idhex, other, cc.cluster_id);
		goto out;
	}

	/* 2. The current map: the newest one any seed (or the node) holds. */
	{
		const char *addrs[CLIENTCONF_MAX_SEEDS + 1];
		size_t n = 0;

		for (size_t i = 0; i < cc.n_seeds; i++)
			addrs[n++] = cc.seeds[i];
		addrs[n++] = addr;
		rc = ctl_fetch_map(p, addrs, n, cc.admin_pk, &prev, &reached);
	}
	if (rc < 0) {
		ctl_err("cannot read the cluster map: %s", rc == -EKEYREJECTED ?
			"a daemon holds a map signed by another admin key" :
			ctl_conn_hint(rc));
		goto out;
	}
	if (!prev && cc.n_seeds && reached < cc.n_seeds + 1)
		fprintf(stderr, "cairnctl: warning: only %zu of %zu known daemons "
			"answered and none has a map; starting a new one\n",
			reached, cc.n_seeds + 1);
	if (prev && memcmp(cmap_cluster_id(prev), cid, sizeof(cid))) {
		ctl_err("the daemons' map is for another cluster id than %s",
			cc.cluster_id);
		goto out;
	}

	/* 3. The next map. */
	if (prev)
		rc = cmap_copy(prev, &next);
	else
		rc = cmap_new(cid, cc.admin_pk, (unsigned)cc.replicas, &next);
	if (rc < 0) {
		ctl_err("cannot make the next map: %s", log_strerror(rc));
		goto out;
	}
	idx = cmap_node_find(next, peer.node_id);
	if (idx >= 0) {
		const struct cmap_node *nd = cmap_node(next, (unsigned)idx);

		if (strcmp(nd->addr, addr)) {
			ctl_err("node %.8s is already in the map at %s, not %s", idhex,
				nd->addr, addr);
			goto out;
		}
		if (nd->state == CMAP_NODE_UP) {
			/* Idempotent for scripts: make sure it has the map. */
			rc = cmap_encode(next, sk, &enc, &enc_len);
			if (!rc)
				rc = ctl_push_map(p, next, enc, enc_len, addr, &pushed, &failed);
			if (rc < 0)
				goto out;
			ctl_save_seeds(c, &cc, next);
			printf("node %s (%s) is already a member (epoch %llu)\n", idhex,
			       addr, (unsigned long long)cmap_epoch(next));
			status = CTL_EXIT_OK;
			goto out;
		}
		ctl_err("node %.8s is in the map as %s: bring it back is not "
			"supported yet", idhex,
			nd->state == CMAP_NODE_DRAINING ? "draining" : "out");
		goto out;
	}
	if (cmap_node_find_addr(next, addr) >= 0) {
		ctl_err("another node is already in the map at %s", addr);
		goto out;
	}
	if (!weight) {
		/* Weight from capacity: GiB of the node's disk, when it says. */
		weight = CTL_DEFAULT_WEIGHT;
		if (ctl_node_status(p, addr, &st) == 0 && st.values[PROTO_STAT_DISK_TOTAL])
			weight = (long)(st.values[PROTO_STAT_DISK_TOTAL] >> 30) + 1;
		if (weight > 1000000)
			weight = 1000000;
	}
	memset(&node, 0, sizeof(node));
	memcpy(node.id, peer.node_id, sizeof(node.id));
	snprintf(node.addr, sizeof(node.addr), "%s", addr);
	node.weight = (uint32_t)weight;
	node.state = CMAP_NODE_UP;
	rc = cmap_node_add(next, &node);
	if (rc < 0) {
		ctl_err("cannot add %s to the map: %s", addr, log_strerror(rc));
		goto out;
	}
	/* Fewer nodes than replicas: place on all of them for now, full width
	 * once enough nodes joined (status reports the cluster degraded). */
	width = (unsigned)cc.replicas;
	if (ctl_nodes_up(next) < width)
		width = ctl_nodes_up(next);
	rc = cmap_set_width(next, width);
	if (!rc)
		rc = cmap_place(prev, next);
	if (rc < 0) {
		ctl_err("cannot place slots: %s", log_strerror(rc));
		goto out;
	}
	cmap_set_epoch(next, (prev ? cmap_epoch(prev) : 0) + 1);
	if (prev) {
		moved = cmap_slots_moved(prev, next);
		/* Previous owners matter only if they hold blocks; an empty
		 * cluster needs no migration and gets a clean map. */
		if (moved)
			blocks = ctl_blocks_stored(p, prev);
		if (moved && !blocks)
			cmap_clear_prev(next);
	}

	/* 4. Sign and push to every node, the new one included. */
	rc = cmap_encode(next, sk, &enc, &enc_len);
	if (rc < 0) {
		ctl_err("cannot sign the map: %s", log_strerror(rc));
		goto out;
	}
	rc = ctl_push_map(p, next, enc, enc_len, addr, &pushed, &failed);
	if (rc < 0)
		goto out;
	rc = ctl_save_seeds(c, &cc, next);
	if (rc < 0)
		fprintf(stderr, "cairnctl: warning: cannot save the seed list in "
			"%s/cairnctl.conf: %s\n", c->config_dir, log_strerror(rc));

	if (c->json) {
		printf("{\"node_id\":\"%s\",\"addr\":", idhex);
		ctl_json_str(stdout, addr);
		printf(",\"weight\":%ld,\"epoch\":%llu,\"nodes\":%u,\"width\":%u,"
		       "\"slots_moved\":%u,\"pushed\":%u,\"push_failed\":%u,"
		       "\"migration_needed\":%s}\n", weight,
		       (unsigned long long)cmap_epoch(next), cmap_node_count(next),
		       width, moved, pushed, failed, moved && blocks ? "true" : "false");
	} else {
		printf("added node %s at %s (weight %ld): epoch %llu, %u nodes, "
		       "%u owners per slot, map pushed to %u node%s\n", idhex, addr,
		       weight, (unsigned long long)cmap_epoch(next),
		       cmap_node_count(next), width, pushed, pushed == 1 ? "" : "s");
	}
	if (width < (unsigned)cc.replicas)
		ctl_note(c, "note: %u node%s for %lld replicas: slots have %u owner%s "
			 "until more nodes join", ctl_nodes_up(next),
			 ctl_nodes_up(next) == 1 ? "" : "s", cc.replicas, width,
			 width == 1 ? "" : "s");
	if (moved && blocks)
		fprintf(stderr, "cairnctl: warning: %u slots moved to new owners "
			"while the cluster holds %s blocks; this version does not "
			"migrate data: blocks stay on their previous owners (kept in "
			"the map, reads fall back to them) until 'cairnctl rebalance' "
			"exists\n", moved, blocks == UINT64_MAX ?
			"an unknown number of" : "stored");
	status = CTL_EXIT_OK;
out:
	free(enc);
	cmap_free(prev);
	cmap_free(next);
	pool_free(p);
	if (have_sk)
		sodium_memzero(sk, sizeof(sk));
	if (have_conf)
		clientconf_release(&cc);
	return status;
}

/* ---- status ---------------------------------------------------------- */

static const char *ctl_state_name(unsigned st)
{
	return st == CMAP_NODE_UP ? "up" : st == CMAP_NODE_DRAINING ? "draining" :
	       st == CMAP_NODE_OUT ? "out" : "?";
}

/* The map from the seeds, with a one-line error; returns 0 or an exit status. */
static int ctl_current_map(const struct ctl *c, const struct clientconf *cc,
			   struct pool *p, struct cmap **m)
{
	size_t reached = 0;
	int rc;

	if (!cc->n_seeds) {
		ctl_err("no nodes yet: add one with 'cairnctl node add HOST:PORT'");
		return CTL_EXIT_FAIL;
	}
	rc = ctl_fetch_map(p, (const char *const *)cc->seeds, cc->n_seeds,
			   cc->admin_pk, m, &reached);
	if (rc == -EKEYREJECTED) {
		ctl_err("cannot talk to the cluster: %s", ctl_conn_hint(rc));
		return CTL_EXIT_FAIL;
	}
	if (rc < 0) {
		ctl_err("no daemon reachable (tried %zu seed%s from %s/cairnctl.conf, "
			"first %s): %s", cc->n_seeds, cc->n_seeds == 1 ? "" : "s",
			c->config_dir, cc->seeds[0], ctl_conn_hint(rc));
		return CTL_EXIT_FAIL;
	}
	if (!*m) {
		ctl_err("no daemon has a cluster map yet: add a node with "
			"'cairnctl node add HOST:PORT'");
		return CTL_EXIT_FAIL;
	}
	return 0;
}

int ctl_cmd_status(struct ctl *c, int argc, char **argv)
{
	const char *pos[1];
	struct clientconf cc;
	struct pool_opts po;
	struct pool *p = NULL;
	struct cmap *m = NULL;
	struct ctl_node_stat *st = NULL;
	unsigned *slots_owned = NULL, n_nodes, width, covered = 0, moving = 0;
	char cid_hex[2 * CMAP_CLUSTER_ID_BYTES + 1];
	size_t n_pos;
	int rc, status = CTL_EXIT_FAIL;
	bool ok;

	rc = ctl_args(c, argc, argv, NULL, pos, 0, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (ctl_load_conf(c, &cc) < 0)
		return CTL_EXIT_FAIL;
	ctl_pool_opts(c, &po, CTL_STATUS_TIMEOUT_MS);
	rc = pool_new(cc.secret, &po, &p);
	if (rc < 0) {
		ctl_err("cannot set up connections: %s", log_strerror(rc));
		goto out;
	}
	rc = ctl_current_map(c, &cc, p, &m);
	if (rc)
		goto out;
	n_nodes = cmap_node_count(m);
	width = cmap_width(m);
	st = calloc(n_nodes ? n_nodes : 1, sizeof(*st));
	slots_owned = calloc(n_nodes ? n_nodes : 1, sizeof(*slots_owned));
	if (!st || !slots_owned) {
		ctl_err("out of memory");
		goto out;
	}
	for (unsigned i = 0; i < n_nodes; i++) {
		if (cmap_node(m, i)->state == CMAP_NODE_OUT)
			st[i].err = -ENODEV;
		else
			ctl_node_status(p, cmap_node(m, i)->addr, &st[i]);
	}
	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		uint16_t own[CMAP_MAX_WIDTH], prv[CMAP_MAX_WIDTH];
		unsigned n = cmap_slot_owners(m, s, own), reach = 0;

		for (unsigned k = 0; k < n; k++) {
			if (own[k] >= n_nodes)
				continue;
			slots_owned[own[k]]++;
			reach += st[own[k]].err == 0;
		}
		covered += n >= width && reach >= width && width > 0;
		moving += cmap_slot_prev(m, s, prv) > 0;
	}
	ok = covered == CMAP_SLOTS && width >= (unsigned)cc.replicas;
	ctl_hex(cmap_cluster_id(m), CMAP_CLUSTER_ID_BYTES, cid_hex);

	if (c->json) {
		printf("{\"cluster_id\":\"%s\",\"epoch\":%llu,\"replicas\":%lld,"
		       "\"width\":%u,\"nodes\":[", cid_hex,
		       (unsigned long long)cmap_epoch(m), cc.replicas, width);
		for (unsigned i = 0; i < n_nodes; i++) {
			const struct cmap_node *nd = cmap_node(m, i);
			char id[2 * CMAP_NODE_ID_BYTES + 1];

			ctl_hex(nd->id, sizeof(nd->id), id);
			printf("%s{\"id\":\"%s\",\"addr\":", i ? "," : "", id);
			ctl_json_str(stdout, nd->addr);
			printf(",\"state\":\"%s\",\"weight\":%u,\"up\":%s,\"slots\":%u",
			       ctl_state_name(nd->state), nd->weight,
			       st[i].err ? "false" : "true", slots_owned[i]);
			if (st[i].err) {
				printf(",\"error\":");
				ctl_json_str(stdout, ctl_conn_hint(st[i].err));
			} else {
				static const struct { int key; const char *name; } keys[] = {
					{ PROTO_STAT_EPOCH, "epoch" },
					{ PROTO_STAT_BLOCKS, "blocks" },
					{ PROTO_STAT_BYTES, "bytes" },
					{ PROTO_STAT_DISK_TOTAL, "disk_total" },
					{ PROTO_STAT_DISK_FREE, "disk_free" },
					{ PROTO_STAT_PUTS, "puts" },
					{ PROTO_STAT_PUT_NEW, "put_new" },
					{ PROTO_STAT_PUT_BYTES, "put_bytes" },
					{ PROTO_STAT_GETS, "gets" },
					{ PROTO_STAT_GET_BYTES, "get_bytes" },
					{ PROTO_STAT_DELETES, "deletes" },
					{ PROTO_STAT_UPTIME_S, "uptime_s" },
					{ PROTO_STAT_CONNECTIONS, "connections" },
					{ PROTO_STAT_PROTO_ERRORS, "proto_errors" },
					{ PROTO_STAT_AUTH_FAILURES, "auth_failures" },
					{ PROTO_STAT_CORRUPT_BLOCKS, "corrupt_blocks" },
					{ PROTO_STAT_PACK_BYTES, "pack_bytes" },
					{ PROTO_STAT_PACK_DEAD_BYTES, "pack_dead_bytes" },
					{ PROTO_STAT_COMPACTIONS, "compactions" },
					{ PROTO_STAT_COMPACT_READ_BYTES, "compact_read_bytes" },
				};

				printf(",\"rtt_ms\":%.2f", st[i].rtt_ms);
				for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
					printf(",\"%s\":%llu", keys[k].name,
					       (unsigned long long)st[i].values[keys[k].key]);
			}
			putchar('}');
		}
		printf("],\"slots\":{\"total\":%u,\"covered\":%u,\"uncovered\":%u,"
		       "\"moving\":%u},\"ok\":%s}\n", CMAP_SLOTS, covered,
		       CMAP_SLOTS - covered, moving, ok ? "true" : "false");
	} else {
		printf("cluster %s  epoch %llu  replicas %lld  owners per slot %u\n\n",
		       cid_hex, (unsigned long long)cmap_epoch(m), cc.replicas, width);
		printf("%-16s  %-21s  %-8s  %-5s  %10s  %10s  %6s\n", "NODE", "ADDRESS",
		       "STATE", "REACH", "BLOCKS", "BYTES", "SLOTS");
		for (unsigned i = 0; i < n_nodes; i++) {
			const struct cmap_node *nd = cmap_node(m, i);
			char id[2 * CMAP_NODE_ID_BYTES + 1], b[32];

			ctl_hex(nd->id, sizeof(nd->id), id);
			id[16] = '\0';
			if (st[i].err)
				printf("%-16s  %-21s  %-8s  %-5s  %10s  %10s  %6u  (%s)\n", id,
				       nd->addr, ctl_state_name(nd->state), "down", "-", "-",
				       slots_owned[i], ctl_conn_hint(st[i].err));
			else
				printf("%-16s  %-21s  %-8s  %-5s  %10llu  %10s  %6u\n", id,
				       nd->addr, ctl_state_name(nd->state), "up",
				       (unsigned long long)st[i].values[PROTO_STAT_BLOCKS],
				       progress_fmt_bytes((double)st[i].values[PROTO_STAT_BYTES],
							  b, sizeof(b)), slots_owned[i]);
		}
		printf("\nslots: %u/%u covered (%u reachable owner%s each)%s", covered,
		       CMAP_SLOTS, width, width == 1 ? "" : "s",
		       moving ? "" : "\n");
		if (moving)
			printf(", %u moving (previous owners kept)\n", moving);
		if (width < (unsigned)cc.replicas)
			printf("degraded: the map places %u owner%s per slot, replicas "
			       "is %lld: add nodes\n", width, width == 1 ? "" : "s",
			       cc.replicas);
		if (covered < CMAP_SLOTS)
			printf("degraded: %u slots have fewer than %u reachable owners\n",
			       CMAP_SLOTS - covered, width);
	}
	status = ok ? CTL_EXIT_OK : CTL_EXIT_FAIL;
out:
	free(st);
	free(slots_owned);
	cmap_free(m);
	pool_free(p);
	clientconf_release(&cc);
	return status;
}

/* ---- map --------------------------------------------------------------- */

int ctl_cmd_map(struct ctl *c, int argc, char **argv)
{
	const char *slot_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
		{ "slot", true, &slot_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct clientconf cc;
	struct pool_opts po;
	struct pool *p = NULL;
	struct cmap *m = NULL;
	size_t n_pos;
	long slot = -1;
	int rc, status = CTL_EXIT_FAIL;

	rc = ctl_args(c, argc, argv, opts, pos, 0, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (slot_s) {
		char *end;

		slot = strtol(slot_s, &end, 10);
		if (*end || slot < 0 || slot >= (long)CMAP_SLOTS) {
			ctl_err("--slot: '%s' is not a slot number (0..%u)", slot_s,
				CMAP_SLOTS - 1);
			return CTL_EXIT_USAGE;
		}
	}
	if (ctl_load_conf(c, &cc) < 0)
		return CTL_EXIT_FAIL;
	ctl_pool_opts(c, &po, CTL_STATUS_TIMEOUT_MS);
	rc = pool_new(cc.secret, &po, &p);
	if (rc < 0) {
		ctl_err("cannot set up connections: %s", log_strerror(rc));
		goto out;
	}
	if (ctl_current_map(c, &cc, p, &m))
		goto out;
	if (c->json)
		printf("{\"epoch\":%llu,\"width\":%u,\"nodes\":[",
		       (unsigned long long)cmap_epoch(m), cmap_width(m));
	else
		printf("epoch %llu, %u owners per slot, %u nodes\n",
		       (unsigned long long)cmap_epoch(m), cmap_width(m),
		       cmap_node_count(m));
	for (unsigned i = 0; i < cmap_node_count(m); i++) {
		const struct cmap_node *nd = cmap_node(m, i);
		char id[2 * CMAP_NODE_ID_BYTES + 1];

		ctl_hex(nd->id, sizeof(nd->id), id);
		if (c->json) {
			printf("%s{\"index\":%u,\"id\":\"%s\",\"addr\":", i ? "," : "", i, id);
			ctl_json_str(stdout, nd->addr);
			printf(",\"weight\":%u,\"state\":\"%s\"}", nd->weight,
			       ctl_state_name(nd->state));
		} else {
			printf("  node %u  %s  %s  weight %u  %s\n", i, id, nd->addr,
			       nd->weight, ctl_state_name(nd->state));
		}
	}
	if (c->json)
		printf("]");
	for (unsigned s = 0; s < CMAP_SLOTS; s++) {
		uint16_t own[CMAP_MAX_WIDTH], prv[CMAP_MAX_WIDTH];
		unsigned n, np;

		if (slot >= 0 && s != (unsigned)slot)
			continue;
		if (slot < 0)
			break;
		n = cmap_slot_owners(m, s, own);
		np = cmap_slot_prev(m, s, prv);
		if (c->json) {
			printf(",\"slot\":%u,\"owners\":[", s);
			for (unsigned k = 0; k < n; k++)
				printf("%s%u", k ? "," : "", own[k]);
			printf("],\"previous\":[");
			for (unsigned k = 0; k < np; k++)
				printf("%s%u", k ? "," : "", prv[k]);
			printf("]");
		} else {
			printf("slot %u: owners", s);
			for (unsigned k = 0; k < n; k++)
				printf(" %u (%s)", own[k], cmap_node(m, own[k])->addr);
			if (np) {
				printf("; previous");
				for (unsigned k = 0; k < np; k++)
					printf(" %u", prv[k]);
			}
			putchar('\n');
		}
	}
	if (c->json)
		printf("}\n");
	status = CTL_EXIT_OK;
out:
	cmap_free(m);
	pool_free(p);
	clientconf_release(&cc);
	return status;
}
