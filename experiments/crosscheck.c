/* crosscheck.c -- the C side of the cross-check against the PyTorch twin (issue 6).
 *
 * Makes the paper's 28x28 model with dim_model_init(seed) and writes, into one small binary
 * file that experiments/torch_dim.py reads:
 *   - the configuration and the initial value of every parameter and buffer ("init/NAME");
 *   - for each case (a bound, a local critic and the weights alpha, beta, gamma of Eq. 8): the
 *     batch of images, the prior samples the objective drew, the value of every term (the
 *     global and local bounds, the prior term and the loss), the gradient of the loss with
 *     respect to every trainable parameter of both sets, and the running statistics of every
 *     batch normalisation after the forward pass.
 * Each case starts from the initial parameters. The twin loads the same weights, batch and
 * samples, recomputes everything in PyTorch, and compares tensor by tensor.
 *
 *   crosscheck FILE [--seed S]
 *
 * File layout (little-endian): "DIMXC001", u32 count, then count records, each
 *   u32 name length, the name, u8 type ('f' float32, 'd' float64, 'i' int32, 's' text),
 *   u32 ndim, i32 shape[ndim], then the values (for text: shape[0] bytes). Reals are written
 *   in the precision of the build: float32 from the default build, float64 from the double
 *   build (-DAG_DOUBLE), and the record "precision" says which.
 * A parameter that the case's graph does not reach has no gradient record.
 */
#include "../src/dim/dim.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One evaluation of Eq. 8 to compare. The batch of the concat critic is small: its pair
 * tensor [M^2, 512, N, N] is 25 MB at N = 16 and 400 MB at N = 64, for each activation. */
typedef struct xcase {
    const char *name;
    const char *bound;
    dim_local_kind local_kind;
    double alpha, beta, gamma;
    int batch;
} xcase;

