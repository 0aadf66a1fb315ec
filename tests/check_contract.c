/*
 * The contract suite: every rule of absio/absio.h and bufio/bufio.h, run over every
 * implementation in contract_impls[].  A later implementation adds a row and must pass
 * unchanged.  Optional methods (map, wire, copy, bufvec) must work where the row claims them
 * and be refused with KCOM_E_NOTIMPL where it does not.  After every call on the object the
 * row's sanity check runs (the wrappers below), so a method that leaves the object broken
 * fails at once, not three calls later.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/com.h>
#include <com/debug.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/plainio.h"
#include "tests/suites.h"

#define SIZE 1000u
#define GARBAGE ((void *)(uintptr_t)0xdeadbeef)

/* ---- shared helpers ---- */

uint8_t *contract_snapshot(kcom_bufio_t *io, size_t *out_size)
{
	size_t size = 0, got = 0;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	uint8_t *buf = malloc(size + 1);
	ck_assert_int_eq(kcom_bufio_read(io, buf, 0, size, &got), KCOM_OK);
	ck_assert_uint_eq(got, size);
	*out_size = size;
	return buf;
}

void contract_assert_same(kcom_bufio_t *io, const uint8_t *bytes, size_t size)
{
	size_t now_size;
	uint8_t *now = contract_snapshot(io, &now_size);
	ck_assert_uint_eq(now_size, size);
	if (size != 0)
		ck_assert_mem_eq(now, bytes, size);
	free(now);
}

void contract_assert_pattern(kcom_bufio_t *io, size_t size)
{
	size_t now_size;
	uint8_t *now = contract_snapshot(io, &now_size);
	ck_assert_uint_eq(now_size, size);
	for (size_t i = 0; i < size; i++)
		ck_assert_uint_eq(now[i], contract_pattern(i));
	free(now);
}

uint32_t contract_refs(kcom_bufio_t *io)
{
	kcom_bufio_addref(io);
	return kcom_bufio_release(io);
}

/* The kit's check, for objects that answer kcom_debug. */
static kcom_error_t debug_sanity(kcom_bufio_t *io, char *why, size_t len)
{
	kcom_debug_t *dbg;
	if (KCOM_FAILED(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg)))
		return KCOM_OK;
	kcom_error_t err = kcom_debug_check(dbg, why, len);
	kcom_debug_release(dbg);
	return err;
}

void contract_assert_sane(const struct contract_impl *row, kcom_bufio_t *io)
{
	char why[160] = "";
	kcom_error_t err = (row->sanity != NULL ? row->sanity : debug_sanity)(io, why, sizeof(why));
	ck_assert_msg(KCOM_SUCCEEDED(err), "%s: sanity check: %s", row->name, why);
}

int contract_available(const struct contract_impl *row, unsigned cap, const char *test)
{
	const char *why = row->probe != NULL ? row->probe(cap) : NULL;
	if (why == NULL)
		return 1;
	fprintf(stderr, "SKIP: contract %s on %s: %s\n", test, row->name, why);
	return 0;
}

/* ---- per-test set-up ---- */

static kcom_bufio_t *io;
static const struct contract_impl *impl;

/* Makes the row's object; 0 (and a printed skip) when the host cannot run the row. */
static int make_object_for(int i, unsigned cap, const char *test)
{
	impl = &contract_impls[i];
	io = NULL;
	if (!contract_available(impl, cap, test))
		return 0;
	ck_assert_msg(KCOM_SUCCEEDED(impl->make(SIZE, &io)), "%s: factory failed", impl->name);
	ck_assert_ptr_nonnull(io);
	contract_assert_pattern(io, SIZE);
	contract_assert_sane(impl, io);
	return 1;
}

#define make_object(i)                                   \
	do {                                             \
		if (!make_object_for((i), 0, __func__)) \
			return;                          \
	} while (0)

static int has(unsigned cap)
{
	return (impl->caps & cap) != 0;
}

static int has_row_cap(int i, unsigned cap)
{
	return (contract_impls[i].caps & cap) != 0;
}

static void teardown_row(void)
{
	if (impl->teardown != NULL)
		impl->teardown();
}

