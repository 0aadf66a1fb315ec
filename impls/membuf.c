/*
 * membuf: a bufio over one flat region, built on the implementation kit (impls/impl-internal.h).
 *
 * The bytes live in a kit *store*, a reference-counted block that copies of a membuf share.  A
 * membuf sees `size` bytes of its store starting at `base`.  Before any byte of a shared store
 * changes (write, zero-fill on growth, a writable mapping), the membuf moves to a private store
 * of its own: copy-on-write at the granularity of the whole buffer.  Growth past the store's
 * capacity also moves to a new store.  Both moves are refused (KCOM_E_BUSY) while the membuf
 * has a mapping outstanding, because memory never moves under a mapping; and while mapped, the
 * size is frozen.
 *
 * A wrapping membuf's store is the caller's memory, so it is never shared: copy() of a wrapper,
 * and copy() of any membuf with a mapping outstanding, copies the bytes at once.
 *
 * Every method allocates before it changes anything, so a failure leaves the object as it was.
 * Stores are shared between threads (an object and its copy may be written from two threads at
 * once): the store count is atomic, and a membuf that finds its store shared copies it before
 * dropping its reference, so the last owner never writes while another still reads.
 */
#include "config.h"

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <impls/membuf.h>
#include "absio/absio-internal.h"
#include "impls/impl-internal.h"

/* Smallest capacity a growing store gets. */
#define MEMBUF_MIN_CAP 64

struct membuf {
	kcom_bufio_t bufio;
	kcom_bufvec_t bufvec;
	struct kcom_impl impl;     /* count, ledger of mappings, debug interface */
	struct kcom_store *store;
	size_t base;               /* our byte 0 is store->data[base] */
	size_t size;
	int fixed;                 /* wraps caller memory: capacity is store->cap */
};

static const struct kcom_bufio_ops membuf_bufio_ops;
static const struct kcom_bufvec_ops membuf_bufvec_ops;

static struct membuf *impl_from_bufio(kcom_bufio_t *io)
{
	KCOM_ASSERT(io->ops == &membuf_bufio_ops);
	return kcom_container_of(io, struct membuf, bufio);
}

static struct membuf *impl_from_bufvec(kcom_bufvec_t *vec)
{
	KCOM_ASSERT(vec->ops == &membuf_bufvec_ops);
	return kcom_container_of(vec, struct membuf, bufvec);
}

static unsigned char *membuf_bytes(const struct membuf *mb)
{
	return mb->store->data + mb->base;
}

/*
 * Makes the membuf able to hold `need` bytes in a store it alone may write.  Moves to a new
 * store when the current one is shared or too small.  Fails, changing nothing, with
 * KCOM_E_NOSPACE (a wrapper asked past its memory), KCOM_E_BUSY (a move is needed while a
 * mapping is outstanding) or KCOM_E_OUTOFMEMORY.
 */
static kcom_error_t membuf_make_writable(struct membuf *mb, size_t need)
{
	struct kcom_store *old = mb->store;
	int fits = need <= old->cap - mb->base;

	if (mb->fixed)
		return fits ? KCOM_OK : KCOM_E_NOSPACE;
	if (fits && !kcom_store_shared_(old))
		return KCOM_OK;
	if (kcom_ledger_mapped_(&mb->impl))
		return KCOM_E_BUSY;

	size_t cap = need;
	if (!fits) {
		/* Grow geometrically so a run of appends costs O(n) copying in all. */
		size_t cur = old->cap - mb->base;
		size_t doubled = cur <= SIZE_MAX / 2 ? cur * 2 : SIZE_MAX;
		cap = KCOM_MAX(cap, KCOM_MAX(doubled, (size_t)MEMBUF_MIN_CAP));
	}
	return kcom_store_move_(&mb->store, &mb->base, mb->size, cap, need);
}

KCOM_IMPL_IUNKNOWN_(membuf, kcom_bufio_t, struct membuf, bufio)

