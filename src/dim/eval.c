/* eval.c -- frozen features of a dataset and their standardisation.
 * Tangled from doc/33-eval.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int eval_error(char *error, size_t size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
    return 1;
}
int dim_feature_matrix_alloc(dim_feature_matrix *m, const char *layer, int rows, int cols,
                             char *error, size_t error_size)
{
    memset(m, 0, sizeof *m);
    snprintf(m->layer, sizeof m->layer, "%s", layer);
    if (rows < 1 || cols < 1)
        ag_fatal("dim_feature_matrix_alloc: %d rows of %d %s features; both must be at least 1",
                 rows, cols, layer);
    m->values = calloc((size_t)rows * (size_t)cols, sizeof(ag_real));
    if (m->values == NULL)
        return eval_error(error, error_size, "out of memory for the %s features of %d images "
                          "(%.2f GB)", layer, rows,
                          (double)rows * cols * sizeof(ag_real) / 1e9);
    m->rows = rows;
    m->cols = cols;
    return 0;
}

void dim_feature_matrix_free(dim_feature_matrix *m)
{
    free(m->values);
    m->values = NULL;
    m->rows = m->cols = 0;
}
static const size_t EXTRACT_TAPE_LIMIT = (size_t)8 << 30;  /* bytes one batch may use */

int dim_extract_features(const dim_encoder *e, const dim_dataset *d, int nlayers,
                         const char *const *layers, int batch, dim_feature_matrix *out,
                         char *error, size_t error_size)
{
    const dim_config *c = &e->config;
    if (d->channels != c->in_channels || d->height != c->in_height || d->width != c->in_width)
        ag_fatal("dim_extract_features: %s images are %dx%dx%d; the encoder takes %dx%dx%d",
                 d->name, d->channels, d->height, d->width, c->in_channels, c->in_height,
                 c->in_width);
    if (batch < 1 || nlayers < 1 || d->count < 1)
        ag_fatal("dim_extract_features: batch %d, %d layers, %d images; each must be >= 1",
                 batch, nlayers, d->count);
    for (int k = 0; k < nlayers; k++) {
        memset(&out[k], 0, sizeof out[k]);
        if (strcmp(layers[k], "conv") != 0 && strcmp(layers[k], "fc") != 0
            && strcmp(layers[k], "y") != 0)
            ag_fatal("dim_extract_features: no feature named \"%s\" (conv, fc, y)", layers[k]);
    }
    long image_size = (long)d->channels * d->height * d->width;
    int *indices = malloc((size_t)batch * sizeof *indices);                 /* [batch] */
    ag_real *images = malloc((size_t)batch * image_size * sizeof *images);  /* [batch, C, H, W] */
    int status = indices && images ? 0 : eval_error(error, error_size, "out of memory for a "
                                                    "batch of %d images", batch);
    ag_tape *t = ag_tape_new_growing(EXTRACT_TAPE_LIMIT);
    ag_tape_set_training(t, 0);  /* batch norm on its running statistics, updating nothing */
    for (int start = 0; start < d->count && status == 0; start += batch) {
        int n = d->count - start < batch ? d->count - start : batch;
        for (int b = 0; b < n; b++) indices[b] = start + b;
        dim_dataset_batch(d, indices, n, images, NULL);
        ag_tape_reset(t);
        ag_tensor *x = ag_tensor_from(t, AG_SHAPE(n, d->channels, d->height, d->width), images);
        dim_features f = dim_encode(t, e, x);
        for (int k = 0; k < nlayers && status == 0; k++) {
            const ag_tensor *v = dim_feature_by_name(&f, layers[k]);   /* [n, ...] */
            int cols = (int)(v->size / n);
            if (out[k].values == NULL)
                status = dim_feature_matrix_alloc(&out[k], layers[k], d->count, cols, error,
                                                  error_size);
            if (status == 0)
                memcpy(out[k].values + (size_t)start * cols, v->value,
                       (size_t)n * cols * sizeof(ag_real));
        }
    }
    ag_tape_free(t);
    free(indices);
    free(images);
    if (status != 0)
        for (int k = 0; k < nlayers; k++) dim_feature_matrix_free(&out[k]);
    return status;
}
int dim_pixel_features(const dim_dataset *d, dim_feature_matrix *out, char *error,
                       size_t error_size)
{
    enum { CHUNK = 1024 };
    int indices[CHUNK];
    long image_size = (long)d->channels * d->height * d->width;
    int status = dim_feature_matrix_alloc(out, "pixels", d->count, (int)image_size, error,
                                          error_size);
    for (int start = 0; start < d->count && status == 0; start += CHUNK) {
        int n = d->count - start < CHUNK ? d->count - start : CHUNK;
        for (int b = 0; b < n; b++) indices[b] = start + b;
        dim_dataset_batch(d, indices, n, out->values + (size_t)start * image_size, NULL);
    }
    return status;
}
int dim_standardiser_fit(dim_standardiser *s, const dim_feature_matrix *train, char *error,
                         size_t error_size)
{
    int cols = train->cols;
    s->cols = cols;
    s->mean = malloc((size_t)cols * sizeof *s->mean);
    s->scale = malloc((size_t)cols * sizeof *s->scale);
    if (s->mean == NULL || s->scale == NULL) {
        dim_standardiser_free(s);
        return eval_error(error, error_size, "out of memory for the statistics of %d features",
                          cols);
    }
    ag_column_mean_var(train->values, train->rows, cols, s->mean, s->scale); /* the variance */
    for (int j = 0; j < cols; j++) {
        double std = sqrt(s->scale[j]);
        s->scale[j] = std > 0 ? std : 1;
    }
    return 0;
}

void dim_standardiser_apply(const dim_standardiser *s, dim_feature_matrix *m)
{
    if (m->cols != s->cols)
        ag_fatal("dim_standardiser_apply: %s features have %d columns; the statistics are of %d",
                 m->layer, m->cols, s->cols);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < m->rows; i++) {
        ag_real *row = m->values + (size_t)i * m->cols;
        for (int j = 0; j < m->cols; j++)
            row[j] = (ag_real)((row[j] - s->mean[j]) / s->scale[j]);
    }
}

void dim_standardiser_free(dim_standardiser *s)
{
    free(s->mean);
    free(s->scale);
    s->mean = s->scale = NULL;
    s->cols = 0;
}
