/* Helpers shared by the protocol library's unit tests (cmocka). */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "stillpoint/protocol.h"

/* Parse text that must be valid; the test fails otherwise. */
static inline SpJson *parse_ok(const char *text)
{
    SpJson *v = NULL;
    SpJsonError err;
    int r = sp_json_parse(text, strlen(text), NULL, &v, &err);
    if (r != SP_OK)
        fail_msg("parse of %s failed: %s", text, err.message);
    return v;
}

/* Assert that v serializes to exactly `expected`, and free v. */
static inline void assert_json_text(SpJson *v, const char *expected)
{
    size_t len = 0;
    char *s;

    assert_non_null(v);
    s = sp_json_serialize(v, &len);
    assert_non_null(s);
    assert_string_equal(s, expected);
    assert_int_equal(len, strlen(expected));
    free(s);
    sp_json_free(v);
}
