/**
 * @file bufio/bufvec.h
 * @brief kcom_bufvec: map a range as a list of pieces, wire it as a list of physical segments.
 *
 * An extension interface (the OSKit's bufiovec, finished): ask any bufio for ::kcom_bufvec_iid.
 * Where map needs one contiguous piece, map_vec gives every piece of a range in order, so a
 * scatter/gather client never copies to coalesce.  A read-only mapping (::KCOM_MAP_READ alone)
 * does not make storage shared with a copy private: it costs no copy.  wire_vec gives the
 * physical segments for scatter/gather DMA.  unmap_vec and unwire_vec take exactly the
 * arguments their partner was given and returned.
 */
#ifndef KCOM_BUFIO_BUFVEC_H
#define KCOM_BUFIO_BUFVEC_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief One piece of a mapped range. */
struct kcom_iovec {
	void *base; /**< address of the piece */
	size_t len; /**< its length in bytes */
};

/** @brief One physically contiguous segment of a wired range. */
struct kcom_physseg {
	kcom_phys_t addr; /**< physical address */
	size_t len;       /**< length in bytes */
};

/** @brief map_vec flag: the caller will read. */
#define KCOM_MAP_READ 0x1u
/** @brief map_vec flag: the caller will write (makes shared storage private first). */
#define KCOM_MAP_WRITE 0x2u

/** @brief The bufvec interface. */
typedef struct kcom_bufvec kcom_bufvec_t;

