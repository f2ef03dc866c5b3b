/*
 * test_keys: subkeys are distinct and stable; key files round-trip, are
 * written 0600, and are refused when others may read them (T26); wrapped
 * keys need the right passphrase; malformed files get their own codes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/keys.h"

static char dir[64], path[128], errbuf[256];
static const struct keys_volume vol = { .name = "photos", .chunk_min = 65536,
					.chunk_avg = 262144, .chunk_max = 1048576 };

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_keys.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/photos.key", dir);
	keys_set_pwhash_limits(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void subkeys_differ_and_derive_stably(void **state)
{
	struct keys *a, *b;

	(void)state;
	assert_int_equal(keys_generate(&vol, &a), 0);
	for (int p = KEYS_BLOCK_ID; p <= KEYS_META; p++)
		for (int q = p + 1; q <= KEYS_META; q++)
			assert_memory_not_equal(keys_subkey(a, p), keys_subkey(a, q), 32);
	assert_int_equal(keys_from_master(keys_master(a), keys_volume(a), &b), 0);
	for (int p = KEYS_BLOCK_ID; p <= KEYS_META; p++)
		assert_memory_equal(keys_subkey(a, p), keys_subkey(b, p), 32);
	assert_null(keys_subkey(a, 0));
	keys_free(a);
	keys_free(b);
}

static void key_file_round_trips_with_mode_0600(void **state)
{
	struct keys *a, *b;
	struct stat st;

	(void)state;
	assert_int_equal(keys_generate(&vol, &a), 0);
	assert_int_equal(keys_file_write(path, a, NULL, 0), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(keys_file_write(path, a, NULL, 0), -EEXIST);
	assert_int_equal(keys_file_needs_passphrase(path), 0);
	assert_int_equal(keys_file_read(path, NULL, 0, &b, errbuf, sizeof(errbuf)), 0);
	assert_memory_equal(keys_master(a), keys_master(b), 32);
	assert_string_equal(keys_volume(b)->name, "photos");
	assert_memory_equal(keys_volume(a)->volume_id, keys_volume(b)->volume_id, 16);
	assert_int_equal(keys_volume(b)->chunk_avg, 262144);
	keys_free(a);
	keys_free(b);
}

static void readable_key_files_are_refused(void **state)
{
	struct keys *a, *b = NULL;

	(void)state;
	assert_int_equal(keys_generate(&vol, &a), 0);
	assert_int_equal(keys_file_write(path, a, NULL, 0), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(keys_file_read(path, NULL, 0, &b, errbuf, sizeof(errbuf)), -EACCES);
	assert_non_null(strstr(errbuf, "chmod 600"));
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(keys_file_read(path, NULL, 0, &b, errbuf, sizeof(errbuf)), -EACCES);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(keys_file_read(path, NULL, 0, &b, errbuf, sizeof(errbuf)), 0);
	keys_free(b);
	b = NULL;
	if (geteuid() == 0) {       /* another owner */
		assert_int_equal(chown(path, 4242, 4242), 0);
		assert_int_equal(keys_file_read(path, NULL, 0, &b, errbuf, sizeof(errbuf)), -EACCES);
		assert_non_null(strstr(errbuf, "belongs to uid 4242"));
	}
	assert_int_equal(keys_file_read("/nonexistent/k", NULL, 0, &b, errbuf, sizeof(errbuf)), -ENOENT);
	keys_free(a);
}

static void wrapped_key_needs_the_passphrase(void **state)
{
	struct keys *a, *b = NULL;

	(void)state;
	assert_int_equal(keys_generate(&vol, &a), 0);
	assert_int_equal(keys_file_write(path, a, "correct horse", 13), 0);
	assert_int_equal(keys_file_needs_passphrase(path), 1);
	assert_int_equal(keys_file_read(path, NULL, 0, &b, errbuf, sizeof(errbuf)), -ENOKEY);
	assert_int_equal(keys_file_read(path, "wrong", 5, &b, errbuf, sizeof(errbuf)), -EKEYREJECTED);
	assert_non_null(strstr(errbuf, "wrong passphrase"));
	assert_int_equal(keys_file_read(path, "correct horse", 13, &b, errbuf, sizeof(errbuf)), 0);
	assert_memory_equal(keys_master(a), keys_master(b), 32);
	keys_free(a);
	keys_free(b);
}

static void malformed_files_get_distinct_codes(void **state)
{
	static const struct { const char *text; int rc; const char *why; } cases[] = {
		{ "hello world\n", -EPROTO, "not 'name = value'" },
		{ "volume = x\n", -EPROTO, "no 'format'" },
		{ "format = cairnfs-key-9\n", -ENOTSUP, "not known" },
		{ "format = cairnfs-key-1\nvolume = v\n", -EPROTO, "missing field" },
		{ "format = cairnfs-key-1\nformat = cairnfs-key-1\n", -EPROTO, "twice" },
		{ "format = cairnfs-key-1\nbogus = 1\n", -EPROTO, "unknown field" },
		{ "format = cairnfs-key-1\nvolume = v\nvolume-id = zz\nchunk-min = 1\n"
		  "chunk-avg = 2\nchunk-max = 3\nkdf = none\nkey = 00\n", -EPROTO, "volume-id" },
		{ "format = cairnfs-key-1\nvolume = v\nvolume-id = 00000000000000000000000000000000\n"
		  "chunk-min = 1\nchunk-avg = 2\nchunk-max = 3\nkdf = none\nkey = 1234\n", -EPROTO, "'key'" },
		{ "format = cairnfs-key-1\nvolume = v\nvolume-id = 00000000000000000000000000000000\n"
		  "chunk-min = 1\nchunk-avg = 2\nchunk-max = 3\nkdf = scrypt\n", -ENOTSUP, "kdf" },
	};
	struct keys *k = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = keys_parse(cases[i].text, strlen(cases[i].text), NULL, 0, &k,
				    errbuf, sizeof(errbuf));

		if (rc != cases[i].rc || !strstr(errbuf, cases[i].why))
			fail_msg("case %zu: rc %d (%s), want %d with '%s'", i, rc, errbuf,
				 cases[i].rc, cases[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(subkeys_differ_and_derive_stably),
		cmocka_unit_test_setup_teardown(key_file_round_trips_with_mode_0600, setup, teardown),
		cmocka_unit_test_setup_teardown(readable_key_files_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(wrapped_key_needs_the_passphrase, setup, teardown),
		cmocka_unit_test(malformed_files_get_distinct_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
