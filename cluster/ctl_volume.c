/*
 * ctl_volume: cairnctl volume create, and what put, get and bench share to
 * reach a volume: its key file (asking for the passphrase when it has one),
 * the key set of its manifests, a connection to the cluster.
 *
 * volume create writes a new volume key (random keys and the chunker's
 * sizes) to DIR/volumes/NAME.key or --out, under a passphrase if asked; it
 * never overwrites one. It sends nothing to the cluster.
 *
 * Not here: what is stored under a volume (ctl_put.c, ctl_get.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "chunker/chunker.h"
#include "cluster/blockio.h"
#include "cluster/conf.h"
#include "cluster/ctl.h"
#include "cluster/log.h"
#include "crypto/keys.h"

/* ---- volume keys and the cluster --------------------------------------- */

int ctl_load_volume(const struct ctl *c, const char *path_arg, struct keys **k)
{
	char path[4096], err[LOG_ERRBUF] = "", pass[512];
	const char *path_s = path_arg;
	int rc, pl = 0, need;

	if (!path_s)
		path_s = ctl_path(c, "volumes/default.key", path, sizeof(path));
	need = keys_file_needs_passphrase(path_s);
	if (need == -ENOENT) {
		if (path_arg)
			ctl_err("no volume key file at %s", path_s);
		else
			ctl_err("no volume key: pass --volume KEYFILE, or create the "
				"default one with 'cairnctl volume create default' (%s)",
				path_s);
		return need;
	}
	if (need > 0) {
		pl = ctl_read_passphrase("Volume passphrase: ", false, pass, sizeof(pass));
		if (pl < 0) {
			ctl_err("%s is protected by a passphrase: set CAIRNCTL_PASSPHRASE "
				"or run on a terminal", path_s);
			return pl;
		}
	}
	rc = keys_file_read(path_s, need > 0 ? pass : NULL, (size_t)(pl > 0 ? pl : 0),
			    k, err, sizeof(err));
	sodium_memzero(pass, sizeof(pass));
	if (rc == -EKEYREJECTED)
		ctl_err("wrong passphrase for %s", path_s);
	else if (rc < 0)
		ctl_err("cannot read the volume key: %s",
			err[0] ? err : log_strerror(rc));
	return rc;
}

int ctl_connect(const struct ctl *c, const struct clientconf *cc,
		struct blockio **b)
{
	struct blockio_opts bo;
	int rc;

	if (!cc->n_seeds) {
		ctl_err("no nodes yet: add one with 'cairnctl node add HOST:PORT'");
		return -ENOENT;
	}
	memset(&bo, 0, sizeof(bo));
	ctl_pool_opts(c, &bo.pool, 30000);
	rc = blockio_new((const char *const *)cc->seeds, cc->n_seeds, cc->secret,
			 cc->admin_pk, &bo, b);
	if (rc == -ENOENT)
		ctl_err("no daemon has a cluster map yet: add a node with "
			"'cairnctl node add HOST:PORT'");
	else if (rc < 0)
		ctl_err("cannot connect to the cluster (seeds %s%s): %s", cc->seeds[0],
			cc->n_seeds > 1 ? ",..." : "", rc == -ECONNREFUSED ||
			rc == -ETIMEDOUT || rc == -EHOSTUNREACH ?
			"no daemon reachable" : ctl_conn_hint(rc));
	return rc;
}

int ctl_meta_keys(const struct keys *k, struct keys **meta)
{
	return keys_from_master(keys_subkey(k, KEYS_META), keys_volume(k), meta);
}

/* ---- volume create ------------------------------------------------------ */

