/*
 * segs: a file's buffered writes as a sorted list of non-overlapping byte
 * ranges ("segs"), newest data winning where writes overlap. fsdata keeps
 * one list per layer (dirty, inflight) of each file it buffers.
 *
 * Pure data structure: no locking (the caller's lock guards a list), no
 * I/O. Where an allocation fails, -ENOMEM, and the list is left as it was.
 */
#ifndef CAIRN_SEGS_H
#define CAIRN_SEGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct seg {
	uint64_t off;
	size_t len, cap;
	uint8_t *buf;
	struct seg *next;
};

/* Free a list. */
void seg_free_list(struct seg *s);
/* Put [off, off+len) into *head, cutting older segs it overlaps. Returns
 * the net growth in buffered bytes, or -ENOMEM. */
ssize_t seg_insert(struct seg **head, uint64_t off, const void *data,
		   size_t len);
/* Drop buffered bytes at or past size; returns the bytes dropped. */
size_t seg_truncate(struct seg **head, uint64_t size);
/* Copy the parts of the list that fall in [off, off+len) into buf; the
 * rest of buf is left as it is. */
void seg_overlay(const struct seg *s, uint8_t *buf, uint64_t off, size_t len);
/* Insert the parts of s in [start, end) into *out; 0 or -ENOMEM. */
int seg_copy_range(const struct seg *s, uint64_t start, uint64_t end,
		   struct seg **out);
/* Put back (older data) under *dirty (newer): back's bytes stay only where
 * no seg of *dirty lies. Takes both lists; allocates nothing, so it cannot
 * fail. Returns the buffered bytes of the result. */
size_t seg_merge_under(struct seg **dirty, struct seg *back);

#endif
