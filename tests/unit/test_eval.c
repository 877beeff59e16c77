/* test_eval.c -- the evaluation of doc/33-eval.nw: the .npy header byte for byte (and, when
 * python3 with numpy is installed, numpy's own reading of our file), standardisation with the
 * training split's statistics only, the probes on synthetic problems whose answers are known
 * (separable: ~100%; random labels: chance; XOR: the MLP beats the linear probe), the
 * features of the frozen encoder in evaluation mode, and the MI estimate's sign. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/dim/dim.h"
#include "fatal.h"
#include "suites.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static dim_feature_matrix matrix(const char *layer, int rows, int cols)
{
    char error[256];
    dim_feature_matrix m;
    ck_assert_int_eq(dim_feature_matrix_alloc(&m, layer, rows, cols, error, sizeof error), 0);
    return m;
}

/* A temporary directory for files the tests write; removed by remove_dir. */
static void make_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/dim_test_eval_XXXXXX");
    ck_assert_msg(mkdtemp(dir) != NULL, "cannot make a temporary directory");
}

static void remove_dir(const char *dir)
{
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(command), 0);
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size + 1);
    ck_assert_int_eq(fread(bytes, 1, *size, f), *size);
    fclose(f);
    return bytes;
}

/* A python3 that has numpy ("python3" on the PATH, else the system's), or NULL. */
static const char *python_with_numpy(void)
{
    static const char *const candidates[] = {"python3", "/usr/bin/python3"};
    char command[256];
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        snprintf(command, sizeof command, "%s -c 'import numpy' >/dev/null 2>&1", candidates[i]);
        if (system(command) == 0) return candidates[i];
    }
    return NULL;
}

