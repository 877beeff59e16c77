/* optim.c -- SGD with momentum and Adam, as in PyTorch.
 * Tangled from doc/16-optim.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <stdlib.h>

enum { OPTIM_PARALLEL_MIN = 1 << 14 }; /* smaller tensors are not worth waking threads for */

/* One zeroed array of items[i]->size reals for every trainable item of ps; NULL for buffers. */
static ag_real **state_new(const ag_params *ps, const char *who)
{
    ag_real **state = calloc((size_t)(ps->count > 0 ? ps->count : 1), sizeof *state);
    if (state == NULL) ag_fatal("%s: out of memory for the optimizer state", who);
    for (int i = 0; i < ps->count; i++) {
        if (!ps->items[i]->requires_grad) continue;
        state[i] = calloc((size_t)ps->items[i]->size, sizeof(ag_real));
        if (state[i] == NULL)
            ag_fatal("%s: out of memory for the state of \"%s\" (%ld values)", who,
                     ps->items[i]->name, ps->items[i]->size);
    }
    return state;
}

static void state_free(ag_real **state, int count)
{
    if (state == NULL) return;
    for (int i = 0; i < count; i++) free(state[i]);
    free(state);
}

static void check_params_unchanged(const ag_params *ps, int count, const char *who)
{
    if (ps->count != count)
        ag_fatal("%s: the parameter set had %d tensors when the optimizer was made and has %d "
                 "now; make every parameter before the optimizer", who, count, ps->count);
}
void ag_params_scale_grad(ag_params *ps, double c)
{
    for (int i = 0; i < ps->count; i++) {
        ag_tensor *p = ps->items[i];
        if (!p->requires_grad || p->grad == NULL) continue;
        for (long j = 0; j < p->size; j++) p->grad[j] = (ag_real)(p->grad[j] * c);
    }
}
ag_sgd *ag_sgd_new(ag_params *ps, double lr, double momentum)
{
    if (!(lr >= 0) || !(momentum >= 0 && momentum < 1))
        ag_fatal("ag_sgd_new: lr = %g and momentum = %g; expected lr >= 0 and momentum in "
                 "[0, 1)", lr, momentum);
    ag_sgd *opt = calloc(1, sizeof *opt);
    if (opt == NULL) ag_fatal("ag_sgd_new: out of memory");
    opt->params = ps;
    opt->count = ps->count;
    opt->lr = lr;
    opt->momentum = momentum;
    opt->velocity = momentum > 0 ? state_new(ps, "ag_sgd_new") : NULL;
    return opt;
}

void ag_sgd_step(ag_sgd *opt)
{
    check_params_unchanged(opt->params, opt->count, "ag_sgd_step");
    for (int i = 0; i < opt->count; i++) {
        ag_tensor *p = opt->params->items[i];
        if (!p->requires_grad) continue;
        ag_real *v = opt->velocity ? opt->velocity[i] : NULL;
        #pragma omp parallel for schedule(static) if (p->size >= OPTIM_PARALLEL_MIN)
        for (long j = 0; j < p->size; j++) {
            double g = p->grad[j];
            if (v != NULL) {
                v[j] = (ag_real)(opt->momentum * v[j] + g);
                g = v[j];
            }
            p->value[j] = (ag_real)(p->value[j] - opt->lr * g);
        }
    }
    opt->step++;
}

void ag_sgd_free(ag_sgd *opt)
{
    if (opt == NULL) return;
    state_free(opt->velocity, opt->count);
    free(opt);
}
ag_adam *ag_adam_new(ag_params *ps, double lr, double beta1, double beta2, double eps)
{
    if (!(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0))
        ag_fatal("ag_adam_new: lr = %g, beta1 = %g, beta2 = %g, eps = %g; expected lr >= 0, "
                 "betas in [0, 1) and eps >= 0", lr, beta1, beta2, eps);
    ag_adam *opt = calloc(1, sizeof *opt);
    if (opt == NULL) ag_fatal("ag_adam_new: out of memory");
    opt->params = ps;
    opt->count = ps->count;
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->m = state_new(ps, "ag_adam_new");
    opt->v = state_new(ps, "ag_adam_new");
    return opt;
}

void ag_adam_step(ag_adam *opt)
{
    check_params_unchanged(opt->params, opt->count, "ag_adam_step");
    opt->step++;
    double step_size = opt->lr / (1 - pow(opt->beta1, (double)opt->step));
    double bias_correction2_sqrt = sqrt(1 - pow(opt->beta2, (double)opt->step));
    for (int i = 0; i < opt->count; i++) {
        ag_tensor *p = opt->params->items[i];
        if (!p->requires_grad) continue;
        ag_real *m = opt->m[i], *v = opt->v[i];
        #pragma omp parallel for schedule(static) if (p->size >= OPTIM_PARALLEL_MIN)
        for (long j = 0; j < p->size; j++) {
            double g = p->grad[j];
            m[j] = (ag_real)(opt->beta1 * m[j] + (1 - opt->beta1) * g);
            v[j] = (ag_real)(opt->beta2 * v[j] + (1 - opt->beta2) * g * g);
            double denom = sqrt((double)v[j]) / bias_correction2_sqrt + opt->eps;
            p->value[j] = (ag_real)(p->value[j] - step_size * m[j] / denom);
        }
    }
}

void ag_adam_free(ag_adam *opt)
{
    if (opt == NULL) return;
    state_free(opt->m, opt->count);
    state_free(opt->v, opt->count);
    free(opt);
}
