/* bounds_extra.c -- the estimator lab's bounds: NWJ, MINE and SMILE.
 * Tangled from doc/40-estimator-lab.nw: edit the book, not this file. */
#include <math.h>

#include "dim.h"

/* N, the side of the score matrices, after checking that scores is [B, N, N] with N >= 2. */
static int problem_size(const ag_tensor *scores, const char *who)
{
    char shape[AG_SHAPE_STR_SIZE];
    if (scores == NULL) ag_fatal("%s: the scores are NULL", who);
    if (scores->ndim != 3 || scores->shape[1] != scores->shape[2] || scores->shape[1] < 2)
        ag_fatal("%s: scores must be [B, N, N] with N >= 2 (scores[b, i, j] = T(x_j, y_i)), "
                 "not %s", who, ag_shape_str(scores, shape));
    return scores->shape[1];
}
static double clip(double v, double tau) { return v < -tau ? -tau : v > tau ? tau : v; }

/* For problem b of scores [B, N, N]: the mean of the diagonal, E_P[T], and the log of the
 * mean of e^clip(T) over the off-diagonal, log E_M[e^clip(T)]. */
static void score_moments(const ag_tensor *scores, int b, double tau, double *mean_positive,
                          double *log_mean_exp_negative)
{
    int n = scores->shape[1];
    const ag_real *s = scores->value + (long)b * n * n; /* [N, N] */
    double positive = 0, largest = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) {
        positive += s[(long)i * n + i];
        for (int j = 0; j < n; j++)
            if (j != i && clip(s[(long)i * n + j], tau) > largest)
                largest = clip(s[(long)i * n + j], tau);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (j != i) sum += exp(clip(s[(long)i * n + j], tau) - largest);
    *mean_positive = positive / n;
    *log_mean_exp_negative = largest + log(sum / ((double)n * (n - 1)));
}

double dim_dv_value(const ag_tensor *scores, double tau)
{
    problem_size(scores, "dim_dv_value");
    int problems = scores->shape[0];
    double total = 0;
    for (int b = 0; b < problems; b++) {
        double positive, log_mean_exp;
        score_moments(scores, b, tau, &positive, &log_mean_exp);
        total += positive - log_mean_exp;
    }
    return total / problems;
}

double dim_nwj_value(const ag_tensor *scores, double shift)
{
    problem_size(scores, "dim_nwj_value");
    int problems = scores->shape[0];
    double total = 0;
    for (int b = 0; b < problems; b++) {
        double positive, log_mean_exp;
        score_moments(scores, b, INFINITY, &positive, &log_mean_exp);
        total += positive + shift - exp(log_mean_exp + shift - 1);
    }
    return total / problems;
}
ag_tensor *dim_bound_nwj(ag_tape *t, ag_tensor *scores, dim_bound_state *state)
{
    (void)state; /* NWJ keeps no state */
    int n = problem_size(scores, "dim_bound_nwj"), problems = scores->shape[0];
    ag_tensor *positive = ag_mean_axis(t, ag_diag(t, scores), 1, 0);          /* [B] E_P[T] */
    ag_tensor *negatives = ag_reshape(t, ag_offdiag(t, scores),
                                      AG_SHAPE(problems, n * (n - 1)));         /* [B, N(N-1)] */
    ag_tensor *log_mean_exp = ag_add_scalar(t, ag_logsumexp(t, negatives, 1, 0),
                                            -log((double)n * (n - 1)));         /* [B] L */
    ag_tensor *partition = ag_exp(t, ag_add_scalar(t, log_mean_exp, -1.0));   /* [B] e^(L-1) */
    return ag_mean(t, ag_sub(t, positive, partition));
}
ag_tensor *dim_bound_mine(ag_tape *t, ag_tensor *scores, dim_bound_state *state)
{
    problem_size(scores, "dim_bound_mine");
    int problems = scores->shape[0];
    if (state == NULL)
        ag_fatal("dim_bound_mine: MINE keeps a moving average in a dim_bound_state; pass one "
                 "made by dim_bound_state_init, not NULL");
    double dv = 0, batch_mean = 0;
    for (int b = 0; b < problems; b++) {
        double positive, log_mean_exp;
        score_moments(scores, b, INFINITY, &positive, &log_mean_exp);
        dv += positive - log_mean_exp;
        batch_mean += exp(log_mean_exp);
    }
    dv /= problems;
    batch_mean /= problems;
    if (t->training)
        state->mine_ema = state->mine_ema < 0
                              ? batch_mean
                              : (1 - state->mine_rate) * state->mine_ema + state->mine_rate * batch_mean;
    double denominator = state->mine_ema < 0 ? batch_mean : state->mine_ema;
    ag_tensor *positive = ag_mean(t, ag_diag(t, scores));                      /* E_P[T] */
    ag_tensor *ratio = ag_exp(t, ag_add_scalar(t, ag_offdiag(t, scores),
                                               -log(denominator)));            /* e^T / mu */
    ag_tensor *surrogate = ag_sub(t, positive, ag_mean(t, ratio));
    return ag_add_scalar(t, surrogate, dv - (double)surrogate->value[0]);
}
ag_tensor *dim_bound_smile(ag_tape *t, ag_tensor *scores, dim_bound_state *state)
{
    problem_size(scores, "dim_bound_smile");
    if (state == NULL)
        ag_fatal("dim_bound_smile: SMILE reads its clip from a dim_bound_state; pass one made "
                 "by dim_bound_state_init, not NULL");
    double smile = dim_dv_value(scores, state->smile_tau);
    ag_tensor *jsd = dim_bound_jsd(t, scores, state);                 /* the gradient wanted */
    return ag_add_scalar(t, jsd, smile - (double)jsd->value[0]);      /* the value wanted */
}
