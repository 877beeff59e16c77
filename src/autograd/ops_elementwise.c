/* ops_elementwise.c -- broadcasting arithmetic and elementwise functions.
 * Tangled from doc/11-ops-elementwise.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <string.h>

enum { ELEMENTWISE_PARALLEL_MIN = 1 << 15 }; /* elements; below this a loop runs serially */
/* in[k]->grad += c * out->grad (= when the gradient is new), elementwise, if input k needs a
 * gradient; the input has the output's layout. */
static void add_scaled_adjoint(ag_node *n, int k, ag_real c)
{
    if (!n->in[k]->requires_grad) return;
    const ag_real *gy = n->out->grad;  /* [size] */
    ag_real *gx = n->in[k]->grad;      /* [size] */
    long size = n->out->size;
    int assign = ag_grad_is_new(n, k);
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
    for (long i = 0; i < size; i++) gx[i] = (assign ? 0 : gx[i]) + c * gy[i];
}
/* dims = the shape of x, right-aligned in four dimensions: [2, 3] becomes [1, 1, 2, 3]. */
static void right_aligned(const ag_tensor *x, int dims[AG_MAX_DIMS])
{
    int pad = AG_MAX_DIMS - x->ndim;
    for (int d = 0; d < AG_MAX_DIMS; d++) dims[d] = d < pad ? 1 : x->shape[d - pad];
}
/* How the output of a binary op reads its two inputs. */
typedef struct broadcast_view {
    int out[AG_MAX_DIMS];           /* [d0, d1, d2, d3]: the output shape, right-aligned */
    long stride[2][AG_MAX_DIMS];    /* [input][dim]: strides of a and b, 0 where repeated */
} broadcast_view;

static void strides_of(const int dims[AG_MAX_DIMS], long stride[AG_MAX_DIMS])
{
    long step = 1;
    for (int d = AG_MAX_DIMS - 1; d >= 0; d--) {
        stride[d] = dims[d] == 1 ? 0 : step;
        step *= dims[d];
    }
}

static broadcast_view view_of(const ag_node *n)
{
    broadcast_view v;
    right_aligned(n->out, v.out);
    for (int k = 0; k < 2; k++) {
        int dims[AG_MAX_DIMS];
        right_aligned(n->in[k], dims);
        strides_of(dims, v.stride[k]);
    }
    return v;
}
/* 1 when neither input of a binary node is repeated: all three tensors share one layout. */
static int no_broadcast(const ag_node *n)
{
    return n->in[0]->size == n->out->size && n->in[1]->size == n->out->size;
}
typedef enum binary_kind { BINARY_ADD, BINARY_SUB, BINARY_MUL, BINARY_DIV } binary_kind;

static ag_real binary_value(binary_kind kind, ag_real a, ag_real b)
{
    switch (kind) {
    case BINARY_ADD: return a + b;
    case BINARY_SUB: return a - b;
    case BINARY_MUL: return a * b;
    case BINARY_DIV: return a / b;
    }
    return 0;
}

/* The partial derivative of f(a, b) by a (k = 0) or by b (k = 1). */
static double binary_partial(binary_kind kind, int k, double a, double b)
{
    switch (kind) {
    case BINARY_ADD: return 1;
    case BINARY_SUB: return k == 0 ? 1 : -1;
    case BINARY_MUL: return k == 0 ? b : a;
    case BINARY_DIV: return k == 0 ? 1 / b : -(a / b) / b;
    }
    return 0;
}
static void broadcast_forward(ag_node *n, binary_kind kind)
{
    broadcast_view v = view_of(n);
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value;
    const long *sa = v.stride[0], *sb = v.stride[1];
    ag_real *y = n->out->value;  /* [d0, d1, d2, d3] */
#pragma omp parallel for collapse(3) if (n->out->size >= ELEMENTWISE_PARALLEL_MIN)
    for (int i0 = 0; i0 < v.out[0]; i0++)
        for (int i1 = 0; i1 < v.out[1]; i1++)
            for (int i2 = 0; i2 < v.out[2]; i2++) {
                long row = (((long)i0 * v.out[1] + i1) * v.out[2] + i2) * v.out[3];
                long ra = i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                long rb = i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                for (int i3 = 0; i3 < v.out[3]; i3++)
                    y[row + i3] = binary_value(kind, a[ra + i3 * sa[3]], b[rb + i3 * sb[3]]);
            }
}
/* The sum, over every output element that read element p of input k, of the output's adjoint
 * times the partial derivative of that element by input k: the adjoint p receives. */
