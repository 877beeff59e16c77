/* test_checkpoint.c -- checkpoints (doc/31-checkpoint.nw) and resuming (doc/32-train.nw): a save
 * and a load give back every bit of the model, both optimisers, the generators and the run's
 * record; every kind of damage is refused with a message that names the file and the problem;
 * a failed save leaves the previous checkpoint as it was; and a run stopped after an epoch and
 * resumed ends with exactly the weights of the run that was never stopped. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../src/dim/dim.h"
#include "../../src/dim/cli.h"
#include "suites.h"

enum { CK_BATCH = 4, CK_HEADER = 28, CK_STEPS = 3 };

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void make_temp_dir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/dim-checkpoint-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(dir) != NULL, "cannot make a temporary directory %s", dir);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char child[4200];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Files in dir other than . and .. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)n + 1);
    ck_assert(bytes != NULL);
    ck_assert_int_eq(fread(bytes, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return bytes;
}

static void write_all(const char *path, const unsigned char *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_int_eq(fwrite(bytes, 1, size, f), size);
    fclose(f);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

/* Make the header's CRC agree with the payload again, as a forger would. */
static void fix_crc(unsigned char *bytes, size_t size)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, bytes + CK_HEADER, (uInt)(size - CK_HEADER));
    put_le32(bytes + 24, (uint32_t)crc);
}

/* The offset of the first occurrence of a string in the bytes; fails the test if absent. */
static size_t find_text(const unsigned char *bytes, size_t size, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(bytes + i, text, n) == 0) return i;
    ck_abort_msg("\"%s\" is not in the checkpoint", text);
    return 0;
}

#define ASSERT_HAS(message, needle)                                                      \
    ck_assert_msg(strstr(message, needle) != NULL,                                       \
                  "expected the message to contain \"%s\"; it was \"%s\"", needle, message)

/* A small model with the shape of the paper's: 28x28 images (two convolutions, a 7x7 local
 * map, batch norm on the second conv), but a few channels in every layer. */
static dim_config small_config_28(void)
{
    dim_config c;
    ck_assert_int_eq(dim_config_for_input(&c, 1, 28, 28), 0);
    c.conv_channels[0] = 4, c.conv_channels[1] = 6;
    c.fc_units = 16, c.y_units = 8, c.critic_units = 8;
    c.global_conv_channels[0] = 4, c.global_conv_channels[1] = 3;
    c.prior_units[0] = 10, c.prior_units[1] = 6;
    return c;
}

/* The same for the 32x32 configuration: three convolutions, all with batch norm. */
static dim_config small_config_32(void)
{
    dim_config c;
    ck_assert_int_eq(dim_config_for_input(&c, 3, 32, 32), 0);
    c.conv_channels[0] = 3, c.conv_channels[1] = 5, c.conv_channels[2] = 4;
    c.fc_units = 12, c.y_units = 6, c.critic_units = 7;
    c.global_conv_channels[0] = 4, c.global_conv_channels[1] = 2;
    c.prior_units[0] = 9, c.prior_units[1] = 5;
    return c;
}

/* A model and a trainer that has taken a few steps of dim-lg with infoNCE on random images,
 * so that every part of the state is away from its initial value. */
typedef struct trained {
    dim_model model;
    dim_trainer trainer;
    ag_rng data_rng;
    dim_run_info info;
    ag_real *images;   /* [CK_BATCH, C, H, W] */
} trained;

