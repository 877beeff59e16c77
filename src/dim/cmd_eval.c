/* cmd_eval.c -- dim eval: probes on frozen features, the baselines, an estimate of I(X; Y);
 * dim embed: frozen features as a NumPy file.
 * Tangled from doc/33-eval.nw: edit the book, not this file. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dim.h"
#include "cli.h"

enum { EVAL_EXTRACT_BATCH = 256, EVAL_MAX_LAYERS = 3, EVAL_MAX_PROBES = 2 };

typedef struct eval_options {
    const char *ckpt, *baseline, *data, *tsv, *probes, *layers;
    int probe_epochs, probe_batch;  /* 0: each probe's default */
    double probe_lr;                /* 0: each probe's default */
    int seed, threads, mi, no_mi, mi_steps;  /* mi is the default; no_mi turns it off */
} eval_options;

static const char eval_usage[] =
    "--ckpt FILE | --baseline raw|random  [--data SPEC] [--tsv FILE] [--probes linear,mlp] "
    "[--layers conv,fc,y] [--probe-epochs N] [--seed S] [--threads T] [--mi | --no-mi]";

/* Parse argv into o; returns 0, DIM_PARSED_HELP, or DIM_EXIT_USAGE after one line. */
static int read_eval_options(int argc, char **argv, eval_options *o)
{
    memset(o, 0, sizeof *o);
    o->probes = "linear,mlp";
    o->layers = "conv,fc,y";
    o->mi_steps = 2000;
    const dim_option options[] = {
        {"ckpt", DIM_OPT_STRING, &o->ckpt, 0, 0, "FILE    the checkpoint to evaluate"},
        {"baseline", DIM_OPT_STRING, &o->baseline, 0, 0,
         "KIND    instead: raw (the pixels) or random (an untrained encoder)"},
        {"data", DIM_OPT_STRING, &o->data, 0, 0,
         "SPEC    dataset (default: the checkpoint's; fashion-mnist for a baseline)"},
        {"tsv", DIM_OPT_STRING, &o->tsv, 0, 0, "FILE    also write the table as TSV"},
        {"probes", DIM_OPT_STRING, &o->probes, 0, 0, "LIST    linear,mlp (default both)"},
        {"layers", DIM_OPT_STRING, &o->layers, 0, 0, "LIST    conv,fc,y (default all three)"},
        {"probe-epochs", DIM_OPT_INT, &o->probe_epochs, 1, 10000,
         "N       epochs of every probe (default 10)"},
        {"probe-batch", DIM_OPT_INT, &o->probe_batch, 2, 65536,
         "N       rows per probe step (default 256)"},
        {"probe-lr", DIM_OPT_DOUBLE, &o->probe_lr, 1e-8, 10,
         "X       the probes' initial learning rate (default: mlp 0.003; linear chooses from "
         "0.001, 0.003, 0.01 on held-out training rows)"},
        {"seed", DIM_OPT_INT, &o->seed, 0, 2147483647,
         "S       seed of the probes, the MI critic and the random encoder (default 0)"},
        {"threads", DIM_OPT_INT, &o->threads, 1, 1024, "T       OpenMP threads (default: all)"},
        {"mi", DIM_OPT_FLAG, &o->mi, 0, 0,
         "        estimate I(X; Y) with a separately trained critic, DV bound (default)"},
        {"no-mi", DIM_OPT_FLAG, &o->no_mi, 0, 0, "        do not estimate I(X; Y)"},
        {"mi-steps", DIM_OPT_INT, &o->mi_steps, 1, 1000000,
         "N       training steps of that critic (default 2000)"},
    };
    int status = dim_parse_options("eval", eval_usage, options,
                                   (int)(sizeof options / sizeof options[0]), argc, argv);
    if (status != 0) return status;
    if (o->mi && o->no_mi) {
        fprintf(stderr, "dim eval: --mi and --no-mi contradict each other\n"
                        "usage: dim eval %s\n", eval_usage);
        return DIM_EXIT_USAGE;
    }
    o->mi = !o->no_mi;
    if ((o->ckpt == NULL) == (o->baseline == NULL)) {
        fprintf(stderr, "dim eval: give either --ckpt FILE or --baseline raw|random\n"
                        "usage: dim eval %s\n", eval_usage);
        return DIM_EXIT_USAGE;
    }
    if (o->baseline && strcmp(o->baseline, "raw") != 0 && strcmp(o->baseline, "random") != 0) {
        fprintf(stderr, "dim eval: --baseline: expected raw or random: '%s'\n"
                        "usage: dim eval %s\n", o->baseline, eval_usage);
        return DIM_EXIT_USAGE;
    }
    return 0;
}
/* Split list (copied into buf) into at most max names from known[]; each once. Returns the
 * count, or -1 after one line on stderr naming the option and the problem. */
