/**
 * @file bufio/bufio.h
 * @brief kcom_bufio: absio plus direct access (map), DMA (wire) and cheap copies (copy).
 *
 * Only read and write are mandatory.  map, wire and copy may fail with KCOM_E_NOTIMPL, or with
 * another code that says why, in some or all cases; the caller then falls back to read and
 * write.  Do not write that fallback yourself: bufio/helpers.h has it once (views, range copy,
 * duplicate).
 *
 * - unmap and unwire take exactly the arguments map and wire were given; anything else is
 *   KCOM_E_INVALIDARG and changes nothing.
 * - A mapping or a wiring holds a reference to the object: the object outlives it.
 * - map gives a pointer the caller may read and write; an object that shares storage with a
 *   copy makes it private first.  While a mapping is outstanding the object's size is frozen
 *   and its memory never moves.
 * - wire gives one physical address for a physically contiguous range, valid until unwire.
 * - copy gives an independent object holding the range's bytes; a write to either side is
 *   never seen by the other.
 * - map, wire and copy take a range that lies inside the object (KCOM_E_RANGE otherwise).
 */
#ifndef KCOM_BUFIO_BUFIO_H
#define KCOM_BUFIO_BUFIO_H

#include <stddef.h>
#include <stdint.h>
#include <absio/absio.h>
#include <com/osenv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The bufio interface. */
typedef struct kcom_bufio kcom_bufio_t;

