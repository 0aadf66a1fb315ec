/*
 * mbufchain: a bufio over a chain of segments, each a window (store, off, len) into a kit store
 * (a cluster), built on the implementation kit (impls/impl-internal.h).
 *
 * The segments are the in-order nodes of a persistent AVL tree: nodes are reference counted and
 * never changed while anyone else can see them, and each caches the byte length of its subtree,
 * so seek is O(log segments).  Every structural change (append, prepend, copy-on-write of a
 * range, pullup, split, trim, setsize) is "replace bytes [a, b) by new segments", done by the
 * join-based split and concatenation of Blelloch et al. ("Just Join for Parallel Ordered
 * Sets"): each consumes the references it is given and builds O(log segments) new nodes, reusing
 * in place only nodes it alone holds.  The object's root is replaced only after everything was
 * allocated; on failure every new node and cluster is released and the object is unchanged.
 *
 * Sharing: copy() of the whole chain takes one reference on the root; a sub-range copy splits
 * (O(log n) new nodes).  A byte may be changed in place only when every node on the path to its
 * segment and the segment's store are held once (the object alone sees them); otherwise the write
 * replaces the touched range, widened to at most one cluster on each side and to the segments'
 * edges, by new private clusters: the old nodes and clusters stay with whoever else holds them.
 * Two segments of one chain may share a store (after a cut); such a store counts as shared.
 *
 * Mappings: a bufio map of a range inside one private segment is a pointer into the cluster; any
 * other range is first coalesced into one new cluster (pullup).  map_vec hands out the segments.
 * A mapping freezes the size; a write that would move bytes of a mapped range to new clusters is
 * KCOM_E_BUSY; copy() and append-by-reference from a mapped chain copy the bytes at once, because
 * a writable mapping writes its clusters in place.
 *
 * Threads: node and store counts are atomic.  A node found held once is reachable only through
 * our own path, and a node we share is left alone: its children and store are held before our
 * reference to it is dropped, so whoever else still holds it keeps everything below it.
 */
#include "config.h"

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include "absio/absio-internal.h"
#include "impls/impl-internal.h"

const kcom_iid_t kcom_chain_iid = KCOM_CHAIN_IID;
const kcom_clsid_t kcom_mbufchain_clsid = KCOM_MBUFCHAIN_CLSID;

/* ---- the persistent tree ---- */

struct mc_seg {
	struct kcom_store *st;
	size_t off; /* first byte in st->data */
	size_t len; /* never 0 in a tree */
};

struct mc_node {
	kcom_refcount_t refs;
	uint32_t height; /* 1 for a leaf */
	size_t total;    /* bytes in this subtree */
	size_t ltot;     /* bytes in the left subtree: seek loads one node a level */
	struct mc_seg seg;
	struct mc_node *l, *r;
};

static uint32_t mc_h(const struct mc_node *t)
{
	return t != NULL ? t->height : 0;
}

static size_t mc_total(const struct mc_node *t)
{
	return t != NULL ? t->total : 0;
}

static void node_hold(struct mc_node *t)
{
	if (t != NULL)
		kcom_refcount_inc(&t->refs);
}

/*
 * Node memory: nodes live densely in slabs, so a seek's path stays in a few cache lines and
 * pages instead of one page a level (nodes allocated one by one land between the clusters).
 * A slab is MC_SLAB bytes aligned to its size (a node finds its slab by masking), with a free
 * list; slabs with free slots are on one list under a spin lock (a node may be freed by any
 * thread that held a copy).  An empty slab is freed at once, so all memory goes back when the
 * last chain does.  With invariants on, slabs hold two nodes, so allocation-failure tests meet
 * a real allocation at almost every node.
 */
#ifdef KCOM_INVARIANTS
#define MC_SLAB 256u
#else
#define MC_SLAB 4096u
#endif

struct mc_slab {
	struct mc_slab *next, *prev; /* on mc_partial while it has a free slot */
	void *free;                  /* freed slots, linked through their first word */
	uint32_t used;               /* slots handed out */
	uint32_t fresh;              /* slots from here on were never handed out */
};

#define MC_SLAB_HDR ((sizeof(struct mc_slab) + sizeof(struct mc_node) - 1) / sizeof(struct mc_node) * sizeof(struct mc_node))
#define MC_SLAB_NODES ((MC_SLAB - MC_SLAB_HDR) / sizeof(struct mc_node))
_Static_assert(MC_SLAB_NODES >= 2, "a slab holds at least two nodes");

static kcom_spinlock_t mc_slab_lock;
static struct mc_slab *mc_partial;

static void slab_link(struct mc_slab *sb)
{
	sb->prev = NULL;
	sb->next = mc_partial;
	if (mc_partial != NULL)
		mc_partial->prev = sb;
	mc_partial = sb;
}

static void slab_unlink(struct mc_slab *sb)
{
	if (sb->prev != NULL)
		sb->prev->next = sb->next;
	else
		mc_partial = sb->next;
	if (sb->next != NULL)
		sb->next->prev = sb->prev;
}

/* Memory for one node; NULL when a new slab was needed and allocation failed. */
static struct mc_node *node_alloc(void)
{
	kcom_spin_acquire_(&mc_slab_lock);
	struct mc_slab *sb = mc_partial;
	if (sb == NULL) {
		kcom_spin_release_(&mc_slab_lock); /* never allocate under the lock */
		sb = kcom_alloc(MC_SLAB, MC_SLAB);
		if (sb == NULL)
			return NULL;
		sb->free = NULL;
		sb->used = 0;
		sb->fresh = 0;
		kcom_spin_acquire_(&mc_slab_lock);
		slab_link(sb);
	}
	void *slot;
	if (sb->free != NULL) {
		slot = sb->free;
		sb->free = *(void **)slot;
	} else {
		slot = (char *)sb + MC_SLAB_HDR + (size_t)sb->fresh++ * sizeof(struct mc_node);
	}
	if (++sb->used == MC_SLAB_NODES)
		slab_unlink(sb);
	kcom_spin_release_(&mc_slab_lock);
	return slot;
}

static void node_free_mem(struct mc_node *t)
{
	if (t == NULL)
		return;
	struct mc_slab *sb = (struct mc_slab *)((uintptr_t)t & ~(uintptr_t)(MC_SLAB - 1));
	kcom_spin_acquire_(&mc_slab_lock);
	if (sb->used == MC_SLAB_NODES)
		slab_link(sb);
	*(void **)(void *)t = sb->free;
	sb->free = t;
	int empty = --sb->used == 0;
	if (empty)
		slab_unlink(sb);
	kcom_spin_release_(&mc_slab_lock);
	if (empty)
		kcom_free(sb, MC_SLAB, MC_SLAB);
}

/* Drops a reference; the last frees the node, its store reference and its children's
 * (recursion on the left, a loop on the right: depth bounded by the height). */
static void node_release(struct mc_node *t)
{
	while (t != NULL) {
		if (kcom_refcount_dec(&t->refs) != 0)
			return;
		struct mc_node *l = t->l, *r = t->r;
		kcom_store_release_(t->seg.st);
		node_free_mem(t);
		node_release(l);
		t = r;
	}
}

/*
 * A node over l, s, r (all three references consumed), in `spare` when given (never fails
 * then), else newly allocated.  NULL when allocation fails, the three released.
 */
static struct mc_node *mk(struct mc_node *spare, struct mc_node *l, struct mc_seg s, struct mc_node *r)
{
	struct mc_node *t = spare;
	if (t == NULL) {
		t = node_alloc();
		if (t == NULL) {
			node_release(l);
			node_release(r);
			kcom_store_release_(s.st);
			return NULL;
		}
	}
	kcom_refcount_init(&t->refs, 1);
	t->l = l;
	t->r = r;
	t->seg = s;
	t->height = 1 + KCOM_MAX(mc_h(l), mc_h(r));
	t->ltot = mc_total(l);
	t->total = t->ltot + s.len + mc_total(r);
	return t;
}

/*
 * Takes t apart (its reference consumed): its children and segment, each now held by the
 * caller.  Returns t's memory for reuse when the caller held it alone, else NULL.
 */
static struct mc_node *expose(struct mc_node *t, struct mc_node **l, struct mc_seg *s, struct mc_node **r)
{
	*l = t->l;
	*r = t->r;
	*s = t->seg;
	if (kcom_refcount_get(&t->refs) == 1)
		return t;
	node_hold(*l);
	node_hold(*r);
	kcom_store_hold_(s->st);
	node_release(t); /* only after the holds above: another owner may now free it */
	return NULL;
}

/* Rotations: consume t, return the rotated tree or NULL (everything released). */
static struct mc_node *rot_left(struct mc_node *t)
{
	struct mc_node *a, *y, *b, *c;
	struct mc_seg x, ys;
	struct mc_node *sp1 = expose(t, &a, &x, &y);
	struct mc_node *sp2 = expose(y, &b, &ys, &c);
	struct mc_node *n1 = mk(sp1, a, x, b);
	if (n1 == NULL) {
		node_release(c);
		kcom_store_release_(ys.st);
		node_free_mem(sp2);
		return NULL;
	}
	return mk(sp2, n1, ys, c);
}

static struct mc_node *rot_right(struct mc_node *t)
{
	struct mc_node *xn, *a, *b, *c;
	struct mc_seg x, ys;
	struct mc_node *sp1 = expose(t, &xn, &ys, &c);
	struct mc_node *sp2 = expose(xn, &a, &x, &b);
	struct mc_node *n1 = mk(sp1, b, ys, c);
	if (n1 == NULL) {
		node_release(a);
		kcom_store_release_(x.st);
		node_free_mem(sp2);
		return NULL;
	}
	return mk(sp2, a, x, n1);
}

static struct mc_node *join(struct mc_node *l, struct mc_seg s, struct mc_node *r);

/* join when l is more than one level taller than r: down l's right spine. */
static struct mc_node *join_right(struct mc_node *tl, struct mc_seg s, struct mc_node *tr)
{
	struct mc_node *l, *c;
	struct mc_seg ks;
	struct mc_node *sp = expose(tl, &l, &ks, &c);
	int base = mc_h(c) <= mc_h(tr) + 1;
	struct mc_node *t2 = base ? mk(NULL, c, s, tr) : join_right(c, s, tr);
	if (t2 != NULL && mc_h(t2) > mc_h(l) + 1 && base)
		t2 = rot_right(t2);
	if (t2 == NULL) {
		node_release(l);
		kcom_store_release_(ks.st);
		node_free_mem(sp);
		return NULL;
	}
	int tall = mc_h(t2) > mc_h(l) + 1;
	struct mc_node *t3 = mk(sp, l, ks, t2);
	if (t3 == NULL || !tall)
		return t3;
	return rot_left(t3);
}

