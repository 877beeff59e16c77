/* gemm.c -- the matrix product C = alpha op(A) op(B) + beta C: packed, blocked, threaded.
 * Tangled from doc/12-ops-linalg.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <stdlib.h>

#ifdef AG_USE_CBLAS
#include <cblas.h>
#ifdef AG_DOUBLE
#define CBLAS_GEMM cblas_dgemm
#else
#define CBLAS_GEMM cblas_sgemm
#endif
#else
enum {
    MR = 12,                        /* rows of a micro-tile: twelve running sums per lane */
    NR = 32 / (int)sizeof(ag_real), /* columns of a micro-tile: one 256-bit vector */
    KC = 256,                       /* depth of a block: a KC x NR sliver of B stays in L1 */
    MC = 144,                       /* rows of a block of A: MC x KC stays in L2 (MC % MR == 0) */
    NC = 1024                       /* columns of a block of B: KC x NC, shared by the threads */
};
enum { SLIVERS_PER_TASK = 16 }; /* B slivers in one task: 128 columns of floats */
static const double GEMM_PARALLEL_MIN_FLOPS = 2e6; /* 2mnk below this: one thread */
#if defined(AG_DOUBLE) && defined(FP_FAST_FMA)
#define MULTIPLY_ADD(a, b, c) fma(a, b, c)
#elif !defined(AG_DOUBLE) && defined(FP_FAST_FMAF)
#define MULTIPLY_ADD(a, b, c) fmaf(a, b, c)
#else
#define MULTIPLY_ADD(a, b, c) ((a) * (b) + (c))
#endif
/* ab[i*NR + j] = sum over p < kc of a[p*MR + i] * b[p*NR + j], in the order p = 0, 1, ...
 * a: a packed MR x kc sliver of A; b: a packed kc x NR sliver of B; kc >= 1. */
static void micro_kernel(int kc, const ag_real *restrict a, const ag_real *restrict b,
                         ag_real *restrict ab)
{
#pragma omp simd
    for (int j = 0; j < NR; j++) {
        ag_real c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0;
        ag_real c6 = 0, c7 = 0, c8 = 0, c9 = 0, c10 = 0, c11 = 0;
        const ag_real *ap = a, *bp = b + j;
        int p = 0;
        do {
            ag_real bpj = *bp;
            c0 = MULTIPLY_ADD(ap[0], bpj, c0);
            c1 = MULTIPLY_ADD(ap[1], bpj, c1);
            c2 = MULTIPLY_ADD(ap[2], bpj, c2);
            c3 = MULTIPLY_ADD(ap[3], bpj, c3);
            c4 = MULTIPLY_ADD(ap[4], bpj, c4);
            c5 = MULTIPLY_ADD(ap[5], bpj, c5);
            c6 = MULTIPLY_ADD(ap[6], bpj, c6);
            c7 = MULTIPLY_ADD(ap[7], bpj, c7);
            c8 = MULTIPLY_ADD(ap[8], bpj, c8);
            c9 = MULTIPLY_ADD(ap[9], bpj, c9);
            c10 = MULTIPLY_ADD(ap[10], bpj, c10);
            c11 = MULTIPLY_ADD(ap[11], bpj, c11);
            ap += MR;
            bp += NR;
        } while (++p < kc);
        ab[0 * NR + j] = c0;  ab[1 * NR + j] = c1;  ab[2 * NR + j] = c2;
        ab[3 * NR + j] = c3;  ab[4 * NR + j] = c4;  ab[5 * NR + j] = c5;
        ab[6 * NR + j] = c6;  ab[7 * NR + j] = c7;  ab[8 * NR + j] = c8;
        ab[9 * NR + j] = c9;  ab[10 * NR + j] = c10; ab[11 * NR + j] = c11;
    }
}
/* C = alpha ab + beta C on the rows x cols corner of a tile; C's rows are ldc apart. */
static inline void store_tile(int rows, int cols, const ag_real *restrict ab, ag_real alpha,
                              ag_real beta, ag_real *restrict c, long ldc)
{
    if (beta == 0) {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) c[i * ldc + j] = alpha * ab[i * NR + j];
    } else {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                c[i * ldc + j] = alpha * ab[i * NR + j] + beta * c[i * ldc + j];
    }
}
typedef struct { ag_real v[MR]; } a_sliver_row; /* one step of a packed A sliver */
typedef struct { ag_real v[NR]; } b_sliver_row; /* one step of a packed B sliver */

