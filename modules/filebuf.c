/*
 * filebuf: a bufio over a file (impls/filebuf.h), built on the implementation kit and shipped
 * as the loadable module "filebuf" (com/module.h).  Hosted only: it calls POSIX directly.
 *
 * The bytes are the file's; the object holds one descriptor.  read and write loop over
 * pread/pwrite until the whole range moved, retrying EINTR; a write that stops after some bytes
 * reports the short count (absio's rule) and one that lands nothing fails, leaving the file as
 * it was (pwrite that fails writes nothing).
 *
 * Mappings share one *window*: an mmap(MAP_SHARED) of the whole file, made by the first mapping
 * and unmapped when the last one ends.  While it exists the size is frozen (setsize and writes
 * past the end say KCOM_E_BUSY: a truncated file under a mapping would fault on access), so
 * every later mapping lies inside it and one offset always maps at one address, whichever
 * ranges were mapped first.  Mapping the whole file costs address space, not memory: pages are
 * faulted in as they are touched (on a 32-bit host a file of gigabytes may not fit, and its
 * first map fails with KCOM_E_OUTOFMEMORY).  A file grown behind the object's back (through
 * its descriptor, by another process) past the window cannot have the new bytes mapped until
 * the last mapping ends: KCOM_E_BUSY.  Each mapping is a kit ledger hold, allocated before anything
 * is mmap'ed, so a failure leaves nothing behind.  Mappings of one object may be made and ended
 * from several threads at once (a mapping reads nothing it changes but the window), so the
 * window is made, counted and unmapped under the object's lock.
 *
 * copy makes a membuf through the class table and reads the range into it: an independent
 * object (a write to either side is never seen by the other), as cheap as one read.
 *
 * The module counts its live objects (filebuf_live): ++ in the constructor, -- as the very
 * last act of destroy, so kcom_module_unload() never unmaps this code under an object.
 */
#define _GNU_SOURCE 1 /* O_TMPFILE, mkostemp */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/module.h>
#include <impls/filebuf.h>
#include <impls/membuf.h>
#include "absio/absio-internal.h"
#include "impls/impl-internal.h"

struct filebuf {
	kcom_bufio_t bufio;
	kcom_bufvec_t bufvec;
	kcom_fileio_t fileio;
	struct kcom_impl impl;           /* count, ledger of mappings, debug and bufinfo */
	int fd;
	int writable;                    /* fd open for writing: the window is PROT_WRITE too */
	kcom_lock_t lock;                /* window, window_len, window_users */
	unsigned char *window;           /* the whole file mmap'ed from offset 0, while mapped; else NULL */
	size_t window_len;               /* its length: the size rounded up to pages, at least one */
	uint32_t window_users;           /* mappings (holds) in it */
};

static const struct kcom_bufio_ops filebuf_bufio_ops;
static const struct kcom_bufvec_ops filebuf_bufvec_ops;
static const struct kcom_fileio_ops filebuf_fileio_ops;

static uint32_t filebuf_live;

static struct filebuf *impl_from_bufio(kcom_bufio_t *io)
{
	KCOM_ASSERT(io->ops == &filebuf_bufio_ops);
	return kcom_container_of(io, struct filebuf, bufio);
}

static struct filebuf *impl_from_bufvec(kcom_bufvec_t *vec)
{
	KCOM_ASSERT(vec->ops == &filebuf_bufvec_ops);
	return kcom_container_of(vec, struct filebuf, bufvec);
}

static struct filebuf *impl_from_fileio(kcom_fileio_t *f)
{
	KCOM_ASSERT(f->ops == &filebuf_fileio_ops);
	return kcom_container_of(f, struct filebuf, fileio);
}

