/* test_engine.c -- the engine core (doc/10-engine.nw): tensors and shapes, the arena and the
 * tape across steps, error messages, gradient accumulation, and the random number generator. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../src/autograd/ag.h"
#include "fatal.h"
#include "suites.h"

static int count_of(int ndim, const int *shape)
{
    (void)shape;
    return ndim;
}

/* ---------------------------------------------------------------------------------------- */
/* Tensors and shapes                                                                          */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_tensor_new_has_shape_size_and_zeros)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(2, 3, 4));
    ck_assert_int_eq(x->ndim, 3);
    ck_assert_int_eq(x->shape[0], 2);
    ck_assert_int_eq(x->shape[1], 3);
    ck_assert_int_eq(x->shape[2], 4);
    ck_assert_int_eq(x->shape[3], 1); /* unused dimensions are 1 */
    ck_assert_int_eq(x->size, 24);
    for (long i = 0; i < x->size; i++) ck_assert(x->value[i] == 0);
    ck_assert_ptr_null(x->grad);
    ck_assert_int_eq(x->requires_grad, 0);
    ck_assert_ptr_eq(x->tape, t);
    ck_assert_uint_eq(x->step, t->step);
    ck_assert_ptr_null(x->node);
    ck_assert_ptr_null(x->name);
    ck_assert_uint_eq((uintptr_t)x->value % 64, 0);
    ck_assert_uint_eq((uintptr_t)x % 64, 0);
    ag_tape_free(t);
}
END_TEST

START_TEST(test_scalar_has_no_dimensions_and_size_one)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *s = ag_tensor_new(t, 0, NULL);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(s->size, 1);
    char buf[AG_SHAPE_STR_SIZE];
    ck_assert_str_eq(ag_shape_str(s, buf), "[]");
    ag_tape_free(t);
}
END_TEST

START_TEST(test_tensor_from_copies_values)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_real values[6] = {1, -2, 3.5, 4, 0.25, -6};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(2, 3), values);
    values[0] = 99; /* the tensor owns a copy */
    ck_assert(x->value[0] == 1);
    ck_assert(x->value[2] == (ag_real)3.5);
    ck_assert(x->value[5] == -6);
    ck_assert_ptr_ne(x->value, values);
    ag_tape_free(t);
}
END_TEST

START_TEST(test_shape_macro_counts_and_lists_dimensions)
{
    ck_assert_int_eq(count_of(AG_SHAPE(64, 1, 28, 28)), 4);
    ck_assert_int_eq(count_of(AG_SHAPE(7)), 1);
    ck_assert_int_eq(ag_shape_size(AG_SHAPE(64, 1, 28, 28)), 64L * 28 * 28);
    ag_tape *t = ag_tape_new(1 << 16);
    char buf[AG_SHAPE_STR_SIZE];
    ag_tensor batch = {.ndim = 4, .shape = {64, 128, 7, 7}}; /* only the shape is read */
    ck_assert_str_eq(ag_shape_str(&batch, buf), "[64, 128, 7, 7]");
    ck_assert_str_eq(ag_shape_str(ag_tensor_new(t, AG_SHAPE(5, 1)), buf), "[5, 1]");
    ck_assert(ag_same_shape(ag_tensor_new(t, AG_SHAPE(2, 3)), ag_tensor_new(t, AG_SHAPE(2, 3))));
    ck_assert(!ag_same_shape(ag_tensor_new(t, AG_SHAPE(2, 3)), ag_tensor_new(t, AG_SHAPE(3, 2))));
    ck_assert(!ag_same_shape(ag_tensor_new(t, AG_SHAPE(6)), ag_tensor_new(t, AG_SHAPE(6, 1))));
    ag_tape_free(t);
}
END_TEST

