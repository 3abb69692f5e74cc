/* The documents stillpointd replies with, as typed D-Bus values and back
 * (host/lib/document-variant.c): every JSON type, member order, null, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <gio/gio.h>

#include "stillpoint/document-variant.h"

static SpJson *parse(const char *text)
{
    SpJson *doc = NULL;
    SpJsonError err = {0};
    assert_int_equal(sp_json_parse(text, strlen(text), NULL, &doc, &err), 0);
    return doc;
}

/* text -> document -> GVariant (of type want) -> document -> text: the same text. */
static void round_trip(const char *text, const char *want)
{
    g_autoptr(SpJson) doc = parse(text);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) v = g_variant_ref_sink(sp_document_to_variant(doc, &error));
    g_autoptr(SpJson) back = NULL;
    g_autofree char *again = NULL;

    assert_non_null(v);
    assert_string_equal(g_variant_get_type_string(v), want);
    back = sp_document_from_variant(v, &error);
    assert_non_null(back);
    again = sp_json_serialize(back, NULL);
    assert_string_equal(again, text);
}

static void every_type_and_member_order(void **state)
{
    (void)state;
    /* Keys out of alphabetical order, null inside objects and arrays, nesting. */
    round_trip("{\"zeta\":1,\"alpha\":-9223372036854775808,\"parent\":null,\"ok\":true,"
               "\"no\":false,\"ratio\":0.5,\"name\":\"caf\u00e9 \\\"x\\\"\",\"disks\":"
               "[{\"disk\":\"vda\",\"overlay\":null},[],{}],\"empty\":[null,1,\"s\"]}", "a{sv}");
    round_trip("[{\"id\":1},{\"id\":2}]", "av");
    round_trip("[]", "av");
    round_trip("null", "ay");
    round_trip("\"text\"", "s");
    round_trip("42", "x");
}

static void typed_values_are_the_mapping(void **state)
{
    g_autoptr(SpJson) doc = parse("{\"current\":null,\"id\":7,\"name\":\"n\",\"b\":true}");
    g_autoptr(GVariant) v = g_variant_ref_sink(sp_document_to_variant(doc, NULL));
    g_autoptr(GVariant) current = g_variant_lookup_value(v, "current", NULL);
    gint64 id = 0;
    const char *name = NULL;
    gboolean b = FALSE;

    (void)state;
    /* A client reads the keys with g_variant_lookup, typed. */
    assert_true(g_variant_lookup(v, "id", "x", &id));
    assert_int_equal(id, 7);
    assert_true(g_variant_lookup(v, "name", "&s", &name));
    assert_string_equal(name, "n");
    assert_true(g_variant_lookup(v, "b", "b", &b));
    assert_true(b);
    assert_non_null(current);
    assert_string_equal(g_variant_get_type_string(current), "ay");
    assert_int_equal(g_variant_n_children(current), 0);
}

static void other_shapes_are_read(void **state)
{
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(
        "{'u': <uint32 5>, 'list': <['a', 'b']>, 'path': <objectpath '/x'>, "
        "'dicts': <[{'k': <int32 -2>}]>, 'maybe': <@ms nothing>}"));
    g_autoptr(SpJson) doc = sp_document_from_variant(v, NULL);
    g_autofree char *text = NULL;

    (void)state;
    assert_non_null(doc);
    text = sp_json_serialize(doc, NULL);
    assert_string_equal(text, "{\"u\":5,\"list\":[\"a\",\"b\"],\"path\":\"/x\",\"dicts\":[{\"k\":-2}],\"maybe\":null}");
}

static void what_cannot_be_carried_is_refused(void **state)
{
    g_autoptr(SpJson) doc = sp_json_new_object();
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) tuple = g_variant_ref_sink(g_variant_new("(si)", "a", 1));
    g_autoptr(GVariant) int_keys = g_variant_ref_sink(g_variant_new_parsed("{1: 'a'}"));
    g_autoptr(GVariant) bytes = g_variant_ref_sink(g_variant_new_bytestring("x"));

    (void)state;
    /* U+0000 in a JSON string: a D-Bus string cannot hold it. */
    sp_json_object_set(doc, "k", sp_json_new_string_len("a\0b", 3));
    assert_null(sp_document_to_variant(doc, &error));
    assert_non_null(strstr(error->message, "U+0000"));
    g_clear_error(&error);
    /* Not UTF-8 (a path from the filesystem), as a value and as a key: an error, never a NULL
     * without one (stillpointd would leave the call unanswered). */
    sp_json_object_set(doc, "k", sp_json_new_string("/images/\xff.qcow2"));
    assert_null(sp_document_to_variant(doc, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    g_clear_error(&error);
    sp_json_object_set(doc, "k", sp_json_new_string("ok"));
    sp_json_object_set(doc, "\xc3(", sp_json_new_int(1));
    assert_null(sp_document_to_variant(doc, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    g_clear_error(&error);
    assert_null(sp_document_from_variant(tuple, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    g_clear_error(&error);
    assert_null(sp_document_from_variant(int_keys, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    g_clear_error(&error);
    assert_null(sp_document_from_variant(bytes, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_and_member_order),
        cmocka_unit_test(typed_values_are_the_mapping),
        cmocka_unit_test(other_shapes_are_read),
        cmocka_unit_test(what_cannot_be_carried_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
