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
echo "== dim train --data $DATA --preset dim-l --estimator infonce --epochs $EPOCHS"
"$DIM" train --data "$DATA" --preset dim-l --estimator infonce --epochs "$EPOCHS" --out "$OUT/run"
echo "== dim eval: the trained encoder, the raw pixels and a random encoder ($PROBES probes)"
"$DIM" eval --ckpt "$OUT/run/model.ckpt" --probes "$PROBES" --tsv "$OUT/dim.tsv"
"$DIM" eval --baseline raw --data "$DATA" --probes "$PROBES" --tsv "$OUT/raw.tsv"
"$DIM" eval --baseline random --data "$DATA" --probes "$PROBES" --tsv "$OUT/random.tsv"

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
