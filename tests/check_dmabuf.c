/*
 * dmabuf's own suite (the contract suite runs its rows too): capacity rules, constraints, the
 * host that hides physical addresses, pins that fail, and the proof of the addresses.
 *
 * The proof never trusts kcom: every physical address handed out is compared with an
 * independent read of /proc/self/pagemap, and a test "device" moves bytes to and from a
 * wire_vec segment list by looking the physical addresses up among the ranges the test osenv
 * saw pinned.  Both need frame numbers, which Linux shows to CAP_SYS_ADMIN only: without them
 * those tests print why they skip.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/com.h>
#include <com/debug.h>
#include <impls/dmabuf.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/plainio.h"
#include "tests/suites.h"
#include "tests/testenv.h"

#define PAGE KCOM_DMABUF_PAGE

/* Independent translation and the host probe: tests/hostprobe.c. */
#define pagemap_phys test_pagemap_phys

static int available(unsigned cap, const char *test)
{
	const char *why = dmabuf_test_probe(cap);
	if (why == NULL)
		return 1;
	fprintf(stderr, "SKIP: dmabuf %s: %s\n", test, why);
	return 0;
}

/* ---- helpers ---- */

static void assert_sane(kcom_bufio_t *io)
{
	kcom_debug_t *dbg;
	char why[160] = "";
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg), KCOM_OK);
	kcom_error_t err = kcom_debug_check(dbg, why, sizeof(why));
	kcom_debug_release(dbg);
	ck_assert_msg(KCOM_SUCCEEDED(err), "sanity: %s", why);
}

static uint32_t wirings(kcom_bufio_t *io)
{
	kcom_debug_t *dbg;
	struct kcom_debug_counts c;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg), KCOM_OK);
	ck_assert_int_eq(kcom_debug_counts(dbg, &c), KCOM_OK);
	kcom_debug_release(dbg);
	return c.wirings;
}

static kcom_bufvec_t *vec_of(kcom_bufio_t *io)
{
	kcom_bufvec_t *vec;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec), KCOM_OK);
	return vec;
}

/* The object's bytes, through a mapping (which always works). */
static uint8_t *bytes_of(kcom_bufio_t *io, size_t size)
{
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 0, size), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 0, size), KCOM_OK);
	return addr;
}

/* ---- capacity and size ---- */

START_TEST(test_capacity)
{
	kcom_bufio_t *io = (void *)1;
	ck_assert_int_eq(kcom_dmabuf_create(10, 5, NULL, &io), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(io);
	ck_assert_int_eq(kcom_dmabuf_create(0, 10, NULL, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dmabuf_create(100, 5000, NULL, &io), KCOM_OK);
	size_t size, got;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 100);
	uint8_t buf[6000];
	ck_assert_int_eq(kcom_bufio_read(io, buf, 0, sizeof(buf), &got), KCOM_OK);
	ck_assert_uint_eq(got, 100);
	for (size_t i = 0; i < got; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_uint_eq((uintptr_t)bytes_of(io, 100) % PAGE, 0);

	/* Writes grow up to the capacity, then come up short; past it, nothing fits. */
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(kcom_bufio_write(io, buf, 4000, 2000, &got), KCOM_OK);
	ck_assert_uint_eq(got, 1000);
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 5000);
	ck_assert_int_eq(kcom_bufio_write(io, buf, 5000, 1, &got), KCOM_E_NOSPACE);
	ck_assert_uint_eq(got, 0);
	/* The gap a write leaves reads as zeros. */
	ck_assert_int_eq(kcom_bufio_read(io, buf, 100, 10, &got), KCOM_OK);
	for (size_t i = 0; i < 10; i++)
		ck_assert_uint_eq(buf[i], 0);

	/* setsize inside the capacity works and regrows with zeros; past it, KCOM_E_NOSPACE. */
	ck_assert_int_eq(kcom_bufio_setsize(io, 5001), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_bufio_setsize(io, 4000), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_setsize(io, 5000), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(io, buf, 4000, 1000, &got), KCOM_OK);
	for (size_t i = 0; i < 1000; i++)
		ck_assert_uint_eq(buf[i], 0);
	assert_sane(io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);

	/* Capacity 0: an empty object that cannot grow. */
	ck_assert_int_eq(kcom_dmabuf_create(0, 0, NULL, &io), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(io, "x", 0, 1, &got), KCOM_E_NOSPACE);
	assert_sane(io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* The class factory: empty, 1 MiB of capacity, no constraints. */
START_TEST(test_class_factory)
{
	if (!available(0, "class factory"))
		return;
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_create(&kcom_dmabuf_clsid, &kcom_bufio_iid, (void **)&io), KCOM_OK);
	size_t size, got;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(kcom_bufio_setsize(io, KCOM_DMABUF_DEFAULT_CAPACITY), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_setsize(io, KCOM_DMABUF_DEFAULT_CAPACITY + 1), KCOM_E_NOSPACE);
	ck_assert_int_eq(kcom_bufio_write(io, "x", KCOM_DMABUF_DEFAULT_CAPACITY - 1, 2, &got), KCOM_OK);
	ck_assert_uint_eq(got, 1);
	assert_sane(io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* While mapped or wired the size is frozen; the counts show the holds. */
START_TEST(test_holds_freeze_size)
{
	if (!available(0, "holds"))
		return;
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_dmabuf_create(PAGE, 4 * PAGE, NULL, &io), KCOM_OK);
	void *addr;
	size_t got;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 0, 10), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_setsize(io, 2 * PAGE), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_bufio_setsize(io, 1), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_bufio_write(io, "x", PAGE, 1, &got), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 0, 10), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_setsize(io, 2 * PAGE), KCOM_OK);

	kcom_phys_t phys;
	kcom_error_t err = kcom_bufio_wire(io, &phys, 0, 100);
	if (err == KCOM_E_NOPHYS) {
		fprintf(stderr, "SKIP: dmabuf holds (wire part): %s\n", dmabuf_test_probe(CAP_WIRES));
	} else {
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_uint_eq(wirings(io), 1);
		kcom_phys_t phys2;
		ck_assert_int_eq(kcom_bufio_wire(io, &phys2, 0, 100), KCOM_OK); /* each its own hold */
		ck_assert_uint_eq(phys2, phys);
		ck_assert_uint_eq(wirings(io), 2);
		ck_assert_int_eq(kcom_bufio_setsize(io, PAGE), KCOM_E_BUSY);
		ck_assert_int_eq(kcom_bufio_write(io, "x", 2 * PAGE, 1, &got), KCOM_E_BUSY);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 101), KCOM_E_INVALIDARG);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 100), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 100), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, 100), KCOM_E_INVALIDARG);
		ck_assert_uint_eq(wirings(io), 0);
		ck_assert_int_eq(kcom_bufio_setsize(io, PAGE), KCOM_OK);
	}
	assert_sane(io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* Everything the test took is back (nothing pinned, allocations == frees); the test osenv goes. */
static void assert_all_released(void)
{
	struct testenv_range pins[4];
	ck_assert_uint_eq(testenv_pinned(pins, 4), 0);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}

/* ---- the host that hides physical addresses; pins that fail ---- */

START_TEST(test_no_phys)
{
	testenv_install();
	testenv_fail_translation(1);
	kcom_bufio_t *io;
	/* Created and pinned all the same, constraints unchecked (nothing to check them against). */
	struct kcom_dma_constraints c = { .max_addr = 0xFFFFFF, .contiguous = 1 };
	ck_assert_int_eq(kcom_dmabuf_create(100, 2 * PAGE, &c, &io), KCOM_OK);
	struct testenv_range pins[4];
	ck_assert_uint_eq(testenv_pinned(pins, 4), 1);
	ck_assert_uint_eq(pins[0].len, 2 * PAGE);
	kcom_phys_t phys = 1;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, 10), KCOM_E_NOPHYS);
	ck_assert_uint_eq(phys, 0);
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, 10), KCOM_E_NOPHYS); /* logged once, still refused */
	kcom_bufvec_t *vec = vec_of(io);
	struct kcom_physseg segs[4];
	size_t count = 9;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 100, segs, 4, &count), KCOM_E_NOPHYS);
	ck_assert_uint_eq(count, 0);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(wirings(io), 0);
	/* Everything but wiring still works. */
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 0, 100), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 0, 100), KCOM_OK);
	kcom_bufio_t *copy;
	ck_assert_int_eq(kcom_bufio_copy(io, 0, 100, &copy), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_wire(copy, &phys, 0, 10), KCOM_E_NOPHYS);
	assert_sane(io);
	assert_sane(copy);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	assert_all_released();
}
END_TEST

