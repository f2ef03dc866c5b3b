/*
 * srv: cairnd's server: the libev loop, connections, the handshake, the
 * operations of the wire protocol, the cluster map it holds, and gossip.
 *
 * Knows nothing of option parsing (cairnd.c does that).
 * Thread-safety: srv_run on one thread; srv_new/srv_free around it.
 */
#ifndef CAIRN_SRV_H
#define CAIRN_SRV_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/handshake.h"
#include "cluster/cmap.h"

struct srv_opts {
	const char *data_dir;
	const char *listen;            /* "host:port"; port 0 picks one */
	uint8_t secret[HS_SECRET_BYTES];
	bool have_admin_pk;            /* else pinned from the first map */
	uint8_t admin_pk[CMAP_PK_BYTES];
	unsigned workers;
	unsigned max_connections;
	double idle_timeout_s;
	double handshake_timeout_s;
	double frame_timeout_s;        /* a started frame must complete */
	double gossip_interval_s;      /* 0: no gossip */
	bool buffered_io;              /* block files through the page cache */
};

struct srv;

/* Open the data dir (node id, map, block store) and bind the listener;
 * writes DATA/listen-addr. Returns 0 or -errno (logged). */
int srv_new(const struct srv_opts *o, struct srv **out)
	__attribute__((warn_unused_result));
/* Serve until SIGTERM or SIGINT; then stop accepting, finish disk work in
 * flight and return 0. */
int srv_run(struct srv *s);
void srv_free(struct srv *s);

#endif
