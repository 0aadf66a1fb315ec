/*
 * The implementation kit (impls/impl-internal.h) piece by piece: physical maps over fabricated
 * frame tables (coalescing, lookup, splitting at a device's boundary and longest segment, the
 * constraint checks, failures), the ledger, stores, the small copy and the absio fast check.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "absio/absio-internal.h"
#include "impls/impl-internal.h"
#include "tests/suites.h"
#include "tests/testenv.h"

#define PAGE 4096u
#define MAXPAGES 64

/* A fabricated frame table: the physical address of each page of a virtual range. */
struct frames {
	const void *base;
	size_t npages;
	kcom_phys_t phys[MAXPAGES];
	size_t calls;      /* xlate calls seen */
	size_t fail_from;  /* translating this page or a later one fails (MAXPAGES: never) */
};

static kcom_error_t frames_xlate(void *ctx, const void *addr, size_t npages, size_t page, kcom_phys_t *out)
{
	struct frames *f = ctx;
	size_t first = (size_t)((const char *)addr - (const char *)f->base) / page;
	f->calls++;
	ck_assert_uint_eq(page, PAGE);
	ck_assert_uint_le(first + npages, f->npages);
	for (size_t i = 0; i < npages; i++) {
		if (first + i >= f->fail_from)
			return KCOM_E_NOPHYS;
		out[i] = f->phys[first + i];
	}
	return KCOM_OK;
}

/* A page-aligned stand-in for the virtual range: only its address is used. */
static const void *fake_base(void)
{
	return (const void *)(uintptr_t)0x10000000u;
}

static void frames_init(struct frames *f, size_t npages, const kcom_phys_t *phys)
{
	memset(f, 0, sizeof(*f));
	f->base = fake_base();
	f->npages = npages;
	f->fail_from = MAXPAGES;
	memcpy(f->phys, phys, npages * sizeof(*phys));
}

static void build(struct kcom_physmap *map, struct frames *f)
{
	ck_assert_int_eq(kcom_physmap_build_(map, f->base, f->npages * PAGE, PAGE, frames_xlate, f), KCOM_OK);
}

START_TEST(test_physmap_coalesces)
{
	/* Pages 0-2 adjacent, 3 alone, 4-5 adjacent but descending from 3, 6 right after 5. */
	static const kcom_phys_t phys[] = { 0x100000, 0x101000, 0x102000, 0x200000, 0x150000, 0x151000, 0x152000 };
	struct frames f;
	frames_init(&f, 7, phys);
	struct kcom_physmap map;
	build(&map, &f);
	ck_assert_uint_eq(map.count, 3);
	ck_assert_uint_eq(map.len, 7 * PAGE);
	ck_assert_uint_eq(map.segs[0].off, 0);
	ck_assert_uint_eq(map.segs[0].addr, 0x100000);
	ck_assert_uint_eq(map.segs[0].len, 3 * PAGE);
	ck_assert_uint_eq(map.segs[1].off, 3 * PAGE);
	ck_assert_uint_eq(map.segs[1].addr, 0x200000);
	ck_assert_uint_eq(map.segs[1].len, PAGE);
	ck_assert_uint_eq(map.segs[2].off, 4 * PAGE);
	ck_assert_uint_eq(map.segs[2].addr, 0x150000);
	ck_assert_uint_eq(map.segs[2].len, 3 * PAGE);
	ck_assert_uint_eq(f.calls, 1); /* one batch: never a call per page */

	/* Lookup: every byte offset lands in its segment. */
	for (size_t off = 0; off < map.len; off += 512) {
		size_t i = kcom_physmap_find_(&map, off);
		ck_assert_uint_le(map.segs[i].off, off);
		ck_assert_uint_lt(off, map.segs[i].off + map.segs[i].len);
	}

	/* One address for a range inside a segment; NOTCONTIG across one. */
	kcom_phys_t p;
	ck_assert_int_eq(kcom_physmap_contig_(&map, 100, 3 * PAGE - 100, &p), KCOM_OK);
	ck_assert_uint_eq(p, 0x100000 + 100);
	ck_assert_int_eq(kcom_physmap_contig_(&map, 5 * PAGE + 7, 10, &p), KCOM_OK);
	ck_assert_uint_eq(p, 0x151000 + 7);
	ck_assert_int_eq(kcom_physmap_contig_(&map, 3 * PAGE - 1, 2, &p), KCOM_E_NOTCONTIG);
	ck_assert_uint_eq(p, 0);
	ck_assert_int_eq(kcom_physmap_contig_(&map, 7 * PAGE, 1, &p), KCOM_E_NOTCONTIG);
	kcom_physmap_free_(&map);
}
END_TEST

