/* test_dot.c -- the Graphviz drawing of a tape (doc/17-dot.nw): what it contains, that names
 * are escaped, and, where Graphviz is installed, that dot -Tsvg accepts it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/autograd/ag.h"
#include "suites.h"

/* The DOT text of tape t, in memory the caller frees. */
static char *dot_text(const ag_tape *t, const char *title)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    ck_assert_ptr_nonnull(out);
    ag_tape_write_dot(t, out, title);
    ck_assert_int_eq(fclose(out), 0);
    return text;
}

static int occurrences(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) n++;
    return n;
}

#define ASSERT_HAS(text, needle)                                                         \
    ck_assert_msg(strstr(text, needle) != NULL, "expected the DOT output to contain %s", \
                  needle)

/* A tiny step: a weight shared by two ops, batch norm with its buffers, dropout, a sum. */
typedef struct tiny_graph {
    ag_params ps;
    ag_tape *t;
} tiny_graph;

static void tiny_graph_record(tiny_graph *g, const char *weight_name)
{
    memset(&g->ps, 0, sizeof g->ps);
    ag_tensor *w = ag_param_new(&g->ps, weight_name, AG_SHAPE(3));
    ag_tensor *gamma = ag_param_new(&g->ps, "bn.gamma", AG_SHAPE(3));
    ag_tensor *beta = ag_param_new(&g->ps, "bn.beta", AG_SHAPE(3));
    ag_tensor *mean = ag_buffer_new(&g->ps, "bn.running_mean", AG_SHAPE(3));
    ag_tensor *var = ag_buffer_new(&g->ps, "bn.running_var", AG_SHAPE(3));
    ag_fill(w, 0.5);
    ag_fill(gamma, 1);
    ag_fill(var, 1);
    g->t = ag_tape_new(1 << 16);
    ag_rng rng;
    ag_rng_seed(&rng, 1);
    ag_tensor *x = ag_tensor_new(g->t, AG_SHAPE(4, 3));
    ag_fill_uniform(x, &rng, -1, 1);
    ag_tensor *h = ag_mul(g->t, x, w);                               /* op 0: 2 inputs */
    h = ag_add(g->t, h, w);                                          /* op 1: 2 inputs */
    h = ag_batch_norm(g->t, h, gamma, beta, mean, var, 0.1, 1e-5);   /* op 2: 5 inputs */
    h = ag_dropout(g->t, h, 0.5, &rng);                              /* op 3: 1 input */
    ag_sum(g->t, h);                                                 /* op 4: 1 input */
}

static void tiny_graph_free(tiny_graph *g)
{
    ag_tape_free(g->t);
    ag_params_free(&g->ps);
}

START_TEST(test_dot_names_ops_parameters_and_buffers)
{
    tiny_graph g;
    tiny_graph_record(&g, "enc.weight");
    char *text = dot_text(g.t, "a tiny step");
    ck_assert_msg(strncmp(text, "digraph tape {\n", 15) == 0, "starts with: %.20s", text);
    ck_assert_msg(strcmp(text + strlen(text) - 2, "}\n") == 0, "must end with }");
    ASSERT_HAS(text, "label=\"a tiny step\"");
    ASSERT_HAS(text, "label=\"mul\"");
    ASSERT_HAS(text, "label=\"add\"");
    ASSERT_HAS(text, "label=\"batch_norm\\ntraining=1 momentum=0.1 eps=1e-05\"");
    ASSERT_HAS(text, "label=\"dropout\\nmasked=1 p=0.5\"");
    ASSERT_HAS(text, "label=\"sum\"");
    ASSERT_HAS(text, "label=\"enc.weight\\n[3]\"");
    ASSERT_HAS(text, "label=\"bn.gamma\\n[3]\"");
    ASSERT_HAS(text, "label=\"bn.running_mean\\n[3]\"");
    ASSERT_HAS(text, "label=\"bn.running_var\\n[3]\"");
    ASSERT_HAS(text, "label=\"[4, 3]\"");  /* the input and the activations */
    ASSERT_HAS(text, "label=\"[]\"");      /* the scalar sum */
    /* a weight read by two ops is drawn once, with an edge to each */
    ck_assert_int_eq(occurrences(text, "enc.weight"), 1);
    ck_assert_int_eq(occurrences(text, "leaf1 -> op"), 2);
    /* parameters are filled boxes, buffers dashed boxes, the input a dashed ellipse */
    ck_assert_int_eq(occurrences(text, "fillcolor=\"#a6cee3\""), 3);
    ck_assert_int_eq(occurrences(text, "style=\"filled,dashed\""), 2);
    ck_assert_int_eq(occurrences(text, "shape=ellipse, style=dashed"), 1);
    /* one edge per input of every op, and one from every op to its output */
    ck_assert_int_eq(occurrences(text, "->"), (2 + 2 + 5 + 1 + 1) + 5);
    ck_assert_int_eq(occurrences(text, "style=rounded"), 5);
    free(text);
    tiny_graph_free(&g);
}
END_TEST

