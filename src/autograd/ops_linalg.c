/* ops_linalg.c -- matmul, linear and conv2d, all by way of ag_gemm.
 * Tangled from doc/12-ops-linalg.nw: edit the book, not this file. */
#include "ag.h"

#include <limits.h>
#include <string.h>

enum { COLUMN_SUM_BLOCK = 64 }; /* columns summed together, in doubles on the stack */

/* sums[j] += sum over i of m[i*cols + j] (= when assign), for an m of rows x cols: each column's
 * sum in the order i = 0, 1, ..., a block of columns at a time, walking m along its rows. */
static void add_column_sums(int rows, int cols, const ag_real *m, ag_real *sums, int assign)
{
    int blocks = (cols + COLUMN_SUM_BLOCK - 1) / COLUMN_SUM_BLOCK;
#pragma omp parallel for schedule(static) if ((long)rows * cols > 1 << 16)
    for (int block = 0; block < blocks; block++) {
        int j0 = block * COLUMN_SUM_BLOCK;
        int count = cols - j0 < COLUMN_SUM_BLOCK ? cols - j0 : COLUMN_SUM_BLOCK;
        double sum[COLUMN_SUM_BLOCK];  /* [count]: the running sums of columns j0.. */
        for (int j = 0; j < count; j++) sum[j] = 0;
        for (int i = 0; i < rows; i++) {
            const ag_real *row = m + (long)i * cols + j0;
#pragma omp simd
            for (int j = 0; j < count; j++) sum[j] += row[j];
        }
        for (int j = 0; j < count; j++)
            sums[j0 + j] = assign ? (ag_real)sum[j] : sums[j0 + j] + (ag_real)sum[j];
    }
}

/* sums[i] += sum over j of m[i*cols + j], for an m of rows x cols: eight running sums, of the
 * columns j = t mod 8 for t = 0..7, added at the end in a fixed order. */
