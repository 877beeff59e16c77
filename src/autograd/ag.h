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
} ag_tensor;
typedef enum ag_action { AG_FORWARD, AG_BACKWARD } ag_action;

typedef void (*ag_op_fn)(ag_node *node, ag_action action);

typedef struct ag_op {
    const char *name;  /* "conv2d": in error messages, DOT drawings and gradient checks */
    ag_op_fn run;      /* AG_FORWARD: fill out->value; AG_BACKWARD: add to in[k]->grad */
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
};
struct ag_tape {
    unsigned char *arena;  /* [capacity] bytes, 64-byte aligned */
    size_t capacity;       /* bytes in the arena */
    size_t used;           /* bytes handed out since the last reset */
    size_t high_water;     /* the most ever used in one step */
    ag_node *last;         /* the most recent node; NULL on an empty tape */
    int nnodes;            /* nodes recorded since the last reset */
    unsigned long step;    /* how many times the tape has been reset */
    int training;          /* 1: batch norm uses batch statistics, dropout drops */
    const char *current_op;/* the op being recorded, for error messages */
};
/* Tapes. A tape records one step; ag_tape_reset empties it for the next. */
ag_tape *ag_tape_new(size_t arena_bytes);
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
ag_tensor *ag_node_forward(ag_node *node);
/* Reverse mode: add dloss/dx to x->grad for every x the loss depends on. */
void ag_backward(ag_tape *t, ag_tensor *loss);
/* The same for a tensor y and a seed dy [y->size]: add dy^T dy/dx to x->grad. */
void ag_backward_vjp(ag_tape *t, ag_tensor *y, const ag_real *dy);
/* The table of every operation, for gradient checks and drawings. */

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

#endif /* AG_H */
