#!/usr/bin/env bash
# Run every benchmark, then (with --full) rebuild bench/RESULTS.md.
#   bench/run_all.sh --quick   tiny sizes, a few minutes (ablations: a subset); results go to bench/results/quick/
#   bench/run_all.sh --full    the real runs (hours at 1 thread: see bench/README.md); gpu.py runs only where CUDA is
# Arguments after the mode go to every script (e.g. --note "cores shared with other jobs").
# BENCH_ONLY="sampling train_throughput" bench/run_all.sh --full   runs only those scripts.
# A script that fails does not stop the others; the exit status is 1 if any failed (gpu.py without CUDA: skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mode=${1:-}; shift || true
case "$mode" in
  --quick|--full) ;;
  *) echo "usage: bench/run_all.sh --quick|--full [arguments for every script]" >&2; exit 2 ;;
esac
scripts=${BENCH_ONLY:-"train_throughput sampling ablations quality compute palindromes constraints gpu"}
failed=()
for s in $scripts; do
  [ -f "bench/$s.py" ] || { echo "bench/$s.py does not exist" >&2; failed+=("$s"); continue; }
  flag=$mode
  # --full is the default of every script; pass it only to those whose command line knows it
  if [ "$mode" = --full ] && ! "$PY" "bench/$s.py" --help 2>/dev/null | grep -q -- '--full'; then flag=; fi
  extra=()
  # the smoke run of the ablation sweep: one seed of a lever per method (all 26 variants x 2 seeds take ~15 minutes)
  if [ "$mode" = --quick ] && [ "$s" = ablations ]; then extra=(--only masked-torch-count block4-count sedd-abs-radd --seeds 0); fi
  echo "== bench/$s.py $flag ${extra[*]} $*"
  start=$SECONDS
  "$PY" "bench/$s.py" $flag "${extra[@]}" "$@"
  rc=$?
  if [ "$s" = gpu ] && [ $rc -eq 2 ]; then echo "== gpu.py skipped: no CUDA GPU on this machine"; continue; fi
  [ $rc -eq 0 ] || failed+=("$s")
  echo "== bench/$s.py: exit $rc after $((SECONDS - start)) s"
done
[ "$mode" = --full ] && "$PY" bench/collect.py
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}" >&2; exit 1; fi
exit 0
