/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *helpers_suite(void)
{
	return suite_create("helpers");
}
