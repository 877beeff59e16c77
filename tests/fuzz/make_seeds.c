/* make_seeds.c -- writes the fuzz targets' seed corpora: make_seeds DIR makes DIR/idx,
 * DIR/cifar and DIR/checkpoint with a few small good and nearly good inputs for each target,
 * in the layout its first byte selects (see the targets). They are made by the build rather
 * than committed so that they always match the formats of the code being fuzzed: the
 * checkpoint seeds are real checkpoints of the tiny model, written by dim_checkpoint_save. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <zlib.h>

#include "../../src/dim/dim.h"

enum { CIFAR_RECORD = 1 + 3 * 32 * 32 };

static char root[1024];

static void fail(const char *what)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) fail(path);
}

/* Writes DIR/target/name: the mode byte, then the parts. */
static void seed(const char *target, const char *name, int mode, const unsigned char *a,
                 size_t na, const unsigned char *b, size_t nb)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) fail(path);
    unsigned char m = (unsigned char)mode;
    if (fwrite(&m, 1, 1, f) != 1 || (na && fwrite(a, 1, na, f) != na)
        || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0)
        fail(path);
}

/* bytes gzip-compressed, in a new buffer; sets *nz. */
static unsigned char *gzip(const unsigned char *bytes, size_t n, size_t *nz)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    size_t capacity = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(capacity);
    z.next_in = (unsigned char *)bytes;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)capacity;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
    *nz = capacity - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void idx_seeds(void)
{
    /* 3 images 4x5 and their labels. */
    unsigned char images[16 + 3 * 4 * 5] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5};
    unsigned char labels[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 9, 0};
    for (int k = 0; k < 3 * 4 * 5; k++) images[16 + k] = (unsigned char)(k * 37);
    unsigned char split[2] = {sizeof images & 0xff, sizeof images >> 8};
    unsigned char both[sizeof split + sizeof images + sizeof labels];
    memcpy(both, split, 2);
    memcpy(both + 2, images, sizeof images);
    memcpy(both + 2 + sizeof images, labels, sizeof labels);
    seed("idx", "images", 0, images, sizeof images, NULL, 0);
    seed("idx", "labels", 0, labels, sizeof labels, NULL, 0);
    seed("idx", "pair", 1, both, sizeof both, NULL, 0);

    size_t nzi, nzl;
    unsigned char *zi = gzip(images, sizeof images, &nzi), *zl = gzip(labels, sizeof labels, &nzl);
    unsigned char *zboth = malloc(2 + nzi + nzl);
    zboth[0] = (unsigned char)(nzi & 0xff);
    zboth[1] = (unsigned char)(nzi >> 8);
    memcpy(zboth + 2, zi, nzi);
    memcpy(zboth + 2 + nzi, zl, nzl);
    seed("idx", "pair-gz", 3, zboth, 2 + nzi + nzl, NULL, 0);
    free(zi);
    free(zl);
    free(zboth);
}

static void cifar_seeds(void)
{
    unsigned char record[CIFAR_RECORD];
    record[0] = 3;
    for (int k = 1; k < CIFAR_RECORD; k++) record[k] = (unsigned char)(k * 13);
    seed("cifar", "short", 0, record, 100, NULL, 0);
    seed("cifar", "record", 1, record, sizeof record, NULL, 0);
    unsigned char pair[2 * CIFAR_RECORD];
    memcpy(pair, record, CIFAR_RECORD);
    memcpy(pair + CIFAR_RECORD, record, CIFAR_RECORD);
    pair[CIFAR_RECORD] = 7;
    seed("cifar", "two-records", 1, pair, sizeof pair, NULL, 0);
    seed("cifar", "last-record", 3, record, sizeof record, NULL, 0);

    /* Through the file reader: a short plain file and a short compressed one (a whole batch
     * would make every run of the input inflate 30 MB). */
    size_t nz;
    unsigned char *z = gzip(pair, sizeof pair, &nz);
    seed("cifar", "file-short", 2, record, sizeof record, NULL, 0);
    seed("cifar", "file-gz", 2, z, nz, NULL, 0);
    free(z);
}

/* A checkpoint of the tiny model after one training step, read back whole. */
static void checkpoint_seeds(void)
{
    dim_config c;
    dim_config_tiny(&c);
    dim_model m;
    dim_model_init(&m, &c, 1);
    dim_objective o;
    dim_objective_preset(&o, "dim-lg");
    dim_trainer tr;
    dim_trainer_init(&tr, &m, &o, 1e-3, 2);
    enum { N = 4 };
    long size = (long)N * c.in_channels * c.in_height * c.in_width;
    ag_real *images = malloc((size_t)size * sizeof *images);
    ag_rng rng;
    ag_rng_seed(&rng, 3);
    for (long i = 0; i < size; i++) images[i] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
    dim_train_step(&tr, images, N);
    free(images);

    dim_run_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.data_spec, sizeof info.data_spec, "shapes");
    snprintf(info.preset, sizeof info.preset, "dim-lg");
    snprintf(info.bound, sizeof info.bound, "%s", o.bound->name);
    info.local_kind = (int)o.local_kind;
    info.alpha = o.alpha;
    info.beta = o.beta;
    info.gamma = o.gamma;
    info.lr = 1e-3;
    info.batch = N;
    info.epochs = 2;
    info.epoch = 1;
    info.seed = 1;

    char path[2048], error[1024];
    snprintf(path, sizeof path, "%s/tiny.ckpt", root);
    if (dim_checkpoint_save(path, &tr, &rng, &info, error, sizeof error) != 0) {
        fprintf(stderr, "make_seeds: %s\n", error);
        exit(1);
    }
    dim_trainer_free(&tr);
    dim_model_free(&m);

    FILE *f = fopen(path, "rb");
    if (f == NULL) fail(path);
    unsigned char *bytes = malloc(1 << 20);
    size_t n = fread(bytes, 1, 1 << 20, f);
    fclose(f);
    remove(path);
    seed("checkpoint", "model", 0, bytes, n, NULL, 0);
    seed("checkpoint", "model-fixed", 1, bytes, n, NULL, 0);
    seed("checkpoint", "trainer", 2, bytes, n, NULL, 0);
    seed("checkpoint", "trainer-fixed", 3, bytes, n, NULL, 0);
    seed("checkpoint", "header-only", 1, bytes, 28, NULL, 0);
    free(bytes);
    printf("make_seeds: the tiny model's checkpoint is %zu bytes\n", n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    make_dir(root);
    idx_seeds();
    cifar_seeds();
    checkpoint_seeds();
    return 0;
}
