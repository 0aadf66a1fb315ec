/*
 * Error codes: COM's values exactly, the success/failure macros, kcom's own facility, and
 * kcom_strerror naming every code.
 *
 * The table below lists every KCOM_E_* code by name; one test reads com/error.h itself (from
 * $srcdir, which the test harness sets, else beside this file) and fails when the header
 * defines a code the table does not list, so a new code cannot go unnamed.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <com/com.h>

#include "tests/suites.h"

struct error_code {
	const char *name;
	kcom_error_t code;
};
#define ERROR_CODE(name) { #name, name }

/* COM's standard codes first, then kcom's facility, in header order. */
static const struct error_code error_codes[] = {
	ERROR_CODE(KCOM_E_NOTIMPL),
	ERROR_CODE(KCOM_E_NOINTERFACE),
	ERROR_CODE(KCOM_E_POINTER),
	ERROR_CODE(KCOM_E_FAIL),
	ERROR_CODE(KCOM_E_ACCESSDENIED),
	ERROR_CODE(KCOM_E_OUTOFMEMORY),
	ERROR_CODE(KCOM_E_INVALIDARG),
	ERROR_CODE(KCOM_E_UNEXPECTED),
	ERROR_CODE(KCOM_E_RANGE),
	ERROR_CODE(KCOM_E_BUSY),
	ERROR_CODE(KCOM_E_NOTCONTIG),
	ERROR_CODE(KCOM_E_NOSPACE),
	ERROR_CODE(KCOM_E_OVERFLOW),
	ERROR_CODE(KCOM_E_SYNTAX),
	ERROR_CODE(KCOM_E_NOTFOUND),
	ERROR_CODE(KCOM_E_EXISTS),
	ERROR_CODE(KCOM_E_NOPHYS),
	ERROR_CODE(KCOM_E_TOOSMALL),
	ERROR_CODE(KCOM_E_UNREACHABLE),
	ERROR_CODE(KCOM_E_BOUNDARY),
	ERROR_CODE(KCOM_E_MISALIGNED),
	ERROR_CODE(KCOM_E_BADMODULE),
	ERROR_CODE(KCOM_E_IO),
	ERROR_CODE(KCOM_E_BADHANDLE),
	ERROR_CODE(KCOM_E_TOOBIG),
};
#define ERROR_NCODES (sizeof(error_codes) / sizeof(error_codes[0]))
/* The first ERROR_NCOM entries are COM's codes; the rest are kcom's own. */
#define ERROR_NCOM 8

START_TEST(test_error_com_values)
{
	_Static_assert(sizeof(kcom_error_t) == 4, "kcom_error_t is 32 bits");
	ck_assert_int_eq(KCOM_OK, 0);
	ck_assert_int_eq(KCOM_E_NOTIMPL, (int32_t)0x80004001u);
	ck_assert_int_eq(KCOM_E_NOINTERFACE, (int32_t)0x80004002u);
	ck_assert_int_eq(KCOM_E_POINTER, (int32_t)0x80004003u);
	ck_assert_int_eq(KCOM_E_FAIL, (int32_t)0x80004005u);
	ck_assert_int_eq(KCOM_E_ACCESSDENIED, (int32_t)0x80070005u);
	ck_assert_int_eq(KCOM_E_OUTOFMEMORY, (int32_t)0x8007000Eu);
	ck_assert_int_eq(KCOM_E_INVALIDARG, (int32_t)0x80070057u);
	ck_assert_int_eq(KCOM_E_UNEXPECTED, (int32_t)0x8000FFFFu);
}
END_TEST

START_TEST(test_error_failed_succeeded)
{
	ck_assert(KCOM_SUCCEEDED(KCOM_OK));
	ck_assert(!KCOM_FAILED(KCOM_OK));
	ck_assert(KCOM_SUCCEEDED(1));
	ck_assert(!KCOM_FAILED(1));
	ck_assert(KCOM_SUCCEEDED(INT32_MAX));
	ck_assert(KCOM_FAILED(-1));
	ck_assert(!KCOM_SUCCEEDED(-1));
	ck_assert(KCOM_FAILED(INT32_MIN));
	/* The macros take the 32-bit spelling too. */
	ck_assert(KCOM_FAILED(0x80004001u));
	ck_assert(!KCOM_SUCCEEDED(0x80004001u));
	for (size_t i = 0; i < ERROR_NCODES; i++) {
		ck_assert_msg(KCOM_FAILED(error_codes[i].code), "%s is not a failure", error_codes[i].name);
		ck_assert_msg(!KCOM_SUCCEEDED(error_codes[i].code), "%s succeeds", error_codes[i].name);
	}
}
END_TEST

START_TEST(test_error_kcom_facility)
{
	ck_assert_uint_eq(KCOM_FACILITY, 0x04B);
	for (size_t i = ERROR_NCOM; i < ERROR_NCODES; i++) {
		uint32_t v = (uint32_t)error_codes[i].code;
		ck_assert_msg((v & 0x80000000u) != 0, "%s lacks the failure bit", error_codes[i].name);
		ck_assert_msg(((v >> 16) & 0x7ffu) == KCOM_FACILITY, "%s is outside kcom's facility",
		              error_codes[i].name);
		ck_assert_msg((v & 0xffffu) != 0, "%s has number 0", error_codes[i].name);
	}
	ck_assert_int_eq(KCOM_E_RANGE, (int32_t)0x804B0001u);
	ck_assert_int_eq(KCOM_E_TOOSMALL, (int32_t)0x804B000Au);
}
END_TEST

