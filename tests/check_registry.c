/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *registry_suite(void)
{
	return suite_create("registry");
}
