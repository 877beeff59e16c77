/* test_bounds.c -- the bounds of mutual information (doc/22-bounds.nw) against their closed forms.
 *
 * Every expected value is computed here, independently of the engine, with plain loops in long
 * double: a max-shifted log-sum-exp, a softplus that cannot overflow, a sigmoid on either side of
 * zero. Values and gradients must agree to 1e-12 (relative for values above 1) in the double
 * build and 1e-5 in the float build, where the scores themselves are floats. */
#include <check.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "../../src/dim/dim.h"
#include "suites.h"

#ifdef AG_DOUBLE
static const double TOLERANCE = 1e-12;
#else
static const double TOLERANCE = 1e-5;
#endif

enum { MAX_B = 3, MAX_N = 8, MAX_SIZE = MAX_B * MAX_N * MAX_N };

typedef ag_tensor *(*bound_fn)(ag_tape *t, ag_tensor *scores, dim_bound_state *state);

/* score s[b, i, j] of a [B, n, n] array, as a long double */
#define S(s, n, b, i, j) ((long double)(s)[((long)(b) * (n) + (i)) * (n) + (j)])
#define AT(n, b, i, j) (((long)(b) * (n) + (i)) * (n) + (j))

/* ---------------------------------------------------------------------------------------------
 * Closed forms, in long double
 * ------------------------------------------------------------------------------------------- */

static long double lse_ld(const long double *v, int count)
{
    long double max = v[0], sum = 0;
    for (int k = 1; k < count; k++)
        if (v[k] > max) max = v[k];
    for (int k = 0; k < count; k++) sum += expl(v[k] - max);
    return max + logl(sum);
}

static long double softplus_ld(long double z) { return (z > 0 ? z : 0) + log1pl(expl(-fabsl(z))); }

static long double sigmoid_ld(long double z)
{
    return z >= 0 ? 1 / (1 + expl(-z)) : expl(z) / (1 + expl(z));
}

/* DV, Eq. 2: mean over b of mean_i s_bii - log mean_{i != j} e^s_bij; grad [B*n*n] or NULL. */
static long double dv_closed(const ag_real *s, int B, int n, long double *grad)
{
    long double total = 0, negatives[MAX_N * MAX_N];
    for (int b = 0; b < B; b++) {
        long double positive = 0;
        int count = 0;
        for (int i = 0; i < n; i++) positive += S(s, n, b, i, i);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (i != j) negatives[count++] = S(s, n, b, i, j);
        long double log_sum = lse_ld(negatives, count);
        total += positive / n - (log_sum - logl((long double)count));
        if (grad)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    grad[AT(n, b, i, j)] = i == j ? 1.0L / (B * n)
                                                  : -expl(S(s, n, b, i, j) - log_sum) / B;
    }
    return total / B;
}

/* JSD, Eq. 4: mean over b of -mean_i sp(-s_bii) - mean_{i != j} sp(s_bij). */
static long double jsd_closed(const ag_real *s, int B, int n, long double *grad)
{
    long double total = 0;
    for (int b = 0; b < B; b++) {
        long double positive = 0, negative = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                long double x = S(s, n, b, i, j);
                if (i == j) positive -= softplus_ld(-x);
                else negative += softplus_ld(x);
                if (grad)
                    grad[AT(n, b, i, j)] = i == j ? sigmoid_ld(-x) / (B * n)
                                                  : -sigmoid_ld(x) / ((long double)B * n * (n - 1));
            }
        total += positive / n - negative / ((long double)n * (n - 1));
    }
    return total / B;
}

/* infoNCE, Eq. 5 plus log n: mean over b, i of s_bii - logsumexp_j s_bij, plus log n. */
static long double infonce_closed(const ag_real *s, int B, int n, long double *grad)
{
    long double total = 0, row[MAX_N];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) row[j] = S(s, n, b, i, j);
            long double log_sum = lse_ld(row, n);
            total += row[i] - log_sum;
            if (grad)
                for (int j = 0; j < n; j++)
                    grad[AT(n, b, i, j)] = ((i == j) - expl(row[j] - log_sum)) / (B * n);
        }
    return total / (B * n) + logl((long double)n);
}

