/**
 * @file impls/pool.h
 * @brief Buffer pools: a region of fixed-size pages handed out by offset (Homa's bpages,
 *        DPDK's mempool, Barrelfish's bulk pools).
 *
 * A pool carves `count` pages of `page_size` bytes (a power of two; 64 KiB by default, Homa's
 * HOMA_BPAGE_SIZE) out of a backing bufio, the *region*: a membuf it makes itself, or one the
 * caller gives, such as a dmabuf created under a device's constraints, whose pages' physical
 * addresses the pool then learns once (kcom_pool_page_phys()).  Clients get pages as offsets
 * into the region and give them back:
 * - get is all or nothing (KCOM_E_NOSPACE when fewer pages are free), and so is put: an offset
 *   that is not page-aligned, outside the region, or not handed out right now (a double put,
 *   or a page a message chain owns) is KCOM_E_INVALIDARG and nothing is returned;
 * - a thread that gets and puts often opens its cache once (kcom_pool_cache_open(): a
 *   per-thread I/O channel, com/iochannel.h) and passes it to every call; get and put then use
 *   the cache and take the pool's lock only when it is empty or full.  A thread that exits
 *   with its cache open has it flushed back to the pool.  A cache holds a reference to the
 *   pool, so a pool released with caches open lives until the last of them is closed.
 *
 * Objects answer IUnknown, ::kcom_pool_iid and kcom_debug.  The class (::kcom_pool_clsid) makes
 * a pool of 16 pages of 64 KiB over a membuf.
 */
#ifndef KCOM_IMPLS_POOL_H
#define KCOM_IMPLS_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>
#include <com/class.h>
#include <com/iochannel.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Homa's page size, the default. */
#define KCOM_POOL_PAGE_SIZE 65536u

/** @brief The pool interface. */
typedef struct kcom_pool kcom_pool_t;

/** @brief What kcom_pool_info() reports. */
struct kcom_pool_info {
	size_t page_size; /**< bytes per page */
	size_t count;     /**< pages in the region */
	size_t free;      /**< pages not handed out (in the shared list or in threads' caches) */
};