static double adjoint_through_broadcast(const ag_node *n, const broadcast_view *v, int k,
                                        long p, binary_kind kind)
{
    int dims[AG_MAX_DIMS], begin[AG_MAX_DIMS], end[AG_MAX_DIMS];
    right_aligned(n->in[k], dims);
    for (int d = AG_MAX_DIMS - 1; d >= 0; d--) {  /* unravel p, last index fastest */
        int j = (int)(p % dims[d]);
        p /= dims[d];
        begin[d] = dims[d] == 1 ? 0 : j;
        end[d] = dims[d] == 1 ? v->out[d] : j + 1;
    }
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value, *gy = n->out->grad;
    const long *sa = v->stride[0], *sb = v->stride[1];
    double sum = 0;
    for (int i0 = begin[0]; i0 < end[0]; i0++)
        for (int i1 = begin[1]; i1 < end[1]; i1++)
            for (int i2 = begin[2]; i2 < end[2]; i2++)
                for (int i3 = begin[3]; i3 < end[3]; i3++) {
                    long i = (((long)i0 * v->out[1] + i1) * v->out[2] + i2) * v->out[3] + i3;
                    long ia = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3];
                    long ib = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3];
                    sum += (double)gy[i] * binary_partial(kind, k, a[ia], b[ib]);
                }
    return sum;
}

enum { BROADCAST_ROW_BLOCK = 256 }; /* running sums kept at once, in doubles on the stack */

/* gx += the adjoint of input k, when its last dimension is the output's own (not repeated):
 * for each row of input k, the same sums as adjoint_through_broadcast, a block at a time. */
static void add_row_adjoints_through_broadcast(ag_node *n, const broadcast_view *v, int k,
                                               binary_kind kind)
{
    int dims[AG_MAX_DIMS];
    right_aligned(n->in[k], dims);
    const int width = v->out[3];
    const long rows = n->in[k]->size / width;
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value, *gy = n->out->grad;
    const long *sa = v->stride[0], *sb = v->stride[1];
    const int constant_partial = kind == BINARY_ADD || kind == BINARY_SUB;
    const double sign = constant_partial ? binary_partial(kind, k, 0, 0) : 0;
    ag_real *gx = n->in[k]->grad;  /* [rows, width] */
#pragma omp parallel for if (n->out->size >= ELEMENTWISE_PARALLEL_MIN)
    for (long r = 0; r < rows; r++) {
        int begin[3], end[3];
        long q = r;
        for (int d = 2; d >= 0; d--) {  /* unravel the row r, as adjoint_through_broadcast does */
            int j = (int)(q % dims[d]);
            q /= dims[d];
            begin[d] = dims[d] == 1 ? 0 : j;
            end[d] = dims[d] == 1 ? v->out[d] : j + 1;
        }
        for (int c0 = 0; c0 < width; c0 += BROADCAST_ROW_BLOCK) {
            int count = width - c0 < BROADCAST_ROW_BLOCK ? width - c0 : BROADCAST_ROW_BLOCK;
            double sum[BROADCAST_ROW_BLOCK];  /* [count]: the running sums of gx[r, c0 + c] */
            for (int c = 0; c < count; c++) sum[c] = 0;
            for (int i0 = begin[0]; i0 < end[0]; i0++)
                for (int i1 = begin[1]; i1 < end[1]; i1++)
                    for (int i2 = begin[2]; i2 < end[2]; i2++) {
                        long row = (((long)i0 * v->out[1] + i1) * v->out[2] + i2) * width + c0;
                        const ag_real *g = gy + row;  /* [count]: the output's adjoints */
                        if (constant_partial) {
#pragma omp simd
                            for (int c = 0; c < count; c++) sum[c] += (double)g[c] * sign;
                            continue;
                        }
                        long ra = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + c0 * sa[3];
                        long rb = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + c0 * sb[3];
                        for (int c = 0; c < count; c++)
                            sum[c] += (double)g[c]
                                      * binary_partial(kind, k, a[ra + c * sa[3]],
                                                       b[rb + c * sb[3]]);
                    }
            for (int c = 0; c < count; c++) gx[r * width + c0 + c] += (ag_real)sum[c];
        }
    }
}