typedef long double (*closed_fn)(const ag_real *s, int B, int n, long double *grad);

typedef struct bound_under_test {
    const char *name;
    bound_fn bound;
    closed_fn closed;
} bound_under_test;

static const bound_under_test BOUNDS[] = {
    {"dv", dim_bound_dv, dv_closed},
    {"jsd", dim_bound_jsd, jsd_closed},
    {"infonce", dim_bound_infonce, infonce_closed},
};
enum { NBOUNDS = sizeof BOUNDS / sizeof BOUNDS[0] };

/* ---------------------------------------------------------------------------------------------
 * Running a bound on the engine
 * ------------------------------------------------------------------------------------------- */

/* The bound of scores [B, n, n]; when grad is not NULL, d bound / d scores into grad [B*n*n]. */
static double run_bound(bound_fn bound, int B, int n, const ag_real *s, double *grad)
{
    ag_tape *t = ag_tape_new_growing(1 << 24);
    ag_tensor *scores = ag_tensor_from(t, AG_SHAPE(B, n, n), s);
    scores->requires_grad = 1;
    dim_bound_state state;
    dim_bound_state_init(&state);
    ag_tensor *estimate = bound(t, scores, &state);
    ck_assert_msg(estimate->ndim == 0 && estimate->size == 1,
                  "a bound must return a scalar (ndim 0), got ndim %d size %ld",
                  estimate->ndim, estimate->size);
    double value = estimate->value[0];
    if (grad) {
        ag_backward(t, estimate);
        for (long k = 0; k < scores->size; k++) grad[k] = scores->grad[k];
    }
    ag_tape_free(t);
    return value;
}

/* The largest |score|: a float build rounds intermediates of that size (near 1000 a float's
 * spacing is 6e-5), so its error is relative to it as well as to the result. */
static double largest_score(const ag_real *s, long size)
{
    double largest = 0;
    for (long k = 0; k < size; k++)
        if (fabs((double)s[k]) > largest) largest = fabs((double)s[k]);
    return largest;
}

/* TOLERANCE relative to the result (absolute below 1); in the float build also relative to the
 * largest score. */
static double tolerance_for(long double want, double largest)
{
    double scale = fabsl(want) > 1 ? (double)fabsl(want) : 1.0;
#ifndef AG_DOUBLE
    if (largest > scale) scale = largest;
#else
    (void)largest;
#endif
    return TOLERANCE * scale;
}

static void expect_close(double got, long double want, double largest, const char *what)
{
    double tolerance = tolerance_for(want, largest);
    ck_assert_msg(isfinite(got) && fabs(got - (double)want) <= tolerance,
                  "%s: expected %.17Lg, got %.17g (difference %.3g, tolerance %.3g)", what, want,
                  got, fabs(got - (double)want), tolerance);
}

/* Value and gradient of every bound on scores [B, n, n] against the closed forms. */
static void expect_bounds_match(int B, int n, const ag_real *s, const char *what)
{
    double grad[MAX_SIZE];
    long double want_grad[MAX_SIZE];
    char label[160];
    double largest = largest_score(s, (long)B * n * n);
    for (int k = 0; k < NBOUNDS; k++) {
        double value = run_bound(BOUNDS[k].bound, B, n, s, grad);
        long double want = BOUNDS[k].closed(s, B, n, want_grad);
        snprintf(label, sizeof label, "%s of %s [%d, %d, %d]", BOUNDS[k].name, what, B, n, n);
        expect_close(value, want, largest, label);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    snprintf(label, sizeof label, "d %s / d s[%d, %d, %d] of %s [%d, %d, %d]",
                             BOUNDS[k].name, b, i, j, what, B, n, n);
                    expect_close(grad[AT(n, b, i, j)], want_grad[AT(n, b, i, j)], largest, label);
                }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Hand-made scores
 * ------------------------------------------------------------------------------------------- */

static const ag_real IDENTITY_2[] = { 1, 0,
                                      0, 1 };

static const ag_real HAND_1x3[] = { 2.5,   -1,  0.5,
                                    0.25,  1.5, -2,
                                    -0.75, 3,   0.125 };

static const ag_real HAND_3x2[] = { 1,    -1,     /* problem 0 */
                                    0.5,  2,
                                    -3,   0.25,   /* problem 1 */
                                    4,    -0.5,
                                    0,    0,      /* problem 2 */
                                    1.75, -1.25 };

/* A fixed pattern for the larger cases: smooth in the flat index, positives a little higher. */
static void fill_pattern(ag_real *s, int B, int n, double phase)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                long k = AT(n, b, i, j);
                s[k] = (ag_real)(3 * sin(1.3 * (double)k + phase) + (i == j ? 1.0 : 0.0));
            }
}

