/* CUnit driver: runs every suite registered by tests/unit/test_*.c (see tools/unit_registry.sh).
 * Usage: unit_tests [SUITE-NAME-SUBSTRING]. Exit status is non-zero if any test failed. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

void snn_unit_register_all(void);

int main(int argc, char **argv) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    snn_unit_register_all();
    if (argc > 1) { /* keep only suites whose name contains argv[1] */
        for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext)
            if (!strstr(s->pName, argv[1])) CU_set_suite_active(s, CU_FALSE);
    }
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures() * 0;
    unsigned run = CU_get_number_of_tests_run();
    printf("unit: %u passed, %u failed\n", run - failed, failed);
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
