/* test_model.c -- the encoder and the critics (doc/20-encoder.nw, doc/21-critics.nw): the
 * paper's configurations, the shape of every feature, PyTorch's initialisation, and the score
 * convention scores[b, i, j] = T(x_j at location b, y_i) of every critic, checked against the
 * critic applied to one pair at a time and against a hand computation. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../src/dim/dim.h"
#include "fatal.h"
#include "suites.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Agreement of two computations of one number: float sums in another order differ a little. */
static double tolerance(double reference)
{
    double eps = sizeof(ag_real) == sizeof(float) ? 2e-5 : 1e-11;
    return eps * (1 + fabs(reference));
}

#define ASSERT_SHAPE(x, ...)                                                           \
    assert_shape(x, #x, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)),             \
                 (const int[]){__VA_ARGS__})

static void assert_shape(const ag_tensor *x, const char *what, int ndim, const int *shape)
{
    char got[AG_SHAPE_STR_SIZE];
    ck_assert_msg(x != NULL, "%s is NULL", what);
    int same = x->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = x->shape[d] == shape[d];
    char want[AG_SHAPE_STR_SIZE];
    int n = snprintf(want, sizeof want, "[");
    for (int d = 0; d < ndim; d++) n += snprintf(want + n, sizeof want - n, d ? ", %d" : "%d", shape[d]);
    snprintf(want + n, sizeof want - n, "]");
    ck_assert_msg(same, "%s has shape %s, expected %s", what, ag_shape_str(x, got), want);
}

/* An encoder and its critics with their own parameter set, tape and generator. */
typedef struct model {
    dim_config config;
    ag_params params;
    dim_encoder encoder;
    dim_critics critics;
    ag_tape *tape;
    ag_rng rng;
} model;

static void model_init(model *m, const dim_config *c, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->config = *c;
    ag_rng_seed(&m->rng, seed);
    dim_encoder_init(&m->encoder, &m->params, c, &m->rng);
    dim_critics_init(&m->critics, &m->params, c, &m->rng);
    m->tape = ag_tape_new_growing((size_t)1 << 30);
}

static void model_free(model *m)
{
    ag_tape_free(m->tape);
    ag_params_free(&m->params);
}

/* A batch of n images of the model's shape, uniform in [0, 1). */
static ag_tensor *random_images(model *m, int n)
{
    const dim_config *c = &m->config;
    ag_tensor *x = ag_tensor_new(m->tape, AG_SHAPE(n, c->in_channels, c->in_height, c->in_width));
    ag_fill_uniform(x, &m->rng, 0, 1);
    return x;
}

/* A tensor on t whose row r (index along the first axis) is row order[r] of x, r < count. */
static ag_tensor *rows_of(ag_tape *t, const ag_tensor *x, const int *order, int count)
{
    int shape[AG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[0] = count;
    ag_tensor *y = ag_tensor_new(t, x->ndim, shape);
    long row = x->size / x->shape[0];
    for (int r = 0; r < count; r++)
        memcpy(y->value + r * row, x->value + order[r] * row, (size_t)row * sizeof(ag_real));
    return y;
}

/* The local feature of image j at location l (row-major) of local [N, C, M, M], as a map of
 * one image and one location, [1, C, 1, 1]. */
static ag_tensor *location_of(ag_tape *t, const ag_tensor *local, int j, int l)
{
    int channels = local->shape[1], m2 = local->shape[2] * local->shape[3];
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(1, channels, 1, 1));
    for (int ch = 0; ch < channels; ch++) x->value[ch] = local->value[(j * channels + ch) * m2 + l];
    return x;
}

/* Random running statistics and affine parameters, so that evaluation mode is not the identity. */
static void randomise_batchnorm(const dim_batchnorm *bn, ag_rng *rng)
{
    ag_fill_uniform(bn->gamma, rng, 0.5, 1.5);
    ag_fill_uniform(bn->beta, rng, -0.5, 0.5);
    ag_fill_uniform(bn->running_mean, rng, -0.3, 0.3);
    ag_fill_uniform(bn->running_var, rng, 0.5, 2.0);
}

/* Every trainable critic parameter uniform in [-1, 1]: at the default scale a critic as narrow
 * as the tiny one can start dead (every ReLU off, every score equal), and a test of where the
 * scores go would then prove nothing. The properties tested hold for any parameters. */
static void widen_critics(model *m)
{
    for (int p = 0; p < m->params.count; p++) {
        ag_tensor *x = m->params.items[p];
        if (x->requires_grad && strncmp(x->name, "critic.", 7) == 0)
            ag_fill_uniform(x, &m->rng, -1, 1);
    }
}

