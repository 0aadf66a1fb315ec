/*
 * The long-copy path of kcom_memcpy (com/com-internal.h): which CPUs take it, and the copy
 * in pieces.
 */
#include <com/com-internal.h>

#if KCOM_COPY_ALIASING_
#include <cpuid.h>

/* 0: not yet asked; 1: copy whole; 2: copy in pieces.  Every thread computes the same. */
static int copy_mode;

int kcom_copy_in_pieces_(void)
{
	int mode = __atomic_load_n(&copy_mode, __ATOMIC_RELAXED);
	if (mode == 0) {
		unsigned a, b, c, d;
		/* "AuthenticAMD": the vendor string is EBX, EDX, ECX of leaf 0. */
		int amd = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u &&
		          c == 0x444d4163u;
		mode = amd ? 2 : 1;
		__atomic_store_n(&copy_mode, mode, __ATOMIC_RELAXED);
	}
	return mode == 2;
}
#endif

void kcom_memcpy_pieces_(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	size_t piece = KCOM_COPY_PIECE_;
	/* Hide the constant, or the compiler expands each piece inline as one string move. */
	__asm__("" : "+r"(piece));
	while (n > piece) {
		__builtin_memcpy(d, s, piece);
		d += piece;
		s += piece;
		n -= piece;
	}
	__builtin_memcpy(d, s, n);
}
