/*
 * Buffer pools (impls/pool.h): pages handed out by offset, all or nothing both ways; every bad
 * put refused with nothing returned; per-thread caches (I/O channels) on one thread and on
 * several at once, flushed by a thread's exit; creation failing at each allocation.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bufio/bufvec.h>
#include <com/com.h>
#include <com/debug.h>
#include <impls/dmabuf.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include <impls/pool.h>
#include "tests/contract.h"
#include "tests/plainio.h"
#include "tests/suites.h"
#include "tests/testenv.h"

#define PAGE 4096u
#define COUNT 256u

static void assert_sane(kcom_pool_t *p)
{
	kcom_debug_t *dbg;
	ck_assert_int_eq(kcom_pool_query(p, &kcom_debug_iid, (void **)&dbg), KCOM_OK);
	char why[128];
	kcom_error_t err = kcom_debug_check(dbg, why, sizeof(why));
	ck_assert_msg(KCOM_SUCCEEDED(err), "pool sanity: %s", why);
	kcom_debug_release(dbg);
}

static size_t free_pages(kcom_pool_t *p)
{
	struct kcom_pool_info info;
	ck_assert_int_eq(kcom_pool_info(p, &info), KCOM_OK);
	return info.free;
}

START_TEST(test_get_put)
{
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(PAGE, COUNT, NULL, &p), KCOM_OK);
	struct kcom_pool_info info;
	ck_assert_int_eq(kcom_pool_info(p, &info), KCOM_OK);
	ck_assert_uint_eq(info.page_size, PAGE);
	ck_assert_uint_eq(info.count, COUNT);
	ck_assert_uint_eq(info.free, COUNT);

	kcom_off_t offs[COUNT + 1];
	ck_assert_int_eq(kcom_pool_get(p, NULL, 3, offs), KCOM_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(offs[i] % PAGE, 0);
		ck_assert_int_lt(offs[i], (kcom_off_t)(COUNT * PAGE));
	}
	ck_assert_int_ne(offs[0], offs[1]);
	ck_assert_int_ne(offs[1], offs[2]);
	ck_assert_uint_eq(free_pages(p), COUNT - 3);
	assert_sane(p);

	/* The pages are the region's: write through it, read back. */
	kcom_bufio_t *region;
	ck_assert_int_eq(kcom_pool_region(p, &region), KCOM_OK);
	size_t got;
	ck_assert_int_eq(kcom_bufio_write(region, "page", offs[1], 4, &got), KCOM_OK);
	char back[4];
	ck_assert_int_eq(kcom_bufio_read(region, back, offs[1], 4, &got), KCOM_OK);
	ck_assert_mem_eq(back, "page", 4);
	kcom_bufio_release(region);

	/* All or nothing: more than are free takes nothing. */
	ck_assert_int_eq(kcom_pool_get(p, NULL, COUNT, offs + 3), KCOM_E_NOSPACE);
	ck_assert_uint_eq(free_pages(p), COUNT - 3);

	/* Bad puts, each refusing the whole list and returning nothing. */
	kcom_off_t bad[2];
	bad[0] = offs[0];
	bad[1] = offs[0] + 1; /* not page-aligned */
	ck_assert_int_eq(kcom_pool_put(p, NULL, 2, bad), KCOM_E_INVALIDARG);
	bad[1] = (kcom_off_t)(COUNT * PAGE); /* outside */
	ck_assert_int_eq(kcom_pool_put(p, NULL, 2, bad), KCOM_E_INVALIDARG);
	bad[1] = -(kcom_off_t)PAGE;
	ck_assert_int_eq(kcom_pool_put(p, NULL, 2, bad), KCOM_E_INVALIDARG);
	bad[1] = offs[0]; /* the same page twice in one list */
	ck_assert_int_eq(kcom_pool_put(p, NULL, 2, bad), KCOM_E_INVALIDARG);
	bad[1] = (offs[2] + PAGE) % (COUNT * PAGE); /* a page that is free */
	while (bad[1] == offs[0] || bad[1] == offs[1] || bad[1] == offs[2])
		bad[1] = (bad[1] + PAGE) % (COUNT * PAGE);
	ck_assert_int_eq(kcom_pool_put(p, NULL, 2, bad), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, NULL), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(free_pages(p), COUNT - 3);
	assert_sane(p);

	ck_assert_int_eq(kcom_pool_put(p, NULL, 3, offs), KCOM_OK);
	ck_assert_uint_eq(free_pages(p), COUNT);
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, offs), KCOM_E_INVALIDARG); /* double put */
	ck_assert_uint_eq(free_pages(p), COUNT);

	/* Every page, then none left. */
	ck_assert_int_eq(kcom_pool_get(p, NULL, COUNT, offs), KCOM_OK);
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, offs + COUNT), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_pool_get(p, NULL, 0, NULL), KCOM_OK);
	assert_sane(p);
	ck_assert_int_eq(kcom_pool_put(p, NULL, COUNT, offs), KCOM_OK);

	/* A membuf region does not wire: no physical addresses. */
	kcom_phys_t phys = 1;
	ck_assert_int_eq(kcom_pool_page_phys(p, 0, &phys), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(phys, 0);
	ck_assert_int_eq(kcom_pool_page_phys(p, 1, &phys), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

START_TEST(test_create_args)
{
	kcom_pool_t *p = (void *)1;
	ck_assert_int_eq(kcom_pool_create(3000, 4, NULL, &p), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(kcom_pool_create(32, 4, NULL, &p), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_create(PAGE, 0, NULL, &p), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_create(PAGE, 4, NULL, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_create((size_t)1 << 40, (size_t)1 << 30, NULL, &p), KCOM_E_OVERFLOW);
	/* A caller's region too small for the pages. */
	kcom_bufio_t *small;
	ck_assert_int_eq(kcom_membuf_create(PAGE * 3, &small), KCOM_OK);
	ck_assert_int_eq(kcom_pool_create(PAGE, 4, small, &p), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_pool_create(PAGE, 3, small, &p), KCOM_OK);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
	ck_assert_uint_eq(kcom_bufio_release(small), 0);
	/* Through the class table: 16 pages of 64 KiB. */
	ck_assert_int_eq(kcom_create(&kcom_pool_clsid, &kcom_pool_iid, (void **)&p), KCOM_OK);
	struct kcom_pool_info info;
	ck_assert_int_eq(kcom_pool_info(p, &info), KCOM_OK);
	ck_assert_uint_eq(info.page_size, KCOM_POOL_PAGE_SIZE);
	ck_assert_uint_eq(info.count, 16);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

/* Every method's and helper's NULLs and out-of-range offsets: refused, the pool unchanged. */
START_TEST(test_bad_args)
{
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(PAGE, 8, NULL, &p), KCOM_OK);
	ck_assert_int_eq(kcom_pool_region(p, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_info(p, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_page_phys(p, 0, NULL), KCOM_E_INVALIDARG);
	kcom_phys_t phys = 1;
	ck_assert_int_eq(kcom_pool_page_phys(p, -(kcom_off_t)PAGE, &phys), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(phys, 0);
	ck_assert_int_eq(kcom_pool_page_phys(p, 8 * PAGE, &phys), KCOM_E_INVALIDARG);

	struct kcom_iochannel *c = (void *)1;
	ck_assert_int_eq(kcom_pool_cache_open(NULL, &c), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(kcom_pool_cache_open(p, NULL), KCOM_E_INVALIDARG);

	kcom_off_t off;
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, &off), KCOM_OK);
	kcom_bufio_t *chain = (void *)1;
	ck_assert_int_eq(kcom_pool_chain(NULL, &off, 1, 10, &chain), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(chain);
	ck_assert_int_eq(kcom_pool_chain(p, &off, 1, 10, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_chain(p, NULL, 1, 10, &chain), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_chain(p, NULL, 0, 10, &chain), KCOM_E_INVALIDARG); /* bytes, no page */
	ck_assert_uint_eq(free_pages(p), 7); /* the page is still the caller's */

	/* No pages, no bytes: an empty message. */
	ck_assert_int_eq(kcom_pool_chain(p, NULL, 0, 0, &chain), KCOM_OK);
	size_t size = 1;
	ck_assert_int_eq(kcom_bufio_getsize(chain, &size), KCOM_OK);
	ck_assert_uint_eq(size, 0);
	ck_assert_uint_eq(kcom_bufio_release(chain), 0);

	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, &off), KCOM_OK);
	ck_assert_uint_eq(free_pages(p), 8);
	assert_sane(p);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

/* A region that cannot be mapped (a bufio with no map): no pool, the region untouched. */
START_TEST(test_create_unmappable_region)
{
	kcom_absio_t *plain;
	ck_assert_int_eq(plainio_create(4 * PAGE, PLAINIO_BUFIO, &plain), KCOM_OK);
	kcom_bufio_t *region;
	ck_assert_int_eq(kcom_absio_query(plain, &kcom_bufio_iid, (void **)&region), KCOM_OK);
	kcom_pool_t *p = (void *)1;
	testenv_install();
	ck_assert_int_eq(kcom_pool_create(PAGE, 4, region, &p), KCOM_E_NOTIMPL);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
	ck_assert_uint_eq(kcom_bufio_release(region), 1); /* the pool kept no reference */
	ck_assert_uint_eq(kcom_absio_release(plain), 0);
}
END_TEST

/* A host that cannot set up the pool's lock: no pool, and creation undoes all it did. */
START_TEST(test_create_no_lock)
{
	testenv_install();
	testenv_fail_locks(1);
	kcom_pool_t *p = (void *)1;
	ck_assert_int_eq(kcom_pool_create(PAGE, 8, NULL, &p), KCOM_E_OUTOFMEMORY);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* Through the class table: no memory, and an interface pools do not have. */
START_TEST(test_class_create_fails)
{
	kcom_pool_t *p = (void *)1;
	testenv_install();
	testenv_fail_at(1);
	ck_assert_int_eq(kcom_create(&kcom_pool_clsid, &kcom_pool_iid, (void **)&p), KCOM_E_OUTOFMEMORY);
	ck_assert(testenv_failure_hit());
	testenv_fail_at(0);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(kcom_create(&kcom_pool_clsid, &kcom_bufvec_iid, (void **)&p), KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* Creation with the Nth allocation failing: the error, nothing left behind. */
START_TEST(test_create_allocfail)
{
	unsigned long failures = 0;
	for (unsigned long nth = 1;; nth++) {
		ck_assert_uint_lt(nth, 100);
		testenv_install();
		kcom_pool_t *p = (void *)1;
		testenv_fail_at(nth);
		kcom_error_t err = kcom_pool_create(PAGE, 64, NULL, &p);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);
		if (hit) {
			ck_assert_int_eq(err, KCOM_E_OUTOFMEMORY);
			ck_assert_ptr_null(p);
			failures++;
		} else {
			ck_assert_int_eq(err, KCOM_OK);
			ck_assert_uint_eq(kcom_pool_release(p), 0);
		}
		ck_assert_uint_eq(testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		testenv_uninstall();
		if (!hit)
			break;
	}
	ck_assert_uint_gt(failures, 3);
}
END_TEST

/* Another device whose channels' contexts start with a pool's pointer. */
static kcom_pool_t *foreign_pool;
static int foreign_destroys;

static kcom_error_t foreign_create(void *dev, void *ctx)
{
	(void)dev;
	*(kcom_pool_t **)ctx = foreign_pool;
	return KCOM_OK;
}

static void foreign_destroy(void *dev, void *ctx)
{
	(void)dev, (void)ctx;
	foreign_destroys++;
}

/* One thread's cache: gets and puts through it; closing flushes it back. */
START_TEST(test_cache_one_thread)
{
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(PAGE, COUNT, NULL, &p), KCOM_OK);
	struct kcom_iochannel *c, *again;
	ck_assert_int_eq(kcom_pool_cache_open(p, &c), KCOM_OK);
	ck_assert_int_eq(kcom_pool_cache_open(p, &again), KCOM_OK);
	ck_assert_ptr_eq(c, again);
	ck_assert_int_eq(kcom_pool_cache_close(again), KCOM_OK);

	kcom_off_t offs[COUNT];
	for (int round = 0; round < 50; round++) {
		size_t n = 1 + (size_t)(round * 7) % 150;
		ck_assert_int_eq(kcom_pool_get(p, c, n, offs), KCOM_OK);
		ck_assert_uint_eq(free_pages(p), COUNT - n);
		assert_sane(p);
		ck_assert_int_eq(kcom_pool_put(p, c, n, offs), KCOM_OK);
		ck_assert_int_eq(kcom_pool_put(p, c, 1, offs), KCOM_E_INVALIDARG);
		ck_assert_uint_eq(free_pages(p), COUNT);
	}
	/* All the pages through a cache, and the cache's pages count as free. */
	ck_assert_int_eq(kcom_pool_get(p, c, COUNT, offs), KCOM_OK);
	ck_assert_int_eq(kcom_pool_get(p, c, 1, offs + COUNT - 1), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_pool_put(p, c, COUNT, offs), KCOM_OK);

	/* Another pool's cache is refused. */
	kcom_pool_t *other;
	struct kcom_iochannel *oc;
	ck_assert_int_eq(kcom_pool_create(PAGE, 4, NULL, &other), KCOM_OK);
	ck_assert_int_eq(kcom_pool_cache_open(other, &oc), KCOM_OK);
	ck_assert_int_eq(kcom_pool_get(p, oc, 1, offs), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_cache_close(oc), KCOM_OK);
	ck_assert_int_eq(kcom_pool_cache_close(oc), KCOM_E_INVALIDARG); /* closed already */
	ck_assert_uint_eq(kcom_pool_release(other), 0);

	/*
	 * Another device's channel, whose context even starts with this pool's pointer (a driver's
	 * own per-thread state naming its pool): get, put and close refuse it, and it still works.
	 */
	static int foreign_dev;
	foreign_pool = p;
	ck_assert_int_eq(kcom_iodev_register(&foreign_dev, foreign_create, foreign_destroy, 64), KCOM_OK);
	struct kcom_iochannel *fc;
	ck_assert_int_eq(kcom_iochannel_get(&foreign_dev, &fc), KCOM_OK);
	ck_assert_int_eq(kcom_pool_get(p, fc, 1, offs), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, offs), KCOM_OK);
	ck_assert_int_eq(kcom_pool_put(p, fc, 1, offs), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, offs), KCOM_OK);
	ck_assert_int_eq(kcom_pool_cache_close(fc), KCOM_E_INVALIDARG);
	ck_assert_int_eq(foreign_destroys, 0);
	ck_assert_ptr_eq(*(kcom_pool_t **)kcom_iochannel_ctx(fc), p);
	ck_assert_int_eq(kcom_iochannel_put(fc), KCOM_OK);
	ck_assert_int_eq(foreign_destroys, 1);
	ck_assert_int_eq(kcom_iodev_unregister(&foreign_dev), KCOM_OK);

	ck_assert_int_eq(kcom_pool_cache_close(c), KCOM_OK);
	ck_assert_uint_eq(free_pages(p), COUNT);
	assert_sane(p);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

/*
 * A cache holds a reference to its pool: a pool released with a cache open keeps serving it,
 * and goes with the cache's close (0) or with its thread's exit (1), freeing everything.
 */
static void *cache_outlives_body(void *arg)
{
	int exit_open = *(int *)arg;
	kcom_pool_t *p;
	struct kcom_iochannel *c;
	kcom_off_t offs[3];
	if (KCOM_FAILED(kcom_pool_create(PAGE, 16, NULL, &p)) || KCOM_FAILED(kcom_pool_cache_open(p, &c)))
		return (void *)1;
	if (kcom_pool_addref(p) != 3 || kcom_pool_release(p) != 2)
		return (void *)2; /* ours and the cache's */
	if (KCOM_FAILED(kcom_pool_get(p, c, 3, offs)) || kcom_pool_release(p) != 1)
		return (void *)3;
	/* Only the cache holds the pool now, and it still works. */
	if (KCOM_FAILED(kcom_pool_put(p, c, 3, offs)) || KCOM_FAILED(kcom_pool_get(p, c, 2, offs)) ||
	    KCOM_FAILED(kcom_pool_put(p, c, 2, offs)) || kcom_pool_put(p, c, 1, offs) != KCOM_E_INVALIDARG)
		return (void *)4;
	if (!exit_open && KCOM_FAILED(kcom_pool_cache_close(c)))
		return (void *)5;
	return NULL;
}

START_TEST(test_cache_outlives_release)
{
	int exit_open = _i;
	testenv_install();
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, cache_outlives_body, &exit_open), 0);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
	/* The pool, its region, its cache and the thread's record: all freed. */
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* Threads at once, each with its cache, each getting and putting its own pages. */
#define NTHREADS 4
#define ROUNDS 20000

struct worker {
	kcom_pool_t *pool;
	int exit_open; /* leave the cache open: the thread's exit flushes it */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kcom_iochannel *c;
	if (KCOM_FAILED(kcom_pool_cache_open(w->pool, &c)))
		return (void *)1;
	kcom_off_t offs[8];
	for (int r = 0; r < ROUNDS; r++) {
		size_t n = 1 + (size_t)r % 8;
		if (KCOM_FAILED(kcom_pool_get(w->pool, c, n, offs)))
			return (void *)2;
		if (KCOM_FAILED(kcom_pool_put(w->pool, c, n, offs)))
			return (void *)3;
	}
	/* Keep a few pages in the cache on the way out. */
	if (KCOM_FAILED(kcom_pool_get(w->pool, c, 3, offs)) || KCOM_FAILED(kcom_pool_put(w->pool, c, 3, offs)))
		return (void *)4;
	if (!w->exit_open && KCOM_FAILED(kcom_pool_cache_close(c)))
		return (void *)5;
	return NULL;
}

START_TEST(test_cache_threads)
{
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(PAGE, COUNT, NULL, &p), KCOM_OK);
	struct worker w = { p, _i };
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w), 0);
	for (int i = 0; i < NTHREADS; i++) {
		void *ret;
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_uint_eq(free_pages(p), COUNT);
	assert_sane(p);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

/* ---- messages: chains over pages ---- */

#define MSG 1000000u /* Homa's largest message */

START_TEST(test_chain_message)
{
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(0, 64, NULL, &p), KCOM_OK);
	size_t npages = (MSG + KCOM_POOL_PAGE_SIZE - 1) / KCOM_POOL_PAGE_SIZE;
	kcom_off_t offs[16];
	ck_assert_uint_eq(npages, 16);
	ck_assert_int_eq(kcom_pool_get(p, NULL, npages, offs), KCOM_OK);
	/* The "device" fills the pages through the region, as DMA would. */
	kcom_bufio_t *region;
	ck_assert_int_eq(kcom_pool_region(p, &region), KCOM_OK);
	uint8_t *page = malloc(KCOM_POOL_PAGE_SIZE);
	for (size_t i = 0; i < npages; i++) {
		for (size_t j = 0; j < KCOM_POOL_PAGE_SIZE; j++)
			page[j] = (uint8_t)((i * KCOM_POOL_PAGE_SIZE + j) * 13 + 5);
		size_t put;
		ck_assert_int_eq(kcom_bufio_write(region, page, offs[i], KCOM_POOL_PAGE_SIZE, &put), KCOM_OK);
	}
	kcom_bufio_release(region);

	/* Bad shapes and pages are refused, and the pages stay the caller's. */
	kcom_bufio_t *chain = (void *)1;
	ck_assert_int_eq(kcom_pool_chain(p, offs, npages, (npages - 1) * KCOM_POOL_PAGE_SIZE, &chain), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(chain);
	ck_assert_int_eq(kcom_pool_chain(p, offs, npages, npages * KCOM_POOL_PAGE_SIZE + 1, &chain), KCOM_E_INVALIDARG);
	kcom_off_t twice[2] = { offs[0], offs[0] };
	ck_assert_int_eq(kcom_pool_chain(p, twice, 2, 2 * KCOM_POOL_PAGE_SIZE, &chain), KCOM_E_INVALIDARG);
	kcom_off_t odd[1] = { offs[0] + 1 };
	ck_assert_int_eq(kcom_pool_chain(p, odd, 1, 10, &chain), KCOM_E_INVALIDARG);
	kcom_off_t spare;
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, &spare), KCOM_OK);
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, &spare), KCOM_OK);
	ck_assert_int_eq(kcom_pool_chain(p, &spare, 1, 10, &chain), KCOM_E_INVALIDARG); /* a free page */
	ck_assert_uint_eq(free_pages(p), 64 - npages);

	/* Allocation failure while building: the error, and the pages are still the caller's. */
	for (unsigned long nth = 1;; nth++) {
		ck_assert_uint_lt(nth, 100);
		testenv_install();
		testenv_fail_at(nth);
		kcom_error_t err = kcom_pool_chain(p, offs, npages, MSG, &chain);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);
		testenv_uninstall();
		if (!hit) {
			ck_assert_int_eq(err, KCOM_OK);
			break;
		}
		ck_assert_int_eq(err, KCOM_E_OUTOFMEMORY);
		ck_assert_ptr_null(chain);
		ck_assert_uint_eq(free_pages(p), 64 - npages);
	}

	/*
	 * The chain owns its pages now: a put of one is a double return, a second chain over one
	 * takes a page twice; both are refused and change nothing, also beside a page of ours.
	 */
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, &offs[3]), KCOM_E_INVALIDARG);
	kcom_off_t mixed[2];
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, &mixed[0]), KCOM_OK);
	mixed[1] = offs[5];
	ck_assert_int_eq(kcom_pool_put(p, NULL, 2, mixed), KCOM_E_INVALIDARG);
	kcom_bufio_t *second = (void *)1;
	ck_assert_int_eq(kcom_pool_chain(p, mixed, 2, KCOM_POOL_PAGE_SIZE + 1, &second), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(second);
	ck_assert_int_eq(kcom_pool_chain(p, &offs[5], 1, 1, &second), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(free_pages(p), 64 - npages - 1);
	assert_sane(p);
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, &mixed[0]), KCOM_OK); /* still ours */
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, &mixed[0]), KCOM_OK);
	ck_assert_int_ne(mixed[0], offs[3]); /* the refused put gave nothing back */
	ck_assert_int_eq(kcom_pool_put(p, NULL, 1, &mixed[0]), KCOM_OK);

	/* The chain reads as the pages did, with no copy: a page's bytes are the chain's. */
	size_t size;
	ck_assert_int_eq(kcom_bufio_getsize(chain, &size), KCOM_OK);
	ck_assert_uint_eq(size, MSG);
	uint8_t *all = malloc(MSG);
	size_t got;
	ck_assert_int_eq(kcom_bufio_read(chain, all, 0, MSG, &got), KCOM_OK);
	ck_assert_uint_eq(got, MSG);
	for (size_t i = 0; i < MSG; i += 4999)
		ck_assert_uint_eq(all[i], (uint8_t)(i * 13 + 5));
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(chain, &addr, KCOM_POOL_PAGE_SIZE, 100), KCOM_OK);
	kcom_bufio_t *r2;
	ck_assert_int_eq(kcom_pool_region(p, &r2), KCOM_OK);
	void *raddr;
	ck_assert_int_eq(kcom_bufio_map(r2, &raddr, offs[1], 100), KCOM_OK);
	ck_assert_ptr_eq(addr, raddr); /* the page itself */
	ck_assert_int_eq(kcom_bufio_unmap(r2, raddr, offs[1], 100), KCOM_OK);
	kcom_bufio_release(r2);
	ck_assert_int_eq(kcom_bufio_unmap(chain, addr, KCOM_POOL_PAGE_SIZE, 100), KCOM_OK);

	/* Pages go back only when every chain sharing them is gone; the pool lives that long. */
	kcom_bufio_t *copy;
	ck_assert_int_eq(kcom_bufio_copy(chain, 0, MSG, &copy), KCOM_OK);
	ck_assert_uint_eq(kcom_pool_release(p), npages); /* each of the chain's pages holds it */
	ck_assert_uint_eq(kcom_bufio_release(chain), 0);
	ck_assert_uint_eq(free_pages(p), 64 - npages);
	ck_assert_int_eq(kcom_bufio_read(copy, all, 0, MSG, &got), KCOM_OK);
	ck_assert_uint_eq(all[MSG - 1], (uint8_t)((MSG - 1) * 13 + 5));
	kcom_pool_addref(p);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_uint_eq(free_pages(p), 64);
	assert_sane(p);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
	free(all);
	free(page);
}
END_TEST

