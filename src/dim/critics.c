/* critics.c -- the global and local critics T = D o g o (C, E): matrices of scores.
 * Tangled from doc/21-critics.nw: edit the book, not this file. */
#include "dim.h"

#include <stdio.h>
#include <string.h>

/* The global critic's convolutions: 3x3, stride 1, no padding (M -> M - 2). */
enum { GLOBAL_KERNEL = 3 };

/* N, after checking that f->local is [N, C, M, M] and f->y is [N, Y]. */
static int batch_of(const char *who, const dim_features *f)
{
    char local[AG_SHAPE_STR_SIZE], y[AG_SHAPE_STR_SIZE];
    if (f->local == NULL || f->y == NULL)
        ag_fatal("%s: the features have no local map or no code (use dim_encode)", who);
    if (f->local->ndim != 4 || f->local->shape[2] != f->local->shape[3] || f->y->ndim != 2
        || f->y->shape[0] != f->local->shape[0])
        ag_fatal("%s: local features %s and codes %s; expected [N, C, M, M] and [N, Y]",
                 who, ag_shape_str(f->local, local), ag_shape_str(f->y, y));
    return f->y->shape[0];
}

/* Fails unless the layer's weight reads `got` inputs (dimension 1 of the weight). */
static void check_width(const char *who, const char *what, const ag_tensor *weight, int got)
{
    if (weight->shape[1] != got)
        ag_fatal("%s: %s has %d values but the critic was made for %d (another "
                 "configuration?)", who, what, got, weight->shape[1]);
}
static void global_critic_init(dim_global_critic *g, ag_params *ps, const dim_config *cfg,
                               ag_rng *rng)
{
    char name[64];
    int side = dim_config_local_size(cfg), units = cfg->critic_units;
    int channels = cfg->conv_channels[cfg->local_layer];
    if (cfg->global_nconv < 0 || cfg->global_nconv > 2
        || side - (GLOBAL_KERNEL - 1) * cfg->global_nconv < 1)
        ag_fatal("dim_critics_init: %d global convolutions of 3x3 on a %dx%d map; "
                 "0 to 2 are allowed, and each takes 2 from the side",
                 cfg->global_nconv, side, side);
    for (int k = 0; k < cfg->global_nconv; k++) {
        snprintf(name, sizeof name, "critic.global.conv%d", k);
        dim_conv_init(&g->conv[k], ps, name, channels, cfg->global_conv_channels[k],
                      GLOBAL_KERNEL, 1, 0, rng);
        channels = cfg->global_conv_channels[k];
        side -= GLOBAL_KERNEL - 1;
    }
    int features = channels * side * side, fan_in = features + cfg->y_units;
    dim_linear_init_block(&g->from_features, ps, "critic.global.from_features", features,
                          units, fan_in, 1, rng);
    dim_linear_init_block(&g->from_y, ps, "critic.global.from_y", cfg->y_units, units, fan_in,
                          0, rng);
    dim_linear_init(&g->hidden, ps, "critic.global.hidden", units, units, rng);
    dim_linear_init(&g->out, ps, "critic.global.out", units, 1, rng);
}
static void local_dot_init(dim_local_dot *d, ag_params *ps, const dim_config *cfg, ag_rng *rng)
{
    int units = cfg->critic_units, channels = cfg->conv_channels[cfg->local_layer];
    dim_conv_init(&d->l_hidden, ps, "critic.local.dot.l_hidden", channels, units, 1, 1, 0, rng);
    dim_batchnorm_init(&d->l_bn, ps, "critic.local.dot.l_bn", units);
    dim_conv_init(&d->l_out, ps, "critic.local.dot.l_out", units, units, 1, 1, 0, rng);
    dim_conv_init(&d->l_shortcut, ps, "critic.local.dot.l_shortcut", channels, units, 1, 1, 0,
                  rng);
    dim_linear_init(&d->y_hidden, ps, "critic.local.dot.y_hidden", cfg->y_units, units, rng);
    dim_batchnorm_init(&d->y_bn, ps, "critic.local.dot.y_bn", units);
    dim_linear_init(&d->y_out, ps, "critic.local.dot.y_out", units, units, rng);
    dim_linear_init(&d->y_shortcut, ps, "critic.local.dot.y_shortcut", cfg->y_units, units, rng);
}
static void local_concat_init(dim_local_concat *cc, ag_params *ps, const dim_config *cfg,
                              ag_rng *rng)
{
    int units = cfg->critic_units, channels = cfg->conv_channels[cfg->local_layer];
    int fan_in = channels + cfg->y_units;
    dim_conv_init_block(&cc->from_features, ps, "critic.local.concat.from_features", channels,
                        units, 1, 1, 0, fan_in, 1, rng);
    dim_linear_init_block(&cc->from_y, ps, "critic.local.concat.from_y", cfg->y_units, units,
                          fan_in, 0, rng);
    dim_conv_init(&cc->hidden, ps, "critic.local.concat.hidden", units, units, 1, 1, 0, rng);
    dim_conv_init(&cc->out, ps, "critic.local.concat.out", units, 1, 1, 1, 0, rng);
}
void dim_critics_init(dim_critics *c, ag_params *ps, const dim_config *cfg, ag_rng *rng)
{
    if (dim_config_local_size(cfg) < 1)
        ag_fatal("dim_critics_init: the configuration has no local map (check it with "
                 "dim_encoder_init first)");
    memset(c, 0, sizeof *c);
    global_critic_init(&c->global, ps, cfg, rng);
    local_dot_init(&c->dot, ps, cfg, rng);
    local_concat_init(&c->concat, ps, cfg, rng);
}
ag_tensor *dim_global_scores(ag_tape *t, const dim_critics *c, const dim_features *f)
{
    const char *who = "dim_global_scores";
    const dim_global_critic *g = &c->global;
    int n = batch_of(who, f);
    ag_tensor *h = f->local;                                   /* [N, C, M, M] */
    for (int k = 0; k < 2 && g->conv[k].weight != NULL; k++) {
        check_width(who, "the map given to a global convolution", g->conv[k].weight,
                    h->shape[1]);
        h = ag_relu(t, dim_conv_forward(t, &g->conv[k], h));   /* [N, C_k, M - 2k - 2, ...] */
    }
    ag_tensor *features = ag_reshape(t, h, AG_SHAPE(n, -1));   /* [N, F] */
    check_width(who, "the flattened map", g->from_features.weight, features->shape[1]);
    check_width(who, "the code", g->from_y.weight, f->y->shape[1]);
    ag_tensor *per_x = dim_linear_forward(t, &g->from_features, features); /* [N, K] */
    ag_tensor *per_y = dim_linear_forward(t, &g->from_y, f->y);            /* [N, K] */
    int units = per_x->shape[1];
    ag_tensor *pairs = ag_add(t, ag_reshape(t, per_y, AG_SHAPE(n, 1, units)),
                                 ag_reshape(t, per_x, AG_SHAPE(1, n, units))); /* [N, N, K] */
    h = ag_relu(t, ag_reshape(t, pairs, AG_SHAPE(n * n, units)));          /* [N^2, K] */
    h = ag_relu(t, dim_linear_forward(t, &g->hidden, h));                  /* [N^2, K] */
    ag_tensor *scores = dim_linear_forward(t, &g->out, h);                 /* [N^2, 1] */
    return ag_reshape(t, scores, AG_SHAPE(1, n, n));                       /* [1, N, N] */
}
/* The weight [K, C, 1, 1] of a 1x1 convolution, viewed as the matrix [K, C]. */
static ag_tensor *pointwise_matrix(ag_tape *t, const dim_conv *l)
{
    const ag_tensor *w = l->weight;
    return ag_reshape(t, l->weight, AG_SHAPE(w->shape[0], w->shape[1]));
}

