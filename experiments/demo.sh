#!/usr/bin/env bash
# make demo: train DIM(L) with infoNCE on Fashion-MNIST (or the built-in shapes where the dataset
# is not installed), evaluate the frozen features with linear probes beside two baselines measured
# in the same way (the raw pixels, and a randomly initialised encoder), and draw the plots.
#
#   DIM=build/dim OUT=build/demo EPOCHS=2 PROBES=linear [DATA=SPEC] experiments/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DIM=${DIM:-build/dim}
OUT=${OUT:-build/demo}
EPOCHS=${EPOCHS:-2}
PROBES=${PROBES:-linear}
# Idle OpenMP threads spin by default; on a shared machine that makes the many small parallel
# steps of training and probing 30 to 100 times slower. Waiting passively costs little here.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

if [ -n "${DATA:-}" ]; then
  :  # the caller chose the data spec
elif [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  DATA=fashion-mnist
else
  echo "demo: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist);" \
       "running on the built-in shapes dataset instead" >&2
  DATA=shapes
fi

rm -rf "$OUT"   # the demo's own scratch folder under build/
mkdir -p "$OUT"
# The dim eval of one contender, its table to OUT/NAME.tsv and its log to OUT/NAME.log: name,
# threads, then what to evaluate. eval_command only sets the command line, run_eval, so that a
# caller can also start it as a job of its own whose process is dim itself (and can be stopped).
eval_command() {
  local name=$1 threads=$2; shift 2
  run_eval=("$DIM" eval "$@" --probes "$PROBES" --no-mi --threads "$threads"
            --tsv "$OUT/$name.tsv")
}
failed() { echo "demo: dim eval of the $1 features failed:" >&2; cat "$OUT/$1.log" >&2; exit 1; }
evaluate() {  # the same, in the foreground
  eval_command "$@"
  "${run_eval[@]}" > "$OUT/$1.log" 2>&1 || failed "$1"
}
cores=$(nproc 2>/dev/null || echo 1)

# The two baselines need no training, and training leaves part of the cores idle (its threads
# wait for each other at the end of every parallel step). Where the memory allows an evaluation
# beside training and then beside the trained encoder's (each holds the conv features of 70000
# images, 2.3 GB), the baselines start now, on one thread at the lowest priority, so that they
# take only the cycles training leaves; a probe's small steps use two threads poorly anyway. The
# numbers are the same bits whatever the threads. Otherwise everything runs in turn. The demo's
# table has no use for the I(X; Y) estimate, so it is skipped (dim eval without --no-mi gives it).
available_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
baselines=(random raw)
baseline_pids=()
if [ "${available_kib:-0}" -ge $((6 * 1024 * 1024)) ]; then
  echo "== dim eval: the raw pixels and a random encoder ($PROBES probes), beside training"
  for b in "${baselines[@]}"; do
    eval_command "$b" 1 --baseline "$b" --data "$DATA"
    nice -n 19 "${run_eval[@]}" > "$OUT/$b.log" 2>&1 &
    baseline_pids+=("$!")
  done
  # If anything fails, the baselines have nothing to stand beside: stop them too.
  trap 'kill "${baseline_pids[@]}" 2> /dev/null || true' EXIT
fi
echo "== dim train --data $DATA --preset dim-l --estimator infonce --epochs $EPOCHS"
"$DIM" train --data "$DATA" --preset dim-l --estimator infonce --epochs "$EPOCHS" --out "$OUT/run"
echo "== dim eval: the trained encoder ($PROBES probes)"
evaluate dim "$cores" --ckpt "$OUT/run/model.ckpt"
if [ "${#baseline_pids[@]}" -gt 0 ]; then
  for i in "${!baselines[@]}"; do wait "${baseline_pids[$i]}" || failed "${baselines[$i]}"; done
  trap - EXIT
else
  echo "== dim eval: the raw pixels and a random encoder ($PROBES probes)"
  for b in "${baselines[@]}"; do evaluate "$b" "$cores" --baseline "$b" --data "$DATA"; done
fi
grep -h "probe (" "$OUT/dim.log" "$OUT/raw.log" "$OUT/random.log" >&2

# One table: layer, probe, then the accuracy of each contender (raw pixels have one layer).
awk -F '\t' -v OFS='\t' '
  FNR == 1 { next }
  FILENAME ~ /raw.tsv$/    { raw[$2] = $3; next }
  FILENAME ~ /random.tsv$/ { rnd[$1 FS $2] = $3; next }
  { key = $1 FS $2; order[++n] = key; dim[key] = $3 }
  END {
    print "layer", "probe", "raw_pixels", "random_encoder", "dim"
    for (i = 1; i <= n; i++) { split(order[i], k, FS)
      print k[1], k[2], raw[k[2]], rnd[order[i]], dim[order[i]] }
  }' "$OUT/raw.tsv" "$OUT/random.tsv" "$OUT/dim.tsv" > "$OUT/probes.tsv"

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "run='$OUT/run/train.tsv'; out='$OUT/training'" experiments/plot_train.gp
  gnuplot -e "table='$OUT/probes.tsv'; out='$OUT/probes'" experiments/plot_probes.gp
  echo "demo: plots in $OUT/training.{png,svg} and $OUT/probes.{png,svg}"
else
  echo "demo: gnuplot is not installed (make deps); no plots" >&2
fi

echo
echo "Test accuracy of probes on frozen features ($DATA, $EPOCHS epochs of DIM(L) with infoNCE):"
awk -F '\t' '{ printf "%-6s %-7s %-11s %-15s %s\n", $1, $2, $3, $4, $5 }' "$OUT/probes.tsv"
