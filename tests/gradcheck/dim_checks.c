/* dim_checks.c -- the gradient of the whole DIM loss against central differences.
 *
 * The model is the tiny configuration (dim_config_tiny) on a batch of a few random images, in
 * training mode (batch statistics). For every trainable element p of the encoder and critics
 * (params) and of the discriminator (prior_params), the gradient a of the loss from one
 * ag_backward is compared with n = (L(p + h) - L(p - h)) / 2h, h = 1e-5, and the error
 * |a - n| / max(1, |n|) must be at most 1e-6, as for the ops. Every evaluation draws the prior
 * samples from a fresh generator with the same seed, so L is one deterministic function of the
 * parameters. A parameter the graph does not read (the local critics in a global check, the
 * discriminator without a prior term) leaves L unchanged to the bit, so its differences are 0
 * without being computed and its backward gradient must be exactly 0. The discriminator's
 * gradient checked here is the raw dL/dphi = gamma dD^/dphi; the training step flips its sign
 * afterwards (doc/24-objective.nw). */
#include "dim_checks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/dim/dim.h"

enum { DIM_GC_BATCH = 4, DIM_GC_MODEL_SEED = 2019, DIM_GC_IMAGE_SEED = 1808,
       DIM_GC_PRIOR_SEED = 6670 };
static const double DIM_GC_STEP = 1e-5, DIM_GC_TOLERANCE = 1e-6;

/* One check: the objective's weights and choices, and which parameter sets it checks. */
typedef struct dim_check {
    const char *bound;          /* "dv", "jsd", "infonce"; NULL for the prior alone */
    const char *what;           /* "global", "local (dot)", ... */
    double alpha, beta, gamma;
    dim_local_kind local_kind;
    int check_encoder, check_prior; /* which sets' elements the line reports */
} dim_check;

/* Everything one evaluation needs. */
typedef struct dim_gc {
    dim_model model;
    ag_real *images;            /* [N, C, H, W] */
    ag_tape *tape;
} dim_gc;

/* L at the current parameters; with backward, also the gradients of both sets (zeroed first). */
static double dim_loss_at(dim_gc *g, const dim_objective *o, int backward)
{
    const dim_config *c = &g->model.config;
    ag_tape_reset(g->tape);
    ag_tape_set_training(g->tape, 1);
    ag_tensor *x = ag_tensor_from(g->tape, AG_SHAPE(DIM_GC_BATCH, c->in_channels, c->in_height,
                                                    c->in_width), g->images);
    ag_rng rng;
    ag_rng_seed(&rng, DIM_GC_PRIOR_SEED);
    dim_bound_state global_state, local_state;
    dim_bound_state_init(&global_state);
    dim_bound_state_init(&local_state);
    dim_terms terms = dim_objective_graph(g->tape, &g->model, o, x, &rng, &global_state,
                                          &local_state);
    if (backward) {
        ag_params_zero_grad(&g->model.params);
        ag_params_zero_grad(&g->model.prior_params);
        ag_backward(g->tape, terms.loss);
    }
    return (double)terms.loss->value[0];
}

/* 1 if some node recorded on t reads x. */
static int dim_read_by_tape(const ag_tape *t, const ag_tensor *x)
{
    for (const ag_node *n = t->last; n != NULL; n = n->prev)
        for (int k = 0; k < n->ninputs; k++)
            if (n->in[k] == x) return 1;
    return 0;
}

/* The worst error over every trainable element of ps; *where names it. The tape must hold the
 * graph of the loss at the unperturbed parameters, with its gradients. */
static double dim_check_set(dim_gc *g, const dim_objective *o, ag_params *ps, char *where,
                            size_t where_size)
{
    double worst = 0;
    int *read = malloc((size_t)(ps->count > 0 ? ps->count : 1) * sizeof *read);
    for (int i = 0; i < ps->count; i++) read[i] = dim_read_by_tape(g->tape, ps->items[i]);
    for (int i = 0; i < ps->count; i++) {
        ag_tensor *p = ps->items[i];
        if (!p->requires_grad) continue;
        ag_real *analytic = malloc((size_t)p->size * sizeof *analytic);
        for (long j = 0; j < p->size; j++) analytic[j] = p->grad[j];
        for (long j = 0; j < p->size; j++) {
            double numeric = 0; /* a parameter the graph does not read */
            if (read[i]) {
                ag_real saved = p->value[j];
                p->value[j] = saved + (ag_real)DIM_GC_STEP;
                double plus = dim_loss_at(g, o, 0);
                p->value[j] = saved - (ag_real)DIM_GC_STEP;
                double minus = dim_loss_at(g, o, 0);
                p->value[j] = saved;
                numeric = (plus - minus) / (2 * DIM_GC_STEP);
            }
            double err = fabs((double)analytic[j] - numeric) / fmax(1.0, fabs(numeric));
            if (!(err <= worst)) { /* a NaN is the worst of all */
                worst = err;
                snprintf(where, where_size, "%s[%ld]: backward %.9g, differences %.9g", p->name,
                         j, (double)analytic[j], numeric);
            }
        }
        free(analytic);
    }
    free(read);
    return worst;
}

