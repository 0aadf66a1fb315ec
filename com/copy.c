/*
 * The long-copy paths of kcom_memcpy (com/com-internal.h): which CPUs take them, the copy
 * forward in blocks and the copy as one `rep movsb`.
 */
#include <com/com-internal.h>

#if KCOM_COPY_ALIASING_
#include <cpuid.h>

enum copy_mode { COPY_UNASKED, COPY_WHOLE, COPY_BLOCKS, COPY_STRING };

/* The sanitizers check memcpy's ranges, and cannot check one `rep movsb`'s. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COPY_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define COPY_SANITIZED 1
#endif
#endif
#ifndef COPY_SANITIZED
#define COPY_SANITIZED 0
#endif

/* What this CPU does with a long copy; every thread computes the same. */
static int copy_mode;

static int copy_mode_ask(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(0, &a, &b, &c, &d))
		return COPY_WHOLE;
	/* The vendor string is EBX, EDX, ECX of leaf 0: "AuthenticAMD", "GenuineIntel". */
	if (b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u)
		return COPY_BLOCKS;
	if (b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu && !COPY_SANITIZED) {
		/* ERMS, fast `rep movsb`: leaf 7, EBX bit 9. */
		unsigned max = a;
		if (max >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 9)) != 0)
			return COPY_STRING;
	}
	return COPY_WHOLE;
}

void kcom_memcpy_long_(void *dst, const void *src, size_t n)
{
	int mode = __atomic_load_n(&copy_mode, __ATOMIC_RELAXED);
	if (mode == COPY_UNASKED) {
		mode = copy_mode_ask();
		__atomic_store_n(&copy_mode, mode, __ATOMIC_RELAXED);
	}
	uintptr_t ahead = (uintptr_t)dst - (uintptr_t)src, behind = (uintptr_t)src - (uintptr_t)dst;
	if (ahead < n || behind < n)
		__builtin_memmove(dst, src, n);
	else if (mode == COPY_BLOCKS && kcom_copy_placed_badly_(dst, src))
		kcom_memcpy_blocks_(dst, src, n);
	else if (mode == COPY_STRING && kcom_copy_by_string_(dst, src, n))
		kcom_memcpy_string_(dst, src, n);
	else
		__builtin_memcpy(dst, src, n);
}

void kcom_memcpy_string_(void *dst, const void *src, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}
#endif

/* 16 bytes that may sit anywhere and alias anything: a vector register, where there is one. */
typedef unsigned char copy_v16 __attribute__((vector_size(16), aligned(1), may_alias));
_Static_assert(KCOM_COPY_BLOCK_ == 4 * sizeof(copy_v16), "copy_block moves four vectors");

/* One block: its four loads before its four stores (4-8% faster than load-store pairs on Zen 3). */
static inline void copy_block(unsigned char *d, const unsigned char *s)
{
	copy_v16 a = *(const copy_v16 *)s, b = *(const copy_v16 *)(s + 16);
	copy_v16 c = *(const copy_v16 *)(s + 32), e = *(const copy_v16 *)(s + 48);
	*(copy_v16 *)d = a;
	*(copy_v16 *)(d + 16) = b;
	*(copy_v16 *)(d + 32) = c;
	*(copy_v16 *)(d + 48) = e;
}

void kcom_memcpy_blocks_(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (n < KCOM_COPY_BLOCK_) {
		__builtin_memcpy(d, s, n);
		return;
	}
	/* Whole blocks from the front; the last block ends at n and may overlap the one before. */
	size_t last = n - KCOM_COPY_BLOCK_;
	for (size_t i = 0; i < last; i += KCOM_COPY_BLOCK_) {
		copy_block(d + i, s + i);
		/* Hide the index, or the compiler may turn the loop back into one memcpy call. */
		__asm__("" : "+r"(i));
	}
	copy_block(d + last, s + last);
}
