#!/usr/bin/env bash
# Accuracy: each lab figure against a small C program (or perf bench) doing the same
# operation, on the same CPU (taskset -c CPU for both sides), in N interleaved pairs:
# one lab measurement and one C measurement, in random order within each pair, so the
# VM's drift lands on both sides of a ratio rather than between them. Per operation it
# prints the median of the N per-pair ratios with its 95% confidence interval (order
# statistics: the binomial ranks, bench/ratios.py).
#
# One measurement on either side is the median of TRIALS trials (default 5) taken
# together (`--trials TRIALS --set budget_ms=0`: the adaptive rule off, the same count
# on the C side; perf bench runs TRIALS times), so one slow trial on the busy VM moves
# a pair less; TRIALS=1 makes a pair one trial against one. The copy-on-write write is
# one child's write of 64 MiB on both sides (the lab forks one child at write_fraction=1). fork is compared like for like by subtraction: the lab's child is the syslens
# binary, whose own mappings fork copies too, so the rows "parent N MiB, net" are the
# fork at N MiB minus the fork at 0 MiB of the same process, on both sides; the 0 MiB
# row itself compares two different base processes and is shown, not judged.
#
# Needs gcc, python3 and a release build. CPU=0 PAIRS=15 TRIALS=5 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=${CPU:-0}
pairs=${PAIRS:-15}
trials=${TRIALS:-5}
bin=${SYSLENS:-${CARGO_TARGET_DIR:-target}/release/syslens}
[ -x "$bin" ] || cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for p in first_touch cow_write fork_size sig_catch; do gcc -O2 -o "$out/$p" "bench/c/$p.c"; done
pin() { taskset -c "$cpu" "$@"; }
one=(--json --trials "$trials" --set budget_ms=0)
has_perf=0
if command -v perf >/dev/null && perf bench syscall basic -l 100000 >/dev/null 2>&1; then has_perf=1; fi

# One pair of each group: the lab side writes its JSON, the C side its figures; a
# fair coin decides which goes first. Results: "op pair lab c" lines in $out/pairs.
# A lab exits 1 when a claim fails (a busy host can fail a timing claim); its figures
# are still measured and compared.
lab_side() {
  lab_run "$@" || [ $? = 1 ]
}
lab_run() {
  case $1 in
    lazy) pin "$bin" lab lazy-init "${one[@]}" --size 64 > "$out/lab.json" ;;
    cow) pin "$bin" lab cow "${one[@]}" --size 64 --set write_fraction=1 --set fork_max=64M > "$out/lab.json" ;;
    ku) "$bin" lab kernel-user "${one[@]}" --set loop_cpu=50 > "$out/lab.json" ;;
    sched) "$bin" lab scheduling "${one[@]}" --set hog=300 > "$out/lab.json" ;;
    sig) "$bin" lab signals "${one[@]}" > "$out/lab.json" ;;
  esac
}
# The median usecs/op of TRIALS runs of `perf bench ARGS...`, pinned.
perf_median() {
  for ((t = 0; t < trials; t++)); do
    pin perf bench "$@" 2>/dev/null | awk '/usecs\/op/ {print $1}'
  done | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
c_side() {
  case $1 in
    lazy) pin "$out/first_touch" 16 "$trials" > "$out/c.txt" ;;
    cow) { pin "$out/cow_write" 64 1; for s in 0 16 64; do pin "$out/fork_size" "$s" "$trials"; done; } > "$out/c.txt" ;;
    ku) perf_median syscall basic -l 100000 | awk '{print $1 * 1000}' > "$out/c.txt" ;;
    sched) perf_median sched pipe -l 20000 > "$out/c.txt" ;;
    sig) pin "$out/sig_catch" 10000 "$trials" > "$out/c.txt" ;;
  esac
}
groups=(lazy cow sig)
[ "$has_perf" = 1 ] && groups+=(ku sched)
: > "$out/pairs"
: > "$out/cal"
for ((i = 1; i <= pairs; i++)); do
  for g in "${groups[@]}"; do
    if (( RANDOM % 2 )); then lab_side "$g"; c_side "$g"; else c_side "$g"; lab_side "$g"; fi
    python3 bench/ratios.py pair "$g" "$i" "$out/lab.json" "$out/c.txt" >> "$out/pairs"
    python3 bench/ratios.py cal "$out/lab.json" >> "$out/cal"
  done
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $load, CPU $cpu, $pairs pairs of medians of $trials trials (random order within each)"
python3 bench/ratios.py host "$out/cal"
[ "$has_perf" = 1 ] || echo "(perf bench unavailable: install linux-perf for the syscall and pipe comparisons)"
python3 bench/ratios.py table "$out/pairs"
