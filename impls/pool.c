/*
 * pool: fixed-size pages of a backing bufio handed out by offset (impls/pool.h), built on the
 * implementation kit.
 *
 * The region is mapped once, whole, for the pool's life (so its memory never moves), and
 * wired once when it can be, keeping its physical map (a page may span several of its
 * segments: a chain over the page wires as those).  Free pages sit in a
 * shared stack under the pool's osenv lock, or in threads' caches (the context of a per-thread
 * I/O channel whose device is the pool), which only their own thread touches.  Who holds a
 * page is one byte each (free, handed out to a caller, or owned by a message chain), so a put
 * is checked without the lock: the thread whose compare-and-swap finds the byte at "handed
 * out" owns the page again; any other put of it (a double put, the same offset twice in one
 * list, a racing second thread, a page a chain owns) finds it otherwise and is refused, and the
 * bytes a refused put already cleared are set back: all or nothing.  A get sets the byte of a
 * page only its own thread holds, with a plain store.  Each cache holds a reference to the
 * pool; a pool whose last reference goes with a cache's (its thread's exit) is retired from
 * the I/O channel table and torn down once that cache is gone.  Consecutive pages' bytes lie in
 * different cache lines, so threads working on their own pages do not share lines; no counter
 * is shared on the fast path (info counts the bytes).
 *
 * Failures: creation allocates and maps everything before the pool exists; get and put never
 * allocate.
 */
#include "config.h"

#include <impls/membuf.h>
#include <impls/pool.h>
#include "absio/absio-internal.h"
#include "impls/impl-internal.h"

/*
 * Pages a thread's cache holds at most (and never more than an eighth of the pool, so caches
 * cannot hoard what other threads need); a full cache spills half to the shared stack.
 */
#define POOL_CACHE 64

struct pool_cache {
	struct pool *pool;
	uintptr_t owner; /* the thread */
	size_t count;
	uint32_t pages[POOL_CACHE];
};

struct pool {
	kcom_pool_t pool;
	struct kcom_impl impl;
	kcom_lock_t lock;        /* the shared stack */
	kcom_bufio_t *region;
	unsigned char *base;     /* the region, mapped whole */
	size_t page_size;
	unsigned shift;          /* log2(page_size) */
	size_t count;
	uint32_t *stack;         /* free pages not in any cache */
	size_t nstack;
	size_t cache_max;        /* pages one cache holds at most */
	unsigned char *out;      /* byte per page, at out_byte(): OUT_FREE, OUT_CALLER or OUT_CHAIN */
	size_t lines;            /* cache lines of `out` */
	struct kcom_physseg *segs; /* the region's wiring (kept to unwire); NULL: it does not wire */
	size_t nsegs;
	struct kcom_physmap map;   /* the same segments as a map by offset */
};

static const struct kcom_pool_ops pool_ops;

static struct pool *impl_from_pool(kcom_pool_t *p)
{
	KCOM_ASSERT(p->ops == &pool_ops);
	return kcom_container_of(p, struct pool, pool);
}

KCOM_IMPL_IUNKNOWN_(pool, kcom_pool_t, struct pool, pool)

static size_t pool_bytes(const struct pool *pl)
{
	return pl->count << pl->shift;
}

/* ---- handed-out bytes ---- */

/* Who holds a page. */
enum { OUT_FREE = 0, OUT_CALLER = 1, OUT_CHAIN = 2 };

/* Pools up to this many pages give each page's byte a cache line of its own. */
#define POOL_OUT_PADDED 4096

/*
 * Page p's byte.  Small pools: a cache line each.  Large ones: line p % lines, so neighbouring
 * pages (the runs a cache takes from the stack) never share a line.
 */
static unsigned char *out_byte(struct pool *pl, uint32_t page)
{
	if (pl->count <= POOL_OUT_PADDED)
		return &pl->out[(size_t)page * 64];
	return &pl->out[(size_t)(page % pl->lines) * 64 + page / pl->lines];
}

static size_t out_bytes(size_t count)
{
	return count <= POOL_OUT_PADDED ? count * 64 : ((count + 63) / 64) * 64;
}

