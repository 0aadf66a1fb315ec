/* The counting, failing osenv of tests/testenv.h. */
#include "config.h"

#include "tests/testenv.h"

static const struct kcom_osenv *testenv_base;
static unsigned long testenv_nallocs, testenv_nfrees, testenv_countdown;
static int testenv_hit;
static long long testenv_bytes, testenv_page_bytes;
static size_t testenv_most; /* allocations of more bytes fail; 0: no limit */

static void *testenv_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	unsigned long left = __atomic_load_n(&testenv_countdown, __ATOMIC_RELAXED);
	if (left != 0 && __atomic_sub_fetch(&testenv_countdown, 1, __ATOMIC_RELAXED) == 0) {
		__atomic_store_n(&testenv_hit, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	size_t most = __atomic_load_n(&testenv_most, __ATOMIC_RELAXED);
	if (most != 0 && size > most)
		return NULL;
	void *p = testenv_base->alloc(testenv_base->ctx, size, align);
	if (p != NULL) {
		__atomic_add_fetch(&testenv_nallocs, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&testenv_bytes, (long long)size, __ATOMIC_RELAXED);
	}
	return p;
}

static void testenv_free(void *ctx, void *ptr, size_t size, size_t align)
{
	(void)ctx;
	__atomic_add_fetch(&testenv_nfrees, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&testenv_bytes, (long long)size, __ATOMIC_RELAXED);
	testenv_base->free(testenv_base->ctx, ptr, size, align);
}

#define TESTENV_FORWARD(ret, name, params, args) \
	static ret testenv_##name params { (void)ctx; return testenv_base->name args; }

/* Pins: the Nth from now fails with a chosen error; the ranges pinned are recorded. */
static unsigned long testenv_pin_countdown, testenv_npins;
static kcom_error_t testenv_pin_error;
static int testenv_pin_hit;
static int testenv_no_phys;
static struct testenv_range testenv_pins[TESTENV_MAX_PINS];
static kcom_lock_t testenv_pins_lock;
static int testenv_pins_lock_ready;

static void testenv_pins_record(void *addr, size_t len, int add)
{
	if (!testenv_pins_lock_ready)
		return;
	testenv_base->lock_acquire(testenv_base->ctx, &testenv_pins_lock);
	for (size_t i = 0; i < TESTENV_MAX_PINS; i++) {
		struct testenv_range *r = &testenv_pins[i];
		if (add && r->addr == NULL) {
			r->addr = addr;
			r->len = len;
			break;
		}
		if (!add && r->addr == addr && r->len == len) {
			r->addr = NULL;
			r->len = 0;
			break;
		}
	}
	testenv_base->lock_release(testenv_base->ctx, &testenv_pins_lock);
}

static kcom_error_t testenv_pin(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	unsigned long left = __atomic_load_n(&testenv_pin_countdown, __ATOMIC_RELAXED);
	if (left != 0 && __atomic_sub_fetch(&testenv_pin_countdown, 1, __ATOMIC_RELAXED) == 0) {
		__atomic_store_n(&testenv_pin_hit, 1, __ATOMIC_RELAXED);
		return testenv_pin_error;
	}
	kcom_error_t err = testenv_base->pin(testenv_base->ctx, addr, len);
	if (KCOM_SUCCEEDED(err)) {
		__atomic_add_fetch(&testenv_npins, 1, __ATOMIC_RELAXED);
		testenv_pins_record(addr, len, 1);
	}
	return err;
}

static kcom_error_t testenv_unpin(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	testenv_pins_record(addr, len, 0);
	return testenv_base->unpin(testenv_base->ctx, addr, len);
}

static testenv_xlate_fn testenv_xlate;

static kcom_error_t testenv_virt_to_phys(void *ctx, const void *addr, kcom_phys_t *out)
{
	(void)ctx;
	if (__atomic_load_n(&testenv_no_phys, __ATOMIC_RELAXED)) {
		*out = 0;
		return KCOM_E_NOPHYS;
	}
	if (testenv_xlate != NULL)
		return testenv_xlate(addr, 1, 1, out);
	return testenv_base->virt_to_phys(testenv_base->ctx, addr, out);
}

static kcom_error_t testenv_virt_to_phys_pages(void *ctx, const void *addr, size_t npages, size_t page,
                                               kcom_phys_t *out)
{
	(void)ctx;
	if (__atomic_load_n(&testenv_no_phys, __ATOMIC_RELAXED))
		return KCOM_E_NOPHYS;
	if (testenv_xlate != NULL)
		return testenv_xlate(addr, npages, page, out);
	return testenv_base->virt_to_phys_pages(testenv_base->ctx, addr, npages, page, out);
}

static void *testenv_dma_alloc(void *ctx, size_t size, const struct kcom_dma_constraints *c)
{
	(void)ctx;
	return testenv_base->dma_alloc(testenv_base->ctx, size, c);
}

static void testenv_dma_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	testenv_base->dma_free(testenv_base->ctx, ptr, size);
}

