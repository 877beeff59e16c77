/* test_cli.c -- the dim program refuses bad input the way the issue asks: it runs the built
 * program (DIM_BIN, default build/float/dim) as a child process and checks, for unknown commands
 * and options, bad option values, missing or damaged data files, a batch larger than the dataset
 * and damaged checkpoints, that it exits with 2 (usage) or 1 (data), never by a signal, with a
 * line on stderr that names the option or file and the problem, and that a failing command
 * leaves an existing checkpoint and log as they were. Tests of a subcommand that `dim --help`
 * does not list are skipped (they pass, saying so on stderr). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "suites.h"

enum {
    MAX_ARGS = 32,
    QUICK_SECONDS = 60,    /* a command that fails before doing any work */
    TRAIN_SECONDS = 600,   /* the fixture's short training run */
    TRAIN_IMAGES = 64,     /* the datasets made for the tests: 64 images 28x28 */
    FIXTURE_IMAGES = 8,    /* the checkpoint fixture's dataset: two steps of 4 */
    FIXTURE_BATCH = 4
};

/* ------------------------------------------------------------------------------------------ */
/* Running the program                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef struct run_result {
    int exited, status;      /* WIFEXITED, WEXITSTATUS */
    int signaled, signal;    /* WIFSIGNALED, WTERMSIG */
    int timed_out;           /* killed by us after the time allowed */
    char command[1024];      /* the command line, for messages */
    char *out, *err;         /* what it wrote on stdout and stderr, NUL-terminated */
} run_result;

static const char *dim_bin(void)
{
    const char *bin = getenv("DIM_BIN");
    return bin && *bin ? bin : "build/float/dim";
}

static int open_capture(char *path, const char *what)
{
    const char *base = getenv("TMPDIR");
    snprintf(path, TEST_PATH_SIZE, "%s/dim-test-cli-%s-XXXXXX", base && *base ? base : "/tmp", what);
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "cannot make %s", path);
    return fd;
}

static char *slurp_and_remove(const char *path)
{
    size_t n;
    char *text = (char *)test_read_file(path, &n);
    unlink(path);
    return text ? text : calloc(1, 1);
}

/* Runs dim with the NULL-terminated args, stdin from /dev/null, stdout and stderr captured,
 * in its own process group, killed (with its children) after seconds. */
static void run_args(run_result *r, int seconds, const char *const *args)
{
    struct stat st;
    ck_assert_msg(stat(dim_bin(), &st) == 0,
                  "the program %s does not exist: build it, or set DIM_BIN to its path", dim_bin());
    const char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = dim_bin();
    size_t used = (size_t)snprintf(r->command, sizeof r->command, "dim");
    for (int i = 0; args[i] != NULL; i++) {
        ck_assert_int_lt(argc, MAX_ARGS);
        argv[argc++] = args[i];
        if (used < sizeof r->command)
            used += (size_t)snprintf(r->command + used, sizeof r->command - used, " %s", args[i]);
    }
    argv[argc] = NULL;

    char out_path[TEST_PATH_SIZE], err_path[TEST_PATH_SIZE];
    int out = open_capture(out_path, "out"), err = open_capture(err_path, "err");
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        setpgid(0, 0);
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
        /* A sanitizer's report must show as a crash, not as exit status 1. */
        setenv("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=0", 1);
        setenv("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:print_stacktrace=1", 1);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out);
    close(err);
    int status = 0;
    struct timespec start, now, pause = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    r->timed_out = 0;
    for (;;) {
        pid_t done = waitpid(child, &status, WNOHANG);
        if (done == child) break;
        ck_assert_int_eq(done, 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > seconds && !r->timed_out) {
            kill(-child, SIGKILL);
            kill(child, SIGKILL);
            r->timed_out = 1;
        }
        nanosleep(&pause, NULL);
    }
    r->exited = WIFEXITED(status);
    r->status = r->exited ? WEXITSTATUS(status) : -1;
    r->signaled = WIFSIGNALED(status);
    r->signal = r->signaled ? WTERMSIG(status) : 0;
    r->out = slurp_and_remove(out_path);
    r->err = slurp_and_remove(err_path);
}

#define RUN(r, seconds, ...)                                                                  \
    do {                                                                                      \
        const char *run_args_[] = {__VA_ARGS__, NULL};                                        \
        run_args((r), (seconds), run_args_);                                                  \
    } while (0)

static void free_result(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* The first line of text, in line[size]. */
static void first_line(const char *text, char *line, size_t size)
{
    size_t n = strcspn(text, "\n");
    if (n >= size) n = size - 1;
    memcpy(line, text, n);
    line[n] = '\0';
}

/* Does haystack contain needle, ignoring case? */
static int contains_nocase(const char *haystack, size_t length, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= length; i++) {
        size_t k = 0;
        while (k < n) {
            char a = haystack[i + k], b = needle[k];
            if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
            if (a != b) break;
            k++;
        }
        if (k == n) return 1;
    }
    return 0;
}

/* Does text[0..length) contain one of the alternatives of word, "a||b||c" (ignoring case)? */
static int contains_any(const char *text, size_t length, const char *word)
{
    for (;;) {
        const char *bar = strstr(word, "||");
        size_t n = bar ? (size_t)(bar - word) : strlen(word);
        char one[256];
        if (n >= sizeof one) n = sizeof one - 1;
        memcpy(one, word, n);
        one[n] = '\0';
        if (contains_nocase(text, length, one)) return 1;
        if (bar == NULL) return 0;
        word = bar + 2;
    }
}

/* The first line of text that contains every one of words[0..nwords-1] (ignoring case), or
 * NULL; its length in *length. */
