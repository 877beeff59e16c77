/* ops_reduce.c -- sums, means, logsumexp, log-softmax, cross-entropy, diagonals.
 * Tangled from doc/13-ops-reduce.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <string.h>

/* Below this many values an op runs on one thread: waking a team costs more than it saves. */
enum { REDUCE_PARALLEL_MIN = 1 << 15 };

/* A tensor seen as [outer, n, inner] around one of its axes. */
typedef struct axis_view {
    long outer;  /* product of the dimensions before the axis */
    long n;      /* length of the axis */
    long inner;  /* product of the dimensions after it: the stride along the axis */
} axis_view;

static axis_view view_around(const ag_tensor *x, int axis)
{
    axis_view v = { 1, x->shape[axis], 1 };
    for (int d = 0; d < axis; d++) v.outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++) v.inner *= x->shape[d];
    return v;
}

/* The axis as 0 .. ndim-1 (a negative one counts from the end), or a fatal error. */
static int resolve_axis(const ag_op *op, const ag_tensor *x, int axis)
{
    char shape[AG_SHAPE_STR_SIZE];
    int resolved = axis < 0 ? axis + x->ndim : axis;
    if (resolved < 0 || resolved >= x->ndim)
        ag_fatal("%s: axis %d does not exist in a tensor of shape %s (%d dimensions)",
                 op->name, axis, ag_shape_str(x, shape), x->ndim);
    return resolved;
}

/* The shape of x reduced along axis: the axis dropped, or kept with length 1. Returns ndim. */
static int reduced_shape(const ag_tensor *x, int axis, int keepdim, int shape[AG_MAX_DIMS])
{
    int ndim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != axis) shape[ndim++] = x->shape[d];
        else if (keepdim) shape[ndim++] = 1;
    }
    return ndim;
}
/* log sum_k exp(x[k * stride]) over n values, shifted by their maximum; in double. */
static double line_logsumexp(const ag_real *x, long n, long stride)
{
    double max = -INFINITY;
    for (long k = 0; k < n; k++) {
        double v = x[k * stride];
        if (isnan(v)) return v;
        if (v > max) max = v;
    }
    if (isinf(max)) return max;
    double sum = 0;
    for (long k = 0; k < n; k++) sum += exp((double)x[k * stride] - max);
    return max + log(sum);
}
/* Stops unless s is a batch of square matrices [..., N, N] with N >= min_n. Returns N. */
static int square_size(const ag_op *op, const ag_tensor *s, int min_n)
{
    char shape[AG_SHAPE_STR_SIZE];
    if (s == NULL) ag_fatal("%s: input 0 is NULL", op->name);
    if (s->ndim < 2 || s->shape[s->ndim - 1] != s->shape[s->ndim - 2])
        ag_fatal("%s: needs square matrices [..., N, N], not %s",
                 op->name, ag_shape_str(s, shape));
    if (s->shape[s->ndim - 1] < min_n)
        ag_fatal("%s: needs matrices of at least %d x %d, not %s",
                 op->name, min_n, min_n, ag_shape_str(s, shape));
    return s->shape[s->ndim - 1];
}
enum { SUM_BLOCK = 4096 }; /* values summed by one iteration of the parallel loop */

static double sum_in_blocks(ag_tape *t, const ag_real *x, long size)
{
    long nblocks = (size + SUM_BLOCK - 1) / SUM_BLOCK;
    double *block_sum = ag_arena_alloc(t, (size_t)nblocks * sizeof(double)); /* [nblocks] */
    #pragma omp parallel for if (size >= REDUCE_PARALLEL_MIN)
    for (long b = 0; b < nblocks; b++) {
        long end = (b + 1) * SUM_BLOCK < size ? (b + 1) * SUM_BLOCK : size;
        double sum = 0;
        for (long i = b * SUM_BLOCK; i < end; i++) sum += x[i];
        block_sum[b] = sum;
    }
    double total = 0;
    for (long b = 0; b < nblocks; b++) total += block_sum[b];
    return total;
}

/* Forward: out = scale * sum(x). Backward: every x->grad[i] += scale * out->grad. */
static void scaled_sum(ag_node *n, ag_action a, double scale)
{
    ag_tensor *x = n->in[0];
    if (a == AG_FORWARD) {
        n->out->value[0] = (ag_real)(scale * sum_in_blocks(n->tape, x->value, x->size));
    } else if (x->requires_grad) {
        ag_real g = (ag_real)(scale * n->out->grad[0]);
        ag_real *grad = x->grad; /* [size] */
        long size = x->size;
        #pragma omp parallel for if (size >= REDUCE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) grad[i] += g;
    }
}

