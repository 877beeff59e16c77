/* ag.h -- a tape-based reverse-mode automatic differentiation engine.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#ifndef AG_H
#define AG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef AG_DOUBLE
typedef double ag_real;
#define AG_REAL_NAME "double"
#else
typedef float ag_real;
#define AG_REAL_NAME "float"
#endif
enum {
    AG_MAX_DIMS = 4,   /* N, C, H, W */
    AG_MAX_INPUTS = 5, /* batch norm: x, gamma, beta, running mean, running var */
    AG_MAX_IARGS = 8,  /* integer attributes of a node: axes, strides, flags */
    AG_MAX_FARGS = 4   /* real attributes of a node: a scalar, a slope, an epsilon */
};
typedef struct ag_tape ag_tape;
typedef struct ag_node ag_node;

typedef struct ag_tensor {
    int ndim;                 /* 0 (a scalar) to AG_MAX_DIMS */
    int shape[AG_MAX_DIMS];   /* shape[0..ndim-1], outermost first; the rest are 1 */
    long size;                /* product of the shape */
    ag_real *value;           /* [size], row-major */
    ag_real *grad;            /* [size], or NULL: no gradient needed, or none has reached it yet */
    int requires_grad;        /* 1 for parameters and anything computed from one */
    const char *name;         /* parameters and buffers: "enc.conv1.weight"; else NULL */
    ag_tape *tape;            /* the tape whose arena holds it; NULL for parameters and buffers */
    unsigned long step;       /* tape->step when it was made: catches use after ag_tape_reset */
    ag_node *node;            /* the node that computed it; NULL for leaves */
    struct ag_tensor *view_of;/* a view: its value and grad are those of this tensor; else NULL */
} ag_tensor;
typedef enum ag_action { AG_FORWARD, AG_BACKWARD } ag_action;

typedef void (*ag_op_fn)(ag_node *node, ag_action action);

/* What ag_node_new does to an op's output before the forward runs. */
typedef enum ag_output_start {
    AG_OUTPUT_ZEROED,     /* zeroed: the forward may add into it or leave entries at zero */
    AG_OUTPUT_ASSIGNED    /* left as it is: the forward assigns every entry */
} ag_output_start;

/* What the backward walk gives an op's backward in an input's gradient that it makes for the
 * op, no other node having reached that input yet. */
typedef enum ag_grad_start {
    AG_GRAD_ZEROED,      /* zeroed: the backward adds into it, as into every gradient */
    AG_GRAD_ASSIGNED     /* left as it is: where ag_grad_is_new says so, the backward assigns
                            every entry instead of adding */
} ag_grad_start;

typedef struct ag_op {
    const char *name;  /* "conv2d": in error messages, DOT drawings and gradient checks */
    ag_op_fn run;      /* AG_FORWARD: fill out->value; AG_BACKWARD: add to in[k]->grad */
    ag_output_start output_start;  /* AG_OUTPUT_ASSIGNED: the forward writes all of out */
    ag_grad_start grad_start;      /* AG_GRAD_ASSIGNED: the backward may assign new gradients */
} ag_op;

