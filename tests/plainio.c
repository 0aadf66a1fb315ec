/* The read/write-only test double of tests/plainio.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <bufio/bufio.h>
#include <com/refcount.h>
#include "tests/plainio.h"

struct plainio {
	kcom_bufio_t bufio;
	kcom_refcount_t refs;
	unsigned flags;
	int fail_writes;
	int fail_reads;
	unsigned long calls;
	unsigned char *bytes;
	size_t size;
	size_t cap;
};

static struct plainio *plain_from(void *io)
{
	return (struct plainio *)io;
}

static kcom_error_t plain_query(kcom_bufio_t *io, const kcom_iid_t *iid, void **out)
{
	struct plainio *p = plain_from(io);
	if (out == NULL)
		return KCOM_E_POINTER;
	*out = NULL;
	if (iid == NULL)
		return KCOM_E_POINTER;
	if (!kcom_guid_equal(iid, &kcom_iunknown_iid) && !kcom_guid_equal(iid, &kcom_absio_iid) &&
	    !((p->flags & PLAINIO_BUFIO) && kcom_guid_equal(iid, &kcom_bufio_iid)))
		return KCOM_E_NOINTERFACE;
	kcom_refcount_inc(&p->refs);
	*out = &p->bufio;
	return KCOM_OK;
}

static uint32_t plain_addref(kcom_bufio_t *io)
{
	return kcom_refcount_inc(&plain_from(io)->refs);
}

static uint32_t plain_release(kcom_bufio_t *io)
{
	struct plainio *p = plain_from(io);
	uint32_t n = kcom_refcount_dec(&p->refs);
	if (n == 0) {
		free(p->bytes);
		free(p);
	}
	return n;
}

static int plain_bad(const void *buf, kcom_off_t off, size_t n, size_t *out)
{
	if (out != NULL)
		*out = 0;
	return out == NULL || (buf == NULL && n > 0) || off < 0 || (uint64_t)n > (uint64_t)(KCOM_OFF_MAX - off);
}

static kcom_error_t plain_read(kcom_bufio_t *io, void *buf, kcom_off_t off, size_t n, size_t *out)
{
	struct plainio *p = plain_from(io);
	if (plain_bad(buf, off, n, out))
		return KCOM_E_INVALIDARG;
	p->calls++;
	if (p->fail_reads)
		return KCOM_E_FAIL;
	if (n == 0 || (uint64_t)off >= p->size)
		return KCOM_OK;
	size_t len = n < p->size - (size_t)off ? n : p->size - (size_t)off;
	memcpy(buf, p->bytes + off, len);
	*out = len;
	return KCOM_OK;
}

/* Makes room for `size` bytes, zero-filling; 0 or -1. */
static int plain_grow(struct plainio *p, size_t size)
{
	if (size > p->cap) {
		unsigned char *b = realloc(p->bytes, size);
		if (b == NULL)
			return -1;
		p->bytes = b;
		p->cap = size;
	}
	if (size > p->size)
		memset(p->bytes + p->size, 0, size - p->size);
	p->size = size;
	return 0;
}

static kcom_error_t plain_write(kcom_bufio_t *io, const void *buf, kcom_off_t off, size_t n, size_t *out)
{
	struct plainio *p = plain_from(io);
	if (plain_bad(buf, off, n, out))
		return KCOM_E_INVALIDARG;
	p->calls++;
	if (p->fail_writes)
		return KCOM_E_FAIL;
	if (n == 0)
		return KCOM_OK;
	size_t end = (size_t)off + n;
	if ((p->flags & PLAINIO_FIXED) && end > p->size) {
		if ((uint64_t)off >= p->size)
			return KCOM_E_NOSPACE;
		end = p->size;
	}
	if (end > p->size && plain_grow(p, end) < 0)
		return KCOM_E_OUTOFMEMORY;
	memcpy(p->bytes + off, buf, end - (size_t)off);
	*out = end - (size_t)off;
	return KCOM_OK;
}

static kcom_error_t plain_getsize(kcom_bufio_t *io, size_t *out)
{
	if (out == NULL)
		return KCOM_E_INVALIDARG;
	*out = plain_from(io)->size;
	return KCOM_OK;
}

static kcom_error_t plain_setsize(kcom_bufio_t *io, size_t size)
{
	struct plainio *p = plain_from(io);
	if (p->flags & PLAINIO_FIXED)
		return KCOM_E_NOTIMPL;
	if ((uint64_t)size > (uint64_t)KCOM_OFF_MAX) /* as every implementation's setsize */
		return KCOM_E_INVALIDARG;
	if (size <= p->size) {
		p->size = size;
		return KCOM_OK;
	}
	return plain_grow(p, size) < 0 ? KCOM_E_OUTOFMEMORY : KCOM_OK;
}

static kcom_error_t plain_map(kcom_bufio_t *io, void **out, kcom_off_t off, size_t n)
{
	(void)io, (void)off, (void)n;
	if (out == NULL)
		return KCOM_E_INVALIDARG;
	*out = NULL;
	return KCOM_E_NOTIMPL;
}

static kcom_error_t plain_unmap(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	(void)io, (void)addr, (void)off, (void)n;
	return KCOM_E_INVALIDARG;
}

static kcom_error_t plain_wire(kcom_bufio_t *io, kcom_phys_t *out, kcom_off_t off, size_t n)
{
	(void)io, (void)off, (void)n;
	if (out == NULL)
		return KCOM_E_INVALIDARG;
	*out = 0;
	return KCOM_E_NOTIMPL;
}

static kcom_error_t plain_unwire(kcom_bufio_t *io, kcom_phys_t phys, kcom_off_t off, size_t n)
{
	(void)io, (void)phys, (void)off, (void)n;
	return KCOM_E_INVALIDARG;
}

static kcom_error_t plain_copy(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out)
{
	(void)io, (void)off, (void)n;
	if (out != NULL)
		*out = NULL;
	return KCOM_E_NOTIMPL;
}

static const struct kcom_bufio_ops plain_ops = {
	.query = plain_query,
	.addref = plain_addref,
	.release = plain_release,
	.read = plain_read,
	.write = plain_write,
	.getsize = plain_getsize,
	.setsize = plain_setsize,
	.map = plain_map,
	.unmap = plain_unmap,
	.wire = plain_wire,
	.unwire = plain_unwire,
	.copy = plain_copy,
};

kcom_error_t plainio_create(size_t size, unsigned flags, kcom_absio_t **out)
{
	struct plainio *p = calloc(1, sizeof(*p));
	p->bufio.ops = &plain_ops;
	kcom_refcount_init(&p->refs, 1);
	p->flags = flags;
	p->bytes = calloc(1, size + 1);
	p->size = p->cap = size;
	*out = kcom_bufio_absio(&p->bufio);
	return KCOM_OK;
}

void plainio_fail_writes(kcom_absio_t *io, int fail)
{
	plain_from(io)->fail_writes = fail;
}

void plainio_fail_reads(kcom_absio_t *io, int fail)
{
	plain_from(io)->fail_reads = fail;
}

unsigned long plainio_calls(kcom_absio_t *io)
{
	return plain_from(io)->calls;
}
