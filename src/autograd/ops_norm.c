/* ops_norm.c -- batch normalisation, layer normalisation and dropout.
 * Tangled from doc/15-ops-norm.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <string.h>

/* A block of `width` groups of m = runs * run_length numbers each: number i of run r of group
 * k is at base + r * stride + k * run_length + i. Either width is 1, or run_length is. */
typedef struct norm_group {
    long base, runs, run_length, stride;
    int width;  /* groups in the block, 1 .. NORM_BLOCK */
} norm_group;

enum { NORM_LANES = 4 };  /* partial sums per group: independent chains of additions */
enum { NORM_BLOCK = 64 }; /* groups in a block at most */

/* How many lanes the entries from i on of a run of length n fill: NORM_LANES but at its end.
 * A constant in the common case, so that the loop over the lanes becomes straight-line code. */
static inline int lanes_at(long n, long i)
{
    return n - i >= NORM_LANES ? NORM_LANES : (int)(n - i);
}

/* The sum of the lanes, in a fixed order. */
static double lanes_total(const double lane[NORM_LANES])
{
    return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

/* The sums of one group that the backward of a normalisation needs. */
typedef struct norm_sums {
    double dy, dy_xhat;  /* sum dy_i and sum dy_i xhat_i */
    double g, g_xhat;    /* sum g_i and sum g_i xhat_i, where g_i = dy_i * scale */
} norm_sums;

/* All four sums of each group k of the block into sums[k], in one pass, in double; where
 * xhat_i = (x_i - mean[k]) * inv_std[k] and g_i = dy_i * scale[k]. A block of one group sums
 * in NORM_LANES lanes; a block of several, whose runs are one number long, in one per group. */
static void normalisation_sums(norm_group grp, const ag_real *x, const ag_real *dy,
                               const double *scale, const double *mean, const double *inv_std,
                               norm_sums *sums)
{
/* s.dy[l] += dy_at, and so on: entry `at`, of group k, into lane l of the sums s */
#define ADD_TO_SUMS(s, l, k, at)                                                \
    do {                                                                        \
        double g = dy[at] * scale[k];                                           \
        s.dy[l] += dy[at];                                                      \
        s.dy_xhat[l] += dy[at] * (x[at] - mean[k]) * inv_std[k];                \
        s.g[l] += g;                                                            \
        s.g_xhat[l] += g * (x[at] - mean[k]) * inv_std[k];                      \
    } while (0)
    if (grp.width > 1) {
        struct { double dy[NORM_BLOCK], dy_xhat[NORM_BLOCK], g[NORM_BLOCK], g_xhat[NORM_BLOCK]; }
            s; /* [width] each: a lane per group */
        for (int k = 0; k < grp.width; k++) s.dy[k] = s.dy_xhat[k] = s.g[k] = s.g_xhat[k] = 0;
        for (long r = 0; r < grp.runs; r++) {
            long at = grp.base + r * grp.stride;
            #pragma omp simd
            for (int k = 0; k < grp.width; k++) ADD_TO_SUMS(s, k, k, at + k);
        }
        for (int k = 0; k < grp.width; k++) {
            norm_sums total = { s.dy[k], s.dy_xhat[k], s.g[k], s.g_xhat[k] };
            sums[k] = total;
        }
        return;
    }
    struct { double dy[NORM_LANES], dy_xhat[NORM_LANES], g[NORM_LANES], g_xhat[NORM_LANES]; }
        s = { { 0 }, { 0 }, { 0 }, { 0 } };
    for (long r = 0; r < grp.runs; r++) {
        long run = grp.base + r * grp.stride;
        for (long i = 0; i < grp.run_length; i += NORM_LANES) {
            int lanes = lanes_at(grp.run_length, i);
            for (int l = 0; l < lanes; l++) ADD_TO_SUMS(s, l, 0, run + i + l);
        }
    }
#undef ADD_TO_SUMS
    norm_sums total = { lanes_total(s.dy), lanes_total(s.dy_xhat), lanes_total(s.g),
                        lanes_total(s.g_xhat) };
    sums[0] = total;
}

/* Add (1/s)(g - mean(g) - xhat * mean(g * xhat)) to dx (assign it, when assign), from the sums
 * of each group. */
static void add_normalisation_grad(norm_group grp, const ag_real *x, const ag_real *dy,
                                   const double *scale, const double *mean,
                                   const double *inv_std, const norm_sums *sums, ag_real *dx,
                                   int assign)
{
    double m = (double)grp.runs * grp.run_length;
    double mean_g[NORM_BLOCK], mean_g_xhat[NORM_BLOCK]; /* [width] */
    for (int k = 0; k < grp.width; k++) {
        mean_g[k] = sums[k].g / m;
        mean_g_xhat[k] = sums[k].g_xhat / m;
    }
#define ADD_GRAD(k, at)                                                                  \
    dx[at] = (assign ? 0 : dx[at])                                                       \
             + (ag_real)(inv_std[k] * (dy[at] * scale[k] - mean_g[k]                     \
                                       - (x[at] - mean[k]) * inv_std[k] * mean_g_xhat[k]))
    for (long r = 0; r < grp.runs; r++) {
        long at = grp.base + r * grp.stride;
        if (grp.width > 1) {
            #pragma omp simd
            for (int k = 0; k < grp.width; k++) ADD_GRAD(k, at + k);
        } else {
            #pragma omp simd
            for (long i = 0; i < grp.run_length; i++) ADD_GRAD(0, at + i);
        }
    }
#undef ADD_GRAD
}
/* mean[k] and biased var[k] of each group k of the block, in two passes; in NORM_LANES lanes
 * for a block of one group, in one per group for a block of several. */
static void group_mean_var(norm_group grp, const ag_real *x, double *mean, double *var)
{
    double m = (double)grp.runs * grp.run_length;
    if (grp.width > 1) {
        double sum[NORM_BLOCK], sum_sq[NORM_BLOCK]; /* [width] */
        for (int k = 0; k < grp.width; k++) sum[k] = sum_sq[k] = 0;
        for (long r = 0; r < grp.runs; r++) {
            const ag_real *xr = x + grp.base + r * grp.stride;
            #pragma omp simd
            for (int k = 0; k < grp.width; k++) sum[k] += xr[k];
        }
        for (int k = 0; k < grp.width; k++) mean[k] = sum[k] / m;
        for (long r = 0; r < grp.runs; r++) {
            const ag_real *xr = x + grp.base + r * grp.stride;
            #pragma omp simd
            for (int k = 0; k < grp.width; k++) {
                double d = xr[k] - mean[k];
                sum_sq[k] += d * d;
            }
        }
        for (int k = 0; k < grp.width; k++) var[k] = sum_sq[k] / m;
        return;
    }
    double sum[NORM_LANES] = { 0 }, sum_sq[NORM_LANES] = { 0 };
    for (long r = 0; r < grp.runs; r++) {
        const ag_real *xr = x + grp.base + r * grp.stride;
        for (long i = 0; i < grp.run_length; i += NORM_LANES) {
            int lanes = lanes_at(grp.run_length, i);
            for (int l = 0; l < lanes; l++) sum[l] += xr[i + l];
        }
    }
    double mu = lanes_total(sum) / m;
    for (long r = 0; r < grp.runs; r++) {
        const ag_real *xr = x + grp.base + r * grp.stride;
        for (long i = 0; i < grp.run_length; i += NORM_LANES) {
            int lanes = lanes_at(grp.run_length, i);
            for (int l = 0; l < lanes; l++) {
                double d = xr[i + l] - mu;
                sum_sq[l] += d * d;
            }
        }
    }
    mean[0] = mu;
    var[0] = lanes_total(sum_sq) / m;
}
enum { BN_X, BN_GAMMA, BN_BETA, BN_RUNNING_MEAN, BN_RUNNING_VAR };
enum { BN_IARG_TRAINING = 0 };
enum { BN_FARG_MOMENTUM = 0, BN_FARG_EPS = 1 };

typedef struct batch_norm_saved {
    double *mean;     /* [C] the mean the forward subtracted: batch or running */
    double *var;      /* [C] the variance it divided by: biased batch variance, or running */
    double *inv_std;  /* [C] 1 / sqrt(var + eps) */
} batch_norm_saved;

/* Channels per block of x [N, C] or [N, C, H, W]: NORM_BLOCK side by side in [N, C], where a
 * channel's numbers are C apart; one in [N, C, H, W], where they come in runs of H*W. */
static int channels_per_block(const ag_tensor *x)
{
    return x->ndim == 2 ? NORM_BLOCK : 1;
}

/* The numbers of the channels from c0 on, `width` of them: N runs of H*W each (1 for
 * [N, C]), C*H*W apart. */
static norm_group channel_block(const ag_tensor *x, int c0, int width)
{
    long positions = x->size / ((long)x->shape[0] * x->shape[1]); /* H*W, or 1 */
    norm_group grp = { c0 * positions, x->shape[0], positions, x->shape[1] * positions, width };
    return grp;
}
static void batch_norm_forward(ag_node *n)
{
    const ag_tensor *x = n->in[BN_X];
    const ag_real *gamma = n->in[BN_GAMMA]->value, *beta = n->in[BN_BETA]->value;
    const ag_real *running_mean = n->in[BN_RUNNING_MEAN]->value;
    const ag_real *running_var = n->in[BN_RUNNING_VAR]->value;
    batch_norm_saved *saved = n->saved;
    int channels = x->shape[1], per_block = channels_per_block(x);
    int blocks = (channels + per_block - 1) / per_block;
    int training = n->iarg[BN_IARG_TRAINING];
    double eps = n->farg[BN_FARG_EPS];
    #pragma omp parallel for schedule(static)
    for (int block = 0; block < blocks; block++) {
        int c0 = block * per_block, width = channels - c0 < per_block ? channels - c0 : per_block;
        norm_group grp = channel_block(x, c0, width);
        double *mean = saved->mean + c0, *var = saved->var + c0; /* [width] */
        double *inv_std = saved->inv_std + c0;                   /* [width] */
        if (training) {
            group_mean_var(grp, x->value, mean, var);
        } else {
            for (int k = 0; k < width; k++) {
                mean[k] = running_mean[c0 + k];
                var[k] = running_var[c0 + k];
            }
        }
        for (int k = 0; k < width; k++) inv_std[k] = 1.0 / sqrt(var[k] + eps);
        #define NORMALISE(k, at)                                                                 \
            n->out->value[at] = (ag_real)(gamma[c0 + (k)] * (x->value[at] - mean[k]) * inv_std[k] \
                                          + beta[c0 + (k)])
        for (long r = 0; r < grp.runs; r++) {
            long at = grp.base + r * grp.stride;
            if (width > 1) {
                #pragma omp simd
                for (int k = 0; k < width; k++) NORMALISE(k, at + k);
            } else {
                #pragma omp simd
                for (long i = 0; i < grp.run_length; i++) NORMALISE(0, at + i);
            }
        }
        #undef NORMALISE
    }
}
static void batch_norm_backward(ag_node *n)
{
    ag_tensor *x = n->in[BN_X], *gamma = n->in[BN_GAMMA], *beta = n->in[BN_BETA];
    const ag_real *dy = n->out->grad;
    const batch_norm_saved *saved = n->saved;
    int channels = x->shape[1], per_block = channels_per_block(x);
    int blocks = (channels + per_block - 1) / per_block;
    int training = n->iarg[BN_IARG_TRAINING];
    #pragma omp parallel for schedule(static)
    for (int block = 0; block < blocks; block++) {
        int c0 = block * per_block, width = channels - c0 < per_block ? channels - c0 : per_block;
        norm_group grp = channel_block(x, c0, width);
        const double *mean = saved->mean + c0, *inv_std = saved->inv_std + c0; /* [width] */
        double scale[NORM_BLOCK];                                               /* [width] */
        norm_sums sums[NORM_BLOCK];                                             /* [width] */
        for (int k = 0; k < width; k++) scale[k] = gamma->value[c0 + k];
        normalisation_sums(grp, x->value, dy, scale, mean, inv_std, sums);
        for (int k = 0; k < width; k++) {
            if (gamma->requires_grad)
                gamma->grad[c0 + k] = (ag_grad_is_new(n, BN_GAMMA) ? 0 : gamma->grad[c0 + k])
                                      + (ag_real)sums[k].dy_xhat;
            if (beta->requires_grad)
                beta->grad[c0 + k] = (ag_grad_is_new(n, BN_BETA) ? 0 : beta->grad[c0 + k])
                                     + (ag_real)sums[k].dy;
        }
        if (x->requires_grad) {
            if (training)
                add_normalisation_grad(grp, x->value, dy, scale, mean, inv_std, sums, x->grad,
                                       ag_grad_is_new(n, BN_X));
            else
                for (long r = 0, assign = ag_grad_is_new(n, BN_X); r < grp.runs; r++) {
                    long at = grp.base + r * grp.stride;
                    if (width > 1) {
                        #pragma omp simd
                        for (int k = 0; k < width; k++)
                            x->grad[at + k] = (assign ? 0 : x->grad[at + k])
                                              + (ag_real)(scale[k] * inv_std[k] * dy[at + k]);
                    } else {
                        #pragma omp simd
                        for (long i = 0; i < grp.run_length; i++)
                            x->grad[at + i] = (assign ? 0 : x->grad[at + i])
                                              + (ag_real)(scale[0] * inv_std[0] * dy[at + i]);
                    }
                }
        }
    }
}
static void batch_norm_run(ag_node *n, ag_action action)
{
    if (action == AG_FORWARD)
        batch_norm_forward(n);
    else
        batch_norm_backward(n);
}

const ag_op ag_op_batch_norm = { "batch_norm", batch_norm_run, AG_OUTPUT_ASSIGNED,
                                 AG_GRAD_ASSIGNED };
static void check_channel_tensor(const char *op, const char *what, const ag_tensor *v,
                                 const ag_tensor *x)
{
    char vs[AG_SHAPE_STR_SIZE], xs[AG_SHAPE_STR_SIZE];
    if (v == NULL)
        ag_fatal("%s: %s is NULL; it must be a tensor of shape [%d]", op, what, x->shape[1]);
    if (v->ndim != 1 || v->shape[0] != x->shape[1])
        ag_fatal("%s: %s has shape %s but x %s has %d channels; expected [%d]", op, what,
                 ag_shape_str(v, vs), ag_shape_str(x, xs), x->shape[1], x->shape[1]);
}

ag_tensor *ag_batch_norm(ag_tape *t, ag_tensor *x, ag_tensor *gamma, ag_tensor *beta,
                         ag_tensor *running_mean, ag_tensor *running_var,
                         double momentum, double eps)
{
    char xs[AG_SHAPE_STR_SIZE];
    if (x == NULL) ag_fatal("batch_norm: x is NULL");
    if (x->ndim != 2 && x->ndim != 4)
        ag_fatal("batch_norm: x has shape %s; expected [N, C] or [N, C, H, W]",
                 ag_shape_str(x, xs));
    check_channel_tensor("batch_norm", "gamma", gamma, x);
    check_channel_tensor("batch_norm", "beta", beta, x);
    check_channel_tensor("batch_norm", "running_mean", running_mean, x);
    check_channel_tensor("batch_norm", "running_var", running_var, x);
    if (running_mean->requires_grad || running_var->requires_grad)
        ag_fatal("batch_norm: the running statistics need no gradient; make them with "
                 "ag_buffer_new, not ag_param_new");
    if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1))
        ag_fatal("batch_norm: eps = %g and momentum = %g; expected eps >= 0 and momentum "
                 "in [0, 1]", eps, momentum);
    long per_channel = x->size / x->shape[1];
    if (t->training && per_channel < 2)
        ag_fatal("batch_norm: x %s has one value per channel; training needs at least two "
                 "(a larger batch, or ag_tape_set_training(t, 0))", ag_shape_str(x, xs));
    ag_tensor *inputs[5] = { x, gamma, beta, running_mean, running_var };
    ag_node *n = ag_node_new(t, &ag_op_batch_norm, 5, inputs, x->ndim, x->shape);
    n->iarg[BN_IARG_TRAINING] = t->training;
    n->farg[BN_FARG_MOMENTUM] = momentum;
    n->farg[BN_FARG_EPS] = eps;
    batch_norm_saved *saved = ag_arena_alloc(t, sizeof *saved);
    size_t channel_bytes = (size_t)x->shape[1] * sizeof(double);
    saved->mean = ag_arena_alloc(t, channel_bytes);
    saved->var = ag_arena_alloc(t, channel_bytes);
    saved->inv_std = ag_arena_alloc(t, channel_bytes);
    n->saved = saved;
    ag_tensor *y = ag_node_forward(n);
    if (n->iarg[BN_IARG_TRAINING])
        {
            double unbias = (double)per_channel / (double)(per_channel - 1);
            for (int c = 0; c < x->shape[1]; c++) {
                running_mean->value[c] =
                    (ag_real)((1 - momentum) * running_mean->value[c] + momentum * saved->mean[c]);
                running_var->value[c] =
                    (ag_real)((1 - momentum) * running_var->value[c] + momentum * unbias * saved->var[c]);
            }
        }
    return y;
}
void ag_column_mean_var(const ag_real *m, long rows, int cols, double *mean, double *var)
{
    int blocks = (cols + NORM_BLOCK - 1) / NORM_BLOCK;
    #pragma omp parallel for schedule(static)
    for (int block = 0; block < blocks; block++) {
        int c0 = block * NORM_BLOCK, width = cols - c0 < NORM_BLOCK ? cols - c0 : NORM_BLOCK;
        norm_group grp = { c0, rows, 1, cols, width };
        group_mean_var(grp, m, mean + c0, var + c0);
    }
}
enum { LN_X, LN_GAMMA, LN_BETA };
enum { LN_FARG_EPS = 0 };