/* Fails when all the entries of scores are (nearly) equal. */
static void assert_scores_differ(const ag_tensor *scores, const char *critic)
{
    double lo = scores->value[0], hi = scores->value[0];
    for (long k = 1; k < scores->size; k++) {
        lo = fmin(lo, scores->value[k]);
        hi = fmax(hi, scores->value[k]);
    }
    ck_assert_msg(hi - lo > 1e-3, "%s critic: all scores are within %g of each other; the "
                  "test would prove nothing", critic, hi - lo);
}

static const dim_local_kind local_kinds[] = { DIM_LOCAL_DOT, DIM_LOCAL_CONCAT };
static const char *const local_kind_names[] = { "dot", "concat" };

/* ---------------------------------------------------------------------------------------- */
/* Configurations                                                                             */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_config_for_28x28_is_the_papers)
{
    dim_config c;
    ck_assert_int_eq(dim_config_for_input(&c, 1, 28, 28), 0);
    ck_assert_int_eq(c.in_channels, 1);
    ck_assert_int_eq(c.in_height, 28);
    ck_assert_int_eq(c.in_width, 28);
    ck_assert_int_eq(c.nconv, 2);
    ck_assert_int_eq(c.conv_channels[0], 64);
    ck_assert_int_eq(c.conv_channels[1], 128);
    ck_assert_int_eq(c.conv_batchnorm[0], 0);
    ck_assert_int_eq(c.conv_batchnorm[1], 1);
    ck_assert_int_eq(c.local_layer, 1);
    ck_assert_int_eq(c.fc_units, 1024);
    ck_assert_int_eq(c.y_units, 64);
    ck_assert_int_eq(c.critic_units, 512);
    ck_assert_int_eq(c.global_nconv, 2);
    ck_assert_int_eq(c.global_conv_channels[0], 64);
    ck_assert_int_eq(c.global_conv_channels[1], 32);
    ck_assert_int_eq(c.prior_units[0], 1000);
    ck_assert_int_eq(c.prior_units[1], 200);
    ck_assert_int_eq(dim_config_local_size(&c), 7);
}
END_TEST

START_TEST(test_config_for_32x32_is_the_papers)
{
    dim_config c;
    ck_assert_int_eq(dim_config_for_input(&c, 3, 32, 32), 0);
    ck_assert_int_eq(c.in_channels, 3);
    ck_assert_int_eq(c.in_height, 32);
    ck_assert_int_eq(c.in_width, 32);
    ck_assert_int_eq(c.nconv, 3);
    ck_assert_int_eq(c.conv_channels[0], 64);
    ck_assert_int_eq(c.conv_channels[1], 128);
    ck_assert_int_eq(c.conv_channels[2], 256);
    for (int l = 0; l < 3; l++) ck_assert_int_eq(c.conv_batchnorm[l], 1);
    ck_assert_int_eq(c.local_layer, 1);
    ck_assert_int_eq(c.fc_units, 1024);
    ck_assert_int_eq(c.y_units, 64);
    ck_assert_int_eq(c.critic_units, 512);
    ck_assert_int_eq(c.global_nconv, 2);
    ck_assert_int_eq(c.global_conv_channels[0], 64);
    ck_assert_int_eq(c.global_conv_channels[1], 32);
    ck_assert_int_eq(c.prior_units[0], 1000);
    ck_assert_int_eq(c.prior_units[1], 200);
    ck_assert_int_eq(dim_config_local_size(&c), 8);
}
END_TEST

START_TEST(test_config_refuses_other_shapes_and_leaves_config_alone)
{
    static const int shapes[][3] = {
        {1, 32, 32}, {3, 28, 28}, {1, 28, 32}, {1, 27, 28}, {2, 32, 32},
        {3, 64, 64}, {4, 32, 32}, {0, 28, 28}, {1, 12, 12}, {3, 32, 31},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        dim_config c, before;
        memset(&c, 0x5a, sizeof c);
        before = c;
        int got = dim_config_for_input(&c, shapes[s][0], shapes[s][1], shapes[s][2]);
        ck_assert_msg(got == -1, "dim_config_for_input(%dx%dx%d) returned %d, expected -1",
                      shapes[s][0], shapes[s][1], shapes[s][2], got);
        ck_assert_msg(memcmp(&c, &before, sizeof c) == 0,
                      "dim_config_for_input(%dx%dx%d) changed the config it refused",
                      shapes[s][0], shapes[s][1], shapes[s][2]);
    }
}
END_TEST

