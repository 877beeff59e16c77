/* probe.c -- linear and MLP probes on frozen features, trained with Adam.
 * Tangled from doc/33-eval.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *dim_probe_name(dim_probe_kind kind)
{
    return kind == DIM_PROBE_LINEAR ? "linear" : "mlp";
}

int dim_probe_find(const char *name, dim_probe_kind *kind)
{
    if (strcmp(name, "linear") == 0) *kind = DIM_PROBE_LINEAR;
    else if (strcmp(name, "mlp") == 0) *kind = DIM_PROBE_MLP;
    else return -1;
    return 0;
}

void dim_probe_defaults(dim_probe_config *c, dim_probe_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->hidden = 200;
    c->dropout = 0.1;
    c->epochs = 10;
    c->batch = 256;
    if (kind == DIM_PROBE_LINEAR) {
        static const double linear_rates[] = {1e-3, 3e-3, 1e-2};
        c->lr_candidates = (int)(sizeof linear_rates / sizeof linear_rates[0]);
        memcpy(c->lr, linear_rates, sizeof linear_rates);
    } else {
        c->lr_candidates = 1;
        c->lr[0] = 3e-3;
    }
    c->holdout = 0.1;
    c->weight_decay = 0;
    c->seed = 0;
}
typedef struct probe_net {
    ag_params params;
    dim_linear hidden;   /* MLP: [hidden, D] */
    dim_batchnorm bn;    /* MLP: [hidden] */
    dim_linear out;      /* [K, hidden] (MLP) or [K, D] (linear) */
} probe_net;

static void probe_init(probe_net *p, const dim_probe_config *c, int inputs, int classes,
                       ag_rng *rng)
{
    memset(p, 0, sizeof *p);
    if (c->kind == DIM_PROBE_MLP) {
        dim_linear_init(&p->hidden, &p->params, "probe.hidden", inputs, c->hidden, rng);
        dim_batchnorm_init(&p->bn, &p->params, "probe.bn", c->hidden);
        inputs = c->hidden;
    }
    dim_linear_init(&p->out, &p->params, "probe.out", inputs, classes, rng);
}
/* x [N, D] -> logits [N, K]: no softmax (the cross-entropy applies the only one). */
static ag_tensor *probe_logits(ag_tape *t, const probe_net *p, const dim_probe_config *c,
                               ag_tensor *x, ag_rng *rng)
{
    if (c->kind == DIM_PROBE_LINEAR) return dim_linear_forward(t, &p->out, x);
    ag_tensor *h = dim_linear_forward(t, &p->hidden, x);          /* [N, hidden] */
    h = ag_relu(t, dim_batchnorm_forward(t, &p->bn, h));
    h = ag_dropout(t, h, c->dropout, rng);
    return dim_linear_forward(t, &p->out, h);                     /* [N, K] */
}
static ag_tensor *rows_on_tape(ag_tape *t, const dim_feature_matrix *m, const int *rows, int n)
{
    ag_tensor *x = ag_tensor_new(t, AG_SHAPE(n, m->cols));  /* [n, D] */
    for (int b = 0; b < n; b++)
        memcpy(x->value + (size_t)b * m->cols, m->values + (size_t)rows[b] * m->cols,
               (size_t)m->cols * sizeof(ag_real));
    return x;
}
/* The fraction of the rows rows[0 .. n-1] of m that p classifies as labels says. */
static double probe_accuracy(const probe_net *p, const dim_probe_config *c, ag_tape *t,
                             const dim_feature_matrix *m, const int *labels, const int *rows,
                             int n, int classes)
{
    enum { EVAL_BATCH = 1000 };
    long correct = 0;
    ag_tape_set_training(t, 0);
    for (int start = 0; start < n; start += EVAL_BATCH) {
        int count = n - start < EVAL_BATCH ? n - start : EVAL_BATCH;
        ag_tape_reset(t);
        ag_tensor *x = rows_on_tape(t, m, rows + start, count);   /* [count, D] */
        const ag_tensor *logits = probe_logits(t, p, c, x, NULL);  /* [count, K] */
        for (int i = 0; i < count; i++) {
            const ag_real *row = logits->value + (size_t)i * classes;
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (row[k] > row[best]) best = k;
            correct += best == labels[rows[start + i]];
        }
    }
    ag_tape_set_training(t, 1);
    return (double)correct / n;
}
static ag_tensor *weight_penalty(ag_tape *t, const probe_net *p, const dim_probe_config *c)
{
    ag_tensor *sum = ag_sum(t, ag_mul(t, p->out.weight, p->out.weight));
    if (c->kind == DIM_PROBE_MLP)
        sum = ag_add(t, sum, ag_sum(t, ag_mul(t, p->hidden.weight, p->hidden.weight)));
    return ag_scale(t, sum, 0.5 * c->weight_decay);
}
/* Make p from c's seed and train it with initial rate lr on the rows rows[0 .. n-1] of train.
 * Returns the mean loss over the last epoch's steps. */
