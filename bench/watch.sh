#!/usr/bin/env bash
# What `syslens watch` (every concept) costs the host, side by side with perf record:
# a page-fault loop, a getppid loop and a pipe ping-pong (context switches) run alone, under `syslens watch`, and under
# `perf record -e exceptions:page_fault_user -a` (when perf is installed); the ratio is
# each loop's speed against its speed alone, interleaved (alone, watch, alone, perf,
# ...) so the VM's drift does not land in one column. Then watch's own CPU on an idle
# host, and each heavy kind (rss-peak, futex-wait: on only with --kind) beside the loop it
# slows. Needs root (tracepoints) and cc. Target: the fault and getppid loops >= 0.90x (the ping-pong has none: it shows
# what the run-queue source costs a switch-heavy host), watch < 2% of a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/release/syslens
[ -x "$bin" ] || cargo build --release --quiet
tmp=$(mktemp -d)
watch_pid=
cleanup() { [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
cc -O2 -o "$tmp/fault_loop" bench/c/fault_loop.c
cc -O2 -o "$tmp/getppid_loop" bench/c/getppid_loop.c
cc -O2 -o "$tmp/switch_loop" bench/c/switch_loop.c
secs=${SECS:-3}
rounds=${ROUNDS:-5}
hz=$(getconf CLK_TCK)

run_under() { # $1: alone|watch|all|perf|kind=KIND, $2: loop -> rate
  local mode=$1 loop=$2 rate
  case $mode in
    alone) rate=$("$tmp/$loop" "$secs") ;;
    watch) "$bin" watch --summary 3600 >/dev/null 2>&1 & watch_pid=$!; sleep 1
           rate=$("$tmp/$loop" "$secs"); kill -INT "$watch_pid"; wait "$watch_pid" || true; watch_pid= ;;
    all)   "$bin" watch $all_concepts --summary 3600 >/dev/null 2>&1 & watch_pid=$!; sleep 1
           rate=$("$tmp/$loop" "$secs"); kill -INT "$watch_pid"; wait "$watch_pid" || true; watch_pid= ;;
    kind=*) "$bin" watch --kind "${mode#kind=}" --summary 3600 >/dev/null 2>&1 & watch_pid=$!; sleep 1
           rate=$("$tmp/$loop" "$secs"); kill -INT "$watch_pid"; wait "$watch_pid" || true; watch_pid= ;;
    perf)  perf record -q -o "$tmp/perf.data" -e exceptions:page_fault_user -a >/dev/null 2>&1 & watch_pid=$!; sleep 1
           rate=$("$tmp/$loop" "$secs"); kill -INT "$watch_pid"; wait "$watch_pid" || true; watch_pid= ;;
  esac
  echo "$rate"
}

# `watch` alone leaves off the sources that cost the whole host; naming every concept
# turns them on (page faults, EMFILE, fsync, run-queue waits), but not the heavy kinds
# (futex-wait, rss-peak), which only --kind opens.
all_concepts=$("$bin" --json concepts | python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))')
modes="alone watch all"
command -v perf >/dev/null && modes="alone watch all perf" || echo "perf not installed (apt-get install linux-perf): its column is left out"
for loop in fault_loop getppid_loop switch_loop; do
  declare -A sum=()
  for r in $(seq "$rounds"); do
    for m in $modes; do
      v=$(run_under "$m" "$loop"); sum[$m]="${sum[$m]:-} $v"
    done
  done
  python3 - "$loop" "${sum[alone]}" "${sum[watch]}" "${sum[all]}" "${sum[perf]:-}" <<'PY'
import sys, statistics as st
loop, alone, watch, every, perf = sys.argv[1], *[list(map(float, a.split())) for a in sys.argv[2:6]]
# Per round: the ratio against that round's own run alone (interleaved pairs).
def ratio(xs): return st.median([x / a for x, a in zip(xs, alone)]) if xs else float('nan')
print(f"{loop:13} alone {st.median(alone):12.0f}/s   watch {ratio(watch):.3f}x   watch, every concept named {ratio(every):.3f}x" + (f"   perf record {ratio(perf):.3f}x" if perf else ""))
PY
done

# The heavy kinds (on only when named with --kind), each beside the loop it slows.
for pair in rss-peak:fault_loop futex-wait:getppid_loop; do
  kind=${pair%%:*} loop=${pair#*:} alone= under=
  for r in $(seq "$rounds"); do
    alone="$alone $(run_under alone "$loop")"; under="$under $(run_under "kind=$kind" "$loop")"
  done
  python3 - "$kind" "$loop" "$alone" "$under" <<'PY'
import sys, statistics as st
kind, loop, alone, under = sys.argv[1], sys.argv[2], *[list(map(float, a.split())) for a in sys.argv[3:5]]
print(f"{loop:13} alone {st.median(alone):12.0f}/s   watch --kind {kind} {st.median([u / a for u, a in zip(under, alone)]):.3f}x")
PY
done

# watch's own CPU over 30 s on an idle host (utime + stime from /proc/PID/stat).
"$bin" watch --summary 3600 >/dev/null 2>&1 & watch_pid=$!
sleep 2
t0=$(awk '{print $14+$15}' "/proc/$watch_pid/stat")
sleep "${IDLE_SECS:-30}"
t1=$(awk '{print $14+$15}' "/proc/$watch_pid/stat")
python3 -c "import sys; print(f'watch CPU idle: {100*(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3])/int(sys.argv[4]):.2f}% of one CPU')" "$t0" "$t1" "$hz" "${IDLE_SECS:-30}"