static const xcase cases[] = {
    {"dv", "dv", DIM_LOCAL_DOT, 1, 1, 0.1, 64},
    {"jsd", "jsd", DIM_LOCAL_DOT, 1, 1, 0.1, 64},
    {"infonce", "infonce", DIM_LOCAL_DOT, 1, 1, 0.1, 64},
    {"concat-jsd", "jsd", DIM_LOCAL_CONCAT, 0, 1, 0, 16},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ---- writing records ---------------------------------------------------------------------- */

typedef struct writer {
    FILE *file;
    const char *path;
    uint32_t count;
} writer;

static void put_bytes(writer *w, const void *p, size_t n)
{
    if (fwrite(p, 1, n, w->file) != n) {
        fprintf(stderr, "crosscheck: cannot write %s\n", w->path);
        exit(1);
    }
}

static void put_u32(writer *w, uint32_t v)
{
    unsigned char b[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255};
    put_bytes(w, b, 4);
}

static void put_header(writer *w, const char *name, char type, int ndim, const int *shape)
{
    put_u32(w, (uint32_t)strlen(name));
    put_bytes(w, name, strlen(name));
    put_bytes(w, &type, 1);
    put_u32(w, (uint32_t)ndim);
    for (int d = 0; d < ndim; d++) put_u32(w, (uint32_t)shape[d]);
    w->count++;
}

/* values [size] in the build's precision: float32, or float64 in the double build. */
static void put_floats(writer *w, const char *name, int ndim, const int *shape,
                       const ag_real *values)
{
    long size = ag_shape_size(ndim, shape);
    put_header(w, name, sizeof(ag_real) == 8 ? 'd' : 'f', ndim, shape);
    for (long i = 0; i < size; i++) {
        if (sizeof(ag_real) == 8) {
            double d = (double)values[i];
            uint64_t bits;
            memcpy(&bits, &d, 8);
            put_u32(w, (uint32_t)(bits & 0xffffffffu));
            put_u32(w, (uint32_t)(bits >> 32));
        } else {
            float f = (float)values[i];
            uint32_t bits;
            memcpy(&bits, &f, 4);
            put_u32(w, bits);
        }
    }
}

static void put_tensor(writer *w, const char *name, const ag_tensor *x, const ag_real *values)
{
    put_floats(w, name, x->ndim, x->shape, values);
}

static void put_scalar(writer *w, const char *name, double v)
{
    ag_real r = (ag_real)v;
    put_floats(w, name, 0, NULL, &r);
}

static void put_ints(writer *w, const char *name, int n, const int *values)
{
    put_header(w, name, 'i', 1, &n);
    for (int i = 0; i < n; i++) put_u32(w, (uint32_t)values[i]);
}

static void put_text(writer *w, const char *name, const char *text)
{
    int n = (int)strlen(text);
    put_header(w, name, 's', 1, &n);
    put_bytes(w, text, (size_t)n);
}

/* ---- the model, the cases ----------------------------------------------------------------- */

static void put_config(writer *w, const dim_config *c)
{
    int v[] = {c->in_channels, c->in_height, c->in_width, c->nconv,
               c->conv_channels[0], c->conv_channels[1], c->conv_channels[2],
               c->conv_batchnorm[0], c->conv_batchnorm[1], c->conv_batchnorm[2],
               c->local_layer, c->fc_units, c->y_units, c->critic_units, c->global_nconv,
               c->global_conv_channels[0], c->global_conv_channels[1],
               c->prior_units[0], c->prior_units[1]};
    put_ints(w, "config", (int)(sizeof v / sizeof v[0]), v);
}

/* 1 if x is an input of a node on the tape t: the graph reaches it. */
static int on_tape(const ag_tape *t, const ag_tensor *x)
{
    for (const ag_node *n = t->last; n != NULL; n = n->prev)
        for (int k = 0; k < n->ninputs; k++)
            if (n->in[k] == x) return 1;
    return 0;
}

/* Tensors of a set as "PREFIX/NAME". what: 0 the values of all, 1 the gradients of the
 * trainable ones the graph on t reaches, 2 the values of the buffers. */
static void put_params(writer *w, const ag_params *ps, const char *prefix, int what,
                       const ag_tape *t)
{
    char name[256];
    for (int i = 0; i < ps->count; i++) {
        const ag_tensor *x = ps->items[i];
        snprintf(name, sizeof name, "%s%s", prefix, x->name);
        if (what == 0) put_tensor(w, name, x, x->value);
        else if (what == 1 && x->requires_grad && x->grad != NULL && on_tape(t, x))
            put_tensor(w, name, x, x->grad);
        else if (what == 2 && !x->requires_grad) put_tensor(w, name, x, x->value);
    }
}

static void run_case(writer *w, const xcase *k, const dim_config *c, uint64_t seed, int index)
{
    char name[256];
    dim_model m;
    dim_model_init(&m, c, seed);
    dim_objective o;
    dim_objective_preset(&o, "dim-lg");
    o.alpha = k->alpha;
    o.beta = k->beta;
    o.gamma = k->gamma;
    o.bound = dim_bound_find(k->bound);
    o.local_kind = k->local_kind;
    if (o.bound == NULL) {
        fprintf(stderr, "crosscheck: no bound named %s\n", k->bound);
        exit(1);
    }

    ag_tape *t = ag_tape_new_growing((size_t)8 << 30);
    ag_tape_set_training(t, 1);
    ag_rng data_rng, prior_rng, prior_copy;
    ag_rng_seed(&data_rng, seed + 1000 + (uint64_t)index);
    ag_rng_seed(&prior_rng, seed + 2000 + (uint64_t)index);
    prior_copy = prior_rng;
    ag_tensor *images = ag_tensor_new(t, AG_SHAPE(k->batch, c->in_channels, c->in_height,
                                                  c->in_width));
    ag_fill_uniform(images, &data_rng, 0, 1);
    /* the samples dim_prior_objective will draw: N x y_units uniforms, in order */
    ag_tensor *samples = ag_tensor_new(t, AG_SHAPE(k->batch, c->y_units));
    ag_fill_uniform(samples, &prior_copy, 0, 1);

    dim_bound_state global_state, local_state;
    dim_bound_state_init(&global_state);
    dim_bound_state_init(&local_state);
    dim_terms terms = dim_objective_graph(t, &m, &o, images, &prior_rng, &global_state,
                                          &local_state);
    ag_params_zero_grad(&m.params);
    ag_params_zero_grad(&m.prior_params);
    ag_backward(t, terms.loss);

#define CASE_NAME(what) (snprintf(name, sizeof name, "case/%s/%s", k->name, what), name)
    put_text(w, CASE_NAME("bound"), k->bound);
    put_text(w, CASE_NAME("local"), k->local_kind == DIM_LOCAL_DOT ? "dot" : "concat");
    char weights[96]; /* alpha, beta, gamma as text: exactly the doubles the objective used */
    snprintf(weights, sizeof weights, "%.17g %.17g %.17g", k->alpha, k->beta, k->gamma);
    put_text(w, CASE_NAME("weights"), weights);
    put_tensor(w, CASE_NAME("images"), images, images->value);
    if (k->gamma != 0) put_tensor(w, CASE_NAME("prior_samples"), samples, samples->value);
    if (terms.global_mi) put_scalar(w, CASE_NAME("value/global_mi"), terms.global_mi->value[0]);
    if (terms.local_mi) put_scalar(w, CASE_NAME("value/local_mi"), terms.local_mi->value[0]);
    if (terms.prior) put_scalar(w, CASE_NAME("value/prior"), terms.prior->value[0]);
    put_scalar(w, CASE_NAME("value/loss"), terms.loss->value[0]);
    put_params(w, &m.params, CASE_NAME("grad/"), 1, t);
    put_params(w, &m.prior_params, CASE_NAME("grad/"), 1, t);
    put_params(w, &m.params, CASE_NAME("buffer/"), 2, t);
#undef CASE_NAME
    printf("crosscheck: case %-15s batch %2d  loss %+.6f  tape %.0f MiB\n", k->name, k->batch,
           (double)terms.loss->value[0], (double)t->high_water / (1 << 20));
    ag_tape_free(t);
    dim_model_free(&m);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && path == NULL) path = argv[i];
        else {
            fprintf(stderr, "usage: crosscheck FILE [--seed S]\n");
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "usage: crosscheck FILE [--seed S]\n");
        return 2;
    }
    dim_config c;
    dim_config_for_input(&c, 1, 28, 28);
    writer w = {fopen(path, "wb"), path, 0};
    if (w.file == NULL) {
        perror(path);
        return 1;
    }
    put_bytes(&w, "DIMXC001", 8);
    put_u32(&w, 0); /* the count, written at the end */
    put_text(&w, "precision", sizeof(ag_real) == 8 ? "double" : "float");
    put_config(&w, &c);
    {
        dim_model m;
        dim_model_init(&m, &c, seed);
        put_params(&w, &m.params, "init/", 0, NULL);
        put_params(&w, &m.prior_params, "init/", 0, NULL);
        dim_model_free(&m);
    }
    char names[512] = "";
    for (int i = 0; i < NCASES; i++) {
        strcat(names, i ? " " : "");
        strcat(names, cases[i].name);
    }
    put_text(&w, "cases", names);
    for (int i = 0; i < NCASES; i++) run_case(&w, &cases[i], &c, seed, i);
    if (fseek(w.file, 8, SEEK_SET) != 0) {
        perror(path);
        return 1;
    }
    put_u32(&w, w.count);
    if (fclose(w.file) != 0) {
        perror(path);
        return 1;
    }
    printf("crosscheck: wrote %s (%u records, %s, model seed %llu)\n", path, (unsigned)w.count,
           sizeof(ag_real) == 8 ? "double" : "float", (unsigned long long)seed);
    return 0;
}
