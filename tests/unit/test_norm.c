/* test_norm.c -- the forward side of batch_norm, layer_norm and dropout (doc/15-ops-norm.nw):
 * values, running statistics, modes and error messages. Their gradients are checked by
 * tests/gradcheck/cases_norm.c. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../src/autograd/ag.h"
#include "fatal.h"
#include "suites.h"

#ifdef AG_DOUBLE
static const double TOL = 1e-12;
#else
static const double TOL = 1e-6;
#endif

#define ASSERT_NEAR(got, want)                                                           \
    do {                                                                                 \
        double got_ = (got), want_ = (want);                                             \
        ck_assert_msg(fabs(got_ - want_) <= TOL * fmax(1.0, fabs(want_)),                \
                      "%s: expected %.17g, got %.17g", #got, want_, got_);               \
    } while (0)

/* Per-channel parameters and running statistics of a batch norm layer with C channels. */
typedef struct bn_layer {
    ag_params ps;
    ag_tensor *gamma, *beta, *mean, *var;
} bn_layer;

static void bn_layer_new(bn_layer *l, int channels, const double *gamma, const double *beta)
{
    memset(&l->ps, 0, sizeof l->ps);
    l->gamma = ag_param_new(&l->ps, "gamma", AG_SHAPE(channels));
    l->beta = ag_param_new(&l->ps, "beta", AG_SHAPE(channels));
    l->mean = ag_buffer_new(&l->ps, "running_mean", AG_SHAPE(channels));
    l->var = ag_buffer_new(&l->ps, "running_var", AG_SHAPE(channels));
    for (int c = 0; c < channels; c++) {
        l->gamma->value[c] = (ag_real)gamma[c];
        l->beta->value[c] = (ag_real)beta[c];
    }
    ag_fill(l->var, 1); /* PyTorch's initial running statistics: mean 0, variance 1 */
}

/* ---------------------------------------------------------------------------------------- */
/* Batch normalisation                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Channel 0 holds 1, 3, 5: mean 3, biased variance 8/3, unbiased 4.
 * Channel 1 holds 2, 6, 10: mean 6, biased variance 32/3, unbiased 16. */
START_TEST(test_batch_norm_training_uses_batch_statistics_and_updates_running_ones)
{
    bn_layer l;
    bn_layer_new(&l, 2, (const double[]){2, -1}, (const double[]){0.5, 0});
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real xs[6] = {1, 2, 3, 6, 5, 10};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(3, 2), xs);
    const double eps = 1e-5;
    ag_tensor *y = ag_batch_norm(t, x, l.gamma, l.beta, l.mean, l.var, 0.1, eps);
    const double mean[2] = {3, 6}, var[2] = {8.0 / 3, 32.0 / 3}, gamma[2] = {2, -1},
                 beta[2] = {0.5, 0};
    for (int n = 0; n < 3; n++)
        for (int c = 0; c < 2; c++)
            ASSERT_NEAR(y->value[n * 2 + c],
                        gamma[c] * (xs[n * 2 + c] - mean[c]) / sqrt(var[c] + eps) + beta[c]);
    /* r = 0.9 r + 0.1 batch; the variance with the unbiased batch variance */
    ASSERT_NEAR(l.mean->value[0], 0.3);
    ASSERT_NEAR(l.mean->value[1], 0.6);
    ASSERT_NEAR(l.var->value[0], 0.9 + 0.4);
    ASSERT_NEAR(l.var->value[1], 0.9 + 1.6);
    ag_tape_free(t);
    ag_params_free(&l.ps);
}
END_TEST

/* [N, C, H, W] = [2, 2, 1, 2]: channel 0 is x[n, 0, 0, :] for both n: 0, 2, 4, 6 (mean 3,
 * biased variance 5, unbiased 20/3); channel 1 is 1, 1, 1, 1 (variance 0). */