START_TEST(test_config_tiny_is_small_and_has_every_feature)
{
    dim_config c;
    ck_assert_int_eq(dim_config_tiny(&c), 0);
    ck_assert_int_eq(c.in_channels, 1);
    ck_assert_int_eq(c.in_height, 12);
    ck_assert_int_eq(c.in_width, 12);
    ck_assert_int_eq(c.nconv, 2);
    ck_assert_int_eq(c.conv_channels[0], 3);
    ck_assert_int_eq(c.conv_channels[1], 4);
    ck_assert_int_eq(c.conv_batchnorm[0], 0);
    ck_assert_int_eq(c.conv_batchnorm[1], 1);
    ck_assert_int_eq(c.local_layer, 1);
    ck_assert_int_eq(c.fc_units, 6);
    ck_assert_int_eq(c.y_units, 3);
    ck_assert_int_eq(c.critic_units, 5);
    ck_assert_int_eq(c.global_nconv, 1);
    ck_assert_int_eq(c.global_conv_channels[0], 4);
    ck_assert_int_eq(c.prior_units[0], 6);
    ck_assert_int_eq(c.prior_units[1], 5);
    ck_assert_int_eq(dim_config_local_size(&c), 3);
}
END_TEST

START_TEST(test_bad_configs_are_refused_with_a_reason)
{
    ag_params ps = {0};
    ag_rng rng;
    ag_rng_seed(&rng, 1);
    dim_encoder e;
    dim_config c;
    dim_config_tiny(&c);
    c.in_width = 10;
    EXPECT_FATAL(dim_encoder_init(&e, &ps, &c, &rng));
    ASSERT_MESSAGE_HAS("square");
    dim_config_tiny(&c);
    c.local_layer = 2;
    EXPECT_FATAL(dim_encoder_init(&e, &ps, &c, &rng));
    ASSERT_MESSAGE_HAS("C(x)");
    dim_config_tiny(&c);
    c.nconv = 4;
    EXPECT_FATAL(dim_encoder_init(&e, &ps, &c, &rng));
    ASSERT_MESSAGE_HAS("1 to 3");
    dim_config_tiny(&c);
    c.in_height = c.in_width = 4; /* 4 -> 2 -> 1 -> no room for a third kernel */
    c.nconv = 3;
    c.conv_channels[2] = 2;
    EXPECT_FATAL(dim_encoder_init(&e, &ps, &c, &rng));
    ASSERT_MESSAGE_HAS("do not fit");
    ck_assert_int_eq(ps.count, 0); /* nothing is made before the configuration is checked */

    dim_critics k;
    dim_config_tiny(&c);
    c.global_nconv = 2; /* 3 -> 1 -> nothing */
    EXPECT_FATAL(dim_critics_init(&k, &ps, &c, &rng));
    ASSERT_MESSAGE_HAS("global convolutions");
    ag_params_free(&ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The encoder                                                                                */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_encoder_28x28_feature_shapes)
{
    dim_config c;
    model m;
    dim_config_for_input(&c, 1, 28, 28);
    model_init(&m, &c, 7);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, 2));
    ASSERT_SHAPE(f.local, 2, 128, 7, 7);
    ASSERT_SHAPE(f.conv, 2, 128, 7, 7);
    ck_assert_ptr_eq(f.conv, f.local); /* two convolutions: the last one is C(x) */
    ASSERT_SHAPE(f.fc, 2, 1024);
    ASSERT_SHAPE(f.y, 2, 64);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "conv"), f.conv);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "fc"), f.fc);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "y"), f.y);
    model_free(&m);
}
END_TEST

START_TEST(test_encoder_32x32_feature_shapes)
{
    dim_config c;
    model m;
    dim_config_for_input(&c, 3, 32, 32);
    model_init(&m, &c, 7);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, 2));
    ASSERT_SHAPE(f.local, 2, 128, 8, 8);
    ASSERT_SHAPE(f.conv, 2, 256, 4, 4);
    ASSERT_SHAPE(f.fc, 2, 1024);
    ASSERT_SHAPE(f.y, 2, 64);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "conv"), f.conv);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "fc"), f.fc);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "y"), f.y);
    model_free(&m);
}
END_TEST

START_TEST(test_encoder_tiny_feature_shapes)
{
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 7);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, 5));
    ASSERT_SHAPE(f.local, 5, 4, 3, 3);
    ASSERT_SHAPE(f.conv, 5, 4, 3, 3);
    ASSERT_SHAPE(f.fc, 5, 6);
    ASSERT_SHAPE(f.y, 5, 3);
    /* after ReLU the local features and fc are non-negative; y has no nonlinearity */
    for (long i = 0; i < f.local->size; i++) ck_assert(f.local->value[i] >= 0);
    for (long i = 0; i < f.fc->size; i++) ck_assert(f.fc->value[i] >= 0);
    model_free(&m);
}
END_TEST