/* A refused pin: the osenv's error, and everything freed. */
START_TEST(test_pin_fails)
{
	static const kcom_error_t errs[] = { KCOM_E_ACCESSDENIED, KCOM_E_OUTOFMEMORY };
	for (size_t k = 0; k < 2; k++) {
		testenv_install();
		testenv_fail_pin_at(1, errs[k]);
		kcom_bufio_t *io = (void *)1;
		ck_assert_int_eq(kcom_dmabuf_create(0, 3 * PAGE, NULL, &io), errs[k]);
		ck_assert_ptr_null(io);
		ck_assert(testenv_pin_failure_hit());
		ck_assert_uint_gt(testenv_allocs(), 0);
		ck_assert_uint_eq(testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);

		/* And a copy whose pin is refused leaves the original as it was. */
		testenv_fail_pin_at(0, KCOM_OK);
		ck_assert_int_eq(kcom_dmabuf_create(0, 3 * PAGE, NULL, &io), KCOM_OK);
		ck_assert_int_eq(kcom_bufio_write(io, "abc", 0, 3, &(size_t){ 0 }), KCOM_OK);
		testenv_fail_pin_at(1, errs[k]);
		kcom_bufio_t *copy = (void *)1;
		ck_assert_int_eq(kcom_bufio_copy(io, 0, 3, &copy), errs[k]);
		ck_assert_ptr_null(copy);
		ck_assert_uint_eq(contract_refs(io), 1);
		assert_sane(io);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
		ck_assert_uint_eq(testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		struct testenv_range pins[4];
		ck_assert_uint_eq(testenv_pinned(pins, 4), 0);
		testenv_uninstall();
	}
}
END_TEST

/* ---- constraints ---- */

START_TEST(test_constraints_invalid)
{
	kcom_bufio_t *io = (void *)1;
	struct kcom_dma_constraints c = { .align = 3 };
	ck_assert_int_eq(kcom_dmabuf_create(0, PAGE, &c, &io), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(io);
	c = (struct kcom_dma_constraints){ .boundary = 5000 };
	ck_assert_int_eq(kcom_dmabuf_create(0, PAGE, &c, &io), KCOM_E_INVALIDARG);
	/* Contiguous and longer than the device's longest segment, or than its boundary. */
	c = (struct kcom_dma_constraints){ .contiguous = 1, .max_seg = PAGE };
	ck_assert_int_eq(kcom_dmabuf_create(0, 2 * PAGE, &c, &io), KCOM_E_INVALIDARG);
	c = (struct kcom_dma_constraints){ .contiguous = 1, .boundary = PAGE };
	ck_assert_int_eq(kcom_dmabuf_create(0, 2 * PAGE, &c, &io), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(io);
}
END_TEST

/*
 * Constraints bind the bytes a device is given (the capacity), not the rest of the last page:
 * a contiguous buffer shorter than a page under a max_seg or a boundary below a page is made,
 * and so is a bounce through one.
 */
START_TEST(test_constraints_sub_page)
{
	static const struct {
		size_t cap;
		struct kcom_dma_constraints c;
	} ok[] = {
		{ 512, { .contiguous = 1, .max_seg = 512 } },
		{ 1000, { .contiguous = 1, .boundary = 2048 } },
		{ 2048, { .contiguous = 1, .boundary = 2048, .max_seg = 2048 } },
		{ PAGE + 1, { .contiguous = 1, .max_seg = PAGE + 1 } },
	};
	int phys = dmabuf_test_probe(CAP_WIRES) == NULL;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		kcom_bufio_t *io;
		kcom_error_t err = kcom_dmabuf_create(ok[i].cap, 0, &ok[i].c, &io);
		if (err == KCOM_E_NOTCONTIG && ok[i].cap > PAGE)
			continue; /* two plain pages that are not adjacent: the host's doing */
		ck_assert_msg(err == KCOM_OK, "row %zu: %08x", i, (unsigned)err);
		assert_sane(io);
		if (phys) {
			kcom_phys_t addr;
			ck_assert_int_eq(kcom_bufio_wire(io, &addr, 0, ok[i].cap), KCOM_OK);
			if (ok[i].c.boundary != 0) /* its bytes cross no boundary */
				ck_assert_uint_eq(addr / ok[i].c.boundary, (addr + ok[i].cap - 1) / ok[i].c.boundary);
			ck_assert_int_eq(kcom_bufio_unwire(io, addr, 0, ok[i].cap), KCOM_OK);
		}
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
	}
	/* One byte more than the device takes in one piece is still refused. */
	kcom_bufio_t *io = (void *)1;
	struct kcom_dma_constraints seg = { .contiguous = 1, .max_seg = 512 };
	ck_assert_int_eq(kcom_dmabuf_create(513, 0, &seg, &io), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(io);
	struct kcom_dma_constraints line = { .contiguous = 1, .boundary = 2048 };
	ck_assert_int_eq(kcom_dmabuf_create(0, 2049, &line, &io), KCOM_E_INVALIDARG);

	/* A bounce for a device taking 512-byte contiguous pieces, from a membuf. */
	if (!phys)
		return;
	ck_assert_int_eq(kcom_membuf_create(512, &io), KCOM_OK);
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[2];
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, 512, KCOM_DMA_TO_DEVICE, &seg, NULL, segs, 2), KCOM_OK);
	ck_assert(!kcom_dma_bounce_direct(&b));
	ck_assert_uint_eq(b.count, 1);
	ck_assert_uint_eq(segs[0].len, 512);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* Pages the device cannot reach, or misaligned: the precise error, nothing left behind. */
START_TEST(test_constraints_missed)
{
	if (!available(CAP_WIRES, "constraints"))
		return;
	testenv_install();
	kcom_bufio_t *io = (void *)1;
	/* No real page sits at physical address 0..4095. */
	struct kcom_dma_constraints c = { .max_addr = PAGE - 1 };
	ck_assert_int_eq(kcom_dmabuf_create(0, PAGE, &c, &io), KCOM_E_UNREACHABLE);
	ck_assert_ptr_null(io);
	/* Unreachable is checked before contiguity. */
	c.contiguous = 1;
	ck_assert_int_eq(kcom_dmabuf_create(0, PAGE, &c, &io), KCOM_E_UNREACHABLE);
	/* 1 TiB alignment: no page of this machine's memory starts there. */
	c = (struct kcom_dma_constraints){ .align = (size_t)1 << 40 };
	ck_assert_int_eq(kcom_dmabuf_create(0, PAGE, &c, &io), KCOM_E_MISALIGNED);
	struct testenv_range pins[4];
	ck_assert_uint_eq(testenv_pinned(pins, 4), 0);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);

	/* Reachable everywhere: fine. */
	c = (struct kcom_dma_constraints){ .max_addr = ~(kcom_phys_t)0 };
	ck_assert_int_eq(kcom_dmabuf_create(0, 8 * PAGE, &c, &io), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	assert_all_released();
}
END_TEST

/*
 * Contiguity, with and without the host's huge pages: a contiguous request is met or refused
 * as KCOM_E_NOTCONTIG, and when met the pagemap agrees that the pages are one run.  Returns
 * whether it was met.
 */
static int contiguous_attempt(size_t len, int hide_pages)
{
	testenv_install();
	testenv_hide_pages(hide_pages);
	struct kcom_dma_constraints c = { .contiguous = 1 };
	kcom_bufio_t *io;
	kcom_error_t err = kcom_dmabuf_create(len, 0, &c, &io);
	ck_assert_msg(err == KCOM_OK || err == KCOM_E_NOTCONTIG, "contiguous: %s", kcom_strerror(err));
	if (err == KCOM_OK) {
		uint8_t *mem = bytes_of(io, len);
		for (size_t i = 1; i < len / PAGE; i++)
			ck_assert_uint_eq(pagemap_phys(mem + i * PAGE), pagemap_phys(mem) + i * PAGE);
		kcom_phys_t phys;
		ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, len), KCOM_OK);
		ck_assert_uint_eq(phys, pagemap_phys(mem));
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, len), KCOM_OK);
		assert_sane(io);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
	}
	assert_all_released();
	return err == KCOM_OK;
}

