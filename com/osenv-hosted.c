/*
 * The hosted osenv: kcom on Linux.  The only file of libkcom that calls the C library beyond
 * string.h (tests/core-symbols.test keeps it that way).
 *
 * virt_to_phys reads /proc/self/pagemap: bit 63 says the page is present, bits 0-54 are the
 * frame number, which the kernel shows only to CAP_SYS_ADMIN and reports as 0 to others.  A
 * zero frame, an absent page or an unreadable file all answer KCOM_E_NOPHYS.  virt_to_phys_pages
 * does the same for a whole range with one open and one pread per 512 pages.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <com/osenv.h>
#include "com/com-internal.h"

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((kcom_lock_t *)0)->opaque), "kcom_lock_t holds a mutex");

static void *hosted_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	/* malloc aligns for any type; posix_memalign costs two more calls for nothing then. */
	if (align <= _Alignof(max_align_t))
		return malloc(size);
	void *p = NULL;
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	return p;
}

static void hosted_free(void *ctx, void *ptr, size_t size, size_t align)
{
	(void)ctx;
	(void)size;
	(void)align;
	free(ptr);
}

static kcom_error_t hosted_errno_error(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return KCOM_E_ACCESSDENIED;
	case ENOMEM:
	case EAGAIN:
		return KCOM_E_OUTOFMEMORY;
	case EINVAL:
		return KCOM_E_INVALIDARG;
	default:
		return KCOM_E_FAIL;
	}
}

/* The huge page of MAP_HUGETLB memory (alloc_pages below rounds to it). */
#define HOSTED_HUGE ((size_t)2 << 20)

/*
 * Marks the host pages of [addr, addr + len) with `advice` (MADV_DONTFORK or MADV_DOFORK); 0
 * or an errno.  Small pages: only those wholly inside the range, since marking one the range
 * shares with other memory would take that memory from a forked child too.  A huge page of
 * MAP_HUGETLB memory cannot be marked in part (the kernel says EINVAL): it is marked whole,
 * being one frame that the pin holds anyway.
 */
static int hosted_fork_mark(void *addr, size_t len, int advice)
{
	long sys = sysconf(_SC_PAGESIZE);
	uintptr_t page = sys > 0 ? (uintptr_t)sys : 4096, a = (uintptr_t)addr;
	uintptr_t first = (a + page - 1) & ~(page - 1), end = (a + len) & ~(page - 1);
	if (end <= first || madvise((void *)first, end - first, advice) == 0)
		return 0;
	if (errno != EINVAL)
		return errno;
	first = a & ~(uintptr_t)(HOSTED_HUGE - 1);
	end = (a + len + HOSTED_HUGE - 1) & ~(uintptr_t)(HOSTED_HUGE - 1);
	return madvise((void *)first, end - first, advice) == 0 ? 0 : errno;
}

/*
 * Pinned memory is memory a device is told the frames of.  mlock keeps its pages resident,
 * but after a fork they are shared copy-on-write with the child, and the next write here would
 * move them to new frames while the device still holds the old ones (which the child then
 * owns).  So the pages are also kept out of children (MADV_DONTFORK, as RDMA and DPDK pin):
 * a forked child has no such memory, and the frames stay this process's.
 */
static kcom_error_t hosted_pin(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	if (mlock(addr, len) != 0)
		return hosted_errno_error(errno);
#ifdef MADV_DONTFORK
	int err = hosted_fork_mark(addr, len, MADV_DONTFORK);
	if (err != 0) {
		(void)munlock(addr, len);
		return hosted_errno_error(err);
	}
#endif
	return KCOM_OK;
}

static kcom_error_t hosted_unpin(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	int err = munlock(addr, len) == 0 ? 0 : errno;
#ifdef MADV_DOFORK
	int mark = hosted_fork_mark(addr, len, MADV_DOFORK); /* before the memory is reused */
	err = err != 0 ? err : mark;
#endif
	return err == 0 ? KCOM_OK : hosted_errno_error(err);
}

static kcom_error_t hosted_virt_to_phys(void *ctx, const void *addr, kcom_phys_t *out_phys)
{
	(void)ctx;
	*out_phys = 0;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		return KCOM_E_NOPHYS;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return KCOM_E_NOPHYS;
	uint64_t vpn = (uint64_t)(uintptr_t)addr / (uint64_t)page;
	uint64_t entry = 0;
	ssize_t got = pread(fd, &entry, sizeof(entry), (off_t)(vpn * sizeof(entry)));
	close(fd);
	if (got != (ssize_t)sizeof(entry))
		return KCOM_E_NOPHYS;
	uint64_t pfn = entry & ((UINT64_C(1) << 55) - 1);
	if (!(entry & (UINT64_C(1) << 63)) || pfn == 0)
		return KCOM_E_NOPHYS;
	*out_phys = pfn * (uint64_t)page + (uint64_t)(uintptr_t)addr % (uint64_t)page;
	return KCOM_OK;
}

