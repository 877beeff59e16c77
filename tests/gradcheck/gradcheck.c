/* gradcheck.c -- finite-difference checks of every operation, and two whole graphs.
 *
 *   gradcheck                      check every case of every op in ag_op_table, two small
 *                                  networks and the whole DIM objective (double build)
 *   gradcheck --dump FILE          write every case's forward output, for the precision check
 *   gradcheck --compare F D        the float build's dump F must agree with the double build's D
 *
 * The criterion: for each checked input element, with a the gradient from ag_backward_vjp and
 * n the central difference (L(x+h) - L(x-h)) / 2h, h = 1e-5, the error is
 * |a - n| / max(1, |n|): relative for large derivatives, absolute for small ones. An op passes
 * when every case's worst error is at most 1e-6. Inputs are rounded to float so that the float
 * and double builds see the same numbers. */
#include "gradcheck.h"
#include "dim_checks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { GC_ARENA = 64 << 20 };
static const double GC_STEP = 1e-5, GC_TOLERANCE = 1e-6, GC_PRECISION = 1e-5;

static const gc_case *const groups[] = {
    gc_cases_elementwise, gc_cases_linalg, gc_cases_reduce, gc_cases_shape, gc_cases_norm,
};
enum { NGROUPS = sizeof groups / sizeof groups[0] };

/* The inputs of one case, made outside the tape so that they survive its resets. */
typedef struct gc_inputs {
    ag_params store;
    ag_tensor *in[GC_MAX_INPUTS];
} gc_inputs;

static void make_inputs(const gc_case *c, gc_inputs *x, ag_rng *rng)
{
    memset(x, 0, sizeof *x);
    for (int k = 0; k < c->ninputs; k++) {
        char name[16];
        snprintf(name, sizeof name, "in%d", k);
        x->in[k] = (c->check_mask >> k & 1)
                       ? ag_param_new(&x->store, name, c->ndim[k], c->shape[k])
                       : ag_buffer_new(&x->store, name, c->ndim[k], c->shape[k]);
        for (long i = 0; i < x->in[k]->size; i++)
            x->in[k]->value[i] = (ag_real)(float)(c->lo + (c->hi - c->lo) * ag_rng_uniform(rng));
    }
    if (c->init) c->init(x->in, rng);
    for (int k = 0; k < c->ninputs; k++) /* the float build must see the very same inputs */
        for (long i = 0; i < x->in[k]->size; i++)
            x->in[k]->value[i] = (ag_real)(float)x->in[k]->value[i];
}

/* L = sum(out * w), accumulated in double. */
static double weighted_sum(const ag_tensor *out, const double *w)
{
    double L = 0;
    for (long i = 0; i < out->size; i++) L += (double)out->value[i] * w[i];
    return L;
}

static double loss_at(const gc_case *c, ag_tape *t, gc_inputs *x, const double *w)
{
    ag_tape_reset(t);
    return weighted_sum(c->apply(t, x->in), w);
}

/* The worst error of one case over every checked input element. */
static double check_case(const gc_case *c, ag_tape *t, uint64_t seed)
{
    ag_rng rng;
    ag_rng_seed(&rng, seed);
    gc_inputs x;
    make_inputs(c, &x, &rng);

    ag_tape_reset(t);
    ag_tensor *out = c->apply(t, x.in);
    double *w = malloc((size_t)out->size * sizeof *w);
    ag_real *seed_grad = malloc((size_t)out->size * sizeof *seed_grad);
    for (long i = 0; i < out->size; i++) {
        w[i] = (float)(2 * ag_rng_uniform(&rng) - 1);
        seed_grad[i] = (ag_real)w[i];
    }
    ag_params_zero_grad(&x.store);
    ag_backward_vjp(t, out, seed_grad);

    double worst = 0;
    for (int k = 0; k < c->ninputs; k++) {
        if (!(c->check_mask >> k & 1)) continue;
        ag_tensor *p = x.in[k];
        ag_real *analytic = malloc((size_t)p->size * sizeof *analytic);
        memcpy(analytic, p->grad, (size_t)p->size * sizeof *analytic);
        for (long i = 0; i < p->size; i++) {
            ag_real saved = p->value[i];
            p->value[i] = saved + (ag_real)GC_STEP;
            double plus = loss_at(c, t, &x, w);
            p->value[i] = saved - (ag_real)GC_STEP;
            double minus = loss_at(c, t, &x, w);
            p->value[i] = saved;
            double numeric = (plus - minus) / (2 * GC_STEP);
            double err = fabs((double)analytic[i] - numeric) / fmax(1.0, fabs(numeric));
            if (!(err <= worst)) worst = err; /* a NaN is the worst of all */
        }
        free(analytic);
    }
    free(w);
    free(seed_grad);
    ag_params_free(&x.store);
    return worst;
}

