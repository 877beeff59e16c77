/* cmd_train.c -- dim train: the epoch loop, progress, the TSV log, checkpoints, --resume.
 * Tangled from doc/32-train.nw: edit the book, not this file. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "dim.h"
#include "cli.h"

#define TRAIN_PRESET "dim-l"
#define TRAIN_ESTIMATOR "infonce"
#define TRAIN_OUT "run"
enum { TRAIN_EPOCHS = 2, TRAIN_BATCH = 64, TRAIN_LOG_EVERY = 25 };
static const double TRAIN_LR = 5e-4;

/* Constants hashed with the seed to start the prior's and the data order's generators. */
static const uint64_t TRAIN_STREAM_PRIOR = 0x7072696f72ULL;  /* "prior" */
static const uint64_t TRAIN_STREAM_ORDER = 0x6f72646572ULL;  /* "order" */

void dim_train_options_init(dim_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->alpha = o->beta = o->gamma = o->lr = NAN;
    o->seed = -1;
}
static uint64_t stream_seed(uint64_t seed, uint64_t stream)
{
    ag_rng r;
    ag_rng_seed(&r, seed ^ stream);
    return ag_rng_next(&r);
}

/* "1h02m", "3m12s", "45s" */
static const char *duration_text(char *buf, size_t size, double seconds)
{
    if (!(seconds >= 0) || seconds > 1e7) return snprintf(buf, size, "?"), buf;
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60) snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, size, "%lds", s);
    return buf;
}

/* A running value for the display: "-" when the term is off. */
static const char *value_text(char *buf, size_t size, double x)
{
    if (isnan(x)) snprintf(buf, size, "-");
    else snprintf(buf, size, "%.3f", x);
    return buf;
}

/* mkdir -p: make dir and any missing parents. 0, or -1 with errno set. */
static int make_directories(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) return -1;
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
static const char TRAIN_LOG_HEADER[] =
    "step\tepoch\tloss\tglobal_mi\tlocal_mi\tprior\tprior_accuracy\timages_per_s\n";

/* Keep the rows of path with step <= keep (rewriting atomically), then open it to append,
 * writing the header if the file is new. NULL after a message on stderr. */
