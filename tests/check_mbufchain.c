/*
 * mbufchain's own promises, beyond the contract: direct maps inside a segment and pullup across
 * segments, map_vec without copies, the chain interface, costs that do not grow with size
 * (counted in allocations through the test osenv), an object and its copy used from two threads
 * at once, and a seeded randomized comparison against a plain byte array (KCOM_SEED sets the
 * seed; a failure prints it).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bufio/bufvec.h>
#include <com/com.h>
#include <com/debug.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/plainio.h"
#include "tests/suites.h"
#include "tests/testenv.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static void setup(void)
{
	testenv_install();
}

static void teardown(void)
{
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	ck_assert_int_eq(testenv_pages_outstanding(), 0);
	testenv_uninstall();
}

/* The kit's check (the class's sanity hook); fails the test with its reason. */
static void assert_sane(kcom_bufio_t *io)
{
	kcom_debug_t *dbg;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg), KCOM_OK);
	char why[160] = "";
	kcom_error_t err = kcom_debug_check(dbg, why, sizeof(why));
	kcom_debug_release(dbg);
	ck_assert_msg(KCOM_SUCCEEDED(err), "sanity: %s", why);
}

static kcom_chain_t *chain_of(kcom_bufio_t *io)
{
	kcom_chain_t *ch;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_chain_iid, (void **)&ch), KCOM_OK);
	return ch;
}

/* A chain of `size` pattern bytes from appends of `piece` bytes into `cluster`-byte clusters. */
static kcom_bufio_t *pattern_chain(size_t size, size_t cluster, size_t piece)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_mbufchain_create(cluster, &io), KCOM_OK);
	uint8_t *buf = malloc(piece);
	for (size_t at = 0; at < size; at += piece) {
		size_t n = size - at < piece ? size - at : piece;
		for (size_t i = 0; i < n; i++)
			buf[i] = contract_pattern(at + i);
		size_t put;
		ck_assert_int_eq(kcom_bufio_write(io, buf, (kcom_off_t)at, n, &put), KCOM_OK);
		ck_assert_uint_eq(put, n);
	}
	free(buf);
	assert_sane(io);
	return io;
}

static size_t segments(kcom_bufio_t *io, kcom_off_t off, size_t n)
{
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	size_t count = 0;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, off, n, KCOM_MAP_READ, NULL, 0, &count), KCOM_E_TOOSMALL);
	kcom_bufvec_release(vec);
	return count;
}

/* ---- maps ---- */

START_TEST(test_map_inside_segment_is_direct)
{
	kcom_bufio_t *io = pattern_chain(4096, 256, 200); /* segments of 200 and 56 bytes */
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_iovec iov[4];
	size_t count;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 210, 20, KCOM_MAP_READ, iov, 4, &count), KCOM_OK);
	ck_assert_uint_eq(count, 1);

	unsigned long before = testenv_allocs();
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 210, 20), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs() - before, 1); /* the hold record: no copy */
	ck_assert_ptr_eq(addr, iov[0].base);             /* the cluster itself */
	((uint8_t *)addr)[3] = 0xab;
	uint8_t b;
	size_t got;
	ck_assert_int_eq(kcom_bufio_read(io, &b, 213, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, 0xab);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 210, 20), KCOM_OK);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 210, 20, KCOM_MAP_READ, iov, count), KCOM_OK);
	assert_sane(io);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_map_across_segments_pulls_up)
{
	kcom_bufio_t *io = pattern_chain(4096, 64, 64);
	ck_assert_uint_eq(segments(io, 100, 1000), 17);
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 100, 1000), KCOM_OK);
	const uint8_t *p = addr;
	for (size_t i = 0; i < 1000; i++)
		ck_assert_uint_eq(p[i], contract_pattern(100 + i));
	ck_assert_uint_eq(segments(io, 100, 1000), 1); /* coalesced into one cluster */
	assert_sane(io);
	/* A second map of a part is inside that segment: a pointer into it. */
	void *again;
	ck_assert_int_eq(kcom_bufio_map(io, &again, 150, 10), KCOM_OK);
	ck_assert_ptr_eq(again, (uint8_t *)addr + 50);
	ck_assert_int_eq(kcom_bufio_unmap(io, again, 150, 10), KCOM_OK);
	/* The rest of the chain is untouched and the bytes are the same. */
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 100, 1000), KCOM_OK);
	contract_assert_pattern(io, 4096);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_map_vec_no_copy)
{
	kcom_bufio_t *io = pattern_chain(1000, 100, 100);
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_iovec iov[16];
	size_t count = 0;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 50, 900, KCOM_MAP_READ, iov, 3, &count), KCOM_E_TOOSMALL);
	ck_assert_uint_eq(count, 10); /* the count needed */
	unsigned long before = testenv_allocs();
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 50, 900, KCOM_MAP_READ | KCOM_MAP_WRITE, iov, 16, &count), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs() - before, 1); /* the hold record only */
	ck_assert_uint_eq(count, 10);
	ck_assert_uint_eq(iov[0].len, 50);
	ck_assert_uint_eq(iov[9].len, 50);
	size_t at = 50;
	for (size_t k = 0; k < count; k++)
		for (size_t j = 0; j < iov[k].len; j++, at++)
			ck_assert_uint_eq(((uint8_t *)iov[k].base)[j], contract_pattern(at));
	/* While mapped: the size is frozen, chain operations that change it are busy. */
	kcom_chain_t *ch = chain_of(io);
	kcom_bufio_t *tail;
	ck_assert_int_eq(kcom_bufio_setsize(io, 10), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_chain_prepend(ch, "x", 1), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_chain_trim(ch, 1, 0), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_chain_split(ch, 5, &tail), KCOM_E_BUSY);
	ck_assert_ptr_null(tail);
	/* ... and those with nothing to do do nothing, as the header says. */
	ck_assert_int_eq(kcom_chain_prepend(ch, "x", 0), KCOM_OK);
	ck_assert_int_eq(kcom_chain_trim(ch, 0, 0), KCOM_OK);
	ck_assert_int_eq(kcom_chain_append(ch, io, 0, 0), KCOM_OK);
	size_t size;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 1000);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 50, 900, KCOM_MAP_READ | KCOM_MAP_WRITE, iov, count), KCOM_OK);
	kcom_chain_release(ch);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* A read-only map_vec of a copy points into the original's clusters and never copies. */
