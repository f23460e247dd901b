#!/usr/bin/env bash
# The palindrome pipeline (issue 5), three papermill runs, one executed notebook each under $OUT:
#   1. pretrain  SEDD on the shipped Wikipedia bytes (preset wiki-sedd, rows of 32 bytes)    nbs/train.ipynb
#   2. finetune  SEDD on the palindromes, from the pre-trained weights (preset palindrome-sedd)  nbs/train.ipynb
#   3. sample    constrained and unconstrained samples, the evaluation table and a GIF        nbs/palindromes.ipynb
#
# usage: scripts/palindrome_pipeline.sh [pretrain] [finetune] [sample]     (no argument: all three, in order)
# environment (all optional):
#   GRAPH=absorbing|uniform   the SEDD graph of both training runs (default absorbing)
#   GPU=1                     the GPU presets (wiki-sedd-gpu, palindrome-sedd-gpu: 768 wide, 12 layers, 12 heads)
#   OUT=papermill_runs/palindromes   executed notebooks, the table (JSON + Markdown) and the GIF
#   RUNS=runs/palindromes     the two training runs (checkpoints, metrics)
#   LENGTHS='[8, 12, 16, 24, train]' N_SAMPLES=64 STEPS=64 MODE=exact DEVICE=auto SEED=0   sampling parameters
# A step that stops (a crash, a signal) is continued by running the same command again: training resumes from
# its newest checkpoint, and a finished training run is not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
KERNEL=${KERNEL:-diffusion-lm}
GRAPH=${GRAPH:-absorbing}
SUFFIX=$([ "${GPU:-0}" = 1 ] && echo -gpu || echo '')
OUT=${OUT:-papermill_runs/palindromes}
RUNS=${RUNS:-runs/palindromes}
PRE=$RUNS/wiki_sedd_${GRAPH}${SUFFIX}
FT=$RUNS/palindrome_sedd_${GRAPH}${SUFFIX}
STEPS_TO_RUN=("$@"); [ ${#STEPS_TO_RUN[@]} -eq 0 ] && STEPS_TO_RUN=(pretrain finetune sample)
mkdir -p "$OUT"
PM=("$BIN/papermill" -k "$KERNEL" --cwd nbs --log-output)

timed() {  # timed NAME CMD...: run CMD, append its wall time to $OUT/timings.tsv
  local name=$1; shift; local t0=$SECONDS
  echo "== $name: $*"
  "$@"
  printf '%s\t%s\t%s\n' "$name" "$((SECONDS - t0))" "$(date -Is)" >> "$OUT/timings.tsv"
  echo "== $name done in $((SECONDS - t0)) s"
}

for step in "${STEPS_TO_RUN[@]}"; do
  case $step in
    pretrain) timed pretrain "${PM[@]}" nbs/train.ipynb "$OUT/1_pretrain_wiki_sedd_${GRAPH}${SUFFIX}.ipynb" \
                -p preset "wiki-sedd$SUFFIX" -p graph "$GRAPH" -p out_dir "$PRE" ;;
    finetune) timed finetune "${PM[@]}" nbs/train.ipynb "$OUT/2_finetune_palindrome_sedd_${GRAPH}${SUFFIX}.ipynb" \
                -p preset "palindrome-sedd$SUFFIX" -p graph "$GRAPH" -p init_from "$PRE" -p out_dir "$FT" ;;
    sample)   timed sample "${PM[@]}" nbs/palindromes.ipynb "$OUT/3_palindromes_${GRAPH}${SUFFIX}.ipynb" \
                -p checkpoint "$FT" -p out_dir "$OUT" -y "lengths: ${LENGTHS:-[8, 12, 16, 24, train]}" \
                -p n_samples "${N_SAMPLES:-64}" -p steps "${STEPS:-64}" -p mode "${MODE:-exact}" \
                -p device "${DEVICE:-auto}" -p seed "${SEED:-0}" ;;
    *) echo "unknown step '$step': use pretrain, finetune or sample" >&2; exit 2 ;;
  esac
done
