#!/bin/sh
# One row of `make fuzz-run`: fuzz-row.sh ROW SECONDS runs the libFuzzer target on contract row
# ROW for SECONDS, in tests/fuzz-work/ROW (a copy of the corpus), and prints its summary.  On
# a failure it prints the log's end and names the crash input; the exit status is then 1.
# From the build directory; srcdir and KCOM_MODULE_PATH come from the environment.
set -u
row=$1
secs=$2
work=tests/fuzz-work/$row
rm -rf "$work" && mkdir -p "$work/corpus" && cp "$srcdir"/tests/fuzz-corpus/* "$work/corpus/" || exit 1
KCOM_FUZZ_ROW=$row ./tests/fuzz-bufio-libfuzzer -max_total_time="$secs" -max_len=2048 -print_final_stats=1 \
	-artifact_prefix="tests/fuzz-crash-$row-" "$work/corpus" >"$work/log" 2>&1
rc=$?
# One block per row, so two rows run at once do not interleave their lines.
{
	echo "fuzz-run: $row, $secs s:"
	grep -E '^fuzz:|^stat::number_of_executed_units|^Done|SUMMARY' "$work/log"
	if test $rc -ne 0; then
		tail -n 40 "$work/log"
		echo "fuzz-run: $row failed; the input is tests/fuzz-crash-$row-*: add it to tests/fuzz-corpus/" >&2
	fi
} 2>&1
test $rc -eq 0 || exit 1
