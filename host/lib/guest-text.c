/* guest-text: guest-chosen text escaped for terminals, logs, D-Bus and the store. */
#include "stillpoint/guest-text.h"

#include <string.h>

/* Characters that reorder or break the displayed line without being control characters. */
static gboolean invisible_format(gunichar c)
{
    return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x2028 ||
           c == 0x2029;
}

char *sp_guest_text(const char *text)
{
    GString *out;
    const char *p, *end;

    if (text == NULL)
        return g_strdup("(null)");
    out = g_string_sized_new(strlen(text));
    end = text + strlen(text);
    for (p = text; p < end;) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", (guchar)*p);
            p++;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            g_string_append_printf(out, "\\x%02x", c);
        else if (c >= 0x80 && c <= 0x9f)
            g_string_append_printf(out, "\\x%02x", c); /* C1: 0x9b is a one-byte CSI */
        else if (invisible_format(c))
            g_string_append_printf(out, "\\u{%04x}", c);
        else
            g_string_append_len(out, p, g_utf8_next_char(p) - p);
        p = g_utf8_next_char(p);
    }
    return g_string_free(out, FALSE);
}
