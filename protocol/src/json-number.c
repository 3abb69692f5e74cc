/* Locale-independent conversion between JSON number text and doubles. strtod and printf use the
 * C locale's decimal point, and an agent that calls setlocale() may have a ',' there; JSON always
 * uses '.'. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json-internal.h"

static const char *locale_point(void)
{
    const struct lconv *lc = localeconv();
    return lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point : ".";
}

int sp_json_number_to_double(const char *s, size_t len, double *ret)
{
    const char *point = locale_point();
    size_t plen = strlen(point);
    char small[128], *buf = small, *out;
    double d;

    /* Worst case: one '.' replaced by the locale's (possibly multi-byte) point. */
    if (len + plen + 1 > sizeof(small)) {
        buf = sp_malloc(len + plen + 1);
    }
    out = buf;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            memcpy(out, point, plen);
            out += plen;
        } else {
            *out++ = s[i];
        }
    }
    *out = '\0';
    d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    if (isinf(d))
        return SP_E_RANGE;
    *ret = d;
    return SP_OK;
}

/* Replace the locale's decimal point in buf by '.', in place (it is never shorter than '.'). */
static size_t normalize_point(char *buf)
{
    const char *point = locale_point();
    size_t plen = strlen(point);
    char *p = strstr(buf, point);

    if (p && !(plen == 1 && point[0] == '.')) {
        *p = '.';
        memmove(p + 1, p + plen, strlen(p + plen) + 1);
    }
    return strlen(buf);
}

size_t sp_json_format_double(double d, char buf[40])
{
    size_t len = 0;

    for (int prec = 15; prec <= 17; prec++) {
        double back;
        snprintf(buf, 40, "%.*g", prec, d);
        len = normalize_point(buf);
        if (sp_json_number_to_double(buf, len, &back) == SP_OK && back == d)
            break;
    }
    /* "1" would read back as an integer: keep the value's type across a round trip. */
    if (!strpbrk(buf, ".eE")) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    return len;
}