/* A DMA-backed pool: each page's physical address is known, and a chain over pages wires. */
START_TEST(test_dma_pool_chain)
{
	const char *why = dmabuf_test_probe(CAP_WIRES);
	if (why != NULL) {
		fprintf(stderr, "SKIP: pool over a dmabuf: %s\n", why);
		return;
	}
	kcom_bufio_t *region;
	ck_assert_int_eq(kcom_dmabuf_create(16 * PAGE, 0, NULL, &region), KCOM_OK);
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(PAGE, 16, region, &p), KCOM_OK);
	kcom_bufio_release(region); /* the pool holds it */
	kcom_off_t offs[3];
	ck_assert_int_eq(kcom_pool_get(p, NULL, 3, offs), KCOM_OK);
	kcom_phys_t phys[3];
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(kcom_pool_page_phys(p, offs[i], &phys[i]), KCOM_OK);
		void *addr;
		ck_assert_int_eq(kcom_pool_region(p, &region), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_map(region, &addr, offs[i], PAGE), KCOM_OK);
		ck_assert_uint_eq(phys[i], test_pagemap_phys(addr)); /* what the host says, read apart */
		ck_assert_int_eq(kcom_bufio_unmap(region, addr, offs[i], PAGE), KCOM_OK);
		kcom_bufio_release(region);
	}
	kcom_bufio_t *chain;
	ck_assert_int_eq(kcom_pool_chain(p, offs, 3, 2 * PAGE + 100, &chain), KCOM_OK);

	/*
	 * One address inside a page; across two pages only where they lie in one of the region's
	 * segments (next to each other in the region, and in memory): the chain does not join
	 * segments the region gave apart, since it cannot know whether its device's constraints
	 * cut them, even where the frames happen to run on (doc/pools.md).
	 */
	kcom_phys_t w;
	ck_assert_int_eq(kcom_bufio_wire(chain, &w, PAGE + 10, 100), KCOM_OK);
	ck_assert_uint_eq(w, phys[1] + 10);
	ck_assert_int_eq(kcom_bufio_setsize(chain, 10), KCOM_E_BUSY); /* wired: the size is frozen */
	ck_assert_int_eq(kcom_bufio_unwire(chain, w, PAGE + 10, 99), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_unwire(chain, w, PAGE + 10, 100), KCOM_OK);
	kcom_error_t err = kcom_bufio_wire(chain, &w, PAGE - 10, 20);
	int one_segment = offs[1] == offs[0] + PAGE && phys[0] + PAGE == phys[1];
	ck_assert(err == (one_segment ? KCOM_OK : KCOM_E_NOTCONTIG));
	if (err == KCOM_OK)
		ck_assert_int_eq(kcom_bufio_unwire(chain, w, PAGE - 10, 20), KCOM_OK);

	/* The segment list covers the message, page by page (adjacent frames merged). */
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(chain, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_physseg segs[4];
	size_t count;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 2 * PAGE + 100, segs, 4, &count), KCOM_OK);
	size_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += segs[i].len;
	ck_assert_uint_eq(total, 2 * PAGE + 100);
	ck_assert_uint_eq(segs[0].addr, phys[0]);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, 2 * PAGE + 100, segs, count), KCOM_OK);
	kcom_bufvec_release(vec);

	/*
	 * A copy shares the pages: neither side wires them (a device's writes would reach the
	 * other), until the copy is gone.  Nothing is held by the refusals.
	 */
	kcom_bufio_t *copy;
	ck_assert_int_eq(kcom_bufio_copy(chain, 0, 2 * PAGE + 100, &copy), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_wire(chain, &w, PAGE + 10, 100), KCOM_E_BUSY);
	ck_assert_uint_eq(w, 0);
	ck_assert_int_eq(kcom_bufio_wire(copy, &w, PAGE + 10, 100), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_bufio_query(chain, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 2 * PAGE + 100, segs, 4, &count), KCOM_E_BUSY);
	ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_int_eq(kcom_bufio_wire(chain, &w, PAGE + 10, 100), KCOM_OK);
	ck_assert_uint_eq(w, phys[1] + 10);
	/* Wired first, then copied: the copy has its own bytes, so the wiring stands. */
	ck_assert_int_eq(kcom_bufio_copy(chain, 0, 2 * PAGE + 100, &copy), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_wire(copy, &w, PAGE + 10, 100), KCOM_E_NOTIMPL); /* ordinary clusters */
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_int_eq(kcom_bufio_unwire(chain, phys[1] + 10, PAGE + 10, 100), KCOM_OK);

	/* An ordinary cluster (bytes appended past the pages) has no physical address. */
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(chain, "tail", 2 * PAGE + 100, 4, &put), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_wire(chain, &w, 2 * PAGE + 100, 4), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(kcom_bufio_release(chain), 0);
	ck_assert_uint_eq(free_pages(p), 16);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