static struct mc_node *join_left(struct mc_node *tl, struct mc_seg s, struct mc_node *tr)
{
	struct mc_node *c, *r;
	struct mc_seg ks;
	struct mc_node *sp = expose(tr, &c, &ks, &r);
	int base = mc_h(c) <= mc_h(tl) + 1;
	struct mc_node *t2 = base ? mk(NULL, tl, s, c) : join_left(tl, s, c);
	if (t2 != NULL && mc_h(t2) > mc_h(r) + 1 && base)
		t2 = rot_left(t2);
	if (t2 == NULL) {
		node_release(r);
		kcom_store_release_(ks.st);
		node_free_mem(sp);
		return NULL;
	}
	int tall = mc_h(t2) > mc_h(r) + 1;
	struct mc_node *t3 = mk(sp, t2, ks, r);
	if (t3 == NULL || !tall)
		return t3;
	return rot_right(t3);
}

/* The tree l, s, r in order (all consumed), balanced; NULL when allocation failed. */
static struct mc_node *join(struct mc_node *l, struct mc_seg s, struct mc_node *r)
{
	if (mc_h(l) > mc_h(r) + 1)
		return join_right(l, s, r);
	if (mc_h(r) > mc_h(l) + 1)
		return join_left(l, s, r);
	return mk(NULL, l, s, r);
}

/* Removes t's last segment (t consumed, not empty): *rest and *last, both held. */
static kcom_error_t split_last(struct mc_node *t, struct mc_node **rest, struct mc_seg *last)
{
	struct mc_node *l, *r;
	struct mc_seg s;
	node_free_mem(expose(t, &l, &s, &r));
	if (r == NULL) {
		*rest = l;
		*last = s;
		return KCOM_OK;
	}
	struct mc_node *r2;
	kcom_error_t err = split_last(r, &r2, last);
	if (KCOM_FAILED(err)) {
		node_release(l);
		kcom_store_release_(s.st);
		return err;
	}
	*rest = join(l, s, r2);
	if (*rest == NULL) {
		kcom_store_release_(last->st);
		return KCOM_E_OUTOFMEMORY;
	}
	return KCOM_OK;
}

/* a then b (both consumed) in *out; on failure both are released. */
static kcom_error_t concat(struct mc_node *a, struct mc_node *b, struct mc_node **out)
{
	*out = NULL;
	if (a == NULL || b == NULL) {
		*out = a != NULL ? a : b;
		return KCOM_OK;
	}
	struct mc_node *rest;
	struct mc_seg last;
	kcom_error_t err = split_last(a, &rest, &last);
	if (KCOM_FAILED(err)) {
		node_release(b);
		return err;
	}
	*out = join(rest, last, b);
	return *out != NULL ? KCOM_OK : KCOM_E_OUTOFMEMORY;
}

/*
 * Cuts t (consumed) at byte `off`: *lo gets bytes [0, off), *hi the rest.  A segment across
 * the cut becomes two windows of its store.  On failure nothing is left held.
 */
static kcom_error_t split(struct mc_node *t, size_t off, struct mc_node **lo, struct mc_node **hi)
{
	*lo = *hi = NULL;
	if (t == NULL)
		return KCOM_OK;
	if (off == 0) {
		*hi = t;
		return KCOM_OK;
	}
	if (off >= t->total) {
		*lo = t;
		return KCOM_OK;
	}
	struct mc_node *l, *r, *a, *b;
	struct mc_seg s;
	node_free_mem(expose(t, &l, &s, &r));
	size_t lt = mc_total(l), end = lt + s.len;
	kcom_error_t err;
	if (off <= lt) {
		err = split(l, off, &a, &b);
		if (KCOM_FAILED(err)) {
			kcom_store_release_(s.st);
			node_release(r);
			return err;
		}
		struct mc_node *rr = join(b, s, r);
		if (rr == NULL) {
			node_release(a);
			return KCOM_E_OUTOFMEMORY;
		}
		*lo = a;
		*hi = rr;
		return KCOM_OK;
	}
	if (off < end) {
		size_t cut = off - lt;
		struct mc_seg s1 = { s.st, s.off, cut }, s2 = { s.st, s.off + cut, s.len - cut };
		kcom_store_hold_(s.st);
		a = join(l, s1, NULL);
		if (a == NULL) {
			kcom_store_release_(s2.st);
			node_release(r);
			return KCOM_E_OUTOFMEMORY;
		}
		b = join(NULL, s2, r);
		if (b == NULL) {
			node_release(a);
			return KCOM_E_OUTOFMEMORY;
		}
		*lo = a;
		*hi = b;
		return KCOM_OK;
	}
	err = split(r, off - end, &a, &b);
	if (KCOM_FAILED(err)) {
		node_release(l);
		kcom_store_release_(s.st);
		return err;
	}
	struct mc_node *ll = join(l, s, a);
	if (ll == NULL) {
		node_release(b);
		return KCOM_E_OUTOFMEMORY;
	}
	*lo = ll;
	*hi = b;
	return KCOM_OK;
}

/* A balanced tree of segs[0..n) (their store references consumed, also on failure). */
static kcom_error_t build(const struct mc_seg *segs, size_t n, struct mc_node **out)
{
	*out = NULL;
	if (n == 0)
		return KCOM_OK;
	size_t m = n / 2;
	struct mc_node *l, *r;
	kcom_error_t err = build(segs, m, &l);
	if (KCOM_FAILED(err)) {
		for (size_t i = m; i < n; i++)
			kcom_store_release_(segs[i].st);
		return err;
	}
	err = build(segs + m + 1, n - m - 1, &r);
	if (KCOM_FAILED(err)) {
		node_release(l);
		kcom_store_release_(segs[m].st);
		return err;
	}
	*out = mk(NULL, l, segs[m], r);
	return *out != NULL ? KCOM_OK : KCOM_E_OUTOFMEMORY;
}

/* ---- reading the tree ---- */

static unsigned char *seg_bytes(const struct mc_seg *s)
{
	return s->st->data + s->off;
}

/* Copies bytes [off, off + n) of t (all inside it) to dst, across segments. */
static void tree_copyout_span(const struct mc_node *t, size_t off, size_t n, unsigned char *dst)
{
	while (n != 0) {
		size_t lt = t->ltot;
		if (off < lt) {
			if (n <= lt - off) {
				t = t->l;
				continue;
			}
			size_t k = lt - off;
			tree_copyout_span(t->l, off, k, dst);
			dst += k;
			n -= k;
			off = lt;
		}
		off -= lt;
		if (off < t->seg.len) {
			size_t k = KCOM_MIN(n, t->seg.len - off);
			kcom_memcpy(dst, seg_bytes(&t->seg) + off, k);
			dst += k;
			n -= k;
			off = t->seg.len;
		}
		off -= t->seg.len;
		t = t->r;
	}
}

/*
 * Copies bytes [off, off + n) of t (n > 0, all inside t) to dst.  The common case, a range inside
 * one segment, descends with one node load a level and selects the child without a branch (a
 * random seek mispredicts half of its branches otherwise); a range across segments goes the
 * general way.
 */
static void tree_copyout(const struct mc_node *t, size_t off, size_t n, unsigned char *dst)
{
	const struct mc_node *root = t;
	size_t o = off;
	for (;;) {
		size_t lt = t->ltot, end = lt + t->seg.len;
		if (o - lt < t->seg.len) /* lt <= o < end, as one unsigned compare */
			break;
		size_t right = o >= end;
		const struct mc_node *next[2] = { t->l, t->r };
		o -= end & (0 - right);
		t = next[right];
	}
	o -= t->ltot;
	if (n <= t->seg.len - o) {
		kcom_memcpy(dst, seg_bytes(&t->seg) + o, n);
		return;
	}
	tree_copyout_span(root, off, n, dst);
}

/*
 * Calls fn on each piece of segment memory of [off, off + n) of t, in order, until fn returns
 * nonzero (a walk that has learnt what it needs: a chain appended to itself describes far more
 * pieces than it has nodes); returns whether it stopped so.
 */
typedef int (*mc_visit_fn)(void *ctx, const struct mc_seg *seg, unsigned char *p, size_t len);

static int tree_visit(const struct mc_node *t, size_t off, size_t n, mc_visit_fn fn, void *ctx)
{
	while (n != 0) {
		size_t lt = t->ltot;
		if (off < lt) {
			size_t k = KCOM_MIN(n, lt - off);
			if (tree_visit(t->l, off, k, fn, ctx))
				return 1;
			n -= k;
			off = lt;
			if (n == 0)
				return 0;
		}
		off -= lt;
		if (off < t->seg.len) {
			size_t k = KCOM_MIN(n, t->seg.len - off);
			if (fn(ctx, &t->seg, seg_bytes(&t->seg) + off, k))
				return 1;
			n -= k;
			off = t->seg.len;
		}
		off -= t->seg.len;
		t = t->r;
	}
	return 0;
}

/*
 * Whether every node on the paths to [off, off + n) (n > 0, inside t) and every store there is
 * held once: then those bytes are ours alone and may change in place.
 */
static int tree_private(const struct mc_node *t, size_t off, size_t n)
{
	while (n != 0) {
		if (kcom_refcount_get(&t->refs) != 1)
			return 0;
		size_t lt = t->ltot;
		if (off < lt) {
			size_t k = KCOM_MIN(n, lt - off);
			if (!tree_private(t->l, off, k))
				return 0;
			n -= k;
			off = lt;
			if (n == 0)
				return 1;
		}
		off -= lt;
		if (off < t->seg.len) {
			if (kcom_store_shared_(t->seg.st))
				return 0;
			size_t k = KCOM_MIN(n, t->seg.len - off);
			n -= k;
			off = t->seg.len;
		}
		off -= t->seg.len;
		t = t->r;
	}
	return 1;
}

/* The segment holding byte off (< t's total): its node, and in *start the offset of its byte 0. */
static const struct mc_node *tree_find(const struct mc_node *t, size_t off, size_t *start)
{
	size_t base = 0;
	for (;;) {
		size_t lt = t->ltot;
		if (off < lt) {
			t = t->l;
			continue;
		}
		off -= lt;
		base += lt;
		if (off < t->seg.len) {
			*start = base;
			return t;
		}
		off -= t->seg.len;
		base += t->seg.len;
		t = t->r;
	}
}

/*
 * Segments overlapping [off, off + n) (n > 0), counted up to cap + 1 (cap < SIZE_MAX): a
 * larger count stops there, so the walk is never longer than cap + 1 segments.
 */
static size_t tree_count(const struct mc_node *t, size_t off, size_t n, size_t cap)
{
	size_t count = 0;
	while (n != 0) {
		size_t lt = t->ltot;
		if (off < lt) {
			size_t k = KCOM_MIN(n, lt - off);
			count += tree_count(t->l, off, k, cap - count);
			if (count > cap)
				return count;
			n -= k;
			off = lt;
			if (n == 0)
				break;
		}
		off -= lt;
		if (off < t->seg.len) {
			if (++count > cap)
				return count;
			n -= KCOM_MIN(n, t->seg.len - off);
			off = t->seg.len;
		}
		off -= t->seg.len;
		t = t->r;
	}
	return count;
}