static void dim_run_check(dim_gc *g, const dim_check *k, int *passed, int *failed)
{
    dim_objective o = {k->alpha, k->beta, k->gamma, NULL, k->local_kind};
    if (k->bound != NULL) o.bound = dim_bound_find(k->bound);
    char where[2][200] = {"", ""};
    double worst[2] = {0, 0};
    /* every element of both sets: those the loss does not read must have a gradient of 0 */
    dim_loss_at(g, &o, 1);
    worst[0] = dim_check_set(g, &o, &g->model.params, where[0], sizeof where[0]);
    dim_loss_at(g, &o, 1); /* the tape again holds the unperturbed graph */
    worst[1] = dim_check_set(g, &o, &g->model.prior_params, where[1], sizeof where[1]);
    const char *set_name[2] = {"encoder and critics", "discriminator"};
    for (int s = 0; s < 2; s++) {
        if (!(s == 0 ? k->check_encoder : k->check_prior)) {
            if (worst[s] <= DIM_GC_TOLERANCE) continue; /* zero, as it should be */
        }
        int ok = worst[s] <= DIM_GC_TOLERANCE;
        char label[96];
        if (k->bound != NULL && s == 0)
            snprintf(label, sizeof label, "%s %s", k->bound, k->what);
        else
            snprintf(label, sizeof label, "%s, %s", k->what, set_name[s]);
        printf("%s dim: %-38s worst error %.2e", ok ? "ok  " : "FAIL", label, worst[s]);
        if (!ok) printf("  (%s)", where[s]);
        printf("\n");
        ok ? (*passed)++ : (*failed)++;
    }
}

void gc_run_dim_checks(int *passed, int *failed)
{
    static const dim_check checks[] = {
        {"dv", "global", 1, 0, 0, DIM_LOCAL_DOT, 1, 0},
        {"dv", "local (dot)", 0, 1, 0, DIM_LOCAL_DOT, 1, 0},
        {"dv", "local (concat)", 0, 1, 0, DIM_LOCAL_CONCAT, 1, 0},
        {"jsd", "global", 1, 0, 0, DIM_LOCAL_DOT, 1, 0},
        {"jsd", "local (dot)", 0, 1, 0, DIM_LOCAL_DOT, 1, 0},
        {"jsd", "local (concat)", 0, 1, 0, DIM_LOCAL_CONCAT, 1, 0},
        {"infonce", "global", 1, 0, 0, DIM_LOCAL_DOT, 1, 0},
        {"infonce", "local (dot)", 0, 1, 0, DIM_LOCAL_DOT, 1, 0},
        {"infonce", "local (concat)", 0, 1, 0, DIM_LOCAL_CONCAT, 1, 0},
        {NULL, "prior term alone", 0, 0, 1, DIM_LOCAL_DOT, 1, 1},
    };
    dim_gc g;
    dim_config c;
    dim_config_tiny(&c);
    dim_model_init(&g.model, &c, DIM_GC_MODEL_SEED);
    long size = (long)DIM_GC_BATCH * c.in_channels * c.in_height * c.in_width;
    g.images = malloc((size_t)size * sizeof *g.images);
    ag_rng rng;
    ag_rng_seed(&rng, DIM_GC_IMAGE_SEED);
    for (long i = 0; i < size; i++) g.images[i] = (ag_real)ag_rng_uniform(&rng);
    g.tape = ag_tape_new_growing((size_t)1 << 30);
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        dim_run_check(&g, &checks[i], passed, failed);
    ag_tape_free(g.tape);
    free(g.images);
    dim_model_free(&g.model);
}
