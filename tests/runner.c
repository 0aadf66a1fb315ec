/*
 * The one Check runner: adds every suite of tests/suites.h and runs them.  CK_RUN_SUITE and
 * CK_RUN_CASE select a part, as Check documents; CK_FORK=no runs in one process (valgrind).
 */
#include "config.h"

#include <stdlib.h>

#include "tests/suites.h"

int main(void)
{
	Suite *(*const suites[])(void) = {
		guid_suite, error_suite, registry_suite, class_suite, contract_suite,
		membuf_suite, helpers_suite, allocfail_suite, refcount_suite, osenv_suite, dmabuf_suite,
	};
	SRunner *sr = srunner_create(NULL);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
