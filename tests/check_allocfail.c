/*
 * Allocation and pin failure: every operation that allocates is run with the Nth allocation
 * failing, for N = 1, 2, ... until the operation no longer meets a failure; every operation of
 * every contract row is also run with the Nth pin failing, the same way.  Each failing run must
 * return the osenv's error (KCOM_E_OUTOFMEMORY for an allocation, the pin hook's own for a pin),
 * or succeed anyway when the operation has a fallback; leave the object's bytes, size and
 * reference count as they were, with nothing mapped or wired; and, once everything is released,
 * have freed exactly what it allocated (calls and bytes) and unpinned everything it pinned.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/com.h>
#include <com/debug.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/plainio.h"
#include "tests/suites.h"
#include "tests/testenv.h"

#define SIZE 3000u

struct fixture {
	kcom_bufio_t *io;    /* the object the operation works on (may be NULL) */
	kcom_bufio_t *other; /* a second object kept alive across the operation (may be NULL) */
	kcom_absio_t *plain; /* a read/write-only object (may be NULL) */
};

struct af_case {
	const char *name;
	void (*setup)(struct fixture *f);
	/* The operation; on success it undoes whatever it holds (unmap, release ...). */
	kcom_error_t (*op)(struct fixture *f);
};

/* ---- set-ups ---- */

static kcom_bufio_t *pattern_membuf(void)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_membuf_create(SIZE, &io), KCOM_OK);
	uint8_t buf[SIZE];
	for (size_t i = 0; i < SIZE; i++)
		buf[i] = contract_pattern(i);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, buf, 0, SIZE, &put), KCOM_OK);
	return io;
}

static void setup_none(struct fixture *f)
{
	(void)f;
}

static void setup_membuf(struct fixture *f)
{
	f->io = pattern_membuf();
}

/* The object shares its storage with a live copy, so a change must first copy the bytes. */
static void setup_shared(struct fixture *f)
{
	f->other = pattern_membuf();
	ck_assert_int_eq(kcom_bufio_copy(f->other, 0, SIZE, &f->io), KCOM_OK);
}

static uint8_t wrapped_mem[SIZE];
static void setup_plain(struct fixture *f)
{
	f->io = pattern_membuf();
	ck_assert_int_eq(plainio_create(SIZE, 0, &f->plain), KCOM_OK);
}

/* ---- operations ---- */

static kcom_error_t op_create(struct fixture *f)
{
	(void)f;
	kcom_bufio_t *io;
	kcom_error_t err = kcom_membuf_create(SIZE, &io);
	if (KCOM_SUCCEEDED(err))
		kcom_bufio_release(io);
	else
		ck_assert_ptr_null(io);
	return err;
}

static kcom_error_t op_wrap(struct fixture *f)
{
	(void)f;
	kcom_bufio_t *io;
	kcom_error_t err = kcom_membuf_wrap(wrapped_mem, SIZE, NULL, NULL, &io);
	if (KCOM_SUCCEEDED(err))
		kcom_bufio_release(io);
	else
		ck_assert_ptr_null(io);
	return err;
}

static kcom_error_t op_class_create(struct fixture *f)
{
	(void)f;
	void *obj;
	kcom_error_t err = kcom_create(&kcom_membuf_clsid, &kcom_absio_iid, &obj);
	if (KCOM_SUCCEEDED(err))
		kcom_absio_release(obj);
	else
		ck_assert_ptr_null(obj);
	return err;
}

static kcom_error_t op_write_inside(struct fixture *f)
{
	size_t put = 99;
	kcom_error_t err = kcom_bufio_write(f->io, "x", 7, 1, &put);
	if (KCOM_FAILED(err))
		ck_assert_uint_eq(put, 0);
	return err;
}

static kcom_error_t op_setsize_grow(struct fixture *f)
{
	return kcom_bufio_setsize(f->io, SIZE * 10);
}

static kcom_error_t op_map(struct fixture *f)
{
	void *addr = (void *)1;
	kcom_error_t err = kcom_bufio_map(f->io, &addr, 10, 100);
	if (KCOM_FAILED(err)) {
		ck_assert_ptr_null(addr);
		return err;
	}
	ck_assert_int_eq(kcom_bufio_unmap(f->io, addr, 10, 100), KCOM_OK);
	return err;
}

