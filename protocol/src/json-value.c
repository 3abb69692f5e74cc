/* The JSON value model: constructors, containers, accessors, copy, equality and free. */
#include <stdlib.h>
#include <string.h>
#include "json-internal.h"

/* Objects at least this big get a hash index, so that a 64 KiB object of thousands of members
 * cannot make the parser's duplicate-key check quadratic. */
#define SP_JSON_INDEX_MIN 16

static SpJson *value_new(SpJsonType type)
{
    SpJson *v = sp_calloc(1, sizeof(*v));
    v->type = type;
    return v;
}

SpJson *sp_json_new_null(void) { return value_new(SP_JSON_NULL); }

SpJson *sp_json_new_bool(bool b)
{
    SpJson *v = value_new(SP_JSON_BOOL);
    v->u.b = b;
    return v;
}

SpJson *sp_json_new_int(int64_t i)
{
    SpJson *v = value_new(SP_JSON_INT);
    v->u.i = i;
    return v;
}

SpJson *sp_json_new_double(double d)
{
    SpJson *v = value_new(SP_JSON_DOUBLE);
    v->u.d = d;
    return v;
}

SpJson *sp_json_new_string_len(const char *s, size_t len)
{
    SpJson *v;

    if (!s && len > 0)
        return NULL;
    v = value_new(SP_JSON_STRING);
    v->u.str.s = sp_strndup(s, len);
    v->u.str.len = len;
    return v;
}

SpJson *sp_json_new_string(const char *s)
{
    return s ? sp_json_new_string_len(s, strlen(s)) : NULL;
}

SpJson *sp_json_new_array(void) { return value_new(SP_JSON_ARRAY); }
SpJson *sp_json_new_object(void) { return value_new(SP_JSON_OBJECT); }

void sp_json_free(SpJson *value)
{
    if (!value)
        return;
    switch (value->type) {
    case SP_JSON_STRING:
        free(value->u.str.s);
        break;
    case SP_JSON_ARRAY:
        for (size_t i = 0; i < value->u.arr.len; i++)
            sp_json_free(value->u.arr.items[i]);
        free(value->u.arr.items);
        break;
    case SP_JSON_OBJECT:
        for (size_t i = 0; i < value->u.obj.len; i++) {
            free(value->u.obj.members[i].key);
            sp_json_free(value->u.obj.members[i].value);
        }
        free(value->u.obj.members);
        free(value->u.obj.index);
        break;
    default:
        break;
    }
    free(value);
}

/* Grow *items (of elem_size bytes each) so that one more fits. */
static void grow(void **items, size_t *cap, size_t len, size_t elem_size)
{
    size_t ncap;

    if (len < *cap)
        return;
    ncap = *cap ? *cap * 2 : 4;
    /* A size that would overflow asks for SIZE_MAX bytes, which sp_realloc cannot get: abort. */
    *items = sp_realloc(*items, ncap > SIZE_MAX / elem_size ? SIZE_MAX : ncap * elem_size);
    *cap = ncap;
}

int sp_json_array_append(SpJson *array, SpJson *value)
{
    if (!array || array->type != SP_JSON_ARRAY || !value) {
        sp_json_free(value);
        return SP_E_INVALID;
    }
    grow((void **)&array->u.arr.items, &array->u.arr.cap, array->u.arr.len, sizeof(SpJson *));
    array->u.arr.items[array->u.arr.len++] = value;
    return SP_OK;
}

/* FNV-1a: simple and good enough for an index that only needs to defeat quadratic behaviour. */
static uint32_t key_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h;
}

static void index_insert(SpJson *o, size_t pos)
{
    size_t mask = o->u.obj.index_cap - 1;
    const SpJsonMember *m = &o->u.obj.members[pos];
    size_t slot = key_hash(m->key, m->key_len) & mask;

    while (o->u.obj.index[slot])
        slot = (slot + 1) & mask;
    o->u.obj.index[slot] = (uint32_t)(pos + 1);
}

