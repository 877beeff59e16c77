/* data.c -- datasets: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary batches, generated shapes.
 * Tangled from doc/30-data.nw: edit the book, not this file. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dim.h"

static int data_error(char *error, size_t size, int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
    return code;
}
/* zlib's messages start with the path; ours already do. */
static const char *without_path(const char *message, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(message, path, n) == 0 && strncmp(message + n, ": ", 2) == 0)
        return message + n + 2;
    return message;
}

/* Reads at most limit bytes of path (gunzipping if needed) into a new buffer that grows with
 * what is read. Sets *size; *size == limit + 1 means the file is longer than limit. */
static int read_file(const char *path, size_t limit, unsigned char **bytes, size_t *size,
                     char *error, size_t error_size)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return data_error(error, error_size, DIM_DATA_BAD_FILE, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    unsigned char *buffer = NULL;
    size_t total = 0, capacity = 0;
    int status = Z_OK, read_errno = 0;
    const char *message = "";
    for (;;) {
        if (total == capacity) {
            if (capacity == limit + 1) break;
            size_t grown = capacity == 0 ? (size_t)1 << 16 : 2 * capacity;
            if (grown > limit + 1) grown = limit + 1;
            unsigned char *bigger = realloc(buffer, grown);
            if (bigger == NULL) {
                free(buffer);
                gzclose(f);
                return data_error(error, error_size, DIM_DATA_BAD_FILE, "%s: out of memory", path);
            }
            buffer = bigger;
            capacity = grown;
        }
        size_t want = capacity - total;
        int got = gzread(f, buffer + total, want > (1u << 30) ? 1u << 30 : (unsigned)want);
        if (got <= 0) {
            read_errno = errno;
            message = gzerror(f, &status);
            break;
        }
        total += (size_t)got;
    }
    if (status != Z_OK) {
        int code = DIM_DATA_BAD_FILE;
        if (status == Z_BUF_ERROR)
            data_error(error, error_size, code, "%s: truncated: the compressed stream ends early",
                       path);
        else if (status == Z_ERRNO)
            data_error(error, error_size, code, "%s: cannot read: %s", path, strerror(read_errno));
        else
            data_error(error, error_size, code, "%s: corrupt compressed data (%s)", path,
                       without_path(message, path));
        free(buffer);
        gzclose(f);
        return code;
    }
    gzclose(f);
    *bytes = buffer;
    *size = total;
    return DIM_DATA_OK;
}
static unsigned long big_endian32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* The largest IDX file we accept: 10 million 64x64 images would be 40 GB; 1 GiB is plenty. */
enum { IDX_MAX_BYTES = 1 << 30, IDX_MAX_COUNT = 10000000, IDX_MAX_SIDE = 1024 };

/* Parse an IDX file of unsigned bytes with ndim dimensions (1 or 3). On success the data
 * starts at bytes + header and dims[] holds the dimensions. */
int dim_idx_parse(const unsigned char *bytes, size_t size, int ndim, long dims[3],
                  size_t *header, const char *path, char *error, size_t error_size)
{
    if (size < 4)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: truncated: %zu bytes, too short for an IDX header", path, size);
    if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != ndim)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: wrong magic number 0x%02x%02x%02x%02x (expected 0x000008%02x: "
                          "an IDX file of %s)", path, bytes[0], bytes[1], bytes[2], bytes[3],
                          ndim, ndim == 3 ? "images" : "labels");
    *header = 4 + 4 * (size_t)ndim;
    if (size < *header)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: truncated in the header (%zu bytes)", path, size);
    size_t expected = 1;
    for (int k = 0; k < ndim; k++) {
        unsigned long d = big_endian32(bytes + 4 + 4 * k);
        unsigned long max = k == 0 ? IDX_MAX_COUNT : IDX_MAX_SIDE;
        if (d == 0 || d > max)
            return data_error(error, error_size, DIM_DATA_BAD_FILE,
                              "%s: dimension %d is %lu, outside 1..%lu: not a sane IDX header",
                              path, k, d, max);
        dims[k] = (long)d;
        expected *= d;
    }
    if (expected > IDX_MAX_BYTES)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: the header announces %zu bytes of data, more than %d",
                          path, expected, IDX_MAX_BYTES);
    if (size - *header < expected)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: truncated: the header announces %zu bytes of data, %zu follow",
                          path, expected, size - *header);
    if (size - *header > expected)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: corrupt: more data follows than the header announces (%zu bytes)",
                          path, expected);
    return DIM_DATA_OK;
}
static size_t idx_limit(const unsigned char *head, size_t n, int ndim)
{
    size_t header = 4 + 4 * (size_t)ndim, data = 1;
    if (n < header || head[0] || head[1] || head[2] != 0x08 || head[3] != ndim) return header;
    for (int k = 0; k < ndim; k++) {
        unsigned long d = big_endian32(head + 4 + 4 * k);
        if (d == 0 || d > (k == 0 ? IDX_MAX_COUNT : IDX_MAX_SIDE)) return header;
        data *= d;
        if (data > IDX_MAX_BYTES) return header;
    }
    return header + data;
}

