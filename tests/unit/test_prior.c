/* test_prior.c -- prior matching (doc/23-prior.nw) and the training step (doc/24-objective.nw):
 * the discriminator learns by ascending D^, the encoder's step lowers D^, one training step
 * moves each player its own way, the presets are the paper's, and the step is deterministic. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../src/dim/dim.h"
#include "suites.h"

enum { BATCH = 8, MODEL_SEED = 3, IMAGE_SEED = 4, PRIOR_SEED = 5 };

/* A batch of n random images for the configuration c, uniform in [0, 1). */
static ag_real *random_images(const dim_config *c, int n, uint64_t seed)
{
    long size = (long)n * c->in_channels * c->in_height * c->in_width;
    ag_real *images = malloc((size_t)size * sizeof *images);
    ag_rng rng;
    ag_rng_seed(&rng, seed);
    for (long i = 0; i < size; i++) images[i] = (ag_real)ag_rng_uniform(&rng);
    return images;
}

/* The values of every tensor of a parameter set (trainable or not), to restore or compare. */
typedef struct snapshot {
    int count;
    ag_real **values;  /* [count], each [items[i]->size] */
} snapshot;

static snapshot take_snapshot(const ag_params *ps)
{
    snapshot s = {ps->count, calloc((size_t)ps->count, sizeof(ag_real *))};
    for (int i = 0; i < ps->count; i++) {
        size_t bytes = (size_t)ps->items[i]->size * sizeof(ag_real);
        s.values[i] = malloc(bytes);
        memcpy(s.values[i], ps->items[i]->value, bytes);
    }
    return s;
}

static void restore_snapshot(ag_params *ps, const snapshot *s)
{
    for (int i = 0; i < ps->count; i++)
        memcpy(ps->items[i]->value, s->values[i], (size_t)ps->items[i]->size * sizeof(ag_real));
}

/* 1 if every value of ps equals the snapshot's, bit for bit. */
static int same_as_snapshot(const ag_params *ps, const snapshot *s)
{
    for (int i = 0; i < ps->count; i++)
        if (memcmp(ps->items[i]->value, s->values[i],
                   (size_t)ps->items[i]->size * sizeof(ag_real)) != 0)
            return 0;
    return 1;
}

static void free_snapshot(snapshot *s)
{
    for (int i = 0; i < s->count; i++) free(s->values[i]);
    free(s->values);
}

/* The objective's terms at the model's current parameters, on images [n, ...], with the prior
 * samples drawn from a copy of *rng (so that every evaluation sees the same samples). With
 * backward, the gradients of both sets are zeroed and filled. */
static dim_terms evaluate(ag_tape *t, dim_model *m, const dim_objective *o, const ag_real *images,
                          int n, const ag_rng *rng, int backward)
{
    const dim_config *c = &m->config;
    ag_tape_reset(t);
    ag_tape_set_training(t, 1);
    ag_tensor *x = ag_tensor_from(t, AG_SHAPE(n, c->in_channels, c->in_height, c->in_width),
                                  images);
    ag_rng samples = *rng;
    dim_bound_state global_state, local_state;
    dim_bound_state_init(&global_state);
    dim_bound_state_init(&local_state);
    dim_terms terms = dim_objective_graph(t, m, o, x, &samples, &global_state, &local_state);
    if (backward) {
        ag_params_zero_grad(&m->params);
        ag_params_zero_grad(&m->prior_params);
        ag_backward(t, terms.loss);
    }
    return terms;
}

