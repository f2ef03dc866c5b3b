#!/bin/sh
# t-fs-apps.sh: real programs on the mount (T16) and a tree round trip.
#
# Proves: /usr/include copied in with cp -a comes back identical (diff -r)
# (CAIRNFS_TEST_TREE: another tree)
# after a remount; rsync -c finds nothing to send after a round trip;
# git clone + git fsck pass; sqlite3 with two concurrent writers passes
# PRAGMA integrity_check with every row present; a sparse file keeps its
# holes (du) through cp --sparse=always; the tree's small files land in the
# daemons' pack files, which shrink by half once it is deleted.
. "$srcdir/tests/integ/lib.sh"
integ_init
. "$srcdir/tests/integ/fslib.sh"
fs_cluster 3 2
fs_mount || fail "mount failed: $(tail -5 "$T/cairnfs.log")"

# The whole of /usr/include (~9,000 entries); the sanitizer build, ten
# times slower, sets a smaller tree with CAIRNFS_TEST_TREE.
tree=${CAIRNFS_TEST_TREE:-/usr/include}
want=$(find "$tree" | wc -l)
[ "$want" -gt 500 ] || fail "$tree has only $want entries: not a test of a tree"
cp -a "$tree" "$MNT/include" || fail "cp -a $tree failed"
entries=$(find "$MNT/include" | wc -l)
[ "$entries" -eq "$want" ] || fail "$entries entries on the mount, $want in $tree"
fs_umount
fs_mount || fail "remount failed"
diff -r --no-dereference "$tree" "$MNT/include" >"$T/diff.out" || { head "$T/diff.out"; fail "tree differs after remount"; }
figure tree_entries "$entries" entries
# Most of the tree's files are small: their blocks went to the daemons'
# pack files, and the counters say so.
packed=$(fs_stat pack_bytes)
[ "$packed" -gt 1000000 ] || fail "only $packed bytes of pack files after copying $tree"

mkdir -p "$T/rs"
rsync -a "$MNT/include/" "$T/rs/" || fail "rsync out failed"
out=$(rsync -a -c -i --dry-run "$T/rs/" "$MNT/include/")
[ -z "$out" ] || fail "rsync -c still finds differences: $(echo "$out" | head -3)"

if command -v git >/dev/null; then
	git init -q "$T/src" && (cd "$T/src" && cp /usr/include/stdio.h . &&
		git add . && git -c user.email=t@t -c user.name=t commit -qm one) ||
		fail "cannot make a git repo"
	git clone -q "$T/src" "$MNT/clone" || fail "git clone onto the mount failed"
	(cd "$MNT/clone" && git fsck --full >/dev/null 2>&1) || fail "git fsck failed on the mount"
fi

if command -v sqlite3 >/dev/null; then
	db=$MNT/t.db
	# Every insert is its own transaction with fsyncs that wait for the
	# daemons; under the sanitizers one writer can wait for the other for
	# many seconds, so the busy timeout is generous (a lost lock or a
	# corrupt page still fails below, whatever the timing).
	sqlite3 "$db" "create table t(w int, i int);" || fail "sqlite create failed"
	pids=
	for w in 1 2; do
		( i=0; while [ $i -lt 200 ]; do
			echo "insert into t values($w,$i);"; i=$((i + 1)); done |
		  sed '1i .timeout 120000' | sqlite3 "$db" ) &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p" || fail "a sqlite writer failed"; done
	[ "$(sqlite3 "$db" 'pragma integrity_check;')" = ok ] || fail "sqlite integrity_check failed"
	[ "$(sqlite3 "$db" 'select count(*) from t;')" = 400 ] || fail "sqlite lost rows"
fi

truncate -s 1G "$T/sparse" && printf x | dd of="$T/sparse" bs=1 seek=500M conv=notrunc 2>/dev/null
cp --sparse=always "$T/sparse" "$MNT/sparse" || fail "cp of a sparse file failed"
used=$(du -k "$MNT/sparse" | cut -f1)
[ "$used" -lt 10240 ] || fail "sparse file uses $used KiB on the mount"
cmp "$T/sparse" "$MNT/sparse" || fail "sparse file differs"

# Deleting the tree frees its packed blocks; the daemons compact the packs
# now mostly dead and the space comes back (pack bytes fall by half).
rm -rf "$MNT/include" || fail "rm -rf of the tree failed"
n=0
while :; do
	now=$(fs_stat pack_bytes)
	[ "$(fs_stat compactions)" -ge 1 ] && [ $((now * 2)) -lt "$packed" ] && break
	n=$((n + 1))
	[ $n -lt 600 ] || fail "60 s after rm -rf the packs hold $now bytes of $packed ($(fs_stat compactions) compactions, $(fs_stat pack_dead_bytes) dead)"
	sleep 0.1
done
figure fs_tree_rm_packs_shrink_ms $((n * 100)) ms
fs_umount
