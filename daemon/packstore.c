/*
 * packstore: blocks in pack files, indexed in memory (packstore.h).
 * The structures and the lock order are in packstore_int.h; the reserve
 * and compaction in packcompact.c.
 *
 * The index: per slot, an array sorted by address. A lookup is a binary
 * search in one slot (a million blocks make 61 a slot), a slot lists
 * as one copy, and an entry costs 44 bytes.
 */
#include "config.h"

#include "cluster/monotime.h"
#include "daemon/fileio.h"
#include "daemon/packstore_int.h"
#include "daemon/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define DEFAULT_LIMIT (64ull * 1024 * 1024)

/*
 * packs/verified holds a pack id: every pack up to it is whole and checked,
 * and is never written again, so an open reads only its record list file
 * (or, lacking one, the headers of its records). Packs after it were
 * written since, a crash may have torn their last records, and an open
 * reads them whole. It is written at open, once every pack there is
 * checked, and at a clean close, once every pack is synced; new packs
 * always take higher ids.
 */
#define VERIFIED_NAME "verified"

static const uint8_t ZEROS[PACK_ALIGN];
static const uint8_t ZEROS_HDR[PACK_REC_HEADER];

/* --- the index ----------------------------------------------------------- */

/* The entry for addr, or NULL and *at where it would go. */
struct idx_ent *idx_find(struct packstore *ps, const uint8_t *addr,
			 uint32_t *at)
{
	struct slot_idx *s = &ps->slots[pack_addr_slot(addr)];
	uint32_t lo = 0, hi = s->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->e[mid].addr, addr, PACK_ADDR_BYTES);

		if (c == 0)
			return &s->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return NULL;
}