START_TEST(test_map_vec_readonly_keeps_sharing)
{
	kcom_bufio_t *io = pattern_chain(2000, 128, 100), *copy;
	ck_assert_int_eq(kcom_bufio_copy(io, 0, 2000, &copy), KCOM_OK);
	kcom_bufvec_t *v1, *v2;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&v1), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_query(copy, &kcom_bufvec_iid, (void **)&v2), KCOM_OK);
	struct kcom_iovec a[64], b[64];
	size_t na, nb;
	ck_assert_int_eq(kcom_bufvec_map_vec(v1, 0, 2000, KCOM_MAP_READ, a, 64, &na), KCOM_OK);
	long long bytes = testenv_bytes_outstanding();
	ck_assert_int_eq(kcom_bufvec_map_vec(v2, 0, 2000, KCOM_MAP_READ, b, 64, &nb), KCOM_OK);
	ck_assert_uint_eq(na, nb);
	for (size_t k = 0; k < na; k++)
		ck_assert_ptr_eq(a[k].base, b[k].base);
	ck_assert_int_le(testenv_bytes_outstanding() - bytes, 1024); /* a hold record, no cluster */
	ck_assert_int_eq(kcom_bufvec_unmap_vec(v2, 0, 2000, KCOM_MAP_READ, b, nb), KCOM_OK);
	/* Writing the copy leaves the original's mapped bytes alone. */
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(copy, "zzzz", 0, 4, &put), KCOM_OK);
	ck_assert_uint_eq(((uint8_t *)a[0].base)[0], contract_pattern(0));
	ck_assert_int_eq(kcom_bufvec_unmap_vec(v1, 0, 2000, KCOM_MAP_READ, a, na), KCOM_OK);
	contract_assert_pattern(io, 2000);
	kcom_bufvec_release(v1);
	kcom_bufvec_release(v2);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* A write that would move mapped bytes of a shared chain is refused; elsewhere it works. */
START_TEST(test_mapped_bytes_never_move)
{
	kcom_bufio_t *io = pattern_chain(4096, 256, 256), *copy;
	ck_assert_int_eq(kcom_bufio_copy(io, 0, 4096, &copy), KCOM_OK);
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_iovec iov[4];
	size_t count, put;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, 256, KCOM_MAP_READ, iov, 4, &count), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(io, "x", 10, 1, &put), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_bufio_write(io, "x", 3000, 1, &put), KCOM_OK);
	ck_assert_uint_eq(((uint8_t *)iov[0].base)[10], contract_pattern(10));
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, 256, KCOM_MAP_READ, iov, count), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(io, "x", 10, 1, &put), KCOM_OK);
	contract_assert_pattern(copy, 4096);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* ---- costs ---- */

/* copy() of a whole chain allocates the new object only, at any size. */
START_TEST(test_copy_cost_constant)
{
	size_t sizes[] = { 4096, 1u << 20, 8u << 20 };
	for (size_t i = 0; i < 3; i++) {
		kcom_bufio_t *io = pattern_chain(sizes[i], 4096, 4096), *copy;
		unsigned long before = testenv_allocs();
		ck_assert_int_eq(kcom_bufio_copy(io, 0, sizes[i], &copy), KCOM_OK);
		ck_assert_uint_eq(testenv_allocs() - before, 1);
		ck_assert_uint_eq(kcom_bufio_release(copy), 0);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
	}
}
END_TEST

static unsigned log2_ceil(size_t n)
{
	unsigned k = 0;
	while (((size_t)1 << k) < n)
		k++;
	return k;
}

/* A sub-range copy and a 1-byte write after a copy: O(log segments) nodes, at most two clusters. */
START_TEST(test_write_after_copy_cost)
{
	size_t sizes[] = { 64u << 10, 8u << 20 };
	for (size_t i = 0; i < 2; i++) {
		size_t nseg = sizes[i] / 4096;
		unsigned bound = 8 * log2_ceil(nseg) + 8; /* AVL: height <= 1.44 log2 n; a few nodes a level */
		kcom_bufio_t *io = pattern_chain(sizes[i], 4096, 4096), *copy, *sub;
		unsigned long before = testenv_allocs();
		ck_assert_int_eq(kcom_bufio_copy(io, 1000, sizes[i] - 3000, &sub), KCOM_OK);
		ck_assert_uint_le(testenv_allocs() - before, bound);
		ck_assert_int_eq(kcom_bufio_copy(io, 0, sizes[i], &copy), KCOM_OK);
		before = testenv_allocs();
		long long bytes = testenv_bytes_outstanding();
		size_t put;
		ck_assert_int_eq(kcom_bufio_write(copy, "!", (kcom_off_t)(sizes[i] / 2 + 5), 1, &put), KCOM_OK);
		unsigned long allocs = testenv_allocs() - before;
		ck_assert_uint_le(allocs, bound);
		/* New bytes: one or two clusters and node slabs (at most one per allocation), never a
		 * copy of the data. */
		ck_assert_int_le(testenv_bytes_outstanding() - bytes, (long long)(2 * (4096 + 128) + allocs * 4096));
		contract_assert_pattern(io, sizes[i]);
		uint8_t b;
		ck_assert_int_eq(kcom_bufio_read(copy, &b, (kcom_off_t)(sizes[i] / 2 + 5), 1, &put), KCOM_OK);
		ck_assert_uint_eq(b, '!');
		/* A second write to the same place is in place: nothing allocated (the reads first
		 * let the copy build its seek index, if it is going to, so it is not counted here). */
		for (int r = 0; r < 4; r++)
			ck_assert_int_eq(kcom_bufio_read(copy, &b, (kcom_off_t)(r * 4096), 1, &put), KCOM_OK);
		before = testenv_allocs();
		ck_assert_int_eq(kcom_bufio_write(copy, "?", (kcom_off_t)(sizes[i] / 2 + 6), 1, &put), KCOM_OK);
		ck_assert_uint_eq(testenv_allocs() - before, 0);
		assert_sane(copy);
		assert_sane(sub);
		ck_assert_uint_eq(kcom_bufio_release(sub), 0);
		ck_assert_uint_eq(kcom_bufio_release(copy), 0);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
	}
}
END_TEST

/* Every allocation of a write after a copy failing in turn: the object unchanged, nothing leaked. */
START_TEST(test_write_after_copy_allocfail)
{
	unsigned long failures = 0;
	for (unsigned long nth = 1; nth < 1000; nth++) {
		kcom_bufio_t *io = pattern_chain(256u << 10, 4096, 4096), *copy;
		ck_assert_int_eq(kcom_bufio_copy(io, 0, 256u << 10, &copy), KCOM_OK);
		size_t put = 99;
		testenv_fail_at(nth);
		/* Inside one segment (the path is copied) and across two (split and join). */
		kcom_error_t err = kcom_bufio_write(copy, "!", 100000, 1, &put);
		if (KCOM_SUCCEEDED(err))
			err = kcom_bufio_write(copy, "!!", 8191, 2, &put);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);
		assert_sane(copy);
		contract_assert_pattern(io, 256u << 10);
		if (hit) {
			ck_assert_int_eq(err, KCOM_E_OUTOFMEMORY);
			uint8_t b[2];
			size_t got;
			ck_assert_int_eq(kcom_bufio_read(copy, b, 8191, 2, &got), KCOM_OK);
			ck_assert_uint_eq(b[0], contract_pattern(8191)); /* the failed write changed nothing */
			ck_assert_uint_eq(b[1], contract_pattern(8192));
			failures++;
		} else {
			ck_assert_int_eq(err, KCOM_OK);
		}
		ck_assert_uint_eq(kcom_bufio_release(copy), 0);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
		ck_assert_uint_eq(testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		if (!hit)
			break;
	}
	ck_assert_uint_ge(failures, 2); /* a cluster, and node slabs (fewer without invariants) */
}
END_TEST

