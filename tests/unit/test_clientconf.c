/*
 * test_clientconf: a cluster config dir loads; a secret readable by others,
 * a missing file and malformed hex are refused with distinct codes.
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

#include "cluster/clientconf.h"

static char dir[64];

static void put(const char *name, const char *text, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_clientconf.XXXXXX");
	assert_non_null(mkdtemp(dir));
	put("cluster.secret",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	put("admin.pub",
	    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n", 0644);
	put("cairnctl.conf", "cluster-id = abcd\nreplicas = 3\n"
	    "seeds = 127.0.0.1:7001, 127.0.0.1:7002,127.0.0.1:7003\n", 0644);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void loads_a_config_dir(void **state)
{
	struct clientconf c;
	char err[256];

	(void)state;
	assert_int_equal(clientconf_load(dir, &c, err, sizeof(err)), 0);
	assert_int_equal(c.secret[0], 0x00);
	assert_int_equal(c.secret[31], 0xff);
	assert_int_equal(c.admin_pk[0], 0xff);
	assert_int_equal(c.replicas, 3);
	assert_string_equal(c.cluster_id, "abcd");
	assert_int_equal(c.n_seeds, 3);
	assert_string_equal(c.seeds[1], "127.0.0.1:7002");
	clientconf_release(&c);
}

static void readable_secret_is_refused(void **state)
{
	struct clientconf c;
	char err[256], path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/cluster.secret", dir);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(clientconf_load(dir, &c, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "chmod 600"));
}

static void missing_and_malformed_files_are_refused(void **state)
{
	struct clientconf c;
	char err[256], path[128];

	(void)state;
	put("admin.pub", "not hex at all\n", 0644);
	assert_int_equal(clientconf_load(dir, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "admin.pub"));
	snprintf(path, sizeof(path), "%s/admin.pub", dir);
	unlink(path);
	assert_int_equal(clientconf_load(dir, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "admin.pub"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(loads_a_config_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(readable_secret_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_and_malformed_files_are_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
