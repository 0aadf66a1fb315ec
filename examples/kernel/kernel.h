/*
 * The example kernel's own pieces (not kcom): port I/O, the serial console, the physical page
 * allocator over the multiboot memory map, the verdict through QEMU's isa-debug-exit device.
 * One CPU, no interrupts, no paging: a virtual address is its physical address.
 */
#ifndef KCOM_EXAMPLE_KERNEL_H
#define KCOM_EXAMPLE_KERNEL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <com/osenv.h>

/* ---- port I/O ---- */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* ---- the verdict: QEMU exits with (value << 1) | 1 ---- */
#define KERNEL_EXIT_PORT 0xf4
#define KERNEL_EXIT_PASS 0x21 /* QEMU exits 67 */
#define KERNEL_EXIT_FAIL 0x2a /* QEMU exits 85 */
/* Leaves QEMU with @p value; halts if there is no exit device. */
void kernel_exit(uint8_t value) __attribute__((noreturn));

/* ---- serial console on COM1 (serial.c) ---- */
void serial_init(void);
void serial_puts(const char *s);
/* printf for the console: %s %c %d %u %x (with l, z, 0 and a width), %llx, %p. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* ---- physical pages (pmem.c) ---- */
#define PAGE_SIZE 4096u
/* Takes the usable RAM from the multiboot info; 0 on success, -1 without a memory map. */
int pmem_init(uint32_t magic, const void *mbinfo);
/* Usable bytes found, and pages in use now. */
uint64_t pmem_usable_bytes(void);
size_t pmem_pages_used(void);
/* Highest usable byte managed. */
kcom_phys_t pmem_top(void);
/*
 * npages contiguous pages aligned to `align` bytes (a power of two, >= PAGE_SIZE or 0), whose
 * first `span` bytes (0 < span <= npages pages: the bytes the caller asked for) lie at or below
 * max_addr (0: anywhere) and cross no multiple of `boundary` (0: none).  from_top: search from
 * the highest address down (ordinary memory), else upward from 1 MiB (memory for devices, so
 * that high memory serves everything else).  NULL when none fits.
 */
void *pmem_alloc(size_t npages, size_t span, size_t align, kcom_phys_t max_addr, size_t boundary, int from_top);
void pmem_free(void *p, size_t npages);

/* ---- the kernel's osenv (product.c) ---- */
extern const struct kcom_osenv kernel_osenv;

#endif /* KCOM_EXAMPLE_KERNEL_H */
