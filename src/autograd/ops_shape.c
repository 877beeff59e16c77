/* ops_shape.c -- reshape, permute, concat and broadcast.
 * Tangled from doc/14-ops-shape.nw: edit the book, not this file. */
#include "ag.h"

#include <string.h>

/* Below this many values an op runs on one thread: waking a team costs more than it saves. */
enum { SHAPE_PARALLEL_MIN = 1 << 15 };

/* "[2, 3, 4]" for a shape that is not (yet) a tensor's. */
static char *shape_list_str(int ndim, const int *shape, char buf[AG_SHAPE_STR_SIZE])
{
    ag_tensor as_tensor;
    memset(&as_tensor, 0, sizeof as_tensor);
    as_tensor.ndim = ndim < 0 ? 0 : ndim > AG_MAX_DIMS ? AG_MAX_DIMS : ndim;
    for (int d = 0; d < as_tensor.ndim; d++) as_tensor.shape[d] = shape[d];
    return ag_shape_str(&as_tensor, buf);
}

/* A walk over a destination in row-major order: shape[] is the destination's shape padded on
 * the left with 1s, stride[d] is the step in the source between neighbours along d (0 where
 * the source is broadcast along d). */
typedef struct strided_walk {
    long shape[AG_MAX_DIMS];   /* [n0, n1, n2, n3] */
    long stride[AG_MAX_DIMS];  /* in source elements */
} strided_walk;

/* dst[i] = src[the source offset of i] for every i of the walk (dst is contiguous). */
static void gather_strided(const strided_walk *w, const ag_real *src, ag_real *dst)
{
    long n0 = w->shape[0], n1 = w->shape[1], n2 = w->shape[2], n3 = w->shape[3];
    long s0 = w->stride[0], s1 = w->stride[1], s2 = w->stride[2], s3 = w->stride[3];
    #pragma omp parallel for collapse(2) if (n0 * n1 * n2 * n3 >= SHAPE_PARALLEL_MIN)
    for (long i0 = 0; i0 < n0; i0++)
        for (long i1 = 0; i1 < n1; i1++) {
            const ag_real *from = src + i0 * s0 + i1 * s1;
            ag_real *to = dst + (i0 * n1 + i1) * n2 * n3;
            for (long i2 = 0; i2 < n2; i2++)
                for (long i3 = 0; i3 < n3; i3++) to[i2 * n3 + i3] = from[i2 * s2 + i3 * s3];
        }
}

/* src[the source offset of i] += dst[i]: the adjoint of gather_strided. Safe in parallel only
 * when no two elements of the walk share a source offset (a permutation, not a broadcast). */
static void scatter_add_strided(const strided_walk *w, const ag_real *dst_grad, ag_real *src_grad)
{
    long n0 = w->shape[0], n1 = w->shape[1], n2 = w->shape[2], n3 = w->shape[3];
    long s0 = w->stride[0], s1 = w->stride[1], s2 = w->stride[2], s3 = w->stride[3];
    #pragma omp parallel for collapse(2) if (n0 * n1 * n2 * n3 >= SHAPE_PARALLEL_MIN)
    for (long i0 = 0; i0 < n0; i0++)
        for (long i1 = 0; i1 < n1; i1++) {
            ag_real *to = src_grad + i0 * s0 + i1 * s1;
            const ag_real *from = dst_grad + (i0 * n1 + i1) * n2 * n3;
            for (long i2 = 0; i2 < n2; i2++)
                for (long i3 = 0; i3 < n3; i3++) to[i2 * s2 + i3 * s3] += from[i2 * n3 + i3];
        }
}

/* The row-major strides of a tensor: stride[d] = product of shape[d+1 .. ndim-1]. */
static void row_major_strides(const ag_tensor *x, long stride[AG_MAX_DIMS])
{
    long step = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        stride[d] = step;
        step *= x->shape[d];
    }
}
static void reshape_run(ag_node *n, ag_action a)
{
    (void)n; /* a view: the output's value and gradient are the input's */
    (void)a;
}

const ag_op ag_op_reshape = { "reshape", reshape_run, AG_OUTPUT_ZEROED,
                              AG_GRAD_ZEROED }; /* a view: no buffer */

