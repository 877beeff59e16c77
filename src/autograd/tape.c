/* tape.c -- tensors, the arena, the tape and the backward walk.
 * Tangled from doc/10-engine.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { AG_ALIGN = 64 };
#if !defined(AG_POISON_OUTPUTS) && defined(__SANITIZE_ADDRESS__)
#define AG_POISON_OUTPUTS 1
#elif !defined(AG_POISON_OUTPUTS) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AG_POISON_OUTPUTS 1
#endif
#endif

static void default_error_handler(const char *message)
{
    fprintf(stderr, "ag: %s\n", message);
    exit(AG_EXIT_MISUSE);
}

static ag_error_fn error_handler = default_error_handler;

ag_error_fn ag_set_error_handler(ag_error_fn handler)
{
    ag_error_fn previous = error_handler;
    error_handler = handler ? handler : default_error_handler;
    return previous;
}

void ag_fatal(const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    error_handler(message);
    exit(AG_EXIT_MISUSE); /* a handler that returns is not allowed to continue */
}
static size_t round_up(size_t bytes) { return (bytes + AG_ALIGN - 1) / AG_ALIGN * AG_ALIGN; }

static unsigned char *new_block(size_t capacity, const char *who)
{
    void *block = NULL;
    if (capacity == 0 || posix_memalign(&block, AG_ALIGN, capacity) != 0)
        ag_fatal("%s: out of memory for an arena block of %zu bytes", who, capacity);
    return block;
}

ag_tape *ag_tape_new(size_t arena_bytes)
{
    ag_tape *t = calloc(1, sizeof *t);
    if (t == NULL) ag_fatal("ag_tape_new: out of memory");
    t->capacity = round_up(arena_bytes);
    t->arena = new_block(t->capacity, "ag_tape_new");
    t->training = 1;
    return t;
}

ag_tape *ag_tape_new_growing(size_t limit_bytes)
{
    enum { FIRST_BLOCK = 1 << 20 };
    ag_tape *t = ag_tape_new(limit_bytes < FIRST_BLOCK ? limit_bytes : FIRST_BLOCK);
    t->limit = limit_bytes;
    return t;
}

static void free_retired(ag_tape *t)
{
    for (int i = 0; i < t->nretired; i++) free(t->retired[i]);
    t->nretired = 0;
    t->retired_bytes = 0;
}

void ag_tape_free(ag_tape *t)
{
    if (t == NULL) return;
    free_retired(t);
    free(t->retired);
    free(t->arena);
    free(t->op_times);
    free(t);
}

void ag_tape_reset(ag_tape *t)
{
    if (t->nretired > 0) { /* the step grew: from now on one block holds a whole step */
        free_retired(t);
        free(t->arena);
        t->capacity = round_up(t->high_water + t->high_water / 8);
        t->arena = new_block(t->capacity, "ag_tape_reset");
    }
    t->used = 0;
    t->last = NULL;
    t->nnodes = 0;
    t->step++;
}

void ag_tape_set_training(ag_tape *t, int training) { t->training = training != 0; }
enum { ZERO_PIECE = 1 << 18 }; /* bytes one thread clears at a time: 256 KiB */

/* memset(p, 0, bytes), by every thread when there are several pieces. Most calls clear a
 * node or a tensor's header: those stay out of any parallel region. */
static void zero_bytes(void *p, size_t bytes)
{
    unsigned char *base = p;
    long pieces = (long)((bytes + ZERO_PIECE - 1) / ZERO_PIECE);
    if (pieces <= 1) {
        memset(p, 0, bytes);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < pieces; i++) {
        size_t at = (size_t)i * ZERO_PIECE;
        memset(base + at, 0, bytes - at < ZERO_PIECE ? bytes - at : ZERO_PIECE);
    }
}
static void grow(ag_tape *t, size_t rounded)
{
    if (t->nretired == t->retired_capacity) {
        int capacity = t->retired_capacity ? 2 * t->retired_capacity : 8;
        void **retired = realloc(t->retired, (size_t)capacity * sizeof *retired);
        if (retired == NULL) ag_fatal("ag_arena_alloc: out of memory");
        t->retired = retired;
        t->retired_capacity = capacity;
    }
    t->retired[t->nretired++] = t->arena;
    t->retired_bytes += t->used;
    size_t capacity = 2 * t->capacity > rounded ? 2 * t->capacity : rounded;
    t->arena = new_block(capacity, "ag_arena_alloc");
    t->capacity = capacity;
    t->used = 0;
}