static int files_in(const char *dir)
{
    char command[512];
    snprintf(command, sizeof command, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(command, "r");
    int n = -1;
    ck_assert(p != NULL);
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* .npy files                                                                                 */
/* ---------------------------------------------------------------------------------------- */

START_TEST(npy_header_is_what_numpy_expects)
{
    char h[DIM_NPY_HEADER_MAX];
    long shape[2] = {3, 4};
    size_t n = dim_npy_header(h, "<f4", 2, shape);
    const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    ck_assert_uint_eq(n, 128);                      /* 10 + 59 + 1 = 70: padded to 128 */
    ck_assert_int_eq(memcmp(h, "\x93NUMPY\x01\x00", 8), 0);
    ck_assert_int_eq((unsigned char)h[8] | (unsigned char)h[9] << 8, 118);  /* n - 10 */
    ck_assert_int_eq(memcmp(h + 10, dict, strlen(dict)), 0);
    for (size_t i = 10 + strlen(dict); i < n - 1; i++)
        ck_assert_msg(h[i] == ' ', "byte %zu of the header is 0x%02x, not a space", i, h[i]);
    ck_assert_int_eq(h[n - 1], '\n');

    long big[2] = {60000, 6272};
    n = dim_npy_header(h, "<f4", 2, big);
    ck_assert_uint_eq(n % DIM_NPY_ALIGN, 0);
    ck_assert_int_eq((size_t)((unsigned char)h[8] | (unsigned char)h[9] << 8), n - 10);
    ck_assert_msg(strstr(h + 10, "'shape': (60000, 6272), }") != NULL, "shape in %.*s",
                  (int)n - 10, h + 10);
    ck_assert_int_eq(h[n - 1], '\n');

    long count = 5;
    n = dim_npy_header(h, "|u1", 1, &count);
    ck_assert_uint_eq(n, 128);
    const char dict1[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }";
    ck_assert_int_eq(memcmp(h + 10, dict1, strlen(dict1)), 0);
}
END_TEST

START_TEST(npy_file_holds_the_values_and_numpy_reads_it)
{
    char dir[64], path[128], error[512];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/features.npy", dir);
    dim_feature_matrix m = matrix("y", 3, 4);
    for (int i = 0; i < 12; i++) m.values[i] = (ag_real)(i * 0.5 - 2.25);
    ck_assert_msg(dim_npy_write_features(path, &m, error, sizeof error) == 0, "%s", error);
    ck_assert_int_eq(files_in(dir), 1);  /* no temporary left behind */

    size_t size;
    unsigned char *bytes = read_all(path, &size);
    ck_assert_uint_eq(size, 128 + 12 * 4);
    for (int i = 0; i < 12; i++) {
        const unsigned char *p = bytes + 128 + 4 * i;
        uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                        | (uint32_t)p[3] << 24;
        float v;
        memcpy(&v, &bits, 4);
        ck_assert_msg(v == (float)(i * 0.5 - 2.25), "value %d is %g", i, (double)v);
    }
    free(bytes);

    const char *python = python_with_numpy();
    if (python) {  /* numpy reads our file, and writes the same array to the same bytes */
        char command[768];
        snprintf(command, sizeof command,
                 "%s -c \"import numpy as np; a = np.load('%s'); "
                 "assert a.dtype == np.float32 and a.shape == (3, 4) and a.flags.c_contiguous; "
                 "assert (a.ravel() == np.arange(12) * 0.5 - 2.25).all(); "
                 "np.save('%s.numpy.npy', a)\"", python, path, path);
        ck_assert_msg(system(command) == 0, "numpy could not load %s as expected", path);
        char theirs[160];
        snprintf(theirs, sizeof theirs, "%s.numpy.npy", path);
        size_t their_size;
        unsigned char *ours = read_all(path, &size), *their_bytes = read_all(theirs, &their_size);
        ck_assert_msg(size == their_size && memcmp(ours, their_bytes, size) == 0,
                      "numpy.save writes other bytes than ours for the same array");
        free(ours);
        free(their_bytes);
    } else {
        fprintf(stderr, "test_eval: python3 with numpy is not installed; numpy's check skipped\n");
    }
    dim_feature_matrix_free(&m);
    remove_dir(dir);
}
END_TEST

START_TEST(npy_labels_are_bytes)
{
    char dir[64], path[128], error[512];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    const unsigned char labels[5] = {3, 1, 4, 1, 5};
    ck_assert_msg(dim_npy_write_labels(path, labels, 5, error, sizeof error) == 0, "%s", error);
    size_t size;
    unsigned char *bytes = read_all(path, &size);
    ck_assert_uint_eq(size, 128 + 5);
    ck_assert_int_eq(memcmp(bytes + 128, labels, 5), 0);
    free(bytes);
    const char *python = python_with_numpy();
    if (python) {
        char command[512];
        snprintf(command, sizeof command,
                 "%s -c \"import numpy as np; a = np.load('%s'); "
                 "assert a.dtype == np.uint8 and a.shape == (5,) and list(a) == [3, 1, 4, 1, 5]\"",
                 python, path);
        ck_assert_msg(system(command) == 0, "numpy could not load %s as expected", path);
    }
    remove_dir(dir);
}
END_TEST

START_TEST(npy_write_failure_names_the_file_and_a_rewrite_replaces_the_file)
{
    char dir[64], path[128], error[512];
    make_dir(dir, sizeof dir);
    dim_feature_matrix m = matrix("y", 2, 2);
    snprintf(path, sizeof path, "%s/no/such/dir/x.npy", dir);
    ck_assert_int_eq(dim_npy_write_features(path, &m, error, sizeof error), 1);
    ck_assert_msg(strstr(error, path) != NULL, "the message \"%s\" does not name %s", error, path);

    /* An existing file is replaced whole: the old content until the rename, then the new. */
    snprintf(path, sizeof path, "%s/x.npy", dir);
    FILE *f = fopen(path, "w");
    fputs("old", f);
    fclose(f);
    ck_assert_int_eq(dim_npy_write_features(path, &m, error, sizeof error), 0);
    size_t size;
    free(read_all(path, &size));
    ck_assert_uint_eq(size, 128 + 4 * 4);
    ck_assert_int_eq(files_in(dir), 1);
    dim_feature_matrix_free(&m);
    remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Standardisation                                                                           */
/* ---------------------------------------------------------------------------------------- */

START_TEST(standardisation_uses_the_training_statistics_only)
{
    char error[256];
    enum { ROWS = 1000, TEST_ROWS = 50 };
    dim_feature_matrix train = matrix("fc", ROWS, 3), test = matrix("fc", TEST_ROWS, 3);
    ag_rng rng;
    ag_rng_seed(&rng, 7);
    for (int i = 0; i < ROWS; i++) {
        train.values[i * 3 + 0] = (ag_real)(5 + 2 * ag_rng_normal(&rng));
        train.values[i * 3 + 1] = (ag_real)(-3 + 0.1 * ag_rng_normal(&rng));
        train.values[i * 3 + 2] = 4;   /* constant: centred, not scaled */
    }
    for (int i = 0; i < TEST_ROWS; i++) {  /* another distribution altogether */
        test.values[i * 3 + 0] = (ag_real)(100 + i);
        test.values[i * 3 + 1] = (ag_real)(-i);
        test.values[i * 3 + 2] = (ag_real)(4 + i);
    }
    ag_real original[TEST_ROWS * 3];
    memcpy(original, test.values, sizeof original);
    /* The training statistics, computed here independently. */
    double mean[3] = {0}, var[3] = {0};
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < 3; j++) mean[j] += train.values[i * 3 + j] / (double)ROWS;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < 3; j++)
            var[j] += pow(train.values[i * 3 + j] - mean[j], 2) / ROWS;

    dim_standardiser s;
    ck_assert_int_eq(dim_standardiser_fit(&s, &train, error, sizeof error), 0);
    for (int j = 0; j < 3; j++) {
        ck_assert_msg(fabs(s.mean[j] - mean[j]) < 1e-9 * (1 + fabs(mean[j])),
                      "mean %d: %g, expected %g", j, s.mean[j], mean[j]);
        double std = j == 2 ? 1 : sqrt(var[j]);
        ck_assert_msg(fabs(s.scale[j] - std) < 1e-9 * std, "scale %d: %g, expected %g", j,
                      s.scale[j], std);
    }
    dim_standardiser_apply(&s, &train);
    dim_standardiser_apply(&s, &test);
    double tol = sizeof(ag_real) == sizeof(float) ? 1e-4 : 1e-9;
    for (int j = 0; j < 2; j++) {  /* the training split: mean 0, std 1 */
        double m = 0, v = 0;
        for (int i = 0; i < ROWS; i++) m += train.values[i * 3 + j] / (double)ROWS;
        for (int i = 0; i < ROWS; i++) v += pow(train.values[i * 3 + j] - m, 2) / ROWS;
        ck_assert_msg(fabs(m) < tol && fabs(v - 1) < tol, "column %d: mean %g, var %g", j, m, v);
    }
    for (int i = 0; i < TEST_ROWS; i++)  /* the test split: the training transform exactly */
        for (int j = 0; j < 3; j++) {
            double expected = (original[i * 3 + j] - s.mean[j]) / s.scale[j];
            ck_assert_msg(fabs(test.values[i * 3 + j] - expected) < tol * (1 + fabs(expected)),
                          "test [%d, %d] = %g, expected %g", i, j,
                          (double)test.values[i * 3 + j], expected);
        }
    dim_standardiser_free(&s);
    dim_feature_matrix_free(&train);
    dim_feature_matrix_free(&test);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Probes                                                                                     */
/* ---------------------------------------------------------------------------------------- */

typedef struct problem {
    dim_feature_matrix train, test;
    int *train_labels, *test_labels;
} problem;

/* Points in [-1, 1]^dim; label = the class of the first coordinates by rule. */
enum { RULE_SEPARABLE, RULE_RANDOM, RULE_XOR };

static int label_of(const ag_real *x, int rule, ag_rng *rng)
{
    switch (rule) {
    case RULE_SEPARABLE:  /* three classes cut by two parallel planes, with a margin */
        return x[0] + 0.5 * x[1] < -0.4 ? 0 : x[0] + 0.5 * x[1] < 0.4 ? 1 : 2;
    case RULE_RANDOM: return (int)ag_rng_below(rng, 2);
    default: return (x[0] > 0) == (x[1] > 0);
    }
}

static void make_problem(problem *p, int rule, int rows, int test_rows, int dim, uint64_t seed)
{
    ag_rng rng;
    ag_rng_seed(&rng, seed);
    p->train = matrix("fc", rows, dim);
    p->test = matrix("fc", test_rows, dim);
    p->train_labels = malloc((size_t)rows * sizeof(int));
    p->test_labels = malloc((size_t)test_rows * sizeof(int));
    for (int split = 0; split < 2; split++) {
        dim_feature_matrix *m = split ? &p->test : &p->train;
        int *labels = split ? p->test_labels : p->train_labels;
        for (int i = 0; i < m->rows; i++) {
            ag_real *x = m->values + (size_t)i * dim;
            do {
                for (int j = 0; j < dim; j++) x[j] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
            } while (rule == RULE_SEPARABLE && fabs(fabs(x[0] + 0.5 * x[1]) - 0.4) < 0.05);
            labels[i] = label_of(x, rule, &rng);
        }
    }
}

static void free_problem(problem *p)
{
    dim_feature_matrix_free(&p->train);
    dim_feature_matrix_free(&p->test);
    free(p->train_labels);
    free(p->test_labels);
}

START_TEST(probe_names)
{
    dim_probe_kind kind;
    ck_assert_int_eq(dim_probe_find("linear", &kind), 0);
    ck_assert_int_eq(kind, DIM_PROBE_LINEAR);
    ck_assert_int_eq(dim_probe_find("mlp", &kind), 0);
    ck_assert_int_eq(kind, DIM_PROBE_MLP);
    ck_assert_int_eq(dim_probe_find("svm", &kind), -1);
    ck_assert_str_eq(dim_probe_name(DIM_PROBE_LINEAR), "linear");
    ck_assert_str_eq(dim_probe_name(DIM_PROBE_MLP), "mlp");
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_MLP);
    ck_assert_int_eq(c.hidden, 200);  /* the paper's probe */
    ck_assert(c.dropout == 0.1);
}
END_TEST

/* A linearly separable problem: the logistic regression learns it completely, and its loss
 * falls near 0, which a softmax applied twice (a loss floor of log((e + K - 1) / e)) would
 * not allow. */
START_TEST(linear_probe_separates_a_separable_problem)
{
    problem p;
    make_problem(&p, RULE_SEPARABLE, 2000, 1000, 5, 11);
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_LINEAR);
    c.epochs = 60;
    c.batch = 64;
    c.lr_candidates = 1;
    c.lr[0] = 0.05;
    dim_probe_result r = dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 3);
    ck_assert_msg(r.test_accuracy >= 0.99, "test accuracy %.4f on a separable problem",
                  r.test_accuracy);
    ck_assert_msg(r.train_accuracy >= 0.995, "train accuracy %.4f", r.train_accuracy);
    double floor_of_double_softmax = log((exp(1.0) + 2) / exp(1.0));
    ck_assert_msg(r.final_loss < 0.2 && r.final_loss < floor_of_double_softmax,
                  "final loss %.4f: the logits cannot become confident (softmax applied twice?)",
                  r.final_loss);
    free_problem(&p);
}
END_TEST

