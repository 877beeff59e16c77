/* cases_shape.c -- gradient-check cases of the operations on shapes (doc/14-ops-shape.nw).
 *
 * reshape to several shapes (with an inferred -1, and to and from a scalar); permute of 2-D
 * (ag_transpose), 3-D and 4-D tensors; concat of two to five tensors along every axis, with
 * one input unchecked (needing no gradient) and one tensor given twice; broadcast from
 * [2, 1, 3], [3], a scalar and the tiling of a code Y [N, D, 1, 1] over an M x M grid. */
#include "gradcheck.h"

/* One apply function per variant: the op under test with its attributes fixed. */
#define APPLY(name, call) \
    static ag_tensor *name(ag_tape *t, ag_tensor **in) { return call; }

/* A case with one input, checked, uniform in [-2, 2]; the shape is the trailing arguments. */
#define ONE_INPUT(op_, what_, apply_, ndim_, ...)                                         \
    { .op = op_, .what = what_, .ninputs = 1, .ndim = { ndim_ }, .shape = { { __VA_ARGS__ } }, \
      .lo = -2, .hi = 2, .check_mask = 1, .apply = apply_ }

/* A case with two inputs of the same rank, both checked; the shapes are the trailing
 * arguments, as two braced lists. */
#define TWO_INPUTS(op_, what_, apply_, ndim_, ...)                                        \
    { .op = op_, .what = what_, .ninputs = 2, .ndim = { ndim_, ndim_ },                  \
      .shape = { __VA_ARGS__ }, .lo = -2, .hi = 2, .check_mask = 3, .apply = apply_ }

APPLY(reshape_6x4, ag_reshape(t, in[0], AG_SHAPE(6, 4)))
APPLY(reshape_24, ag_reshape(t, in[0], AG_SHAPE(24)))
APPLY(reshape_4xinferred, ag_reshape(t, in[0], AG_SHAPE(4, -1)))
APPLY(reshape_3x8, ag_reshape(t, in[0], AG_SHAPE(3, 8)))
APPLY(reshape_1x3x1, ag_reshape(t, in[0], AG_SHAPE(1, 3, 1)))
APPLY(reshape_1x1, ag_reshape(t, in[0], AG_SHAPE(1, 1)))
APPLY(reshape_scalar, ag_reshape(t, in[0], 0, NULL))
APPLY(reshape_flatten_features, ag_reshape(t, in[0], AG_SHAPE(2, -1)))

APPLY(transpose_2d, ag_transpose(t, in[0]))
APPLY(permute_0, ag_permute(t, in[0], (const int[]){ 0 }))
APPLY(permute_201, ag_permute(t, in[0], (const int[]){ 2, 0, 1 }))
APPLY(permute_102, ag_permute(t, in[0], (const int[]){ 1, 0, 2 }))
APPLY(permute_021, ag_permute(t, in[0], (const int[]){ 0, 2, 1 }))
APPLY(permute_210, ag_permute(t, in[0], (const int[]){ 2, 1, 0 }))
APPLY(permute_120, ag_permute(t, in[0], (const int[]){ 1, 2, 0 }))
APPLY(permute_0231, ag_permute(t, in[0], (const int[]){ 0, 2, 3, 1 }))
APPLY(permute_3102, ag_permute(t, in[0], (const int[]){ 3, 1, 0, 2 }))
APPLY(permute_1032, ag_permute(t, in[0], (const int[]){ 1, 0, 3, 2 }))
APPLY(permute_2301, ag_permute(t, in[0], (const int[]){ 2, 3, 0, 1 }))

APPLY(concat2_axis0, ag_concat(t, 2, in, 0))
APPLY(concat2_axis1, ag_concat(t, 2, in, 1))
APPLY(concat2_axis2, ag_concat(t, 2, in, 2))
APPLY(concat2_axis3, ag_concat(t, 2, in, 3))
APPLY(concat2_axis_last, ag_concat(t, 2, in, -1))
APPLY(concat3_axis1, ag_concat(t, 3, in, 1))
APPLY(concat5_axis0, ag_concat(t, 5, in, 0))
APPLY(concat1_axis0, ag_concat(t, 1, in, 0))
APPLY(concat_twice, ag_concat(t, 2, (ag_tensor *const[]){ in[0], in[0] }, 1))

