/* The counting, failing osenv of tests/testenv.h. */
#include "config.h"

#include "tests/testenv.h"

static const struct kcom_osenv *testenv_base;
static unsigned long testenv_nallocs, testenv_nfrees, testenv_countdown;
static int testenv_hit;
static long long testenv_bytes;

static void *testenv_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	unsigned long left = __atomic_load_n(&testenv_countdown, __ATOMIC_RELAXED);
	if (left != 0 && __atomic_sub_fetch(&testenv_countdown, 1, __ATOMIC_RELAXED) == 0) {
		__atomic_store_n(&testenv_hit, 1, __ATOMIC_RELAXED);
		return NULL;
	}
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
TESTENV_FORWARD(kcom_error_t, pin, (void *ctx, void *addr, size_t len), (testenv_base->ctx, addr, len))
TESTENV_FORWARD(kcom_error_t, unpin, (void *ctx, void *addr, size_t len), (testenv_base->ctx, addr, len))
TESTENV_FORWARD(kcom_error_t, virt_to_phys, (void *ctx, const void *addr, kcom_phys_t *out),
                (testenv_base->ctx, addr, out))
TESTENV_FORWARD(kcom_error_t, lock_init, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, lock_fini, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, lock_acquire, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, lock_release, (void *ctx, kcom_lock_t *lock), (testenv_base->ctx, lock))
TESTENV_FORWARD(void, log, (void *ctx, enum kcom_log_level level, const char *msg), (testenv_base->ctx, level, msg))

/* The optional hooks: the base's when it has them. */
static uintptr_t testenv_thread_self(void *ctx)
{
	(void)ctx;
	return testenv_base->thread_self != NULL ? testenv_base->thread_self(testenv_base->ctx) : 1;
}

static kcom_error_t testenv_thread_at_exit(void *ctx, void (*fn)(void *arg), void *arg)
{
	(void)ctx;
	if (testenv_base->thread_at_exit == NULL)
		return KCOM_E_NOTIMPL;
	return testenv_base->thread_at_exit(testenv_base->ctx, fn, arg);
}

__attribute__((noreturn)) static void testenv_panic(void *ctx, const char *msg)
{
	(void)ctx;
	testenv_base->panic(testenv_base->ctx, msg);
}

static const struct kcom_osenv testenv_osenv = {
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
	.thread_self = testenv_thread_self,
	.thread_at_exit = testenv_thread_at_exit,
};

void testenv_install(void)
{
	testenv_base = kcom_osenv_hosted();
	testenv_nallocs = testenv_nfrees = testenv_countdown = 0;
	testenv_hit = 0;
	testenv_bytes = 0;
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
