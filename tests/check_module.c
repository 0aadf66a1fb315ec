/*
 * Component modules (com/module.h): loading by name and by file, counted reloads, unloading
 * refused while an object lives, and every bad module refused with a clear error and nothing
 * left registered.  The test modules (tests/modules/testmod.c) are found through
 * KCOM_MODULE_PATH, which make check points at their build folder.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <com/com.h>
#include <com/module.h>
#include <com/registry.h>
#include "tests/suites.h"

static const kcom_clsid_t testmod_clsid =
	KCOM_GUID(0x7e57c1a5, 0x0001, 0x4000, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01);

/* How many table entries carry the test class's ID (a double registration would show 2). */
static int testmod_registrations(void)
{
	int n = 0;
	const struct kcom_class *cls;
	for (size_t i = 0; KCOM_SUCCEEDED(kcom_class_enum(i, &cls)); i++)
		if (kcom_guid_equal(&cls->clsid, &testmod_clsid))
			n++;
	return n;
}

static void need_path(void)
{
	ck_assert_msg(getenv("KCOM_MODULE_PATH") != NULL, "KCOM_MODULE_PATH is not set: run through make check");
}

START_TEST(test_load_by_name)
{
	need_path();
	kcom_module_t *m = (void *)1;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	ck_assert_ptr_nonnull(m);
	const struct kcom_module_desc *d = kcom_module_describe(m);
	ck_assert_str_eq(d->name, "kcomtest");
	ck_assert_ptr_nonnull(strstr(kcom_module_file(m), "kcomtest_good"));
	ck_assert_int_eq(testmod_registrations(), 1);
	const struct kcom_class *cls;
	ck_assert_int_eq(kcom_class_find(&testmod_clsid, &cls), KCOM_OK);
	ck_assert_ptr_eq(kcom_module_of_class(cls), m);

	/* An object of the class works. */
	kcom_iunknown_t *obj;
	ck_assert_int_eq(kcom_create(&testmod_clsid, &kcom_iunknown_iid, (void **)&obj), KCOM_OK);
	ck_assert_uint_eq(kcom_iunknown_release(obj), 0);

	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
	ck_assert_int_eq(testmod_registrations(), 0);
	ck_assert_int_eq(kcom_class_find(&testmod_clsid, &cls), KCOM_E_NOTFOUND);
	/* And again: unloading leaves the loader ready. */
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
}
END_TEST

START_TEST(test_load_by_file)
{
	need_path();
	kcom_module_t *m, *again;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	char *file = strdup(kcom_module_file(m));
	/* The same file by its path is the same module: counted, not registered twice. */
	ck_assert_int_eq(kcom_module_load(file, &again), KCOM_OK);
	ck_assert_ptr_eq(again, m);
	ck_assert_int_eq(testmod_registrations(), 1);
	ck_assert_int_eq(kcom_module_unload(again), KCOM_OK);
	ck_assert_int_eq(testmod_registrations(), 1); /* one load left */
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
	ck_assert_int_eq(testmod_registrations(), 0);
	ck_assert_int_eq(kcom_module_unload(m), KCOM_E_INVALIDARG); /* no longer loaded */
	free(file);
}
END_TEST

START_TEST(test_unload_busy)
{
	need_path();
	kcom_module_t *m;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	kcom_iunknown_t *obj;
	ck_assert_int_eq(kcom_create(&testmod_clsid, &kcom_iunknown_iid, (void **)&obj), KCOM_OK);
	ck_assert_int_eq(kcom_module_unload(m), KCOM_E_BUSY);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "alive"));
	ck_assert_int_eq(testmod_registrations(), 1); /* nothing changed */
	/* The object's code is still there. */
	ck_assert_uint_eq(kcom_iunknown_addref(obj), 2);
	ck_assert_uint_eq(kcom_iunknown_release(obj), 1);
	ck_assert_uint_eq(kcom_iunknown_release(obj), 0);
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
	ck_assert_int_eq(testmod_registrations(), 0);
}
END_TEST

START_TEST(test_not_a_module)
{
	char dir[] = "/tmp/kcom-module-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/junk.so", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a shared object\n", f);
	fclose(f);
	kcom_module_t *m = (void *)1;
	ck_assert_int_eq(kcom_module_load(path, &m), KCOM_E_BADMODULE);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "junk.so"));
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_bad_modules)
{
	need_path();
	kcom_module_t *m = (void *)1;
	ck_assert_int_eq(kcom_module_load("kcomtest_noentry", &m), KCOM_E_BADMODULE);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), KCOM_MODULE_SYMBOL));
	ck_assert_int_eq(kcom_module_load("kcomtest_badabi", &m), KCOM_E_BADMODULE);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "ABI"));
	ck_assert_int_eq(kcom_module_load("kcomtest_no_such_module", &m), KCOM_E_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "not found"));
	ck_assert_int_eq(kcom_module_load("/no/such/file.so", &m), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_module_load("", &m), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_module_load(NULL, &m), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_module_load("kcomtest_good", NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_module_unload(NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(testmod_registrations(), 0);
}
END_TEST

START_TEST(test_init_fails)
{
	need_path();
	kcom_registry_t *reg;
	ck_assert_int_eq(kcom_registry_create(&reg), KCOM_OK);
	kcom_module_t *m = (void *)1;
	ck_assert_int_eq(kcom_module_load_with("kcomtest_badinit", reg, &m), KCOM_E_ACCESSDENIED);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "init failed"));
	ck_assert_int_eq(testmod_registrations(), 0);
	size_t count = 99;
	ck_assert_int_eq(kcom_registry_lookup(reg, &kcom_iunknown_iid, NULL, 0, &count), KCOM_OK);
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(kcom_registry_release(reg), 0);
}
END_TEST

START_TEST(test_class_clash)
{
	need_path();
	kcom_module_t *good, *clash = (void *)1;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &good), KCOM_OK);
	ck_assert_int_eq(kcom_module_load("kcomtest_clash", &clash), KCOM_E_EXISTS);
	ck_assert_ptr_null(clash);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "already registered"));
	const struct kcom_class *cls;
	ck_assert_int_eq(kcom_class_find(&testmod_clsid, &cls), KCOM_OK);
	ck_assert_str_eq(cls->name, "kcomtest"); /* still the first module's */
	ck_assert_int_eq(testmod_registrations(), 1);
	ck_assert_int_eq(kcom_module_unload(good), KCOM_OK);
	/* With the first one gone, the other loads. */
	ck_assert_int_eq(kcom_module_load("kcomtest_clash", &clash), KCOM_OK);
	ck_assert_int_eq(kcom_class_find(&testmod_clsid, &cls), KCOM_OK);
	ck_assert_str_eq(cls->name, "kcomtest-clash");
	ck_assert_int_eq(kcom_module_unload(clash), KCOM_OK);
}
END_TEST

START_TEST(test_module_dir)
{
	ck_assert_ptr_nonnull(strstr(kcom_module_dir(), "/modules"));
}
END_TEST

Suite *module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *tc = tcase_create("module");
	tcase_add_test(tc, test_load_by_name);
	tcase_add_test(tc, test_load_by_file);
	tcase_add_test(tc, test_unload_busy);
	tcase_add_test(tc, test_not_a_module);
	tcase_add_test(tc, test_bad_modules);
	tcase_add_test(tc, test_init_fails);
	tcase_add_test(tc, test_class_clash);
	tcase_add_test(tc, test_module_dir);
	suite_add_tcase(s, tc);
	return s;
}