/* Marks a page this thread alone holds as handed out. */
static void out_mark(struct pool *pl, uint32_t page)
{
	KCOM_ASSERT(__atomic_load_n(out_byte(pl, page), __ATOMIC_RELAXED) == OUT_FREE);
	__atomic_store_n(out_byte(pl, page), OUT_CALLER, __ATOMIC_RELEASE);
}

/* Moves a page's byte from `from` to `to`; 1 when it was at `from`, 0 changing nothing. */
static int out_move(struct pool *pl, uint32_t page, unsigned char from, unsigned char to)
{
	return __atomic_compare_exchange_n(out_byte(pl, page), &from, to, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* A page offset of this pool: in the region and page-aligned. */
static int page_offset_ok(const struct pool *pl, kcom_off_t off)
{
	return off >= 0 && (uint64_t)off < pool_bytes(pl) && ((size_t)off & (pl->page_size - 1)) == 0;
}

static uint32_t page_of(const struct pool *pl, kcom_off_t off)
{
	return (uint32_t)((size_t)off >> pl->shift);
}

/*
 * Moves the bytes of the pages at `offs` from `from` to `to`, all or nothing: a page not at
 * `from` (not held that way right now, or listed twice) moves the ones before it back; 0 then.
 */
static int pages_move(struct pool *pl, const kcom_off_t *offs, size_t n, unsigned char from, unsigned char to)
{
	for (size_t i = 0; i < n; i++) {
		if (!out_move(pl, page_of(pl, offs[i]), from, to)) {
			while (i-- > 0) {
				int back = out_move(pl, page_of(pl, offs[i]), to, from);
				KCOM_ASSERT(back); /* only we move a page we moved */
				(void)back;
			}
			return 0;
		}
	}
	return 1;
}

/* Pages held by someone (caller or chain), counted without the lock: a snapshot. */
static size_t out_held(const struct pool *pl)
{
	size_t held = 0;
	for (size_t i = 0; i < out_bytes(pl->count); i++)
		held += __atomic_load_n(&pl->out[i], __ATOMIC_RELAXED) != OUT_FREE;
	return held;
}

/* ---- the pool interface ---- */

/*
 * The cache if it is this pool's; NULL for none; another pool's, or another device's channel:
 * *bad = 1 (decided by the channel's device, not by its context, whose first word another
 * device's context may happen to share).  That it is the calling thread's, and still open, is
 * the caller's promise (SPDK's rule for channels), the first asserted with
 * --enable-invariants: asking the osenv who we are, or the channel table whether the channel
 * lives, on every call costs more than the rest of the cached path.
 */
static struct pool_cache *cache_of(struct pool *pl, struct kcom_iochannel *ch, int *bad)
{
	*bad = 0;
	if (ch == NULL)
		return NULL;
	struct pool_cache *c = kcom_iochannel_ctx_of_(ch, pl);
	if (c == NULL) {
		*bad = 1;
		return NULL;
	}
	KCOM_ASSERT(c->pool == pl);
	KCOM_ASSERT(c->owner == kcom_thread_self());
	return c;
}

/* Hands out pages: their bits set, their offsets written. */
static void hand_out(struct pool *pl, const uint32_t *pages, size_t n, kcom_off_t *offs)
{
	for (size_t i = 0; i < n; i++) {
		out_mark(pl, pages[i]);
		offs[i] = (kcom_off_t)((size_t)pages[i] << pl->shift);
	}
}

static kcom_error_t pool_get(kcom_pool_t *self, struct kcom_iochannel *ch, size_t n, kcom_off_t *offs)
{
	struct pool *pl = impl_from_pool(self);
	int bad;
	struct pool_cache *c = cache_of(pl, ch, &bad);
	if (bad || (offs == NULL && n > 0))
		return KCOM_E_INVALIDARG;
	if (n == 0)
		return KCOM_OK;

	if (c != NULL && c->count >= n) {
		/* The fast path: this thread's own pages, no lock. */
		c->count -= n;
		hand_out(pl, &c->pages[c->count], n, offs);
		return KCOM_OK;
	}

	kcom_lock_acquire(&pl->lock);
	size_t have = (c != NULL ? c->count : 0) + pl->nstack;
	if (have < n) {
		kcom_lock_release(&pl->lock);
		return KCOM_E_NOSPACE;
	}
	if (c == NULL) {
		pl->nstack -= n;
		hand_out(pl, &pl->stack[pl->nstack], n, offs);
		kcom_lock_release(&pl->lock);
		return KCOM_OK;
	}
	/* Refill the cache: what is missing, plus half a cache for the gets to come. */
	size_t room = c->count < pl->cache_max ? pl->cache_max - c->count : 0;
	size_t want = KCOM_MIN(pl->nstack, KCOM_MIN(n - c->count + pl->cache_max / 2, room));
	pl->nstack -= want;
	kcom_memcpy(&c->pages[c->count], &pl->stack[pl->nstack], want * sizeof(uint32_t));
	kcom_lock_release(&pl->lock);
	c->count += want;
	if (c->count >= n) {
		c->count -= n;
		hand_out(pl, &c->pages[c->count], n, offs);
		return KCOM_OK;
	}
	/* More than a cache holds: the rest came straight from the stack, under the lock again. */
	kcom_lock_acquire(&pl->lock);
	size_t rest = n - c->count;
	if (pl->nstack < rest) {
		kcom_lock_release(&pl->lock);
		return KCOM_E_NOSPACE; /* another thread took them meanwhile; the cache keeps its refill */
	}
	pl->nstack -= rest;
	hand_out(pl, &pl->stack[pl->nstack], rest, offs);
	kcom_lock_release(&pl->lock);
	hand_out(pl, c->pages, c->count, offs + rest);
	c->count = 0;
	return KCOM_OK;
}

/* Pushes pages onto the shared stack.  Lock held. */
static void stack_push(struct pool *pl, const uint32_t *pages, size_t n)
{
	kcom_memcpy(&pl->stack[pl->nstack], pages, n * sizeof(uint32_t));
	pl->nstack += n;
}

static kcom_error_t pool_put(kcom_pool_t *self, struct kcom_iochannel *ch, size_t n, const kcom_off_t *offs)
{
	struct pool *pl = impl_from_pool(self);
	int bad;
	struct pool_cache *c = cache_of(pl, ch, &bad);
	if (bad || (offs == NULL && n > 0))
		return KCOM_E_INVALIDARG;
	for (size_t i = 0; i < n; i++)
		if (!page_offset_ok(pl, offs[i]))
			return KCOM_E_INVALIDARG;
	/* Take each page back; a page not handed out undoes the ones taken before it. */
	if (!pages_move(pl, offs, n, OUT_CALLER, OUT_FREE))
		return KCOM_E_INVALIDARG;
	size_t i = 0;
	if (c != NULL) {
		for (; i < n && c->count < pl->cache_max; i++)
			c->pages[c->count++] = page_of(pl, offs[i]);
		if (i == n)
			return KCOM_OK;
	}
	/* No cache, or it is full: the rest (and half the cache) go to the shared stack. */
	kcom_lock_acquire(&pl->lock);
	for (; i < n; i++) {
		uint32_t page = page_of(pl, offs[i]);
		stack_push(pl, &page, 1);
	}
	if (c != NULL && c->count == pl->cache_max) {
		size_t spill = (pl->cache_max + 1) / 2;
		c->count -= spill;
		stack_push(pl, &c->pages[c->count], spill);
	}
	kcom_lock_release(&pl->lock);
	return KCOM_OK;
}

static kcom_error_t pool_region(kcom_pool_t *self, kcom_bufio_t **out_io)
{
	struct pool *pl = impl_from_pool(self);
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	kcom_bufio_addref(pl->region);
	*out_io = pl->region;
	return KCOM_OK;
}

static kcom_error_t pool_info(kcom_pool_t *self, struct kcom_pool_info *out)
{
	struct pool *pl = impl_from_pool(self);
	if (out == NULL)
		return KCOM_E_INVALIDARG;
	/* A snapshot: other threads may get and put while we count. */
	out->page_size = pl->page_size;
	out->count = pl->count;
	out->free = pl->count - out_held(pl);
	return KCOM_OK;
}

static kcom_error_t pool_page_phys(kcom_pool_t *self, kcom_off_t off, kcom_phys_t *out_phys)
{
	struct pool *pl = impl_from_pool(self);
	if (out_phys == NULL)
		return KCOM_E_INVALIDARG;
	*out_phys = 0;
	if (!page_offset_ok(pl, off))
		return KCOM_E_INVALIDARG;
	if (pl->segs == NULL)
		return KCOM_E_NOTIMPL;
	return kcom_physmap_contig_(&pl->map, (size_t)off, pl->page_size, out_phys);
}

static const struct kcom_pool_ops pool_ops = {
	.query = pool_query,
	.addref = pool_addref,
	.release = pool_release,
	.get = pool_get,
	.put = pool_put,
	.region = pool_region,
	.info = pool_info,
	.page_phys = pool_page_phys,
};

/* ---- messages: chains over pages ---- */

/* Gives the pages of a failed kcom_pool_chain() back to their caller. */
static void chain_unclaim(struct pool *pl, const kcom_off_t *offs, size_t n)
{
	int back = pages_move(pl, offs, n, OUT_CHAIN, OUT_CALLER);
	KCOM_ASSERT(back); /* the chain had claimed them all */
	(void)back;
}

/* A page's store is gone (the last chain or copy sharing it): the page goes back. */
static void page_return(void *ctx, void *mem, size_t len)
{
	struct pool *pl = ctx;
	(void)len;
	uint32_t page = (uint32_t)((size_t)((unsigned char *)mem - pl->base) >> pl->shift);
	int was = out_move(pl, page, OUT_CHAIN, OUT_FREE);
	KCOM_ASSERT(was); /* the chain owned it */
	(void)was;
	kcom_lock_acquire(&pl->lock);
	stack_push(pl, &page, 1);
	kcom_lock_release(&pl->lock);
	kcom_impl_release_(&pl->impl); /* the page's reference on the pool: may free it */
}

kcom_error_t kcom_pool_chain(kcom_pool_t *pool, const kcom_off_t *offs, size_t n, size_t len, kcom_bufio_t **out_io)
{
	if (out_io != NULL)
		*out_io = NULL;
	if (pool == NULL || out_io == NULL || (offs == NULL && n > 0))
		return KCOM_E_INVALIDARG;
	struct pool *pl = impl_from_pool(pool);
	/* Homa's shape: every page full but the last, which holds at least one byte. */
	if (n == 0 ? len != 0 : len <= (n - 1) * pl->page_size || len > n * pl->page_size)
		return KCOM_E_INVALIDARG;
	for (size_t i = 0; i < n; i++)
		if (!page_offset_ok(pl, offs[i]))
			return KCOM_E_INVALIDARG;
	/*
	 * Claim the pages for the chain first, as a put takes them: a page not handed out to a
	 * caller right now (free, in a chain already, or listed twice) undoes the claims before it.
	 */
	if (!pages_move(pl, offs, n, OUT_CALLER, OUT_CHAIN))
		return KCOM_E_INVALIDARG;

	/* One store a page, over the region's memory: allocated before anything is given away. */
	size_t bytes = n * (sizeof(struct kcom_store *) + 2 * sizeof(size_t));
	struct kcom_store **stores = n != 0 ? kcom_alloc(bytes, 0) : NULL;
	if (n != 0 && stores == NULL) {
		chain_unclaim(pl, offs, n);
		return KCOM_E_OUTOFMEMORY;
	}
	size_t *zero = (size_t *)(void *)(stores + n), *lens = zero + n;
	size_t made = 0;
	kcom_error_t err = KCOM_OK;
	for (; made < n; made++) {
		stores[made] = kcom_store_wrap_(pl->base + offs[made], pl->page_size, NULL, NULL);
		if (stores[made] == NULL) {
			err = KCOM_E_OUTOFMEMORY;
			break;
		}
		if (pl->segs != NULL) { /* a DMA-backed pool: the chain wires over its pages */
			stores[made]->pmap = &pl->map;
			stores[made]->pmap_off = (size_t)offs[made];
		}
		zero[made] = 0;
		lens[made] = made + 1 < n ? pl->page_size : len - (n - 1) * pl->page_size;
	}
	kcom_bufio_t *chain = NULL;
	if (KCOM_SUCCEEDED(err))
		err = kcom_mbufchain_from_stores_(stores, zero, lens, n, &chain);
	if (KCOM_SUCCEEDED(err)) {
		/* The chain holds every page now: each returns to the pool with its store's last reference. */
		for (size_t i = 0; i < n; i++) {
			kcom_impl_addref_(&pl->impl);
			stores[i]->release = page_return;
			stores[i]->ctx = pl;
		}
	}
	for (size_t i = 0; i < made; i++)
		kcom_store_release_(stores[i]); /* ours; the chain's stay */
	kcom_free(stores, bytes, 0);
	if (KCOM_FAILED(err)) {
		chain_unclaim(pl, offs, n);
		return err;
	}
	*out_io = chain;
	return KCOM_OK;
}

/* ---- caches: the pool's per-thread I/O channels ---- */

static kcom_error_t cache_create(void *dev, void *ctx)
{
	struct pool *pl = dev;
	struct pool_cache *c = ctx;
	c->pool = pl;
	c->owner = kcom_thread_self();
	c->count = 0;
	kcom_impl_addref_(&pl->impl); /* the cache's reference */
	return KCOM_OK;
}

/*
 * The last close, or the thread's exit: its pages go back to the shared stack, and its
 * reference to the pool goes (the last one retires the pool: pool_destroy()).
 */
static void cache_destroy(void *dev, void *ctx)
{
	struct pool *pl = dev;
	struct pool_cache *c = ctx;
	kcom_lock_acquire(&pl->lock);
	stack_push(pl, c->pages, c->count);
	kcom_lock_release(&pl->lock);
	c->count = 0;
	kcom_impl_release_(&pl->impl);
}

kcom_error_t kcom_pool_cache_open(kcom_pool_t *pool, struct kcom_iochannel **out_cache)
{
	if (out_cache != NULL)
		*out_cache = NULL;
	if (pool == NULL || out_cache == NULL)
		return KCOM_E_INVALIDARG;
	return kcom_iochannel_get(impl_from_pool(pool), out_cache);
}

kcom_error_t kcom_pool_cache_close(struct kcom_iochannel *cache)
{
	return kcom_iochannel_put_of_(cache, cache_create); /* a pool's cache, none else */
}

/* ---- lifetime ---- */

/* Undoes what creation did, in reverse; each step only if it was done. */
static void pool_teardown(struct pool *pl)
{
	if (pl->segs != NULL) {
		kcom_bufvec_t *vec;
		if (KCOM_SUCCEEDED(kcom_bufio_query(pl->region, &kcom_bufvec_iid, (void **)&vec))) {
			(void)kcom_bufvec_unwire_vec(vec, 0, pool_bytes(pl), pl->segs, pl->nsegs);
			kcom_bufvec_release(vec);
		}
		kcom_free(pl->segs, pl->nsegs * sizeof(*pl->segs), 0);
		kcom_physmap_free_(&pl->map);
	}
	if (pl->base != NULL)
		(void)kcom_bufio_unmap(pl->region, pl->base, 0, pool_bytes(pl));
	if (pl->region != NULL)
		kcom_bufio_release(pl->region);
	kcom_free(pl->out, out_bytes(pl->count), 64);
	kcom_free(pl->stack, pl->count * sizeof(uint32_t), 0);
	kcom_free(pl, sizeof(*pl), 0);
}

/* The pool is out of the I/O channel table: no cache of it is left. */
static void pool_gone(void *dev)
{
	struct pool *pl = dev;
	kcom_lock_fini(&pl->lock);
	pool_teardown(pl);
}

/*
 * The last reference went.  Every cache holds one, so a cache still counted here is the one
 * whose destroy callback dropped it (its thread's exit, or its last close): retiring defers
 * the teardown until the channel table has let go of that cache.
 */
static void pool_destroy(struct kcom_impl *impl)
{
	struct pool *pl = kcom_container_of(impl, struct pool, impl);
	kcom_error_t err = kcom_iodev_retire(pl, pool_gone);
	KCOM_ASSERT(KCOM_SUCCEEDED(err));
	(void)err;
}

static kcom_error_t pool_sanity(struct kcom_impl *impl, char *why, size_t len)
{
	struct pool *pl = kcom_container_of(impl, struct pool, impl);
	/* Run with no other thread using the pool: then every page is handed out, in the stack, or in a cache. */
	kcom_lock_acquire(&pl->lock);
	kcom_error_t err = KCOM_OK;
	for (size_t i = 0; i < out_bytes(pl->count); i++)
		if (__atomic_load_n(&pl->out[i], __ATOMIC_RELAXED) > OUT_CHAIN)
			err = kcom_impl_insane_(why, len, "pool: a page's holder byte is none of free, caller, chain");
	if (KCOM_SUCCEEDED(err) && out_held(pl) + pl->nstack > pl->count)
		err = kcom_impl_insane_(why, len, "pool: more pages free and handed out than the pool has");
	for (size_t i = 0; i < pl->nstack && KCOM_SUCCEEDED(err); i++) {
		uint32_t page = pl->stack[i];
		if (page >= pl->count || __atomic_load_n(out_byte(pl, page), __ATOMIC_RELAXED) != OUT_FREE)
			err = kcom_impl_insane_(why, len, "pool: a free page is out of range or marked handed out");
	}
	kcom_lock_release(&pl->lock);
	return err;
}

static kcom_error_t pool_class_create(const kcom_iid_t *iid, void **out);

static const struct kcom_class_iface pool_ifaces[] = {
	{ &kcom_iunknown_iid, offsetof(struct pool, pool) },
	{ &kcom_pool_iid, offsetof(struct pool, pool) },
	{ &kcom_debug_iid, offsetof(struct pool, impl.debug) },
	{ NULL, 0 },
};

const kcom_iid_t kcom_pool_iid = KCOM_POOL_IID;
const kcom_clsid_t kcom_pool_clsid = KCOM_POOL_CLSID;

const struct kcom_class kcom_pool_class = {
	.clsid = KCOM_POOL_CLSID,
	.name = "pool",
	.create = pool_class_create,
	.ifaces = pool_ifaces,
};

static const struct kcom_impl_desc pool_desc = {
	.cls = &kcom_pool_class,
	.impl_offset = offsetof(struct pool, impl),
	.destroy = pool_destroy,
	.sanity = pool_sanity,
};

/* Wires the region as a whole when it can, and keeps its physical map; else leaves none. */
static kcom_error_t pool_wire(struct pool *pl)
{
	kcom_bufvec_t *vec;
	if (KCOM_FAILED(kcom_bufio_query(pl->region, &kcom_bufvec_iid, (void **)&vec)))
		return KCOM_OK;
	size_t need = 0;
	kcom_error_t err = kcom_bufvec_wire_vec(vec, 0, pool_bytes(pl), NULL, 0, &need);
	if (err != KCOM_E_TOOSMALL) {
		kcom_bufvec_release(vec);
		return KCOM_OK; /* the region does not wire (a membuf), or the host gives no addresses */
	}
	struct kcom_physseg *segs = kcom_alloc(need * sizeof(*segs), 0);
	size_t count;
	err = segs == NULL ? KCOM_E_OUTOFMEMORY : kcom_bufvec_wire_vec(vec, 0, pool_bytes(pl), segs, need, &count);
	KCOM_ASSERT(KCOM_FAILED(err) || count == need);
	if (KCOM_FAILED(err)) {
		kcom_bufvec_release(vec);
		kcom_free(segs, need * sizeof(*segs), 0);
		return err == KCOM_E_OUTOFMEMORY ? err : KCOM_OK;
	}
	/*
	 * The same segments as a map by offset.  Where two run on physically, the region cut them
	 * at its device's boundary or longest segment: they stay two.
	 */
	struct kcom_physmap_seg *map = kcom_alloc(need * sizeof(*map), 0);
	if (map == NULL) {
		(void)kcom_bufvec_unwire_vec(vec, 0, pool_bytes(pl), segs, need);
		kcom_bufvec_release(vec);
		kcom_free(segs, need * sizeof(*segs), 0);
		return KCOM_E_OUTOFMEMORY;
	}
	kcom_bufvec_release(vec);
	size_t off = 0;
	for (size_t i = 0; i < need; off += segs[i].len, i++)
		map[i] = (struct kcom_physmap_seg){ off, segs[i].addr, segs[i].len };
	pl->segs = segs;
	pl->nsegs = need;
	pl->map = (struct kcom_physmap){ map, need, off };
	return KCOM_OK;
}

kcom_error_t kcom_pool_create(size_t page_size, size_t count, kcom_bufio_t *region, kcom_pool_t **out_pool)
{
	if (out_pool == NULL)
		return KCOM_E_INVALIDARG;
	*out_pool = NULL;
	if (page_size == 0)
		page_size = KCOM_POOL_PAGE_SIZE;
	if (page_size < 64 || (page_size & (page_size - 1)) != 0 || count == 0 || count > UINT32_MAX)
		return KCOM_E_INVALIDARG;
	if (count > SIZE_MAX / page_size || KCOM_FAILED(kcom_absio_check_span_(0, count * page_size)))
		return KCOM_E_OVERFLOW;
	size_t bytes = count * page_size;

	struct pool *pl = kcom_alloc(sizeof(*pl), 0);
	if (pl == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_memset(pl, 0, sizeof(*pl));
	pl->pool.ops = &pool_ops;
	kcom_impl_init_(&pl->impl, &pool_desc);
	pl->page_size = page_size;
	pl->count = count;
	while (((size_t)1 << pl->shift) < page_size)
		pl->shift++;
	pl->cache_max = KCOM_MIN((size_t)POOL_CACHE, count / 8);

	kcom_error_t err = KCOM_E_OUTOFMEMORY;
	pl->stack = kcom_alloc(count * sizeof(uint32_t), 0);
	pl->out = kcom_alloc(out_bytes(count), 64);
	if (pl->stack == NULL || pl->out == NULL)
		goto fail;
	kcom_memset(pl->out, 0, out_bytes(count));
	pl->lines = (count + 63) / 64;
	/* Lowest pages on top of the stack, so a fresh pool hands out offsets 0, 1, 2 ... pages. */
	for (size_t i = 0; i < count; i++)
		pl->stack[i] = (uint32_t)(count - 1 - i);
	pl->nstack = count;

	if (region != NULL) {
		size_t size;
		err = kcom_bufio_getsize(region, &size);
		if (KCOM_SUCCEEDED(err) && size < bytes)
			err = KCOM_E_NOSPACE;
		if (KCOM_FAILED(err))
			goto fail;
		kcom_bufio_addref(region);
		pl->region = region;
	} else {
		err = kcom_membuf_create(bytes, &pl->region);
		if (KCOM_FAILED(err))
			goto fail;
	}
	void *base;
	err = kcom_bufio_map(pl->region, &base, 0, bytes);
	if (KCOM_FAILED(err))
		goto fail;
	pl->base = base;
	err = pool_wire(pl);
	if (KCOM_FAILED(err))
		goto fail;
	err = kcom_lock_init(&pl->lock);
	if (KCOM_FAILED(err))
		goto fail;
	err = kcom_iodev_register(pl, cache_create, cache_destroy, sizeof(struct pool_cache));
	if (KCOM_FAILED(err)) {
		kcom_lock_fini(&pl->lock);
		goto fail;
	}
	*out_pool = &pl->pool;
	return KCOM_OK;
fail:
	pool_teardown(pl);
	return err;
}

/* The class factory: 16 pages of 64 KiB over a membuf. */
static kcom_error_t pool_class_create(const kcom_iid_t *iid, void **out)
{
	kcom_pool_t *p;
	kcom_error_t err = kcom_pool_create(0, 16, NULL, &p);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_pool_query(p, iid, out);
	kcom_pool_release(p);
	return err;
}
