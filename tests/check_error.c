/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *error_suite(void)
{
	return suite_create("error");
}