static uintptr_t testenv_thread_self(void *ctx)
{
	(void)ctx;
	return testenv_base->thread_self(testenv_base->ctx);
}

static void *testenv_alloc_pages(void *ctx, size_t size, unsigned flags)
{
	(void)ctx;
	void *p = testenv_base->alloc_pages(testenv_base->ctx, size, flags);
	if (p != NULL)
		__atomic_add_fetch(&testenv_page_bytes, (long long)size, __ATOMIC_RELAXED);
	return p;
}

static void testenv_free_pages(void *ctx, void *ptr, size_t size, unsigned flags)
{
	(void)ctx;
	if (ptr != NULL)
		__atomic_sub_fetch(&testenv_page_bytes, (long long)size, __ATOMIC_RELAXED);
	testenv_base->free_pages(testenv_base->ctx, ptr, size, flags);
}

static kcom_error_t testenv_thread_at_exit(void *ctx, void (*fn)(void *arg), void *arg)
{
	(void)ctx;
	return testenv_base->thread_at_exit(testenv_base->ctx, fn, arg);
}
/* Lock setup: fails on demand (a host out of lock resources). */
static int testenv_no_locks;

static kcom_error_t testenv_lock_init(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	if (__atomic_load_n(&testenv_no_locks, __ATOMIC_RELAXED))
		return KCOM_E_OUTOFMEMORY;
	return testenv_base->lock_init(testenv_base->ctx, lock);
}
TESTENV_FORWARD(void, lock_fini, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, lock_acquire, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, lock_release, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, log, (void *ctx, enum kcom_log_level level, const char *msg), (testenv_base->ctx, level, msg))

__attribute__((noreturn)) static void testenv_panic(void *ctx, const char *msg)
{
	(void)ctx;
	testenv_base->panic(testenv_base->ctx, msg);
}

/* The optional slots are filled at install, where the base has them. */
static struct kcom_osenv testenv_osenv = {
	.alloc = testenv_alloc,
	.free = testenv_free,
	.pin = testenv_pin,
	.unpin = testenv_unpin,
	.virt_to_phys = testenv_virt_to_phys,
	.lock_init = testenv_lock_init,
	.lock_fini = testenv_lock_fini,
	.lock_acquire = testenv_lock_acquire,
	.lock_release = testenv_lock_release,
	.log = testenv_log,
	.panic = testenv_panic,
	.ctx = NULL,
};