static void sum_run(ag_node *n, ag_action a) { scaled_sum(n, a, 1.0); }
static void mean_run(ag_node *n, ag_action a) { scaled_sum(n, a, 1.0 / (double)n->in[0]->size); }

const ag_op ag_op_sum = { "sum", sum_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
const ag_op ag_op_mean = { "mean", mean_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_sum(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(ag_node_new(t, &ag_op_sum, 1, &x, 0, NULL));
}

ag_tensor *ag_mean(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(ag_node_new(t, &ag_op_mean, 1, &x, 0, NULL));
}
/* Forward: out[o, j] = scale * sum_k x[o, k, j]. Backward: x->grad[o, k, j] += scale * g[o, j]. */
static void scaled_sum_along_axis(ag_node *n, ag_action a, double scale)
{
    ag_tensor *x = n->in[0];
    axis_view v = view_around(x, n->iarg[0]);
    long outer = v.outer, len = v.n, inner = v.inner;
    if (a == AG_FORWARD) {
        const ag_real *in = x->value;  /* [outer, len, inner] */
        ag_real *out = n->out->value;  /* [outer, inner] */
        #pragma omp parallel for collapse(2) if (x->size >= REDUCE_PARALLEL_MIN)
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++) {
                const ag_real *line = in + o * len * inner + j;
                double sum = 0;
                for (long k = 0; k < len; k++) sum += line[k * inner];
                out[o * inner + j] = (ag_real)(scale * sum);
            }
    } else if (x->requires_grad) {
        const ag_real *g = n->out->grad; /* [outer, inner] */
        ag_real *grad = x->grad;         /* [outer, len, inner] */
        #pragma omp parallel for collapse(2) if (x->size >= REDUCE_PARALLEL_MIN)
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++) {
                ag_real share = (ag_real)(scale * g[o * inner + j]);
                ag_real *line = grad + o * len * inner + j;
                for (long k = 0; k < len; k++) line[k * inner] += share;
            }
    }
}

static void sum_axis_run(ag_node *n, ag_action a) { scaled_sum_along_axis(n, a, 1.0); }

static void mean_axis_run(ag_node *n, ag_action a)
{
    scaled_sum_along_axis(n, a, 1.0 / (double)n->in[0]->shape[n->iarg[0]]);
}

const ag_op ag_op_sum_axis = { "sum_axis", sum_axis_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
const ag_op ag_op_mean_axis = { "mean_axis", mean_axis_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
/* A node of op reducing x along axis; iarg[0] = the resolved axis, iarg[1] = keepdim. */
static ag_tensor *reduce_along_axis(ag_tape *t, const ag_op *op, ag_tensor *x, int axis,
                                    int keepdim)
{
    int shape[AG_MAX_DIMS];
    int resolved = resolve_axis(op, x, axis);
    int ndim = reduced_shape(x, resolved, keepdim, shape);
    ag_node *n = ag_node_new(t, op, 1, &x, ndim, shape);
    n->iarg[0] = resolved;
    n->iarg[1] = keepdim != 0;
    return ag_node_forward(n);
}

ag_tensor *ag_sum_axis(ag_tape *t, ag_tensor *x, int axis, int keepdim)
{
    return reduce_along_axis(t, &ag_op_sum_axis, x, axis, keepdim);
}

ag_tensor *ag_mean_axis(ag_tape *t, ag_tensor *x, int axis, int keepdim)
{
    return reduce_along_axis(t, &ag_op_mean_axis, x, axis, keepdim);
}
static void logsumexp_run(ag_node *n, ag_action a)
{
    ag_tensor *x = n->in[0];
    axis_view v = view_around(x, n->iarg[0]);
    long outer = v.outer, len = v.n, inner = v.inner;
    if (a == AG_FORWARD) {
        double *lse = ag_arena_alloc(n->tape, (size_t)(outer * inner) * sizeof(double));
        const ag_real *in = x->value;  /* [outer, len, inner] */
        ag_real *out = n->out->value;  /* [outer, inner] */
        n->saved = lse;                /* [outer, inner] */
        #pragma omp parallel for collapse(2) if (x->size >= REDUCE_PARALLEL_MIN)
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++) {
                lse[o * inner + j] = line_logsumexp(in + o * len * inner + j, len, inner);
                out[o * inner + j] = (ag_real)lse[o * inner + j];
            }
    } else if (x->requires_grad) {
        const double *lse = n->saved;      /* [outer, inner] */
        const ag_real *in = x->value;      /* [outer, len, inner] */
        const ag_real *g = n->out->grad;   /* [outer, inner] */
        ag_real *grad = x->grad;           /* [outer, len, inner] */
        #pragma omp parallel for collapse(2) if (x->size >= REDUCE_PARALLEL_MIN)
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++) {
                long first = o * len * inner + j;
                double gy = g[o * inner + j], y = lse[o * inner + j];
                for (long k = 0; k < len; k++) {
                    long at = first + k * inner;
                    grad[at] += (ag_real)(gy * exp((double)in[at] - y));
                }
            }
    }
}