START_TEST(test_contiguous)
{
	if (!available(CAP_WIRES, "contiguous"))
		return;
	size_t len = 1u << 20;
	int plain = contiguous_attempt(len, 1);
	int huge = contiguous_attempt(len, 0);
	fprintf(stderr, "dmabuf: 1 MiB contiguous: plain pages %s, huge pages %s\n", plain ? "met" : "NOTCONTIG",
	        huge ? "met" : "NOTCONTIG (the host gave no huge page)");
}
END_TEST

/*
 * Every constraint error on demand, root or not: the test osenv reports made-up frames, page i
 * of a translation at fake_base + i * fake_stride.
 */
static kcom_phys_t fake_base;
static size_t fake_stride;

static kcom_error_t fake_frames(const void *addr, size_t npages, size_t page, kcom_phys_t *out)
{
	(void)page;
	for (size_t i = 0; i < npages; i++)
		out[i] = fake_base + i * fake_stride + (uintptr_t)addr % PAGE;
	return KCOM_OK;
}

static kcom_error_t create_at(kcom_phys_t base, size_t stride, size_t len, const struct kcom_dma_constraints *c,
                              kcom_bufio_t **io)
{
	fake_base = base;
	fake_stride = stride;
	return kcom_dmabuf_create(len, 0, c, io);
}