START_TEST(test_feature_by_name_knows_only_the_papers_names)
{
    dim_features f;
    memset(&f, 0, sizeof f);
    ag_tensor a, b, c, d;
    f.local = &a, f.conv = &b, f.fc = &c, f.y = &d;
    ck_assert_ptr_eq(dim_feature_by_name(&f, "conv"), &b);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "fc"), &c);
    ck_assert_ptr_eq(dim_feature_by_name(&f, "y"), &d);
    ck_assert_ptr_null(dim_feature_by_name(&f, "local"));
    ck_assert_ptr_null(dim_feature_by_name(&f, "Y"));
    ck_assert_ptr_null(dim_feature_by_name(&f, ""));
    ck_assert_ptr_null(dim_feature_by_name(&f, "conv "));
}
END_TEST

START_TEST(test_encoder_refuses_images_of_another_shape)
{
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 7);
    ag_tensor *wrong = ag_tensor_new(m.tape, AG_SHAPE(2, 3, 12, 12));
    EXPECT_FATAL(dim_encode(m.tape, &m.encoder, wrong));
    ASSERT_MESSAGE_HAS("[2, 3, 12, 12]");
    ASSERT_MESSAGE_HAS("[N, 1, 12, 12]");
    model_free(&m);
}
END_TEST

/* Trainable scalars of the encoder alone, as in the book's table. */
static long encoder_parameter_count(const dim_config *c)
{
    ag_params ps = {0};
    ag_rng rng;
    dim_encoder e;
    ag_rng_seed(&rng, 3);
    dim_encoder_init(&e, &ps, c, &rng);
    long count = ag_params_size(&ps);
    ag_params_free(&ps);
    return count;
}

START_TEST(test_encoder_parameter_counts_match_the_book)
{
    dim_config c;
    dim_config_for_input(&c, 1, 28, 28);
    ck_assert_int_eq(encoder_parameter_count(&c), 6623744);
    dim_config_for_input(&c, 3, 32, 32);
    ck_assert_int_eq(encoder_parameter_count(&c), 4922752);
}
END_TEST

START_TEST(test_parameters_have_dotted_names_and_batchnorm_only_where_asked)
{
    dim_config c;
    model m;
    dim_config_for_input(&c, 1, 28, 28);
    model_init(&m, &c, 7);
    static const char *const present[] = {
        "encoder.conv0.weight", "encoder.conv0.bias", "encoder.conv1.weight",
        "encoder.bn1.weight", "encoder.bn1.bias", "encoder.bn1.running_mean",
        "encoder.bn1.running_var", "encoder.fc.weight", "encoder.fc_bn.weight",
        "encoder.out.weight", "encoder.out.bias", "critic.global.conv0.weight",
        "critic.global.conv1.weight", "critic.global.from_features.weight",
        "critic.global.from_features.bias", "critic.global.from_y.weight",
        "critic.global.hidden.weight", "critic.global.out.bias",
        "critic.local.dot.l_hidden.weight", "critic.local.dot.l_bn.running_var",
        "critic.local.dot.y_shortcut.bias", "critic.local.concat.from_features.bias",
        "critic.local.concat.from_y.weight", "critic.local.concat.out.weight",
    };
    static const char *const absent[] = {
        "encoder.bn0.weight", "critic.global.from_y.bias", "critic.local.concat.from_y.bias",
        "critic.global.conv2.weight",
    };
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        ck_assert_msg(ag_params_find(&m.params, present[i]) != NULL, "no parameter %s",
                      present[i]);
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        ck_assert_msg(ag_params_find(&m.params, absent[i]) == NULL, "unexpected parameter %s",
                      absent[i]);
    ck_assert_int_eq(ag_params_find(&m.params, "encoder.bn1.running_mean")->requires_grad, 0);
    ck_assert_int_eq(ag_params_find(&m.params, "encoder.bn1.weight")->requires_grad, 1);
    model_free(&m);
}
END_TEST

/* Every value of x in [-bound, bound], and the largest above 0.9 bound (a uniform sample of
 * thousands reaches that far; a narrower distribution does not). */
static void assert_uniform_within(const ag_tensor *x, double bound)
{
    double largest = 0;
    long largest_at = 0;
    for (long i = 0; i < x->size; i++) /* one assertion, not millions: Check's are not free */
        if (fabs((double)x->value[i]) > largest) {
            largest = fabs((double)x->value[i]);
            largest_at = i;
        }
    ck_assert_msg(largest <= bound * (1 + 1e-6), "%s[%ld] = %g is outside +-%g", x->name,
                  largest_at, (double)x->value[largest_at], bound);
    ck_assert_msg(largest > 0.9 * bound, "%s: the largest |value| is %g, expected near %g",
                  x->name, largest, bound);
}