START_TEST(test_physmap_range_splits)
{
	/* 16 physically contiguous pages starting 8 KiB below a 64 KiB line. */
	kcom_phys_t phys[16];
	for (size_t i = 0; i < 16; i++)
		phys[i] = 0x30000 - 2 * PAGE + i * PAGE;
	struct frames f;
	frames_init(&f, 16, phys);
	struct kcom_physmap map;
	build(&map, &f);
	ck_assert_uint_eq(map.count, 1);

	struct kcom_physseg segs[8];
	size_t count = 99;
	/* No constraints: one segment. */
	ck_assert_int_eq(kcom_physmap_range_(&map, 10, 16 * PAGE - 20, NULL, segs, 8, &count), KCOM_OK);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(segs[0].addr, 0x30000 - 2 * PAGE + 10);
	ck_assert_uint_eq(segs[0].len, 16 * PAGE - 20);

	/* A 64 KiB boundary: cut at 0x30000; a 16 KiB longest segment: cut again. */
	struct kcom_dma_constraints c = { .boundary = 0x10000, .max_seg = 4 * PAGE };
	ck_assert_int_eq(kcom_physmap_range_(&map, 0, 16 * PAGE, &c, segs, 8, &count), KCOM_OK);
	ck_assert_uint_eq(count, 5);
	ck_assert_uint_eq(segs[0].addr, 0x30000 - 2 * PAGE);
	ck_assert_uint_eq(segs[0].len, 2 * PAGE);
	size_t total = 0;
	for (size_t i = 0; i < count; i++) {
		ck_assert_uint_le(segs[i].len, c.max_seg);
		ck_assert_uint_eq(segs[i].addr >> 16, (segs[i].addr + segs[i].len - 1) >> 16);
		if (i > 0)
			ck_assert_uint_eq(segs[i].addr, segs[i - 1].addr + segs[i - 1].len);
		total += segs[i].len;
	}
	ck_assert_uint_eq(total, 16 * PAGE);

	/* Too small an array: the count needed. */
	ck_assert_int_eq(kcom_physmap_range_(&map, 0, 16 * PAGE, &c, segs, 2, &count), KCOM_E_TOOSMALL);
	ck_assert_uint_eq(count, 5);
	/* An empty range: no segment. */
	ck_assert_int_eq(kcom_physmap_range_(&map, 5, 0, &c, segs, 8, &count), KCOM_OK);
	ck_assert_uint_eq(count, 0);
	kcom_physmap_free_(&map);
}
END_TEST

/* Each constraint fails with its own code, in the documented order. */
START_TEST(test_physmap_check)
{
	static const kcom_phys_t two[] = { 0xFFF000, 0x1000000 };      /* adjacent, crossing 16 MiB */
	static const kcom_phys_t apart[] = { 0x200000, 0x400000 };     /* two segments */
	struct frames f;
	struct kcom_physmap map;

	frames_init(&f, 2, two);
	build(&map, &f);
	ck_assert_uint_eq(map.count, 1);
	struct kcom_dma_constraints isa = { .max_addr = 0xFFFFFF, .boundary = 0x10000 };
	ck_assert_int_eq(kcom_physmap_check_(&map, &isa, map.len), KCOM_E_UNREACHABLE);
	struct kcom_dma_constraints contig_line = { .boundary = 0x10000, .contiguous = 1 };
	ck_assert_int_eq(kcom_physmap_check_(&map, &contig_line, map.len), KCOM_E_BOUNDARY);
	/* Only the bytes a device is given count: the first page's end is at the line, not past it. */
	ck_assert_int_eq(kcom_physmap_check_(&map, &contig_line, PAGE), KCOM_OK);
	ck_assert_int_eq(kcom_physmap_check_(&map, &contig_line, PAGE + 1), KCOM_E_BOUNDARY);
	struct kcom_dma_constraints aligned = { .align = 0x4000 };
	ck_assert_int_eq(kcom_physmap_check_(&map, &aligned, map.len), KCOM_E_MISALIGNED);
	struct kcom_dma_constraints ok = { .max_addr = 0x1000FFF, .align = 0x1000, .contiguous = 1 };
	ck_assert_int_eq(kcom_physmap_check_(&map, &ok, map.len), KCOM_OK);
	ck_assert_int_eq(kcom_physmap_check_(&map, NULL, map.len), KCOM_OK);
	kcom_physmap_free_(&map);

	frames_init(&f, 2, apart);
	build(&map, &f);
	ck_assert_uint_eq(map.count, 2);
	struct kcom_dma_constraints contig = { .contiguous = 1 };
	ck_assert_int_eq(kcom_physmap_check_(&map, &contig, map.len), KCOM_E_NOTCONTIG);
	struct kcom_dma_constraints low = { .max_addr = 0x3FFFFF, .contiguous = 1 };
	ck_assert_int_eq(kcom_physmap_check_(&map, &low, map.len), KCOM_E_UNREACHABLE); /* reach is checked first */
	kcom_physmap_free_(&map);

	/* Constraints no memory could meet. */
	struct kcom_dma_constraints bad_pow2 = { .boundary = 0x3000 };
	ck_assert_int_eq(kcom_dma_constraints_valid_(&bad_pow2, PAGE), KCOM_E_INVALIDARG);
	struct kcom_dma_constraints bad_align = { .align = 12 };
	ck_assert_int_eq(kcom_dma_constraints_valid_(&bad_align, PAGE), KCOM_E_INVALIDARG);
	struct kcom_dma_constraints too_long = { .max_seg = PAGE, .contiguous = 1 };
	ck_assert_int_eq(kcom_dma_constraints_valid_(&too_long, 2 * PAGE), KCOM_E_INVALIDARG);
	struct kcom_dma_constraints past_line = { .boundary = 0x10000, .contiguous = 1 };
	ck_assert_int_eq(kcom_dma_constraints_valid_(&past_line, 0x20000), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dma_constraints_valid_(&past_line, 0x10000), KCOM_OK);
	ck_assert_int_eq(kcom_dma_constraints_valid_(NULL, 1), KCOM_OK);
}
END_TEST

