/*
 * membuf: a bufio over one flat region.
 *
 * The bytes live in a *store*, a reference-counted block that copies of a membuf share.  A
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

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/refcount.h>
#include <impls/membuf.h>
#include "absio/absio-internal.h"
#include "com/com-internal.h"

/* Alignment of a store's bytes: a cache line. */
#define MEMBUF_ALIGN 64
/* Smallest capacity a growing store gets. */
#define MEMBUF_MIN_CAP 64

struct membuf_store {
	kcom_refcount_t refs;
	size_t cap;                      /* bytes at data */
	unsigned char *data;
	kcom_membuf_release_fn release;  /* wrapped memory only */
	void *release_ctx;
	int wrapped;                     /* data is the caller's */
};

/* The header of an owned store is padded so its bytes start cache-aligned. */
#define MEMBUF_STORE_HDR ((sizeof(struct membuf_store) + MEMBUF_ALIGN - 1) & ~(size_t)(MEMBUF_ALIGN - 1))

enum membuf_map_kind { MEMBUF_MAP, MEMBUF_MAP_VEC };

struct membuf_mapping {
	struct membuf_mapping *next;
	void *addr;
	kcom_off_t off;
	size_t n;
	unsigned flags;                  /* KCOM_MAP_*; a bufio map is READ|WRITE */
	enum membuf_map_kind kind;
};

