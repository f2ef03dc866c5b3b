# lib.sh: helpers for integration tests with real cairnd daemons.
# Source it from a test run by `make check` (srcdir and top_builddir are
# exported, PATH holds the daemon/ and cluster/ build dirs), then:
#
#   integ_init              private temp dir $T, EXIT trap that kills every
#                           daemon started here (by pid) and fails the test
#                           if a log holds a sanitizer report or "BUG"
#   make_secret FILE        a cluster secret file: 64 hex digits, mode 0600
#   daemon_start I [FLAGS]  start cairnd with data dir $T/dI, log $T/dI.log,
#                           secret $CAIRN_SECRET_FILE (default $T/secret,
#                           made if missing); listens on 127.0.0.1:0 the
#                           first time, on the same address on restart;
#                           waits for DATA/listen-addr; sets ADDR_I, PID_I
#   daemon_addr I           print ADDR_I
#   daemon_stop I           SIGTERM and wait; returns cairnd's exit status
#   daemon_kill I           kill -9 and wait
#   fail MSG / skip MSG     print, exit 1 / exit 77
#   figure NAME VALUE UNIT  print "FIGURE NAME=VALUE unit=UNIT"
#   INTEG_ON_EXIT="cmd"     run by the trap after the daemons are killed
#                           and before $T is removed (e.g. umount)
#
# POSIX sh. Exit 77 only for a missing capability; with
# CAIRNFS_TEST_REQUIRE_ALL=1 a skip fails.

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	if [ "${CAIRNFS_TEST_REQUIRE_ALL:-0}" = 1 ]; then
		exit 1
	fi
	exit 77
}

figure() {
	echo "FIGURE $1=$2 unit=$3"
}

integ_cleanup() {
	rc=$?
	for p in $INTEG_PIDS; do
		kill -9 "$p" 2>/dev/null
	done
	for p in $INTEG_PIDS; do
		wait "$p" 2>/dev/null
	done
	if [ -n "${INTEG_ON_EXIT:-}" ]; then
		eval "$INTEG_ON_EXIT"
	fi
	for l in "$T"/*.log; do
		[ -f "$l" ] || continue
		if grep -q -e AddressSanitizer -e "runtime error" -e "BUG" "$l"; then
			echo "FAIL: $l holds a sanitizer report or BUG:" >&2
			tail -n 30 "$l" >&2
			rc=1
		fi
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for l in "$T"/*.log; do
			[ -f "$l" ] || continue
			echo "--- tail of $l" >&2
			tail -n 15 "$l" >&2
		done
	fi
	if [ -n "${CAIRNFS_KEEP_TMP:-}" ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}

integ_init() {
	[ -n "${srcdir:-}" ] || fail "srcdir is not set (run through make check)"
	command -v cairnd >/dev/null 2>&1 || fail "cairnd is not on PATH ($PATH)"
	command -v timeout >/dev/null 2>&1 || fail "timeout(1) is missing"
	T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-integ.XXXXXX") || fail "mktemp failed"
	INTEG_PIDS=""
	: >"$T/empty.conf"
	trap integ_cleanup EXIT
	trap 'exit 1' INT TERM
}

make_secret() {
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$1" &&
		echo >>"$1") || fail "cannot write secret $1"
	chmod 600 "$1"
}

daemon_start() {
	_i=$1
	shift
	_d="$T/d$_i"
	_secret=${CAIRN_SECRET_FILE:-$T/secret}
	[ -f "$_secret" ] || make_secret "$_secret"
	_listen=127.0.0.1:0
	if [ -f "$_d/listen-addr" ]; then
		_listen=$(cat "$_d/listen-addr")
		rm -f "$_d/listen-addr"
	fi
	cairnd --config "$T/empty.conf" --data-dir "$_d" --listen "$_listen" \
		--secret-file "$_secret" --log-level debug "$@" \
		>>"$T/d$_i.log" 2>&1 &
	_pid=$!
	INTEG_PIDS="$INTEG_PIDS $_pid"
	eval "PID_$_i=$_pid"
	_n=0
	while [ ! -s "$_d/listen-addr" ]; do
		if ! kill -0 "$_pid" 2>/dev/null; then
			echo "cairnd $_i exited at start:" >&2
			tail -n 10 "$T/d$_i.log" >&2
			return 1
		fi
		_n=$((_n + 1))
		[ "$_n" -lt 200 ] || { echo "cairnd $_i: no listen-addr after 20 s" >&2; return 1; }
		sleep 0.1
	done
	eval "ADDR_$_i=$(cat "$_d/listen-addr")"
	return 0
}

daemon_addr() {
	eval "echo \$ADDR_$1"
}

daemon_stop() {
	eval "_pid=\$PID_$1"
	kill -TERM "$_pid" 2>/dev/null || return 1
	wait "$_pid"
}

daemon_kill() {
	eval "_pid=\$PID_$1"
	kill -9 "$_pid" 2>/dev/null
	wait "$_pid" 2>/dev/null
	return 0
}
