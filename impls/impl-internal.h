/*
 * The implementation kit: the pieces every implementation of kcom's buffer interfaces is built
 * from, so that a new one writes only what makes it different (FreeBSD kobj's per-method
 * defaults, Wine's impl_from_X).  Private to kcom's sources; never included by a public header.
 *
 * - The object (struct kcom_impl): embedded in every object right after its interfaces.  It
 *   holds the reference count, the class's kit description and the ledger, and it is the
 *   kcom_debug interface every kit object answers.  query walks the class's interface list
 *   (struct kcom_class.ifaces, written once per class); KCOM_IMPL_IUNKNOWN_() writes the three
 *   IUnknown slots of each embedded interface.
 * - Defaults (kcom_impl_*_notimpl_, *_none_): ops-table entries for what an object does not
 *   do: map/wire/copy say KCOM_E_NOTIMPL and clear their out values; unmatched unmap/unwire say
 *   KCOM_E_INVALIDARG.
 * - The ledger (struct kcom_ledger): outstanding mappings and wirings, matched on release by
 *   their exact arguments, each holding one reference to the object; kcom_debug_counts() shows
 *   the counts.
 * - Stores (struct kcom_store): a reference-counted block of bytes, owned (one allocation,
 *   cache-aligned bytes) or over outside memory with a release callback (a wrapper's caller
 *   memory, a pool's page), and the copy-on-write move that makes a window of one private.
 * - Physical maps (struct kcom_physmap): the physical segments of a virtual range, adjacent
 *   frames coalesced, built once; lookups of one address or a segment list split as a
 *   device's struct kcom_dma_constraints demand, and the creation-time constraint check.
 * - The sanity hook (kcom_impl_desc.sanity): the class's m_sanity, reached by tests and tools
 *   through kcom_debug_check().
 * - Buffer info (bufio/bufinfo.h): every kit object embeds a kcom_bufinfo interface and a name.
 *   The kit answers it from the class description (natives), the object's own getsize and the
 *   name; the class's optional info hook adds its flags.  A class lists
 *   { &kcom_bufinfo_iid, offsetof(object, impl.bufinfo) } in its ifaces and is done.
 */
#ifndef KCOM_IMPLS_IMPL_INTERNAL_H
#define KCOM_IMPLS_IMPL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/class.h>
#include <com/debug.h>
#include <com/refcount.h>
#include "com/com-internal.h"

/* ---- the ledger ---- */

enum kcom_hold_kind {
	KCOM_HOLD_MAP,      /* bufio map: addr is the address handed out */
	KCOM_HOLD_MAP_VEC,  /* bufvec map_vec: vec is the iovec list */
	KCOM_HOLD_WIRE,     /* bufio wire: addr is the physical address */
	KCOM_HOLD_WIRE_VEC, /* bufvec wire_vec: vec is the segment list */
};

/* The arguments a hold is matched on, exactly. */
struct kcom_hold_key {
	enum kcom_hold_kind kind;
	uint64_t addr;    /* MAP, WIRE; 0 for the vector kinds */
	kcom_off_t off;
	size_t n;
	unsigned flags;   /* KCOM_MAP_* (a bufio map is READ|WRITE); 0 for wirings */
	const void *vec;  /* the vector kinds: the list handed out */
	size_t veclen;    /* its size in bytes */
};

/* One outstanding mapping or wiring. */
struct kcom_hold {
	struct kcom_hold *next;
	struct kcom_hold_key key; /* key.vec points at vec[] below */
	void *priv;               /* the implementation's (what the hold keeps in place) */
	size_t alloc;             /* bytes allocated for this record */
	unsigned char vec[];
};

/*
 * An object's outstanding holds.  Read-only mappings are reads, which several threads may make
 * of one object at once, so the list changes under a spin lock (holds are allocated before and
 * freed after it) and the counts are atomic.  Walks of the list outside the kit happen in
 * mutations, which have the object to themselves.
 */
struct kcom_ledger {
	kcom_spinlock_t lock;
	struct kcom_hold *head; /* newest first */
	uint32_t maps;
	uint32_t wires;
};

/* ---- the object ---- */

struct kcom_impl;

