/* cases_elementwise.c -- gradient-check cases for the elementwise ops (doc/11-ops-elementwise.nw).
 *
 * Every op gets several shapes. The binary ops get every broadcast pattern of the chapter: a row
 * against a matrix, both inputs repeated at once, one-element and rank-0 operands, and four
 * dimensions; a case that checks only one input also exercises the skip of an input that needs
 * no gradient. Inputs are kept where central differences with h = 1e-5 are meaningful: log and
 * the divisor away from 0, relu and leaky_relu away from their kink, softplus at +-50 as well as
 * at moderate values. */
#include "gradcheck.h"

/* ---- custom inputs ---------------------------------------------------------------------- */

/* Values with magnitude in [lo, hi] and a random sign: away from 0 by at least lo. */
static void fill_away_from_zero(ag_tensor *x, ag_rng *rng, double lo, double hi)
{
    for (long i = 0; i < x->size; i++) {
        double magnitude = lo + (hi - lo) * ag_rng_uniform(rng);
        x->value[i] = (ag_real)(ag_rng_uniform(rng) < 0.5 ? -magnitude : magnitude);
    }
}

/* relu and leaky_relu: every input at least 0.1 from the kink at 0. */
static void init_away_from_kink(ag_tensor **in, ag_rng *rng)
{
    fill_away_from_zero(in[0], rng, 0.1, 2.0);
}

/* div: a numerator of either sign, a divisor of either sign at least 0.5 from 0. */
static void init_quotient(ag_tensor **in, ag_rng *rng)
{
    ag_fill_uniform(in[0], rng, -2.0, 2.0);
    fill_away_from_zero(in[1], rng, 0.5, 2.0);
}

/* softplus far out on both sides: half the entries near +50, half near -50. */
static void init_plus_minus_fifty(ag_tensor **in, ag_rng *rng)
{
    for (long i = 0; i < in[0]->size; i++)
        in[0]->value[i] = (ag_real)((i % 2 ? -50.0 : 50.0) + (2 * ag_rng_uniform(rng) - 1));
}

/* sigmoid and softplus: a spread from -100 to 100, where naive formulas overflow in float. */
static void init_wide(ag_tensor **in, ag_rng *rng)
{
    for (long i = 0; i < in[0]->size; i++)
        in[0]->value[i] = (ag_real)(-100.0 + 200.0 * (double)i / (double)(in[0]->size - 1)
                                    + 0.1 * ag_rng_uniform(rng));
}

/* ---- the ops under test ----------------------------------------------------------------- */

static ag_tensor *apply_add(ag_tape *t, ag_tensor **in) { return ag_add(t, in[0], in[1]); }
static ag_tensor *apply_sub(ag_tape *t, ag_tensor **in) { return ag_sub(t, in[0], in[1]); }
static ag_tensor *apply_mul(ag_tape *t, ag_tensor **in) { return ag_mul(t, in[0], in[1]); }
static ag_tensor *apply_div(ag_tape *t, ag_tensor **in) { return ag_div(t, in[0], in[1]); }
static ag_tensor *apply_square(ag_tape *t, ag_tensor **in) { return ag_mul(t, in[0], in[0]); }
static ag_tensor *apply_self_sub(ag_tape *t, ag_tensor **in) { return ag_sub(t, in[0], in[0]); }
static ag_tensor *apply_scale(ag_tape *t, ag_tensor **in) { return ag_scale(t, in[0], -1.75); }
static ag_tensor *apply_add_scalar(ag_tape *t, ag_tensor **in) { return ag_add_scalar(t, in[0], 0.625); }
static ag_tensor *apply_neg(ag_tape *t, ag_tensor **in) { return ag_neg(t, in[0]); }
static ag_tensor *apply_exp(ag_tape *t, ag_tensor **in) { return ag_exp(t, in[0]); }
static ag_tensor *apply_log(ag_tape *t, ag_tensor **in) { return ag_log(t, in[0]); }
static ag_tensor *apply_relu(ag_tape *t, ag_tensor **in) { return ag_relu(t, in[0]); }
static ag_tensor *apply_leaky_relu(ag_tape *t, ag_tensor **in) { return ag_leaky_relu(t, in[0], 0.2); }
static ag_tensor *apply_leaky_relu_negative(ag_tape *t, ag_tensor **in)
{
    return ag_leaky_relu(t, in[0], -0.5);
}
static ag_tensor *apply_sigmoid(ag_tape *t, ag_tensor **in) { return ag_sigmoid(t, in[0]); }
static ag_tensor *apply_tanh(ag_tape *t, ag_tensor **in) { return ag_tanh(t, in[0]); }
static ag_tensor *apply_softplus(ag_tape *t, ag_tensor **in) { return ag_softplus(t, in[0]); }

/* ---- the cases -------------------------------------------------------------------------- */