/*
 * Pool pages larger than the region's frames (64 KiB pages over 4 KiB pages of a dmabuf): a
 * chain over them wires as the list of the frames' runs, each address the host's own, and one
 * wire of a whole page works exactly where its frames are adjacent.  _i 1: the region was made
 * for a device with 4 KiB segments that cross no 4 KiB line, and the chain keeps to that, also
 * where frames run on.
 */
#define BIG (64u * 1024)
#define NBIG 32u
START_TEST(test_dma_pool_scattered)
{
	const char *why = dmabuf_test_probe(CAP_WIRES);
	if (why != NULL) {
		fprintf(stderr, "SKIP: pool over a dmabuf: %s\n", why);
		return;
	}
	struct kcom_dma_constraints small = { .boundary = PAGE, .max_seg = PAGE };
	kcom_bufio_t *region;
	/* 2 MiB: huge pages where the host has them, so frames run on for the constraints to cut. */
	ck_assert_int_eq(kcom_dmabuf_create(NBIG * BIG, 0, _i ? &small : NULL, &region), KCOM_OK);
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(BIG, NBIG, region, &p), KCOM_OK);
	kcom_off_t offs[2];
	ck_assert_int_eq(kcom_pool_get(p, NULL, 2, offs), KCOM_OK);
	void *base;
	ck_assert_int_eq(kcom_bufio_map(region, &base, 0, NBIG * BIG), KCOM_OK);
	kcom_bufio_t *chain;
	size_t len = 2 * BIG - 10;
	ck_assert_int_eq(kcom_pool_chain(p, offs, 2, len, &chain), KCOM_OK);

	/* Each page: one address where its frames run on, else NOTCONTIG, for the page and its chain. */
	for (int k = 0; k < 2; k++) {
		uint8_t *page = (uint8_t *)base + offs[k];
		int adjacent = !_i;
		for (size_t b = PAGE; b < BIG; b += PAGE)
			adjacent &= test_pagemap_phys(page + b) == test_pagemap_phys(page) + b;
		kcom_phys_t phys, w;
		ck_assert_int_eq(kcom_pool_page_phys(p, offs[k], &phys), adjacent ? KCOM_OK : KCOM_E_NOTCONTIG);
		kcom_error_t err = kcom_bufio_wire(chain, &w, (kcom_off_t)k * BIG, BIG - 10);
		ck_assert_int_eq(err, adjacent ? KCOM_OK : KCOM_E_NOTCONTIG);
		if (adjacent) {
			ck_assert_uint_eq(w, test_pagemap_phys(page));
			ck_assert_int_eq(kcom_bufio_unwire(chain, w, (kcom_off_t)k * BIG, BIG - 10), KCOM_OK);
		}
	}

	/* The segment list: in order, covering the message, every byte where the host says. */
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(chain, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_physseg segs[2 * BIG / PAGE];
	size_t count;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 5, len - 5, segs, 2 * BIG / PAGE, &count), KCOM_OK);
	size_t at = 5;
	for (size_t i = 0; i < count; i++) {
		for (size_t b = 0; b < segs[i].len; b += PAGE - (at + b) % PAGE) {
			size_t o = at + b;
			uint8_t *byte = (uint8_t *)base + offs[o / BIG] + o % BIG;
			ck_assert_uint_eq(segs[i].addr + b, test_pagemap_phys(byte));
		}
		if (_i) /* the device's limits */
			ck_assert(segs[i].len <= PAGE && segs[i].addr / PAGE == (segs[i].addr + segs[i].len - 1) / PAGE);
		at += segs[i].len;
	}
	ck_assert_uint_eq(at, len);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 5, len - 5, segs, count), KCOM_OK);
	kcom_bufvec_release(vec);
	ck_assert_int_eq(kcom_bufio_unmap(region, base, 0, NBIG * BIG), KCOM_OK);
	kcom_bufio_release(region);
	ck_assert_uint_eq(kcom_bufio_release(chain), 0);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

