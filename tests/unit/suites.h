/* suites.h -- the Check suites of the unit tests, one per file. */
#ifndef SUITES_H
#define SUITES_H

#include <check.h>

Suite *engine_suite(void);  /* test_engine.c: tensors, tape, arena, errors, accumulation, RNG */
Suite *optim_suite(void);   /* test_optim.c: SGD and Adam against hand-computed steps */
Suite *dot_suite(void);     /* test_dot.c: Graphviz output of a tiny graph */
Suite *gemm_suite(void);    /* test_gemm.c: the GEMM kernel against a naive triple loop */
Suite *norm_suite(void);    /* test_norm.c: batch norm, layer norm, dropout: values, modes, errors */
Suite *model_suite(void);   /* test_model.c: encoder configs and shapes, critics' score convention */
Suite *bounds_suite(void);  /* test_bounds.c: DV, JSD, infoNCE against closed forms, properties */

Suite *prior_suite(void);   /* test_prior.c: prior matching and the training step */
Suite *data_suite(void);    /* test_data.c: dataset readers on good, missing, truncated, corrupt files */
Suite *checkpoint_suite(void); /* test_checkpoint.c: round trip, corrupt files, atomic saves, resume */
Suite *eval_suite(void);    /* test_eval.c: probes, standardisation, the .npy format */
Suite *mibench_suite(void); /* test_mibench.c: the estimator lab's bounds, sampler and short run */
Suite *cli_suite(void);     /* test_cli.c: the dim program's exit statuses and messages on bad input */

#endif
