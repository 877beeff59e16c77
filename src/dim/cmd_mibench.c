/* cmd_mibench.c -- dim mi-bench: the estimator lab's command line.
 * Tangled from doc/40-estimator-lab.nw: edit the book, not this file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"
#include "dim.h"

/* Split a comma-separated list in place into at most max items; -1 if there are more, or an
 * item is empty. */
static int split_list(char *list, char **items, int max)
{
    int n = 0;
    for (char *item = list;; item++) {
        char *comma = strchr(item, ',');
        if (comma) *comma = '\0';
        if (*item == '\0' || n == max) return -1;
        items[n++] = item;
        if (!comma) return n;
        item = comma;
    }
}

static int parse_estimators(char *list, dim_mibench_config *c)
{
    char *items[DIM_MIBENCH_MAX_ESTIMATORS];
    int n = split_list(list, items, DIM_MIBENCH_MAX_ESTIMATORS);
    if (n < 0) {
        fprintf(stderr, "dim mi-bench: --estimators: a comma-separated list of at most %d names\n",
                DIM_MIBENCH_MAX_ESTIMATORS);
        return -1;
    }
    for (int e = 0; e < n; e++) {
        if (dim_bound_find(items[e]) == NULL) {
            fprintf(stderr, "dim mi-bench: --estimators: no bound named '%s' (there are:", items[e]);
            for (int b = 0; b < dim_nbounds; b++) fprintf(stderr, " %s", dim_bounds[b].name);
            fprintf(stderr, ")\n");
            return -1;
        }
        for (int f = 0; f < e; f++)
            if (strcmp(items[f], items[e]) == 0) {
                fprintf(stderr, "dim mi-bench: --estimators: '%s' is listed twice\n", items[e]);
                return -1;
            }
        c->estimators[e] = items[e];
    }
    c->nestimators = n;
    return 0;
}

static int parse_levels(char *list, dim_mibench_config *c)
{
    char *items[DIM_MIBENCH_MAX_LEVELS];
    int n = split_list(list, items, DIM_MIBENCH_MAX_LEVELS);
    for (int k = 0; k < n; k++) {
        char *end;
        double mi = strtod(items[k], &end);
        if (end == items[k] || *end != '\0' || !(mi >= 0 && mi <= 100)) n = -1;
        else c->levels[k] = mi;
    }
    if (n < 0) {
        fprintf(stderr, "dim mi-bench: --levels: a comma-separated list of at most %d "
                "numbers of nats in [0, 100]\n", DIM_MIBENCH_MAX_LEVELS);
        return -1;
    }
    c->nlevels = n;
    return 0;
}
static int make_directory(const char *path)
{
    char partial[4096];
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof partial) return -1;
    for (size_t k = 1; k <= length; k++)
        if (k == length || path[k] == '/') {
            memcpy(partial, path, k);
            partial[k] = '\0';
            if (mkdir(partial, 0777) != 0 && errno != EEXIST) return -1;
        }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}
static int gnuplot_installed(void)
{
    const char *path = getenv("PATH");
    char candidate[4096];
    while (path && *path) {
        size_t length = strcspn(path, ":");
        if (length > 0 && length + sizeof "/gnuplot" < sizeof candidate) {
            memcpy(candidate, path, length);
            strcpy(candidate + length, "/gnuplot");
            if (access(candidate, X_OK) == 0) return 1;
        }
        path += length + (path[length] == ':');
    }
    return 0;
}

static void gnuplot_string(FILE *gp, const char *text)
{
    fputc('\'', gp);
    for (; *text; text++) {
        if (*text == '\'') fputc('\'', gp);
        fputc(*text, gp);
    }
    fputc('\'', gp);
}

static void draw_figure(const char *script, const char *dir, const char *steps_path, int batch,
                        int steps_per_level)
{
    if (!gnuplot_installed()) {
        fprintf(stderr, "dim mi-bench: gnuplot is not installed, so no figure was drawn "
                "(make deps installs it; %s draws one from %s)\n", script, steps_path);
        return;
    }
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "dim mi-bench: no plot script at %s, so no figure was drawn "
                "(run from the project's root or give --plot-script FILE)\n", script);
        return;
    }
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s/mi_bench", dir);
    fflush(stdout);
    FILE *gp = popen("gnuplot", "w");
    if (gp == NULL) {
        fprintf(stderr, "dim mi-bench: could not start gnuplot: %s\n", strerror(errno));
        return;
    }
    fputs("steps = ", gp);
    gnuplot_string(gp, steps_path);
    fputs("\nout = ", gp);
    gnuplot_string(gp, prefix);
    fprintf(gp, "\nbatch = %d\nsteps_per_level = %d\nload ", batch, steps_per_level);
    gnuplot_string(gp, script);
    fputc('\n', gp);
    if (pclose(gp) != 0)
        fprintf(stderr, "dim mi-bench: gnuplot failed on %s; the tables are written\n", script);
    else
        fprintf(stderr, "dim mi-bench: figure in %s.png and %s.svg\n", prefix, prefix);
}