static kcom_error_t op_map_vec(struct fixture *f)
{
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(f->io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_iovec iov[4];
	size_t count = 99;
	kcom_error_t err = kcom_bufvec_map_vec(vec, 0, SIZE, KCOM_MAP_READ, iov, 4, &count);
	if (KCOM_SUCCEEDED(err))
		ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, SIZE, KCOM_MAP_READ, iov, count), KCOM_OK);
	else
		ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	return err;
}

static kcom_error_t op_view_bounce(struct fixture *f)
{
	struct kcom_view v;
	kcom_error_t err = kcom_view_acquire(&v, f->plain, 0, 100, KCOM_VIEW_READ | KCOM_VIEW_WRITE);
	if (KCOM_FAILED(err)) {
		ck_assert_ptr_null(v.addr);
		return err;
	}
	ck_assert_int_eq(kcom_view_direct(&v), 0);
	return kcom_view_release(&v);
}

static kcom_error_t op_copy_range_bounce(struct fixture *f)
{
	kcom_absio_t *other;
	ck_assert_int_eq(plainio_create(SIZE, 0, &other), KCOM_OK);
	size_t done;
	kcom_error_t err = kcom_absio_copy_range(other, 0, f->plain, 0, SIZE, &done);
	kcom_absio_release(other);
	return err;
}

static kcom_error_t op_duplicate_fallback(struct fixture *f)
{
	kcom_bufio_t *dup;
	kcom_error_t err = kcom_bufio_duplicate(f->plain, 0, SIZE, &dup);
	if (KCOM_SUCCEEDED(err))
		kcom_bufio_release(dup);
	else
		ck_assert_ptr_null(dup);
	return err;
}

static kcom_error_t op_registry(struct fixture *f)
{
	kcom_registry_t *reg;
	kcom_error_t err = kcom_registry_create(&reg);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_registry_register(reg, &kcom_bufio_iid, (kcom_iunknown_t *)(void *)f->io);
	kcom_registry_release(reg);
	return err;
}

/*
 * What the contract rows cannot say: creation paths, the helpers over a read/write-only object,
 * the registry, and a shared object whose original must stay as it was (the rows below check
 * every other operation on every implementation).
 */
static const struct af_case cases[] = {
	{ "membuf_create", setup_none, op_create },
	{ "membuf_wrap", setup_none, op_wrap },
	{ "kcom_create", setup_none, op_class_create },
	{ "write_shared", setup_shared, op_write_inside },
	{ "setsize_shared", setup_shared, op_setsize_grow },
	{ "map_shared", setup_shared, op_map },
	{ "map_vec_shared", setup_shared, op_map_vec },
	{ "view_bounce", setup_plain, op_view_bounce },
	{ "copy_range_bounce", setup_plain, op_copy_range_bounce },
	{ "duplicate_fallback", setup_plain, op_duplicate_fallback },
	{ "registry", setup_membuf, op_registry },
};

static void release_fixture(struct fixture *f)
{
	if (f->io != NULL)
		ck_assert_uint_eq(kcom_bufio_release(f->io), 0);
	if (f->other != NULL)
		ck_assert_uint_eq(kcom_bufio_release(f->other), 0);
	if (f->plain != NULL)
		ck_assert_uint_eq(kcom_absio_release(f->plain), 0);
}

START_TEST(test_allocfail)
{
	const struct af_case *c = &cases[_i];
	unsigned long failures = 0;

	for (unsigned long nth = 1;; nth++) {
		ck_assert_msg(nth < 1000, "%s: still failing after %lu allocations", c->name, nth);
		testenv_install();
		struct fixture f = { NULL, NULL, NULL };
		c->setup(&f);
		size_t snap_size = 0, other_size = 0;
		uint8_t *snap = f.io != NULL ? contract_snapshot(f.io, &snap_size) : NULL;
		uint8_t *other_snap = f.other != NULL ? contract_snapshot(f.other, &other_size) : NULL;

		testenv_fail_at(nth);
		kcom_error_t err = c->op(&f);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);

		if (hit && KCOM_FAILED(err)) {
			failures++;
			ck_assert_msg(err == KCOM_E_OUTOFMEMORY, "%s: allocation %lu failed, call said %s", c->name,
			              nth, kcom_strerror(err));
			if (f.io != NULL) {
				contract_assert_same(f.io, snap, snap_size);
				ck_assert_uint_eq(contract_refs(f.io), 1); /* no mapping left behind */
			}
		} else {
			/* No failure met, or one the operation recovered from (a smaller allocation). */
			ck_assert_msg(KCOM_SUCCEEDED(err), "%s: %s with no failure", c->name, kcom_strerror(err));
		}
		if (f.other != NULL)
			contract_assert_same(f.other, other_snap, other_size); /* a copy's original never changes */
		free(snap);
		free(other_snap);
		release_fixture(&f);
		ck_assert_msg(testenv_allocs() == testenv_frees(), "%s at %lu: %lu allocations, %lu frees", c->name,
		              nth, testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		ck_assert_int_eq(testenv_pages_outstanding(), 0);
		testenv_uninstall();
		if (!hit)
			break;
	}
	ck_assert_msg(failures > 0, "%s: never allocated, so never failed", c->name);
}
END_TEST

