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
Suite *mbufchain_suite(void);
Suite *helpers_suite(void);
Suite *allocfail_suite(void);
Suite *refcount_suite(void);
Suite *osenv_suite(void);
Suite *kit_suite(void);
Suite *iochannel_suite(void);
Suite *pool_suite(void);
Suite *dmabuf_suite(void);
Suite *module_suite(void);
Suite *filebuf_suite(void);

#endif
