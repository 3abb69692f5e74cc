/* Strict JSON parser (RFC 8259) with depth and size limits. It accepts exactly one value, rejects
 * anything a lenient parser would guess at (duplicate keys, lone surrogates, invalid UTF-8,
 * integers that do not fit 64 bits), and reports where and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json-internal.h"

/* The parser recurses once per nesting level; this bounds its stack use whatever the caller asks
 * for (64 levels are plenty for the protocol). */
#define SP_JSON_MAX_DEPTH_CAP 1024

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    unsigned max_depth;
    size_t err_pos;
    char *scratch; /* decoded string bytes; reused for every string */
    size_t scratch_len, scratch_cap;
} Parser;

static int fail(Parser *p, int status, size_t pos)
{
    p->err_pos = pos;
    return status;
}

/* At the end of the input a value was expected or still open. */
static int fail_end(Parser *p) { return fail(p, SP_E_TRUNCATED, p->len); }

static void skip_ws(Parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int scratch_put(Parser *p, const void *bytes, size_t n)
{
    if (p->scratch_len + n > p->scratch_cap) {
        /* Decoded text is never longer than the input, so this bounds the buffer. */
        size_t cap = p->scratch_cap ? p->scratch_cap * 2 : 64;
        while (cap < p->scratch_len + n)
            cap *= 2;
        p->scratch = sp_realloc(p->scratch, cap);
        p->scratch_cap = cap;
    }
    memcpy(p->scratch + p->scratch_len, bytes, n);
    p->scratch_len += n;
    return SP_OK;
}

static int put_codepoint(Parser *p, uint32_t cp)
{
    unsigned char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return scratch_put(p, b, n);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read the 4 hex digits of a \u escape whose backslash is at `at`. */
static int read_u_escape(Parser *p, size_t at, uint32_t *ret)
{
    uint32_t v = 0;

    for (size_t i = at + 2; i < at + 6; i++) {
        int h;
        if (i >= p->len)
            return fail_end(p);
        h = hex_value(p->s[i]);
        if (h < 0)
            return fail(p, SP_E_ESCAPE, at);
        v = (v << 4) | (uint32_t)h;
    }
    *ret = v;
    return SP_OK;
}

/* \uXXXX, possibly a surrogate pair \uD8xx\uDCxx. A surrogate that is not part of a well-formed
 * pair cannot be represented in UTF-8, so it is an encoding error, not silently replaced. */
static int parse_u_escape(Parser *p)
{
    size_t at = p->pos;
    uint32_t cp, low;
    int r = read_u_escape(p, at, &cp);

    if (r < 0)
        return r;
    p->pos = at + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, SP_E_UTF8, at);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        for (size_t i = 0; i < 2; i++) {
            if (p->pos + i >= p->len)
                return fail_end(p);
            if (p->s[p->pos + i] != "\\u"[i])
                return fail(p, SP_E_UTF8, at);
        }
        r = read_u_escape(p, p->pos, &low);
        if (r < 0)
            return r;
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(p, SP_E_UTF8, at);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        p->pos += 6;
    }
    return put_codepoint(p, cp);
}

static int parse_escape(Parser *p)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *hit;
    unsigned char e;

    if (p->pos + 1 >= p->len)
        return fail_end(p);
    e = p->s[p->pos + 1];
    if (e == 'u')
        return parse_u_escape(p);
    hit = e ? strchr(from, e) : NULL;
    if (!hit)
        return fail(p, SP_E_ESCAPE, p->pos);
    p->pos += 2;
    return scratch_put(p, &to[hit - from], 1);
}

/* Decode the string starting at the opening quote into p->scratch. */
static int parse_string(Parser *p)
{
    p->scratch_len = 0;
    p->pos++;
    for (;;) {
        unsigned char c;
        uint32_t cp;
        int r, n;

        if (p->pos >= p->len)
            return fail_end(p);
        c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return SP_OK;
        }
        if (c == '\\') {
            r = parse_escape(p);
        } else if (c < 0x20) {
            return fail(p, SP_E_ESCAPE, p->pos); /* raw control characters must be escaped */
        } else {
            n = sp_utf8_decode(p->s + p->pos, p->len - p->pos, &cp);
            if (n < 0)
                return fail_end(p);
            if (n == 0)
                return fail(p, SP_E_UTF8, p->pos);
            r = scratch_put(p, p->s + p->pos, (size_t)n);
            p->pos += (size_t)n;
        }
        if (r < 0)
            return r;
    }
}

