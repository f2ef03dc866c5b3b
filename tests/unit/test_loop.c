/*
 * test_loop: which FUSE requests the request loop's leader answers itself.
 * A request that can wait on the network or on a flush must be handed off
 * (fs/loop.h): answered inline it would stop every other request from
 * being read until it finished (t-fs-faults.sh shows the effect on a
 * mount; this pins the list). READ is the one inline request that may
 * wait: op_read calls loop_may_block() first, and t-fs-faults.sh shows
 * that a read stuck on frozen daemons leaves the loop answering.
 */
#include <linux/fuse.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fs/loop.h"

static void requests_that_may_wait_are_handed_off(void **state)
{
	const unsigned may_wait[] = {
		FUSE_WRITE, FUSE_FSYNC, FUSE_FSYNCDIR, FUSE_STATFS,
		FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INIT, FUSE_DESTROY,
		FUSE_FALLOCATE, FUSE_COPY_FILE_RANGE, FUSE_LSEEK, FUSE_IOCTL,
		FUSE_POLL, FUSE_SETLKW, FUSE_BMAP,
		4242,          /* an opcode a newer kernel might send */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(may_wait) / sizeof(may_wait[0]); i++)
		assert_false(loop_answers_inline(may_wait[i], false));
	/* a truncate waits for a flush of the file in progress */
	assert_false(loop_answers_inline(FUSE_SETATTR, true));
}

static void metadata_requests_are_answered_inline(void **state)
{
	const unsigned quick[] = {
		FUSE_LOOKUP, FUSE_GETATTR, FUSE_CREATE, FUSE_MKDIR, FUSE_UNLINK,
		FUSE_RMDIR, FUSE_RENAME, FUSE_RENAME2, FUSE_LINK, FUSE_SYMLINK,
		FUSE_READLINK, FUSE_OPEN, FUSE_FLUSH, FUSE_RELEASE,
		FUSE_OPENDIR, FUSE_READDIR, FUSE_READDIRPLUS, FUSE_RELEASEDIR,
		FUSE_GETXATTR, FUSE_SETXATTR, FUSE_LISTXATTR, FUSE_REMOVEXATTR,
		FUSE_ACCESS, FUSE_INTERRUPT,
		FUSE_READ,     /* from the cache; op_read hands off to wait */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(quick) / sizeof(quick[0]); i++)
		assert_true(loop_answers_inline(quick[i], false));
	/* chmod, chown, utimes */
	assert_true(loop_answers_inline(FUSE_SETATTR, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_that_may_wait_are_handed_off),
		cmocka_unit_test(metadata_requests_are_answered_inline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
