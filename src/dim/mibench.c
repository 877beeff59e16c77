/* mibench.c -- the estimator lab: MI bounds trained on correlated Gaussians of known MI.
 * Tangled from doc/40-estimator-lab.nw: edit the book, not this file. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dim.h"

double dim_gaussian_mi(int d, double rho) { return -0.5 * d * log1p(-rho * rho); }

double dim_gaussian_rho(int d, double mi) { return sqrt(-expm1(-2.0 * mi / d)); }

void dim_gaussian_sample(ag_rng *rng, int n, int d, double rho, ag_real *x, ag_real *y)
{
    double noise = sqrt(1.0 - rho * rho);
    for (long k = 0; k < (long)n * d; k++) {
        double signal = ag_rng_normal(rng), independent = ag_rng_normal(rng);
        x[k] = (ag_real)signal;
        y[k] = (ag_real)(rho * signal + noise * independent);
    }
}
typedef struct bench_critic {
    dim_mibench_critic kind;
    dim_linear g[3], h[3];                  /* separable: g(x), h(y), D -> H -> H -> E */
    dim_linear from_x, from_y, hidden, out; /* concat: [x, y] -> H -> H -> 1 */
} bench_critic;

static void critic_init(bench_critic *c, ag_params *ps, const dim_mibench_config *cfg,
                        ag_rng *rng)
{
    int d = cfg->dim, width = cfg->hidden;
    memset(c, 0, sizeof *c);
    c->kind = cfg->critic;
    if (c->kind == DIM_CRITIC_SEPARABLE) {
        const int in[3] = {d, width, width}, out[3] = {width, width, cfg->embed};
        for (int k = 0; k < 3; k++) {
            char name[32];
            snprintf(name, sizeof name, "critic.g.l%d", k);
            dim_linear_init(&c->g[k], ps, name, in[k], out[k], rng);
            snprintf(name, sizeof name, "critic.h.l%d", k);
            dim_linear_init(&c->h[k], ps, name, in[k], out[k], rng);
        }
    } else {
        dim_linear_init_block(&c->from_x, ps, "critic.l0.x", d, width, 2 * d, 1, rng);
        dim_linear_init_block(&c->from_y, ps, "critic.l0.y", d, width, 2 * d, 0, rng);
        dim_linear_init(&c->hidden, ps, "critic.l1", width, width, rng);
        dim_linear_init(&c->out, ps, "critic.l2", width, 1, rng);
    }
}

static ag_tensor *perceptron(ag_tape *t, const dim_linear *layers /* [3] */, ag_tensor *x)
{
    x = ag_relu(t, dim_linear_forward(t, &layers[0], x));
    x = ag_relu(t, dim_linear_forward(t, &layers[1], x));
    return dim_linear_forward(t, &layers[2], x);
}

/* scores [1, N, N] with scores[0, i, j] = T(x_j, y_i), for x, y [N, D]. */
static ag_tensor *critic_scores(ag_tape *t, const bench_critic *c, ag_tensor *x, ag_tensor *y)
{
    int n = x->shape[0];
    if (c->kind == DIM_CRITIC_SEPARABLE) {
        ag_tensor *gx = perceptron(t, c->g, x);                      /* [N, E], row j = g(x_j) */
        ag_tensor *hy = perceptron(t, c->h, y);                      /* [N, E], row i = h(y_i) */
        return ag_reshape(t, ag_matmul(t, hy, gx, 0, 1), AG_SHAPE(1, n, n));
    }
    int width = c->hidden.weight->shape[0];
    ag_tensor *from_x = ag_reshape(t, dim_linear_forward(t, &c->from_x, x),
                                   AG_SHAPE(1, n, width));           /* [1, N, H]: along j */
    ag_tensor *from_y = ag_reshape(t, dim_linear_forward(t, &c->from_y, y),
                                   AG_SHAPE(n, 1, width));           /* [N, 1, H]: along i */
    ag_tensor *h = ag_relu(t, ag_add(t, from_y, from_x));            /* [N, N, H]: [i, j] */
    h = ag_relu(t, dim_linear_forward(t, &c->hidden, ag_reshape(t, h, AG_SHAPE(n * n, width))));
    return ag_reshape(t, dim_linear_forward(t, &c->out, h),
                      AG_SHAPE(1, n, n));                            /* [N*N, 1] -> [1, N, N] */
}
static const char *const default_estimators[] = {"infonce", "dv", "nwj", "mine", "smile", "jsd"};

void dim_mibench_defaults(dim_mibench_config *c)
{
    memset(c, 0, sizeof *c);
    c->dim = 20;
    c->batch = 64;
    c->hidden = 256;
    c->embed = 32;
    c->nlevels = 5;
    for (int k = 0; k < c->nlevels; k++) c->levels[k] = 2.0 * (k + 1);
    c->steps_per_level = 4000;
    c->lr = 5e-4;
    c->critic = DIM_CRITIC_SEPARABLE;
    c->seed = 0;
    c->nestimators = (int)(sizeof default_estimators / sizeof default_estimators[0]);
    for (int e = 0; e < c->nestimators; e++) c->estimators[e] = default_estimators[e];
    dim_bound_state state;
    dim_bound_state_init(&state);
    c->smile_tau = state.smile_tau;
    c->mine_rate = state.mine_rate;
    c->threads = 0;
    c->progress = NULL;
}

