/* test_gemm.c -- ag_gemm (doc/12-ops-linalg.nw) against a naive triple loop.
 *
 * Random shapes around and across the block sizes (micro-tiles of 12 x 8, blocks of depth 256,
 * 144 rows and 1024 columns), every transpose combination, alpha and beta including 0, leading
 * dimensions larger than the rows they hold (whose padding must be left untouched); beta = 0
 * ignoring NaN in C; alpha = 0 not reading A and B; bit-identical results on one thread and on
 * several; and the errors for misuse. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../src/autograd/ag.h"
#include "suites.h"

/* ---------------------------------------------------------------------------------------- */
/* Matrices with padding: rows of `columns` values, `ld` apart.                              */
/* ---------------------------------------------------------------------------------------- */

typedef struct matrix {
    int rows, columns, ld;
    ag_real *values; /* [rows * ld]; entries at column >= columns are padding */
} matrix;

static const ag_real PADDING_SENTINEL = (ag_real)-12345.5;

static matrix matrix_new(int rows, int columns, int extra, ag_rng *rng)
{
    matrix x = { rows, columns, columns + extra, NULL };
    x.values = malloc((size_t)rows * (size_t)x.ld * sizeof(ag_real));
    ck_assert_ptr_nonnull(x.values);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < x.ld; j++)
            x.values[(long)i * x.ld + j] =
                j < columns ? (ag_real)(2 * ag_rng_uniform(rng) - 1) : PADDING_SENTINEL;
    return x;
}

/* op(x)[i][p] */
static double op_at(const matrix *x, int trans, int i, int p)
{
    return trans ? x->values[(long)p * x->ld + i] : x->values[(long)i * x->ld + p];
}

/* ---------------------------------------------------------------------------------------- */
/* The reference: a triple loop in double, and a bound on the rounding error of the float or  */
/* double result: |computed - exact| <= (k + 3) eps (|alpha| sum |a||b| + |beta c|).          */
/* ---------------------------------------------------------------------------------------- */

static double unit_roundoff(void) { return sizeof(ag_real) == sizeof(float) ? FLT_EPSILON : DBL_EPSILON; }

/* Compare C after ag_gemm with the exact product from A, B and the old C (c0); the padding of
 * C must be unchanged. Returns the number of bad entries (and reports the first). */
static int check_against_naive(int ta, int tb, int m, int n, int k, double alpha,
                               const matrix *A, const matrix *B, double beta, const matrix *c0,
                               const matrix *C, const char *what)
{
    int bad = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < C->ld; j++) {
            double got = C->values[(long)i * C->ld + j];
            if (j >= n) {
                if (got != PADDING_SENTINEL && bad++ == 0)
                    fprintf(stderr, "%s: padding C[%d][%d] changed to %g\n", what, i, j, got);
                continue;
            }
            double sum = 0, magnitude = 0;
            for (int p = 0; p < k; p++) {
                double term = op_at(A, ta, i, p) * op_at(B, tb, p, j);
                sum += term;
                magnitude += fabs(term);
            }
            double old = c0->values[(long)i * c0->ld + j];
            double exact = alpha * sum + (beta != 0 ? beta * old : 0);
            double bound = (k + 3) * unit_roundoff() *
                               (fabs(alpha) * magnitude + (beta != 0 ? fabs(beta * old) : 0)) +
                           1e-300;
            if (!(fabs(got - exact) <= bound) && bad++ == 0)
                fprintf(stderr, "%s: C[%d][%d] = %.9g, expected %.9g (error bound %.3g)\n", what,
                        i, j, got, exact, bound);
        }
    }
    return bad;
}