static void trained_init(trained *t, const dim_config *c, int steps)
{
    memset(t, 0, sizeof *t);
    dim_model_init(&t->model, c, 11);
    dim_objective o;
    ck_assert_int_eq(dim_objective_preset(&o, "dim-lg"), 0);
    o.bound = dim_bound_find("infonce");
    dim_trainer_init(&t->trainer, &t->model, &o, 1e-3, 12);
    ag_rng_seed(&t->data_rng, 13);
    for (int k = 0; k < 5; k++) ag_rng_next(&t->data_rng);
    long size = (long)CK_BATCH * c->in_channels * c->in_height * c->in_width;
    t->images = malloc((size_t)size * sizeof *t->images);
    ag_rng rng;
    ag_rng_seed(&rng, 14);
    for (int s = 0; s < steps; s++) {
        for (long i = 0; i < size; i++) t->images[i] = (ag_real)(2 * ag_rng_uniform(&rng) - 1);
        dim_train_step(&t->trainer, t->images, CK_BATCH);
    }
    t->trainer.global_state.mine_ema = 0.25;  /* as if MINE had run: a state worth saving */
    t->trainer.local_state.mine_ema = 0.5;
    dim_run_info *info = &t->info;
    snprintf(info->data_spec, sizeof info->data_spec, "shapes");
    snprintf(info->preset, sizeof info->preset, "dim-lg");
    snprintf(info->bound, sizeof info->bound, "infonce");
    info->local_kind = DIM_LOCAL_DOT;
    info->alpha = 1, info->beta = 1, info->gamma = 0.1, info->lr = 1e-3;
    info->batch = CK_BATCH, info->epochs = 7, info->epoch = 3, info->seed = 99, info->limit = 40;
}

static void trained_free(trained *t)
{
    dim_trainer_free(&t->trainer);
    dim_model_free(&t->model);
    free(t->images);
}

