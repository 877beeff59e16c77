/* layers.c -- convolution, linear and batch-norm layers: parameters and forward passes.
 * Tangled from doc/20-encoder.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <stdio.h>

enum { DIM_NAME_SIZE = 128 };

/* "layer.field" in buf, e.g. "encoder.conv0.weight". */
static const char *parameter_name(char buf[DIM_NAME_SIZE], const char *layer, const char *field)
{
    int n = snprintf(buf, DIM_NAME_SIZE, "%s.%s", layer, field);
    if (n < 0 || n >= DIM_NAME_SIZE)
        ag_fatal("dim: the parameter name \"%s.%s\" is longer than %d characters",
                 layer, field, DIM_NAME_SIZE - 1);
    return buf;
}
/* Every value of x uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]. */
static void fill_default_uniform(ag_tensor *x, int fan_in, ag_rng *rng)
{
    double bound = 1.0 / sqrt((double)fan_in);
    ag_fill_uniform(x, rng, -bound, bound);
}
void dim_linear_init_block(dim_linear *l, ag_params *ps, const char *name, int in, int out,
                           int fan_in, int with_bias, ag_rng *rng)
{
    char buf[DIM_NAME_SIZE];
    if (in < 1 || out < 1 || fan_in < in)
        ag_fatal("dim_linear_init: layer %s has %d inputs, %d outputs and fan-in %d; "
                 "sizes must be at least 1 and the fan-in at least the inputs",
                 name, in, out, fan_in);
    l->weight = ag_param_new(ps, parameter_name(buf, name, "weight"), AG_SHAPE(out, in));
    fill_default_uniform(l->weight, fan_in, rng);
    l->bias = NULL;
    if (with_bias) {
        l->bias = ag_param_new(ps, parameter_name(buf, name, "bias"), AG_SHAPE(out));
        fill_default_uniform(l->bias, fan_in, rng);
    }
}

void dim_linear_init(dim_linear *l, ag_params *ps, const char *name, int in, int out,
                     ag_rng *rng)
{
    dim_linear_init_block(l, ps, name, in, out, in, 1, rng);
}
void dim_conv_init_block(dim_conv *l, ag_params *ps, const char *name, int in, int out,
                         int kernel, int stride, int padding, int fan_in, int with_bias,
                         ag_rng *rng)
{
    char buf[DIM_NAME_SIZE];
    if (in < 1 || out < 1 || kernel < 1 || stride < 1 || padding < 0 || fan_in < in)
        ag_fatal("dim_conv_init: layer %s has %d input and %d output channels, kernel %d, "
                 "stride %d, padding %d, fan-in %d; none may be below 1 (padding below 0)",
                 name, in, out, kernel, stride, padding, fan_in);
    l->weight = ag_param_new(ps, parameter_name(buf, name, "weight"),
                             AG_SHAPE(out, in, kernel, kernel));
    fill_default_uniform(l->weight, fan_in * kernel * kernel, rng);
    l->bias = NULL;
    if (with_bias) {
        l->bias = ag_param_new(ps, parameter_name(buf, name, "bias"), AG_SHAPE(out));
        fill_default_uniform(l->bias, fan_in * kernel * kernel, rng);
    }
    l->stride = stride;
    l->padding = padding;
}

void dim_conv_init(dim_conv *l, ag_params *ps, const char *name, int in, int out, int kernel,
                   int stride, int padding, ag_rng *rng)
{
    dim_conv_init_block(l, ps, name, in, out, kernel, stride, padding, in, 1, rng);
}
void dim_batchnorm_init(dim_batchnorm *l, ag_params *ps, const char *name, int channels)
{
    char buf[DIM_NAME_SIZE];
    if (channels < 1)
        ag_fatal("dim_batchnorm_init: layer %s has %d channels", name, channels);
    l->gamma = ag_param_new(ps, parameter_name(buf, name, "weight"), AG_SHAPE(channels));
    l->beta = ag_param_new(ps, parameter_name(buf, name, "bias"), AG_SHAPE(channels));
    l->running_mean = ag_buffer_new(ps, parameter_name(buf, name, "running_mean"),
                                    AG_SHAPE(channels));
    l->running_var = ag_buffer_new(ps, parameter_name(buf, name, "running_var"),
                                   AG_SHAPE(channels));
    ag_fill(l->gamma, 1);
    ag_fill(l->running_var, 1);
}
static const double DIM_BN_MOMENTUM = 0.1, DIM_BN_EPS = 1e-5;

ag_tensor *dim_conv_forward(ag_tape *t, const dim_conv *l, ag_tensor *x)
{
    return ag_conv2d(t, x, l->weight, l->bias, l->stride, l->padding);
}

ag_tensor *dim_linear_forward(ag_tape *t, const dim_linear *l, ag_tensor *x)
{
    return ag_linear(t, x, l->weight, l->bias);
}

ag_tensor *dim_batchnorm_forward(ag_tape *t, const dim_batchnorm *l, ag_tensor *x)
{
    return ag_batch_norm(t, x, l->gamma, l->beta, l->running_mean, l->running_var,
                         DIM_BN_MOMENTUM, DIM_BN_EPS);
}
