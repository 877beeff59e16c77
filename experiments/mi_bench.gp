# mi_bench.gp -- the estimator lab's figure (doc/40-estimator-lab.nw), in the style of
# Poole et al. (2019), Figure 2: one panel per estimator, showing the estimate at each step
# (light), its moving average over about 100 steps (dark), the true-MI staircase (black) and,
# on infoNCE's panel, its ceiling log(batch) (dashed). Curves are drawn from at most about
# 2500 rows (every k-th row of a longer table), so that the SVG stays small.
#
#   gnuplot -e "steps='DIR/mi_bench_steps.tsv'; out='DIR/mi_bench'; batch=64" experiments/mi_bench.gp
#
# writes out.png and out.svg. dim mi-bench runs it itself after a run. The TSV's columns are
# step, true_mi, then one estimate per estimator, named in the header line; any subset of
# estimators and any schedule works. A subsampled TSV (every k-th step) works too: the
# moving average is weighted by the gap between rows.

if (!exists("steps")) steps = 'experiments/results/mi_bench/mi_bench_steps_every10.tsv'
if (!exists("out")) out = 'mi_bench'
if (!exists("batch")) batch = 64
if (!exists("steps_per_level")) steps_per_level = 4000

header = system(sprintf("head -n 1 '%s'", steps))
n = words(header) - 2
if (n < 1) { print sprintf("mi_bench.gp: no estimator columns in %s", steps); exit status 1 }
ceiling = log(batch)

stats steps using 1:2 nooutput
last_step = STATS_max_x
every_k = STATS_records > 2500 ? int(ceil(STATS_records / 2500.0)) : 1
top = STATS_max_y + 4
levels_max = STATS_max_y

title_of(name) = name eq 'infonce' ? 'infoNCE' : \
                 name eq 'dv' ? 'DV' : \
                 name eq 'nwj' ? 'NWJ' : \
                 name eq 'mine' ? 'MINE' : \
                 name eq 'smile' ? sprintf('SMILE ({/Symbol t} = 5)') : \
                 name eq 'jsd' ? 'JSD (as NWJ on T + 1)' : name
# light and dark shades per panel, in the order of the columns
light(i) = word("#9ecae1 #fdae6b #a1d99b #fc9272 #bcbddc #fbb4c4 #9ecae1 #fdae6b", (i - 1) % 8 + 1)
dark(i)  = word("#08519c #d94801 #006d2c #cb181d #54278f #ae017e #08519c #d94801", (i - 1) % 8 + 1)

# The moving average: exponential, time constant 100 steps, skipping values that are not finite.
tau = 100.0
finite(v) = (v == v) && abs(v) < 1e30
smooth_next(step, v) = (gap = step - prev, prev = step, \
    avg = finite(v) ? (avg != avg ? v : avg + (1 - exp(-gap / tau)) * (v - avg)) : avg, avg)

rows = n <= 3 ? 1 : 2
cols = int(ceil(n / real(rows)))

do for [format in "png svg"] {
    if (format eq "png") {
        if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
            set terminal pngcairo size 420 * cols, 330 * rows + 40 font "sans,10"
        } else {
            set terminal png size 420 * cols, 330 * rows + 40
        }
    } else {
        set terminal svg size 420 * cols, 330 * rows + 40 font "sans,10" background "white"
    }
    set output sprintf("%s.%s", out, format)
    set multiplot layout rows, cols \
        title sprintf("Estimates of I(X;Y), X, Y in R^{20} correlated Gaussians, batch %d", batch)
    set xrange [0:last_step]
    set yrange [-1:top]
    set xtics steps_per_level format "%.0s%c"
    set mxtics 1
    set ytics 2
    set grid ytics lc rgb "#e0e0e0"
    set key top left box opaque samplen 2 font ",8"
    set xlabel "step"
    set ylabel "nats"
    do for [i = 1:n] {
        name = word(header, i + 2)
        set title title_of(name)
        prev = 0
        avg = NaN
        if (name eq 'infonce') {
            plot steps every every_k using 1:(column(i + 2)) with lines lw 0.5 lc rgb light(i) notitle, \
                 '' every every_k using 1:(smooth_next($1, column(i + 2))) with lines lw 2 lc rgb dark(i) \
                    title "estimate", \
                 '' every every_k using 1:2 with lines lw 1.5 lc rgb "black" title "true MI", \
                 ceiling with lines dt 2 lw 1.5 lc rgb "#555555" title sprintf("log %d", batch)
        } else {
            plot steps every every_k using 1:(column(i + 2)) with lines lw 0.5 lc rgb light(i) notitle, \
                 '' every every_k using 1:(smooth_next($1, column(i + 2))) with lines lw 2 lc rgb dark(i) \
                    title "estimate", \
                 '' every every_k using 1:2 with lines lw 1.5 lc rgb "black" title "true MI"
        }
    }
    unset multiplot
    set output
}
