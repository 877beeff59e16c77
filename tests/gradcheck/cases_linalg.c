/* cases_linalg.c -- gradient-check cases for matmul, linear and conv2d (doc/12-ops-linalg.nw).
 *
 * matmul: all four transpose combinations, non-square shapes, shapes larger than a 12 x 8
 * micro-tile (so that edge tiles are exercised), a vector product, and one tensor used as both
 * operands (x x^T), whose gradient is the sum of two terms. linear: with and without bias,
 * one row, several rows. conv2d: stride 1 and 2, padding 0, 1 and 2, kernels 1x1, 3x3, 4x4 and
 * a non-square 3x2, odd and non-square images, one to five channels, bias NULL and not, and an
 * input that needs no gradient (the images of a first layer). Every op is bilinear in its
 * inputs, so central differences are exact up to rounding. */
#include "gradcheck.h"

/* ---- the ops under test ----------------------------------------------------------------- */

static ag_tensor *apply_matmul_nn(ag_tape *t, ag_tensor **in)
{
    return ag_matmul(t, in[0], in[1], 0, 0);
}
static ag_tensor *apply_matmul_nt(ag_tape *t, ag_tensor **in)
{
    return ag_matmul(t, in[0], in[1], 0, 1);
}
static ag_tensor *apply_matmul_tn(ag_tape *t, ag_tensor **in)
{
    return ag_matmul(t, in[0], in[1], 1, 0);
}
static ag_tensor *apply_matmul_tt(ag_tape *t, ag_tensor **in)
{
    return ag_matmul(t, in[0], in[1], 1, 1);
}
static ag_tensor *apply_matmul_gram(ag_tape *t, ag_tensor **in)
{
    return ag_matmul(t, in[0], in[0], 0, 1);
}

static ag_tensor *apply_linear(ag_tape *t, ag_tensor **in)
{
    return ag_linear(t, in[0], in[1], in[2]);
}
static ag_tensor *apply_linear_no_bias(ag_tape *t, ag_tensor **in)
{
    return ag_linear(t, in[0], in[1], NULL);
}

static ag_tensor *apply_conv_s1_p0(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], in[2], 1, 0);
}
static ag_tensor *apply_conv_s1_p1(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], in[2], 1, 1);
}
static ag_tensor *apply_conv_s1_p2(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], in[2], 1, 2);
}
static ag_tensor *apply_conv_s2_p0(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], in[2], 2, 0);
}
static ag_tensor *apply_conv_s2_p1(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], in[2], 2, 1);
}
static ag_tensor *apply_conv_s1_p0_no_bias(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], NULL, 1, 0);
}
static ag_tensor *apply_conv_s1_p1_no_bias(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], NULL, 1, 1);
}
static ag_tensor *apply_conv_s2_p1_no_bias(ag_tape *t, ag_tensor **in)
{
    return ag_conv2d(t, in[0], in[1], NULL, 2, 1);
}

/* ---- the cases -------------------------------------------------------------------------- */

