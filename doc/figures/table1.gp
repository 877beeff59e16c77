# table1.gp -- the paper's Table 1 in our setting, as bars: test accuracy of the linear and the
# MLP probe on conv, fc and y, for each model of experiments/table1.sh. make doc draws
# experiments/results/table1/table1.tsv with
#
#   gnuplot -e "data='experiments/results/table1/table1.tsv'; out='build/doc/figures/table1.pdf'" \
#           doc/figures/table1.gp
#
# (an out ending in .svg gives SVG, for make doc-html).
# The table's columns are model, label (what the bars are called), epochs, then conv_linear,
# fc_linear, y_linear, conv_mlp, fc_mlp, y_mlp (fractions), with a header line.

if (!exists("data")) { print "table1.gp: set data='experiments/results/table1/table1.tsv'"; exit status 1 }
if (!exists("out")) out = 'table1.pdf'

set datafile separator "\t"
if (strlen(out) > 4 && out[strlen(out) - 3:] eq ".svg") {
    set terminal svg size 900, 370 font "Helvetica,11" background "white"
} else {
    set terminal pdfcairo size 16cm, 6.5cm font "Helvetica,9"
}
set output out

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [60:100]
set ylabel "test accuracy (%)"
set grid ytics lc rgb "#e0e0e0"
set xtics nomirror
set key top left font ",8" maxrows 1

set multiplot layout 1, 2
set title "linear probe"
label(name, epochs) = name . sprintf("\n%d epochs", epochs)
plot data every ::1 using ($4 * 100):xticlabels(label(strcol(2), $3)) lc rgb "#08519c" title "conv", \
     '' every ::1 using ($5 * 100) lc rgb "#d94801" title "fc", \
     '' every ::1 using ($6 * 100) lc rgb "#006d2c" title "y"
set title "MLP probe (200 hidden, batch norm, dropout 0.1)"
set ylabel ""
plot data every ::1 using ($7 * 100):xticlabels(label(strcol(2), $3)) lc rgb "#08519c" title "conv", \
     '' every ::1 using ($8 * 100) lc rgb "#d94801" title "fc", \
     '' every ::1 using ($9 * 100) lc rgb "#006d2c" title "y"
unset multiplot
set output
