/* Unit tests for the JSON value model, parser and serializer (protocol/src/json-*.c). */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include "protocol-test.h"

/* Parse text[0..len) with limits and return the status; err_offset (may be NULL) gets the offset. */
static int parse_n(const char *text, size_t len, const SpJsonLimits *limits, size_t *err_offset)
{
    SpJson *v = NULL;
    SpJsonError err;
    int r = sp_json_parse(text, len, limits, &v, &err);

    assert_int_equal(err.status, r);
    if (r == SP_OK)
        assert_non_null(v);
    else
        assert_null(v); /* *ret untouched on failure */
    sp_json_free(v);
    if (err_offset)
        *err_offset = err.offset;
    return r;
}

static int parse_status(const char *text) { return parse_n(text, strlen(text), NULL, NULL); }

static void test_parse_accepts_every_scalar_type(void **state)
{
    SpJson *v;

    v = parse_ok("null");
    assert_int_equal(sp_json_type(v), SP_JSON_NULL);
    sp_json_free(v);
    v = parse_ok(" true ");
    assert_true(sp_json_get_bool(v));
    sp_json_free(v);
    v = parse_ok("false");
    assert_int_equal(sp_json_type(v), SP_JSON_BOOL);
    assert_false(sp_json_get_bool(v));
    sp_json_free(v);
    v = parse_ok("-42");
    assert_int_equal(sp_json_type(v), SP_JSON_INT);
    assert_int_equal(sp_json_get_int(v), -42);
    sp_json_free(v);
    v = parse_ok("2.5e1");
    assert_int_equal(sp_json_type(v), SP_JSON_DOUBLE);
    assert_true(sp_json_get_double(v) == 25.0);
    sp_json_free(v);
    v = parse_ok("\t\r\n\"hi\"\n");
    assert_string_equal(sp_json_get_string(v), "hi");
    assert_int_equal(sp_json_get_string_len(v), 2);
    sp_json_free(v);
}

static void test_parse_keeps_member_order_and_nesting(void **state)
{
    SpJson *v = parse_ok("{\"z\":1,\"a\":[true,{\"k\":null}],\"m\":{}}");
    const SpJson *member = NULL;

    assert_int_equal(sp_json_object_len(v), 3);
    assert_string_equal(sp_json_object_member(v, 0, &member), "z");
    assert_int_equal(sp_json_get_int(member), 1);
    assert_string_equal(sp_json_object_member(v, 1, NULL), "a");
    assert_string_equal(sp_json_object_member(v, 2, &member), "m");
    assert_int_equal(sp_json_type(member), SP_JSON_OBJECT);
    assert_null(sp_json_object_member(v, 3, &member));
    assert_int_equal(sp_json_array_len(sp_json_object_get(v, "a")), 2);
    assert_int_equal(sp_json_type(sp_json_object_get(sp_json_array_get(sp_json_object_get(v, "a"), 1),
                                                     "k")),
                     SP_JSON_NULL);
    assert_json_text(v, "{\"z\":1,\"a\":[true,{\"k\":null}],\"m\":{}}");
}

static void test_parse_int64_limits_exact_and_beyond_is_range(void **state)
{
    SpJson *v = parse_ok("9223372036854775807");
    assert_true(sp_json_get_int(v) == INT64_MAX);
    sp_json_free(v);
    v = parse_ok("-9223372036854775808");
    assert_true(sp_json_get_int(v) == INT64_MIN);
    sp_json_free(v);
    assert_int_equal(parse_status("9223372036854775808"), SP_E_RANGE);
    assert_int_equal(parse_status("-9223372036854775809"), SP_E_RANGE);
    assert_int_equal(parse_status("[1,99999999999999999999999999999999999999]"), SP_E_RANGE);
}

static void test_parse_empty_key_and_empty_string(void **state)
{
    SpJson *v = parse_ok("{\"\":\"\"}");
    const SpJson *member = NULL;

    assert_string_equal(sp_json_object_member(v, 0, &member), "");
    assert_string_equal(sp_json_get_string(member), "");
    assert_int_equal(parse_status("{\"\":1,\"\":2}"), SP_E_DUPLICATE_KEY);
    assert_json_text(v, "{\"\":\"\"}");
}