/** @brief The pool's method table: IUnknown's slots, then its own. */
struct kcom_pool_ops {
	/** @brief IUnknown: see kcom_pool_query(). */
	kcom_error_t (*query)(kcom_pool_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_pool_addref(). */
	uint32_t (*addref)(kcom_pool_t *self);
	/** @brief IUnknown: see kcom_pool_release(). */
	uint32_t (*release)(kcom_pool_t *self);
	/** @brief See kcom_pool_get(). */
	kcom_error_t (*get)(kcom_pool_t *self, struct kcom_iochannel *cache, size_t n, kcom_off_t *offs);
	/** @brief See kcom_pool_put(). */
	kcom_error_t (*put)(kcom_pool_t *self, struct kcom_iochannel *cache, size_t n, const kcom_off_t *offs);
	/** @brief See kcom_pool_region(). */
	kcom_error_t (*region)(kcom_pool_t *self, kcom_bufio_t **out_io);
	/** @brief See kcom_pool_info(). */
	kcom_error_t (*info)(kcom_pool_t *self, struct kcom_pool_info *out);
	/** @brief See kcom_pool_page_phys(). */
	kcom_error_t (*page_phys)(kcom_pool_t *self, kcom_off_t off, kcom_phys_t *out_phys);
};

/** @brief A pool pointer. */
struct kcom_pool {
	const struct kcom_pool_ops *ops; /**< method table */
};

/** @brief The pool interface's IID, {7A4B2C69-4F84-4835-8669-D141ACE99947}. */
extern const kcom_iid_t kcom_pool_iid;
/** @brief Initializer of ::kcom_pool_iid. */
#define KCOM_POOL_IID KCOM_GUID(0x7a4b2c69, 0x4f84, 0x4835, 0x86, 0x69, 0xd1, 0x41, 0xac, 0xe9, 0x99, 0x47)

/** @brief The pool class's ID, {738A6EB3-BA3F-4A2C-8F45-F0478E15595B}. */
extern const kcom_clsid_t kcom_pool_clsid;
/** @brief Initializer of ::kcom_pool_clsid. */
#define KCOM_POOL_CLSID KCOM_GUID(0x738a6eb3, 0xba3f, 0x4a2c, 0x8f, 0x45, 0xf0, 0x47, 0x8e, 0x15, 0x59, 0x5b)

/** @brief The pool class's table entry. */
extern const struct kcom_class kcom_pool_class;

_Static_assert(offsetof(struct kcom_pool_ops, query) == offsetof(struct kcom_iunknown_ops, query), "pool layout");
_Static_assert(offsetof(struct kcom_pool_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "pool layout");
_Static_assert(offsetof(struct kcom_pool_ops, release) == offsetof(struct kcom_iunknown_ops, release), "pool layout");

/**
 * @brief Creates a pool.
 * @param page_size bytes per page: a power of two, at least 64 (0: ::KCOM_POOL_PAGE_SIZE)
 * @param count pages (at least 1)
 * @param region the backing bufio, at least page_size * count bytes, which the pool maps whole
 *        for its lifetime and holds a reference to; NULL: a new membuf
 * @param out_pool receives the pool with one reference; NULL on failure
 * @retval KCOM_OK created; every page free
 * @retval KCOM_E_INVALIDARG bad page size or count, NULL @p out_pool
 * @retval KCOM_E_OVERFLOW page_size * count does not fit
 * @retval KCOM_E_NOSPACE @p region is too small
 * @retval KCOM_E_NOTIMPL @p region cannot be mapped
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_pool_create(size_t page_size, size_t count, kcom_bufio_t *region, kcom_pool_t **out_pool);

/**
 * @brief Opens the calling thread's page cache for a pool (its I/O channel; a second open on
 *        the same thread gives the same cache).  Close it with kcom_pool_cache_close().
 * @param pool the pool
 * @param out_cache receives the cache
 * @retval KCOM_OK open; the cache holds a reference to the pool
 * @retval KCOM_E_INVALIDARG NULL argument
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_pool_cache_open(kcom_pool_t *pool, struct kcom_iochannel **out_cache);

/**
 * @brief Closes the calling thread's cache (the last close flushes its pages to the pool).
 * @param cache from kcom_pool_cache_open() on this thread
 * @retval KCOM_OK closed
 * @retval KCOM_E_INVALIDARG not an open cache: closed already (until a later open happens to
 *         reuse its address, as for kcom_iochannel_put()), or another device's I/O channel;
 *         nothing changed
 * @retval KCOM_E_ACCESSDENIED another thread's cache
 */
kcom_error_t kcom_pool_cache_close(struct kcom_iochannel *cache);

/**
 * @brief Builds a message over pages, with no copy (Homa's shape): an mbufchain whose
 *        segments are the pages, in order.
 *
 * All pages but the last are full; the last holds the rest of @p len.  The pages must be
 * handed out right now (from kcom_pool_get()); on success the chain owns them and the caller
 * must not put them: each page returns to the pool by itself when the chain, and every copy or
 * split sharing that page, is gone.  The chain keeps the pool alive until then.
 * @param pool the pool
 * @param offs the pages, in message order
 * @param n how many
 * @param len the message's bytes: more than (n - 1) pages, at most n pages (n == 0: len 0,
 *        an empty chain that owns nothing)
 * @param out_io receives the chain (one reference); NULL on failure
 * @retval KCOM_OK built; the pages are the chain's
 * @retval KCOM_E_INVALIDARG a bad length for @p n pages, an offset that is not a page handed
 *         out to the caller right now (free, or in a chain already), a page listed twice, a
 *         NULL pointer; the pages are still the caller's
 * @retval KCOM_E_OUTOFMEMORY no memory; the pages are still the caller's
 */
kcom_error_t kcom_pool_chain(kcom_pool_t *pool, const kcom_off_t *offs, size_t n, size_t len, kcom_bufio_t **out_io);

/** @brief IUnknown query. @param self the pool @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_pool_query(kcom_pool_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the pool @return the new count. */
static inline uint32_t kcom_pool_addref(kcom_pool_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the pool @return the new count (0: freed). */
static inline uint32_t kcom_pool_release(kcom_pool_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Takes @p n pages, all or nothing.
 * @param self the pool
 * @param cache the calling thread's cache from kcom_pool_cache_open(), or NULL for none (only
 *        the thread that opened a cache may pass it, and only while it is open: SPDK's rule
 *        for channels; the thread is asserted in an --enable-invariants build, neither is
 *        checked otherwise, as a released object's pointer is not)
 * @param n pages wanted
 * @param offs receives each page's offset in the region (page-aligned)
 * @retval KCOM_OK taken
 * @retval KCOM_E_NOSPACE fewer than @p n pages are in the shared list and this thread's cache;
 *         nothing taken.  Pages in other threads' caches count as free in the pool's info but
 *         wait there until those threads get, put, close or exit (see doc/pools.md)
 * @retval KCOM_E_INVALIDARG NULL @p offs with n > 0, or @p cache is not this pool's (another
 *         pool's cache, or another device's I/O channel)
 */
static inline kcom_error_t kcom_pool_get(kcom_pool_t *self, struct kcom_iochannel *cache, size_t n,
                                         kcom_off_t *offs)
{
	return self->ops->get(self, cache, n, offs);
}

/**
 * @brief Gives @p n pages back, all or nothing.
 * @param self the pool
 * @param cache the calling thread's cache, or NULL
 * @param n pages
 * @param offs their offsets, as get gave them
 * @retval KCOM_OK returned
 * @retval KCOM_E_INVALIDARG an offset not page-aligned, outside the region, not handed out (a
 *         double put, one listed twice, or a page a chain owns), a NULL @p offs, a foreign
 *         cache: nothing returned
 */
static inline kcom_error_t kcom_pool_put(kcom_pool_t *self, struct kcom_iochannel *cache, size_t n,
                                         const kcom_off_t *offs)
{
	return self->ops->put(self, cache, n, offs);
}

/**
 * @brief The backing bufio, to map or wire the whole region.
 * @param self the pool
 * @param out_io receives it with a new reference
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p out_io is NULL
 */
static inline kcom_error_t kcom_pool_region(kcom_pool_t *self, kcom_bufio_t **out_io)
{
	return self->ops->region(self, out_io);
}

/**
 * @brief Page size, page count and free pages.
 * @param self the pool
 * @param out receives them
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p out is NULL
 */
static inline kcom_error_t kcom_pool_info(kcom_pool_t *self, struct kcom_pool_info *out)
{
	return self->ops->info(self, out);
}

/**
 * @brief The physical address of a page, when the region wires.
 * @param self the pool
 * @param off the page's offset
 * @param out_phys receives the address; 0 on failure
 * @retval KCOM_OK the page is physically contiguous at that address
 * @retval KCOM_E_NOTIMPL the region does not wire (a membuf)
 * @retval KCOM_E_NOTCONTIG the page spans two physical segments (a chain over it still wires
 *         with kcom_bufvec_wire_vec(), as their list)
 * @retval KCOM_E_INVALIDARG not a page offset of this pool
 */
static inline kcom_error_t kcom_pool_page_phys(kcom_pool_t *self, kcom_off_t off, kcom_phys_t *out_phys)
{
	return self->ops->page_phys(self, off, out_phys);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_IMPLS_POOL_H */