/* The kcom code that names a host error. */
static kcom_error_t filebuf_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return KCOM_E_NOSPACE;
	case EACCES:
	case EPERM:
	case EROFS:
	case ETXTBSY:
		return KCOM_E_ACCESSDENIED;
	case EBADF:
		return KCOM_E_BADHANDLE;
	case EFBIG:
		return KCOM_E_TOOBIG;
	case ENOENT:
	case ENOTDIR:
		return KCOM_E_NOTFOUND;
	case ENOMEM:
		return KCOM_E_OUTOFMEMORY;
	case EINVAL:
	case EISDIR:
	case ESPIPE:
		return KCOM_E_INVALIDARG;
	case EOVERFLOW:
		return KCOM_E_OVERFLOW;
	case EEXIST:
		return KCOM_E_EXISTS;
	default:
		return KCOM_E_IO;
	}
}

static size_t filebuf_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* The file's size (fstat). */
static kcom_error_t filebuf_size(const struct filebuf *fb, size_t *out_size)
{
	struct stat st;
	*out_size = 0;
	if (fstat(fb->fd, &st) != 0)
		return filebuf_errno(errno);
	if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX)
		return KCOM_E_OVERFLOW;
	*out_size = (size_t)st.st_size;
	return KCOM_OK;
}

static int fd_writable(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
}

KCOM_IMPL_IUNKNOWN_(filebuf, kcom_bufio_t, struct filebuf, bufio)

static void filebuf_destroy(struct kcom_impl *impl)
{
	struct filebuf *fb = kcom_container_of(impl, struct filebuf, impl);
	KCOM_ASSERT(fb->window == NULL); /* the window has holds, every hold a reference */
	kcom_lock_fini(&fb->lock);
	close(fb->fd);
	kcom_free(fb, sizeof(*fb), 0);
	__atomic_sub_fetch(&filebuf_live, 1, __ATOMIC_RELEASE); /* last: the module may go now */
}

static kcom_error_t filebuf_sanity(struct kcom_impl *impl, char *why, size_t len)
{
	struct filebuf *fb = kcom_container_of(impl, struct filebuf, impl);
	if (fb->fd < 0)
		return kcom_impl_insane_(why, len, "filebuf: no descriptor");
	if ((fb->window != NULL) != (fb->window_users != 0))
		return kcom_impl_insane_(why, len, "filebuf: a window with no mapping, or mappings with no window");
	if (fb->window_users != impl->ledger.maps)
		return kcom_impl_insane_(why, len, "filebuf: window users do not match the ledger's mappings");
	return KCOM_OK;
}

static void filebuf_info(struct kcom_impl *impl, struct kcom_buffer_info *out)
{
	(void)impl;
	out->flags |= KCOM_BUFINFO_RESIZABLE | KCOM_BUFINFO_BACKED;
}

/* ---- absio ---- */

static kcom_error_t filebuf_read(kcom_bufio_t *io, void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct filebuf *fb = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);
	size_t done = 0;
	while (done < n) {
		ssize_t got = pread(fb->fd, (char *)buf + done, n - done, (off_t)(off + (kcom_off_t)done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			if (done != 0)
				break; /* what was read stands: a short read */
			return filebuf_errno(errno);
		}
		if (got == 0)
			break; /* the end of the file */
		done += (size_t)got;
	}
	*out_actual = done;
	return KCOM_OK;
}

static kcom_error_t filebuf_write(kcom_bufio_t *io, const void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	struct filebuf *fb = impl_from_bufio(io);
	kcom_error_t err = kcom_absio_check_io_(buf, off, n, out_actual);
	if (err != KCOM_OK)
		return kcom_absio_check_done_(err);
	if (kcom_ledger_mapped_(&fb->impl)) {
		/* Frozen size: what lies below it may land, nothing past it. */
		size_t size;
		err = filebuf_size(fb, &size);
		if (KCOM_FAILED(err))
			return err;
		if ((uint64_t)off >= size)
			return KCOM_E_BUSY;
		n = (size_t)KCOM_MIN((uint64_t)n, size - (uint64_t)off);
	}
	size_t done = 0;
	while (done < n) {
		ssize_t put = pwrite(fb->fd, (const char *)buf + done, n - done, (off_t)(off + (kcom_off_t)done));
		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0) {
			if (done != 0)
				break; /* what landed stands: a short write */
			return put < 0 ? filebuf_errno(errno) : KCOM_E_IO;
		}
		done += (size_t)put;
	}
	*out_actual = done;
	return KCOM_OK;
}

