/**
 * @file com/osenv.h
 * @brief osenv: everything kcom needs from its host, in one table of hooks.
 *
 * The core, absio, bufio and the implementations call nothing from the C library but
 * `string.h`-level functions; memory, pinning, physical addresses, locks, logging and panic all
 * come through the ::kcom_osenv installed with kcom_osenv_set().  A hosted build (libkcom on
 * Linux) starts with the default from kcom_osenv_hosted(): `malloc` (`posix_memalign` for an
 * alignment past `max_align_t`'s), `mlock`, `/proc/self/pagemap`, pthread mutexes, stderr,
 * abort.  A kernel installs its own table before its first kcom call and never gets the hosted
 * one.
 *
 * Install a table before creating objects, or wrap the current one (as the tests do to make
 * the Nth allocation fail): an object frees its memory through the table current at the time,
 * so a replacement must be able to free what its predecessor allocated.
 */
#ifndef KCOM_COM_OSENV_H
#define KCOM_COM_OSENV_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A physical (bus) address. */
typedef uint64_t kcom_phys_t;

/** @brief Storage for one host lock; its contents belong to the osenv. */
typedef struct kcom_lock {
	union {
		unsigned char bytes[64]; /**< room for the host's lock (a pthread mutex is 40 bytes) */
		uint64_t align_;         /**< alignment */
		void *ptr_;              /**< alignment */
	} opaque;                        /**< the host's lock */
} kcom_lock_t;

/**
 * @brief What a device can reach and how its segments must be cut (FreeBSD's busdma tag, L4's
 *        DMA pools).
 *
 * A driver describes its device once and hands the description to whatever allocates or checks
 * memory for it: dmabuf at creation, the bounce helper, wire_vec's splitting, and a kernel's
 * osenv dma_alloc hook.  Zero in a field means "no constraint".
 * @code
 * // An ISA DMA controller: below 16 MiB, never across a 64 KiB line.
 * struct kcom_dma_constraints isa = { .max_addr = 0xFFFFFF, .boundary = 0x10000 };
 * // QEMU's edu device: 28-bit addresses.
 * struct kcom_dma_constraints edu = { .max_addr = (1u << 28) - 1 };
 * @endcode
 */
struct kcom_dma_constraints {
	kcom_phys_t max_addr; /**< highest physical address the device can reach (inclusive);
	                           0: all of them */
	size_t align;         /**< power of two the buffer's first physical address must be a
	                           multiple of; 0 or 1: any */
	size_t boundary;      /**< power of two no segment may cross (0x10000 for ISA DMA); 0: none */
	size_t max_seg;       /**< longest segment the device takes; 0: no limit */
	int contiguous;       /**< nonzero: the whole buffer must be one physical segment */
};

/** @brief Log levels for kcom_osenv::log. */
enum kcom_log_level {
	KCOM_LOG_ERROR = 0, /**< something failed */
	KCOM_LOG_WARN = 1,  /**< something is odd */
	KCOM_LOG_INFO = 2,  /**< for people */
	KCOM_LOG_DEBUG = 3  /**< for developers */
};

/**
 * @brief The host's hooks.  Every slot up to `ctx` must be filled; the optional ones after it
 *        may be NULL (the wrappers below then fall back, or answer KCOM_E_NOTIMPL).  `ctx` is
 *        passed back to each.
 */
struct kcom_osenv {
	/** @brief Allocates @p size bytes aligned to @p align (a power of two); NULL on failure. */
	void *(*alloc)(void *ctx, size_t size, size_t align);
	/** @brief Frees memory from alloc; @p size and @p align are those given to alloc. */
	void (*free)(void *ctx, void *ptr, size_t size, size_t align);
	/** @brief Pins a range in physical memory; KCOM_E_ACCESSDENIED or KCOM_E_OUTOFMEMORY when refused. */
	kcom_error_t (*pin)(void *ctx, void *addr, size_t len);
	/** @brief Undoes pin with the same arguments. */
	kcom_error_t (*unpin)(void *ctx, void *addr, size_t len);
	/** @brief Translates a virtual address to physical; KCOM_E_NOPHYS when the host will not say. */
	kcom_error_t (*virt_to_phys)(void *ctx, const void *addr, kcom_phys_t *out_phys);
	/** @brief Makes @p lock usable; KCOM_E_OUTOFMEMORY when it cannot. */
	kcom_error_t (*lock_init)(void *ctx, kcom_lock_t *lock);
	/** @brief Undoes lock_init; the lock is not held. */
	void (*lock_fini)(void *ctx, kcom_lock_t *lock);
	/** @brief Takes the lock (blocking; not recursive). */
	void (*lock_acquire)(void *ctx, kcom_lock_t *lock);
	/** @brief Drops the lock. */
	void (*lock_release)(void *ctx, kcom_lock_t *lock);
	/** @brief Writes one message (no trailing newline needed). */
	void (*log)(void *ctx, enum kcom_log_level level, const char *msg);
	/** @brief Stops the system with a message; never returns. */
	void (*panic)(void *ctx, const char *msg) __attribute__((noreturn));
	/** @brief Host state handed to every hook. */
	void *ctx;