static void drop_object(void)
{
	contract_assert_sane(impl, io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	io = NULL;
	teardown_row();
}

/*
 * Every call the tests below make on an object is followed by its row's sanity check (not the
 * calls that may free it: release, unmap, unmap_vec).
 */
static kcom_error_t sane_after(kcom_bufio_t *obj, kcom_error_t err)
{
	contract_assert_sane(impl, obj);
	return err;
}

static kcom_error_t vec_sane_after(kcom_bufvec_t *vec, kcom_error_t err)
{
	kcom_bufio_t *obj;
	ck_assert_int_eq(kcom_bufvec_query(vec, &kcom_bufio_iid, (void **)&obj), KCOM_OK);
	contract_assert_sane(impl, obj);
	kcom_bufio_release(obj);
	return err;
}

#define kcom_bufio_read(o, ...) sane_after((o), kcom_bufio_read((o), __VA_ARGS__))
#define kcom_bufio_write(o, ...) sane_after((o), kcom_bufio_write((o), __VA_ARGS__))
#define kcom_bufio_setsize(o, ...) sane_after((o), kcom_bufio_setsize((o), __VA_ARGS__))
#define kcom_bufio_map(o, ...) sane_after((o), kcom_bufio_map((o), __VA_ARGS__))
#define kcom_bufio_wire(o, ...) sane_after((o), kcom_bufio_wire((o), __VA_ARGS__))
#define kcom_bufio_copy(o, ...) sane_after((o), kcom_bufio_copy((o), __VA_ARGS__))
#define kcom_bufvec_map_vec(v, ...) vec_sane_after((v), kcom_bufvec_map_vec((v), __VA_ARGS__))
#define kcom_bufvec_wire_vec(v, ...) vec_sane_after((v), kcom_bufvec_wire_vec((v), __VA_ARGS__))

/* ---- IUnknown ---- */

START_TEST(test_query_rules)
{
	make_object(_i);
	void *unk, *absio, *bufio, *again, *out = GARBAGE;

	ck_assert_int_eq(kcom_bufio_query(io, &kcom_iunknown_iid, &unk), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_absio_iid, &absio), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufio_iid, &bufio), KCOM_OK);
	ck_assert_ptr_eq(bufio, io); /* reflexive */

	/* Symmetric and transitive, and one identity whatever the route. */
	ck_assert_int_eq(kcom_absio_query(absio, &kcom_bufio_iid, &again), KCOM_OK);
	ck_assert_ptr_eq(again, bufio);
	kcom_bufio_release(again);
	ck_assert_int_eq(kcom_absio_query(absio, &kcom_iunknown_iid, &again), KCOM_OK);
	ck_assert_ptr_eq(again, unk);
	kcom_iunknown_release(again);

	/* An absio pointer is the same object seen as its parent interface. */
	ck_assert_ptr_eq(kcom_bufio_absio(io), (void *)io);

	/* Unknown IID: E_NOINTERFACE, *out cleared, no reference taken. */
	static const kcom_iid_t unknown = KCOM_GUID(0x12345678, 0x1234, 0x1234, 1, 2, 3, 4, 5, 6, 7, 8);
	uint32_t before = contract_refs(io);
	ck_assert_int_eq(kcom_bufio_query(io, &unknown, &out), KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(contract_refs(io), before);

	out = GARBAGE;
	ck_assert_int_eq(kcom_bufio_query(io, NULL, &out), KCOM_E_POINTER);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufio_iid, NULL), KCOM_E_POINTER);

	/* An extension interface, when offered, leads back to the same identity. */
	void *vec;
	if (KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_bufvec_iid, &vec))) {
		ck_assert_int_eq(kcom_bufvec_query(vec, &kcom_iunknown_iid, &again), KCOM_OK);
		ck_assert_ptr_eq(again, unk);
		kcom_iunknown_release(again);
		ck_assert_int_eq(kcom_bufvec_query(vec, &kcom_bufio_iid, &again), KCOM_OK);
		ck_assert_ptr_eq(again, io);
		kcom_bufio_release(again);
		kcom_bufvec_release(vec);
	}

	kcom_iunknown_release(unk);
	kcom_absio_release(absio);
	kcom_bufio_release(bufio);
	ck_assert_uint_eq(contract_refs(io), 1);
	drop_object();
}
END_TEST

START_TEST(test_refcounts)
{
	make_object(_i);
	ck_assert_uint_eq(kcom_bufio_addref(io), 2);
	ck_assert_uint_eq(kcom_bufio_addref(io), 3);
	ck_assert_uint_eq(kcom_bufio_release(io), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);
	drop_object();
}
END_TEST

/* ---- absio: read ---- */

