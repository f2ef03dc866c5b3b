/*
 * test_conf: the option table drives file, flags, defaults and errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster/conf.h"

static char *opt_dir;
static long long opt_workers;
static uint64_t opt_cache;
static long long opt_timeout;
static bool opt_verbose;

static const struct conf_option table[] = {
	{ "data-dir", CONF_STRING, &opt_dir, "/var/lib/cairnd", 0, 0, "where blocks live" },
	{ "workers", CONF_INT, &opt_workers, "4", 1, 64, "disk threads" },
	{ "cache-size", CONF_SIZE, &opt_cache, "256M", 1 << 20, 1LL << 40, "cache bound" },
	{ "idle-timeout", CONF_DURATION_MS, &opt_timeout, "60s", 0, 0, "idle peers are dropped" },
	{ "verbose", CONF_BOOL, &opt_verbose, "no", 0, 0, "say more" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL },
};

static char errbuf[512];

static int setup(void **state)
{
	(void)state;
	assert_int_equal(conf_defaults(table, errbuf, sizeof(errbuf)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	conf_release(table);
	return 0;
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/test_conf.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void defaults_are_applied(void **state)
{
	(void)state;
	assert_string_equal(opt_dir, "/var/lib/cairnd");
	assert_int_equal(opt_workers, 4);
	assert_int_equal(opt_cache, 256ULL << 20);
	assert_int_equal(opt_timeout, 60000);
	assert_false(opt_verbose);
}

static void sizes_and_durations_parse_with_units(void **state)
{
	uint64_t v;
	long long ms;

	(void)state;
	assert_int_equal(conf_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(conf_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(conf_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(conf_parse_size("1t", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(conf_parse_size("-1", &v), -EINVAL);
	assert_int_equal(conf_parse_size("12X", &v), -EINVAL);
	assert_int_equal(conf_parse_size("", &v), -EINVAL);
	assert_int_equal(conf_parse_size("99999999999999T", &v), -ERANGE);

	assert_int_equal(conf_parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(conf_parse_duration_ms("10", &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(conf_parse_duration_ms("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(conf_parse_duration_ms("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(conf_parse_duration_ms("3d", &ms), -EINVAL);
	assert_int_equal(conf_parse_duration_ms("-3s", &ms), -EINVAL);
}

static void file_overrides_defaults_and_flags_override_file(void **state)
{
	char *path = write_tmp("# comment\n[cairnd]\ndata-dir = /srv/d1\n"
			       "workers = 8\ncache-size = 1G\nverbose = yes\n");
	char *argv[] = { "prog", "--workers=2", "--cache-size", "2M",
			 "--no-verbose", "--config", "x", "pos1", "pos2", NULL };
	int first = 0;

	(void)state;
	assert_int_equal(conf_load_file(table, path, errbuf, sizeof(errbuf)), 0);
	assert_string_equal(opt_dir, "/srv/d1");
	assert_int_equal(opt_workers, 8);
	assert_int_equal(opt_cache, 1ULL << 30);
	assert_true(opt_verbose);

	assert_int_equal(conf_parse_args(table, 9, argv, &first, errbuf,
					 sizeof(errbuf)), 0);
	assert_int_equal(opt_workers, 2);
	assert_int_equal(opt_cache, 2ULL << 20);
	assert_false(opt_verbose);
	assert_string_equal(opt_dir, "/srv/d1");
	/* --config takes its value and is skipped; positionals start after. */
	assert_int_equal(first, 7);
	unlink(path);
	free(path);
}

static void bad_file_values_name_file_and_line(void **state)
{
	char *path = write_tmp("data-dir = /a\n\nworkers = 99\n");
	char expect[300];

	(void)state;
	assert_int_equal(conf_load_file(table, path, errbuf, sizeof(errbuf)),
			 -EINVAL);
	snprintf(expect, sizeof(expect), "%s:3: workers:", path);
	assert_non_null(strstr(errbuf, expect));
	assert_non_null(strstr(errbuf, "outside 1..64"));
	unlink(path);
	free(path);

	path = write_tmp("nonsense-key = 1\n");
	assert_int_equal(conf_load_file(table, path, errbuf, sizeof(errbuf)),
			 -EINVAL);
	assert_non_null(strstr(errbuf, ":1: unknown option 'nonsense-key'"));
	unlink(path);
	free(path);

	path = write_tmp("workers = 3\nthis line has no equals sign\n");
	assert_int_equal(conf_load_file(table, path, errbuf, sizeof(errbuf)),
			 -EINVAL);
	assert_non_null(strstr(errbuf, ":2: not a 'name = value' line"));
	unlink(path);
	free(path);
}

