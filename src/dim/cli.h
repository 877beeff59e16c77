/* cli.h -- the subcommands of the dim program.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#ifndef DIM_CLI_H
#define DIM_CLI_H

enum { DIM_EXIT_OK = 0, DIM_EXIT_DATA = 1, DIM_EXIT_USAGE = 2 };

int dim_cmd_mlp(int argc, char **argv);

#endif