static kcom_error_t filebuf_getsize(kcom_bufio_t *io, size_t *out_size)
{
	if (out_size == NULL)
		return KCOM_E_INVALIDARG;
	return filebuf_size(impl_from_bufio(io), out_size);
}

static kcom_error_t filebuf_setsize(kcom_bufio_t *io, size_t size)
{
	struct filebuf *fb = impl_from_bufio(io);
	size_t now;
	kcom_error_t err = filebuf_size(fb, &now);
	if (KCOM_FAILED(err))
		return err;
	if (size == now)
		return KCOM_OK;
	err = kcom_absio_check_size_(size);
	if (KCOM_FAILED(err))
		return err;
	if (kcom_ledger_mapped_(&fb->impl))
		return KCOM_E_BUSY;
	while (ftruncate(fb->fd, (off_t)size) != 0)
		if (errno != EINTR)
			return filebuf_errno(errno);
	return KCOM_OK;
}

/* ---- mappings ---- */

/*
 * Records a mapping of [key->off, key->off + key->n) and returns its address in the window,
 * which the first mapping makes.  The mapping holds a reference.  On failure nothing changed
 * (no hold, no window, nothing mmap'ed).
 */
static kcom_error_t filebuf_map_range(struct filebuf *fb, struct kcom_hold_key *key, struct kcom_iovec *piece,
                                      void **out_addr)
{
	*out_addr = NULL;
	size_t size;
	kcom_error_t err = filebuf_size(fb, &size);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_absio_check_range_(key->off, key->n, size);
	if (KCOM_FAILED(err))
		return err;
	if ((key->flags & KCOM_MAP_WRITE) && !fb->writable)
		return KCOM_E_ACCESSDENIED;

	struct kcom_hold *h = kcom_hold_alloc_(key->veclen);
	if (h == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_lock_acquire(&fb->lock);
	if (fb->window == NULL) {
		/* The whole file, frozen from now on; an empty one still maps somewhere definite. */
		size_t page = filebuf_page();
		size_t len = size > SIZE_MAX - (page - 1) ? 0 : (size + page - 1) & ~(page - 1);
		if (size == 0)
			len = page;
		int prot = PROT_READ | (fb->writable ? PROT_WRITE : 0);
		void *base = len != 0 ? mmap(NULL, len, prot, MAP_SHARED, fb->fd, 0) : MAP_FAILED;
		if (base == MAP_FAILED) {
			err = len != 0 ? filebuf_errno(errno) : KCOM_E_OUTOFMEMORY;
			kcom_lock_release(&fb->lock);
			kcom_hold_free_(h);
			return err;
		}
		fb->window = base;
		fb->window_len = len;
	}
	if ((size_t)key->off + key->n > fb->window_len) {
		/* The file grew behind our back (its descriptor, another process) past the window,
		 * which cannot grow without moving what is mapped. */
		kcom_lock_release(&fb->lock);
		kcom_hold_free_(h);
		return KCOM_E_BUSY;
	}
	fb->window_users++;
	*out_addr = fb->window + key->off;
	kcom_lock_release(&fb->lock);
	if (piece != NULL) {
		piece->base = *out_addr;
		piece->len = key->n;
	} else {
		key->addr = (uintptr_t)*out_addr;
	}
	kcom_ledger_insert_(&fb->impl, h, key, NULL);
	return KCOM_OK;
}

/* Ends the mapping matching `key`: the window loses a user, and goes with its last one. */
static kcom_error_t filebuf_unmap_key(struct filebuf *fb, const struct kcom_hold_key *key)
{
	struct kcom_hold *h = kcom_ledger_remove_(&fb->impl, key);
	if (h == NULL)
		return KCOM_E_INVALIDARG;
	kcom_hold_free_(h);
	kcom_lock_acquire(&fb->lock);
	if (--fb->window_users == 0) {
		munmap(fb->window, fb->window_len);
		fb->window = NULL;
		fb->window_len = 0;
	}
	kcom_lock_release(&fb->lock);
	kcom_impl_release_(&fb->impl); /* the hold's reference; may free the object */
	return KCOM_OK;
}

/* ---- bufio ---- */

static kcom_error_t filebuf_map(kcom_bufio_t *io, void **out_addr, kcom_off_t off, size_t n)
{
	if (out_addr == NULL)
		return KCOM_E_INVALIDARG;
	struct kcom_hold_key key = { .kind = KCOM_HOLD_MAP, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE };
	return filebuf_map_range(impl_from_bufio(io), &key, NULL, out_addr);
}

static kcom_error_t filebuf_unmap(kcom_bufio_t *io, void *addr, kcom_off_t off, size_t n)
{
	struct kcom_hold_key key = {
		.kind = KCOM_HOLD_MAP, .addr = (uintptr_t)addr, .off = off, .n = n, .flags = KCOM_MAP_READ | KCOM_MAP_WRITE,
	};
	return filebuf_unmap_key(impl_from_bufio(io), &key);
}

static const kcom_clsid_t filebuf_membuf_clsid = KCOM_MEMBUF_CLSID;

/* A membuf (made through the class table) holding the range's bytes, read straight into it. */
static kcom_error_t filebuf_copy(kcom_bufio_t *io, kcom_off_t off, size_t n, kcom_bufio_t **out_io)
{
	struct filebuf *fb = impl_from_bufio(io);
	if (out_io == NULL)
		return KCOM_E_INVALIDARG;
	*out_io = NULL;
	size_t size;
	kcom_error_t err = kcom_absio_check_span_(off, n);
	if (KCOM_FAILED(err))
		return err;
	err = filebuf_size(fb, &size);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_absio_check_range_(off, n, size);
	if (KCOM_FAILED(err))
		return err;
	kcom_bufio_t *copy;
	err = kcom_create(&filebuf_membuf_clsid, &kcom_bufio_iid, (void **)&copy);
	if (KCOM_FAILED(err))
		return err;
	if (n != 0) {
		void *addr;
		err = kcom_bufio_setsize(copy, n);
		if (KCOM_SUCCEEDED(err))
			err = kcom_bufio_map(copy, &addr, 0, n);
		if (KCOM_SUCCEEDED(err)) {
			size_t got = 0;
			err = filebuf_read(io, addr, off, n, &got);
			if (KCOM_SUCCEEDED(err) && got != n)
				err = KCOM_E_IO; /* the file shrank under us (another process) */
			kcom_bufio_unmap(copy, addr, 0, n);
		}
		if (KCOM_FAILED(err)) {
			kcom_bufio_release(copy);
			return err;
		}
	}
	*out_io = copy;
	return KCOM_OK;
}

/* ---- bufvec (one piece: the window's) ---- */

KCOM_IMPL_IUNKNOWN_(filebuf_vec, kcom_bufvec_t, struct filebuf, bufvec)

static kcom_error_t filebuf_piece_size(struct kcom_impl *impl, size_t *out_size)
{
	return filebuf_size(kcom_container_of(impl, struct filebuf, impl), out_size);
}

static kcom_error_t filebuf_piece_map(struct kcom_impl *impl, struct kcom_hold_key *key, struct kcom_iovec *piece,
                                      void **out_addr)
{
	return filebuf_map_range(kcom_container_of(impl, struct filebuf, impl), key, piece, out_addr);
}

static kcom_error_t filebuf_piece_unmap(struct kcom_impl *impl, const struct kcom_hold_key *key)
{
	return filebuf_unmap_key(kcom_container_of(impl, struct filebuf, impl), key);
}

static const struct kcom_onepiece_ filebuf_piece = {
	.size = filebuf_piece_size,
	.map = filebuf_piece_map,
	.unmap = filebuf_piece_unmap,
};

static kcom_error_t filebuf_map_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                    struct kcom_iovec *iov, size_t max, size_t *out_count)
{
	return kcom_onepiece_map_vec_(&impl_from_bufvec(vec)->impl, &filebuf_piece, off, n, flags, iov, max, out_count);
}

