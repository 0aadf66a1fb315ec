/*
 * The fallback every client shares: views (a direct pointer, else a bounce buffer), range copy
 * between any two absio objects, and duplicate (copy, else a new object of a buffer class made
 * through the class table).  Written once here so that no client carries its own "map, else
 * read" loop.  This floor knows no implementation: it reaches them only through interfaces and
 * the class table.
 */
#include "config.h"

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/class.h>
#include <com/product.h>
#include "absio/absio-internal.h"
#include "com/com-internal.h"

/* Largest bounce buffer a range copy allocates; bigger copies go in chunks. */
#define HELPERS_CHUNK (64u * 1024u)
/* Pieces a range copy accepts from a source's bufvec mapping before it bounces instead. */
#define HELPERS_MAX_PIECES 16

/*
 * Reads n bytes unless the object ends first (bytes read in *out_done).  Writes need no such
 * loop: by the absio contract a short write means the object cannot take more.
 */
static kcom_error_t read_full(kcom_absio_t *io, void *buf, kcom_off_t off, size_t n, size_t *out_done)
{
	size_t done = 0;
	kcom_error_t err = KCOM_OK;
	while (done < n) {
		size_t got;
		err = kcom_absio_read(io, (char *)buf + done, off + (kcom_off_t)done, n - done, &got);
		if (KCOM_FAILED(err) || got == 0)
			break;
		done += got;
	}
	*out_done = done;
	return err;
}

/* Checks that [off, off + n) lies inside io. */
static kcom_error_t check_inside(kcom_absio_t *io, kcom_off_t off, size_t n)
{
	size_t size;
	kcom_error_t err = kcom_absio_getsize(io, &size);
	if (KCOM_FAILED(err))
		return err;
	return kcom_absio_check_range_(off, n, size);
}

/* ---- views ---- */

/* Tries a one-piece bufvec mapping with `map_flags`; KCOM_OK fills the view. */
static kcom_error_t view_map_vec(struct kcom_view *view, unsigned map_flags)
{
	kcom_bufvec_t *vec;
	kcom_error_t err = kcom_absio_query(view->internal_.io, &kcom_bufvec_iid, (void **)&vec);
	if (KCOM_FAILED(err))
		return err;
	size_t count;
	err = kcom_bufvec_map_vec(vec, view->internal_.off, view->len, map_flags, &view->internal_.iov, 1, &count);
	if (KCOM_FAILED(err)) {
		kcom_bufvec_release(vec);
		return err;
	}
	view->internal_.bufvec = vec;
	view->internal_.map_flags = map_flags;
	view->internal_.iov_count = count;
	view->addr = count != 0 ? view->internal_.iov.base : NULL; /* an empty range may have no piece */
	return KCOM_OK;
}

/* Tries bufio's map; KCOM_OK fills the view. */
static kcom_error_t view_map(struct kcom_view *view)
{
	kcom_bufio_t *bio;
	kcom_error_t err = kcom_absio_query(view->internal_.io, &kcom_bufio_iid, (void **)&bio);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_map(bio, &view->addr, view->internal_.off, view->len);
	if (KCOM_FAILED(err)) {
		kcom_bufio_release(bio);
		return err;
	}
	view->internal_.bufio = bio;
	return KCOM_OK;
}

/* Falls back to a bounce buffer, filled by read for a readable view. */
static kcom_error_t view_bounce(struct kcom_view *view)
{
	void *buf = NULL;
	if (view->len != 0) {
		buf = kcom_alloc(view->len, 0);
		if (buf == NULL)
			return KCOM_E_OUTOFMEMORY;
	}
	size_t got = 0;
	if (view->internal_.flags & KCOM_VIEW_READ) {
		kcom_error_t err = read_full(view->internal_.io, buf, view->internal_.off, view->len, &got);
		if (KCOM_FAILED(err)) {
			kcom_free(buf, view->len, 0);
			return err;
		}
	}
	if (got < view->len)
		kcom_memset((char *)buf + got, 0, view->len - got);
	view->addr = buf;
	view->internal_.bounced = 1;
	return KCOM_OK;
}

