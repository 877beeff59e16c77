/* cases_reduce.c -- gradient-check cases of the reductions and losses (doc/13-ops-reduce.nw).
 *
 * Several shapes per op, every axis of the axis ops (and a negative one), with and without
 * keepdim; logsumexp, log_softmax and cross_entropy also with one entry of 1e4 (where an
 * unshifted exp overflows even in double) and with a whole line near 1e4; diag and offdiag of
 * batched [3, 4, 4] and [2, 2, 3, 3] and of unbatched [5, 5] score matrices. */
#include "gradcheck.h"

/* One apply function per variant: the op under test with its attributes fixed. */
#define APPLY(name, call) \
    static ag_tensor *name(ag_tape *t, ag_tensor **in) { return call; }

/* A case with one input, checked, uniform in [-2, 2]; the shape is the trailing arguments. */
#define ONE_INPUT(op_, what_, apply_, ndim_, ...)                                         \
    { .op = op_, .what = what_, .ninputs = 1, .ndim = { ndim_ }, .shape = { { __VA_ARGS__ } }, \
      .lo = -2, .hi = 2, .check_mask = 1, .apply = apply_ }

/* The same with a custom init. */
#define ONE_INPUT_INIT(op_, what_, apply_, init_, ndim_, ...)                             \
    { .op = op_, .what = what_, .ninputs = 1, .ndim = { ndim_ }, .shape = { { __VA_ARGS__ } }, \
      .lo = -2, .hi = 2, .check_mask = 1, .init = init_, .apply = apply_ }

APPLY(sum_all, ag_sum(t, in[0]))
APPLY(mean_all, ag_mean(t, in[0]))

APPLY(sum_axis_0, ag_sum_axis(t, in[0], 0, 0))
APPLY(sum_axis_1, ag_sum_axis(t, in[0], 1, 0))
APPLY(sum_axis_2, ag_sum_axis(t, in[0], 2, 0))
APPLY(sum_axis_3, ag_sum_axis(t, in[0], 3, 0))
APPLY(sum_axis_last, ag_sum_axis(t, in[0], -1, 0))
APPLY(sum_axis_0_keep, ag_sum_axis(t, in[0], 0, 1))
APPLY(sum_axis_1_keep, ag_sum_axis(t, in[0], 1, 1))
APPLY(sum_axis_2_keep, ag_sum_axis(t, in[0], 2, 1))

APPLY(mean_axis_0, ag_mean_axis(t, in[0], 0, 0))
APPLY(mean_axis_1, ag_mean_axis(t, in[0], 1, 0))
APPLY(mean_axis_2, ag_mean_axis(t, in[0], 2, 0))
APPLY(mean_axis_3, ag_mean_axis(t, in[0], 3, 0))
APPLY(mean_axis_last, ag_mean_axis(t, in[0], -1, 0))
APPLY(mean_axis_0_keep, ag_mean_axis(t, in[0], 0, 1))
APPLY(mean_axis_1_keep, ag_mean_axis(t, in[0], 1, 1))
APPLY(mean_axis_2_keep, ag_mean_axis(t, in[0], 2, 1))

APPLY(logsumexp_0, ag_logsumexp(t, in[0], 0, 0))
APPLY(logsumexp_1, ag_logsumexp(t, in[0], 1, 0))
APPLY(logsumexp_2, ag_logsumexp(t, in[0], 2, 0))
APPLY(logsumexp_3, ag_logsumexp(t, in[0], 3, 0))
APPLY(logsumexp_last, ag_logsumexp(t, in[0], -1, 0))
APPLY(logsumexp_1_keep, ag_logsumexp(t, in[0], 1, 1))

APPLY(log_softmax_0, ag_log_softmax(t, in[0], 0))
APPLY(log_softmax_1, ag_log_softmax(t, in[0], 1))
APPLY(log_softmax_2, ag_log_softmax(t, in[0], 2))
APPLY(log_softmax_3, ag_log_softmax(t, in[0], 3))
APPLY(log_softmax_last, ag_log_softmax(t, in[0], -1))

/* Labels are fixed arrays; only the logits are checked. */
static const int labels_4x5[4] = { 0, 4, 2, 2 };
static const int labels_6x3[6] = { 2, 0, 1, 1, 0, 2 };
static const int labels_1x7[1] = { 6 };
static const int labels_3x4[3] = { 1, 3, 0 };
APPLY(cross_entropy_4x5, ag_cross_entropy(t, in[0], labels_4x5))
APPLY(cross_entropy_6x3, ag_cross_entropy(t, in[0], labels_6x3))
APPLY(cross_entropy_1x7, ag_cross_entropy(t, in[0], labels_1x7))
APPLY(cross_entropy_3x4, ag_cross_entropy(t, in[0], labels_3x4))

APPLY(diag_of, ag_diag(t, in[0]))
APPLY(offdiag_of, ag_offdiag(t, in[0]))