static void broadcast_backward(ag_node *n, binary_kind kind)
{
    broadcast_view v = view_of(n);
    for (int k = 0; k < 2; k++) {
        ag_tensor *x = n->in[k];
        if (!x->requires_grad) continue;
        if (ag_grad_is_new(n, k)) /* add and sub assign new gradients, but not through here */
            memset(x->grad, 0, (size_t)x->size * sizeof(ag_real));
        int dims[AG_MAX_DIMS];
        right_aligned(x, dims);
        if (dims[AG_MAX_DIMS - 1] == v.out[AG_MAX_DIMS - 1]) {
            add_row_adjoints_through_broadcast(n, &v, k, kind);
            continue;
        }
        ag_real *gx = x->grad;  /* [size of input k] */
#pragma omp parallel for if (n->out->size >= ELEMENTWISE_PARALLEL_MIN)
        for (long p = 0; p < x->size; p++)
            gx[p] += (ag_real)adjoint_through_broadcast(n, &v, k, p, kind);
    }
}

static void broadcast_run(ag_node *n, ag_action action, binary_kind kind)
{
    if (action == AG_FORWARD) broadcast_forward(n, kind);
    else broadcast_backward(n, kind);
}
static ag_tensor *record_binary(ag_tape *t, const ag_op *op, ag_tensor *a, ag_tensor *b)
{
    if (a == NULL || b == NULL)
        ag_fatal("%s: input %d is NULL", op->name, a == NULL ? 0 : 1);
    int da[AG_MAX_DIMS], db[AG_MAX_DIMS], out[AG_MAX_DIMS];
    right_aligned(a, da);
    right_aligned(b, db);
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        if (da[d] != db[d] && da[d] != 1 && db[d] != 1) {
            char sa[AG_SHAPE_STR_SIZE], sb[AG_SHAPE_STR_SIZE];
            ag_fatal("%s: shapes %s and %s do not broadcast: dimension %d of the first is %d, "
                     "dimension %d of the second is %d; aligned from the right, each pair of "
                     "dimensions must be equal or contain a 1",
                     op->name, ag_shape_str(a, sa), ag_shape_str(b, sb),
                     d - (AG_MAX_DIMS - a->ndim), da[d], d - (AG_MAX_DIMS - b->ndim), db[d]);
        }
        out[d] = da[d] > db[d] ? da[d] : db[d];
    }
    int ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    ag_tensor *inputs[2] = { a, b };
    ag_node *n = ag_node_new(t, op, 2, inputs, ndim, out + AG_MAX_DIMS - ndim);
    return ag_node_forward(n);
}
static void add_run(ag_node *n, ag_action action)
{
    if (!no_broadcast(n)) { broadcast_run(n, action, BINARY_ADD); return; }
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = a[i] + b[i];
        return;
    }
    add_scaled_adjoint(n, 0, 1);
    add_scaled_adjoint(n, 1, 1);
}

const ag_op ag_op_add = { "add", add_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };

ag_tensor *ag_add(ag_tape *t, ag_tensor *a, ag_tensor *b)
{
    return record_binary(t, &ag_op_add, a, b);
}
static void sub_run(ag_node *n, ag_action action)
{
    if (!no_broadcast(n)) { broadcast_run(n, action, BINARY_SUB); return; }
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = a[i] - b[i];
        return;
    }
    add_scaled_adjoint(n, 0, 1);
    add_scaled_adjoint(n, 1, -1);
}

const ag_op ag_op_sub = { "sub", sub_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };

ag_tensor *ag_sub(ag_tape *t, ag_tensor *a, ag_tensor *b)
{
    return record_binary(t, &ag_op_sub, a, b);
}
static void mul_run(ag_node *n, ag_action action)
{
    if (!no_broadcast(n)) { broadcast_run(n, action, BINARY_MUL); return; }
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = a[i] * b[i];
        return;
    }
    const ag_real *gy = n->out->grad;
    if (n->in[0]->requires_grad) {
        ag_real *ga = n->in[0]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) ga[i] += gy[i] * b[i];
    }
    if (n->in[1]->requires_grad) {
        ag_real *gb = n->in[1]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gb[i] += gy[i] * a[i];
    }
}

const ag_op ag_op_mul = { "mul", mul_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_mul(ag_tape *t, ag_tensor *a, ag_tensor *b)
{
    return record_binary(t, &ag_op_mul, a, b);
}
static void div_run(ag_node *n, ag_action action)
{
    if (!no_broadcast(n)) { broadcast_run(n, action, BINARY_DIV); return; }
    const ag_real *a = n->in[0]->value, *b = n->in[1]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = a[i] / b[i];
        return;
    }
    const ag_real *gy = n->out->grad;
    if (n->in[0]->requires_grad) {
        ag_real *ga = n->in[0]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) ga[i] += gy[i] / b[i];
    }
    if (n->in[1]->requires_grad) {
        ag_real *gb = n->in[1]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gb[i] -= gy[i] * (a[i] / b[i]) / b[i];
    }
}

const ag_op ag_op_div = { "div", div_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_div(ag_tape *t, ag_tensor *a, ag_tensor *b)
{
    return record_binary(t, &ag_op_div, a, b);
}
/* A node of a one-input op whose output has the shape of its input; the caller sets attributes
 * and runs the forward. */
static ag_node *record_unary(ag_tape *t, const ag_op *op, ag_tensor *x)
{
    if (x == NULL) ag_fatal("%s: input 0 is NULL", op->name);
    return ag_node_new(t, op, 1, &x, x->ndim, x->shape);
}
static void scale_run(ag_node *n, ag_action action)
{
    const ag_real c = (ag_real)n->farg[0];
    long size = n->out->size;
    if (action == AG_FORWARD) {
        const ag_real *x = n->in[0]->value;
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = c * x[i];
    } else {
        add_scaled_adjoint(n, 0, c);
    }
}

const ag_op ag_op_scale = { "scale", scale_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };

ag_tensor *ag_scale(ag_tape *t, ag_tensor *x, double c)
{
    ag_node *n = record_unary(t, &ag_op_scale, x);
    n->farg[0] = c;
    return ag_node_forward(n);
}

static void add_scalar_run(ag_node *n, ag_action action)
{
    const ag_real c = (ag_real)n->farg[0];
    long size = n->out->size;
    if (action == AG_FORWARD) {
        const ag_real *x = n->in[0]->value;
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = x[i] + c;
    } else {
        add_scaled_adjoint(n, 0, 1);
    }
}

const ag_op ag_op_add_scalar = { "add_scalar", add_scalar_run, AG_OUTPUT_ASSIGNED,
                                 AG_GRAD_ASSIGNED };

ag_tensor *ag_add_scalar(ag_tape *t, ag_tensor *x, double c)
{
    ag_node *n = record_unary(t, &ag_op_add_scalar, x);
    n->farg[0] = c;
    return ag_node_forward(n);
}

static void neg_run(ag_node *n, ag_action action)
{
    long size = n->out->size;
    if (action == AG_FORWARD) {
        const ag_real *x = n->in[0]->value;
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = -x[i];
    } else {
        add_scaled_adjoint(n, 0, -1);
    }
}

const ag_op ag_op_neg = { "neg", neg_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };

ag_tensor *ag_neg(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_neg, x));
}
static void exp_run(ag_node *n, ag_action action)
{
    const ag_real *x = n->in[0]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = (ag_real)exp(x[i]);
    } else {
        const ag_real *y = n->out->value, *gy = n->out->grad;  /* y = e^x */
        ag_real *gx = n->in[0]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gx[i] += gy[i] * y[i];
    }
}