START_TEST(test_initialisation_is_pytorchs_default)
{
    dim_config c;
    model m;
    dim_config_for_input(&c, 1, 28, 28);
    model_init(&m, &c, 11);
    assert_uniform_within(ag_params_find(&m.params, "encoder.conv1.weight"), 1 / sqrt(64 * 16.0));
    assert_uniform_within(ag_params_find(&m.params, "encoder.fc.weight"), 1 / sqrt(6272.0));
    assert_uniform_within(ag_params_find(&m.params, "encoder.out.weight"), 1 / sqrt(1024.0));
    assert_uniform_within(ag_params_find(&m.params, "critic.global.conv0.weight"),
                          1 / sqrt(128 * 9.0));
    /* the blocks of a split layer use the fan-in of the whole concatenation */
    assert_uniform_within(ag_params_find(&m.params, "critic.global.from_y.weight"),
                          1 / sqrt(288 + 64.0));
    assert_uniform_within(ag_params_find(&m.params, "critic.global.from_features.weight"),
                          1 / sqrt(288 + 64.0));
    assert_uniform_within(ag_params_find(&m.params, "critic.local.concat.from_y.weight"),
                          1 / sqrt(128 + 64.0));
    assert_uniform_within(ag_params_find(&m.params, "critic.local.concat.from_features.weight"),
                          1 / sqrt(128 + 64.0));
    const dim_batchnorm *bn = &m.encoder.conv_bn[1];
    for (long i = 0; i < bn->gamma->size; i++) {
        ck_assert(bn->gamma->value[i] == 1);
        ck_assert(bn->beta->value[i] == 0);
        ck_assert(bn->running_mean->value[i] == 0);
        ck_assert(bn->running_var->value[i] == 1);
    }
    model_free(&m);
}
END_TEST

START_TEST(test_same_seed_same_network)
{
    dim_config c;
    model a, b;
    dim_config_tiny(&c);
    model_init(&a, &c, 42);
    model_init(&b, &c, 42);
    ck_assert_int_eq(a.params.count, b.params.count);
    for (int p = 0; p < a.params.count; p++) {
        ck_assert_str_eq(a.params.items[p]->name, b.params.items[p]->name);
        ck_assert(memcmp(a.params.items[p]->value, b.params.items[p]->value,
                         (size_t)a.params.items[p]->size * sizeof(ag_real)) == 0);
    }
    model_free(&a);
    model_free(&b);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The critics: shapes                                                                        */
/* ---------------------------------------------------------------------------------------- */

static void assert_critic_shapes(const dim_config *c, int n)
{
    model m;
    model_init(&m, c, 5);
    int m2 = dim_config_local_size(c) * dim_config_local_size(c);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, n));
    ASSERT_SHAPE(dim_global_scores(m.tape, &m.critics, &f), 1, n, n);
    ASSERT_SHAPE(dim_local_scores(m.tape, &m.critics, &f, DIM_LOCAL_DOT), m2, n, n);
    ASSERT_SHAPE(dim_local_scores(m.tape, &m.critics, &f, DIM_LOCAL_CONCAT), m2, n, n);
    model_free(&m);
}

START_TEST(test_scores_shapes_28x28)
{
    dim_config c;
    dim_config_for_input(&c, 1, 28, 28);
    assert_critic_shapes(&c, 3);
}
END_TEST

START_TEST(test_scores_shapes_32x32)
{
    dim_config c;
    dim_config_for_input(&c, 3, 32, 32);
    assert_critic_shapes(&c, 3);
}
END_TEST

START_TEST(test_scores_shapes_tiny_with_0_1_2_global_convs)
{
    dim_config c;
    dim_config_tiny(&c);
    assert_critic_shapes(&c, 4);   /* M = 3, one global conv: 3 -> 1 */
    c.global_nconv = 0;            /* the map is flattened as it is */
    assert_critic_shapes(&c, 4);
    c.in_height = c.in_width = 20; /* M = 5: two global convs, 5 -> 3 -> 1 */
    c.global_nconv = 2;
    c.global_conv_channels[1] = 2;
    assert_critic_shapes(&c, 2);
    ck_assert_int_eq(dim_config_local_size(&c), 5);
}
END_TEST