ag_tensor *ag_reshape(ag_tape *t, ag_tensor *x, int ndim, const int *shape)
{
    char from[AG_SHAPE_STR_SIZE], to[AG_SHAPE_STR_SIZE];
    int resolved[AG_MAX_DIMS] = { 1, 1, 1, 1 };
    int inferred = -1; /* the dimension given as -1, if any */
    long known = 1;    /* the product of the others */
    if (x == NULL) ag_fatal("reshape: input 0 is NULL");
    if (ndim < 0 || ndim > AG_MAX_DIMS)
        ag_fatal("reshape: %d dimensions asked for; tensors have 0 to %d", ndim, AG_MAX_DIMS);
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && inferred < 0) {
            inferred = d;
            continue;
        }
        if (shape[d] <= 0)
            ag_fatal("reshape: cannot reshape %s to %s: dimension %d is %d (one may be -1)",
                     ag_shape_str(x, from), shape_list_str(ndim, shape, to), d, shape[d]);
        resolved[d] = shape[d];
        known *= shape[d];
    }
    if (inferred >= 0) resolved[inferred] = (int)(x->size / known); /* checked just below */
    if (ag_shape_size(ndim, resolved) != x->size)
        ag_fatal("reshape: cannot reshape %s (%ld values) to %s",
                 ag_shape_str(x, from), x->size, shape_list_str(ndim, shape, to));
    return ag_node_forward(ag_node_new_view(t, &ag_op_reshape, x, ndim, resolved));
}
/* The walk over the output of a permute node, with the input's strides. */
static strided_walk permute_walk(const ag_node *n)
{
    const ag_tensor *x = n->in[0];
    long in_stride[AG_MAX_DIMS];
    strided_walk w;
    int pad = AG_MAX_DIMS - x->ndim;
    row_major_strides(x, in_stride);
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        w.shape[d] = d < pad ? 1 : n->out->shape[d - pad];
        w.stride[d] = d < pad ? 0 : in_stride[n->iarg[d - pad]];
    }
    return w;
}

static void permute_run(ag_node *n, ag_action a)
{
    strided_walk w = permute_walk(n);
    if (a == AG_FORWARD)
        gather_strided(&w, n->in[0]->value, n->out->value);
    else if (n->in[0]->requires_grad)
        scatter_add_strided(&w, n->out->grad, n->in[0]->grad);
}

