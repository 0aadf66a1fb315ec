/**
 * @file com/debug.h
 * @brief kcom_debug: what an object can say about itself to tests and tools.
 *
 * Every object built on kcom's implementation kit answers ::kcom_debug_iid.  Its sanity check
 * walks the object's whole state and says what is wrong (FreeBSD's `m_sanity`); the tests call
 * it after every operation.  Its counts show how many mappings and wirings are outstanding,
 * which is what a client that forgot an unmap or an unwire wants to see.  Nothing here changes
 * the object.
 */
#ifndef KCOM_COM_DEBUG_H
#define KCOM_COM_DEBUG_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>
#include <com/guid.h>
#include <com/iunknown.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The debug interface. */
typedef struct kcom_debug kcom_debug_t;

/** @brief What kcom_debug_counts() reports. */
struct kcom_debug_counts {
	uint32_t refs;     /**< references (a snapshot; includes the caller's and one per hold) */
	uint32_t mappings; /**< outstanding mappings (map and map_vec) */
	uint32_t wirings;  /**< outstanding wirings (wire and wire_vec) */
};

/** @brief The debug interface's method table: IUnknown's slots, then its own. */
struct kcom_debug_ops {
	/** @brief IUnknown: see kcom_debug_query(). */
	kcom_error_t (*query)(kcom_debug_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_debug_addref(). */
	uint32_t (*addref)(kcom_debug_t *self);
	/** @brief IUnknown: see kcom_debug_release(). */
	uint32_t (*release)(kcom_debug_t *self);
	/** @brief See kcom_debug_check(). */
	kcom_error_t (*check)(kcom_debug_t *self, char *why, size_t len);
	/** @brief See kcom_debug_counts(). */
	kcom_error_t (*counts)(kcom_debug_t *self, struct kcom_debug_counts *out);
};

/** @brief A debug pointer. */
struct kcom_debug {
	const struct kcom_debug_ops *ops; /**< method table */
};

/** @brief The debug interface's IID, {D52B18DE-6DCD-404B-9A80-E5897390A369}. */
extern const kcom_iid_t kcom_debug_iid;
/** @brief Initializer of ::kcom_debug_iid. */
#define KCOM_DEBUG_IID KCOM_GUID(0xd52b18de, 0x6dcd, 0x404b, 0x9a, 0x80, 0xe5, 0x89, 0x73, 0x90, 0xa3, 0x69)

_Static_assert(offsetof(struct kcom_debug_ops, query) == offsetof(struct kcom_iunknown_ops, query), "debug layout");
_Static_assert(offsetof(struct kcom_debug_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "debug layout");
_Static_assert(offsetof(struct kcom_debug_ops, release) == offsetof(struct kcom_iunknown_ops, release), "debug layout");

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_debug_query(kcom_debug_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_debug_addref(kcom_debug_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_debug_release(kcom_debug_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Checks the object's internal invariants (lengths add up, counts positive ...).
 *
 * Must not be called while another thread changes the object.
 * @param self the object
 * @param why receives a NUL-terminated description of the first broken invariant, or ""
 *        (may be NULL when @p len is 0)
 * @param len room in @p why
 * @retval KCOM_OK every invariant holds
 * @retval KCOM_E_UNEXPECTED an invariant is broken; @p why says which
 */
static inline kcom_error_t kcom_debug_check(kcom_debug_t *self, char *why, size_t len)
{
	return self->ops->check(self, why, len);
}

/**
 * @brief Counts the object's references and outstanding mappings and wirings.
 * @param self the object
 * @param out receives the counts
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p out is NULL
 */
static inline kcom_error_t kcom_debug_counts(kcom_debug_t *self, struct kcom_debug_counts *out)
{
	return self->ops->counts(self, out);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_DEBUG_H */
