/*
 * The example kernel's product file (com/product.h), written like hosted/hosted.c: its osenv
 * and its built-in classes, read in place by the kcom core.  No paging: a virtual address is
 * its physical address, so pinning does nothing and translation is the identity.  Memory
 * comes in whole pages from pmem.c: ordinary allocations from the top of RAM, constrained
 * DMA allocations (dma_alloc) from 1 MiB up and below the device's highest address.  One CPU
 * and no interrupts: a lock is a flag, and taking one that is held is a bug (kcom's locks are
 * not recursive), so it panics.  log goes to COM1; panic prints and leaves QEMU with the
 * failure value.
 */
#include <com/product.h>
#include <impls/dmabuf.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include <impls/pool.h>
#include "kernel.h"

static size_t pages_for(size_t size)
{
	return (size + PAGE_SIZE - 1) / PAGE_SIZE;
}

static void *kos_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	return pmem_alloc(pages_for(size), size, align, 0, 0, 1);
}

static void kos_free(void *ctx, void *ptr, size_t size, size_t align)
{
	(void)ctx;
	(void)align;
	pmem_free(ptr, pages_for(size));
}

static kcom_error_t kos_pin(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	(void)addr;
	(void)len;
	return KCOM_OK; /* nothing pages out */
}

static kcom_error_t kos_virt_to_phys(void *ctx, const void *addr, kcom_phys_t *out_phys)
{
	(void)ctx;
	*out_phys = (uintptr_t)addr;
	return KCOM_OK;
}

static kcom_error_t kos_virt_to_phys_pages(void *ctx, const void *addr, size_t npages, size_t page,
                                           kcom_phys_t *out_phys)
{
	(void)ctx;
	for (size_t i = 0; i < npages; i++)
		out_phys[i] = (uintptr_t)addr + (kcom_phys_t)i * page;
	return KCOM_OK;
}

static kcom_error_t kos_lock_init(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	lock->opaque.bytes[0] = 0;
	return KCOM_OK;
}

static void kos_lock_fini(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	(void)lock;
}

static void kos_panic(void *ctx, const char *msg) __attribute__((noreturn));

static void kos_lock_acquire(void *ctx, kcom_lock_t *lock)
{
	if (__atomic_test_and_set(&lock->opaque.bytes[0], __ATOMIC_ACQUIRE))
		kos_panic(ctx, "lock taken while held (one CPU: it would never be released)");
}

static void kos_lock_release(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	__atomic_clear(&lock->opaque.bytes[0], __ATOMIC_RELEASE);
}

static void kos_log(void *ctx, enum kcom_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	(void)ctx;
	kprintf("# kcom %s: %s\n", (unsigned)level < 4 ? names[level] : "?", msg);
}

static void kos_panic(void *ctx, const char *msg)
{
	(void)ctx;
	kprintf("not ok - PANIC: %s\n", msg);
	kernel_exit(KERNEL_EXIT_FAIL);
}

/*
 * Device memory: contiguous pages (so every constraint on segments holds at once), aligned,
 * the `size` bytes asked for at or below max_addr and not crossing the boundary (the rest of
 * the last page is not the buffer's: a 512-byte buffer meets a 1 KiB boundary).  A buffer larger than the boundary
 * need not fit inside one boundary window unless it must be contiguous: wire_vec cuts its
 * segments there.
 */
static void *kos_dma_alloc(void *ctx, size_t size, const struct kcom_dma_constraints *c)
{
	(void)ctx;
	struct kcom_dma_constraints none = { 0 };
	if (c == NULL)
		c = &none;
	size_t boundary = c->boundary;
	if (boundary != 0 && !c->contiguous && size > boundary)
		boundary = 0;
	/* Unconstrained device memory is ordinary memory: from the top, like alloc. */
	int from_top = c->max_addr == 0;
	return pmem_alloc(pages_for(size), size, c->align, c->max_addr, boundary, from_top);
}

static void kos_dma_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	pmem_free(ptr, pages_for(size));
}

const struct kcom_osenv kernel_osenv = {
	.alloc = kos_alloc,
	.free = kos_free,
	.pin = kos_pin,
	.unpin = kos_pin,
	.virt_to_phys = kos_virt_to_phys,
	.lock_init = kos_lock_init,
	.lock_fini = kos_lock_fini,
	.lock_acquire = kos_lock_acquire,
	.lock_release = kos_lock_release,
	.log = kos_log,
	.panic = kos_panic,
	.ctx = NULL,
	.virt_to_phys_pages = kos_virt_to_phys_pages,
	.dma_alloc = kos_dma_alloc,
	.dma_free = kos_dma_free,
	.thread_self = NULL, /* one thread */
	.thread_at_exit = NULL,
};

/* The built-in classes: what kcom_create() and kcom_class_enum() know from the first call. */
static const struct kcom_class *const kernel_classes[] = {
	&kcom_membuf_class,
	&kcom_mbufchain_class,
	&kcom_dmabuf_class,
	&kcom_pool_class,
};

const struct kcom_product kcom_product = {
	.name = "example-kernel",
	.osenv = &kernel_osenv,
	.classes = kernel_classes,
	.nclasses = sizeof(kernel_classes) / sizeof(kernel_classes[0]),
	.default_buffer = &kcom_membuf_clsid,
};