START_TEST(test_global_critic_reads_the_flattened_size_after_its_convs)
{
    static const struct { int side, nconv, features; } cases[] = {
        {12, 0, 4 * 3 * 3}, {12, 1, 4 * 1 * 1}, {28, 1, 4 * 5 * 5}, {28, 2, 2 * 3 * 3},
        {32, 2, 2 * 4 * 4},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dim_config c;
        dim_config_tiny(&c);
        c.in_height = c.in_width = cases[k].side;
        c.global_nconv = cases[k].nconv;
        c.global_conv_channels[1] = 2;
        ag_params ps = {0};
        ag_rng rng;
        dim_critics critics;
        ag_rng_seed(&rng, 1);
        dim_critics_init(&critics, &ps, &c, &rng);
        ck_assert_msg(critics.global.from_features.weight->shape[1] == cases[k].features,
                      "side %d, %d global convs: from_features reads %d, expected %d",
                      cases[k].side, cases[k].nconv,
                      critics.global.from_features.weight->shape[1], cases[k].features);
        for (int j = 0; j < 2; j++)
            ck_assert_int_eq(critics.global.conv[j].weight != NULL, j < cases[k].nconv);
        ag_params_free(&ps);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The critics: scores[b, i, j] = T(x_j at location b, y_i)                                   */
/* ---------------------------------------------------------------------------------------- */

/* Scores made from the features with the images permuted by image_order and the codes by
 * code_order must be the original scores read at [b, code_order[i], image_order[j]]: rows
 * follow the codes and columns the images. Training mode: the batch statistics of the dot
 * critic's batch norms do not change when a batch is permuted. */
START_TEST(test_rows_follow_codes_and_columns_follow_images)
{
    enum { N = 4 };
    static const int image_order[N] = {2, 0, 3, 1}, code_order[N] = {1, 3, 0, 2};
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 21);
    widen_critics(&m);
    ag_tape_set_training(m.tape, 1);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, N));
    dim_features g = f;
    g.local = rows_of(m.tape, f.local, image_order, N);
    g.y = rows_of(m.tape, f.y, code_order, N);
    for (int kind = -1; kind < 2; kind++) {
        const char *name = kind < 0 ? "global" : local_kind_names[kind];
        ag_tensor *s = kind < 0 ? dim_global_scores(m.tape, &m.critics, &f)
                                : dim_local_scores(m.tape, &m.critics, &f, local_kinds[kind]);
        ag_tensor *p = kind < 0 ? dim_global_scores(m.tape, &m.critics, &g)
                                : dim_local_scores(m.tape, &m.critics, &g, local_kinds[kind]);
        int problems = s->shape[0];
        assert_scores_differ(s, name);
        for (int b = 0; b < problems; b++)
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    double want = s->value[(b * N + code_order[i]) * N + image_order[j]];
                    double got = p->value[(b * N + i) * N + j];
                    ck_assert_msg(fabs(got - want) <= tolerance(want),
                                  "%s critic: permuted scores[%d, %d, %d] = %.9g, expected "
                                  "scores[%d, %d, %d] = %.9g", name, b, i, j, got, b,
                                  code_order[i], image_order[j], want);
                }
    }
    model_free(&m);
}
END_TEST

/* The critics applied to one pair at a time, as a batch of one, must give the entries
 * [b, i, j] of the batched scores: for the global critic the pair (image j, code i); for a
 * local critic the pair (the feature of image j at location b alone, as a 1x1 map; code i),
 * which also checks that locations are numbered row-major. Evaluation mode, so that the dot
 * critic's batch norms use running statistics and a score is a function of its pair alone. */
START_TEST(test_each_score_is_the_critic_on_its_own_pair)
{
    enum { N = 3 };
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 33);
    widen_critics(&m);
    randomise_batchnorm(&m.critics.dot.l_bn, &m.rng);
    randomise_batchnorm(&m.critics.dot.y_bn, &m.rng);
    ag_tape_set_training(m.tape, 0);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, N));
    for (int kind = -1; kind < 2; kind++) {
        const char *name = kind < 0 ? "global" : local_kind_names[kind];
        ag_tensor *s = kind < 0 ? dim_global_scores(m.tape, &m.critics, &f)
                                : dim_local_scores(m.tape, &m.critics, &f, local_kinds[kind]);
        assert_scores_differ(s, name);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                for (int b = 0; b < s->shape[0]; b++) {
                    dim_features pair = f;
                    pair.y = rows_of(m.tape, f.y, &i, 1);
                    ag_tensor *one;
                    if (kind < 0) {
                        pair.local = rows_of(m.tape, f.local, &j, 1);
                        one = dim_global_scores(m.tape, &m.critics, &pair);
                    } else {
                        pair.local = location_of(m.tape, f.local, j, b);
                        one = dim_local_scores(m.tape, &m.critics, &pair, local_kinds[kind]);
                    }
                    ck_assert_int_eq(one->size, 1);
                    double want = one->value[0];
                    double got = s->value[(b * N + i) * N + j];
                    ck_assert_msg(fabs(got - want) <= tolerance(want),
                                  "%s critic: scores[%d, %d, %d] = %.9g, but the critic on "
                                  "(image %d at location %d, code %d) alone gives %.9g",
                                  name, b, i, j, got, j, b, i, want);
                }
    }
    model_free(&m);
}
END_TEST