static void assert_same_set(const ag_params *a, const ag_params *b, const ag_adam *adam_a,
                            const ag_adam *adam_b, const char *what)
{
    ck_assert_msg(a->count == b->count, "%s: %d tensors, then %d", what, a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        const ag_tensor *x = a->items[i], *y = b->items[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_msg(ag_same_shape(x, y), "%s: %s changed shape", what, x->name);
        size_t bytes = (size_t)x->size * sizeof(ag_real);
        ck_assert_msg(memcmp(x->value, y->value, bytes) == 0, "%s: %s's values differ", what,
                      x->name);
        if (adam_a != NULL && x->requires_grad) {
            ck_assert_msg(memcmp(adam_a->m[i], adam_b->m[i], bytes) == 0,
                          "%s: Adam's m of %s differs", what, x->name);
            ck_assert_msg(memcmp(adam_a->v[i], adam_b->v[i], bytes) == 0,
                          "%s: Adam's v of %s differs", what, x->name);
        }
    }
}

static void assert_same_adam(const ag_adam *a, const ag_adam *b)
{
    ck_assert_int_eq(a->step, b->step);
    ck_assert(a->lr == b->lr && a->beta1 == b->beta1 && a->beta2 == b->beta2 && a->eps == b->eps);
}

static void assert_same_trainer(const dim_trainer *a, const dim_trainer *b)
{
    assert_same_set(&a->model->params, &b->model->params, a->encoder_adam, b->encoder_adam,
                    "the encoder and critics");
    assert_same_set(&a->model->prior_params, &b->model->prior_params, a->prior_adam,
                    b->prior_adam, "the discriminator");
    assert_same_adam(a->encoder_adam, b->encoder_adam);
    assert_same_adam(a->prior_adam, b->prior_adam);
    ck_assert_msg(memcmp(&a->rng, &b->rng, sizeof a->rng) == 0, "the trainer's generator differs");
    ck_assert_int_eq(a->step, b->step);
    ck_assert(memcmp(&a->global_state, &b->global_state, sizeof a->global_state) == 0);
    ck_assert(memcmp(&a->local_state, &b->local_state, sizeof a->local_state) == 0);
    ck_assert(a->objective.alpha == b->objective.alpha && a->objective.beta == b->objective.beta
              && a->objective.gamma == b->objective.gamma);
    ck_assert(a->objective.bound == b->objective.bound);
    ck_assert_int_eq(a->objective.local_kind, b->objective.local_kind);
}

/* A saved checkpoint of a trained tiny model, in a fresh directory; its bytes. */
typedef struct saved {
    char dir[4096], path[4200];
    unsigned char *bytes;
    size_t size;
} saved;

static void save_tiny(saved *s, trained *t)
{
    dim_config c;
    dim_config_tiny(&c);
    trained_init(t, &c, CK_STEPS);
    make_temp_dir(s->dir, sizeof s->dir);
    snprintf(s->path, sizeof s->path, "%s/model.ckpt", s->dir);
    char error[512] = "";
    int rc = dim_checkpoint_save(s->path, &t->trainer, &t->data_rng, &t->info, error,
                                 sizeof error);
    ck_assert_msg(rc == 0, "the save failed: %s", error);
    s->bytes = read_all(s->path, &s->size);
}

static void saved_free(saved *s)
{
    free(s->bytes);
    remove_tree(s->dir);
}

/* Parse the bytes, which must fail; returns the message. m must come back zeroed. */
static const char *parse_fails(const unsigned char *bytes, size_t size, int with_trainer)
{
    static char error[1024];
    dim_model m;
    dim_trainer tr;
    error[0] = '\0';
    int rc = dim_checkpoint_parse(bytes, size, "damaged.ckpt", &m, with_trainer ? &tr : NULL,
                                  NULL, NULL, error, sizeof error);
    ck_assert_msg(rc == DIM_DATA_BAD_FILE, "parsing damaged bytes returned %d, not %d", rc,
                  DIM_DATA_BAD_FILE);
    ck_assert_msg(m.params.count == 0 && m.params.items == NULL, "a failed parse left a model");
    ASSERT_HAS(error, "damaged.ckpt");
    return error;
}

/* ---------------------------------------------------------------------------------------- */
/* A save and a load give back every bit                                                      */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_round_trip_is_bit_exact)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    dim_model m;
    dim_trainer tr;
    ag_rng data_rng;
    dim_run_info info;
    char error[512] = "";
    int rc = dim_checkpoint_load(s.path, &m, &tr, &data_rng, &info, error, sizeof error);
    ck_assert_msg(rc == 0, "the load failed: %s", error);
    ck_assert(memcmp(&m.config, &t.model.config, sizeof m.config) == 0);
    ck_assert_msg(tr.model == &m, "the trainer does not train the loaded model");
    assert_same_trainer(&t.trainer, &tr);
    ck_assert(memcmp(&data_rng, &t.data_rng, sizeof data_rng) == 0);
    ck_assert_str_eq(info.data_spec, t.info.data_spec);
    ck_assert_str_eq(info.preset, t.info.preset);
    ck_assert_str_eq(info.bound, t.info.bound);
    ck_assert(info.alpha == t.info.alpha && info.beta == t.info.beta
              && info.gamma == t.info.gamma && info.lr == t.info.lr);
    ck_assert_int_eq(info.local_kind, t.info.local_kind);
    ck_assert_int_eq(info.batch, t.info.batch);
    ck_assert_int_eq(info.epochs, t.info.epochs);
    ck_assert_int_eq(info.epoch, t.info.epoch);
    ck_assert_int_eq(info.limit, t.info.limit);
    ck_assert(info.seed == t.info.seed);

    /* Continuing from the loaded state is continuing the original run. */
    dim_step_stats a = dim_train_step(&t.trainer, t.images, CK_BATCH);
    dim_step_stats b = dim_train_step(&tr, t.images, CK_BATCH);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    assert_same_trainer(&t.trainer, &tr);

    /* Saving the loaded state gives the same file. */
    char again[4300];
    snprintf(again, sizeof again, "%s/again.ckpt", s.dir);
    dim_trainer_free(&tr);
    dim_model_free(&m);
    ck_assert_int_eq(dim_checkpoint_load(s.path, &m, &tr, &data_rng, &info, error, sizeof error), 0);
    ck_assert_int_eq(dim_checkpoint_save(again, &tr, &data_rng, &info, error, sizeof error), 0);
    size_t size;
    unsigned char *bytes = read_all(again, &size);
    ck_assert(size == s.size && memcmp(bytes, s.bytes, size) == 0);
    free(bytes);
    dim_trainer_free(&tr);
    dim_model_free(&m);
    trained_free(&t);
    saved_free(&s);
}
END_TEST