static int count_cases(const char *op)
{
    int n = 0;
    for (int g = 0; g < NGROUPS; g++)
        for (const gc_case *c = groups[g]; c->op; c++) n += strcmp(c->op, op) == 0;
    return n;
}

static int op_in_table(const char *op)
{
    for (int i = 0; i < ag_op_count; i++)
        if (strcmp(ag_op_table[i]->name, op) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Whole graphs: a small MLP and a small conv net, checked by a random directional derivative */
/* ------------------------------------------------------------------------------------------ */

typedef struct gc_graph {
    const char *name;
    void (*build)(ag_params *ps, ag_rng *rng);
    ag_tensor *(*loss)(ag_tape *t, ag_params *ps);
} gc_graph;

static void mlp_build(ag_params *ps, ag_rng *rng)
{
    ag_fill_normal(ag_param_new(ps, "w1", AG_SHAPE(8, 5)), rng, 0, 0.5);
    ag_fill_normal(ag_param_new(ps, "b1", AG_SHAPE(8)), rng, 0, 0.1);
    ag_fill_normal(ag_param_new(ps, "w2", AG_SHAPE(3, 8)), rng, 0, 0.5);
    ag_fill_normal(ag_param_new(ps, "b2", AG_SHAPE(3)), rng, 0, 0.1);
}

static ag_tensor *mlp_loss(ag_tape *t, ag_params *ps)
{
    static const int labels[6] = {0, 2, 1, 1, 0, 2};
    ag_rng rng;
    ag_rng_seed(&rng, 7);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(6, 5));
    ag_fill_uniform(x, &rng, -1, 1);
    ag_tensor *h = ag_tanh(t, ag_linear(t, x, ag_params_find(ps, "w1"), ag_params_find(ps, "b1")));
    ag_tensor *logits = ag_linear(t, h, ag_params_find(ps, "w2"), ag_params_find(ps, "b2"));
    return ag_cross_entropy(t, logits, labels);
}

static void conv_build(ag_params *ps, ag_rng *rng)
{
    ag_fill_normal(ag_param_new(ps, "conv.w", AG_SHAPE(4, 2, 4, 4)), rng, 0, 0.3);
    ag_fill_normal(ag_param_new(ps, "conv.b", AG_SHAPE(4)), rng, 0, 0.1);
    ag_fill_normal(ag_param_new(ps, "bn.gamma", AG_SHAPE(4)), rng, 1, 0.1);
    ag_fill_normal(ag_param_new(ps, "bn.beta", AG_SHAPE(4)), rng, 0, 0.1);
    ag_fill(ag_buffer_new(ps, "bn.mean", AG_SHAPE(4)), 0);
    ag_fill(ag_buffer_new(ps, "bn.var", AG_SHAPE(4)), 1);
    ag_fill_normal(ag_param_new(ps, "fc.w", AG_SHAPE(2, 4 * 3 * 3)), rng, 0, 0.3);
}

static ag_tensor *conv_loss(ag_tape *t, ag_params *ps)
{
    ag_rng rng;
    ag_rng_seed(&rng, 11);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(3, 2, 6, 6));
    ag_fill_uniform(x, &rng, -1, 1);
    ag_tensor *h = ag_conv2d(t, x, ag_params_find(ps, "conv.w"), ag_params_find(ps, "conv.b"), 2, 1);
    h = ag_batch_norm(t, h, ag_params_find(ps, "bn.gamma"), ag_params_find(ps, "bn.beta"),
                      ag_params_find(ps, "bn.mean"), ag_params_find(ps, "bn.var"), 0.1, 1e-5);
    h = ag_softplus(t, h);
    h = ag_reshape(t, h, AG_SHAPE(3, 4 * 3 * 3));
    ag_tensor *y = ag_linear(t, h, ag_params_find(ps, "fc.w"), NULL);
    return ag_mean(t, ag_logsumexp(t, y, 1, 0));
}

