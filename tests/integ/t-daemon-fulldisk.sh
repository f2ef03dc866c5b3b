#!/bin/sh
# t-daemon-fulldisk.sh: a full disk. cairnd's data dir is on an 8 MiB
# tmpfs; a client PUTs until refused. Proves: the refusal is NO_SPACE (not
# a dropped connection or a crash), every block acknowledged before it
# reads back intact, the daemon stays up and keeps serving reads, the full
# disk is logged; and DELETEs on the full disk are answered and give the
# space back (by compaction, which the reserve makes room for), so PUTs
# are taken again;
# SIGTERM exits 0.
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
grep -q "No space left on device" "$T/d1.log" || fail "the daemon did not log the full disk"

# Fill what the refused PUT left, as other writers would: not a byte free.
dd if=/dev/zero of="$T/small/filler" bs=4k 2>/dev/null
[ "$(df -k --output=avail "$T/small" | tail -1 | tr -d ' ')" = 0 ] ||
	fail "the filler left room on the disk"
# Delete nine blocks in ten: every DELETE must be answered on the full disk
# (a packed block's DELETE appends a tombstone: the reserve makes room).
awk 'NR % 10 != 0' "$T/acked" >"$T/del"
awk 'NR % 10 == 0' "$T/acked" >"$T/kept"
probe delete-many "$T/del" || fail "DELETEs on a full disk were refused"
# Then PUTs are taken again once compaction has given the space back:
# more than the reserve alone could hold (150 blocks, ~4.5 MiB).
n=0
until probe put-many 100000 100150 "$T/acked2" >"$T/put2.out" 2>&1; do
	n=$((n + 1))
	[ $n -lt 100 ] || fail "no space came back after deleting 90% of the blocks: $(cat "$T/put2.out")"
	sleep 0.1
done
figure fulldisk_put_again_after_s "$(awk -v n=$n 'BEGIN { print n / 10 }')" s
cat "$T/kept" "$T/acked2" >"$T/all"
probe check-many "$T/all" || fail "blocks kept or stored after the deletes are damaged"
kill -TERM "$PID_1"
wait "$PID_1" || fail "cairnd did not exit 0 on SIGTERM"
echo "checked: full disk -> NO_SPACE, $N earlier blocks intact, reads served; deletes answered, space back, PUTs taken again"