/* ---- every row of the contract table, every operation its capabilities allow ---- */

#define ROW_SIZE 3000u

struct row_op {
	const char *name;
	unsigned needs; /* the row must have all of these capabilities (0: any row) */
	unsigned not;   /* ... and none of these */
	kcom_error_t (*op)(kcom_bufio_t *io);
	/* NULL, or why the host cannot run the operation (called with CAP_WIRES when it wires, else
	 * 0; a skip is printed) */
	const char *(*probe)(unsigned cap);
};

static kcom_error_t rop_write_inside(kcom_bufio_t *io)
{
	size_t put = 99;
	kcom_error_t err = kcom_bufio_write(io, "inside", 100, 6, &put);
	if (KCOM_FAILED(err))
		ck_assert_uint_eq(put, 0);
	return err;
}

static kcom_error_t rop_write_grow(kcom_bufio_t *io)
{
	size_t put = 99;
	kcom_error_t err = kcom_bufio_write(io, "past the end", ROW_SIZE * 3, 12, &put);
	if (KCOM_FAILED(err))
		ck_assert_uint_eq(put, 0);
	return err;
}

static kcom_error_t rop_setsize_grow(kcom_bufio_t *io)
{
	return kcom_bufio_setsize(io, ROW_SIZE * 4);
}

static kcom_error_t rop_map(kcom_bufio_t *io)
{
	void *addr = (void *)1;
	kcom_error_t err = kcom_bufio_map(io, &addr, 10, ROW_SIZE - 20);
	if (KCOM_FAILED(err)) {
		ck_assert_ptr_null(addr);
		return err;
	}
	((uint8_t *)addr)[0] = contract_pattern(10); /* a store that changes nothing */
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 10, ROW_SIZE - 20), KCOM_OK);
	return err;
}

static kcom_error_t rop_map_vec(kcom_bufio_t *io, unsigned flags)
{
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_iovec iov[64];
	size_t count = 99;
	kcom_error_t err = kcom_bufvec_map_vec(vec, 0, ROW_SIZE, flags, iov, 64, &count);
	if (KCOM_SUCCEEDED(err))
		ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, ROW_SIZE, flags, iov, count), KCOM_OK);
	else
		ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	return err;
}

static kcom_error_t rop_map_vec_read(kcom_bufio_t *io)
{
	return rop_map_vec(io, KCOM_MAP_READ);
}

static kcom_error_t rop_map_vec_write(kcom_bufio_t *io)
{
	return rop_map_vec(io, KCOM_MAP_READ | KCOM_MAP_WRITE);
}

static kcom_error_t rop_copy(kcom_bufio_t *io)
{
	kcom_bufio_t *copy = (void *)1;
	kcom_error_t err = kcom_bufio_copy(io, 100, 1000, &copy);
	if (KCOM_FAILED(err)) {
		ck_assert_ptr_null(copy);
		return err;
	}
	size_t size;
	uint8_t *bytes = contract_snapshot(copy, &size);
	ck_assert_uint_eq(size, 1000);
	for (size_t i = 0; i < size; i++)
		ck_assert_uint_eq(bytes[i], contract_pattern(100 + i));
	free(bytes);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	return err;
}

