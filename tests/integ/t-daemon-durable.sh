#!/bin/sh
# t-daemon-durable.sh: acknowledged means durable. A client PUTs blocks as
# fast as it can and records each acknowledged one; cairnd is killed -9 in
# the middle; restarted on the same data dir, it returns every acknowledged
# block byte for byte, its block count covers them, and it answers a
# NODE_STATUS.
. "$srcdir/tests/integ/lib.sh"
integ_init
command -v wireprobe >/dev/null 2>&1 || PATH="$top_builddir/tests/integ:$PATH"
command -v wireprobe >/dev/null 2>&1 || fail "wireprobe is not built"

daemon_start 1 --gossip-interval 0 || fail "cairnd did not start"
S="$T/secret"
probe() { timeout 120 wireprobe "$ADDR_1" "$S" "$@"; }

probe put-many 0 1000000 "$T/acked" >"$T/put.out" 2>&1 &
PUTTER=$!
sleep 3
daemon_kill 1
wait "$PUTTER" && fail "the writer did not notice the daemon's death"
N=$(wc -l <"$T/acked")
[ "$N" -gt 10 ] || fail "only $N blocks acknowledged before the kill"
figure durable_acked_before_kill "$N" blocks
figure durable_put_rate $((N / 3)) blocks/s

daemon_start 1 --gossip-interval 0 || fail "cairnd did not restart after kill -9"
probe check-many "$T/acked" || fail "acknowledged blocks lost or changed"
B=$(probe status 2)
[ "$B" -ge "$N" ] || fail "daemon counts $B blocks, $N were acknowledged"
# and says at start what it found (the log is appended to: the last line)
L=$(grep "block store: [0-9]* blocks" "$T/d1.log" | tail -1)
[ -n "$L" ] || fail "no block store line in the daemon's log at start"
LB=$(echo "$L" | sed 's/.*block store: \([0-9]*\) blocks.*/\1/')
[ "$LB" -ge "$N" ] || fail "the start log counts $LB blocks, $N were acknowledged: $L"
echo "checked: $N acknowledged blocks intact after kill -9, $B held"
daemon_stop 1 || fail "cairnd did not exit 0 on SIGTERM"

# After a clean stop every pack has its record list, and the next start
# reads those instead of the packs (packidx.h), finding the same blocks.
daemon_start 1 --gossip-interval 0 || fail "cairnd did not start after a clean stop"
L=$(grep "packs read at start:" "$T/d1.log" | tail -1)
echo "$L" | grep -Eq "start: [1-9][0-9]* from their record lists, 0 by record headers, 0 whole" ||
	fail "a start after a clean stop did not read the packs' record lists: $L"
probe check-many "$T/acked" || fail "acknowledged blocks lost after a start from the record lists"
# Compaction runs only on CPU time nothing else wants (SCHED_IDLE).
ps -L -o cls=,comm= -p "$PID_1" | grep -q "^ *IDL store-tidy$" ||
	fail "the store's tidier thread is not SCHED_IDLE: $(ps -L -o cls=,comm= -p "$PID_1" | tr '\n' ' ')"
B2=$(probe status 2)
[ "$B2" -eq "$B" ] || fail "daemon counts $B2 blocks after a clean restart, $B before"
echo "checked: a clean restart read the record lists ($L)"
daemon_stop 1 || fail "cairnd did not exit 0 on SIGTERM"
