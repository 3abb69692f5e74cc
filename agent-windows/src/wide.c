/* wide: UTF-8 <-> UTF-16 for the agent's strings (wide.h). */
#include "wide.h"

#include <windows.h>
#include <stdlib.h>
#include "stillpoint/alloc.h"

wchar_t *sp_wide_from_utf8(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? sp_calloc((size_t)n, sizeof(wchar_t)) : NULL;

    if (w)
        MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

char *sp_utf8_from_wide(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? sp_malloc((size_t)n) : NULL;

    if (s && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0)
        s[0] = '\0';
    return s;
}
