/* Private layout of SpJson, shared by the value model, the parser and the serializer. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "stillpoint/alloc.h"
#include "stillpoint/json.h"

typedef struct {
    char *key;      /* NUL-terminated; may also contain U+0000 (key_len is authoritative) */
    size_t key_len;
    SpJson *value;
} SpJsonMember;

struct SpJson {
    SpJsonType type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            char *s;   /* NUL-terminated copy, len bytes before the NUL */
            size_t len;
        } str;
        struct {
            SpJson **items;
            size_t len, cap;
        } arr;
        struct {
            SpJsonMember *members;
            size_t len, cap;
            /* Open-addressing index (member index + 1, 0 = empty) built once an object is big
             * enough that linear lookups would let a peer make duplicate checks quadratic. */
            uint32_t *index;
            size_t index_cap;
        } obj;
    } u;
};

/* Find a member by exact bytes; returns its position or SIZE_MAX. */
size_t sp_json_object_find(const SpJson *object, const char *key, size_t key_len);
/* Append a member whose key is known to be new; takes ownership of value. */
void sp_json_object_append(SpJson *object, const char *key, size_t key_len, SpJson *value);

/* Decode one UTF-8 sequence from s[0..len). Returns its length (1-4) and sets *ret_cp, 0 when
 * the sequence is invalid, or -1 when it is a valid prefix cut off by the end of the input. */
int sp_utf8_decode(const unsigned char *s, size_t len, uint32_t *ret_cp);

/* Convert the JSON number text s[0..len) (already checked against the grammar) to a double,
 * independent of the C locale. SP_E_RANGE when it overflows to infinity. */
int sp_json_number_to_double(const char *s, size_t len, double *ret);
/* Format a finite double as the shortest of %.15g/%.16g/%.17g that reads back to the same value,
 * always with a '.' or an exponent so it parses as a double again. Returns the length. */
size_t sp_json_format_double(double d, char buf[40]);
