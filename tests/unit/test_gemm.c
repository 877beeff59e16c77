/* test_gemm.c -- ag_gemm (doc/12-ops-linalg.nw) against a naive triple loop.
 *
 * Random shapes around and across the block sizes (micro-tiles of 6 x 16 floats or 6 x 8
 * doubles, blocks of depth 256, 144 rows and 4096 columns), every transpose combination, alpha
 * and beta including 0, leading dimensions larger than the rows they hold (whose padding must be
 * left untouched); the edges: k = 1, m below the tile's 6 rows, n below its width, depths that
 * are not a multiple of the 8 steps of the vector transpose; beta = 0 ignoring NaN in C;
 * alpha = 0 not reading A and B; bit-identical results on 1, 2 and 3 threads, on shapes with
 * one block of rows (the linear layers at batch 64) and with many; one-row and one-column
 * products, which skip the tiles, with the bits the tiles give; and the errors for misuse.
 * Also conv2d, whose unrolling (im2col) and folding (col2im) live in the same chapter, against
 * a direct loop, forward and backward, and bit-identical across thread counts. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../src/autograd/ag.h"
#include "fatal.h"
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

static double unit_roundoff(void)
{
    return sizeof(ag_real) == sizeof(float) ? FLT_EPSILON : DBL_EPSILON;
}

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
    /* m across MC = 144 and MR = 6, k across KC = 256, n across NR = 16. */
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

/* Runs one product on 1, 2 and 3 threads (when OpenMP is on) and checks that the three results
 * have the same bytes, and that the first matches the naive loop. Returns the failures. */
static int same_bits_on_1_2_3_threads(ag_rng *rng, int ta, int tb, int m, int n, int k,
                                      double alpha, double beta, int extra)
{
    matrix A = ta ? matrix_new(k, m, extra, rng) : matrix_new(m, k, extra, rng);
    matrix B = tb ? matrix_new(n, k, extra + 1, rng) : matrix_new(k, n, extra + 1, rng);
    matrix C = matrix_new(m, n, extra + 2, rng);
    size_t bytes = (size_t)m * (size_t)C.ld * sizeof(ag_real);
    ag_real *results[3];
    int failures = 0;
    char what[200];
    snprintf(what, sizeof what, "ag_gemm(trans_a %d, trans_b %d, m %d, n %d, k %d, alpha %g, "
             "beta %g, leading dimensions +%d)", ta, tb, m, n, k, alpha, beta, extra);
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#endif
    for (int t = 0; t < 3; t++) {
        results[t] = malloc(bytes);
        ck_assert_ptr_nonnull(results[t]);
        memcpy(results[t], C.values, bytes);
#ifdef _OPENMP
        omp_set_num_threads(t + 1);
#endif
        ag_gemm(ta, tb, m, n, k, (ag_real)alpha, A.values, A.ld, B.values, B.ld, (ag_real)beta,
                results[t], C.ld);
    }
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    for (int t = 1; t < 3; t++)
        if (memcmp(results[0], results[t], bytes) != 0 && failures++ == 0)
            fprintf(stderr, "%s: 1 and %d threads gave different bits\n", what, t + 1);
    matrix got = C;
    got.values = results[0];
    failures += check_against_naive(ta, tb, m, n, k, alpha, &A, &B, beta, &C, &got, what);
    for (int t = 0; t < 3; t++) free(results[t]);
    free(A.values);
    free(B.values);
    free(C.values);
    return failures;
}

START_TEST(test_gemm_same_bits_for_any_thread_count)
{
    /* Each large enough to run threaded (2mnk >= 2e6), with edges in every dimension. */
    static const struct { int m, n, k; } shapes[] = {
        { 301, 203, 517 },  /* edges everywhere, three depth blocks */
        { 64, 1000, 700 },  /* one block of rows: the threads split the columns */
        { 128, 300, 1030 }, /* one block of rows, a last sliver of A with 2 rows */
        { 5, 2100, 300 },   /* fewer rows than a tile */
        { 1000, 7, 300 },   /* fewer columns than a tile: the threads split the rows */
        { 2000, 1100, 1 },  /* k = 1 */
        { 150, 4110, 20 },  /* two blocks of columns (NC = 4096), two blocks of rows */
        { 290, 33, 263 },   /* two row blocks and a bit; depth not a multiple of 8 */
        { 3000, 1, 700 },   /* one column: blocks of rows, one per task */
        { 1, 2500, 600 },   /* one row: blocks of 1024 columns */
    };
    static const double alphas[] = { 1, -0.75, 2 }, betas[] = { 0, 1, 0.5 };
    ag_rng rng;
    ag_rng_seed(&rng, 77);
    int bad = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (int trans = 0; trans < 4; trans++)
            bad += same_bits_on_1_2_3_threads(&rng, trans & 1, trans >> 1 & 1, shapes[s].m,
                                              shapes[s].n, shapes[s].k, alphas[(s + trans) % 3],
                                              betas[(s + 2 * trans) % 3], (s + trans) % 3);
    ck_assert_msg(bad == 0, "%d failures (thread counts disagreeing or wrong entries, first "
                  "reported above)", bad);
}
END_TEST

