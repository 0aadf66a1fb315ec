/**
 * @file impls/filebuf.h
 * @brief filebuf: a bufio over a file, shipped as the loadable module `filebuf`.
 *
 * filebuf is not linked into libkcom: load it with kcom_module_load("filebuf", &m)
 * (com/module.h), then create objects through the class table:
 * @code
 * static const kcom_clsid_t filebuf_clsid = KCOM_FILEBUF_CLSID;
 * static const kcom_iid_t fileio_iid = KCOM_FILEIO_IID;
 * kcom_bufio_t *io;
 * kcom_fileio_t *file;
 * kcom_create(&filebuf_clsid, &kcom_bufio_iid, (void **)&io);   // an anonymous temporary file
 * kcom_bufio_query(io, &fileio_iid, (void **)&file);
 * kcom_fileio_open(file, "/var/tmp/data", O_RDWR | O_CREAT, 0644); // now over that file
 * @endcode
 * (Since the module defines them, a client spells the IDs with the macros below; the module
 * exports nothing but its descriptor.)
 *
 * - read and write are `pread` and `pwrite`, retried on EINTR and on short transfers; a write
 *   that fails after some bytes landed reports the short count, one that lands nothing fails
 *   and leaves the file as it was.
 * - getsize and setsize are `fstat` and `ftruncate`; growing reads as zeros.
 * - map is an address in one `mmap(MAP_SHARED)` of the whole file, made by the first mapping
 *   and shared by every other until the last is unmapped, so one offset always maps at one
 *   address (the mmap costs address space, not memory, but a 32-bit host may not fit a file of
 *   gigabytes); unmap takes map's exact arguments; while anything is mapped the size is frozen
 *   (KCOM_E_BUSY), and bytes the file gained behind the object's back meanwhile (through the
 *   descriptor, by another process) cannot be mapped until the last mapping ends (KCOM_E_BUSY).
 * - kcom_bufvec's map_vec gives the same mapping as one piece; wire and wire_vec are
 *   KCOM_E_NOTIMPL (page-cache pages are not handed to devices).
 * - copy is a new membuf holding the range's bytes (through the class table).
 * - Host errors become the kcom codes that name them: ENOSPC/EDQUOT KCOM_E_NOSPACE,
 *   EACCES/EPERM/EROFS/ETXTBSY KCOM_E_ACCESSDENIED, EBADF KCOM_E_BADHANDLE, EFBIG
 *   KCOM_E_TOOBIG, ENOENT/ENOTDIR KCOM_E_NOTFOUND, ENOMEM KCOM_E_OUTOFMEMORY,
 *   EINVAL/EISDIR/ESPIPE KCOM_E_INVALIDARG, EOVERFLOW KCOM_E_OVERFLOW, EEXIST KCOM_E_EXISTS,
 *   anything else KCOM_E_IO.  (So setsize of a file open read-only, which ftruncate refuses
 *   with EINVAL, is KCOM_E_INVALIDARG.)
 *
 * Objects answer IUnknown, absio, bufio, bufvec, kcom_fileio, bufinfo and debug.  One object
 * is not for concurrent mutation from several threads.
 */
#ifndef KCOM_IMPLS_FILEBUF_H
#define KCOM_IMPLS_FILEBUF_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief filebuf's class ID, {5773ABB1-6C3C-45BA-A6B5-2C938111FFC1}: its factory makes a buffer
 *  over an anonymous temporary file (in `$TMPDIR`, else /tmp). */
#define KCOM_FILEBUF_CLSID KCOM_GUID(0x5773abb1, 0x6c3c, 0x45ba, 0xa6, 0xb5, 0x2c, 0x93, 0x81, 0x11, 0xff, 0xc1)

/** @brief The file interface of a filebuf: which file it is over. */
typedef struct kcom_fileio kcom_fileio_t;

/** @brief kcom_fileio's method table: IUnknown's slots, then its own. */
struct kcom_fileio_ops {
	/** @brief IUnknown: see kcom_fileio_query(). */
	kcom_error_t (*query)(kcom_fileio_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_fileio_addref(). */
	uint32_t (*addref)(kcom_fileio_t *self);
	/** @brief IUnknown: see kcom_fileio_release(). */
	uint32_t (*release)(kcom_fileio_t *self);
	/** @brief See kcom_fileio_open(). */
	kcom_error_t (*open)(kcom_fileio_t *self, const char *path, int oflags, unsigned mode);
	/** @brief See kcom_fileio_attach(). */
	kcom_error_t (*attach)(kcom_fileio_t *self, int fd);
};

/** @brief A kcom_fileio pointer. */
struct kcom_fileio {
	const struct kcom_fileio_ops *ops; /**< method table */
};

/** @brief Initializer of kcom_fileio's IID, {6D4BEAFA-6C5D-48B5-B509-C08DC6748E86}. */
#define KCOM_FILEIO_IID KCOM_GUID(0x6d4beafa, 0x6c5d, 0x48b5, 0xb5, 0x09, 0xc0, 0x8d, 0xc6, 0x74, 0x8e, 0x86)

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_fileio_query(kcom_fileio_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_fileio_addref(kcom_fileio_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_fileio_release(kcom_fileio_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Puts the buffer over the file at @p path (opened with `open(2)`); the file it was
 *        over is closed.
 * @param self the object
 * @param path the file
 * @param oflags open(2)'s flags (O_RDWR, O_CREAT ...; O_RDONLY makes writes fail)
 * @param mode open(2)'s mode for a file O_CREAT makes
 * @retval KCOM_OK the object is over the new file
 * @retval KCOM_E_BUSY a mapping is outstanding; nothing changed
 * @retval KCOM_E_INVALIDARG @p path is NULL
 * @retval other open(2)'s error as a kcom code (KCOM_E_NOTFOUND, KCOM_E_ACCESSDENIED ...);
 *         nothing changed
 */
static inline kcom_error_t kcom_fileio_open(kcom_fileio_t *self, const char *path, int oflags, unsigned mode)
{
	return self->ops->open(self, path, oflags, mode);
}

/**
 * @brief Puts the buffer over a duplicate of the descriptor @p fd (the caller keeps @p fd);
 *        the file it was over is closed.
 * @param self the object
 * @param fd an open descriptor of a file that supports pread/pwrite
 * @retval KCOM_OK the object is over that file
 * @retval KCOM_E_BUSY a mapping is outstanding; nothing changed
 * @retval KCOM_E_BADHANDLE @p fd is not an open descriptor; nothing changed
 */
static inline kcom_error_t kcom_fileio_attach(kcom_fileio_t *self, int fd)
{
	return self->ops->attach(self, fd);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_IMPLS_FILEBUF_H */
