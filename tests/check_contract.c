/* Placeholder: filled in by its owner. */
#include "config.h"
#include "tests/suites.h"

Suite *contract_suite(void)
{
	return suite_create("contract");
}
