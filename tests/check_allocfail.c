/*
 * Allocation failure: every operation that allocates is run with the Nth allocation failing,
 * for N = 1, 2, ... until the operation no longer meets a failure.  Each failing run must
 * return KCOM_E_OUTOFMEMORY (or succeed anyway, when the operation has a smaller fallback),
 * leave the object's bytes, size and reference count as they were, and, once everything is
 * released, have freed exactly what it allocated (calls and bytes).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/com.h>
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

static const struct row_op row_ops[] = {
	{ "write_inside", 0, 0, rop_write_inside },
	{ "write_grow", CAP_GROWS, 0, rop_write_grow },
	{ "setsize_grow", CAP_GROWS, 0, rop_setsize_grow },
	{ "map", CAP_MAPS, 0, rop_map },
	{ "map_vec_read", CAP_BUFVEC, 0, rop_map_vec_read },
	{ "map_vec_write", CAP_BUFVEC, 0, rop_map_vec_write },
	{ "copy", CAP_COPIES, 0, rop_copy },
	{ "view", 0, 0, rop_view },
	{ "copy_range_out", 0, 0, rop_copy_range_out },
	{ "copy_range_within", 0, 0, rop_copy_range_within },
	{ "duplicate", 0, 0, rop_duplicate },
};
#define NROW_OPS (sizeof(row_ops) / sizeof(row_ops[0]))

/*
 * One row, one operation: fail the Nth allocation for N = 1, 2, ... until the operation meets
 * no failure.  Each failure: KCOM_E_OUTOFMEMORY, bytes and size unchanged, no hold left (one
 * reference), the row's sanity check passes; allocations == frees once all is released.
 * Returns how many runs failed.
 */
static unsigned long row_op_run(const struct contract_impl *row, const struct row_op *rop)
{
	unsigned long failures = 0;
	for (unsigned long nth = 1;; nth++) {
		ck_assert_msg(nth < 2000, "%s/%s: still failing after %lu allocations", row->name, rop->name, nth);
		testenv_install();
		kcom_bufio_t *io = NULL;
		ck_assert_int_eq(row->make(ROW_SIZE, &io), KCOM_OK);
		size_t snap_size;
		uint8_t *snap = contract_snapshot(io, &snap_size);

		testenv_fail_at(nth);
		kcom_error_t err = rop->op(io);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);

		contract_assert_sane(row, io);
		if (hit && KCOM_FAILED(err)) {
			failures++;
			ck_assert_msg(err == KCOM_E_OUTOFMEMORY, "%s/%s: allocation %lu failed, call said %s", row->name,
			              rop->name, nth, kcom_strerror(err));
			contract_assert_same(io, snap, snap_size);
			ck_assert_uint_eq(contract_refs(io), 1);
		} else {
			ck_assert_msg(KCOM_SUCCEEDED(err), "%s/%s: %s with no failure", row->name, rop->name,
			              kcom_strerror(err));
		}
		free(snap);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
		if (row->teardown != NULL)
			row->teardown();
		ck_assert_msg(testenv_allocs() == testenv_frees(), "%s/%s at %lu: %lu allocations, %lu frees", row->name,
		              rop->name, nth, testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		testenv_uninstall();
		if (!hit)
			return failures;
	}
}

START_TEST(test_allocfail_rows)
{
	const struct contract_impl *row = &contract_impls[_i];
	if (!contract_available(row, 0, "allocfail"))
		return;
	unsigned long failures = 0;
	for (size_t k = 0; k < NROW_OPS; k++) {
		const struct row_op *rop = &row_ops[k];
		if ((row->caps & rop->needs) != rop->needs || (row->caps & rop->not) != 0)
			continue;
		failures += row_op_run(row, rop);
	}
	/* A harness that proves it ran: a row whose objects allocate through the osenv met failures. */
	if (!(row->caps & CAP_DOUBLE))
		ck_assert_msg(failures > 0, "%s: no operation ever allocated, so none ever failed", row->name);
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
	return s;
}