static const char *line_with(const char *text, const char *const *words, int nwords,
                             size_t *length)
{
    for (const char *line = text; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        int all = 1;
        for (int w = 0; w < nwords && all; w++) all = contains_any(line, n, words[w]);
        if (all) {
            *length = n;
            return line;
        }
        line += n;
        if (*line == '\n') line++;
    }
    return NULL;
}

/* The run ended by itself, with no signal. */
static void expect_no_crash(const run_result *r)
{
    ck_assert_msg(!r->timed_out, "%s: still running after the time allowed (killed)\n%s",
                  r->command, r->err);
    ck_assert_msg(!r->signaled, "%s: killed by signal %d\nstderr:\n%s", r->command, r->signal,
                  r->err);
    ck_assert_msg(r->exited, "%s: did not exit", r->command);
}

/* Exit status 2, and the first line of stderr contains every word (a NULL-terminated list). */
static void expect_usage_error(const run_result *r, ...)
{
    expect_no_crash(r);
    char line[1024];
    first_line(r->err, line, sizeof line);
    ck_assert_msg(r->status == 2, "%s: expected exit status 2 (usage), got %d\nstderr:\n%s",
                  r->command, r->status, r->err);
    va_list args;
    va_start(args, r);
    const char *word;
    while ((word = va_arg(args, const char *)) != NULL)
        ck_assert_msg(contains_nocase(line, strlen(line), word),
                      "%s: the first line of stderr, '%s', does not contain '%s'", r->command,
                      line, word);
    va_end(args);
}

/* Exit status `status`, and one line of stderr contains all the words (NULL-terminated; a word
 * "a||b" is matched by either alternative). */
static void expect_error_line(const run_result *r, int status, ...)
{
    expect_no_crash(r);
    ck_assert_msg(r->status == status, "%s: expected exit status %d, got %d\nstderr:\n%s",
                  r->command, status, r->status, r->err);
    const char *words[16];
    int nwords = 0;
    va_list args;
    va_start(args, status);
    const char *word;
    while ((word = va_arg(args, const char *)) != NULL && nwords < 16) words[nwords++] = word;
    va_end(args);
    size_t length;
    if (line_with(r->err, words, nwords, &length) == NULL) {
        char wanted[1024] = "";
        for (int w = 0; w < nwords; w++)
            snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), "%s'%s'",
                     w ? ", " : "", words[w]);
        ck_abort_msg("%s: no line of stderr contains all of %s\nstderr:\n%s", r->command, wanted,
                     r->err);
    }
}

/* Is the subcommand in `dim --help`'s list? */
static int have_command(const char *name)
{
    run_result r;
    RUN(&r, QUICK_SECONDS, "--help");
    expect_no_crash(&r);
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\n  %s ", name);
    int found = strstr(r.out, pattern) != NULL;
    free_result(&r);
    return found;
}

#define REQUIRE_COMMAND(name)                                                                 \
    do {                                                                                      \
        if (!have_command(name)) {                                                            \
            fprintf(stderr, "cli: '%s' is not in dim --help: %s skipped\n", name, __func__);  \
            return;                                                                           \
        }                                                                                     \
    } while (0)

/* Usage error for the args (NULL-terminated, at most MAX_ARGS), naming every word. */
#define EXPECT_USAGE(words, ...)                                                              \
    do {                                                                                      \
        run_result r_;                                                                        \
        RUN(&r_, QUICK_SECONDS, __VA_ARGS__);                                                 \
        expect_words_usage(&r_, words);                                                       \
        free_result(&r_);                                                                     \
    } while (0)

/* words: "a|b|c", each of which the first line must contain. */
static void expect_words_usage(const run_result *r, const char *words)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", words);
    const char *list[8] = {NULL};
    int n = 0;
    for (char *w = strtok(copy, "|"); w != NULL && n < 7; w = strtok(NULL, "|")) list[n++] = w;
    expect_usage_error(r, n > 0 ? list[0] : NULL, n > 1 ? list[1] : NULL, n > 2 ? list[2] : NULL,
                       n > 3 ? list[3] : NULL, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* The program and its commands                                                               */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_help_lists_the_commands)
{
    run_result r;
    RUN(&r, QUICK_SECONDS, "--help");
    expect_no_crash(&r);
    ck_assert_msg(r.status == 0, "dim --help: exit status %d", r.status);
    ck_assert_msg(strstr(r.out, "usage: dim") != NULL, "dim --help printed '%s'", r.out);
    ck_assert_msg(strstr(r.out, "  mlp ") != NULL, "dim --help does not list mlp:\n%s", r.out);
    free_result(&r);
}
END_TEST

START_TEST(test_no_command)
{
    run_result r;
    const char *none[] = {NULL};
    run_args(&r, QUICK_SECONDS, none);
    expect_usage_error(&r, "usage: dim", NULL);
    free_result(&r);
}
END_TEST

START_TEST(test_unknown_command)
{
    EXPECT_USAGE("unknown command|'frobnicate'", "frobnicate");
    EXPECT_USAGE("unknown command|'--bogus'", "--bogus");
    EXPECT_USAGE("unknown command", "");
}
END_TEST

/* Every subcommand in the list answers --help with its usage and exit status 0. */
START_TEST(test_every_command_has_help)
{
    const char *names[] = {"mlp", "graph", "mi-bench", "train", "eval", "embed"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!have_command(names[i])) continue;
        run_result r;
        RUN(&r, QUICK_SECONDS, names[i], "--help");
        expect_no_crash(&r);
        ck_assert_msg(r.status == 0, "%s: exit status %d\n%s", r.command, r.status, r.err);
        ck_assert_msg(strstr(r.out, "usage: dim") != NULL || strstr(r.err, "usage: dim") != NULL,
                      "%s printed no usage line", r.command);
        free_result(&r);
    }
}
END_TEST