static void test_parse_huge_numbers_are_range_not_rounded(void **state)
{
    char big[2000];
    size_t off = 0;

    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse_n(big, strlen(big), NULL, &off), SP_E_RANGE);
    assert_int_equal(off, 0);
    assert_int_equal(parse_status("1e400"), SP_E_RANGE);
    assert_int_equal(parse_status("-1.5e99999"), SP_E_RANGE);
    /* A long but finite double (over the stack buffer) parses. */
    big[0] = '0';
    big[1] = '.';
    assert_int_equal(parse_status(big), SP_OK);
}

static void test_parse_tiny_double_underflows_to_zero(void **state)
{
    SpJson *v = parse_ok("1e-400");
    assert_int_equal(sp_json_type(v), SP_JSON_DOUBLE);
    assert_true(sp_json_get_double(v) == 0.0);
    sp_json_free(v);
}

static void test_parse_number_grammar_is_strict(void **state)
{
    assert_int_equal(parse_status("01"), SP_E_SYNTAX);
    assert_int_equal(parse_status("-01"), SP_E_SYNTAX);
    assert_int_equal(parse_status("+1"), SP_E_SYNTAX);
    assert_int_equal(parse_status(".5"), SP_E_SYNTAX);
    assert_int_equal(parse_status("1.e5"), SP_E_SYNTAX);
    assert_int_equal(parse_status("1.5e+x"), SP_E_SYNTAX);
    assert_int_equal(parse_status("-a"), SP_E_SYNTAX);
    assert_int_equal(parse_status("0x10"), SP_E_SYNTAX);
    assert_int_equal(parse_status("NaN"), SP_E_SYNTAX);
    assert_int_equal(parse_status("-Infinity"), SP_E_SYNTAX);
    assert_int_equal(parse_status("-"), SP_E_TRUNCATED);
    assert_int_equal(parse_status("1."), SP_E_TRUNCATED);
    assert_int_equal(parse_status("1e"), SP_E_TRUNCATED);
    assert_int_equal(parse_status("1E-"), SP_E_TRUNCATED);
    assert_int_equal(parse_status("-0"), SP_OK);
    assert_int_equal(parse_status("0.0e-0"), SP_OK);
}

static void test_parse_decodes_every_escape(void **state)
{
    SpJson *v = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\"");
    assert_string_equal(sp_json_get_string(v), "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac");
    sp_json_free(v);
}

static void test_parse_surrogate_pair_becomes_one_code_point(void **state)
{
    SpJson *v = parse_ok("\"\\ud83d\\ude00\"");
    assert_string_equal(sp_json_get_string(v), "\xf0\x9f\x98\x80");
    sp_json_free(v);
    v = parse_ok("\"\\uDBFF\\uDFFF\"");
    assert_string_equal(sp_json_get_string(v), "\xf4\x8f\xbf\xbf");
    sp_json_free(v);
}

static void test_parse_lone_surrogate_escapes_are_utf8_errors(void **state)
{
    size_t off = 0;

    assert_int_equal(parse_n("\"ab\\ud800\"", 10, NULL, &off), SP_E_UTF8);
    assert_int_equal(off, 3);
    assert_int_equal(parse_status("\"\\udc00\""), SP_E_UTF8);
    assert_int_equal(parse_status("\"\\ud800\\u0041\""), SP_E_UTF8);
    assert_int_equal(parse_status("\"\\ud800x\""), SP_E_UTF8);
    assert_int_equal(parse_status("\"\\ud800\\ud800\""), SP_E_UTF8);
    assert_int_equal(parse_status("\"\\ud800\\n\""), SP_E_UTF8);
    assert_int_equal(parse_status("\"\\ud800"), SP_E_TRUNCATED);
    assert_int_equal(parse_status("\"\\ud800\\"), SP_E_TRUNCATED);
    assert_int_equal(parse_status("\"\\ud800\\udc"), SP_E_TRUNCATED);
}

static void test_parse_escaped_nul_is_kept_with_explicit_length(void **state)
{
    SpJson *v = parse_ok("\"a\\u0000b\"");
    assert_int_equal(sp_json_get_string_len(v), 3);
    assert_memory_equal(sp_json_get_string(v), "a\0b", 3);
    assert_json_text(v, "\"a\\u0000b\"");
}

