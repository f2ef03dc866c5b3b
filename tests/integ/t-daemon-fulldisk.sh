#!/bin/sh
# t-daemon-fulldisk.sh: a full disk. cairnd's data dir is on an 8 MiB
# tmpfs; a client PUTs until refused. Proves: the refusal is NO_SPACE (not
# a dropped connection or a crash), every block acknowledged before it
# reads back intact, the daemon stays up and keeps serving reads, refused
# PUTs leave no temp files, the full disk is logged, SIGTERM exits 0.
. "$srcdir/tests/integ/lib.sh"
integ_init
command -v wireprobe >/dev/null 2>&1 || PATH="$top_builddir/tests/integ:$PATH"
command -v wireprobe >/dev/null 2>&1 || fail "wireprobe is not built"
[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
mkdir -p "$T/small"
mount -t tmpfs -o size=8m tmpfs "$T/small" 2>/dev/null ||
	skip "cannot mount a tmpfs here"
INTEG_ON_EXIT="umount '$T/small' 2>/dev/null"

S="$T/secret"
make_secret "$S"
mkdir -p "$T/small/d"
cairnd --config "$T/empty.conf" --data-dir "$T/small/d" --listen 127.0.0.1:0 \
	--secret-file "$S" --gossip-interval 0 >"$T/d1.log" 2>&1 &
PID_1=$!
INTEG_PIDS="$INTEG_PIDS $PID_1"
n=0
while [ ! -s "$T/small/d/listen-addr" ]; do
	n=$((n + 1)); [ $n -lt 100 ] || fail "cairnd did not start"; sleep 0.1
done
A=$(cat "$T/small/d/listen-addr")
probe() { timeout 120 wireprobe "$A" "$S" "$@"; }

probe put-many 0 100000 "$T/acked" >"$T/put.out" 2>&1 &&
	fail "8 MiB took 100000 blocks?"
cat "$T/put.out"
grep -q "No space left on device" "$T/put.out" ||
	fail "the refusal was not NO_SPACE: $(cat "$T/put.out")"
kill -0 "$PID_1" || fail "cairnd died on a full disk"
N=$(wc -l <"$T/acked")
figure fulldisk_acked_blocks "$N" blocks
probe check-many "$T/acked" || fail "blocks acknowledged before the disk filled are damaged"
TMPS=$(find "$T/small/d/blocks" -name '.tmp-*' | wc -l)
[ "$TMPS" = 0 ] || fail "$TMPS temp files left behind by refused PUTs"
grep -q "No space left on device" "$T/d1.log" || fail "the daemon did not log the full disk"
kill -TERM "$PID_1"
wait "$PID_1" || fail "cairnd did not exit 0 on SIGTERM"
echo "checked: full disk -> NO_SPACE, $N earlier blocks intact, reads served, no temp files"