const ag_op ag_op_exp = { "exp", exp_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_exp(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_exp, x));
}

static void log_run(ag_node *n, ag_action action)
{
    const ag_real *x = n->in[0]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = (ag_real)log(x[i]);
    } else {
        const ag_real *gy = n->out->grad;
        ag_real *gx = n->in[0]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gx[i] += gy[i] / x[i];
    }
}

const ag_op ag_op_log = { "log", log_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_log(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_log, x));
}
static void relu_run(ag_node *n, ag_action action)
{
    const ag_real *x = n->in[0]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = x[i] > 0 ? x[i] : 0;
    } else {
        const ag_real *gy = n->out->grad;
        ag_real *gx = n->in[0]->grad;
        int assign = ag_grad_is_new(n, 0);
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gx[i] = (assign ? 0 : gx[i]) + (x[i] > 0 ? gy[i] : 0);
    }
}

const ag_op ag_op_relu = { "relu", relu_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };

ag_tensor *ag_relu(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_relu, x));
}

static void leaky_relu_run(ag_node *n, ag_action action)
{
    const ag_real *x = n->in[0]->value;  /* [size] */
    const ag_real slope = (ag_real)n->farg[0];
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = (x[i] > 0 ? 1 : slope) * x[i];
    } else {
        const ag_real *gy = n->out->grad;
        ag_real *gx = n->in[0]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gx[i] += (x[i] > 0 ? 1 : slope) * gy[i];
    }
}

const ag_op ag_op_leaky_relu = { "leaky_relu", leaky_relu_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_leaky_relu(ag_tape *t, ag_tensor *x, double slope)
{
    ag_node *n = record_unary(t, &ag_op_leaky_relu, x);
    n->farg[0] = slope;
    return ag_node_forward(n);
}
/* 1 / (1 + e^-x), accurate to a rounding error for every x; never overflows. */
static double stable_sigmoid(double x)
{
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}
static void sigmoid_run(ag_node *n, ag_action action)
{
    const ag_real *x = n->in[0]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = (ag_real)stable_sigmoid(x[i]);
    } else {
        const ag_real *gy = n->out->grad;
        ag_real *gx = n->in[0]->grad;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) {
            double e = exp(-fabs((double)x[i]));
            gx[i] += (ag_real)(gy[i] * (e / ((1 + e) * (1 + e))));
        }
    }
}

const ag_op ag_op_sigmoid = { "sigmoid", sigmoid_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_sigmoid(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_sigmoid, x));
}

static void tanh_run(ag_node *n, ag_action action)
{
    long size = n->out->size;
    if (action == AG_FORWARD) {
        const ag_real *x = n->in[0]->value;  /* [size] */
        ag_real *y = n->out->value;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) y[i] = (ag_real)tanh(x[i]);
    } else {
        const ag_real *y = n->out->value, *gy = n->out->grad;  /* y = tanh x */
        ag_real *gx = n->in[0]->grad;
#pragma omp parallel for simd if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gx[i] += gy[i] * (1 - y[i] * y[i]);
    }
}

const ag_op ag_op_tanh = { "tanh", tanh_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_tanh(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_tanh, x));
}
static void softplus_run(ag_node *n, ag_action action)
{
    const ag_real *x = n->in[0]->value;  /* [size] */
    long size = n->out->size;
    if (action == AG_FORWARD) {
        ag_real *y = n->out->value;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) {
            double xi = x[i];
            y[i] = (ag_real)((xi > 0 ? xi : 0) + log1p(exp(-fabs(xi))));
        }
    } else {
        const ag_real *gy = n->out->grad;
        ag_real *gx = n->in[0]->grad;
#pragma omp parallel for if (size >= ELEMENTWISE_PARALLEL_MIN)
        for (long i = 0; i < size; i++) gx[i] += (ag_real)(gy[i] * stable_sigmoid(x[i]));
    }
}

const ag_op ag_op_softplus = { "softplus", softplus_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

ag_tensor *ag_softplus(ag_tape *t, ag_tensor *x)
{
    return ag_node_forward(record_unary(t, &ag_op_softplus, x));
}
