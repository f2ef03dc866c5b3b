#!/bin/sh
# t-fs-posix.sh: the POSIX surface through a real mount over 3 daemons (T15)
# and the kernel's permission checks for a second user (T25).
#
# Proves: every posixcheck case (errno expectations) passes on the mount;
# 3000 random operations give the same results on the mount as on a local
# directory; with allow_other, user B cannot read A's 0600 file until A
# makes it 0644 (default_permissions).
. "$srcdir/tests/integ/lib.sh"
integ_init
. "$srcdir/tests/integ/fslib.sh"
fs_cluster 3 2
fs_mount allow_other || fail "mount failed: $(tail -5 "$T/cairnfs.log")"

posixcheck "$MNT" >"$T/posix.out" 2>&1 || { cat "$T/posix.out"; fail "POSIX cases failed on the mount"; }
cat "$T/posix.out"
mkdir -p "$T/local-control"; posixcheck "$T/local-control" >/dev/null || fail "control: posixcheck fails on a local directory"

mkdir -p "$MNT/diff" "$T/diff-local"
posixcheck --diff 7 3000 "$MNT/diff" "$T/diff-local" || fail "mount and local directory disagree"

# T25: a second user with allow_other.
id cairnfs_t25 >/dev/null 2>&1 || useradd -M -s /bin/false cairnfs_t25 2>/dev/null ||
	skip "cannot create a test user"
chmod 711 "$T"    # mktemp made it 0700: the other user must reach $MNT
mkdir "$MNT/home" && chmod 755 "$MNT/home"
echo secret >"$MNT/home/private" && chmod 600 "$MNT/home/private"
# The denial below must come from the file's mode, not from the path.
su -s /bin/sh cairnfs_t25 -c "ls '$MNT/home'" | grep -qx private ||
	fail "T25: the other user cannot even list a 0755 directory"
if su -s /bin/sh cairnfs_t25 -c "cat '$MNT/home/private'" >/dev/null 2>&1; then
	fail "T25: another user read a 0600 file"
fi
su -s /bin/sh cairnfs_t25 -c "echo x > '$MNT/home/new'" 2>/dev/null &&
	fail "T25: another user created a file in a 0755 dir of root"
chmod 644 "$MNT/home/private"
su -s /bin/sh cairnfs_t25 -c "cat '$MNT/home/private'" | grep -qx secret ||
	fail "T25: after chmod 644 the other user still cannot read"
figure t25_unauthorized_successes 0 count
fs_umount