/* Slivers q0..q1-1, W wide and kc deep, of a matrix whose element (p, j) is src[p*ld + j]
 * and which has `width` columns: element (p, j) of sliver q goes to packed[(q*kc + p)*W + j]. */
static void pack_rows(int kc, int width, int W, const ag_real *src, long ld, int q0, int q1,
                      ag_real *restrict packed)
{
    for (int p0 = 0; p0 < kc; p0 += 4) {
        int p1 = p0 + 4 < kc ? p0 + 4 : kc;
        for (int q = q0; q < q1; q++) {
            int cols = width - q * W < W ? width - q * W : W;
            ag_real *restrict dst = packed + (long)q * W * kc;
            for (int p = p0; p < p1; p++) {
                const ag_real *row = src + p * ld + (long)q * W;
                if (cols == W && W == MR) {
                    *(a_sliver_row *)(dst + p * W) = *(const a_sliver_row *)row;
                } else if (cols == W && W == NR) {
                    *(b_sliver_row *)(dst + p * W) = *(const b_sliver_row *)row;
                } else {
                    for (int j = 0; j < cols; j++) dst[p * W + j] = row[j];
                    for (int j = cols; j < W; j++) dst[p * W + j] = 0;
                }
            }
        }
    }
}
/* As pack_rows, for a matrix whose element (p, j) is src[j*ld + p]. */
static void pack_columns(int kc, int width, int W, const ag_real *src, long ld, int q0, int q1,
                         ag_real *restrict packed)
{
    for (int q = q0; q < q1; q++) {
        int cols = width - q * W < W ? width - q * W : W;
        ag_real *restrict dst = packed + (long)q * W * kc;
        const ag_real *sliver = src + (long)q * W * ld;
        for (int p0 = 0; p0 < kc; p0 += 16) {
            int p1 = p0 + 16 < kc ? p0 + 16 : kc;
            for (int j = 0; j < cols; j++)
                for (int p = p0; p < p1; p++) dst[p * W + j] = sliver[j * ld + p];
        }
        for (int p = 0; p < kc; p++)
            for (int j = cols; j < W; j++) dst[p * W + j] = 0;
    }
}
static void pack_a_block(int trans_a, const ag_real *A, long lda, int i0, int mc, int p0, int kc,
                         ag_real *packed)
{
    int slivers = (mc + MR - 1) / MR;
    if (trans_a) pack_rows(kc, mc, MR, A + (long)p0 * lda + i0, lda, 0, slivers, packed);
    else pack_columns(kc, mc, MR, A + (long)i0 * lda + p0, lda, 0, slivers, packed);
}

static void pack_b_block(int trans_b, const ag_real *B, long ldb, int j0, int nc, int p0, int kc,
                         ag_real *packed)
{
    int slivers = (nc + NR - 1) / NR, groups = (slivers + SLIVERS_PER_TASK - 1) / SLIVERS_PER_TASK;
#pragma omp for schedule(dynamic)
    for (int g = 0; g < groups; g++) {
        int q0 = g * SLIVERS_PER_TASK;
        int q1 = q0 + SLIVERS_PER_TASK < slivers ? q0 + SLIVERS_PER_TASK : slivers;
        if (trans_b) pack_columns(kc, nc, NR, B + (long)j0 * ldb + p0, ldb, q0, q1, packed);
        else pack_rows(kc, nc, NR, B + (long)p0 * ldb + j0, ldb, q0, q1, packed);
    }
}
/* C (m x nc, rows ldc apart) = alpha op(A)[all rows, p0..p0+kc) B_block + beta C, for the
 * packed kc x nc block of B; a_block is the calling thread's buffer for a packed A block. */
