/* gemm.c -- the matrix product C = alpha op(A) op(B) + beta C: packed, blocked, threaded.
 * Tangled from doc/12-ops-linalg.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef AG_USE_CBLAS
#include <cblas.h>
#ifdef AG_DOUBLE
#define CBLAS_GEMM cblas_dgemm
#else
#define CBLAS_GEMM cblas_sgemm
#endif
#else
enum {
    MR = 6,                         /* rows of a micro-tile */
    VL = 32 / (int)sizeof(ag_real), /* reals in one 256-bit vector: 8 floats or 4 doubles */
    NR = 2 * VL,                    /* columns of a micro-tile: two vectors */
    KC = 256,                       /* depth of a block: a KC x NR sliver of B stays in L1 */
    MC = 144,                       /* rows of a block of A: MC x KC stays in L2 (MC % MR == 0) */
    NC = 4096                       /* columns of a block of B: KC x NC, shared by the threads */
};
enum {
    SLIVERS_PER_TASK = 128 / NR,       /* B slivers in one task: 128 columns */
    FUSED_SLIVERS_PER_TASK = 256 / NR  /* B slivers packed and used by one task: 256 columns */
};
static const double GEMM_PARALLEL_MIN_FLOPS = 2e6; /* 2mnk below this: one thread */
#if defined(__AVX2__) && defined(__FMA__)
#define GEMM_AVX2 1
#include <immintrin.h>
#ifdef AG_DOUBLE
typedef __m256d vec; /* VL doubles */
#define VEC_LOAD(p) _mm256_loadu_pd(p)
#define VEC_STORE(p, v) _mm256_storeu_pd(p, v)
#define VEC_BROADCAST(p) _mm256_broadcast_sd(p)
#define VEC_SET(x) _mm256_set1_pd(x)
#define VEC_ZERO() _mm256_setzero_pd()
#define VEC_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VEC_MUL(a, b) _mm256_mul_pd(a, b)
#define VEC_ADD(a, b) _mm256_add_pd(a, b)
#else
typedef __m256 vec; /* VL floats */
#define VEC_LOAD(p) _mm256_loadu_ps(p)
#define VEC_STORE(p, v) _mm256_storeu_ps(p, v)
#define VEC_BROADCAST(p) _mm256_broadcast_ss(p)
#define VEC_SET(x) _mm256_set1_ps(x)
#define VEC_ZERO() _mm256_setzero_ps()
#define VEC_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VEC_MUL(a, b) _mm256_mul_ps(a, b)
#define VEC_ADD(a, b) _mm256_add_ps(a, b)
#endif
#endif

#ifdef GEMM_AVX2 /* ask for the cache line holding p (a hint: it never faults) */
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define PREFETCH(p) ((void)(p))
#endif
#if defined(AG_DOUBLE) && defined(FP_FAST_FMA)
#define MULTIPLY_ADD(a, b, c) fma(a, b, c)
#elif !defined(AG_DOUBLE) && defined(FP_FAST_FMAF)
#define MULTIPLY_ADD(a, b, c) fmaf(a, b, c)
#else
#define MULTIPLY_ADD(a, b, c) ((a) * (b) + (c))
#endif
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
#ifdef GEMM_AVX2
/* c[0 .. NR-1] = alpha t + beta c, t being the two vectors lo, hi; c is not read if !read_c. */
static inline void store_row(ag_real *c, vec lo, vec hi, vec alpha, vec beta, int read_c)
{
    lo = VEC_MUL(alpha, lo);
    hi = VEC_MUL(alpha, hi);
    if (read_c) {
        lo = VEC_ADD(lo, VEC_MUL(beta, VEC_LOAD(c)));
        hi = VEC_ADD(hi, VEC_MUL(beta, VEC_LOAD(c + VL)));
    }
    VEC_STORE(c, lo);
    VEC_STORE(c + VL, hi);
}

/* C = alpha T + beta C on a whole MR x NR tile of C, rows ldc apart, where T[i][j] is the sum
 * over p < kc of a[p*MR + i] * b[p*NR + j] in the order p = 0, 1, ...; beta == 0: C is not
 * read. a: a packed MR x kc sliver of A; b: a packed kc x NR sliver of B; kc >= 1. */
