/*
 * GUIDs: text form both ways, and the IIDs of com's own interfaces (IUnknown, debug); every
 * other IID is defined in the folder of its interface.
 *
 * Parsing fills a local GUID and copies it out only when the whole text was valid, so a caller
 * never sees half a GUID.
 */
#include "config.h"

#include <com/debug.h>
#include <com/guid.h>
#include <com/iunknown.h>
#include "com/com-internal.h"

const kcom_iid_t kcom_iunknown_iid = KCOM_IUNKNOWN_IID;
const kcom_iid_t kcom_debug_iid = KCOM_DEBUG_IID;

static const char guid_hex[] = "0123456789ABCDEF";

/* Writes `digits` hex digits of `v`, most significant first. */
static char *guid_put_hex(char *p, uint32_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--)
		*p++ = guid_hex[(v >> (4 * i)) & 0xf];
	return p;
}

kcom_error_t kcom_guid_format(const kcom_guid_t *guid, char *buf, size_t len)
{
	if (guid == NULL || buf == NULL)
		return KCOM_E_POINTER;
	if (len < KCOM_GUID_STRLEN)
		return KCOM_E_TOOSMALL;

	char *p = buf;
	*p++ = '{';
	p = guid_put_hex(p, guid->data1, 8);
	*p++ = '-';
	p = guid_put_hex(p, guid->data2, 4);
	*p++ = '-';
	p = guid_put_hex(p, guid->data3, 4);
	*p++ = '-';
	p = guid_put_hex(p, guid->data4[0], 2);
	p = guid_put_hex(p, guid->data4[1], 2);
	*p++ = '-';
	for (int i = 2; i < 8; i++)
		p = guid_put_hex(p, guid->data4[i], 2);
	*p++ = '}';
	*p = '\0';
	return KCOM_OK;
}

/* Value of one hex digit, or -1. */
static int guid_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads `digits` hex digits at *pp into *out; advances *pp.  Returns 0, or -1 on a non-digit. */
static int guid_get_hex(const char **pp, int digits, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < digits; i++) {
		int d = guid_hex_value((*pp)[i]);
		if (d < 0)
			return -1;
		v = (v << 4) | (uint32_t)d;
	}
	*pp += digits;
	*out = v;
	return 0;
}

kcom_error_t kcom_guid_parse(const char *text, kcom_guid_t *out_guid)
{
	if (out_guid != NULL)
		kcom_memset(out_guid, 0, sizeof(*out_guid));
	if (text == NULL || out_guid == NULL)
		return KCOM_E_POINTER;

	/* Check the length first, so the digit readers below never run past the NUL. */
	if (kcom_strlen_(text) != KCOM_GUID_STRLEN - 1)
		return KCOM_E_SYNTAX;

	kcom_guid_t g;
	uint32_t v;
	const char *p = text;
	if (*p++ != '{')
		return KCOM_E_SYNTAX;
	if (guid_get_hex(&p, 8, &v) < 0 || *p++ != '-')
		return KCOM_E_SYNTAX;
	g.data1 = v;
	if (guid_get_hex(&p, 4, &v) < 0 || *p++ != '-')
		return KCOM_E_SYNTAX;
	g.data2 = (uint16_t)v;
	if (guid_get_hex(&p, 4, &v) < 0 || *p++ != '-')
		return KCOM_E_SYNTAX;
	g.data3 = (uint16_t)v;
	for (int i = 0; i < 8; i++) {
		if (i == 2 && *p++ != '-')
			return KCOM_E_SYNTAX;
		if (guid_get_hex(&p, 2, &v) < 0)
			return KCOM_E_SYNTAX;
		g.data4[i] = (uint8_t)v;
	}
	if (*p++ != '}' || *p != '\0')
		return KCOM_E_SYNTAX;

	*out_guid = g;
	return KCOM_OK;
}

size_t kcom_strlen_(const char *s)
{
	size_t n = 0;
	while (s[n] != '\0')
		n++;
	return n;
}
