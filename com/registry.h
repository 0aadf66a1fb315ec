/**
 * @file com/registry.h
 * @brief The registry of services: interface pointers registered under an IID.
 *
 * The OSKit's services database: a component registers the interfaces it offers; others look
 * them up by IID.  Registering takes a reference; unregistering and releasing the registry drop
 * it.  All calls are thread-safe (an osenv lock); lookups allocate nothing.
 */
#ifndef KCOM_COM_REGISTRY_H
#define KCOM_COM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>
#include <com/guid.h>
#include <com/iunknown.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The registry interface. */
typedef struct kcom_registry kcom_registry_t;

/** @brief The registry's method table: IUnknown's slots, then the registry's. */
struct kcom_registry_ops {
	/** @brief IUnknown: see kcom_registry_query(). */
	kcom_error_t (*query)(kcom_registry_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_registry_addref(). */
	uint32_t (*addref)(kcom_registry_t *self);
	/** @brief IUnknown: see kcom_registry_release(). */
	uint32_t (*release)(kcom_registry_t *self);
	/** @brief See kcom_registry_register(). */
	kcom_error_t (*add)(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t *obj);
	/** @brief See kcom_registry_unregister(). */
	kcom_error_t (*remove)(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t *obj);
	/** @brief See kcom_registry_lookup(). */
	kcom_error_t (*lookup)(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t **out_objs,
	                       size_t max, size_t *out_count);
	/** @brief See kcom_registry_lookup_first(). */
	kcom_error_t (*lookup_first)(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t **out_obj);
};

/** @brief A registry pointer. */
struct kcom_registry {
	const struct kcom_registry_ops *ops; /**< method table */
};

/** @brief The registry's IID, {9402F825-0032-4CFC-A60C-0ED83067CFC1}. */
extern const kcom_iid_t kcom_registry_iid;
/** @brief Initializer of ::kcom_registry_iid. */
#define KCOM_REGISTRY_IID KCOM_GUID(0x9402f825, 0x0032, 0x4cfc, 0xa6, 0x0c, 0x0e, 0xd8, 0x30, 0x67, 0xcf, 0xc1)

_Static_assert(offsetof(struct kcom_registry_ops, query) == offsetof(struct kcom_iunknown_ops, query), "registry layout");
_Static_assert(offsetof(struct kcom_registry_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "registry layout");
_Static_assert(offsetof(struct kcom_registry_ops, release) == offsetof(struct kcom_iunknown_ops, release), "registry layout");

/**
 * @brief Creates an empty registry.
 * @param out_reg receives it with one reference; NULL on failure
 * @retval KCOM_OK created
 * @retval KCOM_E_INVALIDARG @p out_reg is NULL
 * @retval KCOM_E_OUTOFMEMORY no memory (or no lock)
 */
kcom_error_t kcom_registry_create(kcom_registry_t **out_reg);

/** @brief IUnknown query. @param self the registry @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_registry_query(kcom_registry_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the registry @return the new count. */
static inline uint32_t kcom_registry_addref(kcom_registry_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference; the last one releases every registered object.
 *  @param self the registry @return the new count (0: freed). */
static inline uint32_t kcom_registry_release(kcom_registry_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Registers an interface pointer under an IID (the registry adds a reference).
 * @param self the registry
 * @param iid the interface @p obj is registered as
 * @param obj the interface pointer
 * @retval KCOM_OK registered
 * @retval KCOM_E_INVALIDARG NULL argument
 * @retval KCOM_E_EXISTS @p obj is already registered under @p iid
 * @retval KCOM_E_OUTOFMEMORY the registry could not grow; nothing changed
 */
static inline kcom_error_t kcom_registry_register(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t *obj)
{
	return self->ops->add(self, iid, obj);
}

/**
 * @brief Removes a registration and drops its reference.
 * @param self the registry
 * @param iid as registered
 * @param obj as registered
 * @retval KCOM_OK removed
 * @retval KCOM_E_INVALIDARG NULL argument
 * @retval KCOM_E_NOTFOUND no such registration (also the second unregister of a pair)
 */
static inline kcom_error_t kcom_registry_unregister(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t *obj)
{
	return self->ops->remove(self, iid, obj);
}

/**
 * @brief Looks up every object registered under an IID, oldest first.
 * @param self the registry
 * @param iid the interface
 * @param out_objs receives up to @p max pointers, each with a new reference
 * @param max room in @p out_objs (0 only counts)
 * @param out_count receives how many are registered (may exceed @p max; only @p max are
 *        returned then)
 * @retval KCOM_OK done, even when none is registered (`*out_count` is 0)
 * @retval KCOM_E_INVALIDARG NULL @p iid or @p out_count, or NULL @p out_objs with max > 0
 */
static inline kcom_error_t kcom_registry_lookup(kcom_registry_t *self, const kcom_iid_t *iid,
                                                kcom_iunknown_t **out_objs, size_t max, size_t *out_count)
{
	return self->ops->lookup(self, iid, out_objs, max, out_count);
}

/**
 * @brief Looks up the first (oldest) object registered under an IID.
 * @param self the registry
 * @param iid the interface
 * @param out_obj receives it with a new reference; NULL on failure
 * @retval KCOM_OK found
 * @retval KCOM_E_INVALIDARG NULL argument
 * @retval KCOM_E_NOTFOUND nothing is registered under @p iid
 */
static inline kcom_error_t kcom_registry_lookup_first(kcom_registry_t *self, const kcom_iid_t *iid,
                                                      kcom_iunknown_t **out_obj)
{
	return self->ops->lookup_first(self, iid, out_obj);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_REGISTRY_H */
