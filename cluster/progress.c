/*
 * progress: the progress line of cairnctl put/get (see progress.h).
 *
 * Not here: what is transferred. Drawing uses a try-lock so a worker thread
 * never waits on the terminal; a skipped redraw is made up by the next one.
 */
#include "cluster/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_TTY_PERIOD_S 0.1
#define PROGRESS_JSON_PERIOD_S 1.0
#define PROGRESS_BAR_WIDTH 24

double progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *progress_fmt_bytes(double bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f %s", bytes, units[u]);
	else
		snprintf(buf, len, "%.1f %s", bytes, units[u]);
	return buf;
}

void progress_init(struct progress *p, const char *label, uint64_t total,
		   bool json, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	atomic_init(&p->done, 0);
	p->json = json && !quiet;
	p->tty = !json && !quiet && isatty(STDERR_FILENO);
	p->start_s = progress_now();
	p->last_draw_s = p->start_s;
	pthread_mutex_init(&p->lock, NULL);
}

void progress_set_total(struct progress *p, uint64_t total)
{
	p->total = total;
}

double progress_elapsed(const struct progress *p)
{
	return progress_now() - p->start_s;
}

static void progress_draw_tty(struct progress *p, uint64_t done, double now,
			      bool final)
{
	char line[256], b1[32], b2[32], b3[32], eta[32] = "";
	double el = now - p->start_s, rate = el > 0 ? (double)done / el : 0;
	size_t off = 0;

	off += (size_t)snprintf(line + off, sizeof(line) - off, "\r%s ", p->label);
	if (p->total) {
		double frac = (double)done / (double)p->total;
		int fill;

		if (frac > 1)
			frac = 1;
		fill = (int)(frac * PROGRESS_BAR_WIDTH);
		line[off++] = '[';
		for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
			line[off++] = i < fill ? '#' : '.';
		off += (size_t)snprintf(line + off, sizeof(line) - off,
					"] %3d%% %s/%s", (int)(frac * 100),
					progress_fmt_bytes((double)done, b1, sizeof(b1)),
					progress_fmt_bytes((double)p->total, b2, sizeof(b2)));
		if (!final && rate > 0 && done < p->total) {
			unsigned s = (unsigned)((double)(p->total - done) / rate);

			snprintf(eta, sizeof(eta), " ETA %u:%02u", s / 60, s % 60);
		}
	} else {
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s",
					progress_fmt_bytes((double)done, b1, sizeof(b1)));
	}
	snprintf(line + off, sizeof(line) - off, " %s/s%s%s\033[K",
		 progress_fmt_bytes(rate, b3, sizeof(b3)), eta,
		 final ? " done" : "");
	fputs(line, stderr);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
	p->drawn = true;
}

static void progress_draw_json(struct progress *p, uint64_t done, double now)
{
	double el = now - p->start_s;

	printf("{\"event\":\"progress\",\"op\":\"%s\",\"bytes\":%llu,\"total\":%llu,"
	       "\"seconds\":%.3f,\"rate\":%.0f}\n",
	       p->label, (unsigned long long)done, (unsigned long long)p->total,
	       el, el > 0 ? (double)done / el : 0.0);
	fflush(stdout);
}

void progress_add(struct progress *p, uint64_t n)
{
	uint64_t done = atomic_fetch_add(&p->done, n) + n;
	double now, period;

	if (!p->tty && !p->json)
		return;
	period = p->tty ? PROGRESS_TTY_PERIOD_S : PROGRESS_JSON_PERIOD_S;
	if (pthread_mutex_trylock(&p->lock))
		return;         /* someone is drawing: theirs will do */
	now = progress_now();
	if (now - p->last_draw_s >= period) {
		p->last_draw_s = now;
		if (p->tty)
			progress_draw_tty(p, done, now, false);
		else
			progress_draw_json(p, done, now);
	}
	pthread_mutex_unlock(&p->lock);
}

void progress_finish(struct progress *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->tty)
		progress_draw_tty(p, atomic_load(&p->done), progress_now(), true);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
}