START_TEST(test_bounds_known_values_on_the_identity)
{
    /* scores [[1, 0], [0, 1]]: each bound by hand */
    const long double e = expl(1);
    expect_close(run_bound(dim_bound_dv, 1, 2, IDENTITY_2, NULL), 1.0L, 1,
                 "DV = 1 - log mean(e^0, e^0) = 1");
    expect_close(run_bound(dim_bound_jsd, 1, 2, IDENTITY_2, NULL), -log1pl(1 / e) - logl(2), 1,
                 "JSD = -sp(-1) - sp(0)");
    expect_close(run_bound(dim_bound_infonce, 1, 2, IDENTITY_2, NULL), logl(2 * e / (1 + e)), 1,
                 "infoNCE = 1 - log(e + 1) + log 2");
}
END_TEST

START_TEST(test_bounds_match_closed_forms_on_hand_made_scores)
{
    ag_real s[MAX_SIZE];
    expect_bounds_match(1, 2, IDENTITY_2, "the identity");
    expect_bounds_match(1, 3, HAND_1x3, "hand-made scores");
    expect_bounds_match(3, 2, HAND_3x2, "a batch of 2 images");
    const int sizes[][2] = { {1, 2}, {1, 3}, {1, 5}, {3, 2}, {3, 3}, {3, 5} };
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        fill_pattern(s, sizes[c][0], sizes[c][1], 0.7);
        expect_bounds_match(sizes[c][0], sizes[c][1], s, "patterned scores");
        fill_pattern(s, sizes[c][0], sizes[c][1], 2.1);
        expect_bounds_match(sizes[c][0], sizes[c][1], s, "patterned scores, second phase");
    }
}
END_TEST

START_TEST(test_bounds_stay_exact_with_one_huge_score)
{
    /* +-1000 on a positive, then on a negative: e^1000 overflows a double, so every log-sum-exp
     * must be shifted and every softplus split; values and gradients stay finite and exact. */
    const double huge[] = { 1000, -1000 };
    ag_real s[MAX_SIZE];
    char what[96];
    for (int h = 0; h < 2; h++) {
        memcpy(s, HAND_1x3, sizeof HAND_1x3);
        s[AT(3, 0, 1, 1)] = (ag_real)huge[h];
        snprintf(what, sizeof what, "%g on a positive", huge[h]);
        expect_bounds_match(1, 3, s, what);

        memcpy(s, HAND_1x3, sizeof HAND_1x3);
        s[AT(3, 0, 2, 0)] = (ag_real)huge[h];
        snprintf(what, sizeof what, "%g on a negative", huge[h]);
        expect_bounds_match(1, 3, s, what);

        fill_pattern(s, 3, 5, 0.7);
        s[AT(5, 1, 3, 3)] = (ag_real)huge[h];
        snprintf(what, sizeof what, "%g on a positive of problem 1", huge[h]);
        expect_bounds_match(3, 5, s, what);

        fill_pattern(s, 3, 5, 0.7);
        s[AT(5, 2, 0, 4)] = (ag_real)huge[h];
        snprintf(what, sizeof what, "%g on a negative of problem 2", huge[h]);
        expect_bounds_match(3, 5, s, what);
    }
    /* the extreme case itself, by hand: DV with one negative at 1000 among five others at 0 */
    memcpy(s, (const ag_real[]){ 0, 1000, 0, 0, 0, 0, 0, 0, 0 }, 9 * sizeof(ag_real));
    expect_close(run_bound(dim_bound_dv, 1, 3, s, NULL),
                 -(1000 + log1pl(5 * expl(-1000))) + logl(6), 1000,
                 "DV = 0 - log((e^1000 + 5) / 6)");
}
END_TEST