static int parse_names(const char *option, const char *list, char *buf, size_t buf_size,
                       const char **names, int max, const char *const *known, int nknown)
{
    snprintf(buf, buf_size, "%s", list);
    int n = 0;
    for (char *item = strtok(buf, ","); item != NULL; item = strtok(NULL, ",")) {
        int found = 0;
        for (int k = 0; k < nknown; k++) found |= strcmp(item, known[k]) == 0;
        for (int k = 0; k < n; k++)
            if (strcmp(item, names[k]) == 0) found = -1;
        if (found != 1 || n == max) {
            fprintf(stderr, "dim eval: --%s: '%s' is %s (expected a list of", option, item,
                    found < 0 ? "given twice" : n == max ? "one too many" : "not known");
            for (int k = 0; k < nknown; k++) fprintf(stderr, "%s%s", k ? ", " : " ", known[k]);
            fprintf(stderr, ")\nusage: dim eval %s\n", eval_usage);
            return -1;
        }
        names[n++] = item;
    }
    if (n == 0) fprintf(stderr, "dim eval: --%s: an empty list\nusage: dim eval %s\n", option,
                        eval_usage);
    return n > 0 ? n : -1;
}
/* 0, or an exit status after one line on stderr. */
static int load_splits(const char *command, const char *spec, dim_dataset *train,
                       dim_dataset *test)
{
    char error[512];
    int rc = dim_dataset_load(train, spec, DIM_SPLIT_TRAIN, error, sizeof error);
    if (rc == DIM_DATA_OK) {
        rc = dim_dataset_load(test, spec, DIM_SPLIT_TEST, error, sizeof error);
        if (rc != DIM_DATA_OK) dim_dataset_free(train);
    }
    if (rc == DIM_DATA_OK) return 0;
    fprintf(stderr, "dim %s: %s\n", command, error);
    return rc == DIM_DATA_BAD_SPEC ? DIM_EXIT_USAGE : DIM_EXIT_DATA;
}
static int *labels_of(const dim_dataset *d)
{
    int *labels = malloc((size_t)d->count * sizeof *labels);  /* [count] */
    if (labels == NULL) ag_fatal("dim: out of memory for %d labels", d->count);
    for (int i = 0; i < d->count; i++) labels[i] = d->labels[i];
    return labels;
}
/* Fill m from o (and info, for a checkpoint). 0, or an exit status after one line. */
static int make_model(const char *command, const char *ckpt, int seed, const dim_dataset *d,
                      dim_model *m, dim_run_info *info)
{
    char error[512];
    if (ckpt == NULL) {
        dim_config c;
        if (dim_config_for_input(&c, d->channels, d->height, d->width) != 0) {
            fprintf(stderr, "dim %s: %s images are %dx%dx%d; the paper has an encoder for "
                            "1x28x28 and 3x32x32 only\n", command, d->name, d->channels,
                    d->height, d->width);
            return DIM_EXIT_USAGE;
        }
        dim_model_init(m, &c, (uint64_t)seed);
        return 0;
    }
    if (dim_checkpoint_load(ckpt, m, NULL, NULL, info, error, sizeof error) != 0) {
        fprintf(stderr, "dim %s: %s\n", command, error);
        return DIM_EXIT_DATA;
    }
    return 0;
}