static void add_row_sums(int rows, int cols, const ag_real *m, ag_real *sums)
{
#pragma omp parallel for schedule(static) if ((long)rows * cols > 1 << 16)
    for (int i = 0; i < rows; i++) {
        const ag_real *row = m + (long)i * cols;
        double part[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
        int j = 0;
        for (; j + 8 <= cols; j += 8)
            for (int t = 0; t < 8; t++) part[t] += row[j + t];
        for (int t = 0; j < cols; j++, t++) part[t] += row[j];
        double sum = ((part[0] + part[1]) + (part[2] + part[3]))
                     + ((part[4] + part[5]) + (part[6] + part[7]));
        sums[i] += (ag_real)sum;
    }
}
/* The beta with which a product writes in[k]'s gradient: 0 when it is new (it is assigned and
 * never read), 1 to add to it. */
static ag_real gradient_beta(const ag_node *n, int k)
{
    return ag_grad_is_new(n, k) ? 0 : 1;
}

static void matmul_run(ag_node *n, ag_action action)
{
    ag_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    int trans_a = n->iarg[0], trans_b = n->iarg[1];
    int M = c->shape[0], N = c->shape[1], K = trans_a ? a->shape[0] : a->shape[1];
    int lda = a->shape[1], ldb = b->shape[1];
    if (action == AG_FORWARD) {
        ag_gemm(trans_a, trans_b, M, N, K, 1, a->value, lda, b->value, ldb, 0, c->value, N);
        return;
    }
    ag_real beta_a = gradient_beta(n, 0), beta_b = gradient_beta(n, 1);
    if (a->requires_grad) {
        if (!trans_a) /* a [M, K] */
            ag_gemm(0, !trans_b, M, K, N, 1, c->grad, N, b->value, ldb, beta_a, a->grad, K);
        else          /* a [K, M] */
            ag_gemm(trans_b, 1, K, M, N, 1, b->value, ldb, c->grad, N, beta_a, a->grad, M);
    }
    if (b->requires_grad) {
        if (!trans_b) /* b [K, N] */
            ag_gemm(!trans_a, 0, K, N, M, 1, a->value, lda, c->grad, N, beta_b, b->grad, N);
        else          /* b [N, K] */
            ag_gemm(1, trans_a, N, K, M, 1, c->grad, N, a->value, lda, beta_b, b->grad, K);
    }
}

const ag_op ag_op_matmul = { "matmul", matmul_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };
ag_tensor *ag_matmul(ag_tape *t, ag_tensor *a, ag_tensor *b, int trans_a, int trans_b)
{
    char sa[AG_SHAPE_STR_SIZE], sb[AG_SHAPE_STR_SIZE];
    if (a->ndim != 2 || b->ndim != 2)
        ag_fatal("matmul: needs two matrices, got %s and %s", ag_shape_str(a, sa),
                 ag_shape_str(b, sb));
    int M = trans_a ? a->shape[1] : a->shape[0], Ka = trans_a ? a->shape[0] : a->shape[1];
    int Kb = trans_b ? b->shape[1] : b->shape[0], N = trans_b ? b->shape[0] : b->shape[1];
    if (Ka != Kb)
        ag_fatal("matmul: inner dimensions differ: a %s%s gives %d columns, b %s%s gives %d rows",
                 ag_shape_str(a, sa), trans_a ? " transposed" : "", Ka, ag_shape_str(b, sb),
                 trans_b ? " transposed" : "", Kb);
    ag_tensor *in[2] = { a, b };
    ag_node *n = ag_node_new(t, &ag_op_matmul, 2, in, AG_SHAPE(M, N));
    n->iarg[0] = trans_a != 0;
    n->iarg[1] = trans_b != 0;
    return ag_node_forward(n);
}
static void linear_run(ag_node *n, ag_action action)
{
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->ninputs > 2 ? n->in[2] : NULL;
    ag_tensor *y = n->out;
    int N = x->shape[0], in = x->shape[1], out = w->shape[0];
    if (action == AG_FORWARD) {
        if (b != NULL) { /* rows of the bias; the DIM critic's are 3136 x 512 */
            #pragma omp parallel for schedule(static) if ((long)N * out > 1 << 16)
            for (int i = 0; i < N; i++)
                for (int j = 0; j < out; j++) y->value[(long)i * out + j] = b->value[j];
        }
        ag_gemm(0, 1, N, out, in, 1, x->value, in, w->value, in, b != NULL ? 1 : 0, y->value,
                out);
        return;
    }
    if (x->requires_grad) /* dx [N, in] += dy [N, out] W [out, in] */
        ag_gemm(0, 0, N, in, out, 1, y->grad, out, w->value, in, gradient_beta(n, 0), x->grad, in);
    if (w->requires_grad) /* dW [out, in] += dy^T [out, N] x [N, in] */
        ag_gemm(1, 0, out, in, N, 1, y->grad, out, x->value, in, gradient_beta(n, 1), w->grad, in);
    if (b != NULL && b->requires_grad) /* db [out] += the sum of dy's rows */
        add_column_sums(N, out, y->grad, b->grad, ag_grad_is_new(n, 2));
}

const ag_op ag_op_linear = { "linear", linear_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };
ag_tensor *ag_linear(ag_tape *t, ag_tensor *x, ag_tensor *w, ag_tensor *b)
{
    char sx[AG_SHAPE_STR_SIZE], sw[AG_SHAPE_STR_SIZE], sb[AG_SHAPE_STR_SIZE];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        ag_fatal("linear: needs x [N, in] and W [out, in], got x %s and W %s",
                 ag_shape_str(x, sx), ag_shape_str(w, sw));
    if (b != NULL && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        ag_fatal("linear: the bias must be [%d] for W %s, got %s", w->shape[0],
                 ag_shape_str(w, sw), ag_shape_str(b, sb));
    ag_tensor *in[3] = { x, w, b };
    ag_node *n = ag_node_new(t, &ag_op_linear, b != NULL ? 3 : 2, in,
                             AG_SHAPE(x->shape[0], w->shape[0]));
    return ag_node_forward(n);
}
typedef struct conv_buffers {
    ag_real *patches;      /* [R, N*L]: P, R = C*KH*KW rows, one column per output location */
    ag_real *by_channel;   /* [O, N*L]: Y = w P in the forward, Ybar in the backward */
} conv_buffers;

/* The sizes of one convolution node. */
typedef struct conv_shape {
    int N, C, H, W;        /* the input x [N, C, H, W] */
    int O, KH, KW;         /* the filters w [O, C, KH, KW] */
    int OH, OW;            /* the output y [N, O, OH, OW] */
    int stride, padding;
    int R, L, NL;          /* C*KH*KW, OH*OW and N*OH*OW */
} conv_shape;

static conv_shape conv_shape_of(const ag_node *n)
{
    const ag_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    conv_shape s;
    s.N = x->shape[0]; s.C = x->shape[1]; s.H = x->shape[2]; s.W = x->shape[3];
    s.O = w->shape[0]; s.KH = w->shape[2]; s.KW = w->shape[3];
    s.OH = y->shape[2]; s.OW = y->shape[3];
    s.stride = n->iarg[0]; s.padding = n->iarg[1];
    s.R = s.C * s.KH * s.KW; s.L = s.OH * s.OW; s.NL = s.N * s.L;
    return s;
}
/* The output columns v whose input column v*stride - padding + j lies in 0 .. W-1 are
 * *lo <= v < *hi (an empty range when none do). */
static void columns_inside(int OW, int W, int stride, int padding, int j, int *lo, int *hi)
{
    int first = padding - j, last = W - 1 + padding - j; /* bounds on v*stride */
    int v_lo = first > 0 ? (first + stride - 1) / stride : 0;
    int v_hi = last < 0 ? 0 : last / stride + 1;
    if (v_hi > OW) v_hi = OW;
    if (v_lo > v_hi) v_lo = v_hi;
    *lo = v_lo;
    *hi = v_hi;
}

/* 1 when the convolution is a plain mixing of channels: 1 x 1 filters, stride 1, no padding. */
static int is_pointwise(const conv_shape *s)
{
    return s->KH == 1 && s->KW == 1 && s->stride == 1 && s->padding == 0;
}

/* patches [R, N*L] from x [N, C, H, W]: the im2col of the whole batch. */
static void images_to_patches(const conv_shape *s, const ag_real *x, ag_real *patches)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)s->R * s->NL > 1 << 15)
    for (int r = 0; r < s->R; r++) {
        for (int n = 0; n < s->N; n++) {
            int c = r / (s->KH * s->KW), i = r / s->KW % s->KH, j = r % s->KW;
            const ag_real *plane = x + ((long)n * s->C + c) * s->H * s->W;   /* [H, W] */
            ag_real *piece = patches + (long)r * s->NL + (long)n * s->L;    /* [OH, OW] */
            if (is_pointwise(s)) {
                memcpy(piece, plane, (size_t)s->L * sizeof(ag_real));
                continue;
            }
            int v_lo, v_hi, stride = s->stride;
            columns_inside(s->OW, s->W, stride, s->padding, j, &v_lo, &v_hi);
            for (int u = 0; u < s->OH; u++) {
                int h = u * stride - s->padding + i;
                ag_real *out = piece + u * s->OW;
                if (h < 0 || h >= s->H) {
                    for (int v = 0; v < s->OW; v++) out[v] = 0;
                    continue;
                }
                const ag_real *row = plane + h * s->W;
                int shift = j - s->padding; /* input column of v: v*stride + shift */
                for (int v = 0; v < v_lo; v++) out[v] = 0;
                if (stride == 1)
                    for (int v = v_lo; v < v_hi; v++) out[v] = row[v + shift];
                else
                    for (int v = v_lo; v < v_hi; v++) out[v] = row[v * stride + shift];
                for (int v = v_hi; v < s->OW; v++) out[v] = 0;
            }
        }
    }
}
enum { COL2IM_IMAGES = 16 }; /* images whose planes of one channel one task folds */

