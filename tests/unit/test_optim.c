/* test_optim.c -- SGD, SGD with momentum and Adam (doc/16-optim.nw) against updates worked
 * out by hand: closed forms of the moments, written in the test, not copied from the code. */
#include <check.h>
#include <math.h>

#include "../../src/autograd/ag.h"
#include "suites.h"

/* The update is computed in double and stored as ag_real: in float, one rounding per step. */
#ifdef AG_DOUBLE
static const double TOL = 1e-12;
#else
static const double TOL = 1e-6;
#endif

/* got == want up to the relative tolerance TOL; want is never 0 in these tests. */
#define ASSERT_CLOSE(got, want)                                                          \
    do {                                                                                 \
        double got_ = (got), want_ = (want);                                             \
        ck_assert_msg(fabs(got_ - want_) <= TOL * fabs(want_),                           \
                      "%s: expected %.17g, got %.17g", #got, want_, got_);               \
    } while (0)

static void set_values(ag_real *dst, const double *src, int n)
{
    for (int i = 0; i < n; i++) dst[i] = (ag_real)src[i];
}

/* ---------------------------------------------------------------------------------------- */
/* SGD                                                                                          */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_sgd_steps_against_the_gradient)
{
    ag_params ps = {0};
    ag_tensor *p = ag_param_new(&ps, "p", AG_SHAPE(3));
    set_values(p->value, (const double[]){1, -2, 0.5}, 3);
    set_values(p->grad, (const double[]){0.5, 0.25, -1}, 3);
    ag_sgd *opt = ag_sgd_new(&ps, 0.1, 0);
    ck_assert_ptr_null(opt->velocity); /* no momentum, no state */
    ag_sgd_step(opt);                  /* p - 0.1 g */
    ASSERT_CLOSE(p->value[0], 0.95);
    ASSERT_CLOSE(p->value[1], -2.025);
    ASSERT_CLOSE(p->value[2], 0.6);
    ag_sgd_step(opt);                  /* the same gradient again */
    ASSERT_CLOSE(p->value[0], 0.9);
    ASSERT_CLOSE(p->value[1], -2.05);
    ASSERT_CLOSE(p->value[2], 0.7);
    ck_assert_int_eq(opt->step, 2);
    ag_sgd_free(opt);
    ag_params_free(&ps);
}
END_TEST

/* v = 0.9 v + g; p -= 0.1 v, from v = 0 and p = 1, with gradients 0.5, -0.25, 1:
 *   v1 = 0.5                    p1 = 1    - 0.05  = 0.95
 *   v2 = 0.45 - 0.25  = 0.2     p2 = 0.95 - 0.02  = 0.93
 *   v3 = 0.18 + 1     = 1.18    p3 = 0.93 - 0.118 = 0.812 */
START_TEST(test_sgd_momentum_follows_pytorch)
{
    ag_params ps = {0};
    ag_tensor *p = ag_param_new(&ps, "p", AG_SHAPE(1));
    p->value[0] = 1;
    ag_sgd *opt = ag_sgd_new(&ps, 0.1, 0.9);
    const double grads[3] = {0.5, -0.25, 1}, want_v[3] = {0.5, 0.2, 1.18},
                 want_p[3] = {0.95, 0.93, 0.812};
    for (int t = 0; t < 3; t++) {
        p->grad[0] = (ag_real)grads[t];
        ag_sgd_step(opt);
        ASSERT_CLOSE(opt->velocity[0][0], want_v[t]);
        ASSERT_CLOSE(p->value[0], want_p[t]);
    }
    ag_sgd_free(opt);
    ag_params_free(&ps);
}
END_TEST

/* With a constant gradient g the velocity after t steps is g (1 - mu^t) / (1 - mu), so
 * p_t = p_0 - lr g sum_{k=1..t} (1 - mu^k) / (1 - mu). */
