/* cases_norm.c -- gradient-check cases of batch_norm, layer_norm and dropout (doc/15-ops-norm.nw).
 *
 * Batch normalisation is checked in both modes. Its inputs are x, gamma, beta and the two
 * running statistics; only the first three are checked (the statistics are buffers). In training
 * the forward moves the running statistics on every run, but the output does not depend on them,
 * so every re-run of a case still computes the same function. Each case sets the tape's mode
 * itself and puts the previous mode back, so that no case leaks its mode into the next. */
#include "gradcheck.h"

enum { X_GAMMA_BETA = 1 << 0 | 1 << 1 | 1 << 2 };

static const double BN_MOMENTUM = 0.1, BN_EPS = 1e-5, LN_EPS = 1e-5;

/* gamma in [0.5, 1.5] with random signs, running variance in [0.5, 1.5], running mean in
 * [-0.5, 0.5]: a well-conditioned normalisation whose scale does not hide errors. */
static void init_batch_norm(ag_tensor **in, ag_rng *rng)
{
    for (long c = 0; c < in[1]->size; c++) {
        double magnitude = 0.5 + ag_rng_uniform(rng);
        in[1]->value[c] = (ag_real)(ag_rng_uniform(rng) < 0.5 ? -magnitude : magnitude);
        in[3]->value[c] = (ag_real)(ag_rng_uniform(rng) - 0.5);
        in[4]->value[c] = (ag_real)(0.5 + ag_rng_uniform(rng));
    }
}

static ag_tensor *batch_norm_in_mode(ag_tape *t, ag_tensor **in, int training)
{
    int previous = t->training;
    ag_tape_set_training(t, training);
    ag_tensor *y = ag_batch_norm(t, in[0], in[1], in[2], in[3], in[4], BN_MOMENTUM, BN_EPS);
    ag_tape_set_training(t, previous);
    return y;
}

static ag_tensor *apply_batch_norm_training(ag_tape *t, ag_tensor **in)
{
    return batch_norm_in_mode(t, in, 1);
}

static ag_tensor *apply_batch_norm_eval(ag_tape *t, ag_tensor **in)
{
    return batch_norm_in_mode(t, in, 0);
}

/* gamma in [0.5, 1.5] with random signs; beta stays uniform. */
static void init_layer_norm(ag_tensor **in, ag_rng *rng)
{
    for (long d = 0; d < in[1]->size; d++) {
        double magnitude = 0.5 + ag_rng_uniform(rng);
        in[1]->value[d] = (ag_real)(ag_rng_uniform(rng) < 0.5 ? -magnitude : magnitude);
    }
}

static ag_tensor *apply_layer_norm(ag_tape *t, ag_tensor **in)
{
    return ag_layer_norm(t, in[0], in[1], in[2], LN_EPS);
}

/* Dropout draws its mask from a generator seeded afresh on every run, so the finite
 * differences see the same mask as the backward pass. */
static ag_tensor *dropout_in_mode(ag_tape *t, ag_tensor **in, double p, int training)
{
    ag_rng rng;
    ag_rng_seed(&rng, 20190101);
    int previous = t->training;
    ag_tape_set_training(t, training);
    ag_tensor *y = ag_dropout(t, in[0], p, &rng);
    ag_tape_set_training(t, previous);
    return y;
}

static ag_tensor *apply_dropout_training(ag_tape *t, ag_tensor **in)
{
    return dropout_in_mode(t, in, 0.3, 1);
}

static ag_tensor *apply_dropout_p0(ag_tape *t, ag_tensor **in)
{
    return dropout_in_mode(t, in, 0.0, 1);
}

static ag_tensor *apply_dropout_eval(ag_tape *t, ag_tensor **in)
{
    return dropout_in_mode(t, in, 0.3, 0);
}

const gc_case gc_cases_norm[] = {
    {"batch_norm", "training [6, 3]", 5, {2, 1, 1, 1, 1},
     {{6, 3}, {3}, {3}, {3}, {3}}, -2, 2, X_GAMMA_BETA, init_batch_norm,
     apply_batch_norm_training},
    {"batch_norm", "training [2, 3, 3, 2]", 5, {4, 1, 1, 1, 1},
     {{2, 3, 3, 2}, {3}, {3}, {3}, {3}}, -2, 2, X_GAMMA_BETA, init_batch_norm,
     apply_batch_norm_training},
    {"batch_norm", "training [3, 2, 1, 1] (three values per channel)", 5, {4, 1, 1, 1, 1},
     {{3, 2, 1, 1}, {2}, {2}, {2}, {2}}, -2, 2, X_GAMMA_BETA, init_batch_norm,
     apply_batch_norm_training},
    {"batch_norm", "evaluation [4, 3]", 5, {2, 1, 1, 1, 1},
     {{4, 3}, {3}, {3}, {3}, {3}}, -2, 2, X_GAMMA_BETA, init_batch_norm,
     apply_batch_norm_eval},
    {"batch_norm", "evaluation [2, 3, 2, 2]", 5, {4, 1, 1, 1, 1},
     {{2, 3, 2, 2}, {3}, {3}, {3}, {3}}, -2, 2, X_GAMMA_BETA, init_batch_norm,
     apply_batch_norm_eval},
    {"layer_norm", "[5, 4]", 3, {2, 1, 1}, {{5, 4}, {4}, {4}}, -2, 2, X_GAMMA_BETA,
     init_layer_norm, apply_layer_norm},
    {"layer_norm", "[2, 3, 6]", 3, {3, 1, 1}, {{2, 3, 6}, {6}, {6}}, -2, 2, X_GAMMA_BETA,
     init_layer_norm, apply_layer_norm},
    {"layer_norm", "[2, 2, 2, 3]", 3, {4, 1, 1}, {{2, 2, 2, 3}, {3}, {3}}, -2, 2, X_GAMMA_BETA,
     init_layer_norm, apply_layer_norm},
    {"layer_norm", "[7] (one row)", 3, {1, 1, 1}, {{7}, {7}, {7}}, -2, 2, X_GAMMA_BETA,
     init_layer_norm, apply_layer_norm},
    {"dropout", "p = 0.3, training [4, 5]", 1, {2}, {{4, 5}}, -2, 2, 1, NULL,
     apply_dropout_training},
    {"dropout", "p = 0.3, training [2, 3, 4, 4]", 1, {4}, {{2, 3, 4, 4}}, -2, 2, 1, NULL,
     apply_dropout_training},
    {"dropout", "p = 0, training [3, 4] (identity)", 1, {2}, {{3, 4}}, -2, 2, 1, NULL,
     apply_dropout_p0},
    {"dropout", "p = 0.3, evaluation [3, 4] (identity)", 1, {2}, {{3, 4}}, -2, 2, 1, NULL,
     apply_dropout_eval},
    {0},
};
