/* checkpoint.c -- the versioned binary checkpoint: atomic saves, a parser that checks first.
 * Tangled from doc/31-checkpoint.nw: edit the book, not this file. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "dim.h"

static const unsigned char CHECKPOINT_MAGIC[8] = {0x89, 'D', 'I', 'M', '\r', '\n', 0x1a, '\n'};

enum {
    CHECKPOINT_VERSION = 1,
    CHECKPOINT_HEADER = 28,        /* magic, version, element size, payload length, CRC */
    CHECKPOINT_MAX_STRING = 255,   /* the longest string (a data spec, a tensor's name) */
    CHECKPOINT_MAX_TENSORS = 4096, /* per set; the model has about 60 */
    CHECKPOINT_TRAINABLE = 1       /* bit 0 of a tensor's flags */
};
typedef struct config_field {
    const char *name;
    size_t offset;   /* of the int in dim_config */
} config_field;

#define CONFIG_FIELD(member) {#member, offsetof(dim_config, member)}
static const config_field config_fields[] = {
    CONFIG_FIELD(in_channels), CONFIG_FIELD(in_height), CONFIG_FIELD(in_width),
    CONFIG_FIELD(nconv),
    CONFIG_FIELD(conv_channels[0]), CONFIG_FIELD(conv_channels[1]), CONFIG_FIELD(conv_channels[2]),
    CONFIG_FIELD(conv_batchnorm[0]), CONFIG_FIELD(conv_batchnorm[1]),
    CONFIG_FIELD(conv_batchnorm[2]),
    CONFIG_FIELD(local_layer), CONFIG_FIELD(fc_units), CONFIG_FIELD(y_units),
    CONFIG_FIELD(critic_units), CONFIG_FIELD(global_nconv),
    CONFIG_FIELD(global_conv_channels[0]), CONFIG_FIELD(global_conv_channels[1]),
    CONFIG_FIELD(prior_units[0]), CONFIG_FIELD(prior_units[1]),
};
enum { CONFIG_NFIELDS = sizeof config_fields / sizeof config_fields[0] };

