/* demo_mlp.c -- dim mlp: an MLP learns three spirals, the engine's first example.
 * Tangled from doc/50-program.nw: edit the book, not this file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/ag.h"
#include "cli.h"

enum { SPIRAL_POINTS = 100, SPIRAL_CLASSES = 3, HIDDEN = 64, STEPS = 400 };

static void make_spirals(ag_real *x /* [P, 2] */, int *labels /* [P] */, ag_rng *rng)
{
    for (int c = 0; c < SPIRAL_CLASSES; c++)
        for (int i = 0; i < SPIRAL_POINTS; i++) {
            int p = c * SPIRAL_POINTS + i;
            double r = (double)i / SPIRAL_POINTS;
            double theta = 4 * r + 2 * 3.141592653589793 * c / SPIRAL_CLASSES
                           + 0.2 * ag_rng_normal(rng);
            x[2 * p] = (ag_real)(r * cos(theta));
            x[2 * p + 1] = (ag_real)(r * sin(theta));
            labels[p] = c;
        }
}

int dim_cmd_mlp(int argc, char **argv)
{
    if (argc > 1) {
        int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
        if (!help) fprintf(stderr, "dim mlp: unexpected '%s': dim mlp takes no options\n", argv[1]);
        fprintf(help ? stdout : stderr,
                "usage: dim mlp   (no options: trains a %d-%d-%d-%d MLP for %d steps)\n",
                2, HIDDEN, HIDDEN, SPIRAL_CLASSES, STEPS);
        return help ? DIM_EXIT_OK : DIM_EXIT_USAGE;
    }
    enum { P = SPIRAL_POINTS * SPIRAL_CLASSES };
    static ag_real points[P * 2];
    static int labels[P];
    ag_rng rng;
    ag_rng_seed(&rng, 1);
    make_spirals(points, labels, &rng);

    ag_params ps = {0};
    ag_tensor *w1 = ag_param_new(&ps, "w1", AG_SHAPE(HIDDEN, 2));
    ag_tensor *b1 = ag_param_new(&ps, "b1", AG_SHAPE(HIDDEN));
    ag_tensor *w2 = ag_param_new(&ps, "w2", AG_SHAPE(HIDDEN, HIDDEN));
    ag_tensor *b2 = ag_param_new(&ps, "b2", AG_SHAPE(HIDDEN));
    ag_tensor *w3 = ag_param_new(&ps, "w3", AG_SHAPE(SPIRAL_CLASSES, HIDDEN));
    ag_tensor *b3 = ag_param_new(&ps, "b3", AG_SHAPE(SPIRAL_CLASSES));
    ag_fill_normal(w1, &rng, 0, sqrt(2.0 / 2));
    ag_fill_normal(w2, &rng, 0, sqrt(2.0 / HIDDEN));
    ag_fill_normal(w3, &rng, 0, sqrt(1.0 / HIDDEN));
    ag_adam *adam = ag_adam_new(&ps, 1e-2, 0.9, 0.999, 1e-8);
    ag_tape *t = ag_tape_new(8 << 20);

    printf("step\tloss\taccuracy\n");
    for (int step = 0; step <= STEPS; step++) {
        ag_tape_reset(t);
        ag_tensor *x = ag_tensor_from(t, AG_SHAPE(P, 2), points);
        ag_tensor *h = ag_relu(t, ag_linear(t, x, w1, b1));
        h = ag_relu(t, ag_linear(t, h, w2, b2));
        ag_tensor *logits = ag_linear(t, h, w3, b3);
        ag_tensor *loss = ag_cross_entropy(t, logits, labels);
        if (step % 50 == 0) {
            int correct = 0;
            for (int p = 0; p < P; p++) {
                const ag_real *row = logits->value + p * SPIRAL_CLASSES;
                int best = 0;
                for (int c = 1; c < SPIRAL_CLASSES; c++) best = row[c] > row[best] ? c : best;
                correct += best == labels[p];
            }
            printf("%d\t%.4f\t%.3f\n", step, (double)loss->value[0], (double)correct / P);
        }
        if (step == STEPS) break;
        ag_params_zero_grad(&ps);
        ag_backward(t, loss);
        ag_adam_step(adam);
    }
    ag_tape_free(t);
    ag_adam_free(adam);
    ag_params_free(&ps);
    return DIM_EXIT_OK;
}
