/*
 * The implementation kit (impls/impl-internal.h): the object's debug and buffer info
 * interfaces, the ledger of mappings and wirings, the default methods, stores and physical maps.
 *
 * Nothing here changes an object unless the whole operation can complete: records are
 * allocated before they are linked, a store moves only after its new block exists, a map is
 * published only once it is complete.
 */
#include "config.h"

#include "absio/absio-internal.h"
#include "impls/impl-internal.h"

/* ---- the object and its debug interface ---- */

static struct kcom_impl *impl_from_debug(kcom_debug_t *dbg)
{
	return kcom_container_of(dbg, struct kcom_impl, debug);
}

static kcom_error_t kit_debug_query(kcom_debug_t *dbg, const kcom_iid_t *iid, void **out)
{
	return kcom_impl_query_(impl_from_debug(dbg), iid, out);
}

static uint32_t kit_debug_addref(kcom_debug_t *dbg)
{
	return kcom_impl_addref_(impl_from_debug(dbg));
}

static uint32_t kit_debug_release(kcom_debug_t *dbg)
{
	return kcom_impl_release_(impl_from_debug(dbg));
}

kcom_error_t kcom_impl_insane_(char *why, size_t len, const char *text)
{
	if (why != NULL && len > 0) {
		size_t i;
		for (i = 0; i + 1 < len && text[i] != '\0'; i++)
			why[i] = text[i];
		why[i] = '\0';
	}
	return KCOM_E_UNEXPECTED;
}

/* The ledger's own invariants, then the class's. */
static kcom_error_t kit_debug_check(kcom_debug_t *dbg, char *why, size_t len)
{
	struct kcom_impl *impl = impl_from_debug(dbg);
	if (why != NULL && len > 0)
		why[0] = '\0';
	uint32_t maps = 0, wires = 0;
	kcom_spin_acquire_(&impl->ledger.lock);
	for (const struct kcom_hold *h = impl->ledger.head; h != NULL; h = h->next) {
		if (h->key.kind == KCOM_HOLD_MAP || h->key.kind == KCOM_HOLD_MAP_VEC)
			maps++;
		else
			wires++;
	}
	int agree = maps == impl->ledger.maps && wires == impl->ledger.wires;
	kcom_spin_release_(&impl->ledger.lock);
	if (!agree)
		return kcom_impl_insane_(why, len, "ledger: counts do not match the records");
	if (kcom_refcount_get(&impl->refs) < 1 + maps + wires)
		return kcom_impl_insane_(why, len, "ledger: fewer references than holds");
	return impl->desc->sanity != NULL ? impl->desc->sanity(impl, why, len) : KCOM_OK;
}

static kcom_error_t kit_debug_counts(kcom_debug_t *dbg, struct kcom_debug_counts *out)
{
	if (out == NULL)
		return KCOM_E_INVALIDARG;
	struct kcom_impl *impl = impl_from_debug(dbg);
	out->refs = kcom_refcount_get(&impl->refs);
	out->mappings = __atomic_load_n(&impl->ledger.maps, __ATOMIC_RELAXED);
	out->wirings = __atomic_load_n(&impl->ledger.wires, __ATOMIC_RELAXED);
	return KCOM_OK;
}

static const struct kcom_debug_ops kit_debug_ops = {
	.query = kit_debug_query,
	.addref = kit_debug_addref,
	.release = kit_debug_release,
	.check = kit_debug_check,
	.counts = kit_debug_counts,
};

/* ---- buffer info ---- */

static struct kcom_impl *impl_from_bufinfo(kcom_bufinfo_t *bi)
{
	return kcom_container_of(bi, struct kcom_impl, bufinfo);
}

static kcom_error_t kit_bufinfo_query(kcom_bufinfo_t *bi, const kcom_iid_t *iid, void **out)
{
	return kcom_impl_query_(impl_from_bufinfo(bi), iid, out);
}