START_TEST(test_load_without_a_trainer_gives_the_model)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    dim_model m;
    char error[512] = "";
    ck_assert_int_eq(dim_checkpoint_parse(s.bytes, s.size, s.path, &m, NULL, NULL, NULL, error,
                                          sizeof error), 0);
    assert_same_set(&t.model.params, &m.params, NULL, NULL, "the encoder and critics");
    assert_same_set(&t.model.prior_params, &m.prior_params, NULL, NULL, "the discriminator");
    dim_model_free(&m);
    trained_free(&t);
    saved_free(&s);
}
END_TEST

/* The loader's guard counts the values a configuration makes; it must agree with the model
 * for every shape of configuration, or good checkpoints would be refused. */
START_TEST(test_every_kind_of_configuration_round_trips)
{
    dim_config configs[3];
    dim_config_tiny(&configs[0]);
    configs[1] = small_config_28();
    configs[2] = small_config_32();
    char dir[4096], path[4200], error[512] = "";
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    for (int k = 0; k < 3; k++) {
        trained t;
        trained_init(&t, &configs[k], 1);
        ck_assert_msg(dim_checkpoint_save(path, &t.trainer, NULL, &t.info, error, sizeof error)
                      == 0, "config %d: %s", k, error);
        dim_model m;
        dim_trainer tr;
        ag_rng data_rng;
        int rc = dim_checkpoint_load(path, &m, &tr, &data_rng, NULL, error, sizeof error);
        ck_assert_msg(rc == 0, "config %d: %s", k, error);
        assert_same_trainer(&t.trainer, &tr);
        ag_rng zero = {{0, 0, 0, 0}};
        ck_assert_msg(memcmp(&data_rng, &zero, sizeof zero) == 0,
                      "a data-order generator not given is stored as zeros");
        dim_trainer_free(&tr);
        dim_model_free(&m);
        trained_free(&t);
    }
    remove_tree(dir);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Damage is refused, with a message that names the file and the problem                     */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_a_corrupt_byte_fails_the_crc)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    size_t places[] = {CK_HEADER, CK_HEADER + 50, s.size / 2, s.size - 1};
    for (size_t k = 0; k < sizeof places / sizeof places[0]; k++) {
        s.bytes[places[k]] ^= 0x10;
        ASSERT_HAS(parse_fails(s.bytes, s.size, 1), "bad CRC");
        s.bytes[places[k]] ^= 0x10;
    }
    trained_free(&t);
    saved_free(&s);
}
END_TEST

START_TEST(test_a_truncated_file_is_named_truncated)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    size_t lengths[] = {0, 3, 8, 20, CK_HEADER, CK_HEADER + 1, s.size / 2, s.size - 1};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++)
        ASSERT_HAS(parse_fails(s.bytes, lengths[k], 1), "truncated");
    /* The same through the file: a copy cut short. */
    char cut[4300], error[512] = "";
    snprintf(cut, sizeof cut, "%s/cut.ckpt", s.dir);
    write_all(cut, s.bytes, s.size - 100);
    dim_model m;
    ck_assert_int_eq(dim_checkpoint_load(cut, &m, NULL, NULL, NULL, error, sizeof error),
                     DIM_DATA_BAD_FILE);
    ASSERT_HAS(error, cut);
    ASSERT_HAS(error, "truncated");
    trained_free(&t);
    saved_free(&s);
}
END_TEST

START_TEST(test_appended_bytes_are_refused)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    unsigned char *longer = malloc(s.size + 1);
    memcpy(longer, s.bytes, s.size);
    longer[s.size] = 0;
    ASSERT_HAS(parse_fails(longer, s.size + 1, 1), "corrupt");
    free(longer);
    trained_free(&t);
    saved_free(&s);
}
END_TEST

START_TEST(test_a_wrong_magic_is_not_a_checkpoint)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    s.bytes[0] = 'P';  /* e.g. a text file, or a PNG */
    ASSERT_HAS(parse_fails(s.bytes, s.size, 1), "bad magic");
    s.bytes[0] = 0x89;
    s.bytes[4] = '\n';  /* a transfer that turned \r\n into \n */
    ASSERT_HAS(parse_fails(s.bytes, s.size, 1), "bad magic");
    const unsigned char text[] = "hello";
    ASSERT_HAS(parse_fails(text, 5, 1), "bad magic");
    trained_free(&t);
    saved_free(&s);
}
END_TEST