struct membuf {
	kcom_bufio_t bufio;
	kcom_bufvec_t bufvec;
	kcom_refcount_t refs;
	struct membuf_store *store;
	size_t base;                     /* our byte 0 is store->data[base] */
	size_t size;
	int fixed;                       /* wraps caller memory: capacity is store->cap */
	struct membuf_mapping *maps;     /* outstanding mappings, newest first */
	unsigned nmaps;
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

/* ---- stores ---- */

/* A new owned store of `cap` bytes (contents undefined), one reference; NULL on failure. */
static struct membuf_store *store_new(size_t cap)
{
	if (cap > SIZE_MAX - MEMBUF_STORE_HDR)
		return NULL;
	struct membuf_store *st = kcom_alloc(MEMBUF_STORE_HDR + cap, MEMBUF_ALIGN);
	if (st == NULL)
		return NULL;
	kcom_refcount_init(&st->refs, 1);
	st->cap = cap;
	st->data = (unsigned char *)st + MEMBUF_STORE_HDR;
	st->release = NULL;
	st->release_ctx = NULL;
	st->wrapped = 0;
	return st;
}

/* Drops a reference; the last one frees the store (or hands wrapped memory back). */
static void store_release(struct membuf_store *st)
{
	if (kcom_refcount_dec(&st->refs) != 0)
		return;
	if (st->wrapped) {
		if (st->release != NULL)
			st->release(st->release_ctx, st->data, st->cap);
		kcom_free(st, sizeof(*st), 0);
	} else {
		kcom_free(st, MEMBUF_STORE_HDR + st->cap, MEMBUF_ALIGN);
	}
}

static int store_shared(const struct membuf_store *st)
{
	return kcom_refcount_get(&st->refs) > 1;
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
	struct membuf_store *old = mb->store;
	int fits = need <= old->cap - mb->base;

	if (mb->fixed)
		return fits ? KCOM_OK : KCOM_E_NOSPACE;
	if (fits && !store_shared(old))
		return KCOM_OK;
	if (mb->nmaps != 0)
		return KCOM_E_BUSY;

	size_t cap = need;
	if (!fits) {
		/* Grow geometrically so a run of appends costs O(n) copying in all. */
		size_t cur = old->cap - mb->base;
		size_t doubled = cur <= SIZE_MAX / 2 ? cur * 2 : SIZE_MAX;
		cap = KCOM_MAX(cap, KCOM_MAX(doubled, (size_t)MEMBUF_MIN_CAP));
	}
	struct membuf_store *st = store_new(cap);
	if (st == NULL && cap > need)
		st = store_new(need); /* the doubled size may be what failed */
	if (st == NULL)
		return KCOM_E_OUTOFMEMORY;
	if (mb->size != 0)
		kcom_memcpy(st->data, membuf_bytes(mb), mb->size);
	mb->store = st;
	mb->base = 0;
	/* Drop the old store only after copying out of it: see the file comment. */
	store_release(old);
	return KCOM_OK;
}

/* ---- IUnknown ---- */

static kcom_error_t membuf_query_impl(struct membuf *mb, const kcom_iid_t *iid, void **out)
{
	if (out == NULL)
		return KCOM_E_POINTER;
	*out = NULL;
	if (iid == NULL)
		return KCOM_E_POINTER;
	if (kcom_guid_equal(iid, &kcom_iunknown_iid) || kcom_guid_equal(iid, &kcom_absio_iid) ||
	    kcom_guid_equal(iid, &kcom_bufio_iid))
		*out = &mb->bufio;
	else if (kcom_guid_equal(iid, &kcom_bufvec_iid))
		*out = &mb->bufvec;
	else
		return KCOM_E_NOINTERFACE;
	kcom_refcount_inc(&mb->refs);
	return KCOM_OK;
}

static void membuf_destroy(struct membuf *mb)
{
	KCOM_ASSERT(mb->nmaps == 0 && mb->maps == NULL); /* each mapping holds a reference */
	store_release(mb->store);
	kcom_free(mb, sizeof(*mb), 0);
}

static uint32_t membuf_release_impl(struct membuf *mb)
{
	uint32_t n = kcom_refcount_dec(&mb->refs);
	if (n == 0)
		membuf_destroy(mb);
	return n;
}

static kcom_error_t membuf_query(kcom_bufio_t *io, const kcom_iid_t *iid, void **out)
{
	return membuf_query_impl(impl_from_bufio(io), iid, out);
}

static uint32_t membuf_addref(kcom_bufio_t *io)
{
	return kcom_refcount_inc(&impl_from_bufio(io)->refs);
}

static uint32_t membuf_release(kcom_bufio_t *io)
{
	return membuf_release_impl(impl_from_bufio(io));
}

/* ---- absio ---- */

static kcom_error_t membuf_read(kcom_bufio_t *io, void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct membuf *mb = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (KCOM_FAILED(err))
		return err;
	if ((uint64_t)off >= mb->size)
		return KCOM_OK;
	size_t avail = mb->size - (size_t)off;
	size_t len = KCOM_MIN(n, avail);
	kcom_memcpy(buf, membuf_bytes(mb) + off, len);
	*out_actual = len;
	return KCOM_OK;
}

static kcom_error_t membuf_write(kcom_bufio_t *io, const void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct membuf *mb = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (KCOM_FAILED(err) || n == 0)
		return err;

	/* How much may land: the size is frozen while mapped; a wrapper ends where its memory does. */
	uint64_t limit = mb->nmaps != 0 ? mb->size : mb->fixed ? mb->store->cap : SIZE_MAX;
	if ((uint64_t)off >= limit)
		return mb->nmaps != 0 ? KCOM_E_BUSY : mb->fixed ? KCOM_E_NOSPACE : KCOM_E_OUTOFMEMORY;
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
	if (mb->nmaps != 0)
		return KCOM_E_BUSY;
	if (size < mb->size) {
		/* Truncating changes no byte, so a shared store stays shared. */
		mb->size = size;
		return KCOM_OK;
	}
	kcom_error_t err = membuf_make_writable(mb, size);
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
static kcom_error_t membuf_map_range(struct membuf *mb, kcom_off_t off, size_t n, unsigned flags,
                                     enum membuf_map_kind kind, void **out_addr)
{
	*out_addr = NULL;
	kcom_error_t err = kcom_absio_check_range_(off, n, mb->size);
	if (KCOM_FAILED(err))
		return err;
	struct membuf_mapping *m = kcom_alloc(sizeof(*m), 0);
	if (m == NULL)
		return KCOM_E_OUTOFMEMORY;
	if (flags & KCOM_MAP_WRITE) {
		err = membuf_make_writable(mb, mb->size);
		if (KCOM_FAILED(err)) {
			kcom_free(m, sizeof(*m), 0);
			return err;
		}
	}
	m->addr = membuf_bytes(mb) + off;
	m->off = off;
	m->n = n;
	m->flags = flags;
	m->kind = kind;
	m->next = mb->maps;
	mb->maps = m;
	mb->nmaps++;
	kcom_refcount_inc(&mb->refs);
	*out_addr = m->addr;
	return KCOM_OK;
}

/* Ends the mapping that matches exactly; KCOM_E_INVALIDARG, changing nothing, when none does. */
static kcom_error_t membuf_unmap_range(struct membuf *mb, const void *addr, kcom_off_t off, size_t n,
                                       unsigned flags, enum membuf_map_kind kind)
{
	for (struct membuf_mapping **pp = &mb->maps; *pp != NULL; pp = &(*pp)->next) {
		struct membuf_mapping *m = *pp;
		if (m->addr != addr || m->off != off || m->n != n || m->flags != flags || m->kind != kind)
			continue;
		*pp = m->next;
		mb->nmaps--;
		kcom_free(m, sizeof(*m), 0);
		membuf_release_impl(mb); /* may free mb: touch nothing after */
		return KCOM_OK;
	}
	return KCOM_E_INVALIDARG;
}

/* ---- bufio ---- */

static kcom_error_t membuf_map(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n)
{
	if (out_addr == NULL)
		return KCOM_E_INVALIDARG;
	return membuf_map_range(impl_from_bufio(io), off, n, KCOM_MAP_READ | KCOM_MAP_WRITE, MEMBUF_MAP, out_addr);
}

static kcom_error_t membuf_unmap(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	return membuf_unmap_range(impl_from_bufio(io), addr, off, n, KCOM_MAP_READ | KCOM_MAP_WRITE, MEMBUF_MAP);
}

static kcom_error_t membuf_wire(kcom_bufio_t *io, kcom_phys_t *out_phys, kcom_off_t off, size_t n)
{
	(void)io;
	(void)off;
	(void)n;
	if (out_phys == NULL)
		return KCOM_E_INVALIDARG;
	*out_phys = 0;
	/* Pageable memory is never handed to a device: use a dmabuf. */
	return KCOM_E_NOTIMPL;
}

static kcom_error_t membuf_unwire(kcom_bufio_t *io, kcom_phys_t phys, kcom_off_t off, size_t n)
{
	(void)io;
	(void)phys;
	(void)off;
	(void)n;
	/* wire never succeeds, so no wiring can match. */
	return KCOM_E_INVALIDARG;
}

static kcom_error_t membuf_new(struct membuf_store *st, size_t base, size_t size, int fixed, struct membuf **out);

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
	if (mb->fixed || mb->nmaps != 0) {
		/* Wrapped memory stays the caller's, and mapped bytes may change under a share. */
		struct membuf_store *st = store_new(n);
		if (st == NULL)
			return KCOM_E_OUTOFMEMORY;
		err = membuf_new(st, 0, n, 0, &copy);
		if (KCOM_FAILED(err)) {
			store_release(st);
			return err;
		}
		if (n != 0)
			kcom_memcpy(st->data, membuf_bytes(mb) + off, n);
	} else {
		err = membuf_new(mb->store, mb->base + (size_t)off, n, 0, &copy);
		if (KCOM_FAILED(err))
			return err;
		kcom_refcount_inc(&mb->store->refs);
	}
	*out_io = &copy->bufio;
	return KCOM_OK;
}

/* ---- bufvec (one segment) ---- */

static kcom_error_t membuf_vec_query(kcom_bufvec_t *vec, const kcom_iid_t *iid, void **out)
{
	return membuf_query_impl(impl_from_bufvec(vec), iid, out);
}

static uint32_t membuf_vec_addref(kcom_bufvec_t *vec)
{
	return kcom_refcount_inc(&impl_from_bufvec(vec)->refs);
}

static uint32_t membuf_vec_release(kcom_bufvec_t *vec)
{
	return membuf_release_impl(impl_from_bufvec(vec));
}

static int membuf_flags_valid(unsigned flags)
{
	return flags != 0 && (flags & ~(KCOM_MAP_READ | KCOM_MAP_WRITE)) == 0;
}

static kcom_error_t membuf_map_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                   struct kcom_iovec *iov, size_t max, size_t *out_count)
{
	struct membuf *mb = impl_from_bufvec(vec);
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	if (!membuf_flags_valid(flags) || (iov == NULL && max > 0))
		return KCOM_E_INVALIDARG;
	kcom_error_t err = kcom_absio_check_range_(off, n, mb->size);
	if (KCOM_FAILED(err))
		return err;
	if (max < 1) {
		*out_count = 1;
		return KCOM_E_TOOSMALL;
	}
	void *addr;
	err = membuf_map_range(mb, off, n, flags, MEMBUF_MAP_VEC, &addr);
	if (KCOM_FAILED(err))
		return err;
	iov[0].base = addr;
	iov[0].len = n;
	*out_count = 1;
	return KCOM_OK;
}

