/*
 * membuf's own promises, beyond the contract: wrapping caller memory, the release callback,
 * copy-on-write sharing (measured in bytes allocated), geometric growth, and the busy rules
 * that keep memory from moving under a mapping.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <bufio/bufinfo.h>
#include <bufio/bufvec.h>
#include <com/com.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/suites.h"
#include "tests/testenv.h"

static int released;
static void *released_mem;

static void count_release(void *ctx, void *mem, size_t len)
{
	ck_assert_ptr_eq(ctx, &released);
	ck_assert_uint_eq(len, 64);
	released++;
	released_mem = mem;
}

/* Each test counts allocations from a clean osenv. */
static void setup(void)
{
	testenv_install();
	released = 0;
	released_mem = NULL;
}

static void teardown(void)
{
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}

START_TEST(test_wrap_uses_caller_memory)
{
	uint8_t mem[64];
	memset(mem, 1, sizeof(mem));
	kcom_bufio_t *io, *copy;
	ck_assert_int_eq(kcom_membuf_wrap(mem, sizeof(mem), count_release, &released, &io), KCOM_OK);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, "abc", 10, 3, &put), KCOM_OK);
	ck_assert_mem_eq(mem + 10, "abc", 3);
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 5, 10), KCOM_OK);
	ck_assert_ptr_eq(addr, mem + 5);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 5, 10), KCOM_OK);

	/* A copy has memory of its own at once, and outlives the wrapper. */
	ck_assert_int_eq(kcom_bufio_copy(io, 0, 64, &copy), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(copy, "zzz", 10, 3, &put), KCOM_OK);
	ck_assert_mem_eq(mem + 10, "abc", 3);

	/* Past the caller's memory nothing fits. */
	ck_assert_int_eq(kcom_bufio_write(io, "x", 64, 1, &put), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_bufio_write(io, "xyz", 62, 3, &put), KCOM_OK);
	ck_assert_uint_eq(put, 2);
	ck_assert_int_eq(kcom_bufio_setsize(io, 65), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_bufio_setsize(io, 32), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_setsize(io, 64), KCOM_OK);
	ck_assert_uint_eq(mem[40], 0); /* regrown with zeros */

	ck_assert_int_eq(released, 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	ck_assert_int_eq(released, 1);
	ck_assert_ptr_eq(released_mem, mem);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_int_eq(released, 1);
}
END_TEST