START_TEST(test_mlp_refuses_options)
{
    REQUIRE_COMMAND("mlp");
    EXPECT_USAGE("--bogus", "mlp", "--bogus");
    EXPECT_USAGE("'extra'", "mlp", "extra");
}
END_TEST

START_TEST(test_graph_bad_options)
{
    REQUIRE_COMMAND("graph");
    EXPECT_USAGE("--estimator|required", "graph");
    EXPECT_USAGE("'--bogus'", "graph", "--estimator", "jsd", "--bogus");
    EXPECT_USAGE("--estimator|needs a value", "graph", "--estimator");
    EXPECT_USAGE("unknown estimator|'nope'", "graph", "--estimator", "nope");
    EXPECT_USAGE("unknown mode|'sideways'", "graph", "--estimator", "jsd", "--mode", "sideways");
    EXPECT_USAGE("--mode|needs a value", "graph", "--estimator", "jsd", "--mode");
    EXPECT_USAGE("unknown critic|'wide'", "graph", "--estimator", "jsd", "--critic", "wide");
}
END_TEST

/* mi-bench's values are all checked before any work (and its output goes to a temporary
 * directory should one ever be accepted). */
START_TEST(test_mi_bench_bad_options)
{
    REQUIRE_COMMAND("mi-bench");
    char dir[TEST_PATH_SIZE], out[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(out, dir, "bench");
#define MIB(words, ...) EXPECT_USAGE(words, "mi-bench", "--out", out, __VA_ARGS__)
    MIB("unknown option|'--bogus'", "--bogus");
    MIB("--batch|not a whole number|'abc'", "--batch", "abc");
    MIB("--batch|not a whole number|'64x'", "--batch", "64x");
    MIB("--batch|not a whole number|'2.5'", "--batch", "2.5");
    MIB("--batch|out of range|'1'", "--batch", "1");
    MIB("--batch|out of range|'1000000000'", "--batch", "1000000000");
    MIB("--batch|out of range", "--batch=-3");
    MIB("--batch|needs a value", "--batch");
    MIB("--batch|not a whole number", "--batch", "");
    MIB("--lr|not a number|'fast'", "--lr", "fast");
    MIB("--lr|not a number|'nan'", "--lr", "nan");
    MIB("--lr|not a number", "--lr", "inf");
    MIB("--lr|out of range|'0'", "--lr", "0");
    MIB("--lr|out of range", "--lr", "1e300");
    MIB("--seed|not a whole number", "--seed", "1.5");
    MIB("--seed|out of range", "--seed", "-1");
    MIB("--steps-per-level|out of range", "--steps-per-level", "0");
    MIB("--threads|not a whole number", "--threads", "four");
    MIB("--short|takes no value", "--short=yes");
    MIB("--critic|'wide'", "--critic", "wide");
    MIB("--estimators|'nope'", "--estimators", "nope");
    MIB("--estimators|twice", "--estimators", "jsd,jsd");
    MIB("--estimators", "--estimators", "jsd,,dv");
    MIB("--levels", "--levels", "2,x");
    MIB("--levels", "--levels", "200");
    MIB("--out|needs a value", "--out");
    MIB("unexpected argument", "stray");
#undef MIB
    struct stat st;
    ck_assert_msg(stat(out, &st) != 0, "a refused mi-bench made its output directory %s", out);
    test_remove_tree(dir);
}
END_TEST

/* An output directory that cannot be made is a data error, found before the work. */
START_TEST(test_mi_bench_unwritable_output)
{
    REQUIRE_COMMAND("mi-bench");
    run_result r;
    RUN(&r, QUICK_SECONDS, "mi-bench", "--short", "--out", "/dev/null/bench");
    expect_error_line(&r, 1, "/dev/null/bench", NULL);
    free_result(&r);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* dim train, eval and embed: options                                                         */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_train_bad_options)
{
    REQUIRE_COMMAND("train");
    char dir[TEST_PATH_SIZE], out[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(out, dir, "run");
#define TRAIN(words, ...) EXPECT_USAGE(words, "train", "--data", "shapes", "--out", out, __VA_ARGS__)
    TRAIN("--bogus", "--bogus");
    TRAIN("--batch|abc", "--batch", "abc");
    TRAIN("--batch|64x", "--batch", "64x");
    TRAIN("--batch|0", "--batch", "0");
    TRAIN("--batch|-5", "--batch", "-5");
    TRAIN("--batch", "--batch", "99999999999");
    TRAIN("--batch|needs a value", "--batch");
    TRAIN("--epochs|ten", "--epochs", "ten");
    TRAIN("--epochs|-1", "--epochs", "-1");
    TRAIN("--lr|fast", "--lr", "fast");
    TRAIN("--lr|-0.1", "--lr", "-0.1");
    TRAIN("--lr", "--lr", "nan");
    TRAIN("--alpha|x", "--alpha", "x");
    TRAIN("--beta|-1", "--beta", "-1");
    TRAIN("--gamma|needs a value", "--gamma");
    TRAIN("--seed|1.5", "--seed", "1.5");
    TRAIN("--threads|-2", "--threads", "-2");
    TRAIN("--preset|dim-x", "--preset", "dim-x");
    TRAIN("--estimator|nope", "--estimator", "nope");
    TRAIN("--local-critic|wide", "--local-critic", "wide");
    TRAIN("--resume|takes no value", "--resume=yes");
#undef TRAIN
    /* Data specs that are wrong as written are usage errors, naming the spec. */
    EXPECT_USAGE("imagenet", "train", "--data", "imagenet", "--out", out);
    EXPECT_USAGE("shapes:/tmp", "train", "--data", "shapes:/tmp", "--out", out);
    EXPECT_USAGE("mnist", "train", "--data", "mnist", "--out", out);
    EXPECT_USAGE("--data|needs a value", "train", "--out", out, "--data");
    struct stat st;
    ck_assert_msg(stat(out, &st) != 0, "a refused dim train made its output directory %s", out);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_eval_bad_options)
{
    REQUIRE_COMMAND("eval");
    EXPECT_USAGE("--bogus", "eval", "--ckpt", "x.ckpt", "--bogus");
    EXPECT_USAGE("--ckpt|needs a value", "eval", "--ckpt");
    EXPECT_USAGE("--probe-epochs|ten", "eval", "--ckpt", "x.ckpt", "--probe-epochs", "ten");
    EXPECT_USAGE("--probe-epochs|-1", "eval", "--ckpt", "x.ckpt", "--probe-epochs", "-1");
    EXPECT_USAGE("--baseline|nope", "eval", "--baseline", "nope", "--data", "shapes");
    EXPECT_USAGE("imagenet", "eval", "--baseline", "raw", "--data", "imagenet");
    /* Neither a checkpoint nor a baseline: nothing to evaluate. */
    EXPECT_USAGE("--ckpt", "eval");
}
END_TEST

START_TEST(test_embed_bad_options)
{
    REQUIRE_COMMAND("embed");
    char dir[TEST_PATH_SIZE], npy[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(npy, dir, "features.npy");
#define EMBED(words, ...) EXPECT_USAGE(words, "embed", "--ckpt", "x.ckpt", "--data", "shapes", \
                                       __VA_ARGS__)
    EMBED("--bogus", "--out", npy, "--bogus");
    EMBED("--layer", "--out", npy, "--layer", "retina");
    EMBED("--split", "--out", npy, "--split", "validation");
    EMBED("--out|needs a value", "--out");
    EMBED("--out", "--layer", "y");
#undef EMBED
    struct stat st;
    ck_assert_msg(stat(npy, &st) != 0, "a refused dim embed wrote %s", npy);
    test_remove_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Bad data files                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* Runs `dim train --data mnist:DIR` on the files made by make (in DIR) and expects exit status
 * 1 with a line naming the file and the problem, and no checkpoint written. */
static void check_train_refuses(void (*make)(const char *dir), const char *file,
                                const char *problem)
{
    char dir[TEST_PATH_SIZE], data[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], out[TEST_PATH_SIZE],
        path[TEST_PATH_SIZE], ckpt[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(data, dir, "data");
    ck_assert_int_eq(mkdir(data, 0700), 0);
    make(data);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "mnist:%s", data), (int)sizeof spec);
    test_join(out, dir, "run");
    test_join(path, data, file);
    run_result r;
    RUN(&r, QUICK_SECONDS, "train", "--data", spec, "--out", out, "--epochs", "1", "--batch", "8");
    expect_error_line(&r, 1, path, problem, NULL);
    test_join(ckpt, out, "model.ckpt");
    struct stat st;
    ck_assert_msg(stat(ckpt, &st) != 0, "%s wrote %s", r.command, ckpt);
    free_result(&r);
    test_remove_tree(dir);
}

static void make_nothing(const char *dir) { (void)dir; }

static void make_truncated_images(const char *dir)
{
    size_t n;
    unsigned char *b = test_idx_images(TRAIN_IMAGES, 28, 28, &n);
    test_write_file(dir, "train-images-idx3-ubyte", b, n - 100, 0);
    free(b);
    test_write_mnist(dir, "t10k", 16, 28, 0);
    size_t nl;
    unsigned char *labels = test_idx_labels(TRAIN_IMAGES, &nl);
    test_write_file(dir, "train-labels-idx1-ubyte", labels, nl, 0);
    free(labels);
}

static void make_truncated_header(const char *dir)
{
    size_t n;
    unsigned char *b = test_idx_images(TRAIN_IMAGES, 28, 28, &n);
    test_write_file(dir, "train-images-idx3-ubyte.gz", b, 9, 1);
    free(b);
}

static void make_wrong_magic(const char *dir)
{
    test_write_mnist(dir, "train", TRAIN_IMAGES, 28, 0);
    test_write_mnist(dir, "t10k", 16, 28, 0);
    size_t n;
    unsigned char *labels = test_idx_labels(TRAIN_IMAGES, &n);
    labels[3] = 3;  /* labels claiming to be images */
    test_write_file(dir, "train-labels-idx1-ubyte", labels, n, 0);
    free(labels);
}

static void make_absurd_header(const char *dir)
{
    size_t n;
    unsigned char *b = test_idx_images(2, 28, 28, &n);
    test_put_big_endian32(b + 4, 1000000000ul);
    test_write_file(dir, "train-images-idx3-ubyte", b, n, 0);
    free(b);
}

static void make_corrupt_gzip(const char *dir)
{
    test_write_mnist(dir, "train", TRAIN_IMAGES, 28, 1);
    char path[TEST_PATH_SIZE];
    test_join(path, dir, "train-images-idx3-ubyte.gz");
    size_t n;
    unsigned char *z = test_read_file(path, &n);
    z[n - 7] ^= 0x40;  /* the CRC-32 of the gzip trailer */
    test_write_file(dir, "train-images-idx3-ubyte.gz", z, n, 0);
    free(z);
}

static void make_labels_out_of_range(const char *dir)
{
    test_write_mnist(dir, "train", TRAIN_IMAGES, 28, 0);
    size_t n;
    unsigned char *labels = test_idx_labels(TRAIN_IMAGES, &n);
    labels[8 + 5] = 17;
    test_write_file(dir, "train-labels-idx1-ubyte", labels, n, 0);
    free(labels);
}

static void make_count_mismatch(const char *dir)
{
    test_write_mnist(dir, "train", TRAIN_IMAGES, 28, 0);
    size_t n;
    unsigned char *labels = test_idx_labels(TRAIN_IMAGES - 3, &n);
    test_write_file(dir, "train-labels-idx1-ubyte", labels, n, 0);
    free(labels);
}

START_TEST(test_train_missing_data)
{
    REQUIRE_COMMAND("train");
    check_train_refuses(make_nothing, "train-images-idx3-ubyte", "cannot open");
}
END_TEST

START_TEST(test_train_truncated_data)
{
    REQUIRE_COMMAND("train");
    check_train_refuses(make_truncated_images, "train-images-idx3-ubyte", "truncated");
    check_train_refuses(make_truncated_header, "train-images-idx3-ubyte.gz", "truncated");
}
END_TEST

START_TEST(test_train_corrupt_data)
{
    REQUIRE_COMMAND("train");
    check_train_refuses(make_wrong_magic, "train-labels-idx1-ubyte", "wrong magic");
    check_train_refuses(make_absurd_header, "train-images-idx3-ubyte", "1000000000");
    check_train_refuses(make_corrupt_gzip, "train-images-idx3-ubyte.gz", "corrupt");
    check_train_refuses(make_labels_out_of_range, "train-labels-idx1-ubyte", "not a class");
    check_train_refuses(make_count_mismatch, "train-labels-idx1-ubyte", "labels for");
}
END_TEST

/* Images of a size the model has no configuration for are refused as data, not a crash. */
START_TEST(test_train_images_of_another_size)
{
    REQUIRE_COMMAND("train");
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], out[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_write_mnist(dir, "train", TRAIN_IMAGES, 10, 0);
    test_write_mnist(dir, "t10k", 16, 10, 0);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "mnist:%s", dir), (int)sizeof spec);
    test_join(out, dir, "run");
    run_result r;
    RUN(&r, QUICK_SECONDS, "train", "--data", spec, "--out", out, "--epochs", "1", "--batch", "8");
    expect_error_line(&r, 1, "10x10||10 x 10||10, 10", NULL);
    free_result(&r);
    test_remove_tree(dir);
}
END_TEST

