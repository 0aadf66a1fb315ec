/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *membuf_suite(void)
{
	return suite_create("membuf");
}
