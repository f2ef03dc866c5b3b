/*
 * segs: sorted lists of buffered byte ranges (contract in segs.h).
 */
#include "fs/segs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void seg_free_list(struct seg *s)
{
	while (s) {
		struct seg *next = s->next;

		free(s->buf);
		free(s);
		s = next;
	}
}

/*
 * A seg grows by appends up to SEG_MAX bytes, then a new one starts: no
 * realloc ever copies more than SEG_MAX, and buffers of this size are
 * reused from the heap instead of being mmap'd and page-faulted afresh
 * (perf showed both on every sequential write before this bound).
 */
#define SEG_MAX (1u << 20)

static struct seg *seg_new_cap(uint64_t off, const void *data, size_t len,
			       size_t cap)
{
	struct seg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = len > cap ? len : cap;
	s->buf = malloc(s->cap);
	if (!s->buf) {
		free(s);
		return NULL;
	}
	memcpy(s->buf, data, len);
	s->off = off;
	s->len = len;
	return s;
}

static struct seg *seg_new(uint64_t off, const void *data, size_t len)
{
	return seg_new_cap(off, data, len, 65536);
}

/*
 * Put [off, off+len) into the sorted list *head, newest wins: overlapped
 * parts of older segs are cut away. Returns the net growth in buffered
 * bytes, or -ENOMEM (list unchanged). Sequential writes take the fast
 * path: append to the seg that ends where this write starts.
 */
ssize_t seg_insert(struct seg **head, uint64_t off, const void *data,
		   size_t len)
{
	uint64_t end = off + len;
	struct seg **pp, *s, *n;
	ssize_t delta = (ssize_t)len;

	for (pp = head; *pp && (*pp)->off + (*pp)->len < off; pp = &(*pp)->next)
		;
	s = *pp;
	/* fast path: extend s, which ends exactly at off, if nothing follows
	 * within the new range */
	if (s && s->off + s->len == off && (!s->next || s->next->off >= end) &&
	    s->len + len <= SEG_MAX) {
		if (s->len + len > s->cap) {
			size_t cap = s->cap * 2;
			uint8_t *nb;

			while (cap < s->len + len)
				cap *= 2;
			if (cap > SEG_MAX)
				cap = SEG_MAX;
			nb = realloc(s->buf, cap);
			if (!nb)
				return -ENOMEM;
			s->buf = nb;
			s->cap = cap;
		}
		memcpy(s->buf + s->len, data, len);
		s->len += len;
		return delta;
	}
	/* a sequential writer that filled a seg gets a full-sized next one */
	n = seg_new_cap(off, data, len,
			s && s->off + s->len == off ? SEG_MAX : 65536);
	if (!n)
		return -ENOMEM;
	/* Trim or split every older seg overlapping [off, end). */
	for (pp = head; *pp;) {
		s = *pp;
		uint64_t s_end = s->off + s->len;

		if (s_end <= off || s->off >= end) {
			pp = &s->next;
			continue;
		}
		if (s->off < off && s_end > end) {
			/* new range inside s: split s around it */
			struct seg *tail = seg_new(end, s->buf + (end - s->off),
						   (size_t)(s_end - end));

			if (!tail) {
				free(n->buf);
				free(n);
				return -ENOMEM;
			}
			tail->next = s->next;
			s->next = tail;
			s->len = (size_t)(off - s->off);
			delta -= (ssize_t)(end - off);
			pp = &tail->next;
			continue;
		}
		if (s->off < off) {             /* s overlaps our start */
			delta -= (ssize_t)(s_end - off);
			s->len = (size_t)(off - s->off);
			pp = &s->next;
			continue;
		}
		if (s_end > end) {              /* s overlaps our end */
			size_t cut = (size_t)(end - s->off);

			memmove(s->buf, s->buf + cut, s->len - cut);
			s->len -= cut;
			s->off = end;
			delta -= (ssize_t)cut;
			pp = &s->next;
			continue;
		}
		/* s entirely covered */
		delta -= (ssize_t)s->len;
		*pp = s->next;
		free(s->buf);
		free(s);
	}
	for (pp = head; *pp && (*pp)->off < off; pp = &(*pp)->next)
		;
	n->next = *pp;
	*pp = n;
	return delta;
}

