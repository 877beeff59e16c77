/* bench.c -- `make bench`: the speed of the engine against OpenBLAS and PyTorch, in one run.
 *
 * Absolute times on a shared machine drift from minute to minute, so every comparison here is
 * made inside one run, with the contenders interleaved: sample after sample, ours then theirs,
 * then theirs then ours, and each figure is the BEST (smallest time) of its samples, with the
 * median beside it in brackets. Ratios are taken between best times, but for the training
 * steps' (see step_section). It prints:
 *
 *   1. GEMM GFLOP/s at the shapes of one DIM training step (recorded from a real step of the
 *      28x28 model at batch 64: every call of ag_gemm, through the linker's --wrap) and at
 *      square 512, 1024 and 2048, beside OpenBLAS's cblas_sgemm, loaded at run time with
 *      dlopen("libopenblas.so.0"), so that the build needs no BLAS;
 *   2. one training step of DIM(L) (infoNCE, encode-and-dot-product critic, prior on) and of
 *      DIM(G) (infoNCE, global critic, prior on) at batch 64, at 1 and 2 threads, in ms and
 *      images/s, with the step's FLOP count (2mnk summed over its GEMM calls) and GFLOP/s;
 *      beside the same step of the same model in PyTorch (experiments/torch_dim.py, run as a
 *      co-process that answers one step at a time), where python3-torch is installed;
 *   3. where the time of a DIM(L) step goes, at 1 and 2 threads: the tape's own timing of each
 *      operation (ag_tape_time_ops), by op and output size, and the time outside them;
 *   4. the peak resident memory (ru_maxrss) of a child process that trains DIM(L) for a few
 *      steps on a Fashion-MNIST-sized set of images held as bytes, as dim train holds them;
 *   5. three closing lines, one figure each: gemm_vs_openblas (ours over OpenBLAS in GFLOP/s,
 *      n = 1024, all cores), step_vs_pytorch (our DIM(L) step time over PyTorch's, 2 threads:
 *      the median over the rounds of the ratio within a round, see step_section),
 *      peak_rss_mib; "n/a (why)" for a figure that could not be measured.
 *
 * Usage: bench [--reps N] [--rounds N] [--python PATH] [--twin PATH] [--no-torch]
 *              [--no-openblas] [--only gemm|step|ops|rss|shapes] [--spin]
 *        bench --loop PRESET STEPS   (only train, for a profiler: perf record bench --loop ...)
 *   --reps: GEMM samples per contender (7); --rounds: training-step rounds (15); --only shapes
 *   lists every GEMM call of a step; --spin keeps libgomp's default wait policy, otherwise the
 *   bench runs with OMP_WAIT_POLICY=passive unless the environment sets one (see main).
 * Link with -Wl,--wrap=ag_gemm (the Makefile does), and build it from the float library.
 */
#include "../src/dim/dim.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef AG_DOUBLE
#error "bench measures the float build: compile it without AG_DOUBLE"
#endif

enum { BATCH = 64, MAX_SAMPLES = 64, MAX_SHAPES = 128, RSS_STEPS = 4 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Let the other contender's idle threads (OpenMP's and OpenBLAS's spin for a while after a
 * parallel region) go to sleep before the next measurement starts. */
