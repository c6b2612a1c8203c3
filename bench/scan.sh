#!/usr/bin/env bash
# Side-by-side cost of one pass over every process: syslens's process table against
# ps, with 300 extra idle processes. Prints medians and ratios.
# Needs hyperfine (apt-get install hyperfine) and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/syslens
[ -x "$bin" ] || cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 2; }
idle=${IDLE:-300}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq "$idle"); do sleep 3600 & pids+=($!); done
echo "processes: $(ls -d /proc/[0-9]* | wc -l) (with $idle idle sleepers)"
out=$(mktemp)
hyperfine -N --warmup 5 --runs "${RUNS:-60}" --export-json "$out" \
  -n "ps -eo pid,rss,vsz,maj_flt,min_flt" "ps -eo pid,rss,vsz,maj_flt,min_flt" \
  -n "ps aux" "ps aux" \
  -n "syslens system --processes --json" "$bin system --processes --json" \
  -n "syslens system --processes" "$bin --color never system --processes" >/dev/null
python3 - "$out" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ps_aux = r["ps aux"]["median"]
print(f"{'command':40} {'median':>9} {'min':>9} {'vs ps aux':>10}")
for name, x in r.items():
    print(f"{name:40} {x['median']*1e3:7.2f}ms {x['min']*1e3:7.2f}ms {x['median']/ps_aux:9.2f}x")
PY
rm -f "$out"
