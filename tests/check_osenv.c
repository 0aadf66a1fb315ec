/*
 * The osenv wrappers and the hosted default: aligned allocation, mlock pinning, pagemap
 * translation (real frame numbers for root with CAP_SYS_ADMIN, a clean KCOM_E_NOPHYS for
 * everyone else), locks, log, and installing/restoring tables.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

/* Where stderr goes while a test listens to it. */
struct stderr_capture {
	char path[32];
	int fd, saved;
};

static void capture_stderr(struct stderr_capture *c)
{
	strcpy(c->path, "/tmp/kcom-log-XXXXXX");
	c->fd = mkstemp(c->path);
	ck_assert_int_ge(c->fd, 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(c->fd, 2);
}

/* Puts stderr back and returns (in buf) what was written to it meanwhile. */
static void captured_stderr(struct stderr_capture *c, char *buf, size_t len)
{
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	memset(buf, 0, len);
	ck_assert_int_gt(pread(c->fd, buf, len - 1, 0), 0);
	close(c->fd);
	unlink(c->path);
}

START_TEST(test_log_to_stderr)
{
	struct stderr_capture c;
	char buf[128];
	capture_stderr(&c);
	kcom_log(KCOM_LOG_WARN, "something odd");
	captured_stderr(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "kcom: warn: something odd\n");
}
END_TEST

/* Whole pages, plain and huge, and the sizes no host can give. */
START_TEST(test_pages)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *p = kcom_alloc_pages(1, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % (uintptr_t)page, 0);
	memset(p, 0xa5, (size_t)page); /* the size rounded up to a whole page */
	kcom_free_pages(p, 1, 0);

	/* Asked for now, every page is there before it is touched; otherwise none is. */
	const size_t n = 16;
	unsigned char there[16];
	for (int now = 0; now <= 1; now++) {
		p = kcom_alloc_pages(n * (size_t)page, now ? KCOM_PAGES_NOW : 0);
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(mincore(p, n * (size_t)page, there), 0);
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(there[i] & 1, now);
		ck_assert(p[0] == 0 && p[n * (size_t)page - 1] == 0); /* zeroed all the same */
		kcom_free_pages(p, n * (size_t)page, now ? KCOM_PAGES_NOW : 0);
	}

	const size_t huge = (size_t)2 << 20;
	p = kcom_alloc_pages(huge + 1, KCOM_PAGES_HUGE);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % huge, 0);
	memset(p, 0x5a, 2 * huge);
	kcom_free_pages(p, huge + 1, KCOM_PAGES_HUGE);

	ck_assert_ptr_null(kcom_alloc_pages(0, 0));
	/* Rounding up would wrap: refused before mmap is asked. */
	ck_assert_ptr_null(kcom_alloc_pages(SIZE_MAX, 0));
	ck_assert_ptr_null(kcom_alloc_pages(SIZE_MAX, KCOM_PAGES_HUGE));
	/* Rounds to a size, but the aligning extra unit would wrap. */
	ck_assert_ptr_null(kcom_alloc_pages(SIZE_MAX - 2 * huge + 2, KCOM_PAGES_HUGE));
	/* Sizes that fit a size_t but no address space: mmap itself says no. */
	ck_assert_ptr_null(kcom_alloc_pages((size_t)1 << 62, 0));
	ck_assert_ptr_null(kcom_alloc_pages((size_t)1 << 62, KCOM_PAGES_HUGE));
	kcom_free_pages(NULL, 1, 0); /* harmless */
}
END_TEST

/*
 * The sanitizers' common interceptors (ASan's and TSan's) make mlock and munlock succeed
 * without asking the kernel, so a build with either cannot see the host refuse a pin.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HOST_MLOCK 0
#else
#define HOST_MLOCK 1
#endif

/* mlock's refusals come back as kcom errors; nothing is left pinned. */
START_TEST(test_pin_failures)
{
	long page = sysconf(_SC_PAGESIZE);
	/* The first pages of the address space are mapped nowhere. */
	if (HOST_MLOCK) {
		ck_assert_int_eq(kcom_pin((void *)(uintptr_t)page, (size_t)page), KCOM_E_OUTOFMEMORY);
		ck_assert_int_eq(kcom_unpin((void *)(uintptr_t)page, (size_t)page), KCOM_E_OUTOFMEMORY);
	}
	uint8_t *mem = kcom_alloc((size_t)page, (size_t)page);
	ck_assert_ptr_nonnull(mem);
	/* A range that wraps past the end of the address space. */
	if (HOST_MLOCK)
		ck_assert_int_eq(kcom_unpin(mem, SIZE_MAX - 4 * (size_t)page), KCOM_E_INVALIDARG);
	kcom_free(mem, (size_t)page, (size_t)page);
}
END_TEST

/* One page of kcom_alloc'ed memory, touched so that it is present. */
static uint8_t *touched_page(size_t page)
{
	uint8_t *mem = kcom_alloc(page, page);
	ck_assert_ptr_nonnull(mem);
	mem[0] = 1;
	return mem;
}

