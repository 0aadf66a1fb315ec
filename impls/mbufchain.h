/**
 * @file impls/mbufchain.h
 * @brief mbufchain: a bufio whose bytes are a chain of segments over shared clusters.
 *
 * The bytes are a sequence of segments, each a window into a reference-counted cluster (FreeBSD
 * mbuf clusters, Linux sk_buff frags, absl::Cord's chunks).  The segments are indexed by a
 * persistent balanced tree whose nodes cache the byte length of their subtree, so:
 * - a read or write at any offset finds its segment in O(log segments), never by a list walk;
 *   a chain read many times without changing its segments builds a flat seek index of them
 *   (at most 44 bytes a segment on 64-bit hosts, allocated once, dropped by the next change of
 *   segments; none for a chain of more than 2^26 segments), after which a seek is a bucket
 *   lookup: O(1) for segments of even size, O(log segments) at worst;
 * - copy() of the whole chain shares the tree itself (one reference on the root: O(1)); a
 *   sub-range copy builds a small new spine by splitting (O(log segments));
 * - a write to shared bytes copies the nodes on the path to them (O(log segments)) and at most
 *   about two clusters' worth of bytes around the write, never the whole index or untouched
 *   clusters.  The library does the copy-on-write: a write to either side is never seen by the
 *   other.
 *
 * map() of a range inside one segment is a direct pointer into its cluster (the cluster is
 * first made private when shared).  map() of a range across segments coalesces them into one
 * new cluster (a pullup): it costs one copy of that range, and afterwards the range is one
 * segment.  kcom_bufvec's read-only map_vec returns the segments as they are, without copying,
 * and never breaks sharing; a writable map_vec of shared bytes first makes them private (a copy
 * into new clusters, whose count it then returns).  A chain appended to itself describes far
 * more segments than it holds nodes (up to about 2^51): a read-only map_vec of shared bytes
 * counts no further than 2^26 segments, and past that says KCOM_E_TOOSMALL with a count of
 * SIZE_MAX, which no array meets (map a smaller range); wire and wire_vec of such a range stop
 * there too, with KCOM_E_BUSY (shared bytes) unless a cluster met by then is pageable
 * (KCOM_E_NOTIMPL).  While any mapping is outstanding the size
 * is frozen (KCOM_E_BUSY), and a write, map or writable map_vec that would have to move mapped
 * bytes to a new cluster (a pullup, or making a shared cluster private) is refused with
 * KCOM_E_BUSY; copy() then copies the bytes at once.  wire and wire_vec say KCOM_E_NOTIMPL for
 * the chain's own clusters, which are pageable memory; a chain over a DMA-backed pool's pages
 * (kcom_pool_chain()) wires those pages, but not while they are shared with another object (a
 * copy, a split's other half in the same page, a chain that appended them by reference):
 * KCOM_E_BUSY, since a device's writes would reach that object too.  Copying a wired chain is
 * safe: the copy gets the wired bytes at once.
 *
 * The chain operations (prepend, append by reference, split, trim) are the extension interface
 * ::kcom_chain_t, found by query.
 *
 * One object is not for concurrent mutation from several threads; reference counts are, and
 * so is using an object and a copy of it (sharing clusters and tree nodes) from two threads.
 */
#ifndef KCOM_IMPLS_MBUFCHAIN_H
#define KCOM_IMPLS_MBUFCHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>
#include <com/class.h>
#include <com/iunknown.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief mbufchain's class ID, {FF8C6A95-6A12-4D37-80D1-39ADE6135216}; its factory makes an empty chain with 4 KiB clusters. */
extern const kcom_clsid_t kcom_mbufchain_clsid;
/** @brief Initializer of ::kcom_mbufchain_clsid. */
#define KCOM_MBUFCHAIN_CLSID KCOM_GUID(0xff8c6a95, 0x6a12, 0x4d37, 0x80, 0xd1, 0x39, 0xad, 0xe6, 0x13, 0x52, 0x16)

/** @brief mbufchain's class-table entry. */
extern const struct kcom_class kcom_mbufchain_class;

/** @brief Default cluster size of a chain: 4 KiB. */
#define KCOM_MBUFCHAIN_CLUSTER 4096u

/** @brief The chain interface. */
typedef struct kcom_chain kcom_chain_t;