static void test_parse_bad_escapes_and_raw_controls_are_escape_errors(void **state)
{
    size_t off = 0;

    assert_int_equal(parse_status("\"\\x\""), SP_E_ESCAPE);
    assert_int_equal(parse_status("\"\\U0041\""), SP_E_ESCAPE);
    assert_int_equal(parse_n("\"\\u12G4\"", 8, NULL, &off), SP_E_ESCAPE);
    assert_int_equal(off, 1);
    assert_int_equal(parse_status("\"tab\there\""), SP_E_ESCAPE);
    assert_int_equal(parse_status("\"line\nbreak\""), SP_E_ESCAPE);
    assert_int_equal(parse_status("\"\x1f\""), SP_E_ESCAPE);
    assert_int_equal(parse_status("\"\\u12"), SP_E_TRUNCATED);
    assert_int_equal(parse_status("\"\\"), SP_E_TRUNCATED);
}

static void test_parse_invalid_utf8_is_rejected_with_offset(void **state)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        { "\"\xc0\x80\"", "overlong NUL" },
        { "\"\xc1\xbf\"", "overlong 2-byte" },
        { "\"\xe0\x80\xaf\"", "overlong 3-byte" },
        { "\"\xf0\x80\x80\xaf\"", "overlong 4-byte" },
        { "\"\xed\xa0\x80\"", "UTF-8 encoded high surrogate" },
        { "\"\xed\xbf\xbf\"", "UTF-8 encoded low surrogate" },
        { "\"\xf4\x90\x80\x80\"", "above U+10FFFF" },
        { "\"\xf5\x80\x80\x80\"", "F5 lead byte" },
        { "\"\xc3\x28\"", "bad continuation" },
        { "\"\xe2\x82\x28\"", "bad third byte" },
        { "\"\x80\"", "lone continuation byte" },
        { "\"\xfe\"", "FE byte" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t off = 99;
        int r = parse_n(cases[i].text, strlen(cases[i].text), NULL, &off);
        if (r != SP_E_UTF8 || off != 1)
            fail_msg("%s: status %d offset %zu", cases[i].why, r, off);
    }
    /* A multi-byte sequence cut by the end of the input is truncation. */
    assert_int_equal(parse_status("\"\xe2\x82"), SP_E_TRUNCATED);
    /* Outside a string, a non-ASCII byte is simply not JSON. */
    assert_int_equal(parse_status("\xc3\xa9"), SP_E_SYNTAX);
}

static void test_parse_valid_utf8_passes_through(void **state)
{
    SpJson *v = parse_ok("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf\"");
    assert_int_equal(sp_json_get_string_len(v), 16);
    sp_json_free(v);
}

static void test_parse_nul_byte_is_nul_error_at_its_offset(void **state)
{
    size_t off = 0;

    assert_int_equal(parse_n("{\"a\":\"x\0y\"}", 11, NULL, &off), SP_E_NUL);
    assert_int_equal(off, 7);
    assert_int_equal(parse_n("{}\0", 3, NULL, &off), SP_E_NUL);
    assert_int_equal(off, 2);
    assert_int_equal(parse_n("\0", 1, NULL, &off), SP_E_NUL);
}

static void test_parse_every_proper_prefix_is_truncated(void **state)
{
    const char *doc = "{\"a\":[1,-2.5e3,\"x\\u00e9\\ud83d\\ude00\xc3\xa9\",true,false,null,"
                      "{\"b\":{}}],\"c\":[]}";
    size_t len = strlen(doc);

    assert_int_equal(parse_n(doc, len, NULL, NULL), SP_OK);
    for (size_t cut = 0; cut < len; cut++) {
        size_t off = 0;
        int r = parse_n(doc, cut, NULL, &off);
        if (r != SP_E_TRUNCATED || off != cut)
            fail_msg("prefix of %zu bytes: status %d offset %zu", cut, r, off);
    }
}

static void test_parse_empty_or_blank_input_is_truncated(void **state)
{
    assert_int_equal(parse_n("", 0, NULL, NULL), SP_E_TRUNCATED);
    assert_int_equal(parse_n(NULL, 0, NULL, NULL), SP_E_TRUNCATED);
    assert_int_equal(parse_status(" \n\t"), SP_E_TRUNCATED);
}