static kcom_error_t membuf_unmap_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                     const struct kcom_iovec *iov, size_t count)
{
	struct membuf *mb = impl_from_bufvec(vec);
	if (iov == NULL || count != 1 || iov[0].len != n)
		return KCOM_E_INVALIDARG;
	return membuf_unmap_range(mb, iov[0].base, off, n, flags, MEMBUF_MAP_VEC);
}

static kcom_error_t membuf_wire_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, struct kcom_physseg *segs,
                                    size_t max, size_t *out_count)
{
	(void)vec;
	(void)off;
	(void)n;
	(void)segs;
	(void)max;
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	return KCOM_E_NOTIMPL;
}

static kcom_error_t membuf_unwire_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n,
                                      const struct kcom_physseg *segs, size_t count)
{
	(void)vec;
	(void)off;
	(void)n;
	(void)segs;
	(void)count;
	return KCOM_E_INVALIDARG;
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
	.wire = membuf_wire,
	.unwire = membuf_unwire,
	.copy = membuf_copy,
};

static const struct kcom_bufvec_ops membuf_bufvec_ops = {
	.query = membuf_vec_query,
	.addref = membuf_vec_addref,
	.release = membuf_vec_release,
	.map_vec = membuf_map_vec,
	.unmap_vec = membuf_unmap_vec,
	.wire_vec = membuf_wire_vec,
	.unwire_vec = membuf_unwire_vec,
};

