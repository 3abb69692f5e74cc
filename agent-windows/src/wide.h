/* UTF-8 (the protocol's strings) to and from UTF-16 (Windows' wide strings). */
#pragma once
#include <wchar.h>

wchar_t *sp_wide_from_utf8(const char *s); /* malloc'd; NULL when s is not convertible */
char *sp_utf8_from_wide(const wchar_t *w); /* malloc'd; NULL when w is not convertible */