/* (Re)build the index with room for twice the members. */
static void index_rebuild(SpJson *o)
{
    size_t cap = 64;

    free(o->u.obj.index);
    o->u.obj.index = NULL;
    o->u.obj.index_cap = 0;
    if (o->u.obj.len < SP_JSON_INDEX_MIN || o->u.obj.len >= UINT32_MAX / 4)
        return;
    while (cap < o->u.obj.len * 2)
        cap *= 2;
    o->u.obj.index = sp_calloc(cap, sizeof(uint32_t));
    o->u.obj.index_cap = cap;
    for (size_t i = 0; i < o->u.obj.len; i++)
        index_insert(o, i);
}

static bool key_is(const SpJsonMember *m, const char *key, size_t key_len)
{
    return m->key_len == key_len && memcmp(m->key, key, key_len) == 0;
}

size_t sp_json_object_find(const SpJson *object, const char *key, size_t key_len)
{
    if (!object || object->type != SP_JSON_OBJECT || !key)
        return SIZE_MAX;
    if (object->u.obj.index) {
        size_t mask = object->u.obj.index_cap - 1;
        size_t slot = key_hash(key, key_len) & mask;
        for (uint32_t e; (e = object->u.obj.index[slot]) != 0; slot = (slot + 1) & mask)
            if (key_is(&object->u.obj.members[e - 1], key, key_len))
                return e - 1;
        return SIZE_MAX;
    }
    for (size_t i = 0; i < object->u.obj.len; i++)
        if (key_is(&object->u.obj.members[i], key, key_len))
            return i;
    return SIZE_MAX;
}

void sp_json_object_append(SpJson *object, const char *key, size_t key_len, SpJson *value)
{
    SpJsonMember *m;

    grow((void **)&object->u.obj.members, &object->u.obj.cap, object->u.obj.len,
         sizeof(SpJsonMember));
    m = &object->u.obj.members[object->u.obj.len];
    m->key = sp_strndup(key, key_len);
    m->key_len = key_len;
    m->value = value;
    object->u.obj.len++;
    if (object->u.obj.len * 2 > object->u.obj.index_cap)
        index_rebuild(object);
    else
        index_insert(object, object->u.obj.len - 1);
}

int sp_json_object_set(SpJson *object, const char *key, SpJson *value)
{
    size_t pos, key_len;

    if (!object || object->type != SP_JSON_OBJECT || !key || !value) {
        sp_json_free(value);
        return SP_E_INVALID;
    }
    key_len = strlen(key);
    pos = sp_json_object_find(object, key, key_len);
    if (pos != SIZE_MAX) {
        sp_json_free(object->u.obj.members[pos].value);
        object->u.obj.members[pos].value = value;
        return SP_OK;
    }
    sp_json_object_append(object, key, key_len, value);
    return SP_OK;
}

int sp_json_object_set_string(SpJson *object, const char *key, const char *s)
{
    return sp_json_object_set(object, key, sp_json_new_string(s));
}

int sp_json_object_set_int(SpJson *object, const char *key, int64_t i)
{
    return sp_json_object_set(object, key, sp_json_new_int(i));
}

int sp_json_object_set_bool(SpJson *object, const char *key, bool b)
{
    return sp_json_object_set(object, key, sp_json_new_bool(b));
}

int sp_json_object_set_optional_string(SpJson *object, const char *key, const char *s)
{
    return s ? sp_json_object_set_string(object, key, s) : SP_OK;
}

SpJson *sp_json_object_take(SpJson *object, const char *key)
{
    size_t pos = key ? sp_json_object_find(object, key, strlen(key)) : SIZE_MAX;
    SpJson *value;

    if (pos == SIZE_MAX)
        return NULL;
    value = object->u.obj.members[pos].value;
    free(object->u.obj.members[pos].key);
    memmove(&object->u.obj.members[pos], &object->u.obj.members[pos + 1],
            (object->u.obj.len - pos - 1) * sizeof(SpJsonMember));
    object->u.obj.len--;
    if (object->u.obj.index)
        index_rebuild(object); /* positions moved */
    return value;
}
