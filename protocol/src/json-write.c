/* Compact JSON serializer: members in insertion order, no whitespace, output always valid UTF-8
 * JSON that sp_json_parse reads back to an equal value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json-internal.h"

typedef struct {
    char *buf;
    size_t len, cap;
} Writer;

static void put(Writer *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->len + n + 1)
            cap *= 2;
        w->buf = sp_realloc(w->buf, cap);
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void put_str(Writer *w, const char *s) { put(w, s, strlen(s)); }

/* Control characters must be escaped; everything else valid passes through. Bytes that are not
 * valid UTF-8 (a constructor was handed raw bytes, e.g. a mount path in another encoding) become
 * U+FFFD, so one bad name can never make the whole reply unparsable for the peer. */
static void put_string(Writer *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    put(w, "\"", 1);
    while (i < len) {
        unsigned char c = p[i];
        uint32_t cp;
        int n;

        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char)c };
            put(w, e, 2);
        } else if (c == '\n') {
            put(w, "\\n", 2);
        } else if (c == '\r') {
            put(w, "\\r", 2);
        } else if (c == '\t') {
            put(w, "\\t", 2);
        } else if (c == '\b') {
            put(w, "\\b", 2);
        } else if (c == '\f') {
            put(w, "\\f", 2);
        } else if (c < 0x20) {
            char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            put(w, e, 6);
        } else if (c < 0x80) {
            put(w, (const char *)&p[i], 1);
        } else if ((n = sp_utf8_decode(p + i, len - i, &cp)) > 0) {
            put(w, (const char *)&p[i], (size_t)n);
            i += (size_t)n - 1;
        } else {
            put(w, "\\ufffd", 6);
        }
        i++;
    }
    put(w, "\"", 1);
}

static void put_number(Writer *w, const SpJson *v)
{
    char buf[40];
    size_t n;

    if (v->type == SP_JSON_INT) {
        n = (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
    } else if (!isfinite(v->u.d)) {
        /* JSON has no NaN or infinity; null is what the peer can parse. */
        put(w, "null", 4);
        return;
    } else {
        n = sp_json_format_double(v->u.d, buf);
    }
    put(w, buf, n);
}

static void put_value(Writer *w, const SpJson *v)
{
    switch (v->type) {
    case SP_JSON_NULL: put_str(w, "null"); break;
    case SP_JSON_BOOL: put_str(w, v->u.b ? "true" : "false"); break;
    case SP_JSON_INT:
    case SP_JSON_DOUBLE: put_number(w, v); break;
    case SP_JSON_STRING: put_string(w, v->u.str.s, v->u.str.len); break;
    case SP_JSON_ARRAY:
        put(w, "[", 1);
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i)
                put(w, ",", 1);
            put_value(w, v->u.arr.items[i]);
        }
        put(w, "]", 1);
        break;
    case SP_JSON_OBJECT:
        put(w, "{", 1);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const SpJsonMember *m = &v->u.obj.members[i];
            if (i)
                put(w, ",", 1);
            put_string(w, m->key, m->key_len);
            put(w, ":", 1);
            put_value(w, m->value);
        }
        put(w, "}", 1);
        break;
    }
}

char *sp_json_serialize(const SpJson *value, size_t *ret_len)
{
    Writer w = { 0 };

    if (!value)
        return NULL;
    put_value(&w, value);
    if (ret_len)
        *ret_len = w.len;
    return w.buf;
}
