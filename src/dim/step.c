/* step.c -- training DIM: one backward pass, two optimisers, a real min-max.
 * Tangled from doc/24-objective.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <string.h>

static const size_t DIM_TAPE_LIMIT = (size_t)16 << 30;  /* bytes one step may use */

void dim_trainer_init(dim_trainer *tr, dim_model *m, const dim_objective *o, double lr,
                      uint64_t seed)
{
    memset(tr, 0, sizeof *tr);
    tr->model = m;
    tr->objective = *o;
    tr->encoder_adam = ag_adam_new(&m->params, lr, 0.9, 0.999, 1e-8);
    tr->prior_adam = ag_adam_new(&m->prior_params, lr, 0.9, 0.999, 1e-8);
    tr->tape = ag_tape_new_growing(DIM_TAPE_LIMIT);
    ag_rng_seed(&tr->rng, seed);
    dim_bound_state_init(&tr->global_state);
    dim_bound_state_init(&tr->local_state);
}

void dim_trainer_free(dim_trainer *tr)
{
    ag_adam_free(tr->encoder_adam);
    ag_adam_free(tr->prior_adam);
    ag_tape_free(tr->tape);
    memset(tr, 0, sizeof *tr);
}
static double value_or_nan(const ag_tensor *x) { return x ? (double)x->value[0] : NAN; }

dim_step_stats dim_train_step(dim_trainer *tr, const ag_real *images, int n)
{
    dim_model *m = tr->model;
    const dim_config *c = &m->config;
    ag_tape_reset(tr->tape);
    ag_tape_set_training(tr->tape, 1);
    ag_tensor *x = ag_tensor_from(tr->tape, AG_SHAPE(n, c->in_channels, c->in_height,
                                                     c->in_width), images);
    dim_terms terms = dim_objective_graph(tr->tape, m, &tr->objective, x, &tr->rng,
                                          &tr->global_state, &tr->local_state);
    dim_step_stats stats = {value_or_nan(terms.loss), value_or_nan(terms.global_mi),
                            value_or_nan(terms.local_mi), value_or_nan(terms.prior),
                            terms.prior_accuracy};

    ag_params_zero_grad(&m->params);
    ag_params_zero_grad(&m->prior_params);
    ag_backward(tr->tape, terms.loss);   /* dL/d(psi, omega) and gamma dD^/dphi, at one point */
    ag_adam_step(tr->encoder_adam);      /* the encoder and critics descend L */
    if (terms.prior != NULL) {
        ag_params_scale_grad(&m->prior_params, -1);  /* the discriminator's gradient of -L */
        ag_adam_step(tr->prior_adam);                /* so it ascends D^ */
    }
    tr->step++;
    return stats;
}