/* dx [N, C, H, W] += the col2im of dpatches [R, N*L]: the adjoint of images_to_patches. */
static void add_patches_to_images(const conv_shape *s, const ag_real *dpatches, ag_real *dx)
{
    int groups = (s->N + COL2IM_IMAGES - 1) / COL2IM_IMAGES;
#pragma omp parallel for collapse(2) schedule(static) if ((long)s->R * s->NL > 1 << 15)
    for (int c = 0; c < s->C; c++) {
        for (int group = 0; group < groups; group++) {
            int n0 = group * COL2IM_IMAGES;
            int n1 = s->N - n0 < COL2IM_IMAGES ? s->N : n0 + COL2IM_IMAGES;
            if (is_pointwise(s)) {
                for (int n = n0; n < n1; n++) {
                    ag_real *plane = dx + ((long)n * s->C + c) * s->H * s->W;   /* [H, W] */
                    const ag_real *piece = dpatches + (long)c * s->NL + (long)n * s->L;
                    for (int l = 0; l < s->L; l++) plane[l] += piece[l];
                }
                continue;
            }
            for (int i = 0; i < s->KH; i++) {
                for (int j = 0; j < s->KW; j++) {
                    int r = (c * s->KH + i) * s->KW + j, v_lo, v_hi, stride = s->stride;
                    int shift = j - s->padding; /* input column of v: v*stride + shift */
                    columns_inside(s->OW, s->W, stride, s->padding, j, &v_lo, &v_hi);
                    for (int n = n0; n < n1; n++) {
                        ag_real *plane = dx + ((long)n * s->C + c) * s->H * s->W; /* [H, W] */
                        const ag_real *piece = dpatches + (long)r * s->NL + (long)n * s->L;
                        for (int u = 0; u < s->OH; u++) {
                            int h = u * stride - s->padding + i;
                            if (h < 0 || h >= s->H) continue;
                            ag_real *row = plane + h * s->W;
                            const ag_real *from = piece + u * s->OW;
                            if (stride == 1)
                                for (int v = v_lo; v < v_hi; v++) row[v + shift] += from[v];
                            else
                                for (int v = v_lo; v < v_hi; v++)
                                    row[v * stride + shift] += from[v];
                        }
                    }
                }
            }
        }
    }
}
/* y [N, O, L] = by_channel [O, N*L] rearranged, plus the bias (if any) of each channel. */
static void channels_to_output(const conv_shape *s, const ag_real *restrict by_channel,
                               const ag_real *bias, ag_real *restrict y)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)s->O * s->NL > 1 << 15)
    for (int n = 0; n < s->N; n++) {
        for (int o = 0; o < s->O; o++) {
            const ag_real *from = by_channel + (long)o * s->NL + (long)n * s->L;
            ag_real *to = y + ((long)n * s->O + o) * s->L;
            ag_real shift = bias != NULL ? bias[o] : 0;
#pragma omp simd
            for (int l = 0; l < s->L; l++) to[l] = from[l] + shift;
        }
    }
}