static void test_parse_trailing_data_is_syntax_error(void **state)
{
    size_t off = 0;

    assert_int_equal(parse_n("{} x", 4, NULL, &off), SP_E_SYNTAX);
    assert_int_equal(off, 3);
    assert_int_equal(parse_status("1 2"), SP_E_SYNTAX);
    assert_int_equal(parse_status("{}}"), SP_E_SYNTAX);
    assert_int_equal(parse_status("{}{}"), SP_E_SYNTAX);
    assert_int_equal(parse_status("truex"), SP_E_SYNTAX);
    assert_int_equal(parse_status("  {}  \r\n"), SP_OK);
}

static void test_parse_structural_errors_are_syntax(void **state)
{
    static const char *const bad[] = {
        "[1,]", "[,1]", "[1 2]", "{\"a\" 1}", "{\"a\":1,}", "{1:2}", "{,}", "{\"a\":1 \"b\":2}",
        "]", "}", ":", "'a'", "True", "nulL", "fals", "[1;2]", "{\"a\"::1}", "[\"a\":1]",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse_status(bad[i]);
        int want = strcmp(bad[i], "fals") == 0 ? SP_E_TRUNCATED : SP_E_SYNTAX;
        if (r != want)
            fail_msg("%s: status %d, want %d", bad[i], r, want);
    }
}