/* Translating where pagemap has no entry, and the arguments translation refuses. */
START_TEST(test_translate_edges)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *mem = touched_page((size_t)page);
	kcom_phys_t out[2] = { 7, 7 };
	ck_assert_int_eq(kcom_virt_to_phys_pages(mem, 1, 0, out), KCOM_E_NOPHYS);
	ck_assert_int_eq(kcom_virt_to_phys_pages(mem, 0, (size_t)page, out), KCOM_OK);
	ck_assert_uint_eq(out[0], 7); /* nothing asked, nothing written */
	/* Past the end of the user address space pagemap reads nothing at all. */
	const void *beyond = (const void *)((uintptr_t)1 << 62);
	kcom_phys_t one = 7;
	ck_assert_int_eq(kcom_virt_to_phys(beyond, &one), KCOM_E_NOPHYS);
	ck_assert_uint_eq(one, 0);
	ck_assert_int_eq(kcom_virt_to_phys_pages(beyond, 2, (size_t)page, out), KCOM_E_NOPHYS);

	/* Pages never touched are not present: no address for them. */
	uint8_t *fresh = kcom_alloc_pages(2 * (size_t)page, 0);
	ck_assert_ptr_nonnull(fresh);
	ck_assert_int_eq(kcom_virt_to_phys_pages(fresh, 2, (size_t)page, out), KCOM_E_NOPHYS);
	kcom_free_pages(fresh, 2 * (size_t)page, 0);

	/* More pages than one pagemap read covers: all translated where frames are visible. */
	const size_t many = 600;
	uint8_t *big = kcom_alloc_pages(many * (size_t)page, 0);
	ck_assert_ptr_nonnull(big);
	memset(big, 1, many * (size_t)page);
	kcom_phys_t *phys = calloc(many, sizeof(*phys));
	ck_assert_ptr_nonnull(phys);
	kcom_phys_t probe;
	kcom_error_t visible = kcom_virt_to_phys(big, &probe);
	kcom_error_t err = kcom_virt_to_phys_pages(big, many, (size_t)page, phys);
	ck_assert_int_eq(err, visible == KCOM_OK ? KCOM_OK : KCOM_E_NOPHYS);
	if (err == KCOM_OK) {
		ck_assert_uint_eq(phys[0], probe);
		for (size_t i = 0; i < many; i++)
			ck_assert_uint_ne(phys[i], 0);
	}
	free(phys);
	kcom_free_pages(big, many * (size_t)page, 0);
	kcom_free(mem, (size_t)page, (size_t)page);
}
END_TEST

START_TEST(test_log_unknown_level)
{
	struct stderr_capture c;
	char buf[128];
	capture_stderr(&c);
	kcom_log((enum kcom_log_level)9, "from nowhere");
	kcom_log(KCOM_LOG_ERROR, NULL); /* dropped */
	captured_stderr(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "kcom: log: from nowhere\n");
}
END_TEST

/*
 * A host with only the required methods: the optional ones fall back as osenv.h says (no DMA
 * allocator, no page allocator, one thread id, translation page by page).
 */
static unsigned long bare_translations;
static int bare_translate_fails;

static kcom_error_t bare_virt_to_phys(void *ctx, const void *addr, kcom_phys_t *out_phys)
{
	(void)ctx;
	bare_translations++;
	if (bare_translate_fails)
		return KCOM_E_NOPHYS;
	*out_phys = (kcom_phys_t)(uintptr_t)addr + 0x1000;
	return KCOM_OK;
}

static struct kcom_osenv bare_env;

static void bare_install(void)
{
	const struct kcom_osenv *hosted = kcom_osenv_hosted();
	memset(&bare_env, 0, sizeof(bare_env));
	bare_env.alloc = hosted->alloc;
	bare_env.free = hosted->free;
	bare_env.pin = hosted->pin;
	bare_env.unpin = hosted->unpin;
	bare_env.virt_to_phys = bare_virt_to_phys;
	bare_env.lock_init = hosted->lock_init;
	bare_env.lock_fini = hosted->lock_fini;
	bare_env.lock_acquire = hosted->lock_acquire;
	bare_env.lock_release = hosted->lock_release;
	bare_env.log = hosted->log;
	bare_env.panic = hosted->panic;
	bare_translations = 0;
	bare_translate_fails = 0;
	kcom_osenv_set(&bare_env);
}

START_TEST(test_bare_host)
{
	bare_install();
	void *mem = (void *)&mem;
	ck_assert_int_eq(kcom_dma_alloc(64, NULL, &mem), KCOM_E_NOTIMPL);
	ck_assert_ptr_null(mem);
	kcom_dma_free(&mem, 64); /* nothing to give it to: ignored */
	ck_assert_uint_eq(kcom_thread_self(), 1);
	ck_assert_ptr_null(kcom_alloc_pages(4096, 0));
	kcom_free_pages(&mem, 4096, 0); /* ignored */

	/* No batch translation: one virt_to_phys per page, stopping at the first refusal. */
	kcom_phys_t out[3] = { 0, 0, 0 };
	const char *base = (const char *)(uintptr_t)0x100000;
	ck_assert_int_eq(kcom_virt_to_phys_pages(base, 3, 512, out), KCOM_OK);
	ck_assert_uint_eq(bare_translations, 3);
	ck_assert_uint_eq(out[0], 0x101000);
	ck_assert_uint_eq(out[2], 0x101400);
	bare_translate_fails = 1;
	ck_assert_int_eq(kcom_virt_to_phys_pages(base, 3, 512, out), KCOM_E_NOPHYS);
	ck_assert_uint_eq(bare_translations, 4);
	kcom_osenv_set(NULL);
	ck_assert_ptr_eq(kcom_osenv_get(), kcom_osenv_hosted());
}
END_TEST

