#!/usr/bin/env bash
# Load test of `syslens serve` on loopback: 20 concurrent scrapers for 10 s against
# ~400 processes, with ab (apt-get install apache2-utils). Prints p50 / p99 scrape
# latency, failed requests and the exporter's peak RSS, once with the default 1 s
# cache and once with --cache 0 (every scrape collects; collections are serialised).
# For comparison, the same load against node_exporter when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/syslens
[ -x "$bin" ] || cargo build --release --quiet
command -v ab >/dev/null || { echo "ab not installed (apt-get install apache2-utils)"; exit 1; }
conc=${CONC:-20}
secs=${SECS:-10}
target=${PROCS:-400}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
have=$(ls -d /proc/[0-9]* | wc -l)
for _ in $(seq $((target > have ? target - have : 0))); do sleep 3600 & pids+=($!); done
echo "processes: $(ls -d /proc/[0-9]* | wc -l); $conc scrapers for $secs s"
load() {
  local name=$1 port=$2 pid=$3
  sleep 1
  local out
  out=$(ab -q -c "$conc" -t "$secs" -n 1000000 "http://127.0.0.1:$port/metrics" 2>&1)
  local n failed p50 p99 hwm
  n=$(awk '/^Complete requests/ {print $3}' <<<"$out")
  # ab counts a body whose length differs from the first one as failed ("Length");
  # metrics change between scrapes, so only connect, receive and exceptions count.
  failed=$(grep -A1 '^Failed requests' <<<"$out" | grep -o 'Connect: [0-9]*, Receive: [0-9]*' | awk '{s=$2+$4} END {print s+0}')
  exc=$(grep -o 'Exceptions: [0-9]*' <<<"$out" | awk '{print $2}')
  failed=$((failed + ${exc:-0}))
  non2xx=$(awk '/^Non-2xx responses/ {print $3}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  hwm=$(awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  printf '%-26s %7s scrapes  p50 %4s ms  p99 %4s ms  failed %s  non-2xx %s  peak RSS %s MiB\n' \
    "$name" "$n" "$p50" "$p99" "$failed" "${non2xx:-0}" "$hwm"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
"$bin" serve --listen 127.0.0.1:9155 2>/dev/null & load "syslens serve (1 s cache)" 9155 $!
"$bin" serve --listen 127.0.0.1:9156 --cache 0 2>/dev/null & load "syslens serve (--cache 0)" 9156 $!
if command -v prometheus-node-exporter >/dev/null; then
  prometheus-node-exporter --web.listen-address=127.0.0.1:9157 2>/dev/null & load "node_exporter" 9157 $!
fi