void *ag_arena_alloc(ag_tape *t, size_t bytes)
{
    size_t rounded = round_up(bytes);
    size_t in_use = t->retired_bytes + t->used;
    if (rounded < bytes || rounded > t->capacity - t->used) {
        size_t limit = t->limit ? t->limit : t->capacity;
        if (rounded < bytes || t->limit == 0 || rounded > limit - in_use)
            ag_fatal("%s: tape arena exhausted: needs %zu more bytes, %zu of %zu are in use; "
                     "make the tape with a larger arena (ag_tape_new, ag_tape_new_growing)",
                     t->current_op ? t->current_op : "ag_arena_alloc", bytes, in_use, limit);
        grow(t, rounded);
    }
    void *p = t->arena + t->used;
    t->used += rounded;
    if (t->retired_bytes + t->used > t->high_water) t->high_water = t->retired_bytes + t->used;
    return p;
}

void *ag_arena_calloc(ag_tape *t, size_t bytes)
{
    void *p = ag_arena_alloc(t, bytes);
    zero_bytes(p, bytes);
    return p;
}
static void set_shape(ag_tensor *x, int ndim, const int *shape, const char *who)
{
    if (ndim < 0 || ndim > AG_MAX_DIMS)
        ag_fatal("%s: %d dimensions asked for; tensors have 0 to %d", who, ndim, AG_MAX_DIMS);
    x->ndim = ndim;
    x->size = 1;
    for (int d = 0; d < AG_MAX_DIMS; d++) {
        x->shape[d] = d < ndim ? shape[d] : 1;
        if (x->shape[d] <= 0)
            ag_fatal("%s: dimension %d is %d; every dimension must be at least 1",
                     who, d, x->shape[d]);
        if (x->size > (long)(SIZE_MAX / sizeof(ag_real)) / x->shape[d])
            ag_fatal("%s: a tensor with this shape would not fit in memory", who);
        x->size *= x->shape[d];
    }
}

/* A tensor on the tape with no value buffer yet. */
static ag_tensor *tensor_header_on_tape(ag_tape *t, int ndim, const int *shape, const char *who)
{
    ag_tensor *x = ag_arena_calloc(t, sizeof *x);
    set_shape(x, ndim, shape, who);
    x->tape = t;
    x->step = t->step;
    return x;
}

/* A tensor on the tape with a value buffer, zeroed unless the caller will assign every entry. */
static ag_tensor *tensor_on_tape(ag_tape *t, int ndim, const int *shape, const char *who,
                                 ag_output_start start)
{
    ag_tensor *x = tensor_header_on_tape(t, ndim, shape, who);
    size_t bytes = (size_t)x->size * sizeof(ag_real);
    if (start == AG_OUTPUT_ZEROED) {
        x->value = ag_arena_calloc(t, bytes);
    } else {
        x->value = ag_arena_alloc(t, bytes);
        #ifdef AG_POISON_OUTPUTS
        for (long i = 0; i < x->size; i++) x->value[i] = (ag_real)NAN;
        #endif
    }
    return x;
}

ag_tensor *ag_tensor_new(ag_tape *t, int ndim, const int *shape)
{
    return tensor_on_tape(t, ndim, shape, "ag_tensor_new", AG_OUTPUT_ZEROED);
}

ag_tensor *ag_tensor_from(ag_tape *t, int ndim, const int *shape, const ag_real *values)
{
    ag_tensor *x = tensor_on_tape(t, ndim, shape, "ag_tensor_from", AG_OUTPUT_ASSIGNED);
    memcpy(x->value, values, (size_t)x->size * sizeof(ag_real));
    return x;
}
/* x->grad, made on first use: zeroed, or left as the arena had it (NaN under AG_POISON_OUTPUTS)
 * when !zeroed; *made is set to 1 when this call made the buffer. */