kcom_error_t kcom_view_acquire(struct kcom_view *view, kcom_absio_t *io, kcom_off_t off, size_t n, unsigned flags)
{
	if (view == NULL)
		return KCOM_E_INVALIDARG;
	kcom_memset(view, 0, sizeof(*view));
	if (io == NULL || flags == 0 || (flags & ~(KCOM_VIEW_READ | KCOM_VIEW_WRITE)) != 0)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = check_inside(io, off, n);
	if (KCOM_FAILED(err))
		return err;

	view->len = n;
	view->internal_.io = io;
	view->internal_.off = off;
	view->internal_.flags = flags;
	unsigned map_flags = (flags & KCOM_VIEW_READ ? KCOM_MAP_READ : 0) | (flags & KCOM_VIEW_WRITE ? KCOM_MAP_WRITE : 0);
	err = view_map_vec(view, map_flags);
	if (KCOM_FAILED(err) && (flags & KCOM_VIEW_WRITE))
		err = view_map(view); /* never for a read-only view: map may coalesce */
	if (KCOM_FAILED(err))
		err = view_bounce(view);
	if (KCOM_FAILED(err)) {
		kcom_memset(view, 0, sizeof(*view));
		return err;
	}
	kcom_absio_addref(io);
	return KCOM_OK;
}

/* Frees what the view holds, without writing back, and zeroes it. */
static void view_drop(struct kcom_view *view)
{
	if (view->internal_.bounced)
		kcom_free(view->addr, view->len, 0);
	if (view->internal_.bufio != NULL)
		kcom_bufio_release(view->internal_.bufio);
	if (view->internal_.bufvec != NULL)
		kcom_bufvec_release(view->internal_.bufvec);
	kcom_absio_release(view->internal_.io);
	kcom_memset(view, 0, sizeof(*view));
}

/* Ends a direct view's mapping; KCOM_OK for a bounced view. */
static kcom_error_t view_unmap(struct kcom_view *view)
{
	if (view->internal_.bufvec != NULL)
		return kcom_bufvec_unmap_vec(view->internal_.bufvec, view->internal_.off, view->len,
		                             view->internal_.map_flags, &view->internal_.iov, view->internal_.iov_count);
	if (view->internal_.bufio != NULL)
		return kcom_bufio_unmap(view->internal_.bufio, view->addr, view->internal_.off, view->len);
	return KCOM_OK;
}

