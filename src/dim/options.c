/* options.c -- table-driven option parsing for the dim subcommands.
 * Tangled from doc/50-program.nw: edit the book, not this file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_help(FILE *out, const char *command, const char *usage,
                       const dim_option *options, int noptions)
{
    fprintf(out, "usage: dim %s %s\n", command, usage);
    for (int i = 0; i < noptions; i++)
        fprintf(out, "  --%-16s %s\n", options[i].name, options[i].help);
}

static int refuse(const char *command, const char *usage, const char *name, const char *problem,
                  const char *value)
{
    if (name && value)
        fprintf(stderr, "dim %s: --%s: %s: '%s'\n", command, name, problem, value);
    else if (name)
        fprintf(stderr, "dim %s: --%s: %s\n", command, name, problem);
    else
        fprintf(stderr, "dim %s: %s\n", command, problem);
    fprintf(stderr, "usage: dim %s %s\n", command, usage);
    return DIM_EXIT_USAGE;
}

static int parse_number(const dim_option *o, const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v)) return 0;
    if (o->kind == DIM_OPT_INT && v != floor(v)) return 0;
    *out = v;
    return 1;
}

int dim_parse_options(const char *command, const char *usage, const dim_option *options,
                      int noptions, int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(stdout, command, usage, options, noptions);
            return DIM_PARSED_HELP;
        }
        if (strncmp(arg, "--", 2) != 0)
            return refuse(command, usage, NULL, "unexpected argument (options start with --)", NULL);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const dim_option *o = NULL;
        for (int i = 0; i < noptions; i++)
            if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
                o = &options[i];
        if (o == NULL) {
            char unknown[128];
            snprintf(unknown, sizeof unknown, "unknown option '--%.*s'", (int)len, name);
            return refuse(command, usage, NULL, unknown, NULL);
        }
        if (o->kind == DIM_OPT_FLAG) {
            if (eq) return refuse(command, usage, o->name, "takes no value", eq + 1);
            *(int *)o->target = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (value == NULL) return refuse(command, usage, o->name, "needs a value", NULL);
        if (o->kind == DIM_OPT_STRING) {
            if (*value == '\0') return refuse(command, usage, o->name, "needs a non-empty value", value);
            *(const char **)o->target = value;
            continue;
        }
        double v;
        if (!parse_number(o, value, &v))
            return refuse(command, usage, o->name,
                          o->kind == DIM_OPT_INT ? "not a whole number" : "not a number", value);
        if (v < o->min || v > o->max) {
            char range[96];
            snprintf(range, sizeof range, "out of range [%g, %g]", o->min, o->max);
            return refuse(command, usage, o->name, range, value);
        }
        if (o->kind == DIM_OPT_INT) *(int *)o->target = (int)v;
        else *(double *)o->target = v;
    }
    return 0;
}