static void missing_file_is_enoent(void **state)
{
	(void)state;
	assert_int_equal(conf_load_file(table, "/nonexistent/cairn.conf", errbuf,
					sizeof(errbuf)), -ENOENT);
	assert_non_null(strstr(errbuf, "/nonexistent/cairn.conf"));
}

static void bad_flags_are_rejected_with_their_name(void **state)
{
	char *unknown[] = { "prog", "--wrokers=3", NULL };
	char *novalue[] = { "prog", "--workers", NULL };
	char *badbool[] = { "prog", "--verbose=maybe", NULL };
	char *badsize[] = { "prog", "--cache-size=lots", NULL };
	char *nonbool_no[] = { "prog", "--no-workers", NULL };
	int first;

	(void)state;
	assert_int_equal(conf_parse_args(table, 2, unknown, &first, errbuf,
					 sizeof(errbuf)), -EINVAL);
	assert_non_null(strstr(errbuf, "--wrokers"));
	assert_int_equal(conf_parse_args(table, 2, novalue, &first, errbuf,
					 sizeof(errbuf)), -EINVAL);
	assert_non_null(strstr(errbuf, "needs a value"));
	assert_int_equal(conf_parse_args(table, 2, badbool, &first, errbuf,
					 sizeof(errbuf)), -EINVAL);
	assert_non_null(strstr(errbuf, "not a boolean"));
	assert_int_equal(conf_parse_args(table, 2, badsize, &first, errbuf,
					 sizeof(errbuf)), -EINVAL);
	assert_non_null(strstr(errbuf, "not a size"));
	assert_int_equal(conf_parse_args(table, 2, nonbool_no, &first, errbuf,
					 sizeof(errbuf)), -EINVAL);
}

static void find_flag_and_double_dash(void **state)
{
	char *argv[] = { "prog", "--config=/etc/x.conf", "--help", "--",
			 "--verbose", NULL };
	char *argv2[] = { "prog", "--config", "/etc/y.conf", NULL };
	int first;

	(void)state;
	assert_string_equal(conf_find_flag(5, argv, "config"), "/etc/x.conf");
	assert_string_equal(conf_find_flag(3, argv2, "config"), "/etc/y.conf");
	assert_true(conf_has_flag(5, argv, "help"));
	assert_false(conf_has_flag(5, argv, "verbose"));
	assert_false(conf_has_flag(5, argv, "hel"));
	assert_int_equal(conf_parse_args(table, 5, argv, &first, errbuf,
					 sizeof(errbuf)), 0);
	assert_int_equal(first, 4);
	assert_false(opt_verbose);
}

static void print_round_trips_through_a_file(void **state)
{
	char path[] = "/tmp/test_conf_print.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	char *argv[] = { "prog", "--data-dir=/x y", "--workers=7",
			 "--cache-size=3M", "--idle-timeout=1500ms", "--verbose",
			 NULL };

	(void)state;
	assert_non_null(f);
	assert_int_equal(conf_parse_args(table, 6, argv, NULL, errbuf,
					 sizeof(errbuf)), 0);
	conf_print(f, table);
	fclose(f);
	assert_int_equal(conf_defaults(table, errbuf, sizeof(errbuf)), 0);
	assert_int_equal(opt_workers, 4);
	assert_int_equal(conf_load_file(table, path, errbuf, sizeof(errbuf)), 0);
	assert_string_equal(opt_dir, "/x y");
	assert_int_equal(opt_workers, 7);
	assert_int_equal(opt_cache, 3ULL << 20);
	assert_int_equal(opt_timeout, 1500);
	assert_true(opt_verbose);
	unlink(path);
}

static void help_lists_every_option(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	conf_print_help(f, table);
	fclose(f);
	for (const struct conf_option *o = table; o->name; o++) {
		assert_non_null(strstr(buf, o->name));
		assert_non_null(strstr(buf, o->help));
	}
	assert_non_null(strstr(buf, "(default: 256M)"));
	/* a switch shows how to turn it off */
	assert_non_null(strstr(buf, "--[no-]verbose\n"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(defaults_are_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(sizes_and_durations_parse_with_units, setup, teardown),
		cmocka_unit_test_setup_teardown(file_overrides_defaults_and_flags_override_file, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_file_values_name_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_file_is_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_flags_are_rejected_with_their_name, setup, teardown),
		cmocka_unit_test_setup_teardown(find_flag_and_double_dash, setup, teardown),
		cmocka_unit_test_setup_teardown(print_round_trips_through_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(help_lists_every_option, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
