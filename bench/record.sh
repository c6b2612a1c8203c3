#!/usr/bin/env bash
# What `syslens record` costs and how fast the past is asked, side by side with atop
# (when installed: apt-get install atop) recording the same host at the same interval.
#  1. ~PROCS processes on the host (sleepers are started to reach it);
#  2. the recorder's CPU over SECS at the default 5 s interval and at 1 s, from its
#     /proc/PID/stat (atop's beside it);
#  3. bytes per process-sample: the process blobs and the whole store, against atop's
#     raw file;
#  4. a day of samples (17280 at 5 s) generated, then `inspect --at` and
#     `doctor --since -1h` timed on it.
# Targets (issue 17): CPU <= 0.5% at 5 s and <= 2% at 1 s; <= 20 bytes per
# process-sample; inspect --at < 100 ms; doctor --since -1h < 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/release/syslens
[ -x "$bin" ] || cargo build --release --quiet
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
procs=${PROCS:-400}
secs=${SECS:-60}
hz=$(getconf CLK_TCK)
have=$(ls -d /proc/[0-9]* | wc -l)
for _ in $(seq $((procs - have))); do sleep 100000 & pids+=($!); done
echo "processes on the host: $(ls -d /proc/[0-9]* | wc -l)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # $1 interval -> prints "syslens_cpu_percent atop_cpu_percent"
  local iv=$1 store="$tmp/store-$1" rec atop= t0 t1 a0 a1
  "$bin" record --store "$store" --interval "$iv" 2>/dev/null & rec=$!; pids+=($rec)
  if command -v atop >/dev/null; then atop -w "$tmp/atop-$iv" "$iv" >/dev/null 2>&1 & atop=$!; pids+=($atop); fi
  sleep 2
  t0=$(cpu_ticks $rec); [ -z "$atop" ] || a0=$(cpu_ticks $atop)
  sleep "$secs"
  t1=$(cpu_ticks $rec); [ -z "$atop" ] || a1=$(cpu_ticks $atop)
  kill -TERM $rec; wait $rec || true
  [ -z "$atop" ] || { kill $atop; wait $atop 2>/dev/null || true; }
  awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f ", 100 * d / hz / s }'
  if [ -n "$atop" ]; then awk -v d=$((a1 - a0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f\n", 100 * d / hz / s }'; else echo "-"; fi
}

printf '\n%-24s %10s %10s %8s\n' "interval" "syslens" "atop" "ratio"
for iv in 5 1; do
  read -r ours theirs < <(measure $iv)
  ratio=-; [ "$theirs" = "-" ] || ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
  printf '%-24s %9s%% %9s%% %8s\n' "CPU at ${iv} s" "$ours" "$theirs" "$ratio"
done

store="$tmp/store-1"
read -r blob rows < <(python3 - "$store/syslens.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(*c.execute("select sum(length(procs)), sum(processes) from samples").fetchone())
PY
)
total=$(du -cb "$store"/syslens.db* | tail -1 | cut -f1)
printf '\n%-24s %10s\n' "bytes per process-sample" "syslens"
awk -v b="$blob" -v r="$rows" 'BEGIN { printf "%-24s %10.1f\n", "process table", b / r }'
awk -v b="$total" -v r="$rows" 'BEGIN { printf "%-24s %10.1f\n", "whole store", b / r }'
if [ -f "$tmp/atop-1" ]; then
  samples=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from samples').fetchone()[0])" "$store/syslens.db")
  awk -v b="$(stat -c %s "$tmp/atop-1")" -v r="$rows" -v mine="$total" 'BEGIN { printf "%-24s %10.1f  (syslens/atop %.2fx)\n", "atop raw file", b / r, mine / b }'
fi

day="$tmp/day"
start=$(date +%s.%N)
"$bin" __record-synth --store "$day" --samples 17280 --interval 5
echo
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "a day of samples generated in %.1f s\n", e - s }'
du -sh "$day" | awk '{ print "store of a day: " $1 }'
timeit() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
printf '%-32s %8s ms\n' "inspect --at -12h 1" "$(timeit "$bin" inspect --store "$day" --at -12h 1)"
printf '%-32s %8s ms\n' "system --at -12h" "$(timeit "$bin" system --store "$day" --at -12h)"
printf '%-32s %8s ms\n' "doctor --since -1h" "$(timeit "$bin" doctor --store "$day" --since -1h)"
