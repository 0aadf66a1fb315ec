/*
 * The installed osenv and the thin wrappers the rest of kcom calls.  No C library here.  The
 * default is the product's (kcom_product.osenv: the hosted table in libkcom, whatever a kernel
 * names in its product file); with none installed, allocation fails (NULL), pin/translate/lock
 * answer KCOM_E_NOTIMPL and log is dropped.
 */
#include "config.h"

#include <com/osenv.h>
#include <com/product.h>
#include "com/com-internal.h"

static const struct kcom_osenv *osenv_current;

/* The default: the product's table, if it names one. */
static const struct kcom_osenv *osenv_default(void)
{
	return kcom_product.osenv;
}

const struct kcom_osenv *kcom_osenv_set(const struct kcom_osenv *env)
{
	if (env == NULL)
		env = osenv_default();
	const struct kcom_osenv *old = __atomic_exchange_n(&osenv_current, env, __ATOMIC_ACQ_REL);
	return old != NULL ? old : osenv_default();
}

const struct kcom_osenv *kcom_osenv_get(void)
{
	const struct kcom_osenv *env = __atomic_load_n(&osenv_current, __ATOMIC_ACQUIRE);
	return env != NULL ? env : osenv_default();
}

void *kcom_alloc(size_t size, size_t align)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env == NULL || size == 0)
		return NULL;
	if (align == 0)
		align = _Alignof(max_align_t);
	return env->alloc(env->ctx, size, align);
}

void kcom_free(void *ptr, size_t size, size_t align)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env == NULL || ptr == NULL)
		return;
	if (align == 0)
		align = _Alignof(max_align_t);
	env->free(env->ctx, ptr, size, align);
}

void kcom_log(enum kcom_log_level level, const char *msg)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL && msg != NULL)
		env->log(env->ctx, level, msg);
}

void kcom_panic(const char *msg)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL)
		env->panic(env->ctx, msg);
	/* No host to stop us: spin where a debugger can find us. */
	for (;;)
		__asm__ volatile("" ::: "memory");
}

kcom_error_t kcom_pin(void *addr, size_t len)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	return env != NULL ? env->pin(env->ctx, addr, len) : KCOM_E_NOTIMPL;
}

kcom_error_t kcom_unpin(void *addr, size_t len)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	return env != NULL ? env->unpin(env->ctx, addr, len) : KCOM_E_NOTIMPL;
}

kcom_error_t kcom_virt_to_phys(const void *addr, kcom_phys_t *out_phys)
{
	if (out_phys == NULL)
		return KCOM_E_POINTER;
	*out_phys = 0;
	const struct kcom_osenv *env = kcom_osenv_get();
	return env != NULL ? env->virt_to_phys(env->ctx, addr, out_phys) : KCOM_E_NOTIMPL;
}

kcom_error_t kcom_lock_init(kcom_lock_t *lock)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	return env != NULL ? env->lock_init(env->ctx, lock) : KCOM_E_NOTIMPL;
}

void kcom_lock_fini(kcom_lock_t *lock)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL)
		env->lock_fini(env->ctx, lock);
}

void kcom_lock_acquire(kcom_lock_t *lock)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL)
		env->lock_acquire(env->ctx, lock);
}

void kcom_lock_release(kcom_lock_t *lock)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL)
		env->lock_release(env->ctx, lock);
}

kcom_error_t kcom_virt_to_phys_pages(const void *addr, size_t npages, size_t page, kcom_phys_t *out_phys)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env == NULL)
		return KCOM_E_NOTIMPL;
	if (env->virt_to_phys_pages != NULL)
		return env->virt_to_phys_pages(env->ctx, addr, npages, page, out_phys);
	for (size_t i = 0; i < npages; i++) {
		kcom_error_t err = env->virt_to_phys(env->ctx, (const char *)addr + i * page, &out_phys[i]);
		if (KCOM_FAILED(err))
			return err;
	}
	return KCOM_OK;
}

kcom_error_t kcom_dma_alloc(size_t size, const struct kcom_dma_constraints *c, void **out_mem)
{
	*out_mem = NULL;
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env == NULL || env->dma_alloc == NULL)
		return KCOM_E_NOTIMPL;
	*out_mem = env->dma_alloc(env->ctx, size, c);
	return *out_mem != NULL ? KCOM_OK : KCOM_E_OUTOFMEMORY;
}

void kcom_dma_free(void *ptr, size_t size)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL && env->dma_free != NULL && ptr != NULL)
		env->dma_free(env->ctx, ptr, size);
}

uintptr_t kcom_thread_self(void)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	return env != NULL && env->thread_self != NULL ? env->thread_self(env->ctx) : 1;
}

void *kcom_alloc_pages(size_t size, unsigned flags)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env == NULL || env->alloc_pages == NULL || size == 0)
		return NULL;
	return env->alloc_pages(env->ctx, size, flags);
}

void kcom_free_pages(void *ptr, size_t size, unsigned flags)
{
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL && env->free_pages != NULL && ptr != NULL)
		env->free_pages(env->ctx, ptr, size, flags);
}