static int read_idx(const char *dir, const char *stem, int ndim, unsigned char **bytes,
                    size_t *size, char *path, size_t path_size, char *error, size_t error_size)
{
    snprintf(path, path_size, "%s/%s.gz", dir, stem);
    if (access(path, F_OK) != 0) snprintf(path, path_size, "%s/%s", dir, stem);
    unsigned char head[16];
    int got = 0;
    gzFile f = gzopen(path, "rb");
    if (f != NULL) {
        got = gzread(f, head, (unsigned)(4 + 4 * ndim));
        gzclose(f);
    }
    size_t limit = idx_limit(head, got > 0 ? (size_t)got : 0, ndim);
    return read_file(path, limit, bytes, size, error, error_size);
}

static int load_idx_dataset(dim_dataset *d, const char *name, const char *dir, dim_split split,
                            char *error, size_t error_size)
{
    const char *prefix = split == DIM_SPLIT_TRAIN ? "train" : "t10k";
    char stem[64], image_path[4096], label_path[4096];
    unsigned char *images = NULL, *labels = NULL;
    size_t image_size, label_size, image_header, label_header;
    long image_dims[3], label_dims[3];
    int rc;

    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    rc = read_idx(dir, stem, 3, &images, &image_size, image_path, sizeof image_path,
                  error, error_size);
    if (rc == DIM_DATA_OK)
        rc = dim_idx_parse(images, image_size, 3, image_dims, &image_header, image_path,
                           error, error_size);
    if (rc == DIM_DATA_OK) {
        snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", prefix);
        rc = read_idx(dir, stem, 1, &labels, &label_size, label_path, sizeof label_path,
                      error, error_size);
    }
    if (rc == DIM_DATA_OK)
        rc = dim_idx_parse(labels, label_size, 1, label_dims, &label_header, label_path,
                           error, error_size);
    if (rc == DIM_DATA_OK && label_dims[0] != image_dims[0])
        rc = data_error(error, error_size, DIM_DATA_BAD_FILE,
                        "%s: %ld labels for %ld images in %s", label_path, label_dims[0],
                        image_dims[0], image_path);
    for (long i = 0; rc == DIM_DATA_OK && i < label_dims[0]; i++)
        if (labels[label_header + i] > 9)
            rc = data_error(error, error_size, DIM_DATA_BAD_FILE,
                            "%s: label %ld is %d, not a class 0..9", label_path, i,
                            labels[label_header + i]);
    if (rc == DIM_DATA_OK) {
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "%s", name);
        d->count = (int)image_dims[0];
        d->channels = 1;
        d->height = (int)image_dims[1];
        d->width = (int)image_dims[2];
        d->nclasses = 10;
        /* Keep the buffers, moving the data to their starts. */
        memmove(images, images + image_header, image_size - image_header);
        memmove(labels, labels + label_header, label_size - label_header);
        d->pixels = images;
        d->labels = labels;
        return DIM_DATA_OK;
    }
    free(images);
    free(labels);
    return rc;
}
enum { CIFAR_RECORD = 1 + 3 * 32 * 32, CIFAR_PER_BATCH = 10000 };

