/*
 * dmabuf: pinned memory with a physical segment table, built on the implementation kit
 * (impls/impl-internal.h).
 *
 * All the expensive work happens once, at creation: the memory is allocated page-aligned
 * (through the osenv's dma_alloc when the host places physical memory, else kcom_alloc),
 * touched (every page present) and pinned, and translated into the kit's physical
 * map with one batch call; the map is checked against the device's constraints.  wire and
 * wire_vec are then lookups in that map, never a system call.  Creation either completes or
 * undoes everything it did, in reverse order, and says why (the constraint that failed, the
 * pin the host refused, the allocation that failed).
 *
 * The memory never moves and never grows: the capacity is fixed, and the size moves inside it.
 * Bytes past the size are kept zero where a later growth would expose them (the gap a write
 * leaves, setsize's growth).  Outstanding mappings and wirings are the kit's ledger holds,
 * each with one reference; while any is outstanding the size is frozen.  copy() never shares:
 * a device may be writing the original, so a copy gets pinned pages of its own.
 *
 * Where the host will not translate (a hosted process without CAP_SYS_ADMIN), the object is
 * still created, pinned, with no map: wire and wire_vec answer KCOM_E_NOPHYS and the first
 * such call logs why.
 */
#include "config.h"

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <impls/dmabuf.h>
#include "absio/absio-internal.h"
#include "impls/impl-internal.h"

/*
 * Buffers this large (or contiguous ones) ask the host for huge pages first: each is one
 * physical run, so a device gets a few long segments instead of one per 4 KiB page.
 */
#define DMABUF_HUGE_MIN ((size_t)2 << 20)

/* How the memory was obtained, so it goes back the same way. */
enum dmabuf_source {
	DMABUF_NONE,      /* capacity 0: no memory */
	DMABUF_KCOM,      /* kcom_alloc, page-aligned, pinned by us */
	DMABUF_DMA_ALLOC, /* the osenv's dma_alloc: placed and pinned by the host */
	DMABUF_PAGES,     /* the osenv's alloc_pages (huge pages), pinned by us */
};

struct dmabuf {
	kcom_bufio_t bufio;
	kcom_bufvec_t bufvec;
	kcom_dmaalloc_t dmaalloc;      /* makes more dmabufs, for the bounce helper */
	struct kcom_impl impl;         /* count, ledger of mappings and wirings, debug interface */
	unsigned char *mem;            /* page-aligned; NULL when alloc is 0 */
	size_t alloc;                  /* bytes at mem: the capacity rounded up to pages */
	size_t cap;
	size_t size;
	enum dmabuf_source source;
	int pinned;                    /* we pinned [mem, mem + alloc) */
	kcom_error_t phys;             /* KCOM_OK: map is valid; else why there is none */
	int phys_logged;               /* the "no physical addresses" line was written */
	struct kcom_physmap map;       /* covers [mem, mem + alloc) when phys is KCOM_OK */
	struct kcom_dma_constraints c; /* the device's, as given (zeroed: none) */
};

static const struct kcom_bufio_ops dmabuf_bufio_ops;
static const struct kcom_bufvec_ops dmabuf_bufvec_ops;

static struct dmabuf *impl_from_bufio(kcom_bufio_t *io)
{
	KCOM_ASSERT(io->ops == &dmabuf_bufio_ops);
	return kcom_container_of(io, struct dmabuf, bufio);
}

static struct dmabuf *impl_from_bufvec(kcom_bufvec_t *vec)
{
	KCOM_ASSERT(vec->ops == &dmabuf_bufvec_ops);
	return kcom_container_of(vec, struct dmabuf, bufvec);
}

/* Whether the size is frozen: a mapping or a wiring is outstanding. */
static int dmabuf_held(const struct dmabuf *db)
{
	return kcom_ledger_mapped_(&db->impl) || kcom_ledger_wired_(&db->impl);
}