START_TEST(linear_probe_is_at_chance_on_random_labels)
{
    problem p;
    make_problem(&p, RULE_RANDOM, 2000, 4000, 10, 12);
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_LINEAR);
    c.epochs = 20;
    c.batch = 64;
    dim_probe_result r = dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 2);
    /* 4000 test labels: the standard deviation of chance accuracy is 0.008 */
    ck_assert_msg(fabs(r.test_accuracy - 0.5) < 0.04, "test accuracy %.4f on random labels",
                  r.test_accuracy);
    free_problem(&p);
}
END_TEST

START_TEST(mlp_probe_beats_the_linear_probe_on_xor)
{
    problem p;
    make_problem(&p, RULE_XOR, 2000, 1000, 4, 13);
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_LINEAR);
    c.epochs = 30;
    c.batch = 64;
    c.lr_candidates = 1;
    c.lr[0] = 0.01;
    dim_probe_result linear = dim_probe_run(&c, &p.train, p.train_labels, &p.test,
                                            p.test_labels, 2);
    dim_probe_defaults(&c, DIM_PROBE_MLP);
    c.epochs = 30;
    c.batch = 64;
    c.lr[0] = 0.01;
    dim_probe_result mlp = dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 2);
    ck_assert_msg(linear.test_accuracy < 0.65, "linear probe %.4f on XOR: better than a line "
                  "can be", linear.test_accuracy);
    ck_assert_msg(mlp.test_accuracy > 0.93, "MLP probe %.4f on XOR", mlp.test_accuracy);
    ck_assert_msg(mlp.test_accuracy > linear.test_accuracy + 0.25, "MLP %.4f, linear %.4f",
                  mlp.test_accuracy, linear.test_accuracy);
    free_problem(&p);
}
END_TEST