typedef struct layer_norm_saved {
    double *mean;     /* [rows] */
    double *inv_std;  /* [rows] 1 / sqrt(biased variance + eps) */
} layer_norm_saved;

static void layer_norm_forward(ag_node *n)
{
    const ag_tensor *x = n->in[LN_X];
    const ag_real *gamma = n->in[LN_GAMMA]->value, *beta = n->in[LN_BETA]->value;
    layer_norm_saved *saved = n->saved;
    long width = x->shape[x->ndim - 1], rows = x->size / width;
    double eps = n->farg[LN_FARG_EPS];
    #pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        norm_group row = { r * width, 1, width, width, 1 };
        double mean, var;
        group_mean_var(row, x->value, &mean, &var);
        double inv_std = 1.0 / sqrt(var + eps);
        saved->mean[r] = mean;
        saved->inv_std[r] = inv_std;
        for (long d = 0; d < width; d++)
            n->out->value[r * width + d] =
                (ag_real)(gamma[d] * (x->value[r * width + d] - mean) * inv_std + beta[d]);
    }
}
static void layer_norm_backward(ag_node *n)
{
    ag_tensor *x = n->in[LN_X], *gamma = n->in[LN_GAMMA], *beta = n->in[LN_BETA];
    const ag_real *dy = n->out->grad;
    const layer_norm_saved *saved = n->saved;
    long width = x->shape[x->ndim - 1], rows = x->size / width;
    if (x->requires_grad) {
        ag_real *g = ag_arena_alloc(n->tape, (size_t)x->size * sizeof(ag_real)); /* [rows, D] */
        #pragma omp parallel for schedule(static)
        for (long r = 0; r < rows; r++) {
            norm_group row = { r * width, 1, width, width, 1 };
            const double one = 1.0;
            norm_sums sums;
            for (long d = 0; d < width; d++) g[r * width + d] = dy[r * width + d] * gamma->value[d];
            normalisation_sums(row, x->value, g, &one, &saved->mean[r], &saved->inv_std[r], &sums);
            add_normalisation_grad(row, x->value, g, &one, &saved->mean[r], &saved->inv_std[r],
                                   &sums, x->grad, 0);
        }
    }
    if (gamma->requires_grad || beta->requires_grad) {
        #pragma omp parallel for schedule(static)
        for (long d = 0; d < width; d++) {
            double sum_dy = 0, sum_dy_xhat = 0;
            for (long r = 0; r < rows; r++) {
                double xhat = (x->value[r * width + d] - saved->mean[r]) * saved->inv_std[r];
                sum_dy += dy[r * width + d];
                sum_dy_xhat += dy[r * width + d] * xhat;
            }
            if (gamma->requires_grad) gamma->grad[d] += (ag_real)sum_dy_xhat;
            if (beta->requires_grad) beta->grad[d] += (ag_real)sum_dy;
        }
    }
}

