/*
 * ctl_bench: the hidden cairnctl bench, block PUT/GET throughput through
 * blockio/pool (tests/bench/bench_cluster.sh runs it).
 *
 * One real sealed block of --size bytes is stored under --count random
 * addresses by --threads workers, each PUTting batches with
 * blockio_put_many(); then every block is read back with GETs kept
 * --window deep on the connections of its first owner.
 *
 * Not here: chunking, dedup, manifests, failover: it measures the block
 * path under put and get, not put and get. Not listed in --help.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chunker/chunker.h"
#include "cluster/blockio.h"
#include "cluster/conf.h"
#include "cluster/ctl.h"
#include "cluster/log.h"
#include "cluster/progress.h"
#include "cluster/proto.h"
#include "crypto/keys.h"
#include "crypto/seal.h"

struct bench_job {
	struct blockio *b;
	const uint8_t (*addrs)[32];
	const uint8_t *blk;
	size_t blk_len, count, batch;
	_Atomic size_t next;
	_Atomic int err;
};

static void *bench_put_worker(void *arg)
{
	struct bench_job *j = arg;
	const void **blks = calloc(j->batch, sizeof(*blks));
	size_t *lens = calloc(j->batch, sizeof(*lens));
	int *errs = calloc(j->batch, sizeof(*errs));

	for (size_t i = 0; blks && lens && errs && i < j->batch; i++) {
		blks[i] = j->blk;
		lens[i] = j->blk_len;
	}
	while (blks && lens && errs && !atomic_load(&j->err)) {
		size_t from = atomic_fetch_add(&j->next, j->batch), k;
		int rc, zero = 0;

		if (from >= j->count)
			break;
		k = j->count - from < j->batch ? j->count - from : j->batch;
		rc = blockio_put_many(j->b, j->addrs + from, (const void *const *)blks,
				      lens, k, errs);
		if (rc < 0)
			atomic_compare_exchange_strong(&j->err, &zero, rc);
	}
	if (!blks || !lens || !errs) {
		int zero = 0;

		atomic_compare_exchange_strong(&j->err, &zero, -ENOMEM);
	}
	free(blks);
	free(lens);
	free(errs);
	return NULL;
}

/* GETs kept `window` deep on the connections of the first owners. */
static int bench_get(struct blockio *b, const struct cmap *m,
		     const uint8_t (*addrs)[32], size_t count, size_t blk_len,
		     size_t window)
{
	struct pool *p = blockio_pool(b);
	struct pool_call *calls = calloc(window, sizeof(*calls));
	uint8_t (*reqs)[40] = calloc(window, sizeof(*reqs));
	size_t started = 0, done = 0;
	int rc = 0;

	if (!calls || !reqs) {
		free(calls);
		free(reqs);
		return -ENOMEM;
	}
	while (done < count) {
		while (started < count && started - done < window) {
			struct pool_call *pc = &calls[started % window];
			uint8_t *rq = reqs[started % window];
			uint16_t own[CMAP_MAX_WIDTH];

			if (!cmap_slot_owners(m, slot_of_addr(addrs[started]), own)) {
				rc = -ENOENT;
				goto out;
			}
			memset(pc, 0, sizeof(*pc));
			proto_put_u64(rq, cmap_epoch(m));
			memcpy(rq + 8, addrs[started], 32);
			pc->node = cmap_node(m, own[0])->addr;
			pc->opcode = PROTO_OP_GET;
			pc->req = rq;
			pc->req_len = 40;
			pool_start(p, pc);
			started++;
		}
		{
			struct pool_call *pc = &calls[done % window];
			int err = pool_wait(p, pc);

			if (!err && pc->resp_len != blk_len)
				err = -EBADMSG;
			free(pc->resp);
			pc->resp = NULL;
			if (err && !rc)
				rc = err;
			done++;
		}
	}
out:
	while (done < started) {
		pool_wait(p, &calls[done % window]);
		free(calls[done % window].resp);
		done++;
	}
	free(calls);
	free(reqs);
	return rc;
}

