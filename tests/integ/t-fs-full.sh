#!/bin/sh
# t-fs-full.sh: a full cluster under a mounted volume.
#
# Proves: with every daemon's disk full, writing a file through the mount
# fails with ENOSPC (reported by write, fsync or close: cp exits non-zero
# and says "No space left on device") instead of hanging or claiming
# success; the mount keeps working: a file stored before reads back
# intact, directories list, and a small new file can be written once space
# is freed on the daemons' disks.
. "$srcdir/tests/integ/lib.sh"
integ_init
. "$srcdir/tests/integ/fslib.sh"
for i in 1 2 3; do
	mkdir -p "$T/d$i"
	mount -t tmpfs -o size=24m tmpfs "$T/d$i" 2>/dev/null || skip "cannot mount a tmpfs here"
done
INTEG_ON_EXIT="umount '$T/d1' '$T/d2' '$T/d3' 2>/dev/null"
fs_cluster 3 2
fs_mount "timeout=3000" || fail "mount failed: $(tail -5 "$T/cairnfs.log")"

head -c 4M /dev/urandom >"$T/before"
cp "$T/before" "$MNT/before" && sync "$MNT/before" || fail "a 4 MiB file did not fit"

# 3 disks of 24 MiB with R=2 hold at most 36 MiB of blocks: 64 MiB cannot fit.
head -c 64M /dev/urandom >"$T/big"
if timeout 300 sh -c "cp '$T/big' '$MNT/big' && sync '$MNT/big'" 2>"$T/cp.err"; then
	fail "64 MiB stored on 36 MiB of disk?"
fi
cat "$T/cp.err"
grep -q "No space left on device" "$T/cp.err" ||
	fail "the full cluster was not reported as ENOSPC: $(cat "$T/cp.err")"
grep -qi "space" "$T/cairnfs.log" || fail "cairnfs did not log the full cluster"

ls "$MNT" >/dev/null || fail "the mount stopped answering"
echo 3 >/proc/sys/vm/drop_caches
cmp "$T/before" "$MNT/before" || fail "a file stored before the disks filled reads back wrong"
figure full_cluster_enospc 1 bool

# Free space on the daemons (drop the partial file; its blocks are deleted
# in the background) and write again.
rm -f "$MNT/big"
n=0
until printf 'after\n' >"$MNT/after" 2>/dev/null && sync "$MNT/after" 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 60 ] || fail "no write succeeded within 60 s of freeing space"
	sleep 1
done
grep -qx after "$MNT/after" || fail "the file written after freeing space is wrong"
fs_umount