/* A class's kit description: static, one per class. */
struct kcom_impl_desc {
	const struct kcom_class *cls; /* interfaces and where the object embeds them */
	size_t impl_offset;           /* offsetof(object, impl) */
	/* Frees the object: the last reference is gone and the ledger is empty. */
	void (*destroy)(struct kcom_impl *impl);
	/* The class's m_sanity: KCOM_OK, or KCOM_E_UNEXPECTED with `why` filled.  NULL: none. */
	kcom_error_t (*sanity)(struct kcom_impl *impl, char *why, size_t len);
	/*
	 * Buffer info: what only the class knows.  Called with name, size and natives (the
	 * class's) already filled; sets the KCOM_BUFINFO_* flags and clears natives the object
	 * cannot do right now.  NULL: no flags.
	 */
	void (*info)(struct kcom_impl *impl, struct kcom_buffer_info *out);
};

/* Embedded in every kit object, after its interfaces and before its own state. */
struct kcom_impl {
	kcom_debug_t debug;     /* the debug interface: list it in the class's ifaces */
	kcom_bufinfo_t bufinfo; /* the buffer info interface: list it too (buffer classes) */
	kcom_refcount_t refs;
	const struct kcom_impl_desc *desc;
	struct kcom_ledger ledger;
	char name[KCOM_BUFINFO_NAME_MAX]; /* buffer info's name; "" until named */
};

/* Readies `impl` for a new object: one reference, empty ledger, no name. */
void kcom_impl_init_(struct kcom_impl *impl, const struct kcom_impl_desc *desc);

/* Names the object (buffer info); NULL leaves it unnamed; cut to KCOM_BUFINFO_NAME_MAX - 1. */
void kcom_impl_set_name_(struct kcom_impl *impl, const char *name);

/* The object that embeds `impl`. */
static inline void *kcom_impl_object_(struct kcom_impl *impl)
{
	return (char *)impl - impl->desc->impl_offset;
}

/* COM's query over the class's interface list: a new reference on success, *out NULL else. */
static inline kcom_error_t kcom_impl_query_(struct kcom_impl *impl, const kcom_iid_t *iid, void **out)
{
	if (out == NULL)
		return KCOM_E_POINTER;
	*out = NULL;
	if (iid == NULL)
		return KCOM_E_POINTER;
	for (const struct kcom_class_iface *f = impl->desc->cls->ifaces; f->iid != NULL; f++) {
		if (kcom_guid_equal(f->iid, iid)) {
			kcom_refcount_inc(&impl->refs);
			*out = (char *)kcom_impl_object_(impl) + f->offset;
			return KCOM_OK;
		}
	}
	return KCOM_E_NOINTERFACE;
}

static inline uint32_t kcom_impl_addref_(struct kcom_impl *impl)
{
	return kcom_refcount_inc(&impl->refs);
}

/* Drops a reference; the last one destroys the object (touch nothing of it after a 0). */
static inline uint32_t kcom_impl_release_(struct kcom_impl *impl)
{
	uint32_t n = kcom_refcount_dec(&impl->refs);
	if (n == 0) {
		KCOM_ASSERT(impl->ledger.head == NULL); /* each hold keeps a reference */
		impl->desc->destroy(impl);
	}
	return n;
}

/*
 * Writes `prefix`_query, _addref and _release for the interface type `itype` that objects of
 * `type` embed as `member` (their struct kcom_impl must be named `impl`).
 */
#define KCOM_IMPL_IUNKNOWN_(prefix, itype, type, member)                                              \
	static kcom_error_t prefix##_query(itype *self, const kcom_iid_t *iid, void **out)            \
	{                                                                                             \
		return kcom_impl_query_(&kcom_container_of(self, type, member)->impl, iid, out);      \
	}                                                                                             \
	static uint32_t prefix##_addref(itype *self)                                                  \
	{                                                                                             \
		return kcom_impl_addref_(&kcom_container_of(self, type, member)->impl);               \
	}                                                                                             \
	static uint32_t prefix##_release(itype *self)                                                 \
	{                                                                                             \
		return kcom_impl_release_(&kcom_container_of(self, type, member)->impl);              \
	}