/*
 * ---- the seek index ----
 *
 * A tree seek is a chain of dependent loads, one node a level: cheap while the nodes are in
 * cache, a cache miss a level once a chain of thousands of segments is read at random.  So a
 * chain that is read many times without changing its segments gets a flat index of them: each
 * segment's start offset and first byte in one array, and a bucket array over the offsets (one
 * bucket per 2^shift bytes, at most one per segment) naming the segment that holds each
 * bucket's first byte, with a copy of that segment's end and address.  A read inside that
 * segment (every read, when segments are as long as buckets) costs one load before its bytes;
 * any other seek loads the bucket's entries and, in a bucket that holds many small segments,
 * bisects them, so the worst case stays O(log segments).
 *
 * The index is built once `seeks` reads have gone through the tree since the segments last
 * changed, and only for a tree of some height: the build is O(segments), and the reads before
 * it pay for it.  Whatever changes a segment's place or memory (a new root, an append or
 * prepend in place) drops the index; writes in place keep it, since they change no segment.
 * Building allocates: when that fails the read goes through the tree, and nothing is lost.
 * Reads may race each other to build it: the index is published with one compare-and-swap,
 * and the loser frees its own.
 */
struct mc_ent {
	size_t start;     /* the chain offset of the segment's first byte */
	unsigned char *p; /* that byte */
};

/*
 * A bucket's first segment, whole, so that a seek landing in it needs no other load: its end
 * and where chain offset 0 would be if its memory went back that far (byte o of the segment,
 * o >= its start, is at base + o; integer arithmetic, since that pointer may be nowhere).
 */
struct mc_fast {
	size_t end;
	uintptr_t base;
};

struct mc_index {
	size_t bytes;         /* of this allocation */
	size_t n;             /* segments; ent[n].start is the chain's size */
	size_t nb;            /* buckets */
	unsigned shift;       /* offset o is in bucket o >> shift */
	uint32_t *bucket;     /* nb of them: the segment holding byte b << shift */
	struct mc_fast *fast; /* nb of them: that segment */
	size_t *mine;         /* n of them: see below */
	struct mc_ent ent[];  /* n + 1 */
};

/*
 * Writes in place use the index too, when they know the segment is still the object's alone
 * (every node on its path and its store held once).  That can only stop being true through an
 * operation on this object that shares its tree (mc_range_tree: a copy, or an append of it to a
 * chain), and each of those counts itself in the object's `shares`.  mine[i] is the value
 * `shares` had when segment i was last found ours alone, MC_NOT_MINE when it never was: the
 * mark holds while `shares` has not moved.  `shares` stops at MC_NOT_MINE, where no mark holds.
 */
#define MC_NOT_MINE SIZE_MAX

#ifdef KCOM_INVARIANTS
#define MC_INDEX_HEIGHT 1u /* tests meet the index after almost any two reads */
#else
#define MC_INDEX_HEIGHT 6u /* at least 20 segments */
#endif

/* Reads through a tree of height h >= MC_INDEX_HEIGHT before its index is built. */
static size_t mc_index_seeks(uint32_t h)
{
#ifdef KCOM_INVARIANTS
	(void)h;
	return 2;
#else
	/* 2^(h-3), an eighth of the segments a full tree of height h holds: the build, O(segments),
	 * costs about as much as that many seeks through the tree. */
	return h >= 32 ? (size_t)1 << 29 : (size_t)1 << (h - 3);
#endif
}

/*
 * A chain of more segments than this gets no seek index: it would take 44 bytes a segment
 * (2^26 segments are 256 GiB of 4 KiB clusters), and a tree whose subtrees are shared many
 * times over (a chain appended to itself) describes far more segments than it has nodes, so
 * counting them must stop early.
 */
#define MC_INDEX_MAX ((size_t)1 << 26)

/* t's segments, or MC_INDEX_MAX + 1 as soon as there are more than MC_INDEX_MAX. */
static size_t tree_segments(const struct mc_node *t)
{
	size_t n = 0;
	for (; t != NULL && n <= MC_INDEX_MAX; t = t->r)
		n += 1 + tree_segments(t->l);
	return KCOM_MIN(n, MC_INDEX_MAX + 1);
}

/* Whether a balanced tree of height h can have at most MC_INDEX_MAX nodes (the fewest it has). */
static int tree_may_index(uint32_t h)
{
	size_t fewest = 0, below = 0; /* the fewest nodes at heights i and i - 1 */
	for (uint32_t i = 1; i <= h; i++) {
		size_t next = fewest + below + 1;
		below = fewest;
		fewest = next;
		if (fewest > MC_INDEX_MAX)
			return 0;
	}
	return 1;
}

/* What index_fill fills. */
struct mc_fill {
	struct mc_index *ix;
	size_t i;      /* the next entry */
	size_t start;  /* its chain offset */
	size_t shares; /* the object's count of shares, read before the walk */
};

/*
 * Fills the entries from t's segments in order; `mine`: every node above t is held once.  A
 * node's count may drop meanwhile (a copy released in another thread): the mark is then only
 * missing.  It cannot rise unseen: whatever shares this tree counted itself in `shares` first.
 */
static void index_fill(const struct mc_node *t, struct mc_fill *f, int mine)
{
	for (; t != NULL; t = t->r) {
		mine = mine && kcom_refcount_get(&t->refs) == 1;
		index_fill(t->l, f, mine);
		f->ix->ent[f->i].start = f->start;
		f->ix->ent[f->i].p = seg_bytes(&t->seg);
		f->ix->mine[f->i] = mine && !kcom_store_shared_(t->seg.st) ? f->shares : MC_NOT_MINE;
		f->i++;
		f->start += t->seg.len;
	}
}

/* The index of the non-empty tree t; NULL when allocation fails or it has too many segments. */
static struct mc_index *index_build(const struct mc_node *t, size_t shares)
{
	if (!tree_may_index(t->height))
		return NULL; /* not even counted: a tree this tall has too many segments */
	size_t n = tree_segments(t), size = t->total;
	if (n > MC_INDEX_MAX) /* so buckets fit 32 bits, and the sizes below cannot wrap */
		return NULL;
	unsigned shift = 0;
	while (((size - 1) >> shift) >= n)
		shift++;
	size_t nb = ((size - 1) >> shift) + 1; /* <= n */
	size_t ents = (n + 1) * sizeof(struct mc_ent), mines = n * sizeof(size_t);
	size_t fasts = nb * sizeof(struct mc_fast);
	size_t bytes = sizeof(struct mc_index) + ents + mines + fasts + nb * sizeof(uint32_t);
	struct mc_index *ix = kcom_alloc(bytes, 0);
	if (ix == NULL)
		return NULL;
	ix->bytes = bytes;
	ix->n = n;
	ix->nb = nb;
	ix->shift = shift;
	ix->mine = (size_t *)(void *)((unsigned char *)ix->ent + ents);
	ix->fast = (struct mc_fast *)(void *)((unsigned char *)ix->mine + mines);
	ix->bucket = (uint32_t *)(void *)((unsigned char *)ix->fast + fasts);
	struct mc_fill f = { ix, 0, 0, shares };
	index_fill(t, &f, 1);
	ix->ent[n] = (struct mc_ent){ size, NULL };
	size_t i = 0;
	for (size_t b = 0; b < nb; b++) {
		while (ix->ent[i + 1].start <= (b << shift))
			i++;
		ix->bucket[b] = (uint32_t)i;
		ix->fast[b] = (struct mc_fast){ ix->ent[i + 1].start, (uintptr_t)ix->ent[i].p - ix->ent[i].start };
	}
	return ix;
}

static void index_free(struct mc_index *ix)
{
	if (ix != NULL)
		kcom_free(ix, ix->bytes, 0);
}

