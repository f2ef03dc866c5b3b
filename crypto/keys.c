/*
 * keys: master key, subkeys and the text key file (format in keys.h).
 *
 * Key material lives in sodium_malloc'd memory (guard pages, wiped on
 * free). The file is parsed strictly: every line must be a known
 * "name = value", each field at most once, and the fields that matter for
 * the chosen kdf must all be there. Never logs: errors come back as codes
 * plus a sentence in the caller's buffer.
 */
#include "crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define KEYS_FORMAT "cairnfs-key-1"
#define KEYS_KDF_CONTEXT "cairnfs1"     /* crypto_kdf context: 8 bytes */
#define KEYS_FILE_MAX 8192

_Static_assert(sizeof(KEYS_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES,
	       "kdf context is 8 bytes");
_Static_assert(KEYS_MASTER_BYTES == crypto_kdf_KEYBYTES, "master key size");

#define KEYS_PURPOSES 4

struct keys {
	uint8_t master[KEYS_MASTER_BYTES];
	uint8_t sub[KEYS_PURPOSES][KEYS_SUBKEY_BYTES];
	struct keys_volume vol;
};

static unsigned long long pw_ops;
static size_t pw_mem;

void keys_set_pwhash_limits(unsigned long long opslimit, size_t memlimit)
{
	pw_ops = opslimit;
	pw_mem = memlimit;
}

static void keys_errf(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void keys_errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

int keys_from_master(const uint8_t master[KEYS_MASTER_BYTES],
		     const struct keys_volume *vol, struct keys **out)
{
	struct keys *k;

	if (sodium_init() < 0)
		return -EIO;
	k = sodium_malloc(sizeof(*k));
	if (!k)
		return -ENOMEM;
	memcpy(k->master, master, KEYS_MASTER_BYTES);
	for (unsigned p = 0; p < KEYS_PURPOSES; p++)
		crypto_kdf_derive_from_key(k->sub[p], KEYS_SUBKEY_BYTES, p + 1,
					   KEYS_KDF_CONTEXT, k->master);
	k->vol = *vol;
	k->vol.name[KEYS_NAME_MAX] = '\0';
	sodium_mprotect_readonly(k);
	*out = k;
	return 0;
}

int keys_generate(const struct keys_volume *vol, struct keys **out)
{
	uint8_t master[KEYS_MASTER_BYTES];
	struct keys_volume v = *vol;
	int rc;

	if (sodium_init() < 0)
		return -EIO;
	crypto_kdf_keygen(master);
	randombytes_buf(v.volume_id, sizeof(v.volume_id));
	rc = keys_from_master(master, &v, out);
	sodium_memzero(master, sizeof(master));
	return rc;
}

void keys_free(struct keys *k)
{
	if (k)
		sodium_free(k);
}

const uint8_t *keys_subkey(const struct keys *k, enum keys_purpose purpose)
{
	if (purpose < KEYS_BLOCK_ID || purpose > KEYS_META)
		return NULL;
	return k->sub[purpose - 1];
}

const uint8_t *keys_master(const struct keys *k)
{
	return k->master;
}

const struct keys_volume *keys_volume(const struct keys *k)
{
	return &k->vol;
}

/* --- writing ------------------------------------------------------------- */

static void hex(char *out, const uint8_t *in, size_t n)
{
	sodium_bin2hex(out, 2 * n + 1, in, n);
}

/* The pwhash key-encryption key for a passphrase and salt. */
static int keys_kek(const char *pass, size_t pass_len, const uint8_t *salt,
		    unsigned long long ops, size_t mem,
		    uint8_t kek[crypto_secretbox_KEYBYTES])
{
	if (crypto_pwhash(kek, crypto_secretbox_KEYBYTES, pass, pass_len, salt,
			  ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM;     /* libsodium fails only for lack of memory */
	return 0;
}

int keys_file_write(const char *path, const struct keys *k, const char *pass,
		    size_t pass_len)
{
	char text[KEYS_FILE_MAX], tmp[4096], h1[2 * 64 + 1], h2[2 * 128 + 1];
	int n, fd, rc = 0;
	struct stat st;

	if (stat(path, &st) == 0)
		return -EEXIST;
	n = snprintf(text, sizeof(text),
		     "# cairnfs volume key: keep it secret, keep a copy elsewhere\n"
		     "format = " KEYS_FORMAT "\nvolume = %s\n", k->vol.name);
	hex(h1, k->vol.volume_id, KEYS_VOLUME_ID_BYTES);
	n += snprintf(text + n, sizeof(text) - (size_t)n,
		      "volume-id = %s\nchunk-min = %u\nchunk-avg = %u\nchunk-max = %u\n",
		      h1, k->vol.chunk_min, k->vol.chunk_avg, k->vol.chunk_max);
	if (!pass) {
		hex(h1, k->master, KEYS_MASTER_BYTES);
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "kdf = none\nkey = %s\n", h1);
	} else {
		uint8_t salt[crypto_pwhash_SALTBYTES], kek[crypto_secretbox_KEYBYTES];
		uint8_t box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES +
			    KEYS_MASTER_BYTES];
		unsigned long long ops = pw_ops ? pw_ops : crypto_pwhash_OPSLIMIT_MODERATE;
		size_t mem = pw_mem ? pw_mem : crypto_pwhash_MEMLIMIT_MODERATE;

		randombytes_buf(salt, sizeof(salt));
		rc = keys_kek(pass, pass_len, salt, ops, mem, kek);
		if (rc < 0)
			return rc;
		randombytes_buf(box, crypto_secretbox_NONCEBYTES);
		crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, k->master,
				      KEYS_MASTER_BYTES, box, kek);
		sodium_memzero(kek, sizeof(kek));
		hex(h1, salt, sizeof(salt));
		hex(h2, box, sizeof(box));
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "kdf = argon2id\nsalt = %s\nopslimit = %llu\nmemlimit = %zu\nwrapped = %s\n",
			      h1, ops, mem, h2);
	}
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;

	/* temp file beside the target, 0600 from the start, then link(2):
	 * link fails with EEXIST instead of replacing a key that appeared
	 * meanwhile, and the file is complete when it gets its name. */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		sodium_memzero(text, sizeof(text));
		return -errno;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0)
		rc = -errno ? -errno : -EIO;
	close(fd);
	sodium_memzero(text, sizeof(text));
	if (rc == 0 && link(tmp, path) < 0)
		rc = -errno;
	unlink(tmp);
	if (rc == 0) {
		/* the directory entry, durably */
		char dir[4096];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			snprintf(dir, sizeof(dir), ".");
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return rc;
}

