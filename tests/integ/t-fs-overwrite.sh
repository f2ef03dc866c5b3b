#!/bin/sh
# t-fs-overwrite.sh: random overwrites through the write pipeline.
#
# Proves: a file built by thousands of random writes (1 B to 3 MiB, into
# committed data, into bytes still buffered, across the end, past it
# leaving holes), appends, truncates up and down and fsyncs on the mount
# is byte-identical to the same sequence applied to a local file: while
# mounted, with the page cache dropped (reads from the cluster), and after
# a remount. Two seeds; CAIRNFS_TEST_SEED replays one.
. "$srcdir/tests/integ/lib.sh"
integ_init
. "$srcdir/tests/integ/fslib.sh"
fs_cluster 3 2
fs_mount || fail "mount failed: $(tail -5 "$T/cairnfs.log")"

seed=${CAIRNFS_TEST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ops=${CAIRNFS_TEST_OVERWRITE_OPS:-400}
for s in "$seed" $((seed + 1)); do
	echo "seed $s ($ops operations; replay with CAIRNFS_TEST_SEED=$s)"
	overwriter "$s" "$ops" 48000000 "$MNT/ow.$s" "$T/ow.$s" ||
		fail "overwriter failed (seed $s)"
	cmp "$T/ow.$s" "$MNT/ow.$s" || fail "seed $s: the mount's file differs while mounted"
	echo 3 >/proc/sys/vm/drop_caches
	cmp "$T/ow.$s" "$MNT/ow.$s" || fail "seed $s: differs when read back from the cluster"
done
fs_umount
fs_mount || fail "remount failed"
for s in "$seed" $((seed + 1)); do
	cmp "$T/ow.$s" "$MNT/ow.$s" || fail "seed $s: differs after a remount"
	figure fs_overwrite_final_bytes "$(stat -c %s "$MNT/ow.$s")" bytes
done
fs_umount