/* KCOM_OK when wire may look in the map; else the reason, logged on the first refusal. */
static kcom_error_t dmabuf_phys_ready(struct dmabuf *db)
{
	if (db->phys == KCOM_OK)
		return KCOM_OK;
	if (!db->phys_logged) {
		db->phys_logged = 1;
		kcom_log(KCOM_LOG_WARN, "dmabuf: the host gives no physical addresses (hosted: reading "
		                        "/proc/self/pagemap needs CAP_SYS_ADMIN), so this buffer cannot be wired");
	}
	return db->phys;
}

/* Gives back the memory and everything creation did to it, in reverse order. */
static void dmabuf_release_memory(struct dmabuf *db)
{
	if (db->phys == KCOM_OK)
		kcom_physmap_free_(&db->map);
	if (db->pinned)
		(void)kcom_unpin(db->mem, db->alloc);
	if (db->source == DMABUF_DMA_ALLOC)
		kcom_dma_free(db->mem, db->alloc);
	else if (db->source == DMABUF_PAGES)
		kcom_free_pages(db->mem, db->alloc, KCOM_PAGES_HUGE);
	else if (db->source == DMABUF_KCOM)
		kcom_free(db->mem, db->alloc, KCOM_DMABUF_PAGE);
	db->mem = NULL;
	db->source = DMABUF_NONE;
	db->pinned = 0;
	db->phys = KCOM_E_NOPHYS;
}

KCOM_IMPL_IUNKNOWN_(dmabuf, kcom_bufio_t, struct dmabuf, bufio)

static void dmabuf_destroy(struct kcom_impl *impl)
{
	struct dmabuf *db = kcom_container_of(impl, struct dmabuf, impl);
	dmabuf_release_memory(db);
	kcom_free(db, sizeof(*db), 0);
}

/* m_sanity: the window inside the memory, a map covering it in order, holds that match it. */
static kcom_error_t dmabuf_sanity(struct kcom_impl *impl, char *why, size_t len)
{
	struct dmabuf *db = kcom_container_of(impl, struct dmabuf, impl);
	if (db->size > db->cap || db->cap > db->alloc || db->alloc % KCOM_DMABUF_PAGE != 0)
		return kcom_impl_insane_(why, len, "dmabuf: size, capacity and memory out of order");
	if ((db->alloc != 0) != (db->mem != NULL) || (uintptr_t)db->mem % KCOM_DMABUF_PAGE != 0)
		return kcom_impl_insane_(why, len, "dmabuf: memory missing or not page-aligned");
	if (db->phys == KCOM_OK) {
		const struct kcom_physmap *m = &db->map;
		if (m->len != db->alloc || (m->count == 0) != (db->alloc == 0))
			return kcom_impl_insane_(why, len, "dmabuf: the physical map does not cover the memory");
		size_t at = 0;
		for (size_t i = 0; i < m->count; i++) {
			const struct kcom_physmap_seg *s = &m->segs[i];
			if (s->off != at || s->len == 0 || s->len % KCOM_DMABUF_PAGE != 0)
				return kcom_impl_insane_(why, len, "dmabuf: physical segments out of order");
			if (i > 0 && m->segs[i - 1].addr + m->segs[i - 1].len == s->addr)
				return kcom_impl_insane_(why, len, "dmabuf: adjacent physical segments not coalesced");
			at += s->len;
		}
		if (at != m->len)
			return kcom_impl_insane_(why, len, "dmabuf: physical segments do not add up");
	} else if (kcom_ledger_wired_(impl)) {
		return kcom_impl_insane_(why, len, "dmabuf: wired with no physical map");
	}
	for (const struct kcom_hold *h = impl->ledger.head; h != NULL; h = h->next) {
		if (h->key.off < 0 || (uint64_t)h->key.off > db->size || h->key.n > db->size - (size_t)h->key.off)
			return kcom_impl_insane_(why, len, "dmabuf: a hold outside the frozen size");
		if (h->key.kind == KCOM_HOLD_MAP && h->key.addr != (uintptr_t)(db->mem + h->key.off))
			return kcom_impl_insane_(why, len, "dmabuf: a mapping at the wrong address");
		if (h->key.kind == KCOM_HOLD_WIRE) {
			kcom_phys_t p;
			if (KCOM_FAILED(kcom_physmap_contig_(&db->map, (size_t)h->key.off, h->key.n, &p)) ||
			    p != h->key.addr)
				return kcom_impl_insane_(why, len, "dmabuf: a wiring the map does not give");
		}
	}
	return KCOM_OK;
}