static kcom_error_t rop_view(kcom_bufio_t *io)
{
	struct kcom_view v;
	kcom_error_t err = kcom_view_acquire(&v, kcom_bufio_absio(io), 5, ROW_SIZE - 10, KCOM_VIEW_READ | KCOM_VIEW_WRITE);
	if (KCOM_FAILED(err)) {
		ck_assert_ptr_null(v.addr);
		return err;
	}
	ck_assert_uint_eq(((uint8_t *)v.addr)[0], contract_pattern(5));
	err = kcom_view_release(&v);
	if (KCOM_FAILED(err))
		kcom_view_abort(&v);
	return err;
}

static kcom_error_t rop_copy_range_out(kcom_bufio_t *io)
{
	kcom_absio_t *other;
	ck_assert_int_eq(plainio_create(0, 0, &other), KCOM_OK);
	size_t done = 0;
	kcom_error_t err = kcom_absio_copy_range(other, 0, kcom_bufio_absio(io), 0, ROW_SIZE, &done);
	kcom_absio_release(other);
	return err;
}

static kcom_error_t rop_copy_range_within(kcom_bufio_t *io)
{
	size_t done = 0;
	kcom_error_t err = kcom_absio_copy_range(kcom_bufio_absio(io), 200, kcom_bufio_absio(io), 100, 1000, &done);
	return err; /* on success the bytes moved: the harness only compares on failure */
}

static kcom_error_t rop_duplicate(kcom_bufio_t *io)
{
	kcom_bufio_t *dup;
	kcom_error_t err = kcom_bufio_duplicate(kcom_bufio_absio(io), 0, ROW_SIZE, &dup);
	if (KCOM_SUCCEEDED(err))
		ck_assert_uint_eq(kcom_bufio_release(dup), 0);
	else
		ck_assert_ptr_null(dup);
	return err;
}

/* Reads (a chain may build its seek index on one: a failure there must not fail the read). */
static kcom_error_t rop_read(kcom_bufio_t *io)
{
	uint8_t buf[700];
	for (size_t r = 0; r < 8; r++) {
		size_t off = r * 331 % ROW_SIZE, n = sizeof(buf) - r * 50, got = 0;
		kcom_error_t err = kcom_bufio_read(io, buf, (kcom_off_t)off, n, &got);
		if (KCOM_FAILED(err))
			return err;
		ck_assert_uint_eq(got, off + n <= ROW_SIZE ? n : ROW_SIZE - off);
		for (size_t i = 0; i < got; i++)
			ck_assert_uint_eq(buf[i], contract_pattern(off + i));
	}
	return KCOM_OK;
}

static kcom_error_t rop_setsize_shrink(kcom_bufio_t *io)
{
	return kcom_bufio_setsize(io, ROW_SIZE / 2 + 1);
}

static kcom_error_t rop_wire(kcom_bufio_t *io)
{
	kcom_phys_t phys = 7;
	kcom_error_t err = kcom_bufio_wire(io, &phys, 100, 200);
	if (KCOM_SUCCEEDED(err))
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 100, 200), KCOM_OK);
	return err;
}

static kcom_error_t rop_wire_vec(kcom_bufio_t *io)
{
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_physseg segs[8];
	size_t count = 99;
	kcom_error_t err = kcom_bufvec_wire_vec(vec, 0, ROW_SIZE, segs, 8, &count);
	if (KCOM_SUCCEEDED(err))
		ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, ROW_SIZE, segs, count), KCOM_OK);
	else
		ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	return err;
}

/* The chain operations, each on a row that answers kcom_chain. */
static kcom_chain_t *chain_of(kcom_bufio_t *io)
{
	kcom_chain_t *ch;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_chain_iid, (void **)&ch), KCOM_OK);
	return ch;
}

static kcom_error_t rop_chain_prepend(kcom_bufio_t *io)
{
	kcom_chain_t *ch = chain_of(io);
	kcom_error_t err = kcom_chain_prepend(ch, "header", 6);
	kcom_chain_release(ch);
	return err;
}

/* Appends a range of the chain to itself: by reference, sharing its own tree. */
static kcom_error_t rop_chain_append_self(kcom_bufio_t *io)
{
	kcom_chain_t *ch = chain_of(io);
	kcom_error_t err = kcom_chain_append(ch, io, 100, 1000);
	kcom_chain_release(ch);
	return err;
}

