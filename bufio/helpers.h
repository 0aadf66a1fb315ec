/**
 * @file bufio/helpers.h
 * @brief The one fallback every client uses: views, range copy, duplicate.
 *
 * bufio's map, wire and copy are optional.  Clients never write their own "map, else read into
 * a buffer" loop; they call these helpers, which use the direct method when the object has it
 * and read/write otherwise.
 *
 * A view gives a pointer to a range of any absio object:
 * @code
 * struct kcom_view v;
 * kcom_error_t err = kcom_view_acquire(&v, io, off, n, KCOM_VIEW_READ | KCOM_VIEW_WRITE);
 * if (KCOM_FAILED(err))
 *         return err;
 * checksum_and_patch(v.addr, v.len);
 * err = kcom_view_release(&v);   // writes the bounce buffer back when there was one
 * @endcode
 */
#ifndef KCOM_BUFIO_HELPERS_H
#define KCOM_BUFIO_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <absio/absio.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief View flag: the caller reads the range (a bounce buffer is filled by read). */
#define KCOM_VIEW_READ 0x1u
/** @brief View flag: the caller writes the range (a bounce buffer is written back on release). */
#define KCOM_VIEW_WRITE 0x2u

/**
 * @brief A pointer to a range of an object, direct or through a bounce buffer.
 *
 * Read `addr` and `len`; everything in `internal_` belongs to the helpers (how the view was
 * made, what to undo) and may change between releases of kcom.
 */
struct kcom_view {
	void *addr; /**< the range's bytes, valid until release */
	size_t len; /**< its length */
	/** @brief The helpers' bookkeeping: private. */
	struct {
		kcom_absio_t *io;      /**< the object (the view holds a reference) */
		kcom_off_t off;        /**< the range's offset */
		unsigned flags;        /**< KCOM_VIEW_* */
		kcom_bufio_t *bufio;   /**< set when the view is a bufio mapping: unmap through it */
		kcom_bufvec_t *bufvec; /**< set when the view is a one-piece bufvec mapping */
		unsigned map_flags;    /**< that mapping's KCOM_MAP_* flags */
		struct kcom_iovec iov; /**< that mapping's piece */
		size_t iov_count;      /**< pieces it gave: 1, or 0 for an empty range */
		int bounced;           /**< 1 when addr is a bounce buffer */
	} internal_;
};

/**
 * @brief Gives a pointer to the bytes `[off, off + n)` of any absio object.
 *
 * A view never makes the object do more work than a bounce buffer would.  It first asks for a
 * bufvec mapping of the range in one piece (read-only for a read-only view, so copy-on-write
 * sharing stays intact).  A writable view then tries bufio's map (on a segmented object that
 * coalesces the range once, which costs less than a bounce buffer's read and write-back).
 * A read-only view never calls map: on a segmented object map would coalesce the pieces
 * (allocate, rewrite the object, break sharing) where a bounce buffer has no side effect.
 * Otherwise the view allocates a bounce buffer and, with ::KCOM_VIEW_READ, fills it by read
 * (without it, the buffer starts zeroed).
 * @param view receives the view; zeroed on failure
 * @param io the object
 * @param off start
 * @param n bytes; the range must lie inside the object
 * @param flags ::KCOM_VIEW_READ and/or ::KCOM_VIEW_WRITE
 * @retval KCOM_OK the view is ready; release it with kcom_view_release()
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG NULL pointer, negative offset, overflow, no flags
 * @retval KCOM_E_OUTOFMEMORY no bounce buffer
 * @retval other whatever read returned; nothing is held
 */
kcom_error_t kcom_view_acquire(struct kcom_view *view, kcom_absio_t *io, kcom_off_t off, size_t n,
                               unsigned flags);

/**
 * @brief Ends a view: unmaps, or writes the bounce buffer back (with ::KCOM_VIEW_WRITE) and
 *        frees it.
 * @param view the view
 * @retval KCOM_OK done; the view is zeroed
 * @retval KCOM_E_INVALIDARG @p view is NULL or not acquired
 * @retval other writing back failed or was short: the view is kept, so the caller may retry
 *         or give up with kcom_view_abort()
 */
kcom_error_t kcom_view_release(struct kcom_view *view);