/* out = W in + b for a layer of `outs` outputs reading `ins` inputs (linear or 1x1 conv). */
static void affine(const ag_tensor *weight, const ag_tensor *bias, const double *in, int ins,
                   int outs, double *out)
{
    for (int o = 0; o < outs; o++) {
        double s = bias ? bias->value[o] : 0;
        for (int k = 0; k < ins; k++) s += weight->value[o * ins + k] * in[k];
        out[o] = s;
    }
}

/* ReLU(batch norm in evaluation mode), in place. */
static void batchnorm_eval_relu(const dim_batchnorm *bn, double *v, int units)
{
    for (int k = 0; k < units; k++) {
        double x = (v[k] - bn->running_mean->value[k]) / sqrt(bn->running_var->value[k] + 1e-5)
                   * bn->gamma->value[k] + bn->beta->value[k];
        v[k] = x > 0 ? x : 0;
    }
}

/* The encode-and-dot-product critic by hand, in double: L_j[:, l] and G_i from the features
 * and the parameters, then scores[l, i, j] = <G_i, L_j[:, l]>. */
START_TEST(test_dot_scores_are_inner_products_of_the_embeddings)
{
    enum { N = 3, MAXW = 16 };
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 44);
    widen_critics(&m);
    const dim_local_dot *d = &m.critics.dot;
    randomise_batchnorm(&d->l_bn, &m.rng);
    randomise_batchnorm(&d->y_bn, &m.rng);
    ag_tape_set_training(m.tape, 0);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, N));
    ag_tensor *s = dim_local_scores(m.tape, &m.critics, &f, DIM_LOCAL_DOT);
    assert_scores_differ(s, "dot");
    int channels = f.local->shape[1], m2 = f.local->shape[2] * f.local->shape[3];
    int units = c.critic_units, ys = c.y_units;
    ck_assert(units <= MAXW && channels <= MAXW && ys <= MAXW);
    double g[N][MAXW];
    for (int i = 0; i < N; i++) { /* G_i = y_out(ReLU(y_bn(y_hidden(y_i)))) + y_shortcut(y_i) */
        double y[MAXW], h[MAXW], o[MAXW], sc[MAXW];
        for (int q = 0; q < ys; q++) y[q] = f.y->value[i * ys + q];
        affine(d->y_hidden.weight, d->y_hidden.bias, y, ys, units, h);
        batchnorm_eval_relu(&d->y_bn, h, units);
        affine(d->y_out.weight, d->y_out.bias, h, units, units, o);
        affine(d->y_shortcut.weight, d->y_shortcut.bias, y, ys, units, sc);
        for (int k = 0; k < units; k++) g[i][k] = o[k] + sc[k];
    }
    for (int j = 0; j < N; j++)
        for (int l = 0; l < m2; l++) { /* L_j[:, l], the 1x1 convs at location l */
            double x[MAXW], h[MAXW], o[MAXW], sc[MAXW];
            for (int ch = 0; ch < channels; ch++) x[ch] = f.local->value[(j * channels + ch) * m2 + l];
            affine(d->l_hidden.weight, d->l_hidden.bias, x, channels, units, h);
            batchnorm_eval_relu(&d->l_bn, h, units);
            affine(d->l_out.weight, d->l_out.bias, h, units, units, o);
            affine(d->l_shortcut.weight, d->l_shortcut.bias, x, channels, units, sc);
            for (int i = 0; i < N; i++) {
                double want = 0;
                for (int k = 0; k < units; k++) want += g[i][k] * (o[k] + sc[k]);
                double got = s->value[(l * N + i) * N + j];
                ck_assert_msg(fabs(got - want) <= tolerance(want),
                              "dot critic: scores[%d, %d, %d] = %.9g, <G_%d, L_%d[:, %d]> = %.9g",
                              l, i, j, got, i, j, l, want);
            }
        }
    model_free(&m);
}
END_TEST

/* A score's gradient reaches the critic's own layers and, through the code y, the encoder:
 * the sharing of layers of Eq. 3. */