START_TEST(test_dot_escapes_quotes_backslashes_and_newlines)
{
    tiny_graph g;
    tiny_graph_record(&g, "say \"hi\"\\now\nnext");
    char *text = dot_text(g.t, "title with \"quotes\"");
    ASSERT_HAS(text, "label=\"say \\\"hi\\\"\\\\now\\nnext\\n[3]\"");
    ASSERT_HAS(text, "label=\"title with \\\"quotes\\\"\"");
    free(text);
    tiny_graph_free(&g);
}
END_TEST

START_TEST(test_dot_of_an_empty_tape_is_an_empty_graph)
{
    ag_tape *t = ag_tape_new(1 << 12);
    char *text = dot_text(t, NULL);
    ASSERT_HAS(text, "digraph tape {\n");
    ck_assert_int_eq(occurrences(text, "->"), 0);
    ck_assert_int_eq(occurrences(text, "label="), 0);
    free(text);
    ag_tape_free(t);
}
END_TEST

/* The drawing must render. Skipped (and said so) where Graphviz is not installed. */
START_TEST(test_dot_is_accepted_by_graphviz)
{
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_dot: Graphviz's dot is not installed; skipping the render check\n");
        return;
    }
    tiny_graph g;
    tiny_graph_record(&g, "odd \"name\" \\ with\nall the specials {|<>}");
    char dir[] = "/tmp/dim-test-dot-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char gv[64], svg[64], err[64], command[256];
    snprintf(gv, sizeof gv, "%s/g.gv", dir);
    snprintf(svg, sizeof svg, "%s/g.svg", dir);
    snprintf(err, sizeof err, "%s/err.txt", dir);
    FILE *out = fopen(gv, "w");
    ck_assert_ptr_nonnull(out);
    ag_tape_write_dot(g.t, out, "render \"check\"");
    ck_assert_int_eq(fclose(out), 0);
    snprintf(command, sizeof command, "dot -Tsvg '%s' -o '%s' 2>'%s'", gv, svg, err);
    int status = system(command);

    FILE *in = fopen(err, "r");
    char complaint[512] = "";
    if (in) {
        size_t n = fread(complaint, 1, sizeof complaint - 1, in);
        complaint[n] = '\0';
        fclose(in);
    }
    char head[4096] = "";
    in = fopen(svg, "r");
    if (in) {
        size_t n = fread(head, 1, sizeof head - 1, in);
        head[n] = '\0';
        fclose(in);
    }
    remove(gv);
    remove(svg);
    remove(err);
    rmdir(dir);
    ck_assert_msg(status == 0, "dot -Tsvg failed: %s", complaint);
    ck_assert_msg(complaint[0] == '\0', "dot -Tsvg complained: %s", complaint);
    ASSERT_HAS(head, "<svg");
    tiny_graph_free(&g);
}
END_TEST

Suite *dot_suite(void)
{
    Suite *s = suite_create("dot");
    TCase *dot = tcase_create("dot");
    tcase_add_test(dot, test_dot_names_ops_parameters_and_buffers);
    tcase_add_test(dot, test_dot_escapes_quotes_backslashes_and_newlines);
    tcase_add_test(dot, test_dot_of_an_empty_tape_is_an_empty_graph);
    tcase_add_test(dot, test_dot_is_accepted_by_graphviz);
    suite_add_tcase(s, dot);
    return s;
}
