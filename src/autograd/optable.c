/* optable.c -- the table of every operation.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#include "ag.h"

const ag_op *const ag_op_table[] = {
    &ag_op_add,
    &ag_op_sub,
    &ag_op_mul,
    &ag_op_div,
    &ag_op_scale,
    &ag_op_add_scalar,
    &ag_op_neg,
    &ag_op_exp,
    &ag_op_log,
    &ag_op_relu,
    &ag_op_leaky_relu,
    &ag_op_sigmoid,
    &ag_op_tanh,
    &ag_op_softplus,
    &ag_op_matmul,
    &ag_op_linear,
    &ag_op_conv2d,
    &ag_op_sum,
    &ag_op_mean,
    &ag_op_sum_axis,
    &ag_op_mean_axis,
    &ag_op_logsumexp,
    &ag_op_log_softmax,
    &ag_op_cross_entropy,
    &ag_op_diag,
    &ag_op_offdiag,
    &ag_op_reshape,
    &ag_op_permute,
    &ag_op_concat,
    &ag_op_broadcast,
    &ag_op_batch_norm,
    &ag_op_layer_norm,
    &ag_op_dropout,
};

const int ag_op_count = (int)(sizeof ag_op_table / sizeof ag_op_table[0]);