/* by_channel [O, N*L] = dy [N, O, L] rearranged. */
static void output_to_channels(const conv_shape *s, const ag_real *restrict dy,
                               ag_real *restrict by_channel)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)s->O * s->NL > 1 << 15)
    for (int n = 0; n < s->N; n++) {
        for (int o = 0; o < s->O; o++) {
            const ag_real *from = dy + ((long)n * s->O + o) * s->L;
            ag_real *to = by_channel + (long)o * s->NL + (long)n * s->L;
#pragma omp simd
            for (int l = 0; l < s->L; l++) to[l] = from[l];
        }
    }
}
static void conv2d_run(ag_node *n, ag_action action)
{
    ag_tensor *x = n->in[0], *w = n->in[1], *b = n->ninputs > 2 ? n->in[2] : NULL;
    ag_tensor *y = n->out;
    conv_shape s = conv_shape_of(n);
    conv_buffers *buffers = n->saved;
    if (action == AG_FORWARD) {
        images_to_patches(&s, x->value, buffers->patches);
        ag_gemm(0, 0, s.O, s.NL, s.R, 1, w->value, s.R, buffers->patches, s.NL, 0,
                buffers->by_channel, s.NL);
        channels_to_output(&s, buffers->by_channel, b != NULL ? b->value : NULL, y->value);
        return;
    }
    ag_real *dY = buffers->by_channel; /* [O, N*L] */
    output_to_channels(&s, y->grad, dY);
    if (b != NULL && b->requires_grad) add_row_sums(s.O, s.NL, dY, b->grad);
    if (w->requires_grad) /* dw [O, R] += dY [O, NL] P^T [NL, R] */
        ag_gemm(0, 1, s.O, s.R, s.NL, 1, dY, s.NL, buffers->patches, s.NL, 1, w->grad, s.R);
    if (x->requires_grad) { /* dP [R, NL] = w^T [R, O] dY [O, NL], folded into dx */
        ag_real *dP = ag_arena_alloc(n->tape, (size_t)s.R * (size_t)s.NL * sizeof(ag_real));
        ag_gemm(1, 0, s.R, s.NL, s.O, 1, w->value, s.R, dY, s.NL, 0, dP, s.NL);
        add_patches_to_images(&s, dP, x->grad);
    }
}

