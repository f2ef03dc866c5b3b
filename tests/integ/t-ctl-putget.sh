#!/bin/sh
# t-ctl-putget.sh: cairnctl against 3 real daemons with R=2 on loopback.
#
# Proves: put + get round-trips a 64 MiB random and a 64 MiB text file
# byte for byte; status --json shows 3 nodes up and every slot covered; a
# second put of the same file uploads nothing (put's own summary and the
# daemons' stored-byte counters agree); with one daemon killed -9 get still
# returns the file; restarted, that daemon has every block it had; a
# cairnctl holding the wrong cluster secret is refused with a clear error.
. "$srcdir/tests/integ/lib.sh"
integ_init

command -v jq >/dev/null 2>&1 || skip "jq is not installed"

CFG="$T/ctl"
ctl() { timeout 300 cairnctl --config-dir "$CFG" "$@"; }

# A cluster: its secret is what the daemons are started with.
ctl cluster init --replicas 2 >"$T/init.out" || fail "cluster init failed"
test "$(stat -c %a "$CFG/cluster.secret")" = 600 || fail "cluster.secret is not 0600"
test "$(stat -c %a "$CFG/admin.key")" = 600 || fail "admin.key is not 0600"
ctl cluster init --replicas 2 2>"$T/init2.err" && fail "a second cluster init overwrote the cluster"
grep -q "already holds a cluster" "$T/init2.err" || fail "second init: unclear error: $(cat "$T/init2.err")"

CAIRN_SECRET_FILE="$CFG/cluster.secret"
export CAIRN_SECRET_FILE
for i in 1 2 3; do
	daemon_start $i || fail "daemon $i did not start"
done
for i in 1 2 3; do
	ctl node add "$(daemon_addr $i)" >>"$T/add.out" || fail "node add of daemon $i failed"
done
grep -c "added node" "$T/add.out" | grep -qx 3 || fail "node add did not report 3 nodes: $(cat "$T/add.out")"

ctl status --json >"$T/status0.json" || fail "status says the cluster is not healthy: $(cat "$T/status0.json")"
jq -e '(.nodes | length) == 3 and ([.nodes[] | select(.up)] | length) == 3' \
	"$T/status0.json" >/dev/null || fail "status: not 3 nodes up: $(cat "$T/status0.json")"
jq -e '.slots.covered == 16384 and .width == 2 and .ok' "$T/status0.json" >/dev/null ||
	fail "status: not all slots covered by 2 owners: $(jq -c .slots "$T/status0.json")"

ctl volume create default >/dev/null || fail "volume create failed"
test "$(stat -c %a "$CFG/volumes/default.key")" = 600 || fail "volume key is not 0600"

# 64 MiB of random bytes, and 64 MiB of text (compressible, repetitive).
head -c 64M /dev/urandom >"$T/rand" || fail "cannot make the random file"
i=0
while [ "$(stat -c %s "$T/text" 2>/dev/null || echo 0)" -lt 67108864 ]; do
	seq $((i * 200000)) $((i * 200000 + 199999)) | sed 's/$/ the quick brown fox jumps over the lazy dog/' >>"$T/text"
	i=$((i + 1))
done
truncate -s 64M "$T/text"

ctl put --json "$T/rand" >"$T/put-rand.json" || fail "put of the random file failed"
ctl put --json "$T/text" >"$T/put-text.json" || fail "put of the text file failed"
REF_RAND=$(jq -r 'select(.event == "result") | .ref' "$T/put-rand.json")
REF_TEXT=$(jq -r 'select(.event == "result") | .ref' "$T/put-text.json")
case "$REF_RAND" in cairn:????????????????????????????????????????????????????????????????) ;;
*) fail "put printed no reference: $(cat "$T/put-rand.json")" ;; esac
jq -e 'select(.event == "result") | .bytes == 67108864 and .new_chunks > 100' \
	"$T/put-rand.json" >/dev/null || fail "put summary is off: $(cat "$T/put-rand.json")"