/* Writes `why` (NUL-terminated, cut to `len`) and returns KCOM_E_UNEXPECTED: for sanity hooks. */
kcom_error_t kcom_impl_insane_(char *why, size_t len, const char *text);

/* ---- the ledger's operations ---- */

/* A hold record with room for a `veclen`-byte vector; NULL when allocation fails. */
struct kcom_hold *kcom_hold_alloc_(size_t veclen);
/* Frees a record that is not (or no longer) in a ledger. */
void kcom_hold_free_(struct kcom_hold *h);
/*
 * Records `h` (allocated by kcom_hold_alloc_, key filled by the caller from `key`, the vector
 * copied) in the object's ledger and takes one reference on the object.  Cannot fail.
 */
void kcom_ledger_insert_(struct kcom_impl *impl, struct kcom_hold *h, const struct kcom_hold_key *key, void *priv);
/*
 * Unlinks the hold whose arguments match `key` exactly and returns it, or NULL (nothing
 * changed).  The caller undoes what the hold kept (priv), frees it with kcom_hold_free_(), and
 * then drops the hold's reference with kcom_impl_release_(), which may free the object.
 */
struct kcom_hold *kcom_ledger_remove_(struct kcom_impl *impl, const struct kcom_hold_key *key);
/* Ends the matching hold when there is nothing to undo: KCOM_OK, or KCOM_E_INVALIDARG. */
kcom_error_t kcom_ledger_drop_(struct kcom_impl *impl, const struct kcom_hold_key *key);

static inline int kcom_ledger_mapped_(const struct kcom_impl *impl)
{
	return __atomic_load_n(&impl->ledger.maps, __ATOMIC_RELAXED) != 0;
}

static inline int kcom_ledger_wired_(const struct kcom_impl *impl)
{
	return __atomic_load_n(&impl->ledger.wires, __ATOMIC_RELAXED) != 0;
}

/* map_vec's flags: READ and/or WRITE, nothing else. */
static inline int kcom_map_flags_valid_(unsigned flags)
{
	return flags != 0 && (flags & ~(KCOM_MAP_READ | KCOM_MAP_WRITE)) == 0;
}

/*
 * ---- map_vec for an object whose bytes are one range of memory ----
 *
 * Its map_vec answers one piece, mapped as its map() maps; its unmap_vec ends that mapping.
 * The object gives its size (which may fail: a file's) and its map and unmap of a hold key;
 * `map` records the hold with the piece it fills (`piece` non-NULL), as map() records one with
 * the address.
 */
struct kcom_onepiece_ {
	kcom_error_t (*size)(struct kcom_impl *impl, size_t *out_size);
	kcom_error_t (*map)(struct kcom_impl *impl, struct kcom_hold_key *key, struct kcom_iovec *piece, void **out_addr);
	kcom_error_t (*unmap)(struct kcom_impl *impl, const struct kcom_hold_key *key);
};

kcom_error_t kcom_onepiece_map_vec_(struct kcom_impl *impl, const struct kcom_onepiece_ *op, kcom_off_t off,
                                    size_t n, unsigned flags, struct kcom_iovec *iov, size_t max, size_t *out_count);
kcom_error_t kcom_onepiece_unmap_vec_(struct kcom_impl *impl, const struct kcom_onepiece_ *op, kcom_off_t off,
                                      size_t n, unsigned flags, const struct kcom_iovec *iov, size_t count);

/* ---- defaults for what an object does not do ---- */

kcom_error_t kcom_impl_map_notimpl_(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n);
kcom_error_t kcom_impl_unmap_none_(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n);
kcom_error_t kcom_impl_wire_notimpl_(kcom_bufio_t *io, kcom_phys_t *out_phys, kcom_off_t off, size_t n);
kcom_error_t kcom_impl_unwire_none_(kcom_bufio_t *io, kcom_phys_t phys, kcom_off_t off, size_t n);
kcom_error_t kcom_impl_copy_notimpl_(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out_io);
kcom_error_t kcom_impl_wire_vec_notimpl_(kcom_bufvec_t *vec, kcom_off_t off, size_t n, struct kcom_physseg *segs,
                                         size_t max, size_t *out_count);