/* With a rate too small to learn anything in 10 epochs and a workable one, the held-out rows
 * pick the workable one; the probe then reported is exactly the one trained with that rate
 * alone, and the choice does not depend on the test labels. */
START_TEST(linear_probe_chooses_its_rate_on_held_out_training_rows)
{
    problem p;
    make_problem(&p, RULE_SEPARABLE, 1000, 500, 5, 15);
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_LINEAR);
    ck_assert_int_ge(c.lr_candidates, 2);  /* the linear probe chooses by default */
    c.epochs = 10;
    c.batch = 32;
    c.lr_candidates = 2;
    c.lr[0] = 1e-7;
    c.lr[1] = 0.05;
    dim_probe_result chosen = dim_probe_run(&c, &p.train, p.train_labels, &p.test,
                                            p.test_labels, 3);
    ck_assert_msg(chosen.lr == 0.05, "chose lr %g; held-out accuracy %.4f at 1e-7, %.4f at 0.05",
                  chosen.lr, chosen.holdout_accuracy[0], chosen.holdout_accuracy[1]);
    ck_assert_msg(chosen.holdout_accuracy[1] > 0.9 && chosen.holdout_accuracy[0] < 0.8,
                  "held-out accuracy %.4f at 1e-7, %.4f at 0.05", chosen.holdout_accuracy[0],
                  chosen.holdout_accuracy[1]);

    c.lr_candidates = 1;
    c.lr[0] = 0.05;
    dim_probe_result alone = dim_probe_run(&c, &p.train, p.train_labels, &p.test,
                                           p.test_labels, 3);
    ck_assert_msg(alone.final_loss == chosen.final_loss
                  && alone.test_accuracy == chosen.test_accuracy,
                  "the chosen probe (loss %.9g, test %.4f) is not the probe trained with its "
                  "rate alone (loss %.9g, test %.4f)", chosen.final_loss, chosen.test_accuracy,
                  alone.final_loss, alone.test_accuracy);

    for (int i = 0; i < p.test.rows; i++) p.test_labels[i] = 0;  /* other test labels */
    c.lr_candidates = 2;
    c.lr[0] = 1e-7;
    dim_probe_result blind = dim_probe_run(&c, &p.train, p.train_labels, &p.test,
                                           p.test_labels, 3);
    ck_assert_msg(blind.lr == chosen.lr && blind.holdout_accuracy[0] == chosen.holdout_accuracy[0]
                  && blind.holdout_accuracy[1] == chosen.holdout_accuracy[1],
                  "the test labels changed the choice of the rate");
    free_problem(&p);
}
END_TEST

