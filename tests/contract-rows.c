/*
 * The contract table: one row per implementation (and per way of making one), shared by the
 * contract suite, the allocation-failure suite and the differential fuzzer.  No Check here, so
 * the fuzzer links it too.  A new implementation joins every harness with one row below.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <bufio/bufio.h>
#include <com/com.h>
#include <com/module.h>
#include <impls/dmabuf.h>
#include <impls/filebuf.h>
#include <impls/mbufchain.h>
#include <impls/pool.h>
#include <impls/membuf.h>
#include "tests/contract.h"
#include "tests/plainio.h"

static kcom_error_t fill_pattern(kcom_bufio_t *io, size_t size)
{
	uint8_t *buf = malloc(size + 1);
	for (size_t i = 0; i < size; i++)
		buf[i] = contract_pattern(i);
	size_t put = 0;
	kcom_error_t err = kcom_bufio_write(io, buf, 0, size, &put);
	free(buf);
	if (KCOM_SUCCEEDED(err) && put != size)
		err = KCOM_E_FAIL;
	return err;
}

static kcom_error_t make_membuf(size_t size, kcom_bufio_t **out)
{
	kcom_error_t err = kcom_membuf_create(0, out);
	if (KCOM_SUCCEEDED(err))
		err = fill_pattern(*out, size);
	return err;
}

static void free_wrapped(void *ctx, void *mem, size_t len)
{
	(void)ctx;
	(void)len;
	free(mem);
}

static kcom_error_t make_membuf_wrap(size_t size, kcom_bufio_t **out)
{
	uint8_t *mem = malloc(size + 1);
	for (size_t i = 0; i < size; i++)
		mem[i] = contract_pattern(i);
	kcom_error_t err = kcom_membuf_wrap(mem, size, free_wrapped, NULL, out);
	if (KCOM_FAILED(err))
		free(mem);
	return err;
}

/* A copy sharing its storage with an original that is already gone. */
static kcom_error_t make_membuf_copy(size_t size, kcom_bufio_t **out)
{
	kcom_bufio_t *orig;
	kcom_error_t err = make_membuf(size + 10, &orig);
	if (KCOM_FAILED(err))
		return err;
	/* From offset 0 so the pattern lines up; the original is longer than the copy. */
	err = kcom_bufio_copy(orig, 0, size, out);
	kcom_bufio_release(orig);
	return err;
}

/* A copy whose original is still alive and shares the storage (the row's teardown drops it). */
static kcom_bufio_t *copy_keepalive[64];

/* Keeps an original alive until the row's teardown (drop_keepalive), so a copy shares with it. */
static void keep_until_teardown(kcom_bufio_t *orig)
{
	for (size_t i = 0; i < 64; i++) {
		if (copy_keepalive[i] == NULL) {
			copy_keepalive[i] = orig;
			return;
		}
	}
	kcom_bufio_release(orig); /* no room: the copy then shares with nothing, still a copy */
}
static kcom_error_t make_membuf_shared(size_t size, kcom_bufio_t **out)
{
	kcom_bufio_t *orig;
	kcom_error_t err = make_membuf(size, &orig);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_copy(orig, 0, size, out);
	keep_until_teardown(orig);
	return err;
}

static void drop_keepalive(void)
{
	for (size_t i = 0; i < 64; i++) {
		if (copy_keepalive[i] != NULL) {
			kcom_bufio_release(copy_keepalive[i]);
			copy_keepalive[i] = NULL;
		}
	}
}

static kcom_error_t make_membuf_class(size_t size, kcom_bufio_t **out)
{
	kcom_error_t err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)out);
	if (KCOM_SUCCEEDED(err))
		err = fill_pattern(*out, size);
	return err;
}

/* Test doubles with no optional method: they keep the suite honest about KCOM_E_NOTIMPL. */
static kcom_error_t make_plain(size_t size, unsigned flags, kcom_bufio_t **out)
{
	kcom_absio_t *a;
	kcom_error_t err = plainio_create(flags & PLAINIO_FIXED ? size : 0, flags, &a);
	if (KCOM_FAILED(err))
		return err;
	*out = (kcom_bufio_t *)(void *)a;
	return fill_pattern(*out, size);
}

