/*
 * The contract suite's table of implementations, and helpers the other suites share.
 *
 * Adding an implementation = one row in contract_impls[] (tests/check_contract.c) plus its own
 * unit suite.  The contract suite and the allocation-failure suite both iterate the table.  A
 * row's factory makes an object holding `size` bytes of the pattern byte contract_pattern(i).
 * Its capabilities say what the object must do: a capability it claims must work, one it does
 * not claim must be refused with KCOM_E_NOTIMPL (or NOINTERFACE), so no test passes by doing
 * nothing.  A row whose host lacks something (physical addresses, mlock limits) says so through
 * its probe, and the tests print a skip line: never a silent pass.
 */
#ifndef KCOM_TESTS_CONTRACT_H
#define KCOM_TESTS_CONTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>

#define CAP_GROWS 0x01u  /* writes past the end grow it without a fixed limit */
#define CAP_FIXED 0x02u  /* setsize answers KCOM_E_NOTIMPL: the size never changes */
#define CAP_MAPS 0x04u   /* map works on any range inside the object */
#define CAP_WIRES 0x08u  /* wire works (where the probe says the host allows it) */
#define CAP_COPIES 0x10u /* copy works */
#define CAP_BUFVEC 0x20u /* answers kcom_bufvec */
#define CAP_DOUBLE 0x40u /* a test double: memory from malloc, not through the osenv */
#define CAP_CHAIN 0x80u  /* answers kcom_chain (prepend, append, split, trim) */

struct contract_impl {
	const char *name;
	/* An object of `size` pattern bytes, one reference. */
	kcom_error_t (*make)(size_t size, kcom_bufio_t **out);
	unsigned caps;
	/* NULL when the host can run this row for what `cap` needs (0: the object itself), else
	 * why not.  A NULL probe: always available. */
	const char *(*probe)(unsigned cap);
	/* Runs after the test released the object (what the factory kept alive); may be NULL. */
	void (*teardown)(void);
	/* The class's sanity check; NULL: the kit's kcom_debug_check() when the object answers it. */
	kcom_error_t (*sanity)(kcom_bufio_t *io, char *why, size_t len);
};

extern const struct contract_impl contract_impls[];
extern const size_t contract_nimpls;

static inline uint8_t contract_pattern(size_t i)
{
	return (uint8_t)(i * 7u + 3u);
}

/* The whole object read into a malloc'd buffer (*out_size bytes); fails the test on error. */
uint8_t *contract_snapshot(kcom_bufio_t *io, size_t *out_size);
/* Fails the test unless io holds exactly `size` bytes equal to `bytes`. */
void contract_assert_same(kcom_bufio_t *io, const uint8_t *bytes, size_t size);
/* Fails the test unless io holds `size` pattern bytes. */
void contract_assert_pattern(kcom_bufio_t *io, size_t size);
/* The current reference count, learned by an addref/release pair. */
uint32_t contract_refs(kcom_bufio_t *io);
/* Fails the test when the row's sanity check (or kcom_debug_check) finds io broken. */
void contract_assert_sane(const struct contract_impl *impl, kcom_bufio_t *io);
/* Whether the row can run a test needing `cap`; prints the skip line when it cannot. */
int contract_available(const struct contract_impl *impl, unsigned cap, const char *test);

/* The physical address of `addr` read from /proc/self/pagemap; 0 when hidden (tests/hostprobe.c). */
uint64_t test_pagemap_phys(const void *addr);
/* The dmabuf rows' probe: why the host cannot run a test needing `cap`, or NULL. */
const char *dmabuf_test_probe(unsigned cap);

#endif
