/* dim_checks.h -- finite-difference checks of the whole DIM objective (Eq. 8). */
#ifndef DIM_CHECKS_H
#define DIM_CHECKS_H

/* Check the gradient of the DIM loss on the tiny configuration with respect to every parameter
 * element, for each estimator with the global term, the local term with either critic, and the
 * prior term alone (encoder and discriminator). Prints one line per check and adds to *passed
 * or *failed. Needs the double build. */
void gc_run_dim_checks(int *passed, int *failed);

#endif