START_TEST(test_params_and_buffers_live_outside_the_tape)
{
    ag_params ps = {0};
    ag_tensor *w = ag_param_new(&ps, "enc.weight", AG_SHAPE(4, 3));
    ag_tensor *m = ag_buffer_new(&ps, "bn.running_mean", AG_SHAPE(4));
    ck_assert_ptr_null(w->tape);
    ck_assert_int_eq(w->requires_grad, 1);
    ck_assert_ptr_nonnull(w->grad);
    for (long i = 0; i < w->size; i++) ck_assert(w->grad[i] == 0 && w->value[i] == 0);
    ck_assert_str_eq(w->name, "enc.weight");
    ck_assert_int_eq(m->requires_grad, 0);
    ck_assert_ptr_null(m->grad);
    ck_assert_ptr_eq(ag_params_find(&ps, "bn.running_mean"), m);
    ck_assert_ptr_null(ag_params_find(&ps, "nothing"));
    ck_assert_int_eq(ag_params_size(&ps), 12); /* buffers are not trainable */
    ck_assert_int_eq(ps.count, 2);
    ag_params_free(&ps);
    ck_assert_int_eq(ps.count, 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Error messages                                                                              */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_add_shape_mismatch_names_op_and_both_shapes)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *a = ag_tensor_new(t, AG_SHAPE(2, 3));
    ag_tensor *b = ag_tensor_new(t, AG_SHAPE(2, 4));
    EXPECT_FATAL(ag_add(t, a, b));
    ASSERT_MESSAGE_HAS("add");
    ASSERT_MESSAGE_HAS("[2, 3]");
    ASSERT_MESSAGE_HAS("[2, 4]");
    ag_tape_free(t);
}
END_TEST

START_TEST(test_zero_dimension_is_refused)
{
    ag_tape *t = ag_tape_new(1 << 16);
    EXPECT_FATAL(ag_tensor_new(t, AG_SHAPE(3, 0)));
    ASSERT_MESSAGE_HAS("ag_tensor_new");
    ASSERT_MESSAGE_HAS("dimension 1 is 0");
    ag_tape_free(t);
}
END_TEST

START_TEST(test_arena_exhaustion_says_how_much_and_what_to_do)
{
    ag_tape *t = ag_tape_new(4096);
    EXPECT_FATAL(ag_tensor_new(t, AG_SHAPE(1024, 1024)));
    ASSERT_MESSAGE_HAS("arena exhausted");
    ASSERT_MESSAGE_HAS("ag_tape_new");
    ck_assert(t->used <= t->capacity);
    ag_tape_free(t);
}
END_TEST

/* A tape just big enough for the inputs: the op that runs out is named in the message. */
START_TEST(test_arena_exhaustion_in_an_op_names_the_op)
{
    ag_tape *probe = ag_tape_new(1 << 16);
    ag_tensor_new(probe, AG_SHAPE(100));
    ag_tensor_new(probe, AG_SHAPE(100));
    size_t inputs_bytes = probe->used;
    ag_tape_free(probe);

    ag_tape *t = ag_tape_new(inputs_bytes + 64);
    ag_tensor *a = ag_tensor_new(t, AG_SHAPE(100));
    ag_tensor *b = ag_tensor_new(t, AG_SHAPE(100));
    EXPECT_FATAL(ag_add(t, a, b));
    ASSERT_MESSAGE_HAS("add: tape arena exhausted");
    ag_tape_free(t);
}
END_TEST

START_TEST(test_tensor_used_after_reset_is_caught)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(3));
    ag_tape_reset(t);
    EXPECT_FATAL(ag_add(t, x, x));
    ASSERT_MESSAGE_HAS("add");
    ASSERT_MESSAGE_HAS("reset");
    ag_tape_free(t);
}
END_TEST