static uint32_t kit_bufinfo_addref(kcom_bufinfo_t *bi)
{
	return kcom_impl_addref_(impl_from_bufinfo(bi));
}

static uint32_t kit_bufinfo_release(kcom_bufinfo_t *bi)
{
	return kcom_impl_release_(impl_from_bufinfo(bi));
}

/* The name and the class's natives from here, the size from the object's own getsize. */
static kcom_error_t kit_bufinfo_get(kcom_bufinfo_t *bi, struct kcom_buffer_info *out)
{
	if (out == NULL)
		return KCOM_E_INVALIDARG;
	struct kcom_impl *impl = impl_from_bufinfo(bi);
	kcom_memset(out, 0, sizeof(*out));
	kcom_memcpy(out->name, impl->name, sizeof(out->name));
	out->natives = impl->desc->cls->natives;
	kcom_bufio_t *io;
	if (KCOM_SUCCEEDED(kcom_impl_query_(impl, &kcom_bufio_iid, (void **)&io))) {
		if (KCOM_FAILED(kcom_bufio_getsize(io, &out->size)))
			out->size = 0;
		kcom_impl_release_(impl); /* the caller's reference keeps the object */
	}
	if (impl->desc->info != NULL)
		impl->desc->info(impl, out);
	return KCOM_OK;
}

void kcom_impl_set_name_(struct kcom_impl *impl, const char *name)
{
	size_t i = 0;
	if (name != NULL)
		for (; i + 1 < sizeof(impl->name) && name[i] != '\0'; i++)
			impl->name[i] = name[i];
	impl->name[i] = '\0';
}

static kcom_error_t kit_bufinfo_set_name(kcom_bufinfo_t *bi, const char *name)
{
	if (name == NULL)
		return KCOM_E_INVALIDARG;
	kcom_impl_set_name_(impl_from_bufinfo(bi), name);
	return KCOM_OK;
}

static const struct kcom_bufinfo_ops kit_bufinfo_ops = {
	.query = kit_bufinfo_query,
	.addref = kit_bufinfo_addref,
	.release = kit_bufinfo_release,
	.get = kit_bufinfo_get,
	.set_name = kit_bufinfo_set_name,
};

void kcom_impl_init_(struct kcom_impl *impl, const struct kcom_impl_desc *desc)
{
	impl->debug.ops = &kit_debug_ops;
	impl->bufinfo.ops = &kit_bufinfo_ops;
	impl->name[0] = '\0';
	kcom_refcount_init(&impl->refs, 1);
	impl->desc = desc;
	impl->ledger = (struct kcom_ledger){ .head = NULL };
}

/* ---- the ledger ---- */

struct kcom_hold *kcom_hold_alloc_(size_t veclen)
{
	if (veclen > SIZE_MAX - sizeof(struct kcom_hold))
		return NULL;
	size_t size = sizeof(struct kcom_hold) + veclen;
	struct kcom_hold *h = kcom_alloc(size, 0);
	if (h != NULL)
		h->alloc = size;
	return h;
}

void kcom_hold_free_(struct kcom_hold *h)
{
	if (h != NULL)
		kcom_free(h, h->alloc, 0);
}

static int hold_is_map(enum kcom_hold_kind kind)
{
	return kind == KCOM_HOLD_MAP || kind == KCOM_HOLD_MAP_VEC;
}

void kcom_ledger_insert_(struct kcom_impl *impl, struct kcom_hold *h, const struct kcom_hold_key *key, void *priv)
{
	KCOM_ASSERT(sizeof(*h) + key->veclen <= h->alloc);
	h->key = *key;
	if (key->veclen != 0)
		kcom_memcpy(h->vec, key->vec, key->veclen);
	h->key.vec = h->vec;
	h->priv = priv;
	kcom_refcount_inc(&impl->refs);
	kcom_spin_acquire_(&impl->ledger.lock);
	h->next = impl->ledger.head;
	impl->ledger.head = h;
	__atomic_add_fetch(hold_is_map(key->kind) ? &impl->ledger.maps : &impl->ledger.wires, 1, __ATOMIC_RELAXED);
	kcom_spin_release_(&impl->ledger.lock);
}