START_TEST(test_batch_norm_images_normalise_over_batch_and_positions)
{
    bn_layer l;
    bn_layer_new(&l, 2, (const double[]){1, 1}, (const double[]){0, 7});
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real xs[8] = {0, 2, 1, 1, 4, 6, 1, 1};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(2, 2, 1, 2), xs);
    ag_tensor *y = ag_batch_norm(t, x, l.gamma, l.beta, l.mean, l.var, 0.5, 1e-3);
    const double s = sqrt(5 + 1e-3);
    ASSERT_NEAR(y->value[0], -3 / s);
    ASSERT_NEAR(y->value[1], -1 / s);
    ASSERT_NEAR(y->value[4], 1 / s);
    ASSERT_NEAR(y->value[5], 3 / s);
    for (int i = 2; i < 4; i++) ASSERT_NEAR(y->value[i], 7);     /* a constant channel */
    for (int i = 6; i < 8; i++) ASSERT_NEAR(y->value[i], 7);
    ASSERT_NEAR(l.mean->value[0], 1.5);
    ASSERT_NEAR(l.var->value[0], 0.5 + 0.5 * 20.0 / 3);
    ASSERT_NEAR(l.var->value[1], 0.5);
    ag_tape_free(t);
    ag_params_free(&l.ps);
}
END_TEST

START_TEST(test_batch_norm_evaluation_uses_running_statistics_and_keeps_them)
{
    bn_layer l;
    bn_layer_new(&l, 2, (const double[]){2, 1}, (const double[]){1, -1});
    l.mean->value[0] = 1;
    l.mean->value[1] = -2;
    l.var->value[0] = 4;
    l.var->value[1] = 0.25;
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tape_set_training(t, 0);
    const ag_real xs[2] = {3, 0}; /* one sample is fine in evaluation */
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(1, 2), xs);
    ag_tensor *y = ag_batch_norm(t, x, l.gamma, l.beta, l.mean, l.var, 0.1, 0);
    ASSERT_NEAR(y->value[0], 2 * (3 - 1) / 2.0 + 1);
    ASSERT_NEAR(y->value[1], 1 * (0 + 2) / 0.5 - 1);
    ck_assert(l.mean->value[0] == 1 && l.mean->value[1] == -2);
    ck_assert(l.var->value[0] == 4 && l.var->value[1] == (ag_real)0.25);
    ag_tape_free(t);
    ag_params_free(&l.ps);
}
END_TEST

/* The node keeps the mode it was recorded in: switching the tape to training between the
 * forward and the backward must not turn the affine evaluation map into the batch formula. */
START_TEST(test_batch_norm_backward_follows_the_recorded_mode)
{
    bn_layer l;
    bn_layer_new(&l, 1, (const double[]){3}, (const double[]){0});
    l.var->value[0] = 4;
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tape_set_training(t, 0);
    const ag_real xs[3] = {1, 2, 4};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(3, 1), xs);
    x->requires_grad = 1;
    ag_tensor *y = ag_batch_norm(t, x, l.gamma, l.beta, l.mean, l.var, 0.1, 0);
    ag_tape_set_training(t, 1);
    ag_backward(t, ag_sum(t, y));
    for (int i = 0; i < 3; i++) ASSERT_NEAR(x->grad[i], 3 / 2.0); /* gamma / sqrt(var) */
    ASSERT_NEAR(l.beta->grad[0], 3);                               /* sum of dy */
    ASSERT_NEAR(l.gamma->grad[0], (1 + 2 + 4) / 2.0);              /* sum of xhat */
    ag_tape_free(t);
    ag_params_free(&l.ps);
}
END_TEST

/* In training, the gradient of sum(y) with respect to x is 0: a shift of all of x is
 * removed by the mean, and the sum of xhat is always 0. */
START_TEST(test_batch_norm_training_gradient_of_the_sum_is_zero)
{
    bn_layer l;
    bn_layer_new(&l, 1, (const double[]){3}, (const double[]){0});
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real xs[4] = {1, 2, 4, 8};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(4, 1), xs);
    x->requires_grad = 1;
    ag_backward(t, ag_sum(t, ag_batch_norm(t, x, l.gamma, l.beta, l.mean, l.var, 0.1, 1e-5)));
    for (int i = 0; i < 4; i++) ck_assert_double_le(fabs((double)x->grad[i]), 10 * TOL);
    ASSERT_NEAR(l.beta->grad[0], 4);
    ck_assert_double_le(fabs((double)l.gamma->grad[0]), 10 * TOL);
    ag_tape_free(t);
    ag_params_free(&l.ps);
}
END_TEST

