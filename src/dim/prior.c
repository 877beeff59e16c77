/* prior.c -- the prior discriminator and the prior-matching objective (Eq. 7).
 * Tangled from doc/23-prior.nw: edit the book, not this file. */
#include "dim.h"

void dim_prior_init(dim_prior *d, ag_params *ps, const dim_config *c, ag_rng *rng)
{
    dim_linear_init(&d->l0, ps, "prior.l0", c->y_units, c->prior_units[0], rng);
    dim_linear_init(&d->l1, ps, "prior.l1", c->prior_units[0], c->prior_units[1], rng);
    dim_linear_init(&d->l2, ps, "prior.l2", c->prior_units[1], 1, rng);
}
/* a(z) for z [N, y_units]: [N, 1] logits, D(z) = sigmoid(a(z)). */
static ag_tensor *prior_logits(ag_tape *t, const dim_prior *d, ag_tensor *z)
{
    ag_tensor *h = ag_relu(t, dim_linear_forward(t, &d->l0, z));  /* [N, prior_units[0]] */
    h = ag_relu(t, dim_linear_forward(t, &d->l1, h));              /* [N, prior_units[1]] */
    return dim_linear_forward(t, &d->l2, h);                       /* [N, 1] */
}
/* The fraction of the 2N samples classified right: a > 0 for the prior, a < 0 for codes. */
static double discriminator_accuracy(const ag_tensor *a_prior /* [N, 1] */,
                                     const ag_tensor *a_codes /* [N, 1] */)
{
    long right = 0;
    for (long k = 0; k < a_prior->size; k++) right += a_prior->value[k] > 0;
    for (long i = 0; i < a_codes->size; i++) right += a_codes->value[i] < 0;
    return (double)right / (double)(a_prior->size + a_codes->size);
}
ag_tensor *dim_prior_objective(ag_tape *t, const dim_prior *d, ag_tensor *y, ag_rng *rng,
                               double *accuracy)
{
    char shape[AG_SHAPE_STR_SIZE];
    int y_units = d->l0.weight->shape[1];
    if (y->ndim != 2 || y->shape[1] != y_units)
        ag_fatal("dim_prior_objective: the codes have shape %s; the discriminator reads "
                 "[N, %d]", ag_shape_str(y, shape), y_units);
    int n = y->shape[0];
    ag_tensor *v = ag_tensor_new(t, AG_SHAPE(n, y_units));  /* [N, y_units] prior samples */
    ag_fill_uniform(v, rng, 0, 1);
    ag_tensor *a_prior = prior_logits(t, d, v);                   /* [N, 1] */
    ag_tensor *a_codes = prior_logits(t, d, ag_sigmoid(t, y));    /* [N, 1] */
    ag_tensor *log_d_prior = ag_neg(t, ag_mean(t, ag_softplus(t, ag_neg(t, a_prior))));
    ag_tensor *log_1_minus_d_codes = ag_neg(t, ag_mean(t, ag_softplus(t, a_codes)));
    if (accuracy != NULL) *accuracy = discriminator_accuracy(a_prior, a_codes);
    return ag_add(t, log_d_prior, log_1_minus_d_codes);
}