static char *nested(size_t depth, char open, char close)
{
    char *s = malloc(2 * depth + 1);
    assert_non_null(s);
    memset(s, open, depth);
    memset(s + depth, close, depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_parse_depth_limit_is_exact(void **state)
{
    char *ok = nested(SP_JSON_DEFAULT_MAX_DEPTH, '[', ']');
    char *deep = nested(SP_JSON_DEFAULT_MAX_DEPTH + 1, '[', ']');
    size_t off = 0;

    assert_int_equal(parse_status(ok), SP_OK);
    assert_int_equal(parse_n(deep, strlen(deep), NULL, &off), SP_E_DEPTH);
    assert_int_equal(off, SP_JSON_DEFAULT_MAX_DEPTH);
    free(ok);
    free(deep);
}

static void test_parse_depth_bomb_of_100000_brackets_is_depth_error(void **state)
{
    size_t n = 100000;
    char *bomb = malloc(n);
    SpJsonLimits big = { .max_size = 2 * n };

    assert_non_null(bomb);
    memset(bomb, '[', n);
    assert_int_equal(parse_n(bomb, n, &big, NULL), SP_E_DEPTH);
    memset(bomb, '{', n);
    assert_int_equal(parse_n(bomb, n, &big, NULL), SP_E_SYNTAX); /* '{' needs a key first */
    for (size_t i = 0; i + 5 <= n; i += 5)
        memcpy(bomb + i, "{\"a\":", 5);
    assert_int_equal(parse_n(bomb, n, &big, NULL), SP_E_DEPTH);
    /* Even a caller asking for an absurd depth gets a bounded recursion. */
    big.max_depth = 1000000;
    memset(bomb, '[', n);
    assert_int_equal(parse_n(bomb, n, &big, NULL), SP_E_DEPTH);
    free(bomb);
}

static void test_parse_custom_depth_limit(void **state)
{
    SpJsonLimits two = { .max_depth = 2 };
    assert_int_equal(parse_n("[[1]]", 5, &two, NULL), SP_OK);
    assert_int_equal(parse_n("[{\"a\":[]}]", 10, &two, NULL), SP_E_DEPTH);
}

static void test_parse_size_limit_is_exact(void **state)
{
    size_t n = SP_JSON_DEFAULT_MAX_SIZE;
    char *text = malloc(n + 1);
    SpJsonLimits small = { .max_size = 4 };
    size_t off = 0;

    assert_non_null(text);
    memset(text, ' ', n + 1);
    text[0] = '1';
    assert_int_equal(parse_n(text, n, NULL, NULL), SP_OK);
    assert_int_equal(parse_n(text, n + 1, NULL, &off), SP_E_TOO_LARGE);
    assert_int_equal(off, n);
    assert_int_equal(parse_n("[11]", 4, &small, NULL), SP_OK);
    assert_int_equal(parse_n("[111]", 5, &small, NULL), SP_E_TOO_LARGE);
    free(text);
}

static void test_parse_duplicate_key_is_rejected_at_second_key(void **state)
{
    size_t off = 0;

    assert_int_equal(parse_n("{\"a\":1,\"a\":2}", 13, NULL, &off), SP_E_DUPLICATE_KEY);
    assert_int_equal(off, 7);
    /* Same key spelled with an escape is the same key. */
    assert_int_equal(parse_status("{\"a\":1,\"\\u0061\":2}"), SP_E_DUPLICATE_KEY);
    /* Keys that differ only after an escaped NUL are different keys. */
    assert_int_equal(parse_status("{\"a\":1,\"a\\u0000\":2}"), SP_OK);
    /* Same key in different objects is fine. */
    assert_int_equal(parse_status("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"), SP_OK);
}

static void test_parse_duplicate_key_is_found_in_large_objects(void **state)
{
    char *text = malloc(64 * 1024);
    size_t len = 0;

    assert_non_null(text);
    text[len++] = '{';
    for (int i = 0; i < 3000; i++)
        len += (size_t)sprintf(text + len, "\"k%d\":%d,", i, i);
    len += (size_t)sprintf(text + len, "\"k1234\":0}");
    assert_int_equal(parse_n(text, len, NULL, NULL), SP_E_DUPLICATE_KEY);
    memcpy(text + len - 9, "x1234", 5); /* rename the duplicate */
    {
        SpJson *v = NULL;
        assert_int_equal(sp_json_parse(text, len, NULL, &v, NULL), SP_OK);
        assert_int_equal(sp_json_object_len(v), 3001);
        assert_int_equal(sp_json_object_get_int(v, "k2999", -1), 2999);
        assert_int_equal(sp_json_object_get_int(v, "x1234", -1), 0);
        assert_null(sp_json_object_get(v, "k3000"));
        sp_json_free(v);
    }
    free(text);
}

static void test_parse_error_message_names_problem_and_offset(void **state)
{
    SpJson *v = NULL;
    SpJsonError err;

    assert_int_equal(sp_json_parse("[\"\xff\"]", 4, NULL, &v, &err), SP_E_UTF8);
    assert_string_equal(err.message, "invalid UTF-8 at byte 2");
    assert_int_equal(sp_json_parse("[]", 2, NULL, &v, &err), SP_OK);
    assert_int_equal(err.status, SP_OK);
    sp_json_free(v);
}

static void test_parse_rejects_bad_arguments(void **state)
{
    SpJson *v = NULL;
    assert_int_equal(sp_json_parse(NULL, 3, NULL, &v, NULL), SP_E_INVALID);
    assert_int_equal(sp_json_parse("1", 1, NULL, NULL, NULL), SP_E_INVALID);
}

static void test_serialize_is_compact_and_escapes_strings(void **state)
{
    SpJson *o = sp_json_new_object();

    assert_int_equal(sp_json_object_set_string(o, "q", "a\"b\\c/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9"), SP_OK);
    assert_json_text(o, "{\"q\":\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\"}");
}

static void test_serialize_replaces_invalid_utf8_with_replacement_char(void **state)
{
    SpJson *s = sp_json_new_string_len("a\xff" "b\xc3", 4);
    assert_json_text(s, "\"a\\ufffdb\\ufffd\"");
}

static void test_serialize_doubles_always_reparse_as_doubles(void **state)
{
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        { 1.0, "1.0" }, { 0.1, "0.1" }, { -2.5, "-2.5" }, { 1e300, "1e+300" },
        { -0.0, "-0.0" }, { 123456789012345678.0, "1.2345678901234568e+17" },
        { 5e-324, "4.94065645841247e-324" }, { 1e21, "1e+21" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SpJson *v = sp_json_new_double(cases[i].d), *back;
        char *s = sp_json_serialize(v, NULL);
        assert_string_equal(s, cases[i].text);
        back = parse_ok(s);
        assert_int_equal(sp_json_type(back), SP_JSON_DOUBLE);
        assert_true(sp_json_equal(v, back));
        assert_true(signbit(sp_json_get_double(back)) == signbit(cases[i].d));
        free(s);
        sp_json_free(v);
        sp_json_free(back);
    }
}

static void test_serialize_non_finite_doubles_as_null(void **state)
{
    SpJson *a = sp_json_new_array();
    sp_json_array_append(a, sp_json_new_double(NAN));
    sp_json_array_append(a, sp_json_new_double(INFINITY));
    sp_json_array_append(a, sp_json_new_double(-INFINITY));
    assert_json_text(a, "[null,null,null]");
}

static void test_serialize_int64_extremes(void **state)
{
    SpJson *a = sp_json_new_array();
    sp_json_array_append(a, sp_json_new_int(INT64_MIN));
    sp_json_array_append(a, sp_json_new_int(INT64_MAX));
    sp_json_array_append(a, sp_json_new_int(0));
    assert_json_text(a, "[-9223372036854775808,9223372036854775807,0]");
}

static void test_serialize_then_parse_round_trips(void **state)
{
    const char *doc = "{\"s\":\"\\u0000\\u001f\xf0\x9f\x98\x80\",\"i\":-7,\"d\":0.30000000000000004,"
                      "\"a\":[[],{},null,true,false,1e-300],\"e\":\"\"}";
    SpJson *v = parse_ok(doc), *back;
    char *s = sp_json_serialize(v, NULL);

    back = parse_ok(s);
    assert_true(sp_json_equal(v, back));
    free(s);
    sp_json_free(v);
    sp_json_free(back);
}

static void test_doubles_ignore_a_comma_decimal_locale(void **state)
{
    static const char *const locales[] = { "de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "fr_FR" };
    char old[256];
    bool found = false;

    snprintf(old, sizeof(old), "%s", setlocale(LC_NUMERIC, NULL));

    for (size_t i = 0; i < 4 && !found; i++)
        found = setlocale(LC_NUMERIC, locales[i]) != NULL;
    if (!found)
        skip(); /* no locale with a ',' decimal point installed */
    {
        SpJson *v = parse_ok("2.5");
        assert_true(sp_json_get_double(v) == 2.5);
        assert_json_text(v, "2.5");
    }
    setlocale(LC_NUMERIC, old);
}

static void test_value_getters_return_fallbacks_for_other_types(void **state)
{
    SpJson *s = sp_json_new_string("x");

    assert_false(sp_json_get_bool(s));
    assert_int_equal(sp_json_get_int(s), 0);
    assert_true(sp_json_get_double(s) == 0.0);
    assert_int_equal(sp_json_array_len(s), 0);
    assert_null(sp_json_array_get(s, 0));
    assert_int_equal(sp_json_object_len(s), 0);
    assert_null(sp_json_object_get(s, "x"));
    assert_null(sp_json_object_member(s, 0, NULL));
    assert_null(sp_json_object_take(s, "x"));
    assert_null(sp_json_get_string(NULL));
    assert_int_equal(sp_json_get_string_len(NULL), 0);
    assert_int_equal(sp_json_type(NULL), SP_JSON_NULL);
    assert_true(sp_json_get_double(NULL) == 0.0);
    sp_json_free(s);
    s = sp_json_new_int(3);
    assert_true(sp_json_get_double(s) == 3.0);
    assert_null(sp_json_get_string(s));
    sp_json_free(s);
    assert_null(sp_json_new_string(NULL));
}

static void test_object_typed_lookups_use_fallback_when_absent_or_mistyped(void **state)
{
    SpJson *o = parse_ok("{\"s\":\"v\",\"i\":5,\"b\":true,\"d\":1.5}");

    assert_string_equal(sp_json_object_get_string(o, "s"), "v");
    assert_null(sp_json_object_get_string(o, "i"));
    assert_int_equal(sp_json_object_get_int(o, "i", -1), 5);
    assert_int_equal(sp_json_object_get_int(o, "d", -1), -1);
    assert_int_equal(sp_json_object_get_int(o, "zz", -1), -1);
    assert_true(sp_json_object_get_bool(o, "b", false));
    assert_true(sp_json_object_get_bool(o, "s", true));
    assert_false(sp_json_object_get_bool(NULL, "b", false));
    sp_json_free(o);
}

static void test_object_set_replaces_in_place_keeping_order(void **state)
{
    SpJson *o = sp_json_new_object();

    assert_int_equal(sp_json_object_set_int(o, "a", 1), SP_OK);
    assert_int_equal(sp_json_object_set_bool(o, "b", false), SP_OK);
    assert_int_equal(sp_json_object_set_string(o, "a", "x"), SP_OK);
    assert_int_equal(sp_json_object_set(o, "c", sp_json_new_null()), SP_OK);
    assert_json_text(o, "{\"a\":\"x\",\"b\":false,\"c\":null}");
}

static void test_object_take_hands_over_member_and_keeps_lookups_right(void **state)
{
    SpJson *o = sp_json_new_object();
    SpJson *taken;
    char key[16];

    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(sp_json_object_set_int(o, key, i), SP_OK);
    }
    taken = sp_json_object_take(o, "k10");
    assert_int_equal(sp_json_get_int(taken), 10);
    sp_json_free(taken);
    assert_null(sp_json_object_take(o, "k10"));
    assert_int_equal(sp_json_object_len(o), 99);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(sp_json_object_get_int(o, key, -1), i == 10 ? -1 : i);
    }
    assert_string_equal(sp_json_object_member(o, 10, NULL), "k11");
    sp_json_free(o);
}

static void test_optional_string_members_are_set_only_when_given(void **state)
{
    SpJson *o = sp_json_new_object();

    assert_int_equal(sp_json_object_set_optional_string(o, "absent", NULL), SP_OK);
    assert_int_equal(sp_json_object_set_optional_string(o, "present", "x"), SP_OK);
    assert_json_text(o, "{\"present\":\"x\"}");
}

static void test_containers_take_ownership_even_when_misused(void **state)
{
    SpJson *s = sp_json_new_string("not a container");

    /* ASan's leak checker proves the rejected values are freed. */
    assert_int_equal(sp_json_array_append(s, sp_json_new_int(1)), SP_E_INVALID);
    assert_int_equal(sp_json_object_set(s, "k", sp_json_new_int(1)), SP_E_INVALID);
    assert_int_equal(sp_json_object_set(NULL, "k", sp_json_new_int(1)), SP_E_INVALID);
    assert_int_equal(sp_json_array_append(NULL, NULL), SP_E_INVALID);
    sp_json_free(s);
    sp_json_free(NULL);
}

static void test_array_append_and_index(void **state)
{
    SpJson *a = sp_json_new_array();

    for (int i = 0; i < 10; i++)
        assert_int_equal(sp_json_array_append(a, sp_json_new_int(i)), SP_OK);
    assert_int_equal(sp_json_array_len(a), 10);
    assert_int_equal(sp_json_get_int(sp_json_array_get(a, 9)), 9);
    assert_null(sp_json_array_get(a, 10));
    sp_json_free(a);
    a = sp_json_new_array();
    assert_int_equal(sp_json_array_append(a, sp_json_new_bool(true)), SP_OK);
    assert_int_equal(sp_json_array_append(a, sp_json_new_string_len("x\0y", 3)), SP_OK);
    assert_int_equal(sp_json_array_append(a, sp_json_new_double(0.5)), SP_OK);
    assert_json_text(a, "[true,\"x\\u0000y\",0.5]");
}

static void test_copy_is_deep_and_equal(void **state)
{
    SpJson *v = parse_ok("{\"a\":[1,2.5,\"s\",{\"x\":null}],\"b\":true}");
    SpJson *c = sp_json_copy(v);

    assert_true(sp_json_equal(v, c));
    sp_json_object_set_int(c, "b", 1);
    assert_false(sp_json_equal(v, c));
    assert_true(sp_json_get_bool(sp_json_object_get(v, "b")));
    assert_null(sp_json_copy(NULL));
    sp_json_free(v);
    sp_json_free(c);
}

static void test_equal_ignores_member_order_but_not_types(void **state)
{
    SpJson *a = parse_ok("{\"x\":1,\"y\":[true]}");
    SpJson *b = parse_ok("{\"y\":[true],\"x\":1}");
    SpJson *i = parse_ok("1"), *d = parse_ok("1.0"), *s1 = parse_ok("\"ab\""), *s2 = parse_ok("\"a\"");

    assert_true(sp_json_equal(a, b));
    assert_false(sp_json_equal(i, d));
    assert_false(sp_json_equal(s1, s2));
    assert_false(sp_json_equal(a, NULL));
    assert_true(sp_json_equal(NULL, NULL));
    sp_json_free(a);
    sp_json_free(b);
    sp_json_free(i);
    sp_json_free(d);
    sp_json_free(s1);
    sp_json_free(s2);
}

static void test_utf8_valid_applies_rfc3629(void **state)
{
    assert_true(sp_utf8_valid("", 0));
    assert_true(sp_utf8_valid(NULL, 0));
    assert_true(sp_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    assert_true(sp_utf8_valid("\0", 1));
    assert_false(sp_utf8_valid("\xc0\x80", 2));
    assert_false(sp_utf8_valid("\xed\xa0\x80", 3));
    assert_false(sp_utf8_valid("\xf4\x90\x80\x80", 4));
    assert_false(sp_utf8_valid("\xc3", 1));
    assert_false(sp_utf8_valid("\xff", 1));
}

static void test_status_strings_are_stable_and_never_null(void **state)
{
    assert_string_equal(sp_status_str(SP_OK), "success");
    assert_string_equal(sp_status_str(SP_E_UTF8), "invalid UTF-8");
    assert_string_equal(sp_status_str(SP_E_UNEXPECTED), "unexpected member");
    assert_string_equal(sp_status_str(12345), "unknown error");
    for (int s = SP_OK; s >= SP_E_UNEXPECTED; s--)
        assert_string_not_equal(sp_status_str(s), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_every_scalar_type),
        cmocka_unit_test(test_parse_keeps_member_order_and_nesting),
        cmocka_unit_test(test_parse_int64_limits_exact_and_beyond_is_range),
        cmocka_unit_test(test_parse_empty_key_and_empty_string),
        cmocka_unit_test(test_parse_huge_numbers_are_range_not_rounded),
        cmocka_unit_test(test_parse_tiny_double_underflows_to_zero),
        cmocka_unit_test(test_parse_number_grammar_is_strict),
        cmocka_unit_test(test_parse_decodes_every_escape),
        cmocka_unit_test(test_parse_surrogate_pair_becomes_one_code_point),
        cmocka_unit_test(test_parse_lone_surrogate_escapes_are_utf8_errors),
        cmocka_unit_test(test_parse_escaped_nul_is_kept_with_explicit_length),
        cmocka_unit_test(test_parse_bad_escapes_and_raw_controls_are_escape_errors),
        cmocka_unit_test(test_parse_invalid_utf8_is_rejected_with_offset),
        cmocka_unit_test(test_parse_valid_utf8_passes_through),
        cmocka_unit_test(test_parse_nul_byte_is_nul_error_at_its_offset),
        cmocka_unit_test(test_parse_every_proper_prefix_is_truncated),
        cmocka_unit_test(test_parse_empty_or_blank_input_is_truncated),
        cmocka_unit_test(test_parse_trailing_data_is_syntax_error),
        cmocka_unit_test(test_parse_structural_errors_are_syntax),
        cmocka_unit_test(test_parse_depth_limit_is_exact),
        cmocka_unit_test(test_parse_depth_bomb_of_100000_brackets_is_depth_error),
        cmocka_unit_test(test_parse_custom_depth_limit),
        cmocka_unit_test(test_parse_size_limit_is_exact),
        cmocka_unit_test(test_parse_duplicate_key_is_rejected_at_second_key),
        cmocka_unit_test(test_parse_duplicate_key_is_found_in_large_objects),
        cmocka_unit_test(test_parse_error_message_names_problem_and_offset),
        cmocka_unit_test(test_parse_rejects_bad_arguments),
        cmocka_unit_test(test_serialize_is_compact_and_escapes_strings),
        cmocka_unit_test(test_serialize_replaces_invalid_utf8_with_replacement_char),
        cmocka_unit_test(test_serialize_doubles_always_reparse_as_doubles),
        cmocka_unit_test(test_serialize_non_finite_doubles_as_null),
        cmocka_unit_test(test_serialize_int64_extremes),
        cmocka_unit_test(test_serialize_then_parse_round_trips),
        cmocka_unit_test(test_doubles_ignore_a_comma_decimal_locale),
        cmocka_unit_test(test_value_getters_return_fallbacks_for_other_types),
        cmocka_unit_test(test_object_typed_lookups_use_fallback_when_absent_or_mistyped),
        cmocka_unit_test(test_object_set_replaces_in_place_keeping_order),
        cmocka_unit_test(test_object_take_hands_over_member_and_keeps_lookups_right),
        cmocka_unit_test(test_optional_string_members_are_set_only_when_given),
        cmocka_unit_test(test_containers_take_ownership_even_when_misused),
        cmocka_unit_test(test_array_append_and_index),
        cmocka_unit_test(test_copy_is_deep_and_equal),
        cmocka_unit_test(test_equal_ignores_member_order_but_not_types),
        cmocka_unit_test(test_utf8_valid_applies_rfc3629),
        cmocka_unit_test(test_status_strings_are_stable_and_never_null),
    };
    return cmocka_run_group_tests_name("unit/protocol/json", tests, NULL, NULL);
}