START_TEST(test_tensor_from_another_tape_is_caught)
{
    ag_tape *t = ag_tape_new(1 << 16), *other = ag_tape_new(1 << 16);
    ag_tensor *x = ag_tensor_new(other, AG_SHAPE(3));
    ag_tensor *y = ag_tensor_new(t, AG_SHAPE(3));
    EXPECT_FATAL(ag_add(t, y, x));
    ASSERT_MESSAGE_HAS("another tape");
    ag_tape_free(t);
    ag_tape_free(other);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The arena and the tape across steps                                                        */
/* ---------------------------------------------------------------------------------------- */

typedef struct step_record {
    ag_tensor *a, *b, *y;
    size_t used;
} step_record;

static step_record run_step(ag_tape *t, ag_tensor *w)
{
    step_record r;
    ag_real values[4] = {1, 2, 3, 4};
    r.a = ag_tensor_from(t, AG_SHAPE(4), values);
    r.b = ag_mul(t, r.a, w);
    r.y = ag_sum(t, ag_add(t, r.b, r.a));
    ag_backward(t, r.y);
    r.used = t->used;
    return r;
}

START_TEST(test_reset_reuses_the_same_memory)
{
    ag_params ps = {0};
    ag_tensor *w = ag_param_new(&ps, "w", AG_SHAPE(4));
    ag_fill(w, 0.5);
    ag_tape *t = ag_tape_new(1 << 16);
    unsigned long step0 = t->step;
    step_record first = run_step(t, w);
    ck_assert_int_eq(t->nnodes, 3);
    ck_assert_ptr_nonnull(t->last);
    size_t high_water = t->high_water;
    ck_assert_uint_eq(high_water, first.used);
    ck_assert_uint_gt(first.used, 0);

    ag_tape_reset(t);
    ck_assert_uint_eq(t->used, 0);
    ck_assert_int_eq(t->nnodes, 0);
    ck_assert_ptr_null(t->last);
    ck_assert_uint_eq(t->step, step0 + 1);
    ck_assert_uint_eq(t->high_water, high_water); /* the mark survives a reset */

    step_record second = run_step(t, w);
    ck_assert_ptr_eq(second.a, first.a);
    ck_assert_ptr_eq(second.a->value, first.a->value);
    ck_assert_ptr_eq(second.b, first.b);
    ck_assert_ptr_eq(second.y, first.y);
    ck_assert_uint_eq(second.used, first.used);
    ck_assert_uint_eq(second.a->step, step0 + 1);

    ag_tape_reset(t); /* a smaller step leaves the high-water mark where it was */
    ag_tensor_new(t, AG_SHAPE(1));
    ck_assert_uint_lt(t->used, high_water);
    ck_assert_uint_eq(t->high_water, high_water);

    /* the parameter outlived both steps and collected both gradients: d/dw sum(a*w + a) = a */
    ck_assert(w->grad[0] == 2 && w->grad[1] == 4 && w->grad[2] == 6 && w->grad[3] == 8);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

/* An op whose forward adds into its output relies on ag_node_new zeroing it, also when the
 * arena memory it gets held another step's numbers; an op that says it assigns every entry
 * gets the memory as it is (NaN under AddressSanitizer, so a forgotten entry shows). */
static void accumulate_run(ag_node *n, ag_action a)
{
    if (a != AG_FORWARD) return;
    for (long i = 0; i < n->out->size; i++) n->out->value[i] += n->in[0]->value[i];
}

static void assign_first_run(ag_node *n, ag_action a)
{
    if (a == AG_FORWARD) n->out->value[0] = n->in[0]->value[0];
}

static const ag_op accumulate_op = { "accumulate", accumulate_run, AG_OUTPUT_ZEROED,
                                     AG_GRAD_ZEROED };
static const ag_op assign_first_op = { "assign_first", assign_first_run, AG_OUTPUT_ASSIGNED,
                                       AG_GRAD_ZEROED };

START_TEST(test_node_output_is_zeroed_unless_the_op_assigns_it)
{
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real dirt[8] = { 7, 7, 7, 7, 7, 7, 7, 7 }, ones[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(8), ones);
    ag_tensor *old = ag_tensor_from(t, AG_SHAPE(8), dirt); /* where the next step's y will be */
    ag_tape_reset(t);
    x = ag_tensor_from(t, AG_SHAPE(8), ones);
    ag_tensor *y = ag_node_forward(ag_node_new(t, &accumulate_op, 1, &x, 1, x->shape));
    ck_assert_ptr_eq(y->value, old->value); /* the arena handed out the dirtied memory again */
    for (int i = 0; i < 8; i++) ck_assert(y->value[i] == 1);

    ag_tape_reset(t);
    x = ag_tensor_from(t, AG_SHAPE(8), ones);
    ag_tensor *z = ag_node_forward(ag_node_new(t, &assign_first_op, 1, &x, 1, x->shape));
    ck_assert(z->value[0] == 1);
#ifdef __SANITIZE_ADDRESS__
    for (int i = 1; i < 8; i++) ck_assert_msg(isnan(z->value[i]), "entry %d is not NaN", i);
#endif
    ag_tape_free(t);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Gradient accumulation and skipping                                                         */
/* ---------------------------------------------------------------------------------------- */

/* A reshape is a view: its values are the input's buffer, and the gradient that reaches it
 * lands in the input's gradient. For a parameter, two backward walks still accumulate. */
START_TEST(test_reshape_is_a_view_and_parameters_still_accumulate)
{
    ag_params ps = {0};
    ag_tensor *w = ag_param_new(&ps, "w", AG_SHAPE(2, 3));
    for (int i = 0; i < 6; i++) w->value[i] = (ag_real)(i + 1);
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *flat = ag_reshape(t, w, AG_SHAPE(6));
    ck_assert_ptr_eq(flat->value, w->value);
    ag_tensor *loss = ag_sum(t, ag_mul(t, flat, flat)); /* d/dw sum(w*w) = 2w */
    ag_backward(t, loss);
    ag_backward(t, loss);                               /* adds 2w again */
    ck_assert_ptr_eq(flat->grad, w->grad);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(w->grad[i] == 4 * (i + 1), "w->grad[%d] = %g, expected %d", i,
                      (double)w->grad[i], 4 * (i + 1));
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_tensor_used_twice_in_one_op_gets_both_contributions)
{
    ag_params ps = {0};
    ag_tensor *x = ag_param_new(&ps, "x", AG_SHAPE(3));
    x->value[0] = 1;
    x->value[1] = -2;
    x->value[2] = 3;
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *loss = ag_sum(t, ag_mul(t, x, x)); /* d/dx sum(x*x) = 2x */
    ck_assert(loss->value[0] == 14);
    ag_backward(t, loss);
    ck_assert_msg(x->grad[0] == 2 && x->grad[1] == -4 && x->grad[2] == 6,
                  "expected grad (2, -4, 6), got (%g, %g, %g)", (double)x->grad[0],
                  (double)x->grad[1], (double)x->grad[2]);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_tensor_used_in_two_branches_gets_the_sum)
{
    ag_params ps = {0};
    ag_tensor *x = ag_param_new(&ps, "x", AG_SHAPE(3));
    x->value[0] = 1;
    x->value[1] = -2;
    x->value[2] = 3;
    ag_tape *t = ag_tape_new(1 << 16);
    /* d/dx sum(x*x + 3x) = 2x + 3 */
    ag_tensor *loss = ag_sum(t, ag_add(t, ag_mul(t, x, x), ag_scale(t, x, 3.0)));
    ag_backward(t, loss);
    ck_assert_msg(x->grad[0] == 5 && x->grad[1] == -1 && x->grad[2] == 9,
                  "expected grad (5, -1, 9), got (%g, %g, %g)", (double)x->grad[0],
                  (double)x->grad[1], (double)x->grad[2]);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_backward_skips_tensors_without_grad)
{
    ag_params ps = {0};
    ag_tensor *x = ag_param_new(&ps, "x", AG_SHAPE(3));
    ag_tensor *frozen = ag_buffer_new(&ps, "frozen", AG_SHAPE(3));
    ag_fill(x, 2);
    ag_fill(frozen, 5);
    ag_tape *t = ag_tape_new(1 << 16);
    ag_real c_values[3] = {1, 10, 100};
    ag_tensor *c = ag_tensor_from(t, AG_SHAPE(3), c_values);
    ag_tensor *constant = ag_add(t, c, frozen); /* no input needs a gradient */
    ck_assert_int_eq(constant->requires_grad, 0);
    ag_tensor *unused = ag_mul(t, x, x);        /* needs one, but the loss does not use it */
    ck_assert_int_eq(unused->requires_grad, 1);
    ag_tensor *y = ag_mul(t, x, constant);
    ck_assert_int_eq(y->requires_grad, 1);
    ag_backward(t, ag_sum(t, y));
    ck_assert(x->grad[0] == 6 && x->grad[1] == 15 && x->grad[2] == 105);
    ck_assert_ptr_null(c->grad);
    ck_assert_ptr_null(frozen->grad);
    ck_assert_ptr_null(constant->grad);
    ck_assert_ptr_null(unused->grad);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_tape_leaf_with_requires_grad_gets_a_gradient)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_real values[2] = {3, -1};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(2), values);
    x->requires_grad = 1;
    ag_backward(t, ag_sum(t, ag_scale(t, x, -4.0)));
    ck_assert_ptr_nonnull(x->grad);
    ck_assert(x->grad[0] == -4 && x->grad[1] == -4);
    ag_tape_free(t);
}
END_TEST

/* Two ops that pass y = a + b through in their backward and record what the walk gave them:
 * one assigns new gradients, the other must find every gradient it adds to zeroed. */
static int seen_new[2];     /* ag_grad_is_new(n, k) in the last backward of add_pair_assigning */
static int seen_dirty;      /* a gradient that add_pair_adding found not zeroed before adding */

static void add_pair_run(ag_node *n, ag_action a, int assigning)
{
    long size = n->out->size;
    if (a == AG_FORWARD) {
        for (long i = 0; i < size; i++)
            n->out->value[i] = n->in[0]->value[i] + n->in[1]->value[i];
        return;
    }
    for (int k = 0; k < 2; k++) {
        ag_tensor *x = n->in[k];
        if (assigning) seen_new[k] = ag_grad_is_new(n, k);
        if (!x->requires_grad) continue;
        for (long i = 0; i < size; i++) {
            if (!assigning && x->grad[i] != 0 && x->node != NULL) seen_dirty = 1;
            x->grad[i] = (assigning && ag_grad_is_new(n, k) ? 0 : x->grad[i]) + n->out->grad[i];
        }
    }
}
static void add_pair_assigning_run(ag_node *n, ag_action a) { add_pair_run(n, a, 1); }
static void add_pair_adding_run(ag_node *n, ag_action a) { add_pair_run(n, a, 0); }
static const ag_op add_pair_assigning = { "add_pair_assigning", add_pair_assigning_run,
                                          AG_OUTPUT_ASSIGNED, AG_GRAD_ASSIGNED };
static const ag_op add_pair_adding = { "add_pair_adding", add_pair_adding_run,
                                       AG_OUTPUT_ASSIGNED, AG_GRAD_ZEROED };

static ag_tensor *add_pair(ag_tape *t, const ag_op *op, ag_tensor *a, ag_tensor *b)
{
    ag_tensor *in[2] = { a, b };
    return ag_node_forward(ag_node_new(t, op, 2, in, a->ndim, a->shape));
}

/* Fills the arena with 7s and starts a new step on it, so that memory the walk does not zero
 * holds 7s, not the zeros of a fresh block. */
static void dirty_the_arena(ag_tape *t)
{
    ag_tape_reset(t);
    ag_tensor *dirt = ag_tensor_new(t, AG_SHAPE(4096));
    for (long i = 0; i < dirt->size; i++) dirt->value[i] = 7;
    ag_tape_reset(t);
}

/* The backward walk leaves a gradient unzeroed, and says so, only for an op that assigns new
 * gradients, only for the first node to reach the tensor, and never for a buffer that two
 * inputs of the node share; every gradient still ends up the sum over paths. */
START_TEST(test_new_gradients_are_assigned_once_and_otherwise_zeroed)
{
    ag_params ps = {0};
    ag_tensor *w = ag_param_new(&ps, "w", AG_SHAPE(3));
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real ones[3] = { 1, 1, 1 };

    /* x used once by the assigning op: new; the parameter w has had its gradient all along */
    dirty_the_arena(t);
    ag_tensor *x = ag_scale(t, ag_tensor_from(t, AG_SHAPE(3), ones), 1);
    x->requires_grad = 1;
    ag_backward(t, ag_sum(t, add_pair(t, &add_pair_assigning, x, w)));
    ck_assert(seen_new[0] == 1 && seen_new[1] == 0);
    for (int i = 0; i < 3; i++) ck_assert(x->grad[i] == 1 && w->grad[i] == 1);

    /* x used by two nodes: the later one (walked first) assigns, the earlier one adds */
    dirty_the_arena(t);
    x = ag_scale(t, ag_tensor_from(t, AG_SHAPE(3), ones), 1);
    x->requires_grad = 1;
    ag_tensor *first = add_pair(t, &add_pair_assigning, x, w);
    ag_tensor *second = add_pair(t, &add_pair_assigning, x, w);
    ag_backward(t, ag_sum(t, ag_mul(t, first, second)));  /* d/dx (x+w)^2 summed = 2(x+w) */
    ck_assert_int_eq(seen_new[0], 0); /* the last backward to run was first's */
    for (int i = 0; i < 3; i++) ck_assert(x->grad[i] == 2 * (1 + w->value[i]));

    /* x as both inputs, and x beside a view of itself: one buffer, zeroed, not new */
    dirty_the_arena(t);
    x = ag_scale(t, ag_tensor_from(t, AG_SHAPE(3), ones), 1);
    x->requires_grad = 1;
    ag_backward(t, ag_sum(t, add_pair(t, &add_pair_assigning, x, x)));
    ck_assert(seen_new[0] == 0 && seen_new[1] == 0);
    for (int i = 0; i < 3; i++) ck_assert(x->grad[i] == 2);
    dirty_the_arena(t);
    x = ag_scale(t, ag_tensor_from(t, AG_SHAPE(3), ones), 1);
    x->requires_grad = 1;
    ag_tensor *same = ag_reshape(t, x, AG_SHAPE(3));
    ag_backward(t, ag_sum(t, add_pair(t, &add_pair_assigning, same, x)));
    ck_assert(seen_new[0] == 0 && seen_new[1] == 0);
    for (int i = 0; i < 3; i++) ck_assert(x->grad[i] == 2);

    /* an op that only adds finds the gradients the walk made for it zeroed */
    dirty_the_arena(t);
    seen_dirty = 0;
    x = ag_scale(t, ag_tensor_from(t, AG_SHAPE(3), ones), 1);
    x->requires_grad = 1;
    ag_tensor *y = add_pair(t, &add_pair_adding, x, w);
    ag_backward(t, ag_sum(t, y));
    ck_assert_int_eq(seen_dirty, 0);
    for (int i = 0; i < 3; i++) ck_assert(x->grad[i] == 1);

    ck_assert_int_eq(ag_grad_is_new(y->node, 0), 0); /* outside a backward, and out of range */
    ck_assert_int_eq(ag_grad_is_new(y->node, 7), 0);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_backward_of_a_non_scalar_is_refused)
{
    ag_params ps = {0};
    ag_tensor *x = ag_param_new(&ps, "x", AG_SHAPE(2, 2));
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *y = ag_mul(t, x, x);
    EXPECT_FATAL(ag_backward(t, y));
    ASSERT_MESSAGE_HAS("scalar");
    ASSERT_MESSAGE_HAS("[2, 2]");
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Random numbers: checked against SplitMix64 and xoshiro256** written out from their         */
/* definitions (Steele, Lea and Flood 2014; Blackman and Vigna 2018).                          */
/* ---------------------------------------------------------------------------------------- */

static uint64_t reference_splitmix64(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

typedef struct reference_xoshiro {
    uint64_t s[4];
} reference_xoshiro;

static void reference_seed(reference_xoshiro *r, uint64_t seed)
{
    uint64_t state = seed;
    for (int i = 0; i < 4; i++) r->s[i] = reference_splitmix64(&state);
}

static uint64_t reference_next(reference_xoshiro *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

START_TEST(test_splitmix64_reference_matches_published_value)
{
    /* The first output of SplitMix64 from state 0, as published with the algorithm. */
    uint64_t state = 0;
    ck_assert_uint_eq(reference_splitmix64(&state), 0xe220a8397b1dcdafULL);
}
END_TEST

START_TEST(test_rng_matches_xoshiro256starstar_seeded_by_splitmix64)
{
    const uint64_t seeds[] = {0, 1, 42, 0xdeadbeefcafef00dULL};
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        ag_rng rng;
        reference_xoshiro ref;
        ag_rng_seed(&rng, seeds[k]);
        reference_seed(&ref, seeds[k]);
        for (int i = 0; i < 4; i++) ck_assert_uint_eq(rng.s[i], ref.s[i]);
        for (int i = 0; i < 16; i++) {
            uint64_t want = reference_next(&ref), got = ag_rng_next(&rng);
            ck_assert_msg(got == want, "seed %llu output %d: expected %016llx, got %016llx",
                          (unsigned long long)seeds[k], i, (unsigned long long)want,
                          (unsigned long long)got);
        }
    }
}
END_TEST

START_TEST(test_rng_same_seed_same_stream)
{
    ag_rng a, b, c;
    ag_rng_seed(&a, 2019);
    ag_rng_seed(&b, 2019);
    ag_rng_seed(&c, 2020);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = ag_rng_next(&a), y = ag_rng_next(&b), z = ag_rng_next(&c);
        ck_assert_uint_eq(x, y);
        differ += x != z;
    }
    ck_assert_int_gt(differ, 990); /* a nearby seed gives an unrelated stream */
}
END_TEST

START_TEST(test_rng_uniform_is_the_top_53_bits)
{
    ag_rng rng;
    reference_xoshiro ref;
    ag_rng_seed(&rng, 7);
    reference_seed(&ref, 7);
    for (int i = 0; i < 1000; i++) {
        double want = (double)(reference_next(&ref) >> 11) / 9007199254740992.0; /* 2^53 */
        double got = ag_rng_uniform(&rng);
        ck_assert(got == want);
        ck_assert(got >= 0 && got < 1);
    }
}
END_TEST

START_TEST(test_rng_below_stays_in_bounds_and_covers_them)
{
    ag_rng rng;
    ag_rng_seed(&rng, 3);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(ag_rng_below(&rng, 1), 0);
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint32_t v = ag_rng_below(&rng, 10);
        ck_assert_uint_lt(v, 10);
        seen[v]++;
    }
    for (int v = 0; v < 10; v++) ck_assert_int_gt(seen[v], 800); /* about 1000 each */
    const uint32_t large[] = {0x80000001u, 0xffffffffu, 3000000000u};
    for (size_t k = 0; k < sizeof large / sizeof large[0]; k++)
        for (int i = 0; i < 1000; i++) ck_assert_uint_lt(ag_rng_below(&rng, large[k]), large[k]);
}
END_TEST

/* For n a power of two Lemire's method never rejects: the result is the top bits. */
START_TEST(test_rng_below_a_power_of_two_takes_the_top_bits)
{
    ag_rng rng;
    reference_xoshiro ref;
    ag_rng_seed(&rng, 11);
    reference_seed(&ref, 11);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(ag_rng_below(&rng, 16), reference_next(&ref) >> 60);
}
END_TEST

START_TEST(test_rng_shuffle_is_a_reproducible_permutation)
{
    enum { N = 100 };
    int items[N], again[N], count[N] = {0};
    for (int i = 0; i < N; i++) items[i] = again[i] = i;
    ag_rng rng, rng2;
    ag_rng_seed(&rng, 5);
    ag_rng_seed(&rng2, 5);
    ag_rng_shuffle(&rng, items, N);
    ag_rng_shuffle(&rng2, again, N);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(items[i] >= 0 && items[i] < N);
        count[items[i]]++;
        fixed += items[i] == i;
        ck_assert_int_eq(items[i], again[i]);
    }
    for (int i = 0; i < N; i++) ck_assert_int_eq(count[i], 1);
    ck_assert_int_lt(fixed, 10); /* a shuffle moves almost everything */
    int one = 42;
    ag_rng_shuffle(&rng, &one, 1);
    ck_assert_int_eq(one, 42);
    ag_rng_shuffle(&rng, NULL, 0);
}
END_TEST