START_TEST(test_bounds_of_equal_scores)
{
    /* a critic that cannot tell the pairs apart: DV = 0, infoNCE = log N - log N = 0,
     * JSD = -sp(-c) - sp(c), which is -2 log 2 at c = 0 and below it elsewhere */
    const double levels[] = { 0, 2.5, -7, 1000 };
    const int sizes[][2] = { {1, 2}, {1, 3}, {1, 5}, {3, 2}, {3, 5} };
    ag_real s[MAX_SIZE];
    char what[96];
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++)
        for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
            int B = sizes[c][0], n = sizes[c][1];
            long double level = levels[l];
            for (int k = 0; k < B * n * n; k++) s[k] = (ag_real)levels[l];
            snprintf(what, sizeof what, "DV of scores all %g, [%d, %d, %d]", levels[l], B, n, n);
            expect_close(run_bound(dim_bound_dv, B, n, s, NULL), 0.0L, fabs(levels[l]), what);
            snprintf(what, sizeof what, "infoNCE of scores all %g, [%d, %d, %d]", levels[l], B, n, n);
            expect_close(run_bound(dim_bound_infonce, B, n, s, NULL), 0.0L, fabs(levels[l]), what);
            snprintf(what, sizeof what, "JSD of scores all %g, [%d, %d, %d]", levels[l], B, n, n);
            double jsd = run_bound(dim_bound_jsd, B, n, s, NULL);
            expect_close(jsd, -softplus_ld(-level) - softplus_ld(level), fabs(levels[l]), what);
            if (levels[l] == 0) expect_close(jsd, -2 * logl(2), 0, "JSD of all-zero scores = -2 log 2");
            ck_assert_msg(jsd <= -2 * log(2.0) + tolerance_for(2 * logl(2), 0),
                          "JSD of equal scores %g must be at most -2 log 2, got %.17g",
                          levels[l], jsd);
        }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Properties on random scores
 * ------------------------------------------------------------------------------------------- */

/* Random scores of a random problem size; the scale and a boost of the positives vary with the
 * seed, from nearly equal scores to critics that separate the pairs by tens of nats. */
static void random_scores(ag_rng *rng, int seed, int *B, int *n, ag_real *s)
{
    static const double scales[] = { 0.1, 1, 5, 20 };
    static const double boosts[] = { 0, 5, -3 };
    *B = seed % 2 ? 3 : 1;
    *n = 2 + seed % (MAX_N - 1);
    double scale = scales[seed % 4], boost = boosts[seed % 3];
    for (int b = 0; b < *B; b++)
        for (int i = 0; i < *n; i++)
            for (int j = 0; j < *n; j++)
                s[AT(*n, b, i, j)] = (ag_real)(scale * ag_rng_normal(rng) + (i == j ? boost : 0));
}

START_TEST(test_infonce_never_exceeds_log_n)
{
    /* T_ii - logsumexp_j T_ij < 0 because e^T_ii is one of the terms: the estimate is below
     * log N. The engine's value is rounded, so the check is against log N rounded to ag_real. */
    ag_rng rng;
    ag_real s[MAX_SIZE];
    for (int seed = 0; seed < 500; seed++) {
        int B, n;
        ag_rng_seed(&rng, (uint64_t)seed);
        random_scores(&rng, seed, &B, &n, s);
        double value = run_bound(dim_bound_infonce, B, n, s, NULL);
        long double want = infonce_closed(s, B, n, NULL);
        ck_assert_msg(want < logl((long double)n),
                      "seed %d: the closed form %.17Lg must be below log %d", seed, want, n);
        ck_assert_msg(value <= (double)(ag_real)log((double)n),
                      "seed %d: infoNCE = %.17g exceeds log %d = %.17g", seed, value, n,
                      log((double)n));
        expect_close(value, want, largest_score(s, (long)B * n * n), "infoNCE on random scores");
    }
}
END_TEST