static int hold_matches(const struct kcom_hold *h, const struct kcom_hold_key *key)
{
	return h->key.kind == key->kind && h->key.addr == key->addr && h->key.off == key->off && h->key.n == key->n &&
	       h->key.flags == key->flags && h->key.veclen == key->veclen &&
	       (key->veclen == 0 || (key->vec != NULL && kcom_memcmp(h->vec, key->vec, key->veclen) == 0));
}

struct kcom_hold *kcom_ledger_remove_(struct kcom_impl *impl, const struct kcom_hold_key *key)
{
	struct kcom_hold *found = NULL;
	kcom_spin_acquire_(&impl->ledger.lock);
	for (struct kcom_hold **pp = &impl->ledger.head; *pp != NULL; pp = &(*pp)->next) {
		struct kcom_hold *h = *pp;
		if (!hold_matches(h, key))
			continue;
		*pp = h->next;
		__atomic_sub_fetch(hold_is_map(h->key.kind) ? &impl->ledger.maps : &impl->ledger.wires, 1,
		                   __ATOMIC_RELAXED);
		found = h;
		break;
	}
	kcom_spin_release_(&impl->ledger.lock);
	return found;
}

kcom_error_t kcom_ledger_drop_(struct kcom_impl *impl, const struct kcom_hold_key *key)
{
	struct kcom_hold *h = kcom_ledger_remove_(impl, key);
	if (h == NULL)
		return KCOM_E_INVALIDARG;
	kcom_hold_free_(h);
	kcom_impl_release_(impl); /* may free the object: touch nothing after */
	return KCOM_OK;
}

/* ---- map_vec of one piece ---- */

kcom_error_t kcom_onepiece_map_vec_(struct kcom_impl *impl, const struct kcom_onepiece_ *op, kcom_off_t off,
                                    size_t n, unsigned flags, struct kcom_iovec *iov, size_t max, size_t *out_count)
{
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	if (!kcom_map_flags_valid_(flags) || (iov == NULL && max > 0))
		return KCOM_E_INVALIDARG;
	size_t size;
	kcom_error_t err = op->size(impl, &size);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_absio_check_range_(off, n, size);
	if (KCOM_FAILED(err))
		return err;
	if (max < 1) {
		*out_count = 1;
		return KCOM_E_TOOSMALL;
	}
	struct kcom_iovec piece;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP_VEC, .off = off, .n = n, .flags = flags, .vec = &piece, .veclen = sizeof(piece),
	};
	void *addr;
	err = op->map(impl, &key, &piece, &addr);
	if (KCOM_FAILED(err))
		return err;
	iov[0] = piece;
	*out_count = 1;
	return KCOM_OK;
}

kcom_error_t kcom_onepiece_unmap_vec_(struct kcom_impl *impl, const struct kcom_onepiece_ *op, kcom_off_t off,
                                      size_t n, unsigned flags, const struct kcom_iovec *iov, size_t count)
{
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP_VEC, .off = off, .n = n, .flags = flags, .vec = iov, .veclen = count * sizeof(*iov),
	};
	if (iov == NULL || count != 1)
		return KCOM_E_INVALIDARG;
	return op->unmap(impl, &key);
}

/* ---- defaults ---- */

/*
 * What a method that cannot do its work still answers first: the range rules every map, wire
 * and copy applies (bufio.h: a range outside the object is KCOM_E_RANGE, whatever the object
 * can do); KCOM_E_NOTIMPL for a range inside it.
 */
static kcom_error_t notimpl_in_range(kcom_absio_t *a, kcom_off_t off, size_t n)
{
	size_t size;
	kcom_error_t err = kcom_absio_getsize(a, &size);
	if (KCOM_SUCCEEDED(err))
		err = kcom_absio_check_range_(off, n, size);
	return KCOM_FAILED(err) ? err : KCOM_E_NOTIMPL;
}