/* One random product: returns the number of wrong entries. */
static int run_one(ag_rng *rng, int ta, int tb, int m, int n, int k, double alpha, double beta,
                   int extra)
{
    matrix A = ta ? matrix_new(k, m, extra, rng) : matrix_new(m, k, extra, rng);
    matrix B = tb ? matrix_new(n, k, extra, rng) : matrix_new(k, n, extra, rng);
    matrix C = matrix_new(m, n, extra, rng);
    matrix c0 = C;
    c0.values = malloc((size_t)m * (size_t)C.ld * sizeof(ag_real));
    memcpy(c0.values, C.values, (size_t)m * (size_t)C.ld * sizeof(ag_real));
    ag_gemm(ta, tb, m, n, k, (ag_real)alpha, A.values, A.ld, B.values, B.ld, (ag_real)beta,
            C.values, C.ld);
    char what[160];
    snprintf(what, sizeof what, "ag_gemm(trans_a %d, trans_b %d, m %d, n %d, k %d, alpha %g, "
             "beta %g, leading dimensions +%d)", ta, tb, m, n, k, alpha, beta, extra);
    int bad = check_against_naive(ta, tb, m, n, k, alpha, &A, &B, beta, &c0, &C, what);
    free(A.values);
    free(B.values);
    free(C.values);
    free(c0.values);
    return bad;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_gemm_matches_naive_loop_on_small_shapes)
{
    /* Every shape from 1 to 13 in each dimension would be 2197 x 4 products; take a spread. */
    static const int sizes[] = { 1, 2, 5, 7, 8, 9, 12, 13 };
    static const double betas[] = { 0, 1, 0.5 };
    ag_rng rng;
    ag_rng_seed(&rng, 12);
    int bad = 0, runs = 0;
    for (int im = 0; im < 8; im++)
        for (int in = 0; in < 8; in++)
            for (int ik = 0; ik < 8; ik += 3) {
                int trans = (im + in + ik) % 4;
                double beta = betas[(im + 2 * in + ik) % 3];
                bad += run_one(&rng, trans & 1, trans >> 1 & 1, sizes[im], sizes[in], sizes[ik],
                               1.0, beta, (im + in) % 3);
                runs++;
            }
    ck_assert_msg(bad == 0, "%d wrong entries in %d small products (first one reported above)",
                  bad, runs);
}
END_TEST

START_TEST(test_gemm_matches_naive_loop_across_block_sizes)
{
    /* m across MC = 144 and MR = 12, k across KC = 256, n across NC = 1024 and NR = 8. */
    static const struct { int m, n, k; } shapes[] = {
        { 145, 37, 257 }, { 150, 9, 300 }, { 25, 1030, 20 }, { 64, 48, 513 },
        { 1, 1025, 3 }, { 300, 1, 260 }, { 13, 17, 256 }, { 144, 16, 512 },
    };
    static const double alphas[] = { 1, -0.5, 2 }, betas[] = { 0, 1, 0.5 };
    ag_rng rng;
    ag_rng_seed(&rng, 1024);
    int bad = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (int trans = 0; trans < 4; trans++)
            bad += run_one(&rng, trans & 1, trans >> 1 & 1, shapes[s].m, shapes[s].n, shapes[s].k,
                           alphas[(s + trans) % 3], betas[(s + 2 * trans) % 3], (s + trans) % 3);
    ck_assert_msg(bad == 0, "%d wrong entries in products across the block sizes", bad);
}
END_TEST

START_TEST(test_gemm_beta_zero_ignores_nan_in_c)
{
    ag_rng rng;
    ag_rng_seed(&rng, 3);
    for (int k = 1; k <= 300; k += 299) { /* one depth block, and two */
        matrix A = matrix_new(20, k, 0, &rng), B = matrix_new(k, 11, 0, &rng);
        matrix C = matrix_new(20, 11, 0, &rng), c0 = matrix_new(20, 11, 0, &rng);
        for (int i = 0; i < 20 * 11; i++) C.values[i] = (ag_real)NAN;
        ag_gemm(0, 0, 20, 11, k, 1, A.values, A.ld, B.values, B.ld, 0, C.values, C.ld);
        for (int i = 0; i < 20 * 11; i++)
            ck_assert_msg(isfinite(C.values[i]), "beta = 0, k = %d: C[%d] is %g, the NaN leaked",
                          k, i, (double)C.values[i]);
        ck_assert_int_eq(check_against_naive(0, 0, 20, 11, k, 1, &A, &B, 0, &c0, &C, "NaN in C"),
                         0);
        free(A.values);
        free(B.values);
        free(C.values);
        free(c0.values);
    }
}
END_TEST