/* x [R, C] -> [R, K]: the 1x1, stride-1 convolution l applied to each row of x as to one
 * location's C channels. */
static ag_tensor *pointwise_on_rows(ag_tape *t, const dim_conv *l, ag_tensor *x)
{
    return ag_linear(t, x, pointwise_matrix(t, l), l->bias);
}
/* b_out + b_shortcut as a column [K, 1], or the one of them there is, or NULL. */
static ag_tensor *local_dot_bias(ag_tape *t, const dim_local_dot *d)
{
    ag_tensor *out = d->l_out.bias, *shortcut = d->l_shortcut.bias; /* [K] or NULL */
    ag_tensor *b = out == NULL ? shortcut : shortcut == NULL ? out : ag_add(t, out, shortcut);
    return b == NULL ? NULL : ag_reshape(t, b, AG_SHAPE(b->shape[0], 1));
}
static ag_tensor *local_dot_scores(ag_tape *t, const dim_local_dot *d, const dim_features *f)
{
    const char *who = "dim_local_scores (dot)";
    int n = batch_of(who, f), m2 = f->local->shape[2] * f->local->shape[3];
    ag_tensor *c = f->local;                                            /* [N, C, M, M] */
    check_width(who, "the local map", d->l_hidden.weight, c->shape[1]);
    check_width(who, "the code", d->y_hidden.weight, f->y->shape[1]);
    ag_tensor *rows = ag_permute(t, c, (const int[]){0, 2, 3, 1});          /* [N, M, M, C] */
    rows = ag_reshape(t, rows, AG_SHAPE(n * m2, c->shape[1]));              /* [N M^2, C] */
    ag_tensor *local_hidden = pointwise_on_rows(t, &d->l_hidden, rows);     /* [N M^2, K] */
    local_hidden = ag_relu(t, dim_batchnorm_forward(t, &d->l_bn, local_hidden));
    ag_tensor *h = dim_linear_forward(t, &d->y_hidden, f->y);                /* [N, K] */
    h = ag_relu(t, dim_batchnorm_forward(t, &d->y_bn, h));
    ag_tensor *g = ag_add(t, dim_linear_forward(t, &d->y_out, h),
                             dim_linear_forward(t, &d->y_shortcut, f->y)); /* [N, K] */
    ag_tensor *g_out = ag_matmul(t, g, pointwise_matrix(t, &d->l_out), 0, 0);         /* [N, K] */
    ag_tensor *g_short = ag_matmul(t, g, pointwise_matrix(t, &d->l_shortcut), 0, 0);  /* [N, C] */
    ag_tensor *s = ag_add(t, ag_matmul(t, g_out, local_hidden, 0, 1),
                             ag_matmul(t, g_short, rows, 0, 1));           /* [N, N M^2] */
    ag_tensor *bias = local_dot_bias(t, d);                                 /* [K, 1] or NULL */
    if (bias != NULL) s = ag_add(t, s, ag_matmul(t, g, bias, 0, 0));       /* + [N, 1] */
    s = ag_reshape(t, s, AG_SHAPE(n, n, m2));                               /* [N_i, N_j, M^2] */
    return ag_permute(t, s, (const int[]){2, 0, 1});                        /* [M^2, N_i, N_j] */
}
static ag_tensor *local_concat_scores(ag_tape *t, const dim_local_concat *cc,
                                      const dim_features *f)
{
    const char *who = "dim_local_scores (concat)";
    int n = batch_of(who, f), m2 = f->local->shape[2] * f->local->shape[3];
    check_width(who, "the local map", cc->from_features.weight, f->local->shape[1]);
    check_width(who, "the code", cc->from_y.weight, f->y->shape[1]);
    ag_tensor *per_x = dim_conv_forward(t, &cc->from_features, f->local); /* [N, K, M, M] */
    ag_tensor *per_y = dim_linear_forward(t, &cc->from_y, f->y);          /* [N, K] */
    int units = per_y->shape[1];
    per_x = ag_reshape(t, per_x, AG_SHAPE(n, units, m2));                 /* [N_j, K, M^2] */
    per_x = ag_permute(t, per_x, (const int[]){2, 1, 0});                 /* [M^2, K, N_j] */
    per_x = ag_reshape(t, per_x, AG_SHAPE(m2, units, 1, n));              /* [M^2, K, 1, N_j] */
    per_y = ag_reshape(t, ag_transpose(t, per_y), AG_SHAPE(1, units, n, 1)); /* [1, K, N_i, 1] */
    ag_tensor *h = ag_relu(t, ag_add(t, per_x, per_y));                   /* [M^2, K, N_i, N_j] */
    h = ag_relu(t, dim_conv_forward(t, &cc->hidden, h));                  /* [M^2, K, N_i, N_j] */
    ag_tensor *scores = dim_conv_forward(t, &cc->out, h);                 /* [M^2, 1, N_i, N_j] */
    return ag_reshape(t, scores, AG_SHAPE(m2, n, n));                     /* [M^2, N_i, N_j] */
}
ag_tensor *dim_local_scores(ag_tape *t, const dim_critics *c, const dim_features *f,
                            dim_local_kind kind)
{
    switch (kind) {
    case DIM_LOCAL_DOT: return local_dot_scores(t, &c->dot, f);
    case DIM_LOCAL_CONCAT: return local_concat_scores(t, &c->concat, f);
    }
    ag_fatal("dim_local_scores: unknown kind of local critic %d", (int)kind);
}