/* A matrix [N, C] is normalised by blocks of channels walked row by row, an image batch
 * [N, C, H, W] channel by channel (doc/15-ops-norm.nw); the blocks must not change a bit.
 * C = 70 is one full block of 64 and a partial one. Both modes, outputs and every gradient. */
/* ag_column_mean_var: m[i][j] = i + j/8 over rows 0..3 has mean 1.5 + j/8 and population
 * variance 1.25 in every column, exactly; 70 columns cover a full block and a partial one, and
 * the statistics match the ones batch norm normalises with (its output, at gamma 1 and beta 0,
 * is (x - mean) / sqrt(var + eps)). */
START_TEST(test_column_mean_var_is_exact_and_batch_norms_own)
{
    enum { ROWS = 4, COLS = 70 };
    ag_real m[ROWS * COLS];
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++) m[i * COLS + j] = (ag_real)(i + j / 8.0);
    double mean[COLS], var[COLS];
    ag_column_mean_var(m, ROWS, COLS, mean, var);
    for (int j = 0; j < COLS; j++) {
        ck_assert_msg(mean[j] == 1.5 + j / 8.0, "mean[%d] = %.17g", j, mean[j]);
        ck_assert_msg(var[j] == 1.25, "var[%d] = %.17g", j, var[j]);
    }
    ag_params ps = {0};
    ag_tensor *gamma = ag_param_new(&ps, "gamma", AG_SHAPE(COLS));
    ag_tensor *beta = ag_param_new(&ps, "beta", AG_SHAPE(COLS));
    ag_tensor *rm = ag_buffer_new(&ps, "rm", AG_SHAPE(COLS));
    ag_tensor *rv = ag_buffer_new(&ps, "rv", AG_SHAPE(COLS));
    for (int j = 0; j < COLS; j++) gamma->value[j] = 1;
    ag_tape *t = ag_tape_new(1 << 20);
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(ROWS, COLS), m);
    ag_tensor *y = ag_batch_norm(t, x, gamma, beta, rm, rv, 0.1, 1e-5);
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            ck_assert(y->value[i * COLS + j]
                      == (ag_real)((m[i * COLS + j] - mean[j]) * (1.0 / sqrt(var[j] + 1e-5))));
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

START_TEST(test_batch_norm_matrix_matches_its_image_layout_bit_for_bit)
{
    enum { N = 9, C = 70 };
    double gamma[C], beta[C];
    ag_rng rng;
    ag_rng_seed(&rng, 5);
    for (int c = 0; c < C; c++) {
        gamma[c] = 0.5 + ag_rng_uniform(&rng);
        beta[c] = ag_rng_uniform(&rng) - 0.5;
    }
    for (int training = 0; training <= 1; training++) {
        bn_layer as_matrix, as_images;
        bn_layer_new(&as_matrix, C, gamma, beta);
        bn_layer_new(&as_images, C, gamma, beta);
        ag_tape *t = ag_tape_new(1 << 20);
        ag_tape_set_training(t, training);
        ag_tensor *x = ag_tensor_new(t, AG_SHAPE(N, C)), *dy = ag_tensor_new(t, AG_SHAPE(N, C));
        ag_fill_uniform(x, &rng, -3, 5);
        ag_fill_uniform(dy, &rng, -1, 1);
        ag_tensor *x4 = ag_tensor_from(t, AG_SHAPE(N, C, 1, 1), x->value);
        x->requires_grad = x4->requires_grad = 1;
        bn_layer *l = &as_matrix;
        ag_tensor *y = ag_batch_norm(t, x, l->gamma, l->beta, l->mean, l->var, 0.1, 1e-5);
        l = &as_images;
        ag_tensor *y4 = ag_batch_norm(t, x4, l->gamma, l->beta, l->mean, l->var, 0.1, 1e-5);
        ag_backward_vjp(t, y, dy->value);
        ag_backward_vjp(t, y4, dy->value);
        size_t values = (size_t)N * C * sizeof(ag_real), channels = (size_t)C * sizeof(ag_real);
        ck_assert(memcmp(y->value, y4->value, values) == 0);
        ck_assert(memcmp(x->grad, x4->grad, values) == 0);
        ck_assert(memcmp(as_matrix.gamma->grad, as_images.gamma->grad, channels) == 0);
        ck_assert(memcmp(as_matrix.beta->grad, as_images.beta->grad, channels) == 0);
        ck_assert(memcmp(as_matrix.mean->value, as_images.mean->value, channels) == 0);
        ck_assert(memcmp(as_matrix.var->value, as_images.var->value, channels) == 0);
        ck_assert(x->grad[0] != 0 && as_matrix.gamma->grad[C - 1] != 0); /* not vacuous */
        ag_tape_free(t);
        ag_params_free(&as_matrix.ps);
        ag_params_free(&as_images.ps);
    }
}
END_TEST

