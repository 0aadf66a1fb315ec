/**
 * @file com/iunknown.h
 * @brief IUnknown: reference counting and run-time interface query, the base of every interface.
 *
 * An interface is a struct whose only member is a pointer to a table of function pointers.
 * A derived interface's table repeats its parent's slots first, in the same order, so a pointer
 * to the derived interface is also a valid pointer to the parent.  Call methods through the
 * `static inline` wrappers, never through the table directly.
 *
 * query() follows COM's rules: it is reflexive (asking for the interface you hold succeeds),
 * symmetric (if A gives B, B gives A) and transitive; asking any interface of an object for
 * ::kcom_iunknown_iid gives the same pointer (the object's identity).  On success it adds a
 * reference and sets `*out`; on failure it sets `*out = NULL` and returns KCOM_E_NOINTERFACE.
 */
#ifndef KCOM_COM_IUNKNOWN_H
#define KCOM_COM_IUNKNOWN_H

#include <stdint.h>
#include <com/error.h>
#include <com/guid.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The IUnknown interface. */
typedef struct kcom_iunknown kcom_iunknown_t;

/** @brief IUnknown's method table. */
struct kcom_iunknown_ops {
	/** @brief See kcom_iunknown_query(). */
	kcom_error_t (*query)(kcom_iunknown_t *self, const kcom_iid_t *iid, void **out);
	/** @brief See kcom_iunknown_addref(). */
	uint32_t (*addref)(kcom_iunknown_t *self);
	/** @brief See kcom_iunknown_release(). */
	uint32_t (*release)(kcom_iunknown_t *self);
};

/** @brief An IUnknown pointer: the method table and nothing else. */
struct kcom_iunknown {
	const struct kcom_iunknown_ops *ops; /**< method table */
};

/** @brief IUnknown's IID, COM's {00000000-0000-0000-C000-000000000046}. */
extern const kcom_iid_t kcom_iunknown_iid;
/** @brief Initializer of ::kcom_iunknown_iid. */
#define KCOM_IUNKNOWN_IID KCOM_GUID(0x00000000, 0x0000, 0x0000, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46)

/**
 * @brief Asks the object for another interface.
 * @param self the object
 * @param iid the interface wanted
 * @param out receives the interface pointer with a new reference; NULL on failure
 * @retval KCOM_OK supported; `*out` holds a reference the caller must release
 * @retval KCOM_E_NOINTERFACE not supported; `*out` is NULL
 * @retval KCOM_E_POINTER @p iid or @p out is NULL (`*out` is set to NULL when @p out is not)
 */
static inline kcom_error_t kcom_iunknown_query(kcom_iunknown_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/**
 * @brief Adds a reference.
 * @param self the object
 * @return the new count (for diagnostics only: other threads may change it at once).
 */
static inline uint32_t kcom_iunknown_addref(kcom_iunknown_t *self)
{
	return self->ops->addref(self);
}

/**
 * @brief Drops a reference; the object is freed when the count reaches zero.
 * @param self the object
 * @return the new count; 0 means the object is gone.
 */
static inline uint32_t kcom_iunknown_release(kcom_iunknown_t *self)
{
	return self->ops->release(self);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_IUNKNOWN_H */
