#!/bin/sh
# t-fs-faults.sh: the cluster misbehaving under a mounted volume.
#
# Proves: a block damaged on every daemon makes reads of its range fail
# with EIO, names the block in the log, and leaves the rest of the file
# readable and intact; with every daemon frozen (SIGSTOP) a read of data
# not in the cache returns an error within the call timeout instead of
# hanging, stat, mkdir, touch, setfattr, rename, ls and writing a file
# keep answering meanwhile, and once they are thawed the same read
# succeeds and the written file reaches the daemons; a copy made while
# one daemon hangs waits for it and loses nothing, and a close then does
# not fail for a flush a retry will cure; an unmount waits for a hung
# daemon as long as writers would, then parks what it could not store
# (sealed, in the metadata dir), and the next mount stores it before it
# serves, or is refused while it cannot; an idle
# mount uses no CPU; the threads of cairnfs and cairnd carry names that
# tell them apart (top -H, ps -L, perf).
. "$srcdir/tests/integ/lib.sh"
integ_init
command -v packls >/dev/null 2>&1 || PATH="$top_builddir/tests/integ:$PATH"
command -v packls >/dev/null 2>&1 || fail "packls is not built"
. "$srcdir/tests/integ/fslib.sh"
fs_cluster 3 2
fs_mount "timeout=2000" || fail "mount failed: $(tail -5 "$T/cairnfs.log")"

# A 16 MiB file: 16 or more chunks at the 256 KiB average.
head -c 16M /dev/urandom >"$T/f"
cp "$T/f" "$MNT/f" && sync "$MNT/f" || fail "write failed"
fs_umount     # the remount starts with an empty block cache
# Every block the daemons hold is a record in one of their pack files,
# DATA/packs/NNNNNNNN.pack (daemon/pack.h); the same address names a
# block on every daemon. pack_records lists them to $T/records, one line
# per record: ADDRESS PACK OFFSET LENGTH, the offset and length those of
# the block's bytes (tests/integ/packls.c). It is not called in a
# pipeline, so that its fail ends the test.
pack_records() {
	packls "$T"/d1 "$T"/d2 "$T"/d3 >"$T/records" 2>"$T/packls.err" ||
		fail "packls failed: $(cat "$T/packls.err")"
}
# block_names: the address of each record listed, one line each.
block_names() { cut -d' ' -f1 "$T/records"; }
# f's blocks, for the damage below: later files add blocks of their own.
pack_records
block_names | sort -u >"$T/f.blocks"
[ -s "$T/f.blocks" ] || fail "no blocks of f found in the daemons' packs"

# An idle mount costs no CPU: the request loop spins only just after a
# request (fs/loop.h), then sleeps.
fs_mount "timeout=2000" || fail "remount failed"
stat "$MNT/f" >/dev/null
sleep 1
cpu_ticks() { awk '{print $14 + $15}' "/proc/$FS_PID/stat"; }
c0=$(cpu_ticks); sleep 3; c1=$(cpu_ticks)
figure idle_mount_cpu_ticks_3s "$((c1 - c0))" ticks
[ $((c1 - c0)) -le 30 ] || fail "an idle mount used $((c1 - c0)) clock ticks of CPU in 3 s"