kcom_error_t kcom_impl_unwire_vec_none_(kcom_bufvec_t *vec, kcom_off_t off, size_t n,
                                        const struct kcom_physseg *segs, size_t count);

/* ---- stores ---- */

/* Alignment of an owned store's bytes: a cache line. */
#define KCOM_STORE_ALIGN 64

struct kcom_physmap;

/* 64 bytes on LP64: one cache line, so an owned store's bytes start one line after it. */
struct kcom_store {
	kcom_refcount_t refs;
	int outside;         /* data is not ours: never freed with the header */
	size_t cap;          /* bytes at data */
	unsigned char *data;
	/* Outside memory only: called once with (ctx, data, cap) when the last reference goes. */
	void (*release)(void *ctx, void *mem, size_t len);
	void *ctx;
	/* Pinned bytes a device can reach (a DMA-backed pool's page): data[i] is byte pmap_off + i
	 * of this physical map, which outlives the store.  NULL: no physical address. */
	const struct kcom_physmap *pmap;
	size_t pmap_off;
	struct kcom_slab *slab; /* carved (kcom_carve_()): the header lives in this slab, and the last
	                           reference drops one of the slab's; NULL: not carved */
};

/* A new owned store of `cap` bytes (contents undefined), one reference; NULL on failure. */
struct kcom_store *kcom_store_new_(size_t cap);

/*
 * A carver hands out owned stores of one size (clusters) cut in order from slabs: runs of
 * clusters in one allocation, page-aligned when the cluster is a multiple of a page, as a
 * kernel's page allocator or Linux's page_frag hands out runs of pages.  Clusters taken one
 * after another are adjacent in memory, which is what the hardware's sequential prefetch and
 * the TLB want (doc/semantics.md, mbufchain: a 4 KiB cluster that is a malloc block of its own
 * costs sequential copies about 10%, measured on an Intel VM).
 * - Slabs double from one cluster to KCOM_SLAB_MAX, so an object never holds more unused
 *   clusters than it has taken, nor more than KCOM_SLAB_MAX - 1.  A slab that cannot be had
 *   fails that call; the next one asks for a slab of one cluster and doubles from there.
 * - A full slab of whole pages comes from the osenv's page allocator, backed at once
 *   (KCOM_PAGES_NOW), where it has one; every other slab, and that one when the page
 *   allocator says no, comes from the heap.
 * - A slab's memory goes back when its last cluster is released and its carver has moved to
 *   another slab or finished: one cluster kept alive keeps its whole slab.
 * - A carver has one owner at a time (the object whose mutations use it); its clusters may be
 *   held and released in any thread.
 * - Zero-initialized is an empty carver.
 */
struct kcom_carver {
	struct kcom_slab *slab; /* the slab being cut, holding one of its references; NULL: none */
	size_t next;            /* clusters in the next slab (0: 1) */
};

/* Clusters in the largest slab: 64 KiB of 4 KiB clusters (Homa's bpage, twice page_frag's 32 KiB). */
#define KCOM_SLAB_MAX 16

/* The next `cluster`-byte store (contents undefined), one reference; NULL when no memory. */
struct kcom_store *kcom_carve_(struct kcom_carver *cv, size_t cluster);
/* Drops the carver's slab; the carver is empty again. */
void kcom_carver_fini_(struct kcom_carver *cv);
/* A store over outside memory, one reference; NULL on failure (release is then not called). */
struct kcom_store *kcom_store_wrap_(void *mem, size_t len, void (*release)(void *ctx, void *mem, size_t len),
                                    void *ctx);

static inline void kcom_store_hold_(struct kcom_store *st)
{
	kcom_refcount_inc(&st->refs);
}

/* Drops a reference; the last one frees the store (or hands outside memory back). */
void kcom_store_release_(struct kcom_store *st);

static inline int kcom_store_shared_(const struct kcom_store *st)
{
	return kcom_refcount_get(&st->refs) > 1;
}

/*
 * Copy-on-write: moves the window [*base, *base + keep) of *st into a new owned store of `cap`
 * bytes (or, if that allocation fails and `min` is smaller, of `min` bytes), at base 0, and
 * drops the old store's reference after the copy, so a last owner never frees bytes another
 * thread is still copying out.  keep <= min <= cap.  KCOM_E_OUTOFMEMORY changes nothing.
 */