static kcom_error_t rop_chain_split(kcom_bufio_t *io)
{
	kcom_chain_t *ch = chain_of(io);
	kcom_bufio_t *tail = (void *)1;
	kcom_error_t err = kcom_chain_split(ch, 1234, &tail);
	kcom_chain_release(ch);
	if (KCOM_FAILED(err)) {
		ck_assert_ptr_null(tail);
		return err;
	}
	size_t size;
	uint8_t *bytes = contract_snapshot(tail, &size);
	ck_assert_uint_eq(size, ROW_SIZE - 1234);
	for (size_t i = 0; i < size; i++)
		ck_assert_uint_eq(bytes[i], contract_pattern(1234 + i));
	free(bytes);
	ck_assert_uint_eq(kcom_bufio_release(tail), 0);
	return err;
}

static kcom_error_t rop_chain_trim(kcom_bufio_t *io)
{
	kcom_chain_t *ch = chain_of(io);
	kcom_error_t err = kcom_chain_trim(ch, 123, 456);
	kcom_chain_release(ch);
	return err;
}

/* "Physical" addresses equal to the virtual ones: a bounce buffer can be wired on any host. */
static kcom_error_t identity_xlate(const void *addr, size_t npages, size_t page, kcom_phys_t *out)
{
	for (size_t i = 0; i < npages; i++)
		out[i] = (kcom_phys_t)(uintptr_t)addr + i * page;
	return KCOM_OK;
}

/*
 * The range [10, ROW_SIZE - 10) handed to a device that wants 64-byte aligned buffers, in both
 * directions.  No row's pages meet that at offset 10, so every row bounces: through its own
 * kcom_dmaalloc (the dmabuf rows), else through one made by the class table's dmabuf class.
 * Both make a dmabuf, which pins.  Release copies the bounce buffer back (the same bytes).
 */
static kcom_error_t rop_dma_bounce(kcom_bufio_t *io)
{
	static const struct kcom_dma_constraints aligned = { .align = 64 };
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[8];
	testenv_fake_translation(identity_xlate);
	kcom_error_t err = kcom_dma_bounce_acquire(&b, io, 10, ROW_SIZE - 20, KCOM_DMA_TO_DEVICE | KCOM_DMA_FROM_DEVICE,
	                                           &aligned, NULL, segs, 8);
	if (KCOM_SUCCEEDED(err)) {
		ck_assert(!kcom_dma_bounce_direct(&b));
		err = kcom_dma_bounce_release(&b);
		if (KCOM_FAILED(err))
			kcom_dma_bounce_abort(&b);
	} else {
		ck_assert_uint_eq(b.count, 0);
	}
	testenv_fake_translation(NULL);
	return err;
}

/*
 * kcom_pin has one caller, dmabuf_get_memory (impls/dmabuf.c), under dmabuf_new.  The
 * operations that reach it: copy and duplicate on a dmabuf row (dmabuf_copy: a copy has pinned
 * pages of its own); dma_bounce on a dmabuf row (its dmaalloc, kcom_dmabuf_create) and on every
 * other row (the class factory's dmabuf, then its dmaalloc).  Creation itself pins in the dmabuf
 * rows' factories, which tests/check_dmabuf.c (test_pin_fails) fails.  The other operations
 * never pin: the pin sweep runs them once, meets no pin, and moves on.
 */
static const struct row_op row_ops[] = {
	{ "read", 0, 0, rop_read, NULL },
	{ "write_inside", 0, 0, rop_write_inside, NULL },
	{ "write_grow", CAP_GROWS, 0, rop_write_grow, NULL },
	{ "setsize_grow", CAP_GROWS, 0, rop_setsize_grow, NULL },
	{ "setsize_shrink", 0, CAP_FIXED, rop_setsize_shrink, NULL },
	{ "wire", CAP_WIRES, 0, rop_wire, dmabuf_test_probe },
	{ "wire_vec", CAP_WIRES | CAP_BUFVEC, 0, rop_wire_vec, dmabuf_test_probe },
	{ "chain_prepend", CAP_CHAIN, 0, rop_chain_prepend, NULL },
	{ "chain_append_self", CAP_CHAIN, 0, rop_chain_append_self, NULL },
	{ "chain_split", CAP_CHAIN, 0, rop_chain_split, NULL },
	{ "chain_trim", CAP_CHAIN, 0, rop_chain_trim, NULL },
	{ "map", CAP_MAPS, 0, rop_map, NULL },
	{ "map_vec_read", CAP_BUFVEC, 0, rop_map_vec_read, NULL },
	{ "map_vec_write", CAP_BUFVEC, 0, rop_map_vec_write, NULL },
	{ "copy", CAP_COPIES, 0, rop_copy, NULL },
	{ "view", 0, 0, rop_view, NULL },
	{ "copy_range_out", 0, 0, rop_copy_range_out, NULL },
	{ "copy_range_within", 0, 0, rop_copy_range_within, NULL },
	{ "duplicate", 0, 0, rop_duplicate, NULL },
	{ "dma_bounce", 0, 0, rop_dma_bounce, dmabuf_test_probe },
};
#define NROW_OPS (sizeof(row_ops) / sizeof(row_ops[0]))