/* ---- absio ---- */

static kcom_error_t dmabuf_read(kcom_bufio_t *io, void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct dmabuf *db = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);
	if ((uint64_t)off >= db->size)
		return KCOM_OK;
	size_t len = KCOM_MIN(n, db->size - (size_t)off);
	kcom_memcpy(buf, db->mem + off, len);
	*out_actual = len;
	return KCOM_OK;
}

static kcom_error_t dmabuf_write(kcom_bufio_t *io, const void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct dmabuf *db = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);

	/* The size is frozen while held; otherwise it may grow up to the capacity. */
	int held = dmabuf_held(db);
	size_t limit = held ? db->size : db->cap;
	if ((uint64_t)off >= limit)
		return held ? KCOM_E_BUSY : KCOM_E_NOSPACE;
	size_t len = KCOM_MIN(n, limit - (size_t)off);
	if ((size_t)off > db->size)
		kcom_memset(db->mem + db->size, 0, (size_t)off - db->size);
	kcom_memcpy(db->mem + off, buf, len);
	if ((size_t)off + len > db->size)
		db->size = (size_t)off + len;
	*out_actual = len;
	return KCOM_OK;
}

static kcom_error_t dmabuf_getsize(kcom_bufio_t *io, size_t *out_size)
{
	struct dmabuf *db = impl_from_bufio(io);
	if (out_size == NULL)
		return KCOM_E_INVALIDARG;
	*out_size = db->size;
	return KCOM_OK;
}

static kcom_error_t dmabuf_setsize(kcom_bufio_t *io, size_t size)
{
	struct dmabuf *db = impl_from_bufio(io);
	if (size == db->size)
		return KCOM_OK;
	kcom_error_t err = kcom_absio_check_size_(size);
	if (KCOM_FAILED(err))
		return err;
	if (dmabuf_held(db))
		return KCOM_E_BUSY;
	if (size > db->cap)
		return KCOM_E_NOSPACE;
	if (size > db->size)
		kcom_memset(db->mem + db->size, 0, size - db->size);
	db->size = size;
	return KCOM_OK;
}

/* ---- bufio ---- */

static kcom_error_t dmabuf_map(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n)
{
	struct dmabuf *db = impl_from_bufio(io);
	if (out_addr == NULL)
		return KCOM_E_INVALIDARG;
	*out_addr = NULL;
	kcom_error_t err = kcom_absio_check_range_(off, n, db->size);
	if (KCOM_FAILED(err))
		return err;
	struct kcom_hold *h = kcom_hold_alloc_(0);
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP, .addr = (uintptr_t)(db->mem + off), .off = off, .n = n,
		.flags = KCOM_MAP_READ | KCOM_MAP_WRITE,
	};
	kcom_ledger_insert_(&db->impl, h, &key, NULL);
	*out_addr = db->mem + off;
	return KCOM_OK;
}

static kcom_error_t dmabuf_unmap(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP, .addr = (uintptr_t)addr, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE,
	};
	return kcom_ledger_drop_(&impl_from_bufio(io)->impl, &key);
}

