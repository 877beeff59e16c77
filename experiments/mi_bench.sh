#!/bin/sh
# mi_bench.sh -- the estimator lab's default run (doc/40-estimator-lab.nw, issue 4):
# dim mi-bench with the protocol of Poole et al. (separable critic, all six estimators,
# 2..10 nats, 4000 steps each), then the results that are committed:
#
#   experiments/results/mi_bench/mi_bench_summary.tsv       the summary (estimator, true_mi, mean, std)
#   experiments/results/mi_bench/mi_bench_steps_every10.tsv every 10th row of the per-step TSV
#   experiments/results/mi_bench/mi_bench.png, .svg          the figure, drawn from every step
#   experiments/results/mi_bench/run.txt                     what ran, where, and how long
#
# Usage: experiments/mi_bench.sh [more dim mi-bench options, e.g. --critic concat]
# Environment: DIM (the program, default build/dim), WORK (the full output, default
# build/mi_bench), RESULTS (default experiments/results/mi_bench).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DIM=${DIM:-build/dim}
WORK=${WORK:-build/mi_bench}
RESULTS=${RESULTS:-experiments/results/mi_bench}

if [ ! -x "$DIM" ]; then
    echo "mi_bench.sh: $DIM is not built; running make" >&2
    make
fi
mkdir -p "$WORK" "$RESULTS"

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo unknown)
start=$(date +%s)
"$DIM" mi-bench --out "$WORK" --plot-script experiments/mi_bench.gp "$@" > "$WORK/mi_bench_summary.tsv"
end=$(date +%s)

cp "$WORK/mi_bench_summary.tsv" "$RESULTS/"
awk -F '\t' 'NR == 1 || $1 % 10 == 0' "$WORK/mi_bench_steps.tsv" > "$RESULTS/mi_bench_steps_every10.tsv"
for f in mi_bench.png mi_bench.svg; do
    if [ -f "$WORK/$f" ]; then cp "$WORK/$f" "$RESULTS/"; fi
done
{
    echo "command: $DIM mi-bench --out $WORK $*"
    echo "commit:  $(git describe --always --dirty 2>/dev/null || echo unknown)"
    echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')"
    echo "threads: ${OMP_NUM_THREADS:-all cores}"
    echo "seconds: $((end - start)) (wall clock)"
    echo "load:    $load_before before, $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null || echo unknown) after (1, 5, 15 min)"
} > "$RESULTS/run.txt"

cat "$RESULTS/mi_bench_summary.tsv"
echo "mi_bench.sh: $((end - start)) s; results in $RESULTS" >&2
