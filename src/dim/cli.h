/* cli.h -- the subcommands of the dim program.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#ifndef DIM_CLI_H
#define DIM_CLI_H

enum { DIM_EXIT_OK = 0, DIM_EXIT_DATA = 1, DIM_EXIT_USAGE = 2 };

int dim_cmd_graph(int argc, char **argv);
int dim_cmd_train(int argc, char **argv);

struct dim_config;
/* The options of dim train (doc/32-train.nw). Unset: NULL, NAN, 0 or -1 as marked. */
typedef struct dim_train_options {
    const char *data;          /* --data SPEC; NULL: required unless resuming */
    const char *preset;        /* --preset; NULL: dim-l */
    double alpha, beta, gamma; /* --alpha, --beta, --gamma; NAN: the preset's */
    const char *estimator;     /* --estimator; NULL: infonce */
    const char *local_critic;  /* --local-critic dot|concat; NULL: dot */
    int epochs;                /* --epochs; 0: 2 (resuming: the run's) */
    int batch;                 /* --batch; 0: 64 */
    double lr;                 /* --lr; NAN: 5e-4 */
    int seed;                  /* --seed; -1: 0 */
    int threads;               /* --threads; 0: OpenMP's default */
    const char *out;           /* --out DIR; NULL: "run" */
    int resume;                /* --resume: continue from DIR/model.ckpt */
    int limit;                 /* --limit K: the first K images only; 0: all */
    int log_every;             /* --log-every N steps; 0: 25 */
    int quiet;                 /* 1: nothing on stderr but errors (tests) */
    const struct dim_config *config; /* NULL: the paper's configuration for the images */
} dim_train_options;

/* Every option unset. */
void dim_train_options_init(dim_train_options *o);
/* Train (or resume) as o says; prints problems on stderr. Returns DIM_EXIT_OK, DIM_EXIT_DATA
 * (a file is missing or corrupt, a checkpoint cannot be written) or DIM_EXIT_USAGE. */
int dim_train_run(const dim_train_options *o);
int dim_cmd_eval(int argc, char **argv);
int dim_cmd_embed(int argc, char **argv);
int dim_cmd_mi_bench(int argc, char **argv);
int dim_cmd_mlp(int argc, char **argv);
typedef enum dim_option_kind { DIM_OPT_INT, DIM_OPT_DOUBLE, DIM_OPT_STRING, DIM_OPT_FLAG } dim_option_kind;

typedef struct dim_option {
    const char *name;      /* "batch", given as --batch */
    dim_option_kind kind;
    void *target;          /* int *, double *, const char ** or int * (a flag: set to 1) */
    double min, max;       /* the allowed range of a number */
    const char *help;      /* "N   batch size (default 64)" */
} dim_option;

/* Parse argv[1..argc-1] against the table. Returns 0 when every option was understood,
 * DIM_PARSED_HELP after printing help for --help, or DIM_EXIT_USAGE after printing one
 * line that names the problem and the usage line. */
enum { DIM_PARSED_HELP = -1 };
int dim_parse_options(const char *command, const char *usage, const dim_option *options,
                      int noptions, int argc, char **argv);

#endif