START_TEST(test_jsd_is_negative)
{
    /* Each term of Eq. 4, -sp(-T) and -sp(T), is strictly negative: the estimate is < 0 for
     * any finite scores (it bounds 2 D_JS - log 4 <= 0 from below, not I). */
    ag_rng rng;
    ag_real s[MAX_SIZE];
    for (int seed = 0; seed < 500; seed++) {
        int B, n;
        ag_rng_seed(&rng, (uint64_t)seed + 1000);
        random_scores(&rng, seed, &B, &n, s);
        double value = run_bound(dim_bound_jsd, B, n, s, NULL);
        ck_assert_msg(value < 0, "seed %d: JSD = %.17g is not negative", seed, value);
        expect_close(value, jsd_closed(s, B, n, NULL), largest_score(s, (long)B * n * n),
                     "JSD on random scores");
    }
}
END_TEST

START_TEST(test_jsd_approaches_zero_from_below_as_the_pairs_separate)
{
    /* positives +30, negatives -30: the estimate is -2 sp(-30) = -1.9e-13, still negative */
    ag_real s[MAX_SIZE];
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) s[AT(4, b, i, j)] = i == j ? 30 : -30;
    double value = run_bound(dim_bound_jsd, 3, 4, s, NULL);
    long double want = -2 * softplus_ld(-30);
    ck_assert_msg(value < 0 && value > -1e-12,
                  "JSD of perfectly separated scores must be just below 0, got %.17g", value);
    ck_assert_msg(fabs(value - (double)want) <= 1e-5 * fabsl(want),
                  "JSD of separated scores: expected %.17Lg, got %.17g", want, value);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Invariance to constants
 * ------------------------------------------------------------------------------------------- */

/* s + c_b + r_bi: a constant per problem and one per row */
static void shifted(const ag_real *s, int B, int n, const double *per_problem,
                    const double *per_row, ag_real *out)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                out[AT(n, b, i, j)] = (ag_real)((double)s[AT(n, b, i, j)] + per_problem[b]
                                                + (per_row ? per_row[b * n + i] : 0));
}

START_TEST(test_dv_and_infonce_ignore_a_constant_added_to_every_score)
{
    const double everywhere[MAX_B] = { 7.5, 7.5, 7.5 }, per_problem[MAX_B] = { -3.25, 12, 0.5 };
    ag_real s[MAX_SIZE], moved[MAX_SIZE];
    const int sizes[][2] = { {1, 2}, {1, 5}, {3, 3}, {3, 5} };
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        int B = sizes[c][0], n = sizes[c][1];
        fill_pattern(s, B, n, 0.3);
        for (int k = 0; k < 2; k++) {
            bound_fn bound = k == 0 ? dim_bound_dv : dim_bound_infonce;
            const char *name = k == 0 ? "DV" : "infoNCE";
            double before = run_bound(bound, B, n, s, NULL), after;
            shifted(s, B, n, everywhere, NULL, moved);
            after = run_bound(bound, B, n, moved, NULL);
            ck_assert_msg(fabs(after - before) <= tolerance_for(before, largest_score(moved, B * n * n)),
                          "%s changed when 7.5 was added to every score: %.17g then %.17g", name,
                          before, after);
            shifted(s, B, n, per_problem, NULL, moved);
            after = run_bound(bound, B, n, moved, NULL);
            ck_assert_msg(fabs(after - before) <= tolerance_for(before, largest_score(moved, B * n * n)),
                          "%s changed when a constant was added to each problem: %.17g then %.17g",
                          name, before, after);
        }
    }
}
END_TEST

