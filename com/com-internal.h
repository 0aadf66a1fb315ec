/*
 * Private to kcom's own sources: assertions, container_of, the string.h-level functions the
 * core may use, and helpers shared across files (names ending in '_').  Never included by a
 * public header.
 */
#ifndef KCOM_COM_COM_INTERNAL_H
#define KCOM_COM_COM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>
#include <com/guid.h>
#include <com/osenv.h>
#include <com/iochannel.h>

/*
 * The only C-library functions the core calls.  Use the builtins so that a freestanding build
 * needs no <string.h>; GCC emits calls to memcpy/memset/memmove/memcmp for large sizes, which a
 * kernel supplies (tests/core-symbols.test checks that nothing else is needed).
 */
#define kcom_memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define kcom_memset(d, c, n) __builtin_memset((d), (c), (n))
#define kcom_memcmp(a, b, n) __builtin_memcmp((a), (b), (n))

/*
 * kcom_memcpy is memcpy, except for some copies longer than KCOM_COPY_LONG_ whose source and
 * destination sit at different places in their cache lines, on two kinds of x86 CPU.
 *
 * On AMD's, where `rep movsb` (which glibc's memcpy uses from about 2 KiB up, Debian 12's
 * glibc 2.36 included) is slow on Zen 3, two placements:
 * - the destination lies 1 to 63 bytes past the source's place in a 4 KiB page.  There
 *   `rep movsb` runs up to 15 times slower than at any other distance (glibc bug 30994), and
 *   a page-aligned cluster read into a buffer from malloc (16 bytes into its page) is that
 *   case.  glibc's vector loop is no way out: at that distance it copies backward, which from
 *   memory runs at about two thirds of the speed.
 * - the distance is an odd multiple of 16 (dst - src = 16 mod 32) and the destination is
 *   16-byte aligned: a buffer from malloc written into a page-aligned cluster, or read from or
 *   written to a membuf.  There 4 KiB and longer copies with `rep movsb` ran up to 20% slower
 *   than the blocks, in L1, L2, L3 and from memory (one point of 15 from memory was 3% faster).
 *   At a multiple of 32 the two are even in L2 and `rep movsb` is much faster in L1; where
 *   the blocks would split cache lines they lose a third from L2.  Those copies stay with
 *   memcpy.
 * Such a copy goes forward in blocks of KCOM_COPY_BLOCK_ bytes instead, which runs at
 * memcpy's speed at a good distance.
 *
 * On Intel's with fast `rep movsb` (ERMS), a copy of at least KCOM_COPY_STRING_ bytes to a
 * destination that is not on a cache line is one `rep movsb` from where it stands (not in a
 * build for AddressSanitizer, ThreadSanitizer or MemorySanitizer, which see memcpy's arguments
 * and not an instruction's).  glibc's memcpy first moves such a destination to a line
 * boundary, and then, between other work (kcom's calls), 4 KiB copies from a page-aligned
 * cluster into a buffer from malloc ran 7-10% slower than that one instruction does.  A
 * destination on a line stays with memcpy, which was 2-3% faster there (doc/performance.md,
 * "Copies off a cache line on Intel").
 *
 * Either way the inline check costs a subtraction, a mask and a compare; the rest is one call
 * out of line (com/copy.c).  A constant-size copy of at most KCOM_COPY_LONG_ bytes compiles to
 * the builtin alone.
 */
#define KCOM_COPY_LONG_ ((size_t)2048)
#define KCOM_COPY_BLOCK_ ((size_t)64)
#define KCOM_COPY_STRING_ ((size_t)3072)

#if defined(__x86_64__) || defined(__i386__)
#define KCOM_COPY_ALIASING_ 1
#else
#define KCOM_COPY_ALIASING_ 0
#endif

/* Whether dst and src lie in one of the two placements above for AMD (on any CPU). */
static inline int kcom_copy_placed_badly_(const void *dst, const void *src)
{
	uintptr_t e = ((uintptr_t)dst - (uintptr_t)src) & 4095u;
	return e - 1u < 63u || ((e & 31u) == 16u && ((uintptr_t)dst & 15u) == 0);
}

