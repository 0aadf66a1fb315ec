/*
 * kcom_strerror: one table naming every code.  Unknown codes get a generic string; a success
 * value that is not KCOM_OK is named as "success" too.
 */
#include "config.h"

#include <stddef.h>

#include <com/error.h>

struct error_name {
	kcom_error_t code;
	const char *text;
};

static const struct error_name error_names[] = {
	{ KCOM_OK, "KCOM_OK: success" },
	{ KCOM_E_NOTIMPL, "KCOM_E_NOTIMPL: not implemented by this object" },
	{ KCOM_E_NOINTERFACE, "KCOM_E_NOINTERFACE: interface not supported" },
	{ KCOM_E_POINTER, "KCOM_E_POINTER: NULL pointer" },
	{ KCOM_E_FAIL, "KCOM_E_FAIL: unspecified failure" },
	{ KCOM_E_ACCESSDENIED, "KCOM_E_ACCESSDENIED: access denied" },
	{ KCOM_E_OUTOFMEMORY, "KCOM_E_OUTOFMEMORY: out of memory" },
	{ KCOM_E_INVALIDARG, "KCOM_E_INVALIDARG: invalid argument" },
	{ KCOM_E_UNEXPECTED, "KCOM_E_UNEXPECTED: unexpected call" },
	{ KCOM_E_RANGE, "KCOM_E_RANGE: range outside the object" },
	{ KCOM_E_BUSY, "KCOM_E_BUSY: busy (a mapping or wiring is outstanding)" },
	{ KCOM_E_NOTCONTIG, "KCOM_E_NOTCONTIG: range not contiguous" },
	{ KCOM_E_NOSPACE, "KCOM_E_NOSPACE: no space (object cannot grow)" },
	{ KCOM_E_OVERFLOW, "KCOM_E_OVERFLOW: value does not fit its type" },
	{ KCOM_E_SYNTAX, "KCOM_E_SYNTAX: malformed text" },
	{ KCOM_E_NOTFOUND, "KCOM_E_NOTFOUND: not found" },
	{ KCOM_E_EXISTS, "KCOM_E_EXISTS: already registered" },
	{ KCOM_E_NOPHYS, "KCOM_E_NOPHYS: no physical address available" },
	{ KCOM_E_TOOSMALL, "KCOM_E_TOOSMALL: caller's array or buffer too small" },
	{ KCOM_E_UNREACHABLE, "KCOM_E_UNREACHABLE: memory above the device's highest address" },
	{ KCOM_E_BOUNDARY, "KCOM_E_BOUNDARY: segment crosses the device's boundary" },
	{ KCOM_E_MISALIGNED, "KCOM_E_MISALIGNED: address not aligned as the device needs" },
	{ KCOM_E_BADMODULE, "KCOM_E_BADMODULE: not a loadable kcom module" },
	{ KCOM_E_IO, "KCOM_E_IO: input/output error" },
	{ KCOM_E_BADHANDLE, "KCOM_E_BADHANDLE: bad host handle (file descriptor)" },
	{ KCOM_E_TOOBIG, "KCOM_E_TOOBIG: larger than the host allows" },
};

const char *kcom_strerror(kcom_error_t err)
{
	for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++)
		if (error_names[i].code == err)
			return error_names[i].text;
	return KCOM_FAILED(err) ? "unknown kcom error" : "success";
}