void testenv_install(void)
{
	testenv_base = kcom_osenv_hosted();
	testenv_nallocs = testenv_nfrees = testenv_countdown = 0;
	testenv_hit = 0;
	testenv_most = 0;
	testenv_bytes = testenv_page_bytes = 0;
	testenv_pin_countdown = testenv_npins = 0;
	testenv_pin_hit = 0;
	testenv_no_phys = 0;
	testenv_no_locks = 0;
	testenv_xlate = NULL;
	if (!testenv_pins_lock_ready)
		testenv_pins_lock_ready = KCOM_SUCCEEDED(testenv_base->lock_init(testenv_base->ctx, &testenv_pins_lock));
	testenv_osenv.virt_to_phys_pages = testenv_base->virt_to_phys_pages ? testenv_virt_to_phys_pages : NULL;
	testenv_osenv.dma_alloc = testenv_base->dma_alloc ? testenv_dma_alloc : NULL;
	testenv_osenv.dma_free = testenv_base->dma_free ? testenv_dma_free : NULL;
	testenv_osenv.thread_self = testenv_base->thread_self ? testenv_thread_self : NULL;
	testenv_osenv.thread_at_exit = testenv_base->thread_at_exit ? testenv_thread_at_exit : NULL;
	testenv_osenv.alloc_pages = testenv_base->alloc_pages ? testenv_alloc_pages : NULL;
	testenv_osenv.free_pages = testenv_base->free_pages ? testenv_free_pages : NULL;
	kcom_osenv_set(&testenv_osenv);
}

void testenv_uninstall(void)
{
	kcom_osenv_set(NULL);
}

void testenv_fail_at(unsigned long nth)
{
	__atomic_store_n(&testenv_hit, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&testenv_countdown, nth, __ATOMIC_RELAXED);
}

void testenv_fail_above(size_t bytes)
{
	__atomic_store_n(&testenv_most, bytes, __ATOMIC_RELAXED);
}

int testenv_failure_hit(void)
{
	return __atomic_load_n(&testenv_hit, __ATOMIC_RELAXED);
}

unsigned long testenv_allocs(void)
{
	return __atomic_load_n(&testenv_nallocs, __ATOMIC_RELAXED);
}

unsigned long testenv_frees(void)
{
	return __atomic_load_n(&testenv_nfrees, __ATOMIC_RELAXED);
}

long long testenv_bytes_outstanding(void)
{
	return __atomic_load_n(&testenv_bytes, __ATOMIC_RELAXED);
}

long long testenv_pages_outstanding(void)
{
	return __atomic_load_n(&testenv_page_bytes, __ATOMIC_RELAXED);
}

void testenv_fail_pin_at(unsigned long nth, kcom_error_t err)
{
	__atomic_store_n(&testenv_pin_hit, 0, __ATOMIC_RELAXED);
	testenv_pin_error = err;
	__atomic_store_n(&testenv_pin_countdown, nth, __ATOMIC_RELAXED);
}

int testenv_pin_failure_hit(void)
{
	return __atomic_load_n(&testenv_pin_hit, __ATOMIC_RELAXED);
}

unsigned long testenv_pin_count(void)
{
	return __atomic_load_n(&testenv_npins, __ATOMIC_RELAXED);
}

void testenv_fail_translation(int on)
{
	__atomic_store_n(&testenv_no_phys, on, __ATOMIC_RELAXED);
}

size_t testenv_pinned(struct testenv_range *out, size_t max)
{
	size_t n = 0;
	if (!testenv_pins_lock_ready)
		return 0;
	testenv_base->lock_acquire(testenv_base->ctx, &testenv_pins_lock);
	for (size_t i = 0; i < TESTENV_MAX_PINS; i++)
		if (testenv_pins[i].addr != NULL && n < max)
			out[n++] = testenv_pins[i];
	testenv_base->lock_release(testenv_base->ctx, &testenv_pins_lock);
	return n;
}

void testenv_fail_locks(int on)
{
	__atomic_store_n(&testenv_no_locks, on, __ATOMIC_RELAXED);
}

void testenv_hide_pages(int on)
{
	testenv_osenv.alloc_pages = on || testenv_base->alloc_pages == NULL ? NULL : testenv_alloc_pages;
}

void testenv_fake_translation(testenv_xlate_fn fn)
{
	testenv_xlate = fn;
	/* Batch translation goes through the fake even where the base has none. */
	testenv_osenv.virt_to_phys_pages =
		fn != NULL || testenv_base->virt_to_phys_pages != NULL ? testenv_virt_to_phys_pages : NULL;
}
