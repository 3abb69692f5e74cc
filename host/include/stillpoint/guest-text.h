/* guest-text: text a guest chose (an agent's desc, a filesystem's mountpoint, a writer's name, a
 * QMP or libvirt error that quotes it), made safe to show on a terminal, in a log, a D-Bus error
 * or the store. The guest is hostile: an ESC or CSI in its text would rewrite the operator's
 * terminal. Every place that puts guest text into a message goes through this one function. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* A copy of text (NULL: "(null)") in which every control character — C0 (tab, CR, LF and ESC
 * included), DEL and C1 (U+0080..U+009F) — and every byte that is not valid UTF-8 is written
 * as \xNN, and the invisible reordering characters (U+202A..U+202E, U+2066..U+2069) and line
 * separators (U+2028, U+2029) as \u{NNNN}. Printable text, backslashes included, is unchanged,
 * so escaping twice changes nothing more. */
char *sp_guest_text(const char *text);

G_END_DECLS