/**
 * @brief Says whether a view is the object's own memory or a bounce buffer.
 *
 * Through a direct view, stores are the object's bytes at once; through a bounce buffer they
 * reach the object only at kcom_view_release().
 * @param view an acquired view
 * @return 1 for a direct view (a mapping), 0 for a bounce buffer or a view not acquired.
 */
int kcom_view_direct(const struct kcom_view *view);

/**
 * @brief Ends a view without writing anything back.
 * @param view the view (NULL or not acquired does nothing)
 */
void kcom_view_abort(struct kcom_view *view);

/**
 * @brief Copies `n` bytes from one absio object to another (L4's copy_long).
 *
 * Where the destination range exists, reads straight into it: into a writable bufvec mapping
 * piece by piece (so a segmented destination is filled in place, never coalesced), else into
 * bufio's map of an object without bufvec.  Otherwise writes straight from a read-only bufvec
 * mapping of the source, else bounces through a buffer in chunks.  The destination grows as a
 * write would.  The same object on both sides with overlapping ranges copies as memmove does,
 * forwards like any other copy: a destination a distance d after its source is read d bytes
 * ahead, through a buffer of d plus a chunk of at least 64 KiB and d (at most the range), or,
 * when that cannot be had, from the object's own copy-on-write copy of the source range, or,
 * when neither can be had and the destination range lies inside the object, by one memmove in a
 * bufio map of both ranges (a membuf whose store is its own maps them without allocating).
 *
 * A short copy always means that the first `*out_copied` bytes of the range were copied and
 * no others: the source ended, or the destination could not grow there (a fixed-size object,
 * one with a mapping outstanding, or one out of room: a write at its end refused with
 * KCOM_E_NOSPACE or KCOM_E_BUSY), whatever the order the helper copied in.
 * @param dst destination object
 * @param dst_off destination offset
 * @param src source object
 * @param src_off source offset
 * @param n bytes wanted
 * @param out_copied receives the bytes copied: short when the source ends first or the
 *        destination cannot grow; on failure, how many were copied before it
 * @retval KCOM_OK copied (possibly short)
 * @retval KCOM_E_INVALIDARG NULL pointer, negative offset, overflow
 * @retval KCOM_E_OUTOFMEMORY no bounce buffer
 * @retval other a read or write failed part way; `*out_copied` says how far it got
 */
kcom_error_t kcom_absio_copy_range(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                   size_t n, size_t *out_copied);

/**
 * @brief Makes an independent bufio holding a copy of a range of any absio object.
 *
 * Uses the object's copy() when it is a bufio and copy succeeds; otherwise creates an object
 * of the product's default buffer class (::kcom_product's `default_buffer`: membuf in the
 * hosted library) through the class table and fills it by kcom_absio_copy_range().
 * @param src the object
 * @param off start
 * @param n bytes; the range must lie inside the object
 * @param out_io receives the new object (one reference); NULL on failure
 * @retval KCOM_OK done
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG NULL pointer, negative offset, overflow
 * @retval KCOM_E_NOTFOUND copy() failed and the product names no default buffer class
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_bufio_duplicate(kcom_absio_t *src, kcom_off_t off, size_t n, kcom_bufio_t **out_io);

/**
 * @brief kcom_bufio_duplicate() into a class the caller chooses when copy() cannot be used.
 * @param src the object
 * @param off start
 * @param n bytes; the range must lie inside the object
 * @param clsid the class to create when src's copy() fails (its objects must answer bufio and
 *        grow by writes; a new object that is not empty is truncated first); NULL for the
 *        product's default
 * @param out_io receives the new object (one reference); NULL on failure
 * @retval KCOM_OK done
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG NULL pointer, negative offset, overflow
 * @retval KCOM_E_NOTFOUND no such class (or no default)
 * @retval KCOM_E_NOINTERFACE the class's objects do not answer bufio
 * @retval KCOM_E_NOTIMPL a new object of the class is not empty and cannot be truncated (a
 *         fixed-size class); nothing is returned
 * @retval KCOM_E_NOSPACE the new object could not take all @p n bytes
 * @retval KCOM_E_UNEXPECTED the source shrank during the copy; nothing is returned
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_bufio_duplicate_class(kcom_absio_t *src, kcom_off_t off, size_t n, const kcom_clsid_t *clsid,
                                        kcom_bufio_t **out_io);

/* ---- DMA: the allocator interface and the bounce helper ---- */