/* A batch larger than the dataset cannot make one step: refused, naming the batch, as a usage
 * or a data error, before anything is written. */
START_TEST(test_train_batch_larger_than_dataset)
{
    REQUIRE_COMMAND("train");
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], out[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_write_mnist(dir, "train", 20, 28, 0);
    test_write_mnist(dir, "t10k", 20, 28, 0);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "mnist:%s", dir), (int)sizeof spec);
    test_join(out, dir, "run");
    run_result r;
    RUN(&r, QUICK_SECONDS, "train", "--data", spec, "--out", out, "--epochs", "1", "--batch", "64");
    expect_no_crash(&r);
    ck_assert_msg(r.status == 1 || r.status == 2, "%s: exit status %d (1 or 2 expected)\n%s",
                  r.command, r.status, r.err);
    const char *words[] = {"batch", "64"};
    size_t length;
    ck_assert_msg(line_with(r.err, words, 2, &length) != NULL,
                  "%s: no line of stderr names the batch of 64\n%s", r.command, r.err);
    char ckpt[TEST_PATH_SIZE];
    test_join(ckpt, out, "model.ckpt");
    struct stat st;
    ck_assert_msg(stat(ckpt, &st) != 0, "%s wrote %s", r.command, ckpt);
    free_result(&r);
    test_remove_tree(dir);
}
END_TEST

