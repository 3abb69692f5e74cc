/* Names of the protocol library's result codes. */
#include "stillpoint/status.h"

const char *sp_status_str(int status)
{
    switch ((SpStatus)status) {
    case SP_OK: return "success";
    case SP_E_NOMEM: return "out of memory";
    case SP_E_INVALID: return "invalid argument";
    case SP_E_SYNTAX: return "syntax error";
    case SP_E_TRUNCATED: return "unexpected end of input";
    case SP_E_DEPTH: return "nesting too deep";
    case SP_E_TOO_LARGE: return "input too large";
    case SP_E_UTF8: return "invalid UTF-8";
    case SP_E_ESCAPE: return "invalid escape or control character in string";
    case SP_E_RANGE: return "number out of range";
    case SP_E_DUPLICATE_KEY: return "duplicate object member";
    case SP_E_NUL: return "NUL byte in input";
    case SP_E_NOT_OBJECT: return "not a JSON object";
    case SP_E_MISSING: return "missing member";
    case SP_E_TYPE: return "member of wrong type";
    case SP_E_UNEXPECTED: return "unexpected member";
    }
    return "unknown error";
}
