#!/usr/bin/env bash
# The longer run of issue 5, in the style of the paper's Table 1: DIM(G), DIM(L) with JSD and
# DIM(L) with infoNCE, each trained for EPOCHS epochs on Fashion-MNIST from the same seed, then
# probed (linear and MLP) on conv, fc and y of the frozen encoder.
#
#   DIM=build/dim OUT=build/table1 EPOCHS=10 JOBS=3 THREADS=1 experiments/table1.sh
#
# JOBS runs train side by side, THREADS OpenMP threads each: on 2 cores, three runs of one
# thread keep both cores busier than one run of two (small steps parallelise imperfectly).
# Each run leaves OUT/NAME/{train.tsv,model.ckpt,eval.tsv,train.log,eval.log}, the baselines
# OUT/baselines/{raw,random}.{tsv,log}; the small files are what experiments/results/table1/
# keeps (the 102 MB checkpoints are not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
DIM=${DIM:-build/dim}
OUT=${OUT:-build/table1}
EPOCHS=${EPOCHS:-10}
JOBS=${JOBS:-3}
THREADS=${THREADS:-1}
DATA=${DATA:-fashion-mnist}
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

# name, then the options that make it; DIM(G) uses the paper's global weights (alpha 1, gamma 1).
configs=(
  "dim-g          --preset dim-g --estimator jsd"
  "dim-l-jsd      --preset dim-l --estimator jsd"
  "dim-l-infonce  --preset dim-l --estimator infonce"
)

one_run() {
  local name=$1; shift
  local dir="$OUT/$name"
  mkdir -p "$dir"
  echo "$DIM train --data $DATA $* --epochs $EPOCHS --threads $THREADS --out $dir" > "$dir/command"
  "$DIM" train --data "$DATA" "$@" --epochs "$EPOCHS" --threads "$THREADS" --out "$dir" \
    > "$dir/train.log" 2>&1
  echo "$DIM eval --ckpt $dir/model.ckpt --probes linear,mlp --threads $THREADS" \
       "--tsv $dir/eval.tsv" >> "$dir/command"
  "$DIM" eval --ckpt "$dir/model.ckpt" --probes linear,mlp --threads "$THREADS" \
    --tsv "$dir/eval.tsv" > "$dir/eval.log" 2>&1
  echo "table1: $name done"
}

running=0
for c in "${configs[@]}"; do
  # shellcheck disable=SC2086  # the options are meant to split
  one_run $c &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

# The two baselines of the table, measured with the same probes: the raw pixels, and the randomly
# initialised encoder every run above started from (seed 0).
mkdir -p "$OUT/baselines"
: > "$OUT/baselines/command"
for b in raw random; do
  echo "$DIM eval --baseline $b --data $DATA --probes linear,mlp --threads $THREADS" \
       "--tsv $OUT/baselines/$b.tsv" >> "$OUT/baselines/command"
  "$DIM" eval --baseline "$b" --data "$DATA" --probes linear,mlp --threads "$THREADS" \
    --tsv "$OUT/baselines/$b.tsv" > "$OUT/baselines/$b.log" 2>&1
done

# How the book's table and bars name each model: the only place that maps run names to labels.
label_of() {
  case $1 in
    dim-g) echo "DIM(G)" ;;
    dim-l-jsd) echo "DIM(L), JSD" ;;
    dim-l-infonce) echo "DIM(L), infoNCE" ;;
    *) echo "$1" ;;
  esac
}

# One table in the shape of the paper's Table 1: a row per model, its label, the epochs its
# encoder was trained for (from eval.log: a run stopped early is evaluated from its last
# checkpoint), then a column per layer and probe.
{
  printf 'model\tlabel\tepochs'
  for p in linear mlp; do for l in conv fc y; do printf '\t%s_%s' "$l" "$p"; done; done
  printf '\n'
  for c in "${configs[@]}"; do
    set -- $c
    epochs=$(sed -n 's/.*, \([0-9]*\) of [0-9]* epochs,.*/\1/p' "$OUT/$1/eval.log" | head -n 1)
    awk -F '\t' -v name="$1" -v label="$(label_of "$1")" -v epochs="$epochs" \
      'NR > 1 { acc[$1 "_" $2] = $3 }
      END { printf "%s\t%s\t%s", name, label, epochs
            split("linear mlp", P, " "); split("conv fc y", L, " ")
            for (p = 1; p <= 2; p++) for (l = 1; l <= 3; l++) printf "\t%s", acc[L[l] "_" P[p]]
            printf "\n" }' "$OUT/$1/eval.tsv"
  done
} > "$OUT/table1.tsv"
column -t -s "$(printf '\t')" "$OUT/table1.tsv"
