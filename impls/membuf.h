/**
 * @file impls/membuf.h
 * @brief membuf: a bufio over one flat region of memory.
 *
 * Two kinds: a growable buffer that owns its memory (kcom_membuf_create(), also the class
 * ::kcom_membuf_clsid), and a fixed-size wrapper over caller memory with a release callback
 * (kcom_membuf_wrap()).  map always works and is a direct pointer; copy shares storage and
 * copies on the first write to either side; wire is KCOM_E_NOTIMPL (pageable memory is not
 * handed to a device); while a mapping is outstanding the size is frozen (KCOM_E_BUSY) and the
 * memory never moves.  Objects answer IUnknown, absio, bufio, bufvec (one segment), bufinfo
 * (bufio/bufinfo.h: a name, given with kcom_membuf_create_named() or set later) and debug.
 *
 * One object is not for concurrent mutation from several threads; reference counts are, and
 * so is writing to an object and to a copy of it from two threads at once.
 */
#ifndef KCOM_IMPLS_MEMBUF_H
#define KCOM_IMPLS_MEMBUF_H

#include <stddef.h>
#include <bufio/bufio.h>
#include <com/class.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief membuf's class ID, {6FE2446E-C588-42C1-864B-E3C381FBDBB3}; its factory makes an empty growable buffer. */
extern const kcom_clsid_t kcom_membuf_clsid;
/** @brief Initializer of ::kcom_membuf_clsid. */
#define KCOM_MEMBUF_CLSID KCOM_GUID(0x6fe2446e, 0xc588, 0x42c1, 0x86, 0x4b, 0xe3, 0xc3, 0x81, 0xfb, 0xdb, 0xb3)

/** @brief membuf's class-table entry. */
extern const struct kcom_class kcom_membuf_class;

/**
 * @brief Called when a wrapping membuf (and every copy sharing its memory) is gone.
 * @param ctx the context given to kcom_membuf_wrap()
 * @param mem the wrapped memory
 * @param len its length
 */
typedef void (*kcom_membuf_release_fn)(void *ctx, void *mem, size_t len);

/**
 * @brief Creates a growable membuf of @p size zero bytes.
 * @param size initial size
 * @param out_io receives the object with one reference; NULL on failure
 * @retval KCOM_OK created
 * @retval KCOM_E_INVALIDARG @p out_io is NULL
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_membuf_create(size_t size, kcom_bufio_t **out_io);

/**
 * @brief Creates a growable membuf of @p size zero bytes with a name (L4's
 *        `l4dm_mem_open(..., name, ...)`), which buffer info (bufio/bufinfo.h) reports.
 * @param size initial size
 * @param name the name (NULL: unnamed); cut to KCOM_BUFINFO_NAME_MAX - 1 bytes
 * @param out_io receives the object with one reference; NULL on failure
 * @retval KCOM_OK created
 * @retval KCOM_E_INVALIDARG @p out_io is NULL
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_membuf_create_named(size_t size, const char *name, kcom_bufio_t **out_io);

/**
 * @brief Wraps caller memory as a fixed-capacity membuf (size @p len; can shrink and regrow
 *        up to @p len, never past it).
 *
 * Reads and writes go to @p mem itself.  A copy() of the wrapper gets memory of its own at once
 * (the wrapper's bytes must stay at @p mem, so they cannot be shared copy-on-write).
 * @param mem the memory (may be NULL only when @p len is 0)
 * @param len its length
 * @param release called once when the object is gone (may be NULL)
 * @param ctx passed to @p release
 * @param out_io receives the object with one reference; NULL on failure
 * @retval KCOM_OK created; on failure @p release is not called and @p mem is still the caller's
 * @retval KCOM_E_INVALIDARG NULL @p out_io, or NULL @p mem with len > 0
 * @retval KCOM_E_OUTOFMEMORY no memory for the object
 */
kcom_error_t kcom_membuf_wrap(void *mem, size_t len, kcom_membuf_release_fn release, void *ctx,
                              kcom_bufio_t **out_io);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_IMPLS_MEMBUF_H */
