#!/bin/sh
# bench_cluster.sh: block PUT/GET throughput of 3 cairnd on loopback, next to
# plain TCP loopback measured in the same run. Not part of make check.
#
#   srcdir=/work/main top_builddir=/tmp/build sh tests/bench/bench_cluster.sh
#
# Prints, for 256 KiB blocks with R=1 and R=2, PUT and GET in MB/s and their
# ratio to a single TCP stream (tests/bench/tcpbench) moving the same bytes,
# then 4 KiB PUT and GET in operations per second (pipelined), as FIGURE
# lines. Each R=1 figure is also given as a share of the block store alone
# (tests/bench/storebench: daemon/store.c on this disk, 3 stores of 4
# threads, no network) doing the same work in the same run: the ceiling
# that durable PUTs and disk-read GETs can reach here. Targets (issue #3): R=1 PUT and GET >= 60% of TCP; 4 KiB >= 20,000
# ops/s. BENCH_BYTES (default 256 MiB) and BENCH_OPS (default 100000) scale it;
# BENCH_CAIRND_FLAGS go to every cairnd.
BENCH_CAIRND_FLAGS=${BENCH_CAIRND_FLAGS:-}
: "${srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=.}"
top_builddir=$(cd "$top_builddir" && pwd)
PATH="$top_builddir/cluster:$top_builddir/daemon:$PATH"
export srcdir top_builddir PATH
. "$srcdir/tests/integ/lib.sh"
integ_init

BYTES=${BENCH_BYTES:-268435456}
OPS=${BENCH_OPS:-100000}
BLK=262144
COUNT=$((BYTES / BLK))
TCPBENCH="$top_builddir/tests/bench/tcpbench"
STOREBENCH="$top_builddir/tests/bench/storebench"
test -x "$TCPBENCH" || fail "build tests/bench/tcpbench first (make tests/bench/tcpbench)"
test -x "$STOREBENCH" || fail "build tests/bench/storebench first (make tests/bench/storebench)"
command -v jq >/dev/null 2>&1 || skip "jq is not installed"

mbs() { jq -r ".$1" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

TCP=$("$TCPBENCH" "$BYTES" "$BLK") || fail "tcpbench failed"
TCP_MBS=$(echo "$TCP" | awk '{ print $2 }')
echo "plain TCP loopback, one stream, $BYTES bytes in ${BLK}-byte writes: $TCP_MBS MB/s"
figure tcp_loopback_mb_s "$TCP_MBS" MB/s

# The block store alone, with the clients' windows spread over its 12
# threads (cairnctl bench keeps WINDOW in flight on each of 4 threads).
mkdir "$T/sb256" "$T/sb4k"
"$STOREBENCH" "$T/sb256" $BLK $COUNT 3 4 $((64 * 4 / 12)) >"$T/sb256.json" ||
	fail "storebench 256K failed"
"$STOREBENCH" "$T/sb4k" 4096 "$OPS" 3 4 $((1024 * 4 / 12)) >"$T/sb4k.json" ||
	fail "storebench 4K failed"
rm -rf "$T/sb256" "$T/sb4k"
SB_PUT=$(mbs put_mb_s "$T/sb256.json")
SB_GET=$(mbs get_mb_s "$T/sb256.json")
SB_PUTO=$(mbs put_ops_s "$T/sb4k.json")
SB_GETO=$(mbs get_ops_s "$T/sb4k.json")
echo "block store alone, no network: 256 KiB PUT $SB_PUT MB/s" \
	"($(ratio "$SB_PUT" "$TCP_MBS") of TCP), GET $SB_GET MB/s" \
	"($(ratio "$SB_GET" "$TCP_MBS") of TCP); 4 KiB PUT $SB_PUTO ops/s, GET $SB_GETO ops/s"
figure store_put_256k_mb_s "$SB_PUT" MB/s
figure store_get_256k_mb_s "$SB_GET" MB/s
figure store_put_4k_ops_s "$SB_PUTO" ops/s
figure store_get_4k_ops_s "$SB_GETO" ops/s

round=0
for R in 1 2; do
	round=$((round + 1))
	CFG="$T/ctl$R"
	CAIRN_SECRET_FILE="$CFG/cluster.secret"
	export CAIRN_SECRET_FILE
	cairnctl --config-dir "$CFG" cluster init --replicas $R >/dev/null || fail "cluster init R=$R"
	for i in 1 2 3; do
		n=$(((round - 1) * 3 + i))
		daemon_start $n $BENCH_CAIRND_FLAGS || fail "daemon $n did not start"
		cairnctl --config-dir "$CFG" node add "$(daemon_addr $n)" >/dev/null ||
			fail "node add $n (R=$R)"
	done
	cairnctl --config-dir "$CFG" --json bench --size $BLK --count $COUNT \
		--window 64 --threads 4 >"$T/big$R.json" || fail "bench 256K R=$R failed"
	PUT=$(mbs put_mb_s "$T/big$R.json")
	GET=$(mbs get_mb_s "$T/big$R.json")
	echo "R=$R 256 KiB blocks: PUT $PUT MB/s ($(ratio "$PUT" "$TCP_MBS") of TCP," \
		"$(ratio "$PUT" "$SB_PUT") of the store alone), GET $GET MB/s" \
		"($(ratio "$GET" "$TCP_MBS") of TCP, $(ratio "$GET" "$SB_GET") of the store alone)"
	figure put_256k_r${R}_mb_s "$PUT" MB/s
	figure get_256k_r${R}_mb_s "$GET" MB/s
	figure put_256k_r${R}_tcp_ratio "$(ratio "$PUT" "$TCP_MBS")" ratio
	figure get_256k_r${R}_tcp_ratio "$(ratio "$GET" "$TCP_MBS")" ratio
	figure put_256k_r${R}_store_ratio "$(ratio "$PUT" "$SB_PUT")" ratio
	figure get_256k_r${R}_store_ratio "$(ratio "$GET" "$SB_GET")" ratio
	if [ $R = 1 ]; then
		cairnctl --config-dir "$CFG" --json bench --size 4096 --count "$OPS" \
			--window 1024 --threads 4 >"$T/small.json" || fail "bench 4K failed"
		PUTO=$(mbs put_ops_s "$T/small.json")
		GETO=$(mbs get_ops_s "$T/small.json")
		echo "R=1 4 KiB blocks, pipelined: PUT $PUTO ops/s" \
			"($(ratio "$PUTO" "$SB_PUTO") of the store alone)," \
			"GET $GETO ops/s ($(ratio "$GETO" "$SB_GETO") of the store alone)"
		figure put_4k_r1_store_ratio "$(ratio "$PUTO" "$SB_PUTO")" ratio
		figure put_4k_r1_ops_s "$PUTO" ops/s
		figure get_4k_r1_ops_s "$GETO" ops/s
	fi
	for i in 1 2 3; do
		daemon_stop $(((round - 1) * 3 + i))
	done
done
exit 0