static int *config_int(dim_config *c, int k)
{
    return (int *)((char *)c + config_fields[k].offset);
}
static int checkpoint_error(char *error, size_t size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    if (error != NULL && size > 0) vsnprintf(error, size, format, args);
    va_end(args);
    return DIM_DATA_BAD_FILE;
}
static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static uint64_t double_bits(double x) { uint64_t b; memcpy(&b, &x, 8); return b; }
static double bits_double(uint64_t b) { double x; memcpy(&x, &b, 8); return x; }
static uint32_t float_bits(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static float bits_float(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }
enum { WRITER_BUFFER = 1 << 16 };

typedef struct writer {
    FILE *file;
    unsigned char buffer[WRITER_BUFFER];
    size_t used;        /* bytes in buffer */
    uLong crc;          /* of the payload bytes flushed so far */
    uint64_t length;    /* payload bytes flushed so far */
    int error;          /* errno of the first failed write; 0 */
} writer;

static void writer_flush(writer *w)
{
    if (w->used == 0) return;
    if (w->error == 0 && fwrite(w->buffer, 1, w->used, w->file) != w->used)
        w->error = errno ? errno : EIO;
    w->crc = crc32(w->crc, w->buffer, (uInt)w->used);
    w->length += w->used;
    w->used = 0;
}

static void put_bytes(writer *w, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    while (n > 0) {
        size_t room = WRITER_BUFFER - w->used, k = n < room ? n : room;
        memcpy(w->buffer + w->used, p, k);
        w->used += k;
        p += k;
        n -= k;
        if (w->used == WRITER_BUFFER) writer_flush(w);
    }
}

static void put_u32(writer *w, uint32_t v) { unsigned char b[4]; put_le(b, v, 4); put_bytes(w, b, 4); }
static void put_u64(writer *w, uint64_t v) { unsigned char b[8]; put_le(b, v, 8); put_bytes(w, b, 8); }
static void put_i32(writer *w, int v) { put_u32(w, (uint32_t)v); }
static void put_f64(writer *w, double x) { put_u64(w, double_bits(x)); }

static void put_string(writer *w, const char *s)
{
    size_t n = strlen(s);
    if (n > CHECKPOINT_MAX_STRING) n = CHECKPOINT_MAX_STRING;
    put_u32(w, (uint32_t)n);
    put_bytes(w, s, n);
}

static void put_reals(writer *w, const ag_real *x, long n)
{
    for (long i = 0; i < n; i++) {
        if (sizeof(ag_real) == 4) put_u32(w, float_bits((float)x[i]));
        else put_u64(w, double_bits((double)x[i]));
    }
}
static void put_rng(writer *w, const ag_rng *r)
{
    for (int k = 0; k < 4; k++) put_u64(w, r ? r->s[k] : 0);
}

static void put_bound_state(writer *w, const dim_bound_state *s)
{
    put_f64(w, s->smile_tau);
    put_f64(w, s->mine_rate);
    put_f64(w, s->mine_ema);
}

static void put_optimiser(writer *w, const ag_adam *a)
{
    put_u64(w, (uint64_t)a->step);
    put_f64(w, a->lr);
    put_f64(w, a->beta1);
    put_f64(w, a->beta2);
    put_f64(w, a->eps);
}

static void put_tensors(writer *w, const ag_params *ps, const ag_adam *a)
{
    put_u32(w, (uint32_t)ps->count);
    for (int i = 0; i < ps->count; i++) {
        const ag_tensor *x = ps->items[i];
        put_string(w, x->name);
        put_u32(w, x->requires_grad ? CHECKPOINT_TRAINABLE : 0);
        put_u32(w, (uint32_t)x->ndim);
        for (int d = 0; d < x->ndim; d++) put_u32(w, (uint32_t)x->shape[d]);
        put_reals(w, x->value, x->size);
        if (x->requires_grad) {
            put_reals(w, a->m[i], x->size);
            put_reals(w, a->v[i], x->size);
        }
    }
}

static void write_payload(writer *w, const dim_trainer *tr, const ag_rng *data_rng,
                          const dim_run_info *info)
{
    dim_model *m = tr->model;
    dim_config config = m->config;
    for (int k = 0; k < CONFIG_NFIELDS; k++) put_i32(w, *config_int(&config, k));

    put_string(w, info->data_spec);
    put_string(w, info->preset);
    put_string(w, info->bound);
    put_i32(w, info->local_kind);
    put_f64(w, info->alpha);
    put_f64(w, info->beta);
    put_f64(w, info->gamma);
    put_f64(w, info->lr);
    put_i32(w, info->batch);
    put_i32(w, info->epochs);
    put_i32(w, info->epoch);
    put_i32(w, info->limit);
    put_u64(w, info->seed);

    put_u64(w, (uint64_t)tr->step);
    put_rng(w, &tr->rng);
    put_rng(w, data_rng);
    put_bound_state(w, &tr->global_state);
    put_bound_state(w, &tr->local_state);

    put_optimiser(w, tr->encoder_adam);
    put_optimiser(w, tr->prior_adam);
    put_tensors(w, &m->params, tr->encoder_adam);
    put_tensors(w, &m->prior_params, tr->prior_adam);
    writer_flush(w);
}
static void put_header(unsigned char header[CHECKPOINT_HEADER], uint64_t length, uint32_t crc)
{
    memcpy(header, CHECKPOINT_MAGIC, 8);
    put_le(header + 8, CHECKPOINT_VERSION, 4);
    put_le(header + 12, sizeof(ag_real), 4);
    put_le(header + 16, length, 8);
    put_le(header + 24, crc, 4);
}

int dim_checkpoint_save(const char *path, const dim_trainer *tr, const ag_rng *data_rng,
                        const dim_run_info *info, char *error, size_t error_size)
{
    dim_atomic_file f;
    if (dim_atomic_open(&f, path, error, error_size) != 0) return DIM_DATA_BAD_FILE;
    writer *w = calloc(1, sizeof *w);
    unsigned char header[CHECKPOINT_HEADER] = {0};
    int failure = 0; /* the errno of the first failure */
    if (w == NULL) failure = ENOMEM;
    else if (fwrite(header, 1, sizeof header, f.file) != sizeof header)
        failure = errno ? errno : EIO;
    if (!failure) {
        w->file = f.file;
        w->crc = crc32(0L, Z_NULL, 0);
        write_payload(w, tr, data_rng, info);
        failure = w->error;
    }
    if (!failure) {
        put_header(header, w->length, (uint32_t)w->crc);
        if (fseek(f.file, 0, SEEK_SET) != 0
            || fwrite(header, 1, sizeof header, f.file) != sizeof header)
            failure = errno ? errno : EIO;
    }
    free(w);
    if (failure) {
        dim_atomic_abandon(&f);
        return checkpoint_error(error, error_size, "%s: cannot write the checkpoint: %s (the "
                                "previous file, if any, is untouched)", path, strerror(failure));
    }
    return dim_atomic_commit(&f, error, error_size) == 0 ? 0 : DIM_DATA_BAD_FILE;
}
typedef struct reader {
    const unsigned char *at, *end;   /* the bytes not yet read */
    const char *path;
    char *error;
    size_t error_size;
    int failed;
} reader;

static const unsigned char *take(reader *r, size_t n, const char *what)
{
    if (r->failed) return NULL;
    if ((size_t)(r->end - r->at) < n) {
        checkpoint_error(r->error, r->error_size, "%s: corrupt: the payload ends inside %s",
                         r->path, what);
        r->failed = 1;
        return NULL;
    }
    const unsigned char *p = r->at;
    r->at += n;
    return p;
}

static uint32_t get_u32(reader *r, const char *what)
{
    const unsigned char *p = take(r, 4, what);
    return p ? (uint32_t)get_le(p, 4) : 0;
}

static uint64_t get_u64(reader *r, const char *what)
{
    const unsigned char *p = take(r, 8, what);
    return p ? get_le(p, 8) : 0;
}

static int get_i32(reader *r, const char *what)
{
    uint32_t u = get_u32(r, what);
    return u <= 0x7fffffffu ? (int)u : -(int)(~u) - 1;  /* two's complement, portably */
}

static double get_f64(reader *r, const char *what) { return bits_double(get_u64(r, what)); }

/* A string of at most size - 1 bytes without zeros, into out (terminated). */
static void get_string(reader *r, char *out, size_t size, const char *what)
{
    out[0] = '\0';
    uint32_t n = get_u32(r, what);
    if (r->failed) return;
    if (n >= size) {
        checkpoint_error(r->error, r->error_size, "%s: corrupt: %s is %lu bytes long, at most "
                         "%zu are allowed", r->path, what, (unsigned long)n, size - 1);
        r->failed = 1;
        return;
    }
    const unsigned char *p = take(r, n, what);
    if (p == NULL) return;
    if (memchr(p, 0, n) != NULL) {
        checkpoint_error(r->error, r->error_size, "%s: corrupt: %s contains a zero byte",
                         r->path, what);
        r->failed = 1;
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}
typedef struct stored_tensor {
    char name[CHECKPOINT_MAX_STRING + 1];
    int trainable;
    int ndim, shape[AG_MAX_DIMS];
    long size;                        /* product of the shape */
    const unsigned char *values;      /* [size] stored reals */
    const unsigned char *adam_m;      /* [size] stored reals; NULL for a buffer */
    const unsigned char *adam_v;      /* [size] stored reals; NULL for a buffer */
} stored_tensor;

typedef struct stored_optimiser {
    long step;
    double lr, beta1, beta2, eps;
} stored_optimiser;

typedef struct stored_checkpoint {
    int element_size;                 /* 4 or 8: bytes of a stored real */
    dim_config config;
    dim_run_info info;
    long step;                        /* the trainer's */
    ag_rng rng, data_rng;
    dim_bound_state global_state, local_state;
    stored_optimiser adam[2];         /* the encoder's, the discriminator's */
    int count[2];                     /* tensors of params, of prior_params */
    stored_tensor *tensors[2];        /* [count[s]] each */
    double values;                    /* reals of all tensors, moments not counted */
} stored_checkpoint;

static void stored_checkpoint_free(stored_checkpoint *c)
{
    free(c->tensors[0]);
    free(c->tensors[1]);
}
static void get_rng(reader *r, ag_rng *g, const char *what)
{
    for (int k = 0; k < 4; k++) g->s[k] = get_u64(r, what);
}

static void get_bound_state(reader *r, dim_bound_state *s, const char *what)
{
    s->smile_tau = get_f64(r, what);
    s->mine_rate = get_f64(r, what);
    s->mine_ema = get_f64(r, what);
}

static void get_optimiser(reader *r, stored_optimiser *o, const char *what)
{
    o->step = (long)get_u64(r, what);
    o->lr = get_f64(r, what);
    o->beta1 = get_f64(r, what);
    o->beta2 = get_f64(r, what);
    o->eps = get_f64(r, what);
}

static int reader_fail(reader *r, const char *format, ...)
{
    char message[384];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    r->failed = 1;
    return checkpoint_error(r->error, r->error_size, "%s: corrupt: %s", r->path, message);
}

static int get_tensor(reader *r, stored_tensor *t, int element_size, const char *set, int i)
{
    char what[64];
    snprintf(what, sizeof what, "tensor %d of %s", i, set);
    get_string(r, t->name, sizeof t->name, what);
    uint32_t flags = get_u32(r, what), ndim = get_u32(r, what);
    if (r->failed) return DIM_DATA_BAD_FILE;
    if (flags > CHECKPOINT_TRAINABLE || ndim > AG_MAX_DIMS)
        return reader_fail(r, "%s (%s) has flags %lu and %lu dimensions", what, t->name,
                           (unsigned long)flags, (unsigned long)ndim);
    t->trainable = flags & CHECKPOINT_TRAINABLE;
    t->ndim = (int)ndim;
    int copies = t->trainable ? 3 : 1;   /* values, and Adam's m and v */
    size_t room = (size_t)(r->end - r->at) / ((size_t)element_size * copies);
    size_t size = 1;
    for (int d = 0; d < t->ndim; d++) {
        uint32_t side = get_u32(r, what);
        if (r->failed) return DIM_DATA_BAD_FILE;
        if (side == 0 || side > 0x7fffffffu || side > room / size)
            return reader_fail(r, "%s (%s) has dimension %d of %lu: more values than the file "
                               "holds", what, t->name, d, (unsigned long)side);
        t->shape[d] = (int)side;
        size *= side;
        room = (size_t)(r->end - r->at) / ((size_t)element_size * copies);
    }
    if (size > room)
        return reader_fail(r, "%s (%s) has %zu values; the file holds fewer", what, t->name,
                           size);
    t->size = (long)size;
    size_t bytes = size * (size_t)element_size;
    t->values = take(r, bytes, what);
    t->adam_m = t->trainable ? take(r, bytes, what) : NULL;
    t->adam_v = t->trainable ? take(r, bytes, what) : NULL;
    return r->failed ? DIM_DATA_BAD_FILE : 0;
}

static int get_tensors(reader *r, stored_checkpoint *c, int s, const char *set)
{
    uint32_t count = get_u32(r, set);
    if (r->failed) return DIM_DATA_BAD_FILE;
    if (count > CHECKPOINT_MAX_TENSORS || count > (size_t)(r->end - r->at) / 12)
        return reader_fail(r, "%s claims %lu tensors", set, (unsigned long)count);
    c->count[s] = (int)count;
    c->tensors[s] = calloc(count ? count : 1, sizeof(stored_tensor));
    if (c->tensors[s] == NULL)
        return checkpoint_error(r->error, r->error_size, "%s: out of memory", r->path);
    for (int i = 0; i < c->count[s]; i++) {
        if (get_tensor(r, &c->tensors[s][i], c->element_size, set, i) != 0)
            return DIM_DATA_BAD_FILE;
        c->values += (double)c->tensors[s][i].size;
    }
    return 0;
}

static int read_payload(reader *r, stored_checkpoint *c)
{
    for (int k = 0; k < CONFIG_NFIELDS; k++)
        *config_int(&c->config, k) = get_i32(r, "the configuration");

    dim_run_info *info = &c->info;
    get_string(r, info->data_spec, sizeof info->data_spec, "the run's data spec");
    get_string(r, info->preset, sizeof info->preset, "the run's preset");
    get_string(r, info->bound, sizeof info->bound, "the run's estimator");
    info->local_kind = get_i32(r, "the run record");
    info->alpha = get_f64(r, "the run record");
    info->beta = get_f64(r, "the run record");
    info->gamma = get_f64(r, "the run record");
    info->lr = get_f64(r, "the run record");
    info->batch = get_i32(r, "the run record");
    info->epochs = get_i32(r, "the run record");
    info->epoch = get_i32(r, "the run record");
    info->limit = get_i32(r, "the run record");
    info->seed = get_u64(r, "the run record");

    c->step = (long)get_u64(r, "the trainer's state");
    get_rng(r, &c->rng, "the trainer's generator");
    get_rng(r, &c->data_rng, "the data-order generator");
    get_bound_state(r, &c->global_state, "the global bound's state");
    get_bound_state(r, &c->local_state, "the local bound's state");
    get_optimiser(r, &c->adam[0], "the encoder's optimiser");
    get_optimiser(r, &c->adam[1], "the discriminator's optimiser");
    if (r->failed) return DIM_DATA_BAD_FILE;

    if (get_tensors(r, c, 0, "the encoder and critics' tensors") != 0
        || get_tensors(r, c, 1, "the discriminator's tensors") != 0)
        return DIM_DATA_BAD_FILE;
    if (r->at != r->end)
        return reader_fail(r, "%zu bytes follow the last tensor", (size_t)(r->end - r->at));
    return 0;
}
enum { CONFIG_MAX_WIDTH = 1 << 20, CONFIG_MAX_SIDE = 1 << 14 };

/* The side of the last convolution's output, 0 if the convolutions do not fit. */
static int last_conv_side(const dim_config *c)
{
    dim_config last = *c;
    last.local_layer = c->nconv - 1;
    return dim_config_local_size(&last);
}

static int check_config(const dim_config *c, const char *path, char *error, size_t error_size)
{
    dim_config copy = *c;
    for (int k = 0; k < CONFIG_NFIELDS; k++) {
        int v = *config_int(&copy, k);
        if (v < 0 || v > CONFIG_MAX_WIDTH)
            return checkpoint_error(error, error_size, "%s: corrupt: the stored configuration "
                                    "has %s = %d", path, config_fields[k].name, v);
    }
    const char *problem = NULL;
    if (c->in_channels < 1 || c->in_height < 1 || c->in_height > CONFIG_MAX_SIDE
        || c->in_width != c->in_height)
        problem = "images that are not square, or empty";
    else if (c->nconv < 1 || c->nconv > DIM_MAX_CONV)
        problem = "a number of convolutions outside 1..3";
    else if (c->local_layer >= c->nconv)
        problem = "a local layer that is not one of its convolutions";
    else if (last_conv_side(c) < 1 || dim_config_local_size(c) < 1)
        problem = "convolutions that do not fit its images";
    else if (c->fc_units < 1 || c->y_units < 1 || c->critic_units < 1 || c->prior_units[0] < 1
             || c->prior_units[1] < 1)
        problem = "a layer of width 0";
    else if (c->global_nconv > 2 || dim_config_local_size(c) - 2 * c->global_nconv < 1)
        problem = "global convolutions that do not fit the local map";
    for (int l = 0; problem == NULL && l < c->nconv; l++)
        if (c->conv_channels[l] < 1 || c->conv_batchnorm[l] > 1)
            problem = "a convolution of 0 channels, or a batch-norm flag that is not 0 or 1";
    for (int k = 0; problem == NULL && k < c->global_nconv; k++)
        if (c->global_conv_channels[k] < 1) problem = "a global convolution of 0 channels";
    if (problem != NULL)
        return checkpoint_error(error, error_size, "%s: corrupt: the stored configuration has "
                                "%s", path, problem);
    return 0;
}
/* Values of a layer of in inputs and out outputs: the weight, and the bias if there is one. */
static double layer_values(double in, double out, int bias) { return in * out + (bias ? out : 0); }

static double config_values(const dim_config *c)
{
    enum { ENCODER_KERNEL_AREA = 16, GLOBAL_KERNEL_AREA = 9, BATCHNORM_TENSORS = 4 };
    double n = 0, in = c->in_channels;
    for (int l = 0; l < c->nconv; l++) {                   /* encoder */
        n += layer_values(in * ENCODER_KERNEL_AREA, c->conv_channels[l], 1);
        if (c->conv_batchnorm[l]) n += BATCHNORM_TENSORS * (double)c->conv_channels[l];
        in = c->conv_channels[l];
    }
    double last = last_conv_side(c), y = c->y_units, k = c->critic_units;
    n += layer_values(in * last * last, c->fc_units, 1) + BATCHNORM_TENSORS * (double)c->fc_units
         + layer_values(c->fc_units, y, 1);
    double local = c->conv_channels[c->local_layer], channels = local;
    double side = dim_config_local_size(c);
    for (int g = 0; g < c->global_nconv; g++) {            /* global critic */
        n += layer_values(channels * GLOBAL_KERNEL_AREA, c->global_conv_channels[g], 1);
        channels = c->global_conv_channels[g];
        side -= 2;
    }
    n += layer_values(channels * side * side, k, 1) + layer_values(y, k, 0)
         + layer_values(k, k, 1) + layer_values(k, 1, 1);
    n += layer_values(local, k, 1) + BATCHNORM_TENSORS * k + layer_values(k, k, 1)  /* dot */
         + layer_values(local, k, 1) + layer_values(y, k, 1) + BATCHNORM_TENSORS * k
         + layer_values(k, k, 1) + layer_values(y, k, 1);
    n += layer_values(local, k, 1) + layer_values(y, k, 0) + layer_values(k, k, 1)   /* concat */
         + layer_values(k, 1, 1);
    n += layer_values(y, c->prior_units[0], 1)                                      /* prior */
         + layer_values(c->prior_units[0], c->prior_units[1], 1)
         + layer_values(c->prior_units[1], 1, 1);
    return n;
}
static int rng_is_zero(const ag_rng *g) { return !(g->s[0] | g->s[1] | g->s[2] | g->s[3]); }

static int check_states(const stored_checkpoint *c, const char *path, char *error,
                        size_t error_size)
{
    const dim_run_info *info = &c->info;
    const char *problem = NULL;
    if (dim_bound_find(info->bound) == NULL)
        return checkpoint_error(error, error_size, "%s: the run used the estimator '%s', which "
                                "this dim does not know", path, info->bound);
    if (info->local_kind != DIM_LOCAL_DOT && info->local_kind != DIM_LOCAL_CONCAT)
        problem = "a local critic that does not exist";
    else if (!(isfinite(info->alpha) && isfinite(info->beta) && isfinite(info->gamma))
             || info->alpha < 0 || info->beta < 0 || info->gamma < 0
             || (info->alpha == 0 && info->beta == 0 && info->gamma == 0))
        problem = "objective weights that are negative, infinite or all zero";
    else if (!(info->lr > 0) || !isfinite(info->lr))
        problem = "a learning rate that is not positive";
    else if (info->batch < 2 || info->epochs < 1 || info->epoch < 0 || info->limit < 0)
        problem = "a batch below 2, no epochs, or a negative count";
    else if (c->step < 0 || c->adam[0].step < 0 || c->adam[1].step < 0)
        problem = "a negative step count";
    else if (rng_is_zero(&c->rng))
        problem = "a generator in the all-zero state";
    for (int k = 0; problem == NULL && k < 2; k++) {
        const stored_optimiser *o = &c->adam[k];
        if (!(o->lr >= 0 && isfinite(o->lr)) || !(o->beta1 >= 0 && o->beta1 < 1)
            || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps >= 0 && isfinite(o->eps)))
            problem = "Adam settings outside their ranges";
    }
    if (problem != NULL)
        return checkpoint_error(error, error_size, "%s: corrupt: the run record or the "
                                "trainer's state has %s", path, problem);
    return 0;
}
static void copy_reals(ag_real *to, const unsigned char *from, long n, int element_size)
{
    for (long i = 0; i < n; i++) {
        if (element_size == 4) to[i] = (ag_real)bits_float((uint32_t)get_le(from + 4 * i, 4));
        else to[i] = (ag_real)bits_double(get_le(from + 8 * i, 8));
    }
}

static void shape_text(char *buf, size_t size, int ndim, const int *shape)
{
    int n = snprintf(buf, size, "[");
    for (int d = 0; d < ndim && n < (int)size; d++)
        n += snprintf(buf + n, size - n, d ? ", %d" : "%d", shape[d]);
    if (n < (int)size) snprintf(buf + n, size - n, "]");
}

static int match_set(const stored_checkpoint *c, int s, const ag_params *ps, const char *set,
                     const char *path, char *error, size_t error_size)
{
    if (c->count[s] != ps->count)
        return checkpoint_error(error, error_size, "%s: shapes of another model: %s has %d "
                                "tensors in the file, %d in the model its configuration makes",
                                path, set, c->count[s], ps->count);
    for (int i = 0; i < ps->count; i++) {
        const stored_tensor *t = &c->tensors[s][i];
        const ag_tensor *x = ps->items[i];
        int same = strcmp(t->name, x->name) == 0 && t->trainable == x->requires_grad
                   && t->ndim == x->ndim;
        for (int d = 0; same && d < x->ndim; d++) same = t->shape[d] == x->shape[d];
        if (!same) {
            char stored[AG_SHAPE_STR_SIZE], made[AG_SHAPE_STR_SIZE];
            shape_text(stored, sizeof stored, t->ndim, t->shape);
            ag_shape_str(x, made);
            return checkpoint_error(error, error_size, "%s: shapes of another model: tensor %d "
                                    "of %s is %s %s in the file, but the model its "
                                    "configuration makes has %s %s there", path, i, set,
                                    t->name, stored, x->name, made);
        }
    }
    return 0;
}

static void copy_set(const stored_checkpoint *c, int s, ag_params *ps, ag_adam *adam)
{
    for (int i = 0; i < ps->count; i++) {
        const stored_tensor *t = &c->tensors[s][i];
        ag_tensor *x = ps->items[i];
        copy_reals(x->value, t->values, t->size, c->element_size);
        if (adam != NULL && t->trainable) {
            copy_reals(adam->m[i], t->adam_m, t->size, c->element_size);
            copy_reals(adam->v[i], t->adam_v, t->size, c->element_size);
        }
    }
}

static void restore_optimiser(ag_adam *a, const stored_optimiser *o)
{
    a->step = o->step;
    a->lr = o->lr;
    a->beta1 = o->beta1;
    a->beta2 = o->beta2;
    a->eps = o->eps;
}

static int build(const stored_checkpoint *c, const char *path, dim_model *m, dim_trainer *tr,
                 char *error, size_t error_size)
{
    double needed = config_values(&c->config);
    if (needed > c->values)
        return checkpoint_error(error, error_size, "%s: shapes of another model: its "
                                "configuration makes %.0f values, the file holds %.0f", path,
                                needed, c->values);
    dim_model_init(m, &c->config, 0);
    if (match_set(c, 0, &m->params, "the encoder and critics", path, error, error_size) != 0
        || match_set(c, 1, &m->prior_params, "the discriminator", path, error, error_size) != 0)
        return DIM_DATA_BAD_FILE;
    if (tr != NULL) {
        dim_objective o;
        o.alpha = c->info.alpha;
        o.beta = c->info.beta;
        o.gamma = c->info.gamma;
        o.bound = dim_bound_find(c->info.bound);
        o.local_kind = (dim_local_kind)c->info.local_kind;
        dim_trainer_init(tr, m, &o, c->info.lr, 1);
        tr->rng = c->rng;
        tr->step = c->step;
        tr->global_state = c->global_state;
        tr->local_state = c->local_state;
        restore_optimiser(tr->encoder_adam, &c->adam[0]);
        restore_optimiser(tr->prior_adam, &c->adam[1]);
    }
    copy_set(c, 0, &m->params, tr ? tr->encoder_adam : NULL);
    copy_set(c, 1, &m->prior_params, tr ? tr->prior_adam : NULL);
    return 0;
}
static int check_header(const unsigned char *bytes, size_t size, const char *path,
                        int *element_size, char *error, size_t error_size)
{
    size_t magic = size < 8 ? size : 8;
    if (memcmp(bytes, CHECKPOINT_MAGIC, magic) != 0)
        return checkpoint_error(error, error_size, "%s: not a dim checkpoint (bad magic number)",
                                path);
    if (size < CHECKPOINT_HEADER)
        return checkpoint_error(error, error_size, "%s: truncated: %zu bytes, shorter than the "
                                "%d-byte header", path, size, CHECKPOINT_HEADER);
    uint32_t version = (uint32_t)get_le(bytes + 8, 4);
    if (version != CHECKPOINT_VERSION)
        return checkpoint_error(error, error_size, "%s: checkpoint version %lu; this dim reads "
                                "version %d", path, (unsigned long)version, CHECKPOINT_VERSION);
    uint32_t element = (uint32_t)get_le(bytes + 12, 4);
    if (element != 4 && element != 8)
        return checkpoint_error(error, error_size, "%s: corrupt: element size %lu (4 or 8 "
                                "expected)", path, (unsigned long)element);
    uint64_t length = get_le(bytes + 16, 8), follows = size - CHECKPOINT_HEADER;
    if (length > follows)
        return checkpoint_error(error, error_size, "%s: truncated: the header announces %llu "
                                "bytes of payload, %llu follow", path,
                                (unsigned long long)length, (unsigned long long)follows);
    if (length < follows)
        return checkpoint_error(error, error_size, "%s: corrupt: %llu bytes follow the %llu-byte "
                                "payload", path, (unsigned long long)(follows - length),
                                (unsigned long long)length);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < follows;) {  /* crc32 takes at most a uInt at a time */
        size_t n = follows - at > (1u << 30) ? (1u << 30) : follows - at;
        crc = crc32(crc, bytes + CHECKPOINT_HEADER + at, (uInt)n);
        at += n;
    }
    uint32_t stored = (uint32_t)get_le(bytes + 24, 4);
    if ((uint32_t)crc != stored)
        return checkpoint_error(error, error_size, "%s: bad CRC-32 (stored 0x%08lx, computed "
                                "0x%08lx): the file is corrupt", path, (unsigned long)stored,
                                (unsigned long)(uint32_t)crc);
    *element_size = (int)element;
    return 0;
}