START_TEST(test_read_ranges)
{
	make_object(_i);
	uint8_t buf[SIZE + 64];
	size_t got = 99;

	ck_assert_int_eq(kcom_bufio_read(io, buf, 0, SIZE, &got), KCOM_OK);
	ck_assert_uint_eq(got, SIZE);
	ck_assert_int_eq(kcom_bufio_read(io, buf, 10, 20, &got), KCOM_OK);
	ck_assert_uint_eq(got, 20);
	ck_assert_uint_eq(buf[0], contract_pattern(10));
	ck_assert_uint_eq(buf[19], contract_pattern(29));

	/* Short at the end, like pread; zero at and past the end. */
	ck_assert_int_eq(kcom_bufio_read(io, buf, SIZE - 5, 50, &got), KCOM_OK);
	ck_assert_uint_eq(got, 5);
	ck_assert_uint_eq(buf[4], contract_pattern(SIZE - 1));
	got = 99;
	ck_assert_int_eq(kcom_bufio_read(io, buf, SIZE, 10, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	got = 99;
	ck_assert_int_eq(kcom_bufio_read(io, buf, SIZE + 12345, 10, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	got = 99;
	ck_assert_int_eq(kcom_bufio_read(io, buf, KCOM_OFF_MAX - 1, 1, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	/* Regression (issue 5, defect 2): no bytes, no buffer, an offset inside the object.  No
	 * implementation may touch the NULL buffer (memcpy(NULL, p, 0) is undefined: the ASan+UBSan
	 * build aborts on it). */
	got = 99;
	ck_assert_int_eq(kcom_bufio_read(io, NULL, 5, 0, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	got = 99;
	ck_assert_int_eq(kcom_bufio_read(io, NULL, 0, 0, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	drop_object();
}
END_TEST

/* Bad arguments to read and write: E_INVALIDARG, actual 0, object unchanged. */
START_TEST(test_io_bad_args)
{
	make_object(_i);
	uint8_t buf[64] = { 0 };
	size_t got;
	struct {
		void *buf;
		kcom_off_t off;
		size_t n;
		size_t *actual;
	} cases[] = {
		{ buf, -1, 1, &got },
		{ buf, INT64_MIN, 1, &got },
		{ buf, KCOM_OFF_MAX - 10, 64, &got },
		{ buf, KCOM_OFF_MAX, 1, &got },
		{ buf, 1, SIZE_MAX, &got },
		{ NULL, 0, 1, &got },
		{ buf, 0, 1, NULL },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		got = 99;
		ck_assert_int_eq(kcom_bufio_read(io, cases[c].buf, cases[c].off, cases[c].n, cases[c].actual),
		                 KCOM_E_INVALIDARG);
		if (cases[c].actual != NULL)
			ck_assert_uint_eq(got, 0);
		got = 99;
		ck_assert_int_eq(kcom_bufio_write(io, cases[c].buf, cases[c].off, cases[c].n, cases[c].actual),
		                 KCOM_E_INVALIDARG);
		if (cases[c].actual != NULL)
			ck_assert_uint_eq(got, 0);
	}
	ck_assert_int_eq(kcom_bufio_getsize(io, NULL), KCOM_E_INVALIDARG);
	contract_assert_pattern(io, SIZE);
	drop_object();
}
END_TEST

/* ---- absio: write, getsize, setsize ---- */

START_TEST(test_write_inside)
{
	make_object(_i);
	uint8_t msg[] = "overwritten";
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, msg, 100, sizeof(msg), &put), KCOM_OK);
	ck_assert_uint_eq(put, sizeof(msg));
	size_t size;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, SIZE);
	uint8_t back[sizeof(msg)];
	ck_assert_int_eq(kcom_bufio_read(io, back, 100, sizeof(msg), &put), KCOM_OK);
	ck_assert_mem_eq(back, msg, sizeof(msg));
	ck_assert_int_eq(kcom_bufio_write(io, NULL, 5, 0, &put), KCOM_OK);
	ck_assert_uint_eq(put, 0);
	drop_object();
}
END_TEST

START_TEST(test_write_past_end)
{
	make_object(_i);
	uint8_t msg[16];
	memset(msg, 0xab, sizeof(msg));
	size_t put = 99, size;
	kcom_error_t err = kcom_bufio_write(io, msg, SIZE + 100, sizeof(msg), &put);
	if (has(CAP_GROWS)) {
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_uint_eq(put, sizeof(msg));
		ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
		ck_assert_uint_eq(size, SIZE + 100 + sizeof(msg));
		uint8_t *all = contract_snapshot(io, &size);
		for (size_t i = 0; i < SIZE; i++)
			ck_assert_uint_eq(all[i], contract_pattern(i));
		for (size_t i = SIZE; i < SIZE + 100; i++)
			ck_assert_uint_eq(all[i], 0); /* the gap reads as zeros */
		ck_assert_mem_eq(all + SIZE + 100, msg, sizeof(msg));
		free(all);
	} else {
		/* Cannot grow: nothing fits past the end, so an error, and nothing changed. */
		ck_assert(KCOM_FAILED(err));
		ck_assert_uint_eq(put, 0);
		contract_assert_pattern(io, SIZE);
		/* Straddling the end: what fits is written, the count is short. */
		err = kcom_bufio_write(io, msg, SIZE - 4, sizeof(msg), &put);
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_uint_le(put, sizeof(msg));
		ck_assert_uint_ge(put, 4);
	}
	drop_object();
}
END_TEST

START_TEST(test_setsize)
{
	make_object(_i);
	size_t size;
	kcom_error_t err = kcom_bufio_setsize(io, SIZE / 2);
	if (has(CAP_FIXED)) {
		ck_assert_int_eq(err, KCOM_E_NOTIMPL);
		/* A fixed-size object. */
		ck_assert_int_eq(kcom_bufio_setsize(io, SIZE * 2), KCOM_E_NOTIMPL);
		contract_assert_pattern(io, SIZE);
		drop_object();
		return;
	}
	ck_assert_int_eq(err, KCOM_OK);
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, SIZE / 2);
	contract_assert_pattern(io, SIZE / 2);

	/* Growing again gives zeros, never the old bytes. */
	ck_assert_int_eq(kcom_bufio_setsize(io, SIZE), KCOM_OK);
	uint8_t *all = contract_snapshot(io, &size);
	ck_assert_uint_eq(size, SIZE);
	for (size_t i = SIZE / 2; i < SIZE; i++)
		ck_assert_uint_eq(all[i], 0);
	free(all);

	err = kcom_bufio_setsize(io, SIZE * 4);
	if (has(CAP_GROWS)) {
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
		ck_assert_uint_eq(size, SIZE * 4);
	} else {
		ck_assert_msg(err == KCOM_E_NOSPACE || err == KCOM_E_NOTIMPL, "fixed object grew: %s",
		              kcom_strerror(err));
		ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
		ck_assert_uint_eq(size, SIZE);
	}
	/* Past KCOM_OFF_MAX no byte could be addressed: refused, nothing changed. */
	const size_t huge[] = { (size_t)KCOM_OFF_MAX + 1, SIZE_MAX };
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(kcom_bufio_setsize(io, huge[i]), KCOM_E_INVALIDARG);
		ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
		ck_assert_uint_eq(size, has(CAP_GROWS) ? SIZE * 4 : SIZE);
	}
	ck_assert_int_eq(kcom_bufio_setsize(io, 0), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 0);
	drop_object();
}
END_TEST

/* ---- bufio: map/unmap ---- */

START_TEST(test_map)
{
	make_object(_i);
	void *addr = GARBAGE;
	kcom_error_t err = kcom_bufio_map(io, &addr, 10, 100);
	if (!has(CAP_MAPS)) {
		ck_assert_int_eq(err, KCOM_E_NOTIMPL);
		ck_assert_ptr_null(addr);
		drop_object();
		return;
	}
	ck_assert_int_eq(err, KCOM_OK);
	uint8_t *p = addr;
	for (size_t i = 0; i < 100; i++)
		ck_assert_uint_eq(p[i], contract_pattern(10 + i));

	/* Stores through the mapping are the object's bytes. */
	p[0] = 0x5a;
	uint8_t b;
	size_t got;
	ck_assert_int_eq(kcom_bufio_read(io, &b, 10, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, 0x5a);
	b = 0xa5;
	ck_assert_int_eq(kcom_bufio_write(io, &b, 11, 1, &got), KCOM_OK);
	ck_assert_uint_eq(p[1], 0xa5);

	/* Unmap takes exactly map's arguments; anything else changes nothing. */
	ck_assert_int_eq(kcom_bufio_unmap(io, p + 1, 10, 100), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_unmap(io, p, 11, 100), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_unmap(io, p, 10, 99), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_unmap(io, NULL, 10, 100), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(p[1], 0xa5);
	ck_assert_int_eq(kcom_bufio_unmap(io, p, 10, 100), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, p, 10, 100), KCOM_E_INVALIDARG); /* twice */

	/* Bad ranges. */
	addr = GARBAGE;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, SIZE - 10, 11), KCOM_E_RANGE);
	ck_assert_ptr_null(addr);
	ck_assert_int_eq(kcom_bufio_map(io, &addr, SIZE + 1, 0), KCOM_E_RANGE);
	ck_assert_int_eq(kcom_bufio_map(io, &addr, -1, 1), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_map(io, &addr, KCOM_OFF_MAX, 2), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_map(io, NULL, 0, 1), KCOM_E_INVALIDARG);

	/*
	 * A mapping of nothing names where byte off is (bufio.h), or just past the last at the
	 * end.  It holds no byte in place, so the byte is mapped first (on shared storage that
	 * mapping makes it private: it moves).
	 */
	static const kcom_off_t zero_at[] = { 0, 100, SIZE - 1, SIZE };
	for (size_t k = 0; k < sizeof(zero_at) / sizeof(zero_at[0]); k++) {
		kcom_off_t at = zero_at[k], byte = at < SIZE ? at : SIZE - 1;
		void *none, *one;
		ck_assert_int_eq(kcom_bufio_map(io, &one, byte, 1), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_map(io, &none, at, 0), KCOM_OK);
		ck_assert_ptr_eq(none, (uint8_t *)one + (at - byte));
		ck_assert_int_eq(kcom_bufio_unmap(io, one, byte, 1), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_unmap(io, none, at, 0), KCOM_OK);
	}
	drop_object();
}
END_TEST

/* A mapping holds a reference: the object outlives its last caller reference. */
START_TEST(test_map_holds_reference)
{
	make_object(_i);
	void *addr;
	kcom_error_t err = kcom_bufio_map(io, &addr, 0, SIZE);
	if (!has(CAP_MAPS)) {
		ck_assert_int_eq(err, KCOM_E_NOTIMPL);
		drop_object();
		return;
	}
	ck_assert_int_eq(err, KCOM_OK);
	ck_assert_uint_eq(contract_refs(io), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1); /* the caller's reference is gone */
	uint8_t *p = addr;
	ck_assert_uint_eq(p[SIZE - 1], contract_pattern(SIZE - 1));
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 0, SIZE), KCOM_OK); /* frees it */
	io = NULL;
	teardown_row();
}
END_TEST

/* While mapped the size is frozen and memory does not move. */
START_TEST(test_map_freezes_size)
{
	make_object(_i);
	void *addr;
	if (KCOM_FAILED(kcom_bufio_map(io, &addr, 0, 16))) {
		drop_object();
		return;
	}
	size_t put = 99, size;
	/* A fixed-size object may say so instead of busy. */
	kcom_error_t err = kcom_bufio_setsize(io, SIZE * 8);
	ck_assert(err == KCOM_E_BUSY || (!has(CAP_GROWS) && (err == KCOM_E_NOTIMPL || err == KCOM_E_NOSPACE)));
	err = kcom_bufio_setsize(io, 4);
	ck_assert(err == KCOM_E_BUSY || (!has(CAP_GROWS) && err == KCOM_E_NOTIMPL));
	err = kcom_bufio_write(io, "x", SIZE + 1000, 1, &put);
	ck_assert(err == KCOM_E_BUSY || (!has(CAP_GROWS) && err == KCOM_E_NOSPACE));
	ck_assert_uint_eq(put, 0);
	/* Straddling the end: what fits below the frozen size goes in. */
	ck_assert_int_eq(kcom_bufio_write(io, "abcdefgh", SIZE - 2, 8, &put), KCOM_OK);
	ck_assert_uint_eq(put, 2);
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, SIZE);
	void *again;
	ck_assert_int_eq(kcom_bufio_map(io, &again, 0, 16), KCOM_OK);
	ck_assert_ptr_eq(again, addr);
	ck_assert_int_eq(kcom_bufio_unmap(io, again, 0, 16), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 0, 16), KCOM_OK);
	err = kcom_bufio_setsize(io, 4);
	ck_assert(err == KCOM_OK || (!has(CAP_GROWS) && err == KCOM_E_NOTIMPL));
	drop_object();
}
END_TEST