static kcom_error_t dmabuf_wire(kcom_bufio_t *io, kcom_phys_t *out_phys, kcom_off_t off, size_t n)
{
	struct dmabuf *db = impl_from_bufio(io);
	if (out_phys == NULL)
		return KCOM_E_INVALIDARG;
	*out_phys = 0;
	kcom_error_t err = kcom_absio_check_range_(off, n, db->size);
	if (KCOM_FAILED(err))
		return err;
	err = dmabuf_phys_ready(db);
	if (KCOM_FAILED(err))
		return err;
	kcom_phys_t phys;
	err = kcom_physmap_contig_(&db->map, (size_t)off, n, &phys);
	if (KCOM_FAILED(err))
		return err;
	struct kcom_hold *h = kcom_hold_alloc_(0);
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct kcom_hold_key key = { .kind = KCOM_HOLD_WIRE, .addr = phys, .off = off, .n = n };
	kcom_ledger_insert_(&db->impl, h, &key, NULL);
	*out_phys = phys;
	return KCOM_OK;
}

static kcom_error_t dmabuf_unwire(kcom_bufio_t *io, kcom_phys_t phys, kcom_off_t off, size_t n)
{
	struct kcom_hold_key key = { .kind = KCOM_HOLD_WIRE, .addr = phys, .off = off, .n = n };
	return kcom_ledger_drop_(&impl_from_bufio(io)->impl, &key);
}

static kcom_error_t dmabuf_new(size_t size, size_t capacity, const struct kcom_dma_constraints *c,
                               struct dmabuf **out);

static kcom_error_t dmabuf_copy(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	struct dmabuf *db = impl_from_bufio(io);
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	kcom_error_t err = kcom_absio_check_range_(off, n, db->size);
	if (KCOM_FAILED(err))
		return err;
	/* Its own pinned pages, under the same constraints: never shared with the original. */
	struct dmabuf *copy;
	err = dmabuf_new(n, n, &db->c, &copy);
	if (KCOM_FAILED(err))
		return err;
	if (n != 0)
		kcom_memcpy(copy->mem, db->mem + off, n);
	*out_io = &copy->bufio;
	return KCOM_OK;
}

/* ---- bufvec ---- */

KCOM_IMPL_IUNKNOWN_(dmabuf_vec, kcom_bufvec_t, struct dmabuf, bufvec)

static kcom_error_t dmabuf_map_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                   struct kcom_iovec *iov, size_t max, size_t *out_count)
{
	struct dmabuf *db = impl_from_bufvec(vec);
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	if (!kcom_map_flags_valid_(flags) || (iov == NULL && max > 0))
		return KCOM_E_INVALIDARG;
	kcom_error_t err = kcom_absio_check_range_(off, n, db->size);
	if (KCOM_FAILED(err))
		return err;
	if (max < 1) {
		*out_count = 1;
		return KCOM_E_TOOSMALL;
	}
	struct kcom_iovec piece = { .base = db->mem + off, .len = n };
	struct kcom_hold *h = kcom_hold_alloc_(sizeof(piece));
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP_VEC, .off = off, .n = n, .flags = flags, .vec = &piece, .veclen = sizeof(piece),
	};
	kcom_ledger_insert_(&db->impl, h, &key, NULL);
	iov[0] = piece;
	*out_count = 1;
	return KCOM_OK;
}

static kcom_error_t dmabuf_unmap_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                     const struct kcom_iovec *iov, size_t count)
{
	if (iov == NULL || count != 1)
		return KCOM_E_INVALIDARG;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP_VEC, .off = off, .n = n, .flags = flags, .vec = iov, .veclen = sizeof(*iov),
	};
	return kcom_ledger_drop_(&impl_from_bufvec(vec)->impl, &key);
}

/*
 * The segments of [off, off + n), cut at the device's boundary and longest segment.  The hold
 * keeps a copy of the list, so unwire_vec must give back exactly what was handed out.
 */
static kcom_error_t dmabuf_wire_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, struct kcom_physseg *segs,
                                    size_t max, size_t *out_count)
{
	struct dmabuf *db = impl_from_bufvec(vec);
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	if (segs == NULL && max > 0)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = kcom_absio_check_range_(off, n, db->size);
	if (KCOM_FAILED(err))
		return err;
	err = dmabuf_phys_ready(db);
	if (KCOM_FAILED(err))
		return err;
	size_t count;
	err = kcom_physmap_range_(&db->map, (size_t)off, n, &db->c, segs, max, &count);
	if (err == KCOM_E_TOOSMALL)
		*out_count = count;
	if (KCOM_FAILED(err))
		return err;
	struct kcom_hold *h = kcom_hold_alloc_(count * sizeof(*segs));
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_WIRE_VEC, .off = off, .n = n, .vec = segs, .veclen = count * sizeof(*segs),
	};
	kcom_ledger_insert_(&db->impl, h, &key, NULL);
	*out_count = count;
	return KCOM_OK;
}

