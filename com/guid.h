/**
 * @file com/guid.h
 * @brief GUIDs: the 16-byte identifiers of interfaces (IIDs) and classes (CLSIDs).
 *
 * The layout is COM's (u32, u16, u16, u8[8]).  KCOM_GUID() builds an initializer; the text
 * form is `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (38 characters), written by
 * kcom_guid_format() and read by kcom_guid_parse().
 */
#ifndef KCOM_COM_GUID_H
#define KCOM_COM_GUID_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A GUID in COM's layout. */
typedef struct kcom_guid {
	uint32_t data1;    /**< first 8 hex digits */
	uint16_t data2;    /**< next 4 */
	uint16_t data3;    /**< next 4 */
	uint8_t data4[8];  /**< last 16, as bytes */
} kcom_guid_t;

/** @brief An interface identifier. */
typedef kcom_guid_t kcom_iid_t;
/** @brief A class identifier. */
typedef kcom_guid_t kcom_clsid_t;

/**
 * @brief Initializer for a GUID written {l-w1-w2-b0b1-b2b3b4b5b6b7}.
 *
 * Example: `KCOM_GUID(0x00000000, 0x0000, 0x0000, 0xC0, 0x00, 0, 0, 0, 0, 0, 0x46)`.
 */
#define KCOM_GUID(l, w1, w2, b0, b1, b2, b3, b4, b5, b6, b7) \
	{ (l), (w1), (w2), { (b0), (b1), (b2), (b3), (b4), (b5), (b6), (b7) } }

/** @brief Buffer size for kcom_guid_format(): 38 characters and the NUL. */
#define KCOM_GUID_STRLEN 39

_Static_assert(sizeof(kcom_guid_t) == 16, "a GUID is 16 bytes");

/**
 * @brief Compares two GUIDs.
 * @param a first GUID (not NULL)
 * @param b second GUID (not NULL)
 * @return 1 when equal, 0 otherwise.
 */
static inline int kcom_guid_equal(const kcom_guid_t *a, const kcom_guid_t *b)
{
	const uint8_t *pa = (const uint8_t *)a, *pb = (const uint8_t *)b;
	uint64_t a0, a1, b0, b1;
	__builtin_memcpy(&a0, pa, 8);
	__builtin_memcpy(&a1, pa + 8, 8);
	__builtin_memcpy(&b0, pb, 8);
	__builtin_memcpy(&b1, pb + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/**
 * @brief Writes a GUID's text form, with braces and upper-case hex digits.
 * @param guid the GUID
 * @param buf receives the text and a NUL
 * @param len size of @p buf; at least ::KCOM_GUID_STRLEN
 * @retval KCOM_OK written
 * @retval KCOM_E_POINTER @p guid or @p buf is NULL
 * @retval KCOM_E_TOOSMALL @p len is below ::KCOM_GUID_STRLEN (nothing written)
 */
kcom_error_t kcom_guid_format(const kcom_guid_t *guid, char *buf, size_t len);

/**
 * @brief Parses the text form `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (either case).
 *
 * The text must be exactly that: braces, dashes and hex digits in place, then the NUL.
 * @param text NUL-terminated text
 * @param out_guid receives the GUID; set to all zeros on failure, never half-filled
 * @retval KCOM_OK parsed
 * @retval KCOM_E_POINTER @p text or @p out_guid is NULL
 * @retval KCOM_E_SYNTAX the text is not a GUID
 */
kcom_error_t kcom_guid_parse(const char *text, kcom_guid_t *out_guid);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_GUID_H */