static kcom_error_t filebuf_unmap_vec(kcom_bufvec_t *vec, kcom_off_t off, size_t n, unsigned flags,
                                      const struct kcom_iovec *iov, size_t count)
{
	return kcom_onepiece_unmap_vec_(&impl_from_bufvec(vec)->impl, &filebuf_piece, off, n, flags, iov, count);
}

/* ---- kcom_fileio ---- */

KCOM_IMPL_IUNKNOWN_(filebuf_file, kcom_fileio_t, struct filebuf, fileio)

/* Puts the object over `fd` (which it now owns), closing the old one. */
static void filebuf_rebind(struct filebuf *fb, int fd)
{
	close(fb->fd);
	fb->fd = fd;
	fb->writable = fd_writable(fd);
}

static kcom_error_t filebuf_open(kcom_fileio_t *f, const char *path, int oflags, unsigned mode)
{
	struct filebuf *fb = impl_from_fileio(f);
	if (path == NULL)
		return KCOM_E_INVALIDARG;
	if (kcom_ledger_mapped_(&fb->impl))
		return KCOM_E_BUSY;
	int fd;
	do
		fd = open(path, oflags | O_CLOEXEC, (mode_t)mode);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return filebuf_errno(errno);
	filebuf_rebind(fb, fd);
	return KCOM_OK;
}