START_TEST(test_batch_norm_misuse_is_reported)
{
    bn_layer l;
    bn_layer_new(&l, 3, (const double[]){1, 1, 1}, (const double[]){0, 0, 0});
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(4, 2));
    EXPECT_FATAL(ag_batch_norm(t, x, l.gamma, l.beta, l.mean, l.var, 0.1, 1e-5));
    ASSERT_MESSAGE_HAS("batch_norm");
    ASSERT_MESSAGE_HAS("[3]");
    ASSERT_MESSAGE_HAS("[4, 2]");

    ag_tensor *x3 = ag_tensor_new(t, AG_SHAPE(4, 3, 2));
    EXPECT_FATAL(ag_batch_norm(t, x3, l.gamma, l.beta, l.mean, l.var, 0.1, 1e-5));
    ASSERT_MESSAGE_HAS("[N, C] or [N, C, H, W]");

    ag_tensor *one = ag_tensor_new(t, AG_SHAPE(1, 3));
    EXPECT_FATAL(ag_batch_norm(t, one, l.gamma, l.beta, l.mean, l.var, 0.1, 1e-5));
    ASSERT_MESSAGE_HAS("one value per channel");

    ag_tensor *ok = ag_tensor_new(t, AG_SHAPE(4, 3));
    EXPECT_FATAL(ag_batch_norm(t, ok, l.gamma, l.beta, l.gamma, l.var, 0.1, 1e-5));
    ASSERT_MESSAGE_HAS("ag_buffer_new");
    ag_tape_free(t);
    ag_params_free(&l.ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Layer normalisation                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Row 0 is 1, 2, 3 (mean 2, biased variance 2/3); row 1 is 10, 10, 16 (mean 12, variance 8). */
START_TEST(test_layer_norm_normalises_each_row)
{
    ag_params ps = {0};
    ag_tensor *gamma = ag_param_new(&ps, "gamma", AG_SHAPE(3));
    ag_tensor *beta = ag_param_new(&ps, "beta", AG_SHAPE(3));
    const double g[3] = {1, 2, -1}, b[3] = {0, 0.5, 1};
    for (int d = 0; d < 3; d++) {
        gamma->value[d] = (ag_real)g[d];
        beta->value[d] = (ag_real)b[d];
    }
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real xs[6] = {1, 2, 3, 10, 10, 16};
    ag_tensor *y = ag_layer_norm(t, ag_tensor_from(t, AG_SHAPE(2, 3), xs), gamma, beta, 1e-5);
    const double mean[2] = {2, 12}, var[2] = {2.0 / 3, 8};
    for (int r = 0; r < 2; r++)
        for (int d = 0; d < 3; d++)
            ASSERT_NEAR(y->value[r * 3 + d],
                        g[d] * (xs[r * 3 + d] - mean[r]) / sqrt(var[r] + 1e-5) + b[d]);
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Dropout                                                                                      */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_dropout_drops_about_p_and_scales_the_rest)
{
    ag_tape *t = ag_tape_new(1 << 20);
    enum { N = 20000 };
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(N));
    ag_fill(x, 1.5);
    ag_rng rng;
    ag_rng_seed(&rng, 99);
    ag_tensor *y = ag_dropout(t, x, 0.3, &rng);
    int dropped = 0;
    for (long i = 0; i < N; i++) {
        if (y->value[i] == 0) {
            dropped++;
        } else {
            ck_assert_msg(y->value[i] == (ag_real)(1.5 * (ag_real)(1.0 / 0.7)),
                          "a kept entry must be x / (1 - p), got %g", (double)y->value[i]);
        }
    }
    ck_assert_int_gt(dropped, (int)(0.28 * N));
    ck_assert_int_lt(dropped, (int)(0.32 * N));
    ag_tape_free(t);
}
END_TEST