/* ---- bufio: wire/unwire ---- */

START_TEST(test_wire)
{
	if (!make_object_for(_i, has_row_cap(_i, CAP_WIRES) ? CAP_WIRES : 0, "wire"))
		return;
	kcom_phys_t phys = 12345;
	kcom_error_t err = kcom_bufio_wire(io, &phys, 0, 64);
	if (has(CAP_WIRES)) {
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_uint_eq(contract_refs(io), 2); /* the wiring holds a reference */
		ck_assert_int_eq(kcom_bufio_unwire(io, phys + 1, 0, 64), KCOM_E_INVALIDARG);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 63), KCOM_E_INVALIDARG);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 64), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 64), KCOM_E_INVALIDARG); /* twice */
	} else {
		ck_assert_int_eq(err, KCOM_E_NOTIMPL);
		ck_assert_uint_eq(phys, 0);
	}
	/* An unwire that matches no wiring. */
	ck_assert_int_eq(kcom_bufio_unwire(io, 0x1000, 0, 64), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_wire(io, NULL, 0, 64), KCOM_E_INVALIDARG);
	/* The range rules come first, whatever the object can do (bufio.h); not the doubles'. */
	if (!has(CAP_DOUBLE)) {
		ck_assert_int_eq(kcom_bufio_wire(io, &phys, SIZE - 10, 11), KCOM_E_RANGE);
		ck_assert_uint_eq(phys, 0);
		ck_assert_int_eq(kcom_bufio_wire(io, &phys, -1, 1), KCOM_E_INVALIDARG);
	}
	contract_assert_pattern(io, SIZE);
	drop_object();
}
END_TEST

