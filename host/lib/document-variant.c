/* document-variant: documents (document.h) as typed D-Bus values and back; the mapping is in
 * the header. */
#include "stillpoint/document-variant.h"

#include <gio/gio.h>
#include <string.h>

/* D-Bus strings are UTF-8 without U+0000; a document's strings come from the store and the
 * filesystem (paths, names) and may be neither. Refused with an error: a NULL without one
 * would leave the call unanswered. */
static gboolean dbus_text(const char *s, size_t len, GError **error)
{
    if (memchr(s, '\0', len) != NULL || !g_utf8_validate(s, (gssize)len, NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "a string is not UTF-8 without U+0000, which D-Bus cannot carry");
        return FALSE;
    }
    return TRUE;
}

static GVariant *object_to_variant(const SpJson *doc, GError **error)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    for (size_t i = 0; i < sp_json_object_len(doc); i++) {
        const SpJson *member = NULL;
        const char *key = sp_json_object_member(doc, i, &member);
        GVariant *v = dbus_text(key, strlen(key), error) ? sp_document_to_variant(member, error)
                                                         : NULL;
        if (v == NULL) {
            g_variant_builder_clear(&b);
            g_prefix_error(error, "%s: ", key);
            return NULL;
        }
        g_variant_builder_add(&b, "{sv}", key, v);
    }
    return g_variant_builder_end(&b);
}

static GVariant *array_to_variant(const SpJson *doc, GError **error)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE("av"));
    for (size_t i = 0; i < sp_json_array_len(doc); i++) {
        GVariant *v = sp_document_to_variant(sp_json_array_get(doc, i), error);
        if (v == NULL) {
            g_variant_builder_clear(&b);
            return NULL;
        }
        g_variant_builder_add(&b, "v", v);
    }
    return g_variant_builder_end(&b);
}

GVariant *sp_document_to_variant(const SpJson *doc, GError **error)
{
    switch (sp_json_type(doc)) {
    case SP_JSON_NULL:
        return g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING, NULL, 0, TRUE, NULL, NULL);
    case SP_JSON_BOOL:
        return g_variant_new_boolean(sp_json_get_bool(doc));
    case SP_JSON_INT:
        return g_variant_new_int64(sp_json_get_int(doc));
    case SP_JSON_DOUBLE:
        return g_variant_new_double(sp_json_get_double(doc));
    case SP_JSON_STRING:
        if (!dbus_text(sp_json_get_string(doc), sp_json_get_string_len(doc), error))
            return NULL;
        return g_variant_new_string(sp_json_get_string(doc));
    case SP_JSON_ARRAY:
        return array_to_variant(doc, error);
    case SP_JSON_OBJECT:
        return object_to_variant(doc, error);
    }
    g_assert_not_reached();
}

/* An array of anything (av, as, aa{sv}, ...), or a dictionary with string keys (a{sv}, a{ss}):
 * an array or object of the converted children. */
static SpJson *container_from_variant(GVariant *value, GError **error)
{
    gboolean dict = g_variant_type_is_dict_entry(
        g_variant_type_element(g_variant_get_type(value)));
    SpJson *out = dict ? sp_json_new_object() : sp_json_new_array();
    gsize n = g_variant_n_children(value);

    for (gsize i = 0; i < n; i++) {
        g_autoptr(GVariant) child = g_variant_get_child_value(value, i);
        g_autoptr(GVariant) key = dict ? g_variant_get_child_value(child, 0) : NULL;
        g_autoptr(GVariant) v = dict ? g_variant_get_child_value(child, 1) : g_variant_ref(child);
        SpJson *converted;
        if (key != NULL && !g_variant_is_of_type(key, G_VARIANT_TYPE_STRING)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "a dictionary keyed by %s is not a document", g_variant_get_type_string(key));
            sp_json_free(out);
            return NULL;
        }
        if ((converted = sp_document_from_variant(v, error)) == NULL) {
            sp_json_free(out);
            return NULL;
        }
        if (dict)
            sp_json_object_set(out, g_variant_get_string(key, NULL), converted);
        else
            sp_json_array_append(out, converted);
    }
    return out;
}

SpJson *sp_document_from_variant(GVariant *value, GError **error)
{
    switch (g_variant_classify(value)) {
    case G_VARIANT_CLASS_BOOLEAN:
        return sp_json_new_bool(g_variant_get_boolean(value));
    case G_VARIANT_CLASS_INT32:
        return sp_json_new_int(g_variant_get_int32(value));
    case G_VARIANT_CLASS_UINT32:
        return sp_json_new_int(g_variant_get_uint32(value));
    case G_VARIANT_CLASS_INT64:
        return sp_json_new_int(g_variant_get_int64(value));
    case G_VARIANT_CLASS_DOUBLE:
        return sp_json_new_double(g_variant_get_double(value));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
        return sp_json_new_string(g_variant_get_string(value, NULL));
    case G_VARIANT_CLASS_VARIANT: {
        g_autoptr(GVariant) inner = g_variant_get_variant(value);
        return sp_document_from_variant(inner, error);
    }
    case G_VARIANT_CLASS_MAYBE: {
        g_autoptr(GVariant) inner = g_variant_get_maybe(value);
        return inner == NULL ? sp_json_new_null() : sp_document_from_variant(inner, error);
    }
    case G_VARIANT_CLASS_ARRAY:
        if (!g_variant_is_of_type(value, G_VARIANT_TYPE_BYTESTRING))
            return container_from_variant(value, error);
        if (g_variant_n_children(value) == 0)
            return sp_json_new_null();
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "bytes are not a document");
        return NULL;
    default:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "a value of type %s is not a "
                    "document", g_variant_get_type_string(value));
        return NULL;
    }
}