void dim_mibench_short(dim_mibench_config *c)
{
    c->nlevels = 2;
    c->levels[0] = 2;
    c->levels[1] = 8;
    c->steps_per_level = 300;
}
static double jsd_as_nwj_on_critic_plus_one(const ag_tensor *scores)
{
    return dim_nwj_value(scores, 1.0);
}

static const struct {
    const char *estimator;
    double (*report)(const ag_tensor *scores); /* the figure reported for the scores of a step */
} reported_otherwise[] = {
    {"jsd", jsd_as_nwj_on_critic_plus_one},
};

/* The reporting function of an estimator, or NULL: it reports its bound's value. */
static double (*report_of(const char *estimator))(const ag_tensor *)
{
    for (size_t k = 0; k < sizeof reported_otherwise / sizeof reported_otherwise[0]; k++)
        if (strcmp(reported_otherwise[k].estimator, estimator) == 0)
            return reported_otherwise[k].report;
    return NULL;
}
typedef struct bench_progress {
    FILE *out;              /* NULL: silent */
    long done, total;       /* steps of all estimators */
    int tty, tenths;        /* rewrite in place; tenths printed so far (not a terminal) */
    double start, printed;  /* seconds */
} bench_progress;

static void progress_print(bench_progress *p, double now)
{
    double elapsed = now - p->start, share = (double)p->done / (double)p->total;
    fprintf(p->out, "%smi-bench: %ld of %ld steps (%3.0f%%), %.0f s, about %.0f s left%s",
            p->tty ? "\r" : "", p->done, p->total, 100 * share, elapsed,
            share > 0 ? elapsed * (1 - share) / share : 0.0, p->tty ? "   " : "\n");
    fflush(p->out);
    p->printed = now;
}

static void progress_start(bench_progress *p, FILE *out, long total)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->total = total;
    p->tty = out != NULL && isatty(fileno(out));
    p->start = p->printed = ag_seconds();
}

/* One step of one estimator done; called by every thread, each with its own count of the
 * steps it has not yet reported. */
static void progress_tick(bench_progress *p, long *pending)
{
    enum { BATCHED = 100 };
    if (p->out == NULL || ++*pending < BATCHED) return;
#pragma omp critical(dim_mibench_progress)
    {
        p->done += *pending;
        double now = ag_seconds();
        int tenths = (int)(10 * p->done / p->total);
        if (p->tty ? now - p->printed >= 1.0 : tenths > p->tenths) {
            p->tenths = tenths;
            progress_print(p, now);
        }
    }
    *pending = 0;
}

static double progress_end(bench_progress *p)
{
    double now = ag_seconds();
    if (p->out != NULL) {
        p->done = p->total;
        fprintf(p->out, "%smi-bench: %ld steps in %.1f s\n", p->tty ? "\r" : "", p->total,
                now - p->start);
        fflush(p->out);
    }
    return now - p->start;
}
static void train_estimator(const dim_mibench_config *c, int e, double *estimates /* [nsteps] */,
                            bench_progress *progress)
{
    const dim_bound *bound = dim_bound_find(c->estimators[e]);
    double (*report)(const ag_tensor *) = report_of(c->estimators[e]);
    ag_rng seeds, data_rng, init_rng;
    ag_rng_seed(&seeds, c->seed);
    ag_rng_seed(&data_rng, ag_rng_next(&seeds));
    ag_rng_seed(&init_rng, ag_rng_next(&seeds));

    ag_params params = {0};
    bench_critic critic;
    critic_init(&critic, &params, c, &init_rng);
    ag_adam *adam = ag_adam_new(&params, c->lr, 0.9, 0.999, 1e-8);
    dim_bound_state state;
    dim_bound_state_init(&state);
    state.smile_tau = c->smile_tau;
    state.mine_rate = c->mine_rate;
    ag_tape *t = ag_tape_new_growing((size_t)1 << 32);

    long step = 0, unreported = 0;
    for (int level = 0; level < c->nlevels; level++) {
        double rho = dim_gaussian_rho(c->dim, c->levels[level]);
        for (int s = 0; s < c->steps_per_level; s++, step++) {
            ag_tape_reset(t);
            ag_tensor *x = ag_tensor_new(t, AG_SHAPE(c->batch, c->dim)); /* [N, D] */
            ag_tensor *y = ag_tensor_new(t, AG_SHAPE(c->batch, c->dim)); /* [N, D] */
            dim_gaussian_sample(&data_rng, c->batch, c->dim, rho, x->value, y->value);
            ag_tensor *scores = critic_scores(t, &critic, x, y);          /* [1, N, N] */
            ag_tensor *estimate = bound->estimate(t, scores, &state);
            estimates[step] = report ? report(scores) : (double)estimate->value[0];
            ag_params_zero_grad(&params);
            ag_backward(t, ag_neg(t, estimate));
            ag_adam_step(adam);
            progress_tick(progress, &unreported);
        }
    }
    ag_tape_free(t);
    ag_adam_free(adam);
    ag_params_free(&params);
}
static void check_config(const dim_mibench_config *c)
{
    if (c->dim < 1 || c->batch < 2 || c->hidden < 1 || c->embed < 1 || c->steps_per_level < 1
        || c->nlevels < 1 || c->nlevels > DIM_MIBENCH_MAX_LEVELS || c->nestimators < 1
        || c->nestimators > DIM_MIBENCH_MAX_ESTIMATORS || !(c->lr > 0))
        ag_fatal("dim_mibench_run: configuration out of range (d %d, batch %d, hidden %d, "
                 "embed %d, %d levels of %d steps, %d estimators, lr %g)", c->dim, c->batch,
                 c->hidden, c->embed, c->nlevels, c->steps_per_level, c->nestimators, c->lr);
    for (int k = 0; k < c->nlevels; k++)
        if (!(c->levels[k] >= 0) || !isfinite(c->levels[k]))
            ag_fatal("dim_mibench_run: level %d has true MI %g; it must be finite and >= 0",
                     k, c->levels[k]);
    for (int e = 0; e < c->nestimators; e++)
        if (dim_bound_find(c->estimators[e]) == NULL)
            ag_fatal("dim_mibench_run: no bound named \"%s\" in dim_bounds", c->estimators[e]);
}

