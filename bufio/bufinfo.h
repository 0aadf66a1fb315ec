/**
 * @file bufio/bufinfo.h
 * @brief kcom_bufinfo: what a buffer says about itself (L4's l4dm_mem_info for dataspaces).
 *
 * An extension interface every buffer class answers: ask any bufio for ::kcom_bufinfo_iid.
 * It reports the buffer's name (set at creation, as L4's `l4dm_mem_open(..., name, ...)`, or
 * later with kcom_bufinfo_set_name()), its size, a few facts as ::KCOM_BUFINFO_RESIZABLE and
 * friends, and which optional bufio methods the object does natively (::KCOM_NATIVE_MAP and
 * friends) rather than refusing them so that the caller falls back to read and write.
 *
 * The natives of a class are stated once, in its class description (kcom_class::natives,
 * com/class.h, whose bits this header defines); an object reports its class's natives, minus
 * any it cannot do right now (a device buffer on a host that gives no physical addresses).
 * Tools such as kcom-inspect cross-check the answer by trying each method.
 *
 * @code
 * struct kcom_buffer_info info;
 * kcom_bufinfo_t *bi;
 * if (KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi))) {
 *         kcom_bufinfo_get(bi, &info);
 *         printf("%s: %zu bytes%s\n", info.name, info.size,
 *                (info.natives & KCOM_NATIVE_MAP) ? ", maps" : "");
 *         kcom_bufinfo_release(bi);
 * }
 * @endcode
 */
#ifndef KCOM_BUFIO_BUFINFO_H
#define KCOM_BUFIO_BUFINFO_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Room for a buffer's name, the terminating NUL included (longer names are cut). */
#define KCOM_BUFINFO_NAME_MAX 32

/** @brief Flag: the size can change (setsize, a write past the end). */
#define KCOM_BUFINFO_RESIZABLE 0x1u
/** @brief Flag: the whole buffer is physically contiguous. */
#define KCOM_BUFINFO_CONTIGUOUS 0x2u
/** @brief Flag: the memory is pinned (never paged out, physical addresses stable). */
#define KCOM_BUFINFO_PINNED 0x4u
/** @brief Flag: right now the buffer shares storage copy-on-write with a copy or an original. */
#define KCOM_BUFINFO_COW_SHARED 0x8u
/** @brief Flag: the bytes live outside memory (a file): reads and writes are host I/O. */
#define KCOM_BUFINFO_BACKED 0x10u

/** @brief Native: bufio map gives a direct pointer. */
#define KCOM_NATIVE_MAP 0x1u
/** @brief Native: bufio wire (and bufvec wire_vec) give physical addresses. */
#define KCOM_NATIVE_WIRE 0x2u
/** @brief Native: bufio copy gives an independent object without the caller's fallback. */
#define KCOM_NATIVE_COPY 0x4u
/** @brief Native: the object answers kcom_bufvec and maps ranges as piece lists. */
#define KCOM_NATIVE_BUFVEC 0x8u
/** @brief Native: the object answers the chain extension (prepend, append, split, trim). */
#define KCOM_NATIVE_CHAIN 0x10u

/** @brief What kcom_bufinfo_get() reports. */
struct kcom_buffer_info {
	char name[KCOM_BUFINFO_NAME_MAX]; /**< NUL-terminated; "" when never named */
	size_t size;                      /**< bytes, as getsize says */
	unsigned flags;                   /**< ::KCOM_BUFINFO_RESIZABLE ... */
	unsigned natives;                 /**< ::KCOM_NATIVE_MAP ... */
};

/** @brief The buffer info interface. */
typedef struct kcom_bufinfo kcom_bufinfo_t;

/** @brief bufinfo's method table: IUnknown's slots, then its own. */
struct kcom_bufinfo_ops {
	/** @brief IUnknown: see kcom_bufinfo_query(). */
	kcom_error_t (*query)(kcom_bufinfo_t *self, const kcom_iid_t *iid, void **out);
	/** @brief IUnknown: see kcom_bufinfo_addref(). */
	uint32_t (*addref)(kcom_bufinfo_t *self);
	/** @brief IUnknown: see kcom_bufinfo_release(). */
	uint32_t (*release)(kcom_bufinfo_t *self);
	/** @brief See kcom_bufinfo_get(). */
	kcom_error_t (*get)(kcom_bufinfo_t *self, struct kcom_buffer_info *out);
	/** @brief See kcom_bufinfo_set_name(). */
	kcom_error_t (*set_name)(kcom_bufinfo_t *self, const char *name);
};

/** @brief A bufinfo pointer. */
struct kcom_bufinfo {
	const struct kcom_bufinfo_ops *ops; /**< method table */
};

/** @brief bufinfo's IID, {E7261E53-939F-4117-AC1A-68C37C7DA198}. */
extern const kcom_iid_t kcom_bufinfo_iid;
/** @brief Initializer of ::kcom_bufinfo_iid. */
#define KCOM_BUFINFO_IID KCOM_GUID(0xe7261e53, 0x939f, 0x4117, 0xac, 0x1a, 0x68, 0xc3, 0x7c, 0x7d, 0xa1, 0x98)

_Static_assert(offsetof(struct kcom_bufinfo_ops, query) == offsetof(struct kcom_iunknown_ops, query), "bufinfo layout");
_Static_assert(offsetof(struct kcom_bufinfo_ops, addref) == offsetof(struct kcom_iunknown_ops, addref), "bufinfo layout");
_Static_assert(offsetof(struct kcom_bufinfo_ops, release) == offsetof(struct kcom_iunknown_ops, release), "bufinfo layout");

/** @brief IUnknown query. @param self the object @param iid wanted @param out result
 *  @retval KCOM_OK supported @retval KCOM_E_NOINTERFACE not supported
 *  @retval KCOM_E_POINTER @p iid or @p out is NULL */
static inline kcom_error_t kcom_bufinfo_query(kcom_bufinfo_t *self, const kcom_iid_t *iid, void **out)
{
	return self->ops->query(self, iid, out);
}

/** @brief Adds a reference. @param self the object @return the new count. */
static inline uint32_t kcom_bufinfo_addref(kcom_bufinfo_t *self)
{
	return self->ops->addref(self);
}

/** @brief Drops a reference. @param self the object @return the new count (0: freed). */
static inline uint32_t kcom_bufinfo_release(kcom_bufinfo_t *self)
{
	return self->ops->release(self);
}

/**
 * @brief Reports the buffer's name, size, flags and natives.
 *
 * A snapshot: another thread changing the object may make it stale at once.
 * @param self the object
 * @param out receives the report
 * @retval KCOM_OK done
 * @retval KCOM_E_INVALIDARG @p out is NULL
 */
static inline kcom_error_t kcom_bufinfo_get(kcom_bufinfo_t *self, struct kcom_buffer_info *out)
{
	return self->ops->get(self, out);
}

/**
 * @brief Names the buffer (for debugging and tools; the name is never used to find it).
 * @param self the object
 * @param name the name; cut to ::KCOM_BUFINFO_NAME_MAX - 1 bytes
 * @retval KCOM_OK named
 * @retval KCOM_E_INVALIDARG @p name is NULL
 */
static inline kcom_error_t kcom_bufinfo_set_name(kcom_bufinfo_t *self, const char *name)
{
	return self->ops->set_name(self, name);
}

#ifdef __cplusplus
}
#endif
#endif /* KCOM_BUFIO_BUFINFO_H */