START_TEST(test_wrap_args)
{
	kcom_bufio_t *io = (void *)1;
	ck_assert_int_eq(kcom_membuf_wrap(NULL, 1, NULL, NULL, &io), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(io);
	ck_assert_int_eq(kcom_membuf_wrap(NULL, 0, count_release, &released, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_membuf_create(1, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_membuf_wrap(NULL, 0, NULL, NULL, &io), KCOM_OK);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, "x", 0, 1, &put), KCOM_E_NOSPACE);
	kcom_bufio_release(io);
	ck_assert_int_eq(released, 0);
}
END_TEST

/* copy shares the bytes: it allocates an object, not a second buffer, until someone writes. */
START_TEST(test_copy_shares_until_written)
{
	const size_t size = 1 << 20;
	kcom_bufio_t *io, *copy;
	ck_assert_int_eq(kcom_membuf_create(size, &io), KCOM_OK);
	long long base = testenv_bytes_outstanding();
	ck_assert_int_ge(base, (long long)size);

	ck_assert_int_eq(kcom_bufio_copy(io, 0, size, &copy), KCOM_OK);
	ck_assert_int_lt(testenv_bytes_outstanding() - base, 4096);

	/* Reading either side, and a read-only vector mapping, copy nothing. */
	uint8_t b;
	size_t got, count;
	ck_assert_int_eq(kcom_bufio_read(copy, &b, 5, 1, &got), KCOM_OK);
	kcom_bufvec_t *vec;
	struct kcom_iovec iov[1];
	ck_assert_int_eq(kcom_bufio_query(copy, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	ck_assert_int_eq(kcom_bufvec_map_vec(vec, 0, size, KCOM_MAP_READ, iov, 1, &count), KCOM_OK);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_lt(testenv_bytes_outstanding() - base, 4096);

	/* Writing the mapped, shared side would move memory under the mapping: busy. */
	ck_assert_int_eq(kcom_bufio_write(copy, "w", 0, 1, &got), KCOM_E_BUSY);
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(copy, &addr, 0, 1), KCOM_E_BUSY);
	/* The other side may write: it moves, the mapped side keeps its bytes. */
	ck_assert_int_eq(kcom_bufio_write(io, "w", 0, 1, &got), KCOM_OK);
	ck_assert_int_ge(testenv_bytes_outstanding() - base, (long long)size);
	ck_assert_uint_ne(((uint8_t *)iov[0].base)[0], 'w');
	ck_assert_int_eq(kcom_bufvec_unmap_vec(vec, 0, size, KCOM_MAP_READ, iov, count), KCOM_OK);
	kcom_bufvec_release(vec);

	/* The copy is now alone with the old store: writing it copies nothing more. */
	long long now = testenv_bytes_outstanding();
	ck_assert_int_eq(kcom_bufio_write(copy, "c", 0, 1, &got), KCOM_OK);
	ck_assert_int_eq(testenv_bytes_outstanding(), now);

	kcom_bufio_release(copy);
	kcom_bufio_release(io);
}
END_TEST

/* A copy taken while a writable mapping is outstanding does not see later stores through it. */
START_TEST(test_copy_while_mapped)
{
	kcom_bufio_t *io, *copy;
	ck_assert_int_eq(kcom_membuf_create(128, &io), KCOM_OK);
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 0, 128), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_copy(io, 0, 128, &copy), KCOM_OK);
	memset(addr, 0x99, 128);
	uint8_t b;
	size_t got;
	ck_assert_int_eq(kcom_bufio_read(copy, &b, 64, 1, &got), KCOM_OK);
	ck_assert_uint_eq(b, 0);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 0, 128), KCOM_OK);
	kcom_bufio_release(copy);
	kcom_bufio_release(io);
}
END_TEST

/* Appending byte by byte reallocates O(log n) times, and keeps every byte. */
START_TEST(test_growth_is_geometric)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_membuf_create(0, &io), KCOM_OK);
	unsigned long before = testenv_allocs();
	const size_t n = 100000;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = contract_pattern(i);
		size_t put;
		ck_assert_int_eq(kcom_bufio_write(io, &b, (kcom_off_t)i, 1, &put), KCOM_OK);
	}
	ck_assert_uint_le(testenv_allocs() - before, 20);
	contract_assert_pattern(io, n);
	kcom_bufio_release(io);
}
END_TEST

START_TEST(test_map_alignment_and_stability)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_membuf_create(4096, &io), KCOM_OK);
	void *a, *b;
	ck_assert_int_eq(kcom_bufio_map(io, &a, 0, 4096), KCOM_OK);
	ck_assert_uint_eq((uintptr_t)a % 64, 0);
	ck_assert_int_eq(kcom_bufio_map(io, &b, 100, 1), KCOM_OK);
	ck_assert_ptr_eq(b, (uint8_t *)a + 100);
	/* Zero-length mappings are allowed, at the end too, and must be unmapped like any. */
	void *z;
	ck_assert_int_eq(kcom_bufio_map(io, &z, 4096, 0), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, z, 4096, 0), KCOM_OK);
	ck_assert_uint_eq(contract_refs(io), 3);
	ck_assert_int_eq(kcom_bufio_unmap(io, b, 100, 1), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, a, 0, 4096), KCOM_OK);
	ck_assert_uint_eq(contract_refs(io), 1);
	kcom_bufio_release(io);
}
END_TEST