/*
 * Forked cases (each changes its whole process).  Unprivileged: with no CAP_IPC_LOCK and
 * RLIMIT_MEMLOCK at 0, pin is refused (EPERM); a process that is not dumpable cannot open its
 * own pagemap; one that can sees no frame numbers.  Each answer is KCOM_E_NOPHYS, never a
 * made-up address.  A root runner drops to nobody with seteuid and comes back before exit, so
 * the coverage data can still be written.
 */
START_TEST(test_unprivileged)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *mem = touched_page((size_t)page);
	struct rlimit none = { 0, 0 };
	ck_assert_int_eq(setrlimit(RLIMIT_MEMLOCK, &none), 0);
	uid_t uid = geteuid();
	if (uid == 0)
		ck_assert_int_eq(seteuid(65534), 0);
	if (HOST_MLOCK)
		ck_assert_int_eq(kcom_pin(mem, (size_t)page), KCOM_E_ACCESSDENIED);

	kcom_phys_t phys = 7, pages[2] = { 7, 7 };
	if (uid == 0) {
		/* Changing the effective uid left the process undumpable: /proc/self is root's. */
		ck_assert_int_eq(prctl(PR_GET_DUMPABLE), 0);
		ck_assert_int_eq(kcom_virt_to_phys(mem, &phys), KCOM_E_NOPHYS);
		ck_assert_int_eq(kcom_virt_to_phys_pages(mem, 1, (size_t)page, pages), KCOM_E_NOPHYS);
		ck_assert_int_eq(prctl(PR_SET_DUMPABLE, 1), 0);
	}
	/* Readable now, but frame numbers show as 0 to the unprivileged. */
	ck_assert_int_eq(kcom_virt_to_phys(mem, &phys), KCOM_E_NOPHYS);
	ck_assert_uint_eq(phys, 0);
	ck_assert_int_eq(kcom_virt_to_phys_pages(mem, 1, (size_t)page, pages), KCOM_E_NOPHYS);
	if (uid == 0)
		ck_assert_int_eq(seteuid(0), 0);
	kcom_free(mem, (size_t)page, (size_t)page);
}
END_TEST

/* Out of file descriptors: pagemap cannot be opened. */
START_TEST(test_no_descriptors)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *mem = touched_page((size_t)page);
	struct rlimit was, none;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &was), 0);
	none = was;
	none.rlim_cur = 0;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
	kcom_phys_t phys = 7, pages[1] = { 7 };
	kcom_error_t one = kcom_virt_to_phys(mem, &phys);
	kcom_error_t many = kcom_virt_to_phys_pages(mem, 1, (size_t)page, pages);
	/* The limit back before asserting: the process needs descriptors to report and exit. */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &was), 0);
	ck_assert_int_eq(one, KCOM_E_NOPHYS);
	ck_assert_uint_eq(phys, 0);
	ck_assert_int_eq(many, KCOM_E_NOPHYS);
	kcom_free(mem, (size_t)page, (size_t)page);
}
END_TEST

static void never_called(void *arg)
{
	(void)arg;
	ck_abort_msg("an exit function that was refused ran");
}

/* Every pthread key taken before kcom asks for its one: thread_at_exit refuses, cleanly. */
START_TEST(test_no_thread_keys)
{
	pthread_key_t key;
	unsigned long taken = 0;
	while (pthread_key_create(&key, NULL) == 0)
		taken++;
	ck_assert_uint_gt(taken, 0);
	const struct kcom_osenv *hosted = kcom_osenv_hosted();
	ck_assert_int_eq(hosted->thread_at_exit(hosted->ctx, never_called, NULL), KCOM_E_OUTOFMEMORY);
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
	tcase_add_test(tc, test_pages);
	tcase_add_test(tc, test_pin_failures);
	tcase_add_test(tc, test_translate_edges);
	tcase_add_test(tc, test_log_unknown_level);
	tcase_add_test(tc, test_bare_host);
	suite_add_tcase(s, tc);
	/* A test that must die needs its own process: only when Check forks. */
	const char *fork_mode = getenv("CK_FORK");
	if (fork_mode == NULL || strcmp(fork_mode, "no") != 0) {
		tc = tcase_create("panic");
		tcase_add_test_raise_signal(tc, test_panic_aborts, SIGABRT);
		suite_add_tcase(s, tc);
		tc = tcase_create("limits");
		tcase_add_test(tc, test_unprivileged);
		tcase_add_test(tc, test_no_descriptors);
		tcase_add_test(tc, test_no_thread_keys);
		suite_add_tcase(s, tc);
	}
	return s;
}