/* A configuration with no learning rate, a rate that is not positive or more rates than the
 * result has room for is refused with one message naming the rates. */
START_TEST(probe_refuses_a_bad_learning_rate_list)
{
    problem p;
    make_problem(&p, RULE_SEPARABLE, 40, 20, 3, 2);
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_LINEAR);
    c.lr_candidates = 0;
    FAILS_WITH(dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 3),
               "1 to 4 learning rates");
    c.lr_candidates = 2;
    c.lr[1] = 0;
    FAILS_WITH(dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 3),
               "each > 0");
    c.lr_candidates = DIM_PROBE_MAX_LR_CANDIDATES + 1;
    FAILS_WITH(dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 3),
               "5 learning rates");
    free_problem(&p);
}
END_TEST

START_TEST(probes_are_deterministic)
{
    problem p;
    make_problem(&p, RULE_XOR, 500, 200, 4, 14);
    dim_probe_config c;
    dim_probe_defaults(&c, DIM_PROBE_MLP);
    c.epochs = 3;
    c.batch = 32;
    c.seed = 5;
    dim_probe_result a = dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 2);
    dim_probe_result b = dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 2);
    ck_assert_msg(a.final_loss == b.final_loss && a.test_accuracy == b.test_accuracy,
                  "two runs with seed 5: loss %.9g and %.9g", a.final_loss, b.final_loss);
    c.seed = 6;
    dim_probe_result d = dim_probe_run(&c, &p.train, p.train_labels, &p.test, p.test_labels, 2);
    ck_assert_msg(d.final_loss != a.final_loss, "seeds 5 and 6 gave the same loss %.9g",
                  a.final_loss);
    free_problem(&p);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Features of the frozen encoder                                                            */
/* ---------------------------------------------------------------------------------------- */

