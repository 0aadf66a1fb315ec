/**
 * @file impls/dmabuf.h
 * @brief dmabuf: pinned, page-aligned memory with a physical segment table, for devices.
 *
 * A dmabuf is a bufio over memory a device reads and writes by physical address (L4's DMphys
 * dataspaces, FreeBSD's busdma).  Creation allocates page-aligned memory (through the osenv's
 * dma_alloc hook when the host places physical memory, as a kernel does), touches and pins it,
 * translates every page once and keeps the physical segments (adjacent frames coalesced), then
 * checks the device's ::kcom_dma_constraints and fails with the precise reason when the pages
 * miss them.  After that:
 * - wire is a lookup: one address when the range lies in one physical segment,
 *   KCOM_E_NOTCONTIG otherwise; kcom_bufvec's wire_vec gives the segment list of any range, cut
 *   at the constraints' boundary and maximum segment length.
 * - map always works (a direct pointer); read and write copy.
 * - The capacity is fixed at creation: writes grow the size up to it and then come up short,
 *   setsize past it is KCOM_E_NOSPACE.  While a mapping or a wiring is outstanding the size is
 *   frozen (KCOM_E_BUSY) and the memory never moves.
 * - copy gives a new dmabuf with the same constraints and pinned pages of its own (a device may
 *   still be writing the original).
 * - Where the host gives no physical addresses (a hosted process without CAP_SYS_ADMIN), the
 *   memory is still pinned, the constraints cannot be checked, and wire and wire_vec answer
 *   KCOM_E_NOPHYS (logged once per object).
 * - A hosted pin keeps the pages out of forked children (MADV_DONTFORK), so a fork cannot make
 *   them copy-on-write and move them under a device: a child has no dmabuf memory.
 *
 * Objects answer IUnknown, absio, bufio, bufvec, ::kcom_dmaalloc_iid (bufio/helpers.h: make
 * another dmabuf under other constraints; the bounce helper uses it) and debug.  One object is not for concurrent
 * mutation from several threads; its reference count is.  doc/dma.md says what the constraints
 * mean and what a hosted process can promise.
 */
#ifndef KCOM_IMPLS_DMABUF_H
#define KCOM_IMPLS_DMABUF_H

#include <stddef.h>
#include <bufio/bufio.h>
#include <com/class.h>
#include <com/osenv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief dmabuf's class ID, {52AFF13D-6756-4E9F-8904-3E5A9FD64AEF}; its factory makes an
 *         empty dmabuf of ::KCOM_DMABUF_DEFAULT_CAPACITY bytes with no constraints. */
extern const kcom_clsid_t kcom_dmabuf_clsid;
/** @brief Initializer of ::kcom_dmabuf_clsid. */
#define KCOM_DMABUF_CLSID KCOM_GUID(0x52aff13d, 0x6756, 0x4e9f, 0x89, 0x04, 0x3e, 0x5a, 0x9f, 0xd6, 0x4a, 0xef)

/** @brief dmabuf's class-table entry. */
extern const struct kcom_class kcom_dmabuf_class;

/** @brief Capacity of a dmabuf made by the class factory: 1 MiB. */
#define KCOM_DMABUF_DEFAULT_CAPACITY ((size_t)1 << 20)

/** @brief Granule of a dmabuf's memory and of its physical map (bytes). */
#define KCOM_DMABUF_PAGE ((size_t)4096)

/**
 * @brief Creates a dmabuf of @p size zero bytes that can hold up to @p capacity bytes.
 *
 * The memory (@p capacity rounded up to ::KCOM_DMABUF_PAGE) is allocated, zeroed, pinned and
 * translated now; nothing later allocates it again.
 * @param size initial size (zero bytes)
 * @param capacity fixed capacity; 0 means @p size
 * @param c what the device can reach (NULL: anything); copied
 * @param out_io receives the object with one reference; NULL on failure
 * @retval KCOM_OK created (wire answers KCOM_E_NOPHYS later when the host gives no physical
 *         addresses: the constraints could not be checked)
 * @retval KCOM_E_INVALIDARG NULL @p out_io, @p size past @p capacity, constraints no memory
 *         could meet (not powers of two, a contiguous buffer whose capacity is longer than
 *         max_seg or boundary; the rest of its last page does not count)
 * @retval KCOM_E_UNREACHABLE a page lies above the device's max_addr
 * @retval KCOM_E_NOTCONTIG contiguous memory was asked for and the pages are not
 * @retval KCOM_E_MISALIGNED the first physical address misses the alignment
 * @retval KCOM_E_BOUNDARY the contiguous buffer crosses the boundary
 * @retval KCOM_E_ACCESSDENIED the host refused to pin (limits, privilege)
 * @retval KCOM_E_OUTOFMEMORY no memory, or the host had no room to pin
 */
kcom_error_t kcom_dmabuf_create(size_t size, size_t capacity, const struct kcom_dma_constraints *c,
                                kcom_bufio_t **out_io);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_IMPLS_DMABUF_H */
