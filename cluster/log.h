/*
 * log: leveled logging to stderr and the one place that turns an error code
 * into words.
 *
 * Lines go to stderr. When stderr is the systemd journal (JOURNAL_STREAM is
 * set) each line gets a "<N>" priority prefix that journald understands; on a
 * terminal or a file, a timestamp and the level name. The level is tested
 * before any argument is evaluated, so log_debug() in a hot path costs one
 * comparison when debug is off.
 *
 * Thread-safety: every function may be called from any thread; one line is
 * written with one write(2), so lines from threads never interleave.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERR = 3,      /* syslog numbering, so the journal prefix is the level */
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* Size of the detail buffers that parsers of user input fill. */
#define LOG_ERRBUF 256

extern int log_threshold;

/* Set the most verbose level written; default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
/* Parse "error", "warn", "info", "debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *out);
/* Prefix every line with "NAME: " (program name or node name); NAME is copied. */
void log_set_ident(const char *name);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                       \
	do {                                                                   \
		if ((int)(lvl) <= log_threshold)                               \
			log_write((lvl), __VA_ARGS__);                         \
	} while (0)
#define log_err(...) log_at(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)

/*
 * Words for a code in our convention: 0, or a negative errno. Our codes carry
 * project meanings (see STYLE.md): -EBADMSG "failed authentication or
 * checksum", -EKEYREJECTED "wrong key", -ESTALE "older cluster map epoch", ...
 * Positive values are accepted as plain errno. The string is static.
 */
const char *log_strerror(int err);

/* Hex of the first 4 bytes of a 32-byte address, for log lines: "9f3a01c2".
 * Writes 9 bytes (with NUL) into buf and returns buf. */
char *log_addr_short(const unsigned char *addr, char buf[9]);

#endif