START_TEST(test_rng_normal_has_mean_zero_and_variance_one)
{
    ag_rng rng;
    ag_rng_seed(&rng, 13);
    double sum = 0, sum_sq = 0;
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        double z = ag_rng_normal(&rng);
        sum += z;
        sum_sq += z * z;
    }
    double mean = sum / N, var = sum_sq / N - mean * mean;
    ck_assert_double_le(fabs(mean), 0.02);
    ck_assert_double_le(fabs(var - 1), 0.03);
}
END_TEST

/* The row of op `op` with output size `size`, or NULL. */
static const ag_op_time *find_op_time(const ag_op_time *rows, int count, const char *op,
                                      long size)
{
    for (int i = 0; i < count; i++)
        if (strcmp(rows[i].op, op) == 0 && rows[i].size == size) return &rows[i];
    return NULL;
}

/* Timing is off until asked for; on, each action lands in the row of its op and output size
 * and the rows outlive a reset; turning it on again clears them; off, nothing is added; more
 * rows than there is room for go to "(other)". */
START_TEST(test_op_timing_counts_each_action_by_op_and_size)
{
    ag_params ps = {0};
    ag_tensor *w = ag_param_new(&ps, "w", AG_SHAPE(3));
    ag_tape *t = ag_tape_new(1 << 20);
    int count = -1;
    ag_tape_op_times(t, &count);
    ck_assert_int_eq(count, 0);
    ag_tape_time_ops(t, 1);
    for (int step = 0; step < 2; step++) {
        ag_tape_reset(t);
        ag_tensor *x = ag_tensor_new(t, AG_SHAPE(2, 3));
        ag_tensor *y = ag_neg(t, ag_mul(t, x, w));        /* mul and neg of size 6 */
        ag_backward(t, ag_sum(t, ag_neg(t, ag_sum(t, y)))); /* sum 1, neg 1, sum 1 */
    }
    const ag_op_time *rows = ag_tape_op_times(t, &count);
    ck_assert_int_eq(count, 4); /* mul 6, neg 6, sum 1, neg 1 */
    const char *ops[4] = {"mul", "neg", "sum", "neg"};
    const long sizes[4] = {6, 6, 1, 1}, forwards[4] = {2, 2, 4, 2};
    for (int i = 0; i < 4; i++) {
        const ag_op_time *r = find_op_time(rows, count, ops[i], sizes[i]);
        ck_assert_msg(r != NULL, "no row for %s of size %ld", ops[i], sizes[i]);
        ck_assert_int_eq(r->forwards, forwards[i]);
        ck_assert_int_eq(r->backwards, forwards[i]);
        ck_assert(r->forward >= 0 && r->backward >= 0);
    }
    ag_tape_time_ops(t, 0);
    ag_tape_reset(t);
    ag_neg(t, ag_tensor_new(t, AG_SHAPE(5)));
    ag_tape_op_times(t, &count);
    ck_assert_int_eq(count, 4); /* off: the rows stay, and nothing is added */
    ag_tape_time_ops(t, 1);
    ag_tape_op_times(t, &count);
    ck_assert_int_eq(count, 0);
    for (int size = 1; size <= AG_OP_TIME_ROWS + 10; size++) {
        ag_tape_reset(t);
        ag_neg(t, ag_tensor_new(t, AG_SHAPE(size)));
    }
    rows = ag_tape_op_times(t, &count);
    ck_assert_int_eq(count, AG_OP_TIME_ROWS);
    ck_assert_str_eq(rows[AG_OP_TIME_ROWS - 1].op, "(other)");
    ck_assert_int_eq(rows[AG_OP_TIME_ROWS - 1].forwards, 11);
    ck_assert_int_eq(rows[AG_OP_TIME_ROWS - 2].size, AG_OP_TIME_ROWS - 1);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tensors = tcase_create("tensors");
    tcase_add_test(tensors, test_tensor_new_has_shape_size_and_zeros);
    tcase_add_test(tensors, test_scalar_has_no_dimensions_and_size_one);
    tcase_add_test(tensors, test_tensor_from_copies_values);
    tcase_add_test(tensors, test_shape_macro_counts_and_lists_dimensions);
    tcase_add_test(tensors, test_params_and_buffers_live_outside_the_tape);
    suite_add_tcase(s, tensors);

    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_add_shape_mismatch_names_op_and_both_shapes);
    tcase_add_test(errors, test_zero_dimension_is_refused);
    tcase_add_test(errors, test_arena_exhaustion_says_how_much_and_what_to_do);
    tcase_add_test(errors, test_arena_exhaustion_in_an_op_names_the_op);
    tcase_add_test(errors, test_tensor_used_after_reset_is_caught);
    tcase_add_test(errors, test_tensor_from_another_tape_is_caught);
    tcase_add_test(errors, test_backward_of_a_non_scalar_is_refused);
    suite_add_tcase(s, errors);

    TCase *tape = tcase_create("tape");
    tcase_add_test(tape, test_reset_reuses_the_same_memory);
    tcase_add_test(tape, test_node_output_is_zeroed_unless_the_op_assigns_it);
    tcase_add_test(tape, test_tensor_used_twice_in_one_op_gets_both_contributions);
    tcase_add_test(tape, test_tensor_used_in_two_branches_gets_the_sum);
    tcase_add_test(tape, test_backward_skips_tensors_without_grad);
    tcase_add_test(tape, test_reshape_is_a_view_and_parameters_still_accumulate);
    tcase_add_test(tape, test_tape_leaf_with_requires_grad_gets_a_gradient);
    tcase_add_test(tape, test_new_gradients_are_assigned_once_and_otherwise_zeroed);
    tcase_add_test(tape, test_op_timing_counts_each_action_by_op_and_size);
    suite_add_tcase(s, tape);

    TCase *rng = tcase_create("rng");
    tcase_add_test(rng, test_splitmix64_reference_matches_published_value);
    tcase_add_test(rng, test_rng_matches_xoshiro256starstar_seeded_by_splitmix64);
    tcase_add_test(rng, test_rng_same_seed_same_stream);
    tcase_add_test(rng, test_rng_uniform_is_the_top_53_bits);
    tcase_add_test(rng, test_rng_below_stays_in_bounds_and_covers_them);
    tcase_add_test(rng, test_rng_below_a_power_of_two_takes_the_top_bits);
    tcase_add_test(rng, test_rng_shuffle_is_a_reproducible_permutation);
    tcase_add_test(rng, test_rng_normal_has_mean_zero_and_variance_one);
    suite_add_tcase(s, rng);
    return s;
}