static kcom_error_t dmabuf_unwire_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, const struct kcom_physseg *segs,
                                      size_t count)
{
	if (segs == NULL && count > 0)
		return KCOM_E_INVALIDARG;
	if (count > SIZE_MAX / sizeof(*segs))
		return KCOM_E_INVALIDARG;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_WIRE_VEC, .off = off, .n = n, .vec = segs, .veclen = count * sizeof(*segs),
	};
	return kcom_ledger_drop_(&impl_from_bufvec(vec)->impl, &key);
}

/* ---- dmaalloc: more of our kind, under other constraints ---- */

KCOM_IMPL_IUNKNOWN_(dmabuf_alloc, kcom_dmaalloc_t, struct dmabuf, dmaalloc)

static kcom_error_t dmabuf_alloc_alloc(kcom_dmaalloc_t *self, size_t size, const struct kcom_dma_constraints *c,
                                       kcom_bufio_t **out_io)
{
	(void)self;
	return kcom_dmabuf_create(size, size, c, out_io);
}

/* ---- tables ---- */

static const struct kcom_bufio_ops dmabuf_bufio_ops = {
	.query = dmabuf_query,
	.addref = dmabuf_addref,
	.release = dmabuf_release,
	.read = dmabuf_read,
	.write = dmabuf_write,
	.getsize = dmabuf_getsize,
	.setsize = dmabuf_setsize,
	.map = dmabuf_map,
	.unmap = dmabuf_unmap,
	.wire = dmabuf_wire,
	.unwire = dmabuf_unwire,
	.copy = dmabuf_copy,
};

static const struct kcom_bufvec_ops dmabuf_bufvec_ops = {
	.query = dmabuf_vec_query,
	.addref = dmabuf_vec_addref,
	.release = dmabuf_vec_release,
	.map_vec = dmabuf_map_vec,
	.unmap_vec = dmabuf_unmap_vec,
	.wire_vec = dmabuf_wire_vec,
	.unwire_vec = dmabuf_unwire_vec,
};

static const struct kcom_dmaalloc_ops dmabuf_dmaalloc_ops = {
	.query = dmabuf_alloc_query,
	.addref = dmabuf_alloc_addref,
	.release = dmabuf_alloc_release,
	.alloc = dmabuf_alloc_alloc,
};

/*
 * Buffer info: always pinned; resizable while its size is below its capacity (it can grow
 * now); contiguous when its pages are one physical segment.  No wire without physical
 * addresses.
 */
static void dmabuf_info(struct kcom_impl *impl, struct kcom_buffer_info *out)
{
	struct dmabuf *db = kcom_container_of(impl, struct dmabuf, impl);
	out->flags |= KCOM_BUFINFO_PINNED;
	if (db->size < db->cap)
		out->flags |= KCOM_BUFINFO_RESIZABLE;
	if (db->phys == KCOM_OK && db->map.count == 1)
		out->flags |= KCOM_BUFINFO_CONTIGUOUS;
	if (db->phys != KCOM_OK)
		out->natives &= ~KCOM_NATIVE_WIRE;
}

static const struct kcom_class_iface dmabuf_ifaces[] = {
	{ &kcom_iunknown_iid, offsetof(struct dmabuf, bufio) },
	{ &kcom_absio_iid, offsetof(struct dmabuf, bufio) },
	{ &kcom_bufio_iid, offsetof(struct dmabuf, bufio) },
	{ &kcom_bufvec_iid, offsetof(struct dmabuf, bufvec) },
	{ &kcom_dmaalloc_iid, offsetof(struct dmabuf, dmaalloc) },
	{ &kcom_debug_iid, offsetof(struct dmabuf, impl.debug) },
	{ &kcom_bufinfo_iid, offsetof(struct dmabuf, impl.bufinfo) },
	{ NULL, 0 },
};

