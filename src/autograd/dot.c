/* dot.c -- the graph recorded on a tape, in the DOT language of Graphviz.
 * Tangled from doc/17-dot.nw: edit the book, not this file. */
#include "ag.h"

#include <stdlib.h>
#include <string.h>

/* Write s as a DOT quoted string, quotes included. */
static void write_dot_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            fputc('\\', out);
            fputc(*c, out);
        } else if (*c == '\n') {
            fputs("\\n", out);
        } else if (*c < 0x20 || *c == 0x7f) {
            fputc('?', out);
        } else {
            fputc(*c, out);
        }
    }
    fputc('"', out);
}
typedef struct op_attribute_names {
    const char *op;
    const char *iarg[AG_MAX_IARGS];  /* the name of iarg[k], or NULL: not drawn */
    const char *farg[AG_MAX_FARGS];  /* the name of farg[k], or NULL: not drawn */
} op_attribute_names;

static const op_attribute_names attribute_names[] = {
    {"scale", {NULL}, {"c"}},
    {"add_scalar", {NULL}, {"c"}},
    {"leaky_relu", {NULL}, {"slope"}},
    {"sum_axis", {"axis", "keepdim"}, {NULL}},
    {"mean_axis", {"axis", "keepdim"}, {NULL}},
    {"logsumexp", {"axis", "keepdim"}, {NULL}},
    {"log_softmax", {"axis"}, {NULL}},
    {"concat", {"axis"}, {NULL}},
    {"batch_norm", {"training"}, {"momentum", "eps"}},
    {"layer_norm", {NULL}, {"eps"}},
    {"dropout", {"masked"}, {"p"}},
};

static const op_attribute_names *attributes_of(const ag_op *op)
{
    for (size_t i = 0; i < sizeof attribute_names / sizeof attribute_names[0]; i++)
        if (strcmp(attribute_names[i].op, op->name) == 0) return &attribute_names[i];
    return NULL;
}
static void write_op_label(FILE *out, const ag_node *n)
{
    char label[256];
    int len = snprintf(label, sizeof label, "%s", n->op->name);
    const op_attribute_names *names = attributes_of(n->op);
    const char *separator = "\n";
    for (int k = 0; names && k < AG_MAX_IARGS && len < (int)sizeof label; k++)
        if (names->iarg[k]) {
            len += snprintf(label + len, sizeof label - (size_t)len, "%s%s=%d", separator,
                            names->iarg[k], n->iarg[k]);
            separator = " ";
        }
    for (int k = 0; names && k < AG_MAX_FARGS && len < (int)sizeof label; k++)
        if (names->farg[k]) {
            len += snprintf(label + len, sizeof label - (size_t)len, "%s%s=%g", separator,
                            names->farg[k], n->farg[k]);
            separator = " ";
        }
    write_dot_string(out, label);
}
typedef struct leaf_list {
    const ag_tensor **items;  /* [count] in the order the tape first reads them */
    int count, capacity;
} leaf_list;

/* The number of leaf x, adding it to the list if it is new; *is_new says which. */
static int leaf_number(leaf_list *leaves, const ag_tensor *x, int *is_new)
{
    for (int i = 0; i < leaves->count; i++)
        if (leaves->items[i] == x) {
            *is_new = 0;
            return i;
        }
    if (leaves->count == leaves->capacity) {
        int capacity = leaves->capacity ? 2 * leaves->capacity : 32;
        const ag_tensor **items = realloc(leaves->items, (size_t)capacity * sizeof *items);
        if (items == NULL) ag_fatal("ag_tape_write_dot: out of memory");
        leaves->items = items;
        leaves->capacity = capacity;
    }
    leaves->items[leaves->count] = x;
    *is_new = 1;
    return leaves->count++;
}
static void write_tensor_label(FILE *out, const ag_tensor *x)
{
    char label[256], shape[AG_SHAPE_STR_SIZE];
    ag_shape_str(x, shape);
    if (x->name)
        snprintf(label, sizeof label, "%s\n%s", x->name, shape);
    else
        snprintf(label, sizeof label, "%s", shape);
    write_dot_string(out, label);
}

static void write_leaf(FILE *out, int number, const ag_tensor *x)
{
    const char *look;
    if (x->tape == NULL && x->requires_grad)       /* a parameter */
        look = "shape=box, style=filled, fillcolor=\"#a6cee3\"";
    else if (x->tape == NULL)                      /* a buffer */
        look = "shape=box, style=\"filled,dashed\", fillcolor=\"#eeeeee\"";
    else                                           /* an input made on the tape */
        look = "shape=ellipse, style=dashed";
    fprintf(out, "  leaf%d [%s, label=", number, look);
    write_tensor_label(out, x);
    fputs("];\n", out);
}
void ag_tape_write_dot(const ag_tape *t, FILE *out, const char *title)
{
    const ag_node **nodes = malloc((size_t)(t->nnodes > 0 ? t->nnodes : 1) * sizeof *nodes);
    if (nodes == NULL) ag_fatal("ag_tape_write_dot: out of memory for %d nodes", t->nnodes);
    int count = 0;
    for (const ag_node *n = t->last; n != NULL && count < t->nnodes; n = n->prev)
        nodes[t->nnodes - 1 - count++] = n;
    fputs("digraph tape {\n", out);
    if (title != NULL && title[0] != '\0') {
        fputs("  graph [labelloc=t, fontname=\"Helvetica\", fontsize=14, label=", out);
        write_dot_string(out, title);
        fputs("];\n", out);
    }
    fputs("  node [fontname=\"Helvetica\", fontsize=10];\n", out);
    fputs("  edge [fontname=\"Helvetica\", fontsize=8, arrowsize=0.6];\n", out);
    leaf_list leaves = { NULL, 0, 0 };
    for (int i = t->nnodes - count; i < t->nnodes; i++) {
        const ag_node *n = nodes[i];
        fprintf(out, "  op%d [shape=box, style=rounded, label=", n->index);
        write_op_label(out, n);
        fputs("];\n", out);
        for (int k = 0; k < n->ninputs; k++) {
            const ag_tensor *x = n->in[k];
            if (x->node != NULL) {
                fprintf(out, "  v%d -> op%d", x->node->index, n->index);
            } else {
                int is_new;
                int number = leaf_number(&leaves, x, &is_new);
                if (is_new) write_leaf(out, number, x);
                fprintf(out, "  leaf%d -> op%d", number, n->index);
            }
            if (n->ninputs > 1) fprintf(out, " [label=\"%d\"]", k);
            fputs(";\n", out);
        }
        fprintf(out, "  v%d [shape=ellipse, label=", n->index);
        write_tensor_label(out, n->out);
        fprintf(out, "];\n  op%d -> v%d;\n", n->index, n->index);
    }
    fputs("}\n", out);
    free(leaves.items);
    free(nodes);
}