static void membuf_destroy(struct kcom_impl *impl)
{
	struct membuf *mb = kcom_container_of(impl, struct membuf, impl);
	kcom_store_release_(mb->store);
	kcom_free(mb, sizeof(*mb), 0);
}

static kcom_error_t membuf_sanity(struct kcom_impl *impl, char *why, size_t len)
{
	struct membuf *mb = kcom_container_of(impl, struct membuf, impl);
	if (mb->store == NULL || kcom_refcount_get(&mb->store->refs) < 1)
		return kcom_impl_insane_(why, len, "membuf: no live store");
	if (mb->base > mb->store->cap || mb->size > mb->store->cap - mb->base)
		return kcom_impl_insane_(why, len, "membuf: window past the store");
	if (mb->fixed && !mb->store->outside)
		return kcom_impl_insane_(why, len, "membuf: a wrapper's store is not the caller's memory");
	return KCOM_OK;
}

/* Buffer info: resizable unless wrapping caller memory; shared while a copy shares the store. */
static void membuf_info(struct kcom_impl *impl, struct kcom_buffer_info *out)
{
	struct membuf *mb = kcom_container_of(impl, struct membuf, impl);
	if (!mb->fixed)
		out->flags |= KCOM_BUFINFO_RESIZABLE;
	if (kcom_store_shared_(mb->store))
		out->flags |= KCOM_BUFINFO_COW_SHARED;
}

/* ---- absio ---- */

/* Everything but the common small read (membuf_read's fast path): checks, short reads, copies. */
static __attribute__((noinline)) kcom_error_t membuf_read_slow(struct membuf *mb, void *buf, kcom_off_t off, size_t n,
                                                             size_t *out_actual)
{
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);
	if ((uint64_t)off >= mb->size)
		return KCOM_OK;
	size_t len = KCOM_MIN(n, mb->size - (size_t)off);
	kcom_memcpy(buf, membuf_bytes(mb) + off, len);
	*out_actual = len;
	return KCOM_OK;
}

static kcom_error_t membuf_read(kcom_bufio_t *io, void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct membuf *mb = impl_from_bufio(io);
	/*
	 * The common small read, wholly inside, as a leaf: no frame, no call, no more work than the
	 * copy.  A random reader of small records is bound by cache misses, and a shorter path
	 * keeps more of them in flight at once.
	 */
	if (__builtin_expect(n <= 64 && kcom_absio_io_inside_(buf, off, n, out_actual, mb->size), 1)) {
		kcom_copy_small_(buf, membuf_bytes(mb) + off, n);
		*out_actual = n;
		return KCOM_OK;
	}
	return membuf_read_slow(mb, buf, off, n, out_actual);
}

static kcom_error_t membuf_write(kcom_bufio_t *io, const void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct membuf *mb = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);

	/* How much may land: the size is frozen while mapped; a wrapper ends where its memory does. */
	int mapped = kcom_ledger_mapped_(&mb->impl);
	uint64_t limit = mapped ? mb->size : mb->fixed ? mb->store->cap : SIZE_MAX;
	if ((uint64_t)off >= limit)
		return mapped ? KCOM_E_BUSY : mb->fixed ? KCOM_E_NOSPACE : KCOM_E_OUTOFMEMORY;
	size_t len = (size_t)KCOM_MIN((uint64_t)n, limit - (uint64_t)off);
	size_t end = (size_t)off + len;

	err = membuf_make_writable(mb, KCOM_MAX(end, mb->size));
	if (KCOM_FAILED(err))
		return err;
	unsigned char *bytes = membuf_bytes(mb);
	if ((size_t)off > mb->size)
		kcom_memset(bytes + mb->size, 0, (size_t)off - mb->size);
	kcom_memcpy(bytes + off, buf, len);
	if (end > mb->size)
		mb->size = end;
	*out_actual = len;
	return KCOM_OK;
}