kcom_error_t kcom_view_release(struct kcom_view *view)
{
	if (view == NULL || view->internal_.io == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = view_unmap(view);
	if (view->internal_.bounced && (view->internal_.flags & KCOM_VIEW_WRITE)) {
		size_t put;
		err = kcom_absio_write(view->internal_.io, view->addr, view->internal_.off, view->len, &put);
		if (KCOM_SUCCEEDED(err) && put < view->len)
			err = KCOM_E_NOSPACE;
	}
	if (KCOM_FAILED(err))
		return err; /* keep the view: the caller may retry, or abort it */
	view_drop(view);
	return KCOM_OK;
}

int kcom_view_direct(const struct kcom_view *view)
{
	return view != NULL && view->internal_.io != NULL && !view->internal_.bounced;
}

void kcom_view_abort(struct kcom_view *view)
{
	if (view == NULL || view->internal_.io == NULL)
		return;
	(void)view_unmap(view);
	view_drop(view);
}

/* ---- range copy ---- */

/* True when a and b are interfaces of one object (COM identity: the IUnknown pointers match). */
static int same_object(kcom_absio_t *a, kcom_absio_t *b)
{
	void *ua, *ub;
	if (a == b)
		return 1;
	if (KCOM_FAILED(kcom_absio_query(a, &kcom_iunknown_iid, &ua)))
		return 0;
	if (KCOM_FAILED(kcom_absio_query(b, &kcom_iunknown_iid, &ub))) {
		kcom_iunknown_release(ua);
		return 0;
	}
	int same = ua == ub;
	kcom_iunknown_release(ua);
	kcom_iunknown_release(ub);
	return same;
}

/* Reads the source straight into the pieces of a mapped destination range. */
static kcom_error_t read_into_pieces(kcom_absio_t *src, kcom_off_t src_off, const struct kcom_iovec *iov,
                                     size_t count, size_t *out_copied)
{
	size_t done = 0;
	kcom_error_t err = KCOM_OK;
	for (size_t i = 0; i < count; i++) {
		size_t got;
		err = read_full(src, iov[i].base, src_off + (kcom_off_t)done, iov[i].len, &got);
		done += got;
		if (KCOM_FAILED(err) || got < iov[i].len)
			break;
	}
	*out_copied = done;
	return err;
}

/*
 * Destination range mapped: read the source straight into it, through a writable bufvec
 * mapping (piece by piece: a segmented destination is filled in place), else through bufio's
 * map of an object that has no bufvec.  KCOM_E_NOTIMPL when the destination offers neither,
 * or the range does not exist yet (the copy grows dst: let write do it).
 */
static kcom_error_t copy_into_mapping(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                      size_t n, size_t *out_copied)
{
	if (KCOM_FAILED(check_inside(dst, dst_off, n)))
		return KCOM_E_NOTIMPL;
	kcom_bufvec_t *vec;
	if (KCOM_SUCCEEDED(kcom_absio_query(dst, &kcom_bufvec_iid, (void **)&vec))) {
		struct kcom_iovec iov[HELPERS_MAX_PIECES];
		size_t count;
		kcom_error_t err = kcom_bufvec_map_vec(vec, dst_off, n, KCOM_MAP_WRITE, iov, HELPERS_MAX_PIECES, &count);
		if (KCOM_FAILED(err)) {
			kcom_bufvec_release(vec);
			return KCOM_E_NOTIMPL; /* too many pieces, or cannot: no coalescing map either */
		}
		err = read_into_pieces(src, src_off, iov, count, out_copied);
		kcom_error_t uerr = kcom_bufvec_unmap_vec(vec, dst_off, n, KCOM_MAP_WRITE, iov, count);
		kcom_bufvec_release(vec);
		return KCOM_FAILED(err) ? err : uerr;
	}
	kcom_bufio_t *bio;
	if (KCOM_FAILED(kcom_absio_query(dst, &kcom_bufio_iid, (void **)&bio)))
		return KCOM_E_NOTIMPL;
	struct kcom_iovec piece;
	kcom_error_t err = kcom_bufio_map(bio, &piece.base, dst_off, n);
	if (KCOM_FAILED(err)) {
		kcom_bufio_release(bio);
		return KCOM_E_NOTIMPL;
	}
	piece.len = n;
	err = read_into_pieces(src, src_off, &piece, 1, out_copied);
	kcom_error_t uerr = kcom_bufio_unmap(bio, piece.base, dst_off, n);
	kcom_bufio_release(bio);
	return KCOM_FAILED(err) ? err : uerr;
}

/*
 * A write at `off` refused with `err`: whether that is the destination's end, which it cannot
 * grow past (a fixed size, or a mapping outstanding).  A write that starts inside the object
 * is short there instead, so only one that starts at or past the end is refused for that
 * reason; the range copy then ends there, short, as documented.
 */
static int dst_ends_at(kcom_absio_t *dst, kcom_off_t off, kcom_error_t err)
{
	size_t size;
	return (err == KCOM_E_NOSPACE || err == KCOM_E_BUSY) && KCOM_SUCCEEDED(kcom_absio_getsize(dst, &size)) &&
	       (uint64_t)off >= size;
}

/* Source mapped read-only in pieces: write each straight to dst.  KCOM_E_NOTIMPL when src cannot. */
static kcom_error_t copy_from_pieces(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                     size_t n, size_t *out_copied)
{
	kcom_bufvec_t *vec;
	if (KCOM_FAILED(kcom_absio_query(src, &kcom_bufvec_iid, (void **)&vec)))
		return KCOM_E_NOTIMPL;
	struct kcom_iovec iov[HELPERS_MAX_PIECES];
	size_t count;
	kcom_error_t err = kcom_bufvec_map_vec(vec, src_off, n, KCOM_MAP_READ, iov, HELPERS_MAX_PIECES, &count);
	if (KCOM_FAILED(err)) {
		kcom_bufvec_release(vec);
		return KCOM_E_NOTIMPL;
	}
	size_t done = 0;
	for (size_t i = 0; i < count && KCOM_SUCCEEDED(err); i++) {
		size_t put;
		err = kcom_absio_write(dst, iov[i].base, dst_off + (kcom_off_t)done, iov[i].len, &put);
		if (dst_ends_at(dst, dst_off + (kcom_off_t)done, err))
			err = KCOM_OK;
		done += put;
		if (put < iov[i].len)
			break;
	}
	kcom_error_t uerr = kcom_bufvec_unmap_vec(vec, src_off, n, KCOM_MAP_READ, iov, count);
	kcom_bufvec_release(vec);
	*out_copied = done;
	return KCOM_FAILED(err) ? err : uerr;
}

/*
 * Through a buffer of `ahead + chunk` bytes, forwards, `chunk` bytes a write, reading the
 * source `ahead` bytes further than it writes (see copy_same_object; 0 between two objects).
 * Stops at the first short write, at the destination's end, or where the source ends, so at
 * every point exactly the first `*out_copied` bytes of the range are copied and no others.
 */
static kcom_error_t copy_chunks(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                size_t n, size_t ahead, unsigned char *buf, size_t chunk, size_t *out_copied)
{
	kcom_error_t err = KCOM_OK;
	size_t done = 0, have = 0; /* buf holds source bytes [done, done + have) */
	while (done < n) {
		size_t want = KCOM_MIN(ahead + chunk, n - done), got = 0;
		if (have < want) {
			err = read_full(src, buf + have, src_off + (kcom_off_t)(done + have), want - have, &got);
			have += got;
			if (KCOM_FAILED(err))
				break;
		}
		size_t len = KCOM_MIN(chunk, have), put = 0;
		if (len == 0)
			break; /* the source ended */
		err = kcom_absio_write(dst, buf, dst_off + (kcom_off_t)done, len, &put);
		if (dst_ends_at(dst, dst_off + (kcom_off_t)done, err))
			err = KCOM_OK;
		done += put;
		if (KCOM_FAILED(err) || put < len)
			break;
		have -= len;
		kcom_memmove(buf, buf + len, have); /* at most `ahead` bytes, never more than a chunk */
	}
	*out_copied = done;
	return err;
}

/* Between two objects through a bounce buffer, forwards. */
static kcom_error_t copy_bounced(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                 size_t n, size_t *out_copied)
{
	size_t chunk = KCOM_MIN(n, (size_t)HELPERS_CHUNK);
	unsigned char *buf = kcom_alloc(chunk, 0);
	if (buf == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_error_t err = copy_chunks(dst, dst_off, src, src_off, n, 0, buf, chunk, out_copied);
	kcom_free(buf, chunk, 0);
	return err;
}

/* Between two objects (n > 0, inside the source): the cheapest way either side allows. */
static kcom_error_t copy_between(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                 size_t n, size_t *out_copied)
{
	kcom_error_t err = copy_into_mapping(dst, dst_off, src, src_off, n, out_copied);
	if (err == KCOM_E_NOTIMPL)
		err = copy_from_pieces(dst, dst_off, src, src_off, n, out_copied);
	if (err == KCOM_E_NOTIMPL)
		err = copy_bounced(dst, dst_off, src, src_off, n, out_copied);
	return err;
}

/*
 * The last way within one object, for a destination a distance d after its source that
 * overlaps it, when neither a buffer of d plus a chunk nor a copy-on-write copy could be had
 * (a membuf whose store cannot be copied): one bufio map of the span of both ranges, and a
 * memmove in it.  Only when the destination range already lies inside the object (a mapping
 * freezes the size), and only when the map itself takes next to nothing (a membuf whose store is
 * its own; one that would copy or coalesce fails for want of memory like the rest).  One map,
 * then a memmove that cannot fail: all or nothing.
 */
static kcom_error_t copy_in_mapping(kcom_absio_t *io, kcom_off_t dst_off, kcom_off_t src_off, size_t n)
{
	size_t size, span = (size_t)(dst_off - src_off) + n;
	kcom_bufio_t *bio;
	if (KCOM_FAILED(kcom_absio_getsize(io, &size)) || (uint64_t)dst_off > size || n > size - (size_t)dst_off ||
	    KCOM_FAILED(kcom_absio_query(io, &kcom_bufio_iid, (void **)&bio)))
		return KCOM_E_OUTOFMEMORY;
	void *p;
	kcom_error_t err = kcom_bufio_map(bio, &p, src_off, span);
	if (KCOM_SUCCEEDED(err)) {
		kcom_memmove((unsigned char *)p + (span - n), p, n);
		err = kcom_bufio_unmap(bio, p, src_off, span);
	} else {
		err = KCOM_E_OUTOFMEMORY;
	}
	kcom_bufio_release(bio);
	return err;
}

/*
 * Range copy within one object, through a buffer (a mapping of one side would be written
 * through the other), forwards like any other, so that a failure or a destination that cannot
 * grow leaves exactly the first bytes of the range copied.  A destination at or before its
 * source, or past the source range, clobbers nothing still to be read.  One a distance d after
 * its source, overlapping it, clobbers source bytes d ahead of each write: the copy reads that
 * far ahead, in chunks of at least d, so the buffer holds every byte before it is overwritten
 * (d plus a chunk, or the whole range when that is no more).  A range that fits one chunk goes
 * in one write, so a failure there changes nothing at all.  When that buffer cannot be had,
 * the object's own copy-on-write copy of the source range serves instead (an mbufchain makes
 * one without copying; a membuf's first write then copies its whole store), copied from as
 * from another object; when that cannot be had, or fails for want of memory before copying
 * anything, the bytes move in one mapping of both ranges (copy_in_mapping); with none of these,
 * KCOM_E_OUTOFMEMORY and nothing changed.
 */
static kcom_error_t copy_same_object(kcom_absio_t *io, kcom_off_t dst_off, kcom_off_t src_off, size_t n,
                                     size_t *out_copied)
{
	size_t ahead = 0, chunk = KCOM_MIN(n, (size_t)HELPERS_CHUNK);
	int clobbers = dst_off > src_off && (uint64_t)(dst_off - src_off) < n; /* writes over bytes still to read */
	if (clobbers) {
		ahead = (size_t)(dst_off - src_off);
		chunk = KCOM_MAX(ahead, (size_t)HELPERS_CHUNK);
		if (chunk >= n - ahead) { /* the buffer would hold the whole range: one read, one write */
			ahead = 0;
			chunk = n;
		}
	}
	unsigned char *buf = kcom_alloc(ahead + chunk, 0); /* < n here, or n: no overflow */
	if (buf != NULL) {
		kcom_error_t err = copy_chunks(io, dst_off, io, src_off, n, ahead, buf, chunk, out_copied);
		kcom_free(buf, ahead + chunk, 0);
		return err;
	}
	kcom_bufio_t *bio, *snap = NULL;
	if (KCOM_SUCCEEDED(kcom_absio_query(io, &kcom_bufio_iid, (void **)&bio))) {
		if (KCOM_FAILED(kcom_bufio_copy(bio, src_off, n, &snap)))
			snap = NULL;
		kcom_bufio_release(bio);
	}
	kcom_error_t err = KCOM_E_OUTOFMEMORY;
	if (snap != NULL) {
		err = copy_between(io, dst_off, kcom_bufio_absio(snap), 0, n, out_copied);
		kcom_bufio_release(snap);
	}
	if (err == KCOM_E_OUTOFMEMORY && *out_copied == 0 && clobbers) {
		err = copy_in_mapping(io, dst_off, src_off, n);
		*out_copied = KCOM_SUCCEEDED(err) ? n : 0;
	}
	return err;
}

kcom_error_t kcom_absio_copy_range(kcom_absio_t *dst, kcom_off_t dst_off, kcom_absio_t *src, kcom_off_t src_off,
                                   size_t n, size_t *out_copied)
{
	if (out_copied != NULL)
		*out_copied = 0;
	if (dst == NULL || src == NULL || out_copied == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = kcom_absio_check_span_(dst_off, n);
	if (KCOM_SUCCEEDED(err))
		err = kcom_absio_check_span_(src_off, n);
	if (KCOM_FAILED(err))
		return err;

	/* Copy what the source has: a short source gives a short copy. */
	size_t src_size;
	err = kcom_absio_getsize(src, &src_size);
	if (KCOM_FAILED(err))
		return err;
	if ((uint64_t)src_off >= src_size || n == 0)
		return KCOM_OK;
	n = (size_t)KCOM_MIN((uint64_t)n, (uint64_t)src_size - (uint64_t)src_off);

	if (same_object(dst, src))
		return copy_same_object(dst, dst_off, src_off, n, out_copied);
	return copy_between(dst, dst_off, src, src_off, n, out_copied);
}

/* ---- duplicate ---- */

kcom_error_t kcom_bufio_duplicate_class(kcom_absio_t *src, kcom_off_t off, size_t n, const kcom_clsid_t *clsid,
                                        kcom_bufio_t **out_io)
{
	if (out_io != NULL)
		*out_io = NULL;
	if (src == NULL || out_io == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = check_inside(src, off, n);
	if (KCOM_FAILED(err))
		return err;

	kcom_bufio_t *bio;
	if (KCOM_SUCCEEDED(kcom_absio_query(src, &kcom_bufio_iid, (void **)&bio))) {
		err = kcom_bufio_copy(bio, off, n, out_io);
		kcom_bufio_release(bio);
		if (KCOM_SUCCEEDED(err))
			return err;
		*out_io = NULL;
	}

	if (clsid == NULL)
		clsid = kcom_product.default_buffer;
	if (clsid == NULL)
		return KCOM_E_NOTFOUND;
	kcom_bufio_t *copy;
	err = kcom_create(clsid, &kcom_bufio_iid, (void **)&copy);
	if (KCOM_FAILED(err))
		return err;
	/* A class whose new objects are not empty: they must hold the range and nothing else. */
	size_t fresh;
	err = kcom_bufio_getsize(copy, &fresh);
	if (KCOM_SUCCEEDED(err) && fresh != 0)
		err = kcom_bufio_setsize(copy, 0);
	size_t done = n;
	if (KCOM_SUCCEEDED(err))
		err = kcom_absio_copy_range(kcom_bufio_absio(copy), 0, src, off, n, &done);
	if (KCOM_SUCCEEDED(err) && done != n) /* the source shrank under us, or the object is too small */
		err = KCOM_FAILED(check_inside(src, off, n)) ? KCOM_E_UNEXPECTED : KCOM_E_NOSPACE;
	if (KCOM_FAILED(err)) {
		kcom_bufio_release(copy);
		return err;
	}
	*out_io = copy;
	return KCOM_OK;
}

kcom_error_t kcom_bufio_duplicate(kcom_absio_t *src, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	return kcom_bufio_duplicate_class(src, off, n, NULL, out_io);
}

/* ---- DMA: the allocator interface and the bounce helper ---- */

const kcom_iid_t kcom_dmaalloc_iid = KCOM_DMAALLOC_IID;

/* Whether a device with constraints `c` can take the segments as they are. */
static int bounce_segs_meet(const struct kcom_dma_constraints *c, const struct kcom_physseg *segs, size_t count)
{
	if (c == NULL)
		return 1;
	if (c->contiguous && count > 1)
		return 0;
	if (count != 0 && c->align > 1 && (segs[0].addr & (kcom_phys_t)(c->align - 1)) != 0)
		return 0;
	for (size_t i = 0; i < count; i++) {
		kcom_phys_t last = segs[i].addr + (segs[i].len != 0 ? segs[i].len - 1 : 0);
		if (c->max_addr != 0 && (last > c->max_addr || last < segs[i].addr))
			return 0;
		if (c->boundary != 0 && kcom_dma_crosses_(segs[i].addr, segs[i].len, c->boundary))
			return 0;
		if (c->max_seg != 0 && segs[i].len > c->max_seg)
			return 0;
	}
	return 1;
}

/*
 * Segments that miss `c` only by crossing its boundary or passing its max_seg, cut there as
 * busdma cuts them, into `segs` (`max` entries) from `from`: their count, or SIZE_MAX when
 * they miss `c` otherwise (a contiguous device cannot take pieces) or the pieces do not fit.
 */
static size_t bounce_cut(const struct kcom_dma_constraints *c, const struct kcom_physseg *from, size_t count,
                         struct kcom_physseg *segs, size_t max)
{
	if (c == NULL || c->contiguous)
		return SIZE_MAX;
	struct kcom_dma_constraints loose = *c;
	loose.boundary = 0;
	loose.max_seg = 0;
	if (!bounce_segs_meet(&loose, from, count))
		return SIZE_MAX;
	size_t out = 0;
	for (size_t i = 0; i < count; i++) {
		kcom_phys_t addr = from[i].addr;
		for (size_t left = from[i].len; left != 0; out++) {
			if (out == max)
				return SIZE_MAX;
			size_t k = kcom_dma_piece_(c, addr, left);
			segs[out] = (struct kcom_physseg){ .addr = addr, .len = k };
			addr += k;
			left -= k;
		}
	}
	return out;
}

/* An allocator with a reference: io's own, else one from the first class in the table that has one. */
static kcom_error_t bounce_find_alloc(kcom_bufio_t *io, kcom_dmaalloc_t **out)
{
	if (KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_dmaalloc_iid, (void **)out)))
		return KCOM_OK;
	return kcom_create_listing_(&kcom_dmaalloc_iid, (void **)out);
}

/* Wires [off, off + n) of io where the device can take its pages as they are. */
static kcom_error_t bounce_direct(struct kcom_dma_bounce *b, const struct kcom_dma_constraints *c,
                                  struct kcom_physseg *segs, size_t max, size_t *out_need)
{
	kcom_bufvec_t *vec;
	*out_need = 0;
	if (KCOM_FAILED(kcom_bufio_query(b->internal_.io, &kcom_bufvec_iid, (void **)&vec)))
		return KCOM_E_NOTIMPL;
	size_t count;
	kcom_error_t err = kcom_bufvec_wire_vec(vec, b->internal_.off, b->internal_.n, segs, max, &count);
	if (err == KCOM_E_TOOSMALL)
		*out_need = count;
	struct kcom_physseg *own = NULL; /* the object's segments, kept for unwire when cut */
	if (KCOM_SUCCEEDED(err) && !bounce_segs_meet(c, segs, count)) {
		/* Pieces of the object's own pages, where only a boundary or max_seg stands in the way. */
		size_t pieces = SIZE_MAX;
		own = kcom_alloc(count * sizeof(*own), 0);
		if (own != NULL) {
			kcom_memcpy(own, segs, count * sizeof(*own));
			pieces = bounce_cut(c, own, count, segs, max);
		}
		if (pieces == SIZE_MAX) {
			if (own != NULL)
				kcom_memcpy(segs, own, count * sizeof(*own)); /* unwire takes them as handed out */
			(void)kcom_bufvec_unwire_vec(vec, b->internal_.off, b->internal_.n, segs, count);
			kcom_free(own, count * sizeof(*own), 0);
			own = NULL;
			err = KCOM_E_UNREACHABLE;
		} else {
			b->internal_.own = own;
			b->internal_.own_count = count;
			count = pieces;
		}
	}
	if (KCOM_FAILED(err)) {
		kcom_bufvec_release(vec);
		return err;
	}
	b->internal_.wired = vec;
	b->internal_.wired_off = b->internal_.off;
	b->count = count;
	return KCOM_OK;
}

/* Makes, fills and wires a bounce buffer the device can reach. */
static kcom_error_t bounce_through(struct kcom_dma_bounce *b, const struct kcom_dma_constraints *c,
                                   kcom_dmaalloc_t *alloc, struct kcom_physseg *segs, size_t max)
{
	kcom_dmaalloc_t *found = NULL;
	kcom_error_t err = KCOM_OK;
	if (alloc == NULL) {
		err = bounce_find_alloc(b->internal_.io, &found);
		if (KCOM_FAILED(err))
			return err;
		alloc = found;
	}
	kcom_bufio_t *bounce;
	err = kcom_dmaalloc_alloc(alloc, b->internal_.n, c, &bounce);
	if (found != NULL)
		kcom_dmaalloc_release(found);
	if (KCOM_FAILED(err))
		return err;
	if (b->internal_.flags & KCOM_DMA_TO_DEVICE) {
		size_t done;
		err = kcom_absio_copy_range(kcom_bufio_absio(bounce), 0, kcom_bufio_absio(b->internal_.io),
		                            b->internal_.off, b->internal_.n, &done);
		if (KCOM_SUCCEEDED(err) && done != b->internal_.n)
			err = KCOM_E_UNEXPECTED; /* the source shrank under us */
	}
	kcom_bufvec_t *vec = NULL;
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufio_query(bounce, &kcom_bufvec_iid, (void **)&vec);
	size_t count = 0;
	if (KCOM_SUCCEEDED(err))
		err = kcom_bufvec_wire_vec(vec, 0, b->internal_.n, segs, max, &count);
	if (KCOM_SUCCEEDED(err) && !bounce_segs_meet(c, segs, count)) {
		/* The allocator promised otherwise: say so rather than hand the device bad memory. */
		(void)kcom_bufvec_unwire_vec(vec, 0, b->internal_.n, segs, count);
		err = KCOM_E_UNEXPECTED;
	}
	if (KCOM_FAILED(err)) {
		if (vec != NULL)
			kcom_bufvec_release(vec);
		kcom_bufio_release(bounce);
		return err;
	}
	b->internal_.wired = vec;
	b->internal_.wired_off = 0;
	b->internal_.bounce = bounce;
	b->count = count;
	return KCOM_OK;
}

kcom_error_t kcom_dma_bounce_acquire(struct kcom_dma_bounce *b, kcom_bufio_t *io, kcom_off_t off, size_t n,
                                     unsigned flags, const struct kcom_dma_constraints *c, kcom_dmaalloc_t *alloc,
                                     struct kcom_physseg *segs, size_t max)
{
	if (b == NULL)
		return KCOM_E_INVALIDARG;
	kcom_memset(b, 0, sizeof(*b));
	if (io == NULL || (segs == NULL && max > 0) || flags == 0 ||
	    (flags & ~(KCOM_DMA_TO_DEVICE | KCOM_DMA_FROM_DEVICE)) != 0)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = check_inside(kcom_bufio_absio(io), off, n);
	if (KCOM_SUCCEEDED(err))
		err = kcom_dma_constraints_valid_(c, 0); /* align or boundary not a power of two */
	if (KCOM_FAILED(err))
		return err;
	b->internal_.io = io;
	b->internal_.off = off;
	b->internal_.n = n;
	b->internal_.flags = flags;

	size_t need;
	err = bounce_direct(b, c, segs, max, &need);
	if (KCOM_FAILED(err))
		err = bounce_through(b, c, alloc, segs, max);
	(void)need;
	if (KCOM_FAILED(err)) {
		kcom_memset(b, 0, sizeof(*b));
		return err;
	}
	b->segs = segs;
	kcom_bufio_addref(io);
	return KCOM_OK;
}

/* Unwires and drops everything the wiring holds, and zeroes it. */
static void bounce_drop(struct kcom_dma_bounce *b)
{
	if (b->internal_.own != NULL) {
		(void)kcom_bufvec_unwire_vec(b->internal_.wired, b->internal_.wired_off, b->internal_.n, b->internal_.own,
		                             b->internal_.own_count);
		kcom_free(b->internal_.own, b->internal_.own_count * sizeof(*b->internal_.own), 0);
	} else {
		(void)kcom_bufvec_unwire_vec(b->internal_.wired, b->internal_.wired_off, b->internal_.n, b->segs,
		                             b->count);
	}
	kcom_bufvec_release(b->internal_.wired);
	if (b->internal_.bounce != NULL)
		kcom_bufio_release(b->internal_.bounce);
	kcom_bufio_release(b->internal_.io);
	kcom_memset(b, 0, sizeof(*b));
}

kcom_error_t kcom_dma_bounce_release(struct kcom_dma_bounce *b)
{
	if (b == NULL || b->internal_.io == NULL)
		return KCOM_E_INVALIDARG;
	if (b->internal_.bounce != NULL && (b->internal_.flags & KCOM_DMA_FROM_DEVICE)) {
		size_t done;
		kcom_error_t err = kcom_absio_copy_range(kcom_bufio_absio(b->internal_.io), b->internal_.off,
		                                         kcom_bufio_absio(b->internal_.bounce), 0, b->internal_.n, &done);
		if (KCOM_SUCCEEDED(err) && done != b->internal_.n)
			err = KCOM_E_NOSPACE;
		if (KCOM_FAILED(err))
			return err; /* keep it: the caller may retry, or abort */
	}
	bounce_drop(b);
	return KCOM_OK;
}

void kcom_dma_bounce_abort(struct kcom_dma_bounce *b)
{
	if (b == NULL || b->internal_.io == NULL)
		return;
	bounce_drop(b);
}

int kcom_dma_bounce_direct(const struct kcom_dma_bounce *b)
{
	return b != NULL && b->internal_.io != NULL && b->internal_.bounce == NULL;
}
