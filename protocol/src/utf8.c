/* Strict UTF-8 decoding (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
#include "json-internal.h"

/* Bounds of the second byte for each lead byte: this is where overlongs (E0, F0), surrogates (ED)
 * and code points past U+10FFFF (F4) are excluded, as in RFC 3629's table. */
static void second_byte_range(unsigned char lead, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (lead == 0xE0)
        *lo = 0xA0;
    else if (lead == 0xED)
        *hi = 0x9F;
    else if (lead == 0xF0)
        *lo = 0x90;
    else if (lead == 0xF4)
        *hi = 0x8F;
}

int sp_utf8_decode(const unsigned char *s, size_t len, uint32_t *ret_cp)
{
    unsigned char lead = s[0], lo, hi;
    size_t need;
    uint32_t cp;

    if (lead < 0x80) {
        *ret_cp = lead;
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 2;
        cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 3;
        cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 4;
        cp = lead & 0x07;
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }

    second_byte_range(lead, &lo, &hi);
    for (size_t i = 1; i < need; i++) {
        if (i >= len)
            return -1;
        if (s[i] < lo || s[i] > hi)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *ret_cp = cp;
    return (int)need;
}

bool sp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    if (!s)
        return len == 0;
    while (i < len) {
        uint32_t cp;
        int n = sp_utf8_decode(p + i, len - i, &cp);
        if (n <= 0)
            return false;
        i += (size_t)n;
    }
    return true;
}
