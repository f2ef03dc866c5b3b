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

# Option values out of range are refused, naming the option.
GOOD="cluster=$CFG,key=$KEY,meta=$META"
expect_refused "cache=lots" "cache=lots is not a size" -o "$GOOD,cache=lots"
expect_refused "quorum=17" "quorum=17: give 1..16" -o "$GOOD,quorum=17"
expect_refused "spin=-1" "spin=-1: give 0..10000" -o "$GOOD,spin=-1"
expect_refused "log=loud" "log=loud: not a level" -o "$GOOD,log=loud"
expect_refused "timeout=5" "timeout=5 is too short" -o "$GOOD,timeout=5"
expect_refused "zstd=99" "zstd=99: give 1..19" -o "$GOOD,zstd=99"

# The tuning options together still give a working mount: a small cache,
# zstd level 3, no spinning, debug logging. What it stores reads back
# after a remount.
head -c 3M /dev/urandom >"$T/opt.bin"
seq 1 200000 >"$T/opt.txt"
fs_mount "cache=64M,zstd=3,spin=0,log=debug" || fail "mount with cache, zstd, spin, log failed: $(tail -3 "$T/cairnfs.log")"
cp "$T/opt.bin" "$T/opt.txt" "$MNT/" || fail "copy into the tuned mount failed"
fs_umount
grep -q " debug cairnfs: " "$T/cairnfs.log" || fail "log=debug logged no debug line"
fs_mount || fail "remount failed"
cmp -s "$MNT/opt.bin" "$T/opt.bin" && cmp -s "$MNT/opt.txt" "$T/opt.txt" ||
	fail "files written through the tuned mount read back wrong"
fs_umount
echo "ok   cache=64M,zstd=3,spin=0,log=debug: files round-trip"

# A passphrase-protected key: without a terminal the mount wants
# passfile=, a wrong passphrase is refused, the right one mounts.
CAIRNCTL_PASSPHRASE="correct horse battery" ctl volume create locked --passphrase \
	--out "$T/locked.key" >/dev/null || fail "volume create --passphrase failed"
printf 'correct horse battery\n' >"$T/pass"
printf 'wrong horse\n' >"$T/badpass"
chmod 600 "$T/pass" "$T/badpass"
LOCKED="cluster=$CFG,key=$T/locked.key,meta=$T/meta-locked"
VOL=locked expect_refused "passphrase key, no terminal" "use -o passfile" -o "$LOCKED" </dev/null
VOL=locked expect_refused "wrong passphrase" "passphrase" -o "$LOCKED,passfile=$T/badpass"
cairnfs -o "$LOCKED,passfile=$T/pass" locked "$MNT" 2>>"$T/cairnfs.log" ||
	fail "mount with the right passfile failed: $(tail -3 "$T/cairnfs.log")"
FS_PID=$(pgrep -n -f "cairnfs -o $LOCKED")
cp "$T/opt.bin" "$MNT/locked.bin" && cmp -s "$MNT/locked.bin" "$T/opt.bin" ||
	fail "the passphrase-protected volume does not keep a file"
fs_umount
echo "ok   passfile=: the passphrase-protected volume mounts and keeps a file"

# What an fstab line runs. For fuse.cairnfs, mount(8) hands the line to
# mount.fuse3, which runs cairnfs with the volume, the mountpoint and -o;
# for -t cairnfs it runs mount.cairnfs (the same program) with mount(8)'s
# own options ("rw", "_netdev") among ours. Both must mount.
helper_mounts() {   # helper_mounts WHAT COMMAND...
	what=$1; shift
	"$@" 2>>"$T/cairnfs.log" || fail "$what: the mount failed: $(tail -2 "$T/cairnfs.log")"
	mountpoint -q "$MNT" || fail "$what: exited 0 but nothing is mounted"
	FS_PID=$(pgrep -n -f -- " $MNT") || fail "$what: no process serves $MNT"
	cmp -s "$MNT/opt.bin" "$T/opt.bin" || fail "$what: a file reads back wrong"
	fs_umount
	echo "ok   $what"
}
command -v mount.fuse3 >/dev/null 2>&1 || fail "mount.fuse3 is missing (Debian package fuse3)"
helper_mounts "mount.fuse3 cairnfs#default (an fstab line of type fuse.cairnfs)" \
	mount.fuse3 "cairnfs#default" "$MNT" -o "$GOOD,_netdev,noatime"
ln -s "$(command -v cairnfs)" "$T/mount.cairnfs"
helper_mounts "mount.cairnfs as mount(8) runs it for -t cairnfs" \
	"$T/mount.cairnfs" default "$MNT" -o "rw,_netdev,$GOOD"

for i in 1 2 3; do daemon_kill $i; done
t0=$(date +%s)
expect_refused "unreachable cluster" "cannot reach" -o "cluster=$CFG,key=$KEY,meta=$T/meta2,timeout=2000"
[ $(( $(date +%s) - t0 )) -lt 60 ] || fail "mount against a dead cluster took over 60 s"
