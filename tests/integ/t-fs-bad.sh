#!/bin/sh
# t-fs-bad.sh: bad input at mount time gets a clear message (T26 and more).
. "$srcdir/tests/integ/lib.sh"
integ_init
. "$srcdir/tests/integ/fslib.sh"
fs_cluster 3 2

expect_refused() {   # expect_refused WHAT GREP-PATTERN [mount opts]
	what=$1 pat=$2; shift 2
	mkdir -p "$MNT"
	if cairnfs "$@" "${VOL:-default}" "$MNT" 2>"$T/err"; then
		fusermount3 -u "$MNT" 2>/dev/null
		fail "$what: the mount succeeded"
	fi
	grep -qi "$pat" "$T/err" || fail "$what: unclear message: $(cat "$T/err")"
	echo "ok   $what: $(head -1 "$T/err")"
}

chmod 644 "$KEY"
expect_refused "T26 key file 0644" "chmod 600" -o "cluster=$CFG,key=$KEY,meta=$META"
chmod 600 "$KEY"
expect_refused "missing key file" "No such file" -o "cluster=$CFG,key=$T/nokey,meta=$META"
ctl volume create other --out "$T/other.key" >/dev/null || fail "second volume"
expect_refused "key of another volume" "not 'default'" -o "cluster=$CFG,key=$T/other.key,meta=$META"
mkdir -p "$T/badcfg" && cp "$CFG"/* "$T/badcfg/" 2>/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/badcfg/cluster.secret"; echo >>"$T/badcfg/cluster.secret"
chmod 600 "$T/badcfg/cluster.secret"
expect_refused "wrong cluster secret" "refused our cluster secret" -o "cluster=$T/badcfg,key=$KEY,meta=$META"

fs_mount || fail "good mount failed"
expect_refused "second mount of one metadata dir" "already" -o "cluster=$CFG,key=$KEY,meta=$META"
fs_umount
ctl volume create third --out "$T/third.key" >/dev/null || fail "third volume"
mkdir -p "$T/m3"
VOL=third expect_refused "metadata dir of another volume" "another volume\|other volume" -o "cluster=$CFG,key=$T/third.key,meta=$META"

for i in 1 2 3; do daemon_kill $i; done
t0=$(date +%s)
expect_refused "unreachable cluster" "cannot reach" -o "cluster=$CFG,key=$KEY,meta=$T/meta2,timeout=2000"
[ $(( $(date +%s) - t0 )) -lt 60 ] || fail "mount against a dead cluster took over 60 s"
