/*
 * Component modules (com/module.h): loading by name and by file, counted reloads, unloading
 * refused while an object lives, and every bad module refused with a clear error and nothing
 * left registered.  The test modules (tests/modules/testmod.c) are found through
 * KCOM_MODULE_PATH, which make check points at their build folder.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	ck_assert_int_eq(kcom_module_load("kcomtest_empty", &m), KCOM_E_BADMODULE);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "without classes"));
	/*
	 * An init that calls the loader is refused, not left waiting for itself, also for a module
	 * that is loaded (kcomtest_good, whose module kcom_module_of_class names from here).
	 */
	kcom_module_t *good;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &good), KCOM_OK);
	const struct kcom_class *cls;
	ck_assert_int_eq(kcom_class_find(&testmod_clsid, &cls), KCOM_OK);
	ck_assert_ptr_eq(kcom_module_of_class(cls), good);
	ck_assert_int_eq(kcom_module_load("kcomtest_reenter", &m), KCOM_E_BUSY);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "init failed"));
	ck_assert_int_eq(kcom_module_unload(good), KCOM_OK);
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

/*
 * The last unload racing creates on another thread: each unload either refuses (an object is
 * alive, or being made) or unmaps code no thread is in, and each create either makes an
 * object or finds no class.  Unload used to count live objects before taking the classes out
 * of the table, so a create that had just found the class ran in unmapped code (SIGSEGV).
 */
static int race_stop;
static unsigned long race_made;

/* Creates and releases objects of the class `clsid` names until race_stop; NULL unless a create failed otherwise than NOTFOUND. */
static void *race_creator(void *clsid)
{
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		kcom_iunknown_t *obj;
		kcom_error_t err = kcom_create(clsid, &kcom_iunknown_iid, (void **)&obj);
		if (KCOM_SUCCEEDED(err)) {
			__atomic_add_fetch(&race_made, 1, __ATOMIC_RELAXED);
			kcom_iunknown_release(obj);
		} else if (err != KCOM_E_NOTFOUND) {
			return (void *)1;
		}
	}
	return NULL;
}

/* Starts race_creator on `clsid`; race_end stops it and checks it met no other failure. */
static pthread_t race_start(const kcom_clsid_t *clsid)
{
	__atomic_store_n(&race_stop, 0, __ATOMIC_RELAXED);
	race_made = 0;
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, race_creator, (void *)clsid), 0);
	return t;
}

static void race_end(pthread_t t)
{
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
}

/*
 * A load that fails after registering a class which another thread uses meanwhile: the class
 * is taken out only once no create of it is running, and the code is unmapped only when no
 * object of it lives (else it stays mapped); the table never keeps an entry into unmapped code
 * (a failed load once left one behind when its unregister met a running factory).
 */
static const kcom_clsid_t half_clsid =
	KCOM_GUID(0x7e57c1a5, 0x0001, 0x4000, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06);

START_TEST(test_failed_load_races_create)
{
	need_path();
	kcom_module_t *good, *half;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &good), KCOM_OK);
	pthread_t t = race_start(&half_clsid);
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(kcom_module_load("kcomtest_half", &half), KCOM_E_EXISTS);
		const struct kcom_class *cls;
		ck_assert_int_eq(kcom_class_find(&half_clsid, &cls), KCOM_E_NOTFOUND);
	}
	race_end(t);
	ck_assert_int_eq(testmod_registrations(), 1);
	ck_assert_int_eq(kcom_module_unload(good), KCOM_OK);
}
END_TEST

/* A module whose class the program took out of the table itself still unloads. */
START_TEST(test_unload_after_program_unregistered)
{
	need_path();
	kcom_module_t *m;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	ck_assert_int_eq(kcom_class_unregister(&testmod_clsid), KCOM_OK);
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
	ck_assert_int_eq(testmod_registrations(), 0);
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK); /* and loads again */
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
}
END_TEST

START_TEST(test_unload_races_create)
{
	need_path();
	kcom_module_t *m;
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	pthread_t t = race_start(&testmod_clsid);
	/* The creator is running before the first unload, however loaded the machine is. */
	while (__atomic_load_n(&race_made, __ATOMIC_RELAXED) == 0)
		sched_yield();
	unsigned unloads = 0;
	for (int i = 0; i < 200000 && unloads < 200; i++) {
		kcom_error_t err = kcom_module_unload(m);
		ck_assert_msg(err == KCOM_OK || err == KCOM_E_BUSY, "unload: %s", kcom_strerror(err));
		if (err == KCOM_OK) {
			unloads++;
			ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
		}
	}
	race_end(t);
	ck_assert_uint_gt(unloads, 0);
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);
	ck_assert_int_eq(testmod_registrations(), 0);
}
END_TEST

/*
 * The search: a folder in the path that holds a *folder* of the module's name is passed over
 * (only a file can shadow a module further down); and a successful load leaves no failure
 * behind in kcom_module_error(), which was "not found" after any search.
 */
static void *fresh_thread_load(void *shadow_dir)
{
	kcom_module_t *m;
	if (KCOM_FAILED(kcom_module_load("kcomtest_good", &m)))
		return (void *)1;
	if (strstr(kcom_module_file(m), shadow_dir) != NULL)
		return (void *)2; /* the folder was taken for the module */
	if (strcmp(kcom_module_error(), "") != 0)
		return (void *)3;
	return KCOM_SUCCEEDED(kcom_module_unload(m)) ? NULL : (void *)4;
}

START_TEST(test_search_skips_folders)
{
	need_path();
	char dir[] = "/tmp/kcom-shadow-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/kcomtest_good", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	const char *old = getenv("KCOM_MODULE_PATH");
	char *saved = strdup(old);
	size_t len = strlen(dir) + strlen(old) + 2;
	char *path = malloc(len);
	snprintf(path, len, "%s:%s", dir, old);
	ck_assert_int_eq(setenv("KCOM_MODULE_PATH", path, 1), 0);

	/* On a fresh thread, whose message is "" (nothing failed there yet). */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, fresh_thread_load, dir), 0);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
	/* A failure is reported, and stays reported across a success. */
	kcom_module_t *m;
	ck_assert_int_eq(kcom_module_load("kcomtest_no_such_module", &m), KCOM_E_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "not found"));
	ck_assert_int_eq(kcom_module_load("kcomtest_good", &m), KCOM_OK);
	ck_assert_ptr_nonnull(strstr(kcom_module_error(), "kcomtest_no_such_module"));
	ck_assert_int_eq(kcom_module_unload(m), KCOM_OK);

	ck_assert_int_eq(setenv("KCOM_MODULE_PATH", saved, 1), 0);
	free(saved);
	free(path);
	rmdir(sub);
	rmdir(dir);
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
	tcase_add_test(tc, test_search_skips_folders);
	tcase_add_test(tc, test_unload_after_program_unregistered);
	suite_add_tcase(s, tc);

	/* Two threads racing: tagged "slow", which check-valgrind leaves out (it runs threads one at a time). */
	tc = tcase_create("module-race");
	tcase_set_tags(tc, "slow");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_unload_races_create);
	tcase_add_test(tc, test_failed_load_races_create);
	suite_add_tcase(s, tc);
	return s;
}