/* ---- bufio: copy ---- */

START_TEST(test_copy_isolation)
{
	make_object(_i);
	kcom_bufio_t *copy = GARBAGE;
	kcom_error_t err = kcom_bufio_copy(io, 100, 200, &copy);
	if (!has(CAP_COPIES)) {
		ck_assert_int_eq(err, KCOM_E_NOTIMPL);
		ck_assert_ptr_null(copy);
		drop_object();
		return;
	}
	ck_assert_int_eq(err, KCOM_OK);
	size_t size, got;
	ck_assert_int_eq(kcom_bufio_getsize(copy, &size), KCOM_OK);
	ck_assert_uint_eq(size, 200);
	uint8_t buf[200];
	ck_assert_int_eq(kcom_bufio_read(copy, buf, 0, 200, &got), KCOM_OK);
	for (size_t i = 0; i < 200; i++)
		ck_assert_uint_eq(buf[i], contract_pattern(100 + i));

	/* A write to either side is never seen by the other. */
	ck_assert_int_eq(kcom_bufio_write(copy, "COPY", 0, 4, &got), KCOM_OK);
	contract_assert_pattern(io, SIZE);
	ck_assert_int_eq(kcom_bufio_write(io, "ORIG", 104, 4, &got), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(copy, buf, 0, 8, &got), KCOM_OK);
	ck_assert_mem_eq(buf, "COPY", 4);
	ck_assert_uint_eq(buf[4], contract_pattern(104));

	/* Through a mapping too. */
	void *addr;
	if (KCOM_SUCCEEDED(kcom_bufio_map(io, &addr, 100, 10))) {
		memset(addr, 0xee, 10);
		ck_assert_int_eq(kcom_bufio_unmap(io, addr, 100, 10), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_read(copy, buf, 0, 10, &got), KCOM_OK);
		ck_assert_mem_eq(buf, "COPY", 4);
		ck_assert_uint_eq(buf[5], contract_pattern(105));
	}

	/* Truncating and regrowing the original zero-fills it, not the copy (a fixed-size
	 * object has no setsize: its copy must still pass the rest). */
	if (!has(CAP_FIXED)) {
		ck_assert_int_eq(kcom_bufio_setsize(io, 0), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_setsize(io, SIZE), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_read(copy, buf, 0, 200, &got), KCOM_OK);
		ck_assert_uint_eq(buf[199], contract_pattern(299));
	}

	/* The copy outlives the original. */
	drop_object();
	ck_assert_int_eq(kcom_bufio_read(copy, buf, 0, 200, &got), KCOM_OK);
	ck_assert_uint_eq(got, 200);
	ck_assert_uint_eq(buf[150], contract_pattern(250));
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
}
END_TEST