/* Whether the operation runs on this row; prints the skip when the host cannot run it. */
static int row_op_applies(const struct contract_impl *row, const struct row_op *rop)
{
	if ((row->caps & rop->needs) != rop->needs || (row->caps & rop->not) != 0)
		return 0;
	const char *why = rop->probe != NULL ? rop->probe(rop->needs & CAP_WIRES) : NULL;
	if (why != NULL)
		fprintf(stderr, "SKIP: %s on %s: %s\n", rop->name, row->name, why);
	return why == NULL;
}

/* ---- the fault a sweep injects ---- */

struct fault {
	const char *what;
	kcom_error_t err;               /* what the osenv answers, so what a failing call returns */
	void (*arm)(unsigned long nth); /* the nth from now fails; 0 disarms */
	int (*hit)(void);               /* whether the armed failure happened */
};

static void arm_alloc(unsigned long nth)
{
	testenv_fail_at(nth);
}

/*
 * doc/dma.md: a refused pin is what the host's pin hook said.  KCOM_E_ACCESSDENIED is armed
 * because nothing else in these paths produces it: getting it back proves the pin's own error
 * went through unchanged, where KCOM_E_OUTOFMEMORY could have come from anywhere.
 */
static void arm_pin(unsigned long nth)
{
	testenv_fail_pin_at(nth, KCOM_E_ACCESSDENIED);
}

static const struct fault fault_alloc = { "allocation", KCOM_E_OUTOFMEMORY, arm_alloc, testenv_failure_hit };
static const struct fault fault_pin = { "pin", KCOM_E_ACCESSDENIED, arm_pin, testenv_pin_failure_hit };

/* Fails the test if io (when it answers kcom_debug) has a mapping or wiring outstanding. */
static void assert_no_holds(const struct contract_impl *row, const struct row_op *rop, kcom_bufio_t *io)
{
	kcom_debug_t *dbg;
	if (KCOM_FAILED(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg)))
		return;
	struct kcom_debug_counts c;
	ck_assert_int_eq(kcom_debug_counts(dbg, &c), KCOM_OK);
	kcom_debug_release(dbg);
	ck_assert_msg(c.mappings == 0 && c.wirings == 0, "%s/%s: %u mappings, %u wirings left", row->name, rop->name,
	              (unsigned)c.mappings, (unsigned)c.wirings);
}

/* What one row x operation sweep saw. */
struct sweep {
	unsigned long failures;  /* runs where the fault hit and the call failed */
	unsigned long made_pins; /* pins the factory made (in the last run) */
	unsigned long op_pins;   /* pins the operation made in the last run, the one that met no fault */
};

/*
 * One row, one operation, one kind of fault: fail the Nth for N = 1, 2, ... until the operation
 * meets none.  Every run: the row's sanity check passes, one reference and no mapping or wiring
 * left.  A failed run: the fault's error, bytes and size unchanged.  Once all is released:
 * allocations == frees, no bytes outstanding, nothing pinned.
 */
