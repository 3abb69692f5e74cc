/* A small strict JSON value model: parse, build, inspect, serialize. No global state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "stillpoint/status.h"

typedef enum {
    SP_JSON_NULL,
    SP_JSON_BOOL,
    SP_JSON_INT,     /* integers that fit int64_t */
    SP_JSON_DOUBLE,  /* numbers with a fraction or exponent (integers beyond int64 are SP_E_RANGE) */
    SP_JSON_STRING,  /* UTF-8, may contain U+0000 (length is explicit) */
    SP_JSON_ARRAY,
    SP_JSON_OBJECT,  /* members keep their insertion order; keys are unique */
} SpJsonType;

typedef struct SpJson SpJson;

#define SP_JSON_DEFAULT_MAX_DEPTH 64
#define SP_JSON_DEFAULT_MAX_SIZE (64 * 1024)

typedef struct {
    unsigned max_depth; /* 0 = SP_JSON_DEFAULT_MAX_DEPTH */
    size_t max_size;    /* bytes of input text; 0 = SP_JSON_DEFAULT_MAX_SIZE */
} SpJsonLimits;

typedef struct {
    int status;     /* SpStatus */
    size_t offset;  /* byte offset in the input where the error was found */
    char message[160]; /* "invalid UTF-8 at byte 12" — for humans; match on status */
} SpJsonError;

/* Parse exactly one JSON value from text[0..len) (surrounding whitespace allowed, nothing else).
 * Integers outside int64 are SP_E_RANGE (never silently rounded). limits may be NULL.
 * On success returns SP_OK and *ret owns the value; on failure *ret is untouched, err (may be
 * NULL) says why and where. */
int sp_json_parse(const char *text, size_t len, const SpJsonLimits *limits, SpJson **ret,
                  SpJsonError *err);

/* Serialize compactly (no spaces, no newline). Returns a NUL-terminated malloc'd string (NULL only
 * for a NULL value); *ret_len (may be NULL) gets its length. Strings are escaped so the output
 * is pure ASCII-safe JSON except for valid UTF-8 passed through; U+0000 becomes \u0000. */
char *sp_json_serialize(const SpJson *value, size_t *ret_len);

void sp_json_free(SpJson *value); /* accepts NULL */
SpJson *sp_json_copy(const SpJson *value);
bool sp_json_equal(const SpJson *a, const SpJson *b);

/* Building never fails: like every allocation of this library, the constructors and containers
 * abort on allocation failure (alloc.h), so their results need no check. Constructors return NULL
 * only for a NULL string (sp_json_new_string(NULL)), which a container then refuses. */
SpJson *sp_json_new_null(void);
SpJson *sp_json_new_bool(bool b);
SpJson *sp_json_new_int(int64_t i);
SpJson *sp_json_new_double(double d);
SpJson *sp_json_new_string(const char *s);                 /* copies; s must be valid UTF-8 */
SpJson *sp_json_new_string_len(const char *s, size_t len);
SpJson *sp_json_new_array(void);
SpJson *sp_json_new_object(void);

/* Containers take ownership of the value. They return SP_OK, or SP_E_INVALID (and free the value)
 * only when misused: a container of another type or NULL, a NULL key or a NULL value.
 * Setting an existing key replaces its value in place. */
int sp_json_array_append(SpJson *array, SpJson *value);
int sp_json_object_set(SpJson *object, const char *key, SpJson *value);
/* Convenience setters: sp_json_object_set(obj, key, sp_json_new_xxx(v)). */
int sp_json_object_set_string(SpJson *object, const char *key, const char *s);
int sp_json_object_set_int(SpJson *object, const char *key, int64_t i);
int sp_json_object_set_bool(SpJson *object, const char *key, bool b);
/* An optional member: set when s is not NULL, nothing (SP_OK) when it is. */
int sp_json_object_set_optional_string(SpJson *object, const char *key, const char *s);

SpJsonType sp_json_type(const SpJson *value);
bool sp_json_get_bool(const SpJson *value);           /* false if not a bool */
int64_t sp_json_get_int(const SpJson *value);         /* 0 if not an int */
double sp_json_get_double(const SpJson *value);       /* ints convert; 0 otherwise */
const char *sp_json_get_string(const SpJson *value);  /* NULL if not a string */
size_t sp_json_get_string_len(const SpJson *value);

size_t sp_json_array_len(const SpJson *array);        /* 0 if not an array */
const SpJson *sp_json_array_get(const SpJson *array, size_t index); /* NULL if out of range */

size_t sp_json_object_len(const SpJson *object);
const SpJson *sp_json_object_get(const SpJson *object, const char *key); /* NULL if absent */
/* Iterate members in order: index 0..len-1; returns the key and sets *ret_value. Keys are
 * compared with their full length everywhere; a key containing U+0000 reads as cut there. */
const char *sp_json_object_member(const SpJson *object, size_t index, const SpJson **ret_value);
/* Typed lookups: NULL / fallback when absent or of another type. */
const char *sp_json_object_get_string(const SpJson *object, const char *key);
int64_t sp_json_object_get_int(const SpJson *object, const char *key, int64_t fallback);
bool sp_json_object_get_bool(const SpJson *object, const char *key, bool fallback);
/* Remove a member and hand it to the caller (NULL if absent). */
SpJson *sp_json_object_take(SpJson *object, const char *key);

/* Checks that s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool sp_utf8_valid(const char *s, size_t len);
