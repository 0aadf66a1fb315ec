/**
 * @file com/refcount.h
 * @brief Atomic reference counts for implementations of kcom interfaces.
 *
 * Uses GCC's `__atomic` builtins, which need no C library and work freestanding.  Counts are
 * 32 bits so that 32-bit targets need no libatomic.  Two threads may add and drop references
 * to one object at once; the thread that drops the last one frees the object.
 */
#ifndef KCOM_COM_REFCOUNT_H
#define KCOM_COM_REFCOUNT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief An atomic reference count. */
typedef struct kcom_refcount {
	uint32_t value; /**< the count; touch only through the helpers below */
} kcom_refcount_t;

/**
 * @brief Sets a count before the object is published to other threads.
 * @param ref the count
 * @param value the starting value (1 for a new object)
 */
static inline void kcom_refcount_init(kcom_refcount_t *ref, uint32_t value)
{
	__atomic_store_n(&ref->value, value, __ATOMIC_RELAXED);
}

/**
 * @brief Adds one reference.
 * @param ref the count
 * @return the new count.
 */
static inline uint32_t kcom_refcount_inc(kcom_refcount_t *ref)
{
	return __atomic_add_fetch(&ref->value, 1, __ATOMIC_RELAXED);
}

/**
 * @brief Drops one reference.
 *
 * Release ordering makes every write done under the reference visible to the thread that
 * frees; acquire ordering on the last drop makes that thread see them.
 * @param ref the count
 * @return the new count; 0 means the caller must free the object.
 */
static inline uint32_t kcom_refcount_dec(kcom_refcount_t *ref)
{
	return __atomic_sub_fetch(&ref->value, 1, __ATOMIC_ACQ_REL);
}

/**
 * @brief Reads the count (a snapshot: other threads may change it at once).
 * @param ref the count
 * @return the count.
 */
static inline uint32_t kcom_refcount_get(const kcom_refcount_t *ref)
{
	return __atomic_load_n(&ref->value, __ATOMIC_ACQUIRE);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_REFCOUNT_H */
