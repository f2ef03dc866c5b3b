/*
 * log: see log.h. Formatting happens into a stack buffer and leaves in one
 * write(2), which keeps lines whole across threads without a lock.
 */
#include "config.h"
#include "cluster/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_threshold = LOG_LEVEL_INFO;
static char log_ident[64];
static int log_to_journal = -1;          /* -1: not decided yet */

void log_set_level(enum log_level level)
{
	log_threshold = (int)level;
}

int log_parse_level(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "error", LOG_LEVEL_ERR }, { "err", LOG_LEVEL_ERR },
		{ "warn", LOG_LEVEL_WARN }, { "warning", LOG_LEVEL_WARN },
		{ "info", LOG_LEVEL_INFO }, { "debug", LOG_LEVEL_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_ident(const char *name)
{
	snprintf(log_ident, sizeof(log_ident), "%s", name ? name : "");
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERR: return "error";
	case LOG_LEVEL_WARN: return "warn";
	case LOG_LEVEL_INFO: return "info";
	default: return "debug";
	}
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (log_to_journal < 0)
		log_to_journal = getenv("JOURNAL_STREAM") != NULL;

	if (log_to_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
				      ts.tv_nsec / 1000000, level_name(level));
	}
	if (log_ident[0] && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", log_ident);
	if (n < sizeof(line)) {
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += (size_t)m;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;    /* truncated: keep the newline */
	line[n++] = '\n';
	/* A failed log write has nowhere better to go. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

const char *log_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0: return "success";
	case EBADMSG: return "authentication or checksum failed (corrupt or forged data)";
	case EPROTO: return "malformed data (bad length, field or opcode)";
	case ENOTSUP: return "unsupported format or protocol version";
	case EKEYREJECTED: return "wrong key or passphrase";
	case ESTALE: return "older cluster map epoch";
	case ETIMEDOUT: return "timed out";
	case ECONNREFUSED: return "connection refused";
	case ENOBUFS: return "output buffer too small";
	default: return strerror(err);
	}
}

char *log_addr_short(const unsigned char *addr, char buf[9])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 4; i++) {
		buf[2 * i] = hex[addr[i] >> 4];
		buf[2 * i + 1] = hex[addr[i] & 15];
	}
	buf[8] = '\0';
	return buf;
}