static int check_shapes(const char *command, const char *ckpt, const dim_model *m,
                        const dim_dataset *d)
{
    const dim_config *c = &m->config;
    if (d->channels == c->in_channels && d->height == c->in_height && d->width == c->in_width)
        return 0;
    fprintf(stderr, "dim %s: --data: %s images are %dx%dx%d, but the encoder of %s takes "
                    "%dx%dx%d\n", command, d->name, d->channels, d->height, d->width, ckpt,
            c->in_channels, c->in_height, c->in_width);
    return DIM_EXIT_USAGE;
}
typedef struct eval_table {
    int nlayers, nprobes;
    const char *layers[EVAL_MAX_LAYERS];     /* rows: "conv", "fc", "y" or "pixels" */
    dim_probe_kind probes[EVAL_MAX_PROBES];  /* columns */
    double accuracy[EVAL_MAX_LAYERS][EVAL_MAX_PROBES];
} eval_table;

/* Standardise the features of layer k, run every probe on them, free them. 0, or 1. */
static int probe_layer(const eval_options *o, eval_table *table, int k,
                       dim_feature_matrix *train, dim_feature_matrix *test,
                       const int *train_labels, const int *test_labels, int classes, int keep)
{
    char error[512];
    dim_standardiser s;
    if (dim_standardiser_fit(&s, train, error, sizeof error) != 0) {
        fprintf(stderr, "dim eval: %s\n", error);
        return 1;
    }
    dim_standardiser_apply(&s, train);
    dim_standardiser_apply(&s, test);
    dim_standardiser_free(&s);
    for (int p = 0; p < table->nprobes; p++) {
        dim_probe_config c;
        dim_probe_defaults(&c, table->probes[p]);
        if (o->probe_epochs) c.epochs = o->probe_epochs;
        if (o->probe_batch) c.batch = o->probe_batch;
        if (o->probe_lr > 0) { /* the user's rate, not a choice */
            c.lr_candidates = 1;
            c.lr[0] = o->probe_lr;
        }
        c.seed = (uint64_t)o->seed;
        double start = omp_get_wtime();
        dim_probe_result r = dim_probe_run(&c, train, train_labels, test, test_labels, classes);
        table->accuracy[k][p] = r.test_accuracy;
        fprintf(stderr, "dim eval: %-6s %-6s probe (%d features, %d epochs, lr %g): test %.2f%%, "
                        "train %.2f%%, %.1f s\n", table->layers[k], dim_probe_name(c.kind),
                train->cols, c.epochs, r.lr, 100 * r.test_accuracy, 100 * r.train_accuracy,
                omp_get_wtime() - start);
        if (c.lr_candidates >= 2) {
            fprintf(stderr, "dim eval: %-6s %-6s   lr chosen on held-out training rows:",
                    table->layers[k], dim_probe_name(c.kind));
            for (int i = 0; i < c.lr_candidates; i++)
                fprintf(stderr, " %g %.2f%%", c.lr[i], 100 * r.holdout_accuracy[i]);
            fprintf(stderr, "\n");
        }
    }
    if (!keep) {
        dim_feature_matrix_free(train);
        dim_feature_matrix_free(test);
    }
    return 0;
}
static void print_table(const eval_table *table, const dim_dataset *train,
                        const dim_dataset *test)
{
    printf("\ntest accuracy of probes trained on frozen features (%s: %d training, "
           "%d test images)\n%-8s", train->name, train->count, test->count, "layer");
    for (int p = 0; p < table->nprobes; p++) printf("%10s", dim_probe_name(table->probes[p]));
    printf("\n");
    for (int k = 0; k < table->nlayers; k++) {
        printf("%-8s", table->layers[k]);
        for (int p = 0; p < table->nprobes; p++) printf("%9.2f%%", 100 * table->accuracy[k][p]);
        printf("\n");
    }
}