START_TEST(test_gemm_alpha_zero_only_scales_c)
{
    ag_real A[6], B[6], C[4] = { 1, 2, 3, 4 };
    for (int i = 0; i < 6; i++) A[i] = B[i] = (ag_real)NAN; /* must not be read */
    ag_gemm(0, 0, 2, 2, 3, 0, A, 3, B, 2, (ag_real)0.5, C, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(C[i] == (ag_real)(0.5 * (i + 1)), "alpha = 0: C[%d] = %g, expected %g", i,
                      (double)C[i], 0.5 * (i + 1));
    ag_real D[4] = { (ag_real)NAN, (ag_real)NAN, (ag_real)NAN, (ag_real)NAN };
    ag_gemm(1, 1, 2, 2, 0, 1, A, 2, B, 1, 0, D, 2); /* k = 0, beta = 0: zeros */
    for (int i = 0; i < 4; i++)
        ck_assert_msg(D[i] == 0, "k = 0, beta = 0: D[%d] = %g, expected 0", i, (double)D[i]);
}
END_TEST

START_TEST(test_gemm_same_bits_for_any_thread_count)
{
#ifdef _OPENMP
    /* Large enough to run threaded, with edges in every dimension and two depth blocks. */
    int m = 301, n = 203, k = 517;
    ag_rng rng;
    ag_rng_seed(&rng, 77);
    for (int trans = 0; trans < 4; trans++) {
        int ta = trans & 1, tb = trans >> 1 & 1;
        matrix A = ta ? matrix_new(k, m, 1, &rng) : matrix_new(m, k, 1, &rng);
        matrix B = tb ? matrix_new(n, k, 0, &rng) : matrix_new(k, n, 0, &rng);
        matrix C1 = matrix_new(m, n, 2, &rng);
        size_t bytes = (size_t)m * (size_t)C1.ld * sizeof(ag_real);
        ag_real *C2 = malloc(bytes), *C3 = malloc(bytes);
        memcpy(C2, C1.values, bytes);
        memcpy(C3, C1.values, bytes);
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        ag_gemm(ta, tb, m, n, k, (ag_real)0.75, A.values, A.ld, B.values, B.ld, (ag_real)0.5,
                C1.values, C1.ld);
        omp_set_num_threads(2);
        ag_gemm(ta, tb, m, n, k, (ag_real)0.75, A.values, A.ld, B.values, B.ld, (ag_real)0.5, C2,
                C1.ld);
        omp_set_num_threads(3);
        ag_gemm(ta, tb, m, n, k, (ag_real)0.75, A.values, A.ld, B.values, B.ld, (ag_real)0.5, C3,
                C1.ld);
        omp_set_num_threads(threads);
        ck_assert_msg(memcmp(C1.values, C2, bytes) == 0,
                      "trans %d %d: 1 and 2 threads gave different bits", ta, tb);
        ck_assert_msg(memcmp(C1.values, C3, bytes) == 0,
                      "trans %d %d: 1 and 3 threads gave different bits", ta, tb);
        free(A.values);
        free(B.values);
        free(C1.values);
        free(C2);
        free(C3);
    }
#endif
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Misuse is fatal, with a message that names the argument.                                  */
/* ---------------------------------------------------------------------------------------- */

static jmp_buf error_jump;
static char error_message[512];

static void catch_error(const char *message)
{
    snprintf(error_message, sizeof error_message, "%s", message);
    longjmp(error_jump, 1);
}

/* 1 when the call stopped with ag_fatal and a message containing needle. */
#define FAILS_WITH(statement, needle)                                                  \
    do {                                                                               \
        ag_error_fn previous_handler = ag_set_error_handler(catch_error);              \
        error_message[0] = '\0';                                                       \
        if (setjmp(error_jump) == 0) {                                                 \
            statement;                                                                 \
            ag_set_error_handler(previous_handler);                                    \
            ck_abort_msg("expected ag_fatal from %s, but it returned", #statement);    \
        }                                                                              \
        ag_set_error_handler(previous_handler);                                        \
        ck_assert_msg(strstr(error_message, needle) != NULL,                           \
                      "message \"%s\" should mention \"%s\"", error_message, needle);  \
    } while (0)

START_TEST(test_gemm_rejects_bad_arguments)
{
    ag_real A[12] = { 0 }, B[12] = { 0 }, C[12] = { 0 };
    FAILS_WITH(ag_gemm(0, 0, 3, 4, 3, 1, A, 2, B, 4, 0, C, 4), "lda = 2");
    FAILS_WITH(ag_gemm(1, 0, 3, 4, 3, 1, A, 2, B, 4, 0, C, 4), "lda = 2");
    FAILS_WITH(ag_gemm(0, 1, 3, 4, 3, 1, A, 3, B, 2, 0, C, 4), "ldb = 2");
    FAILS_WITH(ag_gemm(0, 0, 3, 4, 3, 1, A, 3, B, 4, 0, C, 3), "ldc = 3");
    FAILS_WITH(ag_gemm(0, 0, -1, 4, 3, 1, A, 3, B, 4, 0, C, 4), "negative");
}
END_TEST

Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gemm_matches_naive_loop_on_small_shapes);
    tcase_add_test(tc, test_gemm_matches_naive_loop_across_block_sizes);
    tcase_add_test(tc, test_gemm_beta_zero_ignores_nan_in_c);
    tcase_add_test(tc, test_gemm_alpha_zero_only_scales_c);
    tcase_add_test(tc, test_gemm_same_bits_for_any_thread_count);
    tcase_add_test(tc, test_gemm_rejects_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
