/*
 * packstore_int.h: the pack store's internals, private to packstore.c and
 * packcompact.c (nothing else includes it).
 *
 *   packstore.c    the index, the pack files, appends, open (scan, the
 *                  verified id, header walk) and close, the block calls (has, get,
 *                  append, sync, commit, release, delete, list, locate)
 *                  and stats;
 *   packcompact.c  the reserve and compaction.
 *
 * Locks, always taken in this order when both are held:
 *   append_lock  the newest pack and where the next record goes;
 *   lock         (rwlock) the index, the list of packs and their counters.
 * A GET holds `lock` for reading across its pread, so compaction (which
 * closes a pack under it for writing) never pulls a file from under it.
 */
#ifndef CAIRN_PACKSTORE_INT_H
#define CAIRN_PACKSTORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "daemon/packidx.h"
#include "daemon/packstore.h"

#define SLOTS 16384u

struct pack_file {
	uint32_t id;
	int fd;
	uint64_t size;           /* atomic: bytes in the file */
	uint64_t live;           /* records the index points at; under lock */
	uint64_t tomb;           /* atomic: tombstone bytes in it */
	uint32_t pending;        /* atomic: tickets not yet committed */
	bool failed;             /* atomic: a sync of it failed */
	uint32_t readers;        /* atomic: GETs reading it without the lock */
	int64_t died_ms;         /* when a DELETE last killed a block in it
				  * (mono_ms); under lock */
	/* Its records in order, kept until its record list file is written
	 * (once it is checked and the store moved on from it); recs_lost
	 * when one could not be kept, so that no file is written for it.
	 * Appended under append_lock while it is the newest pack, or by the
	 * open. */
	struct packidx_ent *recs;
	size_t n_recs, cap_recs;
	bool recs_lost;
};

struct idx_ent {
	uint8_t addr[PACK_ADDR_BYTES];
	uint32_t pack, off, len;
};

struct slot_idx {
	struct idx_ent *e;
	uint32_t n, cap;
};

struct packstore {
	int dir_fd;
	char *dir;
	pthread_mutex_t compact_lock;    /* one compaction at a time */
	pthread_mutex_t append_lock;
	pthread_rwlock_t lock;
	struct slot_idx slots[SLOTS];
	struct pack_file **packs;        /* by id, under lock */
	size_t npacks, cap_packs;
	struct pack_file *active;        /* atomic pointer; set under both */
	uint32_t next_id;                /* under append_lock */
	uint64_t limit;                  /* atomic */
	uint64_t blocks, bytes;          /* under lock */
	uint64_t bad_records, compactions; /* atomic */
	uint64_t compact_read;           /* atomic: bytes compaction read */
	uint64_t open_index, open_headers, open_whole; /* how the open read
					  * each pack (packstore_stats) */
	bool reserve_held;               /* under append_lock */
	bool ready;                      /* opened: a close may verify packs */
	uint32_t verified;               /* what packs/verified says; under
					  * compact_lock after open */
	bool sync_failed;                /* atomic: some pack's sync failed */
};

/* --- packstore.c --------------------------------------------------------- */

/* The index: under lock (read to look, write to change). */
struct idx_ent *idx_find(struct packstore *ps, const uint8_t *addr,
			 uint32_t *at);
int idx_insert(struct packstore *ps, const uint8_t *addr, uint32_t at,
	       uint32_t pack, uint32_t off, uint32_t len);
void idx_remove(struct packstore *ps, struct idx_ent *ent);

/* The packs: by id and out of the list under lock; their file names. */
struct pack_file *pack_by_id(struct packstore *ps, uint32_t id);
void pack_name(uint32_t id, char out[16]);
void packs_drop(struct packstore *ps, struct pack_file *pf);
/* Remove pack id's record list file (NNNNNNNN.idx, packidx.h), if any:
 * with its pack gone it names records that are not there. One that a
 * crash leaves behind is removed by the next open. */
void idxfile_unlink(struct packstore *ps, uint32_t id);
/* Read pack pf's record list file, calling rec(arg, r) for each record
 * (as packidx_decode does) only when all of it checks. 0, -EAGAIN when
 * there is none or it does not check, or what rec returned. */
int idxfile_read(struct packstore *ps, struct pack_file *pf,
		 int (*rec)(void *arg, const struct pack_rec *r), void *arg);
/* Whether b (want bytes, read at a record's offset) holds the record of
 * block addr, whole: header, length want, and bytes that match their
 * checksum. *r is filled as pack_rec_decode fills it. */
bool block_record_checks(const uint8_t *b, size_t want,
			 const uint8_t addr[PACK_ADDR_BYTES], struct pack_rec *r);
/* Free a pack's struct and record list (not its fd). */
void pack_file_free(struct pack_file *pf);

int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off);

/* Append one record to the newest pack (a tombstone records kill_before,
 * or its own place when NULL); may_use_reserve for what frees space.
 * Under append_lock. */
int append_locked(struct packstore *ps, enum pack_type type,
		  const uint8_t *addr, const void *data, uint32_t len,
		  const struct pack_pos *kill_before, bool may_use_reserve,
		  struct pack_ticket *t);

/* --- packcompact.c ------------------------------------------------------- */

/* The reserve: hold it if the disk has room; give its space back (false
 * when none was held). Under append_lock. */
void reserve_take(struct packstore *ps);
bool reserve_release(struct packstore *ps);

/* Bytes of pf that compaction would free. Under lock. */
uint64_t dead_bytes(struct packstore *ps, struct pack_file *pf);

#endif
