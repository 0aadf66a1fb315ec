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

/** @brief A pointer to a range of an object, direct or through a bounce buffer. */
struct kcom_view {
	void *addr;            /**< the range's bytes, valid until release */
	size_t len;            /**< its length */
	kcom_absio_t *io;      /**< the object (the view holds a reference) */
	kcom_off_t off;        /**< the range's offset */
	unsigned flags;        /**< KCOM_VIEW_* */
	kcom_bufio_t *bufio;   /**< set when the view is a bufio mapping: unmap through it */
	kcom_bufvec_t *bufvec; /**< set when the view is a read-only one-piece bufvec mapping */
	struct kcom_iovec iov; /**< that mapping's piece */
	int bounced;           /**< 1 when addr is a bounce buffer */
};

/**
 * @brief Gives a pointer to the bytes `[off, off + n)` of any absio object.
 *
 * A read-only view first asks for a read-only bufvec mapping in one piece (which does not
 * break copy-on-write sharing); any view then tries bufio's map; otherwise it allocates a bounce
 * buffer and, with ::KCOM_VIEW_READ, fills it by read (without it, the buffer starts zeroed).
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
 * @brief Ends a view without writing anything back.
 * @param view the view (NULL or not acquired does nothing)
 */
void kcom_view_abort(struct kcom_view *view);

/**
 * @brief Copies `n` bytes from one absio object to another (L4's copy_long).
 *
 * Uses a mapping of the destination (read straight into it) or a read-only bufvec mapping of
 * the source (write straight from it) when either is available, else a bounce buffer in
 * chunks.  The destination grows as a write would.  The same object on both sides with
 * overlapping ranges copies as memmove does.
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
 * Uses the object's copy() when it is a bufio and copy succeeds; otherwise creates a membuf
 * and fills it by kcom_absio_copy_range().
 * @param src the object
 * @param off start
 * @param n bytes; the range must lie inside the object
 * @param out_io receives the new object (one reference); NULL on failure
 * @retval KCOM_OK done
 * @retval KCOM_E_RANGE the range is not inside the object
 * @retval KCOM_E_INVALIDARG NULL pointer, negative offset, overflow
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_bufio_duplicate(kcom_absio_t *src, kcom_off_t off, size_t n, kcom_bufio_t **out_io);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_BUFIO_HELPERS_H */