static int parse_literal(Parser *p, SpJson **ret)
{
    static const char *const words[] = { "true", "false", "null" };
    const char *w = NULL;

    for (size_t i = 0; i < 3; i++)
        if (words[i][0] == (char)p->s[p->pos])
            w = words[i];
    if (!w)
        return fail(p, SP_E_SYNTAX, p->pos);
    for (size_t i = 0; w[i]; i++) {
        if (p->pos + i >= p->len)
            return fail_end(p);
        if (p->s[p->pos + i] != (unsigned char)w[i])
            return fail(p, SP_E_SYNTAX, p->pos);
    }
    p->pos += strlen(w);
    *ret = w[0] == 'n' ? sp_json_new_null() : sp_json_new_bool(w[0] == 't');
    return SP_OK;
}

static size_t skip_digits(Parser *p)
{
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        p->pos++;
        n++;
    }
    return n;
}

/* Digits are required here: a missing one is truncation at the end, a syntax error elsewhere. */
static int need_digits(Parser *p)
{
    if (skip_digits(p) > 0)
        return SP_OK;
    return p->pos >= p->len ? fail_end(p) : fail(p, SP_E_SYNTAX, p->pos);
}

/* Accumulate the magnitude in unsigned arithmetic so INT64_MIN is reachable and overflow is
 * detected before it happens. */
static int make_int(Parser *p, size_t start, SpJson **ret)
{
    bool neg = p->s[start] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;

    for (size_t i = start + (neg ? 1 : 0); i < p->pos; i++) {
        unsigned d = p->s[i] - '0';
        if (acc > (limit - d) / 10)
            return fail(p, SP_E_RANGE, start);
        acc = acc * 10 + d;
    }
    if (neg)
        *ret = sp_json_new_int(acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc);
    else
        *ret = sp_json_new_int((int64_t)acc);
    return SP_OK;
}

static int parse_number(Parser *p, SpJson **ret)
{
    size_t start = p->pos;
    bool is_int = true;
    double d;
    int r;

    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len)
        return fail_end(p);
    if (p->s[p->pos] == '0')
        p->pos++;
    else if ((r = need_digits(p)) < 0)
        return r;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        is_int = false;
        if ((r = need_digits(p)) < 0)
            return r;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        is_int = false;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if ((r = need_digits(p)) < 0)
            return r;
    }
    if (is_int)
        return make_int(p, start, ret);
    r = sp_json_number_to_double((const char *)p->s + start, p->pos - start, &d);
    if (r < 0)
        return fail(p, r, start);
    *ret = sp_json_new_double(d);
    return SP_OK;
}

static int parse_value(Parser *p, unsigned depth, SpJson **ret);

/* After a member or element: ',' continues, `close` ends the container. */
static int expect_separator(Parser *p, unsigned char close, bool *ret_done)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail_end(p);
    if (p->s[p->pos] == ',') {
        p->pos++;
        *ret_done = false;
        return SP_OK;
    }
    if (p->s[p->pos] == close) {
        p->pos++;
        *ret_done = true;
        return SP_OK;
    }
    return fail(p, SP_E_SYNTAX, p->pos);
}

/* One element, appended to array. */
static int parse_element(Parser *p, unsigned depth, SpJson *array)
{
    SpJson *item = NULL;
    int r = parse_value(p, depth, &item);

    if (r >= 0)
        sp_json_array_append(array, item);
    return r;
}

/* After whitespace, the byte c must come (it is left at p->pos). */
static int expect_byte(Parser *p, unsigned char c)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail_end(p);
    return p->s[p->pos] == c ? SP_OK : fail(p, SP_E_SYNTAX, p->pos);
}