START_TEST(test_constraints_each_error)
{
	if (!available(0, "constraint errors"))
		return;
	testenv_install();
	testenv_hide_pages(1);
	testenv_fake_translation(fake_frames);
	kcom_bufio_t *io = (void *)1;
	struct kcom_dma_constraints isa = { .max_addr = 0xFFFFFF, .boundary = 0x10000 };
	struct kcom_dma_constraints isa_contig = { .max_addr = 0xFFFFFF, .boundary = 0x10000, .contiguous = 1 };

	/* The last byte at 16 MiB: one byte too high. */
	ck_assert_int_eq(create_at(0x1000000 - PAGE, PAGE, 2 * PAGE, &isa, &io), KCOM_E_UNREACHABLE);
	ck_assert_ptr_null(io);
	/* Scattered pages asked to be contiguous. */
	ck_assert_int_eq(create_at(0x100000, 2 * PAGE, 2 * PAGE, &isa_contig, &io), KCOM_E_NOTCONTIG);
	/* Contiguous, across 64 KiB. */
	ck_assert_int_eq(create_at(0x10000 - PAGE, PAGE, 2 * PAGE, &isa_contig, &io), KCOM_E_BOUNDARY);
	/* The first address off the device's alignment. */
	struct kcom_dma_constraints aligned = { .align = 0x10000 };
	ck_assert_int_eq(create_at(0x11000, PAGE, PAGE, &aligned, &io), KCOM_E_MISALIGNED);
	/* Unreachable wins over the others. */
	ck_assert_int_eq(create_at(0x2000000 - PAGE, 2 * PAGE, 2 * PAGE, &isa_contig, &io), KCOM_E_UNREACHABLE);
	struct testenv_range pins[4];
	ck_assert_uint_eq(testenv_pinned(pins, 4), 0);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());

	/* Met: wire gives the made-up addresses, wire_vec cuts at 64 KiB. */
	ck_assert_int_eq(create_at(0x10000 - PAGE, PAGE, 4 * PAGE, &isa, &io), KCOM_OK);
	kcom_phys_t phys;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 100, 3 * PAGE), KCOM_OK);
	ck_assert_uint_eq(phys, 0x10000 - PAGE + 100);
	ck_assert_int_eq(kcom_bufio_unwire(io, phys, 100, 3 * PAGE), KCOM_OK);
	kcom_bufvec_t *vec = vec_of(io);
	struct kcom_physseg segs[4];
	size_t count;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 4 * PAGE, segs, 4, &count), KCOM_OK);
	ck_assert_uint_eq(count, 2);
	ck_assert_uint_eq(segs[0].addr, 0x10000 - PAGE);
	ck_assert_uint_eq(segs[0].len, PAGE);
	ck_assert_uint_eq(segs[1].addr, 0x10000);
	ck_assert_uint_eq(segs[1].len, 3 * PAGE);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, 4 * PAGE, segs, count), KCOM_OK);
	kcom_bufvec_release(vec);

	/* The bounce helper: a device reaching 64 KiB takes [0, 1 page) of it directly, not
	 * [0, 2 pages) (its second page is at 64 KiB): that bounces through a new dmabuf, whose
	 * (made-up) pages at 4 KiB it reaches. */
	struct kcom_dma_constraints low = { .max_addr = 0xFFFF };
	struct kcom_dma_bounce b;
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, PAGE, KCOM_DMA_TO_DEVICE, &low, NULL, segs, 4), KCOM_OK);
	ck_assert(kcom_dma_bounce_direct(&b));
	ck_assert_uint_eq(b.segs[0].addr, 0x10000 - PAGE);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	fake_base = PAGE;
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, 2 * PAGE, KCOM_DMA_TO_DEVICE, &low, NULL, segs, 4), KCOM_OK);
	ck_assert(!kcom_dma_bounce_direct(&b));
	ck_assert_uint_eq(b.count, 1);
	ck_assert_uint_eq(b.segs[0].addr, PAGE);
	ck_assert_uint_eq(b.segs[0].len, 2 * PAGE);
	ck_assert_uint_eq(wirings(io), 0);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	/* Nothing this device can reach: the allocator's reason. */
	fake_base = 0x20000;
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, 2 * PAGE, KCOM_DMA_TO_DEVICE, &low, NULL, segs, 4),
	                 KCOM_E_UNREACHABLE);
	assert_sane(io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	assert_all_released();
}
END_TEST

/* ---- the proof of the addresses ---- */

#define PROOF_PAGES 64

