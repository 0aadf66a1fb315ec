/*
 * GUIDs: the initializer's layout, equality, the text form both ways, and the parser's
 * refusal of every malformed text (with the output cleared, never half-filled).
 *
 * Malformed texts are copied into heap buffers of exactly their own size, so a parser that
 * reads past the NUL shows up under valgrind.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/com.h>
#include <impls/membuf.h>

#include "tests/suites.h"

/* A GUID whose every field differs from its neighbours, to catch swapped fields. */
static const kcom_guid_t guid_sample =
	KCOM_GUID(0x12345678, 0x9abc, 0xdef0, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78);
#define GUID_SAMPLE_TEXT "{12345678-9ABC-DEF0-0F1E-2D3C4B5A6978}"

static const uint8_t guid_zero_bytes[sizeof(kcom_guid_t)];

static void guid_fill_aa(kcom_guid_t *g)
{
	memset(g, 0xAA, sizeof(*g));
}

static void guid_assert_zero(const kcom_guid_t *g)
{
	ck_assert_mem_eq(g, guid_zero_bytes, sizeof(*g));
}

/* ---- layout ---- */

START_TEST(test_guid_initializer_layout)
{
	ck_assert_uint_eq(sizeof(kcom_guid_t), 16);
	ck_assert_uint_eq(offsetof(kcom_guid_t, data1), 0);
	ck_assert_uint_eq(offsetof(kcom_guid_t, data2), 4);
	ck_assert_uint_eq(offsetof(kcom_guid_t, data3), 6);
	ck_assert_uint_eq(offsetof(kcom_guid_t, data4), 8);

	ck_assert_uint_eq(guid_sample.data1, 0x12345678u);
	ck_assert_uint_eq(guid_sample.data2, 0x9abcu);
	ck_assert_uint_eq(guid_sample.data3, 0xdef0u);
	static const uint8_t d4[8] = { 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78 };
	ck_assert_mem_eq(guid_sample.data4, d4, sizeof(d4));
}
END_TEST

START_TEST(test_guid_iunknown_iid)
{
	static const uint8_t d4[8] = { 0xC0, 0, 0, 0, 0, 0, 0, 0x46 };
	ck_assert_uint_eq(kcom_iunknown_iid.data1, 0);
	ck_assert_uint_eq(kcom_iunknown_iid.data2, 0);
	ck_assert_uint_eq(kcom_iunknown_iid.data3, 0);
	ck_assert_mem_eq(kcom_iunknown_iid.data4, d4, sizeof(d4));

	const kcom_iid_t macro = KCOM_IUNKNOWN_IID;
	ck_assert_mem_eq(&macro, &kcom_iunknown_iid, sizeof(macro));
}
END_TEST

/* Every IID and CLSID kcom defines matches its macro and differs from all the others. */
START_TEST(test_guid_core_ids_distinct)
{
	static const kcom_guid_t macros[] = {
		KCOM_IUNKNOWN_IID, KCOM_ABSIO_IID, KCOM_BUFIO_IID, KCOM_BUFVEC_IID, KCOM_REGISTRY_IID,
		KCOM_MEMBUF_CLSID,
	};
	const kcom_guid_t *const ids[] = {
		&kcom_iunknown_iid, &kcom_absio_iid, &kcom_bufio_iid, &kcom_bufvec_iid, &kcom_registry_iid,
		&kcom_membuf_clsid,
	};
	const size_t n = sizeof(ids) / sizeof(ids[0]);
	ck_assert_uint_eq(n, sizeof(macros) / sizeof(macros[0]));
	for (size_t i = 0; i < n; i++) {
		ck_assert_mem_eq(ids[i], &macros[i], sizeof(kcom_guid_t));
		for (size_t j = 0; j < n; j++)
			ck_assert_int_eq(kcom_guid_equal(ids[i], ids[j]), i == j);
	}
}
END_TEST

/* ---- equality ---- */

START_TEST(test_guid_equal)
{
	kcom_guid_t copy = guid_sample;
	ck_assert_int_eq(kcom_guid_equal(&guid_sample, &guid_sample), 1);
	ck_assert_int_eq(kcom_guid_equal(&guid_sample, &copy), 1);
	ck_assert_int_eq(kcom_guid_equal(&copy, &guid_sample), 1);

	/* One flipped bit anywhere in the 16 bytes makes them differ, both ways round. */
	for (size_t byte = 0; byte < sizeof(kcom_guid_t); byte++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			kcom_guid_t other = guid_sample;
			((uint8_t *)&other)[byte] ^= (uint8_t)(1u << bit);
			ck_assert_msg(!kcom_guid_equal(&guid_sample, &other), "byte %zu bit %u", byte, bit);
			ck_assert_msg(!kcom_guid_equal(&other, &guid_sample), "byte %zu bit %u", byte, bit);
		}
	}
}
END_TEST