/* C with one row (m = 1) or one column (n = 1) takes a path of its own; each entry must have
 * the bits the tiles give it. The same buffers with m = 2 (or n = 2) go through the tiles, and
 * their first row (column) is compared with the one-row (one-column) product. */
static int one_row_or_column_as_tiles(ag_rng *rng, int ta, int tb, int rows, int size, int k,
                                      double alpha, double beta)
{
    int m = rows ? 2 : size, n = rows ? size : 2;
    matrix A = ta ? matrix_new(k, m, 1, rng) : matrix_new(m, k, 1, rng);
    matrix B = tb ? matrix_new(n, k, 2, rng) : matrix_new(k, n, 2, rng);
    matrix C = matrix_new(m, n, 3, rng);
    size_t bytes = (size_t)m * (size_t)C.ld * sizeof(ag_real);
    ag_real *tiles = malloc(bytes), *vector = malloc(bytes);
    ck_assert_ptr_nonnull(tiles);
    ck_assert_ptr_nonnull(vector);
    memcpy(tiles, C.values, bytes);
    memcpy(vector, C.values, bytes);
    ag_gemm(ta, tb, m, n, k, (ag_real)alpha, A.values, A.ld, B.values, B.ld, (ag_real)beta,
            tiles, C.ld);
    ag_gemm(ta, tb, rows ? 1 : m, rows ? n : 1, k, (ag_real)alpha, A.values, A.ld, B.values,
            B.ld, (ag_real)beta, vector, C.ld);
    int bad = 0;
    for (int e = 0; e < size; e++) {
        long at = rows ? e : (long)e * C.ld;
        if (memcmp(&tiles[at], &vector[at], sizeof(ag_real)) != 0 && bad++ == 0)
            fprintf(stderr, "ag_gemm(trans_a %d, trans_b %d, k %d, alpha %g, beta %g): entry %d "
                    "of the one-%s product is %.9g, the tiles gave %.9g\n", ta, tb, k, alpha,
                    beta, e, rows ? "row" : "column", (double)vector[at], (double)tiles[at]);
    }
    free(tiles);
    free(vector);
    free(A.values);
    free(B.values);
    free(C.values);
    return bad;
}

START_TEST(test_gemm_one_row_or_column_has_the_bits_of_the_tiles)
{
    static const int sizes[] = { 2, 17, 1030 }, depths[] = { 1, 9, 256, 300, 700 };
    static const double alphas[] = { 1, -0.75 }, betas[] = { 0, 1, 0.5 };
    ag_rng rng;
    ag_rng_seed(&rng, 8);
    int bad = 0, runs = 0;
    for (int rows = 0; rows < 2; rows++)
        for (int s = 0; s < 3; s++)
            for (int d = 0; d < 5; d++)
                for (int trans = 0; trans < 4; trans++, runs++)
                    bad += one_row_or_column_as_tiles(&rng, trans & 1, trans >> 1 & 1, rows,
                                                      sizes[s], depths[d], alphas[runs % 2],
                                                      betas[runs % 3]);
    ck_assert_msg(bad == 0, "%d entries of one-row or one-column products differ from the "
                  "tiles' (first one reported above)", bad);
}
END_TEST

START_TEST(test_gemm_matches_naive_loop_at_the_edges)
{
    /* Single-threaded sizes: k = 1 and 2; depths 7, 8, 9, 15, 17 around the 8-step transpose;
     * m 1..7 around the 6-row tile; n 15, 16, 17 around the 16-float tile. */
    static const struct { int m, n, k; } shapes[] = {
        { 7, 17, 1 }, { 6, 16, 2 }, { 1, 1, 9 }, { 5, 15, 8 }, { 13, 33, 7 }, { 12, 32, 16 },
        { 2, 40, 17 }, { 19, 3, 15 }, { 3, 100, 64 }, { 70, 4, 33 },
    };
    static const double alphas[] = { 1, 0.5, -3 }, betas[] = { 0, 1, -0.25 };
    ag_rng rng;
    ag_rng_seed(&rng, 6);
    int bad = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (int trans = 0; trans < 4; trans++)
            bad += run_one(&rng, trans & 1, trans >> 1 & 1, shapes[s].m, shapes[s].n, shapes[s].k,
                           alphas[(s + trans) % 3], betas[(s + 3 * trans) % 3], (s + trans) % 3);
    ck_assert_msg(bad == 0, "%d wrong entries in products at the edges of the tiles", bad);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* conv2d against a direct loop: y, and the gradients of x, w and b for a random seed dy.    */
/* ---------------------------------------------------------------------------------------- */

typedef struct conv_case {
    int N, C, H, W, O, KH, KW, stride, padding;
} conv_case;

typedef struct conv_result {
    ag_real *y, *dx, *dw, *db; /* [N,O,OH,OW], [N,C,H,W], [O,C,KH,KW], [O]; malloc'd copies */
    long ny, nx, nw;
} conv_result;

static ag_real *copy_of(const ag_real *values, long n)
{
    ag_real *copy = malloc((size_t)n * sizeof(ag_real));
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, values, (size_t)n * sizeof(ag_real));
    return copy;
}