START_TEST(test_error_codes_distinct)
{
	for (size_t i = 0; i < ERROR_NCODES; i++) {
		ck_assert_int_ne(error_codes[i].code, KCOM_OK);
		for (size_t j = i + 1; j < ERROR_NCODES; j++)
			ck_assert_msg(error_codes[i].code != error_codes[j].code, "%s == %s", error_codes[i].name,
			              error_codes[j].name);
	}
}
END_TEST

START_TEST(test_error_strerror_names_each)
{
	const struct error_code *c = &error_codes[_i];
	const char *text = kcom_strerror(c->code);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, c->name) != NULL, "kcom_strerror(%s) = \"%s\"", c->name, text);
	/* The text names this code, not another whose name it merely contains. */
	size_t n = strlen(c->name);
	ck_assert_msg(strncmp(text, c->name, n) == 0 && (text[n] == ':' || text[n] == '\0'),
	              "kcom_strerror(%s) = \"%s\"", c->name, text);
	ck_assert_str_ne(text, "unknown kcom error");
}
END_TEST

START_TEST(test_error_strerror_distinct)
{
	for (size_t i = 0; i < ERROR_NCODES; i++)
		for (size_t j = i + 1; j < ERROR_NCODES; j++)
			ck_assert_str_ne(kcom_strerror(error_codes[i].code), kcom_strerror(error_codes[j].code));
}
END_TEST

START_TEST(test_error_strerror_ok)
{
	const char *text = kcom_strerror(KCOM_OK);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "KCOM_OK"));
}
END_TEST

START_TEST(test_error_strerror_unknown)
{
	static const kcom_error_t unknown[] = {
		-1,
		INT32_MIN,
		KCOM_MAKE_ERROR(0x80004004u), /* E_ABORT: COM's, not kcom's */
		KCOM_MAKE_ERROR(0x80000000u),
		KCOM_MAKE_KERROR(0),
		KCOM_MAKE_KERROR(0x7ff), /* well past the last code */
		KCOM_MAKE_KERROR(0xffff),
		KCOM_MAKE_ERROR(0x804C0001u), /* KCOM_E_RANGE's number in the next facility */
	};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *text = kcom_strerror(unknown[i]);
		ck_assert_ptr_nonnull(text);
		ck_assert_msg(strcmp(text, "unknown kcom error") == 0, "kcom_strerror(0x%08x) = \"%s\"",
		              (unsigned)unknown[i], text);
	}
	/* A success other than KCOM_OK is still not NULL and not a failure's text. */
	static const kcom_error_t positive[] = { 1, 0x7fffffff, 0x004B0001 };
	for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++) {
		const char *text = kcom_strerror(positive[i]);
		ck_assert_ptr_nonnull(text);
		ck_assert_str_ne(text, "unknown kcom error");
	}
}
END_TEST

/* Opens com/error.h from $srcdir, else from the source tree this file was compiled from. */
static FILE *error_open_header(char *path, size_t len)
{
	const char *srcdir = getenv("srcdir");
	if (srcdir != NULL) {
		snprintf(path, len, "%s/com/error.h", srcdir);
		FILE *f = fopen(path, "r");
		if (f != NULL)
			return f;
	}
	const char *slash = strrchr(__FILE__, '/');
	if (slash == NULL)
		snprintf(path, len, "../com/error.h");
	else
		snprintf(path, len, "%.*s/../com/error.h", (int)(slash - __FILE__), __FILE__);
	return fopen(path, "r");
}

START_TEST(test_error_header_codes_all_listed)
{
	char path[4096];
	FILE *f = error_open_header(path, sizeof(path));
	ck_assert_msg(f != NULL, "cannot open com/error.h (tried %s); set srcdir", path);

	char line[512];
	size_t seen = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "#define", 7) != 0)
			continue;
		p += 7;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "KCOM_E_", 7) != 0)
			continue;
		size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
		int listed = 0;
		for (size_t i = 0; i < ERROR_NCODES; i++)
			if (strlen(error_codes[i].name) == n && strncmp(error_codes[i].name, p, n) == 0)
				listed = 1;
		if (!listed) {
			fclose(f);
			ck_abort_msg("%s defines %.*s, which this suite does not list", path, (int)n, p);
		}
		seen++;
	}
	fclose(f);
	ck_assert_uint_eq(seen, ERROR_NCODES);
}
END_TEST

Suite *error_suite(void)
{
	Suite *s = suite_create("error");

	TCase *tc = tcase_create("values");
	tcase_add_test(tc, test_error_com_values);
	tcase_add_test(tc, test_error_failed_succeeded);
	tcase_add_test(tc, test_error_kcom_facility);
	tcase_add_test(tc, test_error_codes_distinct);
	tcase_add_test(tc, test_error_header_codes_all_listed);
	suite_add_tcase(s, tc);

	tc = tcase_create("strerror");
	tcase_add_loop_test(tc, test_error_strerror_names_each, 0, (int)ERROR_NCODES);
	tcase_add_test(tc, test_error_strerror_distinct);
	tcase_add_test(tc, test_error_strerror_ok);
	tcase_add_test(tc, test_error_strerror_unknown);
	suite_add_tcase(s, tc);

	return s;
}
