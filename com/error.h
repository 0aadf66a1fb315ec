/**
 * @file com/error.h
 * @brief Error codes: COM's values where COM has one, kcom's own facility for the rest.
 *
 * Every kcom method returns a ::kcom_error_t.  Zero is success; a negative value is a failure
 * (test with KCOM_FAILED()).  The value of a code never changes once released.  A short
 * transfer (read at the end of an object, a write that only partly fits) is not an error:
 * it is a success with a short count.  kcom_strerror() names every code.
 */
#ifndef KCOM_COM_ERROR_H
#define KCOM_COM_ERROR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Result of every kcom call: 0 on success, negative on failure. */
typedef int32_t kcom_error_t;

/** @brief Builds a failure code from its 32-bit COM HRESULT spelling. */
#define KCOM_MAKE_ERROR(hr) ((kcom_error_t)(uint32_t)(hr))

/** @brief True when @p e is a failure. */
#define KCOM_FAILED(e) ((kcom_error_t)(e) < 0)
/** @brief True when @p e is a success. */
#define KCOM_SUCCEEDED(e) ((kcom_error_t)(e) >= 0)

/** @brief Success. */
#define KCOM_OK 0

/* ---- COM's standard codes, with COM's values ---- */
/** @brief The method is not implemented by this object (optional bufio methods). */
#define KCOM_E_NOTIMPL KCOM_MAKE_ERROR(0x80004001u)
/** @brief The object does not support the interface asked for. */
#define KCOM_E_NOINTERFACE KCOM_MAKE_ERROR(0x80004002u)
/** @brief A required pointer argument was NULL. */
#define KCOM_E_POINTER KCOM_MAKE_ERROR(0x80004003u)
/** @brief Unspecified failure. */
#define KCOM_E_FAIL KCOM_MAKE_ERROR(0x80004005u)
/** @brief The host refused the operation (for example pinning memory without privilege). */
#define KCOM_E_ACCESSDENIED KCOM_MAKE_ERROR(0x80070005u)
/** @brief Memory could not be allocated. */
#define KCOM_E_OUTOFMEMORY KCOM_MAKE_ERROR(0x8007000Eu)
/** @brief An argument is invalid (negative offset, offset overflow, unmatched unmap ...). */
#define KCOM_E_INVALIDARG KCOM_MAKE_ERROR(0x80070057u)
/** @brief The call was not expected in the object's state. */
#define KCOM_E_UNEXPECTED KCOM_MAKE_ERROR(0x8000FFFFu)

/* ---- kcom's own facility (0x04B) ---- */
/** @brief The facility number of kcom's own codes. */
#define KCOM_FACILITY 0x04Bu
/** @brief Builds a kcom-facility failure code from its number. */
#define KCOM_MAKE_KERROR(n) KCOM_MAKE_ERROR(0x80000000u | (KCOM_FACILITY << 16) | (uint32_t)(n))

/** @brief The range lies (partly) outside the object. */
#define KCOM_E_RANGE KCOM_MAKE_KERROR(1)
/** @brief The object is busy: a mapping or wiring is outstanding that the call would break. */
#define KCOM_E_BUSY KCOM_MAKE_KERROR(2)
/** @brief The range is not contiguous (in memory or physically) and the call needs it to be. */
#define KCOM_E_NOTCONTIG KCOM_MAKE_KERROR(3)
/** @brief The object cannot grow to hold the data (fixed capacity). */
#define KCOM_E_NOSPACE KCOM_MAKE_KERROR(4)
/** @brief A size or count would not fit its type. */
#define KCOM_E_OVERFLOW KCOM_MAKE_KERROR(5)
/** @brief Text could not be parsed (malformed GUID text ...). */
#define KCOM_E_SYNTAX KCOM_MAKE_KERROR(6)
/** @brief No entry matches (registry, class table, mapping list). */
#define KCOM_E_NOTFOUND KCOM_MAKE_KERROR(7)
/** @brief An entry with that key is already registered. */
#define KCOM_E_EXISTS KCOM_MAKE_KERROR(8)
/** @brief The host gives no physical address for this memory. */
#define KCOM_E_NOPHYS KCOM_MAKE_KERROR(9)
/** @brief The caller-supplied array is too small for the result. */
#define KCOM_E_TOOSMALL KCOM_MAKE_KERROR(10)
/** @brief Memory lies above the highest physical address the device can reach. */
#define KCOM_E_UNREACHABLE KCOM_MAKE_KERROR(11)
/** @brief A physical segment crosses the boundary the device's segments must not cross. */
#define KCOM_E_BOUNDARY KCOM_MAKE_KERROR(12)
/** @brief An address is not aligned as the device requires. */
#define KCOM_E_MISALIGNED KCOM_MAKE_KERROR(13)
/** @brief A file is not a loadable kcom module (not a shared object, no descriptor, bad ABI). */
#define KCOM_E_BADMODULE KCOM_MAKE_KERROR(14)
/** @brief The host reported an input/output error (EIO and host errors with no closer code). */
#define KCOM_E_IO KCOM_MAKE_KERROR(15)
/** @brief A host handle (a file descriptor) is not valid for the operation (EBADF). */
#define KCOM_E_BADHANDLE KCOM_MAKE_KERROR(16)
/** @brief The object would exceed the largest size the host allows for it (EFBIG). */
#define KCOM_E_TOOBIG KCOM_MAKE_KERROR(17)

/**
 * @brief Names an error code.
 * @param err any value; unknown codes get a generic string.
 * @return a static, NUL-terminated string such as "KCOM_E_RANGE: range outside the object";
 *         never NULL.
 */
const char *kcom_strerror(kcom_error_t err);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_ERROR_H */