/*
 * Whether an n-byte copy goes as one `rep movsb` on Intel (on any CPU): the destination off a
 * cache line, the source elsewhere in its own, and the destination not 1-63 bytes after the
 * source modulo 2^32.  There `rep movsb` itself is several times slower: a 4 KiB copy with the
 * destination 16 bytes after its source modulo 4 GiB took about 1180 ns, memcpy 168 ns, on an
 * Intel VM (doc/performance.md, "Copies off a cache line on Intel").
 */
static inline int kcom_copy_by_string_(const void *dst, const void *src, size_t n)
{
	uintptr_t d = (uintptr_t)dst - (uintptr_t)src;
	return n >= KCOM_COPY_STRING_ && ((uintptr_t)dst & 63u) != 0 && (d & 63u) != 0 && (uint32_t)d > 63u;
}

/* Copies n bytes forward in blocks of KCOM_COPY_BLOCK_ (com/copy.c; any CPU, any n). */
void kcom_memcpy_blocks_(void *dst, const void *src, size_t n);

#if KCOM_COPY_ALIASING_
/* Copies n bytes with one `rep movsb` (com/copy.c; any x86 CPU, any n). */
void kcom_memcpy_string_(void *dst, const void *src, size_t n);

/*
 * A long copy whose two places differ within a cache line: by the CPU, asked of CPUID once.
 * Two ranges that overlap go to memmove, so that neither path here copies worse than the C
 * library's memcpy does (glibc's x86 memcpy is its memmove).
 */
void kcom_memcpy_long_(void *dst, const void *src, size_t n);

static inline void kcom_memcpy_(void *dst, const void *src, size_t n)
{
	if (n > KCOM_COPY_LONG_ && (((uintptr_t)dst - (uintptr_t)src) & 63u) != 0)
		kcom_memcpy_long_(dst, src, n);
	else
		__builtin_memcpy(dst, src, n);
}
#define kcom_memcpy(d, s, n) kcom_memcpy_((d), (s), (n))
#else
#define kcom_memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#endif

/*
 * Copies n <= 64 bytes with at most four fixed-size moves that the compiler inlines (two
 * overlapping moves of a power of two cover any length in [k, 2k]).  A random small read pays
 * no call and no size dispatch, which matters when the bytes miss the cache: fewer instructions
 * a read keep more of them, and so more misses, in flight.
 */