thread_names() { cat /proc/"$1"/task/*/comm | sort -u | tr '\n' ' '; }
names=$(thread_names "$FS_PID")
for n in fs-flush fs-delete fs-meta-commit fs-readahead fs-workpool; do
	case " $names" in *" $n "*) ;; *) fail "cairnfs has no thread named $n: $names" ;; esac
done
names=$(thread_names "$(daemon_pid 1)")
for n in disk-worker store-commit; do
	case " $names" in *" $n "*) ;; *) fail "cairnd has no thread named $n: $names" ;; esac
done

# Frozen daemons: an uncached read must not hang, and while it waits on
# the network the mount keeps answering what needs no daemon (the request
# loop hands a read off to another thread before it waits). That includes
# writing and closing another file: its pages go to the mount's write
# buffer, which needs no daemon until it is flushed. (With the kernel's
# asynchronous reads, the read would hold the one background slot that
# write-back needs, fs/ops.c.)
for i in 1 2 3; do kill -STOP "$(daemon_pid $i)"; done
t0=$(date +%s)
timeout 120 dd if="$MNT/f" of=/dev/null bs=65536 count=16 2>"$T/dd.err" &
dd_pid=$!
sleep 0.5
kill -0 "$dd_pid" 2>/dev/null || fail "the read against frozen daemons ended at once"
m0=$(date +%s%N)
timeout 10 stat "$MNT/f" >/dev/null || fail "stat hung behind a read waiting for frozen daemons"
timeout 10 mkdir "$MNT/meanwhile" || fail "mkdir hung behind a read waiting for frozen daemons"
timeout 10 touch "$MNT/meanwhile/note" || fail "touch hung behind a read waiting for frozen daemons"
timeout 10 setfattr -n user.k -v v "$MNT/meanwhile/note" || fail "setfattr hung behind a waiting read"
timeout 10 mv "$MNT/meanwhile/note" "$MNT/meanwhile/note2" || fail "rename hung behind a waiting read"
timeout 10 ls "$MNT" >/dev/null || fail "ls hung behind a read waiting for frozen daemons"
head -c 1M /dev/urandom >"$T/w"
timeout 10 dd if="$T/w" of="$MNT/meanwhile/w" bs=65536 2>/dev/null ||
	fail "writing and closing a file hung behind a read waiting for frozen daemons"
m1=$(date +%s%N)
kill -0 "$dd_pid" 2>/dev/null || fail "the read ended before the metadata work: it proved nothing"
figure metadata_during_stuck_read_ms "$(( (m1 - m0) / 1000000 ))" ms
[ $(( (m1 - m0) / 1000000 )) -lt 1500 ] || fail "metadata work took $(( (m1 - m0) / 1000000 )) ms beside a stuck read"
if wait "$dd_pid"; then
	for i in 1 2 3; do kill -CONT "$(daemon_pid $i)"; done
	fail "read with every daemon frozen succeeded?"
fi
took=$(( $(date +%s) - t0 ))
for i in 1 2 3; do kill -CONT "$(daemon_pid $i)"; done
figure frozen_cluster_read_error_s "$took" s
# Calls time out after 2 s (timeout=2000); a node that timed out gets
# short probes after that (cluster/pool.h), so the read fails in seconds:
# 5 s here, where before probes it took 97 s.
[ "$took" -lt 20 ] || fail "a read against frozen daemons took $took s"
grep -q "Input/output error\|timed out" "$T/dd.err" || fail "unclear error: $(cat "$T/dd.err")"
dd if="$MNT/f" of="$T/piece" bs=65536 count=16 2>/dev/null ||
	fail "after the daemons came back the read still fails"
dd if="$T/f" of="$T/want" bs=65536 count=16 2>/dev/null
cmp -s "$T/piece" "$T/want" || fail "data read after the thaw differs"
# The file written while the daemons were frozen reaches them afterwards:
# a flush that timed out keeps its data for the next one, and an fsync
# made once they are back answers for a flush of its own, not for the
# attempts that failed while they were frozen (fs/fsdata.c).
sync "$MNT/meanwhile/w" ||
	fail "the file written while the daemons were frozen cannot be synced"
cmp -s "$MNT/meanwhile/w" "$T/w" || fail "the file written while the daemons were frozen differs"
fs_umount


# Damage one of f's blocks on every daemon that holds it: every record of
# its address in every pack (a record left whole would serve it). The
# victim is one with the most records, so that the damage covers copies
# on several daemons, not just one.
pack_records
victim=$(block_names | grep -Fx -f "$T/f.blocks" | sort | uniq -c | sort -rn |
	awk '{print $2; exit}')
[ -n "$victim" ] || fail "no block of f found in the daemons' packs"
hits=0
while read -r addr pack off len; do
	[ "$addr" = "$victim" ] || continue
	# Flip every bit of the byte in the middle of the block's bytes (the
	# sealed payload, past the pack's record header), so that it differs
	# whatever it was.
	at=$((off + len / 2))
	b=$(od -An -tu1 -j "$at" -N1 "$pack" | tr -d ' ')
	[ -n "$b" ] || fail "cannot read byte $at of $pack"
	printf "\\$(printf %o $((b ^ 255)))" |
		dd of="$pack" bs=1 seek="$at" conv=notrunc 2>/dev/null ||
		fail "cannot damage $pack at $at"
	hits=$((hits + 1))
done <"$T/records"
[ "$hits" -ge 1 ] || fail "block $victim not found"
figure corrupt_block_copies_damaged "$hits" records

fs_mount "timeout=2000" || fail "remount failed"
# Read the file 64 KiB at a time; count good and failed pieces.
good=0 bad=0 i=0
while [ $i -lt 256 ]; do
	if dd if="$MNT/f" of="$T/piece" bs=65536 skip=$i count=1 2>"$T/dd.err"; then
		dd if="$T/f" of="$T/want" bs=65536 skip=$i count=1 2>/dev/null
		got=$(stat -c %s "$T/piece")
		# A read that meets the bad block part-way returns the bytes
		# before it (a short read); those must be right.
		cmp -s -n "$got" "$T/piece" "$T/want" || fail "piece $i reads back wrong data (no EIO)"
		if [ "$got" = 65536 ]; then good=$((good + 1)); else bad=$((bad + 1)); fi
	else
		grep -q "Input/output error" "$T/dd.err" ||
			fail "piece $i failed without EIO: $(cat "$T/dd.err")"
		bad=$((bad + 1))
	fi
	i=$((i + 1))
done
figure corrupt_block_good_pieces "$good" pieces
figure corrupt_block_eio_pieces "$bad" pieces
# The victim is one of this file's blocks, so some piece must fail, and
# most must not.
[ "$bad" -ge 1 ] || fail "a block damaged on all its holders still read fine"
[ "$good" -ge 128 ] || fail "only $good of 256 pieces readable around one bad block"
grep -q "block $(echo "$victim" | cut -c1-16)" "$T/cairnfs.log" ||
	fail "the log does not name the damaged block $victim"
fs_umount

# One daemon hangs while a file twice the mount's write buffer (48 MiB)
# is copied in. Every owner must store a block (no quorum=), so the
# flushes fail and the copy waits; nothing may be dropped meanwhile (the
# kernel writes back pages the copy was already told were written). Once
# the daemon is back, the retried flushes store it all without an fsync,
# and cp succeeds: a flush failure that a retry may still cure is not
# reported at close (fs/fsdata.h).
fs_mount "timeout=2000" || fail "remount failed"
head -c 96M /dev/urandom >"$T/big"
kill -STOP "$(daemon_pid 1)"
cp "$T/big" "$MNT/big" 2>"$T/cp.err" &
cp_pid=$!
sleep 8
kill -0 "$cp_pid" 2>/dev/null || {
	kill -CONT "$(daemon_pid 1)"
	fail "a copy of 96 MiB finished with a daemon hung: it should wait for it"
}
grep -q "data stays buffered" "$T/cairnfs.log" ||
	{ kill -CONT "$(daemon_pid 1)"; fail "no flush failed while a daemon hung: the case was not made"; }
kill -CONT "$(daemon_pid 1)"
n=0
while kill -0 "$cp_pid" 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 1200 ] || fail "the copy did not finish within 120 s of the daemon's return"
	sleep 0.1
done
wait "$cp_pid" || fail "the copy failed with a daemon hung for 8 s: $(cat "$T/cp.err")"
# reads_back_after_remount NAME...: each $MNT/NAME equals $T/NAME, read
# from the cluster after a remount, not from the kernel's page cache.
reads_back_after_remount() {
	fs_umount
	fs_mount "timeout=2000" || fail "remount failed"
	for rb_name_ in "$@"; do
		cmp -s "$MNT/$rb_name_" "$T/$rb_name_" || fail "$rb_name_ reads back wrong"
	done
	fs_umount
}

# close_after_failed_flush NAME: write 16 MiB of new bytes ($T/NAME;
# dedup would store none of old ones) to $MNT/NAME and close it only once
# the log shows that file's flush failed. dd writes with O_DIRECT so that
# the bytes reach the mount (and a flush fails) before its input ends.
# Returns dd's status; its errors are in $T/NAME.err. The flush must fail
# within 8 s: a call timeout (2 s) or a probe (1 s) of the hung owner, not
# one probe per block (cluster/blockio.c; it took 13 to over 20 s).
close_after_failed_flush() {
	head -c 16M /dev/urandom >"$T/$1"
	: >"$MNT/$1" || fail "create of $1 failed"
	cf_ino_=$(stat -c %i "$MNT/$1")
	cf_n0_=$(grep -c "inode $cf_ino_: storing .* data stays buffered" "$T/cairnfs.log")
	cf_t0_=$(date +%s%N)
	{
		cat "$T/$1"
		i=0
		while [ "$(grep -c "inode $cf_ino_: storing .* data stays buffered" "$T/cairnfs.log")" -le "$cf_n0_" ] &&
		      [ $i -lt 200 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		date +%s%N >"$T/$1.failed_at"
		sleep 0.5     # the flusher logs just before it records the error
	} | dd of="$MNT/$1" bs=1M iflag=fullblock oflag=direct 2>"$T/$1.err"
	cf_rc_=$?
	[ "$(grep -c "inode $cf_ino_: storing .* data stays buffered" "$T/cairnfs.log")" -gt "$cf_n0_" ] ||
		{ kill -CONT "$(daemon_pid 1)"; fail "no flush of $1 failed before its close: the case was not made"; }
	cf_ms_=$(( ($(cat "$T/$1.failed_at") - cf_t0_) / 1000000 ))
	figure "flush_fails_with_owner_hung_${1}_ms" "$cf_ms_" ms
	[ "$cf_ms_" -lt 8000 ] ||
		{ kill -CONT "$(daemon_pid 1)"; fail "the flush of $1 took $cf_ms_ ms to fail with one owner hung"; }
	return $cf_rc_
}

# A file closed while that daemon hangs, after its flush has failed:
# close succeeds, since a retry will store it (fs/fsdata.h), and it does
# once the daemon is back.
sync "$MNT/big" || fail "the file copied while a daemon hung cannot be synced"
kill -STOP "$(daemon_pid 1)"
close_after_failed_flush late
rc=$?
kill -CONT "$(daemon_pid 1)"
[ "$rc" -eq 0 ] || fail "close reported a flush failure that a retry cures: $(cat "$T/late.err")"
sync "$MNT/late" || fail "the file closed while a daemon hung cannot be synced once it is back"
reads_back_after_remount big late

# A daemon away for longer than 12 call timeouts (24 s here) is an
# outage, not a hiccup: a file closed then gets the error at close,
# though its own flush failed only just before, so that closes do not go
# on succeeding while data piles up unstored. Its data is still kept,
# and stored once the daemon is back.
fs_mount "timeout=2000" || fail "remount failed"
kill -STOP "$(daemon_pid 1)"
close_after_failed_flush early ||
	{ kill -CONT "$(daemon_pid 1)"; fail "a close 2 s into an outage failed: $(cat "$T/early.err")"; }
sleep 23
close_after_failed_flush after
rc=$?
kill -CONT "$(daemon_pid 1)"
[ "$rc" -ne 0 ] || fail "a close 25 s into an outage of 12 call timeouts succeeded"
grep -q "closing output file.*timed out" "$T/after.err" ||
	fail "the close failed otherwise than by the timeout: $(cat "$T/after.err")"
sync "$MNT/early" "$MNT/after" || fail "the files closed during the outage cannot be synced once it is over"
reads_back_after_remount early after

# Unmounted while a daemon hangs, with a file still buffered: the process
# keeps trying to store it for as long as writers would wait (12 call
# timeouts), so a daemon back within that loses nothing (waited); what a
# longer outage keeps from the cluster is parked on local disk (lost).
wait_exit() {   # wait_exit SECONDS: the mount's process is gone by then
	n_=0
	while kill -0 "$FS_PID" 2>/dev/null; do
		n_=$((n_ + 1))
		[ $n_ -gt $(($1 * 10)) ] && return 1
		sleep 0.1
	done
	FS_PID=
}
log_count() { grep -c "$1" "$T/cairnfs.log"; }
fs_mount "timeout=2000" || fail "remount failed"
head -c 4M /dev/urandom >"$T/waited"
waits0=$(log_count "buffered bytes wait for the cluster")
drops0=$(log_count "buffered bytes dropped")
kill -STOP "$(daemon_pid 1)"
cp "$T/waited" "$MNT/waited" || { kill -CONT "$(daemon_pid 1)"; fail "cp failed"; }
fusermount3 -u "$MNT" || { kill -CONT "$(daemon_pid 1)"; fail "unmount failed"; }
sleep 4
kill -CONT "$(daemon_pid 1)"
wait_exit 30 || fail "cairnfs did not exit within 30 s of the daemon's return"
[ "$(log_count "buffered bytes wait for the cluster")" -gt "$waits0" ] ||
	fail "the unmount did not have to wait (the daemon hang did not hold the flush back)"
[ "$(log_count "buffered bytes dropped")" -eq "$drops0" ] ||
	fail "an unmount dropped data although the daemon came back within the wait"
fs_mount "timeout=2000" || fail "remount failed"
cmp -s "$MNT/waited" "$T/waited" || fail "a file unmounted while a daemon hung reads back wrong"
fs_umount

fs_mount "timeout=2000" || fail "remount failed"
head -c 4M /dev/urandom >"$T/lost"
kill -STOP "$(daemon_pid 1)"
cp "$T/lost" "$MNT/lost" || { kill -CONT "$(daemon_pid 1)"; fail "cp failed"; }
lost_ino=$(stat -c %i "$MNT/lost")
t0=$(date +%s)
fusermount3 -u "$MNT" || { kill -CONT "$(daemon_pid 1)"; fail "unmount failed"; }
wait_exit 60 || { kill -CONT "$(daemon_pid 1)"; fail "cairnfs still runs 60 s after the unmount"; }
took=$(($(date +%s) - t0))
figure unmount_gives_up_after_s "$took" s
[ "$took" -ge 20 ] ||
	{ kill -CONT "$(daemon_pid 1)"; fail "the unmount gave up after $took s, before 12 call timeouts (24 s)"; }
grep -q "unmount: buffered data could not be stored" "$T/cairnfs.log" ||
	{ kill -CONT "$(daemon_pid 1)"; fail "an unmount that could not store buffered data did not say so"; }
# What it could not store is parked (sealed) in the metadata dir, not lost.
grep -q "unmount: inode $lost_ino: 4194304 buffered bytes parked in $META/parked" "$T/cairnfs.log" ||
	{ kill -CONT "$(daemon_pid 1)"; fail "the unmount did not park the data it could not store"; }
[ -f "$META/parked/$lost_ino" ] || { kill -CONT "$(daemon_pid 1)"; fail "no parked file for inode $lost_ino"; }
[ "$(stat -c %a "$META/parked/$lost_ino")" = 600 ] ||
	{ kill -CONT "$(daemon_pid 1)"; fail "the parked file is not mode 0600"; }
clear=$(xxd -p -s 1000000 -l 32 "$T/lost" | tr -d '\n')
xxd -p "$META/parked/$lost_ino" | tr -d '\n' | grep -q "$clear" &&
	{ kill -CONT "$(daemon_pid 1)"; fail "the parked file holds the data in the clear"; }
# A mount while the daemon still hangs must store it first, cannot, and
# is refused with the reason; the parked file stays.
if fs_mount "timeout=2000"; then
	kill -CONT "$(daemon_pid 1)"
	fail "a mount succeeded although the parked data could not be stored"
fi
kill -CONT "$(daemon_pid 1)"
grep -q "inode $lost_ino that an earlier unmount could not store.*cannot be stored yet" "$T/cairnfs.log" ||
	fail "the refused mount did not say why"
[ -f "$META/parked/$lost_ino" ] || fail "a refused mount removed the parked file"
# A damaged parked file stops the mount and names itself; a read-only
# mount stores nothing, says the parked data is not shown, reads files
# and refuses writes.
cp "$META/parked/$lost_ino" "$T/parked.copy"
printf 'X' | dd of="$META/parked/$lost_ino" bs=1 seek=100 conv=notrunc status=none
fs_mount "timeout=2000" && fail "a mount succeeded over a damaged parked file"
grep -q "cannot open $META/parked/$lost_ino, data an earlier unmount could not store" "$T/cairnfs.log" ||
	fail "the mount refused over a damaged parked file did not name it"
cp "$T/parked.copy" "$META/parked/$lost_ino"
fs_mount "timeout=2000,ro" || fail "a read-only mount with parked data failed"
grep -q "parked/$lost_ino: data an earlier unmount could not store is not shown by a read-only mount" "$T/cairnfs.log" ||
	fail "a read-only mount did not say parked data is not shown"
cmp -s "$MNT/early" "$T/early" || fail "a file reads back wrong through a read-only mount"
touch "$MNT/ro-test" 2>"$T/ro.err" && fail "a read-only mount took a new file"
grep -q "Read-only file system" "$T/ro.err" || fail "a write to a read-only mount failed otherwise: $(cat "$T/ro.err")"
fs_umount
[ -f "$META/parked/$lost_ino" ] || fail "a read-only mount removed the parked file"
# Once the daemon is back, the next mount stores it, and the file is whole.
fs_mount "timeout=2000" || fail "mount with the cluster back failed: $(tail -3 "$T/cairnfs.log")"
grep -q "inode $lost_ino: 4194304 bytes parked by an earlier unmount are stored" "$T/cairnfs.log" ||
	fail "the mount did not store the parked data"
[ ! -e "$META/parked/$lost_ino" ] || fail "the parked file outlived its storing"
cmp -s "$MNT/lost" "$T/lost" || fail "the parked file's data reads back wrong"
fs_umount
fs_mount "timeout=2000" || fail "remount failed"
cmp -s "$MNT/lost" "$T/lost" || fail "the parked file's data reads back wrong after a remount"
fs_umount

# With that daemon hung again, the file reads back at the pace of the
# others: once it has timed out, the blocks it holds first are asked of
# their next holder first (cluster/chunkio.c), not after a probe each
# (2.7 s here; 18.6 s without that order).
fs_mount "timeout=2000" || fail "remount failed"
kill -STOP "$(daemon_pid 1)"
t0=$(date +%s%N)
cmp -s "$MNT/big" "$T/big" || { kill -CONT "$(daemon_pid 1)"; fail "read with one daemon hung differs"; }
t1=$(date +%s%N)
kill -CONT "$(daemon_pid 1)"
took=$(( (t1 - t0) / 1000000 ))
figure read_96m_one_daemon_hung_ms "$took" ms
[ "$took" -lt 10000 ] || fail "reading 96 MiB with one daemon hung took $took ms"
fs_umount