/* A translation or allocation failure returns its error, an empty map, and frees everything. */
START_TEST(test_physmap_failures)
{
	kcom_phys_t phys[40];
	for (size_t i = 0; i < 40; i++)
		phys[i] = 0x100000 + 2 * i * PAGE; /* nothing coalesces */
	struct frames f;
	frames_init(&f, 40, phys);
	f.fail_from = 17;
	struct kcom_physmap map;
	testenv_install();
	ck_assert_int_eq(kcom_physmap_build_(&map, f.base, 40 * PAGE, PAGE, frames_xlate, &f), KCOM_E_NOPHYS);
	ck_assert_ptr_null(map.segs);
	ck_assert_uint_eq(map.count, 0);
	f.fail_from = MAXPAGES;
	testenv_fail_at(1);
	ck_assert_int_eq(kcom_physmap_build_(&map, f.base, 40 * PAGE, PAGE, frames_xlate, &f), KCOM_E_OUTOFMEMORY);
	ck_assert(testenv_failure_hit());
	ck_assert_ptr_null(map.segs);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);

	/* Coalesced: the worst-case table is trimmed, and that second allocation may fail too. */
	for (size_t i = 0; i < 40; i++)
		f.phys[i] = 0x100000 + (i < 20 ? i : i + 1) * PAGE;
	testenv_fail_at(2);
	ck_assert_int_eq(kcom_physmap_build_(&map, f.base, 40 * PAGE, PAGE, frames_xlate, &f), KCOM_E_OUTOFMEMORY);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_fail_at(0);
	build(&map, &f);
	ck_assert_uint_eq(map.count, 2);
	kcom_physmap_free_(&map);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	testenv_uninstall();

	/* Arguments: a page that is not a power of two, an unaligned start or length. */
	ck_assert_int_eq(kcom_physmap_build_(&map, f.base, PAGE, 3000, frames_xlate, &f), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_physmap_build_(&map, (const char *)f.base + 1, PAGE, PAGE, frames_xlate, &f),
	                 KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_physmap_build_(&map, f.base, PAGE + 1, PAGE, frames_xlate, &f), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_physmap_build_(&map, f.base, 0, PAGE, frames_xlate, &f), KCOM_OK);
	ck_assert_uint_eq(map.count, 0);
}
END_TEST

/* ---- the ledger ---- */

struct toy {
	struct kcom_impl impl;
	int destroyed;
};

static void toy_destroy(struct kcom_impl *impl)
{
	kcom_container_of(impl, struct toy, impl)->destroyed = 1;
}

static const struct kcom_class_iface toy_ifaces[] = {
	{ &kcom_iunknown_iid, offsetof(struct toy, impl.debug) },
	{ &kcom_debug_iid, offsetof(struct toy, impl.debug) },
	{ NULL, 0 },
};
static const struct kcom_class toy_class = { .name = "toy", .ifaces = toy_ifaces };
static const struct kcom_impl_desc toy_desc = {
	.cls = &toy_class,
	.impl_offset = offsetof(struct toy, impl),
	.destroy = toy_destroy,
};