/*
 * Many pages in one go: one open and one pread of the pagemap entries covering the range, so
 * building a physical map costs two system calls however many pages it has.  `page` may be
 * smaller than the host's page (each piece is found inside its host page).
 */
#define HOSTED_PAGEMAP_BATCH 512

static kcom_error_t hosted_virt_to_phys_pages(void *ctx, const void *addr, size_t npages, size_t page,
                                              kcom_phys_t *out_phys)
{
	(void)ctx;
	long sys = sysconf(_SC_PAGESIZE);
	if (sys <= 0 || page == 0)
		return KCOM_E_NOPHYS;
	if (npages == 0)
		return KCOM_OK;
	uint64_t start = (uint64_t)(uintptr_t)addr;
	uint64_t first = start / (uint64_t)sys;
	uint64_t last = (start + (uint64_t)(npages - 1) * page) / (uint64_t)sys;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return KCOM_E_NOPHYS;
	uint64_t entries[HOSTED_PAGEMAP_BATCH];
	kcom_error_t err = KCOM_OK;
	size_t i = 0;
	/* Read the entries of host pages [vpn, vpn + got) and translate every piece in them. */
	for (uint64_t vpn = first; vpn <= last && err == KCOM_OK;) {
		uint64_t want = last - vpn + 1 < HOSTED_PAGEMAP_BATCH ? last - vpn + 1 : HOSTED_PAGEMAP_BATCH;
		ssize_t got = pread(fd, entries, (size_t)want * sizeof(entries[0]), (off_t)(vpn * sizeof(entries[0])));
		if (got < (ssize_t)sizeof(entries[0])) {
			err = KCOM_E_NOPHYS;
			break;
		}
		uint64_t nent = (uint64_t)got / sizeof(entries[0]);
		for (; i < npages; i++) {
			uint64_t va = start + (uint64_t)i * page;
			uint64_t k = va / (uint64_t)sys - vpn;
			if (k >= nent)
				break;
			uint64_t pfn = entries[k] & ((UINT64_C(1) << 55) - 1);
			if (!(entries[k] & (UINT64_C(1) << 63)) || pfn == 0) {
				err = KCOM_E_NOPHYS;
				break;
			}
			out_phys[i] = pfn * (uint64_t)sys + va % (uint64_t)sys;
		}
		vpn += nent;
	}
	close(fd);
	return err;
}

/*
 * Whole pages from mmap.  Huge: MAP_HUGETLB when the administrator reserved huge pages (each
 * one physically contiguous), else an anonymous region aligned to 2 MiB and advised with
 * MADV_HUGEPAGE, which the kernel backs with transparent huge pages where it can (touching
 * the region faults them in).  KCOM_PAGES_NOW populates the mapping in the same call.  Sizes
 * round up to the unit, the same way in free_pages.
 */
static size_t hosted_pages_len(size_t size, unsigned flags)
{
	size_t unit = (flags & KCOM_PAGES_HUGE) ? HOSTED_HUGE : (size_t)sysconf(_SC_PAGESIZE);
	if (size > SIZE_MAX - unit)
		return 0;
	return (size + unit - 1) / unit * unit;
}

static void *hosted_alloc_pages(void *ctx, size_t size, unsigned flags)
{
	(void)ctx;
	size_t len = hosted_pages_len(size, flags);
	if (len == 0)
		return NULL;
	int now = (flags & KCOM_PAGES_NOW) ? MAP_POPULATE : 0;
	void *p;
	if (!(flags & KCOM_PAGES_HUGE)) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | now, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
#ifdef MAP_HUGETLB
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | now, -1, 0);
	if (p != MAP_FAILED)
		return p;
