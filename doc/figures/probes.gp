# probes.gp -- test accuracy of the classifiers trained on frozen features, one bar per layer
# and probe, from the table of dim eval --tsv (doc/33-eval.nw). make doc draws
# experiments/results/RUN/eval.tsv with
#
#   gnuplot -e "data='experiments/results/RUN/eval.tsv'; out='build/doc/figures/RUN-probes.pdf'" \
#           doc/figures/probes.gp
#
# (an out ending in .svg gives SVG, for make doc-html).
# The table's columns are layer, probe and accuracy (a fraction), with a header line.

if (!exists("data")) { print "probes.gp: set data='DIR/eval.tsv'"; exit status 1 }
if (!exists("out")) out = 'probes.pdf'

set datafile separator "\t"
if (strlen(out) > 4 && out[strlen(out) - 3:] eq ".svg") {
    set terminal svg size 680, 370 font "Helvetica,11" background "white"
} else {
    set terminal pdfcairo size 12cm, 6.5cm font "Helvetica,9"
}
set output out

probe_colour(name) = name eq "linear" ? 0x08519c : name eq "mlp" ? 0xd94801 : 0x006d2c
set style fill solid 0.8 border -1
set boxwidth 0.7
set yrange [0:100]
set ylabel "test accuracy (%)"
set grid ytics lc rgb "#e0e0e0"
set xtics nomirror
unset key
plot data every ::1 using 0:($3 * 100):(probe_colour(strcol(2))): \
          xticlabels(strcol(1) . "\n" . strcol(2)) with boxes lc rgb variable, \
     '' every ::1 using 0:($3 * 100):(sprintf("%.1f", $3 * 100)) with labels offset 0, 0.7 \
          font ",8"
set output
