/*
 * The osenv wrappers and the hosted default: aligned allocation, mlock pinning, pagemap
 * translation (real frame numbers for root with CAP_SYS_ADMIN, a clean KCOM_E_NOPHYS for
 * everyone else), locks, log, and installing/restoring tables.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <com/com.h>
#include "tests/suites.h"
#include "tests/testenv.h"

START_TEST(test_alloc_alignment)
{
	static const size_t aligns[] = { 0, 1, 8, 64, 4096, 65536 };
	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		size_t align = aligns[i];
		uint8_t *p = kcom_alloc(1000, align);
		ck_assert_ptr_nonnull(p);
		if (align > 1)
			ck_assert_uint_eq((uintptr_t)p % align, 0);
		memset(p, 0xcc, 1000);
		kcom_free(p, 1000, align);
	}
	ck_assert_ptr_null(kcom_alloc(0, 0));
	kcom_free(NULL, 0, 0); /* harmless */
}
END_TEST

START_TEST(test_install_and_restore)
{
	const struct kcom_osenv *hosted = kcom_osenv_hosted();
	ck_assert_ptr_eq(kcom_osenv_get(), hosted);
	testenv_install();
	ck_assert_ptr_ne(kcom_osenv_get(), hosted);
	void *p = kcom_alloc(10, 0);
	ck_assert_uint_eq(testenv_allocs(), 1);
	kcom_free(p, 10, 0);
	ck_assert_uint_eq(testenv_frees(), 1);
	const struct kcom_osenv *prev = kcom_osenv_set(NULL);
	ck_assert_ptr_ne(prev, hosted); /* it was the test table */
	ck_assert_ptr_eq(kcom_osenv_get(), hosted);
	ck_assert_ptr_eq(kcom_osenv_set(hosted), hosted);
}
END_TEST

START_TEST(test_pin_and_translate)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *mem = kcom_alloc((size_t)page * 2, (size_t)page);
	ck_assert_ptr_nonnull(mem);
	memset(mem, 1, (size_t)page * 2);

	kcom_error_t err = kcom_pin(mem, (size_t)page * 2);
	ck_assert_msg(err == KCOM_OK || err == KCOM_E_ACCESSDENIED || err == KCOM_E_OUTOFMEMORY, "pin: %s",
	              kcom_strerror(err));
	int pinned = err == KCOM_OK;

	kcom_phys_t a = 1, b = 1;
	err = kcom_virt_to_phys(mem + 100, &a);
	if (err == KCOM_OK) {
		/* A real frame: the offset in the page survives, the same page gives the same frame. */
		ck_assert_uint_ne(a, 0);
		ck_assert_uint_eq(a % (kcom_phys_t)page, 100);
		ck_assert_int_eq(kcom_virt_to_phys(mem + 200, &b), KCOM_OK);
		ck_assert_uint_eq(b - a, 100);
		fprintf(stderr, "osenv: virt %p -> phys 0x%llx\n", (void *)(mem + 100), (unsigned long long)a);
	} else {
		/* Not privileged to see frames: a clean refusal, never a made-up address. */
		ck_assert_int_eq(err, KCOM_E_NOPHYS);
		ck_assert_uint_eq(a, 0);
		fprintf(stderr, "osenv: pagemap hides frame numbers here (uid %d)\n", (int)geteuid());
	}
	ck_assert_int_eq(kcom_virt_to_phys(mem, NULL), KCOM_E_POINTER);
	/* A page that is mapped nowhere. */
	err = kcom_virt_to_phys((void *)(uintptr_t)page, &a);
	ck_assert_int_eq(err, KCOM_E_NOPHYS);

	if (pinned)
		ck_assert_int_eq(kcom_unpin(mem, (size_t)page * 2), KCOM_OK);
	kcom_free(mem, (size_t)page * 2, (size_t)page);
}
END_TEST

static kcom_lock_t lock;
static long counter;

static void *lock_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		kcom_lock_acquire(&lock);
		counter++;
		kcom_lock_release(&lock);
	}
	return NULL;
}

START_TEST(test_lock)
{
	ck_assert_int_eq(kcom_lock_init(&lock), KCOM_OK);
	counter = 0;
	pthread_t t1, t2;
	pthread_create(&t1, NULL, lock_worker, NULL);
	pthread_create(&t2, NULL, lock_worker, NULL);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ck_assert_int_eq(counter, 200000);
	kcom_lock_fini(&lock);
}
END_TEST

START_TEST(test_log_to_stderr)
{
	char path[] = "/tmp/kcom-log-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	kcom_log(KCOM_LOG_WARN, "something odd");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char buf[128] = { 0 };
	ck_assert_int_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
	close(fd);
	unlink(path);
	ck_assert_str_eq(buf, "kcom: warn: something odd\n");
}
END_TEST

START_TEST(test_panic_aborts)
{
	kcom_panic("test panic");
}
END_TEST

Suite *osenv_suite(void)
{
	Suite *s = suite_create("osenv");
	TCase *tc = tcase_create("hosted");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_alloc_alignment);
	tcase_add_test(tc, test_install_and_restore);
	tcase_add_test(tc, test_pin_and_translate);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_log_to_stderr);
	suite_add_tcase(s, tc);
	/* A test that must die needs its own process: only when Check forks. */
	const char *fork_mode = getenv("CK_FORK");
	if (fork_mode == NULL || strcmp(fork_mode, "no") != 0) {
		tc = tcase_create("panic");
		tcase_add_test_raise_signal(tc, test_panic_aborts, SIGABRT);
		suite_add_tcase(s, tc);
	}
	return s;
}