START_TEST(test_ledger)
{
	struct toy t = { .destroyed = 0 };
	kcom_impl_init_(&t.impl, &toy_desc);
	struct kcom_iovec vec[2] = { { (void *)0x1000, 10 }, { (void *)0x2000, 20 } };
	struct kcom_hold_key k1 = { .kind = KCOM_HOLD_MAP_VEC, .off = 5, .n = 30, .flags = KCOM_MAP_READ,
	                            .vec = vec, .veclen = sizeof(vec) };
	struct kcom_hold_key k2 = { .kind = KCOM_HOLD_WIRE, .addr = 0xabc000, .off = 0, .n = 64 };

	struct kcom_hold *h1 = kcom_hold_alloc_(k1.veclen), *h2 = kcom_hold_alloc_(0);
	ck_assert_ptr_nonnull(h1);
	ck_assert_ptr_nonnull(h2);
	kcom_ledger_insert_(&t.impl, h1, &k1, NULL);
	kcom_ledger_insert_(&t.impl, h2, &k2, &t);
	vec[0].len = 99; /* the ledger kept its own copy of the vector */

	struct kcom_debug_counts counts;
	ck_assert_int_eq(kcom_debug_counts(&t.impl.debug, &counts), KCOM_OK);
	ck_assert_uint_eq(counts.refs, 3);
	ck_assert_uint_eq(counts.mappings, 1);
	ck_assert_uint_eq(counts.wirings, 1);
	char why[64];
	ck_assert_int_eq(kcom_debug_check(&t.impl.debug, why, sizeof(why)), KCOM_OK);
	ck_assert_str_eq(why, "");

	/* Only exact arguments match; a mismatch changes nothing. */
	ck_assert_int_eq(kcom_ledger_drop_(&t.impl, &k1), KCOM_E_INVALIDARG); /* vec differs now */
	vec[0].len = 10;
	struct kcom_hold_key wrong = k2;
	wrong.n = 63;
	ck_assert_int_eq(kcom_ledger_drop_(&t.impl, &wrong), KCOM_E_INVALIDARG);
	wrong = k2;
	wrong.kind = KCOM_HOLD_MAP;
	ck_assert_int_eq(kcom_ledger_drop_(&t.impl, &wrong), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(t.impl.ledger.maps + t.impl.ledger.wires, 2);

	struct kcom_hold *got = kcom_ledger_remove_(&t.impl, &k2);
	ck_assert_ptr_eq(got, h2);
	ck_assert_ptr_eq(got->priv, &t);
	kcom_hold_free_(got);
	ck_assert_uint_eq(kcom_impl_release_(&t.impl), 2);
	ck_assert_int_eq(kcom_ledger_drop_(&t.impl, &k1), KCOM_OK);
	ck_assert_int_eq(kcom_ledger_drop_(&t.impl, &k1), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_debug_counts(&t.impl.debug, &counts), KCOM_OK);
	ck_assert_uint_eq(counts.refs, 1);
	ck_assert_uint_eq(counts.mappings + counts.wirings, 0);
	ck_assert_int_eq(t.destroyed, 0);

	/* The debug interface is the object's: it queries and releases like any other. */
	void *unk;
	ck_assert_int_eq(kcom_debug_query(&t.impl.debug, &kcom_iunknown_iid, &unk), KCOM_OK);
	ck_assert_ptr_eq(unk, &t.impl.debug);
	ck_assert_uint_eq(kcom_iunknown_release(unk), 1);
	ck_assert_uint_eq(kcom_debug_release(&t.impl.debug), 0);
	ck_assert_int_eq(t.destroyed, 1);
}
END_TEST

/* A corrupt ledger is what the sanity check exists to see. */
START_TEST(test_ledger_insane)
{
	struct toy t = { .destroyed = 0 };
	kcom_impl_init_(&t.impl, &toy_desc);
	t.impl.ledger.maps = 1; /* a count with no record */
	char why[64];
	ck_assert_int_eq(kcom_debug_check(&t.impl.debug, why, sizeof(why)), KCOM_E_UNEXPECTED);
	ck_assert_ptr_nonnull(strstr(why, "ledger"));
	ck_assert_int_eq(kcom_debug_check(&t.impl.debug, NULL, 0), KCOM_E_UNEXPECTED);
	char tiny[4];
	ck_assert_int_eq(kcom_debug_check(&t.impl.debug, tiny, sizeof(tiny)), KCOM_E_UNEXPECTED);
	ck_assert_uint_eq(strlen(tiny), 3);
}
END_TEST

/* ---- stores ---- */

static int released_calls;
static void note_release(void *ctx, void *mem, size_t len)
{
	(void)mem;
	(void)len;
	released_calls++;
	*(int *)ctx = 1;
}

START_TEST(test_store)
{
	testenv_install();
	struct kcom_store *st = kcom_store_new_(100);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq((uintptr_t)st->data % KCOM_STORE_ALIGN, 0);
	for (int i = 0; i < 100; i++)
		st->data[i] = (unsigned char)i;
	kcom_store_hold_(st);
	ck_assert(kcom_store_shared_(st));

	/* Move a window out of a shared store: the copy is private, the old one keeps its bytes. */
	struct kcom_store *mine = st;
	size_t base = 10;
	ck_assert_int_eq(kcom_store_move_(&mine, &base, 50, 200, 60), KCOM_OK);
	ck_assert_ptr_ne(mine, st);
	ck_assert_uint_eq(base, 0);
	ck_assert_uint_eq(mine->cap, 200);
	ck_assert_uint_eq(mine->data[0], 10);
	ck_assert_uint_eq(mine->data[49], 59);
	ck_assert(!kcom_store_shared_(st));
	ck_assert(!kcom_store_shared_(mine));

	/* The generous size fails: the minimum is tried; both failing changes nothing. */
	struct kcom_store *again = mine;
	base = 0;
	testenv_fail_at(1);
	ck_assert_int_eq(kcom_store_move_(&again, &base, 50, 4000, 50), KCOM_OK);
	ck_assert_uint_eq(again->cap, 50);
	ck_assert_uint_eq(again->data[49], 59);
	struct kcom_store *keep = again;
	kcom_store_hold_(keep); /* shared again, so the move below would be needed */
	testenv_fail_at(1);
	ck_assert_int_eq(kcom_store_move_(&again, &base, 50, 50, 50), KCOM_E_OUTOFMEMORY);
	testenv_fail_at(0);
	ck_assert_ptr_eq(again, keep);
	kcom_store_release_(keep);
	kcom_store_release_(again);
	kcom_store_release_(st);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);

	/* Outside memory: the callback runs once, with the last reference. */
	static unsigned char outside[32];
	int flag = 0;
	released_calls = 0;
	struct kcom_store *w = kcom_store_wrap_(outside, sizeof(outside), note_release, &flag);
	ck_assert_ptr_nonnull(w);
	ck_assert_ptr_eq(w->data, outside);
	kcom_store_hold_(w);
	kcom_store_release_(w);
	ck_assert_int_eq(flag, 0);
	kcom_store_release_(w);
	ck_assert_int_eq(flag, 1);
	ck_assert_int_eq(released_calls, 1);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	testenv_uninstall();
}
END_TEST