static ag_real *grad_buffer(ag_tensor *x, int zeroed, int *made)
{
    if (x->grad == NULL && x->view_of != NULL) {
        x->grad = grad_buffer(x->view_of, zeroed, made);
    } else if (x->grad == NULL) {
        if (x->tape == NULL)
            ag_fatal("ag_grad_of: tensor %s lives outside any tape and has no gradient buffer",
                     x->name ? x->name : "(unnamed)");
        size_t bytes = (size_t)x->size * sizeof(ag_real);
        x->grad = zeroed ? ag_arena_calloc(x->tape, bytes) : ag_arena_alloc(x->tape, bytes);
        *made = 1;
        if (!zeroed) {
            #ifdef AG_POISON_OUTPUTS
            for (long i = 0; i < x->size; i++) x->grad[i] = (ag_real)NAN;
            #endif
        }
    }
    return x->grad;
}

ag_real *ag_grad_of(ag_tensor *x)
{
    int made = 0;
    return grad_buffer(x, 1, &made);
}
static ag_tensor *outside_tensor(ag_params *ps, const char *name, int ndim, const int *shape,
                                 int trainable)
{
    if (ag_params_find(ps, name) != NULL)
        ag_fatal("ag_param_new: a parameter named \"%s\" exists already", name);
    ag_tensor *x = calloc(1, sizeof *x);
    char *copy = malloc(strlen(name) + 1);
    if (x == NULL || copy == NULL) ag_fatal("ag_param_new: out of memory for \"%s\"", name);
    set_shape(x, ndim, shape, "ag_param_new");
    x->name = strcpy(copy, name);
    x->value = calloc((size_t)x->size, sizeof(ag_real));
    x->requires_grad = trainable;
    if (trainable) x->grad = calloc((size_t)x->size, sizeof(ag_real));
    if (x->value == NULL || (trainable && x->grad == NULL))
        ag_fatal("ag_param_new: out of memory for \"%s\" (%ld values)", name, x->size);
    if (ps->count == ps->capacity) {
        int capacity = ps->capacity ? 2 * ps->capacity : 16;
        ag_tensor **items = realloc(ps->items, (size_t)capacity * sizeof *items);
        if (items == NULL) ag_fatal("ag_param_new: out of memory");
        ps->items = items;
        ps->capacity = capacity;
    }
    ps->items[ps->count++] = x;
    return x;
}

ag_tensor *ag_param_new(ag_params *ps, const char *name, int ndim, const int *shape)
{
    return outside_tensor(ps, name, ndim, shape, 1);
}

ag_tensor *ag_buffer_new(ag_params *ps, const char *name, int ndim, const int *shape)
{
    return outside_tensor(ps, name, ndim, shape, 0);
}

ag_tensor *ag_params_find(const ag_params *ps, const char *name)
{
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->items[i]->name, name) == 0) return ps->items[i];
    return NULL;
}

void ag_params_zero_grad(ag_params *ps)
{
    enum { RUN = 1 << 16 }; /* entries one thread clears at a time */
    long total = 0;
    for (int i = 0; i < ps->count; i++) total += ps->items[i]->grad ? ps->items[i]->size : 0;
    #pragma omp parallel if (total >= RUN)
    for (int i = 0; i < ps->count; i++) {
        ag_tensor *p = ps->items[i];
        if (p->grad == NULL) continue;
        long runs = (p->size + RUN - 1) / RUN;
        #pragma omp for schedule(static) nowait
        for (long r = 0; r < runs; r++) {
            long n = p->size - r * RUN < RUN ? p->size - r * RUN : RUN;
            memset(p->grad + r * RUN, 0, (size_t)n * sizeof(ag_real));
        }
    }
}

long ag_params_size(const ag_params *ps)
{
    long n = 0;
    for (int i = 0; i < ps->count; i++)
        if (ps->items[i]->requires_grad) n += ps->items[i]->size;
    return n;
}

void ag_params_free(ag_params *ps)
{
    for (int i = 0; i < ps->count; i++) {
        free((char *)ps->items[i]->name);
        free(ps->items[i]->value);
        free(ps->items[i]->grad);
        free(ps->items[i]);
    }
    free(ps->items);
    ps->items = NULL;
    ps->count = ps->capacity = 0;
}
double ag_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ag_tape_time_ops(ag_tape *t, int on)
{
    if (on) {
        if (t->op_times == NULL) t->op_times = malloc(AG_OP_TIME_ROWS * sizeof *t->op_times);
        if (t->op_times == NULL) ag_fatal("ag_tape_time_ops: out of memory");
        t->nop_times = 0;
    }
    t->timing = on != 0;
}