/* The segment holding byte off (< the chain's size). */
static size_t index_find(const struct mc_index *ix, size_t off)
{
	size_t b = off >> ix->shift, i = ix->bucket[b];
	if (ix->ent[i + 1].start > off)
		return i;
	/* Several segments start in this bucket: bisect those after i, up to the next bucket's. */
	size_t lo = i + 1, hi = b + 1 < ix->nb ? ix->bucket[b + 1] : ix->n - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (ix->ent[mid].start <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Copies bytes [off, off + n) (n > 0, all inside the chain) to dst, segment by segment. */
static __attribute__((noinline)) void index_copyout_span(const struct mc_index *ix, size_t off, size_t n,
                                                         unsigned char *dst)
{
	size_t i = index_find(ix, off), o = off - ix->ent[i].start;
	for (;;) {
		size_t k = KCOM_MIN(n, ix->ent[i + 1].start - ix->ent[i].start - o);
		kcom_memcpy(dst, ix->ent[i].p + o, k);
		n -= k;
		if (n == 0)
			return;
		dst += k;
		o = 0;
		i++;
	}
}

/*
 * The bytes [off, off + n) (off inside the chain) when they lie in the segment that holds their
 * bucket's first byte, the common case: one load; NULL when they do not.
 */
static inline const unsigned char *index_direct(const struct mc_index *ix, size_t off, size_t n)
{
	const struct mc_fast *f = &ix->fast[off >> ix->shift]; /* its segment starts at or before off */
	return off < f->end && n <= f->end - off ? (const unsigned char *)(f->base + off) : NULL;
}

/* The same as index_copyout_span, the common case inline. */
static inline void index_copyout(const struct mc_index *ix, size_t off, size_t n, unsigned char *dst)
{
	const unsigned char *p = index_direct(ix, off, n);
	if (p != NULL)
		kcom_memcpy(dst, p, n);
	else
		index_copyout_span(ix, off, n, dst);
}

/* Why ix does not describe t's segments, or NULL when it does. */
static const char *index_check(const struct mc_index *ix, const struct mc_node *t, size_t shares)
{
	if (ix->n != tree_segments(t) || ix->ent[ix->n].start != mc_total(t))
		return "mbufchain: the seek index has the wrong segments";
	for (size_t i = 0; i < ix->n; i++) {
		size_t start;
		const struct mc_node *seg = tree_find(t, ix->ent[i].start, &start);
		if (start != ix->ent[i].start || ix->ent[i].p != seg_bytes(&seg->seg) ||
		    ix->ent[i + 1].start - start != seg->seg.len)
			return "mbufchain: the seek index disagrees with the tree";
		if (ix->mine[i] == shares && shares != MC_NOT_MINE && !tree_private(t, start, seg->seg.len))
			return "mbufchain: the seek index holds a shared segment for ours alone";
	}
	for (size_t b = 0; b < ix->nb; b++) {
		size_t i = ix->bucket[b];
		if (i >= ix->n || ix->ent[i].start > (b << ix->shift) || ix->ent[i + 1].start <= (b << ix->shift))
			return "mbufchain: a seek index bucket names the wrong segment";
		if (ix->fast[b].end != ix->ent[i + 1].start || ix->fast[b].base != (uintptr_t)ix->ent[i].p - ix->ent[i].start)
			return "mbufchain: a seek index bucket's copy of its segment is wrong";
	}
	return NULL;
}

/* ---- the object ---- */

struct mbufchain {
	kcom_bufio_t bufio;
	kcom_bufvec_t bufvec;
	kcom_chain_t chain;
	struct kcom_impl impl; /* count, ledger of mappings, debug interface */
	struct mc_node *root;  /* NULL: empty */
	size_t size;           /* == root's total */
	size_t cluster;        /* bytes per new cluster */
	size_t headroom;       /* room the next prepend's cluster keeps in front */
	struct mc_index *index; /* NULL until built; reads load it with acquire */
	size_t seeks;          /* reads through the tree since the segments changed */
	size_t shares;         /* times the tree was shared (see mc_index's mine[]) */
	struct kcom_carver carver; /* where its new clusters of `cluster` bytes come from */
};

static const struct kcom_bufio_ops mc_bufio_ops;
static const struct kcom_bufvec_ops mc_bufvec_ops;
static const struct kcom_chain_ops mc_chain_ops;

static struct mbufchain *impl_from_bufio(kcom_bufio_t *io)
{
	KCOM_ASSERT(io->ops == &mc_bufio_ops);
	return kcom_container_of(io, struct mbufchain, bufio);
}

static struct mbufchain *impl_from_bufvec(kcom_bufvec_t *vec)
{
	KCOM_ASSERT(vec->ops == &mc_bufvec_ops);
	return kcom_container_of(vec, struct mbufchain, bufvec);
}

static struct mbufchain *impl_from_chain(kcom_chain_t *ch)
{
	KCOM_ASSERT(ch->ops == &mc_chain_ops);
	return kcom_container_of(ch, struct mbufchain, chain);
}

static kcom_error_t mc_new(size_t cluster, struct mbufchain **out);

/* The segments changed: the seek index no longer describes them. */
static void mc_moved(struct mbufchain *mc)
{
	index_free(mc->index);
	__atomic_store_n(&mc->index, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&mc->seeks, 0, __ATOMIC_RELAXED);
}

/* Installs `root` (its reference taken over) and drops the old tree. */
static void mc_commit(struct mbufchain *mc, struct mc_node *root)
{
	mc_moved(mc);
	struct mc_node *old = mc->root;
	mc->root = root;
	mc->size = mc_total(root);
	node_release(old);
}

/*
 * The seek index when there is none yet: built when enough reads and in-place writes went
 * through the tree; NULL: seek in the tree.  Reads of one object may run at once, so the count
 * is updated without a lock (a lost count only delays the build) and the index is published by
 * one compare-and-swap.
 */
static __attribute__((noinline)) struct mc_index *mc_index_build(struct mbufchain *mc)
{
	if (mc->root == NULL || mc->root->height < MC_INDEX_HEIGHT)
		return NULL;
	size_t seeks = __atomic_load_n(&mc->seeks, __ATOMIC_RELAXED) + 1;
	__atomic_store_n(&mc->seeks, seeks, __ATOMIC_RELAXED);
	if (seeks < mc_index_seeks(mc->root->height))
		return NULL;
	struct mc_index *ix = index_build(mc->root, __atomic_load_n(&mc->shares, __ATOMIC_ACQUIRE));
	struct mc_index *none = NULL;
	if (ix == NULL) /* no memory: try again after as many reads */
		__atomic_store_n(&mc->seeks, 0, __ATOMIC_RELAXED);
	else if (!__atomic_compare_exchange_n(&mc->index, &none, ix, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) {
		index_free(ix);
		ix = none;
	}
	return ix;
}

/* The seek index for a read or an in-place write; NULL: seek in the tree. */
static inline struct mc_index *mc_index(struct mbufchain *mc)
{
	struct mc_index *ix = __atomic_load_n(&mc->index, __ATOMIC_ACQUIRE);
	return ix != NULL ? ix : mc_index_build(mc);
}

/*
 * The tree is about to be shared (its root was just held): no segment is known to be ours
 * alone any more.  Several threads may copy one object at once; the count stops at
 * MC_NOT_MINE rather than come round to an old mark.
 */
static void mc_shared(struct mbufchain *mc)
{
	size_t v = __atomic_load_n(&mc->shares, __ATOMIC_RELAXED);
	while (v != MC_NOT_MINE &&
	       !__atomic_compare_exchange_n(&mc->shares, &v, v + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/*
 * Puts `len` bytes (buf, or zeros) at `off` in place through the index, when they lie in one
 * segment marked ours alone; 0 when they do not (nothing written).
 */
static int index_put(const struct mbufchain *mc, struct mc_index *ix, const void *buf, size_t off, size_t len)
{
	size_t i = index_find(ix, off), o = off - ix->ent[i].start;
	if (len > ix->ent[i + 1].start - off || ix->mine[i] != mc->shares || mc->shares == MC_NOT_MINE)
		return 0;
	if (buf != NULL)
		kcom_memcpy(ix->ent[i].p + o, buf, len);
	else
		kcom_memset(ix->ent[i].p + o, 0, len);
	return 1;
}

/* Bytes [off, off + len) (len > 0) were found ours alone: marks their segments. */
static void index_mark(const struct mbufchain *mc, struct mc_index *ix, size_t off, size_t len)
{
	for (size_t i = index_find(ix, off); i < ix->n && ix->ent[i].start < off + len; i++)
		ix->mine[i] = mc->shares;
}

/* Whether a mapping or wiring is outstanding: the size is frozen. */
static int mc_held(const struct mbufchain *mc)
{
	return kcom_ledger_mapped_(&mc->impl) || kcom_ledger_wired_(&mc->impl);
}

/* Whether a mapping or wiring covers any byte of [a, b): those bytes must not move. */
static int mc_mapped_in(const struct mbufchain *mc, size_t a, size_t b)
{
	/* A wiring (of pages a DMA-backed pool lent) pins its bytes just as a mapping does. */
	for (const struct kcom_hold *h = mc->impl.ledger.head; h != NULL; h = h->next) {
		uint64_t ha = (uint64_t)h->key.off, hb = ha + h->key.n;
		if (h->key.n != 0 && ha < b && a < hb)
			return 1;
	}
	return 0;
}

/* ---- new clusters ---- */

enum mc_piece_kind { PC_TREE, PC_ZERO, PC_BUF, PC_IO };

/* Where the bytes of new clusters come from, one piece after another. */
struct mc_piece {
	enum mc_piece_kind kind;
	const struct mc_node *tree; /* PC_TREE */
	const unsigned char *buf;   /* PC_BUF */
	kcom_bufio_t *io;           /* PC_IO: read through absio */
	size_t off;                 /* PC_TREE, PC_IO: first byte */
	size_t len;
};

struct mc_segs {
	struct mc_seg *v;
	size_t n;
	size_t alloc; /* bytes of v when allocated, 0 when v is local */
	struct mc_seg local[4];
};

static void mc_segs_free(struct mc_segs *ss)
{
	if (ss->alloc != 0)
		kcom_free(ss->v, ss->alloc, 0);
	ss->v = NULL;
	ss->alloc = 0;
}

/*
 * New private clusters holding the pieces' bytes in order, `chunk` bytes each (the last one
 * short, with the rest of its cluster free for appends; with `front`, the first one short and
 * its bytes at the end of a cluster with `room` free bytes before them, for prepends).  Those
 * of mc's cluster size are cut from mc's carver, so clusters written one after another lie
 * one after another in memory; mc NULL (a caller that may not be mc's only thread): each its
 * own allocation.  The segments (each holding its store) are in *ss.  Fails with
 * KCOM_E_OUTOFMEMORY, or with what a PC_IO read said, having released everything (a carved
 * cluster released goes back with its slab, not to the carver).
 */
static kcom_error_t mc_clusters(struct mbufchain *mc, const struct mc_piece *pc, size_t np, size_t chunk, int front,
                                size_t room, struct mc_segs *ss)
{
	size_t total = 0;
	for (size_t i = 0; i < np; i++)
		total += pc[i].len;
	ss->v = ss->local;
	ss->alloc = 0;
	ss->n = 0;
	if (total == 0)
		return KCOM_OK;
	size_t nseg = total / chunk + (total % chunk != 0);
	if (nseg > sizeof(ss->local) / sizeof(ss->local[0])) {
		if (nseg > SIZE_MAX / sizeof(struct mc_seg))
			return KCOM_E_OUTOFMEMORY;
		ss->v = kcom_alloc(nseg * sizeof(struct mc_seg), 0);
		if (ss->v == NULL)
			return KCOM_E_OUTOFMEMORY;
		ss->alloc = nseg * sizeof(struct mc_seg);
	}
	size_t pi = 0, pin = 0, left = total;
	kcom_error_t err = KCOM_OK;
	for (size_t i = 0; i < nseg; i++) {
		size_t len = chunk, cap = chunk, at = 0;
		if (front && i == 0) {
			len = total - (nseg - 1) * chunk;
			cap = room <= SIZE_MAX - len ? KCOM_MAX(chunk, len + room) : chunk;
			at = cap - len;
		} else if (!front && i == nseg - 1) {
			len = left;
		}
		struct kcom_store *st =
		        mc != NULL && cap == mc->cluster ? kcom_carve_(&mc->carver, cap) : kcom_store_new_(cap);
		if (st == NULL) {
			err = KCOM_E_OUTOFMEMORY;
			break;
		}
		ss->v[i].st = st;
		ss->v[i].off = at;
		ss->v[i].len = len;
		ss->n = i + 1;
		unsigned char *dst = st->data + at;
		for (size_t k = len; k != 0 && err == KCOM_OK;) {
			const struct mc_piece *p = &pc[pi];
			size_t t = KCOM_MIN(k, p->len - pin);
			if (t == 0) {
				pi++;
				pin = 0;
				continue;
			}
			switch (p->kind) {
			case PC_TREE:
				tree_copyout(p->tree, p->off + pin, t, dst);
				break;
			case PC_ZERO:
				kcom_memset(dst, 0, t);
				break;
			case PC_BUF:
				kcom_memcpy(dst, p->buf + pin, t);
				break;
			case PC_IO: {
				size_t got = 0;
				err = kcom_bufio_read(p->io, dst, (kcom_off_t)(p->off + pin), t, &got);
				if (KCOM_SUCCEEDED(err) && got != t)
					err = KCOM_E_FAIL; /* the source shrank under us */
				break;
			}
			}
			dst += t;
			pin += t;
			k -= t;
		}
		left -= len;
		if (KCOM_FAILED(err))
			break;
	}
	if (KCOM_FAILED(err)) {
		for (size_t i = 0; i < ss->n; i++)
			kcom_store_release_(ss->v[i].st);
		mc_segs_free(ss);
		ss->n = 0;
	}
	return err;
}

/*
 * Replaces bytes [a, b) (b <= size) by the segments in ss (their references consumed; the
 * array freed), committing only when every allocation succeeded.  KCOM_E_OUTOFMEMORY changes
 * nothing.
 */
static kcom_error_t mc_replace(struct mbufchain *mc, size_t a, size_t b, struct mc_segs *ss)
{
	KCOM_ASSERT(a <= b && b <= mc->size);
	struct mc_node *mid, *lo = NULL, *rest, *gone, *hi = NULL, *t;
	kcom_error_t err = build(ss->v, ss->n, &mid);
	mc_segs_free(ss);
	if (KCOM_FAILED(err))
		return err;
	node_hold(mc->root);
	rest = mc->root;
	if (a != 0) {
		err = split(rest, a, &lo, &rest);
		if (KCOM_FAILED(err)) {
			node_release(mid);
			return err;
		}
	}
	gone = rest;
	if (b != mc->size) {
		err = split(rest, b - a, &gone, &hi);
		if (KCOM_FAILED(err)) {
			node_release(mid);
			node_release(lo);
			return err;
		}
	}
	node_release(gone);
	err = concat(lo, mid, &t);
	if (KCOM_FAILED(err)) {
		node_release(hi);
		return err;
	}
	err = concat(t, hi, &t);
	if (KCOM_FAILED(err))
		return err;
	mc_commit(mc, t);
	return KCOM_OK;
}

/*
 * A copy of the path from t (not consumed) to the segment holding byte `off`, with that segment
 * replaced by `ns` (its reference consumed): height-many new nodes, everything else shared.
 * NULL when allocation failed, everything taken released.
 */
static struct mc_node *path_replace(struct mc_node *t, size_t off, struct mc_seg ns)
{
	struct mc_node *l = t->l, *r = t->r;
	struct mc_seg s = t->seg;
	if (off < t->ltot) {
		l = path_replace(t->l, off, ns);
		if (l == NULL)
			return NULL;
		node_hold(r);
		kcom_store_hold_(s.st);
	} else if (off - t->ltot < t->seg.len) {
		node_hold(l);
		node_hold(r);
		s = ns;
	} else {
		r = path_replace(t->r, off - t->ltot - t->seg.len, ns);
		if (r == NULL)
			return NULL;
		node_hold(l);
		kcom_store_hold_(s.st);
	}
	return mk(NULL, l, s, r);
}

/* Bytes [a, b) of the chain moved into new private clusters of `chunk` bytes. */
static kcom_error_t mc_privatize(struct mbufchain *mc, size_t a, size_t b, size_t chunk)
{
	struct mc_piece pc = { .kind = PC_TREE, .tree = mc->root, .off = a, .len = b - a };
	struct mc_segs ss;
	kcom_error_t err = mc_clusters(mc, &pc, 1, chunk, 0, 0, &ss);
	if (KCOM_FAILED(err))
		return err;
	return mc_replace(mc, a, b, &ss);
}

/* The last segment, when the right spine and its store are ours alone; else NULL. */
static struct mc_node *mc_private_last(struct mbufchain *mc)
{
	struct mc_node *t = mc->root;
	if (t == NULL)
		return NULL;
	for (;;) {
		if (kcom_refcount_get(&t->refs) != 1)
			return NULL;
		if (t->r == NULL)
			break;
		t = t->r;
	}
	return kcom_store_shared_(t->seg.st) ? NULL : t;
}

static struct mc_node *mc_private_first(struct mbufchain *mc)
{
	struct mc_node *t = mc->root;
	if (t == NULL)
		return NULL;
	for (;;) {
		if (kcom_refcount_get(&t->refs) != 1)
			return NULL;
		if (t->l == NULL)
			break;
		t = t->l;
	}
	return kcom_store_shared_(t->seg.st) ? NULL : t;
}

/* The deepest path ever walked: an AVL tree's height is below 1.45 log2(n + 2), n < 2^64. */
#define MC_MAXH 96

/*
 * Adds segment `s` after the last one in place when the chain alone holds its right spine: one
 * new node, at most one rotation in place, no path copy.  *done 0: the spine is shared, nothing
 * happened and `s` is still the caller's.  *done 1: `s` was taken over; KCOM_OK, or
 * KCOM_E_OUTOFMEMORY with `s` released and the chain unchanged (the node is allocated first).
 */
static kcom_error_t mc_append_inplace(struct mbufchain *mc, struct mc_seg s, int *done)
{
	struct mc_node *path[MC_MAXH];
	int d = 0;
	*done = 0;
	for (struct mc_node *t = mc->root; t != NULL; t = t->r) {
		if (kcom_refcount_get(&t->refs) != 1 || d == MC_MAXH)
			return KCOM_OK;
		path[d++] = t;
	}
	*done = 1;
	struct mc_node *child = mk(NULL, NULL, s, NULL);
	if (child == NULL)
		return KCOM_E_OUTOFMEMORY;
	/* Back up the spine: lengths and heights; a subtree that grew two taller than its left
	 * sibling is right-heavy (it grew on its right), so one left rotation rebalances it. */
	for (int i = d - 1; i >= 0; i--) {
		struct mc_node *x = path[i];
		x->r = child;
		if (mc_h(child) > mc_h(x->l) + 1) {
			struct mc_node *y = child;
			x->r = y->l;
			x->height = 1 + KCOM_MAX(mc_h(x->l), mc_h(x->r));
			x->total = x->ltot + x->seg.len + mc_total(x->r);
			y->l = x;
			y->ltot = x->total;
			y->height = 1 + KCOM_MAX(mc_h(y->l), mc_h(y->r));
			y->total = y->ltot + y->seg.len + mc_total(y->r);
			child = y;
		} else {
			x->height = 1 + KCOM_MAX(mc_h(x->l), mc_h(x->r));
			x->total = x->ltot + x->seg.len + mc_total(x->r);
			child = x;
		}
	}
	mc_moved(mc);
	mc->root = child;
	mc->size = mc_total(child);
	return KCOM_OK;
}

/* Adds `n` to the totals down a spine (private: checked by the caller). */
static void mc_grow_spine(struct mbufchain *mc, int right, size_t n)
{
	mc_moved(mc);
	for (struct mc_node *t = mc->root; t != NULL; t = right ? t->r : t->l) {
		t->total += n;
		if (!right && t->l != NULL)
			t->ltot += n; /* the first segment is in the left subtree */
	}
	mc->size += n;
}

static int visit_zero(void *ctx, const struct mc_seg *seg, unsigned char *p, size_t len)
{
	(void)seg;
	(void)ctx;
	kcom_memset(p, 0, len);
	return 0;
}

static int visit_write(void *ctx, const struct mc_seg *seg, unsigned char *p, size_t len)
{
	(void)seg;
	const unsigned char **src = ctx;
	kcom_memcpy(p, *src, len);
	*src += len;
	return 0;
}

/*
 * Puts `len` bytes (buf, or zeros when NULL) at `off`, zero-filling any gap past the end: in
 * place where the bytes are ours alone, else by replacing the range (widened to whole segments,
 * at most one cluster on each side) by new clusters.  KCOM_E_BUSY when that would move mapped
 * bytes; KCOM_E_OUTOFMEMORY changes nothing.
 */
static kcom_error_t mc_put(struct mbufchain *mc, const void *buf, size_t off, size_t len)
{
	size_t size = mc->size, end = off + len, cs = mc->cluster;
	if (end <= size) {
		if (len == 0)
			return KCOM_OK;
		struct mc_index *ix = mc_index(mc);
		if (ix != NULL && index_put(mc, ix, buf, off, len))
			return KCOM_OK;
		if (tree_private(mc->root, off, len)) {
			const unsigned char *src = buf;
			tree_visit(mc->root, off, len, buf != NULL ? visit_write : visit_zero, &src);
			if (ix != NULL)
				index_mark(mc, ix, off, len);
			return KCOM_OK;
		}
	}
	if (off >= size) {
		/* Appending: into the free tail of the last cluster when it is ours and fits. */
		struct mc_node *last = mc_private_last(mc);
		size_t need = end - size;
		if (last != NULL && !last->seg.st->outside && need <= last->seg.st->cap - last->seg.off - last->seg.len) {
			unsigned char *p = seg_bytes(&last->seg) + last->seg.len;
			kcom_memset(p, 0, off - size);
			if (buf != NULL)
				kcom_memcpy(p + (off - size), buf, len);
			else
				kcom_memset(p + (off - size), 0, len);
			last->seg.len += need;
			mc_grow_spine(mc, 1, need);
			return KCOM_OK;
		}
		struct mc_piece pc[2] = {
			{ .kind = PC_ZERO, .len = off - size },
			{ .kind = buf != NULL ? PC_BUF : PC_ZERO, .buf = buf, .len = len },
		};
		struct mc_segs ss;
		kcom_error_t err = mc_clusters(mc, pc, 2, cs, 0, 0, &ss);
		if (KCOM_FAILED(err))
			return err;
		if (ss.n == 1) {
			int done;
			struct mc_seg ns = ss.v[0];
			err = mc_append_inplace(mc, ns, &done);
			if (done) {
				mc_segs_free(&ss);
				return err;
			}
		}
		return mc_replace(mc, size, size, &ss);
	}

	/* Copy-on-write of [a, b) around [off, min(end, size)). */
	size_t s0, t0;
	const struct mc_node *first = tree_find(mc->root, off, &s0);
	size_t a = KCOM_MAX(s0, off - off % cs);
	size_t b = size, e = KCOM_MIN(end, size);
	if (end < size) {
		const struct mc_node *lastn = tree_find(mc->root, e - 1, &t0);
		size_t up = e % cs != 0 && e <= SIZE_MAX - cs ? e - e % cs + cs : e;
		b = KCOM_MIN(t0 + lastn->seg.len, up);
		b = KCOM_MAX(b, e);
	}
	if (mc_held(mc) && mc_mapped_in(mc, a, b))
		return KCOM_E_BUSY;
	struct mc_piece pc[3] = {
		{ .kind = PC_TREE, .tree = mc->root, .off = a, .len = off - a },
		{ .kind = buf != NULL ? PC_BUF : PC_ZERO, .buf = buf, .len = len },
		{ .kind = PC_TREE, .tree = mc->root, .off = end, .len = end < b ? b - end : 0 },
	};
	struct mc_segs ss;
	kcom_error_t err = mc_clusters(mc, pc, 3, cs, 0, 0, &ss);
	if (KCOM_FAILED(err))
		return err;
	if (a == s0 && b == s0 + first->seg.len && ss.n == 1) {
		/* Exactly one segment's bytes change: copy the path to it, no split or join. */
		struct mc_seg ns = ss.v[0];
		mc_segs_free(&ss);
		struct mc_node *t = path_replace(mc->root, a, ns);
		if (t == NULL)
			return KCOM_E_OUTOFMEMORY;
		mc_commit(mc, t);
		return KCOM_OK;
	}
	return mc_replace(mc, a, b, &ss);
}

/* ---- IUnknown, destruction, sanity ---- */

KCOM_IMPL_IUNKNOWN_(mc, kcom_bufio_t, struct mbufchain, bufio)

static void mc_destroy(struct kcom_impl *impl)
{
	struct mbufchain *mc = kcom_container_of(impl, struct mbufchain, impl);
	node_release(mc->root);
	index_free(mc->index);
	kcom_carver_fini_(&mc->carver);
	kcom_free(mc, sizeof(*mc), 0);
}

/*
 * Shared subtrees already checked: a chain appended to itself k times holds its first tree
 * 2^k times over, and the walk checks each shared node once, then takes its cached height and
 * length as checked.  A fixed table on the stack (the hook allocates nothing, so tests can
 * count a change's allocations around it); when it fills, the walk only gets slower.
 */
#define CHECK_MEMO 256
struct check_memo {
	const struct mc_node *seen[CHECK_MEMO];
	size_t used;
};

/* The slot of t, or the empty one where it would go. */
static const struct mc_node **memo_slot(struct check_memo *m, const struct mc_node *t)
{
	size_t i = (size_t)(((uintptr_t)t >> 4) * 0x9E3779B1u) % CHECK_MEMO;
	while (m->seen[i] != NULL && m->seen[i] != t)
		i = (i + 1) % CHECK_MEMO;
	return &m->seen[i];
}

/* Checks t's subtree; *height and *total are what it really has. */
static const char *mc_check_tree(const struct mc_node *t, uint32_t *height, size_t *total, struct check_memo *m)
{
	*height = 0;
	*total = 0;
	if (t == NULL)
		return NULL;
	int shared = kcom_refcount_get(&t->refs) > 1;
	if (shared && *memo_slot(m, t) == t) {
		*height = t->height;
		*total = t->total;
		return NULL;
	}
	uint32_t hl, hr;
	size_t tl, tr;
	const char *why = mc_check_tree(t->l, &hl, &tl, m);
	if (why == NULL)
		why = mc_check_tree(t->r, &hr, &tr, m);
	if (why != NULL)
		return why;
	if (kcom_refcount_get(&t->refs) < 1)
		return "mbufchain: a node with no reference";
	if (t->seg.st == NULL || kcom_refcount_get(&t->seg.st->refs) < 1)
		return "mbufchain: a segment with no live cluster";
	if (t->seg.len == 0)
		return "mbufchain: an empty segment";
	if (t->seg.off > t->seg.st->cap || t->seg.len > t->seg.st->cap - t->seg.off)
		return "mbufchain: a segment past its cluster";
	if (hl > hr + 1 || hr > hl + 1)
		return "mbufchain: the tree is not balanced";
	if (t->height != 1 + KCOM_MAX(hl, hr))
		return "mbufchain: a wrong cached height";
	if (t->total != tl + t->seg.len + tr || t->ltot != tl)
		return "mbufchain: a subtree's length does not add up";
	*height = t->height;
	*total = t->total;
	if (shared && m->used < CHECK_MEMO * 3 / 4) {
		*memo_slot(m, t) = t;
		m->used++;
	}
	return NULL;
}

static kcom_error_t mc_sanity(struct kcom_impl *impl, char *why, size_t len)
{
	struct mbufchain *mc = kcom_container_of(impl, struct mbufchain, impl);
	uint32_t h;
	size_t total;
	struct check_memo memo = { { NULL }, 0 };
	const char *bad = mc_check_tree(mc->root, &h, &total, &memo);
	if (bad != NULL)
		return kcom_impl_insane_(why, len, bad);
	if (total != mc->size)
		return kcom_impl_insane_(why, len, "mbufchain: the segments do not add up to the size");
	if (mc->cluster == 0)
		return kcom_impl_insane_(why, len, "mbufchain: no cluster size");
	const struct mc_index *ix = __atomic_load_n(&mc->index, __ATOMIC_ACQUIRE);
	if (ix != NULL && (mc->root == NULL || (bad = index_check(ix, mc->root, mc->shares)) != NULL))
		return kcom_impl_insane_(why, len, bad != NULL ? bad : "mbufchain: a seek index of no segments");
	return KCOM_OK;
}

/* ---- absio ---- */

/* Everything but mc_read's fast path: checks, short reads, spans, seeks without the index. */
static __attribute__((noinline)) kcom_error_t mc_read_slow(struct mbufchain *mc, void *buf, kcom_off_t off, size_t n,
                                                         size_t *out_actual)
{
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);
	if ((uint64_t)off >= mc->size)
		return KCOM_OK;
	size_t len = KCOM_MIN(n, mc->size - (size_t)off);
	const struct mc_index *ix = mc_index(mc);
	if (ix != NULL)
		index_copyout(ix, (size_t)off, len, buf);
	else
		tree_copyout(mc->root, (size_t)off, len, buf);
	*out_actual = len;
	return KCOM_OK;
}

/*
 * Starts on a cache line: placed 16 bytes into one, the random reads of the benchmark's pairs
 * with Cord and evbuffer ran 12-15% slower on an Intel VM, with the same code (doc/performance.md).
 */
static __attribute__((aligned(64))) kcom_error_t mc_read(kcom_bufio_t *io, void *buf, kcom_off_t off, size_t n,
                                                         size_t *out_actual)
{
	struct mbufchain *mc = impl_from_bufio(io);
	/*
	 * As membuf's: the common small read, wholly inside one segment the index knows, as a leaf
	 * (one load for the segment, then the bytes).  Anything else takes the slow path.
	 */
	const struct mc_index *ix = __atomic_load_n(&mc->index, __ATOMIC_ACQUIRE);
	if (__builtin_expect(n <= 64 && ix != NULL && kcom_absio_io_inside_(buf, off, n, out_actual, mc->size), 1)) {
		const unsigned char *p = index_direct(ix, (size_t)off, n);
		if (__builtin_expect(p != NULL, 1)) {
			kcom_copy_small_(buf, p, n);
			*out_actual = n;
			return KCOM_OK;
		}
	}
	return mc_read_slow(mc, buf, off, n, out_actual);
}

/* Everything but mc_write's fast path: checks, the frozen size, appends, copy-on-write. */
static __attribute__((noinline)) kcom_error_t mc_write_slow(struct mbufchain *mc, const void *buf, kcom_off_t off,
                                                          size_t n, size_t *out_actual)
{
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);
	/* The size is frozen while mapped: what fits below it goes in. */
	int mapped = mc_held(mc);
	uint64_t limit = mapped ? mc->size : SIZE_MAX;
	if ((uint64_t)off >= limit)
		return mapped ? KCOM_E_BUSY : KCOM_E_OUTOFMEMORY;
	size_t len = (size_t)KCOM_MIN((uint64_t)n, limit - (uint64_t)off);
	err = mc_put(mc, buf, (size_t)off, len);
	if (KCOM_SUCCEEDED(err))
		*out_actual = len;
	return err;
}

static kcom_error_t mc_write(kcom_bufio_t *io, const void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct mbufchain *mc = impl_from_bufio(io);
	/*
	 * The common in-place write, wholly inside one segment the index marks ours alone, without
	 * the call into mc_put: on an Intel VM, sequential 4 KiB writes through mc_put ran 8-12%
	 * slower than memcpy into the same clusters, and at about memcpy's speed this way
	 * (doc/performance.md, "Copies off a cache line on Intel").
	 */
	struct mc_index *ix = __atomic_load_n(&mc->index, __ATOMIC_ACQUIRE);
	if (__builtin_expect(ix != NULL && kcom_absio_io_inside_(buf, off, n, out_actual, mc->size), 1) &&
	    index_put(mc, ix, buf, (size_t)off, n)) {
		*out_actual = n;
		return KCOM_OK;
	}
	return mc_write_slow(mc, buf, off, n, out_actual);
}

static kcom_error_t mc_getsize(kcom_bufio_t *io, size_t *out_size)
{
	struct mbufchain *mc = impl_from_bufio(io);
	if (out_size == NULL)
		return KCOM_E_INVALIDARG;
	*out_size = mc->size;
	return KCOM_OK;
}

/* Keeps bytes [front, size - back): O(log n) new nodes, no byte moves. */
static kcom_error_t mc_keep(struct mbufchain *mc, size_t front, size_t back)
{
	KCOM_ASSERT(front <= mc->size && back <= mc->size - front);
	struct mc_node *lo, *mid, *hi;
	node_hold(mc->root);
	kcom_error_t err = split(mc->root, front, &lo, &mid);
	if (KCOM_FAILED(err))
		return err;
	node_release(lo);
	err = split(mid, mc->size - front - back, &mid, &hi);
	if (KCOM_FAILED(err))
		return err;
	node_release(hi);
	mc_commit(mc, mid);
	return KCOM_OK;
}

static kcom_error_t mc_setsize(kcom_bufio_t *io, size_t size)
{
	struct mbufchain *mc = impl_from_bufio(io);
	if (size == mc->size)
		return KCOM_OK;
	kcom_error_t err = kcom_absio_check_size_(size);
	if (KCOM_FAILED(err))
		return err;
	if (mc_held(mc))
		return KCOM_E_BUSY;
	if (size < mc->size)
		return mc_keep(mc, 0, mc->size - size);
	return mc_put(mc, NULL, mc->size, size - mc->size);
}

/* ---- bufio ---- */

/* Where a mapping of nothing in an empty chain points. */
static unsigned char mc_nothing;

static kcom_error_t mc_map(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n)
{
	struct mbufchain *mc = impl_from_bufio(io);
	if (out_addr == NULL)
		return KCOM_E_INVALIDARG;
	*out_addr = NULL;
	kcom_error_t err = kcom_absio_check_range_(off, n, mc->size);
	if (KCOM_FAILED(err))
		return err;
	struct kcom_hold_key key = { .kind = KCOM_HOLD_MAP, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE };
	struct kcom_hold *h = kcom_hold_alloc_(0);
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	size_t o = (size_t)off, s0 = 0;
	unsigned char *addr = &mc_nothing;
	if (n != 0) {
		const struct mc_node *seg = tree_find(mc->root, o, &s0);
		if (o + n > s0 + seg->seg.len || !tree_private(mc->root, o, n)) {
			/* Pullup: the range becomes one private segment (one copy of it). */
			err = mc_mapped_in(mc, o, o + n) ? KCOM_E_BUSY : mc_privatize(mc, o, o + n, n);
			if (KCOM_FAILED(err)) {
				kcom_hold_free_(h);
				return err;
			}
			seg = tree_find(mc->root, o, &s0);
		}
		addr = seg_bytes(&seg->seg) + (o - s0);
	} else if (mc->size != 0) {
		/* No byte to store to: where byte off is, or just past the last byte at the end. */
		const struct mc_node *seg = tree_find(mc->root, o < mc->size ? o : o - 1, &s0);
		addr = seg_bytes(&seg->seg) + (o - s0);
	}
	key.addr = (uintptr_t)addr;
	kcom_ledger_insert_(&mc->impl, h, &key, NULL);
	*out_addr = addr;
	return KCOM_OK;
}

static kcom_error_t mc_unmap(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP, .addr = (uintptr_t)addr, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE,
	};
	return kcom_ledger_drop_(&impl_from_bufio(io)->impl, &key);
}

/*
 * The tree of bytes [off, off + n) of mc, held: shared with mc (a mapped chain's bytes are
 * copied instead, since its mappings write clusters in place).
 */
static kcom_error_t mc_range_tree(struct mbufchain *mc, size_t off, size_t n, struct mc_node **out)
{
	*out = NULL;
	if (n == 0)
		return KCOM_OK;
	if (mc_held(mc)) {
		struct mc_piece pc = { .kind = PC_TREE, .tree = mc->root, .off = off, .len = n };
		struct mc_segs ss;
		/* Copies of one object may be taken in several threads at once: not from its carver. */
		kcom_error_t err = mc_clusters(NULL, &pc, 1, mc->cluster, 0, 0, &ss);
		if (KCOM_FAILED(err))
			return err;
		err = build(ss.v, ss.n, out);
		mc_segs_free(&ss);
		return err;
	}
	node_hold(mc->root);
	mc_shared(mc);
	if (off == 0 && n == mc_total(mc->root)) { /* the whole chain: its tree as it is */
		*out = mc->root;
		return KCOM_OK;
	}
	struct mc_node *lo, *mid, *hi;
	kcom_error_t err = split(mc->root, off, &lo, &mid);
	if (KCOM_FAILED(err))
		return err;
	node_release(lo);
	err = split(mid, n, &mid, &hi);
	if (KCOM_FAILED(err))
		return err;
	node_release(hi);
	*out = mid;
	return KCOM_OK;
}

static kcom_error_t mc_copy(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	struct mbufchain *mc = impl_from_bufio(io);
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	kcom_error_t err = kcom_absio_check_range_(off, n, mc->size);
	if (KCOM_FAILED(err))
		return err;
	struct mbufchain *copy;
	err = mc_new(mc->cluster, &copy);
	if (KCOM_FAILED(err))
		return err;
	err = mc_range_tree(mc, (size_t)off, n, &copy->root);
	if (KCOM_FAILED(err)) {
		kcom_free(copy, sizeof(*copy), 0);
		return err;
	}
	copy->size = mc_total(copy->root);
	*out_io = &copy->bufio;
	return KCOM_OK;
}

/* ---- bufvec ---- */

KCOM_IMPL_IUNKNOWN_(mc_vec, kcom_bufvec_t, struct mbufchain, bufvec)

struct iov_fill {
	struct kcom_iovec *iov;
	size_t i;
};

static int visit_iov(void *ctx, const struct mc_seg *seg, unsigned char *p, size_t len)
{
	(void)seg;
	struct iov_fill *f = ctx;
	f->iov[f->i].base = p;
	f->iov[f->i].len = len;
	f->i++;
	return 0;
}

static kcom_error_t mc_map_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags, struct kcom_iovec *iov,
                               size_t max, size_t *out_count)
{
	struct mbufchain *mc = impl_from_bufvec(vec);
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	if (!kcom_map_flags_valid_(flags) || (iov == NULL && max > 0))
		return KCOM_E_INVALIDARG;
	kcom_error_t err = kcom_absio_check_range_(off, n, mc->size);
	if (KCOM_FAILED(err))
		return err;
	size_t o = (size_t)off;
	/* A writable mapping of bytes we share first moves them to private clusters. */
	int cow = n != 0 && (flags & KCOM_MAP_WRITE) && !tree_private(mc->root, o, n);
	/* Bytes we alone hold lie in as many pieces as the tree has nodes there: counted whole.
	 * Shared ones may be described far more often (a chain appended to itself: up to ~2^51
	 * pieces, which no array holds), so those are counted no further than MC_INDEX_MAX, past
	 * which the count is SIZE_MAX. */
	size_t cap = MC_INDEX_MAX;
	size_t count = n == 0 ? 0 : cow ? n / mc->cluster + (n % mc->cluster != 0) : tree_count(mc->root, o, n, cap);
	if (!cow && count > cap && tree_private(mc->root, o, n)) {
		cap = SIZE_MAX - 1;
		count = tree_count(mc->root, o, n, cap);
	}
	if (count > max) {
		*out_count = !cow && count > cap ? SIZE_MAX : count;
		return KCOM_E_TOOSMALL;
	}
	struct kcom_hold *h = kcom_hold_alloc_(count * sizeof(*iov));
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	if (cow) {
		err = mc_mapped_in(mc, o, o + n) ? KCOM_E_BUSY : mc_privatize(mc, o, o + n, mc->cluster);
		if (KCOM_FAILED(err)) {
			kcom_hold_free_(h);
			return err;
		}
	}
	struct iov_fill f = { iov, 0 };
	if (n != 0)
		tree_visit(mc->root, o, n, visit_iov, &f);
	KCOM_ASSERT(f.i == count);
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP_VEC, .off = off, .n = n, .flags = flags, .vec = iov, .veclen = count * sizeof(*iov),
	};
	kcom_ledger_insert_(&mc->impl, h, &key, NULL);
	*out_count = count;
	return KCOM_OK;
}

static kcom_error_t mc_unmap_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                 const struct kcom_iovec *iov, size_t count)
{
	if ((iov == NULL && count != 0) || count > SIZE_MAX / sizeof(*iov))
		return KCOM_E_INVALIDARG;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP_VEC, .off = off, .n = n, .flags = flags, .vec = iov, .veclen = count * sizeof(*iov),
	};
	return kcom_ledger_drop_(&impl_from_bufvec(vec)->impl, &key);
}

