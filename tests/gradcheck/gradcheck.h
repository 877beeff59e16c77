/* gradcheck.h -- finite-difference checks of every operation in ag_op_table.
 *
 * A case names an op, makes its inputs (uniform in [lo, hi], or by its own init) and applies
 * the op on a tape. The harness reduces the output to a scalar L = sum(out * W) with a fixed
 * random W, so that every entry of the Jacobian takes part, and compares dL/dinput from
 * ag_backward with the central difference (L(x + h) - L(x - h)) / 2h, element by element. */
#ifndef GRADCHECK_H
#define GRADCHECK_H

#include "../../src/autograd/ag.h"

enum { GC_MAX_INPUTS = AG_MAX_INPUTS };

typedef struct gc_case {
    const char *op;                     /* the op's name in ag_op_table */
    const char *what;                   /* the variant, e.g. "broadcast [2,3] + [3]" */
    int ninputs;                        /* how many tensors the case makes */
    int ndim[GC_MAX_INPUTS];            /* their ranks */
    int shape[GC_MAX_INPUTS][4];        /* their shapes */
    double lo, hi;                      /* inputs uniform in [lo, hi] unless init is given */
    int check_mask;                     /* bit k set: check the gradient of input k */
    void (*init)(ag_tensor **in, ag_rng *rng);       /* optional: custom input values */
    ag_tensor *(*apply)(ag_tape *t, ag_tensor **in); /* the op under test; deterministic */
} gc_case;

extern const gc_case gc_cases_elementwise[];
extern const gc_case gc_cases_linalg[];
extern const gc_case gc_cases_reduce[];
extern const gc_case gc_cases_shape[];
extern const gc_case gc_cases_norm[];

#endif