	/* ---- optional: NULL when the host has nothing better ---- */

	/**
	 * @brief Translates @p npages pages of @p page bytes from the page-aligned @p addr in one
	 *        go (out_phys[i]: the physical address of page i); NULL: virt_to_phys page by page.
	 */
	kcom_error_t (*virt_to_phys_pages)(void *ctx, const void *addr, size_t npages, size_t page,
	                                   kcom_phys_t *out_phys);
	/**
	 * @brief Allocates @p size bytes of pinned memory meeting @p c (a kernel that places
	 *        physical memory); NULL where the host cannot choose physical addresses.
	 * @return the memory (virtual address), or NULL when it cannot.
	 */
	void *(*dma_alloc)(void *ctx, size_t size, const struct kcom_dma_constraints *c);
	/** @brief Frees memory from dma_alloc (same size). */
	void (*dma_free)(void *ctx, void *ptr, size_t size);
	/** @brief The calling thread's identity (nonzero); NULL: one thread only. */
	uintptr_t (*thread_self)(void *ctx);
	/**
	 * @brief Runs @p fn(@p arg) when the calling thread exits (once per registration); NULL:
	 *        threads never exit, or the host cannot say.
	 */
	kcom_error_t (*thread_at_exit)(void *ctx, void (*fn)(void *arg), void *arg);
	/**
	 * @brief Allocates @p size bytes of whole pages (page-aligned, zeroed); with
	 *        ::KCOM_PAGES_HUGE, backed by huge pages where the host has them, so that each
	 *        huge page is one physically contiguous run (hosted: `MAP_HUGETLB`, else a region
	 *        aligned to 2 MiB and advised for transparent huge pages); with ::KCOM_PAGES_NOW,
	 *        backed at once.  NULL: the host offers nothing beyond alloc.
	 * @return the memory, or NULL when it cannot.
	 */
	void *(*alloc_pages)(void *ctx, size_t size, unsigned flags);
	/** @brief Frees memory from alloc_pages (same size and flags). */
	void (*free_pages)(void *ctx, void *ptr, size_t size, unsigned flags);
};

/** @brief kcom_osenv::alloc_pages flag: back the pages with huge pages where the host can. */
#define KCOM_PAGES_HUGE 0x1u
/**
 * @brief kcom_osenv::alloc_pages flag: the caller is about to write the pages, so back them
 *        all now, in one call, rather than with one fault a page (hosted: `MAP_POPULATE`).  A
 *        host whose pages are always present ignores it.
 */
#define KCOM_PAGES_NOW 0x2u

/**
 * @brief Installs the host's hooks.
 * @param env the new table (it must stay valid while installed); NULL re-installs the
 *        product's default (com/product.h: kcom_osenv_hosted() in the hosted library)
 * @return the table that was installed before (NULL if none).
 */
const struct kcom_osenv *kcom_osenv_set(const struct kcom_osenv *env);

/**
 * @brief Returns the installed table.
 * @return the table, or NULL when none is installed (a product that names no default, before
 *         kcom_osenv_set()).
 */
const struct kcom_osenv *kcom_osenv_get(void);

/**
 * @brief The hosted default table: malloc (posix_memalign past max_align_t)/free,
 *        mlock/munlock, /proc/self/pagemap, pthread mutexes, stderr, abort.
 *
 * Defined only in hosted builds (libkcom); a freestanding core does not contain it.
 * virt_to_phys fails with KCOM_E_NOPHYS when the kernel hides frame numbers (it shows them to
 * root only) or the page is not present.
 * @return the static table.
 */
const struct kcom_osenv *kcom_osenv_hosted(void);

/**
 * @brief Allocates through the installed osenv.
 * @param size bytes wanted (0 gives NULL)
 * @param align alignment, a power of two (0 means the natural alignment of `max_align_t`)
 * @return the memory, or NULL on failure.
 */
void *kcom_alloc(size_t size, size_t align);

/**
 * @brief Frees memory from kcom_alloc().
 * @param ptr the memory (NULL does nothing)
 * @param size and @p align: exactly those given to kcom_alloc()
 * @param align see @p size
 */
void kcom_free(void *ptr, size_t size, size_t align);

/**
 * @brief Logs a message through the installed osenv (dropped when none is installed).
 * @param level severity
 * @param msg NUL-terminated message
 */
void kcom_log(enum kcom_log_level level, const char *msg);

/**
 * @brief Stops the system through the installed osenv.
 * @param msg why
 */