/* Every address wire and wire_vec hand out is what the pagemap says, page by page. */
START_TEST(test_addresses_match_pagemap)
{
	if (!available(CAP_WIRES, "addresses against pagemap"))
		return;
	kcom_bufio_t *io;
	size_t len = PROOF_PAGES * PAGE;
	ck_assert_int_eq(kcom_dmabuf_create(len, 0, NULL, &io), KCOM_OK);
	uint8_t *mem = bytes_of(io, len);

	/* wire: one address per page-sized range, and where two pages are adjacent, across them. */
	for (size_t i = 0; i < PROOF_PAGES; i++) {
		kcom_phys_t phys;
		size_t off = i * PAGE + (i % 7) * 13;
		ck_assert_int_eq(kcom_bufio_wire(io, &phys, (kcom_off_t)off, 100), KCOM_OK);
		ck_assert_uint_eq(phys, pagemap_phys(mem + off));
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, (kcom_off_t)off, 100), KCOM_OK);
		if (i + 1 < PROOF_PAGES) {
			int adjacent = pagemap_phys(mem + (i + 1) * PAGE) == pagemap_phys(mem + i * PAGE) + PAGE;
			kcom_error_t err = kcom_bufio_wire(io, &phys, (kcom_off_t)(i * PAGE + PAGE / 2), PAGE);
			ck_assert_int_eq(err, adjacent ? KCOM_OK : KCOM_E_NOTCONTIG);
			if (adjacent)
				ck_assert_int_eq(kcom_bufio_unwire(io, phys, (kcom_off_t)(i * PAGE + PAGE / 2), PAGE), KCOM_OK);
		}
	}

	/* wire_vec: the segments cover the range in order, and every byte's address is the pagemap's. */
	kcom_bufvec_t *vec = vec_of(io);
	struct kcom_physseg segs[PROOF_PAGES];
	size_t count;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 100, len - 200, segs, PROOF_PAGES, &count), KCOM_OK);
	size_t at = 100;
	for (size_t k = 0; k < count; k++) {
		for (size_t b = 0; b < segs[k].len; b += PAGE - (at + b) % PAGE)
			ck_assert_uint_eq(segs[k].addr + b, pagemap_phys(mem + at + b));
		if (k > 0) /* coalesced: a new segment starts where the previous one could not go on */
			ck_assert_uint_ne(segs[k - 1].addr + segs[k - 1].len, segs[k].addr);
		at += segs[k].len;
	}
	ck_assert_uint_eq(at, len - 100);
	ck_assert_uint_eq(wirings(io), 1);
	assert_sane(io);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 100, len - 200, segs, count), KCOM_OK);
	ck_assert_uint_eq(wirings(io), 0);
	kcom_bufvec_release(vec);

	/* A copy has pages of its own. */
	kcom_bufio_t *copy;
	ck_assert_int_eq(kcom_bufio_copy(io, 0, PAGE, &copy), KCOM_OK);
	kcom_phys_t a, b;
	ck_assert_int_eq(kcom_bufio_wire(copy, &a, 0, PAGE), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_wire(io, &b, 0, PAGE), KCOM_OK);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_eq(a, pagemap_phys(bytes_of(copy, PAGE)));
	ck_assert_int_eq(kcom_bufio_unwire(copy, a, 0, PAGE), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unwire(io, b, 0, PAGE), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(copy), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * A fork leaves the frames where they were: after it, a write here must not move a wired page
 * to a new frame (copy-on-write) while a device holds the old one.  The child has no such
 * memory (doc/dma.md).  _i 1: contiguous memory, from the huge-page allocator (MAP_HUGETLB
 * where huge pages are reserved, which can only be kept from children whole).
 */
START_TEST(test_fork_keeps_frames)
{
	if (!available(CAP_WIRES, "fork keeps frames"))
		return;
	kcom_bufio_t *io;
	struct kcom_dma_constraints contig = { .contiguous = 1 };
	kcom_error_t made = kcom_dmabuf_create(2 * PAGE, 0, _i ? &contig : NULL, &io);
	if (_i && made == KCOM_E_NOTCONTIG) {
		fprintf(stderr, "SKIP: dmabuf fork keeps frames: no contiguous pages here\n");
		return;
	}
	ck_assert_int_eq(made, KCOM_OK);
	uint8_t *mem = bytes_of(io, 2 * PAGE);
	kcom_phys_t phys;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 0, PAGE), KCOM_OK);
	ck_assert_uint_eq(phys, pagemap_phys(mem));
	/* The child lives on until the parent has written: a page it still shared would move. */
	int gate[2];
	ck_assert_int_eq(pipe(gate), 0);
	fflush(NULL);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		char c;
		close(gate[1]);
		_exit(read(gate[0], &c, 1) == 0 ? 0 : 1);
	}
	close(gate[0]);
	mem[0] ^= 1; /* the write that moved the page before */
	mem[PAGE] ^= 1;
	kcom_phys_t now = pagemap_phys(mem);
	close(gate[1]);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(now, phys);
	kcom_phys_t again;
	ck_assert_int_eq(kcom_bufio_wire(io, &again, 0, PAGE), KCOM_OK);
	ck_assert_uint_eq(again, phys);
	ck_assert_int_eq(kcom_bufio_wire(io, &again, PAGE, PAGE), KCOM_OK);
	ck_assert_uint_eq(again, pagemap_phys(mem + PAGE));
	ck_assert_int_eq(kcom_bufio_unwire(io, again, PAGE, PAGE), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, PAGE), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unwire(io, phys, 0, PAGE), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * Zero-length wires are allowed anywhere in range, also at the end (doc/semantics.md): at a
 * byte, its address; at the end of a buffer whose size fills its pages, just past the last
 * byte; on an empty buffer (no pages), 0.  Each is a wiring to unwire like any other.
 */
START_TEST(test_wire_empty_ranges)
{
	if (!available(CAP_WIRES, "zero-length wires"))
		return;
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_dmabuf_create(2 * PAGE, 0, NULL, &io), KCOM_OK);
	uint8_t *mem = bytes_of(io, 2 * PAGE);
	const size_t at[] = { 0, 100, PAGE, 2 * PAGE };
	for (size_t i = 0; i < 4; i++) {
		kcom_phys_t phys = 1;
		ck_assert_int_eq(kcom_bufio_wire(io, &phys, (kcom_off_t)at[i], 0), KCOM_OK);
		kcom_phys_t want = at[i] < 2 * PAGE ? pagemap_phys(mem + at[i]) : pagemap_phys(mem + 2 * PAGE - 1) + 1;
		ck_assert_uint_eq(phys, want);
		ck_assert_uint_eq(wirings(io), 1);
		assert_sane(io);
		ck_assert_int_eq(kcom_bufio_unwire(io, phys, (kcom_off_t)at[i], 0), KCOM_OK);
	}
	kcom_phys_t phys = 1;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 2 * PAGE + 1, 0), KCOM_E_RANGE);
	ck_assert_uint_eq(phys, 0);
	ck_assert_uint_eq(wirings(io), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);

	/* Empty: made empty, and an empty copy. */
	kcom_bufio_t *empty[2];
	ck_assert_int_eq(kcom_dmabuf_create(0, 0, NULL, &empty[0]), KCOM_OK);
	ck_assert_int_eq(kcom_dmabuf_create(PAGE, 0, NULL, &io), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_copy(io, PAGE, 0, &empty[1]), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	for (size_t i = 0; i < 2; i++) {
		phys = 1;
		ck_assert_int_eq(kcom_bufio_wire(empty[i], &phys, 0, 0), KCOM_OK);
		ck_assert_uint_eq(phys, 0);
		ck_assert_uint_eq(wirings(empty[i]), 1);
		assert_sane(empty[i]);
		ck_assert_int_eq(kcom_bufio_unwire(empty[i], 0, 0, 0), KCOM_OK);
		ck_assert_uint_eq(kcom_bufio_release(empty[i]), 0);
	}
}
END_TEST