/** @brief The chain interface's method table: IUnknown's slots, then its own. */
struct kcom_chain_ops {
	/** @brief IUnknown: see kcom_chain_query(). */
	kcom_error_t (*query)(kcom_chain_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_chain_addref(). */
	uint32_t (*addref)(kcom_chain_t *self);
	/** @brief IUnknown: see kcom_chain_release(). */
	uint32_t (*release)(kcom_chain_t *self);
	/** @brief See kcom_chain_reserve(). */
	kcom_error_t (*reserve)(kcom_chain_t *self, size_t room);
	/** @brief See kcom_chain_prepend(). */
	kcom_error_t (*prepend)(kcom_chain_t *self, const void *buf, size_t n);
	/** @brief See kcom_chain_append(). */
	kcom_error_t (*append)(kcom_chain_t *self, kcom_bufio_t *src, kcom_off_t off, size_t n);
	/** @brief See kcom_chain_split(). */
	kcom_error_t (*split)(kcom_chain_t *self, kcom_off_t off, kcom_bufio_t **out_tail);
	/** @brief See kcom_chain_trim(). */
	kcom_error_t (*trim)(kcom_chain_t *self, size_t front, size_t back);
};

/** @brief A chain pointer. */
struct kcom_chain {
	const struct kcom_chain_ops *ops; /**< method table */
};

/** @brief The chain interface's IID, {B41BDD37-8CAC-416A-9B05-F0F5182B0799}. */
extern const kcom_iid_t kcom_chain_iid;
/** @brief Initializer of ::kcom_chain_iid. */
#define KCOM_CHAIN_IID KCOM_GUID(0xb41bdd37, 0x8cac, 0x416a, 0x9b, 0x05, 0xf0, 0xf5, 0x18, 0x2b, 0x07, 0x99)

_Static_assert(offsetof(struct kcom_chain_ops, query) == offsetof(struct kcom_iunknown_ops, query), "chain layout");
_Static_assert(offsetof(struct kcom_chain_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "chain layout");
_Static_assert(offsetof(struct kcom_chain_ops, release) == offsetof(struct kcom_iunknown_ops, release), "chain layout");

/**
 * @brief Creates an empty mbufchain.
 * @param cluster bytes per cluster its writes allocate (0: ::KCOM_MBUFCHAIN_CLUSTER)
 * @param out_io receives the object with one reference; NULL on failure
 * @retval KCOM_OK created
 * @retval KCOM_E_INVALIDARG @p out_io is NULL
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_mbufchain_create(size_t cluster, kcom_bufio_t **out_io);

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK found @retval KCOM_E_NOINTERFACE not answered */
static inline kcom_error_t kcom_chain_query(kcom_chain_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_chain_addref(kcom_chain_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_chain_release(kcom_chain_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Sets the header room: each cluster a later kcom_chain_prepend() allocates keeps at
 *        least @p room free bytes before its data, so prepends of up to that much after it
 *        fill it in place.  Existing bytes never move.  The setting stays until changed.
 *
 * A prepend's cluster is the chain's cluster size or, when the bytes and the room need more,
 * that much; its data sit at its end, so whatever the data do not use is room either way.
 * @param self the chain
 * @param room bytes of room at least (0, the default: what the cluster has left)
 * @retval KCOM_OK recorded
 */
static inline kcom_error_t kcom_chain_reserve(kcom_chain_t *self, size_t room)
{
	return self->ops->reserve(self, room);
}

/**
 * @brief Inserts @p n bytes before byte 0 without moving the existing bytes: into free room
 *        in front of the first segment's private cluster when there is enough, else into a new
 *        cluster.
 * @param self the chain
 * @param buf the bytes (NULL: zeros)
 * @param n how many
 * @retval KCOM_OK done (n == 0: nothing to do, even while mapped)
 * @retval KCOM_E_BUSY a mapping is outstanding (the size is frozen) and n > 0
 * @retval KCOM_E_INVALIDARG the size would pass ::KCOM_OFF_MAX
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing changed
 */
static inline kcom_error_t kcom_chain_prepend(kcom_chain_t *self, const void *buf, size_t n)
{
	return self->ops->prepend(self, buf, n);
}

/**
 * @brief Appends bytes [@p off, @p off + @p n) of @p src: by reference (sharing its clusters
 *        or its store, copy-on-write) when @p src is an mbufchain or a growable membuf with no
 *        mapping outstanding, else by copy through read.  @p src may be the chain itself.
 * @param self the chain
 * @param src the source
 * @param off first byte of the source
 * @param n bytes
 * @retval KCOM_OK done (n == 0: nothing to do, even while mapped)
 * @retval KCOM_E_RANGE the range is not inside @p src
 * @retval KCOM_E_INVALIDARG NULL @p src, a bad offset, or the size would pass ::KCOM_OFF_MAX
 * @retval KCOM_E_BUSY a mapping of @p self is outstanding and n > 0
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing changed
 */
static inline kcom_error_t kcom_chain_append(kcom_chain_t *self, kcom_bufio_t *src, kcom_off_t off, size_t n)
{
	return self->ops->append(self, src, off, n);
}

/**
 * @brief Splits the chain at @p off: it keeps bytes [0, @p off), and a new mbufchain gets the
 *        rest (sharing the clusters).
 * @param self the chain
 * @param off where to cut (0 .. size)
 * @param out_tail receives the new chain with one reference; NULL on failure
 * @retval KCOM_OK split
 * @retval KCOM_E_RANGE @p off is past the end
 * @retval KCOM_E_INVALIDARG NULL @p out_tail or negative @p off
 * @retval KCOM_E_BUSY a mapping is outstanding
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing changed
 */
static inline kcom_error_t kcom_chain_split(kcom_chain_t *self, kcom_off_t off, kcom_bufio_t **out_tail)
{
	return self->ops->split(self, off, out_tail);
}

/**
 * @brief Drops @p front bytes from the start and @p back bytes from the end.
 * @param self the chain
 * @param front bytes to drop at the start
 * @param back bytes to drop at the end
 * @retval KCOM_OK trimmed (nothing to drop: nothing to do, even while mapped)
 * @retval KCOM_E_RANGE more than the size in all
 * @retval KCOM_E_BUSY a mapping is outstanding and there are bytes to drop
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing changed
 */
static inline kcom_error_t kcom_chain_trim(kcom_chain_t *self, size_t front, size_t back)
{
	return self->ops->trim(self, front, back);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_IMPLS_MBUFCHAIN_H */
