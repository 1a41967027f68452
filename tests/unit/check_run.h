/* journeygate unit tests — what every Check main() ends with. */
#ifndef JG_CHECK_RUN_H
#define JG_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/** Runs every test of `s` and returns main()'s exit status: EXIT_SUCCESS when none failed. */
static inline int jg_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
