/* bounds.c -- the estimators of mutual information DIM maximises: DV, JSD, infoNCE.
 * Tangled from doc/22-bounds.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <string.h>

/* Stops unless scores is [B, N, N] with N >= 2; returns N. who names the bound. */
static int scores_size(const char *who, const ag_tensor *scores)
{
    char shape[AG_SHAPE_STR_SIZE];
    if (scores == NULL) ag_fatal("%s: the scores are NULL", who);
    if (scores->ndim != 3 || scores->shape[1] != scores->shape[2])
        ag_fatal("%s: the scores must be [B, N, N] (B problems of N codes by N candidates), "
                 "not %s", who, ag_shape_str(scores, shape));
    if (scores->shape[2] < 2)
        ag_fatal("%s: the scores %s have N = %d; a bound needs N >= 2, so that every code has "
                 "a negative", who, ag_shape_str(scores, shape), scores->shape[2]);
    return scores->shape[2];
}
void dim_bound_state_init(dim_bound_state *s)
{
    s->smile_tau = 5.0;
    s->mine_rate = 0.01;
    s->mine_ema = -1.0;
}
ag_tensor *dim_bound_dv(ag_tape *t, ag_tensor *scores, dim_bound_state *state)
{
    (void)state;
    int n = scores_size("dim_bound_dv", scores);
    int problems = scores->shape[0], pairs = n * (n - 1);
    ag_tensor *joint = ag_mean(t, ag_diag(t, scores));      /* E_J[T], mean over b and i */
    ag_tensor *negatives = ag_reshape(t, ag_offdiag(t, scores),
                                      AG_SHAPE(problems, pairs)); /* [B, N(N-1)] */
    ag_tensor *log_sum_exp = ag_logsumexp(t, negatives, -1, 0);    /* [B] */
    ag_tensor *log_mean_exp = ag_add_scalar(t, ag_mean(t, log_sum_exp),
                                            -log((double)pairs)); /* log E_M[e^T] */
    return ag_sub(t, joint, log_mean_exp);
}
ag_tensor *dim_bound_jsd(ag_tape *t, ag_tensor *scores, dim_bound_state *state)
{
    (void)state;
    scores_size("dim_bound_jsd", scores);
    ag_tensor *positives = ag_diag(t, scores);     /* [B, N] */
    ag_tensor *negatives = ag_offdiag(t, scores);  /* [B, N, N-1] */
    ag_tensor *joint = ag_neg(t, ag_mean(t, ag_softplus(t, ag_neg(t, positives))));
                                                   /* E_P[-sp(-T)] */
    ag_tensor *marginals = ag_mean(t, ag_softplus(t, negatives)); /* E_{P x P~}[sp(T)] */
    return ag_sub(t, joint, marginals);
}
ag_tensor *dim_bound_infonce(ag_tape *t, ag_tensor *scores, dim_bound_state *state)
{
    (void)state;
    int n = scores_size("dim_bound_infonce", scores);
    ag_tensor *log_p = ag_log_softmax(t, scores, -1);  /* [B, N, N]: log p(candidate j | y_i) */
    ag_tensor *positive = ag_diag(t, log_p);           /* [B, N]: s_ii - logsumexp_j s_ij */
    return ag_add_scalar(t, ag_mean(t, positive), log((double)n));
}
const dim_bound dim_bounds[] = {
    {"dv", "Eq. 2", "Donsker-Varadhan: E_J[T] - log E_M[e^T] (as in MINE, biased gradient)",
     dim_bound_dv},
    {"jsd", "Eq. 4", "Jensen-Shannon: E_J[-sp(-T)] - E_M[sp(T)] (a classifier of J vs M, < 0)",
     dim_bound_jsd},
    {"infonce", "Eq. 5", "infoNCE: E[T_ii - logsumexp_j T_ij] + log N (never above log N)",
     dim_bound_infonce},
    {"nwj", "NWJ (Nguyen et al. 2010)",
     "E_P[T] - E_M[e^(T-1)]: the KL dual; unbiased, high variance", dim_bound_nwj},
    {"mine", "MINE (Belghazi et al. 2018)",
     "DV's value; gradient with a moving average of E_M[e^T] (rate --mine-rate)",
     dim_bound_mine},
    {"smile", "SMILE (Song and Ermon 2020)",
     "E_P[T] - log E_M[e^clip(T)] (clip --smile-tau); critic trained by JSD's gradient",
     dim_bound_smile},
};

const int dim_nbounds = (int)(sizeof dim_bounds / sizeof dim_bounds[0]);

const dim_bound *dim_bound_find(const char *name)
{
    if (name == NULL) return NULL;
    for (int i = 0; i < dim_nbounds; i++)
        if (strcmp(dim_bounds[i].name, name) == 0) return &dim_bounds[i];
    return NULL;
}