/* --resume where there is no checkpoint: a data error naming the file it looked for. */
START_TEST(test_train_resume_without_checkpoint)
{
    REQUIRE_COMMAND("train");
    char dir[TEST_PATH_SIZE], out[TEST_PATH_SIZE], ckpt[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(out, dir, "run");
    test_join(ckpt, out, "model.ckpt");
    run_result r;
    RUN(&r, QUICK_SECONDS, "train", "--data", "shapes", "--out", out, "--resume");
    expect_error_line(&r, 1, ckpt, NULL);
    free_result(&r);
    test_remove_tree(dir);
}
END_TEST

/* An output directory that cannot be made: a data error naming it, before any training. */
START_TEST(test_train_unwritable_output)
{
    REQUIRE_COMMAND("train");
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_write_mnist(dir, "train", TRAIN_IMAGES, 28, 0);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "mnist:%s", dir), (int)sizeof spec);
    run_result r;
    RUN(&r, QUICK_SECONDS, "train", "--data", spec, "--out", "/dev/null/run", "--epochs", "1",
        "--batch", "8");
    expect_error_line(&r, 1, "/dev/null/run", NULL);
    free_result(&r);
    test_remove_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Checkpoints: a real one from a short run, then damaged copies                              */
/* ------------------------------------------------------------------------------------------ */

/* Made once for the checkpoint tests (an unchecked fixture runs in the runner's process): a
 * dataset of FIXTURE_IMAGES images, one epoch of training into run/, with run/model.ckpt and
 * run/train.tsv. */
