/* Result codes of libstillpoint-protocol: 0 is success, every failure is a named negative code. */
#pragma once

typedef enum {
    SP_OK = 0,
    SP_E_NOMEM = -1,        /* allocation failed (never from this library: it aborts, alloc.h) */
    SP_E_INVALID = -2,      /* bad argument to a library function (programming error) */
    SP_E_SYNTAX = -3,       /* not JSON: unexpected character, bad literal, trailing data */
    SP_E_TRUNCATED = -4,    /* the text ended inside a value */
    SP_E_DEPTH = -5,        /* nesting deeper than the limit */
    SP_E_TOO_LARGE = -6,    /* input or frame over the size limit */
    SP_E_UTF8 = -7,         /* invalid UTF-8 in the input, or a lone/invalid surrogate escape */
    SP_E_ESCAPE = -8,       /* bad backslash escape or raw control character in a string */
    SP_E_RANGE = -9,        /* number out of range (integer beyond 64 bit, double overflow) */
    SP_E_DUPLICATE_KEY = -10, /* an object names the same member twice */
    SP_E_NUL = -11,         /* NUL byte in the input text */
    SP_E_NOT_OBJECT = -12,  /* a message that must be an object is not */
    SP_E_MISSING = -13,     /* a required member is missing */
    SP_E_TYPE = -14,        /* a member has the wrong type */
    SP_E_UNEXPECTED = -15,  /* a message has a member it must not have */
} SpStatus;

/* A short, stable English description of a status code ("invalid UTF-8"). Never NULL. */
const char *sp_status_str(int status);