static kcom_error_t filebuf_attach(kcom_fileio_t *f, int fd)
{
	struct filebuf *fb = impl_from_fileio(f);
	if (kcom_ledger_mapped_(&fb->impl))
		return KCOM_E_BUSY;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return filebuf_errno(errno);
	filebuf_rebind(fb, dup);
	return KCOM_OK;
}

/* ---- tables ---- */

static const struct kcom_bufio_ops filebuf_bufio_ops = {
	.query = filebuf_query,
	.addref = filebuf_addref,
	.release = filebuf_release,
	.read = filebuf_read,
	.write = filebuf_write,
	.getsize = filebuf_getsize,
	.setsize = filebuf_setsize,
	.map = filebuf_map,
	.unmap = filebuf_unmap,
	.wire = kcom_impl_wire_notimpl_, /* page-cache pages are not handed to devices */
	.unwire = kcom_impl_unwire_none_,
	.copy = filebuf_copy,
};

static const struct kcom_bufvec_ops filebuf_bufvec_ops = {
	.query = filebuf_vec_query,
	.addref = filebuf_vec_addref,
	.release = filebuf_vec_release,
	.map_vec = filebuf_map_vec,
	.unmap_vec = filebuf_unmap_vec,
	.wire_vec = kcom_impl_wire_vec_notimpl_,
	.unwire_vec = kcom_impl_unwire_vec_none_,
};

static const struct kcom_fileio_ops filebuf_fileio_ops = {
	.query = filebuf_file_query,
	.addref = filebuf_file_addref,
	.release = filebuf_file_release,
	.open = filebuf_open,
	.attach = filebuf_attach,
};

static const kcom_iid_t filebuf_fileio_iid = KCOM_FILEIO_IID;

static const struct kcom_class_iface filebuf_ifaces[] = {
	{ &kcom_iunknown_iid, offsetof(struct filebuf, bufio) },
	{ &kcom_absio_iid, offsetof(struct filebuf, bufio) },
	{ &kcom_bufio_iid, offsetof(struct filebuf, bufio) },
	{ &kcom_bufvec_iid, offsetof(struct filebuf, bufvec) },
	{ &filebuf_fileio_iid, offsetof(struct filebuf, fileio) },
	{ &kcom_debug_iid, offsetof(struct filebuf, impl.debug) },
	{ &kcom_bufinfo_iid, offsetof(struct filebuf, impl.bufinfo) },
	{ NULL, 0 },
};