static struct {
    int ready;                        /* 1: the run succeeded */
    char dir[TEST_PATH_SIZE];         /* the temporary directory of everything */
    char spec[TEST_PATH_SIZE];        /* mnist:DIR/data */
    char run[TEST_PATH_SIZE];         /* DIR/run, the --out of the run */
    char ckpt[TEST_PATH_SIZE];        /* DIR/run/model.ckpt */
    char log[TEST_PATH_SIZE];         /* DIR/run/train.tsv */
    char why[8192];                   /* why the fixture is not ready */
} trained;

static void begin_scratch(void) { test_scratch_begin("cli"); }

static void make_trained_run(void)
{
    test_scratch_begin("cli");
    memset(&trained, 0, sizeof trained);
    if (!have_command("train")) {
        snprintf(trained.why, sizeof trained.why, "dim train does not exist");
        return;
    }
    char data[TEST_PATH_SIZE];
    test_make_temp_dir(trained.dir, "cli-ckpt");
    test_join(data, trained.dir, "data");
    mkdir(data, 0700);
    test_write_mnist(data, "train", FIXTURE_IMAGES, 28, 1);
    test_write_mnist(data, "t10k", FIXTURE_IMAGES, 28, 1);
    ck_assert_int_lt(snprintf(trained.spec, sizeof trained.spec, "mnist:%s", data),
                     (int)sizeof trained.spec);
    test_join(trained.run, trained.dir, "run");
    test_join(trained.ckpt, trained.run, "model.ckpt");
    test_join(trained.log, trained.run, "train.tsv");
    char batch[16];
    snprintf(batch, sizeof batch, "%d", FIXTURE_BATCH);
    run_result r;
    RUN(&r, TRAIN_SECONDS, "train", "--data", trained.spec, "--out", trained.run, "--epochs", "1",
        "--batch", batch, "--seed", "7");
    struct stat st;
    if (r.timed_out || !r.exited || r.status != 0)
        snprintf(trained.why, sizeof trained.why, "%.1000s: %s %d\n%.3000s", r.command,
                 r.timed_out ? "timed out" : r.exited ? "exit status" : "signal",
                 r.exited ? r.status : r.signal, r.err);
    else if (stat(trained.ckpt, &st) != 0 || stat(trained.log, &st) != 0)
        snprintf(trained.why, sizeof trained.why, "%.1000s made no %.3000s and %.3000s",
                 r.command, trained.ckpt, trained.log);
    else
        trained.ready = 1;
    free_result(&r);
}

static void remove_trained_run(void)
{
    test_scratch_end();
}

/* Returns 0 (the test is skipped) when dim train does not exist; fails when its run failed. */
static int require_trained(void)
{
    if (!trained.ready && strcmp(trained.why, "dim train does not exist") == 0) {
        fprintf(stderr, "cli: dim train does not exist: checkpoint test skipped\n");
        return 0;
    }
    ck_assert_msg(trained.ready, "the short training run failed: %s", trained.why);
    return 1;
}

/* Damages of a checkpoint: each writes the damaged copy of bytes[0..n) into path. */
typedef enum damage { BAD_CRC, BAD_MAGIC, TRUNCATED, TRUNCATED_HEADER, EMPTY, OTHER_VERSION,
                      APPENDED } damage;

static const char *damage_words(damage d)
{
    switch (d) {
    case BAD_CRC: return "CRC";
    case BAD_MAGIC: return "magic";
    case TRUNCATED: case TRUNCATED_HEADER: case EMPTY: return "truncated";
    case OTHER_VERSION: return "version";
    default: return "corrupt";
    }
}

/* The trained checkpoint's bytes, read once per test (about 100 MB). */
static const unsigned char *good_checkpoint(size_t *n)
{
    static unsigned char *bytes;
    static size_t size;
    if (bytes == NULL) {
        bytes = test_read_file(trained.ckpt, &size);
        ck_assert_msg(bytes != NULL, "cannot read %s", trained.ckpt);
        ck_assert_uint_gt(size, 64);
    }
    *n = size;
    return bytes;
}

/* Writes the checkpoint damaged by d to path; returns the bytes written (static until the
 * next call), their number in *n. */
static const unsigned char *write_damaged(const char *path, damage d, size_t *n)
{
    static unsigned char *copy;
    size_t size;
    const unsigned char *good = good_checkpoint(&size);
    static const char junk[] = "appended junk";
    size_t keep = d == TRUNCATED ? size / 2 : d == TRUNCATED_HEADER ? 12 : d == EMPTY ? 0
                : d == APPENDED ? size + sizeof junk - 1 : size;
    free(copy);
    copy = malloc(keep + 1);
    memcpy(copy, good, keep < size ? keep : size);
    switch (d) {
    case BAD_CRC: copy[size / 2] ^= 0x10; break;
    case BAD_MAGIC: copy[1] = 'X'; break;
    case OTHER_VERSION: copy[8] = 99; break;  /* the version, a u32 at offset 8 */
    case APPENDED: memcpy(copy + size, junk, sizeof junk - 1); break;
    default: break;
    }
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(copy, 1, keep, f), keep);
    ck_assert_int_eq(fclose(f), 0);
    *n = keep;
    return copy;
}

/* Does the file at path hold exactly bytes[0..n)? */
static int file_holds(const char *path, const unsigned char *bytes, size_t n)
{
    size_t size;
    unsigned char *now = test_read_file(path, &size);
    int same = now != NULL && size == n && memcmp(now, bytes, n) == 0;
    free(now);
    return same;
}

/* Every damage is shown to dim eval; the other commands read checkpoints with the same
 * function, and see the three the issue names (each copy is about 100 MB of writing). */
