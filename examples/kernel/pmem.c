/*
 * Physical pages from the multiboot memory map: one bit per 4 KiB page (1 = free) for the
 * first 1 GiB, which is all this example manages (RAM above it is logged and ignored).
 * Everything below 1 MiB (BIOS data, the multiboot info, VGA) and the kernel image is kept
 * out.  Ordinary allocations search from the top down and device memory from 1 MiB up, so
 * that low memory stays free for devices with a short reach (edu's 28 bits) and ordinary
 * objects land high: the constraint tests rely on that split, and say so when they check.
 * One CPU, no interrupts: no locking.
 */
#include "kernel.h"

#define PMEM_MAX_PAGES (1u << 18) /* 1 GiB */
#define MB_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_INFO_MMAP (1u << 6)

static uint32_t pmem_bits[PMEM_MAX_PAGES / 32];
static size_t pmem_npages; /* pages covered by the bitmap: one past the highest usable */
static size_t pmem_used;
static uint64_t pmem_usable;

extern char __kernel_start[], __kernel_end[];

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
};

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t base, len;
	uint32_t type; /* 1: usable RAM */
} __attribute__((packed));

static int page_free(size_t pg)
{
	return (pmem_bits[pg / 32] >> (pg % 32)) & 1u;
}

static void page_set(size_t pg, int free)
{
	if (free)
		pmem_bits[pg / 32] |= 1u << (pg % 32);
	else
		pmem_bits[pg / 32] &= ~(1u << (pg % 32));
}

int pmem_init(uint32_t magic, const void *mbinfo)
{
	const struct mb_info *mb = mbinfo;
	if (magic != MB_BOOTLOADER_MAGIC || !(mb->flags & MB_INFO_MMAP))
		return -1;
	uintptr_t p = mb->mmap_addr, end = p + mb->mmap_length;
	while (p < end) {
		const struct mb_mmap_entry *e = (const struct mb_mmap_entry *)p;
		if (e->type == 1) {
			uint64_t first = (e->base + PAGE_SIZE - 1) / PAGE_SIZE;
			uint64_t last = (e->base + e->len) / PAGE_SIZE; /* exclusive */
			if (last > PMEM_MAX_PAGES) {
				kprintf("# pmem: ignoring RAM above 1 GiB\n");
				last = PMEM_MAX_PAGES;
			}
			for (uint64_t pg = first; pg < last; pg++) {
				page_set((size_t)pg, 1);
				pmem_usable += PAGE_SIZE;
			}
			if (last > pmem_npages)
				pmem_npages = (size_t)last;
		}
		p += e->size + sizeof(e->size);
	}
	/* Below 1 MiB and the kernel itself are never handed out. */
	size_t kend = ((uintptr_t)__kernel_end + PAGE_SIZE - 1) / PAGE_SIZE;
	for (size_t pg = 0; pg < kend && pg < pmem_npages; pg++)
		if (page_free(pg)) {
			page_set(pg, 0);
			pmem_usable -= PAGE_SIZE;
		}
	return pmem_npages > kend ? 0 : -1;
}

uint64_t pmem_usable_bytes(void)
{
	return pmem_usable;
}

size_t pmem_pages_used(void)
{
	return pmem_used;
}

kcom_phys_t pmem_top(void)
{
	return (kcom_phys_t)pmem_npages * PAGE_SIZE - 1;
}

/* Are pages [pg, pg + n) free, and their first `span` bytes within the constraints? */
static int run_fits(size_t pg, size_t n, size_t span, size_t align_pages, kcom_phys_t max_addr, size_t boundary)
{
	if (pg % align_pages != 0 || pg + n > pmem_npages)
		return 0;
	uint64_t first = (uint64_t)pg * PAGE_SIZE, last = first + span - 1;
	if (max_addr != 0 && last > max_addr)
		return 0;
	if (boundary != 0 && ((first ^ last) & ~(uint64_t)(boundary - 1)) != 0) /* a power of two */
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!page_free(pg + i))
			return 0;
	return 1;
}

void *pmem_alloc(size_t npages, size_t span, size_t align, kcom_phys_t max_addr, size_t boundary, int from_top)
{
	size_t align_pages = align > PAGE_SIZE ? align / PAGE_SIZE : 1;
	if (npages == 0 || npages > pmem_npages || span == 0 || span > npages * PAGE_SIZE)
		return NULL;
	size_t found = 0;
	int ok = 0;
	if (from_top) {
		for (size_t pg = pmem_npages - npages + 1; pg-- > 0;)
			if (run_fits(pg, npages, span, align_pages, max_addr, boundary)) {
				found = pg;
				ok = 1;
				break;
			}
	} else {
		for (size_t pg = 0; pg + npages <= pmem_npages; pg++)
			if (run_fits(pg, npages, span, align_pages, max_addr, boundary)) {
				found = pg;
				ok = 1;
				break;
			}
	}
	if (!ok)
		return NULL;
	for (size_t i = 0; i < npages; i++)
		page_set(found + i, 0);
	pmem_used += npages;
	return (void *)((uintptr_t)found * PAGE_SIZE);
}

void pmem_free(void *p, size_t npages)
{
	size_t pg = (uintptr_t)p / PAGE_SIZE;
	for (size_t i = 0; i < npages; i++) {
		if (page_free(pg + i)) {
			kprintf("# pmem: double free of page %p\n", (void *)((uintptr_t)(pg + i) * PAGE_SIZE));
			kernel_exit(KERNEL_EXIT_FAIL);
		}
		page_set(pg + i, 1);
	}
	pmem_used -= npages;
}
