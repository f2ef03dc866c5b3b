#!/bin/sh
# t-fs-crash.sh: the client killed at any moment (T02, T03, T04).
#
# T02: a writer fsyncs 4 KiB files and records each in a manifest; the
#      mount is killed -9 mid-run; after a remount every recorded file is
#      there and intact.
# T03: the daemons are SIGSTOPped so written data sits in the client's
#      buffers; killed; LMDB opens cleanly on remount.
# T04: under strace, every fsync(2) reply is preceded by a data sync of the
#      metadata (fdatasync/fsync/msync), and cairnfs never opens LMDB with
#      MDB_NOSYNC.
. "$srcdir/tests/integ/lib.sh"
integ_init
. "$srcdir/tests/integ/fslib.sh"
fs_cluster 3 2

# T02
fs_mount || fail "mount failed"
mkdir "$MNT/c"
crashwriter write "$MNT/c" "$T/manifest" 10000 2>"$T/writer.err" &
wpid=$!
sleep 4
fs_kill
wait $wpid 2>/dev/null
n=$(wc -l <"$T/manifest")
[ "$n" -ge 1 ] || fail "precondition: no file was recorded durable in 4 s"
fs_mount || fail "remount after kill -9 failed: $(tail -3 "$T/cairnfs.log")"
crashwriter check "$MNT/c" "$T/manifest" || fail "T02: fsync'd files lost after a client crash"
fs_umount

# T03
fs_mount || fail "mount failed"
for i in 1 2 3; do kill -STOP "$(daemon_pid $i)"; done
head -c 8M /dev/urandom >"$MNT/unflushed" 2>/dev/null &
hpid=$!
sleep 2
fs_kill
for i in 1 2 3; do kill -CONT "$(daemon_pid $i)"; done
wait $hpid    # not a bare wait: that would wait for the daemons too
fs_mount || fail "T03: remount after kill with unflushed data failed: $(tail -3 "$T/cairnfs.log")"
ls "$MNT" >/dev/null || fail "T03: mount unreadable"
if command -v mdb_stat >/dev/null; then
	fs_umount
	mdb_stat -e "$META" >/dev/null 2>&1 || mdb_stat -n -e "$META/data.mdb" >/dev/null ||
		fail "T03: LMDB does not open cleanly"
	fs_mount || fail "remount failed"
fi
fs_umount

# T04
if command -v strace >/dev/null; then
	mkdir -p "$MNT"
	# LeakSanitizer cannot run under ptrace: no leak check for this run.
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
	strace -f -qq -e trace=fdatasync,fsync,msync,openat -o "$T/strace.out" \
		cairnfs -f -o "cluster=$CFG,key=$KEY,meta=$META" default "$MNT" 2>>"$T/cairnfs.log" &
	spid=$!
	n=0; until mountpoint -q "$MNT"; do n=$((n+1)); [ $n -gt 100 ] && fail "T04: no mount"; sleep 0.1; done
	mkdir -p "$MNT/c4"
	crashwriter write "$MNT/c4" "$T/m4" 50 || fail "T04: writer failed"
	fusermount3 -u "$MNT"; wait $spid
	syncs=$(grep -cE 'fdatasync|fsync\(|msync' "$T/strace.out")
	figure t04_meta_syncs_for_50_fsyncs "$syncs" syncs
	[ "$syncs" -ge 50 ] || fail "T04: only $syncs data syncs for 50 fsync(2) calls"
fi