static const damage every_damage[] = {BAD_CRC, BAD_MAGIC, TRUNCATED, TRUNCATED_HEADER, EMPTY,
                                      OTHER_VERSION, APPENDED};
static const damage main_damages[] = {BAD_CRC, BAD_MAGIC, TRUNCATED};
enum {
    NDAMAGES = sizeof every_damage / sizeof every_damage[0],
    NMAIN_DAMAGES = sizeof main_damages / sizeof main_damages[0]
};

START_TEST(test_eval_damaged_checkpoints)
{
    REQUIRE_COMMAND("eval");
    if (!require_trained()) return;
    char dir[TEST_PATH_SIZE], ckpt[TEST_PATH_SIZE], tsv[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(ckpt, dir, "damaged.ckpt");
    test_join(tsv, dir, "probes.tsv");
    /* An earlier result that a failing eval must not lose. */
    const unsigned char earlier[] = "layer\tprobe\taccuracy\nconv\tlinear\t0.5\n";
    test_write_file(dir, "probes.tsv", earlier, sizeof earlier - 1, 0);
    for (int k = 0; k < NDAMAGES; k++) {
        size_t n;
        const unsigned char *written = write_damaged(ckpt, every_damage[k], &n);
        run_result r;
        RUN(&r, QUICK_SECONDS, "eval", "--ckpt", ckpt, "--data", trained.spec, "--tsv", tsv);
        expect_error_line(&r, 1, ckpt, damage_words(every_damage[k]), NULL);
        ck_assert_msg(file_holds(ckpt, written, n), "%s changed the checkpoint", r.command);
        free_result(&r);
        /* The result from before is still there, unchanged. */
        unsigned char *now = test_read_file(tsv, &n);
        ck_assert_msg(now != NULL && n == sizeof earlier - 1 && memcmp(now, earlier, n) == 0,
                      "a failing dim eval changed %s", tsv);
        free(now);
    }
    /* A checkpoint that does not exist. */
    char missing[TEST_PATH_SIZE];
    test_join(missing, dir, "missing.ckpt");
    run_result r;
    RUN(&r, QUICK_SECONDS, "eval", "--ckpt", missing, "--data", trained.spec);
    expect_error_line(&r, 1, missing, NULL);
    free_result(&r);
    /* A directory where the checkpoint should be. */
    RUN(&r, QUICK_SECONDS, "eval", "--ckpt", dir, "--data", trained.spec);
    expect_error_line(&r, 1, dir, NULL);
    free_result(&r);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_embed_damaged_checkpoints)
{
    REQUIRE_COMMAND("embed");
    if (!require_trained()) return;
    char dir[TEST_PATH_SIZE], ckpt[TEST_PATH_SIZE], npy[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_join(ckpt, dir, "damaged.ckpt");
    test_join(npy, dir, "features.npy");
    const unsigned char earlier[] = "an earlier result";
    for (int k = 0; k < NMAIN_DAMAGES; k++) {
        size_t n;
        write_damaged(ckpt, main_damages[k], &n);
        test_write_file(dir, "features.npy", earlier, sizeof earlier - 1, 0);
        run_result r;
        RUN(&r, QUICK_SECONDS, "embed", "--ckpt", ckpt, "--data", trained.spec, "--out", npy);
        expect_error_line(&r, 1, ckpt, damage_words(main_damages[k]), NULL);
        ck_assert_msg(file_holds(npy, earlier, sizeof earlier - 1), "%s changed %s", r.command,
                      npy);
        free_result(&r);
    }
    test_remove_tree(dir);
}
END_TEST

/* A run directory DIR/name with the trained run's log, and its checkpoint unless
 * with_checkpoint is 0 (the caller writes one). */
static void copy_run(const char *dir, const char *name, char *run, char *ckpt, char *log,
                     int with_checkpoint)
{
    test_join(run, dir, name);
    ck_assert_int_eq(mkdir(run, 0700), 0);
    test_join(ckpt, run, "model.ckpt");
    test_join(log, run, "train.tsv");
    if (with_checkpoint) test_copy_file(trained.ckpt, ckpt);
    test_copy_file(trained.log, log);
}

/* --resume from a damaged checkpoint fails naming it, and loses nothing: the checkpoint and the
 * log are byte for byte what they were. */
START_TEST(test_resume_damaged_checkpoint_loses_nothing)
{
    if (!require_trained()) return;
    char dir[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    for (int k = 0; k < NMAIN_DAMAGES; k++) {
        char name[32], run[TEST_PATH_SIZE], ckpt[TEST_PATH_SIZE], log[TEST_PATH_SIZE];
        snprintf(name, sizeof name, "run%d", k);
        copy_run(dir, name, run, ckpt, log, 0);
        size_t n;
        const unsigned char *written = write_damaged(ckpt, main_damages[k], &n);
        run_result r;
        RUN(&r, QUICK_SECONDS, "train", "--data", trained.spec, "--out", run, "--epochs", "2",
            "--resume");
        expect_error_line(&r, 1, ckpt, damage_words(main_damages[k]), NULL);
        ck_assert_msg(file_holds(ckpt, written, n), "%s changed the damaged checkpoint",
                      r.command);
        ck_assert_msg(test_same_file(log, trained.log), "%s changed the log", r.command);
        free_result(&r);
    }
    test_remove_tree(dir);
}
END_TEST

/* A failing command run on a good run directory leaves its checkpoint and log as they were:
 * bad options with --resume, bad data with --resume, and bad data without it. */
START_TEST(test_failing_train_keeps_the_run)
{
    if (!require_trained()) return;
    char dir[TEST_PATH_SIZE], run[TEST_PATH_SIZE], ckpt[TEST_PATH_SIZE], log[TEST_PATH_SIZE];
    char bad[TEST_PATH_SIZE], bad_spec[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    copy_run(dir, "run", run, ckpt, log, 1);
    test_join(bad, dir, "bad-data");
    ck_assert_int_eq(mkdir(bad, 0700), 0);
    make_truncated_images(bad);
    ck_assert_int_lt(snprintf(bad_spec, sizeof bad_spec, "mnist:%s", bad), (int)sizeof bad_spec);

    run_result r;
    RUN(&r, QUICK_SECONDS, "train", "--data", trained.spec, "--out", run, "--resume", "--batch",
        "abc");
    expect_usage_error(&r, "--batch", NULL);
    free_result(&r);
    ck_assert_msg(test_same_file(ckpt, trained.ckpt), "a refused --resume changed the checkpoint");
    ck_assert_msg(test_same_file(log, trained.log), "a refused --resume changed the log");

    RUN(&r, QUICK_SECONDS, "train", "--data", bad_spec, "--out", run, "--epochs", "2",
        "--resume");
    expect_no_crash(&r);
    ck_assert_msg(r.status == 1 || r.status == 2, "%s: exit status %d\n%s", r.command, r.status,
                  r.err);
    free_result(&r);
    ck_assert_msg(test_same_file(ckpt, trained.ckpt), "a failed --resume changed the checkpoint");
    ck_assert_msg(test_same_file(log, trained.log), "a failed --resume changed the log");

    char batch[16];
    snprintf(batch, sizeof batch, "%d", FIXTURE_BATCH);
    RUN(&r, QUICK_SECONDS, "train", "--data", bad_spec, "--out", run, "--epochs", "1", "--batch",
        batch);
    expect_no_crash(&r);
    ck_assert_msg(r.status == 1 || r.status == 2, "%s: exit status %d\n%s", r.command, r.status,
                  r.err);
    free_result(&r);
    ck_assert_msg(test_same_file(ckpt, trained.ckpt), "a failed train changed the checkpoint");
    ck_assert_msg(test_same_file(log, trained.log), "a failed train changed the log");
    test_remove_tree(dir);
}
END_TEST

/* The checkpoint's model takes 28x28 images: data of another size is refused (as a usage or a
 * data error: it is the pair --ckpt, --data that does not fit), naming the size. */
START_TEST(test_eval_data_of_another_shape)
{
    REQUIRE_COMMAND("eval");
    if (!require_trained()) return;
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE];
    test_make_temp_dir(dir, "cli");
    test_write_mnist(dir, "train", TRAIN_IMAGES, 10, 0);
    test_write_mnist(dir, "t10k", TRAIN_IMAGES, 10, 0);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "mnist:%s", dir), (int)sizeof spec);
    run_result r;
    RUN(&r, QUICK_SECONDS, "eval", "--ckpt", trained.ckpt, "--data", spec);
    expect_no_crash(&r);
    ck_assert_msg(r.status == 1 || r.status == 2, "%s: exit status %d (1 or 2 expected)\n%s",
                  r.command, r.status, r.err);
    const char *words[] = {"10x10||10 x 10||10, 10"};
    size_t length;
    ck_assert_msg(line_with(r.err, words, 1, &length) != NULL,
                  "%s: no line of stderr names the images' size\n%s", r.command, r.err);
    free_result(&r);
    test_remove_tree(dir);
}
END_TEST

Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *usage = tcase_create("usage");
    tcase_add_test(usage, test_help_lists_the_commands);
    tcase_add_test(usage, test_no_command);
    tcase_add_test(usage, test_unknown_command);
    tcase_add_test(usage, test_every_command_has_help);
    tcase_add_test(usage, test_mlp_refuses_options);
    tcase_add_test(usage, test_graph_bad_options);
    tcase_add_test(usage, test_mi_bench_bad_options);
    tcase_add_test(usage, test_mi_bench_unwritable_output);
    tcase_add_test(usage, test_train_bad_options);
    tcase_add_test(usage, test_eval_bad_options);
    tcase_add_test(usage, test_embed_bad_options);
    tcase_set_timeout(usage, 300);
    tcase_add_unchecked_fixture(usage, begin_scratch, test_scratch_end);
    suite_add_tcase(s, usage);

    TCase *data = tcase_create("data files");
    tcase_add_test(data, test_train_missing_data);
    tcase_add_test(data, test_train_truncated_data);
    tcase_add_test(data, test_train_corrupt_data);
    tcase_add_test(data, test_train_images_of_another_size);
    tcase_add_test(data, test_train_batch_larger_than_dataset);
    tcase_add_test(data, test_train_resume_without_checkpoint);
    tcase_add_test(data, test_train_unwritable_output);
    tcase_set_timeout(data, 300);
    tcase_add_unchecked_fixture(data, begin_scratch, test_scratch_end);
    suite_add_tcase(s, data);

    TCase *checkpoints = tcase_create("checkpoints");
    tcase_add_unchecked_fixture(checkpoints, make_trained_run, remove_trained_run);
    tcase_add_test(checkpoints, test_eval_damaged_checkpoints);
    tcase_add_test(checkpoints, test_embed_damaged_checkpoints);
    tcase_add_test(checkpoints, test_resume_damaged_checkpoint_loses_nothing);
    tcase_add_test(checkpoints, test_failing_train_keeps_the_run);
    tcase_add_test(checkpoints, test_eval_data_of_another_shape);
    tcase_set_timeout(checkpoints, 600);
    suite_add_tcase(s, checkpoints);
    return s;
}