static void pause_briefly(void)
{
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* dst = as much of src as fits in size bytes, terminated. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Best (smallest) and median of n samples. */
typedef struct summary {
    double best, median;
    int n;
} summary;

static summary summarise(const double *samples, int n)
{
    double sorted[MAX_SAMPLES];
    summary s = {NAN, NAN, n};
    if (n <= 0) return s;
    memcpy(sorted, samples, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_doubles);
    s.best = sorted[0];
    s.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    return s;
}

/* ---- Every call of ag_gemm, through -Wl,--wrap=ag_gemm ------------------------------------ */

void __real_ag_gemm(int trans_a, int trans_b, int m, int n, int k, ag_real alpha,
                    const ag_real *A, int lda, const ag_real *B, int ldb, ag_real beta,
                    ag_real *C, int ldc);
void __wrap_ag_gemm(int trans_a, int trans_b, int m, int n, int k, ag_real alpha,
                    const ag_real *A, int lda, const ag_real *B, int ldb, ag_real beta,
                    ag_real *C, int ldc);

/* A GEMM shape and how a DIM step uses it. */
typedef struct gemm_shape {
    int trans_a, trans_b, m, n, k, accumulate; /* accumulate: beta != 0 */
    int calls[2];                              /* per step of DIM(L) [0] and DIM(G) [1] */
    double seconds[2];                         /* inside the traced step */
} gemm_shape;

static struct {
    int model;  /* the slot being traced (0 DIM(L), 1 DIM(G)), or -1: not tracing */
    int nshapes;
    gemm_shape shapes[MAX_SHAPES];
    double flops[2], seconds[2];
    long calls[2];
} trace = {-1, 0, {{0}}, {0, 0}, {0, 0}, {0, 0}};

static double gemm_flops(const gemm_shape *s) { return 2.0 * s->m * (double)s->n * s->k; }

void __wrap_ag_gemm(int trans_a, int trans_b, int m, int n, int k, ag_real alpha,
                    const ag_real *A, int lda, const ag_real *B, int ldb, ag_real beta,
                    ag_real *C, int ldc)
{
    if (trace.model < 0) {
        __real_ag_gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = now();
    __real_ag_gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    double dt = now() - t0;
    gemm_shape key = {trans_a != 0, trans_b != 0, m, n, k, beta != 0, {0, 0}, {0, 0}};
    int i = 0;
    while (i < trace.nshapes
           && !(trace.shapes[i].trans_a == key.trans_a && trace.shapes[i].trans_b == key.trans_b
                && trace.shapes[i].m == m && trace.shapes[i].n == n && trace.shapes[i].k == k
                && trace.shapes[i].accumulate == key.accumulate))
        i++;
    if (i == trace.nshapes) {
        if (trace.nshapes == MAX_SHAPES) return;
        trace.shapes[trace.nshapes++] = key;
    }
    trace.shapes[i].calls[trace.model]++;
    trace.shapes[i].seconds[trace.model] += dt;
    trace.flops[trace.model] += gemm_flops(&key);
    trace.seconds[trace.model] += dt;
    trace.calls[trace.model]++;
}

/* ---- OpenBLAS, found at run time ------------------------------------------------------------ */

typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

static struct {
    sgemm_fn sgemm;
    void (*set_threads)(int);
    char version[96];
    char why[160]; /* why it is not there */
} blas;

static void blas_load(int wanted)
{
    if (!wanted) {
        snprintf(blas.why, sizeof blas.why, "--no-openblas");
        return;
    }
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(blas.why, sizeof blas.why, "libopenblas.so.0 not found; apt-get install "
                 "libopenblas0");
        return;
    }
    void *sgemm = dlsym(lib, "cblas_sgemm"), *threads = dlsym(lib, "openblas_set_num_threads");
    void *config = dlsym(lib, "openblas_get_config");
    if (sgemm == NULL || threads == NULL) {
        snprintf(blas.why, sizeof blas.why, "libopenblas.so.0 has no cblas_sgemm");
        return;
    }
    /* ISO C has no cast between object and function pointers; POSIX guarantees the copy */
    memcpy(&blas.sgemm, &sgemm, sizeof blas.sgemm);
    memcpy(&blas.set_threads, &threads, sizeof blas.set_threads);
    snprintf(blas.version, sizeof blas.version, "OpenBLAS");
    if (config != NULL) {
        char *(*get_config)(void);
        memcpy(&get_config, &config, sizeof get_config);
        copy_text(blas.version, sizeof blas.version, get_config());
    }
}

/* ---- GEMM: ours against OpenBLAS, interleaved --------------------------------------------- */

typedef struct gemm_result {
    summary ours, theirs;  /* seconds per call */
    double flops;
} gemm_result;

static void fill_random(float *x, long n, ag_rng *rng)
{
    for (long i = 0; i < n; i++) x[i] = (float)(2 * ag_rng_uniform(rng) - 1);
}

/* calls products of shape s by ours (who 0) or OpenBLAS (who 1); seconds per call. */
static double run_gemm(int who, const gemm_shape *s, const float *A, const float *B, float *C,
                       int calls)
{
    int lda = s->trans_a ? s->m : s->k, ldb = s->trans_b ? s->k : s->n;
    float beta = s->accumulate ? 1.0f : 0.0f;
    double t0 = now();
    for (int c = 0; c < calls; c++) {
        if (who == 0)
            ag_gemm(s->trans_a, s->trans_b, s->m, s->n, s->k, 1, A, lda, B, ldb, beta, C, s->n);
        else
            blas.sgemm(CBLAS_ROW_MAJOR, s->trans_a ? CBLAS_TRANS : CBLAS_NO_TRANS,
                       s->trans_b ? CBLAS_TRANS : CBLAS_NO_TRANS, s->m, s->n, s->k, 1, A, lda,
                       B, ldb, beta, C, s->n);
    }
    return (now() - t0) / calls;
}

/* Interleaved samples of ours and OpenBLAS on one shape, at `threads` threads. A sample is the
 * mean of enough back-to-back calls to last about 20 ms. */
static gemm_result measure_gemm(const gemm_shape *s, int threads, int reps)
{
    gemm_result r;
    double ours[MAX_SAMPLES], theirs[MAX_SAMPLES];
    ag_rng rng;
    ag_rng_seed(&rng, 7);
    long a_size = (long)s->m * s->k, b_size = (long)s->k * s->n, c_size = (long)s->m * s->n;
    float *A = malloc((size_t)a_size * sizeof *A), *B = malloc((size_t)b_size * sizeof *B);
    float *C = malloc((size_t)c_size * sizeof *C);
    if (A == NULL || B == NULL || C == NULL) ag_fatal("bench: out of memory for a GEMM");
    fill_random(A, a_size, &rng);
    fill_random(B, b_size, &rng);
    fill_random(C, c_size, &rng);
    omp_set_num_threads(threads);
    if (blas.sgemm) blas.set_threads(threads);
    double once = run_gemm(0, s, A, B, C, 1); /* warm up both, and size a sample */
    if (blas.sgemm) run_gemm(1, s, A, B, C, 1);
    once = run_gemm(0, s, A, B, C, 1) < once ? run_gemm(0, s, A, B, C, 1) : once;
    int calls = (int)ceil(0.02 / (once > 1e-7 ? once : 1e-7));
    calls = calls < 1 ? 1 : calls > 500 ? 500 : calls;
    if (reps > MAX_SAMPLES) reps = MAX_SAMPLES;
    for (int rep = 0; rep < reps; rep++) {
        for (int turn = 0; turn < 2; turn++) {
            int who = (rep + turn) % 2; /* ours first on even samples, OpenBLAS first on odd */
            if (who == 1 && blas.sgemm == NULL) continue;
            pause_briefly();
            (who == 0 ? ours : theirs)[rep] = run_gemm(who, s, A, B, C, calls);
        }
    }
    r.ours = summarise(ours, reps);
    r.theirs = summarise(theirs, blas.sgemm ? reps : 0);
    r.flops = gemm_flops(s);
    free(A);
    free(B);
    free(C);
    return r;
}

static void format_gflops(char *buf, size_t size, double flops, summary s)
{
    if (s.n <= 0 || !(s.best > 0)) snprintf(buf, size, "%s", "-");
    else snprintf(buf, size, "%6.1f [%5.1f]", flops / s.best * 1e-9, flops / s.median * 1e-9);
}

/* One row: a label, a note, and ours/OpenBLAS at each thread count measured. */
static void print_gemm_row(const char *label, const char *note, const gemm_result *r, int nr)
{
    printf("  %-28s %-12s", label, note);
    for (int i = 0; i < nr; i++) {
        char ours[32], theirs[32], ratio[16] = "-";
        format_gflops(ours, sizeof ours, r[i].flops, r[i].ours);
        format_gflops(theirs, sizeof theirs, r[i].flops, r[i].theirs);
        if (r[i].theirs.n > 0)
            snprintf(ratio, sizeof ratio, "%.2f", r[i].theirs.best / r[i].ours.best);
        printf(" %14s %14s %5s%s", ours, theirs, ratio, i + 1 < nr ? " |" : "");
    }
    printf("\n");
}

static void print_gemm_header(const char *label, const char *note, const int *threads, int nr)
{
    printf("\n  %-28s %-12s", label, note);
    for (int i = 0; i < nr; i++) {
        char ours[32], theirs[32];
        snprintf(ours, sizeof ours, "ours, %dT", threads[i]);
        snprintf(theirs, sizeof theirs, "OpenBLAS, %dT", threads[i]);
        printf(" %14s %14s %5s%s", ours, theirs, "ratio", i + 1 < nr ? " |" : "");
    }
    printf("\n");
}

/* ---- DIM: our trainer ------------------------------------------------------------------------ */

typedef struct dim_run {
    const char *label;  /* "DIM(L)" */
    const char *preset; /* "dim-l" */
    const char *bound;
    dim_config config;
    dim_model model;
    dim_trainer trainer;
    ag_real *images;    /* [BATCH, 1, 28, 28] */
} dim_run;

static void dim_run_init(dim_run *d, const char *label, const char *preset, const char *bound)
{
    memset(d, 0, sizeof *d);
    d->label = label;
    d->preset = preset;
    d->bound = bound;
    dim_config_for_input(&d->config, 1, 28, 28);
    dim_model_init(&d->model, &d->config, 1);
    dim_objective o;
    dim_objective_preset(&o, preset);
    o.bound = dim_bound_find(bound);
    o.local_kind = DIM_LOCAL_DOT;
    dim_trainer_init(&d->trainer, &d->model, &o, 1e-4, 2);
    long size = (long)BATCH * 28 * 28;
    d->images = malloc((size_t)size * sizeof *d->images);
    if (d->images == NULL) ag_fatal("bench: out of memory for a batch");
    ag_rng rng;
    ag_rng_seed(&rng, 3);
    for (long i = 0; i < size; i++) d->images[i] = (ag_real)ag_rng_uniform(&rng);
}

static void dim_run_free(dim_run *d)
{
    dim_trainer_free(&d->trainer);
    dim_model_free(&d->model);
    free(d->images);
}

static double our_step(dim_run *d, int threads)
{
    omp_set_num_threads(threads);
    pause_briefly();
    double t0 = now();
    dim_train_step(&d->trainer, d->images, BATCH);
    return now() - t0;
}

/* ---- Where the time of a step goes: the tape's own timing of each operation ------------- */

enum { OP_STEPS = 10, OP_ROWS_SHOWN = 16 };

static int compare_op_times(const void *a, const void *b)
{
    const ag_op_time *x = a, *y = b;
    double tx = x->forward + x->backward, ty = y->forward + y->backward;
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

/* OP_STEPS steps of d at `threads` threads with the tape timing every action: the operations
 * that took most of it, in ms per step, and what was spent outside them (the optimisers, the
 * batch, the tape's bookkeeping). */
static void op_table(dim_run *d, int threads)
{
    our_step(d, threads); /* the tape at its size */
    ag_tape *t = d->trainer.tape;
    ag_tape_time_ops(t, 1);
    double total = 0;
    for (int i = 0; i < OP_STEPS; i++) total += our_step(d, threads);
    ag_tape_time_ops(t, 0);
    int count;
    const ag_op_time *rows = ag_tape_op_times(t, &count);
    ag_op_time sorted[AG_OP_TIME_ROWS];
    memcpy(sorted, rows, (size_t)count * sizeof *sorted);
    qsort(sorted, (size_t)count, sizeof *sorted, compare_op_times);
    double per_step = 1e3 / OP_STEPS, in_ops = 0, shown = 0;
    printf("\n  %s, %d thread%s: %.1f ms per step\n  %-14s %9s %9s %9s %6s\n", d->label, threads,
           threads > 1 ? "s" : "", total * per_step, "operation", "output", "fwd ms", "bwd ms",
           "share");
    for (int i = 0; i < count; i++) {
        double both = sorted[i].forward + sorted[i].backward;
        in_ops += both;
        if (i >= OP_ROWS_SHOWN) continue;
        shown += both;
        printf("  %-14s %9ld %9.2f %9.2f %5.1f%%\n", sorted[i].op, sorted[i].size,
               sorted[i].forward * per_step, sorted[i].backward * per_step, 100 * both / total);
    }
    printf("  %-14s %9s %19.2f %5.1f%%\n", "the other ops", "", (in_ops - shown) * per_step,
           100 * (in_ops - shown) / total);
    printf("  %-14s %9s %19.2f %5.1f%%\n", "outside them", "", (total - in_ops) * per_step,
           100 * (total - in_ops) / total);
}

static void op_section(dim_run *d)
{
    printf("\n== Where the time of a %s step goes: the tape times each operation (%d steps; "
           "rows by op and output size)\n", d->label, OP_STEPS);
    op_table(d, 1);
    if (omp_get_num_procs() >= 2) op_table(d, 2);
}

/* ---- PyTorch: the twin as a co-process ----------------------------------------------------- */

typedef struct twin {
    pid_t pid;
    FILE *to, *from;
    char version[64];
    char why[200]; /* why there is no PyTorch figure */
} twin;

static int twin_start(twin *tw, const char *python, const char *script, int wanted)
{
    memset(tw, 0, sizeof *tw);
    tw->pid = -1;
    if (!wanted) {
        snprintf(tw->why, sizeof tw->why, "--no-torch");
        return 0;
    }
    if (access(script, R_OK) != 0) {
        snprintf(tw->why, sizeof tw->why, "%s not found (--twin PATH)", script);
        return 0;
    }
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
        snprintf(tw->why, sizeof tw->why, "pipe: %s", strerror(errno));
        return 0;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(tw->why, sizeof tw->why, "fork: %s", strerror(errno));
        return 0;
    }
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        execlp(python, python, script, "serve", "--batch", "64", "--input", "1x28x28",
               (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    tw->pid = pid;
    tw->to = fdopen(to_child[1], "w");
    tw->from = fdopen(from_child[0], "r");
    char line[256];
    if (tw->from != NULL && fgets(line, sizeof line, tw->from) != NULL
        && strncmp(line, "ready torch ", 12) == 0) {
        line[strcspn(line, "\n")] = '\0';
        copy_text(tw->version, sizeof tw->version, line + 12);
        return 1;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    tw->pid = -1;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 3) snprintf(tw->why, sizeof tw->why, "python3-torch is not installed");
    else if (code == 127) snprintf(tw->why, sizeof tw->why, "cannot run %s", python);
    else snprintf(tw->why, sizeof tw->why, "the PyTorch twin stopped (exit status %d)", code);
    return 0;
}

/* One command, one answer "ok ..."; the answer's text after "ok " in reply. 0 on failure. */
static int twin_ask(twin *tw, const char *command, char *reply, size_t size)
{
    if (tw->pid < 0) return 0;
    fprintf(tw->to, "%s\n", command);
    fflush(tw->to);
    char line[4096];
    if (fgets(line, sizeof line, tw->from) == NULL) {
        snprintf(tw->why, sizeof tw->why, "the PyTorch twin stopped");
        tw->pid = -1;
        return 0;
    }
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "ok ", 3) != 0) {
        snprintf(tw->why, sizeof tw->why, "the PyTorch twin said: %.150s", line);
        return 0;
    }
    copy_text(reply, size, line + 3);
    return 1;
}

/* One timed PyTorch step of the preset at `threads` threads, in seconds; NAN on failure.
 * variant: "" for the twin as written, " reassociated" for its dot critic in our order. */
static double twin_step(twin *tw, const dim_run *d, int threads, const char *variant)
{
    char command[128], reply[256];
    pause_briefly();
    snprintf(command, sizeof command, "step %s %s %d 1%s", d->preset, d->bound, threads,
             variant);
    if (!twin_ask(tw, command, reply, sizeof reply)) return NAN;
    return atof(reply) * 1e-3;
}

static void twin_stop(twin *tw)
{
    if (tw->pid < 0) return;
    fprintf(tw->to, "quit\n");
    fclose(tw->to);
    fclose(tw->from);
    waitpid(tw->pid, NULL, 0);
    tw->pid = -1;
}

/* ---- Peak memory: a child that trains ------------------------------------------------------ */

/* In the child: a Fashion-MNIST-sized training set as bytes (60000 images of 28x28, as
 * dim_dataset holds them), DIM(L), RSS_STEPS steps on batches converted to [0, 1] floats. */
static int rss_child(const char *preset)
{
    enum { IMAGES = 60000, PIXELS = 28 * 28 };
    unsigned char *pixels = malloc((size_t)IMAGES * PIXELS);
    ag_real *batch = malloc((size_t)BATCH * PIXELS * sizeof *batch);
    if (pixels == NULL || batch == NULL) return 1;
    ag_rng rng;
    ag_rng_seed(&rng, 5);
    for (long i = 0; i < (long)IMAGES * PIXELS; i++)
        pixels[i] = (unsigned char)ag_rng_below(&rng, 256);
    dim_config c;
    dim_config_for_input(&c, 1, 28, 28);
    dim_model m;
    dim_model_init(&m, &c, 1);
    dim_objective o;
    dim_objective_preset(&o, preset);
    o.bound = dim_bound_find("infonce");
    dim_trainer tr;
    dim_trainer_init(&tr, &m, &o, 1e-4, 2);
    for (int step = 0; step < RSS_STEPS; step++) {
        for (int i = 0; i < BATCH; i++) {
            long image = (long)ag_rng_below(&rng, IMAGES);
            for (int p = 0; p < PIXELS; p++)
                batch[(long)i * PIXELS + p] = (ag_real)(pixels[image * PIXELS + p] / 255.0);
        }
        dim_train_step(&tr, batch, BATCH);
    }
    printf("%zu\n", tr.tape->high_water);
    dim_trainer_free(&tr);
    dim_model_free(&m);
    free(pixels);
    free(batch);
    return 0;
}

/* The child's peak resident set in MiB, and its tape's high-water mark; NAN on failure. */
static double measure_rss(const char *self, const char *preset, double *tape_mib, char *why,
                          size_t why_size)
{
    int out[2];
    *tape_mib = NAN;
    if (pipe(out) != 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return NAN;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        return NAN;
    }
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(self, self, "--rss-child", preset, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[64] = "";
    FILE *from = fdopen(out[0], "r");
    if (from == NULL || fgets(line, sizeof line, from) == NULL) line[0] = '\0';
    if (from != NULL) fclose(from);
    int status = 0;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, why_size, "the training child failed (status %d)", status);
        return NAN;
    }
    *tape_mib = atof(line) / (1 << 20);
    return (double)usage.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* ---- The report ------------------------------------------------------------------------------ */

typedef struct options {
    int reps, rounds, torch, openblas;
    const char *python, *twin, *only;
} options;

static int cores(void) { return omp_get_num_procs(); }

static double load_average(void)
{
    double load[1] = {NAN};
    return getloadavg(load, 1) == 1 ? load[0] : NAN;
}

static int by_flops_in_dim_l(const void *a, const void *b)
{
    const gemm_shape *x = a, *y = b;
    double fx = gemm_flops(x) * (x->calls[0] + x->calls[1] * 1e-6);
    double fy = gemm_flops(y) * (y->calls[0] + y->calls[1] * 1e-6);
    return (fx < fy) - (fx > fy);
}

/* Record every ag_gemm call of one step of each model (after a warm-up step). */
static void trace_steps(dim_run runs[2], int threads)
{
    for (int r = 0; r < 2; r++) {
        our_step(&runs[r], threads); /* warm-up: grows the tape */
        trace.model = r;
        double t = our_step(&runs[r], threads);
        trace.model = -1;
        printf("  %s: %ld GEMM calls, %.2f GFLOP per step; in one traced step at %d thread, "
               "GEMM took %.0f of %.0f ms (%.0f%%)\n",
               runs[r].label, trace.calls[r], trace.flops[r] * 1e-9, threads,
               trace.seconds[r] * 1e3, t * 1e3, 100 * trace.seconds[r] / t);
    }
}

static double gemm_section(const options *o)
{
    int T = cores(), threads[2] = {1, T}, nt = T > 1 ? 2 : 1;
    double ratio_1024 = NAN;
    printf("\n== GEMM, float, C = op(A) op(B) (+ C), row-major: ag_gemm against %s\n",
           blas.sgemm ? "OpenBLAS cblas_sgemm" : "nothing");
    if (blas.sgemm) printf("   OpenBLAS: %s\n", blas.version);
    else printf("   OpenBLAS: n/a (%s)\n", blas.why);
    printf("   GFLOP/s = 2mnk / time, best [median] of %d interleaved samples of >= 20 ms each;"
           "\n   ratio = ours/OpenBLAS, best against best; T = threads; +C: beta = 1 (adds to "
           "C, as a backward pass does)\n", o->reps);
    qsort(trace.shapes, (size_t)trace.nshapes, sizeof trace.shapes[0], by_flops_in_dim_l);
    for (int model = 0; model < 2; model++) {
        double covered = 0, ours_time[2] = {0, 0}, their_time[2] = {0, 0};
        print_gemm_header(model == 0 ? "DIM(L) step: T N m x n x k" : "DIM(G) step, other shapes",
                          "calls, FLOPs", threads, nt);
        if (model == 1) /* the shapes it shares with DIM(L) are measured above */
            for (int i = 0; i < trace.nshapes; i++)
                if (trace.shapes[i].calls[0] > 0 && trace.shapes[i].calls[1] > 0)
                    covered += gemm_flops(&trace.shapes[i]) * trace.shapes[i].calls[1]
                               / trace.flops[1];
        for (int i = 0; i < trace.nshapes; i++) {
            gemm_shape *s = &trace.shapes[i];
            if (s->calls[model] == 0 || (model == 1 && s->calls[0] > 0)) continue;
            double share = gemm_flops(s) * s->calls[model] / trace.flops[model];
            if (covered >= 0.95 && share < 0.02) continue;
            covered += share;
            char label[64], calls[32];
            snprintf(label, sizeof label, "%c %c %5d x %5d x %5d%s", s->trans_a ? 'T' : 'N',
                     s->trans_b ? 'T' : 'N', s->m, s->n, s->k, s->accumulate ? " +C" : "");
            snprintf(calls, sizeof calls, "%dx %5.1f%%", s->calls[model], 100 * share);
            gemm_result r[2];
            for (int t = 0; t < nt; t++) {
                r[t] = measure_gemm(s, threads[t], o->reps);
                ours_time[t] += r[t].ours.best * s->calls[model];
                their_time[t] += r[t].theirs.n ? r[t].theirs.best * s->calls[model] : 0;
            }
            print_gemm_row(label, calls, r, nt);
        }
        printf("  %s: these shapes are %.0f%% of the step's GEMM FLOPs; their time in one step "
               "(best):", model == 0 ? "DIM(L)" : "DIM(G)", 100 * covered);
        for (int t = 0; t < nt; t++) {
            printf(" %dT ours %.0f ms", threads[t], ours_time[t] * 1e3);
            if (their_time[t] > 0)
                printf(", OpenBLAS %.0f ms (ratio %.2f)", their_time[t] * 1e3,
                       their_time[t] / ours_time[t]);
            printf("%s", t + 1 < nt ? ";" : "\n");
        }
    }
    print_gemm_header("square: N N n x n x n", "", threads, nt);
    const int sizes[] = {512, 1024, 2048};
    for (int i = 0; i < 3; i++) {
        gemm_shape s = {0, 0, sizes[i], sizes[i], sizes[i], 0, {0, 0}, {0, 0}};
        gemm_result r[2];
        for (int t = 0; t < nt; t++) r[t] = measure_gemm(&s, threads[t], o->reps);
        char label[32];
        snprintf(label, sizeof label, "n = %d", sizes[i]);
        print_gemm_row(label, "", r, nt);
        if (sizes[i] == 1024 && r[nt - 1].theirs.n > 0)
            ratio_1024 = r[nt - 1].theirs.best / r[nt - 1].ours.best;
    }
    return ratio_1024;
}

/* One row of the step table: ours[rounds] against theirs[rounds] (NULL: not measured) at
 * `threads` threads. Returns the median of the rounds' own ratios, or NAN. */
static double step_row(const char *label, int threads, const double *ours,
                       const double *theirs, int rounds, double flops)
{
    summary a = summarise(ours, rounds), b = summarise(theirs, theirs ? rounds : 0);
    char mine[32], other[32] = "n/a", other_ips[16] = "", other_gf[16] = "", q[48] = "";
    double median = NAN;
    snprintf(mine, sizeof mine, "%7.1f [%7.1f]", a.best * 1e3, a.median * 1e3);
    if (b.n > 0) {
        snprintf(other, sizeof other, "%7.1f [%7.1f]", b.best * 1e3, b.median * 1e3);
        snprintf(other_ips, sizeof other_ips, "%.1f", BATCH / b.best);
        snprintf(other_gf, sizeof other_gf, "%.1f", flops / b.best * 1e-9);
        double paired[MAX_SAMPLES]; /* [rounds] ours over theirs, round by round */
        for (int i = 0; i < rounds; i++) paired[i] = ours[i] / theirs[i];
        summary p = summarise(paired, rounds);
        double highest = paired[0];
        for (int i = 1; i < rounds; i++) highest = paired[i] > highest ? paired[i] : highest;
        snprintf(q, sizeof q, "%.2f, %.2f [%.2f, %.2f]", a.best / b.best, p.median, p.best,
                 highest);
        median = p.median;
    }
    printf("  %-8s %-3d %-21s %8.1f %7.1f | %-21s %8s %7s | %s\n", label, threads, mine,
           BATCH / a.best, flops / a.best * 1e-9, other, other_ips, other_gf, q);
    return median;
}

/* The step table; returns the median over the rounds of our DIM(L) time at 2 threads over
 * PyTorch's in the same round. The machine's speed drifts from one minute to the next, and a
 * round's two steps run seconds apart: the ratio within a round cancels the drift that a ratio
 * of the two bests keeps (five runs of this section in a row read 0.54 to 0.75 best over best). */
static double step_section(const options *o, dim_run runs[2], twin *tw)
{
    int nthreads = cores() >= 2 ? 2 : 1;
    double ratio = NAN;
    printf("\n== One DIM training step: batch %d of 1x28x28 images (random), Adam, both players"
           "\n   %d interleaved rounds; in each, ours and PyTorch at 1 and 2 threads in "
           "alternating order. Best [median] ms;\n   ours/PyTorch: best over best, then the "
           "median [lowest, highest] of the rounds' own ratios.\n", BATCH, o->rounds);
    printf("   PyTorch: %s\n", tw->pid >= 0 ? tw->version : "n/a");
    if (tw->pid < 0) printf("   (no PyTorch figures: %s)\n", tw->why);
    printf("\n  %-8s %-3s %-21s %8s %7s | %-21s %8s %7s | %s\n", "model", "thr", "ours ms",
           "images/s", "GFLOP/s", "PyTorch ms", "images/s", "GFLOP/s",
           "ours/PyTorch: best, rounds");
    for (int r = 0; r < 2; r++) {
        dim_run *d = &runs[r];
        double ours[2][MAX_SAMPLES], theirs[2][MAX_SAMPLES], same_algebra[MAX_SAMPLES];
        int have_theirs = tw->pid >= 0, have_same = r == 0 && have_theirs;
        for (int t = 0; t < nthreads; t++) { /* warm-up at each thread count */
            our_step(d, t + 1);
            if (have_theirs) have_theirs = !isnan(twin_step(tw, d, t + 1, ""));
        }
        int rounds = o->rounds > MAX_SAMPLES ? MAX_SAMPLES : o->rounds;
        for (int round = 0; round < rounds; round++) {
            for (int t = 0; t < nthreads; t++) {
                for (int turn = 0; turn < 2; turn++) {
                    int who = (round + t + turn) % 2;
                    if (who == 0) ours[t][round] = our_step(d, t + 1);
                    else if (have_theirs) {
                        theirs[t][round] = twin_step(tw, d, t + 1, "");
                        if (isnan(theirs[t][round])) have_theirs = 0;
                    }
                }
                if (t + 1 == nthreads && have_same) { /* the same algebra */
                    same_algebra[round] = twin_step(tw, d, t + 1, " reassociated");
                    if (isnan(same_algebra[round])) have_same = 0;
                }
            }
        }
        for (int t = 0; t < nthreads; t++) {
            double median = step_row(d->label, t + 1, ours[t], have_theirs ? theirs[t] : NULL,
                                     rounds, trace.flops[r]);
            if (r == 0 && t + 1 == 2) ratio = median;
        }
        if (have_same)
            step_row("DIM(L)*", nthreads, ours[nthreads - 1], same_algebra, rounds,
                     trace.flops[r]);
    }
    printf("   FLOPs: DIM(L) %.2f GFLOP, DIM(G) %.2f GFLOP per step (2mnk over every ag_gemm "
           "call of our step; the other operations add well under 1%%); both GFLOP/s columns "
           "divide our count by each side's time.\n"
           "   DIM(L)*: the same steps of ours against PyTorch with its dot critic in our order, "
           "L never formed (doc/21-critics.nw);\n   the twin as written forms L, as the paper "
           "draws the critic.\n", trace.flops[0] * 1e-9, trace.flops[1] * 1e-9);
    return ratio;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench [--reps N] [--rounds N] [--python PATH] [--twin PATH] "
                    "[--no-torch] [--no-openblas] [--only gemm|step|ops|rss|shapes] [--spin]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--rss-child") == 0) return rss_child(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--loop") == 0) { /* for profilers: PRESET STEPS */
        dim_run d;
        dim_run_init(&d, argv[2], argv[2], "infonce");
        for (int i = 0, n = atoi(argv[3]); i < n; i++)
            dim_train_step(&d.trainer, d.images, BATCH);
        dim_run_free(&d);
        return 0;
    }
    /* On a shared machine, OpenMP threads that spin while they wait at a barrier take the
     * core their partner needs: with libgomp's default, 2 threads ran both our step and
     * PyTorch's 3-5 times slower than 1 thread. Waiting threads should sleep, in every
     * process of the run (the PyTorch twin inherits the environment), so unless the caller
     * chose a policy (or --spin), run again with OMP_WAIT_POLICY=passive: the OpenMP runtime
     * reads it once, when the program starts. */
    int spin = 0;
    for (int i = 1; i < argc; i++) spin |= strcmp(argv[i], "--spin") == 0;
    if (!spin && getenv("OMP_WAIT_POLICY") == NULL) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "bench: cannot run again with OMP_WAIT_POLICY=passive: %s\n",
                strerror(errno)); /* go on with the default */
    }
    options o = {7, 15, 1, 1, NULL, "experiments/torch_dim.py", NULL};
    o.python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--reps") == 0 && next) o.reps = atoi(argv[++i]);
        else if (strcmp(a, "--rounds") == 0 && next) o.rounds = atoi(argv[++i]);
        else if (strcmp(a, "--python") == 0 && next) o.python = argv[++i];
        else if (strcmp(a, "--twin") == 0 && next) o.twin = argv[++i];
        else if (strcmp(a, "--only") == 0 && next) o.only = argv[++i];
        else if (strcmp(a, "--no-torch") == 0) o.torch = 0;
        else if (strcmp(a, "--no-openblas") == 0) o.openblas = 0;
        else if (strcmp(a, "--spin") == 0) continue;
        else usage();
    }
    if (o.reps < 1 || o.rounds < 1) usage();
    if (o.only && strcmp(o.only, "shapes") == 0) { /* every GEMM call of a step, and stop */
        dim_run runs[2];
        dim_run_init(&runs[0], "DIM(L)", "dim-l", "infonce");
        dim_run_init(&runs[1], "DIM(G)", "dim-g", "infonce");
        trace_steps(runs, 1);
        qsort(trace.shapes, (size_t)trace.nshapes, sizeof trace.shapes[0], by_flops_in_dim_l);
        for (int i = 0; i < trace.nshapes; i++) {
            const gemm_shape *s = &trace.shapes[i];
            printf("%c %c %5d x %5d x %5d %s  %.3f GFLOP  DIM(L) %d calls, DIM(G) %d calls\n",
                   s->trans_a ? 'T' : 'N', s->trans_b ? 'T' : 'N', s->m, s->n, s->k,
                   s->accumulate ? "+C" : "  ", gemm_flops(s) * 1e-9, s->calls[0], s->calls[1]);
        }
        return 0;
    }
    if (o.only && strcmp(o.only, "gemm") && strcmp(o.only, "step") && strcmp(o.only, "rss")
        && strcmp(o.only, "ops"))
        usage();
    int do_gemm = !o.only || strcmp(o.only, "gemm") == 0;
    int do_step = !o.only || strcmp(o.only, "step") == 0;
    int do_rss = !o.only || strcmp(o.only, "rss") == 0;
    int do_ops = !o.only || strcmp(o.only, "ops") == 0;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *wait_policy = getenv("OMP_WAIT_POLICY");
    printf("dim bench: %d cores, load average %.1f at the start; every ratio below is measured "
           "in this one run\nOMP_WAIT_POLICY=%s (ours and PyTorch's OpenMP threads alike)\n",
           cores(), load_average(), wait_policy ? wait_policy
           : "unset (--spin): waiting threads spin before they sleep, libgomp's default");
    blas_load(o.openblas && do_gemm);
    twin tw;
    twin_start(&tw, o.python, o.twin, o.torch && do_step);

    dim_run runs[2];
    dim_run_init(&runs[0], "DIM(L)", "dim-l", "infonce");
    dim_run_init(&runs[1], "DIM(G)", "dim-g", "infonce");
    printf("\n== The GEMM calls of one training step (28x28 model, batch %d, dot critic, "
           "prior on)\n", BATCH);
    trace_steps(runs, 1);

    double gemm_ratio = NAN, step_ratio = NAN, rss = NAN, tape = NAN, rss_g = NAN, tape_g = NAN;
    char rss_why[200] = "not measured: --only";
    if (do_gemm) gemm_ratio = gemm_section(&o);
    if (do_step) step_ratio = step_section(&o, runs, &tw);
    if (do_ops) op_section(&runs[0]);
    dim_run_free(&runs[1]);
    dim_run_free(&runs[0]);
    char reply[64];
    if (tw.pid >= 0 && twin_ask(&tw, "rss", reply, sizeof reply))
        printf("   PyTorch twin's process, after both models' steps: peak RSS %.0f MiB\n",
               atof(reply) / 1024);
    twin_stop(&tw);
    if (do_rss) {
        printf("\n== Peak memory of training (a child process: 60000 1x28x28 images as bytes, "
               "%d steps at batch %d)\n", RSS_STEPS, BATCH);
        rss = measure_rss("/proc/self/exe", "dim-l", &tape, rss_why, sizeof rss_why);
        if (!isnan(rss))
            printf("  DIM(L): peak RSS %.0f MiB (the tape's arena %.0f MiB of it)\n", rss, tape);
        rss_g = measure_rss("/proc/self/exe", "dim-g", &tape_g, rss_why, sizeof rss_why);
        if (!isnan(rss_g))
            printf("  DIM(G): peak RSS %.0f MiB (the tape's arena %.0f MiB of it)\n", rss_g,
                   tape_g);
    }
    printf("\nload average %.1f at the end\n", load_average());
    if (isnan(gemm_ratio))
        printf("gemm_vs_openblas: n/a (%s)\n", do_gemm ? blas.why : "not measured: --only");
    else printf("gemm_vs_openblas: %.2f\n", gemm_ratio);
    if (isnan(step_ratio))
        printf("step_vs_pytorch: n/a (%s)\n", !do_step ? "not measured: --only"
               : tw.why[0] ? tw.why : "this machine has one core");
    else printf("step_vs_pytorch: %.2f\n", step_ratio);
    if (isnan(rss)) printf("peak_rss_mib: n/a (%s)\n", rss_why);
    else printf("peak_rss_mib: %.0f\n", rss);
    return 0;
}
