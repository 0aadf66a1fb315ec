/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *allocfail_suite(void)
{
	return suite_create("allocfail");
}