#endif
	/* Over-allocate by one unit, keep the aligned part, give the rest back. */
	if (len > SIZE_MAX - HOSTED_HUGE)
		return NULL;
	char *raw = mmap(NULL, len + HOSTED_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t at = ((uintptr_t)raw + HOSTED_HUGE - 1) & ~(uintptr_t)(HOSTED_HUGE - 1);
	size_t head = at - (uintptr_t)raw;
	if (head != 0)
		munmap(raw, head);
	if (HOSTED_HUGE - head != 0)
		munmap((char *)at + len, HOSTED_HUGE - head);
#ifdef MADV_HUGEPAGE
	(void)madvise((void *)at, len, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
	if (now != 0)
		(void)madvise((void *)at, len, MADV_POPULATE_WRITE); /* Linux 5.14; else faults as touched */
#endif
	return (void *)at;
}

static void hosted_free_pages(void *ctx, void *ptr, size_t size, unsigned flags)
{
	(void)ctx;
	munmap(ptr, hosted_pages_len(size, flags));
}

static kcom_error_t hosted_lock_init(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	return pthread_mutex_init((pthread_mutex_t *)(void *)lock->opaque.bytes, NULL) == 0 ? KCOM_OK
	                                                                                   : KCOM_E_OUTOFMEMORY;
}

static void hosted_lock_fini(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	pthread_mutex_destroy((pthread_mutex_t *)(void *)lock->opaque.bytes);
}

static void hosted_lock_acquire(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	pthread_mutex_lock((pthread_mutex_t *)(void *)lock->opaque.bytes);
}

static void hosted_lock_release(void *ctx, kcom_lock_t *lock)
{
	(void)ctx;
	pthread_mutex_unlock((pthread_mutex_t *)(void *)lock->opaque.bytes);
}

static void hosted_log(void *ctx, enum kcom_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	(void)ctx;
	const char *name = (unsigned)level < 4 ? names[level] : "log";
	fprintf(stderr, "kcom: %s: %s\n", name, msg);
}

__attribute__((noreturn)) static void hosted_panic(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "kcom: panic: %s\n", msg);
	abort();
}

static uintptr_t hosted_thread_self(void *ctx)
{
	(void)ctx;
	return (uintptr_t)pthread_self();
}

/*
 * Thread exit: one pthread key whose destructor runs the calling thread's registrations, newest
 * first.  (Its destructor does not run for the main thread returning from main: the process is
 * ending.)
 */
struct hosted_exit_fn {
	struct hosted_exit_fn *next;
	void (*fn)(void *arg);
	void *arg;
};

static pthread_key_t hosted_exit_key;
static pthread_once_t hosted_exit_once = PTHREAD_ONCE_INIT;
static int hosted_exit_ready;

static void hosted_run_exit_fns(void *value)
{
	struct hosted_exit_fn *e = value;
	while (e != NULL) {
		struct hosted_exit_fn *next = e->next;
		e->fn(e->arg);
		free(e);
		e = next;
	}
}

static void hosted_make_exit_key(void)
{
	hosted_exit_ready = pthread_key_create(&hosted_exit_key, hosted_run_exit_fns) == 0;
}

static kcom_error_t hosted_thread_at_exit(void *ctx, void (*fn)(void *arg), void *arg)
{
	(void)ctx;
	pthread_once(&hosted_exit_once, hosted_make_exit_key);
	if (!hosted_exit_ready)
		return KCOM_E_OUTOFMEMORY;
	struct hosted_exit_fn *e = malloc(sizeof(*e));
	if (e == NULL)
		return KCOM_E_OUTOFMEMORY;
	e->fn = fn;
	e->arg = arg;
	e->next = pthread_getspecific(hosted_exit_key);
	if (pthread_setspecific(hosted_exit_key, e) != 0) {
		free(e);
		return KCOM_E_OUTOFMEMORY;
	}
	return KCOM_OK;
}

const struct kcom_osenv kcom_osenv_hosted_table_ = {
	.alloc = hosted_alloc,
	.free = hosted_free,
	.pin = hosted_pin,
	.unpin = hosted_unpin,
	.virt_to_phys = hosted_virt_to_phys,
	.lock_init = hosted_lock_init,
	.lock_fini = hosted_lock_fini,
	.lock_acquire = hosted_lock_acquire,
	.lock_release = hosted_lock_release,
	.log = hosted_log,
	.panic = hosted_panic,
	.ctx = NULL,
	.thread_self = hosted_thread_self,
	.thread_at_exit = hosted_thread_at_exit,
	.virt_to_phys_pages = hosted_virt_to_phys_pages,
	.alloc_pages = hosted_alloc_pages,
	.free_pages = hosted_free_pages,
};

const struct kcom_osenv *kcom_osenv_hosted(void)
{
	return &kcom_osenv_hosted_table_;
}