int ctl_cmd_bench(struct ctl *c, int argc, char **argv)
{
	const char *size_s = NULL, *count_s = NULL, *window_s = NULL,
		   *threads_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
		{ "size", true, &size_s, NULL },
		{ "count", true, &count_s, NULL },
		{ "window", true, &window_s, NULL },
		{ "threads", true, &threads_s, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct clientconf cc;
	struct blockio *b = NULL;
	struct cmap *m = NULL;
	struct keys *k = NULL;
	struct keys_volume vol = { .name = "bench" };
	struct seal_ctx *sc = NULL;
	struct bench_job j;
	uint8_t (*addrs)[32] = NULL, *plain = NULL, *blk = NULL, zaddr[32] = { 0 };
	uint64_t size = 256 * 1024, count = 0, window = 256, threads = 4;
	pthread_t th[16];
	unsigned started = 0;
	double t0, put_s, get_s;
	size_t n_pos;
	ssize_t bl;
	int rc, status = CTL_EXIT_FAIL;
	bool have_conf = false;

	rc = ctl_args(c, argc, argv, opts, pos, 0, &n_pos);
	if (rc)
		return ctl_args_status(rc);
	if ((size_s && (conf_parse_size(size_s, &size) < 0 || size < 1024 ||
			size > SEAL_MAX_CHUNK)) ||
	    (count_s && conf_parse_size(count_s, &count) < 0) ||
	    (window_s && (conf_parse_size(window_s, &window) < 0 || !window)) ||
	    (threads_s && (conf_parse_size(threads_s, &threads) < 0 || !threads ||
			   threads > 16))) {
		ctl_err("bench: usage: cairnctl bench [--size 256K] [--count N] "
			"[--window W] [--threads T]");
		return CTL_EXIT_USAGE;
	}
	if (!count)
		count = size >= 65536 ? (256u << 20) / size : 100000;
	if (ctl_load_conf(c, &cc) < 0)
		return CTL_EXIT_FAIL;
	have_conf = true;
	if (ctl_connect(c, &cc, &b) < 0)
		goto out;
	rc = blockio_map(b, &m);
	vol.chunk_min = CHUNKER_MIN_DEFAULT;
	vol.chunk_avg = CHUNKER_AVG_DEFAULT;
	vol.chunk_max = CHUNKER_MAX_DEFAULT;
	if (!rc)
		rc = keys_generate(&vol, &k);
	if (!rc)
		rc = seal_ctx_new(-1, &sc);
	addrs = malloc(count * sizeof(*addrs));
	plain = malloc(size);
	blk = malloc(seal_bound(size));
	if (rc < 0 || !addrs || !plain || !blk) {
		ctl_err("bench: cannot set up: %s", log_strerror(rc ? rc : -ENOMEM));
		goto out;
	}
	/* One real sealed block of exactly `size` bytes, stored under many
	 * random addresses: daemons see realistic blocks and no two PUTs dedup. */
	randombytes_buf(plain, size);
	bl = seal_block(sc, k, zaddr, plain, size - SEAL_OVERHEAD_BYTES, blk,
			seal_bound(size));
	randombytes_buf(addrs, count * sizeof(*addrs));
	if (bl < 0) {
		ctl_err("bench: cannot seal: %s", log_strerror((int)bl));
		goto out;
	}

	memset(&j, 0, sizeof(j));
	j.b = b;
	j.addrs = (const uint8_t (*)[32])addrs;
	j.blk = blk;
	j.blk_len = (size_t)bl;
	j.count = count;
	j.batch = window / threads ? window / threads : 1;
	t0 = progress_now();
	for (; started < threads; started++)
		if (pthread_create(&th[started], NULL, bench_put_worker, &j))
			break;
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	put_s = progress_now() - t0;
	if (atomic_load(&j.err) || !started) {
		ctl_err("bench: PUT failed: %s", ctl_conn_hint(atomic_load(&j.err)));
		goto out;
	}
	t0 = progress_now();
	rc = bench_get(b, m, (const uint8_t (*)[32])addrs, count, (size_t)bl, window);
	get_s = progress_now() - t0;
	if (rc < 0) {
		ctl_err("bench: GET failed: %s", ctl_conn_hint(rc));
		goto out;
	}
	if (c->json)
		printf("{\"size\":%zd,\"count\":%llu,\"width\":%u,\"window\":%llu,"
		       "\"put_seconds\":%.4f,\"get_seconds\":%.4f,\"put_mb_s\":%.1f,"
		       "\"get_mb_s\":%.1f,\"put_ops_s\":%.0f,\"get_ops_s\":%.0f}\n",
		       bl, (unsigned long long)count, cmap_width(m),
		       (unsigned long long)window, put_s, get_s,
		       (double)bl * (double)count / put_s / 1e6,
		       (double)bl * (double)count / get_s / 1e6,
		       (double)count / put_s, (double)count / get_s);
	else
		printf("blocks of %zd bytes x %llu, %u owners each, window %llu:\n"
		       "  PUT %.1f MB/s  %.0f ops/s\n  GET %.1f MB/s  %.0f ops/s\n",
		       bl, (unsigned long long)count, cmap_width(m),
		       (unsigned long long)window,
		       (double)bl * (double)count / put_s / 1e6, (double)count / put_s,
		       (double)bl * (double)count / get_s / 1e6, (double)count / get_s);
	status = CTL_EXIT_OK;
out:
	free(addrs);
	free(plain);
	free(blk);
	seal_ctx_free(sc);
	keys_free(k);
	cmap_free(m);
	blockio_free(b);
	if (have_conf)
		clientconf_release(&cc);
	return status;
}