/* An append to a chain that alone holds its right spine adds one node and one cluster in place. */
START_TEST(test_append_in_place)
{
	kcom_bufio_t *io = pattern_chain(1u << 20, 4096, 4096), *copy;
	uint8_t buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = contract_pattern((1u << 20) + i);
	size_t put;
	unsigned long before = testenv_allocs();
	ck_assert_int_eq(kcom_bufio_write(io, buf, 1u << 20, 4096, &put), KCOM_OK);
	ck_assert_uint_le(testenv_allocs() - before, 2); /* the cluster, maybe a node slab */
	assert_sane(io);
	/* Shared spine (a copy holds the root): the append copies the path, the copy keeps its size. */
	ck_assert_int_eq(kcom_bufio_copy(io, 0, (1u << 20) + 4096, &copy), KCOM_OK);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = contract_pattern((1u << 20) + 4096 + i);
	ck_assert_int_eq(kcom_bufio_write(io, buf, (1u << 20) + 4096, 4096, &put), KCOM_OK);
	assert_sane(io);
	assert_sane(copy);
	contract_assert_pattern(io, (1u << 20) + 8192);
	contract_assert_pattern(copy, (1u << 20) + 4096);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * Clusters written one after another lie one after another in memory: a chain built from 4 KiB
 * appends is a few runs (slabs of 1, 2, 4, 8, then 16 clusters), not 256 separate blocks.
 */
START_TEST(test_appends_are_adjacent)
{
	enum { SIZE = 1u << 20, N = SIZE / 4096 };
	kcom_bufio_t *io = pattern_chain(SIZE, 4096, 4096);
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	static struct kcom_iovec v[N];
	size_t count = 0;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, SIZE, KCOM_MAP_READ, v, N, &count), KCOM_OK);
	ck_assert_uint_eq(count, N);
	ptrdiff_t stride = (unsigned char *)v[2].base - (unsigned char *)v[1].base; /* 4096, or more under ASan */
	ck_assert_int_ge(stride, 4096);
	ck_assert_int_lt(stride, 8192);
	size_t runs = 1;
	for (size_t i = 1; i < count; i++) {
		ck_assert_uint_eq(v[i].len, 4096);
		runs += (unsigned char *)v[i].base - (unsigned char *)v[i - 1].base != stride;
	}
	/*
	 * At most a run a slab (1, 2, 4, 8, then 15 of 16 and one of 1); fewer where the allocator
	 * puts slabs side by side, as TSan's heap does.  Clusters allocated one by one would make 256.
	 */
	ck_assert_uint_le(runs, 4 + 16);
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, SIZE, KCOM_MAP_READ, v, count), KCOM_OK);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* ---- the chain interface ---- */

START_TEST(test_prepend_in_reserved_room)
{
	kcom_bufio_t *io = pattern_chain(1000, 256, 100);
	kcom_chain_t *ch = chain_of(io);
	ck_assert_int_eq(kcom_chain_reserve(ch, 64), KCOM_OK);
	ck_assert_int_eq(kcom_chain_prepend(ch, "HDR2", 4), KCOM_OK);
	unsigned long before = testenv_allocs();
	ck_assert_int_eq(kcom_chain_prepend(ch, "HDR1", 4), KCOM_OK); /* into the reserved room */
	ck_assert_int_eq(kcom_chain_prepend(ch, NULL, 2), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs() - before, 0);
	assert_sane(io);
	uint8_t buf[10];
	size_t got, size;
	ck_assert_int_eq(kcom_bufio_read(io, buf, 0, 10, &got), KCOM_OK);
	ck_assert_mem_eq(buf, "\0\0HDR1HDR2", 10);
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 1010);
	ck_assert_int_eq(kcom_chain_trim(ch, 10, 0), KCOM_OK);
	contract_assert_pattern(io, 1000);
	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_append_by_reference)
{
	kcom_bufio_t *dst = pattern_chain(100, 4096, 100);
	kcom_bufio_t *src = pattern_chain(100000, 4096, 4096);
	kcom_chain_t *ch = chain_of(dst);

	/* From a chain: nodes only, no cluster. */
	long long bytes = testenv_bytes_outstanding();
	ck_assert_int_eq(kcom_chain_append(ch, src, 100, 90000), KCOM_OK);
	ck_assert_int_le(testenv_bytes_outstanding() - bytes, 100 * 256); /* nodes (in slabs), no cluster */
	contract_assert_pattern(dst, 90100);
	/* The source's later writes are not seen, nor ours by it. */
	size_t put, got;
	ck_assert_int_eq(kcom_bufio_write(src, "SRC", 200, 3, &put), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(dst, "DST", 300, 3, &put), KCOM_OK);
	uint8_t b[3];
	ck_assert_int_eq(kcom_bufio_read(dst, b, 200, 3, &got), KCOM_OK);
	ck_assert_uint_eq(b[0], contract_pattern(200));
	ck_assert_int_eq(kcom_bufio_read(src, b, 300, 3, &got), KCOM_OK);
	ck_assert_uint_eq(b[0], contract_pattern(300));
	ck_assert_int_eq(kcom_bufio_setsize(dst, 100), KCOM_OK);

	/* From a membuf: one segment over its store. */
	kcom_bufio_t *mb;
	ck_assert_int_eq(kcom_membuf_create(50000, &mb), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(mb, "membuf", 10, 6, &put), KCOM_OK);
	bytes = testenv_bytes_outstanding();
	ck_assert_int_eq(kcom_chain_append(ch, mb, 10, 40000), KCOM_OK);
	ck_assert_int_le(testenv_bytes_outstanding() - bytes, 256);
	ck_assert_int_eq(kcom_bufio_write(mb, "MEMBUF", 10, 6, &put), KCOM_OK); /* the membuf moves */
	ck_assert_int_eq(kcom_bufio_read(dst, b, 100, 3, &got), KCOM_OK);
	ck_assert_mem_eq(b, "mem", 3);
	assert_sane(dst);

	/* From an object with read/write only: a copy. */
	kcom_absio_t *plain;
	ck_assert_int_eq(plainio_create(0, PLAINIO_BUFIO, &plain), KCOM_OK);
	ck_assert_int_eq(kcom_absio_write(plain, "plain", 0, 5, &put), KCOM_OK);
	ck_assert_int_eq(kcom_chain_append(ch, (kcom_bufio_t *)(void *)plain, 0, 5), KCOM_OK);
	ck_assert_int_eq(kcom_chain_append(ch, (kcom_bufio_t *)(void *)plain, 3, 5), KCOM_E_RANGE);
	ck_assert_int_eq(kcom_chain_append(ch, NULL, 0, 5), KCOM_E_INVALIDARG);
	kcom_absio_release(plain);
	size_t size;
	ck_assert_int_eq(kcom_bufio_getsize(dst, &size), KCOM_OK);
	ck_assert_uint_eq(size, 40105);
	uint8_t tail[5];
	ck_assert_int_eq(kcom_bufio_read(dst, tail, 40100, 5, &got), KCOM_OK);
	ck_assert_mem_eq(tail, "plain", 5);

	/* Appending itself. */
	ck_assert_int_eq(kcom_chain_append(ch, dst, 0, size), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(dst, tail, size + 40100, 5, &got), KCOM_OK);
	ck_assert_mem_eq(tail, "plain", 5);
	assert_sane(dst);

	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(mb), 0);
	ck_assert_uint_eq(kcom_bufio_release(src), 0);
	ck_assert_uint_eq(kcom_bufio_release(dst), 0);
}
END_TEST