START_TEST(test_copy_bad_args)
{
	make_object(_i);
	kcom_bufio_t *copy = GARBAGE;
	kcom_error_t err = kcom_bufio_copy(io, SIZE - 10, 11, &copy);
	ck_assert_int_eq(err, has(CAP_COPIES) ? KCOM_E_RANGE : KCOM_E_NOTIMPL);
	ck_assert_ptr_null(copy);
	copy = GARBAGE;
	err = kcom_bufio_copy(io, -5, 1, &copy);
	ck_assert_int_eq(err, has(CAP_COPIES) ? KCOM_E_INVALIDARG : KCOM_E_NOTIMPL);
	ck_assert_ptr_null(copy);
	err = kcom_bufio_copy(io, 0, 1, NULL);
	ck_assert(err == KCOM_E_INVALIDARG || (!has(CAP_COPIES) && err == KCOM_E_NOTIMPL));
	contract_assert_pattern(io, SIZE);

	/* A copy of a copy, and an empty copy at the end. */
	kcom_bufio_t *c1, *c2;
	if (KCOM_SUCCEEDED(kcom_bufio_copy(io, 0, SIZE, &c1))) {
		ck_assert_int_eq(kcom_bufio_copy(c1, 0, SIZE, &c2), KCOM_OK);
		contract_assert_pattern(c2, SIZE);
		kcom_bufio_release(c1);
		contract_assert_pattern(c2, SIZE);
		kcom_bufio_release(c2);
		ck_assert_int_eq(kcom_bufio_copy(io, SIZE, 0, &c1), KCOM_OK);
		contract_assert_pattern(c1, 0);
		kcom_bufio_release(c1);
	}
	drop_object();
}
END_TEST

/*
 * An object and its copy, sharing storage, each written, read back and (where the row maps)
 * mapped and written through the mapping by its own thread, at once; then each thread drops
 * its object while the other may still be working.  Neither ever sees the other's bytes.
 */
struct writer {
	kcom_bufio_t *io;
	uint8_t value;
	int rounds;
	int maps;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[SIZE], back[SIZE];
	memset(buf, w->value, sizeof(buf));
	const char *bad = NULL;
	for (int r = 0; r < w->rounds && bad == NULL; r++) {
		size_t put, got, off = (size_t)(r * 37) % SIZE;
		if (KCOM_FAILED(kcom_bufio_write(w->io, buf, (kcom_off_t)off, SIZE - off, &put)) || put != SIZE - off)
			bad = "write";
		else if (KCOM_FAILED(kcom_bufio_read(w->io, back, 0, SIZE, &got)) || got != SIZE ||
		         memcmp(back + off, buf, SIZE - off) != 0)
			bad = "read back";
		void *addr;
		if (bad == NULL && w->maps) {
			if (KCOM_FAILED(kcom_bufio_map(w->io, &addr, (kcom_off_t)(off / 2), SIZE - off / 2)))
				bad = "map";
			else {
				unsigned char *p = addr;
				p[0] = w->value;
				if (memcmp(p + (off - off / 2), buf, SIZE - off) != 0)
					bad = "bytes through the mapping";
				if (KCOM_FAILED(kcom_bufio_unmap(w->io, addr, (kcom_off_t)(off / 2), SIZE - off / 2)))
					bad = "unmap";
			}
		}
	}
	kcom_bufio_release(w->io); /* this thread's reference, dropped while the other works */
	return (void *)bad;
}

START_TEST(test_copy_threads)
{
	for (int round = 0; round < 50; round++) {
		make_object(_i);
		kcom_bufio_t *copy;
		kcom_error_t err = kcom_bufio_copy(io, 0, SIZE, &copy);
		if (!has(CAP_COPIES)) {
			ck_assert_int_eq(err, KCOM_E_NOTIMPL);
			drop_object();
			return;
		}
		ck_assert_int_eq(err, KCOM_OK);
		int maps = has(CAP_MAPS);
		struct writer a = { io, 0x11, 40, maps }, b = { copy, 0x22, 40, maps };
		kcom_bufio_addref(io);
		kcom_bufio_addref(copy);
		pthread_t ta, tb;
		void *ra, *rb;
		pthread_create(&ta, NULL, writer_main, &a);
		pthread_create(&tb, NULL, writer_main, &b);
		pthread_join(ta, &ra);
		pthread_join(tb, &rb);
		ck_assert_msg(ra == NULL, "the object's thread: %s", (const char *)ra);
		ck_assert_msg(rb == NULL, "the copy's thread: %s", (const char *)rb);
		size_t size;
		uint8_t *x = contract_snapshot(io, &size);
		uint8_t *y = contract_snapshot(copy, &size);
		for (size_t i = 0; i < SIZE; i++) {
			ck_assert_uint_eq(x[i], 0x11);
			ck_assert_uint_eq(y[i], 0x22);
		}
		free(x);
		free(y);
		contract_assert_sane(&contract_impls[_i], io);
		contract_assert_sane(&contract_impls[_i], copy);
		ck_assert_uint_eq(kcom_bufio_release(copy), 0);
		drop_object();
	}
}
END_TEST

/* ---- bufvec ---- */