/* ---- the carver ---- */

/*
 * Clusters come in slabs of 1, 2, 4, ... KCOM_SLAB_MAX, each slab one run in memory (page-aligned
 * for whole pages); a slab goes back with its last cluster after the carver moved on.
 */
START_TEST(test_carver)
{
	testenv_install();
	testenv_hide_pages(1); /* every slab from the heap first: two allocations each */
	enum { N = 1 + 2 + 4 + 8 + 16 + 16 + 5 };
	static const size_t first[] = { 0, 1, 3, 7, 15, 31, 47 }; /* the first cluster of each slab */
	struct kcom_carver cv = { NULL, 0 };
	struct kcom_store *st[N];
	for (size_t i = 0; i < N; i++) {
		st[i] = kcom_carve_(&cv, 4096);
		ck_assert_ptr_nonnull(st[i]);
		ck_assert_uint_eq(st[i]->cap, 4096);
		ck_assert(!st[i]->outside && !kcom_store_shared_(st[i]));
		memset(st[i]->data, (int)i, 4096);
	}
	ck_assert_uint_eq(testenv_allocs(), 2 * 7); /* a header and a run per slab */
	size_t stride = (size_t)(st[2]->data - st[1]->data);
	ck_assert_uint_ge(stride, 4096);
	ck_assert_uint_lt(stride, 8192); /* 4096, or 4096 and the gap ASan watches */
	for (size_t s = 0; s < sizeof(first) / sizeof(first[0]); s++) {
		size_t end = s + 1 < sizeof(first) / sizeof(first[0]) ? first[s + 1] : N;
		ck_assert_uint_eq((uintptr_t)st[first[s]]->data % 4096, 0);
		for (size_t i = first[s] + 1; i < end; i++)
			ck_assert_ptr_eq(st[i]->data, st[i - 1]->data + stride);
	}
	for (size_t i = 0; i < N; i++) /* no cluster overlaps another */
		ck_assert(st[i]->data[0] == (unsigned char)i && st[i]->data[4095] == (unsigned char)i);

	/* One cluster held keeps its slab; the carver's slab lives until the carver finishes. */
	kcom_store_hold_(st[20]);
	for (size_t i = 0; i < N; i++)
		kcom_store_release_(st[i]);
	ck_assert_uint_eq(testenv_frees(), 2 * 5);
	kcom_carver_fini_(&cv);
	ck_assert_ptr_null(cv.slab);
	ck_assert_uint_eq(testenv_frees(), 2 * 6);
	ck_assert_uint_eq(st[20]->data[100], 20);
	kcom_store_release_(st[20]);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);

	/* With a page allocator, the runs of 16 whole pages come from it (when no ASan gap parts them). */
	testenv_hide_pages(0);
	unsigned long before = testenv_allocs();
	for (size_t i = 0; i < 31; i++)
		st[i] = kcom_carve_(&cv, 4096);
	ck_assert_uint_eq(testenv_allocs() - before, 4 * 2 + (stride == 4096 ? 1 : 2));
	ck_assert_int_eq(testenv_pages_outstanding(), stride == 4096 ? 16 * 4096 : 0);
	ck_assert_uint_eq((uintptr_t)st[15]->data % 4096, 0);
	for (size_t i = 0; i < 31; i++) {
		ck_assert_ptr_nonnull(st[i]);
		memset(st[i]->data, (int)i, 4096);
	}
	for (size_t i = 16; i < 31; i++)
		ck_assert_ptr_eq(st[i]->data, st[i - 1]->data + stride);
	for (size_t i = 0; i < 31; i++) {
		ck_assert(st[i]->data[0] == (unsigned char)i && st[i]->data[4095] == (unsigned char)i);
		kcom_store_release_(st[i]);
	}
	ck_assert_int_eq(testenv_pages_outstanding(), stride == 4096 ? 16 * 4096 : 0); /* the carver's */
	kcom_carver_fini_(&cv);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	ck_assert_int_eq(testenv_pages_outstanding(), 0);

	/* A slab that cannot be had: NULL and nothing taken; the next call starts at one cluster. */
	cv = (struct kcom_carver){ NULL, 8 };
	for (unsigned long nth = 1; nth <= 2; nth++) {
		testenv_fail_at(nth);
		ck_assert_ptr_null(kcom_carve_(&cv, 4096));
		ck_assert(testenv_failure_hit());
		testenv_fail_at(0);
		ck_assert_ptr_null(cv.slab);
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		cv.next = 8;
	}
	testenv_fail_at(1);
	ck_assert_ptr_null(kcom_carve_(&cv, 4096));
	testenv_fail_at(0);
	struct kcom_store *a = kcom_carve_(&cv, 4096), *b = kcom_carve_(&cv, 4096);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(b->slab, a->slab); /* the first slab after the failure held one */
	kcom_store_release_(a);
	kcom_store_release_(b);
	kcom_carver_fini_(&cv);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);

	/* A cluster of no whole pages: cache-line alignment. */
	struct kcom_store *c = kcom_carve_(&cv, 100), *d = kcom_carve_(&cv, 100);
	ck_assert_uint_eq((uintptr_t)c->data % KCOM_STORE_ALIGN, 0);
	ck_assert_uint_eq(d->cap, 100);
	kcom_store_release_(c);
	kcom_store_release_(d);
	kcom_carver_fini_(&cv);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* ---- small copies and the absio checks ---- */

