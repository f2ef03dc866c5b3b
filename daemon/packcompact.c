/*
 * packcompact: the pack store's compaction and its reserve (packstore.h;
 * the structures and the lock order are in packstore_int.h).
 *
 * Compaction: a pack the store has moved on from is never written again.
 * Once more than half of it is dead, and if its live records fit on the
 * disk, packstore_compact copies them to the newest pack, makes that
 * durable, points the index at the copies and removes the old pack. The
 * newest pack, once more than half dead, is sealed so that it can be too.
 * Only the live records are read, found through the pack's record list
 * (a pack without one is read whole), and a pack still losing blocks is
 * left to settle first: compacted halfway through a big delete, the rest
 * of it would be copied forward only to die a moment later.
 *
 * The reserve. A pack store gives space back only by compaction, which
 * first writes a pack's live blocks again, and a DELETE first appends a
 * tombstone: on a full disk neither could happen, and deleting could never
 * free space. So the store keeps a preallocated file that PUTs cannot use.
 * A tombstone or a compaction copy that meets ENOSPC frees it and tries
 * again; once a compaction has given space back, the reserve is taken
 * again. Its size: one pack (at least twice what a compaction copies), at
 * most a quarter of the filesystem (disks in tests are small).
 */
#include "config.h"

#include "daemon/packstore_int.h"

#include "cluster/monotime.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define RESERVE_NAME "reserve"

/* --- the reserve --------------------------------------------------------- */

static int truncateat_zero(int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 0) < 0)
		err = -errno;
	close(fd);
	return err;
}

static uint64_t reserve_size(struct packstore *ps)
{
	struct statvfs sv;
	uint64_t want = __atomic_load_n(&ps->limit, __ATOMIC_RELAXED), quarter;

	if (fstatvfs(ps->dir_fd, &sv) < 0)
		return 0;
	quarter = (uint64_t)sv.f_blocks * sv.f_frsize / 4;
	if (want > quarter)
		want = quarter;
	return want & ~(uint64_t)4095;
}