/** @brief bufio's method table: IUnknown's slots, absio's, then bufio's. */
struct kcom_bufio_ops {
	/** @brief IUnknown: see kcom_bufio_query(). */
	kcom_error_t (*query)(kcom_bufio_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_bufio_addref(). */
	uint32_t (*addref)(kcom_bufio_t *self);
	/** @brief IUnknown: see kcom_bufio_release(). */
	uint32_t (*release)(kcom_bufio_t *self);
	/** @brief absio: see kcom_bufio_read(). */
	kcom_error_t (*read)(kcom_bufio_t *self, void *buf, kcom_off_t off, size_t n, size_t *out_actual);
	/** @brief absio: see kcom_bufio_write(). */
	kcom_error_t (*write)(kcom_bufio_t *self, const void *buf, kcom_off_t off, size_t n, size_t *out_actual);
	/** @brief absio: see kcom_bufio_getsize(). */
	kcom_error_t (*getsize)(kcom_bufio_t *self, size_t *out_size);
	/** @brief absio: see kcom_bufio_setsize(). */
	kcom_error_t (*setsize)(kcom_bufio_t *self, size_t size);
	/** @brief See kcom_bufio_map(). */
	kcom_error_t (*map)(kcom_bufio_t *self, void **out_addr, kcom_off_t off, size_t n);
	/** @brief See kcom_bufio_unmap(). */
	kcom_error_t (*unmap)(kcom_bufio_t *self, void *addr, kcom_off_t off, size_t n);
	/** @brief See kcom_bufio_wire(). */
	kcom_error_t (*wire)(kcom_bufio_t *self, kcom_phys_t *out_phys, kcom_off_t off, size_t n);
	/** @brief See kcom_bufio_unwire(). */
	kcom_error_t (*unwire)(kcom_bufio_t *self, kcom_phys_t phys, kcom_off_t off, size_t n);
	/** @brief See kcom_bufio_copy(). */
	kcom_error_t (*copy)(kcom_bufio_t *self, kcom_off_t off, size_t n, kcom_bufio_t **out_io);
};

/** @brief A bufio pointer. */
struct kcom_bufio {
	const struct kcom_bufio_ops *ops; /**< method table */
};

/** @brief bufio's IID, {E2E8789B-DF75-403C-8E7E-8376C649CEF5}. */
extern const kcom_iid_t kcom_bufio_iid;
/** @brief Initializer of ::kcom_bufio_iid. */
#define KCOM_BUFIO_IID KCOM_GUID(0xe2e8789b, 0xdf75, 0x403c, 0x8e, 0x7e, 0x83, 0x76, 0xc6, 0x49, 0xce, 0xf5)

/* bufio's table starts with absio's, slot for slot, so a bufio pointer is an absio pointer. */
#define KCOM_BUFIO_SAME_SLOT_(slot) \
	_Static_assert(offsetof(struct kcom_bufio_ops, slot) == offsetof(struct kcom_absio_ops, slot), \
	               "bufio slot " #slot " must match absio's")
KCOM_BUFIO_SAME_SLOT_(query);
KCOM_BUFIO_SAME_SLOT_(addref);
KCOM_BUFIO_SAME_SLOT_(release);
KCOM_BUFIO_SAME_SLOT_(read);
KCOM_BUFIO_SAME_SLOT_(write);
KCOM_BUFIO_SAME_SLOT_(getsize);
KCOM_BUFIO_SAME_SLOT_(setsize);
_Static_assert(offsetof(struct kcom_bufio, ops) == offsetof(struct kcom_absio, ops), "bufio layout");

/**
 * @brief The same object as an absio pointer (no new reference).
 * @param self the bufio
 * @return @p self seen as its parent interface.
 */
static inline kcom_absio_t *kcom_bufio_absio(kcom_bufio_t *self)
{
	return (kcom_absio_t *)(void *)self;
}

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_bufio_query(kcom_bufio_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_bufio_addref(kcom_bufio_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_bufio_release(kcom_bufio_t *self)
{
	return self->ops->release(self);
}

/** @brief absio read; see kcom_absio_read(). @param self the object @param buf destination
 *  @param off offset @param n bytes @param out_actual bytes read
 *  @retval KCOM_OK read (possibly short) @retval KCOM_E_INVALIDARG bad arguments */
static inline kcom_error_t kcom_bufio_read(kcom_bufio_t *self, void *buf, kcom_off_t off, size_t n,
                                           size_t *out_actual)
{
	return self->ops->read(self, buf, off, n, out_actual);
}

/** @brief absio write; see kcom_absio_write(). @param self the object @param buf source
 *  @param off offset @param n bytes @param out_actual bytes written
 *  @retval KCOM_OK written (possibly short) @retval KCOM_E_INVALIDARG bad arguments
 *  @retval KCOM_E_NOSPACE nothing fit
 *  @retval KCOM_E_BUSY a mapping of this object is outstanding and either nothing fit below
 *          its frozen size, or the write (even one that fits) needs storage shared with a copy
 *          made private, which would move the mapped bytes; nothing written
 *  @retval KCOM_E_OUTOFMEMORY no memory; nothing written */
static inline kcom_error_t kcom_bufio_write(kcom_bufio_t *self, const void *buf, kcom_off_t off, size_t n,
                                            size_t *out_actual)
{
	return self->ops->write(self, buf, off, n, out_actual);
}

/** @brief absio getsize. @param self the object @param out_size the size
 *  @retval KCOM_OK done @retval KCOM_E_INVALIDARG @p out_size is NULL */
static inline kcom_error_t kcom_bufio_getsize(kcom_bufio_t *self, size_t *out_size)
{
	return self->ops->getsize(self, out_size);
}

/** @brief absio setsize; see kcom_absio_setsize(). @param self the object @param size new size
 *  @retval KCOM_OK done @retval KCOM_E_INVALIDARG past ::KCOM_OFF_MAX
 *  @retval KCOM_E_NOTIMPL fixed size @retval KCOM_E_NOSPACE past capacity
 *  @retval KCOM_E_BUSY mapped @retval KCOM_E_OUTOFMEMORY no memory */
static inline kcom_error_t kcom_bufio_setsize(kcom_bufio_t *self, size_t size)
{
	return self->ops->setsize(self, size);
}

/**
 * @brief Maps a range for direct loads and stores.
 * @param self the object
 * @param out_addr receives the address of byte @p off; NULL on failure
 * @param off start, inside the object
 * @param n bytes, `off + n` at most the size; n may be 0 only if the implementation says so
 * @retval KCOM_OK mapped; the mapping holds a reference until kcom_bufio_unmap()
 * @retval KCOM_E_NOTIMPL this object never maps (use the view helper)
 * @retval KCOM_E_NOTCONTIG the range is not contiguous in memory here
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG negative @p off, overflow, NULL @p out_addr
 * @retval KCOM_E_BUSY the range would have to move (coalescing segments, or making shared
 *         storage private) and another mapping covers some of the bytes that would move with
 *         it (which may be more than the range: membuf makes a shared buffer private whole);
 *         nothing changed
 * @retval KCOM_E_OUTOFMEMORY making shared storage private, or recording the mapping, failed
 */
static inline kcom_error_t kcom_bufio_map(kcom_bufio_t *self, void **out_addr, kcom_off_t off, size_t n)
{
	return self->ops->map(self, out_addr, off, n);
}

/**
 * @brief Ends a mapping.
 * @param self the object
 * @param addr exactly the address map gave
 * @param off exactly as given to map
 * @param n exactly as given to map
 * @retval KCOM_OK unmapped; the mapping's reference is dropped (this may free the object)
 * @retval KCOM_E_INVALIDARG no outstanding mapping has these arguments; nothing changed
 */
static inline kcom_error_t kcom_bufio_unmap(kcom_bufio_t *self, void *addr, kcom_off_t off, size_t n)
{
	return self->ops->unmap(self, addr, off, n);
}

/**
 * @brief Pins a range and gives its physical address, for DMA.
 * @param self the object
 * @param out_phys receives the physical address of byte @p off; 0 on failure
 * @param off start, inside the object
 * @param n bytes
 * @retval KCOM_OK wired; valid until kcom_bufio_unwire(); holds a reference
 * @retval KCOM_E_NOTIMPL this object cannot be handed to a device
 * @retval KCOM_E_NOTCONTIG the range is not physically contiguous (use kcom_bufvec)
 * @retval KCOM_E_NOPHYS the host gives no physical addresses
 * @retval KCOM_E_BUSY the bytes are shared with another object (copy-on-write), which a
 *         device writing them would change too; nothing wired
 * @retval KCOM_E_OUTOFMEMORY no memory to record the wiring; nothing wired
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG bad arguments
 */
static inline kcom_error_t kcom_bufio_wire(kcom_bufio_t *self, kcom_phys_t *out_phys, kcom_off_t off, size_t n)
{
	return self->ops->wire(self, out_phys, off, n);
}

/**
 * @brief Ends a wiring.
 * @param self the object
 * @param phys exactly the address wire gave
 * @param off exactly as given to wire
 * @param n exactly as given to wire
 * @retval KCOM_OK unwired; the wiring's reference is dropped
 * @retval KCOM_E_INVALIDARG no outstanding wiring has these arguments (always, on an object that
 *         never wires: it has none); nothing changed
 */
static inline kcom_error_t kcom_bufio_unwire(kcom_bufio_t *self, kcom_phys_t phys, kcom_off_t off, size_t n)
{
	return self->ops->unwire(self, phys, off, n);
}

/**
 * @brief Makes an independent object holding a copy of a range, cheaply where possible.
 * @param self the object
 * @param off start, inside the object
 * @param n bytes, `off + n` at most the size
 * @param out_io receives the new object (one reference); NULL on failure
 * @retval KCOM_OK copied
 * @retval KCOM_E_NOTIMPL this object does not copy (use kcom_bufio_duplicate())
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG bad arguments
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing changed
 */
static inline kcom_error_t kcom_bufio_copy(kcom_bufio_t *self, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	return self->ops->copy(self, off, n, out_io);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_BUFIO_BUFIO_H */
