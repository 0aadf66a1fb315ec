/*
 * The contract suite's table of implementations, and helpers the other suites share.
 *
 * Every implementation adds one row to contract_impls[] (tests/check_contract.c) and must pass
 * the whole contract suite unchanged.  A row's factory makes an object holding `size` bytes of
 * the pattern byte contract_pattern(i).
 */
#ifndef KCOM_TESTS_CONTRACT_H
#define KCOM_TESTS_CONTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>

struct contract_impl {
	const char *name;
	/* An object of `size` pattern bytes, one reference. */
	kcom_error_t (*make)(size_t size, kcom_bufio_t **out);
	/* Writes past the end grow the object without a fixed limit. */
	int growable;
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

#endif