static void tiny_dataset(dim_dataset *d, int count, uint64_t seed)
{
    ag_rng rng;
    ag_rng_seed(&rng, seed);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "tiny");
    d->count = count;
    d->channels = 1;
    d->height = d->width = 12;
    d->nclasses = 10;
    d->pixels = malloc((size_t)count * 144);
    d->labels = malloc((size_t)count);
    for (int i = 0; i < count * 144; i++) d->pixels[i] = (unsigned char)ag_rng_below(&rng, 256);
    for (int i = 0; i < count; i++) d->labels[i] = (unsigned char)(i % 10);
}

/* Evaluation mode: an image's features do not depend on the rest of its batch (so the batch
 * size does not matter), they are the encoder's outputs for that image alone, and extracting
 * them changes no running statistic. */
START_TEST(features_are_the_frozen_encoder_in_evaluation_mode)
{
    dim_config config;
    dim_config_tiny(&config);
    dim_model model;
    dim_model_init(&model, &config, 3);
    /* Running statistics away from their initial 0 and 1, so that using them shows. */
    for (int i = 0; i < model.params.count; i++) {
        ag_tensor *x = model.params.items[i];
        if (strstr(x->name, "running_mean")) ag_fill(x, 0.3);
        if (strstr(x->name, "running_var")) ag_fill(x, 2.5);
    }
    dim_dataset d;
    tiny_dataset(&d, 7, 21);
    const char *layers[3] = {"conv", "fc", "y"};
    dim_feature_matrix by2[3], by5[3];
    char error[256];
    ck_assert_int_eq(dim_extract_features(&model.encoder, &d, 3, layers, 2, by2, error,
                                          sizeof error), 0);
    ck_assert_int_eq(dim_extract_features(&model.encoder, &d, 3, layers, 5, by5, error,
                                          sizeof error), 0);
    ck_assert_int_eq(by2[0].cols, 4 * 3 * 3);
    ck_assert_int_eq(by2[1].cols, 6);
    ck_assert_int_eq(by2[2].cols, 3);
    double tol = sizeof(ag_real) == sizeof(float) ? 1e-5 : 1e-12;
    for (int k = 0; k < 3; k++) {
        ck_assert_str_eq(by2[k].layer, layers[k]);
        ck_assert_int_eq(by2[k].rows, 7);
        for (long i = 0; i < (long)by2[k].rows * by2[k].cols; i++)
            ck_assert_msg(fabs(by2[k].values[i] - by5[k].values[i]) < tol,
                          "%s feature %ld: %g in batches of 2, %g in batches of 5", layers[k], i,
                          (double)by2[k].values[i], (double)by5[k].values[i]);
    }
    /* Image 6 alone, through dim_encode on an evaluation tape. */
    ag_tape *t = ag_tape_new_growing((size_t)1 << 26);
    ag_tape_set_training(t, 0);
    ag_real image[144];
    int index = 6;
    dim_dataset_batch(&d, &index, 1, image, NULL);
    ag_tensor *alone = ag_tensor_from(t, AG_SHAPE(1, 1, 12, 12), image);  /* [1, 1, 12, 12] */
    dim_features f = dim_encode(t, &model.encoder, alone);
    for (int j = 0; j < 3; j++)
        ck_assert_msg(fabs(f.y->value[j] - by2[2].values[6 * 3 + j]) < tol, "y[6][%d]", j);
    ag_tape_free(t);
    for (int i = 0; i < model.params.count; i++) {
        ag_tensor *x = model.params.items[i];
        double expected = strstr(x->name, "running_mean") ? 0.3
                        : strstr(x->name, "running_var") ? 2.5 : NAN;
        for (long e = 0; !isnan(expected) && e < x->size; e++)
            ck_assert_msg(fabs(x->value[e] - expected) < 1e-6, "%s changed", x->name);
    }
    for (int k = 0; k < 3; k++) {
        dim_feature_matrix_free(&by2[k]);
        dim_feature_matrix_free(&by5[k]);
    }
    dim_feature_matrix pixels;
    ck_assert_int_eq(dim_pixel_features(&d, &pixels, error, sizeof error), 0);
    ck_assert_int_eq(pixels.cols, 144);
    ck_assert_msg(fabs(pixels.values[5] - (d.pixels[5] * 2.0 / 255 - 1)) < 1e-6, "pixel 5");
    dim_feature_matrix_free(&pixels);
    dim_dataset_free(&d);
    dim_model_free(&model);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The MI estimate                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void fill_normal(dim_feature_matrix *m, ag_rng *rng)
{
    for (long i = 0; i < (long)m->rows * m->cols; i++) m->values[i] = (ag_real)ag_rng_normal(rng);
}

/* Y a copy of X: the critic finds the pairs and the bound is well above 0; Y independent of
 * X: there is nothing to find, and the held-out bound is about 0. */
START_TEST(mi_estimate_sees_dependence_and_its_absence)
{
    enum { ROWS = 2048, TEST_ROWS = 512, DX = 6, DY = 3 };
    dim_feature_matrix x = matrix("pixels", ROWS, DX), xt = matrix("pixels", TEST_ROWS, DX);
    dim_feature_matrix y = matrix("y", ROWS, DY), yt = matrix("y", TEST_ROWS, DY);
    ag_rng rng;
    ag_rng_seed(&rng, 17);
    fill_normal(&x, &rng);
    fill_normal(&xt, &rng);
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < DY; j++) y.values[i * DY + j] = x.values[i * DX + j];
    for (int i = 0; i < TEST_ROWS; i++)
        for (int j = 0; j < DY; j++) yt.values[i * DY + j] = xt.values[i * DX + j];
    dim_mi_config c;
    dim_mi_defaults(&c);
    c.hidden = 32;
    c.embed = 16;
    c.steps = 400;
    c.batch = 64;
    c.lr = 1e-3;
    dim_mi_result dependent = dim_mi_estimate(&c, &x, &y, &xt, &yt);
    fill_normal(&y, &rng);
    fill_normal(&yt, &rng);
    dim_mi_result independent = dim_mi_estimate(&c, &x, &y, &xt, &yt);
    ck_assert_int_eq(dependent.batches, TEST_ROWS / 64);
    ck_assert_msg(dependent.estimate > 1.0, "Y = X[:3]: estimate %.3f nats",
                  dependent.estimate);
    ck_assert_msg(fabs(independent.estimate) < 0.25, "independent Y: estimate %.3f nats",
                  independent.estimate);
    dim_feature_matrix_free(&x);
    dim_feature_matrix_free(&xt);
    dim_feature_matrix_free(&y);
    dim_feature_matrix_free(&yt);
}
END_TEST