/* wire_vec cuts at the device's boundary and longest segment, and says how many it needs. */
START_TEST(test_wire_vec_split)
{
	if (!available(CAP_WIRES, "wire_vec split"))
		return;
	struct kcom_dma_constraints c = { .boundary = 2048, .max_seg = 1000 };
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_dmabuf_create(4 * PAGE, 0, &c, &io), KCOM_OK);
	kcom_bufvec_t *vec = vec_of(io);
	struct kcom_physseg segs[64];
	size_t count = 0;
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 10, 4 * PAGE - 20, segs, 2, &count), KCOM_E_TOOSMALL);
	size_t need = count;
	ck_assert_uint_gt(need, 2);
	ck_assert_uint_eq(wirings(io), 0);
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 10, 4 * PAGE - 20, segs, 64, &count), KCOM_OK);
	ck_assert_uint_eq(count, need);
	size_t total = 0;
	for (size_t k = 0; k < count; k++) {
		ck_assert_uint_le(segs[k].len, 1000);
		ck_assert_uint_eq(segs[k].addr / 2048, (segs[k].addr + segs[k].len - 1) / 2048);
		total += segs[k].len;
	}
	ck_assert_uint_eq(total, 4 * PAGE - 20);
	/* unwire_vec takes exactly the list handed out. */
	struct kcom_physseg wrong[64];
	memcpy(wrong, segs, sizeof(segs));
	wrong[1].len--;
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 10, 4 * PAGE - 20, wrong, count), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 10, 4 * PAGE - 20, segs, count - 1), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 10, 4 * PAGE - 20, segs, count), KCOM_OK);
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 4 * PAGE + 1, segs, 64, &count), KCOM_E_RANGE);
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, 1, NULL, 64, &count), KCOM_E_INVALIDARG);
	kcom_bufvec_release(vec);
	assert_sane(io);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * The test "device": it knows nothing of kcom but a segment list and the memory the host
 * pinned.  Physical addresses become virtual ones by translating, independently, the pages of
 * every range the test osenv saw pinned.  A physical address outside them fails the test.
 */
static uint8_t *device_phys_to_virt(kcom_phys_t phys)
{
	struct testenv_range pins[TESTENV_MAX_PINS];
	size_t n = testenv_pinned(pins, TESTENV_MAX_PINS);
	for (size_t r = 0; r < n; r++) {
		for (size_t off = 0; off < pins[r].len; off += PAGE) {
			uint8_t *va = (uint8_t *)pins[r].addr + off;
			uint64_t pa = pagemap_phys(va);
			if (pa != 0 && phys >= pa && phys < pa + PAGE)
				return va + (phys - pa);
		}
	}
	ck_abort_msg("device: physical address %#llx is not in any pinned range", (unsigned long long)phys);
	return NULL;
}

/* The device's DMA: copies between its own buffer and the segments, byte by byte through pages. */
static void device_dma(const struct kcom_physseg *segs, size_t count, uint8_t *buf, int to_memory)
{
	size_t at = 0;
	for (size_t k = 0; k < count; k++) {
		for (size_t b = 0; b < segs[k].len;) {
			kcom_phys_t pa = segs[k].addr + b;
			size_t chunk = (size_t)(PAGE - pa % PAGE);
			if (chunk > segs[k].len - b)
				chunk = segs[k].len - b;
			uint8_t *va = device_phys_to_virt(pa);
			if (to_memory)
				memcpy(va, buf + at, chunk);
			else
				memcpy(buf + at, va, chunk);
			at += chunk;
			b += chunk;
		}
	}
}

START_TEST(test_device_moves_bytes)
{
	if (!available(CAP_WIRES, "device"))
		return;
	testenv_install();
	size_t len = 16 * PAGE;
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_dmabuf_create(len, 0, NULL, &io), KCOM_OK);
	uint8_t *src = malloc(len), *back = malloc(len);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 31u + 7u);
	size_t got;
	ck_assert_int_eq(kcom_bufio_write(io, src, 0, len, &got), KCOM_OK);

	kcom_bufvec_t *vec = vec_of(io);
	struct kcom_physseg segs[32];
	size_t count;
	/* Device reads what the CPU wrote. */
	ck_assert_int_eq(kcom_bufvec_wire_vec(vec, 0, len, segs, 32, &count), KCOM_OK);
	memset(back, 0, len);
	device_dma(segs, count, back, 0);
	ck_assert_mem_eq(back, src, len);
	/* Device writes; the CPU reads it through the object. */
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)~src[i];
	device_dma(segs, count, src, 1);
	ck_assert_int_eq(kcom_bufvec_unwire_vec(vec, 0, len, segs, count), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(io, back, 0, len, &got), KCOM_OK);
	ck_assert_mem_eq(back, src, len);
	/* A single wire of a sub-range, through the same device. */
	kcom_phys_t phys;
	ck_assert_int_eq(kcom_bufio_wire(io, &phys, 5, 100), KCOM_OK);
	struct kcom_physseg one = { phys, 100 };
	device_dma(&one, 1, back, 0);
	ck_assert_mem_eq(back, src + 5, 100);
	ck_assert_int_eq(kcom_bufio_unwire(io, phys, 5, 100), KCOM_OK);
	kcom_bufvec_release(vec);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	free(src);
	free(back);
	testenv_uninstall();
}
END_TEST

/* ---- the bounce helper ---- */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 13u + seed);
}