/* ---------------------------------------------------------------------------------------- */
/* Presets                                                                                      */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_presets_have_the_papers_weights)
{
    static const struct {
        const char *name;
        double alpha, beta, gamma;
    } want[] = {{"dim-g", 1, 0, 1}, {"dim-l", 0, 1, 0.1}, {"dim-lg", 1, 1, 0.1}};
    for (int i = 0; i < 3; i++) {
        dim_objective o;
        memset(&o, 0, sizeof o);
        ck_assert_int_eq(dim_objective_preset(&o, want[i].name), 0);
        ck_assert_msg(o.alpha == want[i].alpha && o.beta == want[i].beta
                          && o.gamma == want[i].gamma,
                      "%s: expected (alpha, beta, gamma) = (%g, %g, %g), got (%g, %g, %g)",
                      want[i].name, want[i].alpha, want[i].beta, want[i].gamma, o.alpha, o.beta,
                      o.gamma);
        ck_assert_ptr_nonnull(o.bound);
        ck_assert_str_eq(o.bound->name, "jsd");
        ck_assert_int_eq(o.local_kind, DIM_LOCAL_DOT);
    }
    dim_objective untouched = {7, 8, 9, NULL, DIM_LOCAL_CONCAT};
    ck_assert_int_eq(dim_objective_preset(&untouched, "dim-x"), -1);
    ck_assert_msg(untouched.alpha == 7 && untouched.beta == 8 && untouched.gamma == 9,
                  "an unknown preset changed the objective");
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The discriminator                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* With the last layer's weights zero the logit is its bias b for every sample, so
 * D^ = log sigmoid(b) + log(1 - sigmoid(b)) = -sp(-b) - sp(b), and a blind discriminator
 * (b = 0) scores -2 log 2 and, ties counting as wrong, an accuracy of 0. */
START_TEST(test_prior_objective_of_a_constant_discriminator)
{
    dim_config c;
    dim_config_tiny(&c);
    ag_params ps = {0};
    dim_prior d;
    ag_rng rng;
    ag_rng_seed(&rng, MODEL_SEED);
    dim_prior_init(&d, &ps, &c, &rng);
    ag_fill(d.l2.weight, 0);
    ag_tape *t = ag_tape_new_growing((size_t)1 << 28);
    const double biases[3] = {0, 1.5, -3};
    for (int k = 0; k < 3; k++) {
        ag_fill(d.l2.bias, biases[k]);
        ag_tape_reset(t);
        ag_tensor *y = ag_tensor_new(t, AG_SHAPE(BATCH, c.y_units));
        ag_fill_normal(y, &rng, 0, 1);
        double accuracy = -1;
        ag_tensor *dhat = dim_prior_objective(t, &d, y, &rng, &accuracy);
        double b = (double)(ag_real)biases[k];
        double want = -log1p(exp(-b)) - log1p(exp(b));
        ck_assert_int_eq(dhat->ndim, 0);
        ck_assert_msg(fabs(dhat->value[0] - want) <= 1e-6,
                      "bias %g: expected D^ = %.9g, got %.9g", b, want, (double)dhat->value[0]);
        double want_accuracy = b > 0 || b < 0 ? 0.5 : 0; /* one half always right, or none */
        ck_assert_msg(accuracy == want_accuracy, "bias %g: expected accuracy %g, got %g", b,
                      want_accuracy, accuracy);
    }
    ag_tape_free(t);
    ag_params_free(&ps);
}
END_TEST

/* Codes whose sigmoid sits near 0.12 in every coordinate are far from uniform on the cube: a
 * discriminator trained alone, by its own Adam ascending D^, must learn to tell them apart. */
START_TEST(test_discriminator_alone_learns_to_tell_codes_from_the_prior)
{
    enum { CODES = 256, STEPS = 300 };
    dim_config c;
    dim_config_tiny(&c);
    ag_params ps = {0};
    dim_prior d;
    ag_rng rng;
    ag_rng_seed(&rng, MODEL_SEED);
    dim_prior_init(&d, &ps, &c, &rng);
    ag_real *codes = malloc((size_t)CODES * c.y_units * sizeof *codes); /* [CODES, y_units] */
    for (long i = 0; i < (long)CODES * c.y_units; i++)
        codes[i] = (ag_real)(-2 + 0.5 * ag_rng_normal(&rng));
    ag_adam *adam = ag_adam_new(&ps, 1e-2, 0.9, 0.999, 1e-8);
    ag_tape *t = ag_tape_new_growing((size_t)1 << 28);
    double first = 0, last = 0, accuracy = 0;
    for (int step = 0; step <= STEPS; step++) {
        ag_tape_reset(t);
        ag_tensor *y = ag_tensor_from(t, AG_SHAPE(CODES, c.y_units), codes);
        ag_tensor *dhat = dim_prior_objective(t, &d, y, &rng, &accuracy);
        if (step == 0) first = dhat->value[0];
        last = dhat->value[0];
        if (step == STEPS) break; /* the last evaluation is on fresh prior samples, untrained */
        ag_params_zero_grad(&ps);
        ag_backward(t, dhat);
        ag_params_scale_grad(&ps, -1); /* ascend D^ */
        ag_adam_step(adam);
    }
    ck_assert_msg(accuracy > 0.9, "after %d steps the discriminator's accuracy is %.3f; "
                  "expected more than 0.9", STEPS, accuracy);
    ck_assert_msg(last > first, "D^ went from %.6f to %.6f; ascending it must raise it", first,
                  last);
    ck_assert_msg(last > -0.5, "D^ = %.6f after training; expected near its maximum 0", last);
    ag_tape_free(t);
    ag_adam_free(adam);
    free(codes);
    ag_params_free(&ps);
}
END_TEST

/* The encoder descends D^: one Adam step on the encoder's parameters alone, the discriminator
 * fixed, must lower D^ on the same batch and the same prior samples. */
START_TEST(test_an_encoder_step_lowers_the_prior_term)
{
    dim_config c;
    dim_config_tiny(&c);
    dim_model m;
    dim_model_init(&m, &c, MODEL_SEED);
    ag_real *images = random_images(&c, BATCH, IMAGE_SEED);
    dim_objective prior_only = {0, 0, 1, NULL, DIM_LOCAL_DOT};
    ag_rng rng;
    ag_rng_seed(&rng, PRIOR_SEED);
    ag_tape *t = ag_tape_new_growing((size_t)1 << 28);
    snapshot discriminator = take_snapshot(&m.prior_params);
    ag_adam *encoder_adam = ag_adam_new(&m.params, 1e-3, 0.9, 0.999, 1e-8);

    double before = evaluate(t, &m, &prior_only, images, BATCH, &rng, 1).prior->value[0];
    ag_adam_step(encoder_adam);
    double after = evaluate(t, &m, &prior_only, images, BATCH, &rng, 0).prior->value[0];
    ck_assert_msg(after < before, "the encoder's step took D^ from %.9f to %.9f; it must lower "
                  "it", before, after);
    ck_assert_msg(same_as_snapshot(&m.prior_params, &discriminator),
                  "the encoder's step moved the discriminator");

    ag_adam_free(encoder_adam);
    ag_tape_free(t);
    free_snapshot(&discriminator);
    free(images);
    dim_model_free(&m);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The training step                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* One dim_train_step from (theta0, phi0) to (theta1, phi1), re-evaluated on the same batch and
 * the same prior samples: the discriminator's move alone raises D^, D^(theta0, phi1) >
 * D^(theta0, phi0); the encoder's and critics' move alone lowers the loss, L(theta1, phi0) <
 * L(theta0, phi0). And L(theta0, phi0) is exactly the loss the step reported. */
START_TEST(test_one_train_step_moves_each_player_its_own_way)
{
    dim_config c;
    dim_config_tiny(&c);
    dim_model m;
    dim_model_init(&m, &c, MODEL_SEED);
    ag_real *images = random_images(&c, BATCH, IMAGE_SEED);
    dim_objective o;
    ck_assert_int_eq(dim_objective_preset(&o, "dim-lg"), 0);
    dim_trainer tr;
    dim_trainer_init(&tr, &m, &o, 1e-3, PRIOR_SEED);
    ag_rng samples = tr.rng; /* what the step will draw its prior samples from */
    snapshot theta0 = take_snapshot(&m.params), phi0 = take_snapshot(&m.prior_params);

    dim_step_stats stats = dim_train_step(&tr, images, BATCH);
    ck_assert_int_eq(tr.step, 1);
    ck_assert_int_eq(tr.prior_adam->step, 1);
    snapshot theta1 = take_snapshot(&m.params), phi1 = take_snapshot(&m.prior_params);
    ck_assert_msg(!same_as_snapshot(&m.prior_params, &phi0), "the discriminator did not move");

    ag_tape *t = ag_tape_new_growing((size_t)1 << 28);
    restore_snapshot(&m.params, &theta0);
    restore_snapshot(&m.prior_params, &phi0);
    dim_terms at_start = evaluate(t, &m, &o, images, BATCH, &samples, 0);
    double loss0 = at_start.loss->value[0], prior0 = at_start.prior->value[0];
    ck_assert_msg(loss0 == stats.loss, "re-evaluated loss %.17g, the step reported %.17g", loss0,
                  stats.loss);
    ck_assert_msg(prior0 == stats.prior, "re-evaluated D^ %.17g, the step reported %.17g",
                  prior0, stats.prior);

    restore_snapshot(&m.prior_params, &phi1); /* the discriminator's move alone */
    double prior_moved = evaluate(t, &m, &o, images, BATCH, &samples, 0).prior->value[0];
    ck_assert_msg(prior_moved > prior0, "the discriminator's step took D^ from %.9f to %.9f; it "
                  "must raise it", prior0, prior_moved);

    restore_snapshot(&m.prior_params, &phi0); /* the encoder's and critics' move alone */
    restore_snapshot(&m.params, &theta1);
    double loss_moved = evaluate(t, &m, &o, images, BATCH, &samples, 0).loss->value[0];
    ck_assert_msg(loss_moved < loss0, "the encoder's step took the loss from %.9f to %.9f; it "
                  "must lower it", loss0, loss_moved);

    ag_tape_free(t);
    free_snapshot(&theta0);
    free_snapshot(&phi0);
    free_snapshot(&theta1);
    free_snapshot(&phi1);
    dim_trainer_free(&tr);
    free(images);
    dim_model_free(&m);
}
END_TEST

/* With gamma = 0 there is no game: no prior term, and the discriminator takes no step. */
START_TEST(test_without_a_prior_term_the_discriminator_stays)
{
    dim_config c;
    dim_config_tiny(&c);
    dim_model m;
    dim_model_init(&m, &c, MODEL_SEED);
    ag_real *images = random_images(&c, BATCH, IMAGE_SEED);
    dim_objective o;
    ck_assert_int_eq(dim_objective_preset(&o, "dim-l"), 0);
    o.gamma = 0;
    dim_trainer tr;
    dim_trainer_init(&tr, &m, &o, 1e-4, PRIOR_SEED);
    ag_rng rng_before = tr.rng;
    snapshot phi0 = take_snapshot(&m.prior_params), theta0 = take_snapshot(&m.params);
    dim_step_stats stats = dim_train_step(&tr, images, BATCH);
    ck_assert_msg(isnan(stats.prior) && isnan(stats.prior_accuracy) && isnan(stats.global_mi),
                  "terms that are off must be reported as NaN");
    ck_assert_msg(!isnan(stats.local_mi) && stats.loss == -stats.local_mi,
                  "with alpha = gamma = 0 the loss is minus the local bound");
    ck_assert_msg(same_as_snapshot(&m.prior_params, &phi0), "the discriminator moved");
    ck_assert_int_eq(tr.prior_adam->step, 0);
    ck_assert_msg(memcmp(&rng_before, &tr.rng, sizeof rng_before) == 0,
                  "prior samples were drawn without a prior term");
    ck_assert_msg(!same_as_snapshot(&m.params, &theta0), "the encoder did not move");
    free_snapshot(&phi0);
    free_snapshot(&theta0);
    dim_trainer_free(&tr);
    free(images);
    dim_model_free(&m);
}
END_TEST

/* Two models and trainers from the same seeds, fed the same batches, end bit-identical; the
 * first runs on one thread, the second on all of them. */
START_TEST(test_the_training_step_is_deterministic)
{
    enum { STEPS = 3 };
    dim_config c;
    dim_config_tiny(&c);
    dim_objective o;
    ck_assert_int_eq(dim_objective_preset(&o, "dim-lg"), 0);
    o.bound = dim_bound_find("infonce");
    dim_model m[2];
    dim_trainer tr[2];
    ag_real *images[STEPS];
    for (int s = 0; s < STEPS; s++) images[s] = random_images(&c, BATCH, IMAGE_SEED + s);
    dim_step_stats stats[2][STEPS];
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#endif
    for (int k = 0; k < 2; k++) {
#ifdef _OPENMP
        omp_set_num_threads(k == 0 ? 1 : threads);
#endif
        dim_model_init(&m[k], &c, MODEL_SEED);
        dim_trainer_init(&tr[k], &m[k], &o, 1e-3, PRIOR_SEED);
        for (int s = 0; s < STEPS; s++) stats[k][s] = dim_train_step(&tr[k], images[s], BATCH);
    }
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    for (int s = 0; s < STEPS; s++)
        ck_assert_msg(memcmp(&stats[0][s], &stats[1][s], sizeof stats[0][s]) == 0,
                      "step %d: the two runs report different terms (loss %.17g and %.17g)", s,
                      stats[0][s].loss, stats[1][s].loss);
    snapshot theta = take_snapshot(&m[0].params), phi = take_snapshot(&m[0].prior_params);
    ck_assert_msg(same_as_snapshot(&m[1].params, &theta),
                  "the encoder and critics differ after %d steps from the same seed", STEPS);
    ck_assert_msg(same_as_snapshot(&m[1].prior_params, &phi),
                  "the discriminators differ after %d steps from the same seed", STEPS);
    ck_assert_msg(memcmp(&tr[0].rng, &tr[1].rng, sizeof tr[0].rng) == 0,
                  "the trainers' generators differ");
    free_snapshot(&theta);
    free_snapshot(&phi);
    for (int k = 0; k < 2; k++) {
        dim_trainer_free(&tr[k]);
        dim_model_free(&m[k]);
    }
    for (int s = 0; s < STEPS; s++) free(images[s]);
}
END_TEST

Suite *prior_suite(void)
{
    Suite *s = suite_create("prior");
    TCase *tc = tcase_create("prior matching and the training step");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_presets_have_the_papers_weights);
    tcase_add_test(tc, test_prior_objective_of_a_constant_discriminator);
    tcase_add_test(tc, test_discriminator_alone_learns_to_tell_codes_from_the_prior);
    tcase_add_test(tc, test_an_encoder_step_lowers_the_prior_term);
    tcase_add_test(tc, test_one_train_step_moves_each_player_its_own_way);
    tcase_add_test(tc, test_without_a_prior_term_the_discriminator_stays);
    tcase_add_test(tc, test_the_training_step_is_deterministic);
    suite_add_tcase(s, tc);
    return s;
}