static int ctl_size_opt(const char *name, const char *s, uint32_t *out)
{
	uint64_t v;

	if (!s)
		return 0;
	if (conf_parse_size(s, &v) < 0 || v > UINT32_MAX) {
		ctl_err("--%s: '%s' is not a size (e.g. 256K)", name, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

int ctl_cmd_volume_create(struct ctl *c, int argc, char **argv)
{
	const char *out_s = NULL, *min_s = NULL, *avg_s = NULL, *max_s = NULL, *pos[1];
	bool use_pass = false;
	const struct ctl_opt opts[] = {
		{ "out", true, &out_s, NULL },
		{ "passphrase", false, NULL, &use_pass },
		{ "chunk-min", true, &min_s, NULL },
		{ "chunk-avg", true, &avg_s, NULL },
		{ "chunk-max", true, &max_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct keys_volume vol;
	struct chunker_params cp;
	struct keys *k = NULL;
	char path[4096], pass[512], idhex[2 * KEYS_VOLUME_ID_BYTES + 1];
	size_t n_pos;
	int rc, pl = 0;

	rc = ctl_args(c, argc, argv, opts, pos, 1, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if (n_pos != 1) {
		ctl_err("volume create: usage: cairnctl volume create NAME [--out FILE]");
		return CTL_EXIT_USAGE;
	}
	if (!pos[0][0] || strlen(pos[0]) > KEYS_NAME_MAX || strchr(pos[0], '/') ||
	    pos[0][0] == '.') {
		ctl_err("volume create: '%s' is not a volume name (1..%d characters, "
			"no '/', not starting with '.')", pos[0], KEYS_NAME_MAX);
		return CTL_EXIT_USAGE;
	}
	memset(&vol, 0, sizeof(vol));
	snprintf(vol.name, sizeof(vol.name), "%s", pos[0]);
	chunker_params_default(&cp);
	if (ctl_size_opt("chunk-min", min_s, &cp.min_size) ||
	    ctl_size_opt("chunk-avg", avg_s, &cp.avg_size) ||
	    ctl_size_opt("chunk-max", max_s, &cp.max_size))
		return CTL_EXIT_USAGE;
	rc = chunker_params_check(&cp);
	if (rc < 0) {
		ctl_err("volume create: chunk sizes %u/%u/%u: %s", cp.min_size,
			cp.avg_size, cp.max_size, chunker_params_strerror(rc));
		return CTL_EXIT_USAGE;
	}
	vol.chunk_min = cp.min_size;
	vol.chunk_avg = cp.avg_size;
	vol.chunk_max = cp.max_size;
	if (out_s) {
		snprintf(path, sizeof(path), "%s", out_s);
	} else {
		ctl_path(c, "volumes", path, sizeof(path));
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			ctl_err("cannot create %s: %s", path, strerror(errno));
			return CTL_EXIT_FAIL;
		}
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s.key",
			 pos[0]);
	}
	if (use_pass) {
		pl = ctl_read_passphrase("New volume passphrase: ", true, pass,
					 sizeof(pass));
		if (pl <= 0) {
			ctl_err("volume create: %s", pl == -EINVAL ? "the passphrases differ" :
				pl == 0 ? "an empty passphrase protects nothing" :
				"no passphrase: set CAIRNCTL_PASSPHRASE or run on a terminal");
			return CTL_EXIT_FAIL;
		}
	}
	rc = keys_generate(&vol, &k);
	if (!rc)
		rc = keys_file_write(path, k, use_pass ? pass : NULL, (size_t)pl);
	sodium_memzero(pass, sizeof(pass));
	if (rc < 0) {
		ctl_err("cannot write the volume key %s: %s", path, rc == -EEXIST ?
			"it exists already (a volume key is never overwritten)" :
			log_strerror(rc));
		keys_free(k);
		return CTL_EXIT_FAIL;
	}
	ctl_hex(keys_volume(k)->volume_id, KEYS_VOLUME_ID_BYTES, idhex);
	if (c->json) {
		printf("{\"volume\":");
		ctl_json_str(stdout, vol.name);
		printf(",\"volume_id\":\"%s\",\"key_file\":", idhex);
		ctl_json_str(stdout, path);
		printf(",\"passphrase\":%s}\n", use_pass ? "true" : "false");
	} else {
		printf("%s\n", path);
		ctl_note(c, "volume %s (id %s): key written to %s; keep a copy, "
			 "nothing can be read without it", vol.name, idhex, path);
	}
	keys_free(k);
	return CTL_EXIT_OK;
}