static kcom_error_t filebuf_class_create(const kcom_iid_t *iid, void **out);

static const struct kcom_class filebuf_class = {
	.clsid = KCOM_FILEBUF_CLSID,
	.name = "filebuf",
	.create = filebuf_class_create,
	.ifaces = filebuf_ifaces,
	.natives = KCOM_NATIVE_MAP | KCOM_NATIVE_COPY | KCOM_NATIVE_BUFVEC,
};

static const struct kcom_impl_desc filebuf_desc = {
	.cls = &filebuf_class,
	.impl_offset = offsetof(struct filebuf, impl),
	.destroy = filebuf_destroy,
	.sanity = filebuf_sanity,
	.info = filebuf_info,
};

/* ---- construction ---- */

/* An anonymous temporary file: O_TMPFILE where the host has it, else mkstemp and unlink. */
static kcom_error_t filebuf_tmpfile(int *out_fd)
{
	const char *dir = getenv("TMPDIR");
	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	int fd = -1;
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
	if (fd < 0) {
		size_t len = __builtin_strlen(dir);
		char *tmpl = malloc(len + sizeof("/kcom-filebuf-XXXXXX"));
		if (tmpl == NULL)
			return KCOM_E_OUTOFMEMORY;
		__builtin_memcpy(tmpl, dir, len);
		__builtin_memcpy(tmpl + len, "/kcom-filebuf-XXXXXX", sizeof("/kcom-filebuf-XXXXXX"));
		fd = mkostemp(tmpl, O_CLOEXEC);
		int e = errno;
		if (fd >= 0)
			unlink(tmpl);
		free(tmpl);
		if (fd < 0)
			return filebuf_errno(e);
	}
	*out_fd = fd;
	return KCOM_OK;
}

/* The class factory: a buffer over a new anonymous temporary file, answered as `iid`. */
static kcom_error_t filebuf_class_create(const kcom_iid_t *iid, void **out)
{
	*out = NULL;
	struct filebuf *fb = kcom_alloc(sizeof(*fb), 0);
	if (fb == NULL)
		return KCOM_E_OUTOFMEMORY;
	int fd = -1;
	kcom_error_t err = kcom_lock_init(&fb->lock);
	if (KCOM_SUCCEEDED(err)) {
		err = filebuf_tmpfile(&fd);
		if (KCOM_FAILED(err))
			kcom_lock_fini(&fb->lock);
	}
	if (KCOM_FAILED(err)) {
		kcom_free(fb, sizeof(*fb), 0);
		return err;
	}
	fb->bufio.ops = &filebuf_bufio_ops;
	fb->bufvec.ops = &filebuf_bufvec_ops;
	fb->fileio.ops = &filebuf_fileio_ops;
	kcom_impl_init_(&fb->impl, &filebuf_desc);
	fb->fd = fd;
	fb->writable = 1;
	fb->window = NULL;
	fb->window_len = 0;
	fb->window_users = 0;
	__atomic_add_fetch(&filebuf_live, 1, __ATOMIC_ACQ_REL);
	err = kcom_impl_query_(&fb->impl, iid, out);
	kcom_impl_release_(&fb->impl); /* on failure, frees it */
	return err;
}

/* ---- the module ---- */

static uint32_t filebuf_count(void)
{
	return __atomic_load_n(&filebuf_live, __ATOMIC_ACQUIRE);
}

static const struct kcom_class *const filebuf_classes[] = { &filebuf_class };

const struct kcom_module_desc kcom_module = {
	.abi = KCOM_MODULE_ABI,
	.name = "filebuf",
	.description = "a bufio over a file: pread/pwrite, one mmap window, membuf copies",
	.classes = filebuf_classes,
	.nclasses = 1,
	.live = filebuf_count,
};