/* The mask is one uniform per entry, in order: entry i is dropped when u_i < p. */
START_TEST(test_dropout_mask_follows_the_generator)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(4, 8));
    ag_fill(x, 1);
    ag_rng rng, replay;
    ag_rng_seed(&rng, 5);
    ag_rng_seed(&replay, 5);
    ag_tensor *y = ag_dropout(t, x, 0.5, &rng);
    for (long i = 0; i < x->size; i++)
        ck_assert_int_eq(y->value[i] == 0, ag_rng_uniform(&replay) < 0.5);
    ck_assert_uint_eq(rng.s[0], replay.s[0]); /* exactly one number per entry was drawn */
    ag_tape_free(t);
}
END_TEST

START_TEST(test_dropout_is_the_identity_in_evaluation_and_for_p_zero)
{
    ag_tape *t = ag_tape_new(1 << 16);
    const ag_real xs[4] = {1, -2, 3, -4};
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(4), xs);
    ag_rng rng, untouched;
    ag_rng_seed(&rng, 1);
    untouched = rng;
    ag_tensor *y0 = ag_dropout(t, x, 0, &rng);
    ag_tape_set_training(t, 0);
    ag_tensor *ye = ag_dropout(t, x, 0.9, &rng);
    ag_tensor *yn = ag_dropout(t, x, 0.5, NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert(y0->value[i] == xs[i]);
        ck_assert(ye->value[i] == xs[i]);
        ck_assert(yn->value[i] == xs[i]);
    }
    ck_assert(memcmp(&rng, &untouched, sizeof rng) == 0); /* no number was drawn */
    ag_tape_free(t);
}
END_TEST

START_TEST(test_dropout_refuses_p_outside_zero_to_one)
{
    ag_tape *t = ag_tape_new(1 << 16);
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(2, 5));
    ag_rng rng;
    ag_rng_seed(&rng, 1);
    EXPECT_FATAL(ag_dropout(t, x, 1.0, &rng));
    ASSERT_MESSAGE_HAS("dropout");
    ASSERT_MESSAGE_HAS("[0, 1)");
    ASSERT_MESSAGE_HAS("[2, 5]");
    EXPECT_FATAL(ag_dropout(t, x, -0.1, &rng));
    ASSERT_MESSAGE_HAS("dropout");
    EXPECT_FATAL(ag_dropout(t, x, 0.5, NULL));
    ASSERT_MESSAGE_HAS("NULL");
    ag_tape_free(t);
}
END_TEST

Suite *norm_suite(void)
{
    Suite *s = suite_create("norm");
    TCase *bn = tcase_create("batch_norm");
    tcase_add_test(bn, test_batch_norm_training_uses_batch_statistics_and_updates_running_ones);
    tcase_add_test(bn, test_batch_norm_images_normalise_over_batch_and_positions);
    tcase_add_test(bn, test_batch_norm_evaluation_uses_running_statistics_and_keeps_them);
    tcase_add_test(bn, test_batch_norm_backward_follows_the_recorded_mode);
    tcase_add_test(bn, test_batch_norm_training_gradient_of_the_sum_is_zero);
    tcase_add_test(bn, test_batch_norm_matrix_matches_its_image_layout_bit_for_bit);
    tcase_add_test(bn, test_column_mean_var_is_exact_and_batch_norms_own);
    tcase_add_test(bn, test_batch_norm_misuse_is_reported);
    suite_add_tcase(s, bn);
    TCase *ln = tcase_create("layer_norm");
    tcase_add_test(ln, test_layer_norm_normalises_each_row);
    suite_add_tcase(s, ln);
    TCase *dropout = tcase_create("dropout");
    tcase_add_test(dropout, test_dropout_drops_about_p_and_scales_the_rest);
    tcase_add_test(dropout, test_dropout_mask_follows_the_generator);
    tcase_add_test(dropout, test_dropout_is_the_identity_in_evaluation_and_for_p_zero);
    tcase_add_test(dropout, test_dropout_refuses_p_outside_zero_to_one);
    suite_add_tcase(s, dropout);
    return s;
}