START_TEST(test_another_version_is_refused)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    ck_assert_int_eq(le32(s.bytes + 8), 1);
    put_le32(s.bytes + 8, 2);
    const char *message = parse_fails(s.bytes, s.size, 1);
    ASSERT_HAS(message, "version 2");
    ASSERT_HAS(message, "reads version 1");
    trained_free(&t);
    saved_free(&s);
}
END_TEST

/* A tensor whose stored shape is not what the stored configuration makes (the CRC made to
 * agree, as if the file had been written by another version of the model). */
START_TEST(test_shapes_of_another_model_are_refused)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    /* encoder.out.weight is [y_units, fc_units] = [3, 6]: store it as [6, 3]. */
    size_t name = find_text(s.bytes, s.size, "encoder.out.weight");
    size_t shape = name + strlen("encoder.out.weight") + 8;  /* after flags and ndim */
    ck_assert_int_eq(le32(s.bytes + shape - 4), 2);
    ck_assert_int_eq(le32(s.bytes + shape), 3);
    ck_assert_int_eq(le32(s.bytes + shape + 4), 6);
    put_le32(s.bytes + shape, 6);
    put_le32(s.bytes + shape + 4, 3);
    fix_crc(s.bytes, s.size);
    const char *message = parse_fails(s.bytes, s.size, 1);
    ASSERT_HAS(message, "shapes of another model");
    ASSERT_HAS(message, "encoder.out.weight [6, 3]");
    ASSERT_HAS(message, "[3, 6]");

    /* A tensor renamed. */
    put_le32(s.bytes + shape, 3);
    put_le32(s.bytes + shape + 4, 6);
    s.bytes[name + 8] = 'O';  /* "encoder.Out.weight" */
    fix_crc(s.bytes, s.size);
    ASSERT_HAS(parse_fails(s.bytes, s.size, 1), "shapes of another model");
    s.bytes[name + 8] = 'o';

    /* The configuration changed under the tensors: fc_units (field 11) from 6 to 7. */
    size_t fc_units = CK_HEADER + 4 * 11;
    ck_assert_int_eq(le32(s.bytes + fc_units), 6);
    put_le32(s.bytes + fc_units, 7);
    fix_crc(s.bytes, s.size);
    ASSERT_HAS(parse_fails(s.bytes, s.size, 1), "another model");
    trained_free(&t);
    saved_free(&s);
}
END_TEST

/* Sizes that a corrupt file claims are checked before anything is allocated from them. */
START_TEST(test_absurd_sizes_are_refused_before_allocating)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    unsigned char *bytes = malloc(s.size);

    /* A configuration no model can be made from: no convolutions. */
    memcpy(bytes, s.bytes, s.size);
    put_le32(bytes + CK_HEADER + 4 * 3, 0);
    fix_crc(bytes, s.size);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "configuration");

    /* A configuration of a billion-value model: fc_units 2^20. */
    memcpy(bytes, s.bytes, s.size);
    put_le32(bytes + CK_HEADER + 4 * 11, 1u << 20);
    fix_crc(bytes, s.size);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "another model");

    /* A tensor count of four billion. */
    memcpy(bytes, s.bytes, s.size);
    size_t first = find_text(bytes, s.size, "encoder.conv0.weight");
    put_le32(bytes + first - 8, 0xffffffffu);
    fix_crc(bytes, s.size);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "corrupt");

    /* A dimension of two billion. */
    memcpy(bytes, s.bytes, s.size);
    size_t shape = first + strlen("encoder.conv0.weight") + 8;
    put_le32(bytes + shape, 0x7fffffffu);
    fix_crc(bytes, s.size);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "more values than the file holds");

    /* A string length of four billion: the data spec. */
    memcpy(bytes, s.bytes, s.size);
    put_le32(bytes + CK_HEADER + 4 * 19, 0xffffffffu);
    fix_crc(bytes, s.size);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "corrupt");

    /* A payload length of 2^64 - 1. */
    memcpy(bytes, s.bytes, s.size);
    memset(bytes + 16, 0xff, 8);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "truncated");

    /* An estimator this program does not know. */
    memcpy(bytes, s.bytes, s.size);
    size_t bound = find_text(bytes, s.size, "infonce");
    memcpy(bytes + bound, "infonc3", 7);
    fix_crc(bytes, s.size);
    ASSERT_HAS(parse_fails(bytes, s.size, 1), "infonc3");
    free(bytes);
    trained_free(&t);
    saved_free(&s);
}
END_TEST