int dim_checkpoint_parse(const unsigned char *bytes, size_t size, const char *path,
                         dim_model *m, dim_trainer *tr, ag_rng *data_rng,
                         dim_run_info *info, char *error, size_t error_size)
{
    memset(m, 0, sizeof *m);
    if (tr != NULL) memset(tr, 0, sizeof *tr);
    stored_checkpoint c;
    memset(&c, 0, sizeof c);
    int rc = check_header(bytes, size, path, &c.element_size, error, error_size);
    if (rc == 0) {
        reader r = {bytes + CHECKPOINT_HEADER, bytes + size, path, error, error_size, 0};
        rc = read_payload(&r, &c);
    }
    if (rc == 0) rc = check_config(&c.config, path, error, error_size);
    if (rc == 0) rc = check_states(&c, path, error, error_size);
    if (rc == 0) rc = build(&c, path, m, tr, error, error_size);
    stored_checkpoint_free(&c);
    if (rc != 0) {
        if (tr != NULL && tr->tape != NULL) dim_trainer_free(tr);
        dim_model_free(m);
        memset(m, 0, sizeof *m);
        return DIM_DATA_BAD_FILE;
    }
    if (data_rng != NULL) *data_rng = c.data_rng;
    if (info != NULL) *info = c.info;
    return 0;
}
int dim_checkpoint_load(const char *path, dim_model *m, dim_trainer *tr, ag_rng *data_rng,
                        dim_run_info *info, char *error, size_t error_size)
{
    memset(m, 0, sizeof *m);
    if (tr != NULL) memset(tr, 0, sizeof *tr);
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return checkpoint_error(error, error_size, "%s: cannot open the checkpoint: %s", path,
                                strerror(errno));
    struct stat st;
    if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(file);
        return checkpoint_error(error, error_size, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *bytes = malloc(size ? size : 1);
    if (bytes == NULL) {
        fclose(file);
        return checkpoint_error(error, error_size, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = fread(bytes, 1, size, file);
    int read_error = ferror(file);
    fclose(file);
    int rc;
    if (read_error)
        rc = checkpoint_error(error, error_size, "%s: read error", path);
    else
        rc = dim_checkpoint_parse(bytes, got, path, m, tr, data_rng, info, error, error_size);
    free(bytes);
    return rc;
}