/* conv2d forward and backward (seed dy) on the given values, with `threads` threads. */
static conv_result conv_run(const conv_case *c, const ag_real *x, const ag_real *w,
                            const ag_real *b, const ag_real *dy, int threads)
{
#ifdef _OPENMP
    int before = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    ag_tape *t = ag_tape_new_growing((size_t)1 << 30);
    ag_tensor *tx = ag_tensor_from(t, AG_SHAPE(c->N, c->C, c->H, c->W), x);
    ag_tensor *tw = ag_tensor_from(t, AG_SHAPE(c->O, c->C, c->KH, c->KW), w);
    ag_tensor *tb = ag_tensor_from(t, AG_SHAPE(c->O), b);
    tx->requires_grad = tw->requires_grad = tb->requires_grad = 1;
    ag_tensor *y = ag_conv2d(t, tx, tw, tb, c->stride, c->padding);
    ag_backward_vjp(t, y, dy);
    conv_result r = { copy_of(y->value, y->size), copy_of(tx->grad, tx->size),
                      copy_of(tw->grad, tw->size), copy_of(tb->grad, c->O), y->size, tx->size,
                      tw->size };
    ag_tape_free(t);
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
    return r;
}

static void conv_result_free(conv_result *r)
{
    free(r->y);
    free(r->dx);
    free(r->dw);
    free(r->db);
}

/* |got - exact| within a float-sized tolerance of the sum of the terms' magnitudes. */
static int conv_close(double got, double exact, double magnitude)
{
    return fabs(got - exact) <= 64 * unit_roundoff() * (magnitude + 1e-30) + 1e-300;
}

/* Checks r against direct loops over the definition; returns the number of wrong values. */
static int conv_check(const conv_case *c, const ag_real *x, const ag_real *w, const ag_real *b,
                      const ag_real *dy, const conv_result *r)
{
    int OH = (c->H + 2 * c->padding - c->KH) / c->stride + 1;
    int OW = (c->W + 2 * c->padding - c->KW) / c->stride + 1;
    long nx = r->nx, nw = r->nw;
    double *dx = calloc((size_t)nx, sizeof(double)), *dxm = calloc((size_t)nx, sizeof(double));
    double *dw = calloc((size_t)nw, sizeof(double)), *dwm = calloc((size_t)nw, sizeof(double));
    int bad = 0;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int u = 0; u < OH; u++)
                for (int v = 0; v < OW; v++) {
                    long yi = (((long)n * c->O + o) * OH + u) * OW + v;
                    double sum = b[o], magnitude = fabs(b[o]), g = dy[yi];
                    for (int ch = 0; ch < c->C; ch++)
                        for (int i = 0; i < c->KH; i++)
                            for (int j = 0; j < c->KW; j++) {
                                int h = u * c->stride - c->padding + i;
                                int col = v * c->stride - c->padding + j;
                                if (h < 0 || h >= c->H || col < 0 || col >= c->W) continue;
                                long xi = (((long)n * c->C + ch) * c->H + h) * c->W + col;
                                long wi = (((long)o * c->C + ch) * c->KH + i) * c->KW + j;
                                sum += w[wi] * x[xi];
                                magnitude += fabs(w[wi] * x[xi]);
                                dx[xi] += w[wi] * g;
                                dxm[xi] += fabs(w[wi] * g);
                                dw[wi] += x[xi] * g;
                                dwm[wi] += fabs(x[xi] * g);
                            }
                    if (!conv_close(r->y[yi], sum, magnitude) && bad++ == 0)
                        fprintf(stderr, "conv2d: y[%ld] = %.9g, expected %.9g\n", yi,
                                (double)r->y[yi], sum);
                }
    for (long i = 0; i < nx; i++)
        if (!conv_close(r->dx[i], dx[i], dxm[i]) && bad++ == 0)
            fprintf(stderr, "conv2d: dx[%ld] = %.9g, expected %.9g\n", i, (double)r->dx[i],
                    dx[i]);
    for (long i = 0; i < nw; i++)
        if (!conv_close(r->dw[i], dw[i], dwm[i]) && bad++ == 0)
            fprintf(stderr, "conv2d: dw[%ld] = %.9g, expected %.9g\n", i, (double)r->dw[i],
                    dw[i]);
    for (int o = 0; o < c->O; o++) {
        double sum = 0, magnitude = 0;
        for (int n = 0; n < c->N; n++)
            for (int l = 0; l < OH * OW; l++) {
                double g = dy[((long)n * c->O + o) * OH * OW + l];
                sum += g;
                magnitude += fabs(g);
            }
        if (!conv_close(r->db[o], sum, magnitude) && bad++ == 0)
            fprintf(stderr, "conv2d: db[%d] = %.9g, expected %.9g\n", o, (double)r->db[o], sum);
    }
    free(dx);
    free(dxm);
    free(dw);
    free(dwm);
    return bad;
}