/* ---- wiring: only bytes whose stores know their physical address (DMA-backed pool pages) ---- */

struct phys_fill {
	struct kcom_physseg *segs; /* room for max; the count goes on past it */
	size_t max;
	size_t count;
	kcom_phys_t end;           /* where the last segment ends */
	const struct kcom_physmap_seg *in; /* the map segment the last piece lay in */
	int missing;               /* a piece whose store has no physical address */
	size_t cap;                /* the walk stops past this many segments */
};

/*
 * Adds [addr, addr + len), a piece of map segment `in`, to the list: as part of the last
 * segment when it goes on from there inside the same map segment (the region's own segments
 * are cut where its device needs them cut, even where the frames run on).
 */
static void phys_fill_add(struct phys_fill *f, const struct kcom_physmap_seg *in, kcom_phys_t addr, size_t len)
{
	if (f->count != 0 && f->in == in && f->end == addr) {
		if (f->count <= f->max)
			f->segs[f->count - 1].len += len; /* physically adjacent: one segment */
	} else {
		if (f->count < f->max) {
			f->segs[f->count].addr = addr;
			f->segs[f->count].len = len;
		}
		f->count++;
	}
	f->end = addr + len;
	f->in = in;
}

static int visit_phys(void *ctx, const struct mc_seg *seg, unsigned char *p, size_t len)
{
	struct phys_fill *f = ctx;
	const struct kcom_physmap *map = seg->st->pmap;
	if (map == NULL) {
		f->missing = 1;
		return 1; /* NOTIMPL, whatever follows */
	}
	/* The piece's bytes in the store's physical map: one or more of its segments. */
	size_t o = seg->st->pmap_off + (size_t)(p - seg->st->data);
	for (size_t i = kcom_physmap_find_(map, o); len != 0; i++) {
		KCOM_ASSERT(i < map->count && o >= map->segs[i].off);
		const struct kcom_physmap_seg *s = &map->segs[i];
		size_t in = o - s->off, k = KCOM_MIN(len, s->len - in);
		phys_fill_add(f, s, s->addr + in, k);
		o += k;
		len -= k;
	}
	return f->count > f->cap;
}