int dim_cmd_mi_bench(int argc, char **argv)
{
    static const char usage[] =
        "[--estimators LIST] [--critic separable|concat] [--steps-per-level N] [--batch N] "
        "[--seed S] [--out DIR] [--short] [more: --help]";
    dim_mibench_config c;
    dim_mibench_defaults(&c);
    const char *estimators = NULL, *levels = NULL, *critic = "separable", *dir = "mi_bench",
               *script = "experiments/mi_bench.gp";
    int steps = 0, seed = 0, short_mode = 0;
    const dim_option options[] = {
        {"estimators", DIM_OPT_STRING, &estimators, 0, 0,
         "LIST    bounds to compare (default infonce,dv,nwj,mine,smile,jsd)"},
        {"critic", DIM_OPT_STRING, &critic, 0, 0,
         "KIND    separable, g(x)'h(y) (default), or concat, one MLP on [x, y] (~20x slower)"},
        {"steps-per-level", DIM_OPT_INT, &steps, 1, 10000000,
         "N       training steps at each MI level (default 4000; 300 with --short)"},
        {"batch", DIM_OPT_INT, &c.batch, 2, 1024, "N       samples per step (default 64)"},
        {"seed", DIM_OPT_INT, &seed, 0, 2147483647,
         "S       seed of the samples and the initial critics (default 0)"},
        {"out", DIM_OPT_STRING, &dir, 0, 0,
         "DIR     where the per-step TSV and the figure go (default mi_bench)"},
        {"short", DIM_OPT_FLAG, &short_mode, 0, 0,
         "        the short mode: levels 2,8 of 300 steps (seconds; for tests)"},
        {"levels", DIM_OPT_STRING, &levels, 0, 0,
         "LIST    true MI of the levels in nats (default 2,4,6,8,10)"},
        {"lr", DIM_OPT_DOUBLE, &c.lr, 1e-7, 1, "X       Adam's learning rate (default 5e-4)"},
        {"mine-rate", DIM_OPT_DOUBLE, &c.mine_rate, 1e-6, 1,
         "X       MINE's moving-average rate (default 0.01)"},
        {"smile-tau", DIM_OPT_DOUBLE, &c.smile_tau, 1e-3, 1000,
         "X       SMILE's clip (default 5)"},
        {"threads", DIM_OPT_INT, &c.threads, 0, 1024,
         "N       estimators trained at once (default 0: one per core)"},
        {"plot-script", DIM_OPT_STRING, &script, 0, 0,
         "FILE    the gnuplot script (default experiments/mi_bench.gp)"},
    };
    int parsed = dim_parse_options("mi-bench", usage, options,
                                   (int)(sizeof options / sizeof options[0]), argc, argv);
    if (parsed == DIM_PARSED_HELP) return DIM_EXIT_OK;
    if (parsed != 0) return parsed;
    static char estimator_list[1024], level_list[1024];
    if (short_mode) dim_mibench_short(&c);
    if (steps > 0) c.steps_per_level = steps;
    c.seed = (uint64_t)seed;
    if (strcmp(critic, "separable") == 0) c.critic = DIM_CRITIC_SEPARABLE;
    else if (strcmp(critic, "concat") == 0) c.critic = DIM_CRITIC_CONCAT;
    else {
        fprintf(stderr, "dim mi-bench: --critic: separable or concat, not '%s'\nusage: dim mi-bench %s\n",
                critic, usage);
        return DIM_EXIT_USAGE;
    }
    if (estimators != NULL) {
        snprintf(estimator_list, sizeof estimator_list, "%s", estimators);
        if (parse_estimators(estimator_list, &c) != 0) {
            fprintf(stderr, "usage: dim mi-bench %s\n", usage);
            return DIM_EXIT_USAGE;
        }
    }
    if (levels != NULL) {
        snprintf(level_list, sizeof level_list, "%s", levels);
        if (parse_levels(level_list, &c) != 0) {
            fprintf(stderr, "usage: dim mi-bench %s\n", usage);
            return DIM_EXIT_USAGE;
        }
    }
    if (make_directory(dir) != 0) {
        fprintf(stderr, "dim mi-bench: cannot make the directory %s: %s\n", dir, strerror(errno));
        return DIM_EXIT_DATA;
    }
    c.progress = stderr;

    dim_mibench_result r;
    dim_mibench_run(&c, &r);

    char steps_path[4096];
    snprintf(steps_path, sizeof steps_path, "%s/mi_bench_steps.tsv", dir);
    FILE *out = fopen(steps_path, "w");
    if (out == NULL) {
        fprintf(stderr, "dim mi-bench: cannot write %s: %s\n", steps_path, strerror(errno));
        dim_mibench_free(&r);
        return DIM_EXIT_DATA;
    }
    dim_mibench_write_steps(out, &c, &r);
    if (fclose(out) != 0) {
        fprintf(stderr, "dim mi-bench: writing %s failed: %s\n", steps_path, strerror(errno));
        dim_mibench_free(&r);
        return DIM_EXIT_DATA;
    }
    dim_mibench_write_summary(stdout, &c, &r);
    draw_figure(script, dir, steps_path, c.batch, c.steps_per_level);
    dim_mibench_free(&r);
    return DIM_EXIT_OK;
}