static kcom_error_t membuf_getsize(kcom_bufio_t *io, size_t *out_size)
{
	struct membuf *mb = impl_from_bufio(io);
	if (out_size == NULL)
		return KCOM_E_INVALIDARG;
	*out_size = mb->size;
	return KCOM_OK;
}

static kcom_error_t membuf_setsize(kcom_bufio_t *io, size_t size)
{
	struct membuf *mb = impl_from_bufio(io);
	if (size == mb->size)
		return KCOM_OK;
	kcom_error_t err = kcom_absio_check_size_(size);
	if (KCOM_FAILED(err))
		return err;
	if (kcom_ledger_mapped_(&mb->impl))
		return KCOM_E_BUSY;
	if (size < mb->size) {
		/* Truncating changes no byte, so a shared store stays shared. */
		mb->size = size;
		return KCOM_OK;
	}
	err = membuf_make_writable(mb, size);
	if (KCOM_FAILED(err))
		return err;
	kcom_memset(membuf_bytes(mb) + mb->size, 0, size - mb->size);
	mb->size = size;
	return KCOM_OK;
}

/* ---- mappings ---- */

/*
 * Records a mapping of [off, off + n) and returns its address.  A writable mapping first makes
 * the store private.  The mapping holds a reference.  On failure nothing changed.
 */
static kcom_error_t membuf_map_range(struct membuf *mb, struct kcom_hold_key *key, struct kcom_iovec *piece,
                                     void **out_addr)
{
	*out_addr = NULL;
	kcom_error_t err = kcom_absio_check_range_(key->off, key->n, mb->size);
	if (KCOM_FAILED(err))
		return err;
	struct kcom_hold *h = kcom_hold_alloc_(key->veclen);
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	if (key->flags & KCOM_MAP_WRITE) {
		err = membuf_make_writable(mb, mb->size);
		if (KCOM_FAILED(err)) {
			kcom_hold_free_(h);
			return err;
		}
	}
	*out_addr = membuf_bytes(mb) + key->off;
	if (piece != NULL) {
		piece->base = *out_addr;
		piece->len = key->n;
	} else {
		key->addr = (uintptr_t)*out_addr;
	}
	kcom_ledger_insert_(&mb->impl, h, key, NULL);
	return KCOM_OK;
}

/* ---- bufio ---- */

static kcom_error_t membuf_map(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n)
{
	if (out_addr == NULL)
		return KCOM_E_INVALIDARG;
	struct kcom_hold_key key = { .kind = KCOM_HOLD_MAP, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE };
	return membuf_map_range(impl_from_bufio(io), &key, NULL, out_addr);
}

static kcom_error_t membuf_unmap(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP, .addr = (uintptr_t)addr, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE,
	};
	return kcom_ledger_drop_(&impl_from_bufio(io)->impl, &key);
}

static kcom_error_t membuf_new(struct kcom_store *st, size_t base, size_t size, int fixed, struct membuf **out);

static kcom_error_t membuf_copy(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	struct membuf *mb = impl_from_bufio(io);
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	kcom_error_t err = kcom_absio_check_range_(off, n, mb->size);
	if (KCOM_FAILED(err))
		return err;

	struct membuf *copy;
	if (mb->fixed || kcom_ledger_mapped_(&mb->impl)) {
		/* Wrapped memory stays the caller's, and mapped bytes may change under a share. */
		struct kcom_store *st = kcom_store_new_(n);
		if (st == NULL)
			return KCOM_E_OUTOFMEMORY;
		err = membuf_new(st, 0, n, 0, &copy);
		if (KCOM_FAILED(err)) {
			kcom_store_release_(st);
			return err;
		}
		if (n != 0)
			kcom_memcpy(st->data, membuf_bytes(mb) + off, n);
	} else {
		err = membuf_new(mb->store, mb->base + (size_t)off, n, 0, &copy);
		if (KCOM_FAILED(err))
			return err;
		kcom_store_hold_(mb->store);
	}
	*out_io = &copy->bufio;
	return KCOM_OK;
}