const ag_op_time *ag_tape_op_times(const ag_tape *t, int *count)
{
    *count = t->op_times != NULL ? t->nop_times : 0;
    return t->op_times;
}

/* The row of n's op and output size, made on first use; the last row, made when the others
 * are taken, is "(other)" and takes every op and size not met before. */
static ag_op_time *op_time_row(ag_tape *t, const ag_node *n)
{
    for (int i = 0; i < t->nop_times; i++)
        if (t->op_times[i].op == n->op->name && t->op_times[i].size == n->out->size)
            return &t->op_times[i];
    if (t->nop_times == AG_OP_TIME_ROWS) return &t->op_times[AG_OP_TIME_ROWS - 1];
    ag_op_time fresh = { n->op->name, n->out->size, 0, 0, 0, 0 };
    if (t->nop_times == AG_OP_TIME_ROWS - 1) {
        fresh.op = "(other)";
        fresh.size = 0;
    }
    t->op_times[t->nop_times] = fresh;
    return &t->op_times[t->nop_times++];
}

/* n's forward or backward action, timed when the tape is timing. */
static void run_action(ag_node *n, ag_action action)
{
    ag_tape *t = n->tape;
    if (!t->timing) {
        n->op->run(n, action);
        return;
    }
    double start = ag_seconds();
    n->op->run(n, action);
    double elapsed = ag_seconds() - start;
    ag_op_time *row = op_time_row(t, n);
    if (action == AG_FORWARD) {
        row->forward += elapsed;
        row->forwards++;
    } else {
        row->backward += elapsed;
        row->backwards++;
    }
}
static void check_alive(ag_tape *t, const ag_op *op, const ag_tensor *x, int k)
{
    if (x == NULL)
        ag_fatal("%s: input %d is NULL", op->name, k);
    if (x->tape == NULL) return; /* a parameter, buffer or other outside tensor */
    if (x->tape != t)
        ag_fatal("%s: input %d was made on another tape; tensors cannot cross tapes",
                 op->name, k);
    if (x->step != t->step)
        ag_fatal("%s: input %d was made before the tape was reset (step %lu, now %lu); "
                 "did you keep a tensor across ag_tape_reset?", op->name, k, x->step, t->step);
}

/* Put a node that computes out from the inputs at the end of the tape. */
static ag_node *record_node(ag_tape *t, const ag_op *op, int ninputs, ag_tensor *const *inputs,
                            ag_tensor *out)
{
    ag_node *n = ag_arena_calloc(t, sizeof *n);
    n->op = op;
    n->tape = t;
    n->ninputs = ninputs;
    int requires_grad = 0;
    for (int k = 0; k < ninputs; k++) {
        n->in[k] = inputs[k];
        requires_grad |= inputs[k]->requires_grad;
    }
    n->out = out;
    n->out->requires_grad = requires_grad;
    n->out->node = n;
    n->prev = t->last;
    n->index = t->nnodes++;
    t->last = n;
    return n;
}

ag_node *ag_node_new(ag_tape *t, const ag_op *op, int ninputs, ag_tensor *const *inputs,
                     int out_ndim, const int *out_shape)
{
    if (ninputs < 0 || ninputs > AG_MAX_INPUTS)
        ag_fatal("%s: %d inputs; an op takes at most %d", op->name, ninputs, AG_MAX_INPUTS);
    for (int k = 0; k < ninputs; k++) /* before allocating: a dead input's memory is reused */
        check_alive(t, op, inputs[k], k);
    t->current_op = op->name;
    ag_tensor *out = tensor_on_tape(t, out_ndim, out_shape, op->name, op->output_start);
    return record_node(t, op, ninputs, inputs, out);
}