static inline void kcom_copy_small_(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (n >= 32) {
		__builtin_memcpy(d, s, 32);
		__builtin_memcpy(d + n - 32, s + n - 32, 32);
	} else if (n >= 16) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		__builtin_memcpy(d, s, 4);
		__builtin_memcpy(d + n - 4, s + n - 4, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

#define KCOM_STRINGIFY_(x) #x
#define KCOM_STRINGIFY(x) KCOM_STRINGIFY_(x)

/*
 * KCOM_ASSERT is for programmer errors inside kcom (broken invariants), never for bad input
 * from a caller, which gets an error code.  Off by default: the condition is not evaluated.
 */
#ifdef KCOM_INVARIANTS
#define KCOM_ASSERT(cond) \
	((cond) ? (void)0 : kcom_panic(__FILE__ ":" KCOM_STRINGIFY(__LINE__) ": assertion failed: " #cond))
#else
#define KCOM_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

/* The object that embeds `ptr` as its `member`. */
#define kcom_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define KCOM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KCOM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Length of a NUL-terminated string, without <string.h>. */
size_t kcom_strlen_(const char *s);

/* The hosted osenv's table (com/osenv-hosted.c), for the hosted product file to name. */
extern const struct kcom_osenv kcom_osenv_hosted_table_;

/*
 * A spin lock that needs no set-up: zero is unlocked, so a static one works from the first
 * call, before any osenv is installed and in a kernel that has no lock of its own yet.  For
 * short sections that never block and never call out (a table scan); anything longer takes an
 * osenv lock.
 */
typedef struct kcom_spinlock {
	uint32_t held;
} kcom_spinlock_t;

static inline void kcom_spin_acquire_(kcom_spinlock_t *l)
{
	while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE) != 0) {
		while (__atomic_load_n(&l->held, __ATOMIC_RELAXED) != 0) {
#if defined(__i386__) || defined(__x86_64__)
			__asm__ volatile("pause"); /* rep; nop: a hint, safe on every x86 */
#endif
		}
	}
}

static inline void kcom_spin_release_(kcom_spinlock_t *l)
{
	__atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
}

struct kcom_class;

/*
 * Closes registered classes before their code may go (a module's last unload, or a failed
 * load): from then on no lookup finds them, so no kcom_create of them starts.  All or nothing:
 * KCOM_E_BUSY while a kcom_create of one of them is running.  A class not registered by that
 * very description (unregistered by the program meanwhile) is skipped.  Closed classes are
 * then removed with kcom_class_remove_ (which, unlike kcom_class_unregister, takes out these
 * descriptions only, never another class registered with the same ID), or reopened with
 * kcom_class_reopen_.
 */
kcom_error_t kcom_class_close_(const struct kcom_class *const *classes, size_t n);
void kcom_class_remove_(const struct kcom_class *const *classes, size_t n);
void kcom_class_reopen_(const struct kcom_class *const *classes, size_t n);

/*
 * Builds an object of the first class, in enumeration order, whose interface list names `iid`,
 * and returns that interface.  Found and called under the class table's count, as kcom_create
 * does, so a module's class cannot go while its factory runs (a pointer from kcom_class_enum
 * is not held that way).  KCOM_E_NOTFOUND: no open class lists it.
 */
kcom_error_t kcom_create_listing_(const kcom_iid_t *iid, void **out);

/* ---- DMA constraints (com/osenv.h), for the implementations and the bounce helper ---- */

/*
 * Whether constraints `c` (NULL: none) are well formed and some memory of `len` bytes could
 * meet them: align and boundary powers of two (or 0), a contiguous buffer no longer than
 * max_seg and not longer than a boundary.  KCOM_OK or KCOM_E_INVALIDARG.
 */
static inline kcom_error_t kcom_dma_constraints_valid_(const struct kcom_dma_constraints *c, size_t len)
{
	if (c == NULL)
		return KCOM_OK;
	if ((c->align & (c->align - 1)) != 0 || (c->boundary & (c->boundary - 1)) != 0)
		return KCOM_E_INVALIDARG;
	if (c->contiguous && c->max_seg != 0 && len > c->max_seg)
		return KCOM_E_INVALIDARG;
	if (c->contiguous && c->boundary != 0 && len > c->boundary)
		return KCOM_E_INVALIDARG;
	return KCOM_OK;
}

/* Whether [addr, addr + len) crosses a multiple of `boundary` (a power of two, not 0). */
static inline int kcom_dma_crosses_(kcom_phys_t addr, size_t len, size_t boundary)
{
	kcom_phys_t mask = ~(kcom_phys_t)(boundary - 1);
	return len != 0 && (addr & mask) != ((addr + len - 1) & mask);
}

/* How much of [addr, addr + len) (len > 0) one segment may take under `c` (NULL: all of it):
 * up to its boundary's next multiple, and no more than max_seg. */
static inline size_t kcom_dma_piece_(const struct kcom_dma_constraints *c, kcom_phys_t addr, size_t len)
{
	if (c == NULL)
		return len;
	if (c->boundary != 0) {
		kcom_phys_t room = (kcom_phys_t)c->boundary - (addr & (kcom_phys_t)(c->boundary - 1));
		if (room < len)
			len = (size_t)room;
	}
	return c->max_seg != 0 && c->max_seg < len ? c->max_seg : len;
}

/*
 * kcom_iochannel_put() of a channel only if it is live and its device was registered with
 * `create` (NULL: any device), checked under the layer's lock: KCOM_E_INVALIDARG otherwise,
 * nothing changed.  So a layer over channels (a pool's caches) refuses another device's.
 */
kcom_error_t kcom_iochannel_put_of_(struct kcom_iochannel *ch, kcom_iochannel_create_fn create);

/* A live channel's context when its device is `dev`, else NULL: kcom_iochannel_ctx() and the
 * device check in one call, for a cached fast path. */
void *kcom_iochannel_ctx_of_(struct kcom_iochannel *ch, const void *dev);

#endif /* KCOM_COM_COM_INTERNAL_H */
