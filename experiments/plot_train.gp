# Training curves of a dim train run: the MI bounds and the prior term against the step.
#   gnuplot -e "run='DIR/train.tsv'; out='PREFIX'" experiments/plot_train.gp
if (!exists("run")) run = 'run/train.tsv'
if (!exists("out")) out = 'training'
set datafile separator "\t"
set key top left
set grid
set xlabel "step"
set ylabel "nats"
set title "DIM training: the bounds (to maximise) and the prior term"
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 900,540 } else { set terminal svg size 900,540 }
  set output out.".".fmt
  plot run using "step":"local_mi" with lines lw 2 title "local MI bound", \
       run using "step":"global_mi" with lines lw 2 title "global MI bound", \
       run using "step":"prior" with lines lw 2 title "prior D^ (discriminator's objective)"
}
