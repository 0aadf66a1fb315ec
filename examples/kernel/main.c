/*
 * The example kernel's test sequence: one line per check on COM1 ("ok N - ..." or
 * "not ok N - ..."), then "1..N" and the verdict through isa-debug-exit (tests/kernel.test
 * reads both).  First every buffer class of the product's table, created through the class
 * table and driven through the interfaces it answers at run time; then the edu device, which
 * moves bytes between its buffer and kcom buffers at the physical addresses kcom hands out,
 * under its 28-bit reach.
 */
#include <absio/absio.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/class.h>
#include <com/debug.h>
#include <com/iunknown.h>
#include <com/osenv.h>
#include <com/product.h>
#include <impls/dmabuf.h>
#include <impls/membuf.h>
#include <impls/pool.h>
#include "edu.h"
#include "kernel.h"

void kmain(uint32_t magic, const void *mbinfo) __attribute__((noreturn));
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define MiB (1024u * 1024u)

static unsigned checks, failures;

static int check_(int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int check_(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;
	checks++;
	kprintf("%sok %u - ", ok ? "" : "not ", checks);
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	if (!ok) {
		failures++;
		kprintf("#   failed: %s\n", what);
	}
	return ok;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, #cond, __VA_ARGS__)

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7u + seed + (i >> 8));
}

/* The object's own sanity check (kcom_debug), when it answers one. */
static int sane(kcom_bufio_t *io)
{
	kcom_debug_t *dbg;
	char why[128] = "";
	if (KCOM_FAILED(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg)))
		return 1;
	kcom_error_t err = kcom_debug_check(dbg, why, sizeof(why));
	kcom_debug_release(dbg);
	if (KCOM_FAILED(err))
		kprintf("# insane: %s\n", why);
	return KCOM_SUCCEEDED(err);
}

#define CLASS_BYTES 3000u
static uint8_t pat[CLASS_BYTES], got[CLASS_BYTES];

/* Everything a client does with a buffer, through the interfaces the object answers. */
/* A pool, made through the class table: pages out and back, and a message over pages. */
static void test_pool(const struct kcom_class *cls)
{
	kcom_pool_t *pool;
	kcom_error_t err = kcom_create(&cls->clsid, &kcom_pool_iid, (void **)&pool);
	if (!CHECK(KCOM_SUCCEEDED(err), "%s: kcom_create gives a pool (%s)", cls->name, kcom_strerror(err)))
		return;
	kcom_off_t offs[2];
	err = kcom_pool_get(pool, NULL, 2, offs);
	CHECK(KCOM_SUCCEEDED(err) && offs[0] != offs[1], "%s: two pages handed out (%s)", cls->name,
	      kcom_strerror(err));
	kcom_bufio_t *chain = NULL;
	err = kcom_pool_chain(pool, offs, 2, KCOM_POOL_PAGE_SIZE + 10, &chain);
	size_t size = 0;
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_getsize(chain, &size);
	CHECK(KCOM_SUCCEEDED(err) && size == KCOM_POOL_PAGE_SIZE + 10, "%s: a message chain over the pages (%s)",
	      cls->name, kcom_strerror(err));
	if (chain != NULL)
		kcom_bufio_release(chain);
	struct kcom_pool_info info;
	err = kcom_pool_info(pool, &info);
	CHECK(KCOM_SUCCEEDED(err) && info.free == info.count, "%s: the chain's pages went back (%zu of %zu free)",
	      cls->name, info.free, info.count);
	CHECK(kcom_pool_release(pool) == 0, "%s: the last release frees it", cls->name);
}

