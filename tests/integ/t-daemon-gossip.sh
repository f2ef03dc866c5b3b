#!/bin/sh
# t-daemon-gossip.sh: maps spread between daemons by gossip. Daemon 1
# gossips every second, daemon 2 never does: a map pushed to daemon 1 reaches
# daemon 2 (pushed by 1); a newer map pushed to daemon 2 reaches daemon 1
# (fetched by 1); daemon 2 pinned the admin key of the first map, so a map
# signed by another key is refused by it.
. "$srcdir/tests/integ/lib.sh"
integ_init
command -v wireprobe >/dev/null 2>&1 || PATH="$top_builddir/tests/integ:$PATH"
command -v wireprobe >/dev/null 2>&1 || fail "wireprobe is not built"

daemon_start 1 --gossip-interval 1s || fail "cairnd 1 did not start"
daemon_start 2 --gossip-interval 0 || fail "cairnd 2 did not start"
S="$T/secret"
probe() { a=$1; shift; timeout 60 wireprobe "$a" "$S" "$@"; }
wait_epoch() {
	n=0
	while [ "$(probe "$1" map-epoch)" != "$2" ]; do
		n=$((n + 1))
		[ $n -lt 100 ] || return 1
		sleep 0.1
	done
	echo "epoch $2 reached $1 in about $((n / 10)).$((n % 10)) s"
}

probe "$ADDR_1" map-push "$T/admin.key" 5 "$ADDR_2" || fail "push to daemon 1 refused"
wait_epoch "$ADDR_2" 5 || fail "daemon 2 did not get epoch 5 by gossip"
probe "$ADDR_2" map-push "$T/admin.key" 6 "$ADDR_1" || fail "push to daemon 2 refused"
wait_epoch "$ADDR_1" 6 || fail "daemon 1 did not fetch epoch 6 by gossip"
probe "$ADDR_2" map-push "$T/other.key" 9 "$ADDR_1"
[ $? = 4 ] || fail "daemon 2 accepted a map signed by another admin key"
grep -q "pushed map epoch 5" "$T/d1.log" || fail "daemon 1 did not log its push"
echo "checked: push and fetch by gossip; pinned admin key holds"
daemon_stop 1 || fail "cairnd 1 did not exit 0"
daemon_stop 2 || fail "cairnd 2 did not exit 0"