int idx_insert(struct packstore *ps, const uint8_t *addr, uint32_t at,
	       uint32_t pack, uint32_t off, uint32_t len)
{
	struct slot_idx *s = &ps->slots[pack_addr_slot(addr)];

	if (s->n == s->cap) {
		uint32_t nc = s->cap ? 2 * s->cap : 8;
		struct idx_ent *ne = realloc(s->e, (size_t)nc * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		s->e = ne;
		s->cap = nc;
	}
	memmove(&s->e[at + 1], &s->e[at], (size_t)(s->n - at) * sizeof(*s->e));
	memcpy(s->e[at].addr, addr, PACK_ADDR_BYTES);
	s->e[at].pack = pack;
	s->e[at].off = off;
	s->e[at].len = len;
	s->n++;
	return 0;
}

void idx_remove(struct packstore *ps, struct idx_ent *ent)
{
	struct slot_idx *s = &ps->slots[pack_addr_slot(ent->addr)];
	uint32_t at = (uint32_t)(ent - s->e);

	memmove(&s->e[at], &s->e[at + 1], (size_t)(s->n - at - 1) * sizeof(*s->e));
	s->n--;
}

/* --- the packs ----------------------------------------------------------- */

struct pack_file *pack_by_id(struct packstore *ps, uint32_t id)
{
	size_t lo = 0, hi = ps->npacks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ps->packs[mid]->id == id)
			return ps->packs[mid];
		if (ps->packs[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void pack_name(uint32_t id, char out[16])
{
	snprintf(out, 16, "%08" PRIx32 ".pack", id);
}

/* Packs are added with rising ids, so at the end. Under lock (write). */
static int packs_add(struct packstore *ps, struct pack_file *pf)
{
	if (ps->npacks == ps->cap_packs) {
		size_t nc = ps->cap_packs ? 2 * ps->cap_packs : 16;
		struct pack_file **np = realloc(ps->packs, nc * sizeof(*np));

		if (!np)
			return -ENOMEM;
		ps->packs = np;
		ps->cap_packs = nc;
	}
	ps->packs[ps->npacks++] = pf;
	return 0;
}

void packs_drop(struct packstore *ps, struct pack_file *pf)
{
	for (size_t i = 0; i < ps->npacks; i++) {
		if (ps->packs[i] == pf) {
			memmove(&ps->packs[i], &ps->packs[i + 1],
				(ps->npacks - i - 1) * sizeof(*ps->packs));
			ps->npacks--;
			return;
		}
	}
}

void pack_file_free(struct pack_file *pf)
{
	if (!pf)
		return;
	free(pf->recs);
	free(pf);
}

/* --- record list files (packidx.h) ---------------------------------------- */

static void idxfile_name(uint32_t id, char out[16])
{
	snprintf(out, 16, "%08" PRIx32 ".idx", id);
}

void idxfile_unlink(struct packstore *ps, uint32_t id)
{
	char name[16];

	idxfile_name(id, name);
	(void)unlinkat(ps->dir_fd, name, 0);
}

/* Note a record of pf, as written or as the open found it. Memory
 * running out costs only the record list file of this pack. */
static void recs_add(struct pack_file *pf, enum pack_type type,
		     const uint8_t *addr, uint64_t off, uint32_t len,
		     struct pack_pos kill)
{
	struct packidx_ent *e;

	if (pf->recs_lost)
		return;
	if (pf->n_recs == pf->cap_recs) {
		size_t nc = pf->cap_recs ? 2 * pf->cap_recs : 64;
		struct packidx_ent *nr = realloc(pf->recs, nc * sizeof(*nr));

		if (!nr) {
			pf->recs_lost = true;
			return;
		}
		pf->recs = nr;
		pf->cap_recs = nc;
	}
	e = &pf->recs[pf->n_recs++];
	memcpy(e->addr, addr, PACK_ADDR_BYTES);
	e->off = (uint32_t)off;
	e->len = len;
	e->type = type;
	e->kill = type == PACK_TOMBSTONE ? kill : (struct pack_pos){ 0, 0 };
}

static void recs_drop(struct pack_file *pf)
{
	free(pf->recs);
	pf->recs = NULL;
	pf->n_recs = pf->cap_recs = 0;
}

/*
 * Write the record list file of pf, a pack that is checked, synced and
 * never written again, and let its list go. It is not synced: it is only
 * a shortcut for the next open, which reads the pack's headers instead
 * when the file is missing or does not check (a crash cut it short), and
 * the rename means nobody meets half a file otherwise. Best effort: a
 * failure costs that shortcut and nothing else.
 */
static void idxfile_write(struct packstore *ps, struct pack_file *pf)
{
	char name[16], tmp[24];
	size_t len = packidx_size(pf->n_recs);
	uint8_t *buf = NULL;
	int fd = -1;
	bool ok = false;

	if (pf->recs_lost || !len || pf->n_recs > UINT32_MAX)
		goto out;
	buf = malloc(len);
	if (!buf)
		goto out;
	packidx_encode(buf, pf->id, __atomic_load_n(&pf->size, __ATOMIC_RELAXED),
		       pf->recs, pf->n_recs);
	idxfile_name(pf->id, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(ps->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	{
		struct iovec iov = { buf, len };

		ok = fileio_pwritev_full(fd, &iov, 1, 0) == 0;
	}
	close(fd);
	if (ok)
		ok = renameat(ps->dir_fd, tmp, ps->dir_fd, name) == 0;
	if (!ok)
		(void)unlinkat(ps->dir_fd, tmp, 0);
out:
	free(buf);
	recs_drop(pf);
	pf->recs_lost = false;
}

int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;        /* shorter than the index says */
		got += (size_t)n;
	}
	return 0;
}

/*
 * Reads of a pack ask for exactly the bytes they need: a GET reads one
 * record, the header walk one header, compaction and a full check the
 * whole file in one call. The kernel's read-ahead would only add the
 * neighbouring records, which with R >= 2 are mostly blocks that clients
 * read from another owner: it doubled what a cold sequential read of a
 * file through the mount took from the disk.
 */
static void pack_fd_advise(int fd)
{
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
}

/* A new, empty pack: its header and its name are durable before any
 * record in it can be acknowledged. Under append_lock. */
static int pack_create(struct packstore *ps, struct pack_file **out)
{
	uint8_t hdr[PACK_FILE_HEADER];
	struct iovec iov = { hdr, sizeof(hdr) };
	struct pack_file *pf;
	char name[16];
	int fd, err;

	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return -ENOMEM;
	pf->id = ps->next_id;
	pack_name(pf->id, name);
	fd = openat(ps->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		free(pf);
		return err;
	}
	pack_file_header(hdr, pf->id);
	err = fileio_pwritev_full(fd, &iov, 1, 0);
	if (!err && (fdatasync(fd) < 0 || fsync(ps->dir_fd) < 0))
		err = -errno;
	if (err) {
		close(fd);
		unlinkat(ps->dir_fd, name, 0);
		free(pf);
		return err;
	}
	ps->next_id++;
	pack_fd_advise(fd);
	pf->fd = fd;
	pf->size = PACK_FILE_HEADER;
	*out = pf;
	return 0;
}

/*
 * Append one record to the newest pack, starting a new one first when it
 * is full. A tombstone records kill_before, or its own place when that is
 * NULL (a DELETE written now). Under append_lock.
 */
static int append_once(struct packstore *ps, enum pack_type type,
		       const uint8_t *addr, const void *data, uint32_t len,
		       const struct pack_pos *kill_before, struct pack_ticket *t);

/* The same; what frees space (tombstones, compaction's copies) may use
 * the reserve. */
int append_locked(struct packstore *ps, enum pack_type type,
		  const uint8_t *addr, const void *data, uint32_t len,
		  const struct pack_pos *kill_before, bool may_use_reserve,
		  struct pack_ticket *t)
{
	int err = append_once(ps, type, addr, data, len, kill_before, t);

	if (err == -ENOSPC && may_use_reserve && reserve_release(ps))
		err = append_once(ps, type, addr, data, len, kill_before, t);
	return err;
}

static int append_once(struct packstore *ps, enum pack_type type,
		       const uint8_t *addr, const void *data, uint32_t len,
		       const struct pack_pos *kill_before, struct pack_ticket *t)
{
	struct pack_file *pf = ps->active;
	uint8_t hdr[PACK_REC_HEADER], tomb[PACK_TOMB_BYTES];
	uint64_t rs, off;
	int err;

	if (type == PACK_TOMBSTONE)
		len = PACK_TOMB_BYTES;
	rs = pack_rec_size(len);
	if (!pf || __atomic_load_n(&pf->failed, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&pf->size, __ATOMIC_RELAXED) + rs >
		    __atomic_load_n(&ps->limit, __ATOMIC_RELAXED)) {
		struct pack_file *npf = NULL;

		if (pf && pf->size == PACK_FILE_HEADER && !pf->failed)
			goto have;       /* an empty pack takes any record */
		err = pack_create(ps, &npf);
		if (err)
			return err;
		pthread_rwlock_wrlock(&ps->lock);
		err = packs_add(ps, npf);
		pthread_rwlock_unlock(&ps->lock);
		if (err) {
			char name[16];

			close(npf->fd);
			pack_name(npf->id, name);
			unlinkat(ps->dir_fd, name, 0);
			free(npf);
			return err;
		}
		__atomic_store_n(&ps->active, npf, __ATOMIC_RELEASE);
		pf = npf;
	}
have:
	off = pf->size;
	if (off + rs > UINT32_MAX)
		return -EFBIG;
	if (type == PACK_TOMBSTONE) {
		struct pack_pos here = { pf->id, (uint32_t)off };

		pack_tomb_encode(tomb, kill_before ? *kill_before : here);
		data = tomb;
	}
	pack_rec_header(hdr, type, addr, data, len);
	{
		struct iovec iov[3] = {
			{ hdr, sizeof(hdr) },
			{ (void *)data, len },
			{ (void *)ZEROS, (size_t)(rs - PACK_REC_HEADER - len) },
		};

		err = fileio_pwritev_full(pf->fd, iov, 3, off);
	}
	if (err) {
		/* Nothing counts past pf->size; cut what a short write left
		 * so that no half record sits before the next one. */
		(void)!ftruncate(pf->fd, (off_t)off);
		return err;
	}
	__atomic_store_n(&pf->size, off + rs, __ATOMIC_RELAXED);
	recs_add(pf, type, addr, off, len,
		 type == PACK_TOMBSTONE ? pack_tomb_decode(tomb) : (struct pack_pos){ 0, 0 });
	if (type == PACK_TOMBSTONE)
		__atomic_add_fetch(&pf->tomb, rs, __ATOMIC_RELAXED);
	__atomic_add_fetch(&pf->pending, 1, __ATOMIC_RELAXED);
	memset(t, 0, sizeof(*t));
	t->pf = pf;
	t->pos.pack = pf->id;
	t->pos.off = (uint32_t)off;
	memcpy(t->addr, addr, PACK_ADDR_BYTES);
	t->len = len;
	t->tombstone = type == PACK_TOMBSTONE;
	return 0;
}

/* --- open: read every pack ----------------------------------------------- */

struct scan_ctx {
	struct packstore *ps;
	struct pack_file *pf;
	bool repaired;           /* a bad record's header was wiped */
	bool collect;            /* note the records for a record list file */
};

static int scan_rec(void *arg, const struct pack_rec *r, bool verified)
{
	struct scan_ctx *c = arg;
	struct packstore *ps = c->ps;
	struct idx_ent *ent;
	uint32_t at = 0;

	if (!verified) {
		/* Torn by a crash (never acknowledged) or rotted: gone from
		 * this daemon either way. Wipe its header, or the next open
		 * that reads headers only would take it for a block it holds
		 * and a PUT of it for a no-op. */
		struct iovec iov = { (void *)ZEROS_HDR, PACK_REC_HEADER };
		int err = fileio_pwritev_full(c->pf->fd, &iov, 1, r->off);

		if (err)
			return err;
		c->repaired = true;
		ps->bad_records++;
		return 0;
	}
	if (c->collect)
		recs_add(c->pf, r->type, r->addr, r->off, r->len,
			 r->type == PACK_TOMBSTONE ? pack_tomb_decode(r->data)
						   : (struct pack_pos){ 0, 0 });
	ent = idx_find(ps, r->addr, &at);
	if (r->type == PACK_BLOCK) {
		int err;

		if (ent) {
			/* Stored twice (a PUT after a DELETE, or a copy by a
			 * compaction cut short): the later record stands. The
			 * earlier one may yet be killed by a tombstone that a
			 * compaction moved past the later one, whose place
			 * (where the DELETE was) lies between the two. */
			struct pack_file *owner = pack_by_id(ps, ent->pack);

			if (owner)
				owner->live -= pack_rec_size(ent->len);
			ent->pack = c->pf->id;
			ent->off = (uint32_t)r->off;
			c->pf->live += pack_rec_size(r->len);
			return 0;
		}
		err = idx_insert(ps, r->addr, at, c->pf->id, (uint32_t)r->off, r->len);
		if (err)
			return err;
		c->pf->live += pack_rec_size(r->len);
		ps->blocks++;
		ps->bytes += r->len;
		return 0;
	}
	c->pf->tomb += pack_rec_size(r->len);
	if (ent) {
		struct pack_pos kb = pack_tomb_decode(r->data);
		struct pack_pos at_pos = { ent->pack, ent->off };

		if (pack_pos_cmp(at_pos, kb) < 0) {
			struct pack_file *owner = pack_by_id(ps, ent->pack);

			if (owner)
				owner->live -= pack_rec_size(ent->len);
			ps->blocks--;
			ps->bytes -= ent->len;
			idx_remove(ps, ent);
		}
	}
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The ids of DIR's packs, sorted. */
static int list_ids(struct packstore *ps, uint32_t **ids, size_t *n)
{
	DIR *d;
	struct dirent *e;
	size_t cap = 0;
	int fd = dup(ps->dir_fd), err = 0;

	*ids = NULL;
	*n = 0;
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		char name[16];
		unsigned long v;
		char *end;

		if (strlen(e->d_name) != 13 || strcmp(e->d_name + 8, ".pack"))
			continue;
		v = strtoul(e->d_name, &end, 16);
		pack_name((uint32_t)v, name);
		if (end != e->d_name + 8 || v > UINT32_MAX || strcmp(name, e->d_name))
			continue;
		if (*n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			uint32_t *ni = realloc(*ids, nc * sizeof(*ni));

			if (!ni) {
				err = -ENOMEM;
				break;
			}
			*ids = ni;
			cap = nc;
		}
		(*ids)[(*n)++] = (uint32_t)v;
	}
	closedir(d);
	if (!err && *n)
		qsort(*ids, *n, sizeof(**ids), id_cmp);
	return err;
}

/*
 * A verified pack: the records' headers alone, one small read each
 * (the kernel's read-ahead off, so block bytes are not read). -EAGAIN at
 * a header that does not check: the caller reads the whole pack instead.
 */
static int walk_headers(struct scan_ctx *c, uint64_t size)
{
	uint8_t h[PACK_REC_HEADER + PACK_TOMB_BYTES];
	uint64_t off = PACK_FILE_HEADER;
	int fd = c->pf->fd, err = 0;

	while (!err && off + PACK_REC_HEADER <= size) {
		size_t want = size - off < sizeof(h) ? (size_t)(size - off) : sizeof(h);
		struct pack_rec r;

		err = pread_full(fd, h, want, off);
		if (err)
			break;
		if (!pack_rec_decode_header(h, size - off, &r)) {
			err = -EAGAIN;
			break;
		}
		r.off = off;
		if (r.type == PACK_TOMBSTONE)
			r.data = h + PACK_REC_HEADER;    /* fits: decode checked */
		err = scan_rec(c, &r, true);
		off += pack_rec_size(r.len);
	}
	return err;
}

/* The whole pack, every record checked against its checksum. */
static int walk_all(struct scan_ctx *c, uint64_t size)
{
	struct pack_scan scan;
	uint8_t *buf = malloc((size_t)size);
	int err;

	if (!buf)
		return -ENOMEM;
	c->pf->tomb = 0;                 /* counted again from the start */
	err = pread_full(c->pf->fd, buf, (size_t)size, 0);
	if (!err)
		err = pack_parse(buf, (size_t)size, scan_rec, c, &scan);
	free(buf);
	if (!err && c->repaired && fdatasync(c->pf->fd) < 0)
		err = -errno;
	return err;
}

static int idxfile_rec(void *arg, const struct pack_rec *r)
{
	return scan_rec(arg, r, true);
}

int idxfile_read(struct packstore *ps, struct pack_file *pf,
		 int (*rec)(void *arg, const struct pack_rec *r), void *arg)
{
	char name[16];
	struct stat sb;
	uint8_t *buf = NULL;
	uint64_t size = __atomic_load_n(&pf->size, __ATOMIC_RELAXED);
	int fd, err;

	idxfile_name(pf->id, name);
	fd = openat(ps->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -EAGAIN : -errno;
	err = fstat(fd, &sb) < 0 ? -errno : 0;
	/* no more records than the pack has room for (64 bytes at least) */
	if (!err && (sb.st_size < PACKIDX_HEADER ||
		     (uint64_t)sb.st_size > packidx_size((size_t)(size /
								 PACK_REC_HEADER))))
		err = -EAGAIN;
	if (!err && !(buf = malloc((size_t)sb.st_size)))
		err = -ENOMEM;
	if (!err)
		err = pread_full(fd, buf, (size_t)sb.st_size, 0);
	close(fd);
	if (!err) {
		err = packidx_decode(buf, (size_t)sb.st_size, pf->id, size,
				     rec, arg);
		if (err == -EBADMSG)
			err = -EAGAIN;
	} else if (err == -EBADMSG) {
		err = -EAGAIN;           /* shrank while read */
	}
	free(buf);
	return err;
}

/* Read one pack into the index: its record list file or, without a good
 * one, the headers of its records when `whole` (verified before), else
 * every byte; a pack read either way keeps its records for a new list
 * file. A pack too damaged to read (its header gone) is left on disk, out
 * of the store, and counted. */
static int scan_pack(struct packstore *ps, uint32_t id, bool whole)
{
	struct scan_ctx c = { ps, NULL, false, false };
	uint8_t hdr[PACK_FILE_HEADER];
	struct pack_file *pf;
	struct stat sb;
	uint32_t hid;
	char name[16];
	int fd, err;

	pack_name(id, name);
	fd = openat(ps->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (sb.st_size < PACK_FILE_HEADER) {
		/* Made but never written: a crash while starting it, before
		 * any record in it could be acknowledged. */
		close(fd);
		return unlinkat(ps->dir_fd, name, 0) < 0 ? -errno : 0;
	}
	if ((uint64_t)sb.st_size > UINT32_MAX) {
		close(fd);
		return -EFBIG;
	}
	err = pread_full(fd, hdr, sizeof(hdr), 0);
	if (!err && (pack_check_file_header(hdr, sizeof(hdr), &hid) < 0 || hid != id)) {
		ps->bad_records++;
		close(fd);
		return 0;
	}
	pf = calloc(1, sizeof(*pf));
	if (!err && !pf)
		err = -ENOMEM;
	if (!err) {
		pack_fd_advise(fd);
		pf->id = id;
		pf->fd = fd;
		pf->size = (uint64_t)sb.st_size;
		err = packs_add(ps, pf);
	}
	if (err) {
		free(pf);
		close(fd);
		return err;
	}
	c.pf = pf;
	/* The list file is all or nothing (packidx_decode checks it whole
	 * first). What a header walk indexed before it gave up is indexed
	 * again the same way: a block held is not added twice, a tombstone
	 * kills the same entries; only its notes start again. */
	err = whole ? idxfile_read(ps, c.pf, idxfile_rec, &c) : -EAGAIN;
	if (!err) {
		ps->open_index++;
		return 0;
	}
	if (err != -EAGAIN)
		return err;
	c.collect = true;
	err = whole ? walk_headers(&c, pf->size) : -EAGAIN;
	if (!err)
		ps->open_headers++;
	if (err == -EAGAIN) {
		recs_drop(pf);
		pf->recs_lost = false;
		err = walk_all(&c, pf->size);
		if (!err)
			ps->open_whole++;
	}
	return err;
}

/* The id in packs/verified; 0 when there is none or it does not read as
 * one (then every pack is read whole: slow, never wrong). */
static uint32_t read_verified(struct packstore *ps)
{
	char buf[16] = "";
	unsigned long v;
	char *end;
	ssize_t n;
	int fd = openat(ps->dir_fd, VERIFIED_NAME, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n < 2 || buf[n - 1] != '\n' || buf[0] < '0' || buf[0] > '9')
		return 0;
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end != buf + n - 1 || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

/* Replace packs/verified with id, durably (a new file renamed over it). */
static int write_verified(struct packstore *ps, uint32_t id)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%" PRIu32 "\n", id);
	int fd, err = 0;

	fd = openat(ps->dir_fd, VERIFIED_NAME ".tmp",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0)
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && (renameat(ps->dir_fd, VERIFIED_NAME ".tmp", ps->dir_fd,
			      VERIFIED_NAME) < 0 || fsync(ps->dir_fd) < 0))
		err = -errno;
	return err;
}

int packstore_checkpoint(struct packstore *ps)
{
	struct pack_file *active, **sealed = NULL;
	uint32_t upto;
	size_t n = 0;
	int err = 0;

	pthread_mutex_lock(&ps->compact_lock);   /* no pack closed under us */
	pthread_mutex_lock(&ps->append_lock);    /* nor a new one made */
	pthread_rwlock_rdlock(&ps->lock);
	active = ps->active;
	upto = ps->verified;
	sealed = malloc((ps->npacks + 1) * sizeof(*sealed));
	for (size_t i = 0; sealed && i < ps->npacks; i++) {
		struct pack_file *pf = ps->packs[i];

		if (pf->id <= upto)
			continue;
		/* in id order: the first one still written to ends the run */
		if (pf == active || __atomic_load_n(&pf->pending, __ATOMIC_RELAXED) ||
		    __atomic_load_n(&pf->failed, __ATOMIC_RELAXED))
			break;
		sealed[n++] = pf;
		upto = pf->id;
	}
	pthread_rwlock_unlock(&ps->lock);
	pthread_mutex_unlock(&ps->append_lock);
	if (!sealed)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < n; i++)
		if (fdatasync(sealed[i]->fd) < 0)
			err = -errno;
	if (!err && n)
		err = write_verified(ps, upto);
	if (!err && n)
		ps->verified = upto;
	/* Their records are final: list them for the next open. Compaction
	 * (compact_lock) cannot remove them meanwhile. */
	for (size_t i = 0; !err && i < n; i++)
		idxfile_write(ps, sealed[i]);
	pthread_mutex_unlock(&ps->compact_lock);
	free(sealed);
	return err ? err : n > 0;
}

/* At a clean close: every pack durable, then all of them verified. */
static void close_verified(struct packstore *ps)
{
	if (!ps->ready || __atomic_load_n(&ps->sync_failed, __ATOMIC_RELAXED))
		return;
	for (size_t i = 0; i < ps->npacks; i++)
		if (fdatasync(ps->packs[i]->fd) < 0)
			return;
	if (write_verified(ps, ps->next_id - 1) < 0)
		return;
	for (size_t i = 0; i < ps->npacks; i++)
		if (ps->packs[i]->n_recs)
			idxfile_write(ps, ps->packs[i]);
}

/* Record list files whose pack is gone (a crash between removing the one
 * and the other) and temporary ones. At open, once every pack is read. */
static void remove_stray_idxfiles(struct packstore *ps)
{
	int fd = dup(ps->dir_fd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);    /* the dup shares list_ids' offset, at the end */
	while ((e = readdir(d))) {
		char *end;
		unsigned long v;

		if (strlen(e->d_name) < 12 || strncmp(e->d_name + 8, ".idx", 4))
			continue;
		v = strtoul(e->d_name, &end, 16);
		if (end != e->d_name + 8)
			continue;
		if (strcmp(end, ".idx") == 0 && v <= UINT32_MAX &&
		    pack_by_id(ps, (uint32_t)v))
			continue;
		if (strcmp(end, ".idx") == 0 || strcmp(end, ".idx.tmp") == 0)
			(void)unlinkat(ps->dir_fd, e->d_name, 0);
	}
	closedir(d);
}

int packstore_open(const char *dir, struct packstore **out)
{
	struct packstore *ps;
	uint32_t *ids = NULL;
	size_t n = 0;
	uint32_t verified = 0;
	int err = 0;

	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->dir_fd = -1;
	ps->limit = DEFAULT_LIMIT;
	pthread_mutex_init(&ps->compact_lock, NULL);
	pthread_mutex_init(&ps->append_lock, NULL);
	pthread_rwlock_init(&ps->lock, NULL);
	ps->dir = strdup(dir);
	if (!ps->dir) {
		err = -ENOMEM;
		goto out;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	ps->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ps->dir_fd < 0) {
		err = -errno;
		goto out;
	}
	verified = read_verified(ps);
	err = list_ids(ps, &ids, &n);
	for (size_t i = 0; i < n && !err; i++)
		err = scan_pack(ps, ids[i], ids[i] <= verified);
	/* A new pack for this run: the last one may end in a torn record.
	 * Above every id verified too, even of packs since removed, so that
	 * no new pack is ever taken for a checked one. */
	ps->next_id = (n && ids[n - 1] > verified ? ids[n - 1] : verified) + 1;
	if (!err && ps->next_id == 0)
		err = -EOVERFLOW;
	if (!err)
		err = write_verified(ps, ps->next_id - 1);
	ps->verified = ps->next_id - 1;
	/* Every pack is verified now: those read without a list file get
	 * one, so the next open reads none of them. */
	for (size_t i = 0; !err && i < ps->npacks; i++)
		if (ps->packs[i]->n_recs)
			idxfile_write(ps, ps->packs[i]);
	if (!err)
		remove_stray_idxfiles(ps);
	if (!err)
		reserve_take(ps);
	ps->ready = !err;
out:
	free(ids);
	if (err) {
		packstore_close(ps);
		return err;
	}
	*out = ps;
	return 0;
}

void packstore_close(struct packstore *ps)
{
	if (!ps)
		return;
	close_verified(ps);
	for (size_t i = 0; i < ps->npacks; i++) {
		close(ps->packs[i]->fd);
		pack_file_free(ps->packs[i]);
	}
	free(ps->packs);
	for (unsigned s = 0; s < SLOTS; s++)
		free(ps->slots[s].e);
	if (ps->dir_fd >= 0)
		close(ps->dir_fd);
	pthread_mutex_destroy(&ps->compact_lock);
	pthread_mutex_destroy(&ps->append_lock);
	pthread_rwlock_destroy(&ps->lock);
	free(ps->dir);
	free(ps);
}

void packstore_set_pack_limit(struct packstore *ps, uint64_t bytes)
{
	__atomic_store_n(&ps->limit, bytes, __ATOMIC_RELAXED);
}

/* --- blocks -------------------------------------------------------------- */

int packstore_has(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES])
{
	int r;

	pthread_rwlock_rdlock(&ps->lock);
	r = idx_find(ps, addr, NULL) != NULL;
	pthread_rwlock_unlock(&ps->lock);
	return r;
}

bool block_record_checks(const uint8_t *b, size_t want,
			 const uint8_t addr[PACK_ADDR_BYTES], struct pack_rec *r)
{
	return pack_rec_decode(b, want, r) && r->type == PACK_BLOCK &&
	       !memcmp(r->addr, addr, PACK_ADDR_BYTES) &&
	       r->len + (size_t)PACK_REC_HEADER == want && pack_rec_verify(b, r);
}

int packstore_get(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		  uint8_t **buf, const uint8_t **data, size_t *len)
{
	struct idx_ent *ent;
	struct pack_file *pf;
	struct pack_rec r;
	uint8_t *b = NULL;
	size_t want = 0;
	int err;

	uint32_t off = 0;

	/* The read itself runs without the lock (a cold read waits for the
	 * disk, and the committer must not wait for it): the pack is held by
	 * its readers count, and compaction closes it only once that is 0.
	 * If the block moves meanwhile, its old record is still whole. */
	pthread_rwlock_rdlock(&ps->lock);
	ent = idx_find(ps, addr, NULL);
	pf = ent ? pack_by_id(ps, ent->pack) : NULL;
	if (!ent) {
		err = -ENOENT;
	} else if (!pf) {
		err = -EIO;                  /* cannot happen: packs outlive entries */
	} else {
		want = PACK_REC_HEADER + (size_t)ent->len;
		off = ent->off;
		__atomic_add_fetch(&pf->readers, 1, __ATOMIC_ACQUIRE);
		err = 0;
	}
	pthread_rwlock_unlock(&ps->lock);
	if (!err) {
		b = malloc(want);
		err = b ? pread_full(pf->fd, b, want, off) : -ENOMEM;
		__atomic_sub_fetch(&pf->readers, 1, __ATOMIC_RELEASE);
	}
	if (!err && !block_record_checks(b, want, addr, &r))
		err = -EBADMSG;
	if (err) {
		free(b);
		return err;
	}
	*buf = b;
	*data = b + PACK_REC_HEADER;
	*len = r.len;
	return 0;
}

int packstore_append(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		     const void *data, size_t len, struct pack_ticket *t)
{
	int err;

	if (len >= PACK_MAX_BLOCK)
		return -E2BIG;
	pthread_mutex_lock(&ps->append_lock);
	err = append_locked(ps, PACK_BLOCK, addr, data, (uint32_t)len, NULL,
			    false, t);
	pthread_mutex_unlock(&ps->append_lock);
	return err;
}

int packstore_sync_tickets(struct packstore *ps, struct pack_ticket *const *t,
			   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pack_file *pf = t[i]->pf;
		bool seen = false;

		/* A batch names one pack, or two across a new one: a
		 * quadratic look for repeats costs nothing here. */
		for (size_t j = 0; j < i && !seen; j++)
			seen = t[j]->pf == pf;
		if (seen)
			continue;
		/* After a failed sync the kernel may have dropped pages of
		 * this pack and reports that once: no later record in it is
		 * trusted, and appends move on to a new pack. */
		if (__atomic_load_n(&pf->failed, __ATOMIC_RELAXED))
			return -EIO;
		if (fdatasync(pf->fd) < 0) {
			int err = -errno;

			__atomic_store_n(&pf->failed, true, __ATOMIC_RELAXED);
			__atomic_store_n(&ps->sync_failed, true, __ATOMIC_RELAXED);
			return err;
		}
	}
	return 0;
}

int packstore_commit(struct packstore *ps, struct pack_ticket *t)
{
	struct idx_ent *ent;
	uint32_t at = 0;
	int r = 0;

	pthread_rwlock_wrlock(&ps->lock);
	if (!t->tombstone) {
		ent = idx_find(ps, t->addr, &at);
		if (!ent) {
			r = idx_insert(ps, t->addr, at, t->pos.pack, t->pos.off, t->len);
			if (r == 0) {
				t->pf->live += pack_rec_size(t->len);
				ps->blocks++;
				ps->bytes += t->len;
				r = 1;
			}
		}
	}
	__atomic_sub_fetch(&t->pf->pending, 1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&ps->lock);
	t->pf = NULL;
	return r;
}

void packstore_release(struct packstore *ps, struct pack_ticket *t)
{
	(void)ps;
	if (t->pf)
		__atomic_sub_fetch(&t->pf->pending, 1, __ATOMIC_RELAXED);
	t->pf = NULL;
}

int packstore_delete(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		     struct pack_ticket *t, uint32_t *len)
{
	struct idx_ent *ent, saved;
	struct pack_file *owner;
	uint32_t at = 0;
	int err;

	/* append_lock first, so that no compaction copies this block forward
	 * between its removal here and the tombstone's append. */
	pthread_mutex_lock(&ps->append_lock);
	pthread_rwlock_wrlock(&ps->lock);
	ent = idx_find(ps, addr, NULL);
	if (!ent) {
		pthread_rwlock_unlock(&ps->lock);
		pthread_mutex_unlock(&ps->append_lock);
		return -ENOENT;
	}
	saved = *ent;
	owner = pack_by_id(ps, saved.pack);
	if (owner) {
		owner->live -= pack_rec_size(saved.len);
		owner->died_ms = mono_ms();
	}
	ps->blocks--;
	ps->bytes -= saved.len;
	idx_remove(ps, ent);
	pthread_rwlock_unlock(&ps->lock);

	err = append_locked(ps, PACK_TOMBSTONE, addr, NULL, 0, NULL, true, t);
	if (err) {                       /* the block stays, as it was */
		pthread_rwlock_wrlock(&ps->lock);
		if (!idx_find(ps, addr, &at) &&
		    idx_insert(ps, addr, at, saved.pack, saved.off, saved.len) == 0) {
			owner = pack_by_id(ps, saved.pack);
			if (owner)
				owner->live += pack_rec_size(saved.len);
			ps->blocks++;
			ps->bytes += saved.len;
		}
		pthread_rwlock_unlock(&ps->lock);
	}
	pthread_mutex_unlock(&ps->append_lock);
	*len = saved.len;
	return err;
}

int packstore_list(struct packstore *ps, unsigned slot,
		   struct store_entry **arr, size_t *n, size_t *cap)
{
	struct slot_idx *s;
	int err = 0;

	if (slot >= SLOTS)
		return -EINVAL;
	pthread_rwlock_rdlock(&ps->lock);
	s = &ps->slots[slot];
	if (*n + s->n > *cap) {
		size_t nc = *n + s->n + 64;
		struct store_entry *na = realloc(*arr, nc * sizeof(*na));

		if (!na)
			err = -ENOMEM;
		else {
			*arr = na;
			*cap = nc;
		}
	}
	for (uint32_t i = 0; !err && i < s->n; i++) {
		memcpy((*arr)[*n].addr, s->e[i].addr, PACK_ADDR_BYTES);
		(*arr)[*n].size = s->e[i].len;
		(*n)++;
	}
	pthread_rwlock_unlock(&ps->lock);
	return err;
}

int packstore_locate(struct packstore *ps, const uint8_t addr[PACK_ADDR_BYTES],
		     char *path, size_t path_len, uint64_t *off)
{
	struct idx_ent *ent;
	char name[16];
	int err = -ENOENT;

	pthread_rwlock_rdlock(&ps->lock);
	ent = idx_find(ps, addr, NULL);
	if (ent) {
		pack_name(ent->pack, name);
		snprintf(path, path_len, "%s/%s", ps->dir, name);
		*off = (uint64_t)ent->off + PACK_REC_HEADER;
		err = 0;
	}
	pthread_rwlock_unlock(&ps->lock);
	return err;
}

void packstore_get_stats(struct packstore *ps, struct packstore_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&ps->lock);
	out->blocks = ps->blocks;
	out->bytes = ps->bytes;
	out->packs = ps->npacks;
	for (size_t i = 0; i < ps->npacks; i++) {
		out->pack_bytes += __atomic_load_n(&ps->packs[i]->size, __ATOMIC_RELAXED);
		out->dead_bytes += dead_bytes(ps, ps->packs[i]);
	}
	pthread_rwlock_unlock(&ps->lock);
	out->bad_records = __atomic_load_n(&ps->bad_records, __ATOMIC_RELAXED);
	out->compactions = __atomic_load_n(&ps->compactions, __ATOMIC_RELAXED);
	out->compact_read = __atomic_load_n(&ps->compact_read, __ATOMIC_RELAXED);
	out->open_index = ps->open_index;
	out->open_headers = ps->open_headers;
	out->open_whole = ps->open_whole;
}