const ag_op ag_op_logsumexp = { "logsumexp", logsumexp_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_logsumexp(ag_tape *t, ag_tensor *x, int axis, int keepdim)
{
    return reduce_along_axis(t, &ag_op_logsumexp, x, axis, keepdim);
}
static void log_softmax_run(ag_node *n, ag_action a)
{
    ag_tensor *x = n->in[0];
    axis_view v = view_around(x, n->iarg[0]);
    long outer = v.outer, len = v.n, inner = v.inner;
    const ag_real *y = n->out->value; /* [outer, len, inner] */
    if (a == AG_FORWARD) {
        const ag_real *in = x->value; /* [outer, len, inner] */
        ag_real *out = n->out->value; /* [outer, len, inner] */
        #pragma omp parallel for collapse(2) if (x->size >= REDUCE_PARALLEL_MIN)
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++) {
                long first = o * len * inner + j;
                double lse = line_logsumexp(in + first, len, inner);
                for (long k = 0; k < len; k++)
                    out[first + k * inner] = (ag_real)((double)in[first + k * inner] - lse);
            }
    } else if (x->requires_grad) {
        const ag_real *g = n->out->grad; /* [outer, len, inner] */
        ag_real *grad = x->grad;         /* [outer, len, inner] */
        #pragma omp parallel for collapse(2) if (x->size >= REDUCE_PARALLEL_MIN)
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++) {
                long first = o * len * inner + j;
                double gsum = 0;
                for (long k = 0; k < len; k++) gsum += g[first + k * inner];
                for (long k = 0; k < len; k++) {
                    long at = first + k * inner;
                    grad[at] += (ag_real)(g[at] - exp((double)y[at]) * gsum);
                }
            }
    }
}

const ag_op ag_op_log_softmax = { "log_softmax", log_softmax_run, AG_OUTPUT_ASSIGNED,
                                  AG_GRAD_ZEROED };

ag_tensor *ag_log_softmax(ag_tape *t, ag_tensor *x, int axis)
{
    int resolved = resolve_axis(&ag_op_log_softmax, x, axis);
    ag_node *n = ag_node_new(t, &ag_op_log_softmax, 1, &x, x->ndim, x->shape);
    n->iarg[0] = resolved;
    return ag_node_forward(n);
}
/* What the forward of a cross-entropy keeps for its backward. */
typedef struct cross_entropy_saved {
    int *labels;  /* [N], a copy of the caller's */
    double *lse;  /* [N], the logsumexp of each row */
} cross_entropy_saved;

static void cross_entropy_run(ag_node *n, ag_action a)
{
    ag_tensor *x = n->in[0];
    cross_entropy_saved *s = n->saved;
    long rows = x->shape[0], classes = x->shape[1];
    const ag_real *logits = x->value; /* [N, K] */
    if (a == AG_FORWARD) {
        #pragma omp parallel for if (x->size >= REDUCE_PARALLEL_MIN)
        for (long i = 0; i < rows; i++)
            s->lse[i] = line_logsumexp(logits + i * classes, classes, 1);
        double total = 0;
        for (long i = 0; i < rows; i++) total += s->lse[i] - logits[i * classes + s->labels[i]];
        n->out->value[0] = (ag_real)(total / (double)rows);
    } else if (x->requires_grad) {
        double g = n->out->grad[0] / (double)rows;
        ag_real *grad = x->grad; /* [N, K] */
        #pragma omp parallel for if (x->size >= REDUCE_PARALLEL_MIN)
        for (long i = 0; i < rows; i++) {
            for (long k = 0; k < classes; k++) {
                double p = exp((double)logits[i * classes + k] - s->lse[i]);
                grad[i * classes + k] += (ag_real)(g * (p - (k == s->labels[i])));
            }
        }
    }
}