static void layer_norm_run(ag_node *n, ag_action action)
{
    if (action == AG_FORWARD)
        layer_norm_forward(n);
    else
        layer_norm_backward(n);
}

const ag_op ag_op_layer_norm = { "layer_norm", layer_norm_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
static void check_row_tensor(const char *what, const ag_tensor *v, const ag_tensor *x)
{
    char vs[AG_SHAPE_STR_SIZE], xs[AG_SHAPE_STR_SIZE];
    int width = x->shape[x->ndim - 1];
    if (v == NULL)
        ag_fatal("layer_norm: %s is NULL; it must be a tensor of shape [%d]", what, width);
    if (v->ndim != 1 || v->shape[0] != width)
        ag_fatal("layer_norm: %s has shape %s but the last axis of x %s has %d entries; "
                 "expected [%d]", what, ag_shape_str(v, vs), ag_shape_str(x, xs), width, width);
}

ag_tensor *ag_layer_norm(ag_tape *t, ag_tensor *x, ag_tensor *gamma, ag_tensor *beta,
                         double eps)
{
    if (x == NULL) ag_fatal("layer_norm: x is NULL");
    if (x->ndim < 1) ag_fatal("layer_norm: x is a scalar; it needs an axis to normalise over");
    check_row_tensor("gamma", gamma, x);
    check_row_tensor("beta", beta, x);
    if (!(eps >= 0)) ag_fatal("layer_norm: eps = %g; expected eps >= 0", eps);
    ag_tensor *inputs[3] = { x, gamma, beta };
    ag_node *n = ag_node_new(t, &ag_op_layer_norm, 3, inputs, x->ndim, x->shape);
    n->farg[LN_FARG_EPS] = eps;
    long rows = x->size / x->shape[x->ndim - 1];
    layer_norm_saved *saved = ag_arena_alloc(t, sizeof *saved);
    saved->mean = ag_arena_alloc(t, (size_t)rows * sizeof(double));
    saved->inv_std = ag_arena_alloc(t, (size_t)rows * sizeof(double));
    n->saved = saved;
    return ag_node_forward(n);
}
enum { DROPOUT_IARG_MASKED = 0 };
enum { DROPOUT_PARALLEL_MIN = 1 << 14 }; /* smaller tensors are not worth waking threads for */
enum { DROPOUT_FARG_P = 0 };

static void dropout_run(ag_node *n, ag_action action)
{
    const ag_real *mask = n->saved; /* [size]: 0 or 1 / (1 - p); NULL: the identity */
    const ag_tensor *x = n->in[0];
    ag_tensor *y = n->out;
    long size = x->size;
    if (action == AG_FORWARD && mask == NULL) {
        memcpy(y->value, x->value, (size_t)size * sizeof(ag_real));
    } else if (action == AG_FORWARD) {
        #pragma omp parallel for schedule(static) if (size >= DROPOUT_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y->value[i] = x->value[i] * mask[i];
    } else if (mask == NULL) {
        #pragma omp parallel for schedule(static) if (size >= DROPOUT_PARALLEL_MIN)
        for (long i = 0; i < size; i++) x->grad[i] += y->grad[i];
    } else {
        #pragma omp parallel for schedule(static) if (size >= DROPOUT_PARALLEL_MIN)
        for (long i = 0; i < size; i++) x->grad[i] += y->grad[i] * mask[i];
    }
}

const ag_op ag_op_dropout = { "dropout", dropout_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_dropout(ag_tape *t, ag_tensor *x, double p, ag_rng *rng)
{
    char xs[AG_SHAPE_STR_SIZE];
    if (x == NULL) ag_fatal("dropout: x is NULL");
    if (!(p >= 0 && p < 1))
        ag_fatal("dropout: p = %g for x %s; the probability of dropping must be in [0, 1)", p,
                 ag_shape_str(x, xs));
    int masked = t->training && p > 0;
    if (masked && rng == NULL)
        ag_fatal("dropout: training with p = %g needs a random number generator, got NULL", p);
    ag_node *n = ag_node_new(t, &ag_op_dropout, 1, &x, x->ndim, x->shape);
    n->iarg[DROPOUT_IARG_MASKED] = masked;
    n->farg[DROPOUT_FARG_P] = p;
    if (masked) {
        ag_real *mask = ag_arena_alloc(t, (size_t)x->size * sizeof(ag_real)); /* [size] */
        ag_real keep = (ag_real)(1.0 / (1.0 - p));
        for (long i = 0; i < x->size; i++) mask[i] = ag_rng_uniform(rng) < p ? 0 : keep;
        n->saved = mask;
    }
    return ag_node_forward(n);
}