/* One entry of 1e4 at flat index 1: row 0 of a 2-D tensor, and the line of index 1 along
 * axis 0. exp(1e4) overflows float and double alike; the softmax there is one-hot. */
static void one_huge_entry(ag_tensor **in, ag_rng *rng)
{
    (void)rng;
    in[0]->value[1] = 1e4;
}

/* Two entries near 1e4 in row 0 (a softmax of about 0.62 / 0.38 between them) and one of
 * -1e4 in row 1 (a softmax of 0 there). */
static void huge_pair_and_tiny(ag_tensor **in, ag_rng *rng)
{
    (void)rng;
    in[0]->value[1] = 1e4;
    in[0]->value[2] = 1e4 - 0.5;
    in[0]->value[in[0]->shape[in[0]->ndim - 1] + 1] = -1e4;
}

/* Every entry of row 0 near 1e4: the logsumexp is near 1e4 + log(K), with a spread softmax. */
static void huge_row(ag_tensor **in, ag_rng *rng)
{
    (void)rng;
    for (int k = 0; k < in[0]->shape[in[0]->ndim - 1]; k++) in[0]->value[k] += 1e4;
}

const gc_case gc_cases_reduce[] = {
    ONE_INPUT("sum", "scalar []", sum_all, 0, 0),
    ONE_INPUT("sum", "[5]", sum_all, 1, 5),
    ONE_INPUT("sum", "[3,4]", sum_all, 2, 3, 4),
    ONE_INPUT("sum", "[2,3,4]", sum_all, 3, 2, 3, 4),
    ONE_INPUT("sum", "[2,3,2,2]", sum_all, 4, 2, 3, 2, 2),

    ONE_INPUT("mean", "scalar []", mean_all, 0, 0),
    ONE_INPUT("mean", "[5]", mean_all, 1, 5),
    ONE_INPUT("mean", "[3,4]", mean_all, 2, 3, 4),
    ONE_INPUT("mean", "[2,3,4]", mean_all, 3, 2, 3, 4),
    ONE_INPUT("mean", "[2,3,2,2]", mean_all, 4, 2, 3, 2, 2),

    ONE_INPUT("sum_axis", "[5] axis 0 -> scalar", sum_axis_0, 1, 5),
    ONE_INPUT("sum_axis", "[3,4] axis 0", sum_axis_0, 2, 3, 4),
    ONE_INPUT("sum_axis", "[3,4] axis 1", sum_axis_1, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis 0", sum_axis_0, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis 1", sum_axis_1, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis 2", sum_axis_2, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis -1", sum_axis_last, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis 0 keepdim", sum_axis_0_keep, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis 1 keepdim", sum_axis_1_keep, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,4] axis 2 keepdim", sum_axis_2_keep, 3, 2, 3, 4),
    ONE_INPUT("sum_axis", "[2,3,2,2] axis 0", sum_axis_0, 4, 2, 3, 2, 2),
    ONE_INPUT("sum_axis", "[2,3,2,2] axis 1", sum_axis_1, 4, 2, 3, 2, 2),
    ONE_INPUT("sum_axis", "[2,3,2,2] axis 2", sum_axis_2, 4, 2, 3, 2, 2),
    ONE_INPUT("sum_axis", "[2,3,2,2] axis 3", sum_axis_3, 4, 2, 3, 2, 2),

    ONE_INPUT("mean_axis", "[5] axis 0 -> scalar", mean_axis_0, 1, 5),
    ONE_INPUT("mean_axis", "[3,4] axis 0", mean_axis_0, 2, 3, 4),
    ONE_INPUT("mean_axis", "[3,4] axis 1", mean_axis_1, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis 0", mean_axis_0, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis 1", mean_axis_1, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis 2", mean_axis_2, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis -1", mean_axis_last, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis 0 keepdim", mean_axis_0_keep, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis 1 keepdim", mean_axis_1_keep, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,4] axis 2 keepdim", mean_axis_2_keep, 3, 2, 3, 4),
    ONE_INPUT("mean_axis", "[2,3,2,2] axis 0", mean_axis_0, 4, 2, 3, 2, 2),
    ONE_INPUT("mean_axis", "[2,3,2,2] axis 1", mean_axis_1, 4, 2, 3, 2, 2),
    ONE_INPUT("mean_axis", "[2,3,2,2] axis 2", mean_axis_2, 4, 2, 3, 2, 2),
    ONE_INPUT("mean_axis", "[2,3,2,2] axis 3", mean_axis_3, 4, 2, 3, 2, 2),

    ONE_INPUT("logsumexp", "[5] axis 0 -> scalar", logsumexp_0, 1, 5),
    ONE_INPUT("logsumexp", "[3,4] axis 0", logsumexp_0, 2, 3, 4),
    ONE_INPUT("logsumexp", "[3,4] axis 1", logsumexp_1, 2, 3, 4),
    ONE_INPUT("logsumexp", "[3,4] axis 1 keepdim", logsumexp_1_keep, 2, 3, 4),
    ONE_INPUT("logsumexp", "[2,3,4] axis 0", logsumexp_0, 3, 2, 3, 4),
    ONE_INPUT("logsumexp", "[2,3,4] axis 1", logsumexp_1, 3, 2, 3, 4),
    ONE_INPUT("logsumexp", "[2,3,4] axis 2", logsumexp_2, 3, 2, 3, 4),
    ONE_INPUT("logsumexp", "[2,3,4] axis -1", logsumexp_last, 3, 2, 3, 4),
    ONE_INPUT("logsumexp", "[2,3,2,2] axis 3", logsumexp_3, 4, 2, 3, 2, 2),
    ONE_INPUT_INIT("logsumexp", "[3,4] axis 1, one entry 1e4", logsumexp_1, one_huge_entry,
                   2, 3, 4),
    ONE_INPUT_INIT("logsumexp", "[3,4] axis 0, one entry 1e4", logsumexp_0, one_huge_entry,
                   2, 3, 4),
    ONE_INPUT_INIT("logsumexp", "[3,4] axis 1, 1e4 and 1e4-0.5, -1e4", logsumexp_1,
                   huge_pair_and_tiny, 2, 3, 4),
    ONE_INPUT_INIT("logsumexp", "[3,4] axis 1, a row near 1e4", logsumexp_1, huge_row, 2, 3, 4),

    ONE_INPUT("log_softmax", "[5] axis 0", log_softmax_0, 1, 5),
    ONE_INPUT("log_softmax", "[3,5] axis 0", log_softmax_0, 2, 3, 5),
    ONE_INPUT("log_softmax", "[3,5] axis 1", log_softmax_1, 2, 3, 5),
    ONE_INPUT("log_softmax", "[2,3,4] axis 0", log_softmax_0, 3, 2, 3, 4),
    ONE_INPUT("log_softmax", "[2,3,4] axis 1", log_softmax_1, 3, 2, 3, 4),
    ONE_INPUT("log_softmax", "[2,3,4] axis 2", log_softmax_2, 3, 2, 3, 4),
    ONE_INPUT("log_softmax", "[2,3,4] axis -1", log_softmax_last, 3, 2, 3, 4),
    ONE_INPUT("log_softmax", "[2,2,3,2] axis 3", log_softmax_3, 4, 2, 2, 3, 2),
    ONE_INPUT_INIT("log_softmax", "[2,3] axis 1, one entry 1e4", log_softmax_1,
                   one_huge_entry, 2, 2, 3),
    ONE_INPUT_INIT("log_softmax", "[3,4] axis 1, 1e4 and 1e4-0.5, -1e4", log_softmax_1,
                   huge_pair_and_tiny, 2, 3, 4),
    ONE_INPUT_INIT("log_softmax", "[3,4] axis 1, a row near 1e4", log_softmax_1, huge_row,
                   2, 3, 4),

    ONE_INPUT("cross_entropy", "[4,5] labels 0 4 2 2", cross_entropy_4x5, 2, 4, 5),
    ONE_INPUT("cross_entropy", "[6,3]", cross_entropy_6x3, 2, 6, 3),
    ONE_INPUT("cross_entropy", "[1,7] label 6 (the last class)", cross_entropy_1x7, 2, 1, 7),
    { .op = "cross_entropy", .what = "[3,4] logits in [-20, 20]", .ninputs = 1, .ndim = { 2 },
      .shape = { { 3, 4 } }, .lo = -20, .hi = 20, .check_mask = 1, .apply = cross_entropy_3x4 },
    ONE_INPUT_INIT("cross_entropy", "[4,5], logit 1e4 at a wrong class of row 0",
                   cross_entropy_4x5, one_huge_entry, 2, 4, 5),
    ONE_INPUT_INIT("cross_entropy", "[3,4], row 0 near 1e4", cross_entropy_3x4, huge_row, 2, 3, 4),

    ONE_INPUT("diag", "[5,5]", diag_of, 2, 5, 5),
    ONE_INPUT("diag", "[3,4,4] batched", diag_of, 3, 3, 4, 4),
    ONE_INPUT("diag", "[2,2,3,3] batched twice", diag_of, 4, 2, 2, 3, 3),
    ONE_INPUT("diag", "[1,1]", diag_of, 2, 1, 1),

    ONE_INPUT("offdiag", "[5,5]", offdiag_of, 2, 5, 5),
    ONE_INPUT("offdiag", "[3,4,4] batched", offdiag_of, 3, 3, 4, 4),
    ONE_INPUT("offdiag", "[2,2,3,3] batched twice", offdiag_of, 4, 2, 2, 3, 3),
    ONE_INPUT("offdiag", "[2,2]", offdiag_of, 2, 2, 2),
    { 0 }
};