START_TEST(test_split_and_trim)
{
	kcom_bufio_t *io = pattern_chain(10000, 512, 300), *tail;
	kcom_chain_t *ch = chain_of(io);
	ck_assert_int_eq(kcom_chain_split(ch, 10001, &tail), KCOM_E_RANGE);
	ck_assert_int_eq(kcom_chain_split(ch, -1, &tail), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_chain_split(ch, 4321, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_chain_split(ch, 4321, &tail), KCOM_OK);
	contract_assert_pattern(io, 4321);
	size_t size, got;
	ck_assert_int_eq(kcom_bufio_getsize(tail, &size), KCOM_OK);
	ck_assert_uint_eq(size, 10000 - 4321);
	uint8_t *bytes = contract_snapshot(tail, &size);
	for (size_t i = 0; i < size; i++)
		ck_assert_uint_eq(bytes[i], contract_pattern(4321 + i));
	free(bytes);
	assert_sane(tail);
	assert_sane(io);

	kcom_chain_t *tch = chain_of(tail);
	ck_assert_int_eq(kcom_chain_trim(tch, 10, 20), KCOM_OK);
	ck_assert_int_eq(kcom_chain_trim(tch, size, 0), KCOM_E_RANGE);
	uint8_t b;
	ck_assert_int_eq(kcom_bufio_read(tail, &b, 0, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, contract_pattern(4331));
	ck_assert_int_eq(kcom_bufio_getsize(tail, &size), KCOM_OK);
	ck_assert_uint_eq(size, 10000 - 4321 - 30);
	ck_assert_int_eq(kcom_chain_trim(tch, 0, size), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_getsize(tail, &size), KCOM_OK);
	ck_assert_uint_eq(size, 0);
	/* An empty split: the whole chain stays, the tail is empty. */
	kcom_bufio_t *none;
	ck_assert_int_eq(kcom_chain_split(ch, 4321, &none), KCOM_OK);
	contract_assert_pattern(none, 0);
	ck_assert_uint_eq(kcom_bufio_release(none), 0);
	kcom_chain_release(tch);
	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(tail), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * The size stops at KCOM_OFF_MAX, whichever operation would pass it: a chain appended to
 * itself by reference gets there in about fifty appends with little memory, and then setsize,
 * prepend, append and writes past it are refused with nothing changed (setsize once let the
 * size past it, after which the others' overflow checks wrapped and the size came round to 0).
 * The tree then describes about 2^51 segments in a few hundred nodes: the sanity walk visits
 * each shared node once (it took twice as long with every append before, and never ended here).
 */
START_TEST(test_size_limit)
{
	kcom_bufio_t *io = pattern_chain(4096, 4096, 4096);
	kcom_chain_t *ch = chain_of(io);
	const size_t max = (size_t)KCOM_OFF_MAX;
	size_t size = 4096, got;
	while (size < max) {
		ck_assert_int_eq(kcom_chain_append(ch, io, 0, MIN(size, max - size)), KCOM_OK);
		size += MIN(size, max - size);
	}
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, max);
	assert_sane(io);
	ck_assert_int_eq(kcom_bufio_setsize(io, max + 1), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_setsize(io, SIZE_MAX), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_chain_prepend(ch, "p", 1), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_chain_append(ch, io, 0, 1), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_write(io, "w", KCOM_OFF_MAX, 1, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, max);
	/* The last bytes are still the pattern's, 4096 bytes a period, and writable in place. */
	uint8_t b[2];
	ck_assert_int_eq(kcom_bufio_read(io, b, KCOM_OFF_MAX - 2, 2, &got), KCOM_OK);
	ck_assert_uint_eq(got, 2);
	ck_assert_uint_eq(b[0], contract_pattern((max - 2) % 4096));
	ck_assert_uint_eq(b[1], contract_pattern((max - 1) % 4096));
	ck_assert_int_eq(kcom_bufio_write(io, "w", KCOM_OFF_MAX - 1, 1, &got), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(io, b, KCOM_OFF_MAX - 1, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b[0], 'w');
	assert_sane(io);
	/*
	 * It describes about 2^51 segments over a few dozen nodes: counting them for map_vec, or
	 * walking them for wire, stops early (they took years before).  Too many to count is
	 * SIZE_MAX; a range of a few is counted exactly.
	 */
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	size_t count = 0;
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, max, KCOM_MAP_READ, NULL, 0, &count), KCOM_E_TOOSMALL);
	ck_assert_uint_eq(count, SIZE_MAX);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 4095, 2 * 4096 + 2, KCOM_MAP_READ, NULL, 0, &count), KCOM_E_TOOSMALL);
	ck_assert_uint_eq(count, 4);
	kcom_phys_t phys = 1;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, max), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(phys, 0);
	struct kcom_physseg seg;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, max, &seg, 1, &count), KCOM_E_NOTIMPL);
	kcom_bufvec_release(vec);
	/* Shrinking still works. */
	ck_assert_int_eq(kcom_bufio_setsize(io, 4096), KCOM_OK);
	assert_sane(io);
	contract_assert_pattern(io, 4096);
	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_class_and_interfaces)
{
	void *obj;
	ck_assert_int_eq(kcom_create(&kcom_mbufchain_clsid, &kcom_chain_iid, &obj), KCOM_OK);
	kcom_chain_t *ch = obj;
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_chain_query(ch, &kcom_bufio_iid, (void **)&io), KCOM_OK);
	kcom_phys_t phys;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, 0), KCOM_E_NOTIMPL);
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_physseg segs[2];
	size_t count = 5;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 0, segs, 2, &count), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	kcom_bufio_release(io);
	ck_assert_uint_eq(kcom_chain_release(ch), 0);
}
END_TEST

/* ---- two threads ---- */

struct worker {
	kcom_bufio_t *io;
	uint8_t value;
	int failed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[3000], back[3000];
	memset(buf, w->value, sizeof(buf));
	kcom_bufvec_t *vec;
	if (KCOM_FAILED(kcom_bufio_query(w->io, &kcom_bufvec_iid, (void **)&vec))) {
		w->failed = 1;
		return NULL;
	}
	for (int r = 0; r < 200 && !w->failed; r++) {
		size_t off = (size_t)(r * 997) % 20000, put, got;
		if (KCOM_FAILED(kcom_bufio_write(w->io, buf, (kcom_off_t)off, sizeof(buf), &put)))
			w->failed = 2;
		if (KCOM_FAILED(kcom_bufio_read(w->io, back, (kcom_off_t)off, sizeof(back), &got)) ||
		    memcmp(back, buf, sizeof(buf)) != 0)
			w->failed = 3;
		void *addr;
		if (KCOM_FAILED(kcom_bufio_map(w->io, &addr, (kcom_off_t)off + 100, 2000)))
			w->failed = 4;
		else {
			((uint8_t *)addr)[0] = w->value;
			if (((uint8_t *)addr)[1999] != w->value)
				w->failed = 5;
			kcom_bufio_unmap(w->io, addr, (kcom_off_t)off + 100, 2000);
		}
		struct kcom_iovec iov[64];
		size_t count;
		if (KCOM_SUCCEEDED(kcom_bufvec_map_vec(vec, 0, 20000, KCOM_MAP_READ, iov, 64, &count)))
			kcom_bufvec_unmap_vec(vec, 0, 20000, KCOM_MAP_READ, iov, count);
		kcom_bufio_t *c;
		if (KCOM_SUCCEEDED(kcom_bufio_copy(w->io, 0, 20000, &c)))
			kcom_bufio_release(c);
	}
	kcom_bufvec_release(vec);
	kcom_bufio_release(w->io); /* both drop their object at once */
	return NULL;
}