START_TEST(test_infonce_ignores_a_constant_per_row_and_dv_does_not)
{
    const double none[MAX_B] = { 0, 0, 0 };
    double per_row[MAX_B * MAX_N];
    ag_real s[MAX_SIZE], moved[MAX_SIZE];
    int B = 3, n = 5;
    fill_pattern(s, B, n, 1.1);
    for (int r = 0; r < B * n; r++) per_row[r] = 2.0 * r - 9.0;
    shifted(s, B, n, none, per_row, moved);

    double before = run_bound(dim_bound_infonce, B, n, s, NULL);
    double after = run_bound(dim_bound_infonce, B, n, moved, NULL);
    ck_assert_msg(fabs(after - before) <= tolerance_for(before, largest_score(moved, B * n * n)),
                  "infoNCE must not change with a constant per row: %.17g then %.17g", before, after);

    /* DV's log E_M[e^T] mixes the rows: the same shift changes it, by exactly what the closed
     * form says */
    before = run_bound(dim_bound_dv, B, n, s, NULL);
    after = run_bound(dim_bound_dv, B, n, moved, NULL);
    expect_close(after, dv_closed(moved, B, n, NULL), largest_score(moved, B * n * n),
                 "DV of row-shifted scores");
    ck_assert_msg(fabs(after - before) > 0.1,
                  "DV should change with a constant per row: %.17g then %.17g", before, after);
}
END_TEST

START_TEST(test_jsd_changes_when_a_constant_is_added)
{
    /* sigma has its threshold at 0: moving every score moves the estimate */
    const double one[MAX_B] = { 1, 1, 1 };
    ag_real s[MAX_SIZE], moved[MAX_SIZE];
    for (int k = 0; k < 3 * 3 * 3; k++) s[k] = 0;
    shifted(s, 3, 3, one, NULL, moved);
    double at_zero = run_bound(dim_bound_jsd, 3, 3, s, NULL);
    double at_one = run_bound(dim_bound_jsd, 3, 3, moved, NULL);
    expect_close(at_zero, -2 * logl(2), 0, "JSD of zero scores");
    expect_close(at_one, -softplus_ld(-1) - softplus_ld(1), 1, "JSD of scores all 1");
    ck_assert_msg(at_zero - at_one > 0.2,
                  "JSD must change when 1 is added to every score: %.17g then %.17g",
                  at_zero, at_one);

    fill_pattern(s, 3, 5, 0.9);
    shifted(s, 3, 5, one, NULL, moved);
    double before = run_bound(dim_bound_jsd, 3, 5, s, NULL);
    double after = run_bound(dim_bound_jsd, 3, 5, moved, NULL);
    expect_close(after, jsd_closed(moved, 3, 5, NULL), largest_score(moved, 3 * 5 * 5),
                 "JSD of shifted patterned scores");
    ck_assert_msg(fabs(after - before) > 0.01,
                  "JSD must change when 1 is added to every score: %.17g then %.17g", before,
                  after);
}
END_TEST

