/* main.c -- the dim program: a table of subcommands.
 * Tangled from doc/50-program.nw: edit the book, not this file. */
#include <stdio.h>
#include <string.h>

#include "../autograd/ag.h"
#include "cli.h"

typedef struct dim_command {
    const char *name;
    int (*run)(int argc, char **argv);  /* argv[0] is the subcommand's name */
    const char *summary;
} dim_command;

static const dim_command commands[] = {
    {"graph", dim_cmd_graph, "write the graph of a DIM objective as Graphviz DOT"},
    {"train", dim_cmd_train, "train DIM on a dataset (checkpoints, a TSV log, --resume)"},
    {"eval", dim_cmd_eval, "probe accuracy of frozen features (conv, fc, y) and baselines"},
    {"embed", dim_cmd_embed, "write the features of a dataset as a NumPy .npy file"},
    {"mi-bench", dim_cmd_mi_bench, "MI estimators on correlated Gaussians of known MI (Poole et al.)"},
    {"mlp", dim_cmd_mlp, "train a small MLP on three spirals (the engine's first example)"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out)
{
    fprintf(out, "usage: dim COMMAND [OPTIONS]   (dim COMMAND --help for its options)\n\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DIM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dim: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return DIM_EXIT_USAGE;
}
