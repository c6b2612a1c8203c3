#!/usr/bin/env bash
# CPU cost of a live monitor per 1 s refresh, side by side: syslens top, top and htop,
# each in its own tmux session for the same time, measured from /proc/PID/stat
# (utime + stime). Run with a release build; installs nothing (apt-get install htop tmux).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/syslens
[ -x "$bin" ] || cargo build --release --quiet
secs=${SECS:-30}
hz=$(getconf CLK_TCK)
idle=${IDLE:-300}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; for s in "syslens top" "syslens files" "syslens isolation" top htop; do tmux kill-session -t "bench-$s" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for _ in $(seq "$idle"); do sleep 3600 & pids+=($!); done
echo "processes: $(ls -d /proc/[0-9]* | wc -l); $secs s per monitor, 1 s refresh"
measure() {
  local name=$1 keys=$2; shift 2
  tmux new-session -d -s "bench-$name" -x 200 -y 50 "$*"
  sleep 2
  # A view switch reads its slow parts at once; the window starts after that, so it
  # holds the periodic reads at their steady rate.
  [ -z "$keys" ] || { tmux send-keys -t "bench-$name" "$keys"; sleep 3; }
  local pid
  pid=$(tmux list-panes -t "bench-$name" -F '#{pane_pid}')
  local t0; t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  sleep "$secs"
  local t1; t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  tmux kill-session -t "bench-$name"
  python3 -c "import sys; t=(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3]); print(f'{sys.argv[4]:14} {t*1000/int(sys.argv[5]):6.1f} ms CPU per refresh')" "$t0" "$t1" "$hz" "$name" "$secs"
}
# The memory view is the default; the files view adds the slow tier (fd limits,
# cgroups, oom_score) and a readlink of every fd of every process every 30 s; the
# isolation view the slow tier and four namespace readlinks per process every 30 s.
measure "syslens top" "" "exec $bin top --interval 1"
measure "syslens files" 3 "exec $bin top --interval 1"
measure "syslens isolation" 4 "exec $bin top --interval 1"
measure top "" "exec top -d 1"
command -v htop >/dev/null && measure htop "" "exec htop -d 10" || echo "htop not installed (apt-get install htop)"