static kcom_error_t make_plain_growable(size_t size, kcom_bufio_t **out)
{
	return make_plain(size, PLAINIO_BUFIO, out);
}

static kcom_error_t make_plain_fixed(size_t size, kcom_bufio_t **out)
{
	return make_plain(size, PLAINIO_BUFIO | PLAINIO_FIXED, out);
}

/*
 * filebuf, loaded by name through the module loader (KCOM_MODULE_PATH): the probe loads it
 * once, outside any counting osenv, and keeps it; a host where it cannot load skips the row
 * with the loader's reason.
 */
static const char *filebuf_probe(unsigned cap)
{
	static kcom_module_t *module;
	static char why[600];
	(void)cap;
	if (module != NULL)
		return NULL;
	if (KCOM_SUCCEEDED(kcom_module_load("filebuf", &module)))
		return NULL;
	snprintf(why, sizeof(why), "%s", kcom_module_error());
	return why;
}

static kcom_error_t make_filebuf(size_t size, kcom_bufio_t **out)
{
	static const kcom_clsid_t filebuf_clsid = KCOM_FILEBUF_CLSID;
	kcom_error_t err = kcom_create(&filebuf_clsid, &kcom_bufio_iid, (void **)out);
	if (KCOM_SUCCEEDED(err))
		err = fill_pattern(*out, size);
	return err;
}

/* mbufchain: a chain of many small segments (61-byte appends into 64-byte clusters). */
static kcom_error_t make_chain(size_t size, kcom_bufio_t **out)
{
	kcom_error_t err = kcom_mbufchain_create(64, out);
	uint8_t piece[61];
	for (size_t at = 0; KCOM_SUCCEEDED(err) && at < size; at += sizeof(piece)) {
		size_t n = size - at < sizeof(piece) ? size - at : sizeof(piece);
		for (size_t i = 0; i < n; i++)
			piece[i] = contract_pattern(at + i);
		size_t put = 0;
		err = kcom_bufio_write(*out, piece, (kcom_off_t)at, n, &put);
		if (KCOM_SUCCEEDED(err) && put != n)
			err = KCOM_E_FAIL;
	}
	return err;
}

/* A whole copy sharing everything (tree and clusters) with an original kept alive. */
static kcom_error_t make_chain_shared(size_t size, kcom_bufio_t **out)
{
	kcom_bufio_t *orig;
	kcom_error_t err = make_chain(size, &orig);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_copy(orig, 0, size, out);
	keep_until_teardown(orig);
	return err;
}

/* A sub-range copy (cut inside segments at both ends) of a longer chain, kept alive. */
static kcom_error_t make_chain_subrange(size_t size, kcom_bufio_t **out)
{
	kcom_bufio_t *orig, *tmp;
	kcom_error_t err = make_chain(size + 100, &orig);
	if (KCOM_FAILED(err))
		return err;
	/* Bytes 0..size of a copy of [0, size + 70): the pattern lines up, both ends are cut. */
	err = kcom_bufio_copy(orig, 0, size + 70, &tmp);
	if (KCOM_SUCCEEDED(err)) {
		err = kcom_bufio_copy(tmp, 0, size, out);
		kcom_bufio_release(tmp);
	}
	keep_until_teardown(orig);
	return err;
}

#define CHAIN_CAPS (CAP_GROWS | CAP_MAPS | CAP_COPIES | CAP_BUFVEC | CAP_CHAIN)

/* A message over buffer-pool pages (Homa's shape): the pages hold the pattern, the chain owns them. */
static kcom_error_t make_pool_chain(size_t size, kcom_bufio_t **out)
{
	const size_t page = 4096;
	size_t n = (size + page - 1) / page;
	kcom_pool_t *pool;
	kcom_error_t err = kcom_pool_create(page, n + 2, NULL, &pool);
	if (KCOM_FAILED(err))
		return err;
	kcom_off_t *offs = malloc((n + 1) * sizeof(*offs));
	kcom_bufio_t *region = NULL;
	err = kcom_pool_get(pool, NULL, n, offs);
	if (KCOM_SUCCEEDED(err))
		err = kcom_pool_region(pool, &region);
	for (size_t i = 0; KCOM_SUCCEEDED(err) && i < n; i++) {
		uint8_t bytes[4096];
		for (size_t j = 0; j < page; j++)
			bytes[j] = contract_pattern(i * page + j);
		size_t put;
		err = kcom_bufio_write(region, bytes, offs[i], page, &put);
	}
	if (KCOM_SUCCEEDED(err))
		err = kcom_pool_chain(pool, offs, n, size, out);
	if (region != NULL)
		kcom_bufio_release(region);
	free(offs);
	kcom_pool_release(pool); /* the chain's pages keep it */
	return err;
}

