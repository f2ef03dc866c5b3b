/*
 * keys: a volume's master key, its subkeys, and the key file that holds them.
 *
 * A volume has a 32-byte master key made at creation. Subkeys are derived
 * with crypto_kdf_derive_from_key, one per purpose (block id, encryption,
 * chunker gear table, metadata), so no key is used for two jobs. All key
 * material lives in sodium_malloc'd memory and is wiped on free.
 *
 * The key file is text, one "name = value" per line ('#' starts a comment):
 *
 *   # cairnfs volume key: keep it secret, keep a copy
 *   format = cairnfs-key-1
 *   volume = photos
 *   volume-id = 0f3c...            (16 bytes, hex)
 *   chunk-min = 65536              (volume settings fixed at creation)
 *   chunk-avg = 262144
 *   chunk-max = 1048576
 *   kdf = none | argon2id
 *   key = <64 hex>                 (kdf = none: the master key itself)
 *   salt = <hex>, opslimit = N, memlimit = N, wrapped = <hex>
 *                                  (kdf = argon2id: master key sealed with
 *                                   crypto_secretbox under Argon2id(passphrase))
 *
 * It is written with mode 0600 (O_EXCL, fsync, rename) and read only when
 * neither group nor others may read it and it belongs to the reader (or to
 * root when root reads). Knows nothing of the cluster. Never logs.
 *
 * Thread-safety: a struct keys is immutable after creation; share it freely.
 */
#ifndef CAIRN_KEYS_H
#define CAIRN_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_MASTER_BYTES 32
#define KEYS_SUBKEY_BYTES 32
#define KEYS_VOLUME_ID_BYTES 16
#define KEYS_NAME_MAX 64          /* volume name, bytes without NUL */

enum keys_purpose {               /* crypto_kdf subkey ids: never renumber */
	KEYS_BLOCK_ID = 1,            /* keyed BLAKE2b for block addresses */
	KEYS_ENCRYPT = 2,             /* XChaCha20-Poly1305 block sealing */
	KEYS_GEAR = 3,                /* chunker gear table */
	KEYS_META = 4,                /* metadata snapshots and the like */
};

/* Volume settings stored beside the key. */
struct keys_volume {
	char name[KEYS_NAME_MAX + 1];
	uint8_t volume_id[KEYS_VOLUME_ID_BYTES];
	uint32_t chunk_min, chunk_avg, chunk_max;
};

struct keys;

/* A fresh random master key (and volume id) for volume `vol` (name and chunk
 * sizes are copied from it; its volume_id is ignored and made anew). */
int keys_generate(const struct keys_volume *vol, struct keys **out)
	__attribute__((warn_unused_result));
/* Keys from a known master key (tests, restore). */
int keys_from_master(const uint8_t master[KEYS_MASTER_BYTES],
		     const struct keys_volume *vol, struct keys **out)
	__attribute__((warn_unused_result));
void keys_free(struct keys *k);

/* The subkey for `purpose` (KEYS_SUBKEY_BYTES); valid while k lives. */
const uint8_t *keys_subkey(const struct keys *k, enum keys_purpose purpose);
const uint8_t *keys_master(const struct keys *k);
const struct keys_volume *keys_volume(const struct keys *k);

/*
 * Write k to a new key file at `path` (must not exist: -EEXIST), mode 0600.
 * With a passphrase (pass != NULL) the master key is wrapped with Argon2id
 * (crypto_pwhash, MODERATE limits unless tests lower them via
 * keys_set_pwhash_limits()). Returns 0 or -errno.
 */
int keys_file_write(const char *path, const struct keys *k, const char *pass,
		    size_t pass_len) __attribute__((warn_unused_result));

/*
 * Read a key file. Returns 0, or:
 *   -EACCES      group or others may read it (mode must be 0600 or 0400),
 *                or it belongs to another user
 *   -ENOENT      no such file (other open/read errors as -errno)
 *   -EPROTO      not a key file, or a malformed line (detail in err)
 *   -ENOTSUP     a format this build does not know
 *   -ENOKEY      the file is passphrase-wrapped and pass is NULL
 *   -EKEYREJECTED wrong passphrase
 * `err` (LOG_ERRBUF-sized, may be NULL) receives a sentence naming the file,
 * and the line for parse errors.
 */
int keys_file_read(const char *path, const char *pass, size_t pass_len,
		   struct keys **out, char *err, size_t err_len)
	__attribute__((warn_unused_result));

/* The parser behind keys_file_read(), on bytes in memory (fuzzed). */
int keys_parse(const char *text, size_t len, const char *pass, size_t pass_len,
	       struct keys **out, char *err, size_t err_len)
	__attribute__((warn_unused_result));

/* Whether a key file is passphrase-wrapped: 1 yes, 0 no, or -errno. */
int keys_file_needs_passphrase(const char *path);

/* Lower Argon2id cost (tests only); 0, 0 restores the defaults. */
void keys_set_pwhash_limits(unsigned long long opslimit, size_t memlimit);

#endif