static double probe_fit(probe_net *p, const dim_probe_config *c, double lr,
                        const dim_feature_matrix *train, const int *train_labels,
                        const int *rows_used, int n, int classes, ag_tape *t)
{
    ag_rng rng;
    ag_rng_seed(&rng, c->seed);
    probe_init(p, c, train->cols, classes, &rng);
    ag_adam *adam = ag_adam_new(&p->params, lr, 0.9, 0.999, 1e-8);
    int batch = c->batch < n ? c->batch : n;
    int steps_per_epoch = n / batch;
    long total_steps = (long)steps_per_epoch * c->epochs, step = 0;
    int *order = malloc((size_t)n * sizeof *order);          /* [n] */
    int *labels = malloc((size_t)batch * sizeof *labels);    /* [batch] */
    if (order == NULL || labels == NULL) ag_fatal("dim_probe_run: out of memory");
    memcpy(order, rows_used, (size_t)n * sizeof *order);

    double epoch_loss = 0;
    for (int epoch = 0; epoch < c->epochs; epoch++) {
        ag_rng_shuffle(&rng, order, n);
        epoch_loss = 0;
        for (int s = 0; s < steps_per_epoch; s++, step++) {
            const int *rows = order + (size_t)s * batch;
            ag_tape_reset(t);
            ag_tensor *x = rows_on_tape(t, train, rows, batch);               /* [B, D] */
            for (int b = 0; b < batch; b++) labels[b] = train_labels[rows[b]];
            ag_tensor *logits = probe_logits(t, p, c, x, &rng);              /* [B, K] */
            ag_tensor *loss = ag_cross_entropy(t, logits, labels);          /* log-softmax inside */
            epoch_loss += loss->value[0];
            if (c->weight_decay > 0) loss = ag_add(t, loss, weight_penalty(t, p, c));
            ag_params_zero_grad(&p->params);
            ag_backward(t, loss);
            adam->lr = 0.5 * lr * (1 + cos(3.141592653589793 * (double)step / total_steps));
            ag_adam_step(adam);
        }
    }
    free(order);
    free(labels);
    ag_adam_free(adam);
    return epoch_loss / steps_per_epoch;
}
/* The candidate rate of c with the best accuracy on held-out training rows after a training on
 * the others; each candidate's accuracy goes to r->holdout_accuracy. */
static double choose_rate(const dim_probe_config *c, const dim_feature_matrix *train,
                          const int *train_labels, int classes, ag_tape *t, dim_probe_result *r)
{
    int held = (int)ceil(c->holdout * train->rows);
    if (train->rows - held < 2) return c->lr[0];
    int *perm = malloc((size_t)train->rows * sizeof *perm);  /* [rows] held out, then the rest */
    if (perm == NULL) ag_fatal("dim_probe_run: out of memory");
    for (int i = 0; i < train->rows; i++) perm[i] = i;
    ag_rng split;
    ag_rng_seed(&split, c->seed ^ 0x9e3779b97f4a7c15u);
    ag_rng_shuffle(&split, perm, train->rows);

    int best = 0;
    for (int i = 0; i < c->lr_candidates; i++) {
        probe_net p;
        probe_fit(&p, c, c->lr[i], train, train_labels, perm + held, train->rows - held,
                  classes, t);
        r->holdout_accuracy[i] = probe_accuracy(&p, c, t, train, train_labels, perm, held,
                                                classes);
        if (r->holdout_accuracy[i] > r->holdout_accuracy[best]) best = i;
        ag_params_free(&p.params);
    }
    free(perm);
    return c->lr[best];
}
static const size_t PROBE_TAPE_LIMIT = (size_t)4 << 30;

static void check_probe_inputs(const dim_probe_config *c, const dim_feature_matrix *train,
                               const dim_feature_matrix *test, int classes)
{
    if (train->rows < 2 || test->rows < 1 || train->cols != test->cols || classes < 2)
        ag_fatal("dim_probe_run: %d training rows of %d features, %d test rows of %d, "
                 "%d classes; need 2 or more training rows, matching widths, 2 or more classes",
                 train->rows, train->cols, test->rows, test->cols, classes);
    int rates_ok = c->lr_candidates >= 1 && c->lr_candidates <= DIM_PROBE_MAX_LR_CANDIDATES;
    for (int i = 0; i < c->lr_candidates && rates_ok; i++) rates_ok = c->lr[i] > 0;
    if (c->epochs < 1 || c->batch < 2 || !(c->dropout >= 0 && c->dropout < 1)
        || !(c->weight_decay >= 0) || (c->kind == DIM_PROBE_MLP && c->hidden < 1) || !rates_ok
        || !(c->holdout > 0 && c->holdout < 1))
        ag_fatal("dim_probe_run: epochs %d, batch %d, dropout %g, weight decay %g, hidden %d, "
                 "%d learning rates (the first %g), holdout %g: epochs >= 1, batch >= 2, "
                 "dropout in [0, 1), 1 to %d learning rates, each > 0, holdout in (0, 1)",
                 c->epochs, c->batch, c->dropout, c->weight_decay, c->hidden, c->lr_candidates,
                 c->lr[0], c->holdout, DIM_PROBE_MAX_LR_CANDIDATES);
}

dim_probe_result dim_probe_run(const dim_probe_config *c, const dim_feature_matrix *train,
                               const int *train_labels, const dim_feature_matrix *test,
                               const int *test_labels, int classes)
{
    check_probe_inputs(c, train, test, classes);
    dim_probe_result r;
    memset(&r, 0, sizeof r);
    ag_tape *t = ag_tape_new_growing(PROBE_TAPE_LIMIT);
    int most = train->rows > test->rows ? train->rows : test->rows;
    int *all = malloc((size_t)most * sizeof *all);  /* [most] 0, 1, ..: every row of a split */
    if (all == NULL) ag_fatal("dim_probe_run: out of memory");
    for (int i = 0; i < most; i++) all[i] = i;

    r.lr = c->lr_candidates >= 2 ? choose_rate(c, train, train_labels, classes, t, &r)
                                 : c->lr[0];
    probe_net p;
    r.final_loss = probe_fit(&p, c, r.lr, train, train_labels, all, train->rows, classes, t);
    r.train_accuracy = probe_accuracy(&p, c, t, train, train_labels, all, train->rows, classes);
    r.test_accuracy = probe_accuracy(&p, c, t, test, test_labels, all, test->rows, classes);
    ag_params_free(&p.params);
    free(all);
    ag_tape_free(t);
    return r;
}