#define MEMBUF_CAPS (CAP_GROWS | CAP_MAPS | CAP_COPIES | CAP_BUFVEC)

/* dmabuf rows: their probe (tests/check_dmabuf.c) skips them where mlock or pagemap cannot serve. */
static kcom_error_t make_dmabuf(size_t size, kcom_bufio_t **out)
{
	kcom_error_t err = kcom_dmabuf_create(0, size, NULL, out);
	if (KCOM_SUCCEEDED(err))
		err = fill_pattern(*out, size);
	return err;
}

/* The class factory's object: 1 MiB of capacity, far past what the contract writes. */
static kcom_error_t make_dmabuf_class(size_t size, kcom_bufio_t **out)
{
	kcom_error_t err = kcom_create(&kcom_dmabuf_clsid, &kcom_bufio_iid, (void **)out);
	if (KCOM_SUCCEEDED(err))
		err = fill_pattern(*out, size);
	return err;
}

/* A copy (own pinned pages) of a dmabuf that is already gone. */
static kcom_error_t make_dmabuf_copy(size_t size, kcom_bufio_t **out)
{
	kcom_bufio_t *orig;
	kcom_error_t err = make_dmabuf(size + 10, &orig);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_copy(orig, 0, size, out);
	kcom_bufio_release(orig);
	return err;
}

#define DMABUF_CAPS (CAP_MAPS | CAP_WIRES | CAP_COPIES | CAP_BUFVEC)

const struct contract_impl contract_impls[] = {
	{ .name = "membuf", .make = make_membuf, .caps = MEMBUF_CAPS },
	{ .name = "membuf-wrap", .make = make_membuf_wrap, .caps = CAP_MAPS | CAP_COPIES | CAP_BUFVEC },
	{ .name = "membuf-copy", .make = make_membuf_copy, .caps = MEMBUF_CAPS },
	{ .name = "membuf-shared", .make = make_membuf_shared, .caps = MEMBUF_CAPS, .teardown = drop_keepalive },
	{ .name = "membuf-class", .make = make_membuf_class, .caps = MEMBUF_CAPS },
	{ .name = "double-readwrite", .make = make_plain_growable, .caps = CAP_GROWS | CAP_DOUBLE },
	{ .name = "double-fixed", .make = make_plain_fixed, .caps = CAP_FIXED | CAP_DOUBLE },
	{ .name = "mbufchain", .make = make_chain, .caps = CHAIN_CAPS },
	{ .name = "mbufchain-shared", .make = make_chain_shared, .caps = CHAIN_CAPS, .teardown = drop_keepalive },
	{ .name = "mbufchain-subrange", .make = make_chain_subrange, .caps = CHAIN_CAPS, .teardown = drop_keepalive },
	{ .name = "pool-chain", .make = make_pool_chain, .caps = CHAIN_CAPS },
	{ .name = "dmabuf", .make = make_dmabuf, .caps = DMABUF_CAPS, .probe = dmabuf_test_probe },
	{ .name = "dmabuf-class", .make = make_dmabuf_class, .caps = DMABUF_CAPS | CAP_GROWS, .probe = dmabuf_test_probe },
	{ .name = "dmabuf-copy", .make = make_dmabuf_copy, .caps = DMABUF_CAPS, .probe = dmabuf_test_probe },
	{ .name = "filebuf", .make = make_filebuf, .caps = CAP_GROWS | CAP_MAPS | CAP_COPIES | CAP_BUFVEC,
	  .probe = filebuf_probe },
};
const size_t contract_nimpls = sizeof(contract_impls) / sizeof(contract_impls[0]);
