/* Streaming framer: cuts a byte stream into top-level JSON objects by tracking braces, brackets
 * and strings, with a hard bound on what it buffers (see framer.h for the rules). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "stillpoint/alloc.h"
#include "stillpoint/framer.h"

/* 0xFF never occurs in UTF-8, so it can reset a stream at any point, even inside a string. */
#define SP_FRAMER_RESYNC_BYTE 0xFF

typedef enum {
    STATE_IDLE,     /* between objects */
    STATE_GARBAGE,  /* inside a run of non-object bytes, already reported */
    STATE_OBJECT,   /* inside an object, buffering it */
    STATE_SKIPPING, /* inside an object that went over the limit, not buffering */
} State;

struct SpFramer {
    State state;
    size_t max_frame;
    size_t nesting;   /* open '{' and '[' */
    bool in_string;
    bool escaped;     /* the previous string byte was a backslash */
    char *buf;
    size_t len, cap;
};

SpFramer *sp_framer_new(size_t max_frame)
{
    SpFramer *f = sp_calloc(1, sizeof(*f));
    f->max_frame = max_frame ? max_frame : SP_FRAMER_DEFAULT_MAX_FRAME;
    return f;
}

void sp_framer_free(SpFramer *framer)
{
    if (!framer)
        return;
    free(framer->buf);
    free(framer);
}

void sp_framer_reset(SpFramer *framer)
{
    if (!framer)
        return;
    framer->state = STATE_IDLE;
    framer->nesting = 0;
    framer->in_string = false;
    framer->escaped = false;
    framer->len = 0;
}

size_t sp_framer_pending(const SpFramer *framer)
{
    return framer && framer->state == STATE_OBJECT ? framer->len : 0;
}

static void emit(SpFrameCb cb, void *userdata, SpFrameKind kind, const char *data, size_t len,
                 int status)
{
    SpFrame frame = { .kind = kind, .data = data, .len = len, .status = status };
    if (cb)
        cb(&frame, userdata);
}

/* Track strings and nesting for one byte of an object; returns true when the object closed. */
static bool track(SpFramer *f, unsigned char c)
{
    if (f->in_string) {
        if (f->escaped)
            f->escaped = false;
        else if (c == '\\')
            f->escaped = true;
        else if (c == '"')
            f->in_string = false;
        return false;
    }
    if (c == '"') {
        f->in_string = true;
    } else if (c == '{' || c == '[') {
        f->nesting++;
    } else if (c == '}' || c == ']') {
        /* A mismatched closer still counts: the parser reports the object as invalid, and the
         * stream stays in step instead of waiting forever for a brace that never comes. */
        f->nesting--;
        return f->nesting == 0;
    }
    return false;
}

/* Append one byte of the current object; SP_E_TOO_LARGE when it would pass max_frame. */
static int buffer_byte(SpFramer *f, unsigned char c)
{
    if (f->len >= f->max_frame)
        return SP_E_TOO_LARGE;
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        if (cap > f->max_frame)
            cap = f->max_frame;
        f->buf = sp_realloc(f->buf, cap);
        f->cap = cap;
    }
    f->buf[f->len++] = (char)c;
    return SP_OK;
}

static void start_object(SpFramer *f)
{
    f->state = STATE_OBJECT;
    f->nesting = 0;
    f->in_string = false;
    f->escaped = false;
    f->len = 0;
}

/* One byte while inside an object that still fits. */
static void object_byte(SpFramer *f, unsigned char c, SpFrameCb cb, void *userdata)
{
    if (buffer_byte(f, c) == SP_E_TOO_LARGE) {
        /* Report once, give the memory back, and follow the rest of the object unbuffered. */
        emit(cb, userdata, SP_FRAME_ERROR, NULL, 0, SP_E_TOO_LARGE);
        free(f->buf);
        f->buf = NULL;
        f->len = f->cap = 0;
        f->state = STATE_SKIPPING;
        if (track(f, c))
            f->state = STATE_IDLE;
        return;
    }
    if (track(f, c)) {
        f->state = STATE_IDLE;
        emit(cb, userdata, SP_FRAME_OBJECT, f->buf, f->len, SP_OK);
        f->len = 0;
    }
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int sp_framer_feed(SpFramer *framer, const void *data, size_t len, SpFrameCb cb, void *userdata)
{
    const unsigned char *p = data;

    if (!framer || (!data && len > 0))
        return SP_E_INVALID;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];

        if (c == SP_FRAMER_RESYNC_BYTE) {
            sp_framer_reset(framer);
            emit(cb, userdata, SP_FRAME_RESYNC, NULL, 0, SP_OK);
            continue;
        }
        switch (framer->state) {
        case STATE_IDLE:
        case STATE_GARBAGE:
            if (c == '{') {
                start_object(framer);
                object_byte(framer, c, cb, userdata);
            } else if (framer->state == STATE_IDLE && !is_space(c)) {
                framer->state = STATE_GARBAGE;
                emit(cb, userdata, SP_FRAME_ERROR, NULL, 0, SP_E_SYNTAX);
            }
            break;
        case STATE_OBJECT:
            object_byte(framer, c, cb, userdata);
            break;
        case STATE_SKIPPING:
            if (track(framer, c))
                framer->state = STATE_IDLE;
            break;
        }
    }
    return SP_OK;
}
