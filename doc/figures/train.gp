# train.gp -- training curves from the log of dim train (doc/32-train.nw): the bounds and the
# prior term against the epoch. make doc draws experiments/results/RUN/train.tsv with
#
#   gnuplot -e "data='experiments/results/RUN/train.tsv'; out='build/doc/figures/RUN-train.pdf'" \
#           doc/figures/train.gp
#
# (an out ending in .svg gives SVG, for make doc-html).
# The log's columns are step, epoch, loss, global_mi, local_mi, prior, prior_accuracy and
# images_per_s, named in its header line; a term that is off is nan in every row, and is left
# out of the plot.

if (!exists("data")) { print "train.gp: set data='DIR/train.tsv'"; exit status 1 }
if (!exists("out")) out = 'train.pdf'

set datafile separator "\t"
set datafile missing "nan"
if (strlen(out) > 4 && out[strlen(out) - 3:] eq ".svg") {
    set terminal svg size 900, 370 font "Helvetica,11" background "white"
} else {
    set terminal pdfcairo size 16cm, 6.5cm font "Helvetica,9"
}
set output out

# A column is plotted when some row has a number in it.
has(col) = (system(sprintf("awk -F '\t' 'NR > 1 && $%d != \"nan\" && $%d != \"\" { found = 1 } END { print found + 0 }' '%s'", col, col, data)) + 0)

set multiplot layout 1, 2
set xlabel "epoch"
set grid ytics lc rgb "#e0e0e0"
set key bottom right font ",8"

set title "the bounds (nats, or the JSD estimate)"
set ylabel "estimate"
if (has(4) && has(5)) {
    plot data using 2:5 with lines lw 1.5 lc rgb "#08519c" title "local", \
         data using 2:4 with lines lw 1.5 lc rgb "#d94801" title "global"
} else { if (has(5)) {
    plot data using 2:5 with lines lw 1.5 lc rgb "#08519c" title "local"
} else { if (has(4)) {
    plot data using 2:4 with lines lw 1.5 lc rgb "#d94801" title "global"
} else {
    plot data using 2:3 with lines lw 1.5 lc rgb "#333333" title "loss"
} } }

set title "prior matching (Eq. 7)"
set ylabel ""
if (has(6)) {
    plot data using 2:6 with lines lw 1.5 lc rgb "#cb181d" title "D (discriminator's objective)", \
         data using 2:7 with lines lw 1.5 lc rgb "#54278f" title "discriminator's accuracy"
} else {
    plot data using 2:3 with lines lw 1.5 lc rgb "#333333" title "loss (no prior term)"
}
unset multiplot
set output