kcom_error_t kcom_store_move_(struct kcom_store **st, size_t *base, size_t keep, size_t cap, size_t min);

/*
 * membuf's store under its bytes [off, off + n), held, and the offset of byte `off` in it: for
 * implementations that append a membuf's bytes by reference (impls/membuf.c).
 */
kcom_error_t kcom_membuf_share_store_(kcom_bufio_t *io, kcom_off_t off, size_t n, struct kcom_store **out_st,
                                      size_t *out_base);

/* ---- physical maps ---- */

struct kcom_physmap_seg {
	size_t off;       /* offset of the segment's first byte in the virtual range */
	kcom_phys_t addr;
	size_t len;
};

struct kcom_physmap {
	struct kcom_physmap_seg *segs; /* in order of off; adjacent frames coalesced */
	size_t count;
	size_t len;                    /* bytes covered */
};

/*
 * Translates `npages` pages of `page` bytes starting at the page-aligned `addr` into
 * out_phys[] (the physical address of each page's first byte).
 */
typedef kcom_error_t (*kcom_xlate_fn)(void *ctx, const void *addr, size_t npages, size_t page,
                                      kcom_phys_t *out_phys);

/* A kcom_xlate_fn over the osenv (kcom_virt_to_phys_pages(); ctx unused). */
kcom_error_t kcom_xlate_osenv_(void *ctx, const void *addr, size_t npages, size_t page, kcom_phys_t *out_phys);

/*
 * Builds the map of [addr, addr + len) (addr and len multiples of `page`, a power of two):
 * translates every page once, coalesces physically adjacent pages, allocates the table.
 * Errors: whatever xlate said (KCOM_E_NOPHYS ...), KCOM_E_OUTOFMEMORY, KCOM_E_INVALIDARG.
 */
kcom_error_t kcom_physmap_build_(struct kcom_physmap *map, const void *addr, size_t len, size_t page,
                                 kcom_xlate_fn xlate, void *ctx);
void kcom_physmap_free_(struct kcom_physmap *map);

/* Index of the segment holding byte `off` (< map->len): a binary search. */
size_t kcom_physmap_find_(const struct kcom_physmap *map, size_t off);

/*
 * Does the memory meet the constraints?  In this order: KCOM_E_UNREACHABLE (a byte above
 * max_addr), KCOM_E_NOTCONTIG (contiguous asked, more than one segment), KCOM_E_MISALIGNED (the
 * first address), KCOM_E_BOUNDARY (contiguous asked, its first `len` bytes, those a device is
 * given, cross a boundary); else OK.
 */
kcom_error_t kcom_physmap_check_(const struct kcom_physmap *map, const struct kcom_dma_constraints *c, size_t len);

/*
 * The physical address of [off, off + n) when it lies in one segment; KCOM_E_NOTCONTIG else.
 * n == 0 at the end names the address just past the last byte (0 for a map of no memory).
 */
kcom_error_t kcom_physmap_contig_(const struct kcom_physmap *map, size_t off, size_t n, kcom_phys_t *out_phys);

/*
 * The segments of [off, off + n), each cut at the constraints' boundary and max_seg (c may be
 * NULL).  KCOM_E_TOOSMALL when more than `max` are needed, with *out_count the number needed.
 */
kcom_error_t kcom_physmap_range_(const struct kcom_physmap *map, size_t off, size_t n,
                                 const struct kcom_dma_constraints *c, struct kcom_physseg *segs, size_t max,
                                 size_t *out_count);

/* ---- doors between implementations ---- */

/*
 * An mbufchain over `n` windows (stores[i], offs[i], lens[i]) in order, each store getting one
 * more reference (impls/mbufchain.c).  KCOM_E_OUTOFMEMORY leaves nothing held.
 */
kcom_error_t kcom_mbufchain_from_stores_(struct kcom_store *const *stores, const size_t *offs, const size_t *lens,
                                         size_t n, kcom_bufio_t **out_io);

#endif /* KCOM_IMPLS_IMPL_INTERNAL_H */