ctl get "$REF_RAND" "$T/rand.back" || fail "get of the random file failed"
cmp "$T/rand" "$T/rand.back" || fail "random file differs after put/get"
ctl get "$REF_TEXT" "$T/text.back" || fail "get of the text file failed"
cmp "$T/text" "$T/text.back" || fail "text file differs after put/get"

# Dedup: the same file again uploads nothing.
ctl status --json >"$T/status1.json" || fail "status failed after the puts"
ctl put --json "$T/rand" >"$T/put-again.json" || fail "second put failed"
test "$(jq -r 'select(.event == "result") | .ref' "$T/put-again.json")" = "$REF_RAND" ||
	fail "the same file got another reference"
jq -e 'select(.event == "result") | .new_chunks == 0 and .uploaded_bytes == 0' \
	"$T/put-again.json" >/dev/null || fail "second put uploaded data: $(cat "$T/put-again.json")"
ctl status --json >"$T/status2.json" || fail "status failed after the second put"
B1=$(jq '[.nodes[].put_bytes] | add' "$T/status1.json")
B2=$(jq '[.nodes[].put_bytes] | add' "$T/status2.json")
S1=$(jq '[.nodes[].bytes] | add' "$T/status1.json")
S2=$(jq '[.nodes[].bytes] | add' "$T/status2.json")
test "$S1" -gt 67108864 || fail "daemons report only $S1 bytes stored after 128 MiB with R=2"
test "$B1" = "$B2" || fail "daemons stored $((B2 - B1)) new bytes on the second put"
test "$S1" = "$S2" || fail "daemons' stored bytes went from $S1 to $S2 on the second put"
figure dedup_new_bytes "$((B2 - B1))" bytes

# One daemon gone (kill -9): every block still has an owner left.
BLOCKS3=$(jq '.nodes[] | select(.addr == "'"$(daemon_addr 3)"'") | .blocks' "$T/status2.json")
test "$BLOCKS3" -gt 0 || fail "daemon 3 holds no blocks"
daemon_kill 3
ctl status --json >"$T/status3.json" && fail "status says healthy with a daemon down"
jq -e '([.nodes[] | select(.up)] | length) == 2 and .slots.covered < 16384' \
	"$T/status3.json" >/dev/null || fail "status did not see daemon 3 down: $(jq -c .slots "$T/status3.json")"
rm -f "$T/rand.back"
ctl get --json "$REF_RAND" "$T/rand.back" >"$T/get-down.json" || fail "get with one daemon down failed"
jq -e 'select(.event == "result") | .failovers > 0' "$T/get-down.json" >/dev/null ||
	fail "get with daemon 3 down never fell over to a second owner: $(cat "$T/get-down.json")"
cmp "$T/rand" "$T/rand.back" || fail "random file differs when read with one daemon down"

daemon_start 3 || fail "daemon 3 did not restart"
ctl status --json >"$T/status4.json" || fail "status not healthy after the restart"
AFTER3=$(jq '.nodes[] | select(.addr == "'"$(daemon_addr 3)"'") | .blocks' "$T/status4.json")
test "$AFTER3" = "$BLOCKS3" || fail "daemon 3 had $BLOCKS3 blocks, after kill -9 and restart $AFTER3"

# A client with another cluster secret is refused, clearly.
cp -a "$CFG" "$T/wrong"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/wrong/cluster.secret"
echo >>"$T/wrong/cluster.secret"
chmod 600 "$T/wrong/cluster.secret"
timeout 60 cairnctl --config-dir "$T/wrong" get "$REF_TEXT" "$T/never" 2>"$T/wrong.err" &&
	fail "a client with the wrong secret read a file"
grep -q "wrong cluster secret" "$T/wrong.err" || fail "wrong secret: unclear error: $(cat "$T/wrong.err")"
test "$(wc -l <"$T/wrong.err")" -le 3 || fail "wrong secret: more than a short error: $(cat "$T/wrong.err")"
test ! -e "$T/never" || fail "a failed get left its output file"
timeout 60 cairnctl --config-dir "$T/wrong" status 2>"$T/wrong2.err" && fail "status worked with the wrong secret"
grep -q "wrong cluster secret" "$T/wrong2.err" || fail "status, wrong secret: unclear error: $(cat "$T/wrong2.err")"

exit 0