const ag_op ag_op_conv2d = { "conv2d", conv2d_run, AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };
ag_tensor *ag_conv2d(ag_tape *t, ag_tensor *x, ag_tensor *w, ag_tensor *b, int stride,
                     int padding)
{
    char sx[AG_SHAPE_STR_SIZE], sw[AG_SHAPE_STR_SIZE], sb[AG_SHAPE_STR_SIZE];
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1])
        ag_fatal("conv2d: needs x [N, C, H, W] and w [O, C, KH, KW], got x %s and w %s",
                 ag_shape_str(x, sx), ag_shape_str(w, sw));
    if (b != NULL && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        ag_fatal("conv2d: the bias must be [%d] for w %s, got %s", w->shape[0],
                 ag_shape_str(w, sw), ag_shape_str(b, sb));
    if (stride < 1 || padding < 0)
        ag_fatal("conv2d: stride %d and padding %d; the stride must be >= 1, the padding >= 0",
                 stride, padding);
    int H = x->shape[2] + 2 * padding, W = x->shape[3] + 2 * padding;
    if (w->shape[2] > H || w->shape[3] > W)
        ag_fatal("conv2d: filters %s do not fit in x %s padded by %d", ag_shape_str(w, sw),
                 ag_shape_str(x, sx), padding);
    int OH = (H - w->shape[2]) / stride + 1, OW = (W - w->shape[3]) / stride + 1;
    long R = (long)w->shape[1] * w->shape[2] * w->shape[3], NL = (long)x->shape[0] * OH * OW;
    if (R > INT_MAX || NL > INT_MAX || (long)w->shape[0] * NL > INT_MAX)
        ag_fatal("conv2d: x %s with w %s makes a patch matrix of %ld x %ld, too large",
                 ag_shape_str(x, sx), ag_shape_str(w, sw), R, NL);
    ag_tensor *in[3] = { x, w, b };
    ag_node *n = ag_node_new(t, &ag_op_conv2d, b != NULL ? 3 : 2, in,
                             AG_SHAPE(x->shape[0], w->shape[0], OH, OW));
    n->iarg[0] = stride;
    n->iarg[1] = padding;
    conv_buffers *buffers = ag_arena_alloc(t, sizeof *buffers);
    buffers->patches = ag_arena_alloc(t, (size_t)R * (size_t)NL * sizeof(ag_real));
    buffers->by_channel = ag_arena_alloc(t, (size_t)w->shape[0] * (size_t)NL * sizeof(ag_real));
    n->saved = buffers;
    return ag_node_forward(n);
}