static const gc_graph graphs[] = {
    {"mlp: linear, tanh, linear, cross-entropy", mlp_build, mlp_loss},
    {"conv net: conv2d s2 p1, batch norm, softplus, linear, logsumexp", conv_build, conv_loss},
};

/* The directional derivative of L along a random unit direction u over every parameter. */
static double check_graph(const gc_graph *g, ag_tape *t)
{
    ag_rng rng;
    ag_rng_seed(&rng, 2024);
    ag_params ps = {0};
    g->build(&ps, &rng);
    ag_tape_reset(t);
    ag_params_zero_grad(&ps);
    ag_backward(t, g->loss(t, &ps));

    double analytic = 0, norm = 0;
    double **u = calloc((size_t)ps.count, sizeof *u);
    for (int i = 0; i < ps.count; i++) {
        ag_tensor *p = ps.items[i];
        if (!p->requires_grad) continue;
        u[i] = malloc((size_t)p->size * sizeof **u);
        for (long j = 0; j < p->size; j++) {
            u[i][j] = ag_rng_normal(&rng);
            norm += u[i][j] * u[i][j];
        }
    }
    norm = sqrt(norm);
    for (int i = 0; i < ps.count; i++)
        if (u[i])
            for (long j = 0; j < ps.items[i]->size; j++) {
                u[i][j] /= norm;
                analytic += (double)ps.items[i]->grad[j] * u[i][j];
            }
    double L[2];
    for (int side = 0; side < 2; side++) {
        double h = side == 0 ? GC_STEP : -GC_STEP;
        for (int i = 0; i < ps.count; i++)
            if (u[i])
                for (long j = 0; j < ps.items[i]->size; j++) ps.items[i]->value[j] += (ag_real)(h * u[i][j]);
        ag_tape_reset(t);
        L[side] = (double)g->loss(t, &ps)->value[0];
        for (int i = 0; i < ps.count; i++)
            if (u[i])
                for (long j = 0; j < ps.items[i]->size; j++) ps.items[i]->value[j] -= (ag_real)(h * u[i][j]);
    }
    double numeric = (L[0] - L[1]) / (2 * GC_STEP);
    for (int i = 0; i < ps.count; i++) free(u[i]);
    free(u);
    ag_params_free(&ps);
    return fabs(analytic - numeric) / fmax(1.0, fabs(numeric));
}

/* ------------------------------------------------------------------------------------------ */
/* Float against double                                                                       */
/* ------------------------------------------------------------------------------------------ */

static int dump_forward(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "gradcheck: cannot write %s\n", path);
        return 1;
    }
    ag_tape *t = ag_tape_new(GC_ARENA);
    uint64_t seed = 1;
    for (int g = 0; g < NGROUPS; g++)
        for (const gc_case *c = groups[g]; c->op; c++, seed++) {
            ag_rng rng;
            ag_rng_seed(&rng, seed);
            gc_inputs x;
            make_inputs(c, &x, &rng);
            ag_tape_reset(t);
            ag_tensor *out = c->apply(t, x.in);
            fprintf(f, "%s\t%s\t%ld\n", c->op, c->what, out->size);
            for (long i = 0; i < out->size; i++) fprintf(f, "%.17g\n", (double)out->value[i]);
            ag_params_free(&x.store);
        }
    ag_tape_free(t);
    return fclose(f) != 0;
}