static void test_class(const struct kcom_class *cls)
{
	const char *name = cls->name;
	kcom_bufio_t *io;
	if (kcom_guid_equal(&cls->clsid, &kcom_pool_clsid)) {
		test_pool(cls);
		return;
	}
	kcom_error_t err = kcom_create(&cls->clsid, &kcom_bufio_iid, (void **)&io);
	if (!CHECK(KCOM_SUCCEEDED(err), "%s: kcom_create gives a bufio (%s)", name, kcom_strerror(err)))
		return;
	kcom_absio_t *abs = kcom_bufio_absio(io);

	/* Run-time queries: every interface the class lists, the same IUnknown from each, and a
	 * foreign IID refused with the out pointer cleared. */
	kcom_iunknown_t *unk = NULL;
	int listed = 1, same = 1;
	kcom_bufio_query(io, &kcom_iunknown_iid, (void **)&unk);
	for (const struct kcom_class_iface *f = cls->ifaces; f != NULL && f->iid != NULL; f++) {
		kcom_iunknown_t *p = NULL, *u = NULL;
		if (KCOM_FAILED(kcom_bufio_query(io, f->iid, (void **)&p))) {
			listed = 0;
			continue;
		}
		if (KCOM_FAILED(kcom_iunknown_query(p, &kcom_iunknown_iid, (void **)&u)) || u != unk)
			same = 0;
		if (u != NULL)
			kcom_iunknown_release(u);
		kcom_iunknown_release(p);
	}
	void *none = (void *)1;
	err = kcom_bufio_query(io, &kcom_membuf_clsid, &none); /* a class ID is no interface */
	CHECK(unk != NULL && listed && same && err == KCOM_E_NOINTERFACE && none == NULL,
	      "%s: answers every interface its class lists, one IUnknown, refuses others", name);
	kcom_bufvec_t *vec = NULL;
	int has_vec = KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec));
	kprintf("# %s answers bufvec: %s\n", name, has_vec ? "yes" : "no");

	/* write, read */
	size_t done = 0, size = 0;
	fill(pat, CLASS_BYTES, 11);
	err = kcom_bufio_write(io, pat, 0, CLASS_BYTES, &done);
	kcom_error_t serr = kcom_bufio_getsize(io, &size);
	CHECK(KCOM_SUCCEEDED(err) && done == CLASS_BYTES && KCOM_SUCCEEDED(serr) && size == CLASS_BYTES,
	      "%s: write %u bytes, size %zu (%s)", name, CLASS_BYTES, size, kcom_strerror(err));
	memset(got, 0, sizeof(got));
	err = kcom_bufio_read(io, got, 0, CLASS_BYTES, &done);
	CHECK(KCOM_SUCCEEDED(err) && done == CLASS_BYTES && memcmp(got, pat, CLASS_BYTES) == 0,
	      "%s: read gives the bytes back", name);

	/* map, or the answer that says to fall back */
	void *addr = NULL;
	err = kcom_bufio_map(io, &addr, 100, 500);
	if (KCOM_SUCCEEDED(err)) {
		int eq = memcmp(addr, pat + 100, 500) == 0;
		CHECK(eq && KCOM_SUCCEEDED(kcom_bufio_unmap(io, addr, 100, 500)), "%s: map [100,600) is the bytes",
		      name);
	} else {
		CHECK(err == KCOM_E_NOTIMPL, "%s: map refused (%s): clients use the view", name, kcom_strerror(err));
	}

	/* the view fallback, read-write: the bytes change in the object either way */
	struct kcom_view v;
	err = kcom_view_acquire(&v, abs, 1000, 256, KCOM_VIEW_READ | KCOM_VIEW_WRITE);
	if (CHECK(KCOM_SUCCEEDED(err) && v.len == 256 && memcmp(v.addr, pat + 1000, 256) == 0,
	          "%s: view of [1000,1256) (%s) shows the bytes", name,
	          KCOM_SUCCEEDED(err) ? (kcom_view_direct(&v) ? "direct" : "bounced") : kcom_strerror(err))) {
		for (size_t i = 0; i < 256; i++)
			((uint8_t *)v.addr)[i] ^= 0xFF;
		err = kcom_view_release(&v);
		for (size_t i = 1000; i < 1256; i++)
			pat[i] ^= 0xFF;
		CHECK(KCOM_SUCCEEDED(err) && KCOM_SUCCEEDED(kcom_bufio_read(io, got, 0, CLASS_BYTES, &done)) &&
		              memcmp(got, pat, CLASS_BYTES) == 0,
		      "%s: stores through the view reach the object", name);
	}

	/* copy, else the duplicate helper; the two are independent */
	kcom_bufio_t *cp = NULL;
	err = kcom_bufio_copy(io, 0, CLASS_BYTES, &cp);
	const char *how = "copy";
	if (err == KCOM_E_NOTIMPL) {
		how = "duplicate fallback";
		err = kcom_bufio_duplicate(abs, 0, CLASS_BYTES, &cp);
	}
	if (CHECK(KCOM_SUCCEEDED(err), "%s: %s (%s)", name, how, kcom_strerror(err))) {
		static const uint8_t mark[4] = { 0xde, 0xad, 0xbe, 0xef };
		kcom_error_t e1 = kcom_bufio_write(cp, mark, 0, 4, &done);
		kcom_error_t e2 = kcom_bufio_read(io, got, 0, CLASS_BYTES, &done);
		int orig = KCOM_SUCCEEDED(e1) && KCOM_SUCCEEDED(e2) && memcmp(got, pat, CLASS_BYTES) == 0;
		e2 = kcom_bufio_read(cp, got, 0, CLASS_BYTES, &done);
		int copy = KCOM_SUCCEEDED(e2) && memcmp(got, mark, 4) == 0 && memcmp(got + 4, pat + 4, CLASS_BYTES - 4) == 0;
		CHECK(orig && copy && sane(cp), "%s: a write to the copy is not seen by the original", name);
		CHECK(kcom_bufio_release(cp) == 0, "%s: the copy's last release frees it", name);
	}

	/* range copy into another object (L4's copy_long) */
	kcom_bufio_t *dst = NULL;
	size_t copied = 0;
	err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&dst);
	if (KCOM_SUCCEEDED(err))
		err = kcom_absio_copy_range(kcom_bufio_absio(dst), 5, abs, 0, CLASS_BYTES, &copied);
	CHECK(KCOM_SUCCEEDED(err) && copied == CLASS_BYTES &&
	              KCOM_SUCCEEDED(kcom_bufio_read(dst, got, 5, CLASS_BYTES, &done)) && done == CLASS_BYTES &&
	              memcmp(got, pat, CLASS_BYTES) == 0,
	      "%s: range copy into a membuf at offset 5 (%s)", name, kcom_strerror(err));
	if (dst != NULL)
		kcom_bufio_release(dst);

	/* wire: a physical address only from device memory */
	kcom_phys_t phys = 0;
	err = kcom_bufio_wire(io, &phys, 0, 64);
	if (KCOM_SUCCEEDED(err)) {
		void *m = NULL;
		int ident = KCOM_SUCCEEDED(kcom_bufio_map(io, &m, 0, 64)) && phys == (uintptr_t)m;
		if (m != NULL)
			kcom_bufio_unmap(io, m, 0, 64);
		CHECK(ident && KCOM_SUCCEEDED(kcom_bufio_unwire(io, phys, 0, 64)),
		      "%s: wire gives %llx, the mapping's address (no paging)", name, (unsigned long long)phys);
	} else {
		CHECK(err == KCOM_E_NOTIMPL, "%s: wire refused (%s): not device memory", name, kcom_strerror(err));
	}

	CHECK(sane(io), "%s: sanity check after all that", name);
	if (vec != NULL)
		kcom_bufvec_release(vec);
	kcom_iunknown_release(unk);
	CHECK(kcom_bufio_release(io) == 0, "%s: the last release frees it", name);
}