/* ---- format ---- */

START_TEST(test_guid_format_iunknown)
{
	char buf[KCOM_GUID_STRLEN];
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(kcom_guid_format(&kcom_iunknown_iid, buf, sizeof(buf)), KCOM_OK);
	ck_assert_str_eq(buf, "{00000000-0000-0000-C000-000000000046}");
	ck_assert_uint_eq(strlen(buf), KCOM_GUID_STRLEN - 1);
}
END_TEST

START_TEST(test_guid_format_fields_upper_case)
{
	char buf[64];
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(kcom_guid_format(&guid_sample, buf, sizeof(buf)), KCOM_OK);
	ck_assert_str_eq(buf, GUID_SAMPLE_TEXT);
	/* Nothing written past the NUL. */
	for (size_t i = KCOM_GUID_STRLEN; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 'x');

	ck_assert_int_eq(kcom_guid_format(&kcom_membuf_clsid, buf, sizeof(buf)), KCOM_OK);
	ck_assert_str_eq(buf, "{6FE2446E-C588-42C1-864B-E3C381FBDBB3}");

	static const kcom_guid_t ones =
		KCOM_GUID(0xffffffff, 0xffff, 0xffff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	ck_assert_int_eq(kcom_guid_format(&ones, buf, sizeof(buf)), KCOM_OK);
	ck_assert_str_eq(buf, "{FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF}");
}
END_TEST

START_TEST(test_guid_format_too_small)
{
	char buf[KCOM_GUID_STRLEN];
	char untouched[KCOM_GUID_STRLEN];
	memset(untouched, 'x', sizeof(untouched));
	for (size_t len = 0; len < KCOM_GUID_STRLEN; len++) {
		memset(buf, 'x', sizeof(buf));
		ck_assert_int_eq(kcom_guid_format(&guid_sample, buf, len), KCOM_E_TOOSMALL);
		ck_assert_mem_eq(buf, untouched, sizeof(buf));
	}
	/* Exactly enough is enough. */
	ck_assert_int_eq(kcom_guid_format(&guid_sample, buf, KCOM_GUID_STRLEN), KCOM_OK);
	ck_assert_str_eq(buf, GUID_SAMPLE_TEXT);
}
END_TEST

START_TEST(test_guid_format_null)
{
	char buf[KCOM_GUID_STRLEN];
	char untouched[KCOM_GUID_STRLEN];
	memset(untouched, 'x', sizeof(untouched));
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(kcom_guid_format(NULL, buf, sizeof(buf)), KCOM_E_POINTER);
	ck_assert_mem_eq(buf, untouched, sizeof(buf));
	ck_assert_int_eq(kcom_guid_format(&guid_sample, NULL, sizeof(buf)), KCOM_E_POINTER);
	ck_assert_int_eq(kcom_guid_format(NULL, NULL, 0), KCOM_E_POINTER);
}
END_TEST

/* ---- parse ---- */

START_TEST(test_guid_parse_round_trip)
{
	static const kcom_guid_t guids[] = {
		KCOM_IUNKNOWN_IID,
		KCOM_REGISTRY_IID,
		KCOM_MEMBUF_CLSID,
		KCOM_GUID(0x12345678, 0x9abc, 0xdef0, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78),
		KCOM_GUID(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		KCOM_GUID(0xffffffff, 0xffff, 0xffff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		KCOM_GUID(0x80000001, 0x8001, 0x0180, 0x01, 0x80, 0xa5, 0x5a, 0x00, 0xff, 0x10, 0x01),
	};
	for (size_t i = 0; i < sizeof(guids) / sizeof(guids[0]); i++) {
		char buf[KCOM_GUID_STRLEN];
		kcom_guid_t back;
		ck_assert_int_eq(kcom_guid_format(&guids[i], buf, sizeof(buf)), KCOM_OK);
		guid_fill_aa(&back);
		ck_assert_int_eq(kcom_guid_parse(buf, &back), KCOM_OK);
		ck_assert_msg(kcom_guid_equal(&back, &guids[i]), "round trip of %s", buf);
		ck_assert_mem_eq(&back, &guids[i], sizeof(back));
	}
}
END_TEST

START_TEST(test_guid_parse_exact_fields)
{
	kcom_guid_t g;
	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse(GUID_SAMPLE_TEXT, &g), KCOM_OK);
	ck_assert_uint_eq(g.data1, 0x12345678u);
	ck_assert_uint_eq(g.data2, 0x9abcu);
	ck_assert_uint_eq(g.data3, 0xdef0u);
	ck_assert_mem_eq(g.data4, guid_sample.data4, sizeof(g.data4));

	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse("{00000000-0000-0000-C000-000000000046}", &g), KCOM_OK);
	ck_assert(kcom_guid_equal(&g, &kcom_iunknown_iid));
}
END_TEST

START_TEST(test_guid_parse_lower_and_mixed_case)
{
	kcom_guid_t g;
	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse("{6fe2446e-c588-42c1-864b-e3c381fbdbb3}", &g), KCOM_OK);
	ck_assert(kcom_guid_equal(&g, &kcom_membuf_clsid));

	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse("{6Fe2446E-c588-42C1-864b-E3c381FbDbB3}", &g), KCOM_OK);
	ck_assert(kcom_guid_equal(&g, &kcom_membuf_clsid));

	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse("{12345678-9abc-def0-0f1e-2d3c4b5a6978}", &g), KCOM_OK);
	ck_assert(kcom_guid_equal(&g, &guid_sample));

	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse("{ffffffff-ffff-ffff-ffff-ffffffffffff}", &g), KCOM_OK);
	ck_assert_uint_eq(g.data1, 0xffffffffu);
	ck_assert_uint_eq(g.data2, 0xffffu);
	ck_assert_uint_eq(g.data3, 0xffffu);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(g.data4[i], 0xff);
}
END_TEST