START_TEST(test_bufvec)
{
	make_object(_i);
	kcom_bufvec_t *vec;
	kcom_error_t qerr = kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec);
	if (!has(CAP_BUFVEC)) {
		ck_assert_int_eq(qerr, KCOM_E_NOINTERFACE);
		drop_object();
		return;
	}
	ck_assert_int_eq(qerr, KCOM_OK);
	struct kcom_iovec iov[64];
	size_t count = 99;

	/* Too small an array: the count needed, nothing mapped. */
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, SIZE, KCOM_MAP_READ, iov, 0, &count), KCOM_E_TOOSMALL);
	ck_assert_uint_ge(count, 1);

	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 5, SIZE - 10, KCOM_MAP_READ, iov, 64, &count), KCOM_OK);
	size_t at = 5;
	for (size_t k = 0; k < count; k++) {
		const uint8_t *p = iov[k].base;
		for (size_t j = 0; j < iov[k].len; j++, at++)
			ck_assert_uint_eq(p[j], contract_pattern(at));
	}
	ck_assert_uint_eq(at, SIZE - 5);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 5, SIZE - 9, KCOM_MAP_READ, iov, count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 5, SIZE - 10, KCOM_MAP_WRITE, iov, count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 5, SIZE - 10, KCOM_MAP_READ, iov, count), KCOM_OK);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 5, SIZE - 10, KCOM_MAP_READ, iov, count), KCOM_E_INVALIDARG);

	/* A writable vector mapping writes the object. */
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, 8, KCOM_MAP_READ | KCOM_MAP_WRITE, iov, 64, &count), KCOM_OK);
	((uint8_t *)iov[0].base)[0] = 0x77;
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, 8, KCOM_MAP_READ | KCOM_MAP_WRITE, iov, count), KCOM_OK);
	uint8_t b;
	size_t got;
	ck_assert_int_eq(kcom_bufio_read(io, &b, 0, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, 0x77);

	/* Bad arguments. */
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, SIZE + 1, KCOM_MAP_READ, iov, 64, &count), KCOM_E_RANGE);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, -1, 1, KCOM_MAP_READ, iov, 64, &count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, 1, 0, iov, 64, &count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, 1, 0x80, iov, 64, &count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, 1, KCOM_MAP_READ, NULL, 64, &count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, 1, KCOM_MAP_READ, iov, 64, NULL), KCOM_E_INVALIDARG);

	/* wire_vec: segments covering the range where the row wires (and the host lets it), a
	 * refusal where it never does; an unmatched unwire_vec is refused.  A range outside the
	 * object is KCOM_E_RANGE first, whatever the row can do. */
	struct kcom_physseg segs[64];
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, SIZE + 1, segs, 64, &count), KCOM_E_RANGE);
	ck_assert_uint_eq(count, 0);
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 1, NULL, 64, &count), KCOM_E_INVALIDARG);
	kcom_error_t err = kcom_bufvec_wire_vec(vec, 0, SIZE, segs, 64, &count);
	if (!has(CAP_WIRES)) {
		ck_assert_int_eq(err, KCOM_E_NOTIMPL);
		ck_assert_uint_eq(count, 0);
	} else if (contract_available(impl, CAP_WIRES, "bufvec wire_vec")) {
		ck_assert_int_eq(err, KCOM_OK);
		size_t total = 0;
		for (size_t k = 0; k < count; k++)
			total += segs[k].len;
		ck_assert_uint_eq(total, SIZE);
		ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, SIZE - 1, segs, count), KCOM_E_INVALIDARG);
		ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, SIZE, segs, count), KCOM_OK);
	}
	segs[0].addr = 0x1000;
	segs[0].len = SIZE;
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, SIZE, segs, 1), KCOM_E_INVALIDARG);

	kcom_bufvec_release(vec);
	drop_object();
}
END_TEST

/* A read-only vector mapping of one side does not let the other side's writes through. */
START_TEST(test_bufvec_readonly_keeps_cow)
{
	make_object(_i);
	kcom_bufvec_t *vec;
	kcom_bufio_t *copy;
	if (!has(CAP_BUFVEC) || !has(CAP_COPIES)) {
		drop_object(); /* refusals are tested by bufvec and copy */
		return;
	}
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_copy(io, 0, SIZE, &copy), KCOM_OK);
	struct kcom_iovec iov[64];
	size_t count, put;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, SIZE, KCOM_MAP_READ, iov, 64, &count), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(copy, "zzzz", 0, 4, &put), KCOM_OK);
	ck_assert_uint_eq(((uint8_t *)iov[0].base)[0], contract_pattern(0));
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, SIZE, KCOM_MAP_READ, iov, count), KCOM_OK);
	contract_assert_pattern(io, SIZE);
	kcom_bufio_release(copy);
	kcom_bufvec_release(vec);
	drop_object();
}
END_TEST

/* ---- buffer info ---- */

/*
 * Every real buffer answers bufinfo; its size is getsize's, its name round-trips, and its
 * natives are exactly the row's capabilities (the class description and the row agree).
 */