const gc_case gc_cases_elementwise[] = {
    /* add: same layout, every broadcast pattern */
    {"add", "same shape [2,3]", 2, {2, 2}, {{2, 3}, {2, 3}}, -1, 1, 3, NULL, apply_add},
    {"add", "same shape [2,3,2,2]", 2, {4, 4}, {{2, 3, 2, 2}, {2, 3, 2, 2}}, -1, 1, 3, NULL, apply_add},
    {"add", "same layout [2,3] + [1,2,3]", 2, {2, 3}, {{2, 3}, {1, 2, 3}}, -1, 1, 3, NULL, apply_add},
    {"add", "broadcast [2,3] + [3]", 2, {2, 1}, {{2, 3}, {3}}, -1, 1, 3, NULL, apply_add},
    {"add", "broadcast [3] + [2,3]", 2, {1, 2}, {{3}, {2, 3}}, -1, 1, 3, NULL, apply_add},
    {"add", "broadcast [4,1,3] + [2,1], both repeated", 2, {3, 2}, {{4, 1, 3}, {2, 1}}, -1, 1, 3,
     NULL, apply_add},
    {"add", "broadcast [2,3,4,5] + [3,1,1] (a bias per channel)", 2, {4, 3},
     {{2, 3, 4, 5}, {3, 1, 1}}, -1, 1, 3, NULL, apply_add},
    {"add", "broadcast [1] + [2,3]", 2, {1, 2}, {{1}, {2, 3}}, -1, 1, 3, NULL, apply_add},
    {"add", "broadcast rank-0 scalar + [3,2]", 2, {0, 2}, {{0}, {3, 2}}, -1, 1, 3, NULL, apply_add},
    {"add", "broadcast [2,3] + [3], gradient of the row only", 2, {2, 1}, {{2, 3}, {3}}, -1, 1, 2,
     NULL, apply_add},

    /* sub */
    {"sub", "same shape [3,4]", 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1, 3, NULL, apply_sub},
    {"sub", "same shape [5]", 2, {1, 1}, {{5}, {5}}, -1, 1, 3, NULL, apply_sub},
    {"sub", "broadcast [2,3] - [3]", 2, {2, 1}, {{2, 3}, {3}}, -1, 1, 3, NULL, apply_sub},
    {"sub", "broadcast [2,1] - [1,3], both repeated", 2, {2, 2}, {{2, 1}, {1, 3}}, -1, 1, 3, NULL,
     apply_sub},
    {"sub", "broadcast [1] - [2,3]", 2, {1, 2}, {{1}, {2, 3}}, -1, 1, 3, NULL, apply_sub},
    {"sub", "broadcast [2,3,1,4] - [3,2,1], both repeated", 2, {4, 3},
     {{2, 3, 1, 4}, {3, 2, 1}}, -1, 1, 3, NULL, apply_sub},
    {"sub", "x - x, one tensor as both inputs", 1, {2}, {{2, 3}}, -1, 1, 1, NULL, apply_self_sub},

    /* mul */
    {"mul", "same shape [2,3]", 2, {2, 2}, {{2, 3}, {2, 3}}, -2, 2, 3, NULL, apply_mul},
    {"mul", "same shape [2,2,3,3]", 2, {4, 4}, {{2, 2, 3, 3}, {2, 2, 3, 3}}, -2, 2, 3, NULL, apply_mul},
    {"mul", "broadcast [2,3] * [3]", 2, {2, 1}, {{2, 3}, {3}}, -2, 2, 3, NULL, apply_mul},
    {"mul", "broadcast [4,1,3] * [2,1], both repeated", 2, {3, 2}, {{4, 1, 3}, {2, 1}}, -2, 2, 3,
     NULL, apply_mul},
    {"mul", "broadcast [2,3] * [1]", 2, {2, 1}, {{2, 3}, {1}}, -2, 2, 3, NULL, apply_mul},
    {"mul", "broadcast [2,1,3,1] * [1,4,1,2], every dim repeated", 2, {4, 4},
     {{2, 1, 3, 1}, {1, 4, 1, 2}}, -2, 2, 3, NULL, apply_mul},
    {"mul", "broadcast [3,4] * [4], gradient of the row only", 2, {2, 1}, {{3, 4}, {4}}, -2, 2, 2,
     NULL, apply_mul},
    {"mul", "x * x, one tensor as both inputs", 1, {2}, {{3, 2}}, -2, 2, 1, NULL, apply_square},

    /* div: divisors at least 0.5 from 0 */
    {"div", "same shape [2,3]", 2, {2, 2}, {{2, 3}, {2, 3}}, 0, 0, 3, init_quotient, apply_div},
    {"div", "same shape [2,2,2,3]", 2, {4, 4}, {{2, 2, 2, 3}, {2, 2, 2, 3}}, 0, 0, 3, init_quotient,
     apply_div},
    {"div", "broadcast [2,3] / [3]", 2, {2, 1}, {{2, 3}, {3}}, 0, 0, 3, init_quotient, apply_div},
    {"div", "broadcast [2,3] / [1]", 2, {2, 1}, {{2, 3}, {1}}, 0, 0, 3, init_quotient, apply_div},
    {"div", "broadcast [3] / [2,3]", 2, {1, 2}, {{3}, {2, 3}}, 0, 0, 3, init_quotient, apply_div},
    {"div", "broadcast [4,1,3] / [2,1], both repeated", 2, {3, 2}, {{4, 1, 3}, {2, 1}}, 0, 0, 3,
     init_quotient, apply_div},
    {"div", "broadcast [2,3] / [3], gradient of the divisor only", 2, {2, 1}, {{2, 3}, {3}}, 0, 0,
     2, init_quotient, apply_div},

    /* scale, add_scalar, neg */
    {"scale", "[2,3] times -1.75", 1, {2}, {{2, 3}}, -2, 2, 1, NULL, apply_scale},
    {"scale", "[2,2,2,2] times -1.75", 1, {4}, {{2, 2, 2, 2}}, -2, 2, 1, NULL, apply_scale},
    {"scale", "rank-0 scalar times -1.75", 1, {0}, {{0}}, -2, 2, 1, NULL, apply_scale},
    {"add_scalar", "[2,3] plus 0.625", 1, {2}, {{2, 3}}, -2, 2, 1, NULL, apply_add_scalar},
    {"add_scalar", "[3,1,4] plus 0.625", 1, {3}, {{3, 1, 4}}, -2, 2, 1, NULL, apply_add_scalar},
    {"neg", "[2,3]", 1, {2}, {{2, 3}}, -2, 2, 1, NULL, apply_neg},
    {"neg", "[7]", 1, {1}, {{7}}, -2, 2, 1, NULL, apply_neg},

    /* exp, log: log on [0.5, 3], away from 0 */
    {"exp", "[2,3] in [-2, 2]", 1, {2}, {{2, 3}}, -2, 2, 1, NULL, apply_exp},
    {"exp", "[2,3,2,2] in [-4, 1]", 1, {4}, {{2, 3, 2, 2}}, -4, 1, 1, NULL, apply_exp},
    {"log", "[2,3] in [0.5, 3]", 1, {2}, {{2, 3}}, 0.5, 3, 1, NULL, apply_log},
    {"log", "[4,5] in [1, 20]", 1, {2}, {{4, 5}}, 1, 20, 1, NULL, apply_log},

    /* relu, leaky_relu: inputs at least 0.1 from the kink */
    {"relu", "[2,3] away from 0", 1, {2}, {{2, 3}}, 0, 0, 1, init_away_from_kink, apply_relu},
    {"relu", "[2,3,3,3] away from 0", 1, {4}, {{2, 3, 3, 3}}, 0, 0, 1, init_away_from_kink,
     apply_relu},
    {"leaky_relu", "[2,3] slope 0.2, away from 0", 1, {2}, {{2, 3}}, 0, 0, 1, init_away_from_kink,
     apply_leaky_relu},
    {"leaky_relu", "[3,2,4] slope 0.2, away from 0", 1, {3}, {{3, 2, 4}}, 0, 0, 1,
     init_away_from_kink, apply_leaky_relu},
    {"leaky_relu", "[10] slope -0.5, away from 0", 1, {1}, {{10}}, 0, 0, 1, init_away_from_kink,
     apply_leaky_relu_negative},

    /* sigmoid, tanh: moderate ranges, and the sigmoid far out */
    {"sigmoid", "[2,3] in [-3, 3]", 1, {2}, {{2, 3}}, -3, 3, 1, NULL, apply_sigmoid},
    {"sigmoid", "[2,2,2,3] in [-6, 6]", 1, {4}, {{2, 2, 2, 3}}, -6, 6, 1, NULL, apply_sigmoid},
    {"sigmoid", "[21] from -100 to 100", 1, {1}, {{21}}, 0, 0, 1, init_wide, apply_sigmoid},
    {"tanh", "[2,3] in [-2, 2]", 1, {2}, {{2, 3}}, -2, 2, 1, NULL, apply_tanh},
    {"tanh", "[3,4,2] in [-4, 4]", 1, {3}, {{3, 4, 2}}, -4, 4, 1, NULL, apply_tanh},

    /* softplus: moderate, at +-50, and from -100 to 100 */
    {"softplus", "[2,3] in [-3, 3]", 1, {2}, {{2, 3}}, -3, 3, 1, NULL, apply_softplus},
    {"softplus", "[2,2,3,2] in [-10, 10]", 1, {4}, {{2, 2, 3, 2}}, -10, 10, 1, NULL, apply_softplus},
    {"softplus", "[4,3] at +-50", 1, {2}, {{4, 3}}, 0, 0, 1, init_plus_minus_fifty, apply_softplus},
    {"softplus", "[21] from -100 to 100", 1, {1}, {{21}}, 0, 0, 1, init_wide, apply_softplus},

    {0}
};
