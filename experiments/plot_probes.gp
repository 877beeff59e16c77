# Probe accuracy by layer: the trained encoder beside the raw pixels and a random encoder.
#   gnuplot -e "table='DIR/probes.tsv'; out='PREFIX'" experiments/plot_probes.gp
if (!exists("table")) table = 'probes.tsv'
if (!exists("out")) out = 'probes'
set datafile separator "\t"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
set yrange [0.5:1]
set ylabel "test accuracy"
set title "Probes on frozen features"
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 800,500 } else { set terminal svg size 800,500 }
  set output out.".".fmt
  plot table using "raw_pixels":xticlabels(stringcolumn(1)." ".stringcolumn(2)) title "raw pixels", \
       "" using "random_encoder" title "random encoder", \
       "" using "dim" title "DIM"
}