/* Random damage with the CRC made to agree: whatever the parser says, it must say it without
 * a crash (the sanitizer build checks every read), and leave nothing allocated on failure. */
START_TEST(test_forged_damage_never_crashes)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    unsigned char *bytes = malloc(s.size);
    ag_rng rng;
    ag_rng_seed(&rng, 2024);
    size_t payload = s.size - CK_HEADER;
    for (int trial = 0; trial < 300; trial++) {
        memcpy(bytes, s.bytes, s.size);
        int flips = 1 + (int)ag_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++) {
            /* Most of the structure is in the first few hundred bytes of the payload. */
            size_t range = trial % 2 ? payload : (payload < 600 ? payload : 600);
            size_t at = CK_HEADER + ag_rng_below(&rng, (uint32_t)range);
            bytes[at] = (unsigned char)ag_rng_below(&rng, 256);
        }
        fix_crc(bytes, s.size);
        dim_model m;
        dim_trainer tr;
        ag_rng data_rng;
        char error[512];
        if (dim_checkpoint_parse(bytes, s.size, "forged.ckpt", &m, &tr, &data_rng, NULL, error,
                                 sizeof error) == 0) {
            dim_trainer_free(&tr);
            dim_model_free(&m);
        } else {
            ck_assert(m.params.items == NULL && m.prior_params.items == NULL);
            ASSERT_HAS(error, "forged.ckpt");
        }
    }
    free(bytes);
    trained_free(&t);
    saved_free(&s);
}
END_TEST

START_TEST(test_a_missing_file_is_named)
{
    char error[512] = "";
    dim_model m;
    ck_assert_int_eq(dim_checkpoint_load("/nonexistent/dir/model.ckpt", &m, NULL, NULL, NULL,
                                         error, sizeof error), DIM_DATA_BAD_FILE);
    ASSERT_HAS(error, "/nonexistent/dir/model.ckpt");
    ASSERT_HAS(error, "cannot open");
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* A failed save leaves the previous checkpoint intact                                        */
/* ---------------------------------------------------------------------------------------- */

/* A write that fails half-way (here: the file-size limit, as on a full disk). */
START_TEST(test_a_failed_save_leaves_the_previous_checkpoint)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    dim_train_step(&t.trainer, t.images, CK_BATCH);  /* a newer state to save */
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit small = old;
    small.rlim_cur = (rlim_t)(s.size / 2);
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);  /* a failed write, not a killed process */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char error[512] = "";
    int rc = dim_checkpoint_save(s.path, &t.trainer, &t.data_rng, &t.info, error, sizeof error);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, previous);
    ck_assert_int_eq(rc, DIM_DATA_BAD_FILE);
    ASSERT_HAS(error, s.path);
    ASSERT_HAS(error, "untouched");
    size_t size;
    unsigned char *now = read_all(s.path, &size);
    ck_assert_msg(size == s.size && memcmp(now, s.bytes, size) == 0,
                  "the previous checkpoint changed");
    free(now);
    ck_assert_msg(count_files(s.dir) == 1, "the temporary file was left behind");
    dim_model m;
    ck_assert_int_eq(dim_checkpoint_load(s.path, &m, NULL, NULL, NULL, error, sizeof error), 0);
    dim_model_free(&m);
    trained_free(&t);
    saved_free(&s);
}
END_TEST

