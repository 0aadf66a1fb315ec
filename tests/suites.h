/* Every Check suite of kcom; tests/runner.c runs them all. */
#ifndef KCOM_TESTS_SUITES_H
#define KCOM_TESTS_SUITES_H

#include <check.h>

Suite *guid_suite(void);
Suite *error_suite(void);
Suite *registry_suite(void);
Suite *class_suite(void);
Suite *contract_suite(void);
Suite *membuf_suite(void);
Suite *helpers_suite(void);
Suite *allocfail_suite(void);
Suite *refcount_suite(void);
Suite *osenv_suite(void);
Suite *dmabuf_suite(void);

/* Why the host cannot run a dmabuf test needing `cap` (tests/contract.h CAP_*), or NULL. */
const char *dmabuf_test_probe(unsigned cap);

#endif
