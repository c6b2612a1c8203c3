#!/usr/bin/env bash
# Accuracy: each lab figure against a small C program doing exactly the same operation,
# on the same CPU (taskset -c CPU for both sides). Prints both and the ratio.
# Needs gcc and a release build. CPU=0 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=${CPU:-0}
bin=target/release/syslens
[ -x "$bin" ] || cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for p in first_touch cow_write fork_size sig_catch; do gcc -O2 -o "$out/$p" "bench/c/$p.c"; done
pin() { taskset -c "$cpu" "$@"; }

pin "$bin" lab lazy-init --json --size 64 > "$out/lazy.json"
pin "$bin" lab cow --json --size 64 > "$out/cow.json"
"$bin" lab kernel-user --json > "$out/ku.json"
"$bin" lab scheduling --json > "$out/sched.json"
"$bin" lab signals --json > "$out/sig.json"
metric() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(next(m for m in r['metrics'] if m['name'].startswith(sys.argv[2]))[sys.argv[3]])" "$@"; }
row() { python3 -c "import sys; s,c=float(sys.argv[2]),float(sys.argv[3]); print(f'{sys.argv[1]:44} {s:10.1f} {c:10.1f} {s/c:7.2f}x')" "$@"; }

echo "same CPU: $cpu    (syslens median / C median; goal within 15%)"
printf '%-44s %10s %10s %8s\n' "operation" "syslens" "C" "ratio"
row "first touch, ns per page (16 MiB regions)" "$(metric "$out/lazy.json" "first touch" median)" "$(pin "$out/first_touch" 16 15)"
row "CoW write after fork, ns per page (64 MiB)" "$(metric "$out/cow.json" "copy-on-write fault" median)" "$(pin "$out/cow_write" 64 7)"
for s in 0 16 64; do
  row "fork+exit+wait, parent $s MiB, us" "$(metric "$out/cow.json" "fork + exit + wait, parent $s MiB" median)" "$(pin "$out/fork_size" "$s" 11)"
done
net() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); m=next(m for m in r['metrics'] if m['name'].startswith(sys.argv[2])); print(m['median']-(m['baseline'] or 0))" "$@"; }
if command -v perf >/dev/null && perf bench syscall basic -l 100000 >/dev/null 2>&1; then
  # perf bench's op: one getppid system call, loop included (compare gross figures).
  perf_sys=$(pin perf bench syscall basic -l 2000000 2>/dev/null | awk '/usecs\/op/ {print $1 * 1000}')
  row "getppid syscall, ns (perf bench syscall basic)" "$(metric "$out/ku.json" "syscall(SYS_getppid)" median)" "$perf_sys"
  # perf bench sched pipe's op is one round trip: 2 switches and 4 pipe system calls.
  perf_pipe=$(pin perf bench sched pipe -l 100000 2>/dev/null | awk '/usecs\/op/ {print $1}')
  row "pipe round trip, same CPU, us (perf bench sched pipe)" "$(metric "$out/sched.json" "pipe round trip, same CPU" median)" "$perf_pipe"
else
  echo "(perf bench unavailable: install linux-perf for the syscall and pipe comparisons)"
fi
row "signal catch, net of the send, ns (lat_sig catch)" "$(net "$out/sig.json" "kill(self) with a handler")" "$(pin "$out/sig_catch" 10000 9)"
echo "(the labs pin their own children to CPU 0 for the syscall, pipe and signal figures)"
echo
echo "CV of the syslens figures (goal under 5%):"
for f in lazy cow ku sched sig; do
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); [print(f\"  {m['name'][:60]:60} CV {m['cv']*100:5.1f}%\") for m in r['metrics']]" "$out/$f.json"
done