Suite *eval_suite(void)
{
    Suite *s = suite_create("eval");
    TCase *npy = tcase_create("npy");
    tcase_set_timeout(npy, 60); /* the check by NumPy starts a Python, slow on a busy machine */
    tcase_add_test(npy, npy_header_is_what_numpy_expects);
    tcase_add_test(npy, npy_file_holds_the_values_and_numpy_reads_it);
    tcase_add_test(npy, npy_labels_are_bytes);
    tcase_add_test(npy, npy_write_failure_names_the_file_and_a_rewrite_replaces_the_file);
    suite_add_tcase(s, npy);
    TCase *standardise = tcase_create("standardisation");
    tcase_add_test(standardise, standardisation_uses_the_training_statistics_only);
    suite_add_tcase(s, standardise);
    TCase *probes = tcase_create("probes");
    tcase_set_timeout(probes, 120);
    tcase_add_test(probes, probe_names);
    tcase_add_test(probes, linear_probe_separates_a_separable_problem);
    tcase_add_test(probes, linear_probe_is_at_chance_on_random_labels);
    tcase_add_test(probes, mlp_probe_beats_the_linear_probe_on_xor);
    tcase_add_test(probes, linear_probe_chooses_its_rate_on_held_out_training_rows);
    tcase_add_test(probes, probe_refuses_a_bad_learning_rate_list);
    tcase_add_test(probes, probes_are_deterministic);
    suite_add_tcase(s, probes);
    TCase *features = tcase_create("features");
    tcase_set_timeout(features, 60);
    tcase_add_test(features, features_are_the_frozen_encoder_in_evaluation_mode);
    suite_add_tcase(s, features);
    TCase *mi = tcase_create("mi");
    tcase_set_timeout(mi, 120);
    tcase_add_test(mi, mi_estimate_sees_dependence_and_its_absence);
    suite_add_tcase(s, mi);
    return s;
}
