/* cli.h -- the subcommands of the dim program.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#ifndef DIM_CLI_H
#define DIM_CLI_H

enum { DIM_EXIT_OK = 0, DIM_EXIT_DATA = 1, DIM_EXIT_USAGE = 2 };

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
