/* mi_estimate.c -- I(X; Y) by a separately trained critic and the DV bound, on held-out data.
 * Tangled from doc/33-eval.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct mi_critic {
    ag_params params;
    dim_linear x_hidden, x_out;   /* g: [hidden, D_x], [embed, hidden] */
    dim_linear y_hidden, y_out;   /* h: [hidden, D_y], [embed, hidden] */
} mi_critic;

static void mi_critic_init(mi_critic *k, const dim_mi_config *c, int dx, int dy, ag_rng *rng)
{
    memset(k, 0, sizeof *k);
    dim_linear_init(&k->x_hidden, &k->params, "mi.g.hidden", dx, c->hidden, rng);
    dim_linear_init(&k->x_out, &k->params, "mi.g.out", c->hidden, c->embed, rng);
    dim_linear_init(&k->y_hidden, &k->params, "mi.h.hidden", dy, c->hidden, rng);
    dim_linear_init(&k->y_out, &k->params, "mi.h.out", c->hidden, c->embed, rng);
}

/* x [N, D_x], y [N, D_y] -> scores [1, N, N], scores[0, i, j] = <h(y_i), g(x_j)>. */
static ag_tensor *mi_scores(ag_tape *t, const mi_critic *k, ag_tensor *x, ag_tensor *y)
{
    int n = x->shape[0];
    ag_tensor *gx = dim_linear_forward(t, &k->x_out,
                                       ag_relu(t, dim_linear_forward(t, &k->x_hidden, x)));
    ag_tensor *hy = dim_linear_forward(t, &k->y_out,
                                       ag_relu(t, dim_linear_forward(t, &k->y_hidden, y)));
    ag_tensor *s = ag_matmul(t, hy, gx, 0, 1);          /* [N, N]: h(y_i) . g(x_j) */
    return ag_reshape(t, s, AG_SHAPE(1, n, n));
}
void dim_mi_defaults(dim_mi_config *c)
{
    c->hidden = 256;
    c->embed = 64;
    c->steps = 2000;
    c->batch = 128;
    c->lr = 3e-4;
    c->seed = 0;
}

/* Pairs (x row, y row) for the given rows, on the tape. */
static void pairs_on_tape(ag_tape *t, const dim_feature_matrix *x, const dim_feature_matrix *y,
                          const int *rows, int n, ag_tensor **xt, ag_tensor **yt)
{
    *xt = ag_tensor_new(t, AG_SHAPE(n, x->cols));  /* [n, D_x] */
    *yt = ag_tensor_new(t, AG_SHAPE(n, y->cols));  /* [n, D_y] */
    for (int b = 0; b < n; b++) {
        memcpy((*xt)->value + (size_t)b * x->cols, x->values + (size_t)rows[b] * x->cols,
               (size_t)x->cols * sizeof(ag_real));
        memcpy((*yt)->value + (size_t)b * y->cols, y->values + (size_t)rows[b] * y->cols,
               (size_t)y->cols * sizeof(ag_real));
    }
}

dim_mi_result dim_mi_estimate(const dim_mi_config *c, const dim_feature_matrix *x_train,
                              const dim_feature_matrix *y_train,
                              const dim_feature_matrix *x_test,
                              const dim_feature_matrix *y_test)
{
    if (x_train->rows != y_train->rows || x_test->rows != y_test->rows
        || x_train->cols != x_test->cols || y_train->cols != y_test->cols
        || c->batch < 2 || x_train->rows < c->batch || x_test->rows < c->batch || c->steps < 1)
        ag_fatal("dim_mi_estimate: %d x %d and %d y training rows, %d x %d and %d y test rows, "
                 "batch %d, %d steps: the pairs must match, each split must hold a batch (>= 2)",
                 x_train->rows, x_train->cols, y_train->rows, x_test->rows, x_test->cols,
                 y_test->rows, c->batch, c->steps);
    ag_rng rng;
    ag_rng_seed(&rng, c->seed);
    mi_critic k;
    mi_critic_init(&k, c, x_train->cols, y_train->cols, &rng);
    ag_adam *adam = ag_adam_new(&k.params, c->lr, 0.9, 0.999, 1e-8);
    ag_tape *t = ag_tape_new_growing((size_t)4 << 30);
    dim_bound_state state;
    dim_bound_state_init(&state);
    int n = c->batch, rows = x_train->rows > x_test->rows ? x_train->rows : x_test->rows;
    int *order = malloc((size_t)rows * sizeof *order);  /* [rows] */
    if (order == NULL) ag_fatal("dim_mi_estimate: out of memory");
    dim_mi_result r = {0, 0, 0, 0};
    int per_epoch = x_train->rows / n, tail = c->steps - c->steps / 10;
    for (int step = 0; step < c->steps; step++) {
        if (step % per_epoch == 0) {
            for (int i = 0; i < x_train->rows; i++) order[i] = i;
            ag_rng_shuffle(&rng, order, x_train->rows);
        }
        ag_tensor *x, *y;
        ag_tape_reset(t);
        pairs_on_tape(t, x_train, y_train, order + (size_t)(step % per_epoch) * n, n, &x, &y);
        ag_tensor *bound = dim_bound_dv(t, mi_scores(t, &k, x, y), &state);   /* scalar */
        if (step >= tail) r.train_bound += bound->value[0] / (c->steps - tail);
        ag_params_zero_grad(&k.params);
        ag_backward(t, ag_neg(t, bound));   /* ascend the bound */
        ag_adam_step(adam);
    }
    for (int i = 0; i < x_test->rows; i++) order[i] = i;
    ag_rng_shuffle(&rng, order, x_test->rows);
    r.batches = x_test->rows / n;
    double sum = 0, squares = 0;
    for (int b = 0; b < r.batches; b++) {
        ag_tensor *x, *y;
        ag_tape_reset(t);
        pairs_on_tape(t, x_test, y_test, order + (size_t)b * n, n, &x, &y);
        double v = dim_bound_dv(t, mi_scores(t, &k, x, y), &state)->value[0];
        sum += v;
        squares += v * v;
    }
    r.estimate = sum / r.batches;
    r.standard_error = r.batches > 1
        ? sqrt(fmax(0, squares / r.batches - r.estimate * r.estimate) / (r.batches - 1)) : 0;
    free(order);
    ag_tape_free(t);
    ag_adam_free(adam);
    ag_params_free(&k.params);
    return r;
}