/*
 * The physical segments of [off, off + n): KCOM_E_NOTIMPL when any byte's store has no
 * physical address (ordinary clusters are pageable memory: use a dmabuf); KCOM_E_BUSY when
 * the bytes are shared with another object (a copy, a split's other half in the same page, a
 * chain that appended them by reference), which a device writing them would change too.
 */
static kcom_error_t mc_phys(struct mbufchain *mc, kcom_off_t off, size_t n, struct kcom_physseg *segs, size_t max,
                            size_t *out_count)
{
	kcom_error_t err = kcom_absio_check_range_(off, n, mc->size);
	if (KCOM_FAILED(err))
		return err;
	if (n == 0)
		return KCOM_E_NOTIMPL; /* no byte whose address a device could use */
	/*
	 * Bytes we alone hold lie in as many segments as the tree has nodes there; shared ones may
	 * be described far more often (a chain appended to itself), so that walk stops past
	 * MC_INDEX_MAX pieces: the answer is BUSY then, unless a store seen by then has no address.
	 */
	int mine = tree_private(mc->root, (size_t)off, n);
	struct phys_fill f = { segs, max, 0, 0, NULL, 0, mine ? SIZE_MAX : MC_INDEX_MAX };
	tree_visit(mc->root, (size_t)off, n, visit_phys, &f);
	if (f.missing)
		return KCOM_E_NOTIMPL;
	if (!mine)
		return KCOM_E_BUSY;
	*out_count = f.count;
	return f.count <= max ? KCOM_OK : KCOM_E_TOOSMALL;
}