/* Malformed texts; `len` counts up to the end of the literal, so embedded NULs are kept. */
struct guid_bad {
	const char *text;
	size_t len;
	const char *why;
};
#define GUID_BAD(s, why) { s, sizeof(s) - 1, why }

static const struct guid_bad guid_bad_texts[] = {
	GUID_BAD("", "empty string"),
	GUID_BAD("{}", "braces only"),
	GUID_BAD("00000000-0000-0000-C000-000000000046", "no braces"),
	GUID_BAD("00000000-0000-0000-C000-000000000046}", "missing opening brace"),
	GUID_BAD("{00000000-0000-0000-C000-000000000046", "missing closing brace"),
	GUID_BAD(" 00000000-0000-0000-C000-000000000046 ", "spaces instead of braces"),
	GUID_BAD("(00000000-0000-0000-C000-000000000046)", "parentheses instead of braces"),
	GUID_BAD("}00000000-0000-0000-C000-000000000046{", "braces swapped"),
	GUID_BAD("{0000000-00000-0000-C000-000000000046}", "first dash one early"),
	GUID_BAD("{000000000-000-0000-C000-000000000046}", "first dash one late"),
	GUID_BAD("{00000000-000-00000-C000-000000000046}", "second dash one early"),
	GUID_BAD("{00000000-0000-000-0C000-000000000046}", "third dash one early"),
	GUID_BAD("{00000000-0000-0000-C0000-00000000046}", "fourth dash one late"),
	GUID_BAD("{00000000-0000-0000-C00-0000000000046}", "fourth dash one early"),
	GUID_BAD("{00000000-0000-0000-C000000000000046}", "fourth dash missing"),
	GUID_BAD("{00000000-0000-0000-C000-0000-0000046}", "dash instead of a digit"),
	GUID_BAD("{00000000_0000-0000-C000-000000000046}", "underscore instead of dash"),
	GUID_BAD("{00000000:0000:0000:C000:000000000046}", "colons instead of dashes"),
	GUID_BAD("{------------------------------------}", "all dashes"),
	GUID_BAD("{0000000G-0000-0000-C000-000000000046}", "non-hex G in data1"),
	GUID_BAD("{00000000-00g0-0000-C000-000000000046}", "non-hex g in data2"),
	GUID_BAD("{00000000-0000-00Z0-C000-000000000046}", "non-hex Z in data3"),
	GUID_BAD("{00000000-0000-0000-C0x0-000000000046}", "non-hex x in data4"),
	GUID_BAD("{00000000-0000-0000-C000-00000000004g}", "non-hex g in last digit"),
	GUID_BAD("{00000000-0000-0000-C000-0000000000 6}", "space instead of digit"),
	GUID_BAD("{0x000000-0000-0000-C000-000000000046}", "0x prefix"),
	GUID_BAD("{+0000000-0000-0000-C000-000000000046}", "sign"),
	GUID_BAD("{ 0000000-0000-0000-C000-000000000046}", "leading blank in a field"),
	GUID_BAD("{00000000-0000-0000-C000-00000000004\xc3}", "non-ASCII byte"),
	GUID_BAD("{00000000-0000-0000-C000-00000000004}", "too short by one digit"),
	GUID_BAD("{0000000-0000-0000-C000-000000000046}", "data1 too short"),
	GUID_BAD("{00000000-0000-0000-C000-0000000000460}", "too long by one digit"),
	GUID_BAD("{000000000-0000-0000-C000-000000000046}", "data1 too long"),
	GUID_BAD("{00000000-0000-0000-C000-000000000046}x", "trailing garbage"),
	GUID_BAD("{00000000-0000-0000-C000-000000000046} ", "trailing space"),
	GUID_BAD("{00000000-0000-0000-C000-000000000046}\n", "trailing newline"),
	GUID_BAD("{00000000-0000-0000-C000-000000000046}}", "doubled closing brace"),
	GUID_BAD(" {00000000-0000-0000-C000-000000000046}", "leading space"),
	GUID_BAD("{{00000000-0000-0000-C000-000000000046}", "doubled opening brace"),
	GUID_BAD("{12345678-9ABC-DEF0-0F1E-2D3C4B5A6978", "valid prefix, no closing brace"),
	GUID_BAD("{12345678-9ABC-DEF0-0F1E-2D3C4B5A6978)", "every digit valid, wrong closing brace"),
	GUID_BAD("{12345678-9ABC-DEF0-0F1E-2D3C4B5A697\0}", "embedded NUL before the last digit"),
	GUID_BAD("{12345678-9ABC\0-DEF0-0F1E-2D3C4B5A6978}", "embedded NUL in the middle"),
	GUID_BAD("\0{12345678-9ABC-DEF0-0F1E-2D3C4B5A6978}", "embedded NUL first"),
};