/* Drop buffered bytes at or past size; returns the bytes dropped. */
size_t seg_truncate(struct seg **head, uint64_t size)
{
	size_t dropped = 0;
	struct seg **pp = head;

	while (*pp) {
		struct seg *s = *pp;

		if (s->off >= size) {
			dropped += s->len;
			*pp = s->next;
			free(s->buf);
			free(s);
			continue;
		}
		if (s->off + s->len > size) {
			dropped += (size_t)(s->off + s->len - size);
			s->len = (size_t)(size - s->off);
		}
		pp = &s->next;
	}
	return dropped;
}

/* Copy the parts of segs that fall in [off, off+len) into buf. */
void seg_overlay(const struct seg *s, uint8_t *buf, uint64_t off, size_t len)
{
	uint64_t end = off + len;

	for (; s && s->off < end; s = s->next) {
		uint64_t a = s->off > off ? s->off : off;
		uint64_t b = s->off + s->len < end ? s->off + s->len : end;

		if (a < b)
			memcpy(buf + (a - off), s->buf + (a - s->off), (size_t)(b - a));
	}
}

/* Copy the parts of the segs in [start, end) into *out (a seg list). */
int seg_copy_range(const struct seg *s, uint64_t start, uint64_t end,
		   struct seg **out)
{
	for (; s; s = s->next) {
		uint64_t a = s->off > start ? s->off : start;
		uint64_t b = s->off + s->len < end ? s->off + s->len : end;

		if (a >= b)
			continue;
		if (seg_insert(out, a, s->buf + (a - s->off), (size_t)(b - a)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Put seg n into the sorted list *head; it overlaps none of its segs. */
static void seg_link_sorted(struct seg **head, struct seg *n)
{
	struct seg **pp = head;

	while (*pp && (*pp)->off < n->off)
		pp = &(*pp)->next;
	n->next = *pp;
	*pp = n;
}

/*
 * Take [off, end) out of the older segs of *head without allocating: a
 * seg that holds all of it is returned for the caller to copy the newer
 * bytes into (NULL otherwise); segs it covers are freed, segs it overlaps
 * at one end are shortened.
 */
static struct seg *seg_cut_or_holder(struct seg **head, uint64_t off,
				     uint64_t end)
{
	struct seg **pp = head;

	while (*pp && (*pp)->off < end) {
		struct seg *s = *pp;
		uint64_t s_end = s->off + s->len;

		if (s_end <= off) {
			pp = &s->next;
		} else if (s->off <= off && s_end >= end) {
			return s;                       /* holds it all */
		} else if (s->off < off) {              /* overlaps our start */
			s->len = (size_t)(off - s->off);
			pp = &s->next;
		} else if (s_end > end) {               /* overlaps our end */
			size_t cut = (size_t)(end - s->off);

			memmove(s->buf, s->buf + cut, s->len - cut);
			s->len -= cut;
			s->off = end;
			pp = &s->next;
		} else {                                /* covered */
			*pp = s->next;
			free(s->buf);
			free(s);
		}
	}
	return NULL;
}

/*
 * Segs written while a flush ran (*dirty) go on top of what the flush gave
 * back (back). A newer seg moves over as it is (its buffer is not copied:
 * copying them all, under d->lock, was the largest cost of a sequential
 * write) after the older bytes it overlaps are cut away; one that lies
 * inside a single older seg is copied into it instead. Neither needs a new
 * allocation, so nothing can fail and no byte is lost.
 */
size_t seg_merge_under(struct seg **dirty, struct seg *back)
{
	struct seg *newer = *dirty;
	size_t total = 0;

	*dirty = back;
	while (newer) {
		struct seg *s = newer, *holder;

		newer = s->next;
		s->next = NULL;
		holder = seg_cut_or_holder(dirty, s->off, s->off + s->len);
		if (holder) {
			memcpy(holder->buf + (s->off - holder->off), s->buf, s->len);
			seg_free_list(s);
		} else {
			seg_link_sorted(dirty, s);
		}
	}
	for (struct seg *s = *dirty; s; s = s->next)
		total += s->len;
	return total;
}