struct ag_node {
    const ag_op *op;
    ag_tape *tape;
    int ninputs;
    ag_tensor *in[AG_MAX_INPUTS];   /* the inputs, in the op's documented order */
    ag_tensor *out;                 /* the result, in the tape's arena */
    int iarg[AG_MAX_IARGS];         /* integer attributes: axis, stride, padding, flags */
    double farg[AG_MAX_FARGS];      /* real attributes: scalar, slope, epsilon, momentum */
    void *saved;                    /* what the forward keeps for the backward (arena) */
    ag_node *prev;                  /* the node recorded just before: the tape, read backwards */
    int index;                      /* position on the tape, counting from 0 */
    unsigned new_grads;             /* in its backward: bit k set when in[k]'s gradient is new */
};
struct ag_tape {
    unsigned char *arena;  /* [capacity] bytes, 64-byte aligned: the current block */
    size_t capacity;       /* bytes in the current block */
    size_t used;           /* bytes of the current block handed out since the last reset */
    size_t limit;          /* growing tapes: the most one step may use; 0 for a fixed tape */
    void **retired;        /* [nretired] blocks filled earlier in this step (growing tapes) */
    int nretired, retired_capacity;
    size_t retired_bytes;  /* bytes handed out from the retired blocks */
    size_t high_water;     /* the most ever used in one step, over all blocks */
    ag_node *last;         /* the most recent node; NULL on an empty tape */
    int nnodes;            /* nodes recorded since the last reset */
    unsigned long step;    /* how many times the tape has been reset */
    int training;          /* 1: batch norm uses batch statistics, dropout drops */
    const char *current_op;/* the op being recorded, for error messages */
    int timing;            /* 1: every action adds its time to op_times */
    struct ag_op_time *op_times; /* [nop_times] per op and size; NULL until timing starts */
    int nop_times;
};
/* Tapes. A tape records one step; ag_tape_reset empties it for the next. */
ag_tape *ag_tape_new(size_t arena_bytes);            /* a fixed arena */
ag_tape *ag_tape_new_growing(size_t limit_bytes);    /* grows as needed, up to the limit */
void ag_tape_free(ag_tape *t);
void ag_tape_reset(ag_tape *t);
void ag_tape_set_training(ag_tape *t, int training);
void *ag_arena_alloc(ag_tape *t, size_t bytes);   /* uninitialised, 64-byte aligned */
void *ag_arena_calloc(ag_tape *t, size_t bytes);  /* zeroed */
/* Errors. The handler receives one line; the default prints "ag: line" and exits 3. */
typedef void (*ag_error_fn)(const char *message);
ag_error_fn ag_set_error_handler(ag_error_fn handler); /* returns the previous one */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
void ag_fatal(const char *format, ...);
enum { AG_EXIT_MISUSE = 3 };
/* Shapes. */
#define AG_SHAPE_STR_SIZE 64
char *ag_shape_str(const ag_tensor *x, char buf[AG_SHAPE_STR_SIZE]);
int ag_same_shape(const ag_tensor *a, const ag_tensor *b);
long ag_shape_size(int ndim, const int *shape);
/* Tensors in a tape's arena: zeroed, or copied from values. No gradient. */
#define AG_SHAPE(...) \
    (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (const int[]){__VA_ARGS__}
ag_tensor *ag_tensor_new(ag_tape *t, int ndim, const int *shape);
ag_tensor *ag_tensor_from(ag_tape *t, int ndim, const int *shape, const ag_real *values);
ag_real *ag_grad_of(ag_tensor *x); /* x->grad, made (zeroed) on first use */
/* Parameter sets: trainable parameters and untrained buffers, outside any tape. */
typedef struct ag_params {
    ag_tensor **items;  /* [count] owned tensors, in the order they were made */
    int count, capacity;
} ag_params;

ag_tensor *ag_param_new(ag_params *ps, const char *name, int ndim, const int *shape);
ag_tensor *ag_buffer_new(ag_params *ps, const char *name, int ndim, const int *shape);
ag_tensor *ag_params_find(const ag_params *ps, const char *name);
void ag_params_zero_grad(ag_params *ps);
long ag_params_size(const ag_params *ps);  /* trainable scalars */
void ag_params_free(ag_params *ps);
/* For the authors of operations: record a node, then run its forward action. */
ag_node *ag_node_new(ag_tape *t, const ag_op *op, int ninputs, ag_tensor *const *inputs,
                     int out_ndim, const int *out_shape);
/* The same for an op whose output is x's values in x's order under another shape: the output
 * shares x's value and gradient buffers, so the op computes nothing either way. */
ag_node *ag_node_new_view(ag_tape *t, const ag_op *op, ag_tensor *x, int out_ndim,
                          const int *out_shape);
ag_tensor *ag_node_forward(ag_node *node);
/* Reverse mode: add dloss/dx to x->grad for every x the loss depends on. */
void ag_backward(ag_tape *t, ag_tensor *loss);
/* The same for a tensor y and a seed dy [y->size]: add dy^T dy/dx to x->grad. */
void ag_backward_vjp(ag_tape *t, ag_tensor *y, const ag_real *dy);
/* In the backward of an op whose row says AG_GRAD_ASSIGNED: 1 when the walk made in[k]'s
 * gradient for this call and left it unzeroed, so that the backward must assign every entry of
 * it; 0 when the backward adds, as it always may. Always 0 outside a backward. */
int ag_grad_is_new(const ag_node *n, int k);
/* Per-operation times, for profiling. Between ag_tape_time_ops(t, 1) and ag_tape_time_ops(t, 0)
 * every forward and backward action recorded or replayed on t adds its wall-clock time to the
 * row of its op and output size; turning timing on clears the rows, which outlive
 * ag_tape_reset. Rows beyond AG_OP_TIME_ROWS go to a last row named "(other)". */
typedef struct ag_op_time {
    const char *op;            /* the op's name */
    long size;                 /* the size of its output; 0 in "(other)" */
    double forward, backward;  /* seconds, summed over the actions */
    long forwards, backwards;  /* the actions timed */
} ag_op_time;
enum { AG_OP_TIME_ROWS = 256 };
/* Seconds on a monotonic clock (CLOCK_MONOTONIC): for differences only. */
double ag_seconds(void);
void ag_tape_time_ops(ag_tape *t, int on);
/* The rows, in the order first met; *count gets their number (0 before any timing). */
const ag_op_time *ag_tape_op_times(const ag_tape *t, int *count);
/* The table of every operation, for gradient checks and drawings. */
extern const ag_op ag_op_add;
extern const ag_op ag_op_sub;
extern const ag_op ag_op_mul;
extern const ag_op ag_op_div;
extern const ag_op ag_op_scale;
extern const ag_op ag_op_add_scalar;
extern const ag_op ag_op_neg;
extern const ag_op ag_op_exp;
extern const ag_op ag_op_log;
extern const ag_op ag_op_relu;
extern const ag_op ag_op_leaky_relu;
extern const ag_op ag_op_sigmoid;
extern const ag_op ag_op_tanh;
extern const ag_op ag_op_softplus;
extern const ag_op ag_op_matmul;
extern const ag_op ag_op_linear;
extern const ag_op ag_op_conv2d;
extern const ag_op ag_op_sum, ag_op_mean, ag_op_sum_axis, ag_op_mean_axis;
extern const ag_op ag_op_logsumexp, ag_op_log_softmax, ag_op_cross_entropy;
extern const ag_op ag_op_diag, ag_op_offdiag;
extern const ag_op ag_op_reshape, ag_op_permute, ag_op_concat, ag_op_broadcast;
extern const ag_op ag_op_batch_norm;
extern const ag_op ag_op_layer_norm;
extern const ag_op ag_op_dropout;
extern const ag_op *const ag_op_table[];
extern const int ag_op_count;
/* A seeded random number generator: xoshiro256**, seeded by SplitMix64. */
typedef struct ag_rng {
    uint64_t s[4];  /* the whole state */
} ag_rng;

void ag_rng_seed(ag_rng *r, uint64_t seed);
uint64_t ag_rng_next(ag_rng *r);
double ag_rng_uniform(ag_rng *r);              /* in [0, 1) */
double ag_rng_normal(ag_rng *r);               /* mean 0, variance 1 */
uint32_t ag_rng_below(ag_rng *r, uint32_t n);  /* uniform in {0, ..., n-1}, n >= 1 */
void ag_rng_shuffle(ag_rng *r, int *items, int n);
void ag_fill_uniform(ag_tensor *x, ag_rng *r, double lo, double hi);
void ag_fill_normal(ag_tensor *x, ag_rng *r, double mean, double std);
void ag_fill(ag_tensor *x, double value);
/* Elementwise arithmetic with NumPy broadcasting: shapes are aligned from the right, and each
 * pair of dimensions must be equal or contain a 1; the output has the larger rank and, in each
 * dimension, the larger size. Stops with both shapes named when they do not broadcast. */
ag_tensor *ag_add(ag_tape *t, ag_tensor *a, ag_tensor *b);  /* a + b */
ag_tensor *ag_sub(ag_tape *t, ag_tensor *a, ag_tensor *b);  /* a - b */
ag_tensor *ag_mul(ag_tape *t, ag_tensor *a, ag_tensor *b);  /* a * b */
ag_tensor *ag_div(ag_tape *t, ag_tensor *a, ag_tensor *b);  /* a / b; b = 0 gives inf or NaN */
/* Elementwise functions: each returns a tensor of the shape of x. */
ag_tensor *ag_scale(ag_tape *t, ag_tensor *x, double c);       /* c x */
ag_tensor *ag_add_scalar(ag_tape *t, ag_tensor *x, double c);  /* x + c */
ag_tensor *ag_neg(ag_tape *t, ag_tensor *x);                   /* -x */
ag_tensor *ag_exp(ag_tape *t, ag_tensor *x);                   /* e^x */
ag_tensor *ag_log(ag_tape *t, ag_tensor *x);                   /* log x; NaN if x < 0 */
ag_tensor *ag_relu(ag_tape *t, ag_tensor *x);                  /* max(x, 0); slope 0 at 0 */
ag_tensor *ag_leaky_relu(ag_tape *t, ag_tensor *x, double slope); /* x > 0 ? x : slope x */
ag_tensor *ag_sigmoid(ag_tape *t, ag_tensor *x);  /* 1 / (1 + e^-x), never overflows */
ag_tensor *ag_tanh(ag_tape *t, ag_tensor *x);     /* tanh x */
ag_tensor *ag_softplus(ag_tape *t, ag_tensor *x); /* log(1 + e^x), finite for every x */
/* The matrix product, row-major: C = alpha op(A) op(B) + beta C, where op(X) is X or X^T
 * (trans_x nonzero), op(A) is m x k, op(B) is k x n, C is m x n, and lda, ldb, ldc are the
 * strides between rows as stored (lda >= k columns, or >= m when A is transposed).
 * beta == 0: C is written without being read (it may hold NaN). alpha == 0 or k == 0: A and
 * B are not read. C must not overlap A or B. The result is bit-identical for any number of
 * OpenMP threads. Misuse (a negative size, a leading dimension too small) is fatal. */
void ag_gemm(int trans_a, int trans_b, int m, int n, int k, ag_real alpha,
             const ag_real *A, int lda, const ag_real *B, int ldb, ag_real beta,
             ag_real *C, int ldc);
/* op(a) op(b) for 2-D tensors: op(a) [M, K] (a is [K, M] when trans_a), op(b) [K, N]
 * (b is [N, K] when trans_b) -> [M, N]. */
ag_tensor *ag_matmul(ag_tape *t, ag_tensor *a, ag_tensor *b, int trans_a, int trans_b);
/* The fully connected layer x W^T + b: x [N, in], W [out, in], b [out] or NULL -> [N, out]. */
ag_tensor *ag_linear(ag_tape *t, ag_tensor *x, ag_tensor *w, ag_tensor *b);
/* 2-D convolution (cross-correlation), NCHW: x [N, C, H, W], w [O, C, KH, KW], b [O] or NULL,
 * stride >= 1, padding >= 0 zeros on each side -> [N, O, (H+2p-KH)/s+1, (W+2p-KW)/s+1].
 * Keeps the im2col patch matrix (C*KH*KW x N*OH*OW values) and one output-sized buffer in the
 * tape's arena, and one more patch-sized buffer in the backward when x needs a gradient. */
ag_tensor *ag_conv2d(ag_tape *t, ag_tensor *x, ag_tensor *w, ag_tensor *b, int stride,
                     int padding);
/* Reductions and losses (doc/13-ops-reduce.nw). An axis may be negative: -1 is the last. */
/* The sum or the mean of all elements of x, as a scalar (ndim 0). */
ag_tensor *ag_sum(ag_tape *t, ag_tensor *x);
ag_tensor *ag_mean(ag_tape *t, ag_tensor *x);
/* The sum or mean of x along axis: that dimension is dropped, or kept with length 1 when
 * keepdim is nonzero. A 1-D x reduced without keepdim gives a scalar (ndim 0). */
ag_tensor *ag_sum_axis(ag_tape *t, ag_tensor *x, int axis, int keepdim);
ag_tensor *ag_mean_axis(ag_tape *t, ag_tensor *x, int axis, int keepdim);
/* log sum exp of x along axis, stable for any finite values (shifted by the maximum);
 * the dimension is dropped, or kept with length 1 when keepdim is nonzero. */
ag_tensor *ag_logsumexp(ag_tape *t, ag_tensor *x, int axis, int keepdim);
/* x minus its logsumexp along axis: the log of the softmax, stable for any finite values. */
ag_tensor *ag_log_softmax(ag_tape *t, ag_tensor *x, int axis);
/* mean over the N rows of -log softmax(logits[i])[labels[i]], for logits [N, K] and labels
 * [N] in 0 .. K-1 (copied: the caller's array may be reused after the call). */
ag_tensor *ag_cross_entropy(ag_tape *t, ag_tensor *logits, const int *labels);
/* The diagonals of a batch of square matrices: s [..., N, N] -> [..., N], out[..., i] =
 * s[..., i, i]. */
ag_tensor *ag_diag(ag_tape *t, ag_tensor *s);
/* Row i of each matrix without its entry i: s [..., N, N] -> [..., N, N-1], N >= 2. */
ag_tensor *ag_offdiag(ag_tape *t, ag_tensor *s);
/* Operations on shapes (doc/14-ops-shape.nw). Outputs are contiguous copies, never views. */
/* x with a new shape of the same size (the values in the same order). One dimension may be
 * -1: it is then the size of x divided by the product of the others. */
ag_tensor *ag_reshape(ag_tape *t, ag_tensor *x, int ndim, const int *shape);
/* x with its axes reordered: output dimension d is input dimension perm[d]; perm holds each
 * of 0 .. x->ndim-1 once. */
ag_tensor *ag_permute(ag_tape *t, ag_tensor *x, const int *perm);
/* The transpose of a 2-D tensor: ag_permute with (1, 0). */
ag_tensor *ag_transpose(ag_tape *t, ag_tensor *x);
/* The n tensors xs[0..n-1] (1 <= n <= AG_MAX_INPUTS) joined along axis (negative: from the
 * end); they must have equal shapes except along axis. */
ag_tensor *ag_concat(ag_tape *t, int n, ag_tensor *const *xs, int axis);
/* x repeated to the given shape by numpy's rules (shapes aligned on the right, each dimension
 * of x equal to the target's or 1); ndim >= x->ndim. */
ag_tensor *ag_broadcast_to(ag_tape *t, ag_tensor *x, int ndim, const int *shape);
/* Normalisation and dropout (doc/15-ops-norm.nw). */
/* Batch normalisation of x [N, C] or [N, C, H, W] per channel c, then gamma[c] * xhat +
 * beta[c]. gamma, beta, running_mean, running_var are [C]; the running statistics are buffers
 * (no gradient). In training (t->training when the node is recorded) xhat uses the batch mean
 * and biased variance, and the running statistics are updated with momentum as in PyTorch
 * (the variance with the unbiased batch variance); in evaluation xhat uses the running
 * statistics and nothing is updated. Gradients reach x, gamma and beta. */
ag_tensor *ag_batch_norm(ag_tape *t, ag_tensor *x, ag_tensor *gamma, ag_tensor *beta,
                         ag_tensor *running_mean, ag_tensor *running_var,
                         double momentum, double eps);
/* mean[j] and the biased (population) variance var[j] of each column j of m [rows, cols], in
 * double: two passes, each column summed in row order, the same for any number of threads. */
void ag_column_mean_var(const ag_real *m, long rows, int cols, double *mean, double *var);
/* Layer normalisation of x [..., D] over its last axis, then gamma[d] * xhat + beta[d];
 * gamma and beta are [D]. Biased variance; the same in training and evaluation. */
ag_tensor *ag_layer_norm(ag_tape *t, ag_tensor *x, ag_tensor *gamma, ag_tensor *beta,
                         double eps);
/* Inverted dropout: in training (t->training when recorded) and with p > 0, each entry of x
 * is zeroed with probability p and the others are scaled by 1 / (1 - p); the mask is drawn
 * from rng, one uniform per entry in order. In evaluation, or with p == 0, the identity, and
 * rng is not touched (it may then be NULL). p must be in [0, 1). */
ag_tensor *ag_dropout(ag_tape *t, ag_tensor *x, double p, ag_rng *rng);
/* Optimizers (doc/16-optim.nw). */
/* Multiply the gradient of every trainable tensor of ps by c; buffers are untouched. */
void ag_params_scale_grad(ag_params *ps, double c);
/* SGD as torch.optim.SGD (no dampening, no weight decay): v = momentum * v + g;
 * p -= lr * v. With momentum 0 no velocity is kept (velocity is NULL). */
typedef struct ag_sgd {
    ag_params *params;   /* the set it moves; not owned */
    int count;           /* params->count when the optimizer was made */
    double lr;           /* learning rate; may be changed between steps */
    double momentum;     /* mu in [0, 1) */
    long step;           /* steps taken */
    ag_real **velocity;  /* [count], each [items[i]->size]; NULL entries for buffers;
                            NULL altogether when momentum == 0 */
} ag_sgd;

ag_sgd *ag_sgd_new(ag_params *ps, double lr, double momentum);
void ag_sgd_step(ag_sgd *opt);   /* one update of every trainable tensor from its grad */
void ag_sgd_free(ag_sgd *opt);
/* Adam as torch.optim.Adam (no weight decay, no amsgrad): at step t (from 1)
 * m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
 * p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps). */
typedef struct ag_adam {
    ag_params *params;   /* the set it moves; not owned */
    int count;           /* params->count when the optimizer was made */
    double lr;           /* learning rate; may be changed between steps */
    double beta1, beta2; /* decay rates of the moment estimates, in [0, 1) */
    double eps;          /* added to the denominator */
    long step;           /* steps taken: t of the bias corrections is step after ++ */
    ag_real **m;         /* [count], each [items[i]->size]: first moments; NULL for buffers */
    ag_real **v;         /* [count], each [items[i]->size]: second moments; NULL for buffers */
} ag_adam;

ag_adam *ag_adam_new(ag_params *ps, double lr, double beta1, double beta2, double eps);
void ag_adam_step(ag_adam *opt);   /* one update of every trainable tensor from its grad */
void ag_adam_free(ag_adam *opt);
/* Graphviz (doc/17-dot.nw). Write the graph recorded on t since its last reset as a DOT
 * digraph titled title (NULL: untitled), for dot -Tsvg. Names are escaped; the output is the
 * same for the same tape. */
void ag_tape_write_dot(const ag_tape *t, FILE *out, const char *title);

#endif /* AG_H */
