# fslib.sh: a cluster with a mounted volume, for the mount tests.
# Sourced after lib.sh. Gives:
#   fs_cluster N R     cluster config in $CFG, N daemons, volume key $KEY
#   fs_mount [OPTS]    mount the volume on $MNT (metadata in $META)
#   fs_umount          unmount cleanly (flushes everything)
#   fs_kill            kill -9 the cairnfs process and clear the mountpoint
#   fs_stat NAME       a daemon counter summed over nodes (status --json)
# Cleanup (unmount, stop cairnfs) runs before lib.sh's own.

command -v fusermount3 >/dev/null 2>&1 || skip "fusermount3 is not installed (fuse3)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
[ "$(id -u)" = 0 ] || skip "the mount tests need root"
command -v cairnfs >/dev/null 2>&1 || fail "cairnfs is not built"

CFG=$T/ctl
KEY=$CFG/volumes/default.key
MNT=$T/mnt
META=$T/meta
FS_PID=
export CAIRNCTL_CONFIG_DIR=$CFG

fs_cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -n "$FS_PID" ] && kill -9 "$FS_PID" 2>/dev/null
	true
}
# Unmount before lib.sh kills the daemons, keeping the test's exit status.
trap 'rc_=$?; fs_cleanup; (exit $rc_); integ_cleanup' EXIT

daemon_pid() { eval "echo \$PID_$1"; }

ctl() { timeout 300 cairnctl --config-dir "$CFG" "$@"; }

fs_cluster() {
	fs_n=${1:-3} fs_r=${2:-2}
	ctl cluster init --replicas "$fs_r" >/dev/null || fail "cairnctl cluster init failed"
	CAIRN_SECRET_FILE=$CFG/cluster.secret
	export CAIRN_SECRET_FILE
	i=1
	while [ $i -le "$fs_n" ]; do
		daemon_start $i --admin-pubkey-file "$CFG/admin.pub" || fail "daemon $i did not start"
		i=$((i + 1))
	done
	i=1
	while [ $i -le "$fs_n" ]; do
		ctl node add "$(daemon_addr $i)" >/dev/null || fail "node add of daemon $i failed"
		i=$((i + 1))
	done
	ctl volume create default >/dev/null || fail "volume create failed"
	[ -f "$KEY" ] || fail "volume create made no key at $KEY"
}

fs_mount() {
	mkdir -p "$MNT" "$META"
	cairnfs -o "cluster=$CFG,key=$KEY,meta=$META${1:+,$1}" default "$MNT" \
		2>>"$T/cairnfs.log" || return 1
	FS_PID=$(pgrep -n -f "cairnfs -o cluster=$CFG") || fail "cairnfs runs no process"
	mountpoint -q "$MNT" || fail "cairnfs exited 0 but $MNT is not a mountpoint"
}

fs_umount() {
	fusermount3 -u "$MNT" || fail "unmount of $MNT failed"
	# The process flushes and exits after the unmount: wait for it.
	fs_n_=0
	while [ -n "$FS_PID" ] && kill -0 "$FS_PID" 2>/dev/null; do
		fs_n_=$((fs_n_ + 1))
		[ $fs_n_ -gt 600 ] && fail "cairnfs did not exit within 60 s of the unmount"
		sleep 0.1
	done
	FS_PID=
}

fs_kill() {
	[ -n "$FS_PID" ] || fail "fs_kill: nothing mounted"
	kill -9 "$FS_PID"
	fs_n_=0
	while kill -0 "$FS_PID" 2>/dev/null; do
		fs_n_=$((fs_n_ + 1)); [ $fs_n_ -gt 100 ] && fail "cairnfs survived kill -9"; sleep 0.1
	done
	FS_PID=
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}

fs_stat() {
	ctl status --json | jq "[.nodes[].$1 // 0] | add"
}
