/*
 * Private helpers every absio/bufio implementation shares, so the argument rules of
 * absio/absio.h and bufio/bufio.h are written once.
 */
#ifndef KCOM_ABSIO_ABSIO_INTERNAL_H
#define KCOM_ABSIO_ABSIO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <absio/absio.h>

/* KCOM_E_INVALIDARG for a negative offset or an `off + n` past KCOM_OFF_MAX, else KCOM_OK. */
static inline kcom_error_t kcom_absio_check_span_(kcom_off_t off, size_t n)
{
	if (off < 0 || (uint64_t)n > (uint64_t)KCOM_OFF_MAX - (uint64_t)off)
		return KCOM_E_INVALIDARG;
	return KCOM_OK;
}

/*
 * A new size for setsize: KCOM_E_INVALIDARG past KCOM_OFF_MAX (no byte there could be
 * addressed, and sizes above it would overflow the next offset's checks), else KCOM_OK.
 */
static inline kcom_error_t kcom_absio_check_size_(size_t size)
{
#if SIZE_MAX > INT64_MAX /* KCOM_OFF_MAX; a narrower size_t never passes it */
	if (size > (size_t)KCOM_OFF_MAX)
		return KCOM_E_INVALIDARG;
#else
	(void)size;
#endif
	return KCOM_OK;
}

/* kcom_absio_check_io_'s "the call is already complete" answer: a success, never returned. */
#define KCOM_ABSIO_DONE_ 1

/*
 * Checks a read or write's arguments: buf may be NULL only with n == 0, out_actual not NULL,
 * off not negative, off + n not past KCOM_OFF_MAX.  Clears *out_actual when it is not NULL.
 * Returns KCOM_E_INVALIDARG; KCOM_ABSIO_DONE_ when the arguments are good and n is 0, so the
 * transfer is complete with 0 bytes (no implementation ever touches a buffer that may be NULL);
 * KCOM_OK when the implementation has bytes to move.  Call it as
 *
 *	err = kcom_absio_check_io_(buf, off, n, out_actual);
 *	if (err != KCOM_OK)
 *		return kcom_absio_check_done_(err);
 */
static inline kcom_error_t kcom_absio_check_io_(const void *buf, kcom_off_t off, size_t n, size_t *out_actual)
{
	if (__builtin_expect(out_actual == NULL, 0))
		return KCOM_E_INVALIDARG;
	*out_actual = 0;
	/* One test for a negative offset and for off + n past KCOM_OFF_MAX, as unsigned sums. */
	if (__builtin_expect(off < 0 || (uint64_t)n > (uint64_t)KCOM_OFF_MAX - (uint64_t)off, 0))
		return KCOM_E_INVALIDARG;
	if (n == 0)
		return KCOM_ABSIO_DONE_;
	return buf != NULL ? KCOM_OK : KCOM_E_INVALIDARG;
}

/* What a method returns when kcom_absio_check_io_ said anything but KCOM_OK. */
static inline kcom_error_t kcom_absio_check_done_(kcom_error_t err)
{
	return err == KCOM_ABSIO_DONE_ ? KCOM_OK : err;
}

/*
 * The common case of a read or write, in one test: good pointers and n > 0 bytes at `off` lying
 * wholly inside an object of `size` bytes (a negative offset fails the unsigned comparison).
 * An implementation may take a fast path when this holds; anything else goes to
 * kcom_absio_check_io_, which decides the error or the short transfer.
 */
static inline int kcom_absio_io_inside_(const void *buf, kcom_off_t off, size_t n, const size_t *out_actual,
                                        size_t size)
{
	return buf != NULL && out_actual != NULL && n != 0 && (uint64_t)off < size && n <= size - (size_t)off;
}

/*
 * Checks a map/wire/copy range against an object of `size` bytes: KCOM_E_INVALIDARG for a
 * negative offset or overflow, KCOM_E_RANGE when [off, off + n) is not inside the object.
 */
static inline kcom_error_t kcom_absio_check_range_(kcom_off_t off, size_t n, size_t size)
{
	if (KCOM_FAILED(kcom_absio_check_span_(off, n)))
		return KCOM_E_INVALIDARG;
	if ((uint64_t)off > (uint64_t)size || (uint64_t)n > (uint64_t)size - (uint64_t)off)
		return KCOM_E_RANGE;
	return KCOM_OK;
}

#endif /* KCOM_ABSIO_ABSIO_INTERNAL_H */