START_TEST(test_bufinfo)
{
	make_object(_i);
	kcom_bufinfo_t *bi;
	kcom_error_t err = kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi);
	if (has(CAP_DOUBLE)) {
		ck_assert_int_eq(err, KCOM_E_NOINTERFACE); /* test doubles have no kit */
		drop_object();
		return;
	}
	ck_assert_int_eq(err, KCOM_OK);
	struct kcom_buffer_info info;
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_uint_eq(info.size, SIZE);
	ck_assert_uint_eq(!!(info.natives & KCOM_NATIVE_MAP), has(CAP_MAPS));
	ck_assert_uint_eq(!!(info.natives & KCOM_NATIVE_COPY), has(CAP_COPIES));
	ck_assert_uint_eq(!!(info.natives & KCOM_NATIVE_BUFVEC), has(CAP_BUFVEC));
	if (contract_available(impl, has(CAP_WIRES) ? CAP_WIRES : 0, "bufinfo natives"))
		ck_assert_uint_eq(!!(info.natives & KCOM_NATIVE_WIRE), has(CAP_WIRES));
	ck_assert_uint_eq(!!(info.flags & KCOM_BUFINFO_RESIZABLE), has(CAP_GROWS));

	ck_assert_int_eq(kcom_bufinfo_set_name(bi, "rx ring"), KCOM_OK);
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_str_eq(info.name, "rx ring");
	/* A long name is cut, never overflows. */
	ck_assert_int_eq(kcom_bufinfo_set_name(bi, "a name much longer than thirty-one bytes, cut"), KCOM_OK);
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_uint_eq(strlen(info.name), KCOM_BUFINFO_NAME_MAX - 1);
	ck_assert_int_eq(kcom_bufinfo_set_name(bi, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufinfo_get(bi, NULL), KCOM_E_INVALIDARG);

	/* The same identity. */
	void *unk, *unk2;
	ck_assert_int_eq(kcom_bufinfo_query(bi, &kcom_iunknown_iid, &unk), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_iunknown_iid, &unk2), KCOM_OK);
	ck_assert_ptr_eq(unk, unk2);
	kcom_iunknown_release(unk);
	kcom_iunknown_release(unk2);
	kcom_bufinfo_release(bi);
	drop_object();
}
END_TEST

/*
 * Read-only mappings are reads: threads map and unmap ranges of one object (nobody changes
 * it) and read at once, each seeing the pattern; afterwards no mapping is left and the
 * references are as before.  (The mapping ledger once changed without a lock: lost holds,
 * double frees.)  The calls in the threads go around the sanity-checking wrappers, whose
 * checks assume no other thread is inside the object.
 */
struct vec_reader {
	kcom_bufvec_t *vec;
	kcom_bufio_t *io;
	unsigned seed;
};

static void *vec_reader_main(void *arg)
{
	struct vec_reader *r = arg;
	struct kcom_iovec iov[64];
	for (int k = 0; k < 2000; k++) {
		size_t off = (r->seed + (size_t)k * 131) % SIZE, n = 1 + (size_t)k * 17 % (SIZE - off);
		size_t count;
		if ((kcom_bufvec_map_vec)(r->vec, (kcom_off_t)off, n, KCOM_MAP_READ, iov, 64, &count) != KCOM_OK)
			return "map_vec";
		size_t at = off;
		for (size_t i = 0; i < count; i++) {
			if (((const uint8_t *)iov[i].base)[0] != contract_pattern(at))
				return "bytes through the mapping";
			at += iov[i].len;
		}
		if (at != off + n)
			return "pieces do not cover the range";
		uint8_t b;
		size_t got;
		if ((kcom_bufio_read)(r->io, &b, (kcom_off_t)at - 1, 1, &got) != KCOM_OK || b != contract_pattern(at - 1))
			return "read";
		if ((kcom_bufvec_unmap_vec)(r->vec, (kcom_off_t)off, n, KCOM_MAP_READ, iov, count) != KCOM_OK)
			return "unmap_vec";
	}
	return NULL;
}

START_TEST(test_bufvec_readers)
{
	make_object(_i);
	kcom_bufvec_t *vec;
	if (!has(CAP_BUFVEC)) {
		drop_object();
		return;
	}
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	uint32_t refs = contract_refs(io);
	struct vec_reader r[2] = { { vec, io, 0 }, { vec, io, 500 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, vec_reader_main, &r[i]), 0);
	for (int i = 0; i < 2; i++) {
		void *ret;
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_msg(ret == NULL, "reader %d: %s", i, (const char *)ret);
	}
	ck_assert_uint_eq(contract_refs(io), refs);
	contract_assert_sane(&contract_impls[_i], io);
	contract_assert_pattern(io, SIZE);
	kcom_bufvec_release(vec);
	drop_object();
}
END_TEST

Suite *contract_suite(void)
{
	Suite *s = suite_create("contract");
	struct {
		const char *name;
		const TTest *test;
	} tests[] = {
		{ "query", test_query_rules },
		{ "refcounts", test_refcounts },
		{ "read", test_read_ranges },
		{ "io_bad_args", test_io_bad_args },
		{ "write_inside", test_write_inside },
		{ "write_past_end", test_write_past_end },
		{ "setsize", test_setsize },
		{ "map", test_map },
		{ "map_reference", test_map_holds_reference },
		{ "map_freezes_size", test_map_freezes_size },
		{ "wire", test_wire },
		{ "copy", test_copy_isolation },
		{ "copy_bad_args", test_copy_bad_args },
		{ "copy_threads", test_copy_threads },
		{ "bufvec", test_bufvec },
		{ "bufvec_cow", test_bufvec_readonly_keeps_cow },
		{ "bufvec_readers", test_bufvec_readers },
		{ "bufinfo", test_bufinfo },
	};
	for (size_t t = 0; t < sizeof(tests) / sizeof(tests[0]); t++) {
		TCase *tc = tcase_create(tests[t].name);
		/* The tag lets a run leave the suite out (tests/check-others.test). */
		tcase_set_tags(tc, "contract");
		tcase_set_timeout(tc, 120);
		tcase_add_loop_test(tc, tests[t].test, 0, (int)contract_nimpls);
		suite_add_tcase(s, tc);
	}
	return s;
}
