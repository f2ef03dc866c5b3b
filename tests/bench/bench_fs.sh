#!/usr/bin/env bash
# bench_fs.sh: the mount against a plain local directory, in one run.
#
#   tests/bench/bench_fs.sh [--mnt DIR] [--local DIR] [--size 2G] [--n 10000] [--json]
#
# --mnt: a mounted cairnfs (default: $CAIRNFS_MOUNT from the quickstart env,
# /tmp/cairnfs-quickstart/env: start it with 'sudo contrib/quickstart up').
# --local: the reference directory on local disk (default under /var/tmp).
# For each of the two: sequential write and read of SIZE of random and of
# text-like data (fio for random data when installed, else dd; dd for
# text), with caches dropped before each read; N files of 4 KiB: creates,
# stats, reads, unlinks per second; tar -x of a tarball of /usr/include.
# During both writes (the text one follows a cold read of SIZE) the mount's
# resident memory is sampled; the target is at most its cache size + 64 MiB.
# Prints a table (ratio = cairnfs / local; for tar, local time / cairnfs
# time, so above 1 is faster everywhere) and FIGURE lines; --json prints
# one JSON object instead. Progress goes to stderr. Needs root (drops the
# page cache); python3 for the small-file phases.
set -euo pipefail

mnt=${CAIRNFS_MOUNT:-} local_dir= size=2G nfiles=10000 json=no
env_file=/tmp/cairnfs-quickstart/env
while [ $# -gt 0 ]; do
	case $1 in
	--mnt) mnt=$2; shift ;;
	--local) local_dir=$2; shift ;;
	--size) size=$2; shift ;;
	--n) nfiles=$2; shift ;;
	--json) json=yes ;;
	-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_fs: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$mnt" ] && [ -f "$env_file" ]; then
	# shellcheck disable=SC1090
	. "$env_file"
	mnt=${CAIRNFS_MOUNT:-}