START_TEST(test_copy_small)
{
	unsigned char src[80], dst[80];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 13 + 1);
	for (size_t n = 0; n <= 64; n++) {
		memset(dst, 0xee, sizeof(dst));
		kcom_copy_small_(dst + 3, src + 5, n);
		ck_assert_mem_eq(dst + 3, src + 5, n);
		ck_assert_uint_eq(dst[2], 0xee);
		ck_assert_uint_eq(dst[3 + n], 0xee);
	}
}
END_TEST

/*
 * kcom_memcpy and its block and string paths: lengths around the block size and the long-copy
 * and string thresholds, at distances inside and outside AMD's two placements (1..63 bytes; odd
 * multiples of 16 from an aligned destination) and Intel's (a destination off a cache line,
 * elsewhere in its line than the source), every byte checked, and the bytes on either side of
 * the destination untouched.  Both paths are called directly too, so they run on CPUs whose
 * kcom_memcpy never takes them.
 */
/* The string path where there is one; elsewhere the block path stands in for it. */
static void copy_string(void *dst, const void *src, size_t n)
{
#if KCOM_COPY_ALIASING_
	kcom_memcpy_string_(dst, src, n);
#else
	kcom_memcpy_blocks_(dst, src, n);
#endif
}

START_TEST(test_copy_long)
{
	enum { MOST = 3 * 4096 + 100, ROOM = MOST + 2 * 4096 };
	static const size_t lens[] = {
		0, 1, 63, 64, 65, 127, 128, 129, 2047, 2048, 2049, 3071, 3072, 4096, 4097, 6144, MOST,
	};
	static const size_t dists[] = {
		0, 1, 16, 31, 32, 63, 64, 65, 112, 128, 4032, 4033, 4048, 4064, 4080, 4095,
	};
	/* Whether each takes the blocks on AMD, from a page-aligned source (so dst & 15 == dist & 15). */
	static const int bad[] = { 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0 };
	/* Whether each, 3 KiB or longer, takes `rep movsb` on Intel: off a line, from the same source. */
	static const int string[] = { 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1 };
	_Static_assert(sizeof(string) == sizeof(bad), "one answer a distance");
	_Static_assert(sizeof(bad) / sizeof(bad[0]) == sizeof(dists) / sizeof(dists[0]), "one answer a distance");
	unsigned char *src = malloc(ROOM), *dst = malloc(ROOM + 4096);
	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(dst);
	for (size_t i = 0; i < ROOM; i++)
		src[i] = (unsigned char)(i * 131 + (i >> 8) + 7);
	/* A source at the start of a page of src's, and a destination at each distance from it. */
	size_t s0 = (4096 - (uintptr_t)src % 4096) % 4096;
	for (int way = 0; way < 3; way++)
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			for (size_t k = 0; k < sizeof(dists) / sizeof(dists[0]); k++) {
				size_t n = lens[l];
				size_t d0 = ((uintptr_t)src + s0 + dists[k] - (uintptr_t)dst) % 4096;
				d0 = d0 != 0 ? d0 : 4096; /* room for the guard byte before it */
				memset(dst, 0xee, ROOM + 4096);
				if (way == 0)
					kcom_memcpy(dst + d0, src + s0, n);
				else if (way == 1)
					kcom_memcpy_blocks_(dst + d0, src + s0, n);
				else
					copy_string(dst + d0, src + s0, n);
				ck_assert_uint_eq(((uintptr_t)(dst + d0) - (uintptr_t)(src + s0)) % 4096, dists[k]);
				ck_assert_int_eq(kcom_copy_placed_badly_(dst + d0, src + s0), bad[k]);
				/* Two heap blocks may lie 1-63 bytes apart modulo 4 GiB (the sanitizers' allocators put
				 * size classes 2^36 apart): no `rep movsb` there. */
				int near = (uint32_t)((uintptr_t)(dst + d0) - (uintptr_t)(src + s0)) <= 63u;
				ck_assert_int_eq(kcom_copy_by_string_(dst + d0, src + s0, n), n >= 3072 && string[k] && !near);
				ck_assert_mem_eq(dst + d0, src + s0, n);
				ck_assert_uint_eq(dst[d0 - 1], 0xee);
				ck_assert_uint_eq(dst[d0 + n], 0xee);
			}
	/* An odd multiple of 16 apart but an unaligned destination: the blocks would split lines. */
	ck_assert(!kcom_copy_placed_badly_(src + s0 + 8 + 112, src + s0 + 8));
	ck_assert(!kcom_copy_placed_badly_(src + s0 + 4096 + 4, src + s0 + 20));
	ck_assert(kcom_copy_placed_badly_(src + s0 + 4096 + 32, src + s0 + 48));
	/* On Intel: a destination 1-63 bytes after its source (modulo 4 GiB) stays with memcpy. */
	ck_assert(!kcom_copy_by_string_(src + s0 + 16 + 8, src + s0 + 16, 4096));
	ck_assert(kcom_copy_by_string_(src + s0 + 16 + 4096 + 8, src + s0 + 16, 4096));
	ck_assert(kcom_copy_by_string_(src + s0 + 16, src + s0 + 16 + 8, 4096));
#if KCOM_COPY_ALIASING_
	/* Overlapping ranges on the long path copy as memmove does, either way, whatever the CPU. */
	static const ptrdiff_t shifts[] = { 16, -16, 48, -48, 4096 + 16, -(4096 + 16), 1, -1 };
	for (size_t k = 0; k < sizeof(shifts) / sizeof(shifts[0]); k++) {
		enum { N = 8000 };
		size_t at = 2 * 4096 + 100; /* at + N + the largest shift fit ROOM */
		for (size_t i = 0; i < ROOM; i++)
			src[i] = (unsigned char)(i * 131 + (i >> 8) + 7);
		memcpy(dst, src, ROOM);
		memmove(dst + at + shifts[k], dst + at, N);
		kcom_memcpy_long_(src + at + shifts[k], src + at, N);
		ck_assert_mem_eq(src, dst, ROOM);
	}
#endif
	free(src);
	free(dst);
}
END_TEST