/* |f - d| <= 1e-5 * max(1, |d|) for every output value of every case. */
static int compare_dumps(const char *float_path, const char *double_path)
{
    FILE *f = fopen(float_path, "r"), *d = fopen(double_path, "r");
    if (f == NULL || d == NULL) {
        fprintf(stderr, "gradcheck: cannot read %s\n", f == NULL ? float_path : double_path);
        return 1;
    }
    char fline[512], dline[512];
    int passed = 0, failed = 0;
    while (fgets(fline, sizeof fline, f) && fgets(dline, sizeof dline, d)) {
        long n;
        if (strcmp(fline, dline) != 0 || sscanf(strrchr(fline, '\t') + 1, "%ld", &n) != 1) {
            fprintf(stderr, "gradcheck: the dumps list different cases\n");
            return 1;
        }
        double worst = 0;
        for (long i = 0; i < n; i++) {
            double a, b;
            if (fscanf(f, "%lf\n", &a) != 1 || fscanf(d, "%lf\n", &b) != 1) {
                fprintf(stderr, "gradcheck: a dump is truncated\n");
                return 1;
            }
            double err = fabs(a - b) / fmax(1.0, fabs(b));
            if (!(err <= worst)) worst = err;
        }
        *strchr(fline, '\n') = 0;
        int ok = worst <= GC_PRECISION;
        if (!ok) printf("FAIL float vs double  %-40s  %.3g\n", fline, worst);
        ok ? passed++ : failed++;
    }
    printf("float vs double: worst relative difference within %.0e in every case\n", GC_PRECISION);
    printf("%d passed, %d failed\n", passed, failed);
    fclose(f);
    fclose(d);
    return failed != 0;
}

/* ------------------------------------------------------------------------------------------ */

static int check_everything(void)
{
    int passed = 0, failed = 0;
    ag_tape *t = ag_tape_new(GC_ARENA);

    for (int g = 0; g < NGROUPS; g++) /* a case for an op the table does not have is a mistake */
        for (const gc_case *c = groups[g]; c->op; c++)
            if (!op_in_table(c->op)) {
                printf("FAIL %-14s a case names an op that is not in ag_op_table\n", c->op);
                failed++;
            }

    for (int i = 0; i < ag_op_count; i++) {
        const char *op = ag_op_table[i]->name;
        if (count_cases(op) == 0) {
            printf("FAIL %-14s has no gradient-check case (add one to tests/gradcheck/cases_*.c)\n", op);
            failed++;
            continue;
        }
        double worst = 0;
        const char *worst_what = "";
        int ncases = 0;
        uint64_t seed = 1;
        for (int g = 0; g < NGROUPS; g++)
            for (const gc_case *c = groups[g]; c->op; c++, seed++) {
                if (strcmp(c->op, op) != 0) continue;
                double err = check_case(c, t, seed);
                ncases++;
                if (!(err <= worst)) {
                    worst = err;
                    worst_what = c->what;
                }
            }
        int ok = worst <= GC_TOLERANCE;
        printf("%s %-14s %2d cases  worst error %.2e  (%s)\n", ok ? "ok  " : "FAIL", op, ncases,
               worst, worst_what);
        ok ? passed++ : failed++;
    }
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++) {
        double err = check_graph(&graphs[i], t);
        int ok = err <= GC_TOLERANCE;
        printf("%s graph: %s  directional derivative error %.2e\n", ok ? "ok  " : "FAIL",
               graphs[i].name, err);
        ok ? passed++ : failed++;
    }
    ag_tape_free(t);
    gc_run_dim_checks(&passed, &failed); /* the whole DIM objective, tests/gradcheck/dim_checks.c */
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) return dump_forward(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--compare") == 0) return compare_dumps(argv[2], argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: gradcheck [--dump FILE | --compare FLOAT_DUMP DOUBLE_DUMP]\n");
        return 2;
    }
#ifndef AG_DOUBLE
    fprintf(stderr, "gradcheck: finite differences need the double build (build/double/gradcheck)\n");
    return 2;
#endif
    return check_everything();
}