START_TEST(test_conv2d_matches_direct_loop_and_thread_counts)
{
    static const conv_case cases[] = {
        { 2, 3, 9, 8, 4, 3, 3, 1, 1 },     /* 3x3, padding 1 */
        { 3, 2, 10, 7, 5, 4, 4, 2, 1 },    /* the encoder's 4x4, stride 2, padding 1 */
        { 2, 4, 7, 7, 6, 1, 1, 1, 0 },     /* pointwise: 1x1, stride 1, no padding */
        { 1, 2, 6, 5, 3, 3, 2, 2, 2 },     /* padding wider than the stride, a 3x2 filter */
        { 2, 3, 5, 6, 2, 1, 1, 2, 0 },     /* 1x1 at stride 2: not pointwise */
        { 1, 1, 4, 4, 2, 4, 4, 1, 0 },     /* the filter is the whole image */
        { 8, 16, 14, 14, 32, 4, 4, 2, 1 }, /* large enough to run threaded */
        { 8, 64, 7, 7, 48, 1, 1, 1, 0 },   /* pointwise, threaded */
    };
    ag_rng rng;
    ag_rng_seed(&rng, 2024);
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        const conv_case *c = &cases[k];
        int OH = (c->H + 2 * c->padding - c->KH) / c->stride + 1;
        int OW = (c->W + 2 * c->padding - c->KW) / c->stride + 1;
        long nx = (long)c->N * c->C * c->H * c->W, nw = (long)c->O * c->C * c->KH * c->KW;
        long ny = (long)c->N * c->O * OH * OW;
        ag_real *x = malloc((size_t)nx * sizeof(ag_real));
        ag_real *w = malloc((size_t)nw * sizeof(ag_real));
        ag_real *b = malloc((size_t)c->O * sizeof(ag_real));
        ag_real *dy = malloc((size_t)ny * sizeof(ag_real));
        for (long i = 0; i < nx; i++) x[i] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
        for (long i = 0; i < nw; i++) w[i] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
        for (int i = 0; i < c->O; i++) b[i] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
        for (long i = 0; i < ny; i++) dy[i] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
        conv_result one = conv_run(c, x, w, b, dy, 1), three = conv_run(c, x, w, b, dy, 3);
        int bad = conv_check(c, x, w, b, dy, &one);
        ck_assert_msg(bad == 0, "case %d (x [%d,%d,%d,%d], w [%d,%d,%d,%d], stride %d, padding "
                      "%d): %d wrong values (first above)", k, c->N, c->C, c->H, c->W, c->O,
                      c->C, c->KH, c->KW, c->stride, c->padding, bad);
        ck_assert_msg(memcmp(one.y, three.y, (size_t)ny * sizeof(ag_real)) == 0
                      && memcmp(one.dx, three.dx, (size_t)nx * sizeof(ag_real)) == 0
                      && memcmp(one.dw, three.dw, (size_t)nw * sizeof(ag_real)) == 0
                      && memcmp(one.db, three.db, (size_t)c->O * sizeof(ag_real)) == 0,
                      "case %d: 1 and 3 threads gave different bits", k);
        conv_result_free(&one);
        conv_result_free(&three);
        free(x);
        free(w);
        free(b);
        free(dy);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Misuse is fatal, with a message that names the argument.                                  */
/* ---------------------------------------------------------------------------------------- */

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
    tcase_add_test(tc, test_gemm_matches_naive_loop_at_the_edges);
    tcase_add_test(tc, test_gemm_one_row_or_column_has_the_bits_of_the_tiles);
    tcase_add_test(tc, test_conv2d_matches_direct_loop_and_thread_counts);
    tcase_add_test(tc, test_gemm_rejects_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
