/* main.c -- runs every Check suite of the unit tests. */
#include <check.h>
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *runner = srunner_create(engine_suite());
    srunner_add_suite(runner, optim_suite());
    srunner_add_suite(runner, dot_suite());
    srunner_add_suite(runner, gemm_suite());
    srunner_add_suite(runner, norm_suite());
    srunner_add_suite(runner, model_suite());
    srunner_add_suite(runner, bounds_suite());
    srunner_add_suite(runner, prior_suite());
    srunner_add_suite(runner, data_suite());
    srunner_add_suite(runner, checkpoint_suite());
    srunner_add_suite(runner, eval_suite());
    srunner_add_suite(runner, mibench_suite());
    if (getenv("DIM_BIN") != NULL) /* the program under test; the Makefile sets it */
        srunner_add_suite(runner, cli_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