const gc_case gc_cases_linalg[] = {
    /* matmul: op(a) [M, K] op(b) [K, N] */
    {"matmul", "a b: a [3,4] b [4,5]", 2, {2, 2}, {{3, 4}, {4, 5}}, -1, 1, 3, NULL,
     apply_matmul_nn},
    {"matmul", "a b^T: a [3,4] b [5,4]", 2, {2, 2}, {{3, 4}, {5, 4}}, -1, 1, 3, NULL,
     apply_matmul_nt},
    {"matmul", "a^T b: a [4,3] b [4,5]", 2, {2, 2}, {{4, 3}, {4, 5}}, -1, 1, 3, NULL,
     apply_matmul_tn},
    {"matmul", "a^T b^T: [4,3] [5,4]", 2, {2, 2}, {{4, 3}, {5, 4}}, -1, 1, 3, NULL,
     apply_matmul_tt},
    {"matmul", "edge tiles: a [13,17] b [17,9]", 2, {2, 2}, {{13, 17}, {17, 9}}, -1, 1, 3, NULL,
     apply_matmul_nn},
    {"matmul", "edge tiles: a^T b^T, a [17,13] b [9,17]", 2, {2, 2}, {{17, 13}, {9, 17}}, -1, 1, 3,
     NULL, apply_matmul_tt},
    {"matmul", "row times column: [1,6] [6,1]", 2, {2, 2}, {{1, 6}, {6, 1}}, -1, 1, 3, NULL,
     apply_matmul_nn},
    {"matmul", "column times row: [5,1] [1,3]", 2, {2, 2}, {{5, 1}, {1, 3}}, -1, 1, 3, NULL,
     apply_matmul_nn},
    {"matmul", "gradient of a only: a [2,7] b^T, b [3,7]", 2, {2, 2}, {{2, 7}, {3, 7}}, -1, 1, 1,
     NULL, apply_matmul_nt},
    {"matmul", "gradient of b only: a^T b, a [7,2] b [7,3]", 2, {2, 2}, {{7, 2}, {7, 3}}, -1, 1, 2,
     NULL, apply_matmul_tn},
    {"matmul", "one tensor twice: x x^T, x [4,6]", 1, {2}, {{4, 6}}, -1, 1, 1, NULL,
     apply_matmul_gram},

    /* linear: x [N, in] W^T + b, W [out, in] */
    {"linear", "x [4,6] W [3,6] b [3]", 3, {2, 2, 1}, {{4, 6}, {3, 6}, {3}}, -1, 1, 7, NULL,
     apply_linear},
    {"linear", "no bias: x [4,6] W [3,6]", 2, {2, 2}, {{4, 6}, {3, 6}}, -1, 1, 3, NULL,
     apply_linear_no_bias},
    {"linear", "one row: x [1,5] W [7,5] b [7]", 3, {2, 2, 1}, {{1, 5}, {7, 5}, {7}}, -1, 1, 7,
     NULL, apply_linear},
    {"linear", "edge tiles: x [13,20] W [9,20] b [9]", 3, {2, 2, 1}, {{13, 20}, {9, 20}, {9}}, -1,
     1, 7, NULL, apply_linear},
    {"linear", "x needs no gradient: x [3,4] W [2,4] b [2]", 3, {2, 2, 1}, {{3, 4}, {2, 4}, {2}},
     -1, 1, 6, NULL, apply_linear},

    /* conv2d: x [N, C, H, W], w [O, C, KH, KW], b [O] */
    {"conv2d", "3x3 stride 1 padding 0: x [2,3,5,5] w [4,3,3,3]", 3, {4, 4, 1},
     {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}, -1, 1, 7, NULL, apply_conv_s1_p0},
    {"conv2d", "3x3 stride 1 padding 1: x [2,3,5,5] w [4,3,3,3]", 3, {4, 4, 1},
     {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}, -1, 1, 7, NULL, apply_conv_s1_p1},
    {"conv2d", "3x3 stride 2 padding 1, odd size: x [2,2,7,7] w [3,2,3,3]", 3, {4, 4, 1},
     {{2, 2, 7, 7}, {3, 2, 3, 3}, {3}}, -1, 1, 7, NULL, apply_conv_s2_p1},
    {"conv2d", "3x3 stride 2 padding 0, odd size: x [1,2,7,5] w [2,2,3,3]", 3, {4, 4, 1},
     {{1, 2, 7, 5}, {2, 2, 3, 3}, {2}}, -1, 1, 7, NULL, apply_conv_s2_p0},
    {"conv2d", "4x4 stride 2 padding 1 (the encoder's): x [2,2,8,8] w [3,2,4,4]", 3, {4, 4, 1},
     {{2, 2, 8, 8}, {3, 2, 4, 4}, {3}}, -1, 1, 7, NULL, apply_conv_s2_p1},
    {"conv2d", "4x4 stride 2 padding 1, odd size, no bias: x [1,3,7,7] w [2,3,4,4]", 2, {4, 4},
     {{1, 3, 7, 7}, {2, 3, 4, 4}}, -1, 1, 3, NULL, apply_conv_s2_p1_no_bias},
    {"conv2d", "1x1 (the local critics'): x [2,5,3,3] w [4,5,1,1] b [4]", 3, {4, 4, 1},
     {{2, 5, 3, 3}, {4, 5, 1, 1}, {4}}, -1, 1, 7, NULL, apply_conv_s1_p0},
    {"conv2d", "1x1 no bias: x [2,5,3,3] w [4,5,1,1]", 2, {4, 4}, {{2, 5, 3, 3}, {4, 5, 1, 1}},
     -1, 1, 3, NULL, apply_conv_s1_p0_no_bias},
    {"conv2d", "1x1 stride 2 padding 0: x [1,3,5,5] w [2,3,1,1] b [2]", 3, {4, 4, 1},
     {{1, 3, 5, 5}, {2, 3, 1, 1}, {2}}, -1, 1, 7, NULL, apply_conv_s2_p0},
    {"conv2d", "1x1 padding 1 (a zero border): x [1,2,3,3] w [3,2,1,1] b [3]", 3, {4, 4, 1},
     {{1, 2, 3, 3}, {3, 2, 1, 1}, {3}}, -1, 1, 7, NULL, apply_conv_s1_p1},
    {"conv2d", "3x2 kernel, non-square image, no bias: x [1,2,6,5] w [3,2,3,2]", 2, {4, 4},
     {{1, 2, 6, 5}, {3, 2, 3, 2}}, -1, 1, 3, NULL, apply_conv_s1_p1_no_bias},
    {"conv2d", "3x3 padding 2 wider than the image: x [1,1,2,2] w [2,1,3,3] b [2]", 3, {4, 4, 1},
     {{1, 1, 2, 2}, {2, 1, 3, 3}, {2}}, -1, 1, 7, NULL, apply_conv_s1_p2},
    {"conv2d", "kernel the size of the image: x [2,3,4,4] w [5,3,4,4] b [5]", 3, {4, 4, 1},
     {{2, 3, 4, 4}, {5, 3, 4, 4}, {5}}, -1, 1, 7, NULL, apply_conv_s1_p0},
    {"conv2d", "images need no gradient: x [2,1,6,6] w [3,1,4,4] b [3]", 3, {4, 4, 1},
     {{2, 1, 6, 6}, {3, 1, 4, 4}, {3}}, -1, 1, 6, NULL, apply_conv_s2_p1},
    {"conv2d", "only the images: x [1,4,5,5] w [2,4,3,3]", 2, {4, 4},
     {{1, 4, 5, 5}, {2, 4, 3, 3}}, -1, 1, 1, NULL, apply_conv_s1_p0_no_bias},
    {0},
};