START_TEST(test_a_batch_of_problems_is_the_mean_of_its_problems)
{
    /* the negatives of one problem never meet those of another: the bound of [3, n, n] is the
     * mean of the bounds of its three [1, n, n] slices (DV's logsumexp runs per problem) */
    ag_real s[MAX_SIZE];
    for (int n = 2; n <= 5; n++) {
        fill_pattern(s, 3, n, 0.4 * n);
        s[AT(n, 1, 0, 1)] = 40; /* one problem with a much larger negative than the others */
        for (int k = 0; k < NBOUNDS; k++) {
            double whole = run_bound(BOUNDS[k].bound, 3, n, s, NULL);
            double mean = 0;
            for (int b = 0; b < 3; b++) mean += run_bound(BOUNDS[k].bound, 1, n, s + b * n * n, NULL);
            mean /= 3;
            ck_assert_msg(fabs(whole - mean) <= tolerance_for(mean, 40),
                          "%s of [3, %d, %d] = %.17g, the mean of its problems = %.17g",
                          BOUNDS[k].name, n, n, whole, mean);
        }
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The table, the state, and misuse
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_the_table_holds_the_three_bounds_of_the_paper)
{
    static const struct { const char *name, *equation; bound_fn estimate; } expected[] = {
        {"dv", "Eq. 2", dim_bound_dv},
        {"jsd", "Eq. 4", dim_bound_jsd},
        {"infonce", "Eq. 5", dim_bound_infonce},
    };
    for (int k = 0; k < 3; k++) {
        const dim_bound *row = dim_bound_find(expected[k].name);
        ck_assert_msg(row != NULL, "dim_bound_find(\"%s\") found nothing", expected[k].name);
        ck_assert_str_eq(row->name, expected[k].name);
        ck_assert_str_eq(row->equation, expected[k].equation);
        ck_assert_msg(row->estimate == expected[k].estimate, "the row \"%s\" calls another function",
                      expected[k].name);
    }
    ck_assert_msg(dim_bound_find("mi") == NULL, "an unknown name must give NULL");
    ck_assert_msg(dim_bound_find("") == NULL, "the empty name must give NULL");
    ck_assert_msg(dim_bound_find(NULL) == NULL, "a NULL name must give NULL");
    ck_assert_int_ge(dim_nbounds, 3);
    for (int k = 0; k < dim_nbounds; k++) {
        ck_assert_msg(dim_bounds[k].name && dim_bounds[k].equation && dim_bounds[k].summary &&
                      dim_bounds[k].estimate, "row %d of dim_bounds has an empty field", k);
        ck_assert_msg(strlen(dim_bounds[k].summary) > 0, "row %d has no summary", k);
        ck_assert_msg(dim_bound_find(dim_bounds[k].name) == &dim_bounds[k],
                      "the name \"%s\" is not unique in dim_bounds", dim_bounds[k].name);
    }
}
END_TEST

START_TEST(test_the_state_starts_at_its_defaults)
{
    dim_bound_state state;
    memset(&state, 0x5a, sizeof state);
    dim_bound_state_init(&state);
    ck_assert_msg(state.smile_tau == 5.0, "smile_tau: expected 5, got %g", state.smile_tau);
    ck_assert_msg(state.mine_rate == 0.01, "mine_rate: expected 0.01, got %g", state.mine_rate);
    ck_assert_msg(state.mine_ema < 0, "mine_ema must be negative before the first step, got %g",
                  state.mine_ema);
}
END_TEST

START_TEST(test_every_bound_of_the_table_gives_a_finite_scalar)
{
    /* a walk over the whole table, so that bounds added later are covered too; the scores are
     * moderate (|s| <= 4), where every bound of the estimator lab is finite as well */
    ag_real s[MAX_SIZE];
    for (int k = 0; k < dim_nbounds; k++)
        for (int B = 1; B <= 3; B += 2) {
            fill_pattern(s, B, 4, 0.2);
            ag_tape *t = ag_tape_new_growing(1 << 24);
            ag_tensor *scores = ag_tensor_from(t, AG_SHAPE(B, 4, 4), s);
            scores->requires_grad = 1;
            dim_bound_state state;
            dim_bound_state_init(&state);
            ag_tensor *estimate = dim_bounds[k].estimate(t, scores, &state);
            ck_assert_msg(estimate->ndim == 0 && estimate->size == 1,
                          "%s must return a scalar (ndim 0), got ndim %d", dim_bounds[k].name,
                          estimate->ndim);
            ck_assert_msg(isfinite(estimate->value[0]), "%s is not finite: %g", dim_bounds[k].name,
                          (double)estimate->value[0]);
            ag_backward(t, estimate);
            for (long e = 0; e < scores->size; e++)
                ck_assert_msg(isfinite(scores->grad[e]), "the gradient of %s is not finite",
                              dim_bounds[k].name);
            ag_tape_free(t);
        }
}
END_TEST

static jmp_buf on_fatal;
static char fatal_message[512];

static void catch_fatal(const char *message)
{
    snprintf(fatal_message, sizeof fatal_message, "%s", message);
    longjmp(on_fatal, 1);
}

/* 1 if bound stops with ag_fatal on scores of this shape (NULL scores when ndim < 0), with the
 * message in fatal_message; 0 if it returns. */
static int bound_stops(bound_fn bound, int ndim, const int *shape)
{
    ag_tape *t = ag_tape_new(1 << 20);
    ag_tensor *scores = ndim < 0 ? NULL : ag_tensor_new(t, ndim, shape);
    dim_bound_state state;
    dim_bound_state_init(&state);
    ag_error_fn previous = ag_set_error_handler(catch_fatal);
    volatile int stopped = 1;
    fatal_message[0] = '\0';
    if (setjmp(on_fatal) == 0) {
        bound(t, scores, &state);
        stopped = 0;
    }
    ag_set_error_handler(previous);
    ag_tape_free(t);
    return stopped;
}

START_TEST(test_misuse_stops_with_the_bound_and_the_shape)
{
    /* a walk over the whole table: every bound, also those added later, must stop on these */
    static const struct { int ndim; int shape[4]; const char *text; } wrong[] = {
        {2, {3, 3}, "[3, 3]"},              /* no problem axis */
        {3, {1, 3, 4}, "[1, 3, 4]"},        /* not square */
        {3, {2, 4, 3}, "[2, 4, 3]"},        /* not square the other way */
        {3, {2, 1, 1}, "[2, 1, 1]"},        /* N = 1: no negative */
        {4, {2, 3, 3, 1}, "[2, 3, 3, 1]"},  /* one axis too many */
    };
    char who[64];
    for (int k = 0; k < dim_nbounds; k++) {
        snprintf(who, sizeof who, "dim_bound_%s", dim_bounds[k].name);
        for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
            ck_assert_msg(bound_stops(dim_bounds[k].estimate, wrong[w].ndim, wrong[w].shape),
                          "%s accepted scores %s", who, wrong[w].text);
            ck_assert_msg(strstr(fatal_message, who) != NULL,
                          "the message for scores %s must name %s: \"%s\"", wrong[w].text, who,
                          fatal_message);
            ck_assert_msg(strstr(fatal_message, wrong[w].text) != NULL,
                          "the message for scores %s must show the shape: \"%s\"", wrong[w].text,
                          fatal_message);
        }
        ck_assert_msg(!bound_stops(dim_bounds[k].estimate, 3, (const int[]){ 1, 2, 2 }),
                      "%s refused [1, 2, 2], the smallest valid scores: \"%s\"", who,
                      fatal_message);
    }
}
END_TEST