START_TEST(test_two_threads)
{
	for (int round = 0; round < 20; round++) {
		kcom_bufio_t *io = pattern_chain(30000, 1024, 700), *copy;
		ck_assert_int_eq(kcom_bufio_copy(io, 0, 30000, &copy), KCOM_OK);
		kcom_bufio_addref(io);
		kcom_bufio_addref(copy);
		struct worker a = { io, 0x11, 0 }, b = { copy, 0x22, 0 };
		pthread_t ta, tb;
		pthread_create(&ta, NULL, worker_main, &a);
		pthread_create(&tb, NULL, worker_main, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		ck_assert_int_eq(a.failed, 0);
		ck_assert_int_eq(b.failed, 0);
		uint8_t x[30000], y[30000];
		size_t got;
		ck_assert_int_eq(kcom_bufio_read(io, x, 0, 30000, &got), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_read(copy, y, 0, 30000, &got), KCOM_OK);
		static uint8_t written[30000];
		memset(written, 0, sizeof(written));
		for (int r = 0; r < 200; r++)
			memset(written + (size_t)(r * 997) % 20000, 1, 3000);
		for (size_t i = 0; i < 30000; i++) {
			ck_assert_uint_eq(x[i], written[i] ? 0x11 : contract_pattern(i));
			ck_assert_uint_eq(y[i], written[i] ? 0x22 : contract_pattern(i));
		}
		assert_sane(io);
		assert_sane(copy);
		ck_assert_uint_eq(kcom_bufio_release(copy), 0);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
	}
}
END_TEST

/* ---- the seek index ---- */

/*
 * Reads enough (random offsets and lengths, some across segments) that the chain builds its
 * seek index whatever the build's thresholds, comparing each with `want`.  Returns how many
 * allocations the reads made: the index is the only thing a read ever allocates.
 */
static unsigned long read_all_ways(kcom_bufio_t *io, const uint8_t *want, size_t size)
{
	unsigned long before = testenv_allocs();
	uint8_t buf[700];
	for (unsigned r = 0; r < 3000; r++) {
		size_t off = (size_t)(r * 7919u) % size, n = 1 + (size_t)(r * 131u) % sizeof(buf), got;
		ck_assert_int_eq(kcom_bufio_read(io, buf, (kcom_off_t)off, n, &got), KCOM_OK);
		ck_assert_uint_eq(got, MIN(n, size - off));
		ck_assert_mem_eq(buf, want + off, got);
	}
	assert_sane(io); /* the sanity hook checks the index against the tree */
	return testenv_allocs() - before;
}

static void write_bytes(kcom_bufio_t *io, uint8_t *model, size_t off, size_t n, uint8_t v)
{
	uint8_t buf[4096];
	ck_assert_uint_le(n, sizeof(buf));
	memset(buf, v, n);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, buf, (kcom_off_t)off, n, &put), KCOM_OK);
	ck_assert_uint_eq(put, n);
	memset(model + off, v, n);
	assert_sane(io);
}

/* Every kind of change drops the index, and reads after it see the change. */
START_TEST(test_seek_index_follows_changes)
{
	enum { SIZE = 40000 };
	static uint8_t model[SIZE + 8192];
	kcom_bufio_t *io = pattern_chain(SIZE, 512, 300); /* 300-byte and 212-byte segments */
	for (size_t i = 0; i < SIZE; i++)
		model[i] = contract_pattern(i);
	size_t size = SIZE;
	ck_assert_uint_eq(read_all_ways(io, model, size), 1); /* built once */
	ck_assert_uint_eq(read_all_ways(io, model, size), 0); /* and kept */

	/* In place: the segments stay, so does the index. */
	write_bytes(io, model, 1000, 100, 0xa1);
	write_bytes(io, model, 2990, 50, 0xa2); /* across two segments */
	ck_assert_uint_eq(read_all_ways(io, model, size), 0);

	/* A write to bytes a copy shares: new clusters, a new index. */
	kcom_bufio_t *copy;
	ck_assert_int_eq(kcom_bufio_copy(io, 0, size, &copy), KCOM_OK);
	write_bytes(io, model, 5000, 10, 0xa3);
	ck_assert_uint_ge(read_all_ways(io, model, size), 1);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);

	/* Appending in place, appending a cluster, prepending, trimming, shrinking. */
	write_bytes(io, model, size, 100, 0xa4);
	size += 100;
	ck_assert_uint_ge(read_all_ways(io, model, size), 1);
	write_bytes(io, model, size, 4000, 0xa5);
	size += 4000;
	ck_assert_uint_ge(read_all_ways(io, model, size), 1);
	kcom_chain_t *ch = chain_of(io);
	uint8_t head[64];
	memset(head, 0xa6, sizeof(head));
	ck_assert_int_eq(kcom_chain_prepend(ch, head, sizeof(head)), KCOM_OK);
	memmove(model + sizeof(head), model, size);
	memcpy(model, head, sizeof(head));
	size += sizeof(head);
	ck_assert_uint_ge(read_all_ways(io, model, size), 1);
	ck_assert_int_eq(kcom_chain_trim(ch, 10, 20), KCOM_OK);
	size -= 30;
	memmove(model, model + 10, size);
	ck_assert_uint_ge(read_all_ways(io, model, size), 1);
	ck_assert_int_eq(kcom_bufio_setsize(io, 20000), KCOM_OK);
	size = 20000;
	ck_assert_uint_ge(read_all_ways(io, model, size), 1);
	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * A write through the index goes in place only while the segment is the object's alone: once a
 * copy, or another chain by reference, shares it, the write must not reach them.
 */