/* A directory we may not write (root may write anywhere: then there is nothing to test). */
START_TEST(test_an_unwritable_directory_leaves_the_previous_checkpoint)
{
    trained t;
    saved s;
    save_tiny(&s, &t);
    if (geteuid() != 0) {
        dim_train_step(&t.trainer, t.images, CK_BATCH);
        ck_assert_int_eq(chmod(s.dir, 0555), 0);
        char error[512] = "";
        int rc = dim_checkpoint_save(s.path, &t.trainer, &t.data_rng, &t.info, error,
                                     sizeof error);
        chmod(s.dir, 0755);
        ck_assert_int_eq(rc, DIM_DATA_BAD_FILE);
        ASSERT_HAS(error, s.path);
        size_t size;
        unsigned char *now = read_all(s.path, &size);
        ck_assert(size == s.size && memcmp(now, s.bytes, size) == 0);
        free(now);
    }
    /* A directory that does not exist fails the same way, naming the file. */
    char error[512] = "";
    ck_assert_int_eq(dim_checkpoint_save("/nonexistent/dir/model.ckpt", &t.trainer, NULL,
                                         &t.info, error, sizeof error), DIM_DATA_BAD_FILE);
    ASSERT_HAS(error, "/nonexistent/dir/model.ckpt");
    trained_free(&t);
    saved_free(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Stopping and resuming gives the weights of the run that never stopped                      */
/* ---------------------------------------------------------------------------------------- */

static int train_on_shapes(const char *dir, const dim_config *config, int epochs, int resume,
                           int threads)
{
    dim_train_options o;
    dim_train_options_init(&o);
    o.data = resume ? NULL : "shapes";
    o.config = config;
    o.epochs = epochs;
    o.batch = 16;
    o.limit = 72;          /* 4 steps per epoch; 8 images dropped */
    o.lr = 1e-3;
    o.seed = 5;
    o.estimator = "infonce";
    o.preset = resume ? NULL : "dim-lg";  /* every term: global, local and the prior's game */
    o.out = dir;
    o.resume = resume;
    o.log_every = 3;
    o.quiet = 1;
    o.threads = threads;
    return dim_train_run(&o);
}

START_TEST(test_resuming_after_an_epoch_gives_the_same_weights)
{
    dim_config config = small_config_28();
    char root[4096], straight[4200], stopped[4200], path[4300], error[512] = "";
    make_temp_dir(root, sizeof root);
    snprintf(straight, sizeof straight, "%s/straight", root);
    snprintf(stopped, sizeof stopped, "%s/stopped", root);
    /* The engine's results do not depend on the number of threads: the stopped run may use
     * another number before and after its stop. */
    ck_assert_int_eq(train_on_shapes(straight, &config, 2, 0, 2), DIM_EXIT_OK);
    ck_assert_int_eq(train_on_shapes(stopped, &config, 1, 0, 1), DIM_EXIT_OK);
    /* As if the run had been killed during its second epoch, after logging step 6: the resumed
     * run logs step 6 again, and the row of the interrupted epoch must go. */
    snprintf(path, sizeof path, "%s/train.tsv", stopped);
    FILE *log = fopen(path, "a");
    ck_assert(log != NULL);
    fputs("6\t1.5000\t1\t1\t1\t1\t1\t1\n", log);
    fclose(log);
    /* A fresh run over a checkpoint is refused: it would overwrite it. */
    ck_assert_int_eq(train_on_shapes(stopped, &config, 1, 0, 1), DIM_EXIT_USAGE);
    ck_assert_int_eq(train_on_shapes(stopped, &config, 2, 1, 2), DIM_EXIT_OK);

    dim_model ma, mb;
    dim_trainer ta, tb;
    ag_rng ra, rb;
    dim_run_info ia, ib;
    snprintf(path, sizeof path, "%s/model.ckpt", straight);
    ck_assert_msg(dim_checkpoint_load(path, &ma, &ta, &ra, &ia, error, sizeof error) == 0,
                  "%s", error);
    snprintf(path, sizeof path, "%s/model.ckpt", stopped);
    ck_assert_msg(dim_checkpoint_load(path, &mb, &tb, &rb, &ib, error, sizeof error) == 0,
                  "%s", error);
    ck_assert_int_eq(ta.step, 8);
    ck_assert_int_eq(ia.epoch, 2);
    ck_assert_int_eq(ib.epoch, 2);
    assert_same_trainer(&ta, &tb);
    ck_assert(memcmp(&ra, &rb, sizeof ra) == 0);

    /* The resumed run's log has one header and the same steps as the straight run's. */
    char log_a[4300], log_b[4300];
    snprintf(log_a, sizeof log_a, "%s/train.tsv", straight);
    snprintf(log_b, sizeof log_b, "%s/train.tsv", stopped);
    size_t na, nb;
    unsigned char *a = read_all(log_a, &na), *b = read_all(log_b, &nb);
    a[na] = b[nb] = '\0';
    int headers = 0, rows_a = 0, rows_b = 0;
    for (char *p = (char *)b; (p = strstr(p, "step\t")) != NULL; p++) headers++;
    for (size_t i = 0; i < na; i++) rows_a += a[i] == '\n';
    for (size_t i = 0; i < nb; i++) rows_b += b[i] == '\n';
    ck_assert_int_eq(headers, 1);
    ck_assert_int_eq(rows_a, rows_b);
    const char *header = "step\tepoch\tloss\tglobal_mi\tlocal_mi\tprior\tprior_accuracy\t"
                         "images_per_s\n";
    ck_assert_msg(strncmp((char *)a, header, strlen(header)) == 0,
                  "the log's header is \"%.70s\"", (char *)a);
    free(a);
    free(b);

    /* Nothing left to do: the run has all its epochs. */
    ck_assert_int_eq(train_on_shapes(stopped, &config, 2, 1, 2), DIM_EXIT_OK);
    dim_trainer_free(&ta);
    dim_trainer_free(&tb);
    dim_model_free(&ma);
    dim_model_free(&mb);
    remove_tree(root);
}
END_TEST

START_TEST(test_a_batch_larger_than_the_images_is_refused)
{
    dim_config config = small_config_28();
    char root[4096];
    make_temp_dir(root, sizeof root);
    dim_train_options o;
    dim_train_options_init(&o);
    o.data = "shapes";
    o.config = &config;
    o.limit = 8;
    o.batch = 16;
    o.out = root;
    o.quiet = 1;
    ck_assert_int_eq(dim_train_run(&o), DIM_EXIT_USAGE);
    o.batch = 4;
    o.resume = 1;  /* nothing to resume */
    ck_assert_int_eq(dim_train_run(&o), DIM_EXIT_DATA);
    remove_tree(root);
}
END_TEST

Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *format = tcase_create("format");
    tcase_set_timeout(format, 120);
    tcase_add_test(format, test_round_trip_is_bit_exact);
    tcase_add_test(format, test_load_without_a_trainer_gives_the_model);
    tcase_add_test(format, test_every_kind_of_configuration_round_trips);
    suite_add_tcase(s, format);

    TCase *damage = tcase_create("damage");
    tcase_set_timeout(damage, 120);
    tcase_add_test(damage, test_a_corrupt_byte_fails_the_crc);
    tcase_add_test(damage, test_a_truncated_file_is_named_truncated);
    tcase_add_test(damage, test_appended_bytes_are_refused);
    tcase_add_test(damage, test_a_wrong_magic_is_not_a_checkpoint);
    tcase_add_test(damage, test_another_version_is_refused);
    tcase_add_test(damage, test_shapes_of_another_model_are_refused);
    tcase_add_test(damage, test_absurd_sizes_are_refused_before_allocating);
    tcase_add_test(damage, test_forged_damage_never_crashes);
    tcase_add_test(damage, test_a_missing_file_is_named);
    suite_add_tcase(s, damage);

    TCase *saving = tcase_create("atomic saves");
    tcase_set_timeout(saving, 120);
    tcase_add_test(saving, test_a_failed_save_leaves_the_previous_checkpoint);
    tcase_add_test(saving, test_an_unwritable_directory_leaves_the_previous_checkpoint);
    suite_add_tcase(s, saving);

    TCase *resume = tcase_create("resume");
    tcase_set_timeout(resume, 300);
    tcase_add_test(resume, test_resuming_after_an_epoch_gives_the_same_weights);
    tcase_add_test(resume, test_a_batch_larger_than_the_images_is_refused);
    suite_add_tcase(s, resume);
    return s;
}
