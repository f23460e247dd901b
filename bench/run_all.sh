#!/usr/bin/env bash
# Run every benchmark, then rebuild bench/RESULTS.md.
#   bench/run_all.sh --quick   tiny sizes, about a minute; results go to bench/results/quick/ (not in RESULTS.md)
#   bench/run_all.sh --full    the real runs (10-30 minutes on 2 CPU cores depending on load; gpu.py runs only where CUDA is)
# Extra arguments after the mode go to every script (e.g. --note "cores shared with other jobs").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mode=${1:---quick}; shift || true
case "$mode" in
  --quick) flag=--quick ;;
  --full) flag= ;;
  *) echo "usage: bench/run_all.sh --quick|--full [extra args for every script]" >&2; exit 2 ;;
esac
for s in train_throughput quality sampling palindromes gpu; do
  echo "== bench/$s.py $flag $*"
  "$PY" "bench/$s.py" $flag "$@"
done
[ "$mode" = --full ] && "$PY" bench/collect.py
exit 0