void dim_mibench_run(const dim_mibench_config *c, dim_mibench_result *r)
{
    check_config(c);
    r->nsteps = (long)c->nlevels * c->steps_per_level;
    r->true_mi = malloc((size_t)r->nsteps * sizeof *r->true_mi);
    r->estimate = malloc((size_t)r->nsteps * c->nestimators * sizeof *r->estimate);
    if (r->true_mi == NULL || r->estimate == NULL)
        ag_fatal("dim_mibench_run: out of memory for %ld steps", r->nsteps);
    for (long step = 0; step < r->nsteps; step++)
        r->true_mi[step] = c->levels[step / c->steps_per_level];

    bench_progress progress;
    progress_start(&progress, c->progress, r->nsteps * c->nestimators);
    int threads = c->threads > 0 ? c->threads : omp_get_max_threads();
    if (threads > c->nestimators) threads = c->nestimators;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int e = 0; e < c->nestimators; e++) {
        omp_set_num_threads(1); /* this thread's own setting: its operations run on it alone */
        train_estimator(c, e, r->estimate + (long)e * r->nsteps, &progress);
    }
    r->seconds = progress_end(&progress);
}

void dim_mibench_free(dim_mibench_result *r)
{
    free(r->true_mi);
    free(r->estimate);
    r->true_mi = r->estimate = NULL;
    r->nsteps = 0;
}
static void write_number(FILE *out, double v)
{
    if (isnan(v)) fputs("nan", out);
    else if (isinf(v)) fputs(v > 0 ? "inf" : "-inf", out);
    else fprintf(out, "%.4f", v);
}

void dim_mibench_write_steps(FILE *out, const dim_mibench_config *c, const dim_mibench_result *r)
{
    fputs("step\ttrue_mi", out);
    for (int e = 0; e < c->nestimators; e++) fprintf(out, "\t%s", c->estimators[e]);
    fputc('\n', out);
    for (long step = 0; step < r->nsteps; step++) {
        fprintf(out, "%ld\t%g", step + 1, r->true_mi[step]);
        for (int e = 0; e < c->nestimators; e++) {
            fputc('\t', out);
            write_number(out, r->estimate[(long)e * r->nsteps + step]);
        }
        fputc('\n', out);
    }
}

int dim_mibench_window(const dim_mibench_config *c)
{
    int window = c->steps_per_level / 4;
    return window > 1000 ? 1000 : window < 1 ? 1 : window;
}

void dim_mibench_level_stats(const dim_mibench_config *c, const dim_mibench_result *r, int e,
                             int level, double *mean, double *std)
{
    int window = dim_mibench_window(c);
    const double *v = r->estimate + (long)e * r->nsteps
                      + (long)(level + 1) * c->steps_per_level - window;
    double sum = 0, squares = 0;
    for (int k = 0; k < window; k++) sum += v[k];
    *mean = sum / window;
    for (int k = 0; k < window; k++) squares += (v[k] - *mean) * (v[k] - *mean);
    *std = sqrt(squares / window);
}

void dim_mibench_write_summary(FILE *out, const dim_mibench_config *c,
                               const dim_mibench_result *r)
{
    fputs("estimator\ttrue_mi\tmean\tstd\n", out);
    for (int e = 0; e < c->nestimators; e++)
        for (int level = 0; level < c->nlevels; level++) {
            double mean, std;
            dim_mibench_level_stats(c, r, e, level, &mean, &std);
            fprintf(out, "%s\t%g\t", c->estimators[e], c->levels[level]);
            write_number(out, mean);
            fputc('\t', out);
            write_number(out, std);
            fputc('\n', out);
        }
}