START_TEST(test_the_paper_bounds_refuse_null_scores)
{
    for (int k = 0; k < NBOUNDS; k++) {
        ck_assert_msg(bound_stops(BOUNDS[k].bound, -1, NULL), "dim_bound_%s accepted NULL scores",
                      BOUNDS[k].name);
        ck_assert_msg(strstr(fatal_message, "NULL") != NULL && strstr(fatal_message, BOUNDS[k].name),
                      "the message for NULL scores must say so and name the bound: \"%s\"",
                      fatal_message);
    }
}
END_TEST

Suite *bounds_suite(void)
{
    Suite *suite = suite_create("bounds");
    TCase *values = tcase_create("closed forms");
    tcase_add_test(values, test_bounds_known_values_on_the_identity);
    tcase_add_test(values, test_bounds_match_closed_forms_on_hand_made_scores);
    tcase_add_test(values, test_bounds_stay_exact_with_one_huge_score);
    tcase_add_test(values, test_bounds_of_equal_scores);
    suite_add_tcase(suite, values);

    TCase *properties = tcase_create("properties");
    tcase_set_timeout(properties, 60);
    tcase_add_test(properties, test_infonce_never_exceeds_log_n);
    tcase_add_test(properties, test_jsd_is_negative);
    tcase_add_test(properties, test_jsd_approaches_zero_from_below_as_the_pairs_separate);
    tcase_add_test(properties, test_dv_and_infonce_ignore_a_constant_added_to_every_score);
    tcase_add_test(properties, test_infonce_ignores_a_constant_per_row_and_dv_does_not);
    tcase_add_test(properties, test_jsd_changes_when_a_constant_is_added);
    tcase_add_test(properties, test_a_batch_of_problems_is_the_mean_of_its_problems);
    suite_add_tcase(suite, properties);

    TCase *table = tcase_create("table and misuse");
    tcase_add_test(table, test_the_table_holds_the_three_bounds_of_the_paper);
    tcase_add_test(table, test_the_state_starts_at_its_defaults);
    tcase_add_test(table, test_every_bound_of_the_table_gives_a_finite_scalar);
    tcase_add_test(table, test_misuse_stops_with_the_bound_and_the_shape);
    tcase_add_test(table, test_the_paper_bounds_refuse_null_scores);
    suite_add_tcase(suite, table);
    return suite;
}
