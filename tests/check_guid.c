/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *guid_suite(void)
{
	return suite_create("guid");
}