/* The table as TSV (layer, probe, accuracy), written atomically. 0, or 1 after one line. */
static int write_table(const eval_table *table, const char *path)
{
    char error[512];
    dim_atomic_file f;
    if (dim_atomic_open(&f, path, error, sizeof error) == 0) {
        fprintf(f.file, "layer\tprobe\taccuracy\n");
        for (int k = 0; k < table->nlayers; k++)
            for (int p = 0; p < table->nprobes; p++)
                fprintf(f.file, "%s\t%s\t%.4f\n", table->layers[k],
                        dim_probe_name(table->probes[p]), table->accuracy[k][p]);
        if (dim_atomic_commit(&f, error, sizeof error) == 0) return 0;
    }
    fprintf(stderr, "dim eval: --tsv: %s\n", error);
    return 1;
}
static int report_mi(const eval_options *o, const dim_dataset *train, const dim_dataset *test,
                     const dim_feature_matrix *y_train, const dim_feature_matrix *y_test)
{
    char error[512];
    dim_feature_matrix x_train, x_test;
    if (dim_pixel_features(train, &x_train, error, sizeof error) != 0
        || dim_pixel_features(test, &x_test, error, sizeof error) != 0) {
        dim_feature_matrix_free(&x_train);
        fprintf(stderr, "dim eval: %s\n", error);
        return 1;
    }
    dim_mi_config c;
    dim_mi_defaults(&c);
    c.steps = o->mi_steps;
    c.seed = (uint64_t)o->seed;
    double start = omp_get_wtime();
    dim_mi_result r = dim_mi_estimate(&c, &x_train, y_train, &x_test, y_test);
    printf("\nI(X; Y) estimate: %.3f nats (standard error %.3f) -- an ESTIMATE, not the true "
           "MI:\n  the Donsker-Varadhan lower bound (Eq. 2) of a separately trained separable "
           "critic\n  T(x, y) = <h(y), g(x)>, g: pixels -> %d -> %d, h: y (standardised) -> %d "
           "-> %d,\n  %d Adam steps on batches of %d training pairs (final training bound "
           "%.3f),\n  evaluated on %d batches of %d test pairs, each with %d mismatched pairs "
           "as negatives.\n", r.estimate, r.standard_error, c.hidden, c.embed, c.hidden,
           c.embed, c.steps, c.batch, r.train_bound, r.batches, c.batch,
           c.batch * (c.batch - 1));
    fprintf(stderr, "dim eval: I(X; Y) critic: %.1f s\n", omp_get_wtime() - start);
    dim_feature_matrix_free(&x_train);
    dim_feature_matrix_free(&x_test);
    return 0;
}
int dim_cmd_eval(int argc, char **argv)
{
    eval_options o;
    int status = read_eval_options(argc, argv, &o);
    if (status != 0) return status == DIM_PARSED_HELP ? DIM_EXIT_OK : status;
    eval_table table;
    memset(&table, 0, sizeof table);
    char layer_buf[64], probe_buf[64];
    const char *probe_names[EVAL_MAX_PROBES];
    static const char *const known_layers[] = {"conv", "fc", "y"};
    static const char *const known_probes[] = {"linear", "mlp"};
    int raw = o.baseline && strcmp(o.baseline, "raw") == 0;
    table.nlayers = parse_names("layers", o.layers, layer_buf, sizeof layer_buf, table.layers,
                                EVAL_MAX_LAYERS, known_layers, 3);
    table.nprobes = parse_names("probes", o.probes, probe_buf, sizeof probe_buf, probe_names,
                                EVAL_MAX_PROBES, known_probes, 2);
    if (table.nlayers < 0 || table.nprobes < 0) return DIM_EXIT_USAGE;
    if (raw) {  /* the one layer of the raw baseline */
        table.nlayers = 1;
        table.layers[0] = "pixels";
    }
    for (int p = 0; p < table.nprobes; p++) dim_probe_find(probe_names[p], &table.probes[p]);
    if (o.threads > 0) omp_set_num_threads(o.threads);

    dim_model model;
    dim_run_info info;
    memset(&info, 0, sizeof info);
    int have_model = !raw;
    dim_dataset train, test;
    if (o.ckpt) {
        if ((status = make_model("eval", o.ckpt, o.seed, NULL, &model, &info)) != 0) return status;
        if (o.data == NULL) o.data = info.data_spec;
        printf("dim eval: %s (%s, %s bound, %d of %d epochs, seed %llu)\n", o.ckpt, info.preset,
               info.bound, info.epoch, info.epochs, (unsigned long long)info.seed);
    }
    if (o.data == NULL) o.data = "fashion-mnist";
    if ((status = load_splits("eval", o.data, &train, &test)) != 0) {
        if (have_model && o.ckpt) dim_model_free(&model);
        return status;
    }
    if (o.baseline) {
        if (!raw && (status = make_model("eval", NULL, o.seed, &train, &model, &info)) != 0) {
            dim_dataset_free(&train);
            dim_dataset_free(&test);
            return status;
        }
        printf("dim eval: baseline: %s\n", raw ? "the raw pixels"
               : "a randomly initialised encoder (dim_model_init with the seed)");
    }
    if (have_model && (status = check_shapes("eval", o.ckpt ? o.ckpt : "the model", &model,
                                             &train)) != 0) {
        dim_model_free(&model);
        dim_dataset_free(&train);
        dim_dataset_free(&test);
        return status;
    }
    printf("data: %s, %d training and %d test images of %dx%dx%d, %d classes\n", o.data,
           train.count, test.count, train.channels, train.height, train.width, train.nclasses);
    fflush(stdout);
    int *train_labels = labels_of(&train), *test_labels = labels_of(&test);
    const char *extract[EVAL_MAX_LAYERS + 1];
    int nextract = 0, mi_y = -1, want_mi = o.mi && !raw;
    dim_feature_matrix train_features[EVAL_MAX_LAYERS + 1], test_features[EVAL_MAX_LAYERS + 1];
    memset(train_features, 0, sizeof train_features);
    memset(test_features, 0, sizeof test_features);
    for (int k = 0; k < table.nlayers; k++) {
        if (strcmp(table.layers[k], "y") == 0) mi_y = k;
        extract[nextract++] = table.layers[k];
    }
    if (want_mi && mi_y < 0) extract[mi_y = nextract++] = "y";
    char error[512];
    double start = omp_get_wtime();
    if (raw) {
        status = dim_pixel_features(&train, &train_features[0], error, sizeof error);
        if (status == 0) status = dim_pixel_features(&test, &test_features[0], error, sizeof error);
    } else {
        status = dim_extract_features(&model.encoder, &train, nextract, extract, EVAL_EXTRACT_BATCH,
                                      train_features, error, sizeof error);
        if (status == 0)
            status = dim_extract_features(&model.encoder, &test, nextract, extract,
                                          EVAL_EXTRACT_BATCH, test_features, error, sizeof error);
    }
    if (status != 0) fprintf(stderr, "dim eval: %s\n", error);
    else fprintf(stderr, "dim eval: features of %d + %d images: %.1f s\n", train.count, test.count,
                 omp_get_wtime() - start);
    for (int k = 0; k < table.nlayers && status == 0; k++)
        status = probe_layer(&o, &table, k, &train_features[k], &test_features[k], train_labels,
                             test_labels, train.nclasses, k == mi_y);
    if (status == 0) print_table(&table, &train, &test);
    if (status == 0 && want_mi)
        status = report_mi(&o, &train, &test, &train_features[mi_y], &test_features[mi_y]);
    if (status == 0 && o.tsv) status = write_table(&table, o.tsv);
    if (status == 0 && o.tsv) printf("\nwrote %s\n", o.tsv);
    for (int k = 0; k < nextract && !raw; k++) {
        dim_feature_matrix_free(&train_features[k]);
        dim_feature_matrix_free(&test_features[k]);
    }
    if (raw) {
        dim_feature_matrix_free(&train_features[0]);
        dim_feature_matrix_free(&test_features[0]);
    }
    free(train_labels);
    free(test_labels);
    dim_dataset_free(&train);
    dim_dataset_free(&test);
    if (have_model) dim_model_free(&model);
    return status == 0 ? DIM_EXIT_OK : DIM_EXIT_DATA;
}
int dim_cmd_embed(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *out = NULL, *layer = "y", *split_name = "test";
    const char *labels_path = NULL;
    int threads = 0;
    static const char usage[] = "--ckpt FILE --out FILE.npy [--data SPEC] "
                                "[--layer conv|fc|y|pixels] [--split train|test] "
                                "[--labels FILE.npy] [--threads T]";
    const dim_option options[] = {
        {"ckpt", DIM_OPT_STRING, &ckpt, 0, 0, "FILE    the checkpoint (from dim train)"},
        {"data", DIM_OPT_STRING, &data, 0, 0, "SPEC    dataset (default: the checkpoint's)"},
        {"out", DIM_OPT_STRING, &out, 0, 0, "FILE    the .npy file to write: float32 [N, D]"},
        {"layer", DIM_OPT_STRING, &layer, 0, 0, "NAME    conv, fc, y (default) or pixels"},
        {"split", DIM_OPT_STRING, &split_name, 0, 0, "NAME    train or test (default)"},
        {"labels", DIM_OPT_STRING, &labels_path, 0, 0, "FILE    also write the labels: uint8 [N]"},
        {"threads", DIM_OPT_INT, &threads, 1, 1024, "T       OpenMP threads (default: all)"},
    };
    int status = dim_parse_options("embed", usage, options,
                                   (int)(sizeof options / sizeof options[0]), argc, argv);
    if (status != 0) return status == DIM_PARSED_HELP ? DIM_EXIT_OK : status;
    const char *problem = ckpt == NULL ? "--ckpt FILE is required"
                          : out == NULL ? "--out FILE.npy is required"
                          : strcmp(layer, "conv") != 0 && strcmp(layer, "fc") != 0
                            && strcmp(layer, "y") != 0 && strcmp(layer, "pixels") != 0
                          ? "--layer: expected conv, fc, y or pixels"
                          : strcmp(split_name, "train") != 0 && strcmp(split_name, "test") != 0
                          ? "--split: expected train or test" : NULL;
    if (problem) {
        fprintf(stderr, "dim embed: %s\nusage: dim embed %s\n", problem, usage);
        return DIM_EXIT_USAGE;
    }
    if (threads > 0) omp_set_num_threads(threads);
    dim_split split = strcmp(split_name, "train") == 0 ? DIM_SPLIT_TRAIN : DIM_SPLIT_TEST;
    dim_model model;
    dim_run_info info;
    dim_dataset d;
    char error[512];
    if ((status = make_model("embed", ckpt, 0, NULL, &model, &info)) != 0) return status;
    if (data == NULL) data = info.data_spec;
    int rc = dim_dataset_load(&d, data, split, error, sizeof error);
    if (rc != DIM_DATA_OK) {
        fprintf(stderr, "dim embed: %s\n", error);
        dim_model_free(&model);
        return rc == DIM_DATA_BAD_SPEC ? DIM_EXIT_USAGE : DIM_EXIT_DATA;
    }
    if ((status = check_shapes("embed", ckpt, &model, &d)) == 0) {
        dim_feature_matrix m;
        double start = omp_get_wtime();
        status = strcmp(layer, "pixels") == 0
                 ? dim_pixel_features(&d, &m, error, sizeof error)
                 : dim_extract_features(&model.encoder, &d, 1, &layer, EVAL_EXTRACT_BATCH, &m,
                                        error, sizeof error);
        if (status == 0) status = dim_npy_write_features(out, &m, error, sizeof error);
        if (status == 0 && labels_path)
            status = dim_npy_write_labels(labels_path, d.labels, d.count, error, sizeof error);
        if (status == 0)
            printf("wrote %s: float32 [%d, %d], the %s features of the %s split of %s (%.1f s)\n",
                   out, m.rows, m.cols, layer, split_name, data, omp_get_wtime() - start);
        if (status == 0 && labels_path)
            printf("wrote %s: uint8 [%d], the labels\n", labels_path, d.count);
        if (status != 0) {
            fprintf(stderr, "dim embed: %s\n", error);
            status = DIM_EXIT_DATA;
        }
        dim_feature_matrix_free(&m);
    }
    dim_dataset_free(&d);
    dim_model_free(&model);
    return status;
}
