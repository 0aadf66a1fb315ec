/**
 * @file absio/absio.h
 * @brief kcom_absio: read and write at absolute offsets, get and set the size.
 *
 * The rules every implementation keeps (tests/check_contract.c checks them all):
 * - A negative offset, `off + n` past the largest ::kcom_off_t, a NULL buffer with n > 0, or a
 *   NULL out pointer: KCOM_E_INVALIDARG, and nothing happens.
 * - read at or past the end succeeds with a short count (0 at the end), like `pread`.
 * - write past the end grows the object and fills the gap with zeros.  An object that cannot
 *   grow (or cannot grow now) writes what fits and reports the short count; it fails when
 *   nothing could be written, or when the write needs storage it cannot have now (memory, or
 *   making storage shared with a copy private while a mapping is outstanding: KCOM_E_BUSY).
 * - setsize truncates or grows with zeros; a fixed-size object answers KCOM_E_NOTIMPL, or
 *   KCOM_E_NOSPACE when asked past its capacity.
 * - A call that fails leaves the object exactly as it was, out values cleared.
 */
#ifndef KCOM_ABSIO_ABSIO_H
#define KCOM_ABSIO_ABSIO_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>
#include <com/guid.h>
#include <com/iunknown.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A byte offset within an object; never negative in a valid call. */
typedef int64_t kcom_off_t;
/** @brief The largest offset. */
#define KCOM_OFF_MAX INT64_MAX

/** @brief The absio interface. */
typedef struct kcom_absio kcom_absio_t;

/** @brief absio's method table: IUnknown's slots, then absio's. */
struct kcom_absio_ops {
	/** @brief IUnknown: see kcom_absio_query(). */
	kcom_error_t (*query)(kcom_absio_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_absio_addref(). */
	uint32_t (*addref)(kcom_absio_t *self);
	/** @brief IUnknown: see kcom_absio_release(). */
	uint32_t (*release)(kcom_absio_t *self);
	/** @brief See kcom_absio_read(). */
	kcom_error_t (*read)(kcom_absio_t *self, void *buf, kcom_off_t off, size_t n, size_t *out_actual);
	/** @brief See kcom_absio_write(). */
	kcom_error_t (*write)(kcom_absio_t *self, const void *buf, kcom_off_t off, size_t n, size_t *out_actual);
	/** @brief See kcom_absio_getsize(). */
	kcom_error_t (*getsize)(kcom_absio_t *self, size_t *out_size);
	/** @brief See kcom_absio_setsize(). */
	kcom_error_t (*setsize)(kcom_absio_t *self, size_t size);
};

/** @brief An absio pointer. */
struct kcom_absio {
	const struct kcom_absio_ops *ops; /**< method table */
};

/** @brief absio's IID, {BCDDFC5D-3685-475C-B42B-A44E7A557D6E}. */
extern const kcom_iid_t kcom_absio_iid;
/** @brief Initializer of ::kcom_absio_iid. */
#define KCOM_ABSIO_IID KCOM_GUID(0xbcddfc5d, 0x3685, 0x475c, 0xb4, 0x2b, 0xa4, 0x4e, 0x7a, 0x55, 0x7d, 0x6e)

/* The first three slots are IUnknown's, so an absio pointer is an IUnknown pointer. */
_Static_assert(offsetof(struct kcom_absio_ops, query) == offsetof(struct kcom_iunknown_ops, query), "absio layout");
_Static_assert(offsetof(struct kcom_absio_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "absio layout");
_Static_assert(offsetof(struct kcom_absio_ops, release) == offsetof(struct kcom_iunknown_ops, release), "absio layout");
_Static_assert(offsetof(struct kcom_absio, ops) == offsetof(struct kcom_iunknown, ops), "absio layout");

/**
 * @brief IUnknown query through an absio pointer.
 * @param self the object
 * @param iid interface wanted
 * @param out receives the interface with a reference; NULL on failure
 * @retval KCOM_OK supported
 * @retval KCOM_E_NOINTERFACE not supported
 * @retval KCOM_E_POINTER @p iid or @p out is NULL
 */
static inline kcom_error_t kcom_absio_query(kcom_absio_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_absio_addref(kcom_absio_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_absio_release(kcom_absio_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Reads up to @p n bytes at @p off.
 * @param self the object
 * @param buf destination (may be NULL only when @p n is 0)
 * @param off offset, not negative
 * @param n bytes wanted
 * @param out_actual receives the bytes read: short (0) at or past the end; 0 on failure
 * @retval KCOM_OK read (possibly short)
 * @retval KCOM_E_INVALIDARG negative @p off, `off + n` overflows, NULL @p buf with n > 0,
 *         NULL @p out_actual
 */
static inline kcom_error_t kcom_absio_read(kcom_absio_t *self, void *buf, kcom_off_t off, size_t n,
                                           size_t *out_actual)
{
	return self->ops->read(self, buf, off, n, out_actual);
}

/**
 * @brief Writes @p n bytes at @p off, growing the object (zero-filled gap) when needed.
 * @param self the object
 * @param buf source (may be NULL only when @p n is 0); as for memcpy, it must not overlap the
 *        bytes the write changes (a mapping of the same range, say): to move bytes within one
 *        object use kcom_absio_copy_range()
 * @param off offset, not negative
 * @param n bytes to write
 * @param out_actual receives the bytes written: short when the object could not grow; 0 on
 *        failure
 * @retval KCOM_OK written (possibly short)
 * @retval KCOM_E_INVALIDARG bad arguments, as for read
 * @retval KCOM_E_NOSPACE nothing fit and the object cannot grow
 * @retval KCOM_E_BUSY a mapping of this object is outstanding, and either nothing fit below the
 *         size it freezes, or the write (even one that fits) needs storage shared with a copy
 *         made private, which would move the mapped bytes; nothing written
 * @retval KCOM_E_OUTOFMEMORY growing or unsharing the storage failed; nothing written
 */
static inline kcom_error_t kcom_absio_write(kcom_absio_t *self, const void *buf, kcom_off_t off, size_t n,
                                            size_t *out_actual)
{
	return self->ops->write(self, buf, off, n, out_actual);
}

/**
 * @brief Gets the object's size in bytes.
 * @param self the object
 * @param out_size receives the size; 0 on failure
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p out_size is NULL
 */
static inline kcom_error_t kcom_absio_getsize(kcom_absio_t *self, size_t *out_size)
{
	return self->ops->getsize(self, out_size);
}

/**
 * @brief Truncates, or grows with zeros.
 * @param self the object
 * @param size the new size
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p size is past ::KCOM_OFF_MAX (no byte there could be addressed);
 *         nothing changed
 * @retval KCOM_E_NOTIMPL the object has a fixed size
 * @retval KCOM_E_NOSPACE past the object's fixed capacity
 * @retval KCOM_E_BUSY a mapping is outstanding (the size is frozen while mapped)
 * @retval KCOM_E_OUTOFMEMORY growing failed; nothing changed
 */
static inline kcom_error_t kcom_absio_setsize(kcom_absio_t *self, size_t size)
{
	return self->ops->setsize(self, size);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_ABSIO_ABSIO_H */