static FILE *open_log(const char *path, long keep, int quiet)
{
    FILE *old = fopen(path, "r");
    int existed = old != NULL;
    if (existed) {
        char line[4096], error[4400];
        dim_atomic_file rewritten;
        if (dim_atomic_open(&rewritten, path, error, sizeof error) != 0) {
            fprintf(stderr, "dim train: %s\n", error);
            fclose(old);
            return NULL;
        }
        long dropped = 0;
        int first = 1, ok = 1;
        while (fgets(line, sizeof line, old) != NULL) {
            char *end;
            long step = strtol(line, &end, 10);
            if (first || end == line || step <= keep) ok &= fputs(line, rewritten.file) >= 0;
            else dropped++;
            first = 0;
        }
        if (first) ok &= fputs(TRAIN_LOG_HEADER, rewritten.file) >= 0;  /* it was empty */
        fclose(old);
        if (!ok) {
            fprintf(stderr, "dim train: cannot rewrite %s: %s (it is untouched)\n", path,
                    strerror(errno ? errno : EIO));
            dim_atomic_abandon(&rewritten);
            return NULL;
        }
        if (dim_atomic_commit(&rewritten, error, sizeof error) != 0) {
            fprintf(stderr, "dim train: %s\n", error);
            return NULL;
        }
        if (dropped > 0 && !quiet)
            fprintf(stderr, "dim train: %s: dropped %ld rows logged after step %ld (%s)\n",
                    path, dropped, keep, keep > 0 ? "they are about to be logged again"
                                                      : "a run that left no checkpoint");
    }
    FILE *log = fopen(path, "a");
    if (log == NULL) {
        fprintf(stderr, "dim train: cannot write %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (!existed) fputs(TRAIN_LOG_HEADER, log);
    fflush(log);
    return log;
}
typedef struct log_sums {
    int steps;
    double loss, global_mi, local_mi, prior, prior_accuracy;
    double since;   /* when the first of these steps started */
} log_sums;

static void log_add(log_sums *s, const dim_step_stats *st)
{
    s->steps++;
    s->loss += st->loss;
    s->global_mi += st->global_mi;
    s->local_mi += st->local_mi;
    s->prior += st->prior;
    s->prior_accuracy += st->prior_accuracy;
}

static void log_row(FILE *log, const log_sums *s, long step, double epoch, double images_per_s)
{
    double n = s->steps;
    fprintf(log, "%ld\t%.4f\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.1f\n", step, epoch, s->loss / n,
            s->global_mi / n, s->local_mi / n, s->prior / n, s->prior_accuracy / n,
            images_per_s);
    fflush(log);
}
typedef struct progress {
    int tty;                 /* 1: redraw one line on a terminal */
    int quiet;
    double start, drawn;     /* when the session started, when the bar was last drawn */
    long first_step;         /* the trainer's step when the session started */
    long last_step;          /* the step at which the run ends */
    int batch, steps_per_epoch, epochs;
    int have;                /* the averages have a value */
    double local_mi, global_mi, prior, loss;
} progress;

static void progress_start(progress *p, int quiet, long step, long last_step, int batch,
                           int steps_per_epoch, int epochs)
{
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->tty = !quiet && isatty(fileno(stderr));
    p->start = p->drawn = ag_seconds();
    p->first_step = step;
    p->last_step = last_step;
    p->batch = batch;
    p->steps_per_epoch = steps_per_epoch;
    p->epochs = epochs;
}

static double average(double old, double x, int have)
{
    const double weight = 0.02;  /* about the last 50 steps */
    if (isnan(x)) return x;
    return have ? (1 - weight) * old + weight * x : x;
}

static void progress_update(progress *p, const dim_step_stats *st)
{
    p->local_mi = average(p->local_mi, st->local_mi, p->have);
    p->global_mi = average(p->global_mi, st->global_mi, p->have);
    p->prior = average(p->prior, st->prior, p->have);
    p->loss = average(p->loss, st->loss, p->have);
    p->have = 1;
}

/* The part of a progress line after the position: speed, time left, the running terms. */
static void progress_tail(const progress *p, long step, double now, char *buf, size_t size)
{
    double rate = (step - p->first_step) / (now - p->start + 1e-9);  /* steps per second */
    char eta[32], local[32], global[32], prior[32];
    snprintf(buf, size, "%5.0f img/s  ETA %s  local %s  global %s  prior %s",
             rate * p->batch, duration_text(eta, sizeof eta, (p->last_step - step) / rate),
             value_text(local, sizeof local, p->local_mi),
             value_text(global, sizeof global, p->global_mi),
             value_text(prior, sizeof prior, p->prior));
}

/* After step (the trainer's count) of the epoch (0-based); logged: a row was just written. */
static void progress_show(progress *p, long step, int epoch, int logged)
{
    if (p->quiet) return;
    double now = ag_seconds();
    int in_epoch = (int)(step - (long)epoch * p->steps_per_epoch);
    char tail[160];
    if (p->tty) {
        if (now - p->drawn < 0.2 && in_epoch != p->steps_per_epoch) return;
        enum { BAR = 20 };
        char bar[BAR + 1];
        int filled = (int)((long)BAR * in_epoch / p->steps_per_epoch);
        for (int k = 0; k < BAR; k++) bar[k] = k < filled ? '#' : '.';
        bar[BAR] = '\0';
        progress_tail(p, step, now, tail, sizeof tail);
        fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d  %s", epoch + 1, p->epochs, bar,
                in_epoch, p->steps_per_epoch, tail);
        fflush(stderr);
        p->drawn = now;
    } else if (logged) {
        progress_tail(p, step, now, tail, sizeof tail);
        fprintf(stderr, "dim train: epoch %d/%d step %d/%d (%ld)  %s\n", epoch + 1, p->epochs,
                in_epoch, p->steps_per_epoch, step, tail);
    }
}
static void list_estimators(FILE *out)
{
    for (int i = 0; i < dim_nbounds; i++) fprintf(out, "%s%s", i ? ", " : "", dim_bounds[i].name);
}

static int usage_error(const char *message, const char *value)
{
    fprintf(stderr, "dim train: %s%s%s%s\n", message, value ? " '" : "", value ? value : "",
            value ? "'" : "");
    return DIM_EXIT_USAGE;
}

static int local_kind_of(const char *name)
{
    if (strcmp(name, "dot") == 0) return DIM_LOCAL_DOT;
    if (strcmp(name, "concat") == 0) return DIM_LOCAL_CONCAT;
    return -1;
}

static int settle_fresh(const dim_train_options *o, dim_run_info *info)
{
    memset(info, 0, sizeof *info);
    if (o->data == NULL)
        return usage_error("--data SPEC is required (fashion-mnist[:DIR], mnist:DIR, "
                           "cifar10:DIR or shapes)", NULL);
    const char *preset = o->preset ? o->preset : TRAIN_PRESET;
    dim_objective objective;
    if (dim_objective_preset(&objective, preset) != 0)
        return usage_error("--preset: dim-l, dim-g or dim-lg, not", preset);
    const char *estimator = o->estimator ? o->estimator : TRAIN_ESTIMATOR;
    if (dim_bound_find(estimator) == NULL) {
        fprintf(stderr, "dim train: --estimator: unknown estimator '%s' (expected ", estimator);
        list_estimators(stderr);
        fprintf(stderr, ")\n");
        return DIM_EXIT_USAGE;
    }
    int kind = local_kind_of(o->local_critic ? o->local_critic : "dot");
    if (kind < 0) return usage_error("--local-critic: dot or concat, not", o->local_critic);
    int custom = !isnan(o->alpha) || !isnan(o->beta) || !isnan(o->gamma);
    if (!isnan(o->alpha)) objective.alpha = o->alpha;
    if (!isnan(o->beta)) objective.beta = o->beta;
    if (!isnan(o->gamma)) objective.gamma = o->gamma;
    if (objective.alpha == 0 && objective.beta == 0 && objective.gamma == 0)
        return usage_error("--alpha, --beta and --gamma are all 0: there is nothing to train",
                           NULL);
    if (strlen(o->data) >= sizeof info->data_spec)
        return usage_error("--data: the spec is too long", NULL);
    snprintf(info->data_spec, sizeof info->data_spec, "%s", o->data);
    snprintf(info->preset, sizeof info->preset, "%s", custom ? "custom" : preset);
    snprintf(info->bound, sizeof info->bound, "%s", estimator);
    info->local_kind = kind;
    info->alpha = objective.alpha;
    info->beta = objective.beta;
    info->gamma = objective.gamma;
    info->lr = isnan(o->lr) ? TRAIN_LR : o->lr;
    info->batch = o->batch > 0 ? o->batch : TRAIN_BATCH;
    info->epochs = o->epochs > 0 ? o->epochs : TRAIN_EPOCHS;
    info->epoch = 0;
    info->seed = o->seed >= 0 ? (uint64_t)o->seed : 0;
    info->limit = o->limit;
    return 0;
}
static int contradicts(const char *option, const char *given, const char *stored,
                       const char *path)
{
    fprintf(stderr, "dim train: --resume: %s %s contradicts the run in %s (%s); a resumed run "
            "keeps its settings, only --epochs may change\n", option, given, path, stored);
    return DIM_EXIT_USAGE;
}

static int settle_resumed(const dim_train_options *o, dim_run_info *info, const char *path)
{
    char given[64], stored[64];
    if (o->data && strcmp(o->data, info->data_spec) != 0)
        return contradicts("--data", o->data, info->data_spec, path);
    if (o->preset && strcmp(o->preset, info->preset) != 0)
        return contradicts("--preset", o->preset, info->preset, path);
    if (o->estimator && strcmp(o->estimator, info->bound) != 0)
        return contradicts("--estimator", o->estimator, info->bound, path);
    if (o->local_critic && local_kind_of(o->local_critic) != info->local_kind)
        return contradicts("--local-critic", o->local_critic,
                           info->local_kind == DIM_LOCAL_DOT ? "dot" : "concat", path);
    const struct { const char *name; double given, stored; } numbers[] = {
        {"--alpha", o->alpha, info->alpha}, {"--beta", o->beta, info->beta},
        {"--gamma", o->gamma, info->gamma}, {"--lr", o->lr, info->lr},
        {"--batch", o->batch > 0 ? o->batch : NAN, info->batch},
        {"--seed", o->seed >= 0 ? o->seed : NAN, (double)info->seed},
        {"--limit", o->limit > 0 ? o->limit : NAN, info->limit},
    };
    for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
        if (!isnan(numbers[k].given) && numbers[k].given != numbers[k].stored) {
            snprintf(given, sizeof given, "%g", numbers[k].given);
            snprintf(stored, sizeof stored, "%g", numbers[k].stored);
            return contradicts(numbers[k].name, given, stored, path);
        }
    if (o->epochs > 0) info->epochs = o->epochs;
    return 0;
}
typedef struct session {
    dim_train_options options;
    dim_run_info info;
    char dir[4096], checkpoint[4200], log_path[4200];
    dim_dataset data;
    int count;              /* images used: the first `count` of the split */
    dim_model model;
    dim_trainer trainer;
    int have_model, have_trainer;
    ag_rng data_rng;
    int *order;             /* [count] the epoch's order of image indices */
    ag_real *images;        /* [batch, C, H, W] */
    FILE *log;
} session;

static void session_free(session *s)
{
    if (s->have_trainer) dim_trainer_free(&s->trainer);
    if (s->have_model) dim_model_free(&s->model);
    dim_dataset_free(&s->data);
    free(s->order);
    free(s->images);
    if (s->log) fclose(s->log);
}

/* Load or make the model, trainer and generators. */
static int session_model(session *s)
{
    const dim_train_options *o = &s->options;
    char error[1024];
    if (o->resume) {
        if (dim_checkpoint_load(s->checkpoint, &s->model, &s->trainer, &s->data_rng, &s->info,
                                error, sizeof error) != 0) {
            fprintf(stderr, "dim train: --resume: %s\n", error);
            return DIM_EXIT_DATA;
        }
        s->have_model = s->have_trainer = 1;
        return settle_resumed(o, &s->info, s->checkpoint);
    }
    if (file_exists(s->checkpoint)) {
        fprintf(stderr, "dim train: %s exists: pass --resume to continue that run, or choose "
                "another --out\n", s->checkpoint);
        return DIM_EXIT_USAGE;
    }
    return settle_fresh(o, &s->info);
}

static int session_data(session *s)
{
    const dim_train_options *o = &s->options;
    char error[1024];
    int rc = dim_dataset_load(&s->data, s->info.data_spec, DIM_SPLIT_TRAIN, error, sizeof error);
    if (rc != DIM_DATA_OK) {
        fprintf(stderr, "dim train: %s\n", error);
        return rc == DIM_DATA_BAD_SPEC ? DIM_EXIT_USAGE : DIM_EXIT_DATA;
    }
    const dim_dataset *d = &s->data;
    s->count = s->info.limit > 0 && s->info.limit < d->count ? s->info.limit : d->count;
    if (s->info.batch > s->count) {
        fprintf(stderr, "dim train: --batch %d is larger than the dataset (%d images in %s)\n",
                s->info.batch, s->count, s->info.data_spec);
        return DIM_EXIT_USAGE;
    }
    if (!s->have_model) {
        dim_config config;
        if (o->config != NULL) config = *o->config;
        else if (dim_config_for_input(&config, d->channels, d->height, d->width) != 0) {
            fprintf(stderr, "dim train: %s: images of %dx%dx%d; DIM has configurations for "
                    "1x28x28 and 3x32x32\n", s->info.data_spec, d->channels, d->height,
                    d->width);
            return DIM_EXIT_DATA;
        }
        dim_objective objective;
        dim_objective_preset(&objective, "dim-l");
        objective.alpha = s->info.alpha;
        objective.beta = s->info.beta;
        objective.gamma = s->info.gamma;
        objective.bound = dim_bound_find(s->info.bound);
        objective.local_kind = (dim_local_kind)s->info.local_kind;
        if (config.in_channels != d->channels || config.in_height != d->height
            || config.in_width != d->width) {
            fprintf(stderr, "dim train: the configuration takes %dx%dx%d images, %s has "
                    "%dx%dx%d\n", config.in_channels, config.in_height, config.in_width,
                    s->info.data_spec, d->channels, d->height, d->width);
            return DIM_EXIT_USAGE;
        }
        dim_model_init(&s->model, &config, s->info.seed);
        s->have_model = 1;
        dim_trainer_init(&s->trainer, &s->model, &objective, s->info.lr,
                         stream_seed(s->info.seed, TRAIN_STREAM_PRIOR));
        s->have_trainer = 1;
        ag_rng_seed(&s->data_rng, stream_seed(s->info.seed, TRAIN_STREAM_ORDER));
    }
    const dim_config *c = &s->model.config;
    if (c->in_channels != d->channels || c->in_height != d->height || c->in_width != d->width) {
        fprintf(stderr, "dim train: the model in %s takes %dx%dx%d images, %s has %dx%dx%d\n",
                s->checkpoint, c->in_channels, c->in_height, c->in_width, s->info.data_spec,
                d->channels, d->height, d->width);
        return DIM_EXIT_DATA;
    }
    s->order = malloc((size_t)s->count * sizeof *s->order);
    s->images = malloc((size_t)s->info.batch * d->channels * d->height * d->width
                       * sizeof *s->images);
    if (s->order == NULL || s->images == NULL) {
        fprintf(stderr, "dim train: out of memory\n");
        return DIM_EXIT_DATA;
    }
    return 0;
}
static void announce(const session *s, int steps_per_epoch, int threads)
{
    if (s->options.quiet) return;
    const dim_run_info *i = &s->info;
    int dropped = s->count - steps_per_epoch * i->batch;
    fprintf(stderr, "dim train: %s, %d images of %dx%dx%d, batch %d: %d steps per epoch",
            i->data_spec, s->count, s->data.channels, s->data.height, s->data.width, i->batch,
            steps_per_epoch);
    if (dropped > 0)
        fprintf(stderr, " (the last %d images of each shuffled epoch are dropped: a partial "
                "batch would change the number of negatives)", dropped);
    fprintf(stderr, "\ndim train: %s (alpha %g, beta %g, gamma %g), %s, %s critic, lr %g, "
            "seed %llu, %d threads; epochs %d to %d of %d into %s\n", i->preset, i->alpha,
            i->beta, i->gamma, i->bound, i->local_kind == DIM_LOCAL_DOT ? "dot" : "concat",
            i->lr, (unsigned long long)i->seed, threads, i->epoch + 1, i->epochs, i->epochs,
            s->dir);
}

static int train_epochs(session *s)
{
    dim_run_info *info = &s->info;
    int batch = info->batch, steps_per_epoch = s->count / batch;
    int log_every = s->options.log_every > 0 ? s->options.log_every : TRAIN_LOG_EVERY;
    dim_trainer *tr = &s->trainer;
    progress p;
    progress_start(&p, s->options.quiet, tr->step, (long)info->epochs * steps_per_epoch, batch,
                   steps_per_epoch, info->epochs);
    log_sums sums = {0};
    sums.since = ag_seconds();
    for (int epoch = info->epoch; epoch < info->epochs; epoch++) {
        double epoch_start = ag_seconds();
        for (int i = 0; i < s->count; i++) s->order[i] = i;
        ag_rng_shuffle(&s->data_rng, s->order, s->count);
        for (int k = 0; k < steps_per_epoch; k++) {
            dim_dataset_batch(&s->data, s->order + (long)k * batch, batch, s->images, NULL);
            dim_step_stats st = dim_train_step(tr, s->images, batch);
            if (!isfinite(st.loss)) {
                if (p.tty) fputc('\n', stderr);
                fprintf(stderr, "dim train: the loss is %g at step %ld (is --lr %g too large?); "
                        "stopping", st.loss, tr->step, info->lr);
                if (epoch > 0) fprintf(stderr, "; %s is from the end of epoch %d\n",
                                       s->checkpoint, epoch);
                else fprintf(stderr, " before the first checkpoint\n");
                return DIM_EXIT_DATA;
            }
            log_add(&sums, &st);
            progress_update(&p, &st);
            int logged = tr->step % log_every == 0 || k == steps_per_epoch - 1;
            if (logged) {
                double now = ag_seconds();
                log_row(s->log, &sums, tr->step, (double)tr->step / steps_per_epoch,
                        sums.steps * batch / (now - sums.since + 1e-9));
                memset(&sums, 0, sizeof sums);
                sums.since = now;
            }
            progress_show(&p, tr->step, epoch, logged);
        }
        info->epoch = epoch + 1;
        char error[1024];
        if (dim_checkpoint_save(s->checkpoint, tr, &s->data_rng, info, error, sizeof error)) {
            if (p.tty) fputc('\n', stderr);
            fprintf(stderr, "dim train: %s\n", error);
            return DIM_EXIT_DATA;
        }
        if (!s->options.quiet) {
            char took[32], local[32], global[32], prior[32];
            double seconds = ag_seconds() - epoch_start;
            fprintf(stderr, "%sdim train: epoch %d/%d done in %s (%.0f img/s): local %s, "
                    "global %s, prior %s; %s written\n", p.tty ? "\n" : "", epoch + 1,
                    info->epochs, duration_text(took, sizeof took, seconds),
                    steps_per_epoch * batch / seconds,
                    value_text(local, sizeof local, p.local_mi),
                    value_text(global, sizeof global, p.global_mi),
                    value_text(prior, sizeof prior, p.prior), s->checkpoint);
        }
    }
    return 0;
}
int dim_train_run(const dim_train_options *o)
{
    session s;
    memset(&s, 0, sizeof s);
    s.options = *o;
    const char *dir = o->out ? o->out : TRAIN_OUT;
    if (strlen(dir) >= sizeof s.dir) return usage_error("--out: the path is too long", NULL);
    snprintf(s.dir, sizeof s.dir, "%s", dir);
    snprintf(s.checkpoint, sizeof s.checkpoint, "%s/model.ckpt", s.dir);
    snprintf(s.log_path, sizeof s.log_path, "%s/train.tsv", s.dir);
    if (o->threads > 0) omp_set_num_threads(o->threads);

    int rc = session_model(&s);
    if (rc == 0 && s.info.epoch >= s.info.epochs) {
        if (!o->quiet)
            printf("dim train: %s has completed %d of %d epochs; nothing to do (raise --epochs "
                   "to train further)\n", s.checkpoint, s.info.epoch, s.info.epochs);
        session_free(&s);
        return DIM_EXIT_OK;
    }
    if (rc == 0) rc = session_data(&s);
    if (rc == 0 && make_directories(s.dir) != 0) {
        fprintf(stderr, "dim train: cannot make the directory %s: %s\n", s.dir, strerror(errno));
        rc = DIM_EXIT_DATA;
    }
    if (rc == 0 && (s.log = open_log(s.log_path, s.trainer.step, o->quiet)) == NULL)
        rc = DIM_EXIT_DATA;
    if (rc == 0) {
        announce(&s, s.count / s.info.batch, omp_get_max_threads());
        double start = ag_seconds();
        rc = train_epochs(&s);
        char took[32];
        if (rc == 0 && !o->quiet)
            printf("dim train: %d epochs, %ld steps, %s; the model is in %s\n", s.info.epochs,
                   s.trainer.step, duration_text(took, sizeof took, ag_seconds() - start),
                   s.checkpoint);
    }
    session_free(&s);
    return rc;
}
int dim_cmd_train(int argc, char **argv)
{
    static const char usage[] =
        "--data SPEC [--preset dim-l|dim-g|dim-lg] [--alpha A --beta B --gamma G] "
        "[--estimator NAME] [--local-critic dot|concat] [--epochs E] [--batch N] [--lr X] "
        "[--seed S] [--threads T] [--out DIR] [--resume]";
    static char estimator_help[512];
    int n = snprintf(estimator_help, sizeof estimator_help, "NAME    the bound (default %s):",
                     TRAIN_ESTIMATOR);
    for (int i = 0; i < dim_nbounds && n < (int)sizeof estimator_help; i++)
        n += snprintf(estimator_help + n, sizeof estimator_help - n, "%s %s", i ? "," : "",
                      dim_bounds[i].name);
    dim_train_options o;
    dim_train_options_init(&o);
    const dim_option options[] = {
        {"data", DIM_OPT_STRING, &o.data, 0, 0,
         "SPEC    fashion-mnist[:DIR], mnist:DIR, cifar10:DIR or shapes"},
        {"preset", DIM_OPT_STRING, &o.preset, 0, 0,
         "NAME    dim-l (default; alpha 0, beta 1, gamma 0.1), dim-g (1, 0, 1), dim-lg (1, 1, 0.1)"},
        {"alpha", DIM_OPT_DOUBLE, &o.alpha, 0, 1e6, "A       weight of the global MI (Eq. 8)"},
        {"beta", DIM_OPT_DOUBLE, &o.beta, 0, 1e6, "B       weight of the local MI"},
        {"gamma", DIM_OPT_DOUBLE, &o.gamma, 0, 1e6, "G       weight of prior matching"},
        {"estimator", DIM_OPT_STRING, &o.estimator, 0, 0, estimator_help},
        {"local-critic", DIM_OPT_STRING, &o.local_critic, 0, 0,
         "KIND    dot (default, encode and dot product) or concat (concat and convolve)"},
        {"epochs", DIM_OPT_INT, &o.epochs, 1, 1000000, "E       epochs to train (default 2)"},
        {"batch", DIM_OPT_INT, &o.batch, 2, 65536, "N       images per step (default 64)"},
        {"lr", DIM_OPT_DOUBLE, &o.lr, 1e-9, 10, "X       Adam's learning rate (default 5e-4)"},
        {"seed", DIM_OPT_INT, &o.seed, 0, 2147483647,
         "S       seed of the weights, the prior samples and the order (default 0)"},
        {"threads", DIM_OPT_INT, &o.threads, 1, 1024,
         "T       OpenMP threads (default: OpenMP's, OMP_NUM_THREADS or one per core)"},
        {"out", DIM_OPT_STRING, &o.out, 0, 0,
         "DIR     where model.ckpt and train.tsv go (default run)"},
        {"resume", DIM_OPT_FLAG, &o.resume, 0, 0,
         "        continue the run in DIR from DIR/model.ckpt"},
        {"limit", DIM_OPT_INT, &o.limit, 2, 2147483647,
         "K       train on the first K images only (quick trials)"},
        {"log-every", DIM_OPT_INT, &o.log_every, 1, 1000000,
         "N       a row of DIR/train.tsv every N steps (default 25)"},
    };
    int parsed = dim_parse_options("train", usage, options,
                                   (int)(sizeof options / sizeof options[0]), argc, argv);
    if (parsed == DIM_PARSED_HELP) return DIM_EXIT_OK;
    if (parsed != 0) return parsed;
    return dim_train_run(&o);
}