static void multiply_blocks(int trans_a, const ag_real *A, long lda, int m, int nc, int kc,
                            int p0, ag_real *a_block, const ag_real *b_block, ag_real alpha,
                            ag_real beta, ag_real *C, long ldc)
{
    int row_blocks = (m + MC - 1) / MC, b_slivers = (nc + NR - 1) / NR;
    int groups = (b_slivers + SLIVERS_PER_TASK - 1) / SLIVERS_PER_TASK;
    int packed_rows = -1; /* the row block now in a_block */
#pragma omp for collapse(2) schedule(dynamic)
    for (int ib = 0; ib < row_blocks; ib++) {
        for (int g = 0; g < groups; g++) {
            int i0 = ib * MC, mc = m - i0 < MC ? m - i0 : MC, a_slivers = (mc + MR - 1) / MR;
            if (packed_rows != ib) {
                pack_a_block(trans_a, A, lda, i0, mc, p0, kc, a_block);
                packed_rows = ib;
            }
            int q0 = g * SLIVERS_PER_TASK;
            int q1 = q0 + SLIVERS_PER_TASK < b_slivers ? q0 + SLIVERS_PER_TASK : b_slivers;
            for (int q = q0; q < q1; q++) {
                for (int r = 0; r < a_slivers; r++) {
                    ag_real ab[MR * NR]; /* the tile, row-major */
                    micro_kernel(kc, a_block + (long)r * MR * kc, b_block + (long)q * NR * kc, ab);
                    int rows = mc - r * MR < MR ? mc - r * MR : MR;
                    int cols = nc - q * NR < NR ? nc - q * NR : NR;
                    ag_real *c = C + (long)(i0 + r * MR) * ldc + (long)q * NR;
                    if (rows == MR && cols == NR) store_tile(MR, NR, ab, alpha, beta, c, ldc);
                    else store_tile(rows, cols, ab, alpha, beta, c, ldc);
                }
            }
        }
    }
}
static ag_real *packing_buffer(size_t reals)
{
    void *buffer = NULL;
    if (posix_memalign(&buffer, 64, reals * sizeof(ag_real)) != 0)
        ag_fatal("ag_gemm: out of memory for a packing buffer of %zu values", reals);
    return buffer;
}

static void gemm_blocked(int trans_a, int trans_b, int m, int n, int k, ag_real alpha,
                         const ag_real *A, long lda, const ag_real *B, long ldb, ag_real beta,
                         ag_real *C, long ldc)
{
    int mc_max = m < MC ? m : MC, nc_max = n < NC ? n : NC, kc_max = k < KC ? k : KC;
    size_t a_reals = (size_t)((mc_max + MR - 1) / MR) * MR * kc_max;
    ag_real *b_block = packing_buffer((size_t)((nc_max + NR - 1) / NR) * NR * kc_max);
    double flops = 2.0 * m * n * k;
#pragma omp parallel if (flops >= GEMM_PARALLEL_MIN_FLOPS)
    {
        ag_real *a_block = packing_buffer(a_reals); /* this thread's */
        for (int j0 = 0; j0 < n; j0 += NC) {
            int nc = n - j0 < NC ? n - j0 : NC;
            for (int p0 = 0; p0 < k; p0 += KC) {
                int kc = k - p0 < KC ? k - p0 : KC;
                ag_real beta_here = p0 == 0 ? beta : 1; /* later blocks add to the first */
                pack_b_block(trans_b, B, ldb, j0, nc, p0, kc, b_block);
                multiply_blocks(trans_a, A, lda, m, nc, kc, p0, a_block, b_block, alpha,
                                beta_here, C + j0, ldc);
            }
        }
        free(a_block);
    }
    free(b_block);
}
#endif

static void check_gemm_arguments(int trans_a, int trans_b, int m, int n, int k, int lda,
                                 int ldb, int ldc)
{
    int a_columns = trans_a ? m : k, b_columns = trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0)
        ag_fatal("ag_gemm: sizes m = %d, n = %d, k = %d; none may be negative", m, n, k);
    if (lda < (a_columns > 1 ? a_columns : 1))
        ag_fatal("ag_gemm: lda = %d, but A%s has %d columns", lda, trans_a ? " (stored k x m)" : "",
                 a_columns);
    if (ldb < (b_columns > 1 ? b_columns : 1))
        ag_fatal("ag_gemm: ldb = %d, but B%s has %d columns", ldb, trans_b ? " (stored n x k)" : "",
                 b_columns);
    if (ldc < (n > 1 ? n : 1))
        ag_fatal("ag_gemm: ldc = %d, but C has %d columns", ldc, n);
}
static void scale_matrix(int m, int n, ag_real beta, ag_real *C, long ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
}
void ag_gemm(int trans_a, int trans_b, int m, int n, int k, ag_real alpha,
             const ag_real *A, int lda, const ag_real *B, int ldb, ag_real beta,
             ag_real *C, int ldc)
{
    check_gemm_arguments(trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0 || alpha == 0) {
        if (beta != 1) scale_matrix(m, n, beta, C, ldc);
        return;
    }
#ifdef AG_USE_CBLAS
    CBLAS_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
               trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    gemm_blocked(trans_a != 0, trans_b != 0, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