static uint8_t dev_pat[EDU_DEV_BUF_SIZE], dev_got[EDU_DEV_BUF_SIZE];

/* The kernel's osenv with a dma_alloc that ignores max_addr (a buggy host): memory from the
 * top.  Installed for one creation, to show that dmabuf checks what it was given. */
static void *lying_dma_alloc(void *ctx, size_t size, const struct kcom_dma_constraints *c)
{
	(void)c;
	return kernel_osenv.dma_alloc(ctx, size, NULL);
}
static struct kcom_osenv lying_osenv;

/* The device moves bytes; the kernel checks them. */
static void test_edu(void)
{
	struct edu dev = { 0 };
	lying_osenv = kernel_osenv;
	lying_osenv.dma_alloc = lying_dma_alloc;
	kcom_error_t err = edu_probe(&dev);
	if (!CHECK(KCOM_SUCCEEDED(err), "edu: found at 00:%02x.0, BAR0 %p, ID and liveness registers answer (%s)",
	           dev.slot, (void *)dev.mmio, kcom_strerror(err)))
		return;
	const size_t n = EDU_MAX_XFER;
	kcom_error_t e1 = KCOM_E_FAIL, e2 = KCOM_E_FAIL;
	const kcom_phys_t reach = dev.dma.max_addr;

	/* Memory for the device, allocated under its constraints, lands below 256 MiB although
	 * ordinary memory comes from the top of 512 MiB. */
	void *low = NULL, *low2 = NULL;
	err = kcom_dma_alloc(n, &dev.dma, &low);
	CHECK(KCOM_SUCCEEDED(err) && (uintptr_t)low + n - 1 <= reach,
	      "edu: dma_alloc(max_addr %llx) places %u bytes at %p, below the device's reach",
	      (unsigned long long)reach, (unsigned)n, low);
	void *high = kcom_alloc(EDU_DEV_BUF_SIZE, PAGE_SIZE);
	CHECK(high != NULL && (uintptr_t)high > reach,
	      "edu: ordinary memory comes from the top: %p, above the device's reach (RAM to %llx)", high,
	      (unsigned long long)pmem_top());
	if (low == NULL || high == NULL)
		goto out;

	/* Raw physical segments: memory -> device, clear, device -> memory. */
	fill(dev_pat, n, 3);
	memcpy(low, dev_pat, n);
	struct kcom_physseg seg = { .addr = (uintptr_t)low, .len = n };
	err = edu_dma(&dev, 0, &seg, 1, 0);
	memset(low, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = edu_dma(&dev, 1, &seg, 1, 0);
	CHECK(KCOM_SUCCEEDED(err) && memcmp(low, dev_pat, n) == 0,
	      "edu: %u bytes RAM -> device -> RAM at %p come back equal (%s)", (unsigned)n, low, kcom_strerror(err));

	/* Two segments in two places fill one device range; read back in one piece. */
	err = kcom_dma_alloc(n, &dev.dma, &low2);
	if (KCOM_SUCCEEDED(err)) {
		fill(dev_pat, n, 77);
		memcpy(low2, dev_pat, 1000);
		memcpy(low, dev_pat + 1000, n - 1000);
		struct kcom_physseg two[2] = { { (uintptr_t)low2, 1000 }, { (uintptr_t)low, n - 1000 } };
		err = edu_dma(&dev, 0, two, 2, 0);
		memset(low, 0, n);
		if (KCOM_SUCCEEDED(err))
			err = edu_dma(&dev, 1, &seg, 1, 0);
	}
	CHECK(KCOM_SUCCEEDED(err) && memcmp(low, dev_pat, n) == 0,
	      "edu: scatter of 2 segments (%p, %p) gathers back in order (%s)", low2, low, kcom_strerror(err));

	/* A kcom buffer that cannot be wired (membuf) goes through a bounce buffer (bufio's bounce
	 * helper, with the allocator the driver found in the class table). */
	kcom_bufio_t *mb = NULL, *mb2 = NULL;
	size_t done = 0;
	fill(dev_pat, n, 151);
	err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&mb);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_write(mb, dev_pat, 0, n, &done);
	if (KCOM_SUCCEEDED(err))
		err = edu_to_device(&dev, mb, 0, n, 0);
	int bounced = dev.last_bounced;
	if (KCOM_SUCCEEDED(err))
		err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&mb2);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_setsize(mb2, n); /* the device writes a range that exists */
	if (KCOM_SUCCEEDED(err))
		err = edu_from_device(&dev, mb2, 0, n, 0);
	bounced &= dev.last_bounced;
	memset(dev_got, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_read(mb2, dev_got, 0, n, &done);
	CHECK(KCOM_SUCCEEDED(err) && bounced && dev.last_high <= reach && memcmp(dev_got, dev_pat, n) == 0,
	      "edu: membuf -> device -> membuf through a bounce buffer below the line (%s)", kcom_strerror(err));
	if (mb != NULL)
		kcom_bufio_release(mb);
	if (mb2 != NULL)
		kcom_bufio_release(mb2);

	/* dmabuf under the device's constraints: placed below the line by the osenv's dma_alloc,
	 * checked by dmabuf, and the device programmed with the segments kcom's wire_vec gives
	 * (the bounce helper wires the object's own pages: no bounce). */
	kcom_bufio_t *db = NULL, *db2 = NULL;
	kcom_phys_t dphys = 0;
	fill(dev_pat, n, 201);
	err = kcom_dmabuf_create(n, n, &dev.dma, &db);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_wire(db, &dphys, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_unwire(db, dphys, 0, n);
	CHECK(KCOM_SUCCEEDED(err) && dphys != 0 && dphys + n - 1 <= reach,
	      "edu: dmabuf created under max_addr %llx is wired at %llx, below the line (%s)",
	      (unsigned long long)reach, (unsigned long long)dphys, kcom_strerror(err));
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_write(db, dev_pat, 0, n, &done);
	if (KCOM_SUCCEEDED(err))
		err = edu_to_device(&dev, db, 0, n, 0);
	int direct1 = !dev.last_bounced;
	if (KCOM_SUCCEEDED(err))
		err = kcom_dmabuf_create(n, n, &dev.dma, &db2);
	if (KCOM_SUCCEEDED(err))
		err = edu_from_device(&dev, db2, 0, n, 0);
	int direct2 = !dev.last_bounced;
	memset(dev_got, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_read(db2, dev_got, 0, n, &done);
	CHECK(KCOM_SUCCEEDED(err) && direct1 && direct2 && memcmp(dev_got, dev_pat, n) == 0,
	      "edu: dmabuf -> device -> dmabuf at kcom's wire_vec addresses, no bounce, bytes equal (%s)",
	      kcom_strerror(err));

	/* The single address from bufio's wire, programmed by hand: device -> the first dmabuf. */
	if (db != NULL && db2 != NULL) {
		static const uint8_t zero[64];
		err = KCOM_OK;
		for (size_t off = 0; off < n && KCOM_SUCCEEDED(err); off += sizeof(zero)) { /* clear it through kcom */
			size_t k = n - off < sizeof(zero) ? n - off : sizeof(zero);
			err = kcom_bufio_write(db, zero, (kcom_off_t)off, k, &done);
			if (KCOM_SUCCEEDED(err) && done != k)
				err = KCOM_E_UNEXPECTED;
		}
		if (KCOM_SUCCEEDED(err))
			err = kcom_bufio_wire(db, &dphys, 0, n);
		if (KCOM_SUCCEEDED(err)) {
			struct kcom_physseg w = { .addr = dphys, .len = n };
			err = edu_dma(&dev, 1, &w, 1, 0);
			kcom_error_t uerr = kcom_bufio_unwire(db, dphys, 0, n);
			if (KCOM_SUCCEEDED(err))
				err = uerr;
		}
		memset(dev_got, 0, n);
		if (KCOM_SUCCEEDED(err))
			err = kcom_bufio_read(db, dev_got, 0, n, &done);
		CHECK(KCOM_SUCCEEDED(err) && memcmp(dev_got, dev_pat, n) == 0,
		      "edu: device -> dmabuf at the address bufio's wire gave (%llx), bytes equal (%s)",
		      (unsigned long long)dphys, kcom_strerror(err));
	}
	if (db != NULL)
		kcom_bufio_release(db);
	if (db2 != NULL)
		kcom_bufio_release(db2);

	/* Scatter/gather from kcom's segment list: a 1 KiB boundary cuts the dmabuf's range into
	 * four segments, one DMA each. */
	struct kcom_dma_constraints kb = dev.dma;
	kb.boundary = 1024;
	db = NULL;
	size_t nsegs = 0;
	fill(dev_pat, n, 99);
	err = kcom_dmabuf_create(n, n, &kb, &db);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_write(db, dev_pat, 0, n, &done);
	if (KCOM_SUCCEEDED(err)) {
		kcom_bufvec_t *bv;
		struct kcom_physseg segs[8];
		err = kcom_bufio_query(db, &kcom_bufvec_iid, (void **)&bv);
		if (KCOM_SUCCEEDED(err)) {
			err = kcom_bufvec_wire_vec(bv, 0, n, segs, 8, &nsegs);
			if (KCOM_SUCCEEDED(err)) {
				err = edu_dma(&dev, 0, segs, nsegs, 0);
				kcom_error_t uerr = kcom_bufvec_unwire_vec(bv, 0, n, segs, nsegs);
				if (KCOM_SUCCEEDED(err))
					err = uerr;
			}
			kcom_bufvec_release(bv);
		}
	}
	memset(low, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = edu_dma(&dev, 1, &seg, 1, 0);
	CHECK(KCOM_SUCCEEDED(err) && nsegs == 4 && memcmp(low, dev_pat, n) == 0,
	      "edu: dmabuf with a 1 KiB boundary: wire_vec gives %zu segments, the device gathers them in order (%s)",
	      nsegs, kcom_strerror(err));
	if (db != NULL)
		kcom_bufio_release(db);

	/* A dmabuf made with no constraints lands high (the osenv serves it from the top).  Its
	 * wired address handed to the driver is refused before the device is programmed; through
	 * the bounce helper its pages are never handed over: a bounce buffer below the line is. */
	db = NULL;
	fill(dev_pat, n, 33);
	err = kcom_dmabuf_create(n, n, NULL, &db);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_write(db, dev_pat, 0, n, &done);
	kcom_phys_t hphys = 0;
	unsigned before = dev.dma_started;
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_wire(db, &hphys, 0, n);
	if (KCOM_SUCCEEDED(err)) {
		struct kcom_physseg w = { .addr = hphys, .len = n };
		e1 = edu_dma(&dev, 0, &w, 1, 0);
		e2 = edu_dma(&dev, 1, &w, 1, 0);
		err = kcom_bufio_unwire(db, hphys, 0, n);
	}
	CHECK(KCOM_SUCCEEDED(err) && hphys > reach && e1 == KCOM_E_UNREACHABLE && e2 == KCOM_E_UNREACHABLE &&
	              dev.dma_started == before,
	      "edu: an unconstrained dmabuf wired at %llx is refused by the driver (%s); no DMA started",
	      (unsigned long long)hphys, kcom_strerror(e1));
	if (KCOM_SUCCEEDED(err))
		err = edu_to_device(&dev, db, 0, n, 0);
	int bounced_high = dev.last_bounced;
	kcom_phys_t given = dev.last_high;
	memset(low, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = edu_dma(&dev, 1, &seg, 1, 0);
	CHECK(KCOM_SUCCEEDED(err) && bounced_high && given <= reach && memcmp(low, dev_pat, n) == 0,
	      "edu: through the bounce helper it is bounced below the line (device given up to %llx) (%s)",
	      (unsigned long long)given, kcom_strerror(err));
	if (db != NULL)
		kcom_bufio_release(db);

	/* A host allocator that ignores max_addr: dmabuf's own check refuses what it got. */
	size_t pages_before = pmem_pages_used();
	const struct kcom_osenv *prev = kcom_osenv_set(&lying_osenv);
	db = NULL;
	err = kcom_dmabuf_create(n, n, &dev.dma, &db);
	kcom_osenv_set(prev);
	CHECK(err == KCOM_E_UNREACHABLE && db == NULL && pmem_pages_used() == pages_before,
	      "edu: a dma_alloc that ignores max_addr is caught by dmabuf's constraint check (%s)",
	      kcom_strerror(err));
	if (db != NULL)
		kcom_bufio_release(db);

	/* Out of reach: refused before the device is programmed.  The device holds dev_pat
	 * (from the membuf); the high buffer holds other bytes; neither may change. */
	memset(high, 0x5A, n);
	unsigned started = dev.dma_started;
	struct kcom_physseg hseg = { .addr = (uintptr_t)high, .len = n };
	e1 = edu_dma(&dev, 0, &hseg, 1, 0);
	e2 = edu_dma(&dev, 1, &hseg, 1, 0);
	struct kcom_physseg edge = { .addr = reach - 99, .len = 200 }; /* its last 100 bytes are out */
	kcom_error_t e3 = edu_dma(&dev, 1, &edge, 1, 0);
	CHECK(e1 == KCOM_E_UNREACHABLE && e2 == KCOM_E_UNREACHABLE && e3 == KCOM_E_UNREACHABLE &&
	              dev.dma_started == started,
	      "edu: buffers above %llx (%p, and one straddling the line) refused with %s; no DMA started",
	      (unsigned long long)reach, high, kcom_strerror(e1));
	memset(low, 0, n);
	err = edu_dma(&dev, 1, &seg, 1, 0);
	int high_same = 1;
	for (size_t i = 0; i < n; i++)
		high_same &= ((uint8_t *)high)[i] == 0x5A;
	CHECK(KCOM_SUCCEEDED(err) && memcmp(low, dev_pat, n) == 0 && high_same,
	      "edu: after the refusals the device and the high buffer hold what they held");

	/* The driver's own guard against QEMU 7.2's off-by-one at the buffer's last byte: a request
	 * of 4096 bytes, one of 96 at 4000 (it too ends there), and segments whose lengths add up
	 * past SIZE_MAX to 16 on i386 (16 of 256 MiB and one of 16). */
	struct kcom_physseg page = { .addr = (uintptr_t)low, .len = EDU_DEV_BUF_SIZE };
	struct kcom_physseg tail = { .addr = (uintptr_t)low, .len = 96 };
	static struct kcom_physseg wrap[17];
	for (size_t i = 0; i < 16; i++)
		wrap[i] = (struct kcom_physseg){ .addr = 0, .len = (size_t)1 << 28 };
	wrap[16] = (struct kcom_physseg){ .addr = (uintptr_t)low, .len = 16 };
	started = dev.dma_started;
	e1 = edu_dma(&dev, 1, &page, 1, 0);
	e2 = edu_dma(&dev, 0, &tail, 1, EDU_DEV_BUF_SIZE - 96);
	e3 = edu_dma(&dev, 0, wrap, 17, 0);
	CHECK(e1 == KCOM_E_RANGE && e2 == KCOM_E_RANGE && e3 == KCOM_E_RANGE && dev.dma_started == started,
	      "edu: requests that reach the buffer's last byte, or wrap their total, are refused (%s, %s, %s)",
	      kcom_strerror(e1), kcom_strerror(e2), kcom_strerror(e3));

	/* A short transfer inside the device buffer (at 1000) moves those bytes and no others. */
	fill(dev_pat, n, 57);
	memcpy(low, dev_pat, n);
	err = edu_dma(&dev, 0, &seg, 1, 0); /* the device holds dev_pat */
	struct kcom_physseg mid = { .addr = (uintptr_t)low2, .len = 500 };
	if (KCOM_SUCCEEDED(err) && low2 != NULL) {
		fill(low2, 500, 58);
		memcpy(dev_pat + 1000, low2, 500);
		err = edu_dma(&dev, 0, &mid, 1, 1000);
	}
	memset(low, 0, n);
	if (KCOM_SUCCEEDED(err))
		err = edu_dma(&dev, 1, &seg, 1, 0);
	CHECK(KCOM_SUCCEEDED(err) && low2 != NULL && memcmp(low, dev_pat, n) == 0,
	      "edu: 500 bytes at device offset 1000 land there, the rest stays (%s)", kcom_strerror(err));

	/*
	 * A transfer whose copy back fails holds nothing afterwards: no bounce buffer's pages, no
	 * wiring, no reference.  The membuf shares its store with a copy and has a read-only
	 * mapping outstanding, so a write cannot make the store its own: KCOM_E_BUSY.
	 */
	mb = NULL;
	kcom_bufio_t *twin = NULL;
	kcom_bufvec_t *rv = NULL;
	struct kcom_iovec riov[4];
	size_t rcount = 0;
	err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&mb);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_setsize(mb, n);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_copy(mb, 0, n, &twin);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_query(mb, &kcom_bufvec_iid, (void **)&rv);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufvec_map_vec(rv, 0, n, KCOM_MAP_READ, riov, 4, &rcount);
	if (KCOM_SUCCEEDED(err)) {
		size_t pages = pmem_pages_used();
		uint32_t held = kcom_bufio_addref(mb); /* ours, rv's, the mapping's, and this one */
		kcom_bufio_release(mb);
		e1 = edu_from_device(&dev, mb, 0, n, 0);
		uint32_t now = kcom_bufio_addref(mb);
		kcom_bufio_release(mb);
		CHECK(e1 == KCOM_E_BUSY && now == held && pmem_pages_used() == pages,
		      "edu: a copy back that fails (%s) holds nothing: references %u -> %u, pages %zu -> %zu",
		      kcom_strerror(e1), (unsigned)held - 1, (unsigned)now - 1, pages, pmem_pages_used());
		err = kcom_bufvec_unmap_vec(rv, 0, n, KCOM_MAP_READ, riov, rcount);
	}
	CHECK(KCOM_SUCCEEDED(err), "edu: the copy-back case set up and ended (%s)", kcom_strerror(err));
	if (rv != NULL)
		kcom_bufvec_release(rv);
	if (twin != NULL)
		kcom_bufio_release(twin);
	if (mb != NULL)
		kcom_bufio_release(mb);

	/* A constraint nothing can meet: below 1 MiB (kept for the BIOS). */
	struct kcom_dma_constraints isa = { .max_addr = 0xFFFFF };
	void *none = (void *)1;
	err = kcom_dma_alloc(PAGE_SIZE, &isa, &none);
	CHECK(err == KCOM_E_OUTOFMEMORY && none == NULL, "dma_alloc below 1 MiB fails cleanly (%s)",
	      kcom_strerror(err));

	/* Alignment and boundary: a 64 KiB-aligned page pair that crosses no 64 KiB line. */
	struct kcom_dma_constraints al = { .max_addr = reach, .align = 0x10000, .boundary = 0x10000, .contiguous = 1 };
	void *a = NULL;
	err = kcom_dma_alloc(2 * PAGE_SIZE, &al, &a);
	CHECK(KCOM_SUCCEEDED(err) && ((uintptr_t)a & 0xFFFF) == 0 && (uintptr_t)a + 2 * PAGE_SIZE - 1 <= reach,
	      "dma_alloc honours alignment 64 KiB and boundary 64 KiB: %p", a);
	if (a != NULL)
		kcom_dma_free(a, 2 * PAGE_SIZE);

	/* Constraints bind the bytes asked for, not the rest of their last page. */
	struct kcom_dma_constraints sub1 = { .max_addr = reach, .boundary = 1024 };
	struct kcom_dma_constraints sub2 = { .boundary = 2048, .contiguous = 1 };
	void *s1 = NULL, *s2 = NULL;
	e1 = kcom_dma_alloc(512, &sub1, &s1);
	e2 = kcom_dma_alloc(2048, &sub2, &s2);
	CHECK(KCOM_SUCCEEDED(e1) && KCOM_SUCCEEDED(e2) && (uintptr_t)s1 / 1024 == ((uintptr_t)s1 + 511) / 1024 &&
	              (uintptr_t)s1 + 511 <= reach && (uintptr_t)s2 / 2048 == ((uintptr_t)s2 + 2047) / 2048,
	      "dma_alloc: 512 bytes under a 1 KiB boundary at %p, 2048 contiguous under a 2 KiB one at %p (%s, %s)", s1,
	      s2, kcom_strerror(e1), kcom_strerror(e2));
	if (s1 != NULL)
		kcom_dma_free(s1, 512);
	if (s2 != NULL)
		kcom_dma_free(s2, 2048);

	/* After a DMA that never finished (set by hand: QEMU's edu always finishes), every request
	 * is refused before anything is held or programmed. */
	kcom_bufio_t *w = NULL;
	err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&w);
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_setsize(w, 100);
	if (KCOM_SUCCEEDED(err)) {
		size_t pages = pmem_pages_used();
		started = dev.dma_started;
		dev.wedged = 1;
		e1 = edu_to_device(&dev, w, 0, 100, 0);
		e2 = edu_from_device(&dev, w, 0, 100, 0);
		dev.wedged = 0;
		uint32_t refs = kcom_bufio_addref(w);
		kcom_bufio_release(w);
		CHECK(e1 == KCOM_E_FAIL && e2 == KCOM_E_FAIL && refs == 2 && pmem_pages_used() == pages &&
		              dev.dma_started == started,
		      "edu: a wedged device refuses requests (%s) holding nothing, programming nothing", kcom_strerror(e1));
	}
	if (w != NULL)
		kcom_bufio_release(w);

out:
	edu_detach(&dev);
	if (low2 != NULL)
		kcom_dma_free(low2, n);
	if (low != NULL)
		kcom_dma_free(low, n);
	if (high != NULL)
		kcom_free(high, EDU_DEV_BUF_SIZE, PAGE_SIZE);
}

void kmain(uint32_t magic, const void *mbinfo)
{
	serial_init();
	kprintf("# kcom example kernel: product \"%s\"\n", kcom_product.name);
	/* (CHECK's message arguments may be evaluated before its condition: compute first.) */
	int mem = pmem_init(magic, mbinfo);
	if (!CHECK(mem == 0, "multiboot memory map: %u KiB usable, RAM up to %llx",
	           (unsigned)(pmem_usable_bytes() / 1024), (unsigned long long)pmem_top()))
		kernel_exit(KERNEL_EXIT_FAIL);
	CHECK(kcom_osenv_get() == &kernel_osenv, "the product's osenv is in force with no set-up call");
	size_t base = pmem_pages_used();

	const struct kcom_class *cls;
	size_t nclasses = 0;
	for (size_t i = 0; KCOM_SUCCEEDED(kcom_class_enum(i, &cls)); i++, nclasses++)
		test_class(cls);
	CHECK(nclasses == kcom_product.nclasses && nclasses > 0, "the class table lists the product's %zu classes",
	      nclasses);
	CHECK(pmem_pages_used() == base, "no page leaked by the buffer classes (%zu in use)", pmem_pages_used());

	test_edu();
	CHECK(pmem_pages_used() == base, "no page leaked by the device tests (%zu in use)", pmem_pages_used());

	kprintf("1..%u\n", checks);
	if (failures != 0) {
		kprintf("# kernel: FAIL: %u of %u checks failed\n", failures, checks);
		kernel_exit(KERNEL_EXIT_FAIL);
	}
	kprintf("# kernel: PASS: all %u checks\n", checks);
	kernel_exit(KERNEL_EXIT_PASS);
}
