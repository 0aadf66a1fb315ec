/*
 * The core under a product of its own that names no osenv and no default buffer class (what
 * a kernel links before it has a memory allocator): its own program, since each program has
 * exactly one kcom_product.  With no osenv, allocation fails, pin, translate and lock answer
 * KCOM_E_NOTIMPL and the rest does nothing (com/osenv.c); an osenv installed later works
 * until it is taken away again.  With no default class, a duplicate that must pick one
 * answers KCOM_E_NOTFOUND, and so does a bounce buffer with no class that allocates DMA memory.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include <com/com.h>
#include <bufio/helpers.h>
#include <com/product.h>
#include <impls/membuf.h>
#include "tests/plainio.h"

const struct kcom_product kcom_product = {
	.name = "bare",
	.osenv = NULL,
	.classes = NULL,
	.nclasses = 0,
	.default_buffer = NULL,
};

START_TEST(test_no_osenv)
{
	char page[64];
	ck_assert_ptr_null(kcom_osenv_get());
	ck_assert_ptr_null(kcom_alloc(16, 0));
	kcom_free(page, 16, 0); /* nobody to give it to: ignored */
	kcom_log(KCOM_LOG_ERROR, "dropped");

	ck_assert_int_eq(kcom_pin(page, sizeof(page)), KCOM_E_NOTIMPL);
	ck_assert_int_eq(kcom_unpin(page, sizeof(page)), KCOM_E_NOTIMPL);
	kcom_phys_t phys = 7, pages[2] = { 7, 7 };
	ck_assert_int_eq(kcom_virt_to_phys(page, &phys), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(phys, 0);
	ck_assert_int_eq(kcom_virt_to_phys_pages(page, 2, 32, pages), KCOM_E_NOTIMPL);

	kcom_lock_t lock;
	ck_assert_int_eq(kcom_lock_init(&lock), KCOM_E_NOTIMPL);
	kcom_lock_acquire(&lock); /* no host, no threads to exclude: nothing happens */
	kcom_lock_release(&lock);
	kcom_lock_fini(&lock);

	void *mem = page;
	ck_assert_int_eq(kcom_dma_alloc(64, NULL, &mem), KCOM_E_NOTIMPL);
	ck_assert_ptr_null(mem);
	kcom_dma_free(page, 64);
	ck_assert_uint_eq(kcom_thread_self(), 1);
	ck_assert_ptr_null(kcom_alloc_pages(4096, 0));
	kcom_free_pages(page, 4096, 0);

	/* Objects cannot be made. */
	kcom_bufio_t *io = (void *)1;
	ck_assert_int_eq(kcom_membuf_create(16, &io), KCOM_E_OUTOFMEMORY);
	ck_assert_ptr_null(io);
}
END_TEST

/* A malloc osenv for the second test: the required methods only. */
static void *bare_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	void *p = NULL;
	return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) == 0 ? p : NULL;
}

static void bare_free(void *ctx, void *ptr, size_t size, size_t align)
{
	(void)ctx;
	(void)size;
	(void)align;
	free(ptr);
}

static kcom_error_t bare_pin(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	(void)addr;
	(void)len;
	return KCOM_OK;
}

static kcom_error_t bare_virt_to_phys(void *ctx, const void *addr, kcom_phys_t *out_phys)
{
	(void)ctx;
	(void)addr;
	(void)out_phys;
	return KCOM_E_NOPHYS;
}

static kcom_error_t bare_lock_init(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	(void)lock;
	return KCOM_OK;
}

static void bare_lock(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	(void)lock;
}

static void bare_log(void *ctx, enum kcom_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
}

__attribute__((noreturn)) static void bare_panic(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
	abort();
}

static const struct kcom_osenv bare_env = {
	.alloc = bare_alloc,
	.free = bare_free,
	.pin = bare_pin,
	.unpin = bare_pin,
	.virt_to_phys = bare_virt_to_phys,
	.lock_init = bare_lock_init,
	.lock_fini = bare_lock,
	.lock_acquire = bare_lock,
	.lock_release = bare_lock,
	.log = bare_log,
	.panic = bare_panic,
	.ctx = NULL,
};

START_TEST(test_no_default_class)
{
	ck_assert_ptr_null(kcom_osenv_set(&bare_env)); /* there was none */
	ck_assert_ptr_eq(kcom_osenv_get(), &bare_env);

	/* A source that can only be read: duplicating it needs a class, and the product has none. */
	kcom_absio_t *src;
	ck_assert_int_eq(plainio_create(32, 0, &src), KCOM_OK);
	kcom_bufio_t *copy = (void *)1;
	ck_assert_int_eq(kcom_bufio_duplicate(src, 0, 32, &copy), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(copy);
	ck_assert_int_eq(kcom_bufio_duplicate_class(src, 0, 32, NULL, &copy), KCOM_E_NOTFOUND);
	/* A class registered at run time can be named. */
	ck_assert_int_eq(kcom_bufio_duplicate_class(src, 0, 32, &kcom_membuf_clsid, &copy), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_class_register(&kcom_membuf_class), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_duplicate_class(src, 0, 32, &kcom_membuf_clsid, &copy), KCOM_OK);
	size_t size = 0;
	ck_assert_int_eq(kcom_bufio_getsize(copy, &size), KCOM_OK);
	ck_assert_uint_eq(size, 32);
	kcom_bufio_release(copy);
	ck_assert_int_eq(kcom_class_unregister(&kcom_membuf_clsid), KCOM_OK);
	kcom_absio_release(src);

	/* No class allocates DMA memory: a bounce buffer has nowhere to come from. */
	kcom_absio_t *plain;
	ck_assert_int_eq(plainio_create(32, PLAINIO_BUFIO, &plain), KCOM_OK);
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_absio_query(plain, &kcom_bufio_iid, (void **)&io), KCOM_OK);
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[2];
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, 32, KCOM_DMA_TO_DEVICE, NULL, NULL, segs, 2),
	                 KCOM_E_NOTFOUND);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);
	ck_assert_uint_eq(kcom_absio_release(plain), 0);

	/* Back to none. */
	ck_assert_ptr_eq(kcom_osenv_set(NULL), &bare_env);
	ck_assert_ptr_null(kcom_osenv_get());
	ck_assert_ptr_null(kcom_osenv_set(NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bare");
	TCase *tc = tcase_create("bare");
	tcase_add_test(tc, test_no_osenv);
	tcase_add_test(tc, test_no_default_class);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