void kcom_panic(const char *msg) __attribute__((noreturn));

/**
 * @brief Pins memory through the installed osenv.
 * @param addr start
 * @param len bytes
 * @retval KCOM_OK pinned
 * @retval KCOM_E_ACCESSDENIED the host refused (limits, privilege)
 * @retval KCOM_E_OUTOFMEMORY the host had no room
 * @retval KCOM_E_INVALIDARG the host cannot pin that memory (hosted: the range is not mapped
 *         memory it can lock and keep out of forked children)
 * @retval KCOM_E_NOTIMPL no osenv installed
 *
 * Hosted, the pages wholly inside the range are also kept out of forked children
 * (MADV_DONTFORK; a huge page as a whole), so that a fork cannot move them under a device.
 */
kcom_error_t kcom_pin(void *addr, size_t len);

/**
 * @brief Unpins memory pinned with kcom_pin().
 * @param addr exactly as given to kcom_pin()
 * @param len exactly as given to kcom_pin()
 * @retval KCOM_OK unpinned
 * @retval KCOM_E_INVALIDARG the host did not know the range
 * @retval KCOM_E_NOTIMPL no osenv installed
 */
kcom_error_t kcom_unpin(void *addr, size_t len);

/**
 * @brief Translates a virtual address through the installed osenv.
 * @param addr the virtual address
 * @param out_phys receives the physical address; 0 on failure
 * @retval KCOM_OK translated
 * @retval KCOM_E_NOPHYS the host does not give physical addresses (or the page is absent)
 * @retval KCOM_E_POINTER @p out_phys is NULL
 * @retval KCOM_E_NOTIMPL no osenv installed
 */
kcom_error_t kcom_virt_to_phys(const void *addr, kcom_phys_t *out_phys);

/**
 * @brief Translates many pages at once through the installed osenv (its virt_to_phys_pages, or
 *        virt_to_phys page by page when it has none).
 * @param addr page-aligned start
 * @param npages pages
 * @param page page size (a power of two)
 * @param out_phys receives one physical address per page
 * @retval KCOM_OK translated
 * @retval KCOM_E_NOPHYS the host does not give physical addresses
 * @retval KCOM_E_NOTIMPL no osenv installed
 */
kcom_error_t kcom_virt_to_phys_pages(const void *addr, size_t npages, size_t page, kcom_phys_t *out_phys);

/**
 * @brief Allocates pinned memory meeting device constraints through the osenv's dma_alloc.
 * @param size bytes
 * @param c the constraints (NULL: none)
 * @param out_mem receives the memory; NULL on failure
 * @retval KCOM_OK allocated
 * @retval KCOM_E_NOTIMPL the host cannot place physical memory (no dma_alloc hook)
 * @retval KCOM_E_OUTOFMEMORY no memory meets the constraints
 */
kcom_error_t kcom_dma_alloc(size_t size, const struct kcom_dma_constraints *c, void **out_mem);

/** @brief Frees memory from kcom_dma_alloc(). @param ptr the memory @param size as allocated */
void kcom_dma_free(void *ptr, size_t size);

/**
 * @brief Allocates whole pages through the osenv's alloc_pages hook.
 * @param size bytes (the host rounds up to its pages, or its huge pages)
 * @param flags ::KCOM_PAGES_HUGE, ::KCOM_PAGES_NOW, both or 0
 * @return the memory (page-aligned, zeroed), or NULL when the host has no such hook or no
 *         memory; the caller then falls back to kcom_alloc().
 */
void *kcom_alloc_pages(size_t size, unsigned flags);

/**
 * @brief Frees memory from kcom_alloc_pages().
 * @param ptr the memory (NULL does nothing)
 * @param size exactly as given to kcom_alloc_pages()
 * @param flags exactly as given to kcom_alloc_pages()
 */
void kcom_free_pages(void *ptr, size_t size, unsigned flags);

/**
 * @brief The calling thread's identity through the osenv (1 when it has no thread_self).
 * @return a nonzero identity, the same for every call on one thread.
 */
uintptr_t kcom_thread_self(void);

/**
 * @brief Initializes a lock through the installed osenv.
 * @param lock storage
 * @retval KCOM_OK usable
 * @retval KCOM_E_OUTOFMEMORY the host could not make one
 * @retval KCOM_E_NOTIMPL no osenv installed
 */
kcom_error_t kcom_lock_init(kcom_lock_t *lock);
/** @brief Destroys a lock made by kcom_lock_init(). @param lock the lock, not held */
void kcom_lock_fini(kcom_lock_t *lock);
/** @brief Takes a lock. @param lock the lock */
void kcom_lock_acquire(kcom_lock_t *lock);
/** @brief Drops a lock. @param lock the lock */
void kcom_lock_release(kcom_lock_t *lock);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_OSENV_H */