static kcom_error_t dmabuf_class_create(const kcom_iid_t *iid, void **out);

const kcom_clsid_t kcom_dmabuf_clsid = KCOM_DMABUF_CLSID;

const struct kcom_class kcom_dmabuf_class = {
	.clsid = KCOM_DMABUF_CLSID,
	.name = "dmabuf",
	.create = dmabuf_class_create,
	.ifaces = dmabuf_ifaces,
	.natives = KCOM_NATIVE_MAP | KCOM_NATIVE_WIRE | KCOM_NATIVE_COPY | KCOM_NATIVE_BUFVEC,
};

static const struct kcom_impl_desc dmabuf_desc = {
	.cls = &kcom_dmabuf_class,
	.impl_offset = offsetof(struct dmabuf, impl),
	.destroy = dmabuf_destroy,
	.sanity = dmabuf_sanity,
	.info = dmabuf_info,
};

/* ---- construction ---- */

/* Writes the first byte of every page: each is present, with a frame of its own. */
static void dmabuf_touch(struct dmabuf *db)
{
	for (size_t off = 0; off < db->alloc; off += KCOM_DMABUF_PAGE)
		((volatile unsigned char *)db->mem)[off] = 0;
}

/*
 * Obtains db->alloc bytes of page-aligned memory: from the host's constrained allocator when
 * it has one (already pinned, placed to meet c); else, for a contiguous buffer of more than a
 * page or any buffer of DMABUF_HUGE_MIN or more, huge pages when the host offers them (each one
 * physically contiguous: the only way a hosted process gets contiguity, and few long segments
 * for a big buffer); else kcom_alloc.  Touched, pinned, and zeroed up to the initial size:
 * bytes past the size are zeroed when a write or setsize first exposes them, so creating a
 * large, empty buffer stores one byte a page, not the whole memory.  On failure nothing is held.
 */
static kcom_error_t dmabuf_get_memory(struct dmabuf *db)
{
	/*
	 * A boundary below a page binds only a buffer that fits under it (dmabuf_new checked
	 * that), and page-aligned memory starts on such a boundary: the host need not look at it.
	 */
	struct kcom_dma_constraints c = db->c;
	if (c.boundary != 0 && c.boundary < KCOM_DMABUF_PAGE)
		c.boundary = 0;
	void *mem;
	kcom_error_t err = kcom_dma_alloc(db->alloc, &c, &mem);
	if (err == KCOM_OK) {
		db->mem = mem;
		db->source = DMABUF_DMA_ALLOC;
		kcom_memset(db->mem, 0, db->size);
		return KCOM_OK;
	}
	if (err != KCOM_E_NOTIMPL)
		return err;
	if ((db->c.contiguous && db->alloc > KCOM_DMABUF_PAGE) || db->alloc >= DMABUF_HUGE_MIN) {
		db->mem = kcom_alloc_pages(db->alloc, KCOM_PAGES_HUGE);
		if (db->mem != NULL)
			db->source = DMABUF_PAGES;
	}
	if (db->mem == NULL) {
		db->mem = kcom_alloc(db->alloc, KCOM_DMABUF_PAGE);
		if (db->mem == NULL)
			return KCOM_E_OUTOFMEMORY;
		db->source = DMABUF_KCOM;
	}
	/*
	 * Every page must be present, with a frame of its own (written, not the shared zero
	 * page), before it is translated.  Huge pages are touched before the pin: Linux's mlock
	 * of part of a huge-page region gives that part a VMA of its own, too small for a huge
	 * page, and faults small pages into it.  Small pages are touched after it: mlock faults
	 * them in far faster than a trap a page would, and the touch then finds them present; it
	 * still matters where a pin faults nothing in (ASan's mlock does nothing).  The bytes past
	 * the size need no value, so the first of each page is simply written.
	 */
	if (db->source == DMABUF_PAGES)
		dmabuf_touch(db);
	err = kcom_pin(db->mem, db->alloc);
	if (KCOM_FAILED(err)) {
		dmabuf_release_memory(db);
		return err;
	}
	db->pinned = 1;
	if (db->source != DMABUF_PAGES)
		dmabuf_touch(db);
	kcom_memset(db->mem, 0, db->size);
	return KCOM_OK;
}