/** @brief bufvec's method table: IUnknown's slots, then bufvec's. */
struct kcom_bufvec_ops {
	/** @brief IUnknown: see kcom_bufvec_query(). */
	kcom_error_t (*query)(kcom_bufvec_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_bufvec_addref(). */
	uint32_t (*addref)(kcom_bufvec_t *self);
	/** @brief IUnknown: see kcom_bufvec_release(). */
	uint32_t (*release)(kcom_bufvec_t *self);
	/** @brief See kcom_bufvec_map_vec(). */
	kcom_error_t (*map_vec)(kcom_bufvec_t *self, kcom_off_t off, size_t n, unsigned flags,
	                        struct kcom_iovec *vec, size_t max, size_t *out_count);
	/** @brief See kcom_bufvec_unmap_vec(). */
	kcom_error_t (*unmap_vec)(kcom_bufvec_t *self, kcom_off_t off, size_t n, unsigned flags,
	                          const struct kcom_iovec *vec, size_t count);
	/** @brief See kcom_bufvec_wire_vec(). */
	kcom_error_t (*wire_vec)(kcom_bufvec_t *self, kcom_off_t off, size_t n,
	                         struct kcom_physseg *segs, size_t max, size_t *out_count);
	/** @brief See kcom_bufvec_unwire_vec(). */
	kcom_error_t (*unwire_vec)(kcom_bufvec_t *self, kcom_off_t off, size_t n,
	                           const struct kcom_physseg *segs, size_t count);
};

/** @brief A bufvec pointer. */
struct kcom_bufvec {
	const struct kcom_bufvec_ops *ops; /**< method table */
};

/** @brief bufvec's IID, {582C0FBC-FB98-41E7-832E-285398267B72}. */
extern const kcom_iid_t kcom_bufvec_iid;
/** @brief Initializer of ::kcom_bufvec_iid. */
#define KCOM_BUFVEC_IID KCOM_GUID(0x582c0fbc, 0xfb98, 0x41e7, 0x83, 0x2e, 0x28, 0x53, 0x98, 0x26, 0x7b, 0x72)

_Static_assert(offsetof(struct kcom_bufvec_ops, query) == offsetof(struct kcom_iunknown_ops, query), "bufvec layout");
_Static_assert(offsetof(struct kcom_bufvec_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "bufvec layout");
_Static_assert(offsetof(struct kcom_bufvec_ops, release) == offsetof(struct kcom_iunknown_ops, release), "bufvec layout");

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_bufvec_query(kcom_bufvec_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_bufvec_addref(kcom_bufvec_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_bufvec_release(kcom_bufvec_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Maps a range as a list of pieces.
 * @param self the object
 * @param off start, inside the object
 * @param n bytes, `off + n` at most the size
 * @param flags ::KCOM_MAP_READ and/or ::KCOM_MAP_WRITE (at least one)
 * @param vec receives the pieces, in order
 * @param max room in @p vec
 * @param out_count receives the number of pieces; on KCOM_E_TOOSMALL, the number needed, or
 *        SIZE_MAX when more than the object will count (an mbufchain appended to itself:
 *        impls/mbufchain.h)
 * @retval KCOM_OK mapped; holds a reference until kcom_bufvec_unmap_vec()
 * @retval KCOM_E_TOOSMALL @p max is too small; nothing mapped, `*out_count` says how many
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG bad offset or flags, NULL @p vec with max > 0, NULL @p out_count
 * @retval KCOM_E_BUSY a writable map of shared storage would have to move bytes another
 *         mapping covers; nothing mapped
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing mapped
 */
static inline kcom_error_t kcom_bufvec_map_vec(kcom_bufvec_t *self, kcom_off_t off, size_t n, unsigned flags,
                                               struct kcom_iovec *vec, size_t max, size_t *out_count)
{
	return self->ops->map_vec(self, off, n, flags, vec, max, out_count);
}

/**
 * @brief Ends a mapping made by kcom_bufvec_map_vec().
 * @param self the object
 * @param off as given to map_vec
 * @param n as given to map_vec
 * @param flags as given to map_vec
 * @param vec the pieces map_vec returned
 * @param count the count map_vec returned
 * @retval KCOM_OK unmapped; its reference dropped
 * @retval KCOM_E_INVALIDARG no outstanding mapping matches; nothing changed
 */
static inline kcom_error_t kcom_bufvec_unmap_vec(kcom_bufvec_t *self, kcom_off_t off, size_t n, unsigned flags,
                                                 const struct kcom_iovec *vec, size_t count)
{
	return self->ops->unmap_vec(self, off, n, flags, vec, count);
}

/**
 * @brief Wires a range as a list of physical segments.
 * @param self the object
 * @param off start, inside the object
 * @param n bytes
 * @param segs receives the segments, in order
 * @param max room in @p segs
 * @param out_count receives the number of segments; on KCOM_E_TOOSMALL, the number needed
 * @retval KCOM_OK wired; holds a reference until kcom_bufvec_unwire_vec()
 * @retval KCOM_E_NOTIMPL this object cannot be handed to a device
 * @retval KCOM_E_TOOSMALL @p max too small; nothing wired
 * @retval KCOM_E_NOPHYS the host gives no physical addresses
 * @retval KCOM_E_BUSY the bytes are shared with another object (copy-on-write), which a
 *         device writing them would change too; nothing wired
 * @retval KCOM_E_OUTOFMEMORY no memory to record the wiring; nothing wired
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG bad arguments
 */
static inline kcom_error_t kcom_bufvec_wire_vec(kcom_bufvec_t *self, kcom_off_t off, size_t n,
                                                struct kcom_physseg *segs, size_t max, size_t *out_count)
{
	return self->ops->wire_vec(self, off, n, segs, max, out_count);
}

/**
 * @brief Ends a wiring made by kcom_bufvec_wire_vec().
 * @param self the object
 * @param off as given to wire_vec
 * @param n as given to wire_vec
 * @param segs the segments wire_vec returned
 * @param count the count wire_vec returned
 * @retval KCOM_OK unwired
 * @retval KCOM_E_INVALIDARG no outstanding wiring matches (always, on an object that never
 *         wires: it has none); nothing changed
 */
static inline kcom_error_t kcom_bufvec_unwire_vec(kcom_bufvec_t *self, kcom_off_t off, size_t n,
                                                  const struct kcom_physseg *segs, size_t count)
{
	return self->ops->unwire_vec(self, off, n, segs, count);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_BUFIO_BUFVEC_H */