START_TEST(test_no_wire)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_membuf_create(4096, &io), KCOM_OK);
	kcom_phys_t phys = 1;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, 4096), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(phys, 0);
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	struct kcom_physseg segs[4];
	size_t count = 7;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 4096, segs, 4, &count), KCOM_E_NOTIMPL);
	ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	kcom_bufio_release(io);
}
END_TEST

START_TEST(test_class_entry)
{
	const struct kcom_class *cls;
	ck_assert_int_eq(kcom_class_find(&kcom_membuf_clsid, &cls), KCOM_OK);
	ck_assert_ptr_eq(cls, &kcom_membuf_class);
	ck_assert_str_eq(cls->name, "membuf");
	size_t n = 0;
	for (const struct kcom_class_iface *f = cls->ifaces; f->iid != NULL; f++, n++) {
		void *obj;
		ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, f->iid, &obj), KCOM_OK);
		kcom_iunknown_release(obj);
	}
	ck_assert_uint_eq(n, 6); /* IUnknown, absio, bufio, bufvec, debug, bufinfo */
}
END_TEST

/* Buffer info: the name given at creation; COW_SHARED exactly while a copy shares the store. */
START_TEST(test_info_name_and_sharing)
{
	kcom_bufio_t *io, *copy;
	ck_assert_int_eq(kcom_membuf_create_named(100, "dataspace A", &io), KCOM_OK);
	kcom_bufinfo_t *bi;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi), KCOM_OK);
	struct kcom_buffer_info info;
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_str_eq(info.name, "dataspace A");
	ck_assert_uint_eq(info.size, 100);
	ck_assert_uint_eq(info.flags, KCOM_BUFINFO_RESIZABLE);
	ck_assert_uint_eq(info.natives, KCOM_NATIVE_MAP | KCOM_NATIVE_COPY | KCOM_NATIVE_BUFVEC);
	ck_assert_uint_eq(info.natives, kcom_membuf_class.natives); /* from the class description */

	ck_assert_int_eq(kcom_bufio_copy(io, 0, 50, &copy), KCOM_OK);
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_uint_eq(info.flags, KCOM_BUFINFO_RESIZABLE | KCOM_BUFINFO_COW_SHARED);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, "x", 0, 1, &put), KCOM_OK); /* unshares */
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_uint_eq(info.flags, KCOM_BUFINFO_RESIZABLE);
	kcom_bufio_release(copy);

	/* An unnamed one, and a wrapper (fixed size). */
	kcom_bufinfo_release(bi);
	kcom_bufio_release(io);
	ck_assert_int_eq(kcom_membuf_create_named(0, NULL, &io), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi), KCOM_OK);
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_str_eq(info.name, "");
	kcom_bufinfo_release(bi);
	kcom_bufio_release(io);
	static char mem[16];
	ck_assert_int_eq(kcom_membuf_wrap(mem, sizeof(mem), NULL, NULL, &io), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi), KCOM_OK);
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_uint_eq(info.flags, 0);
	kcom_bufinfo_release(bi);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	ck_assert_int_eq(kcom_membuf_create_named(0, "x", NULL), KCOM_E_INVALIDARG);
}
END_TEST

Suite *membuf_suite(void)
{
	Suite *s = suite_create("membuf");
	TCase *tc = tcase_create("membuf");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_wrap_uses_caller_memory);
	tcase_add_test(tc, test_wrap_args);
	tcase_add_test(tc, test_copy_shares_until_written);
	tcase_add_test(tc, test_copy_while_mapped);
	tcase_add_test(tc, test_growth_is_geometric);
	tcase_add_test(tc, test_map_alignment_and_stability);
	tcase_add_test(tc, test_no_wire);
	tcase_add_test(tc, test_class_entry);
	tcase_add_test(tc, test_info_name_and_sharing);
	suite_add_tcase(s, tc);
	return s;
}