const ag_op ag_op_cross_entropy = { "cross_entropy", cross_entropy_run, AG_OUTPUT_ASSIGNED,
                                    AG_GRAD_ZEROED };
ag_tensor *ag_cross_entropy(ag_tape *t, ag_tensor *logits, const int *labels)
{
    char shape[AG_SHAPE_STR_SIZE];
    if (logits == NULL || logits->ndim != 2)
        ag_fatal("cross_entropy: the logits must be [N, K], not %s",
                 logits ? ag_shape_str(logits, shape) : "NULL");
    if (labels == NULL) ag_fatal("cross_entropy: the labels are NULL");
    int rows = logits->shape[0], classes = logits->shape[1];
    for (int i = 0; i < rows; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            ag_fatal("cross_entropy: label %d of row %d is out of range: logits %s have "
                     "classes 0 to %d", labels[i], i, ag_shape_str(logits, shape), classes - 1);
    ag_node *n = ag_node_new(t, &ag_op_cross_entropy, 1, &logits, 0, NULL);
    cross_entropy_saved *s = ag_arena_alloc(t, sizeof *s);
    s->labels = ag_arena_alloc(t, (size_t)rows * sizeof(int));
    s->lse = ag_arena_alloc(t, (size_t)rows * sizeof(double));
    memcpy(s->labels, labels, (size_t)rows * sizeof(int));
    n->saved = s;
    return ag_node_forward(n);
}
static void diag_run(ag_node *n, ag_action a)
{
    ag_tensor *s = n->in[0];
    long size = s->shape[s->ndim - 1], batch = s->size / (size * size);
    if (a == AG_FORWARD) {
        const ag_real *in = s->value;  /* [batch, N, N] */
        ag_real *out = n->out->value;  /* [batch, N] */
        for (long b = 0; b < batch; b++)
            for (long i = 0; i < size; i++) out[b * size + i] = in[(b * size + i) * size + i];
    } else if (s->requires_grad) {
        const ag_real *g = n->out->grad; /* [batch, N] */
        ag_real *grad = s->grad;         /* [batch, N, N] */
        for (long b = 0; b < batch; b++)
            for (long i = 0; i < size; i++) grad[(b * size + i) * size + i] += g[b * size + i];
    }
}

const ag_op ag_op_diag = { "diag", diag_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_diag(ag_tape *t, ag_tensor *s)
{
    square_size(&ag_op_diag, s, 1);
    return ag_node_forward(ag_node_new(t, &ag_op_diag, 1, &s, s->ndim - 1, s->shape));
}
static void offdiag_run(ag_node *n, ag_action a)
{
    ag_tensor *s = n->in[0];
    long size = s->shape[s->ndim - 1], rows = s->size / size;
    if (a == AG_FORWARD) {
        const ag_real *in = s->value;  /* [batch * N rows, N] */
        ag_real *out = n->out->value;  /* [batch * N rows, N - 1] */
        #pragma omp parallel for if (s->size >= REDUCE_PARALLEL_MIN)
        for (long r = 0; r < rows; r++) {
            long i = r % size; /* the row within its matrix: the entry to drop */
            const ag_real *from = in + r * size;
            ag_real *to = out + r * (size - 1);
            for (long j = 0; j < i; j++) to[j] = from[j];
            for (long j = i + 1; j < size; j++) to[j - 1] = from[j];
        }
    } else if (s->requires_grad) {
        const ag_real *g = n->out->grad; /* [batch * N rows, N - 1] */
        ag_real *grad = s->grad;         /* [batch * N rows, N] */
        #pragma omp parallel for if (s->size >= REDUCE_PARALLEL_MIN)
        for (long r = 0; r < rows; r++) {
            long i = r % size;
            const ag_real *from = g + r * (size - 1);
            ag_real *to = grad + r * size;
            for (long j = 0; j < i; j++) to[j] += from[j];
            for (long j = i + 1; j < size; j++) to[j] += from[j - 1];
        }
    }
}

const ag_op ag_op_offdiag = { "offdiag", offdiag_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_offdiag(ag_tape *t, ag_tensor *s)
{
    int shape[AG_MAX_DIMS];
    int size = square_size(&ag_op_offdiag, s, 2);
    memcpy(shape, s->shape, sizeof shape);
    shape[s->ndim - 1] = size - 1;
    return ag_node_forward(ag_node_new(t, &ag_op_offdiag, 1, &s, s->ndim, shape));
}