static void micro_kernel(int kc, const ag_real *restrict a, const ag_real *restrict b,
                         ag_real alpha, ag_real beta, ag_real *restrict c, long ldc)
{
    vec t00 = VEC_ZERO(), t01 = VEC_ZERO(), t10 = VEC_ZERO(), t11 = VEC_ZERO();
    vec t20 = VEC_ZERO(), t21 = VEC_ZERO(), t30 = VEC_ZERO(), t31 = VEC_ZERO();
    vec t40 = VEC_ZERO(), t41 = VEC_ZERO(), t50 = VEC_ZERO(), t51 = VEC_ZERO();
    for (int i = 0; i < MR; i++) PREFETCH(c + i * ldc); /* the tile of C, wanted at the end */
    for (int p = 0; p < kc; p++) {
        vec b0 = VEC_LOAD(b), b1 = VEC_LOAD(b + VL), ai;
        ai = VEC_BROADCAST(a + 0); t00 = VEC_FMA(ai, b0, t00); t01 = VEC_FMA(ai, b1, t01);
        ai = VEC_BROADCAST(a + 1); t10 = VEC_FMA(ai, b0, t10); t11 = VEC_FMA(ai, b1, t11);
        ai = VEC_BROADCAST(a + 2); t20 = VEC_FMA(ai, b0, t20); t21 = VEC_FMA(ai, b1, t21);
        ai = VEC_BROADCAST(a + 3); t30 = VEC_FMA(ai, b0, t30); t31 = VEC_FMA(ai, b1, t31);
        ai = VEC_BROADCAST(a + 4); t40 = VEC_FMA(ai, b0, t40); t41 = VEC_FMA(ai, b1, t41);
        ai = VEC_BROADCAST(a + 5); t50 = VEC_FMA(ai, b0, t50); t51 = VEC_FMA(ai, b1, t51);
        a += MR;
        b += NR;
    }
    vec va = VEC_SET(alpha), vb = VEC_SET(beta);
    int read_c = beta != 0;
    store_row(c + 0 * ldc, t00, t01, va, vb, read_c);
    store_row(c + 1 * ldc, t10, t11, va, vb, read_c);
    store_row(c + 2 * ldc, t20, t21, va, vb, read_c);
    store_row(c + 3 * ldc, t30, t31, va, vb, read_c);
    store_row(c + 4 * ldc, t40, t41, va, vb, read_c);
    store_row(c + 5 * ldc, t50, t51, va, vb, read_c);
}
#else
/* As the vector kernel above: C = alpha T + beta C on a whole MR x NR tile. */
static void micro_kernel(int kc, const ag_real *restrict a, const ag_real *restrict b,
                         ag_real alpha, ag_real beta, ag_real *restrict c, long ldc)
{
    ag_real ab[MR * NR]; /* the tile T, row-major */
#pragma omp simd
    for (int j = 0; j < NR; j++) {
        ag_real c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0;
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
            ap += MR;
            bp += NR;
        } while (++p < kc);
        ab[0 * NR + j] = c0;  ab[1 * NR + j] = c1;  ab[2 * NR + j] = c2;
        ab[3 * NR + j] = c3;  ab[4 * NR + j] = c4;  ab[5 * NR + j] = c5;
    }
    store_tile(MR, NR, ab, alpha, beta, c, ldc);
}
#endif
/* C = alpha a b + beta C on the rows x cols part of a tile that lies inside C. */
static void multiply_tile(int kc, const ag_real *a, const ag_real *b, int rows, int cols,
                          ag_real alpha, ag_real beta, ag_real *c, long ldc)
{
    if (rows == MR && cols == NR) {
        micro_kernel(kc, a, b, alpha, beta, c, ldc);
    } else {
        ag_real ab[MR * NR]; /* the tile, row-major */
        micro_kernel(kc, a, b, 1, 0, ab, NR);
        store_tile(rows, cols, ab, alpha, beta, c, ldc);
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
#if defined(GEMM_AVX2) && !defined(AG_DOUBLE)
#define GEMM_TRANSPOSE_8X8 1
/* dst[t*W + r] = src[r*ld + t] for t < 8 and r < rows, rows being 6 or 8: eight steps of
 * `rows` columns of a sliver, moved by one 8 x 8 transpose in registers (missing rows zero). */
static inline void transpose_into_sliver(const float *src, long ld, int rows, float *dst, int W)
{
    __m256 zero = _mm256_setzero_ps();
    __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    __m256 r6 = rows > 6 ? _mm256_loadu_ps(src + 6 * ld) : zero;
    __m256 r7 = rows > 7 ? _mm256_loadu_ps(src + 7 * ld) : zero;
    /* pairs: u0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5], and so on */
    __m256 u0 = _mm256_unpacklo_ps(r0, r1), u1 = _mm256_unpackhi_ps(r0, r1);
    __m256 u2 = _mm256_unpacklo_ps(r2, r3), u3 = _mm256_unpackhi_ps(r2, r3);
    __m256 u4 = _mm256_unpacklo_ps(r4, r5), u5 = _mm256_unpackhi_ps(r4, r5);
    __m256 u6 = _mm256_unpacklo_ps(r6, r7), u7 = _mm256_unpackhi_ps(r6, r7);
    /* quadruples: s0 = r0..r3 at step 0 | r0..r3 at step 4, and so on */
    __m256 s0 = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(u4, u6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(u4, u6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(u5, u7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(u5, u7, _MM_SHUFFLE(3, 2, 3, 2));
    /* halves: step t of rows 0..7 */
    __m256 steps[8] = {
        _mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
        _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
        _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
        _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31),
    };
    for (int t = 0; t < 8; t++) {
        if (rows == 8) {
            _mm256_storeu_ps(dst + t * W, steps[t]);
        } else { /* six numbers: four, then two */
            _mm_storeu_ps(dst + t * W, _mm256_castps256_ps128(steps[t]));
            _mm_storel_pi((__m64 *)(dst + t * W + 4), _mm256_extractf128_ps(steps[t], 1));
        }
    }
}
#endif

/* As pack_rows, for a matrix whose element (p, j) is src[j*ld + p]. */
static void pack_columns(int kc, int width, int W, const ag_real *src, long ld, int q0, int q1,
                         ag_real *restrict packed)
{
    for (int q = q0; q < q1; q++) {
        int cols = width - q * W < W ? width - q * W : W;
        ag_real *restrict dst = packed + (long)q * W * kc;
        const ag_real *sliver = src + (long)q * W * ld;
        int p_done = 0; /* steps already packed by the vector transpose */
#ifdef GEMM_TRANSPOSE_8X8
        if (cols == W && (W == NR || W == MR)) {
            for (; p_done + 8 <= kc; p_done += 8)
                for (int j = 0; j < W; j += 8)
                    transpose_into_sliver(sliver + j * ld + p_done, ld, W - j < 8 ? W - j : 8,
                                          dst + p_done * W + j, W);
        }
#endif
        for (int p0 = p_done; p0 < kc; p0 += 16) {
            int p1 = p0 + 16 < kc ? p0 + 16 : kc;
            for (int j = 0; j < cols; j++)
                for (int p = p0; p < p1; p++) dst[p * W + j] = sliver[j * ld + p];
        }
        for (int p = 0; cols < W && p < kc; p++) /* a last, narrower sliver: pad with zeros */
            for (int j = cols; j < W; j++) dst[p * W + j] = 0;
    }
}
/* The rows i0 .. i0+mc-1 of op(A) at depth p0 .. p0+kc-1, as slivers from `packed` on. */
static void pack_a_block(int trans_a, const ag_real *A, long lda, int i0, int mc, int p0, int kc,
                         ag_real *packed)
{
    int slivers = (mc + MR - 1) / MR;
    if (trans_a) pack_rows(kc, mc, MR, A + (long)p0 * lda + i0, lda, 0, slivers, packed);
    else pack_columns(kc, mc, MR, A + (long)i0 * lda + p0, lda, 0, slivers, packed);
}

/* Slivers q0..q1-1 of the block of op(B) with columns j0 .. j0+nc-1, depth p0 .. p0+kc-1. */
static void pack_b_slivers(int trans_b, const ag_real *B, long ldb, int j0, int nc, int p0,
                           int kc, int q0, int q1, ag_real *packed)
{
    if (trans_b) pack_columns(kc, nc, NR, B + (long)j0 * ldb + p0, ldb, q0, q1, packed);
    else pack_rows(kc, nc, NR, B + (long)p0 * ldb + j0, ldb, q0, q1, packed);
}
/* C (mc x nc, rows ldc apart) = alpha A_block B_slivers + beta C for the packed block of A
 * (mc rows, kc deep) and the slivers q0..q1-1 of the packed kc x nc block of B. */
static void multiply_task(int mc, int nc, int kc, int q0, int q1, const ag_real *a_block,
                          const ag_real *b_block, ag_real alpha, ag_real beta, ag_real *C,
                          long ldc)
{
    int a_slivers = (mc + MR - 1) / MR;
    for (int q = q0; q < q1; q++) {
        int cols = nc - q * NR < NR ? nc - q * NR : NR;
        const ag_real *b = b_block + (long)q * NR * kc;
        for (int r = 0; r < a_slivers; r++) {
            int rows = mc - r * MR < MR ? mc - r * MR : MR;
            if (r + 1 < a_slivers) { /* the next tile down, while this one is computed */
                int next_rows = mc - (r + 1) * MR < MR ? mc - (r + 1) * MR : MR;
                const ag_real *next = C + (long)(r + 1) * MR * ldc + (long)q * NR;
                for (int i = 0; i < next_rows; i++) {
                    PREFETCH(next + i * ldc);
                    PREFETCH(next + i * ldc + cols - 1); /* a second line, if the row has one */
                }
            }
            multiply_tile(kc, a_block + (long)r * MR * kc, b, rows, cols, alpha, beta,
                          C + (long)r * MR * ldc + (long)q * NR, ldc);
        }
    }
}
/* The number of threads running the enclosing parallel region (1 outside, or without OpenMP). */
static int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* B slivers per task when `row_blocks` blocks of rows share `b_slivers` slivers: about four
 * tasks per thread, at least one sliver and at most `most` in a task. Both paths split so. */
static int slivers_per_task(int row_blocks, int b_slivers, int most)
{
    int per_task = row_blocks * b_slivers / (4 * team_size());
    return per_task < 1 ? 1 : per_task > most ? most : per_task;
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
    int nc_max = n < NC ? n : NC, kc_max = k < KC ? k : KC, row_blocks = (m + MC - 1) / MC;
    ag_real *a_panel = packing_buffer((size_t)((m + MR - 1) / MR) * MR * kc_max); /* m x kc */
    ag_real *b_block = row_blocks == 1 ? NULL /* few rows: each thread packs its own slivers */
                       : packing_buffer((size_t)((nc_max + NR - 1) / NR) * NR * kc_max);
#pragma omp parallel if (2.0 * m * n * k >= GEMM_PARALLEL_MIN_FLOPS)
    {
        ag_real *own = row_blocks == 1 /* this thread's packed slivers, for few rows */
                           ? packing_buffer((size_t)FUSED_SLIVERS_PER_TASK * NR * kc_max)
                           : NULL;
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = k - p0 < KC ? k - p0 : KC;
            ag_real beta_here = p0 == 0 ? beta : 1; /* later blocks add to the first */
            for (int j0 = 0; j0 < n; j0 += NC) {
                int nc = n - j0 < NC ? n - j0 : NC, b_slivers = (nc + NR - 1) / NR;
                if (row_blocks == 1) {
                    int per_task = slivers_per_task(1, b_slivers, FUSED_SLIVERS_PER_TASK);
                    int tasks = (b_slivers + per_task - 1) / per_task;
                    if (j0 == 0) {
                    #pragma omp single
                        pack_a_block(trans_a, A, lda, 0, m, p0, kc, a_panel);
                    }
                    #pragma omp for schedule(dynamic)
                    for (int g = 0; g < tasks; g++) { /* columns j.. as a block of their own */
                        int q0 = g * per_task, j = j0 + q0 * NR, cols = j0 + nc - j;
                        int slivers = b_slivers - q0 < per_task ? b_slivers - q0 : per_task;
                        pack_b_slivers(trans_b, B, ldb, j, cols, p0, kc, 0, slivers, own);
                        multiply_task(m, cols, kc, 0, slivers, a_panel, own, alpha, beta_here,
                                      C + j, ldc);
                    }
                } else {
                    int per_task = slivers_per_task(row_blocks, b_slivers, SLIVERS_PER_TASK);
                    int b_tasks = (b_slivers + per_task - 1) / per_task;
                    int a_tasks = j0 == 0 ? row_blocks : 0; /* A's panel: once per depth block */
                    #pragma omp for schedule(dynamic)
                    for (int t = 0; t < a_tasks + b_tasks; t++) {
                        if (t < a_tasks) {
                            int i0 = t * MC, mc = m - i0 < MC ? m - i0 : MC;
                            pack_a_block(trans_a, A, lda, i0, mc, p0, kc, a_panel + (long)i0 * kc);
                        } else {
                            int q0 = (t - a_tasks) * per_task;
                            int q1 = q0 + per_task < b_slivers ? q0 + per_task : b_slivers;
                            pack_b_slivers(trans_b, B, ldb, j0, nc, p0, kc, q0, q1, b_block);
                        }
                    }
                    #pragma omp for collapse(2) schedule(dynamic)
                    for (int ib = 0; ib < row_blocks; ib++) {
                        for (int g = 0; g < b_tasks; g++) {
                            int i0 = ib * MC, mc = m - i0 < MC ? m - i0 : MC;
                            int q0 = g * per_task;
                            int q1 = q0 + per_task < b_slivers ? q0 + per_task : b_slivers;
                            multiply_task(mc, nc, kc, q0, q1, a_panel + (long)i0 * kc, b_block,
                                          alpha, beta_here, C + (long)i0 * ldc + j0, ldc);
                        }
                    }
                }
            }
        }
        free(own);
    }
    free(a_panel);
    free(b_block);
}
enum { /* entries of C whose running sums advance together, when x is read ... */
    VECTOR_BLOCK = 1024,       /* ... along the block: whole rows of 4 KiB at most */
    VECTOR_BLOCK_STRIDED = 8   /* ... across rows: a few rows, each its own stream */
};
#ifdef GEMM_AVX2 /* the vector kernel always fuses; so must this path */
#ifdef AG_DOUBLE
#define TILE_MULTIPLY_ADD(a, b, c) fma(a, b, c)
#else
#define TILE_MULTIPLY_ADD(a, b, c) fmaf(a, b, c)
#endif
#else
#define TILE_MULTIPLY_ADD(a, b, c) MULTIPLY_ADD(a, b, c)
#endif

/* C = alpha op(A) op(B) + beta C when m == 1 or n == 1, with the arithmetic of the tiles.
 * Entry e of the block is C[e * ce]; op(A) op(B)'s term p of it is x[e * xe + p * xp] times
 * y[p * yp], x being the operand that varies along the block (B for a row, A for a column). */
static void gemm_vector(int entries, int k, ag_real alpha, const ag_real *x, long xe, long xp,
                        const ag_real *y, long yp, ag_real beta, ag_real *C, long ce)
{
    int size = xe == 1 ? VECTOR_BLOCK : VECTOR_BLOCK_STRIDED;
    int blocks = (entries + size - 1) / size;
#pragma omp parallel for schedule(static) if (2.0 * entries * k >= GEMM_PARALLEL_MIN_FLOPS)
    for (int block = 0; block < blocks; block++) {
        int e0 = block * size;
        int count = entries - e0 < size ? entries - e0 : size;
        const ag_real *xb = x + e0 * xe;
        ag_real *cb = C + e0 * ce;
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = k - p0 < KC ? k - p0 : KC;
            ag_real beta_here = p0 == 0 ? beta : 1, t[VECTOR_BLOCK]; /* [count] */
            for (int e = 0; e < count; e++) t[e] = 0;
            for (int p = p0; p < p0 + kc; p++) {
                ag_real yp_value = y[p * yp];
                const ag_real *xp_column = xb + p * xp;
#pragma omp simd
                for (int e = 0; e < count; e++)
                    t[e] = TILE_MULTIPLY_ADD(xp_column[e * xe], yp_value, t[e]);
            }
            if (beta_here == 0)
                for (int e = 0; e < count; e++) cb[e * ce] = alpha * t[e];
            else
                for (int e = 0; e < count; e++) cb[e * ce] = alpha * t[e] + beta_here * cb[e * ce];
        }
    }
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
    if (n == 1) /* a column: entry i is row i of op(A) times op(B) */
        gemm_vector(m, k, alpha, A, trans_a ? 1 : lda, trans_a ? lda : 1, B, trans_b ? 1 : ldb,
                    beta, C, ldc);
    else if (m == 1) /* a row: entry j is op(A) times column j of op(B) */
        gemm_vector(n, k, alpha, B, trans_b ? ldb : 1, trans_b ? 1 : ldb, A, trans_a ? lda : 1,
                    beta, C, 1);
    else
        gemm_blocked(trans_a != 0, trans_b != 0, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
