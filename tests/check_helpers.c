/*
 * The shared fallback of bufio/helpers.h: views, range copy and duplicate, each over an object
 * that maps (membuf) and over test doubles that only read and write.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <bufio/helpers.h>
#include <com/com.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/plainio.h"
#include "tests/suites.h"
#include "tests/testenv.h"

#define N 5000u

static kcom_bufio_t *membuf_with_pattern(size_t size)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_membuf_create(size, &io), KCOM_OK);
	void *p;
	ck_assert_int_eq(kcom_bufio_map(io, &p, 0, size), KCOM_OK);
	for (size_t i = 0; i < size; i++)
		((uint8_t *)p)[i] = contract_pattern(i);
	ck_assert_int_eq(kcom_bufio_unmap(io, p, 0, size), KCOM_OK);
	return io;
}

static kcom_absio_t *plain_with_pattern(size_t size, unsigned flags)
{
	kcom_absio_t *io;
	ck_assert_int_eq(plainio_create(size, flags, &io), KCOM_OK);
	uint8_t *buf = malloc(size);
	for (size_t i = 0; i < size; i++)
		buf[i] = contract_pattern(i);
	size_t put;
	ck_assert_int_eq(kcom_absio_write(io, buf, 0, size, &put), KCOM_OK);
	ck_assert_uint_eq(put, size);
	free(buf);
	return io;
}

static void assert_pattern_at(kcom_absio_t *io, kcom_off_t off, size_t n, size_t pattern_start)
{
	uint8_t *buf = malloc(n + 1);
	size_t got;
	ck_assert_int_eq(kcom_absio_read(io, buf, off, n, &got), KCOM_OK);
	ck_assert_uint_eq(got, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(buf[i], contract_pattern(pattern_start + i));
	free(buf);
}

/* ---- views ---- */