/*
 * A new dmabuf: memory, pin, physical map, constraint check.  Any failure undoes all of it
 * and returns the precise reason.  A host that will not translate leaves the object without a
 * map (wire answers why); every other translation failure is a failure to create.
 */
static kcom_error_t dmabuf_new(size_t size, size_t capacity, const struct kcom_dma_constraints *c,
                               struct dmabuf **out)
{
	*out = NULL;
	if (capacity == 0)
		capacity = size;
	if (size > capacity || capacity > SIZE_MAX - KCOM_DMABUF_PAGE)
		return KCOM_E_INVALIDARG;
	size_t alloc = (capacity + KCOM_DMABUF_PAGE - 1) & ~(KCOM_DMABUF_PAGE - 1);
	/* The device is given at most the capacity, not the rest of the last page. */
	kcom_error_t err = kcom_dma_constraints_valid_(c, capacity);
	if (KCOM_FAILED(err))
		return err;

	struct dmabuf *db = kcom_alloc(sizeof(*db), 0);
	if (db == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_memset(db, 0, sizeof(*db));
	db->bufio.ops = &dmabuf_bufio_ops;
	db->bufvec.ops = &dmabuf_bufvec_ops;
	db->dmaalloc.ops = &dmabuf_dmaalloc_ops;
	kcom_impl_init_(&db->impl, &dmabuf_desc);
	db->alloc = alloc;
	db->cap = capacity;
	db->size = size;
	db->source = DMABUF_NONE;
	db->phys = KCOM_E_NOPHYS;
	if (c != NULL)
		db->c = *c;

	if (alloc != 0) {
		err = dmabuf_get_memory(db);
		if (KCOM_SUCCEEDED(err)) {
			err = kcom_physmap_build_(&db->map, db->mem, alloc, KCOM_DMABUF_PAGE, kcom_xlate_osenv_, NULL);
			if (KCOM_SUCCEEDED(err)) {
				db->phys = KCOM_OK;
				err = kcom_physmap_check_(&db->map, &db->c, capacity);
			} else if (err == KCOM_E_NOPHYS || err == KCOM_E_NOTIMPL) {
				db->phys = KCOM_E_NOPHYS; /* pinned, but no device can be told where */
				err = KCOM_OK;
			}
		}
	} else {
		db->phys = KCOM_OK; /* nothing to translate: an empty map */
	}
	if (KCOM_FAILED(err)) {
		dmabuf_release_memory(db);
		kcom_free(db, sizeof(*db), 0);
		return err;
	}
	*out = db;
	return KCOM_OK;
}

kcom_error_t kcom_dmabuf_create(size_t size, size_t capacity, const struct kcom_dma_constraints *c,
                                kcom_bufio_t **out_io)
{
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	struct dmabuf *db;
	kcom_error_t err = dmabuf_new(size, capacity, c, &db);
	if (KCOM_FAILED(err))
		return err;
	*out_io = &db->bufio;
	return KCOM_OK;
}

/* The class factory: an empty dmabuf of the default capacity and no constraints, as `iid`. */
static kcom_error_t dmabuf_class_create(const kcom_iid_t *iid, void **out)
{
	kcom_bufio_t *io;
	kcom_error_t err = kcom_dmabuf_create(0, KCOM_DMABUF_DEFAULT_CAPACITY, NULL, &io);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_query(io, iid, out);
	kcom_bufio_release(io);
	return err;
}
