/*
 * A test osenv: wraps the hosted one, counts allocations and frees (calls and bytes), and can
 * make the Nth allocation from now fail.  Counters are atomic, so threads may allocate.  It can
 * also make the Nth pin fail, make every translation fail (a host that hides physical
 * addresses), and it records the ranges currently pinned (what a test "device" may reach).
 * The optional hooks are forwarded where the hosted table has them.
 */
#ifndef KCOM_TESTS_TESTENV_H
#define KCOM_TESTS_TESTENV_H

#include <stddef.h>
#include <com/osenv.h>

/* Installs the counting osenv with zeroed counters and no failure armed. */
void testenv_install(void);
/* Puts the hosted osenv back. */
void testenv_uninstall(void);
/* The nth allocation from now fails (1: the next one); 0 disarms. */
void testenv_fail_at(unsigned long nth);
/* Every allocation (not alloc_pages) of more than `bytes` fails until disarmed with 0. */
void testenv_fail_above(size_t bytes);
/* Whether the armed failure has happened. */
int testenv_failure_hit(void);
/* Allocations and frees seen since install. */
unsigned long testenv_allocs(void);
unsigned long testenv_frees(void);
/* Bytes allocated minus bytes freed (sized free must give back exactly what was taken). */
long long testenv_bytes_outstanding(void);
/* The same for alloc_pages and free_pages, which the two counts above leave out. */
long long testenv_pages_outstanding(void);

/* The nth pin from now fails with `err` (1: the next one); 0 disarms. */
void testenv_fail_pin_at(unsigned long nth, kcom_error_t err);
/* Whether the armed pin failure has happened. */
int testenv_pin_failure_hit(void);
/* Pins made since install (calls that succeeded), so a test can tell whether a path pins. */
unsigned long testenv_pin_count(void);
/* Nonzero: every translation answers KCOM_E_NOPHYS (as for a hosted process that is not root). */
void testenv_fail_translation(int on);

/*
 * Translation by `fn` instead of the host (NULL: the host again), so physical layouts no host
 * would give on demand (above 16 MiB, across 64 KiB, scattered) can be tested, also without
 * root.  `fn` gets page-aligned `addr` and fills out[0..npages) (virt_to_phys: npages 1, page 1).
 */
typedef kcom_error_t (*testenv_xlate_fn)(const void *addr, size_t npages, size_t page, kcom_phys_t *out);
void testenv_fake_translation(testenv_xlate_fn fn);

/* Nonzero: every lock_init answers KCOM_E_OUTOFMEMORY (a host out of lock resources). */
void testenv_fail_locks(int on);

/* Nonzero: the osenv offers no alloc_pages (a host without huge pages); free_pages stays. */
void testenv_hide_pages(int on);

/* A range pinned through the test osenv and not yet unpinned. */
struct testenv_range {
	void *addr;
	size_t len;
};
#define TESTENV_MAX_PINS 64
/* Copies up to `max` of the ranges pinned now into out[]; returns how many. */
size_t testenv_pinned(struct testenv_range *out, size_t max);

#endif
