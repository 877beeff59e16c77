/* encoder.c -- the paper's encoders E = f o C and their configurations.
 * Tangled from doc/20-encoder.nw: edit the book, not this file. */
#include "dim.h"

#include <stdio.h>
#include <string.h>

/* Every encoder convolution halves the side: kernel 4, stride 2, padding 1. */
enum { ENCODER_KERNEL = 4, ENCODER_STRIDE = 2, ENCODER_PADDING = 1 };

/* The part both of the paper's configurations share: after C(x). */
static void paper_common(dim_config *c)
{
    c->local_layer = 1;
    c->fc_units = 1024;
    c->y_units = 64;
    c->critic_units = 512;
    c->global_nconv = 2;
    c->global_conv_channels[0] = 64;
    c->global_conv_channels[1] = 32;
    c->prior_units[0] = 1000;
    c->prior_units[1] = 200;
}

int dim_config_for_input(dim_config *c, int channels, int height, int width)
{
    dim_config k;
    memset(&k, 0, sizeof k);
    k.in_channels = channels;
    k.in_height = height;
    k.in_width = width;
    if (channels == 1 && height == 28 && width == 28) {
        k.nconv = 2;
        k.conv_channels[0] = 64, k.conv_channels[1] = 128;
        k.conv_batchnorm[0] = 0, k.conv_batchnorm[1] = 1;
    } else if (channels == 3 && height == 32 && width == 32) {
        k.nconv = 3;
        k.conv_channels[0] = 64, k.conv_channels[1] = 128, k.conv_channels[2] = 256;
        k.conv_batchnorm[0] = k.conv_batchnorm[1] = k.conv_batchnorm[2] = 1;
    } else {
        return -1;
    }
    paper_common(&k);
    *c = k;
    return 0;
}
int dim_config_tiny(dim_config *c)
{
    memset(c, 0, sizeof *c);
    c->in_channels = 1;
    c->in_height = c->in_width = 12;
    c->nconv = 2;
    c->conv_channels[0] = 3, c->conv_channels[1] = 4;
    c->conv_batchnorm[0] = 0, c->conv_batchnorm[1] = 1;
    c->local_layer = 1;
    c->fc_units = 6;
    c->y_units = 3;
    c->critic_units = 5;
    c->global_nconv = 1;
    c->global_conv_channels[0] = 4;
    c->prior_units[0] = 6;
    c->prior_units[1] = 5;
    return 0;
}
/* The side of conv layer `layer`'s output (layer -1: the input), 0 if a conv does not fit. */
static int conv_side(const dim_config *c, int layer)
{
    int side = c->in_height;
    for (int l = 0; l <= layer && side > 0; l++) {
        int room = side + 2 * ENCODER_PADDING - ENCODER_KERNEL;
        side = room < 0 ? 0 : room / ENCODER_STRIDE + 1;
    }
    return side;
}

int dim_config_local_size(const dim_config *c)
{
    if (c->local_layer < 0 || c->local_layer >= c->nconv) return 0;
    return conv_side(c, c->local_layer);
}
static void check_config(const dim_config *c)
{
    if (c->in_channels < 1 || c->in_height < 1 || c->in_height != c->in_width)
        ag_fatal("dim_encoder_init: images of %dx%dx%d; DIM needs square images "
                 "(the local map is M x M)", c->in_channels, c->in_height, c->in_width);
    if (c->nconv < 1 || c->nconv > DIM_MAX_CONV)
        ag_fatal("dim_encoder_init: %d convolutions; an encoder has 1 to %d",
                 c->nconv, DIM_MAX_CONV);
    if (c->local_layer < 0 || c->local_layer >= c->nconv)
        ag_fatal("dim_encoder_init: C(x) is taken from conv %d, but there are convs 0 to %d",
                 c->local_layer, c->nconv - 1);
    if (conv_side(c, c->nconv - 1) < 1)
        ag_fatal("dim_encoder_init: %d convolutions of stride %d do not fit %dx%d images",
                 c->nconv, ENCODER_STRIDE, c->in_height, c->in_width);
    if (c->fc_units < 1 || c->y_units < 1)
        ag_fatal("dim_encoder_init: fc_units %d and y_units %d must be at least 1",
                 c->fc_units, c->y_units);
}
void dim_encoder_init(dim_encoder *e, ag_params *ps, const dim_config *c, ag_rng *rng)
{
    char name[64];
    check_config(c);
    memset(e, 0, sizeof *e);
    e->config = *c;
    int channels = c->in_channels;
    for (int l = 0; l < c->nconv; l++) {
        snprintf(name, sizeof name, "encoder.conv%d", l);
        dim_conv_init(&e->conv[l], ps, name, channels, c->conv_channels[l], ENCODER_KERNEL,
                      ENCODER_STRIDE, ENCODER_PADDING, rng);
        if (c->conv_batchnorm[l]) {
            snprintf(name, sizeof name, "encoder.bn%d", l);
            dim_batchnorm_init(&e->conv_bn[l], ps, name, c->conv_channels[l]);
        }
        channels = c->conv_channels[l];
    }
    int side = conv_side(c, c->nconv - 1);
    dim_linear_init(&e->fc, ps, "encoder.fc", channels * side * side, c->fc_units, rng);
    dim_batchnorm_init(&e->fc_bn, ps, "encoder.fc_bn", c->fc_units);
    dim_linear_init(&e->out, ps, "encoder.out", c->fc_units, c->y_units, rng);
}
dim_features dim_encode(ag_tape *t, const dim_encoder *e, ag_tensor *images)
{
    const dim_config *c = &e->config;
    char shape[AG_SHAPE_STR_SIZE];
    if (images->ndim != 4 || images->shape[1] != c->in_channels
        || images->shape[2] != c->in_height || images->shape[3] != c->in_width)
        ag_fatal("dim_encode: images of shape %s; this encoder takes [N, %d, %d, %d]",
                 ag_shape_str(images, shape), c->in_channels, c->in_height, c->in_width);
    int n = images->shape[0];
    dim_features f;
    memset(&f, 0, sizeof f);
    ag_tensor *h = images;                                     /* [N, C, H, W] */
    for (int l = 0; l < c->nconv; l++) {
        h = dim_conv_forward(t, &e->conv[l], h);               /* [N, C_l, H/2, W/2] */
        if (c->conv_batchnorm[l]) h = dim_batchnorm_forward(t, &e->conv_bn[l], h);
        h = ag_relu(t, h);
        if (l == c->local_layer) f.local = h;                  /* [N, C_local, M, M] */
    }
    f.conv = h;                                                /* [N, C_last, H', W'] */
    ag_tensor *flat = ag_reshape(t, h, AG_SHAPE(n, -1));       /* [N, C_last H' W'] */
    h = dim_batchnorm_forward(t, &e->fc_bn, dim_linear_forward(t, &e->fc, flat));
    f.fc = ag_relu(t, h);                                      /* [N, fc_units] */
    f.y = dim_linear_forward(t, &e->out, f.fc);                /* [N, y_units] */
    return f;
}
ag_tensor *dim_feature_by_name(const dim_features *f, const char *name)
{
    if (strcmp(name, "conv") == 0) return f->conv;
    if (strcmp(name, "fc") == 0) return f->fc;
    if (strcmp(name, "y") == 0) return f->y;
    return NULL;
}