/* A membuf cannot be wired: the device gets a bounce buffer, filled and written back. */
START_TEST(test_bounce_membuf)
{
	size_t n = 3 * PAGE + 123;
	kcom_bufio_t *io;
	int wires = available(CAP_WIRES, "bounce");
	if (wires)
		testenv_install();
	ck_assert_int_eq(kcom_membuf_create(n + 50, &io), KCOM_OK);
	uint8_t *want = malloc(n), *got = malloc(n);
	fill(want, n, 1);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, want, 50, n, &put), KCOM_OK);
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[16];
	if (!wires) {
		/* The bounce buffer cannot be wired either: the reason, and nothing held. */
		if (dmabuf_test_probe(0) == NULL)
			ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 50, n, KCOM_DMA_TO_DEVICE, NULL, NULL, segs, 16),
			                 KCOM_E_NOPHYS);
		ck_assert_uint_eq(kcom_bufio_release(io), 0);
		free(want);
		free(got);
		return;
	}
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 50, n, KCOM_DMA_TO_DEVICE | KCOM_DMA_FROM_DEVICE, NULL, NULL,
	                                         segs, 16),
	                 KCOM_OK);
	ck_assert(!kcom_dma_bounce_direct(&b));
	ck_assert_ptr_eq(b.segs, segs);
	device_dma(b.segs, b.count, got, 0);
	ck_assert_mem_eq(got, want, n);
	fill(want, n, 99);
	device_dma(b.segs, b.count, want, 1);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(io, got, 50, n, &put), KCOM_OK);
	ck_assert_mem_eq(got, want, n);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_E_INVALIDARG); /* twice */

	/* To the device only: what the device writes is dropped. */
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 50, n, KCOM_DMA_TO_DEVICE, NULL, NULL, segs, 16), KCOM_OK);
	fill(got, n, 7);
	device_dma(b.segs, b.count, got, 1);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_read(io, got, 50, n, &put), KCOM_OK);
	ck_assert_mem_eq(got, want, n);
	ck_assert_uint_eq(contract_refs(io), 1);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	assert_all_released();
	free(want);
	free(got);
}
END_TEST

/* Bad arguments to the bounce helpers: refused, nothing held; the queries answer "no". */
START_TEST(test_bounce_bad_args)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_membuf_create(PAGE, &io), KCOM_OK);
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[4];
	ck_assert_int_eq(kcom_dma_bounce_acquire(NULL, io, 0, PAGE, KCOM_DMA_TO_DEVICE, NULL, NULL, segs, 4),
	                 KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, NULL, 0, PAGE, KCOM_DMA_TO_DEVICE, NULL, NULL, segs, 4),
	                 KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, PAGE, KCOM_DMA_TO_DEVICE, NULL, NULL, NULL, 4),
	                 KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, PAGE, 0x10, NULL, NULL, segs, 4), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dma_bounce_direct(&b), 0); /* cleared: holds nothing */
	ck_assert_int_eq(kcom_dma_bounce_direct(NULL), 0);
	ck_assert_int_eq(kcom_dma_bounce_release(NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_E_INVALIDARG);
	kcom_dma_bounce_abort(NULL);
	kcom_dma_bounce_abort(&b); /* nothing to drop */
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/* A source that cannot be read cannot fill a bounce buffer for the device: the error, nothing held. */
START_TEST(test_bounce_read_fails)
{
	if (!available(CAP_WIRES, "bounce of an unreadable source"))
		return;
	kcom_absio_t *plain;
	ck_assert_int_eq(plainio_create(2 * PAGE, PLAINIO_BUFIO, &plain), KCOM_OK);
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_absio_query(plain, &kcom_bufio_iid, (void **)&io), KCOM_OK);
	plainio_fail_reads(plain, 1);
	testenv_install();
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[4];
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, 2 * PAGE, KCOM_DMA_TO_DEVICE, NULL, NULL, segs, 4),
	                 KCOM_E_FAIL);
	ck_assert_int_eq(kcom_dma_bounce_direct(&b), 0);
	assert_all_released();
	ck_assert_uint_eq(kcom_bufio_release(io), 1); /* no reference kept */
	ck_assert_uint_eq(kcom_absio_release(plain), 0);
}
END_TEST

