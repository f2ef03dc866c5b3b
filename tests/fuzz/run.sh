#!/bin/sh
# run.sh: run every fuzz target for a bounded time (make check).
# libFuzzer builds (--enable-fuzzing): each target fuzzes for
# CAIRNFS_FUZZ_SECONDS (default 20) from its seed corpus, in a scratch copy so
# the committed corpus is not touched. gcc builds: the replay driver runs the
# corpus and seeded mutations of it.
set -u
: "${srcdir:=.}" "${top_builddir:=.}"
secs=${CAIRNFS_FUZZ_SECONDS:-20}
failed=0 ran=0
for t in ${FUZZ_TARGETS:-}; do
	bin=$top_builddir/tests/fuzz/$t
	corpus=$srcdir/tests/fuzz/corpus/$t
	[ -x "$bin" ] || { echo "run.sh: $bin not built"; failed=1; continue; }
	[ -d "$corpus" ] || { echo "run.sh: no seed corpus $corpus"; failed=1; continue; }
	ran=$((ran + 1))
	if [ "${CAIRNFS_FUZZ_MODE:-replay}" = libfuzzer ]; then
		work=$(mktemp -d)
		cp -r "$corpus/." "$work/"
		if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 "$work" >"$work.log" 2>&1; then
			execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
			rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work.log")
			cov=$(grep -o 'cov: [0-9]*' "$work.log" | tail -n 1 | cut -d' ' -f2)
			echo "FIGURE fuzz_${t}_execs=${execs:-0} unit=runs"
			echo "FIGURE fuzz_${t}_exec_per_sec=${rate:-0} unit=runs/s"
			echo "FIGURE fuzz_${t}_edges=${cov:-0} unit=edges"
		else
			echo "run.sh: $t found a crash:"; tail -n 40 "$work.log"; failed=1
		fi
		rm -rf "$work" "$work.log"
	else
		"$bin" "$corpus" || { echo "run.sh: $t failed"; failed=1; }
	fi
done
[ "$ran" -gt 0 ] || { echo "run.sh: no fuzz targets"; exit 77; }
exit $failed