START_TEST(test_guid_parse_malformed)
{
	const struct guid_bad *bad = &guid_bad_texts[_i];
	/* An exact-size heap copy: reading past the NUL is a valgrind error. */
	char *text = malloc(bad->len + 1);
	ck_assert_ptr_nonnull(text);
	memcpy(text, bad->text, bad->len + 1);

	kcom_guid_t g;
	guid_fill_aa(&g);
	kcom_error_t err = kcom_guid_parse(text, &g);
	free(text);
	ck_assert_msg(err == KCOM_E_SYNTAX, "case %d (%s): got 0x%08x, want KCOM_E_SYNTAX", _i, bad->why,
	              (unsigned)err);
	guid_assert_zero(&g);
}
END_TEST

START_TEST(test_guid_parse_null)
{
	kcom_guid_t g;
	guid_fill_aa(&g);
	ck_assert_int_eq(kcom_guid_parse(NULL, &g), KCOM_E_POINTER);
	guid_assert_zero(&g);
	ck_assert_int_eq(kcom_guid_parse("{00000000-0000-0000-C000-000000000046}", NULL), KCOM_E_POINTER);
	ck_assert_int_eq(kcom_guid_parse(NULL, NULL), KCOM_E_POINTER);
}
END_TEST

/* A failure after a success clears what the success wrote. */
START_TEST(test_guid_parse_failure_clears_previous)
{
	kcom_guid_t g;
	ck_assert_int_eq(kcom_guid_parse(GUID_SAMPLE_TEXT, &g), KCOM_OK);
	ck_assert(kcom_guid_equal(&g, &guid_sample));
	ck_assert_int_eq(kcom_guid_parse("{12345678-9ABC-DEF0-0F1E-2D3C4B5A697Q}", &g), KCOM_E_SYNTAX);
	guid_assert_zero(&g);
}
END_TEST

Suite *guid_suite(void)
{
	Suite *s = suite_create("guid");

	TCase *tc = tcase_create("layout");
	tcase_add_test(tc, test_guid_initializer_layout);
	tcase_add_test(tc, test_guid_iunknown_iid);
	tcase_add_test(tc, test_guid_core_ids_distinct);
	tcase_add_test(tc, test_guid_equal);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, test_guid_format_iunknown);
	tcase_add_test(tc, test_guid_format_fields_upper_case);
	tcase_add_test(tc, test_guid_format_too_small);
	tcase_add_test(tc, test_guid_format_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_guid_parse_round_trip);
	tcase_add_test(tc, test_guid_parse_exact_fields);
	tcase_add_test(tc, test_guid_parse_lower_and_mixed_case);
	tcase_add_loop_test(tc, test_guid_parse_malformed, 0,
	                    (int)(sizeof(guid_bad_texts) / sizeof(guid_bad_texts[0])));
	tcase_add_test(tc, test_guid_parse_null);
	tcase_add_test(tc, test_guid_parse_failure_clears_previous);
	suite_add_tcase(s, tc);

	return s;
}
