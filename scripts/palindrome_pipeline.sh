#!/usr/bin/env bash
# The palindrome pipeline, papermill runs, one executed notebook each under $OUT:
#   0. data      prepare wiki-bytes and palindromes-mix (the generated phrases are made here, once)
#   1. pretrain  SEDD on the shipped Wikipedia bytes (preset wiki-sedd[-uniform], rows of 32 bytes)   nbs/train.ipynb
#   2. finetune  SEDD on palindromes-mix, from the pre-trained weights (preset palindrome-sedd[-uniform])  nbs/train.ipynb
#   3. sample    constrained and unconstrained samples of every graph's fine-tuned model: modes 'exact' and
#                'letters' with word repair (the rows before the dictionary constraint) and 'words' (every word
#                a dictionary word by construction, no repair); one evaluation table with the judge of English
#                (a byte n-gram model of the wiki-bytes rows) and a GIF                               nbs/palindromes.ipynb
# Steps 1 and 2 run for every graph of $GRAPHS, one after the other (one heavy process at a time).
#
# usage: scripts/palindrome_pipeline.sh [data] [pretrain] [finetune] [sample]     (no argument: all, in order)
# environment (all optional):
#   GRAPHS='absorbing uniform'  the SEDD graphs to train (each: pre-training then fine-tuning)
#   GPU=1                     the GPU presets (wiki-sedd-gpu, palindrome-sedd-gpu: 768 wide, 12 layers, 12 heads)
#   OUT=papermill_runs/palindromes   executed notebooks, timings.tsv, the table (JSON + Markdown) and the GIF
#   RUNS=runs/palindromes     the training runs (checkpoints, metrics)
#   LENGTHS='[8, 12, 16, 24, train]' N_SAMPLES=64 STEPS=64 TEMPERATURE=1.0 REPAIR_ROUNDS=4 DEVICE=auto SEED=0
#   WORDS_TEMPERATURE=3.0     the temperature of mode 'words' ('null': TEMPERATURE)
#   MODES='[exact, letters, words]'   the constraint modes sampled (REPAIR_ROUNDS: exact and letters only)
#   JUDGE_DATA=wiki-bytes     the rows the judge of English is fitted on ('null': no judge)
#   TRAIN_ARGS='-p max_steps 50'   more train.ipynb parameters for pre-training and fine-tuning (a short look)
# Training runs one thread per process (OMP_NUM_THREADS=1 unless set). A step that stops (a crash, a signal) is
# continued by running the same command again: training resumes from its newest checkpoint, and a finished
# training run is not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
KERNEL=${KERNEL:-diffusion-lm}
GRAPHS=${GRAPHS:-absorbing uniform}
SUFFIX=$([ "${GPU:-0}" = 1 ] && echo -gpu || echo '')
OUT=${OUT:-papermill_runs/palindromes}
RUNS=${RUNS:-runs/palindromes}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
STEPS_TO_RUN=("$@"); [ ${#STEPS_TO_RUN[@]} -eq 0 ] && STEPS_TO_RUN=(data pretrain finetune sample)
# the pipeline's own output folder (executed notebooks, timings, the table): claimed as a palindrome evaluation folder
# before anything is written, so palindromes.ipynb, writing its table there, finds a folder of its own kind
"$BIN/python" -c "import sys; from diffusion_lm.runs import claim_folder; claim_folder(sys.argv[1], 'palindrome-eval', 'OUT')" "$OUT"
PM=("$BIN/papermill" -k "$KERNEL" --cwd nbs --log-output)
read -r -a EXTRA <<< "${TRAIN_ARGS:-}"   # split on spaces: '-p max_steps 50' -> 4 words

timed() {  # timed NAME CMD...: run CMD, append its wall time to $OUT/timings.tsv
  local name=$1; shift; local t0=$SECONDS
  echo "== $name: $*"
  "$@"
  printf '%s\t%s\t%s\t%s\n' "$name" "$((SECONDS - t0))" "$(date -Is)" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/timings.tsv"
  echo "== $name done in $((SECONDS - t0)) s"
}
preset() {  # preset BASE GRAPH: the preset name of BASE (wiki-sedd, palindrome-sedd) on GRAPH
  if [ "$2" = uniform ]; then echo "$1$SUFFIX-uniform" | sed 's/-gpu-uniform/-gpu/'; else echo "$1$SUFFIX"; fi
}

CKPTS=()
for g in $GRAPHS; do CKPTS+=("$RUNS/palindrome_sedd_${g}${SUFFIX}"); done
for step in "${STEPS_TO_RUN[@]}"; do
  case $step in
    data)     timed data "$BIN/python" -c "from diffusion_lm.data import prepare_dataset as p; print(p('wiki-bytes'), p('palindromes-mix'))" ;;
    pretrain|finetune)
      for g in $GRAPHS; do
        PRE=$RUNS/wiki_sedd_${g}${SUFFIX}; FT=$RUNS/palindrome_sedd_${g}${SUFFIX}
        if [ "$step" = pretrain ]; then
          timed "pretrain_$g" "${PM[@]}" nbs/train.ipynb "$OUT/1_pretrain_wiki_sedd_${g}${SUFFIX}.ipynb" \
            -p preset "$(preset wiki-sedd "$g")" -p graph "$g" -p out_dir "$PRE" "${EXTRA[@]}"
        else
          timed "finetune_$g" "${PM[@]}" nbs/train.ipynb "$OUT/2_finetune_palindrome_sedd_${g}${SUFFIX}.ipynb" \
            -p preset "$(preset palindrome-sedd "$g")" -p graph "$g" -p init_from "$PRE" -p out_dir "$FT" "${EXTRA[@]}"
        fi
      done ;;
    sample)   timed sample "${PM[@]}" nbs/palindromes.ipynb "$OUT/3_palindromes${SUFFIX}.ipynb" \
                -y "checkpoints: [$(IFS=,; echo "${CKPTS[*]}")]" -p out_dir "$OUT" \
                -y "lengths: ${LENGTHS:-[8, 12, 16, 24, train]}" -p n_samples "${N_SAMPLES:-64}" -p steps "${STEPS:-64}" \
                -p temperature "${TEMPERATURE:-1.0}" -y "words_temperature: ${WORDS_TEMPERATURE:-3.0}" -p repair_rounds "${REPAIR_ROUNDS:-4}" \
                -y "modes: ${MODES:-[exact, letters, words]}" -y "judge_data: ${JUDGE_DATA:-wiki-bytes}" \
                -p device "${DEVICE:-auto}" -p seed "${SEED:-0}" ;;
    *) echo "unknown step '$step': use data, pretrain, finetune or sample" >&2; exit 2 ;;
  esac
done