const ag_op ag_op_permute = { "permute", permute_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
ag_tensor *ag_permute(ag_tape *t, ag_tensor *x, const int *perm)
{
    char shape[AG_SHAPE_STR_SIZE], axes[AG_SHAPE_STR_SIZE];
    int out_shape[AG_MAX_DIMS];
    int seen[AG_MAX_DIMS] = { 0 };
    if (x == NULL) ag_fatal("permute: input 0 is NULL");
    if (x->ndim > 0 && perm == NULL) ag_fatal("permute: the permutation is NULL");
    for (int d = 0; d < x->ndim; d++) {
        if (perm[d] < 0 || perm[d] >= x->ndim || seen[perm[d]]++)
            ag_fatal("permute: %s is not a permutation of the %d axes of a tensor of shape %s",
                     shape_list_str(x->ndim, perm, axes), x->ndim, ag_shape_str(x, shape));
        out_shape[d] = x->shape[perm[d]];
    }
    ag_node *n = ag_node_new(t, &ag_op_permute, 1, &x, x->ndim, out_shape);
    for (int d = 0; d < x->ndim; d++) n->iarg[d] = perm[d];
    return ag_node_forward(n);
}

ag_tensor *ag_transpose(ag_tape *t, ag_tensor *x)
{
    static const int swap[2] = { 1, 0 };
    char shape[AG_SHAPE_STR_SIZE];
    if (x == NULL || x->ndim != 2)
        ag_fatal("permute: ag_transpose needs a 2-D tensor, not %s; use ag_permute for more axes",
                 x ? ag_shape_str(x, shape) : "NULL");
    return ag_permute(t, x, swap);
}
static void concat_run(ag_node *n, ag_action a)
{
    int axis = n->iarg[0];
    long outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= n->out->shape[d];
    for (int d = axis + 1; d < n->out->ndim; d++) inner *= n->out->shape[d];
    long row = n->out->shape[axis] * inner; /* output values per outer index */
    #pragma omp parallel for if (n->out->size >= SHAPE_PARALLEL_MIN)
    for (long o = 0; o < outer; o++) {
        long column = 0; /* where input k starts within the output row: c_k */
        for (int k = 0; k < n->ninputs; k++) {
            ag_tensor *x = n->in[k];
            long run = x->shape[axis] * inner; /* values of input k per outer index */
            if (a == AG_FORWARD)
                memcpy(n->out->value + o * row + column, x->value + o * run,
                       (size_t)run * sizeof(ag_real));
            else if (x->requires_grad)
                for (long m = 0; m < run; m++)
                    x->grad[o * run + m] += n->out->grad[o * row + column + m];
            column += run;
        }
    }
}

const ag_op ag_op_concat = { "concat", concat_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
ag_tensor *ag_concat(ag_tape *t, int n, ag_tensor *const *xs, int axis)
{
    char first[AG_SHAPE_STR_SIZE], other[AG_SHAPE_STR_SIZE];
    if (n < 1 || n > AG_MAX_INPUTS)
        ag_fatal("concat: %d tensors given; concat joins 1 to %d", n, AG_MAX_INPUTS);
    for (int k = 0; k < n; k++)
        if (xs[k] == NULL) ag_fatal("concat: input %d is NULL", k);
    int ndim = xs[0]->ndim;
    int resolved = axis < 0 ? axis + ndim : axis;
    if (resolved < 0 || resolved >= ndim)
        ag_fatal("concat: axis %d does not exist in a tensor of shape %s (%d dimensions)",
                 axis, ag_shape_str(xs[0], first), ndim);
    int shape[AG_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    for (int k = 1; k < n; k++) {
        int agree = xs[k]->ndim == ndim;
        for (int d = 0; agree && d < ndim; d++)
            agree = d == resolved || xs[k]->shape[d] == shape[d];
        if (!agree)
            ag_fatal("concat: input %d of shape %s does not fit input 0 of shape %s along axis %d",
                     k, ag_shape_str(xs[k], other), ag_shape_str(xs[0], first), resolved);
        shape[resolved] += xs[k]->shape[resolved];
    }
    ag_node *node = ag_node_new(t, &ag_op_concat, n, xs, ndim, shape);
    node->iarg[0] = resolved;
    return ag_node_forward(node);
}
/* The shapes of a broadcast node, padded on the left with 1s to four dimensions. */
typedef struct broadcast_shapes {
    long in[AG_MAX_DIMS];         /* the input's shape */
    long out[AG_MAX_DIMS];        /* the output's shape */
    long in_stride[AG_MAX_DIMS];  /* row-major strides of the padded input */
    long out_stride[AG_MAX_DIMS]; /* row-major strides of the padded output */
} broadcast_shapes;

static broadcast_shapes broadcast_shapes_of(const ag_node *n)
{
    broadcast_shapes b;
    int in_pad = AG_MAX_DIMS - n->in[0]->ndim, out_pad = AG_MAX_DIMS - n->out->ndim;
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        b.in[d] = d < in_pad ? 1 : n->in[0]->shape[d - in_pad];
        b.out[d] = d < out_pad ? 1 : n->out->shape[d - out_pad];
    }
    b.in_stride[AG_MAX_DIMS - 1] = b.out_stride[AG_MAX_DIMS - 1] = 1;
    for (int d = AG_MAX_DIMS - 2; d >= 0; d--) {
        b.in_stride[d] = b.in_stride[d + 1] * b.in[d + 1];
        b.out_stride[d] = b.out_stride[d + 1] * b.out[d + 1];
    }
    return b;
}

static void broadcast_run(ag_node *n, ag_action a)
{
    broadcast_shapes b = broadcast_shapes_of(n);
    if (a == AG_FORWARD) {
        strided_walk w;
        for (int d = 0; d < AG_MAX_DIMS; d++) {
            w.shape[d] = b.out[d];
            w.stride[d] = b.in[d] == 1 ? 0 : b.in_stride[d];
        }
        gather_strided(&w, n->in[0]->value, n->out->value);
    } else if (n->in[0]->requires_grad) {
        const ag_real *g = n->out->grad; /* [out0, out1, out2, out3] */
        ag_real *grad = n->in[0]->grad;  /* [in0, in1, in2, in3] */
        long size = n->in[0]->size;
        #pragma omp parallel for if (n->out->size >= SHAPE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) {
            long base = 0, count[AG_MAX_DIMS], step[AG_MAX_DIMS];
            for (int d = 0; d < AG_MAX_DIMS; d++) {
                int spread = b.in[d] != b.out[d]; /* broadcast along d: read by every coordinate */
                base += spread ? 0 : (i / b.in_stride[d] % b.in[d]) * b.out_stride[d];
                count[d] = spread ? b.out[d] : 1;
                step[d] = spread ? b.out_stride[d] : 0;
            }
            double sum = 0;
            for (long i0 = 0; i0 < count[0]; i0++)
                for (long i1 = 0; i1 < count[1]; i1++)
                    for (long i2 = 0; i2 < count[2]; i2++) {
                        const ag_real *copies = g + base + i0 * step[0] + i1 * step[1] + i2 * step[2];
                        for (long i3 = 0; i3 < count[3]; i3++) sum += copies[i3 * step[3]];
                    }
            grad[i] += (ag_real)sum;
        }
    }
}

const ag_op ag_op_broadcast = { "broadcast", broadcast_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
ag_tensor *ag_broadcast_to(ag_tape *t, ag_tensor *x, int ndim, const int *shape)
{
    char from[AG_SHAPE_STR_SIZE], to[AG_SHAPE_STR_SIZE];
    if (x == NULL) ag_fatal("broadcast: input 0 is NULL");
    if (ndim < x->ndim || ndim > AG_MAX_DIMS)
        ag_fatal("broadcast: cannot broadcast %s to a shape of %d dimensions (%d to %d possible)",
                 ag_shape_str(x, from), ndim, x->ndim, AG_MAX_DIMS);
    for (int d = 0; d < ndim; d++) {
        int from_end = ndim - 1 - d; /* the same position counted from the right */
        int own = from_end < x->ndim ? x->shape[x->ndim - 1 - from_end] : 1;
        if (shape[d] < 1 || (own != 1 && own != shape[d]))
            ag_fatal("broadcast: cannot broadcast %s to %s: dimension %d of the target is %d, "
                     "and the input's dimension there is %d (it must be 1 or equal)",
                     ag_shape_str(x, from), shape_list_str(ndim, shape, to), d, shape[d], own);
    }
    return ag_node_forward(ag_node_new(t, &ag_op_broadcast, 1, &x, ndim, shape));
}