/** @brief The DMA allocator interface: an object that makes buffers a device can reach. */
typedef struct kcom_dmaalloc kcom_dmaalloc_t;

/** @brief kcom_dmaalloc's method table: IUnknown's slots, then its own. */
struct kcom_dmaalloc_ops {
	/** @brief IUnknown query. */
	kcom_error_t (*query)(kcom_dmaalloc_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown addref. */
	uint32_t (*addref)(kcom_dmaalloc_t *self);
	/** @brief IUnknown release. */
	uint32_t (*release)(kcom_dmaalloc_t *self);
	/** @brief See kcom_dmaalloc_alloc(). */
	kcom_error_t (*alloc)(kcom_dmaalloc_t *self, size_t size, const struct kcom_dma_constraints *c,
	                      kcom_bufio_t **out_io);
};

/** @brief A kcom_dmaalloc pointer. */
struct kcom_dmaalloc {
	const struct kcom_dmaalloc_ops *ops; /**< method table */
};

/** @brief kcom_dmaalloc's IID, {DC88D38F-6439-4FA8-A659-3AB5680FB9B0}; answered by buffers
 *         that can make more of their kind under other constraints (dmabuf). */
extern const kcom_iid_t kcom_dmaalloc_iid;
/** @brief Initializer of ::kcom_dmaalloc_iid. */
#define KCOM_DMAALLOC_IID KCOM_GUID(0xdc88d38f, 0x6439, 0x4fa8, 0xa6, 0x59, 0x3a, 0xb5, 0x68, 0x0f, 0xb9, 0xb0)

_Static_assert(offsetof(struct kcom_dmaalloc_ops, query) == offsetof(struct kcom_iunknown_ops, query), "dmaalloc layout");
_Static_assert(offsetof(struct kcom_dmaalloc_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "dmaalloc layout");
_Static_assert(offsetof(struct kcom_dmaalloc_ops, release) == offsetof(struct kcom_iunknown_ops, release), "dmaalloc layout");

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_dmaalloc_query(kcom_dmaalloc_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_dmaalloc_addref(kcom_dmaalloc_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_dmaalloc_release(kcom_dmaalloc_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Makes a new buffer of @p size zero bytes (its capacity) whose memory meets @p c.
 * @param self the allocator
 * @param size bytes
 * @param c the device's constraints (NULL: none)
 * @param out_io receives the buffer (one reference); NULL on failure
 * @retval KCOM_OK made
 * @retval KCOM_E_UNREACHABLE, KCOM_E_NOTCONTIG, KCOM_E_MISALIGNED, KCOM_E_BOUNDARY the memory
 *         the host gave misses the constraint named
 * @retval KCOM_E_INVALIDARG constraints no memory could meet, NULL @p out_io
 * @retval KCOM_E_ACCESSDENIED the host refused to pin
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
static inline kcom_error_t kcom_dmaalloc_alloc(kcom_dmaalloc_t *self, size_t size,
                                               const struct kcom_dma_constraints *c, kcom_bufio_t **out_io)
{
	return self->ops->alloc(self, size, c, out_io);
}

/** @brief Bounce flag: the device reads the range (a bounce buffer is filled from the source). */
#define KCOM_DMA_TO_DEVICE 0x1u
/** @brief Bounce flag: the device writes the range (a bounce buffer is written back on release). */
#define KCOM_DMA_FROM_DEVICE 0x2u

/**
 * @brief A range of any bufio handed to a device as physical segments: the object's own pages
 *        when it can wire them within the device's constraints, else a bounce buffer.
 *
 * Read `segs` and `count`; `internal_` belongs to the helpers.
 * @code
 * struct kcom_dma_bounce b;
 * struct kcom_physseg segs[16];
 * err = kcom_dma_bounce_acquire(&b, io, off, n, KCOM_DMA_FROM_DEVICE, &isa, alloc, segs, 16);
 * if (KCOM_FAILED(err))
 *         return err;
 * start_dma(b.segs, b.count);  ... wait for the device ...
 * err = kcom_dma_bounce_release(&b);   // copies a bounce buffer back into io
 * @endcode
 */
struct kcom_dma_bounce {
	const struct kcom_physseg *segs; /**< the segments (the caller's array), valid until release */
	size_t count;                    /**< how many */
	/** @brief The helpers' bookkeeping: private. */
	struct {
		kcom_bufio_t *io;      /**< the source object (the bounce holds a reference) */
		kcom_off_t off;        /**< the range's offset */
		size_t n;              /**< its length */
		unsigned flags;        /**< KCOM_DMA_* */
		kcom_bufvec_t *wired;  /**< the object wired: io's bufvec, or the bounce buffer's */
		kcom_bufio_t *bounce;  /**< the bounce buffer, or NULL for a direct wiring */
		kcom_off_t wired_off;  /**< the wired range's offset in `wired` */
		struct kcom_physseg *own; /**< the object's segments as wired, when `segs` cuts them */
		size_t own_count;      /**< how many */
	} internal_;
};

/**
 * @brief Wires `[off, off + n)` of @p io for a device with constraints @p c.
 *
 * Asks @p io for kcom_bufvec and wires the range; when its segments meet @p c (reachable,
 * aligned, one segment if contiguous), the device works on @p io's own pages.  A segment that
 * crosses the boundary or is longer than max_seg is cut there into pieces, as busdma cuts
 * them (for a device that is not contiguous-only; this allocates a copy of the object's list,
 * which unwire needs).  Otherwise (the object cannot be wired: a membuf, a segmented chain, a
 * host without physical addresses; its pages miss @p c; or the pieces do not fit in @p max)
 * it makes a bounce buffer through @p alloc, fills it from @p io when the device will read
 * (::KCOM_DMA_TO_DEVICE), and wires that.
 * @param b receives the wiring; zeroed on failure
 * @param io the object
 * @param off start
 * @param n bytes; the range must lie inside the object
 * @param flags ::KCOM_DMA_TO_DEVICE and/or ::KCOM_DMA_FROM_DEVICE
 * @param c the device's constraints (NULL: none)
 * @param alloc the allocator for bounce buffers (a driver keeps one from attach, as it keeps a
 *        busdma tag).  NULL: @p io's own when it answers ::kcom_dmaalloc_iid, else the first
 *        class in the class table whose objects answer it (this creates one of its objects
 *        per call: pass an allocator where speed matters)
 * @param segs receives the segments
 * @param max room in @p segs
 * @retval KCOM_OK wired; release with kcom_dma_bounce_release()
 * @retval KCOM_E_TOOSMALL @p max is too small for the segments; nothing held
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG NULL pointer, bad flags, negative offset, overflow, constraints
 *         whose align or boundary is not a power of two
 * @retval KCOM_E_NOTFOUND a bounce was needed and no allocator was given or found
 * @retval KCOM_E_NOPHYS a bounce was needed and the host gives no physical addresses
 * @retval other what the allocator said (KCOM_E_UNREACHABLE ...), or a read of @p io failed
 */
kcom_error_t kcom_dma_bounce_acquire(struct kcom_dma_bounce *b, kcom_bufio_t *io, kcom_off_t off, size_t n,
                                     unsigned flags, const struct kcom_dma_constraints *c, kcom_dmaalloc_t *alloc,
                                     struct kcom_physseg *segs, size_t max);

/**
 * @brief Ends a wiring: unwires, and for a bounce buffer the device wrote
 *        (::KCOM_DMA_FROM_DEVICE), copies its bytes back into the object first.
 * @param b the wiring
 * @retval KCOM_OK done; @p b is zeroed
 * @retval KCOM_E_INVALIDARG @p b is NULL or not acquired
 * @retval other the copy back failed or was short (KCOM_E_NOSPACE): @p b is kept, so the
 *         caller may retry or give up with kcom_dma_bounce_abort()
 */
kcom_error_t kcom_dma_bounce_release(struct kcom_dma_bounce *b);

/**
 * @brief Ends a wiring without copying anything back.
 * @param b the wiring (NULL or not acquired does nothing)
 */
void kcom_dma_bounce_abort(struct kcom_dma_bounce *b);

/**
 * @brief Says whether the device works on the object's own pages.
 * @param b an acquired wiring
 * @return 1 when direct, 0 for a bounce buffer or a wiring not acquired.
 */
int kcom_dma_bounce_direct(const struct kcom_dma_bounce *b);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_BUFIO_HELPERS_H */