kcom_error_t kcom_impl_map_notimpl_(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n)
{
	if (out_addr == NULL)
		return KCOM_E_INVALIDARG;
	*out_addr = NULL;
	return notimpl_in_range(kcom_bufio_absio(io), off, n);
}

kcom_error_t kcom_impl_unmap_none_(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	(void)io;
	(void)addr;
	(void)off;
	(void)n;
	return KCOM_E_INVALIDARG; /* map never succeeds, so no mapping can match */
}

kcom_error_t kcom_impl_wire_notimpl_(kcom_bufio_t *io, kcom_phys_t *out_phys, kcom_off_t off, size_t n)
{
	if (out_phys == NULL)
		return KCOM_E_INVALIDARG;
	*out_phys = 0;
	return notimpl_in_range(kcom_bufio_absio(io), off, n);
}

kcom_error_t kcom_impl_unwire_none_(kcom_bufio_t *io, kcom_phys_t phys, kcom_off_t off, size_t n)
{
	(void)io;
	(void)phys;
	(void)off;
	(void)n;
	return KCOM_E_INVALIDARG; /* wire never succeeds, so no wiring can match */
}

kcom_error_t kcom_impl_copy_notimpl_(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	return notimpl_in_range(kcom_bufio_absio(io), off, n);
}

kcom_error_t kcom_impl_wire_vec_notimpl_(kcom_bufvec_t *vec, kcom_off_t off, size_t n, struct kcom_physseg *segs,
                                         size_t max, size_t *out_count)
{
	if (out_count == NULL || (segs == NULL && max > 0))
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	kcom_absio_t *a;
	if (KCOM_FAILED(kcom_bufvec_query(vec, &kcom_absio_iid, (void **)&a)))
		return KCOM_E_NOTIMPL;
	kcom_error_t err = notimpl_in_range(a, off, n);
	kcom_absio_release(a);
	return err;
}

kcom_error_t kcom_impl_unwire_vec_none_(kcom_bufvec_t *vec, kcom_off_t off, size_t n,
                                        const struct kcom_physseg *segs, size_t count)
{
	(void)vec;
	(void)off;
	(void)n;
	(void)segs;
	(void)count;
	return KCOM_E_INVALIDARG;
}

/* ---- stores ---- */

/* The header of an owned store is padded so its bytes start cache-aligned. */
#define STORE_HDR ((sizeof(struct kcom_store) + KCOM_STORE_ALIGN - 1) & ~(size_t)(KCOM_STORE_ALIGN - 1))
_Static_assert(sizeof(void *) != 8 || sizeof(struct kcom_store) <= KCOM_STORE_ALIGN,
               "an owned store's header takes one cache line on LP64");

/* One reference to `cap` bytes at `data`, owned, not carved: what every kind of store starts from. */
static void store_init(struct kcom_store *st, unsigned char *data, size_t cap)
{
	kcom_refcount_init(&st->refs, 1);
	st->cap = cap;
	st->data = data;
	st->release = NULL;
	st->ctx = NULL;
	st->outside = 0;
	st->pmap = NULL;
	st->pmap_off = 0;
	st->slab = NULL;
}

struct kcom_store *kcom_store_new_(size_t cap)
{
	if (cap > SIZE_MAX - STORE_HDR)
		return NULL;
	struct kcom_store *st = kcom_alloc(STORE_HDR + cap, KCOM_STORE_ALIGN);
	if (st != NULL)
		store_init(st, (unsigned char *)st + STORE_HDR, cap);
	return st;
}

struct kcom_store *kcom_store_wrap_(void *mem, size_t len, void (*release)(void *ctx, void *mem, size_t len),
                                    void *ctx)
{
	struct kcom_store *st = kcom_alloc(sizeof(*st), 0);
	if (st == NULL)
		return NULL;
	store_init(st, mem, len);
	st->release = release;
	st->ctx = ctx;
	st->outside = 1;
	return st;
}