/* A dmabuf the device can take is wired directly; one whose pages miss the constraints bounces. */
START_TEST(test_bounce_dmabuf)
{
	if (!available(CAP_WIRES, "bounce dmabuf"))
		return;
	size_t n = 4 * PAGE;
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_dmabuf_create(n, 0, NULL, &io), KCOM_OK);
	uint8_t *want = malloc(n), *got = malloc(n);
	fill(want, n, 3);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, want, 0, n, &put), KCOM_OK);
	kcom_dmaalloc_t *alloc;
	ck_assert_int_eq(kcom_create(&kcom_dmabuf_clsid, &kcom_dmaalloc_iid, (void **)&alloc), KCOM_OK);
	struct kcom_dma_bounce b;
	struct kcom_physseg segs[64];

	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n, KCOM_DMA_FROM_DEVICE, NULL, alloc, segs, 64), KCOM_OK);
	ck_assert(kcom_dma_bounce_direct(&b));
	ck_assert_uint_eq(b.segs[0].addr, pagemap_phys(bytes_of(io, n)));
	ck_assert_uint_eq(wirings(io), 1);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	ck_assert_uint_eq(wirings(io), 0);

	/*
	 * A device taking at most 1000 bytes a segment, none across 2 KiB: the dmabuf's own pages,
	 * cut into pieces that meet both (busdma's way), not a bounce buffer.
	 */
	struct kcom_dma_constraints c = { .max_seg = 1000 };
	struct kcom_dma_constraints cuts[2] = { { .max_seg = 1000 }, { .boundary = 2048, .max_seg = 1500 } };
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 10, n - 20, KCOM_DMA_TO_DEVICE | KCOM_DMA_FROM_DEVICE,
		                                         &cuts[k], alloc, segs, 64),
		                 KCOM_OK);
		ck_assert(kcom_dma_bounce_direct(&b));
		ck_assert_uint_eq(wirings(io), 1);
		const uint8_t *bytes = bytes_of(io, n);
		size_t total = 0;
		for (size_t i = 0; i < b.count; i++) {
			ck_assert_uint_le(b.segs[i].len, cuts[k].max_seg);
			if (cuts[k].boundary != 0)
				ck_assert_uint_eq(b.segs[i].addr / 2048, (b.segs[i].addr + b.segs[i].len - 1) / 2048);
			/* each piece is where those bytes are */
			kcom_phys_t at = pagemap_phys(bytes + 10 + total);
			ck_assert_uint_eq(b.segs[i].addr, at);
			total += b.segs[i].len;
		}
		ck_assert_uint_eq(total, n - 20);
		ck_assert_uint_gt(b.count, (n - 20) / cuts[k].max_seg);
		ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
		ck_assert_uint_eq(wirings(io), 0);
	}
	/*
	 * Each allocation of the cut failing in turn (the wiring's record, the list unwire needs,
	 * then the bounce buffer's): a bounce buffer instead, which the device can take, or
	 * KCOM_E_OUTOFMEMORY with nothing held.  The list's failure is among them.
	 */
	testenv_install();
	int bounced = 0;
	for (unsigned long nth = 1;; nth++) {
		testenv_fail_at(nth);
		kcom_error_t err = kcom_dma_bounce_acquire(&b, io, 0, n, KCOM_DMA_TO_DEVICE | KCOM_DMA_FROM_DEVICE, &c,
		                                           alloc, segs, 64);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);
		if (KCOM_FAILED(err)) {
			ck_assert_int_eq(err, KCOM_E_OUTOFMEMORY);
			ck_assert_uint_eq(wirings(io), 0);
		} else {
			ck_assert_uint_eq(wirings(io), kcom_dma_bounce_direct(&b) ? 1 : 0);
			for (size_t i = 0; i < b.count; i++)
				ck_assert_uint_le(b.segs[i].len, 1000);
			/* the cut only when nothing failed; a failure it absorbed is a bounce */
			ck_assert_int_eq(kcom_dma_bounce_direct(&b), !hit);
			if (!kcom_dma_bounce_direct(&b)) {
				bounced++;
				device_dma(b.segs, b.count, got, 0);
				ck_assert_mem_eq(got, want, n);
			}
			ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
		}
		ck_assert_uint_eq(wirings(io), 0);
		if (!hit)
			break;
	}
	ck_assert_int_ge(bounced, 2); /* the record's failure and the list's */
	/* Constraints no device has: a boundary of 3000 bytes. */
	struct kcom_dma_constraints odd = { .boundary = 3000 };
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n, KCOM_DMA_TO_DEVICE, &odd, alloc, segs, 64),
	                 KCOM_E_INVALIDARG);
	ck_assert_uint_eq(wirings(io), 0);
	/* Too little room for the pieces: a bounce buffer's are as many, so nothing is held. */
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n, KCOM_DMA_TO_DEVICE, &c, alloc, segs, 64), KCOM_OK);
	struct kcom_dma_bounce b2;
	struct kcom_physseg few[2];
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b2, io, 0, n, KCOM_DMA_TO_DEVICE, &c, alloc, few, 2), KCOM_E_TOOSMALL);
	ck_assert_uint_eq(wirings(io), 1);
	ck_assert_int_eq(kcom_dma_bounce_release(&b), KCOM_OK);
	/* A device that wants one segment no longer than 1000 bytes: no memory can be that. */
	c = (struct kcom_dma_constraints){ .max_seg = 1000, .contiguous = 1 };
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n, KCOM_DMA_TO_DEVICE, &c, alloc, segs, 64), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(wirings(io), 0);

	/* Pages no device memory can give: the allocator's precise reason. */
	c = (struct kcom_dma_constraints){ .max_addr = PAGE - 1 };
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n, KCOM_DMA_TO_DEVICE, &c, alloc, segs, 64), KCOM_E_UNREACHABLE);
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n + 1, KCOM_DMA_TO_DEVICE, NULL, alloc, segs, 64), KCOM_E_RANGE);
	ck_assert_int_eq(kcom_dma_bounce_acquire(&b, io, 0, n, 0, NULL, alloc, segs, 64), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(wirings(io), 0);
	ck_assert_uint_eq(contract_refs(io), 1);
	struct testenv_range pins[4];
	ck_assert_uint_eq(testenv_pinned(pins, 4), 0);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	testenv_uninstall();
	kcom_dmaalloc_release(alloc);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	free(want);
	free(got);
}
END_TEST

/* The osenv's batch translation agrees with page-by-page translation. */
START_TEST(test_batch_translation)
{
	size_t n = 300;
	uint8_t *mem;
	ck_assert_int_eq(posix_memalign((void **)&mem, PAGE, n * PAGE), 0);
	memset(mem, 1, n * PAGE);
	kcom_phys_t *batch = calloc(n, sizeof(*batch));
	kcom_error_t err = kcom_virt_to_phys_pages(mem, n, PAGE, batch);
	if (pagemap_phys(mem) == 0) {
		ck_assert_int_eq(err, KCOM_E_NOPHYS);
		fprintf(stderr, "SKIP: dmabuf batch translation: pagemap shows no frames (uid %d)\n", (int)geteuid());
	} else {
		ck_assert_int_eq(err, KCOM_OK);
		for (size_t i = 0; i < n; i++) {
			kcom_phys_t one;
			ck_assert_int_eq(kcom_virt_to_phys(mem + i * PAGE, &one), KCOM_OK);
			ck_assert_uint_eq(batch[i], one);
		}
	}
	free(batch);
	free(mem);
}
END_TEST

Suite *dmabuf_suite(void)
{
	Suite *s = suite_create("dmabuf");
	TCase *tc = tcase_create("dmabuf");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_capacity);
	tcase_add_test(tc, test_class_factory);
	tcase_add_test(tc, test_holds_freeze_size);
	tcase_add_test(tc, test_no_phys);
	tcase_add_test(tc, test_pin_fails);
	tcase_add_test(tc, test_constraints_invalid);
	tcase_add_test(tc, test_constraints_sub_page);
	tcase_add_test(tc, test_constraints_missed);
	tcase_add_test(tc, test_contiguous);
	tcase_add_test(tc, test_constraints_each_error);
	tcase_add_test(tc, test_addresses_match_pagemap);
	tcase_add_loop_test(tc, test_fork_keeps_frames, 0, 2);
	tcase_add_test(tc, test_wire_vec_split);
	tcase_add_test(tc, test_wire_empty_ranges);
	tcase_add_test(tc, test_device_moves_bytes);
	tcase_add_test(tc, test_batch_translation);
	tcase_add_test(tc, test_bounce_membuf);
	tcase_add_test(tc, test_bounce_bad_args);
	tcase_add_test(tc, test_bounce_read_fails);
	tcase_add_test(tc, test_bounce_dmabuf);
	suite_add_tcase(s, tc);
	return s;
}
