/*
 * COM1 (0x3F8) at 115200 8N1, polled: the kernel's console, which QEMU's -serial stdio shows
 * the test.  kprintf knows just the conversions the kernel uses; 64-bit numbers are printed in
 * hex only (decimal would need libgcc's 64-bit division).  Also the verdict (isa-debug-exit).
 */
#include "kernel.h"

#define COM1 0x3F8

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB on */
	outb(COM1 + 0, 0x01); /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1, DLAB off */
	outb(COM1 + 2, 0xC7); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void serial_putc(char c)
{
	if (c == '\n')
		serial_putc('\r');
	for (int spins = 0; spins < 100000 && !(inb(COM1 + 5) & 0x20); spins++)
		;
	outb(COM1, (uint8_t)c);
}

void serial_puts(const char *s)
{
	while (*s != '\0')
		serial_putc(*s++);
}

static void put_unsigned(uint64_t v, unsigned base, int width, char pad)
{
	char tmp[24];
	int n = 0;
	do {
		unsigned digit;
		if (base == 16) {
			digit = (unsigned)(v & 0xF);
			v >>= 4;
		} else {
			/* Only 32-bit values come here (see the file comment). */
			uint32_t w = (uint32_t)v;
			digit = w % 10;
			v = w / 10;
		}
		tmp[n++] = (char)(digit < 10 ? '0' + digit : 'a' + digit - 10);
	} while (v != 0);
	while (width-- > n)
		serial_putc(pad);
	while (n > 0)
		serial_putc(tmp[--n]);
}

void kvprintf(const char *fmt, va_list ap)
{
	for (const char *p = fmt; *p != '\0'; p++) {
		if (*p != '%') {
			serial_putc(*p);
			continue;
		}
		p++;
		char pad = ' ';
		int width = 0, longs = 0;
		if (*p == '0') {
			pad = '0';
			p++;
		}
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		while (*p == 'l' || *p == 'z') {
			if (*p == 'l')
				longs++;
			p++;
		}
		switch (*p) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			serial_puts(s != NULL ? s : "(null)");
			break;
		}
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			long v = va_arg(ap, long); /* int, long and ssize_t are all 32 bits here */
			if (v < 0) {
				serial_putc('-');
				v = -v;
			}
			put_unsigned((unsigned long)v, 10, width, pad);
			break;
		}
		case 'u':
			put_unsigned(va_arg(ap, unsigned long), 10, width, pad);
			break;
		case 'x':
			put_unsigned(longs >= 2 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned long), 16, width,
			             pad);
			break;
		case 'p':
			serial_puts("0x");
			put_unsigned((uintptr_t)va_arg(ap, void *), 16, 8, '0');
			break;
		case '%':
			serial_putc('%');
			break;
		default:
			serial_putc('?');
			break;
		}
	}
}

void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

void kernel_exit(uint8_t value)
{
	outb(KERNEL_EXIT_PORT, value);
	/* No exit device (or it did not stop us): stop here. */
	for (;;)
		__asm__ volatile("cli; hlt");
}
