/*
 * clientconf: what a client needs to reach a cluster, read from a config
 * dir made by `cairnctl cluster init`:
 *
 *   DIR/cluster.secret   64 hex chars, mode 0600 (the handshake secret)
 *   DIR/admin.pub        64 hex chars (verifies cluster maps)
 *   DIR/cairnctl.conf    INI: cluster-id, replicas, seeds = host:port,...
 *
 * cairnctl and cairnfs both start from here. Group- or world-readable
 * secret files are refused (-EACCES) with a message saying so.
 */
#ifndef CAIRN_CLIENTCONF_H
#define CAIRN_CLIENTCONF_H

#include <stddef.h>
#include <stdint.h>

#define CLIENTCONF_MAX_SEEDS 64

struct clientconf {
	char *dir;
	uint8_t secret[32];
	uint8_t admin_pk[32];
	char *seeds[CLIENTCONF_MAX_SEEDS];
	size_t n_seeds;
	char *cluster_id;     /* hex, as written by cluster init */
	long long replicas;
};

/* Returns 0, -ENOENT (no such dir or file: err names it), -EACCES (secret
 * readable by others), -EINVAL (malformed: err says which file and why). */
int clientconf_load(const char *dir, struct clientconf *out, char *err,
		    size_t err_len) __attribute__((warn_unused_result));
void clientconf_release(struct clientconf *c);

/* Read a file holding one line of 2*n hex chars into out[0..n). With
 * secret set, the file must not be readable by group or others. */
int clientconf_read_hex_file(const char *path, uint8_t *out, size_t n,
			     int secret, char *err, size_t err_len);

#endif