/* --- reading ------------------------------------------------------------- */

enum { F_FORMAT, F_VOLUME, F_VOLID, F_CMIN, F_CAVG, F_CMAX, F_KDF, F_KEY,
       F_SALT, F_OPS, F_MEM, F_WRAPPED, F_COUNT };
static const char *const field_names[F_COUNT] = {
	"format", "volume", "volume-id", "chunk-min", "chunk-avg", "chunk-max",
	"kdf", "key", "salt", "opslimit", "memlimit", "wrapped",
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;

	if (strlen(s) != 2 * n)
		return -1;
	if (sodium_hex2bin(out, n, s, 2 * n, NULL, &got, NULL) || got != n)
		return -1;
	return 0;
}

static int parse_u64(const char *s, unsigned long long *v)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

int keys_parse(const char *text, size_t len, const char *pass, size_t pass_len,
	       struct keys **out, char *err, size_t err_len)
{
	char *copy, *line, *save = NULL, *val[F_COUNT] = { 0 };
	struct keys_volume vol = { 0 };
	uint8_t master[KEYS_MASTER_BYTES];
	unsigned long long num[3];
	int rc = -EPROTO, lineno = 0;

	if (sodium_init() < 0)
		return -EIO;
	if (len > KEYS_FILE_MAX) {
		keys_errf(err, err_len, "not a key file (over %d bytes)", KEYS_FILE_MAX);
		return -EPROTO;
	}
	copy = sodium_malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (memchr(copy, '\0', len)) {
		keys_errf(err, err_len, "not a key file (binary data)");
		goto out;
	}
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq, *name, *v;
		int f;

		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			keys_errf(err, err_len, "line %d: not 'name = value'", lineno);
			goto out;
		}
		*eq = '\0';
		name = trim(line);
		v = trim(eq + 1);
		for (f = 0; f < F_COUNT && strcmp(name, field_names[f]); f++)
			;
		if (f == F_COUNT) {
			keys_errf(err, err_len, "line %d: unknown field '%.40s'", lineno, name);
			goto out;
		}
		if (val[f]) {
			keys_errf(err, err_len, "line %d: '%s' given twice", lineno, name);
			goto out;
		}
		val[f] = v;
	}
	if (!val[F_FORMAT]) {
		keys_errf(err, err_len, "not a cairnfs key file (no 'format' line)");
		goto out;
	}
	if (strcmp(val[F_FORMAT], KEYS_FORMAT)) {
		keys_errf(err, err_len, "key file format '%.40s' is not known to this build (it knows " KEYS_FORMAT ")",
			  val[F_FORMAT]);
		rc = -ENOTSUP;
		goto out;
	}
	for (int f = F_VOLUME; f <= F_KDF; f++) {
		if (!val[f]) {
			keys_errf(err, err_len, "missing field '%s'", field_names[f]);
			goto out;
		}
	}
	if (strlen(val[F_VOLUME]) == 0 || strlen(val[F_VOLUME]) > KEYS_NAME_MAX) {
		keys_errf(err, err_len, "volume name must be 1..%d bytes", KEYS_NAME_MAX);
		goto out;
	}
	strcpy(vol.name, val[F_VOLUME]);
	if (unhex(val[F_VOLID], vol.volume_id, KEYS_VOLUME_ID_BYTES)) {
		keys_errf(err, err_len, "volume-id must be %d hex characters",
			  2 * KEYS_VOLUME_ID_BYTES);
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		if (parse_u64(val[F_CMIN + i], &num[i]) || num[i] > UINT32_MAX) {
			keys_errf(err, err_len, "%s: not a size in bytes", field_names[F_CMIN + i]);
			goto out;
		}
	}
	vol.chunk_min = (uint32_t)num[0];
	vol.chunk_avg = (uint32_t)num[1];
	vol.chunk_max = (uint32_t)num[2];

	if (!strcmp(val[F_KDF], "none")) {
		if (!val[F_KEY] || unhex(val[F_KEY], master, KEYS_MASTER_BYTES)) {
			keys_errf(err, err_len, "kdf = none needs 'key' of %d hex characters",
				  2 * KEYS_MASTER_BYTES);
			goto out;
		}
	} else if (!strcmp(val[F_KDF], "argon2id")) {
		uint8_t salt[crypto_pwhash_SALTBYTES], kek[crypto_secretbox_KEYBYTES];
		uint8_t box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES +
			    KEYS_MASTER_BYTES];
		unsigned long long ops, mem;

		if (!val[F_SALT] || !val[F_OPS] || !val[F_MEM] || !val[F_WRAPPED] ||
		    unhex(val[F_SALT], salt, sizeof(salt)) ||
		    unhex(val[F_WRAPPED], box, sizeof(box)) ||
		    parse_u64(val[F_OPS], &ops) || parse_u64(val[F_MEM], &mem) ||
		    ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
		    mem < crypto_pwhash_MEMLIMIT_MIN || mem > (4ull << 30)) {
			keys_errf(err, err_len, "kdf = argon2id needs valid salt, opslimit, memlimit and wrapped");
			goto out;
		}
		/* Lowered limits (tests, fuzzing) are also a ceiling, so that
		 * a made-up file cannot ask for minutes of Argon2id. */
		if ((pw_ops && ops > pw_ops) || (pw_mem && mem > pw_mem)) {
			keys_errf(err, err_len, "Argon2id limits above what this process allows");
			goto out;
		}
		if (!pass) {
			keys_errf(err, err_len, "the key is protected by a passphrase; none was given");
			rc = -ENOKEY;
			goto out;
		}
		rc = keys_kek(pass, pass_len, salt, ops, (size_t)mem, kek);
		if (rc < 0) {
			keys_errf(err, err_len, "Argon2id failed (out of memory?)");
			goto out;
		}
		if (crypto_secretbox_open_easy(master, box + crypto_secretbox_NONCEBYTES,
					       sizeof(box) - crypto_secretbox_NONCEBYTES,
					       box, kek) != 0) {
			sodium_memzero(kek, sizeof(kek));
			keys_errf(err, err_len, "wrong passphrase");
			rc = -EKEYREJECTED;
			goto out;
		}
		sodium_memzero(kek, sizeof(kek));
	} else {
		keys_errf(err, err_len, "kdf '%.20s' is not known to this build (none, argon2id)",
			  val[F_KDF]);
		rc = -ENOTSUP;
		goto out;
	}
	rc = keys_from_master(master, &vol, out);