/* ---- construction ---- */

/* A membuf over `st` (whose reference it takes over only on success). */
static kcom_error_t membuf_new(struct membuf_store *st, size_t base, size_t size, int fixed, struct membuf **out)
{
	struct membuf *mb = kcom_alloc(sizeof(*mb), 0);
	if (mb == NULL)
		return KCOM_E_OUTOFMEMORY;
	mb->bufio.ops = &membuf_bufio_ops;
	mb->bufvec.ops = &membuf_bufvec_ops;
	kcom_refcount_init(&mb->refs, 1);
	mb->store = st;
	mb->base = base;
	mb->size = size;
	mb->fixed = fixed;
	mb->maps = NULL;
	mb->nmaps = 0;
	*out = mb;
	return KCOM_OK;
}

kcom_error_t kcom_membuf_create(size_t size, kcom_bufio_t **out_io)
{
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	struct membuf_store *st = store_new(size);
	if (st == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct membuf *mb;
	kcom_error_t err = membuf_new(st, 0, size, 0, &mb);
	if (KCOM_FAILED(err)) {
		store_release(st);
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
	struct membuf_store *st = kcom_alloc(sizeof(*st), 0);
	if (st == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_refcount_init(&st->refs, 1);
	st->cap = len;
	st->data = mem;
	st->release = release;
	st->release_ctx = ctx;
	st->wrapped = 1;
	struct membuf *mb;
	kcom_error_t err = membuf_new(st, 0, len, 1, &mb);
	if (KCOM_FAILED(err)) {
		/* The caller keeps its memory: free the header without calling release. */
		kcom_free(st, sizeof(*st), 0);
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

const kcom_clsid_t kcom_membuf_clsid = KCOM_MEMBUF_CLSID;

static const kcom_iid_t *const membuf_iids[] = {
	&kcom_iunknown_iid, &kcom_absio_iid, &kcom_bufio_iid, &kcom_bufvec_iid, NULL,
};

const struct kcom_class kcom_membuf_class = {
	.clsid = KCOM_MEMBUF_CLSID,
	.name = "membuf",
	.create = membuf_class_create,
	.iids = membuf_iids,
};