int dim_cifar_parse(const unsigned char *bytes, size_t size, const char *path,
                    char *error, size_t error_size)
{
    size_t expected = (size_t)CIFAR_RECORD * CIFAR_PER_BATCH;
    if (size != expected)
        return data_error(error, error_size, DIM_DATA_BAD_FILE,
                          "%s: %s: %zu bytes, a CIFAR-10 batch has %zu", path,
                          size < expected ? "truncated" : "corrupt", size, expected);
    for (size_t r = 0; r < CIFAR_PER_BATCH; r++)
        if (bytes[r * CIFAR_RECORD] > 9)
            return data_error(error, error_size, DIM_DATA_BAD_FILE,
                              "%s: record %zu has label %d, not a class 0..9", path, r,
                              bytes[r * CIFAR_RECORD]);
    return DIM_DATA_OK;
}

static int load_cifar10(dim_dataset *d, const char *dir, dim_split split, char *error,
                        size_t error_size)
{
    int nbatches = split == DIM_SPLIT_TRAIN ? 5 : 1;
    size_t image_bytes = CIFAR_RECORD - 1;
    memset(d, 0, sizeof *d);
    for (int b = 0; b < nbatches; b++) {
        char path[4096];
        if (split == DIM_SPLIT_TRAIN)
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b + 1);
        else
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        unsigned char *bytes = NULL;
        size_t size;
        int rc = read_file(path, (size_t)CIFAR_RECORD * CIFAR_PER_BATCH, &bytes, &size,
                           error, error_size);
        if (rc == DIM_DATA_OK) rc = dim_cifar_parse(bytes, size, path, error, error_size);
        if (rc == DIM_DATA_OK && b == 0) {
            snprintf(d->name, sizeof d->name, "cifar10");
            d->count = nbatches * CIFAR_PER_BATCH;
            d->channels = 3;
            d->height = d->width = 32;
            d->nclasses = 10;
            d->pixels = malloc((size_t)d->count * image_bytes);
            d->labels = malloc((size_t)d->count);
            if (d->pixels == NULL || d->labels == NULL)
                rc = data_error(error, error_size, DIM_DATA_BAD_FILE,
                                "%s: out of memory for %d images", dir, d->count);
        }
        for (int r = 0; rc == DIM_DATA_OK && r < CIFAR_PER_BATCH; r++) {
            size_t i = (size_t)b * CIFAR_PER_BATCH + r;
            d->labels[i] = bytes[(size_t)r * CIFAR_RECORD];
            memcpy(d->pixels + i * image_bytes, bytes + (size_t)r * CIFAR_RECORD + 1, image_bytes);
        }
        free(bytes);
        if (rc != DIM_DATA_OK) {
            dim_dataset_free(d);
            return rc;
        }
    }
    return DIM_DATA_OK;
}
enum { SHAPES_SIDE = 28, SHAPES_TRAIN = 10000, SHAPES_TEST = 2000, SHAPES_CLASSES = 10 };

/* Is the point (x, y), relative to the centre and in units of the half-size, inside a figure
 * of the given kind? */
static int inside_shape(int kind, double x, double y)
{
    double r = sqrt(x * x + y * y), ax = fabs(x), ay = fabs(y);
    switch (kind) {
    case 0: return ax <= 1 && ay <= 1;                                     /* filled square */
    case 1: return ax <= 1 && ay <= 1 && (ax > 0.6 || ay > 0.6);           /* hollow square */
    case 2: return r <= 1;                                                 /* disc */
    case 3: return r <= 1 && r > 0.6;                                      /* ring */
    case 4: return y >= -1 && y <= 1 && ax <= (y + 1) / 2;                 /* triangle */
    case 5: return (ax <= 0.3 && ay <= 1) || (ay <= 0.3 && ax <= 1);       /* cross */
    case 6: return ax <= 1 && ay <= 0.3;                                   /* horizontal bar */
    case 7: return ay <= 1 && ax <= 0.3;                                   /* vertical bar */
    case 8: return ax + ay <= 1;                                           /* diamond */
    default: return ax <= 1 && ay <= 1 && fabs(x - y) <= 0.5;              /* diagonal band */
    }
}

