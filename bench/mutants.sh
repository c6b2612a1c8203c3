#!/usr/bin/env bash
# Mutation score (issue 23): cargo-mutants changes the code one mutant at a time (a `<`
# for a `<=`, a constant for a function's body...) and runs the tests; a mutant the tests
# do not notice is a regression they would not catch. Not in CI: it rebuilds once per
# mutant (the `mutants` profile of Cargo.toml: the workspace unoptimised, its
# dependencies at opt-level 2 and built once; -j1, under nice -n 19, so other builds
# keep the machine).
#
#   bench/mutants.sh [probe|parsers|rules|labs|all]   scope (default: all, a sample of
#                                                       parsers, rules and labs: below)
#   bench/mutants.sh report SCOPE                      the counts of a run already made (or
#                                                       stopped part way: cargo-mutants writes
#                                                       each outcome as it goes)
#   FILES='crates/probe/src/psi.rs ...'                narrow the scope to these files
#   JOBS=1 TIMEOUT=120 OUT=target/mutants              cargo-mutants' -j, test timeout (s), output
#                                                       (and its build dir: OUT/target)
#   RE='regex'                                        only the mutants whose name (as --list
#                                                       shows it) matches: re-check the missed
#   SHARD=k/n                                          only every n-th mutant from the k-th
#                                                       (round-robin: a sample of the scope)
#   CAP=45m                                            stop the run after this long (timeout(1));
#                                                       the outcomes so far are still counted
#
# Scopes:
#   probe    the readers, every file of crates/probe (~1700 mutants: hours)
#   parsers  the crates/probe files that parse /proc text (the fast part of `probe`)
#   rules    the doctor rules, src/concepts/*/rules.rs, with the concept's unit tests
#   labs     the labs' analyze functions (src/concepts/*/lab.rs, functions named analyze*)
#   all      every 16th parser mutant, every 8th rule mutant, every 12th lab mutant (of
#            622, 241 and 374 on 2026-12-04: about 100, under an hour here)
# Prints caught / missed / timeouts / unviable per scope, and the score:
# caught / (caught + missed + timeouts), unviable mutants (that do not build) left out.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null ||
  { echo "needs cargo-mutants: cargo install --locked cargo-mutants" >&2; exit 2; }
scope=${1:-all}
out=$(realpath -m "${OUT:-target/mutants}")
# One target dir of its own for every mutant build (the scratch copies share it, -j1):
# the dependencies build once, never in the caller's target dir.
export CARGO_TARGET_DIR=$out/target
args=(--test-tool nextest --jobs "${JOBS:-1}" --timeout "${TIMEOUT:-120}"
      --build-timeout "${BUILD_TIMEOUT:-900}" --no-shuffle --profile mutants)
[ -z "${SHARD:-}" ] || args+=(--shard "$SHARD" --sharding round-robin)
[ -z "${RE:-}" ] || args+=(--re "$RE")
# The syslens package's unit tests only (`--lib`): its integration target drives the
# labs and the live binary. The probe crate runs its unit tests and tests/parsers.rs
# (the recorded fixtures, the property tests), not the tests that read live processes
# (repeat.rs, alloc.rs, fd_budget.rs: timing-bound, they fail on a loaded machine and
# stop the run at its baseline), nor the every-prefix no-panic test (50 s a mutant here).
lib=(--cargo-test-arg=--lib)
probe_tests=(--cargo-test-arg=--lib --cargo-test-arg=--test=parsers
             --cargo-test-arg=-E --cargo-test-arg='not test(every_prefix_of_every_fixture_is_safe)')
parsers=(crates/probe/src/{psi,status,stat,locks,limits,sched,mountinfo,smaps,parse,system,fds,ns}.rs)

fargs=()
files() { # the -f arguments: FILES when set, else the scope's own files
  local f
  for f in ${FILES:-$*}; do fargs+=(-f "$f"); done
}

count() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

summary() { # scope name, cargo-mutants output dir
  local d=$2/mutants.out c m t u
  c=$(count "$d/caught.txt"); m=$(count "$d/missed.txt")
  t=$(count "$d/timeout.txt"); u=$(count "$d/unviable.txt")
  printf '%-8s caught %4d  missed %4d  timeouts %3d  unviable %4d  score %s\n' "$1" "$c" "$m" "$t" "$u" \
    "$(awk -v c="$c" -v m="$m" -v t="$t" 'BEGIN { v = c + m + t; if (v) printf "%.1f%%", 100 * c / v; else print "-" }')"
  [ ! -f "$2/tree" ] || echo "  the tree of $(cat "$2/tree")"
  # cargo-mutants 27 selects struct-field deletions whatever --re and --exclude-re say:
  # in the labs scope those outside analyze (in run and child code) are out of reach
  # of the unit tests it runs. Counted apart, and the score without them.
  local f
  f=$( { grep -E 'delete field .* expression in ' "$d/missed.txt" 2>/dev/null || true; } | grep -vc ' in analyze' || true)
  [ "$f" -eq 0 ] || printf '  %d of the missed are field deletions outside analyze (selected despite --re); without them: %s\n' "$f" \
    "$(awk -v c="$c" -v m="$((m - f))" -v t="$t" 'BEGIN { printf "%.1f%%", 100 * c / (c + m + t) }')"
  [ "$m" -eq 0 ] || { echo "  missed:"; sed 's/^/    /' "$d/missed.txt"; }
}

run() { # scope name, then cargo-mutants' scope arguments
  local name=$1; shift
  mkdir -p "$out/$name"
  # The tree the run mutates (cargo-mutants copies it at the start).
  { git rev-parse --short HEAD; git diff --quiet HEAD || echo " with uncommitted changes"; } |
    tr -d '\n' > "$out/$name/tree"
  # cargo-mutants exits 2 when some mutants were missed, 3 on timeouts: still a result;
  # 124 is timeout(1) stopping it at CAP: the outcomes written so far are the result.
  local rc=0
  timeout --signal INT --kill-after 60 "${CAP:-0}" \
    nice -n 19 cargo mutants "${args[@]}" --output "$out/$name" "$@" || rc=$?
  case $rc in
    0|2|3) ;;
    124) echo "$name: stopped at the cap of $CAP" >&2 ;;
    *) return "$rc" ;;
  esac
}

scopes=("$scope")
case $scope in
  report)  scopes=("${2:?report which scope?}") ;;
  probe)   files crates/probe/src/*.rs; run probe -p syslens-probe "${probe_tests[@]}" "${fargs[@]}" ;;
  parsers) files "${parsers[@]}"; run parsers -p syslens-probe "${probe_tests[@]}" "${fargs[@]}" ;;
  rules)   files src/concepts/*/rules.rs; run rules "${lib[@]}" "${fargs[@]}" ;;
  labs)    files src/concepts/*/lab.rs; run labs "${lib[@]}" "${fargs[@]}" --re 'analyze' ;;
  all)     # A round-robin sample of each scope, sized to finish within an hour on 2 cores
           # (about 100 mutants); SHARD=0/1 runs the whole scopes (hours).
           scopes=(parsers rules labs)
           SHARD=${SHARD:-0/16} "$0" parsers >/dev/null
           SHARD=${SHARD:-0/8} "$0" rules >/dev/null
           SHARD=${SHARD:-0/12} "$0" labs >/dev/null ;;
  *) echo "unknown scope $scope (probe, parsers, rules, labs, all, report SCOPE)" >&2; exit 2 ;;
esac
echo "mutation score, $(date -u +%F)"
for s in "${scopes[@]}"; do summary "$s" "$out/$s"; done