/* One "key": value member, appended to object. */
static int parse_member(Parser *p, unsigned depth, SpJson *object)
{
    size_t key_pos, key_len;
    char *key;
    SpJson *value = NULL;
    int r;

    if ((r = expect_byte(p, '"')) < 0)
        return r;
    key_pos = p->pos;
    if ((r = parse_string(p)) < 0 || (r = expect_byte(p, ':')) < 0)
        return r;
    p->pos++;
    /* The value's strings reuse the scratch buffer: keep the key aside. */
    key_len = p->scratch_len;
    key = sp_strndup(p->scratch, key_len); /* an empty key leaves the scratch buffer NULL */
    if (sp_json_object_find(object, key, key_len) != SIZE_MAX)
        r = fail(p, SP_E_DUPLICATE_KEY, key_pos);
    else if ((r = parse_value(p, depth, &value)) >= 0)
        sp_json_object_append(object, key, key_len, value);
    free(key);
    return r;
}

/* '[' elements ']' or '{' members '}', at p->pos. */
static int parse_container(Parser *p, unsigned depth, SpJson **ret)
{
    bool is_object = p->s[p->pos] == '{';
    unsigned char close = is_object ? '}' : ']';
    SpJson *c = is_object ? sp_json_new_object() : sp_json_new_array();
    bool done = false;
    int r = SP_OK;

    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        done = true;
    }
    while (!done) {
        if ((r = (is_object ? parse_member : parse_element)(p, depth, c)) < 0)
            break;
        if ((r = expect_separator(p, close, &done)) < 0)
            break;
    }
    if (r < 0) {
        sp_json_free(c);
        return r;
    }
    *ret = c;
    return SP_OK;
}

static int parse_value(Parser *p, unsigned depth, SpJson **ret)
{
    unsigned char c;
    int r;

    skip_ws(p);
    if (p->pos >= p->len)
        return fail_end(p);
    c = p->s[p->pos];
    if (c == '{' || c == '[') {
        if (depth + 1 > p->max_depth)
            return fail(p, SP_E_DEPTH, p->pos);
        return parse_container(p, depth + 1, ret);
    }
    if (c == '"') {
        if ((r = parse_string(p)) < 0)
            return r;
        *ret = sp_json_new_string_len(p->scratch, p->scratch_len);
        return SP_OK;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p, ret);
    return parse_literal(p, ret);
}

static void set_error(SpJsonError *err, int status, size_t offset)
{
    if (!err)
        return;
    err->status = status;
    err->offset = offset;
    err->message[0] = '\0';
    if (status != SP_OK)
        snprintf(err->message, sizeof(err->message), "%s at byte %zu", sp_status_str(status),
                 offset);
}

/* The checks that need no parsing: a size limit, and NUL bytes, which C string handling on either
 * side of the wire would silently truncate at. */
static int check_text(const char *text, size_t len, size_t max_size, size_t *ret_pos)
{
    const char *nul;

    if (len > max_size) {
        *ret_pos = max_size;
        return SP_E_TOO_LARGE;
    }
    nul = len ? memchr(text, '\0', len) : NULL;
    if (nul) {
        *ret_pos = (size_t)(nul - text);
        return SP_E_NUL;
    }
    return SP_OK;
}

int sp_json_parse(const char *text, size_t len, const SpJsonLimits *limits, SpJson **ret,
                  SpJsonError *err)
{
    Parser p = { .s = (const unsigned char *)text, .len = len };
    size_t max_size = limits && limits->max_size ? limits->max_size : SP_JSON_DEFAULT_MAX_SIZE;
    SpJson *value = NULL;
    int r;

    if ((!text && len > 0) || !ret) {
        set_error(err, SP_E_INVALID, 0);
        return SP_E_INVALID;
    }
    p.max_depth = limits && limits->max_depth ? limits->max_depth : SP_JSON_DEFAULT_MAX_DEPTH;
    if (p.max_depth > SP_JSON_MAX_DEPTH_CAP)
        p.max_depth = SP_JSON_MAX_DEPTH_CAP;
    r = check_text(text, len, max_size, &p.err_pos);
    if (r == SP_OK)
        r = parse_value(&p, 0, &value);
    if (r == SP_OK) {
        skip_ws(&p);
        if (p.pos < p.len)
            r = fail(&p, SP_E_SYNTAX, p.pos); /* trailing data after the value */
    }
    free(p.scratch);
    if (r < 0) {
        sp_json_free(value);
        set_error(err, r, p.err_pos);
        return r;
    }
    *ret = value;
    if (err)
        set_error(err, SP_OK, 0);
    return SP_OK;
}