static void slab_release(struct kcom_slab *sl);

void kcom_store_release_(struct kcom_store *st)
{
	if (kcom_refcount_dec(&st->refs) != 0)
		return;
	if (st->slab != NULL) {
		slab_release(st->slab);
	} else if (st->outside) {
		if (st->release != NULL)
			st->release(st->ctx, st->data, st->cap);
		kcom_free(st, sizeof(*st), 0);
	} else {
		kcom_free(st, STORE_HDR + st->cap, KCOM_STORE_ALIGN);
	}
}

kcom_error_t kcom_store_move_(struct kcom_store **stp, size_t *base, size_t keep, size_t cap, size_t min)
{
	KCOM_ASSERT(keep <= min && min <= cap);
	struct kcom_store *st = kcom_store_new_(cap);
	if (st == NULL && min < cap)
		st = kcom_store_new_(min); /* the generous size may be what failed */
	if (st == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct kcom_store *old = *stp;
	if (keep != 0)
		kcom_memcpy(st->data, old->data + *base, keep);
	*stp = st;
	*base = 0;
	/* Only now: another owner may be the last one, and it must not free what we copy from. */
	kcom_store_release_(old);
	return KCOM_OK;
}

/* ---- slabs: clusters cut in order from one allocation ---- */

/*
 * Under ASan, clusters stand apart by a poisoned gap, so an overrun from one into the next is
 * still reported as it is between separate allocations.
 */
#ifdef __SANITIZE_ADDRESS__
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define SLAB_GAP 64
#define SLAB_POISON(p, n) __asan_poison_memory_region((p), (n))
#define SLAB_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define SLAB_GAP 0
#define SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The hosts' smallest page: a cluster that is a multiple of it gets page-aligned slabs. */
#define SLAB_PAGE 4096
/* How full slabs of whole pages are asked of the page allocator. */
#define SLAB_PAGES KCOM_PAGES_NOW

struct kcom_slab {
	kcom_refcount_t refs;   /* one per carved cluster still held, one for the carver */
	size_t count;           /* clusters */
	size_t used;            /* clusters carved; only the carver changes it */
	size_t stride;          /* bytes from one cluster to the next */
	size_t align;           /* of data from kcom_alloc; 0: data is from kcom_alloc_pages */
	unsigned char *data;    /* count * stride bytes */
	struct kcom_store st[]; /* the clusters' headers */
};

static size_t slab_bytes(size_t count)
{
	return sizeof(struct kcom_slab) + count * sizeof(struct kcom_store);
}

/* A slab of `count` clusters with the carver's reference; NULL when no memory (or it cannot fit). */
static struct kcom_slab *slab_new(size_t count, size_t cluster)
{
	size_t stride = cluster + SLAB_GAP;
	if (stride < cluster || stride > SIZE_MAX / count)
		return NULL;
	struct kcom_slab *sl = kcom_alloc(slab_bytes(count), 0);
	if (sl == NULL)
		return NULL;
	/*
	 * The longest runs of whole pages come from the page allocator where the osenv has one,
	 * backed at once (a chain that reaches them writes its clusters as it carves them): one
	 * call for 16 pages, not 16 faults, and no heap header, which in front of a page-aligned
	 * block costs a page in 17.  Shorter runs come from the heap, so a small object makes no
	 * system call for its clusters.
	 */
	sl->align = 0;
	sl->data = NULL;
	if (count == KCOM_SLAB_MAX && stride % SLAB_PAGE == 0)
		sl->data = kcom_alloc_pages(count * stride, SLAB_PAGES);
	if (sl->data == NULL) {
		sl->align = cluster % SLAB_PAGE == 0 ? SLAB_PAGE : KCOM_STORE_ALIGN;
		sl->data = kcom_alloc(count * stride, sl->align);
	}
	if (sl->data == NULL) {
		kcom_free(sl, slab_bytes(count), 0);
		return NULL;
	}
	kcom_refcount_init(&sl->refs, 1);
	sl->count = count;
	sl->used = 0;
	sl->stride = stride;
	for (size_t i = 0; SLAB_GAP != 0 && i < count; i++)
		SLAB_POISON(sl->data + i * stride + cluster, SLAB_GAP);
	return sl;
}

static void slab_release(struct kcom_slab *sl)
{
	if (kcom_refcount_dec(&sl->refs) != 0)
		return;
	SLAB_UNPOISON(sl->data, sl->count * sl->stride);
	if (sl->align == 0)
		kcom_free_pages(sl->data, sl->count * sl->stride, SLAB_PAGES);
	else
		kcom_free(sl->data, sl->count * sl->stride, sl->align);
	kcom_free(sl, slab_bytes(sl->count), 0);
}

struct kcom_store *kcom_carve_(struct kcom_carver *cv, size_t cluster)
{
	struct kcom_slab *sl = cv->slab;
	KCOM_ASSERT(sl == NULL || sl->stride == cluster + SLAB_GAP);
	if (sl == NULL || sl->used == sl->count) {
		size_t count = cv->next != 0 ? cv->next : 1;
		struct kcom_slab *fresh = slab_new(count, cluster);
		if (fresh == NULL) {
			cv->next = 1; /* the run may be what failed: the next call asks for one cluster */
			return NULL;
		}
		if (sl != NULL)
			slab_release(sl);
		cv->slab = sl = fresh;
		cv->next = KCOM_MIN(2 * fresh->count, (size_t)KCOM_SLAB_MAX);
	}
	struct kcom_store *st = &sl->st[sl->used];
	store_init(st, sl->data + sl->used * sl->stride, cluster);
	st->slab = sl;
	sl->used++;
	kcom_refcount_inc(&sl->refs);
	return st;
}

void kcom_carver_fini_(struct kcom_carver *cv)
{
	if (cv->slab != NULL)
		slab_release(cv->slab);
	cv->slab = NULL;
	cv->next = 0;
}

/* ---- physical maps ---- */

kcom_error_t kcom_xlate_osenv_(void *ctx, const void *addr, size_t npages, size_t page, kcom_phys_t *out_phys)
{
	(void)ctx;
	return kcom_virt_to_phys_pages(addr, npages, page, out_phys);
}

/* Pages translated per call of xlate: bounds the stack buffer. */
#define PHYSMAP_BATCH 512

kcom_error_t kcom_physmap_build_(struct kcom_physmap *map, const void *addr, size_t len, size_t page,
                                 kcom_xlate_fn xlate, void *ctx)
{
	map->segs = NULL;
	map->count = 0;
	map->len = 0;
	if (page == 0 || (page & (page - 1)) != 0 || len % page != 0 || (uintptr_t)addr % page != 0)
		return KCOM_E_INVALIDARG;
	if (len == 0)
		return KCOM_OK;
	size_t npages = len / page;

	/* Worst case one segment a page; trimmed to the real count at the end. */
	struct kcom_physmap_seg *segs = kcom_alloc(npages * sizeof(*segs), 0);
	if (segs == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_phys_t frames[PHYSMAP_BATCH];
	size_t count = 0;
	for (size_t done = 0; done < npages;) {
		size_t batch = KCOM_MIN(npages - done, (size_t)PHYSMAP_BATCH);
		kcom_error_t err = xlate(ctx, (const char *)addr + done * page, batch, page, frames);
		if (KCOM_FAILED(err)) {
			kcom_free(segs, npages * sizeof(*segs), 0);
			return err;
		}
		for (size_t i = 0; i < batch; i++) {
			struct kcom_physmap_seg *last = count != 0 ? &segs[count - 1] : NULL;
			if (last != NULL && last->addr + last->len == frames[i]) {
				last->len += page;
			} else {
				segs[count].off = (done + i) * page;
				segs[count].addr = frames[i];
				segs[count].len = page;
				count++;
			}
		}
		done += batch;
	}
	if (count < npages) {
		struct kcom_physmap_seg *exact = kcom_alloc(count * sizeof(*exact), 0);
		if (exact == NULL) {
			kcom_free(segs, npages * sizeof(*segs), 0);
			return KCOM_E_OUTOFMEMORY;
		}
		kcom_memcpy(exact, segs, count * sizeof(*exact));
		kcom_free(segs, npages * sizeof(*segs), 0);
		segs = exact;
	}
	map->segs = segs;
	map->count = count;
	map->len = len;
	return KCOM_OK;
}

void kcom_physmap_free_(struct kcom_physmap *map)
{
	kcom_free(map->segs, map->count * sizeof(*map->segs), 0);
	map->segs = NULL;
	map->count = 0;
	map->len = 0;
}

size_t kcom_physmap_find_(const struct kcom_physmap *map, size_t off)
{
	size_t lo = 0, hi = map->count; /* the answer is in [lo, hi) */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (map->segs[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

kcom_error_t kcom_physmap_check_(const struct kcom_physmap *map, const struct kcom_dma_constraints *c, size_t len)
{
	if (c == NULL || map->count == 0)
		return KCOM_OK;
	if (c->max_addr != 0)
		for (size_t i = 0; i < map->count; i++)
			if (map->segs[i].addr + (map->segs[i].len - 1) > c->max_addr ||
			    map->segs[i].addr + (map->segs[i].len - 1) < map->segs[i].addr)
				return KCOM_E_UNREACHABLE;
	if (c->contiguous && map->count > 1)
		return KCOM_E_NOTCONTIG;
	if (c->align > 1 && (map->segs[0].addr & (kcom_phys_t)(c->align - 1)) != 0)
		return KCOM_E_MISALIGNED;
	if (c->contiguous && c->boundary != 0 && kcom_dma_crosses_(map->segs[0].addr, KCOM_MIN(map->segs[0].len, len), c->boundary))
		return KCOM_E_BOUNDARY;
	return KCOM_OK;
}

kcom_error_t kcom_physmap_contig_(const struct kcom_physmap *map, size_t off, size_t n, kcom_phys_t *out_phys)
{
	*out_phys = 0;
	if (n == 0 && (map->count == 0 || off >= map->len)) {
		/* No byte to name: just past the last one, or 0 when there is no memory at all. */
		if (map->count != 0 && off == map->len)
			*out_phys = map->segs[map->count - 1].addr + map->segs[map->count - 1].len;
		return map->count != 0 && off > map->len ? KCOM_E_NOTCONTIG : KCOM_OK;
	}
	if (map->count == 0 || off >= map->len)
		return KCOM_E_NOTCONTIG;
	const struct kcom_physmap_seg *s = &map->segs[kcom_physmap_find_(map, off)];
	size_t in = off - s->off;
	if (n > s->len - in)
		return KCOM_E_NOTCONTIG;
	*out_phys = s->addr + in;
	return KCOM_OK;
}

kcom_error_t kcom_physmap_range_(const struct kcom_physmap *map, size_t off, size_t n,
                                 const struct kcom_dma_constraints *c, struct kcom_physseg *segs, size_t max,
                                 size_t *out_count)
{
	size_t count = 0;
	size_t i = n != 0 ? kcom_physmap_find_(map, off) : 0;
	while (n != 0) {
		const struct kcom_physmap_seg *s = &map->segs[i];
		size_t in = off - s->off;
		kcom_phys_t addr = s->addr + in;
		/* Cut at the device's boundary and longest segment. */
		size_t len = kcom_dma_piece_(c, addr, KCOM_MIN(n, s->len - in));
		if (count < max) {
			segs[count].addr = addr;
			segs[count].len = len;
		}
		count++;
		off += len;
		n -= len;
		if (off - s->off == s->len)
			i++;
	}
	*out_count = count;
	return count <= max ? KCOM_OK : KCOM_E_TOOSMALL;
}