START_TEST(test_sgd_momentum_constant_gradient_closed_form)
{
    ag_params ps = {0};
    ag_tensor *p = ag_param_new(&ps, "p", AG_SHAPE(2, 2));
    const double p0[4] = {1, -1, 0.25, 3}, g[4] = {0.5, -1.5, 2, -0.125};
    const double lr = 0.05, mu = 0.8;
    set_values(p->value, p0, 4);
    set_values(p->grad, g, 4);
    ag_sgd *opt = ag_sgd_new(&ps, lr, mu);
    for (int t = 0; t < 3; t++) ag_sgd_step(opt);
    double factor = (1 - mu) / (1 - mu) + (1 - mu * mu) / (1 - mu) + (1 - mu * mu * mu) / (1 - mu);
    for (int i = 0; i < 4; i++)
        ASSERT_CLOSE(p->value[i], p0[i] - lr * g[i] * factor);
    ag_sgd_free(opt);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_sgd_skips_buffers)
{
    ag_params ps = {0};
    ag_tensor *p = ag_param_new(&ps, "p", AG_SHAPE(2));
    ag_tensor *b = ag_buffer_new(&ps, "running_mean", AG_SHAPE(2));
    ag_fill(p, 1);
    p->grad[0] = p->grad[1] = 1;
    ag_fill(b, 7);
    ag_sgd *opt = ag_sgd_new(&ps, 0.5, 0.9);
    ck_assert_ptr_nonnull(opt->velocity[0]);
    ck_assert_ptr_null(opt->velocity[1]);
    ag_sgd_step(opt);
    ck_assert(b->value[0] == 7 && b->value[1] == 7);
    ASSERT_CLOSE(p->value[0], 0.5);
    ag_sgd_free(opt);
    ag_params_free(&ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Adam                                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* With a constant gradient, m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2: the bias-corrected
 * moments are g and g^2 exactly, and every step is lr g / (|g| + eps). */
START_TEST(test_adam_constant_gradient_closed_form)
{
    ag_params ps = {0};
    ag_tensor *p = ag_param_new(&ps, "p", AG_SHAPE(3));
    const double p0[3] = {1, -1, 0.5}, g[3] = {0.5, -2, 1e-3};
    const double lr = 0.1, eps = 1e-8;
    set_values(p->value, p0, 3);
    set_values(p->grad, g, 3);
    ag_adam *opt = ag_adam_new(&ps, lr, 0.9, 0.999, eps);
    for (int t = 0; t < 3; t++) ag_adam_step(opt);
    ck_assert_int_eq(opt->step, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_CLOSE(p->value[i], p0[i] - 3 * lr * g[i] / (fabs(g[i]) + eps));
        ASSERT_CLOSE(opt->m[0][i], (1 - 0.9 * 0.9 * 0.9) * g[i]);
        ASSERT_CLOSE(opt->v[0][i], (1 - 0.999 * 0.999 * 0.999) * g[i] * g[i]);
    }
    ag_adam_free(opt);
    ag_params_free(&ps);
}
END_TEST

/* Three different gradients, settable betas, and an eps large enough to matter (it is added
 * outside the square root). The moments unrolled:
 *   m1 = (1-b1) g1,  m2 = (1-b1)(b1 g1 + g2),  m3 = (1-b1)(b1^2 g1 + b1 g2 + g3),
 * and v likewise with the squares and b2; step t moves p by
 *   lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps). */
START_TEST(test_adam_three_steps_by_hand)
{
    const double b1 = 0.8, b2 = 0.9, lr = 0.01, eps = 0.05;
    const double g1 = 0.2, g2 = -0.1, g3 = 0.4, p0 = 0.3;
    double m[3], v[3], p[3];
    m[0] = (1 - b1) * g1;
    m[1] = (1 - b1) * (b1 * g1 + g2);
    m[2] = (1 - b1) * (b1 * b1 * g1 + b1 * g2 + g3);
    v[0] = (1 - b2) * g1 * g1;
    v[1] = (1 - b2) * (b2 * g1 * g1 + g2 * g2);
    v[2] = (1 - b2) * (b2 * b2 * g1 * g1 + b2 * g2 * g2 + g3 * g3);
    p[0] = p0 - lr * (m[0] / (1 - b1)) / (sqrt(v[0] / (1 - b2)) + eps);
    p[1] = p[0] - lr * (m[1] / (1 - b1 * b1)) / (sqrt(v[1] / (1 - b2 * b2)) + eps);
    p[2] = p[1] - lr * (m[2] / (1 - b1 * b1 * b1)) / (sqrt(v[2] / (1 - b2 * b2 * b2)) + eps);

    ag_params ps = {0};
    ag_tensor *x = ag_param_new(&ps, "x", AG_SHAPE(1));
    x->value[0] = (ag_real)p0;
    ag_adam *opt = ag_adam_new(&ps, lr, b1, b2, eps);
    const double grads[3] = {g1, g2, g3};
    for (int t = 0; t < 3; t++) {
        x->grad[0] = (ag_real)grads[t];
        ag_adam_step(opt);
        ck_assert_int_eq(opt->step, t + 1);
        ASSERT_CLOSE(opt->m[0][0], m[t]);
        ASSERT_CLOSE(opt->v[0][0], v[t]);
        ASSERT_CLOSE(x->value[0], p[t]);
    }
    /* the numbers themselves, so that a slip in the formulas above cannot hide: */
    ck_assert_double_eq_tol(p[0], 0.3 - 0.01 * 0.2 / (0.2 + 0.05), 1e-15);
    ag_adam_free(opt);
    ag_params_free(&ps);
}
END_TEST

/* A tensor whose gradient and moments are all +0 is left alone (its update would be exactly
 * nothing); one with a zero gradient but moments from earlier steps still decays them and moves,
 * as torch.optim.Adam does with a zero (not None) gradient. The tensors are large enough for
 * the update to run in several runs and, with threads, in parallel. */
START_TEST(test_adam_zero_gradient_moves_only_a_tensor_with_moments)
{
    enum { N = 10000 };
    ag_params ps = {0};
    ag_tensor *idle = ag_param_new(&ps, "idle", AG_SHAPE(N));
    ag_tensor *moving = ag_param_new(&ps, "moving", AG_SHAPE(N));
    ag_fill(idle, -0.0);
    ag_fill(moving, 1);
    for (long i = 0; i < N; i++) moving->grad[i] = (ag_real)(i % 2 ? 0.5 : -0.25);
    ag_adam *opt = ag_adam_new(&ps, 0.1, 0.9, 0.999, 1e-8);
    ag_adam_step(opt);                       /* moving: m, v become non-zero */
    for (long i = 0; i < N; i++) moving->grad[i] = 0;
    ag_real m_before = opt->m[1][1], v_before = opt->v[1][1], p_before = moving->value[1];
    ag_adam_step(opt);                       /* both gradients zero now */
    for (long i = 0; i < N; i++)
        ck_assert_msg(idle->value[i] == 0 && signbit(idle->value[i]) && opt->m[0][i] == 0 &&
                      opt->v[0][i] == 0, "the idle tensor changed at %ld", i);
    ASSERT_CLOSE(opt->m[1][1], 0.9 * m_before);
    ASSERT_CLOSE(opt->v[1][1], 0.999 * v_before);
    ck_assert_msg(moving->value[1] < p_before, "a zero gradient with momentum must still move");
    ag_adam_free(opt);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_adam_skips_buffers_and_keeps_state_per_parameter)
{
    ag_params ps = {0};
    ag_tensor *a = ag_param_new(&ps, "a", AG_SHAPE(2));
    ag_tensor *b = ag_buffer_new(&ps, "b", AG_SHAPE(3));
    ag_tensor *c = ag_param_new(&ps, "c", AG_SHAPE(1));
    ag_fill(b, 4);
    a->grad[0] = 1;
    a->grad[1] = -1;
    c->grad[0] = 0; /* no gradient: no move, whatever the step count */
    c->value[0] = 2;
    ag_adam *opt = ag_adam_new(&ps, 0.5, 0.9, 0.999, 1e-8);
    ck_assert_ptr_nonnull(opt->m[0]);
    ck_assert_ptr_null(opt->m[1]);
    ck_assert_ptr_null(opt->v[1]);
    ck_assert_ptr_nonnull(opt->v[2]);
    ag_adam_step(opt);
    ck_assert(b->value[0] == 4 && b->value[1] == 4 && b->value[2] == 4);
    ck_assert(c->value[0] == 2);
    ASSERT_CLOSE(a->value[0], -0.5 / (1 + 1e-8));
    ASSERT_CLOSE(a->value[1], 0.5 / (1 + 1e-8));
    ag_adam_free(opt);
    ag_params_free(&ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Scaling gradients                                                                            */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_scale_grad_multiplies_trainable_gradients_only)
{
    ag_params ps = {0};
    ag_tensor *p = ag_param_new(&ps, "p", AG_SHAPE(3));
    ag_tensor *b = ag_buffer_new(&ps, "b", AG_SHAPE(2));
    set_values(p->grad, (const double[]){1, -2, 3}, 3);
    ag_fill(b, 9);
    ag_params_scale_grad(&ps, -0.5);
    ck_assert(p->grad[0] == -0.5 && p->grad[1] == 1 && p->grad[2] == -1.5);
    ck_assert_ptr_null(b->grad);
    ck_assert(b->value[0] == 9 && b->value[1] == 9);
    ag_params_free(&ps);
}
END_TEST

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *sgd = tcase_create("sgd");
    tcase_add_test(sgd, test_sgd_steps_against_the_gradient);
    tcase_add_test(sgd, test_sgd_momentum_follows_pytorch);
    tcase_add_test(sgd, test_sgd_momentum_constant_gradient_closed_form);
    tcase_add_test(sgd, test_sgd_skips_buffers);
    suite_add_tcase(s, sgd);
    TCase *adam = tcase_create("adam");
    tcase_add_test(adam, test_adam_constant_gradient_closed_form);
    tcase_add_test(adam, test_adam_three_steps_by_hand);
    tcase_add_test(adam, test_adam_skips_buffers_and_keeps_state_per_parameter);
    tcase_add_test(adam, test_adam_zero_gradient_moves_only_a_tensor_with_moments);
    suite_add_tcase(s, adam);
    TCase *scale = tcase_create("scale_grad");
    tcase_add_test(scale, test_scale_grad_multiplies_trainable_gradients_only);
    suite_add_tcase(s, scale);
    return s;
}