START_TEST(test_seek_index_writes_respect_sharing)
{
	enum { SIZE = 30000 };
	static uint8_t model[SIZE];
	kcom_bufio_t *io = pattern_chain(SIZE, 256, 256); /* 118 segments: tall enough for an index */
	for (size_t i = 0; i < SIZE; i++)
		model[i] = contract_pattern(i);
	ck_assert_uint_eq(read_all_ways(io, model, SIZE), 1);
	unsigned long allocs = testenv_allocs();
	write_bytes(io, model, 2048, 1024, 0xb1); /* one whole private segment: in place */
	write_bytes(io, model, 4100, 10, 0xb2);
	ck_assert_uint_eq(testenv_allocs(), allocs);

	for (int how = 0; how < 3; how++) {
		kcom_bufio_t *other;
		if (how == 0) {
			ck_assert_int_eq(kcom_bufio_copy(io, 0, SIZE, &other), KCOM_OK);
		} else if (how == 1) {
			ck_assert_int_eq(kcom_bufio_copy(io, 3000, 9000, &other), KCOM_OK);
		} else {
			ck_assert_int_eq(kcom_mbufchain_create(0, &other), KCOM_OK);
			kcom_chain_t *och = chain_of(other);
			ck_assert_int_eq(kcom_chain_append(och, io, 0, SIZE), KCOM_OK);
			kcom_chain_release(och);
		}
		size_t base = how == 1 ? 3000 : 0, osize = how == 1 ? 9000 : SIZE;
		uint8_t *before = malloc(osize);
		memcpy(before, model + base, osize);
		write_bytes(io, model, 4096, 1024, (uint8_t)(0xc0 + how));
		write_bytes(io, model, 4100, 10, (uint8_t)(0xd0 + how));
		ck_assert_uint_le(read_all_ways(io, model, SIZE), 1);
		uint8_t *got = malloc(osize);
		size_t n;
		ck_assert_int_eq(kcom_bufio_read(other, got, 0, osize, &n), KCOM_OK);
		ck_assert_uint_eq(n, osize);
		ck_assert_mem_eq(got, before, osize);
		/* And the other way round. */
		write_bytes(other, got, 1500, 700, 0xee);
		ck_assert_uint_le(read_all_ways(io, model, SIZE), 1);
		free(got);
		free(before);
		ck_assert_uint_eq(kcom_bufio_release(other), 0);
	}
	/* Alone again: in place once more (the write finds it so, then the index knows it). */
	write_bytes(io, model, 8192, 1024, 0xb3);
	allocs = testenv_allocs();
	write_bytes(io, model, 8192, 1024, 0xb4);
	ck_assert_uint_eq(testenv_allocs(), allocs);
	ck_assert_uint_eq(read_all_ways(io, model, SIZE), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* Many small segments in one bucket beside a large one: the seek bisects. */
START_TEST(test_seek_index_uneven_segments)
{
	enum { TINY = 300, BIG = 100000 };
	static uint8_t model[TINY + BIG];
	kcom_bufio_t *io, *big;
	ck_assert_int_eq(kcom_mbufchain_create(1, &io), KCOM_OK); /* one-byte clusters */
	for (size_t i = 0; i < TINY; i++)
		model[i] = (uint8_t)(i * 7 + 1);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, model, 0, TINY, &put), KCOM_OK);
	ck_assert_int_eq(kcom_membuf_create(BIG, &big), KCOM_OK);
	for (size_t i = 0; i < BIG; i++)
		model[TINY + i] = contract_pattern(i);
	ck_assert_int_eq(kcom_bufio_write(big, model + TINY, 0, BIG, &put), KCOM_OK);
	kcom_chain_t *ch = chain_of(io);
	ck_assert_int_eq(kcom_chain_append(ch, big, 0, BIG), KCOM_OK);
	kcom_chain_release(ch);
	ck_assert_uint_eq(kcom_bufio_release(big), 0);
	ck_assert_uint_eq(segments(io, 0, TINY + BIG), TINY + 1);
	ck_assert_uint_eq(read_all_ways(io, model, TINY + BIG), 1);
	for (size_t off = 0; off < TINY + 10; off++) {
		uint8_t b;
		size_t got;
		ck_assert_int_eq(kcom_bufio_read(io, &b, (kcom_off_t)off, 1, &got), KCOM_OK);
		ck_assert_uint_eq(b, model[off]);
	}
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * Small reads (the fast path of mc_read) once the index is built: every length up to 64 at
 * every offset around segment boundaries, at the end, and bad arguments, which change nothing.
 */
START_TEST(test_seek_index_small_reads)
{
	enum { SIZE = 40000 };
	static uint8_t model[SIZE];
	kcom_bufio_t *io = pattern_chain(SIZE, 512, 300); /* boundaries at 300, 512, 812, 1024, ... */
	for (size_t i = 0; i < SIZE; i++)
		model[i] = contract_pattern(i);
	ck_assert_uint_eq(read_all_ways(io, model, SIZE), 1); /* the index is built: the fast path is live */
	unsigned long allocs = testenv_allocs();
	static const size_t around[] = { 0, 300, 512, 812, 1024, 20480, SIZE - 64 };
	uint8_t buf[80];
	size_t got;
	for (size_t a = 0; a < sizeof(around) / sizeof(around[0]); a++)
		for (size_t off = around[a] > 64 ? around[a] - 64 : 0; off < around[a] + 64 && off < SIZE; off++)
			for (size_t n = 1; n <= 65; n++) {
				memset(buf, 0xee, sizeof(buf));
				ck_assert_int_eq(kcom_bufio_read(io, buf, (kcom_off_t)off, n, &got), KCOM_OK);
				ck_assert_uint_eq(got, MIN(n, SIZE - off));
				ck_assert_mem_eq(buf, model + off, got);
				ck_assert_uint_eq(buf[got], 0xee); /* nothing past what it says it read */
			}
	ck_assert_uint_eq(testenv_allocs(), allocs); /* reads through the index allocate nothing */

	/* At and past the end: nothing read; bad arguments: an error, and the bytes unchanged. */
	got = 7;
	ck_assert_int_eq(kcom_bufio_read(io, buf, SIZE, 8, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(kcom_bufio_read(io, buf, SIZE + 100, 8, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(kcom_bufio_read(io, NULL, 0, 8, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_read(io, buf, 0, 8, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_read(io, buf, -8, 8, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_read(io, buf, KCOM_OFF_MAX - 4, 8, &got), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufio_read(io, buf, 100, 0, &got), KCOM_OK);
	ck_assert_uint_eq(got, 0);
	ck_assert_uint_eq(read_all_ways(io, model, SIZE), 0); /* bytes as they were, index kept */
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* A failed index allocation costs nothing but speed: the reads go on, the build comes later. */
START_TEST(test_seek_index_allocfail)
{
	enum { SIZE = 20000 };
	static uint8_t model[SIZE];
	kcom_bufio_t *io = pattern_chain(SIZE, 256, 256);
	for (size_t i = 0; i < SIZE; i++)
		model[i] = contract_pattern(i);
	testenv_fail_at(1);
	ck_assert_uint_eq(read_all_ways(io, model, SIZE), 1); /* the failed try (not counted), then the index */
	ck_assert(testenv_failure_hit());
	testenv_fail_at(0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

struct reader {
	kcom_bufio_t *io;
	size_t size;
	unsigned seed;
	int failed;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[512];
	for (unsigned i = 0; i < 20000 && !r->failed; i++) {
		size_t off = (size_t)((i + r->seed) * 7919u) % r->size, n = 1 + (size_t)(i * 37u) % sizeof(buf), got;
		if (KCOM_FAILED(kcom_bufio_read(r->io, buf, (kcom_off_t)off, n, &got)))
			r->failed = 1;
		for (size_t k = 0; k < got; k++)
			if (buf[k] != contract_pattern(off + k))
				r->failed = 2;
	}
	return NULL;
}

/* Two threads reading one object race to build its index: one wins, nothing leaks. */
START_TEST(test_seek_index_two_readers)
{
	for (int round = 0; round < 20; round++) {
		kcom_bufio_t *io = pattern_chain(50000, 512, 512);
		struct reader a = { io, 50000, 1, 0 }, b = { io, 50000, 5, 0 };
		pthread_t ta, tb;
		pthread_create(&ta, NULL, reader_main, &a);
		pthread_create(&tb, NULL, reader_main, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		ck_assert_int_eq(a.failed, 0);
		ck_assert_int_eq(b.failed, 0);
		assert_sane(io);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
	}
}
END_TEST

/* ---- the randomized model test ---- */

#define SLOTS 4
#define MODEL_MAX 6000u

struct model {
	kcom_bufio_t *io;
	uint8_t *bytes;
	size_t size;
};

static uint64_t rng_state;
static unsigned long long seed;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t rndn(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

#define MCHECK(cond, ...)                                                                                         \
	ck_assert_msg((cond), "seed %llu (set KCOM_SEED to repeat), step %lu, op %d: %s", seed, step, op, #cond)

static unsigned long step;
static int op;

static void model_set(struct model *m, size_t size)
{
	m->bytes = realloc(m->bytes, size + 1);
	if (size > m->size)
		memset(m->bytes + m->size, 0, size - m->size);
	m->size = size;
}

static void model_fresh(struct model *m)
{
	size_t cl = (size_t[]){ 16, 64, 256, 4096 }[rndn(4)];
	ck_assert_int_eq(kcom_mbufchain_create(cl, &m->io), KCOM_OK);
	m->size = 0;
	free(m->bytes);
	m->bytes = NULL;
	model_set(m, 0);
}

static void model_check(struct model *m)
{
	if (m->io == NULL)
		return;
	size_t size, got;
	MCHECK(kcom_bufio_getsize(m->io, &size) == KCOM_OK);
	MCHECK(size == m->size);
	uint8_t *now = malloc(size + 1);
	MCHECK(kcom_bufio_read(m->io, now, 0, size, &got) == KCOM_OK);
	MCHECK(got == size);
	MCHECK(size == 0 || memcmp(now, m->bytes, size) == 0);
	free(now);
	kcom_debug_t *dbg;
	MCHECK(kcom_bufio_query(m->io, &kcom_debug_iid, (void **)&dbg) == KCOM_OK);
	char why[160] = "";
	kcom_error_t err = kcom_debug_check(dbg, why, sizeof(why));
	kcom_debug_release(dbg);
	ck_assert_msg(KCOM_SUCCEEDED(err), "seed %llu, step %lu, op %d: sanity: %s", seed, step, op, why);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static void model_step(struct model *ms)
{
	struct model *m = &ms[rndn(SLOTS)];
	if (m->io == NULL) {
		model_fresh(m);
		return;
	}
	struct model *o = &ms[rndn(SLOTS)];
	uint8_t buf[1200];
	size_t put, got, off, n;
	kcom_error_t err;
	op = (int)rndn(13);
	switch (op) {
	case 0: /* read anywhere */
		off = rndn(m->size + 50);
		n = rndn(sizeof(buf));
		MCHECK(kcom_bufio_read(m->io, buf, (kcom_off_t)off, n, &got) == KCOM_OK);
		MCHECK(got == (off >= m->size ? 0 : MIN(n, m->size - off)));
		MCHECK(got == 0 || memcmp(buf, m->bytes + off, got) == 0);
		break;
	case 1: /* write anywhere, past the end too */
	case 2:
		off = rndn(m->size + 300);
		n = rndn(rndn(4) == 0 ? sizeof(buf) : 40) + 1;
		if (off + n > MODEL_MAX)
			break;
		fill_random(buf, n);
		MCHECK(kcom_bufio_write(m->io, buf, (kcom_off_t)off, n, &put) == KCOM_OK);
		MCHECK(put == n);
		if (off + n > m->size)
			model_set(m, off + n);
		memcpy(m->bytes + off, buf, n);
		break;
	case 3: /* setsize */
		n = rndn(MODEL_MAX);
		MCHECK(kcom_bufio_setsize(m->io, n) == KCOM_OK);
		model_set(m, n);
		break;
	case 4: { /* copy a range into another slot */
		off = rndn(m->size + 1);
		n = rndn(m->size - off + 1);
		kcom_bufio_t *c;
		MCHECK(kcom_bufio_copy(m->io, (kcom_off_t)off, n, &c) == KCOM_OK);
		uint8_t *bytes = malloc(n + 1);
		memcpy(bytes, m->bytes + off, n);
		if (o->io != NULL)
			kcom_bufio_release(o->io);
		free(o->bytes);
		o->io = c;
		o->bytes = bytes;
		o->size = n;
		break;
	}
	case 5: { /* map, store through the mapping, maybe write elsewhere while mapped */
		if (m->size == 0)
			break;
		off = rndn(m->size);
		n = MIN(m->size - off, (size_t)700);
		n = rndn(n) + 1;
		void *addr;
		MCHECK(kcom_bufio_map(m->io, &addr, (kcom_off_t)off, n) == KCOM_OK);
		MCHECK(memcmp(addr, m->bytes + off, n) == 0);
		size_t k = rndn(n);
		((uint8_t *)addr)[k] = (uint8_t)rnd();
		m->bytes[off + k] = ((uint8_t *)addr)[k];
		if (rndn(2)) {
			size_t woff = rndn(m->size), want = rndn(30) + 1, wn = MIN(want, m->size - woff);
			fill_random(buf, wn);
			err = kcom_bufio_write(m->io, buf, (kcom_off_t)woff, wn, &put);
			MCHECK(err == KCOM_OK || err == KCOM_E_BUSY);
			if (err == KCOM_OK) {
				MCHECK(put == wn);
				memcpy(m->bytes + woff, buf, wn);
			}
			MCHECK(memcmp(addr, m->bytes + off, n) == 0); /* the mapping still is the bytes */
		}
		MCHECK(kcom_bufio_unmap(m->io, addr, (kcom_off_t)off, n) == KCOM_OK);
		break;
	}
	case 6: { /* map_vec, writing through it when writable */
		if (m->size == 0)
			break;
		off = rndn(m->size);
		n = rndn(m->size - off) + 1;
		unsigned flags = rndn(2) ? KCOM_MAP_READ : KCOM_MAP_READ | KCOM_MAP_WRITE;
		kcom_bufvec_t *vec;
		MCHECK(kcom_bufio_query(m->io, &kcom_bufvec_iid, (void **)&vec) == KCOM_OK);
		struct kcom_iovec iov[16];
		size_t count;
		err = kcom_bufvec_map_vec(vec, (kcom_off_t)off, n, flags, iov, 16, &count);
		MCHECK(err == KCOM_OK || err == KCOM_E_TOOSMALL);
		if (err == KCOM_OK) {
			size_t at = off;
			for (size_t i = 0; i < count; i++) {
				MCHECK(memcmp(iov[i].base, m->bytes + at, iov[i].len) == 0);
				if (flags & KCOM_MAP_WRITE) {
					((uint8_t *)iov[i].base)[0] ^= 0x5a;
					m->bytes[at] ^= 0x5a;
				}
				at += iov[i].len;
			}
			MCHECK(at == off + n);
			MCHECK(kcom_bufvec_unmap_vec(vec, (kcom_off_t)off, n, flags, iov, count) == KCOM_OK);
		} else {
			MCHECK(count > 16);
		}
		kcom_bufvec_release(vec);
		break;
	}
	case 7: { /* prepend */
		kcom_chain_t *ch = chain_of(m->io);
		n = rndn(100) + 1;
		if (m->size + n > MODEL_MAX) {
			kcom_chain_release(ch);
			break;
		}
		if (rndn(4) == 0)
			MCHECK(kcom_chain_reserve(ch, rndn(200)) == KCOM_OK);
		fill_random(buf, n);
		MCHECK(kcom_chain_prepend(ch, buf, n) == KCOM_OK);
		kcom_chain_release(ch);
		uint8_t *bytes = malloc(m->size + n + 1);
		memcpy(bytes, buf, n);
		memcpy(bytes + n, m->bytes, m->size);
		free(m->bytes);
		m->bytes = bytes;
		m->size += n;
		break;
	}
	case 8: { /* append a range of another slot (or itself) by reference */
		if (o->io == NULL)
			break;
		off = rndn(o->size + 1);
		n = rndn(o->size - off + 1);
		if (m->size + n > MODEL_MAX)
			break;
		kcom_chain_t *ch = chain_of(m->io);
		uint8_t *add = malloc(n + 1);
		memcpy(add, o->bytes + off, n);
		MCHECK(kcom_chain_append(ch, o->io, (kcom_off_t)off, n) == KCOM_OK);
		kcom_chain_release(ch);
		size_t old = m->size;
		model_set(m, old + n);
		memcpy(m->bytes + old, add, n);
		free(add);
		break;
	}
	case 9: { /* append from a membuf */
		n = rndn(500);
		if (m->size + n > MODEL_MAX)
			break;
		kcom_bufio_t *mb;
		MCHECK(kcom_membuf_create(n, &mb) == KCOM_OK);
		fill_random(buf, n);
		MCHECK(n == 0 || kcom_bufio_write(mb, buf, 0, n, &put) == KCOM_OK);
		kcom_chain_t *ch = chain_of(m->io);
		MCHECK(kcom_chain_append(ch, mb, 0, n) == KCOM_OK);
		kcom_chain_release(ch);
		if (rndn(2) && n > 0)
			MCHECK(kcom_bufio_write(mb, "!", 0, 1, &put) == KCOM_OK); /* not seen by the chain */
		kcom_bufio_release(mb);
		size_t old = m->size;
		model_set(m, old + n);
		memcpy(m->bytes + old, buf, n);
		break;
	}
	case 10: { /* split: the tail goes to another slot */
		if (o == m)
			break;
		off = rndn(m->size + 1);
		kcom_chain_t *ch = chain_of(m->io);
		kcom_bufio_t *tail;
		MCHECK(kcom_chain_split(ch, (kcom_off_t)off, &tail) == KCOM_OK);
		kcom_chain_release(ch);
		uint8_t *bytes = malloc(m->size - off + 1);
		memcpy(bytes, m->bytes + off, m->size - off);
		if (o->io != NULL)
			kcom_bufio_release(o->io);
		free(o->bytes);
		o->io = tail;
		o->bytes = bytes;
		o->size = m->size - off;
		m->size = off;
		break;
	}
	case 11: { /* trim */
		size_t front = rndn(m->size + 1), back = rndn(m->size - front + 1);
		kcom_chain_t *ch = chain_of(m->io);
		MCHECK(kcom_chain_trim(ch, front, back) == KCOM_OK);
		kcom_chain_release(ch);
		memmove(m->bytes, m->bytes + front, m->size - front - back);
		m->size -= front + back;
		break;
	}
	case 12: /* release */
		if (rndn(4) != 0)
			break;
		MCHECK(kcom_bufio_release(m->io) == 0);
		m->io = NULL;
		break;
	}
}

START_TEST(test_random_model)
{
	const char *env = getenv("KCOM_SEED");
	seed = env != NULL ? strtoull(env, NULL, 0) : (unsigned long long)time(NULL);
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	struct model ms[SLOTS] = { { 0 } };
	/* 10^5 steps; KCOM_MODEL_STEPS changes it (check-valgrind runs fewer: valgrind is ~40x slower). */
	const char *steps_env = getenv("KCOM_MODEL_STEPS");
	unsigned long steps = steps_env != NULL ? strtoul(steps_env, NULL, 10) : 100000;
	for (step = 0; step < steps; step++) {
		model_step(ms);
		for (size_t i = 0; i < SLOTS; i++)
			model_check(&ms[i]);
	}
	for (size_t i = 0; i < SLOTS; i++) {
		if (ms[i].io != NULL)
			ck_assert_uint_eq(kcom_bufio_release(ms[i].io), 0);
		free(ms[i].bytes);
	}
}
END_TEST

Suite *mbufchain_suite(void)
{
	Suite *s = suite_create("mbufchain");
	TCase *tc = tcase_create("mbufchain");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_map_inside_segment_is_direct);
	tcase_add_test(tc, test_map_across_segments_pulls_up);
	tcase_add_test(tc, test_map_vec_no_copy);
	tcase_add_test(tc, test_map_vec_readonly_keeps_sharing);
	tcase_add_test(tc, test_mapped_bytes_never_move);
	tcase_add_test(tc, test_prepend_in_reserved_room);
	tcase_add_test(tc, test_append_by_reference);
	tcase_add_test(tc, test_split_and_trim);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_class_and_interfaces);
	tcase_add_test(tc, test_seek_index_follows_changes);
	tcase_add_test(tc, test_seek_index_writes_respect_sharing);
	tcase_add_test(tc, test_seek_index_uneven_segments);
	tcase_add_test(tc, test_seek_index_small_reads);
	tcase_add_test(tc, test_seek_index_allocfail);
	suite_add_tcase(s, tc);

	/*
	 * Megabyte chains, threads and the 10^5-step model: tagged "slow", which check-valgrind
	 * leaves out (CK_EXCLUDE_TAGS=slow: valgrind is ~40x slower); every other build runs them.
	 */
	tc = tcase_create("mbufchain-large");
	tcase_set_tags(tc, "slow");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_copy_cost_constant);
	tcase_add_test(tc, test_write_after_copy_cost);
	tcase_add_test(tc, test_write_after_copy_allocfail);
	tcase_add_test(tc, test_append_in_place);
	tcase_add_test(tc, test_appends_are_adjacent);
	tcase_add_test(tc, test_two_threads);
	tcase_add_test(tc, test_seek_index_two_readers);
	tcase_add_test(tc, test_random_model);
	suite_add_tcase(s, tc);
	return s;
}