/*
 * A chain over one pinned page, appended to itself up to the size limit, describes about 2^51
 * segments of that page over a few dozen nodes.  wire and wire_vec walk a shared range only so
 * far (2^26 pieces) and say KCOM_E_BUSY, holding nothing; the walk took years before.  Tagged
 * slow: each refusal walks 2^26 pieces.
 */
START_TEST(test_dma_pool_chain_self_appended)
{
	const char *why = dmabuf_test_probe(CAP_WIRES);
	if (why != NULL) {
		fprintf(stderr, "SKIP: pool over a dmabuf: %s\n", why);
		return;
	}
	kcom_bufio_t *region, *io;
	ck_assert_int_eq(kcom_dmabuf_create(4 * PAGE, 0, NULL, &region), KCOM_OK);
	kcom_pool_t *p;
	ck_assert_int_eq(kcom_pool_create(PAGE, 4, region, &p), KCOM_OK);
	kcom_bufio_release(region);
	kcom_off_t off;
	ck_assert_int_eq(kcom_pool_get(p, NULL, 1, &off), KCOM_OK);
	ck_assert_int_eq(kcom_pool_chain(p, &off, 1, PAGE, &io), KCOM_OK);
	kcom_phys_t w = 1;
	ck_assert_int_eq(kcom_bufio_wire(io, &w, 0, PAGE), KCOM_OK); /* one page of its own wires */
	ck_assert_int_eq(kcom_bufio_unwire(io, w, 0, PAGE), KCOM_OK);
	kcom_chain_t *ch;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_chain_iid, (void **)&ch), KCOM_OK);
	const size_t max = (size_t)KCOM_OFF_MAX;
	size_t size = PAGE;
	while (size < max) {
		size_t more = size < max - size ? size : max - size;
		ck_assert_int_eq(kcom_chain_append(ch, io, 0, more), KCOM_OK);
		size += more;
	}
	ck_assert_int_eq(kcom_bufio_wire(io, &w, 0, max), KCOM_E_BUSY);
	ck_assert_uint_eq(w, 0);
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_physseg segs[4];
	size_t count = 7;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, max, segs, 4, &count), KCOM_E_BUSY);
	ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	ck_assert_int_eq(kcom_bufio_setsize(io, PAGE), KCOM_OK); /* nothing was left held */
	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	ck_assert_uint_eq(kcom_pool_release(p), 0);
}
END_TEST

Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_get_put);
	tcase_add_test(tc, test_create_args);
	tcase_add_test(tc, test_create_allocfail);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_create_unmappable_region);
	tcase_add_test(tc, test_class_create_fails);
	tcase_add_test(tc, test_create_no_lock);
	tcase_add_test(tc, test_cache_one_thread);
	tcase_add_loop_test(tc, test_cache_threads, 0, 2);
	tcase_add_loop_test(tc, test_cache_outlives_release, 0, 2);
	tcase_add_test(tc, test_chain_message);
	tcase_add_test(tc, test_dma_pool_chain);
	tcase_add_loop_test(tc, test_dma_pool_scattered, 0, 2);
	suite_add_tcase(s, tc);

	/* Tagged "slow", which check-valgrind leaves out (valgrind is ~40x slower). */
	tc = tcase_create("pool-large");
	tcase_set_tags(tc, "slow");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_dma_pool_chain_self_appended);
	suite_add_tcase(s, tc);
	return s;
}