/* Hold the reserve if the disk has room for it. Under append_lock. */
void reserve_take(struct packstore *ps)
{
	uint64_t want;
	int fd;

	if (ps->reserve_held)
		return;
	want = reserve_size(ps);
	fd = openat(ps->dir_fd, RESERVE_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (want && fallocate(fd, 0, 0, (off_t)want) == 0)
		ps->reserve_held = true;
	else
		(void)!ftruncate(fd, 0);     /* no half reserve held for nothing */
	close(fd);
}

/* Give the reserve's space to the disk; false when none was held. Under
 * append_lock. */
bool reserve_release(struct packstore *ps)
{
	if (!ps->reserve_held)
		return false;
	ps->reserve_held = false;
	return truncateat_zero(ps->dir_fd, RESERVE_NAME) == 0;
}

/* --- compaction ---------------------------------------------------------- */

/* Bytes of pf that compaction would free. Tombstones count only in the
 * oldest pack: elsewhere a block they kill may still sit in an older one.
 * Under lock. */
uint64_t dead_bytes(struct packstore *ps, struct pack_file *pf)
{
	uint64_t size = __atomic_load_n(&pf->size, __ATOMIC_RELAXED);
	uint64_t keep = pf->live;

	if (ps->npacks && ps->packs[0] != pf)
		keep += __atomic_load_n(&pf->tomb, __ATOMIC_RELAXED);
	return size - PACK_FILE_HEADER > keep ? size - PACK_FILE_HEADER - keep : 0;
}

/* The oldest pack the store has moved on from that is more than half dead,
 * that no PUT is still committing into, and that has settled (see
 * packstore_compact); *wait_ms as there. Under lock. */
static struct pack_file *pick_victim(struct packstore *ps, uint64_t room,
				     int64_t settle_ms, int64_t *wait_ms)
{
	struct pack_file *active = __atomic_load_n(&ps->active, __ATOMIC_ACQUIRE);
	int64_t now = mono_ms();

	*wait_ms = -1;
	for (size_t i = 0; i < ps->npacks; i++) {
		struct pack_file *pf = ps->packs[i];
		uint64_t used = __atomic_load_n(&pf->size, __ATOMIC_RELAXED) -
				PACK_FILE_HEADER;
		uint64_t copies = used - dead_bytes(ps, pf);

		if (pf == active || __atomic_load_n(&pf->pending, __ATOMIC_RELAXED))
			continue;
		/* Copies that cannot fit would only fill the disk more. */
		if (copies + PACK_FILE_HEADER > room)
			continue;
		if (!(2 * dead_bytes(ps, pf) > used || used == 0))
			continue;
		if (pf->live && now - pf->died_ms < settle_ms) {
			int64_t wait = pf->died_ms + settle_ms - now;

			if (*wait_ms < 0 || wait < *wait_ms)
				*wait_ms = wait;
			continue;
		}
		return pf;
	}
	return NULL;
}

/* Bytes compaction may write: what the disk has free, and the reserve;
 * *short_of_space when the reserve is not held (the disk filled up). */
static uint64_t room_for_copies(struct packstore *ps, bool *short_of_space)
{
	struct statvfs sv;
	uint64_t room;

	*short_of_space = true;
	if (fstatvfs(ps->dir_fd, &sv) < 0)
		return 0;
	room = (uint64_t)sv.f_bavail * sv.f_frsize;
	pthread_mutex_lock(&ps->append_lock);
	if (ps->reserve_held)
		room += reserve_size(ps);
	*short_of_space = !ps->reserve_held;
	pthread_mutex_unlock(&ps->append_lock);
	return room;
}

/* The newest pack is never compacted; once it is more than half dead, the
 * next record starts a new one so that it can be (a disk that filled up
 * with one pack gets its space back). */
static void seal_dead_active(struct packstore *ps)
{
	struct pack_file *a;

	pthread_mutex_lock(&ps->append_lock);
	pthread_rwlock_rdlock(&ps->lock);
	a = ps->active;
	if (a && !__atomic_load_n(&a->pending, __ATOMIC_RELAXED) &&
	    a->size > PACK_FILE_HEADER &&
	    2 * dead_bytes(ps, a) > a->size - PACK_FILE_HEADER)
		__atomic_store_n(&ps->active, NULL, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&ps->lock);
	pthread_mutex_unlock(&ps->append_lock);
}

struct copy_ctx {
	struct packstore *ps;
	struct pack_file *victim;
	struct pack_ticket *t;
	uint32_t *old_off;
	size_t n, cap;
	int err;
};

/* Copy forward one record of the victim if it is still needed. */
static int copy_rec(void *arg, const struct pack_rec *r, bool verified)
{
	struct copy_ctx *c = arg;
	struct packstore *ps = c->ps;
	bool need = false;
	struct pack_pos kb = { 0, 0 };
	int err = 0;

	if (!verified)
		return 0;                /* damaged: nothing to copy */
	if (c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 256;
		struct pack_ticket *nt = realloc(c->t, nc * sizeof(*nt));
		uint32_t *no;

		if (!nt)
			return -ENOMEM;
		c->t = nt;
		no = realloc(c->old_off, nc * sizeof(*no));
		if (!no)
			return -ENOMEM;
		c->old_off = no;
		c->cap = nc;
	}
	pthread_mutex_lock(&ps->append_lock);
	pthread_rwlock_rdlock(&ps->lock);
	if (r->type == PACK_BLOCK) {
		struct idx_ent *ent = idx_find(ps, r->addr, NULL);

		need = ent && ent->pack == c->victim->id && ent->off == r->off;
	} else {
		/* Still needed while a pack other than the victim holds
		 * records placed before the point it kills up to. */
		kb = pack_tomb_decode(r->data);
		need = ps->npacks && ps->packs[0] != c->victim &&
		       ps->packs[0]->id <= kb.pack;
	}
	pthread_rwlock_unlock(&ps->lock);
	if (need)
		err = append_locked(ps, r->type, r->addr, r->data, r->len,
				    r->type == PACK_TOMBSTONE ? &kb : NULL, true,
				    &c->t[c->n]);
	pthread_mutex_unlock(&ps->append_lock);
	if (err)
		return err;
	if (need)
		c->old_off[c->n++] = (uint32_t)r->off;
	return 0;
}

/* Whether the index still points at the victim's record at off for addr
 * (a block's copy is needed). */
static bool block_lives_at(struct packstore *ps, struct pack_file *v,
			   const uint8_t *addr, uint64_t off)
{
	struct idx_ent *ent;
	bool here;

	pthread_rwlock_rdlock(&ps->lock);
	ent = idx_find(ps, addr, NULL);
	here = ent && ent->pack == v->id && ent->off == off;
	pthread_rwlock_unlock(&ps->lock);
	return here;
}

/* Records of the victim as its record list gives them. */
struct listed {
	struct packidx_ent *e;
	size_t n, cap;
};

static int listed_add(void *arg, const struct pack_rec *r)
{
	struct listed *l = arg;
	struct packidx_ent *e;

	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 256;
		struct packidx_ent *ne = realloc(l->e, nc * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		l->e = ne;
		l->cap = nc;
	}
	e = &l->e[l->n++];
	memcpy(e->addr, r->addr, PACK_ADDR_BYTES);
	e->off = (uint32_t)r->off;
	e->len = r->len;
	e->type = r->type;
	e->kill = r->type == PACK_TOMBSTONE ? pack_tomb_decode(r->data)
					    : (struct pack_pos){ 0, 0 };
	return 0;
}

/*
 * Copy the victim's needed records forward reading only those: its list
 * says where each record is, the index which blocks still live there, and
 * a tombstone's list entry holds its kill point. A pack whose every block
 * was deleted costs its list and no read of the pack (removing a 1 GiB
 * file used to read its 2 GiB of packs back, at once, on every daemon).
 * The list is the one kept in memory until the list file is written, else
 * that file; -EAGAIN when there is neither (the caller reads the whole
 * pack). A record read here is checked as a GET checks it; one that fails
 * is not copied, as pack_parse's walk would not copy it.
 */
static int copy_listed(struct copy_ctx *c)
{
	struct packstore *ps = c->ps;
	struct pack_file *v = c->victim;
	struct listed l = { 0 };
	const struct packidx_ent *e;
	size_t n, cap = 0;
	uint8_t *buf = NULL;
	int err = 0;

	if (v->n_recs && !v->recs_lost) {
		e = v->recs;             /* the store moved on: it is final */
		n = v->n_recs;
	} else {
		err = idxfile_read(ps, v, listed_add, &l);
		e = l.e;
		n = l.n;
	}
	for (size_t i = 0; !err && i < n; i++) {
		struct pack_rec r;
		uint8_t kill[PACK_TOMB_BYTES];
		size_t want = PACK_REC_HEADER + (size_t)e[i].len;
		bool whole;

		if (e[i].type == PACK_TOMBSTONE) {
			pack_tomb_encode(kill, e[i].kill);
			r = (struct pack_rec){ .type = PACK_TOMBSTONE, .len = PACK_TOMB_BYTES,
					       .off = e[i].off, .data = kill };
			memcpy(r.addr, e[i].addr, PACK_ADDR_BYTES);
			err = copy_rec(c, &r, true);
			continue;
		}
		if (!block_lives_at(ps, v, e[i].addr, e[i].off))
			continue;
		if (want > cap) {
			uint8_t *nb = realloc(buf, want);

			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap = want;
		}
		err = pread_full(v->fd, buf, want, e[i].off);
		if (err)
			break;
		__atomic_add_fetch(&ps->compact_read, want, __ATOMIC_RELAXED);
		whole = block_record_checks(buf, want, e[i].addr, &r);
		r.off = e[i].off;
		err = copy_rec(c, &r, whole);
	}
	free(buf);
	free(l.e);
	return err;
}

/* Drop entries still naming a pack being removed: their records failed
 * their checksum, so the blocks were lost already. Under lock (write). */
static void forget_pack(struct packstore *ps, uint32_t id)
{
	for (unsigned s = 0; s < SLOTS; s++) {
		struct slot_idx *si = &ps->slots[s];

		for (uint32_t i = 0; i < si->n;) {
			if (si->e[i].pack == id) {
				ps->blocks--;
				ps->bytes -= si->e[i].len;
				idx_remove(ps, &si->e[i]);
			} else {
				i++;
			}
		}
	}
}

static int compact_one(struct packstore *ps, int64_t settle_ms,
		       int64_t *wait_ms);

int packstore_compact(struct packstore *ps, int64_t settle_ms, int64_t *wait_ms)
{
	int64_t ignored;
	int r;

	pthread_mutex_lock(&ps->compact_lock);
	r = compact_one(ps, settle_ms, wait_ms ? wait_ms : &ignored);
	pthread_mutex_unlock(&ps->compact_lock);
	return r;
}

static int compact_one(struct packstore *ps, int64_t settle_ms,
		       int64_t *wait_ms)
{
	struct copy_ctx c = { .ps = ps };
	struct pack_scan scan;
	struct pack_file *v;
	struct pack_ticket **tp = NULL;
	uint8_t *buf = NULL;
	uint64_t size;
	char name[16];
	uint64_t room;
	bool short_of_space;
	int err;

	seal_dead_active(ps);
	room = room_for_copies(ps, &short_of_space);
	if (short_of_space)
		settle_ms = 0;   /* space first: PUTs would take what is freed */
	pthread_rwlock_rdlock(&ps->lock);
	v = pick_victim(ps, room, settle_ms, wait_ms);
	pthread_rwlock_unlock(&ps->lock);
	if (!v)
		return 0;
	/* Not active and nothing pending: the file no longer changes. */
	size = __atomic_load_n(&v->size, __ATOMIC_RELAXED);
	c.victim = v;
	err = copy_listed(&c);
	if (err == -EAGAIN) {
		/* No list: every record, read in one go. */
		buf = malloc((size_t)size);
		err = buf ? pread_full(v->fd, buf, (size_t)size, 0) : -ENOMEM;
		if (!err)
			__atomic_add_fetch(&ps->compact_read, size, __ATOMIC_RELAXED);
		if (!err)
			err = pack_parse(buf, (size_t)size, copy_rec, &c, &scan);
	}
	if (!err && c.n) {
		tp = malloc(c.n * sizeof(*tp));
		if (!tp)
			err = -ENOMEM;
		for (size_t i = 0; !err && i < c.n; i++)
			tp[i] = &c.t[i];
		if (!err)
			err = packstore_sync_tickets(ps, tp, c.n);
	}
	if (err) {
		for (size_t i = 0; i < c.n; i++)
			packstore_release(ps, &c.t[i]);
		goto out;
	}
	pthread_rwlock_wrlock(&ps->lock);
	for (size_t i = 0; i < c.n; i++) {
		struct pack_ticket *t = &c.t[i];

		if (!t->tombstone) {
			struct idx_ent *ent = idx_find(ps, t->addr, NULL);

			if (ent && ent->pack == v->id && ent->off == c.old_off[i]) {
				ent->pack = t->pos.pack;
				ent->off = t->pos.off;
				t->pf->live += pack_rec_size(t->len);
				v->live -= pack_rec_size(t->len);
			}
		}
		__atomic_sub_fetch(&t->pf->pending, 1, __ATOMIC_RELAXED);
		t->pf = NULL;
	}
	if (v->live)
		forget_pack(ps, v->id);
	packs_drop(ps, v);
	pthread_rwlock_unlock(&ps->lock);
	/* No GET can find it now; those that did finish their pread first. */
	while (__atomic_load_n(&v->readers, __ATOMIC_ACQUIRE))
		sched_yield();
	/* The copies are durable: the old pack can go. */
	close(v->fd);
	pack_name(v->id, name);
	if (unlinkat(ps->dir_fd, name, 0) < 0 || fsync(ps->dir_fd) < 0)
		err = -errno;
	idxfile_unlink(ps, v->id);
	pack_file_free(v);
	__atomic_add_fetch(&ps->compactions, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&ps->append_lock);
	reserve_take(ps);                /* space came back: hold it again */
	pthread_mutex_unlock(&ps->append_lock);
out:
	free(tp);
	free(c.t);
	free(c.old_off);
	free(buf);
	return err ? err : 1;
}
