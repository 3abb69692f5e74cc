/* Read access to JSON values (typed getters and lookups), deep copy and structural equality. */
#include <stdlib.h>
#include <string.h>
#include "json-internal.h"

SpJsonType sp_json_type(const SpJson *value) { return value ? value->type : SP_JSON_NULL; }

bool sp_json_get_bool(const SpJson *value)
{
    return value && value->type == SP_JSON_BOOL && value->u.b;
}

int64_t sp_json_get_int(const SpJson *value)
{
    return value && value->type == SP_JSON_INT ? value->u.i : 0;
}

double sp_json_get_double(const SpJson *value)
{
    if (!value)
        return 0;
    if (value->type == SP_JSON_DOUBLE)
        return value->u.d;
    if (value->type == SP_JSON_INT)
        return (double)value->u.i;
    return 0;
}

const char *sp_json_get_string(const SpJson *value)
{
    return value && value->type == SP_JSON_STRING ? value->u.str.s : NULL;
}

size_t sp_json_get_string_len(const SpJson *value)
{
    return value && value->type == SP_JSON_STRING ? value->u.str.len : 0;
}

size_t sp_json_array_len(const SpJson *array)
{
    return array && array->type == SP_JSON_ARRAY ? array->u.arr.len : 0;
}

const SpJson *sp_json_array_get(const SpJson *array, size_t index)
{
    return index < sp_json_array_len(array) ? array->u.arr.items[index] : NULL;
}

size_t sp_json_object_len(const SpJson *object)
{
    return object && object->type == SP_JSON_OBJECT ? object->u.obj.len : 0;
}

const SpJson *sp_json_object_get(const SpJson *object, const char *key)
{
    size_t pos = key ? sp_json_object_find(object, key, strlen(key)) : SIZE_MAX;
    return pos == SIZE_MAX ? NULL : object->u.obj.members[pos].value;
}

const char *sp_json_object_member(const SpJson *object, size_t index, const SpJson **ret_value)
{
    if (index >= sp_json_object_len(object))
        return NULL;
    if (ret_value)
        *ret_value = object->u.obj.members[index].value;
    return object->u.obj.members[index].key;
}

const char *sp_json_object_get_string(const SpJson *object, const char *key)
{
    return sp_json_get_string(sp_json_object_get(object, key));
}

int64_t sp_json_object_get_int(const SpJson *object, const char *key, int64_t fallback)
{
    const SpJson *v = sp_json_object_get(object, key);
    return v && v->type == SP_JSON_INT ? v->u.i : fallback;
}

bool sp_json_object_get_bool(const SpJson *object, const char *key, bool fallback)
{
    const SpJson *v = sp_json_object_get(object, key);
    return v && v->type == SP_JSON_BOOL ? v->u.b : fallback;
}

static SpJson *copy_container(const SpJson *value)
{
    SpJson *c;

    if (value->type == SP_JSON_ARRAY) {
        c = sp_json_new_array();
        for (size_t i = 0; i < value->u.arr.len; i++)
            sp_json_array_append(c, sp_json_copy(value->u.arr.items[i]));
        return c;
    }
    c = sp_json_new_object();
    for (size_t i = 0; i < value->u.obj.len; i++) {
        const SpJsonMember *m = &value->u.obj.members[i];
        sp_json_object_append(c, m->key, m->key_len, sp_json_copy(m->value));
    }
    return c;
}

SpJson *sp_json_copy(const SpJson *value)
{
    if (!value)
        return NULL;
    switch (value->type) {
    case SP_JSON_NULL: return sp_json_new_null();
    case SP_JSON_BOOL: return sp_json_new_bool(value->u.b);
    case SP_JSON_INT: return sp_json_new_int(value->u.i);
    case SP_JSON_DOUBLE: return sp_json_new_double(value->u.d);
    case SP_JSON_STRING: return sp_json_new_string_len(value->u.str.s, value->u.str.len);
    default: return copy_container(value);
    }
}

/* Objects are equal when they have the same members, in any order (JSON object semantics). */
static bool objects_equal(const SpJson *a, const SpJson *b)
{
    if (a->u.obj.len != b->u.obj.len)
        return false;
    for (size_t i = 0; i < a->u.obj.len; i++) {
        const SpJsonMember *m = &a->u.obj.members[i];
        size_t pos = sp_json_object_find(b, m->key, m->key_len);
        if (pos == SIZE_MAX || !sp_json_equal(m->value, b->u.obj.members[pos].value))
            return false;
    }
    return true;
}

bool sp_json_equal(const SpJson *a, const SpJson *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case SP_JSON_NULL: return true;
    case SP_JSON_BOOL: return a->u.b == b->u.b;
    case SP_JSON_INT: return a->u.i == b->u.i;
    case SP_JSON_DOUBLE: return a->u.d == b->u.d;
    case SP_JSON_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case SP_JSON_ARRAY:
        if (a->u.arr.len != b->u.arr.len)
            return false;
        for (size_t i = 0; i < a->u.arr.len; i++)
            if (!sp_json_equal(a->u.arr.items[i], b->u.arr.items[i]))
                return false;
        return true;
    case SP_JSON_OBJECT: return objects_equal(a, b);
    }
    return false;
}
