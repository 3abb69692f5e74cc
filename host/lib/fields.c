/* Records walked by their field tables: to and from JSON, and freed. */
#include "fields.h"

void sp_json_set_opt_string(SpJson *obj, const char *key, const char *s)
{
    if (s != NULL)
        sp_json_object_set_string(obj, key, s);
}

char *sp_json_dup_string(const SpJson *obj, const char *key)
{
    return g_strdup(sp_json_object_get_string(obj, key));
}

#define FIELD_AT(record, f) ((char *)(record) + (f)->offset)

void sp_fields_to_json(SpJson *obj, const SpField *fields, gsize n, gconstpointer record)
{
    for (gsize i = 0; i < n; i++) {
        const SpField *f = &fields[i];
        const char *at = FIELD_AT(record, f);
        const GPtrArray *list;
        SpJson *arr;
        switch (f->type) {
        case SP_FIELD_STRING:
            sp_json_object_set_string(obj, f->key, *(char *const *)at);
            break;
        case SP_FIELD_OPT_STRING:
            sp_json_set_opt_string(obj, f->key, *(char *const *)at);
            break;
        case SP_FIELD_INT:
            sp_json_object_set_int(obj, f->key, *(const int64_t *)at);
            break;
        case SP_FIELD_BOOL:
            sp_json_object_set_bool(obj, f->key, *(const gboolean *)at);
            break;
        case SP_FIELD_STRINGS:
            list = *(GPtrArray *const *)at;
            arr = sp_json_new_array();
            for (guint j = 0; list != NULL && j < list->len; j++)
                sp_json_array_append(arr, sp_json_new_string(g_ptr_array_index(list, j)));
            sp_json_object_set(obj, f->key, arr);
            break;
        }
    }
}

/* A member that is not a string (a corrupt journal) is left out rather than read as a NULL
 * path that later code would use. */
static void strings_from_json(const SpJson *arr, GPtrArray **list)
{
    if (*list == NULL)
        *list = g_ptr_array_new_with_free_func(g_free);
    for (size_t j = 0; j < sp_json_array_len(arr); j++) {
        const char *s = sp_json_get_string(sp_json_array_get(arr, j));
        if (s != NULL)
            g_ptr_array_add(*list, g_strdup(s));
    }
}

void sp_fields_from_json(const SpJson *obj, const SpField *fields, gsize n, gpointer record)
{
    for (gsize i = 0; i < n; i++) {
        const SpField *f = &fields[i];
        char *at = FIELD_AT(record, f);
        switch (f->type) {
        case SP_FIELD_STRING:
        case SP_FIELD_OPT_STRING:
            *(char **)at = sp_json_dup_string(obj, f->key);
            break;
        case SP_FIELD_INT:
            *(int64_t *)at = sp_json_object_get_int(obj, f->key, 0);
            break;
        case SP_FIELD_BOOL:
            *(gboolean *)at = sp_json_object_get_bool(obj, f->key, false);
            break;
        case SP_FIELD_STRINGS:
            strings_from_json(sp_json_object_get(obj, f->key), (GPtrArray **)at);
            break;
        }
    }
}

void sp_fields_clear(const SpField *fields, gsize n, gpointer record)
{
    for (gsize i = 0; i < n; i++) {
        char *at = FIELD_AT(record, &fields[i]);
        if (fields[i].type == SP_FIELD_STRING || fields[i].type == SP_FIELD_OPT_STRING)
            g_clear_pointer((char **)at, g_free);
        else if (fields[i].type == SP_FIELD_STRINGS)
            g_clear_pointer((GPtrArray **)at, g_ptr_array_unref);
    }
}

void sp_fields_free(const SpField *fields, gsize n, gpointer record)
{
    if (record == NULL)
        return;
    sp_fields_clear(fields, n, record);
    g_free(record);
}