static int make_shapes(dim_dataset *d, dim_split split, char *error, size_t error_size)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "shapes");
    d->count = split == DIM_SPLIT_TRAIN ? SHAPES_TRAIN : SHAPES_TEST;
    d->channels = 1;
    d->height = d->width = SHAPES_SIDE;
    d->nclasses = SHAPES_CLASSES;
    d->pixels = malloc((size_t)d->count * SHAPES_SIDE * SHAPES_SIDE);
    d->labels = malloc((size_t)d->count);
    if (d->pixels == NULL || d->labels == NULL) {
        dim_dataset_free(d);
        return data_error(error, error_size, DIM_DATA_BAD_FILE, "shapes: out of memory");
    }
    ag_rng rng;
    ag_rng_seed(&rng, split == DIM_SPLIT_TRAIN ? 0x5eed5a1e : 0x7e575e7);
    for (int i = 0; i < d->count; i++) {
        int kind = (int)ag_rng_below(&rng, SHAPES_CLASSES);
        double half = 4 + 5 * ag_rng_uniform(&rng);
        double cx = half + (SHAPES_SIDE - 2 * half) * ag_rng_uniform(&rng);
        double cy = half + (SHAPES_SIDE - 2 * half) * ag_rng_uniform(&rng);
        double ink = 140 + 115 * ag_rng_uniform(&rng);
        unsigned char *p = d->pixels + (size_t)i * SHAPES_SIDE * SHAPES_SIDE;
        for (int y = 0; y < SHAPES_SIDE; y++)
            for (int x = 0; x < SHAPES_SIDE; x++) {
                double v = 30 * ag_rng_uniform(&rng);
                if (inside_shape(kind, (x + 0.5 - cx) / half, (y + 0.5 - cy) / half)) v = ink;
                p[y * SHAPES_SIDE + x] = (unsigned char)v;
            }
        d->labels[i] = (unsigned char)kind;
    }
    return DIM_DATA_OK;
}
typedef struct dim_dataset_kind {
    const char *name;          /* the spec's part before the colon */
    const char *default_dir;   /* NULL: a directory must be given (or none is needed) */
    int needs_dir;             /* 1: read from files */
    int (*load)(dim_dataset *d, const char *name, const char *dir, dim_split split,
                char *error, size_t error_size);
} dim_dataset_kind;

static int load_cifar_kind(dim_dataset *d, const char *name, const char *dir, dim_split split,
                           char *error, size_t error_size)
{
    (void)name;
    return load_cifar10(d, dir, split, error, error_size);
}

static int load_shapes_kind(dim_dataset *d, const char *name, const char *dir, dim_split split,
                            char *error, size_t error_size)
{
    (void)name;
    (void)dir;
    return make_shapes(d, split, error, error_size);
}

static const dim_dataset_kind dataset_kinds[] = {
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist", 1, load_idx_dataset},
    {"mnist", NULL, 1, load_idx_dataset},
    {"cifar10", NULL, 1, load_cifar_kind},
    {"shapes", NULL, 0, load_shapes_kind},
};

int dim_dataset_load(dim_dataset *d, const char *spec, dim_split split, char *error,
                     size_t error_size)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    for (size_t k = 0; k < sizeof dataset_kinds / sizeof dataset_kinds[0]; k++) {
        const dim_dataset_kind *kind = &dataset_kinds[k];
        if (strlen(kind->name) != len || strncmp(kind->name, spec, len) != 0) continue;
        const char *dir = colon ? colon + 1 : kind->default_dir;
        if (!kind->needs_dir && colon)
            return data_error(error, error_size, DIM_DATA_BAD_SPEC,
                              "data spec '%s': %s takes no directory", spec, kind->name);
        if (kind->needs_dir && (dir == NULL || *dir == '\0'))
            return data_error(error, error_size, DIM_DATA_BAD_SPEC,
                              "data spec '%s': %s needs a directory, as %s:DIR", spec,
                              kind->name, kind->name);
        return kind->load(d, kind->name, dir, split, error, error_size);
    }
    return data_error(error, error_size, DIM_DATA_BAD_SPEC,
                      "data spec '%s': unknown dataset (fashion-mnist[:DIR], mnist:DIR, "
                      "cifar10:DIR, shapes)", spec);
}

void dim_dataset_free(dim_dataset *d)
{
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void dim_dataset_batch(const dim_dataset *d, const int *indices, int n,
                       ag_real *images, int *labels)
{
    long image_size = (long)d->channels * d->height * d->width;
    for (int b = 0; b < n; b++) {
        const unsigned char *p = d->pixels + (long)indices[b] * image_size;
        for (long k = 0; k < image_size; k++)
            images[b * image_size + k] = (ag_real)(p[k] * (2.0 / 255.0) - 1.0);
        if (labels) labels[b] = d->labels[indices[b]];
    }
}