static struct sweep row_op_run(const struct contract_impl *row, const struct row_op *rop, const struct fault *fault)
{
	struct sweep sw = { 0, 0, 0 };
	for (unsigned long nth = 1;; nth++) {
		ck_assert_msg(nth < 2000, "%s/%s: still failing after %lu %ss", row->name, rop->name, nth, fault->what);
		testenv_install();
		kcom_bufio_t *io = NULL;
		ck_assert_int_eq(row->make(ROW_SIZE, &io), KCOM_OK);
		size_t snap_size;
		uint8_t *snap = contract_snapshot(io, &snap_size);
		sw.made_pins = testenv_pin_count();

		fault->arm(nth);
		kcom_error_t err = rop->op(io);
		int hit = fault->hit();
		fault->arm(0);
		sw.op_pins = testenv_pin_count() - sw.made_pins;

		contract_assert_sane(row, io);
		if (hit && KCOM_FAILED(err)) {
			sw.failures++;
			ck_assert_msg(err == fault->err, "%s/%s: %s %lu failed, call said %s", row->name, rop->name,
			              fault->what, nth, kcom_strerror(err));
			contract_assert_same(io, snap, snap_size);
		} else {
			/* No failure met, or one the operation recovered from (a fallback). */
			ck_assert_msg(KCOM_SUCCEEDED(err), "%s/%s: %s with no failure", row->name, rop->name,
			              kcom_strerror(err));
		}
		ck_assert_uint_eq(contract_refs(io), 1);
		assert_no_holds(row, rop, io);
		free(snap);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
		if (row->teardown != NULL)
			row->teardown();
		ck_assert_msg(testenv_allocs() == testenv_frees(), "%s/%s, %s %lu: %lu allocations, %lu frees", row->name,
		              rop->name, fault->what, nth, testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		ck_assert_int_eq(testenv_pages_outstanding(), 0);
		struct testenv_range pinned[TESTENV_MAX_PINS];
		ck_assert_msg(testenv_pinned(pinned, TESTENV_MAX_PINS) == 0, "%s/%s, %s %lu: a range still pinned",
		              row->name, rop->name, fault->what, nth);
		testenv_uninstall();
		if (!hit)
			return sw;
	}
}

START_TEST(test_allocfail_rows)
{
	const struct contract_impl *row = &contract_impls[_i];
	if (!contract_available(row, 0, "allocfail"))
		return;
	unsigned long failures = 0;
	for (size_t k = 0; k < NROW_OPS; k++)
		if (row_op_applies(row, &row_ops[k]))
			failures += row_op_run(row, &row_ops[k], &fault_alloc).failures;
	/* A harness that proves it ran: a row whose objects allocate through the osenv met failures. */
	if (!(row->caps & CAP_DOUBLE))
		ck_assert_msg(failures > 0, "%s: no operation ever allocated, so none ever failed", row->name);
}
END_TEST

/*
 * Every row, every operation, the Nth pin failing.  Whether a row pins is counted, not declared,
 * and the sweep must prove it ran: dma_bounce pins on every row; a row whose objects are pinned
 * (its factory pinned) must also fail a pin in an operation of its own (copy: a copy is pinned
 * pages of its own); and a row that pinned at all must have met pin failures.
 */
START_TEST(test_pinfail_rows)
{
	const struct contract_impl *row = &contract_impls[_i];
	if (!contract_available(row, 0, "pinfail"))
		return;
	unsigned long failures = 0, own_failures = 0, made_pins = 0, op_pins = 0;
	for (size_t k = 0; k < NROW_OPS; k++) {
		const struct row_op *rop = &row_ops[k];
		if (!row_op_applies(row, rop))
			continue;
		struct sweep sw = row_op_run(row, rop, &fault_pin);
		failures += sw.failures;
		made_pins += sw.made_pins;
		op_pins += sw.op_pins;
		if (rop->op == rop_dma_bounce)
			ck_assert_msg(sw.op_pins > 0, "%s: dma_bounce pinned nothing", row->name);
		else
			own_failures += sw.failures;
	}
	ck_assert_msg(made_pins == 0 || own_failures > 0, "%s: its objects are pinned, yet none of its own "
	              "operations met a pin failure", row->name);
	ck_assert_msg(made_pins + op_pins == 0 || failures > 0, "%s: pinned, yet no operation met a pin failure",
	              row->name);
}
END_TEST

Suite *allocfail_suite(void)
{
	Suite *s = suite_create("allocfail");
	TCase *tc = tcase_create("allocfail");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_allocfail, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, tc);
	tc = tcase_create("rows");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_allocfail_rows, 0, (int)contract_nimpls);
	suite_add_tcase(s, tc);
	tc = tcase_create("pins");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_pinfail_rows, 0, (int)contract_nimpls);
	suite_add_tcase(s, tc);
	return s;
}