START_TEST(test_view_maps_when_it_can)
{
	kcom_bufio_t *io = membuf_with_pattern(N);
	struct kcom_view v;
	ck_assert_int_eq(kcom_view_acquire(&v, kcom_bufio_absio(io), 100, 50, KCOM_VIEW_READ | KCOM_VIEW_WRITE), KCOM_OK);
	ck_assert_int_eq(kcom_view_direct(&v), 1);
	ck_assert_uint_eq(v.len, 50);
	ck_assert_uint_eq(((uint8_t *)v.addr)[0], contract_pattern(100));
	((uint8_t *)v.addr)[0] = 0xfe;
	ck_assert_int_eq(kcom_view_release(&v), KCOM_OK);
	ck_assert_ptr_null(v.addr);
	uint8_t b;
	size_t got;
	ck_assert_int_eq(kcom_bufio_read(io, &b, 100, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, 0xfe);
	ck_assert_uint_eq(contract_refs(io), 1); /* the view's references are gone */
	ck_assert_int_eq(kcom_view_release(&v), KCOM_E_INVALIDARG); /* twice */
	kcom_bufio_release(io);
}
END_TEST

/* A read-only view of a copy-on-write copy costs no copy of the storage. */
START_TEST(test_view_readonly_keeps_sharing)
{
	kcom_bufio_t *io = membuf_with_pattern(N), *copy;
	testenv_install();
	ck_assert_int_eq(kcom_bufio_copy(io, 0, N, &copy), KCOM_OK);
	long long before = testenv_bytes_outstanding();
	struct kcom_view v;
	ck_assert_int_eq(kcom_view_acquire(&v, kcom_bufio_absio(copy), 0, N, KCOM_VIEW_READ), KCOM_OK);
	ck_assert_int_eq(kcom_view_direct(&v), 1);
	ck_assert_int_lt(testenv_bytes_outstanding() - before, N); /* a mapping record, no storage */
	ck_assert_uint_eq(((uint8_t *)v.addr)[N - 1], contract_pattern(N - 1));
	ck_assert_int_eq(kcom_view_release(&v), KCOM_OK);
	kcom_bufio_release(copy);
	testenv_uninstall();
	kcom_bufio_release(io);
}
END_TEST

START_TEST(test_view_bounces_otherwise)
{
	unsigned flags = _i ? PLAINIO_BUFIO : 0; /* a bare absio, and a bufio whose map says NOTIMPL */
	kcom_absio_t *io = plain_with_pattern(N, flags);
	struct kcom_view v;
	ck_assert_int_eq(kcom_view_acquire(&v, io, 10, 20, KCOM_VIEW_READ | KCOM_VIEW_WRITE), KCOM_OK);
	ck_assert_int_eq(kcom_view_direct(&v), 0);
	ck_assert_uint_eq(((uint8_t *)v.addr)[0], contract_pattern(10));
	ck_assert_uint_eq(((uint8_t *)v.addr)[19], contract_pattern(29));
	memset(v.addr, 0x42, 20);
	ck_assert_int_eq(kcom_view_release(&v), KCOM_OK); /* written back */
	uint8_t buf[22];
	size_t got;
	ck_assert_int_eq(kcom_absio_read(io, buf, 9, 22, &got), KCOM_OK);
	ck_assert_uint_eq(buf[0], contract_pattern(9));
	for (int i = 1; i <= 20; i++)
		ck_assert_uint_eq(buf[i], 0x42);
	ck_assert_uint_eq(buf[21], contract_pattern(30));

	/* Read-only: never written back, even if the caller scribbles. */
	unsigned long calls = plainio_calls(io);
	ck_assert_int_eq(kcom_view_acquire(&v, io, 0, 8, KCOM_VIEW_READ), KCOM_OK);
	memset(v.addr, 0, 8);
	ck_assert_int_eq(kcom_view_release(&v), KCOM_OK);
	ck_assert_uint_eq(plainio_calls(io), calls + 1); /* the one read */
	assert_pattern_at(io, 0, 8, 0);

	/* Write-only: starts zeroed, nothing read. */
	calls = plainio_calls(io);
	ck_assert_int_eq(kcom_view_acquire(&v, io, 0, 8, KCOM_VIEW_WRITE), KCOM_OK);
	ck_assert_uint_eq(plainio_calls(io), calls);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(((uint8_t *)v.addr)[i], 0);
	kcom_view_abort(&v); /* nothing written */
	ck_assert_ptr_null(v.addr);
	assert_pattern_at(io, 0, 8, 0);
	kcom_absio_release(io);
}
END_TEST

START_TEST(test_view_bad_args)
{
	kcom_absio_t *io = plain_with_pattern(100, 0);
	struct kcom_view v;
	ck_assert_int_eq(kcom_view_acquire(&v, io, 90, 11, KCOM_VIEW_READ), KCOM_E_RANGE);
	ck_assert_ptr_null(v.addr);
	ck_assert_ptr_null(v.addr);
	ck_assert_int_eq(kcom_view_acquire(&v, io, -1, 1, KCOM_VIEW_READ), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_view_acquire(&v, io, 0, 1, 0), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_view_acquire(&v, io, 0, 1, 0x10), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_view_acquire(&v, NULL, 0, 1, KCOM_VIEW_READ), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_view_acquire(NULL, io, 0, 1, KCOM_VIEW_READ), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_view_release(NULL), KCOM_E_INVALIDARG);
	kcom_view_abort(NULL);
	ck_assert_uint_eq(kcom_absio_release(io), 0);
}
END_TEST

/* A failed write-back keeps the view, so nothing the caller wrote is lost. */
START_TEST(test_view_writeback_failure)
{
	kcom_absio_t *io = plain_with_pattern(100, 0);
	struct kcom_view v;
	ck_assert_int_eq(kcom_view_acquire(&v, io, 0, 10, KCOM_VIEW_WRITE), KCOM_OK);
	memset(v.addr, 0x33, 10);
	plainio_fail_writes(io, 1);
	ck_assert_int_eq(kcom_view_release(&v), KCOM_E_FAIL);
	ck_assert_ptr_nonnull(v.addr);
	ck_assert_uint_eq(((uint8_t *)v.addr)[9], 0x33);
	plainio_fail_writes(io, 0);
	ck_assert_int_eq(kcom_view_release(&v), KCOM_OK);
	uint8_t b;
	size_t got;
	ck_assert_int_eq(kcom_absio_read(io, &b, 9, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, 0x33);
	ck_assert_uint_eq(kcom_absio_release(io), 0);
}
END_TEST

/* A source whose reads fail: a readable view cannot be filled, and nothing is held. */
START_TEST(test_view_read_failure)
{
	kcom_absio_t *io = plain_with_pattern(100, _i ? PLAINIO_BUFIO : 0);
	plainio_fail_reads(io, 1);
	struct kcom_view v;
	ck_assert_int_eq(kcom_view_acquire(&v, io, 10, 20, KCOM_VIEW_READ), KCOM_E_FAIL);
	ck_assert_ptr_null(v.addr);
	ck_assert_int_eq(kcom_view_direct(&v), 0);
	ck_assert_int_eq(kcom_view_release(&v), KCOM_E_INVALIDARG); /* there is no view */
	/* A write-only view reads nothing, so it can still be had. */
	ck_assert_int_eq(kcom_view_acquire(&v, io, 10, 20, KCOM_VIEW_WRITE), KCOM_OK);
	ck_assert_int_eq(kcom_view_direct(&v), 0);
	kcom_view_abort(&v);
	ck_assert_int_eq(kcom_view_direct(&v), 0);
	ck_assert_uint_eq(kcom_absio_release(io), 0); /* the failed view took no reference */
}
END_TEST

/* ---- range copy ---- */

/* Source and destination kinds: 0 membuf (maps), 1 bare absio, 2 bufio without optional methods. */
static kcom_absio_t *make_kind(int kind, size_t size)
{
	if (kind == 0)
		return kcom_bufio_absio(membuf_with_pattern(size));
	return plain_with_pattern(size, kind == 2 ? PLAINIO_BUFIO : 0);
}

START_TEST(test_copy_range_all_pairs)
{
	int src_kind = _i / 3, dst_kind = _i % 3;
	const size_t big = 200000; /* more than one bounce chunk */
	kcom_absio_t *src = make_kind(src_kind, big);
	kcom_absio_t *dst = make_kind(dst_kind, 1000);
	size_t done = 99;

	/* Inside the destination. */
	ck_assert_int_eq(kcom_absio_copy_range(dst, 10, src, 500, 300, &done), KCOM_OK);
	ck_assert_uint_eq(done, 300);
	assert_pattern_at(dst, 10, 300, 500);
	assert_pattern_at(dst, 0, 10, 0);
	assert_pattern_at(dst, 310, 690, 310);

	/* Growing the destination, across many chunks. */
	ck_assert_int_eq(kcom_absio_copy_range(dst, 1000, src, 1, big - 1, &done), KCOM_OK);
	ck_assert_uint_eq(done, big - 1);
	assert_pattern_at(dst, 1000, big - 1, 1);

	/* A short source gives a short copy; past its end, nothing. */
	ck_assert_int_eq(kcom_absio_copy_range(dst, 0, src, big - 5, 100, &done), KCOM_OK);
	ck_assert_uint_eq(done, 5);
	ck_assert_int_eq(kcom_absio_copy_range(dst, 0, src, big + 5, 100, &done), KCOM_OK);
	ck_assert_uint_eq(done, 0);

	kcom_absio_release(src);
	kcom_absio_release(dst);
}
END_TEST

/* One object on both sides copies as memmove does, in both directions. */
START_TEST(test_copy_range_overlap)
{
	const size_t size = 300000;
	kcom_absio_t *io = make_kind(_i, size);
	uint8_t *expect = malloc(size);
	for (size_t i = 0; i < size; i++)
		expect[i] = contract_pattern(i);
	size_t done;

	ck_assert_int_eq(kcom_absio_copy_range(io, 1000, io, 0, 150000, &done), KCOM_OK);
	ck_assert_uint_eq(done, 150000);
	memmove(expect + 1000, expect, 150000);
	ck_assert_int_eq(kcom_absio_copy_range(io, 7, io, 70007, 100000, &done), KCOM_OK);
	memmove(expect + 7, expect + 70007, 100000);

	uint8_t *now = malloc(size);
	ck_assert_int_eq(kcom_absio_read(io, now, 0, size, &done), KCOM_OK);
	ck_assert_uint_eq(done, size);
	ck_assert_mem_eq(now, expect, size);
	free(now);
	free(expect);
	kcom_absio_release(io);
}
END_TEST

/* A destination that cannot grow takes what fits: a short count. */
START_TEST(test_copy_range_fixed_dst)
{
	kcom_absio_t *src = make_kind(0, 1000);
	kcom_absio_t *dst = plain_with_pattern(100, PLAINIO_FIXED);
	size_t done;
	ck_assert_int_eq(kcom_absio_copy_range(dst, 50, src, 0, 1000, &done), KCOM_OK);
	ck_assert_uint_eq(done, 50);
	assert_pattern_at(dst, 50, 50, 0);
	kcom_absio_release(src);
	kcom_absio_release(dst);
}
END_TEST

/*
 * Two objects, a destination that cannot grow and ends on a bounce chunk's edge: the write
 * that would start at its end is refused (KCOM_E_NOSPACE, or KCOM_E_BUSY while mapped), and
 * the copy is short there, not failed; so is one that starts at or past the end.  Sources: a
 * membuf (written from its mapping) and a read/write-only double (bounced in chunks).
 * Destinations: a wrapping membuf, a membuf with a mapping outstanding, a fixed-size double.
 */
START_TEST(test_copy_range_dst_ends)
{
	int src_kind = _i / 3, dst_kind = _i % 3;
	const size_t size = 64u * 1024u, big = 200000;
	kcom_absio_t *src = src_kind == 0 ? kcom_bufio_absio(membuf_with_pattern(big)) : plain_with_pattern(big, 0);
	uint8_t *mem = calloc(1, size);
	kcom_bufio_t *mapped = NULL;
	void *addr = NULL;
	kcom_absio_t *dst;
	if (dst_kind == 0) {
		kcom_bufio_t *b;
		ck_assert_int_eq(kcom_membuf_wrap(mem, size, NULL, NULL, &b), KCOM_OK);
		dst = kcom_bufio_absio(b);
	} else if (dst_kind == 1) {
		ck_assert_int_eq(kcom_membuf_create(size, &mapped), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_map(mapped, &addr, 0, 16), KCOM_OK);
		dst = kcom_bufio_absio(mapped);
	} else {
		ck_assert_int_eq(plainio_create(size, PLAINIO_FIXED, &dst), KCOM_OK);
	}
	size_t done = 99;
	ck_assert_int_eq(kcom_absio_copy_range(dst, 0, src, 0, big, &done), KCOM_OK);
	ck_assert_uint_eq(done, size);
	assert_pattern_at(dst, 0, size, 0);
	const kcom_off_t at[] = { (kcom_off_t)size, (kcom_off_t)size + 10 };
	for (size_t i = 0; i < 2; i++) {
		done = 99;
		ck_assert_int_eq(kcom_absio_copy_range(dst, at[i], src, 5, 1000, &done), KCOM_OK);
		ck_assert_uint_eq(done, 0);
	}
	size_t now;
	ck_assert_int_eq(kcom_absio_getsize(dst, &now), KCOM_OK);
	ck_assert_uint_eq(now, size);
	assert_pattern_at(dst, 0, size, 0);
	if (mapped != NULL)
		ck_assert_int_eq(kcom_bufio_unmap(mapped, addr, 0, 16), KCOM_OK);
	ck_assert_uint_eq(kcom_absio_release(dst), 0);
	kcom_absio_release(src);
	free(mem);
}
END_TEST

/*
 * Regression (issue 5, defect 1): one object on both sides, the destination after the source,
 * more than one bounce chunk, and a destination that cannot grow.  The bytes that fit are
 * copied as memmove would, and the count says how many: always the first bytes of the range.
 * Kinds: 0 a wrapping membuf, 1 a membuf with a mapping outstanding, 2 a fixed-size double.
 */
START_TEST(test_copy_range_overlap_cannot_grow)
{
	const size_t size = 200000;
	uint8_t *mem = malloc(size);
	for (size_t i = 0; i < size; i++)
		mem[i] = contract_pattern(i);
	kcom_absio_t *io = NULL;
	kcom_bufio_t *mapped = NULL;
	void *addr = NULL;
	if (_i == 0) {
		kcom_bufio_t *b;
		ck_assert_int_eq(kcom_membuf_wrap(mem, size, NULL, NULL, &b), KCOM_OK);
		io = kcom_bufio_absio(b);
	} else if (_i == 1) {
		mapped = membuf_with_pattern(size);
		ck_assert_int_eq(kcom_bufio_map(mapped, &addr, 0, 16), KCOM_OK);
		io = kcom_bufio_absio(mapped);
	} else {
		io = plain_with_pattern(size, PLAINIO_FIXED);
	}
	uint8_t *expect = malloc(size);
	for (size_t i = 0; i < size; i++)
		expect[i] = contract_pattern(i);

	size_t done = 99;
	ck_assert_int_eq(kcom_absio_copy_range(io, 100000, io, 0, 150000, &done), KCOM_OK);
	ck_assert_uint_eq(done, 100000);
	memmove(expect + 100000, expect, 100000);

	uint8_t *now = malloc(size);
	size_t got;
	ck_assert_int_eq(kcom_absio_read(io, now, 0, size, &got), KCOM_OK);
	ck_assert_uint_eq(got, size);
	ck_assert_mem_eq(now, expect, size);

	/* The same past the end with a gap: the destination starts past the object's end. */
	done = 99;
	ck_assert_int_eq(kcom_absio_copy_range(io, (kcom_off_t)size + 10, io, 0, 1000, &done), KCOM_OK);
	ck_assert_uint_eq(done, 0);
	ck_assert_int_eq(kcom_absio_read(io, now, 0, size, &got), KCOM_OK);
	ck_assert_mem_eq(now, expect, size);

	free(now);
	free(expect);
	if (mapped != NULL)
		ck_assert_int_eq(kcom_bufio_unmap(mapped, addr, 0, 16), KCOM_OK);
	ck_assert_uint_eq(kcom_absio_release(io), 0);
	free(mem);
}
END_TEST

/* The same case on an object that can grow: everything is copied, the object grows. */
START_TEST(test_copy_range_overlap_grows)
{
	const size_t size = 200000;
	kcom_bufio_t *b = membuf_with_pattern(size);
	kcom_absio_t *io = kcom_bufio_absio(b);
	uint8_t *expect = malloc(250000);
	for (size_t i = 0; i < size; i++)
		expect[i] = contract_pattern(i);
	size_t done = 0;
	ck_assert_int_eq(kcom_absio_copy_range(io, 100000, io, 0, 150000, &done), KCOM_OK);
	ck_assert_uint_eq(done, 150000);
	memmove(expect + 100000, expect, 150000);
	assert_pattern_at(io, 0, 100000, 0);
	uint8_t *now = malloc(250000);
	size_t got;
	ck_assert_int_eq(kcom_absio_read(io, now, 0, 250000, &got), KCOM_OK);
	ck_assert_uint_eq(got, 250000);
	ck_assert_mem_eq(now, expect, 250000);
	free(now);
	free(expect);
	ck_assert_uint_eq(kcom_absio_release(io), 0);
}
END_TEST

/*
 * A copy within one object whose writes fail part way (the Nth allocation, swept): whatever
 * it returns, the object is the original with exactly the first `*out_copied` bytes of the
 * range copied, as the header promises.  Chains shared with a copy (so every write allocates;
 * 64-byte clusters for the small case, pages for the others) and a membuf; one copy that
 * overlaps forwards and runs past the end, one of 150000 bytes a little after its source
 * (several chunks, read ahead), one backwards.  The
 * first allocation of a copy ahead is its read-ahead buffer: refused, the copy still succeeds,
 * from the object's copy-on-write copy of the source.
 * _i: 0 the chain, 1 the membuf.
 */
START_TEST(test_copy_range_within_fails)
{
	static const struct {
		size_t size;
		kcom_off_t dst, src;
		size_t n, cluster; /* the chain's clusters */
	} cases[] = {
		{ 1000, 600, 500, 600, 64 },
		{ 200000, 100, 0, 150000, 4096 },
		{ 200000, 0, 50000, 150000, 4096 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int failed = 0; /* copies that failed part way (a membuf's fallbacks may absorb them) */
		size_t size = cases[k].size, dst = (size_t)cases[k].dst, src = (size_t)cases[k].src;
		size_t n = cases[k].n < size - src ? cases[k].n : size - src, end = size > dst + n ? size : dst + n;
		uint8_t *orig = malloc(size), *want = calloc(1, end), *now = malloc(end + 1);
		for (size_t i = 0; i < size; i++)
			orig[i] = contract_pattern(i);
		for (unsigned long nth = 1;; nth++) {
			testenv_install();
			kcom_bufio_t *io, *keep;
			if (_i == 0)
				ck_assert_int_eq(kcom_mbufchain_create(cases[k].cluster, &io), KCOM_OK);
			else
				ck_assert_int_eq(kcom_membuf_create(0, &io), KCOM_OK);
			size_t got;
			ck_assert_int_eq(kcom_bufio_write(io, orig, 0, size, &got), KCOM_OK);
			ck_assert_int_eq(kcom_bufio_copy(io, 0, size, &keep), KCOM_OK);
			size_t copied = 12345;
			testenv_fail_at(nth);
			kcom_error_t err = kcom_absio_copy_range(kcom_bufio_absio(io), cases[k].dst, kcom_bufio_absio(io),
			                                         cases[k].src, cases[k].n, &copied);
			int hit = testenv_failure_hit();
			testenv_fail_at(0);
			if (KCOM_SUCCEEDED(err))
				ck_assert_uint_eq(copied, n);
			else
				failed++;
			if (nth == 1 && dst > src && dst < src + n)
				ck_assert_int_eq(err, KCOM_OK); /* no buffer: from a copy of the source */
			ck_assert_uint_le(copied, n);
			memset(want, 0, end);
			memcpy(want, orig, size);
			memmove(want + dst, orig + src, copied);
			size_t now_size, want_size = copied != 0 && dst + copied > size ? dst + copied : size;
			ck_assert_int_eq(kcom_bufio_getsize(io, &now_size), KCOM_OK);
			ck_assert_uint_eq(now_size, want_size);
			ck_assert_int_eq(kcom_bufio_read(io, now, 0, end + 1, &got), KCOM_OK);
			ck_assert_uint_eq(got, want_size);
			ck_assert_mem_eq(now, want, want_size);
			ck_assert_int_eq(kcom_bufio_read(keep, now, 0, size, &got), KCOM_OK);
			ck_assert_mem_eq(now, orig, size); /* the copy never changes */
			ck_assert_uint_eq(kcom_bufio_release(keep), 0);
			ck_assert_uint_eq(kcom_bufio_release(io), 0);
			ck_assert_uint_eq(testenv_allocs(), testenv_frees());
			testenv_uninstall();
			if (!hit)
				break;
		}
		free(orig);
		free(want);
		free(now);
		if (_i == 0)
			ck_assert_int_gt(failed, 0);
	}
}
END_TEST

/*
 * A far shift within one object when no allocation of more than 128 KiB succeeds: no buffer of
 * the distance plus a chunk, and a membuf's copy-on-write copy cannot be written from (its
 * first write would copy the whole store).  A destination range inside the object then moves
 * in one mapping of both ranges; one past its end cannot, and nothing changes; nor does
 * anything when the store is shared with a copy (the mapping would copy it), nor in an object
 * without bufio.
 */
START_TEST(test_copy_range_within_no_big_alloc)
{
	enum { SIZE = 1024 * 1024 };
	static const struct {
		kcom_off_t dst, src;
		size_t n;
		int shared; /* a copy of the object is held */
		kcom_error_t membuf; /* what a membuf answers; a chain always copies */
	} cases[] = {
		{ 256 * 1024, 0, 768 * 1024, 0, KCOM_OK },
		{ 300 * 1024 + 5, 1000, 600 * 1024, 0, KCOM_OK },
		{ 512 * 1024, 0, 768 * 1024, 0, KCOM_E_OUTOFMEMORY }, /* past the end */
		{ 256 * 1024, 0, 768 * 1024, 1, KCOM_E_OUTOFMEMORY },
	};
	uint8_t *orig = malloc(SIZE), *want = malloc(2 * SIZE), *now = malloc(2 * SIZE);
	for (size_t i = 0; i < SIZE; i++)
		orig[i] = contract_pattern(i);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		testenv_install();
		kcom_bufio_t *io, *keep = NULL;
		if (_i == 0)
			ck_assert_int_eq(kcom_mbufchain_create(4096, &io), KCOM_OK);
		else
			ck_assert_int_eq(kcom_membuf_create(0, &io), KCOM_OK);
		size_t got, copied = 12345;
		ck_assert_int_eq(kcom_bufio_write(io, orig, 0, SIZE, &got), KCOM_OK);
		if (cases[k].shared)
			ck_assert_int_eq(kcom_bufio_copy(io, 0, SIZE, &keep), KCOM_OK);
		testenv_fail_above(128 * 1024);
		kcom_error_t err = kcom_absio_copy_range(kcom_bufio_absio(io), cases[k].dst, kcom_bufio_absio(io),
		                                         cases[k].src, cases[k].n, &copied);
		testenv_fail_above(0);
		ck_assert_int_eq(err, _i == 0 ? KCOM_OK : cases[k].membuf);
		size_t dst = (size_t)cases[k].dst, n = KCOM_SUCCEEDED(err) ? cases[k].n : 0;
		ck_assert_uint_eq(copied, n);
		size_t want_size = dst + n > SIZE ? dst + n : SIZE, now_size;
		memcpy(want, orig, SIZE);
		memmove(want + dst, orig + cases[k].src, n);
		ck_assert_int_eq(kcom_bufio_getsize(io, &now_size), KCOM_OK);
		ck_assert_uint_eq(now_size, want_size);
		ck_assert_int_eq(kcom_bufio_read(io, now, 0, want_size, &got), KCOM_OK);
		ck_assert_mem_eq(now, want, want_size);
		if (keep != NULL) {
			ck_assert_int_eq(kcom_bufio_read(keep, now, 0, SIZE, &got), KCOM_OK);
			ck_assert_mem_eq(now, orig, SIZE);
			ck_assert_uint_eq(kcom_bufio_release(keep), 0);
		}
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
		ck_assert_uint_eq(testenv_allocs(), testenv_frees());
		testenv_uninstall();
	}
	/* An object without bufio (no copy, no map): KCOM_E_OUTOFMEMORY, not one byte written. */
	if (_i == 0) {
		testenv_install();
		kcom_absio_t *plain = plain_with_pattern(SIZE, 0);
		size_t copied = 12345, got;
		testenv_fail_above(128 * 1024);
		kcom_error_t err = kcom_absio_copy_range(plain, 256 * 1024, plain, 0, 768 * 1024, &copied);
		testenv_fail_above(0);
		ck_assert_int_eq(err, KCOM_E_OUTOFMEMORY);
		ck_assert_uint_eq(copied, 0);
		ck_assert_int_eq(kcom_absio_read(plain, now, 0, SIZE, &got), KCOM_OK);
		ck_assert_uint_eq(got, SIZE);
		ck_assert_mem_eq(now, orig, SIZE);
		kcom_absio_release(plain);
		testenv_uninstall();
	}
	free(orig);
	free(want);
	free(now);
}
END_TEST

START_TEST(test_copy_range_bad_args)
{
	kcom_absio_t *a = make_kind(0, 100), *b = make_kind(1, 100);
	size_t done = 99;
	ck_assert_int_eq(kcom_absio_copy_range(NULL, 0, b, 0, 1, &done), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(done, 0);
	ck_assert_int_eq(kcom_absio_copy_range(a, 0, NULL, 0, 1, &done), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_copy_range(a, 0, b, 0, 1, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_copy_range(a, -1, b, 0, 1, &done), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_copy_range(a, 0, b, -1, 1, &done), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_absio_copy_range(a, KCOM_OFF_MAX, b, 0, 2, &done), KCOM_E_INVALIDARG);
	assert_pattern_at(a, 0, 100, 0);
	kcom_absio_release(a);
	kcom_absio_release(b);
}
END_TEST

/*
 * A failing side, for each way a copy can go: into a mapped destination (membuf), through
 * the source's pieces, through a bounce buffer.  The error comes back; the count says how
 * many bytes landed, and the destination holds nothing else.
 */
START_TEST(test_copy_range_read_fails)
{
	kcom_absio_t *dst = make_kind(_i % 3, 100);
	kcom_absio_t *src = plain_with_pattern(4000, 0);
	plainio_fail_reads(src, 1);
	/* Rows 0-2: a range that would grow the destination; 3-5: one inside it (mapped where it can be). */
	size_t n = _i / 3 ? 50 : 4000;
	size_t done = 7;
	ck_assert_int_eq(kcom_absio_copy_range(dst, 0, src, 0, n, &done), KCOM_E_FAIL);
	ck_assert_uint_eq(done, 0);
	size_t size;
	ck_assert_int_eq(kcom_absio_getsize(dst, &size), KCOM_OK);
	ck_assert_uint_eq(size, 100); /* not grown */
	assert_pattern_at(dst, 0, 100, 0);
	ck_assert_uint_eq(kcom_absio_release(src), 0);
	ck_assert_uint_eq(kcom_absio_release(dst), 0);
}
END_TEST

START_TEST(test_copy_range_write_fails)
{
	kcom_absio_t *src = make_kind(_i, 4000);
	kcom_absio_t *dst = plain_with_pattern(100, 0);
	plainio_fail_writes(dst, 1);
	size_t done = 7;
	ck_assert_int_eq(kcom_absio_copy_range(dst, 0, src, 0, 4000, &done), KCOM_E_FAIL);
	ck_assert_uint_eq(done, 0);
	plainio_fail_writes(dst, 0);
	assert_pattern_at(dst, 0, 100, 0);
	ck_assert_uint_eq(kcom_absio_release(src), 0);
	ck_assert_uint_eq(kcom_absio_release(dst), 0);
}
END_TEST

/* ---- duplicate ---- */

START_TEST(test_duplicate)
{
	kcom_absio_t *src = make_kind(_i, 4000);
	kcom_bufio_t *dup = (void *)1;
	ck_assert_int_eq(kcom_bufio_duplicate(src, 1000, 2000, &dup), KCOM_OK);
	size_t size;
	ck_assert_int_eq(kcom_bufio_getsize(dup, &size), KCOM_OK);
	ck_assert_uint_eq(size, 2000);
	assert_pattern_at(kcom_bufio_absio(dup), 0, 2000, 1000);

	/* Independent: writes do not cross. */
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(dup, "dup", 0, 3, &put), KCOM_OK);
	assert_pattern_at(src, 1000, 3, 1000);
	ck_assert_int_eq(kcom_absio_write(src, "src", 1003, 3, &put), KCOM_OK);
	uint8_t buf[3];
	ck_assert_int_eq(kcom_bufio_read(dup, buf, 3, 3, &put), KCOM_OK);
	ck_assert_uint_eq(buf[0], contract_pattern(1003));
	kcom_bufio_release(dup);

	ck_assert_int_eq(kcom_bufio_duplicate(src, 3999, 2, &dup), KCOM_E_RANGE);
	ck_assert_ptr_null(dup);
	ck_assert_int_eq(kcom_bufio_duplicate(src, -1, 2, &dup), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_duplicate(NULL, 0, 2, &dup), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_duplicate(src, 0, 2, NULL), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(kcom_absio_release(src), 0);
}
END_TEST

/*
 * Into a class whose new objects are not empty: the duplicate holds the range and nothing
 * else (it was the range followed by the fresh object's own bytes); a class whose objects
 * cannot be truncated gives no duplicate.  0: a growable membuf of 8 bytes; 1: a fixed-size
 * double of 8 bytes.
 */
static int nonempty_kind;

static kcom_error_t nonempty_factory(const kcom_iid_t *iid, void **out)
{
	kcom_bufio_t *io;
	kcom_error_t err;
	if (nonempty_kind == 0) {
		err = kcom_membuf_create(8, &io);
	} else {
		kcom_absio_t *a;
		err = plainio_create(8, PLAINIO_BUFIO | PLAINIO_FIXED, &a);
		if (KCOM_SUCCEEDED(err)) {
			err = kcom_absio_query(a, &kcom_bufio_iid, (void **)&io);
			kcom_absio_release(a);
		}
	}
	if (KCOM_FAILED(err))
		return err;
	size_t put;
	err = kcom_bufio_write(io, "\xee\xee\xee\xee\xee\xee\xee\xee", 0, 8, &put);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_query(io, iid, out);
	kcom_bufio_release(io);
	return err;
}

static const struct kcom_class nonempty_class = {
	.clsid = KCOM_GUID(0x6e6f6e65, 0x6d70, 0x7479, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01),
	.name = "nonempty",
	.create = nonempty_factory,
};

START_TEST(test_duplicate_nonempty_class)
{
	nonempty_kind = _i;
	ck_assert_int_eq(kcom_class_register(&nonempty_class), KCOM_OK);
	kcom_absio_t *src = plain_with_pattern(4000, 0); /* no copy(): the class is used */
	const size_t n[] = { 4, 0, 100 };
	for (size_t k = 0; k < 3; k++) {
		kcom_bufio_t *dup = (void *)1;
		kcom_error_t err = kcom_bufio_duplicate_class(src, 10, n[k], &nonempty_class.clsid, &dup);
		if (_i == 1) {
			ck_assert_int_eq(err, KCOM_E_NOTIMPL);
			ck_assert_ptr_null(dup);
			continue;
		}
		ck_assert_int_eq(err, KCOM_OK);
		size_t size;
		ck_assert_int_eq(kcom_bufio_getsize(dup, &size), KCOM_OK);
		ck_assert_uint_eq(size, n[k]);
		assert_pattern_at(kcom_bufio_absio(dup), 0, n[k], 10);
		ck_assert_uint_eq(kcom_bufio_release(dup), 0);
	}
	ck_assert_uint_eq(kcom_absio_release(src), 0);
	ck_assert_int_eq(kcom_class_unregister(&nonempty_class.clsid), KCOM_OK);
}
END_TEST

/* A membuf duplicates by copy(): it allocates an object, not the bytes. */
START_TEST(test_duplicate_uses_copy)
{
	kcom_bufio_t *src = membuf_with_pattern(100000), *dup;
	testenv_install();
	ck_assert_int_eq(kcom_bufio_duplicate(kcom_bufio_absio(src), 0, 100000, &dup), KCOM_OK);
	ck_assert_int_lt(testenv_bytes_outstanding(), 1000);
	kcom_bufio_release(dup);
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
	kcom_bufio_release(src);
}
END_TEST

/* A source that cannot be read: no duplicate, and the object made for it is gone again. */
START_TEST(test_duplicate_read_fails)
{
	kcom_absio_t *src = plain_with_pattern(4000, _i ? PLAINIO_BUFIO : 0);
	plainio_fail_reads(src, 1);
	testenv_install();
	kcom_bufio_t *dup = (void *)1;
	ck_assert_int_eq(kcom_bufio_duplicate(src, 0, 4000, &dup), KCOM_E_FAIL);
	ck_assert_ptr_null(dup);
	ck_assert_uint_gt(testenv_allocs(), 0); /* an object was made ... */
	ck_assert_uint_eq(testenv_allocs(), testenv_frees()); /* ... and released */
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
	ck_assert_uint_eq(kcom_absio_release(src), 0);
}
END_TEST

Suite *helpers_suite(void)
{
	Suite *s = suite_create("helpers");
	TCase *tc = tcase_create("view");
	tcase_add_test(tc, test_view_maps_when_it_can);
	tcase_add_test(tc, test_view_readonly_keeps_sharing);
	tcase_add_loop_test(tc, test_view_bounces_otherwise, 0, 2);
	tcase_add_test(tc, test_view_bad_args);
	tcase_add_test(tc, test_view_writeback_failure);
	tcase_add_loop_test(tc, test_view_read_failure, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("copy_range");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_copy_range_all_pairs, 0, 9);
	tcase_add_loop_test(tc, test_copy_range_overlap, 0, 3);
	tcase_add_loop_test(tc, test_copy_range_within_fails, 0, 2);
	tcase_add_loop_test(tc, test_copy_range_within_no_big_alloc, 0, 2);
	tcase_add_test(tc, test_copy_range_fixed_dst);
	tcase_add_loop_test(tc, test_copy_range_dst_ends, 0, 6);
	tcase_add_loop_test(tc, test_copy_range_overlap_cannot_grow, 0, 3);
	tcase_add_test(tc, test_copy_range_overlap_grows);
	tcase_add_test(tc, test_copy_range_bad_args);
	tcase_add_loop_test(tc, test_copy_range_read_fails, 0, 6);
	tcase_add_loop_test(tc, test_copy_range_write_fails, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("duplicate");
	tcase_add_loop_test(tc, test_duplicate, 0, 3);
	tcase_add_test(tc, test_duplicate_uses_copy);
	tcase_add_loop_test(tc, test_duplicate_nonempty_class, 0, 2);
	tcase_add_loop_test(tc, test_duplicate_read_fails, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