APPLY(broadcast_2x4x3, ag_broadcast_to(t, in[0], AG_SHAPE(2, 4, 3)))
APPLY(broadcast_5x2x4x3, ag_broadcast_to(t, in[0], AG_SHAPE(5, 2, 4, 3)))
APPLY(broadcast_tile_grid, ag_broadcast_to(t, in[0], AG_SHAPE(2, 3, 4, 4)))
APPLY(broadcast_2x3, ag_broadcast_to(t, in[0], AG_SHAPE(2, 3)))
APPLY(broadcast_2x2, ag_broadcast_to(t, in[0], AG_SHAPE(2, 2)))
APPLY(broadcast_2x4x5, ag_broadcast_to(t, in[0], AG_SHAPE(2, 4, 5)))
APPLY(broadcast_2x1x4x3, ag_broadcast_to(t, in[0], AG_SHAPE(2, 1, 4, 3)))
APPLY(broadcast_3x4, ag_broadcast_to(t, in[0], AG_SHAPE(3, 4)))

const gc_case gc_cases_shape[] = {
    ONE_INPUT("reshape", "[2,3,4] -> [6,4]", reshape_6x4, 3, 2, 3, 4),
    ONE_INPUT("reshape", "[2,3,4] -> [24]", reshape_24, 3, 2, 3, 4),
    ONE_INPUT("reshape", "[2,3,4] -> [4,-1]", reshape_4xinferred, 3, 2, 3, 4),
    ONE_INPUT("reshape", "[2,3,2,2] -> [3,8]", reshape_3x8, 4, 2, 3, 2, 2),
    ONE_INPUT("reshape", "[2,3,2,2] -> [2,-1] (flatten)", reshape_flatten_features,
              4, 2, 3, 2, 2),
    ONE_INPUT("reshape", "[3] -> [1,3,1]", reshape_1x3x1, 1, 3),
    ONE_INPUT("reshape", "scalar [] -> [1,1]", reshape_1x1, 0, 0),
    ONE_INPUT("reshape", "[1] -> scalar []", reshape_scalar, 1, 1),

    ONE_INPUT("permute", "[3,5] ag_transpose", transpose_2d, 2, 3, 5),
    ONE_INPUT("permute", "[1,4] ag_transpose", transpose_2d, 2, 1, 4),
    ONE_INPUT("permute", "[4] (0)", permute_0, 1, 4),
    ONE_INPUT("permute", "[2,3,4] (2,0,1)", permute_201, 3, 2, 3, 4),
    ONE_INPUT("permute", "[2,3,4] (1,0,2)", permute_102, 3, 2, 3, 4),
    ONE_INPUT("permute", "[2,3,4] (0,2,1)", permute_021, 3, 2, 3, 4),
    ONE_INPUT("permute", "[2,3,4] (2,1,0)", permute_210, 3, 2, 3, 4),
    ONE_INPUT("permute", "[2,3,4] (1,2,0)", permute_120, 3, 2, 3, 4),
    ONE_INPUT("permute", "[2,3,4,5] (0,2,3,1) NCHW -> NHWC", permute_0231, 4, 2, 3, 4, 5),
    ONE_INPUT("permute", "[2,3,4,5] (3,1,0,2)", permute_3102, 4, 2, 3, 4, 5),
    ONE_INPUT("permute", "[2,3,4,5] (1,0,3,2)", permute_1032, 4, 2, 3, 4, 5),
    ONE_INPUT("permute", "[2,3,2,2] (2,3,0,1) [N,C,M,M] -> [M,M,N,C]", permute_2301,
              4, 2, 3, 2, 2),

    TWO_INPUTS("concat", "[1,3,4] + [2,3,4] axis 0", concat2_axis0, 3,
               { 1, 3, 4 }, { 2, 3, 4 }),
    TWO_INPUTS("concat", "[2,1,4] + [2,3,4] axis 1", concat2_axis1, 3,
               { 2, 1, 4 }, { 2, 3, 4 }),
    TWO_INPUTS("concat", "[2,3,2] + [2,3,5] axis 2", concat2_axis2, 3,
               { 2, 3, 2 }, { 2, 3, 5 }),
    TWO_INPUTS("concat", "[2,3,2] + [2,3,3] axis -1", concat2_axis_last, 3,
               { 2, 3, 2 }, { 2, 3, 3 }),
    TWO_INPUTS("concat", "[3,4] + [3,2] axis 1 (features and Y)", concat2_axis1, 2,
               { 3, 4 }, { 3, 2 }),
    TWO_INPUTS("concat", "[2,3] + [1,3] axis 0", concat2_axis0, 2, { 2, 3 }, { 1, 3 }),
    TWO_INPUTS("concat", "[2,2,3,2] + [2,2,3,1] axis 3", concat2_axis3, 4,
               { 2, 2, 3, 2 }, { 2, 2, 3, 1 }),
    TWO_INPUTS("concat", "[2,2,1,2] + [2,2,3,2] axis 2", concat2_axis2, 4,
               { 2, 2, 1, 2 }, { 2, 2, 3, 2 }),
    { .op = "concat", .what = "[2,3,2,2] + [2,1,2,2] + [2,2,2,2] axis 1 (tiled Y and features)",
      .ninputs = 3, .ndim = { 4, 4, 4 }, .shape = { { 2, 3, 2, 2 }, { 2, 1, 2, 2 }, { 2, 2, 2, 2 } },
      .lo = -2, .hi = 2, .check_mask = 7, .apply = concat3_axis1 },
    { .op = "concat", .what = "[2,1,2,2] + [2,2,2,2] + [2,3,2,2] axis 1, input 1 unchecked",
      .ninputs = 3, .ndim = { 4, 4, 4 }, .shape = { { 2, 1, 2, 2 }, { 2, 2, 2, 2 }, { 2, 3, 2, 2 } },
      .lo = -2, .hi = 2, .check_mask = 5, .apply = concat3_axis1 },
    { .op = "concat", .what = "five 1-D tensors [1]+[2]+[3]+[1]+[2] axis 0", .ninputs = 5,
      .ndim = { 1, 1, 1, 1, 1 }, .shape = { { 1 }, { 2 }, { 3 }, { 1 }, { 2 } },
      .lo = -2, .hi = 2, .check_mask = 31, .apply = concat5_axis0 },
    ONE_INPUT("concat", "one tensor [3,2] axis 0", concat1_axis0, 2, 3, 2),
    ONE_INPUT("concat", "[2,3] with itself axis 1", concat_twice, 2, 2, 3),

    ONE_INPUT("broadcast", "[2,1,3] -> [2,4,3]", broadcast_2x4x3, 3, 2, 1, 3),
    ONE_INPUT("broadcast", "[2,1,3] -> [5,2,4,3]", broadcast_5x2x4x3, 3, 2, 1, 3),
    ONE_INPUT("broadcast", "[3] -> [2,4,3]", broadcast_2x4x3, 1, 3),
    ONE_INPUT("broadcast", "[2,3,1,1] -> [2,3,4,4] (Y over the grid)", broadcast_tile_grid,
              4, 2, 3, 1, 1),
    ONE_INPUT("broadcast", "[1] -> [2,3]", broadcast_2x3, 1, 1),
    ONE_INPUT("broadcast", "[2,3] -> [2,3] (no change)", broadcast_2x3, 2, 2, 3),
    ONE_INPUT("broadcast", "scalar [] -> [2,2]", broadcast_2x2, 0, 0),
    ONE_INPUT("broadcast", "[4,1] -> [2,4,5]", broadcast_2x4x5, 2, 4, 1),
    ONE_INPUT("broadcast", "[1,1,3] -> [2,1,4,3]", broadcast_2x1x4x3, 3, 1, 1, 3),
    ONE_INPUT("broadcast", "[3,1] -> [3,4]", broadcast_3x4, 2, 3, 1),
    { 0 }
};
