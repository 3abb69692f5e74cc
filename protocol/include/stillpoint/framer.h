/* Streaming framer: bytes in as they arrive from a serial port or socket, complete top-level JSON
 * objects out, one at a time, with bounded memory.
 *
 * Rules (protocol/PROTOCOL.md, "Framing"):
 *  - Between objects, whitespace is skipped. An object need not end in a newline: it is complete
 *    when its closing brace balances the opening one (strings and escapes are tracked).
 *  - The byte 0xFF (never valid in UTF-8 JSON) discards any partial object and resets the framer;
 *    the callback sees SP_FRAME_RESYNC. This is how guest-sync-delimited recovers a stream.
 *  - Any other byte outside an object (garbage, a stray ']') yields one SP_FRAME_ERROR with
 *    SP_E_SYNTAX for the whole run of garbage, which is skipped up to the next '{' or 0xFF.
 *  - An object growing past max_frame bytes yields one SP_FRAME_ERROR with SP_E_TOO_LARGE as soon as
 *    the limit is crossed; the rest of that object is then skipped without being buffered (the
 *    framer keeps tracking its nesting), or until a 0xFF byte.
 *  - The framer does not validate JSON inside an object: the parser does that on the frame. */
#pragma once
#include <stddef.h>
#include "stillpoint/status.h"

#define SP_FRAMER_DEFAULT_MAX_FRAME (64 * 1024)

typedef enum {
    SP_FRAME_OBJECT, /* data/len: the object's text, from '{' to its matching '}' */
    SP_FRAME_ERROR,  /* status says why; data/len are NULL/0 */
    SP_FRAME_RESYNC, /* a 0xFF byte was seen */
} SpFrameKind;

typedef struct {
    SpFrameKind kind;
    const char *data; /* valid only during the callback */
    size_t len;
    int status;       /* SP_OK for objects and resyncs */
} SpFrame;

/* Called once per frame, in stream order. Callers that want one message at a time queue them.
 * The callback may call sp_framer_reset, but must not feed or free the framer it came from. */
typedef void (*SpFrameCb)(const SpFrame *frame, void *userdata);

typedef struct SpFramer SpFramer;

SpFramer *sp_framer_new(size_t max_frame); /* 0 = SP_FRAMER_DEFAULT_MAX_FRAME */
void sp_framer_free(SpFramer *framer);    /* accepts NULL */
void sp_framer_reset(SpFramer *framer);   /* drop any partial object */
/* Feed bytes; calls cb for every frame they complete. Returns SP_OK (SP_E_INVALID on misuse:
 * no framer, or NULL data with a length). */
int sp_framer_feed(SpFramer *framer, const void *data, size_t len, SpFrameCb cb, void *userdata);
/* Bytes of the partial object currently held (for tests and diagnostics). */
size_t sp_framer_pending(const SpFramer *framer);