/* ---- bufvec (one segment) ---- */

KCOM_IMPL_IUNKNOWN_(membuf_vec, kcom_bufvec_t, struct membuf, bufvec)

static kcom_error_t membuf_piece_size(struct kcom_impl *impl, size_t *out_size)
{
	*out_size = kcom_container_of(impl, struct membuf, impl)->size;
	return KCOM_OK;
}

static kcom_error_t membuf_piece_map(struct kcom_impl *impl, struct kcom_hold_key *key, struct kcom_iovec *piece,
                                     void **out_addr)
{
	return membuf_map_range(kcom_container_of(impl, struct membuf, impl), key, piece, out_addr);
}

static const struct kcom_onepiece_ membuf_piece = {
	.size = membuf_piece_size,
	.map = membuf_piece_map,
	.unmap = kcom_ledger_drop_,
};

static kcom_error_t membuf_map_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                   struct kcom_iovec *iov, size_t max, size_t *out_count)
{
	return kcom_onepiece_map_vec_(&impl_from_bufvec(vec)->impl, &membuf_piece, off, n, flags, iov, max, out_count);
}

static kcom_error_t membuf_unmap_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                     const struct kcom_iovec *iov, size_t count)
{
	return kcom_onepiece_unmap_vec_(&impl_from_bufvec(vec)->impl, &membuf_piece, off, n, flags, iov, count);
}

/* ---- tables ---- */

static const struct kcom_bufio_ops membuf_bufio_ops = {
	.query = membuf_query,
	.addref = membuf_addref,
	.release = membuf_release,
	.read = membuf_read,
	.write = membuf_write,
	.getsize = membuf_getsize,
	.setsize = membuf_setsize,
	.map = membuf_map,
	.unmap = membuf_unmap,
	.wire = kcom_impl_wire_notimpl_, /* pageable memory is never handed to a device: use a dmabuf */
	.unwire = kcom_impl_unwire_none_,
	.copy = membuf_copy,
};

static const struct kcom_bufvec_ops membuf_bufvec_ops = {
	.query = membuf_vec_query,
	.addref = membuf_vec_addref,
	.release = membuf_vec_release,
	.map_vec = membuf_map_vec,
	.unmap_vec = membuf_unmap_vec,
	.wire_vec = kcom_impl_wire_vec_notimpl_,
	.unwire_vec = kcom_impl_unwire_vec_none_,
};

static const struct kcom_class_iface membuf_ifaces[] = {
	{ &kcom_iunknown_iid, offsetof(struct membuf, bufio) },
	{ &kcom_absio_iid, offsetof(struct membuf, bufio) },
	{ &kcom_bufio_iid, offsetof(struct membuf, bufio) },
	{ &kcom_bufvec_iid, offsetof(struct membuf, bufvec) },
	{ &kcom_debug_iid, offsetof(struct membuf, impl.debug) },
	{ &kcom_bufinfo_iid, offsetof(struct membuf, impl.bufinfo) },
	{ NULL, 0 },
};

static kcom_error_t membuf_class_create(const kcom_iid_t *iid, void **out);

const kcom_clsid_t kcom_membuf_clsid = KCOM_MEMBUF_CLSID;

const struct kcom_class kcom_membuf_class = {
	.clsid = KCOM_MEMBUF_CLSID,
	.name = "membuf",
	.create = membuf_class_create,
	.ifaces = membuf_ifaces,
	.natives = KCOM_NATIVE_MAP | KCOM_NATIVE_COPY | KCOM_NATIVE_BUFVEC, /* wire: see the ops */
};

static const struct kcom_impl_desc membuf_desc = {
	.cls = &kcom_membuf_class,
	.impl_offset = offsetof(struct membuf, impl),
	.destroy = membuf_destroy,
	.sanity = membuf_sanity,
	.info = membuf_info,
};

