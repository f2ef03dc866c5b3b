/*
 * clientconf: load a cluster config dir (secret, admin key, seeds).
 *
 * Not here: writing the dir (cairnctl cluster init does) or talking to the
 * cluster (blockio does, given what this returns).
 */
#include "cluster/clientconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster/conf.h"

static void cc_errf(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cc_errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

int clientconf_read_hex_file(const char *path, uint8_t *out, size_t n,
			     int secret, char *err, size_t err_len)
{
	char text[256];
	struct stat st;
	size_t bin_len = 0;
	const char *end;
	ssize_t got;
	int fd, rc = 0;

	if (2 * n + 2 > sizeof(text))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		cc_errf(err, err_len, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		cc_errf(err, err_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (secret && (st.st_mode & 077)) {
		cc_errf(err, err_len,
			"%s: mode %03o lets other users read a secret; run: chmod 600 %s",
			path, (unsigned)(st.st_mode & 0777), path);
		rc = -EACCES;
		goto out;
	}
	got = read(fd, text, sizeof(text) - 1);
	if (got < 0) {
		rc = -errno;
		cc_errf(err, err_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	text[got] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	if (strlen(text) != 2 * n ||
	    sodium_hex2bin(out, n, text, 2 * n, NULL, &bin_len, &end) ||
	    bin_len != n) {
		cc_errf(err, err_len, "%s: expected one line of %zu hex characters",
			path, 2 * n);
		rc = -EINVAL;
	}
	sodium_memzero(text, sizeof(text));
out:
	close(fd);
	return rc;
}

int clientconf_load(const char *dir, struct clientconf *out, char *err,
		    size_t err_len)
{
	char path[4096], *seeds = NULL, *save = NULL;
	struct conf_option opts[] = {
		{ "cluster-id", CONF_STRING, &out->cluster_id, NULL, 0, 0, "cluster id" },
		{ "replicas", CONF_INT, &out->replicas, "2", 1, 16, "replicas" },
		{ "seeds", CONF_STRING, &seeds, "", 0, 0, "daemon addresses" },
		{ NULL, 0, NULL, NULL, 0, 0, NULL },
	};
	int rc;

	memset(out, 0, sizeof(*out));
	out->dir = strdup(dir);
	if (!out->dir)
		return -ENOMEM;
	rc = conf_defaults(opts, err, err_len);
	if (rc < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/cluster.secret", dir);
	rc = clientconf_read_hex_file(path, out->secret, 32, 1, err, err_len);
	if (rc < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/admin.pub", dir);
	rc = clientconf_read_hex_file(path, out->admin_pk, 32, 0, err, err_len);
	if (rc < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/cairnctl.conf", dir);
	rc = conf_load_file(opts, path, err, err_len);
	if (rc < 0)
		goto fail;
	for (char *s = strtok_r(seeds, ", \t", &save); s;
	     s = strtok_r(NULL, ", \t", &save)) {
		if (out->n_seeds == CLIENTCONF_MAX_SEEDS)
			break;
		out->seeds[out->n_seeds] = strdup(s);
		if (!out->seeds[out->n_seeds]) {
			rc = -ENOMEM;
			goto fail;
		}
		out->n_seeds++;
	}
	free(seeds);
	return 0;
fail:
	free(seeds);
	clientconf_release(out);
	return rc;
}

void clientconf_release(struct clientconf *c)
{
	for (size_t i = 0; i < c->n_seeds; i++)
		free(c->seeds[i]);
	free(c->cluster_id);
	free(c->dir);
	sodium_memzero(c->secret, sizeof(c->secret));
	memset(c, 0, sizeof(*c));
}
