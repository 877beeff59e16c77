/* cmd_graph.c -- dim graph: one part of the DIM objective, drawn as Graphviz DOT.
 * Tangled from doc/25-graph.nw: edit the book, not this file. */
#include <stdio.h>
#include <string.h>

#include "dim.h"
#include "cli.h"

enum { GRAPH_BATCH = 4, GRAPH_SEED = 1 };

static void list_estimators(FILE *out)
{
    for (int i = 0; i < dim_nbounds; i++)
        fprintf(out, "%s%s", i ? ", " : "", dim_bounds[i].name);
}

static void graph_usage(FILE *out)
{
    fprintf(out, "usage: dim graph --estimator NAME [--mode local|global|prior|all] "
                 "[--critic dot|concat]\n\n"
                 "Writes the graph of one part of the DIM objective (Eq. 8), recorded on a batch\n"
                 "of %d random 1x28x28 images, as Graphviz DOT on standard output:\n"
                 "  dim graph --estimator jsd --mode local | dot -Tsvg > local.svg\n\n"
                 "  --estimator NAME  the mutual-information bound: ", GRAPH_BATCH);
    list_estimators(out);
    fprintf(out, "\n"
                 "  --mode MODE       local (default), global, prior, or all (dim-lg weights)\n"
                 "  --critic KIND     the local critic: dot (default) or concat\n");
}
typedef struct graph_options {
    const dim_bound *bound;
    const char *mode;           /* "local", "global", "prior" or "all" */
    dim_local_kind local_kind;
} graph_options;

/* Fill o from argv; returns -1 (exit 0, usage printed) for --help, DIM_EXIT_USAGE after one
 * line on stderr for a mistake, or 0. */
static int read_graph_options(int argc, char **argv, graph_options *o)
{
    const char *estimator = NULL, *critic = "dot";
    o->mode = "local";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            graph_usage(stdout);
            return -1;
        }
        if (strcmp(arg, "--estimator") != 0 && strcmp(arg, "--mode") != 0
            && strcmp(arg, "--critic") != 0) {
            fprintf(stderr, "dim graph: unknown option '%s' (dim graph --help)\n", arg);
            return DIM_EXIT_USAGE;
        }
        if (i + 1 == argc) {
            fprintf(stderr, "dim graph: %s needs a value (dim graph --help)\n", arg);
            return DIM_EXIT_USAGE;
        }
        const char *value = argv[++i];
        if (strcmp(arg, "--estimator") == 0) estimator = value;
        else if (strcmp(arg, "--mode") == 0) o->mode = value;
        else critic = value;
    }
    if (estimator == NULL || (o->bound = dim_bound_find(estimator)) == NULL) {
        if (estimator == NULL) fprintf(stderr, "dim graph: --estimator NAME is required (");
        else fprintf(stderr, "dim graph: unknown estimator '%s' (expected ", estimator);
        list_estimators(stderr);
        fprintf(stderr, ")\n");
        return DIM_EXIT_USAGE;
    }
    if (strcmp(o->mode, "local") != 0 && strcmp(o->mode, "global") != 0
        && strcmp(o->mode, "prior") != 0 && strcmp(o->mode, "all") != 0) {
        fprintf(stderr, "dim graph: unknown mode '%s' (expected local, global, prior or all)\n",
                o->mode);
        return DIM_EXIT_USAGE;
    }
    if (strcmp(critic, "dot") == 0) o->local_kind = DIM_LOCAL_DOT;
    else if (strcmp(critic, "concat") == 0) o->local_kind = DIM_LOCAL_CONCAT;
    else {
        fprintf(stderr, "dim graph: unknown critic '%s' (expected dot or concat)\n", critic);
        return DIM_EXIT_USAGE;
    }
    return 0;
}
int dim_cmd_graph(int argc, char **argv)
{
    graph_options opt;
    int status = read_graph_options(argc, argv, &opt);
    if (status != 0) return status < 0 ? DIM_EXIT_OK : status;

    dim_objective objective;
    dim_objective_preset(&objective, "dim-lg");  /* "all": Eq. 8 with the dim-lg weights */
    objective.bound = opt.bound;
    objective.local_kind = opt.local_kind;
    if (strcmp(opt.mode, "all") != 0) {
        objective.alpha = strcmp(opt.mode, "global") == 0;
        objective.beta = strcmp(opt.mode, "local") == 0;
        objective.gamma = strcmp(opt.mode, "prior") == 0;
    }

    dim_config config;
    dim_config_for_input(&config, 1, 28, 28);
    dim_model model;
    dim_model_init(&model, &config, GRAPH_SEED);
    ag_rng rng;
    ag_rng_seed(&rng, GRAPH_SEED);
    dim_bound_state global_state, local_state;
    dim_bound_state_init(&global_state);
    dim_bound_state_init(&local_state);

    ag_tape *t = ag_tape_new_growing((size_t)1 << 30);
    ag_tape_set_training(t, 1);
    ag_tensor *images = ag_tensor_new(t, AG_SHAPE(GRAPH_BATCH, 1, 28, 28)); /* [N, 1, 28, 28] */
    ag_fill_uniform(images, &rng, 0, 1);
    dim_objective_graph(t, &model, &objective, images, &rng, &global_state, &local_state);

    char title[160];
    snprintf(title, sizeof title, "DIM objective: %s%s, %s bound%s%s, 1x28x28 input, N = %d",
             opt.mode, strcmp(opt.mode, "all") == 0 ? " (dim-lg weights)" : " term",
             opt.bound->name, objective.beta != 0 ? ", local critic " : "",
             objective.beta != 0 ? (opt.local_kind == DIM_LOCAL_DOT ? "dot" : "concat") : "",
             GRAPH_BATCH);
    ag_tape_write_dot(t, stdout, title);
    ag_tape_free(t);
    dim_model_free(&model);
    return fflush(stdout) == 0 ? DIM_EXIT_OK : DIM_EXIT_DATA;
}