fi
[ -n "$mnt" ] || { echo "bench_fs: no mount given: run 'sudo contrib/quickstart up' or pass --mnt DIR" >&2; exit 2; }
mountpoint -q "$mnt" || { echo "bench_fs: $mnt is not a mountpoint" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench_fs: run as root (it drops the page cache between write and read)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench_fs: python3 is needed for the small-file phases" >&2; exit 2; }
bytes=$(numfmt --from=iec "$size") || { echo "bench_fs: bad --size $size" >&2; exit 2; }

fs_pid=$(pgrep -n -f "cairnfs .*$mnt" || true)
cache=256M
if [ -n "$fs_pid" ]; then
	c=$(tr '\0' ' ' </proc/"$fs_pid"/cmdline | grep -o 'cache=[^, ]*' | head -1 | cut -d= -f2 || true)
	[ -n "$c" ] && cache=$c
fi
cache_mib=$(( $(numfmt --from=iec "$cache") / 1048576 ))

work=$(mktemp -d /dev/shm/bench_fs.XXXXXX)    # sources in memory: not a disk read
[ -n "$local_dir" ] || local_dir=$(mktemp -d /var/tmp/bench_fs.local.XXXXXX)
mdir=$mnt/bench_fs.$$
ldir=$local_dir/bench_fs.$$
cleanup() {
	kill $(jobs -p) 2>/dev/null || true
	rm -rf "$work" "$mdir" "$ldir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$mdir" "$ldir"

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
rate() { printf '%.1f' "$(echo "scale=3; $1 / ($3 - $2)" | bc)"; }   # rate AMOUNT T0 T1
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

say "preparing $size of random and of text data, and a /usr/include tarball"
head -c "$bytes" /dev/urandom >"$work/random"
# Text: source lines with a changing counter, so it compresses about 4x
# like real text and not 1000x like a repeated block.
python3 - "$work/text" "$bytes" <<'EOF'
import os, sys, glob
out, want = sys.argv[1], int(sys.argv[2])
lines = []
for f in sorted(glob.glob('/usr/include/*.h'))[:400]:
    try:
        lines += open(f, errors='replace').read().splitlines()
    except OSError:
        pass
if not lines:
    lines = ['the quick brown fox jumps over the lazy dog'] * 1000
n = 0
with open(out, 'w') as o:
    while o.tell() < want:
        for l in lines:
            o.write('%d: %s\n' % (n, l))
            n += 1
        o.flush()
os.truncate(out, want)
EOF
tar -C /usr -cf "$work/include.tar" include 2>/dev/null || true

declare -A R

seq_write() {   # seq_write LABEL DIR KIND -> MB/s
	local dir=$2 kind=$3 t0 t1
	if [ "$kind" = random ] && command -v fio >/dev/null; then
		fio --name=w --filename="$dir/seq.$kind" --rw=write --bs=1M --size="$bytes" \
			--refill_buffers --end_fsync=1 --output-format=json \
			--output="$work/fio.json" >/dev/null 2>"$work/fio.err" ||
			{ echo "bench_fs: fio failed on $dir: $(cat "$work/fio.err")" >&2; return 1; }
		# fio may put notes before the JSON: start at the first brace
		sed -n '/^{/,$p' "$work/fio.json" | jq '.jobs[0].write.bw_bytes / 1000000 | floor'
		return
	fi
	t0=$(now)
	dd if="$work/$kind" of="$dir/seq.$kind" bs=1M conv=fsync status=none
	t1=$(now)
	rate "$bytes / 1000000" "$t0" "$t1"
}

seq_read() {
	local dir=$2 kind=$3 t0 t1
	drop
	t0=$(now)
	dd if="$dir/seq.$kind" of=/dev/null bs=1M status=none
	t1=$(now)
	rate "$bytes / 1000000" "$t0" "$t1"
}

rss_watch() {   # sample the mount's RSS until killed; peak in MiB on exit
	local peak=0 r
	trap 'echo $((peak / 1024)) >"$work/rss.peak"; exit 0' TERM
	while :; do
		r=$(awk '/VmRSS/ {print $2}' /proc/"$fs_pid"/status 2>/dev/null || echo 0)
		[ "${r:-0}" -gt "$peak" ] && peak=$r
		sleep 0.2
	done
}

small_files() {   # small_files DIR -> "creates stats reads unlinks" per second
	local dir=$1/small
	mkdir -p "$dir"
	python3 - "$dir" "$nfiles" <<'EOF' 2>/dev/null
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
names = [os.path.join(d, 'f%06d' % i) for i in range(n)]
t = time.time()
for p in names:
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
c = n / (time.time() - t)
t = time.time()
for p in names:
    os.stat(p)
s = n / (time.time() - t)
os.sync()
open('/proc/sys/vm/drop_caches', 'w').write('3')
t = time.time()
for p in names:
    with open(p, 'rb') as f:
        f.read()
r = n / (time.time() - t)
t = time.time()
for p in names:
    os.unlink(p)
u = n / (time.time() - t)
print('%d %d %d %d' % (c, s, r, u))
EOF
}

untar() {   # untar DIR -> seconds
	local t0 t1
	mkdir -p "$1/tar"
	t0=$(now)
	tar -C "$1/tar" -xf "$work/include.tar"
	sync -f "$1/tar"
	t1=$(now)
	printf '%.2f' "$(echo "scale=3; ($t1 - $t0) / 1" | bc)"
}

for sys in local cairnfs; do
	dir=$ldir
	[ $sys = cairnfs ] && dir=$mdir
	for kind in random text; do
		say "$sys: sequential write, $size of $kind data"
		# both writes are watched: the text one comes after a cold read
		# of SIZE has filled the block cache, the harder case for the bound
		if [ $sys = cairnfs ] && [ -n "$fs_pid" ]; then
			rss_watch & wpid=$!
			R[$sys.write_$kind]=$(seq_write $sys "$dir" $kind)
			kill -TERM $wpid; wait $wpid 2>/dev/null || true
			p=$(cat "$work/rss.peak")
			[ "$p" -gt "${R[cairnfs.rss_peak]:-0}" ] && R[cairnfs.rss_peak]=$p
		else
			R[$sys.write_$kind]=$(seq_write $sys "$dir" $kind)
		fi
		say "$sys: sequential read, $size of $kind data"
		R[$sys.read_$kind]=$(seq_read $sys "$dir" $kind)
		rm -f "$dir/seq.$kind"
	done
	say "$sys: $nfiles files of 4 KiB"
	read -r c s r u < <(small_files "$dir")
	R[$sys.creates]=$c R[$sys.stats]=$s R[$sys.reads]=$r R[$sys.unlinks]=$u
	say "$sys: tar -x of /usr/include"
	R[$sys.tar_s]=$(untar "$dir")
	rm -rf "$dir/tar" "$dir/small"
done

ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
rows=(write_random:MB/s read_random:MB/s write_text:MB/s read_text:MB/s
	creates:files/s stats:files/s reads:files/s unlinks:files/s tar_s:s)
rss_bound=$((cache_mib + 64))
rss=${R[cairnfs.rss_peak]:-0}
if [ $json = yes ]; then
	{
		printf '{"size":"%s","files":%s,"rss_peak_mib":%s,"rss_bound_mib":%s' "$size" "$nfiles" "$rss" "$rss_bound"
		for row in "${rows[@]}"; do
			k=${row%%:*}
			printf ',"%s":{"local":%s,"cairnfs":%s,"unit":"%s"}' "$k" "${R[local.$k]}" "${R[cairnfs.$k]}" "${row#*:}"
		done
		echo '}'
	} | jq .
	exit 0
fi
printf '%-14s %12s %12s %8s  %s\n' metric local cairnfs ratio unit
for row in "${rows[@]}"; do
	k=${row%%:*} unit=${row#*:}
	if [ "$k" = tar_s ]; then
		rt=$(ratio "${R[local.$k]}" "${R[cairnfs.$k]}")
	else
		rt=$(ratio "${R[cairnfs.$k]}" "${R[local.$k]}")
	fi
	printf '%-14s %12s %12s %8s  %s\n' "$k" "${R[local.$k]}" "${R[cairnfs.$k]}" "$rt" "$unit"
done
verdict=MISS
[ "$rss" -gt 0 ] && [ "$rss" -le "$rss_bound" ] && verdict=ok
printf 'cairnfs RSS peak during the writes: %s MiB (bound: cache %s MiB + 64 = %s MiB) %s\n' \
	"$rss" "$cache_mib" "$rss_bound" "$verdict"
for row in "${rows[@]}"; do
	k=${row%%:*}
	echo "FIGURE fs_local_$k=${R[local.$k]} unit=${row#*:}"
	echo "FIGURE fs_cairnfs_$k=${R[cairnfs.$k]} unit=${row#*:}"
done
echo "FIGURE fs_cairnfs_rss_peak=$rss unit=MiB"