out:
	sodium_memzero(master, sizeof(master));
	sodium_free(copy);
	return rc;
}

/* Open a key file and check who may read it. */
static int keys_open_checked(const char *path, char *err, size_t err_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		int e = errno;

		keys_errf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		keys_errf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		keys_errf(err, err_len, "%s: not a regular file", path);
		return -EPROTO;
	}
	if (st.st_mode & 077) {
		close(fd);
		keys_errf(err, err_len,
			  "%s: mode %03o lets other users read the volume key; refusing it (run: chmod 600 %s)",
			  path, (unsigned)(st.st_mode & 0777), path);
		return -EACCES;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		keys_errf(err, err_len,
			  "%s: belongs to uid %u, not to us (uid %u); refusing it",
			  path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EACCES;
	}
	return fd;
}

static int keys_slurp(const char *path, char *buf, size_t cap, size_t *len,
		      char *err, size_t err_len)
{
	int fd = keys_open_checked(path, err, err_len);
	ssize_t n;
	size_t total = 0;

	if (fd < 0)
		return fd;
	while ((n = read(fd, buf + total, cap - total)) > 0)
		total += (size_t)n;
	close(fd);
	if (n < 0) {
		keys_errf(err, err_len, "%s: %s", path, strerror(errno));
		return -EIO;
	}
	if (total == cap) {
		keys_errf(err, err_len, "%s: not a key file (too large)", path);
		return -EPROTO;
	}
	*len = total;
	return 0;
}

int keys_file_read(const char *path, const char *pass, size_t pass_len,
		   struct keys **out, char *err, size_t err_len)
{
	char *buf, why[200];
	size_t len = 0;
	int rc;

	if (sodium_init() < 0)
		return -EIO;
	buf = sodium_malloc(KEYS_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	rc = keys_slurp(path, buf, KEYS_FILE_MAX + 1, &len, err, err_len);
	if (rc == 0) {
		rc = keys_parse(buf, len, pass, pass_len, out, why, sizeof(why));
		if (rc < 0)
			keys_errf(err, err_len, "%s: %s", path, why);
	}
	sodium_free(buf);
	return rc;
}

int keys_file_needs_passphrase(const char *path)
{
	char *buf;
	size_t len = 0;
	int rc;

	if (sodium_init() < 0)
		return -EIO;
	buf = sodium_malloc(KEYS_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	rc = keys_slurp(path, buf, KEYS_FILE_MAX + 1, &len, NULL, 0);
	if (rc == 0) {
		buf[len] = '\0';
		rc = strstr(buf, "kdf = argon2id") != NULL;
	}
	sodium_free(buf);
	return rc;
}