/* ---- construction ---- */

/* A membuf over `st` (whose reference it takes over only on success). */
static kcom_error_t membuf_new(struct kcom_store *st, size_t base, size_t size, int fixed, struct membuf **out)
{
	struct membuf *mb = kcom_alloc(sizeof(*mb), 0);
	if (mb == NULL)
		return KCOM_E_OUTOFMEMORY;
	mb->bufio.ops = &membuf_bufio_ops;
	mb->bufvec.ops = &membuf_bufvec_ops;
	kcom_impl_init_(&mb->impl, &membuf_desc);
	mb->store = st;
	mb->base = base;
	mb->size = size;
	mb->fixed = fixed;
	*out = mb;
	return KCOM_OK;
}

kcom_error_t kcom_membuf_create_named(size_t size, const char *name, kcom_bufio_t **out_io)
{
	kcom_error_t err = kcom_membuf_create(size, out_io);
	if (KCOM_SUCCEEDED(err))
		kcom_impl_set_name_(&impl_from_bufio(*out_io)->impl, name);
	return err;
}

kcom_error_t kcom_membuf_create(size_t size, kcom_bufio_t **out_io)
{
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	struct kcom_store *st = kcom_store_new_(size);
	if (st == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct membuf *mb;
	kcom_error_t err = membuf_new(st, 0, size, 0, &mb);
	if (KCOM_FAILED(err)) {
		kcom_store_release_(st);
		return err;
	}
	if (size != 0)
		kcom_memset(st->data, 0, size);
	*out_io = &mb->bufio;
	return KCOM_OK;
}

kcom_error_t kcom_membuf_wrap(void *mem, size_t len, kcom_membuf_release_fn release, void *ctx,
                              kcom_bufio_t **out_io)
{
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	if (mem == NULL && len > 0)
		return KCOM_E_INVALIDARG;
	struct kcom_store *st = kcom_store_wrap_(mem, len, release, ctx);
	if (st == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct membuf *mb;
	kcom_error_t err = membuf_new(st, 0, len, 1, &mb);
	if (KCOM_FAILED(err)) {
		/* The caller keeps its memory: drop the header without calling release. */
		st->release = NULL;
		kcom_store_release_(st);
		return err;
	}
	*out_io = &mb->bufio;
	return KCOM_OK;
}

/* The class factory: an empty growable membuf, answered as `iid`. */
static kcom_error_t membuf_class_create(const kcom_iid_t *iid, void **out)
{
	kcom_bufio_t *io;
	kcom_error_t err = kcom_membuf_create(0, &io);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_query(io, iid, out);
	kcom_bufio_release(io);
	return err;
}

/*
 * For mbufchain's append by reference: holds the store under bytes [off, off + n) of a growable
 * membuf with no mapping outstanding, and says where they start in it.  Copy-on-write keeps
 * both sides apart from then on (a membuf moves before it writes a shared store).
 * KCOM_E_NOTIMPL for anything but such a membuf; KCOM_E_BUSY while mapped; a range error.
 */
kcom_error_t kcom_membuf_share_store_(kcom_bufio_t *io, kcom_off_t off, size_t n, struct kcom_store **out_st,
                                      size_t *out_base)
{
	*out_st = NULL;
	*out_base = 0;
	if (io->ops != &membuf_bufio_ops)
		return KCOM_E_NOTIMPL;
	struct membuf *mb = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_range_(off, n, mb->size);
	if (KCOM_FAILED(err))
		return err;
	if (mb->fixed)
		return KCOM_E_NOTIMPL; /* the caller's memory stays the caller's */
	if (kcom_ledger_mapped_(&mb->impl))
		return KCOM_E_BUSY;
	kcom_store_hold_(mb->store);
	*out_st = mb->store;
	*out_base = mb->base + (size_t)off;
	return KCOM_OK;
}