static kcom_error_t mc_wire(kcom_bufio_t *io, kcom_phys_t *out_phys, kcom_off_t off, size_t n)
{
	struct mbufchain *mc = impl_from_bufio(io);
	if (out_phys == NULL)
		return KCOM_E_INVALIDARG;
	*out_phys = 0;
	struct kcom_physseg seg;
	size_t count = 0;
	kcom_error_t err = mc_phys(mc, off, n, &seg, 1, &count);
	if (err == KCOM_E_TOOSMALL)
		return KCOM_E_NOTCONTIG;
	if (KCOM_FAILED(err))
		return err;
	struct kcom_hold *h = kcom_hold_alloc_(0);
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	struct kcom_hold_key key = { .kind = KCOM_HOLD_WIRE, .addr = count != 0 ? seg.addr : 0, .off = off, .n = n };
	kcom_ledger_insert_(&mc->impl, h, &key, NULL);
	*out_phys = key.addr;
	return KCOM_OK;
}

static kcom_error_t mc_unwire(kcom_bufio_t *io, kcom_phys_t phys, kcom_off_t off, size_t n)
{
	struct kcom_hold_key key = { .kind = KCOM_HOLD_WIRE, .addr = phys, .off = off, .n = n };
	return kcom_ledger_drop_(&impl_from_bufio(io)->impl, &key);
}

static kcom_error_t mc_wire_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, struct kcom_physseg *segs, size_t max,
                                size_t *out_count)
{
	struct mbufchain *mc = impl_from_bufvec(vec);
	if (out_count == NULL)
		return KCOM_E_INVALIDARG;
	*out_count = 0;
	if (segs == NULL && max > 0)
		return KCOM_E_INVALIDARG;
	size_t count = 0;
	kcom_error_t err = mc_phys(mc, off, n, segs, max, &count);
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
	kcom_ledger_insert_(&mc->impl, h, &key, NULL);
	*out_count = count;
	return KCOM_OK;
}

static kcom_error_t mc_unwire_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, const struct kcom_physseg *segs,
                                  size_t count)
{
	if ((segs == NULL && count != 0) || count > SIZE_MAX / sizeof(*segs))
		return KCOM_E_INVALIDARG;
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_WIRE_VEC, .off = off, .n = n, .vec = segs, .veclen = count * sizeof(*segs),
	};
	return kcom_ledger_drop_(&impl_from_bufvec(vec)->impl, &key);
}

/* ---- the chain interface ---- */

KCOM_IMPL_IUNKNOWN_(mc_chain, kcom_chain_t, struct mbufchain, chain)