START_TEST(test_score_gradients_reach_critic_and_encoder)
{
    static const char *const reached[3][2] = {
        {"critic.global.conv0.weight", "critic.global.from_y.weight"},
        {"critic.local.dot.l_hidden.weight", "critic.local.dot.y_hidden.weight"},
        {"critic.local.concat.from_features.weight", "critic.local.concat.from_y.weight"},
    };
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 55);
    widen_critics(&m);
    for (int kind = -1; kind < 2; kind++) {
        ag_tape_reset(m.tape);
        ag_params_zero_grad(&m.params);
        dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, 3));
        ag_tensor *s = kind < 0 ? dim_global_scores(m.tape, &m.critics, &f)
                                : dim_local_scores(m.tape, &m.critics, &f, local_kinds[kind]);
        ag_backward(m.tape, ag_sum(m.tape, s));
        const char *names[3] = {reached[kind + 1][0], reached[kind + 1][1], "encoder.out.weight"};
        for (int k = 0; k < 3; k++) {
            const ag_tensor *p = ag_params_find(&m.params, names[k]);
            double norm = 0;
            for (long i = 0; i < p->size; i++) norm += fabs((double)p->grad[i]);
            ck_assert_msg(norm > 0, "critic %d: no gradient reached %s", kind, names[k]);
        }
    }
    model_free(&m);
}
END_TEST

START_TEST(test_critics_refuse_features_of_another_configuration)
{
    dim_config c;
    model m;
    dim_config_tiny(&c);
    model_init(&m, &c, 66);
    dim_features f = dim_encode(m.tape, &m.encoder, random_images(&m, 2));
    dim_features wrong = f;
    wrong.y = ag_tensor_new(m.tape, AG_SHAPE(2, 7));
    EXPECT_FATAL(dim_global_scores(m.tape, &m.critics, &wrong));
    ASSERT_MESSAGE_HAS("the code");
    EXPECT_FATAL(dim_local_scores(m.tape, &m.critics, &wrong, DIM_LOCAL_CONCAT));
    ASSERT_MESSAGE_HAS("the code");
    wrong = f;
    wrong.y = ag_tensor_new(m.tape, AG_SHAPE(3, 3));
    EXPECT_FATAL(dim_local_scores(m.tape, &m.critics, &wrong, DIM_LOCAL_DOT));
    ASSERT_MESSAGE_HAS("[2, 4, 3, 3]");
    model_free(&m);
}
END_TEST

Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *config = tcase_create("config");
    tcase_add_test(config, test_config_for_28x28_is_the_papers);
    tcase_add_test(config, test_config_for_32x32_is_the_papers);
    tcase_add_test(config, test_config_refuses_other_shapes_and_leaves_config_alone);
    tcase_add_test(config, test_config_tiny_is_small_and_has_every_feature);
    tcase_add_test(config, test_bad_configs_are_refused_with_a_reason);
    suite_add_tcase(s, config);

    TCase *encoder = tcase_create("encoder");
    tcase_set_timeout(encoder, 60);
    tcase_add_test(encoder, test_encoder_28x28_feature_shapes);
    tcase_add_test(encoder, test_encoder_32x32_feature_shapes);
    tcase_add_test(encoder, test_encoder_tiny_feature_shapes);
    tcase_add_test(encoder, test_feature_by_name_knows_only_the_papers_names);
    tcase_add_test(encoder, test_encoder_refuses_images_of_another_shape);
    tcase_add_test(encoder, test_encoder_parameter_counts_match_the_book);
    tcase_add_test(encoder, test_parameters_have_dotted_names_and_batchnorm_only_where_asked);
    tcase_add_test(encoder, test_initialisation_is_pytorchs_default);
    tcase_add_test(encoder, test_same_seed_same_network);
    suite_add_tcase(s, encoder);

    TCase *critics = tcase_create("critics");
    tcase_set_timeout(critics, 60);
    tcase_add_test(critics, test_scores_shapes_28x28);
    tcase_add_test(critics, test_scores_shapes_32x32);
    tcase_add_test(critics, test_scores_shapes_tiny_with_0_1_2_global_convs);
    tcase_add_test(critics, test_global_critic_reads_the_flattened_size_after_its_convs);
    tcase_add_test(critics, test_rows_follow_codes_and_columns_follow_images);
    tcase_add_test(critics, test_each_score_is_the_critic_on_its_own_pair);
    tcase_add_test(critics, test_dot_scores_are_inner_products_of_the_embeddings);
    tcase_add_test(critics, test_score_gradients_reach_critic_and_encoder);
    tcase_add_test(critics, test_critics_refuse_features_of_another_configuration);
    suite_add_tcase(s, critics);
    return s;
}