ag_node *ag_node_new_view(ag_tape *t, const ag_op *op, ag_tensor *x, int out_ndim,
                          const int *out_shape)
{
    check_alive(t, op, x, 0);
    t->current_op = op->name;
    ag_tensor *y = tensor_header_on_tape(t, out_ndim, out_shape, op->name);
    if (y->size != x->size)
        ag_fatal("%s: a view must have as many values as the tensor it views (%ld, not %ld)",
                 op->name, x->size, y->size);
    y->value = x->value;
    y->view_of = x;
    return record_node(t, op, 1, &x, y);
}

ag_tensor *ag_node_forward(ag_node *n)
{
    n->tape->current_op = n->op->name;
    run_action(n, AG_FORWARD);
    n->tape->current_op = NULL;
    return n->out;
}
/* The tensor whose buffers x uses: x itself, or the tensor its views lead to. */
static const ag_tensor *grad_owner(const ag_tensor *x)
{
    while (x->view_of != NULL) x = x->view_of;
    return x;
}

/* Whether another input of n that needs a gradient shares in[k]'s buffer. */
static int shares_grad(const ag_node *n, int k)
{
    for (int j = 0; j < n->ninputs; j++)
        if (j != k && n->in[j]->requires_grad && grad_owner(n->in[j]) == grad_owner(n->in[k]))
            return 1;
    return 0;
}

/* The gradient of every input of n that needs one, made where missing; new_grads marks those
 * made here, unshared, and left unzeroed for an op that assigns them. */
static void make_input_grads(ag_node *n)
{
    n->new_grads = 0;
    for (int k = 0; k < n->ninputs; k++) {
        if (!n->in[k]->requires_grad) continue;
        int assign = n->op->grad_start == AG_GRAD_ASSIGNED && !shares_grad(n, k), made = 0;
        grad_buffer(n->in[k], !assign, &made);
        if (assign && made) n->new_grads |= 1u << k;
    }
}
void ag_backward(ag_tape *t, ag_tensor *loss)
{
    char shape[AG_SHAPE_STR_SIZE];
    if (loss->size != 1)
        ag_fatal("ag_backward: the loss must be a scalar, not a tensor of shape %s",
                 ag_shape_str(loss, shape));
    if (loss->tape != t || loss->step != t->step)
        ag_fatal("ag_backward: the loss was not computed on this tape since its last reset");
    if (!loss->requires_grad)
        ag_fatal("ag_backward: the loss depends on no parameter; nothing to differentiate");
    const ag_real one = 1;
    ag_backward_vjp(t, loss, &one);
}

void ag_backward_vjp(ag_tape *t, ag_tensor *y, const ag_real *dy)
{
    if (y->tape != t || y->step != t->step)
        ag_fatal("ag_backward: the output was not computed on this tape since its last reset");
    if (!y->requires_grad) return; /* nothing it depends on needs a gradient */
    for (ag_node *n = t->last; n != NULL; n = n->prev) /* left by an earlier walk */
        if (n->out->grad && n->out->view_of == NULL)
            zero_bytes(n->out->grad, (size_t)n->out->size * sizeof(ag_real));
    ag_real *seed = ag_grad_of(y);
    for (long i = 0; i < y->size; i++) seed[i] += dy[i];
    for (ag_node *n = t->last; n != NULL; n = n->prev) {
        if (!n->out->requires_grad || n->out->grad == NULL) continue;
        make_input_grads(n);
        t->current_op = n->op->name;
        run_action(n, AG_BACKWARD);
        n->new_grads = 0;
    }
    t->current_op = NULL;
}

int ag_grad_is_new(const ag_node *n, int k)
{
    return k >= 0 && k < n->ninputs && (n->new_grads >> k & 1u);
}
char *ag_shape_str(const ag_tensor *x, char buf[AG_SHAPE_STR_SIZE])
{
    int n = snprintf(buf, AG_SHAPE_STR_SIZE, "[");
    for (int d = 0; d < x->ndim; d++)
        n += snprintf(buf + n, AG_SHAPE_STR_SIZE - n, d ? ", %d" : "%d", x->shape[d]);
    snprintf(buf + n, AG_SHAPE_STR_SIZE - n, "]");
    return buf;
}

int ag_same_shape(const ag_tensor *a, const ag_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

long ag_shape_size(int ndim, const int *shape)
{
    long size = 1;
    for (int d = 0; d < ndim; d++) size *= shape[d];
    return size;
}