START_TEST(test_absio_checks)
{
	char b[4];
	size_t got = 7;
	ck_assert(kcom_absio_io_inside_(b, 0, 4, &got, 4));
	ck_assert(!kcom_absio_io_inside_(b, 1, 4, &got, 4));
	ck_assert(!kcom_absio_io_inside_(b, -1, 1, &got, 4));
	ck_assert(!kcom_absio_io_inside_(b, 0, 0, &got, 4));
	ck_assert(!kcom_absio_io_inside_(NULL, 0, 1, &got, 4));
	ck_assert(!kcom_absio_io_inside_(b, 0, 1, NULL, 4));
	ck_assert(!kcom_absio_io_inside_(b, 4, 1, &got, 4));

	ck_assert_int_eq(kcom_absio_check_io_(b, 0, 4, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(kcom_absio_check_io_(NULL, 3, 0, &got), KCOM_ABSIO_DONE_);
	ck_assert_int_eq(kcom_absio_check_done_(KCOM_ABSIO_DONE_), KCOM_OK);
	ck_assert_int_eq(kcom_absio_check_io_(NULL, 3, 1, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_check_io_(b, -1, 0, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_check_io_(b, KCOM_OFF_MAX, 1, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_check_io_(b, 0, 1, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_check_done_(KCOM_E_INVALIDARG), KCOM_E_INVALIDARG);
}
END_TEST

/* ---- the osenv's optional hooks and their fallbacks ---- */

static const struct kcom_osenv *hooks_base;
static int pages_calls, dma_allocs;

static kcom_error_t fake_v2p(void *ctx, const void *addr, kcom_phys_t *out)
{
	(void)ctx;
	*out = (kcom_phys_t)(uintptr_t)addr + 0x1000000;
	return KCOM_OK;
}

static kcom_error_t fake_pages(void *ctx, const void *addr, size_t npages, size_t page, kcom_phys_t *out)
{
	(void)ctx;
	pages_calls++;
	for (size_t i = 0; i < npages; i++)
		out[i] = (kcom_phys_t)(uintptr_t)addr + i * page + 0x2000000;
	return KCOM_OK;
}

static unsigned char dma_arena[4 * PAGE];
static void *fake_dma_alloc(void *ctx, size_t size, const struct kcom_dma_constraints *c)
{
	(void)ctx;
	(void)c;
	dma_allocs++;
	return size <= sizeof(dma_arena) ? dma_arena : NULL;
}

static void fake_dma_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	(void)size;
	ck_assert_ptr_eq(ptr, dma_arena);
	dma_allocs--;
}

static uintptr_t fake_self(void *ctx)
{
	(void)ctx;
	return 77;
}

#define HOOKS_FORWARD(ret, name, params, args) \
	static ret hooks_##name params { (void)ctx; return hooks_base->name args; }
HOOKS_FORWARD(void *, alloc, (void *ctx, size_t size, size_t align), (hooks_base->ctx, size, align))
HOOKS_FORWARD(void, free, (void *ctx, void *p, size_t size, size_t align), (hooks_base->ctx, p, size, align))
HOOKS_FORWARD(kcom_error_t, pin, (void *ctx, void *a, size_t len), (hooks_base->ctx, a, len))
HOOKS_FORWARD(kcom_error_t, unpin, (void *ctx, void *a, size_t len), (hooks_base->ctx, a, len))
HOOKS_FORWARD(kcom_error_t, lock_init, (void *ctx, kcom_lock_t *l), (hooks_base->ctx, l))
HOOKS_FORWARD(void, lock_fini, (void *ctx, kcom_lock_t *l), (hooks_base->ctx, l))
HOOKS_FORWARD(void, lock_acquire, (void *ctx, kcom_lock_t *l), (hooks_base->ctx, l))
HOOKS_FORWARD(void, lock_release, (void *ctx, kcom_lock_t *l), (hooks_base->ctx, l))
HOOKS_FORWARD(void, log, (void *ctx, enum kcom_log_level level, const char *msg), (hooks_base->ctx, level, msg))

__attribute__((noreturn)) static void hooks_panic(void *ctx, const char *msg)
{
	(void)ctx;
	hooks_base->panic(hooks_base->ctx, msg);
}

#define HOOKS_BASE_SLOTS                                                                             \
	.alloc = hooks_alloc, .free = hooks_free, .pin = hooks_pin, .unpin = hooks_unpin,            \
	.virt_to_phys = fake_v2p, .lock_init = hooks_lock_init, .lock_fini = hooks_lock_fini,        \
	.lock_acquire = hooks_lock_acquire, .lock_release = hooks_lock_release, .log = hooks_log, \
	.panic = hooks_panic

/* Without the optional hooks: page-by-page translation, no DMA allocator, one thread. */
static const struct kcom_osenv bare_osenv = { HOOKS_BASE_SLOTS };
/* With them. */
static const struct kcom_osenv full_osenv = {
	HOOKS_BASE_SLOTS,
	.virt_to_phys_pages = fake_pages,
	.dma_alloc = fake_dma_alloc,
	.dma_free = fake_dma_free,
	.thread_self = fake_self,
};

START_TEST(test_osenv_hooks)
{
	hooks_base = kcom_osenv_hosted();
	const void *addr = (const void *)(uintptr_t)0x40000000u;
	kcom_phys_t phys[3];
	void *mem = (void *)1;

	kcom_osenv_set(&bare_osenv);
	ck_assert_int_eq(kcom_virt_to_phys_pages(addr, 3, PAGE, phys), KCOM_OK);
	ck_assert_uint_eq(phys[2], 0x40000000u + 2 * PAGE + 0x1000000);
	ck_assert_int_eq(kcom_dma_alloc(PAGE, NULL, &mem), KCOM_E_NOTIMPL);
	ck_assert_ptr_null(mem);
	kcom_dma_free(dma_arena, PAGE); /* no hook: nothing happens */
	ck_assert_uint_eq(kcom_thread_self(), 1);

	kcom_osenv_set(&full_osenv);
	pages_calls = 0;
	ck_assert_int_eq(kcom_virt_to_phys_pages(addr, 3, PAGE, phys), KCOM_OK);
	ck_assert_int_eq(pages_calls, 1);
	ck_assert_uint_eq(phys[1], 0x40000000u + PAGE + 0x2000000);
	struct kcom_physmap map;
	ck_assert_int_eq(kcom_physmap_build_(&map, addr, 3 * PAGE, PAGE, kcom_xlate_osenv_, NULL), KCOM_OK);
	ck_assert_uint_eq(map.count, 1);
	ck_assert_uint_eq(map.segs[0].addr, 0x42000000u);
	kcom_physmap_free_(&map);
	ck_assert_int_eq(kcom_dma_alloc(PAGE, NULL, &mem), KCOM_OK);
	ck_assert_ptr_eq(mem, dma_arena);
	ck_assert_int_eq(kcom_dma_alloc(100 * PAGE, NULL, &mem), KCOM_E_OUTOFMEMORY);
	kcom_dma_free(dma_arena, PAGE);
	ck_assert_int_eq(dma_allocs, 1); /* one failed attempt counted, one freed */
	ck_assert_uint_eq(kcom_thread_self(), 77);
	kcom_osenv_set(NULL);
	ck_assert_ptr_eq(kcom_osenv_get(), kcom_osenv_hosted());
}
END_TEST

Suite *kit_suite(void)
{
	Suite *s = suite_create("kit");
	TCase *tc = tcase_create("physmap");
	tcase_add_test(tc, test_physmap_coalesces);
	tcase_add_test(tc, test_physmap_range_splits);
	tcase_add_test(tc, test_physmap_check);
	tcase_add_test(tc, test_physmap_failures);
	suite_add_tcase(s, tc);
	tc = tcase_create("ledger");
	tcase_add_test(tc, test_ledger);
	tcase_add_test(tc, test_ledger_insane);
	suite_add_tcase(s, tc);
	tc = tcase_create("osenv");
	tcase_add_test(tc, test_osenv_hooks);
	suite_add_tcase(s, tc);
	tc = tcase_create("store");
	tcase_add_test(tc, test_store);
	tcase_add_test(tc, test_carver);
	tcase_add_test(tc, test_copy_small);
	tcase_add_test(tc, test_copy_long);
	tcase_add_test(tc, test_absio_checks);
	suite_add_tcase(s, tc);
	return s;
}