static kcom_error_t mc_reserve(kcom_chain_t *ch, size_t room)
{
	impl_from_chain(ch)->headroom = room;
	return KCOM_OK;
}

static kcom_error_t mc_prepend(kcom_chain_t *ch, const void *buf, size_t n)
{
	struct mbufchain *mc = impl_from_chain(ch);
	if (n == 0)
		return KCOM_OK;
	if (mc_held(mc))
		return KCOM_E_BUSY;
	if (n > (size_t)KCOM_OFF_MAX - mc->size)
		return KCOM_E_INVALIDARG;
	/* Into the free room before the first segment of a private cluster. */
	struct mc_node *first = mc_private_first(mc);
	if (first != NULL && !first->seg.st->outside && first->seg.off >= n) {
		first->seg.off -= n;
		first->seg.len += n;
		if (buf != NULL)
			kcom_memcpy(seg_bytes(&first->seg), buf, n);
		else
			kcom_memset(seg_bytes(&first->seg), 0, n);
		mc_grow_spine(mc, 0, n);
		return KCOM_OK;
	}
	struct mc_piece pc = { .kind = buf != NULL ? PC_BUF : PC_ZERO, .buf = buf, .len = n };
	struct mc_segs ss;
	kcom_error_t err = mc_clusters(mc, &pc, 1, mc->cluster, 1, mc->headroom, &ss);
	if (KCOM_FAILED(err))
		return err;
	return mc_replace(mc, 0, 0, &ss);
}

static kcom_error_t mc_append(kcom_chain_t *ch, kcom_bufio_t *src, kcom_off_t off, size_t n)
{
	struct mbufchain *mc = impl_from_chain(ch);
	if (src == NULL)
		return KCOM_E_INVALIDARG;
	size_t srcsize;
	kcom_error_t err = kcom_bufio_getsize(src, &srcsize);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_absio_check_range_(off, n, srcsize);
	if (KCOM_FAILED(err))
		return err;
	if (n == 0)
		return KCOM_OK;
	if (mc_held(mc))
		return KCOM_E_BUSY;
	if (n > (size_t)KCOM_OFF_MAX - mc->size)
		return KCOM_E_INVALIDARG;

	struct mc_node *add = NULL;
	struct kcom_store *st;
	size_t base;
	if (src->ops == &mc_bufio_ops) {
		/* Another chain (or this one): share its tree's nodes and clusters. */
		err = mc_range_tree(impl_from_bufio(src), (size_t)off, n, &add);
	} else if (KCOM_SUCCEEDED(kcom_membuf_share_store_(src, off, n, &st, &base))) {
		/* A membuf: one segment over its store, copy-on-write on both sides. */
		struct mc_seg s = { st, base, n };
		add = mk(NULL, NULL, s, NULL);
		err = add != NULL ? KCOM_OK : KCOM_E_OUTOFMEMORY;
	} else {
		struct mc_piece pc = { .kind = PC_IO, .io = src, .off = (size_t)off, .len = n };
		struct mc_segs ss;
		err = mc_clusters(mc, &pc, 1, mc->cluster, 0, 0, &ss);
		if (KCOM_SUCCEEDED(err)) {
			err = build(ss.v, ss.n, &add);
			mc_segs_free(&ss);
		}
	}
	if (KCOM_FAILED(err))
		return err;
	node_hold(mc->root);
	struct mc_node *t;
	err = concat(mc->root, add, &t);
	if (KCOM_FAILED(err))
		return err;
	mc_commit(mc, t);
	return KCOM_OK;
}

static kcom_error_t mc_split(kcom_chain_t *ch, kcom_off_t off, kcom_bufio_t **out_tail)
{
	struct mbufchain *mc = impl_from_chain(ch);
	if (out_tail == NULL)
		return KCOM_E_INVALIDARG;
	*out_tail = NULL;
	if (off < 0)
		return KCOM_E_INVALIDARG;
	if ((uint64_t)off > mc->size)
		return KCOM_E_RANGE;
	if (mc_held(mc))
		return KCOM_E_BUSY;
	struct mbufchain *tail;
	kcom_error_t err = mc_new(mc->cluster, &tail);
	if (KCOM_FAILED(err))
		return err;
	struct mc_node *lo, *hi;
	node_hold(mc->root);
	err = split(mc->root, (size_t)off, &lo, &hi);
	if (KCOM_FAILED(err)) {
		kcom_free(tail, sizeof(*tail), 0);
		return err;
	}
	tail->root = hi;
	tail->size = mc_total(hi);
	mc_commit(mc, lo);
	*out_tail = &tail->bufio;
	return KCOM_OK;
}

static kcom_error_t mc_trim(kcom_chain_t *ch, size_t front, size_t back)
{
	struct mbufchain *mc = impl_from_chain(ch);
	if (front > mc->size || back > mc->size - front)
		return KCOM_E_RANGE;
	if (front == 0 && back == 0)
		return KCOM_OK;
	if (mc_held(mc))
		return KCOM_E_BUSY;
	return mc_keep(mc, front, back);
}

/* ---- tables ---- */

static const struct kcom_bufio_ops mc_bufio_ops = {
	.query = mc_query,
	.addref = mc_addref,
	.release = mc_release,
	.read = mc_read,
	.write = mc_write,
	.getsize = mc_getsize,
	.setsize = mc_setsize,
	.map = mc_map,
	.unmap = mc_unmap,
	.wire = mc_wire,     /* only over DMA-backed pool pages: clusters are pageable memory */
	.unwire = mc_unwire,
	.copy = mc_copy,
};

static const struct kcom_bufvec_ops mc_bufvec_ops = {
	.query = mc_vec_query,
	.addref = mc_vec_addref,
	.release = mc_vec_release,
	.map_vec = mc_map_vec,
	.unmap_vec = mc_unmap_vec,
	.wire_vec = mc_wire_vec,
	.unwire_vec = mc_unwire_vec,
};

static const struct kcom_chain_ops mc_chain_ops = {
	.query = mc_chain_query,
	.addref = mc_chain_addref,
	.release = mc_chain_release,
	.reserve = mc_reserve,
	.prepend = mc_prepend,
	.append = mc_append,
	.split = mc_split,
	.trim = mc_trim,
};

/* Buffer info: always resizable; shared while any byte's tree node or cluster is. */
static void mc_info(struct kcom_impl *impl, struct kcom_buffer_info *out)
{
	struct mbufchain *mc = kcom_container_of(impl, struct mbufchain, impl);
	out->flags |= KCOM_BUFINFO_RESIZABLE;
	if (mc->size != 0 && !tree_private(mc->root, 0, mc->size))
		out->flags |= KCOM_BUFINFO_COW_SHARED;
}

static const struct kcom_class_iface mc_ifaces[] = {
	{ &kcom_iunknown_iid, offsetof(struct mbufchain, bufio) },
	{ &kcom_absio_iid, offsetof(struct mbufchain, bufio) },
	{ &kcom_bufio_iid, offsetof(struct mbufchain, bufio) },
	{ &kcom_bufvec_iid, offsetof(struct mbufchain, bufvec) },
	{ &kcom_chain_iid, offsetof(struct mbufchain, chain) },
	{ &kcom_debug_iid, offsetof(struct mbufchain, impl.debug) },
	{ &kcom_bufinfo_iid, offsetof(struct mbufchain, impl.bufinfo) },
	{ NULL, 0 },
};

static kcom_error_t mc_class_create(const kcom_iid_t *iid, void **out);

const struct kcom_class kcom_mbufchain_class = {
	.clsid = KCOM_MBUFCHAIN_CLSID,
	.name = "mbufchain",
	.create = mc_class_create,
	.ifaces = mc_ifaces,
	.natives = KCOM_NATIVE_MAP | KCOM_NATIVE_COPY | KCOM_NATIVE_BUFVEC | KCOM_NATIVE_CHAIN,
};

static const struct kcom_impl_desc mc_desc = {
	.cls = &kcom_mbufchain_class,
	.impl_offset = offsetof(struct mbufchain, impl),
	.destroy = mc_destroy,
	.sanity = mc_sanity,
	.info = mc_info,
};

/*
 * A chain over given windows of stores, in order (the kit's internal door for other
 * implementations: a pool builds a message over its pages).  Each store gets one more
 * reference, taken by the chain's segment; on failure nothing is held and *out_io is NULL.
 */
kcom_error_t kcom_mbufchain_from_stores_(struct kcom_store *const *stores, const size_t *offs, const size_t *lens,
                                         size_t n, kcom_bufio_t **out_io)
{
	*out_io = NULL;
	struct mbufchain *mc;
	kcom_error_t err = mc_new(KCOM_MBUFCHAIN_CLUSTER, &mc);
	if (KCOM_FAILED(err))
		return err;
	struct mc_seg *segs = n != 0 ? kcom_alloc(n * sizeof(*segs), 0) : NULL;
	if (n != 0 && segs == NULL) {
		kcom_impl_release_(&mc->impl);
		return KCOM_E_OUTOFMEMORY;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] == 0)
			continue; /* a tree holds no empty segment */
		kcom_store_hold_(stores[i]);
		segs[k++] = (struct mc_seg){ stores[i], offs[i], lens[i] };
	}
	struct mc_node *root;
	err = build(segs, k, &root); /* takes the references, or drops them on failure */
	kcom_free(segs, n * sizeof(*segs), 0);
	if (KCOM_FAILED(err)) {
		kcom_impl_release_(&mc->impl);
		return err;
	}
	mc_commit(mc, root);
	*out_io = &mc->bufio;
	return KCOM_OK;
}

/* ---- construction ---- */

static kcom_error_t mc_new(size_t cluster, struct mbufchain **out)
{
	struct mbufchain *mc = kcom_alloc(sizeof(*mc), 0);
	if (mc == NULL)
		return KCOM_E_OUTOFMEMORY;
	mc->bufio.ops = &mc_bufio_ops;
	mc->bufvec.ops = &mc_bufvec_ops;
	mc->chain.ops = &mc_chain_ops;
	kcom_impl_init_(&mc->impl, &mc_desc);
	mc->root = NULL;
	mc->size = 0;
	mc->cluster = cluster;
	mc->headroom = 0;
	mc->index = NULL;
	mc->seeks = 0;
	mc->shares = 0;
	mc->carver = (struct kcom_carver){ NULL, 0 };
	*out = mc;
	return KCOM_OK;
}

kcom_error_t kcom_mbufchain_create(size_t cluster, kcom_bufio_t **out_io)
{
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	struct mbufchain *mc;
	kcom_error_t err = mc_new(cluster != 0 ? cluster : KCOM_MBUFCHAIN_CLUSTER, &mc);
	if (KCOM_FAILED(err))
		return err;
	*out_io = &mc->bufio;
	return KCOM_OK;
}

/* The class factory: an empty chain with the default cluster size, answered as `iid`. */
static kcom_error_t mc_class_create(const kcom_iid_t *iid, void **out)
{
	kcom_bufio_t *io;
	kcom_error_t err = kcom_mbufchain_create(0, &io);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_query(io, iid, out);
	kcom_bufio_release(io);
	return err;
}
