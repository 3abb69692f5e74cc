/* libFuzzer target for libstillpoint-protocol: parser, serializer round trip, framer and command
 * dispatch. Linked with fuzz-replay.c (no libFuzzer) it is `fuzz-protocol-replay FILE...`, which
 * replays saved inputs, e.g. a crash found by the fuzzer, with a plain build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stillpoint/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the library promises was broken: crash loudly so the fuzzer keeps the input. */
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static SpJson *echo_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_copy(args);
}

static SpJson *fail_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    sp_command_error_set(err, NULL, "fuzz-code", "failed with %zu args", sp_json_object_len(args));
    return NULL;
}

static const SpArgSpec sync_args[] = { { "id", SP_ARG_INT, false }, { 0 } };
static const SpArgSpec list_args[] = { { "mountpoints", SP_ARG_STRING_LIST, true }, { 0 } };
static const SpArgSpec typed_args[] = {
    { "s", SP_ARG_STRING, false }, { "i", SP_ARG_INT, true },   { "b", SP_ARG_BOOL, true },
    { "n", SP_ARG_NUMBER, true },  { "a", SP_ARG_ARRAY, true }, { "o", SP_ARG_OBJECT, true },
    { "x", SP_ARG_ANY, true },     { 0 },
};
static const SpCommand commands[] = {
    { "guest-ping", echo_cb, NULL, SP_CMD_ALLOWED_WHILE_FROZEN },
    { "guest-sync-delimited", echo_cb, sync_args,
      SP_CMD_ALLOWED_WHILE_FROZEN | SP_CMD_DELIMITED_REPLY },
    { "guest-fsfreeze-freeze-list", fail_cb, list_args, 0 }, /* its code must be dropped */
    { "typed", echo_cb, typed_args, SP_CMD_NO_REPLY },
    { "stillpoint-freeze", fail_cb, sync_args, 0 },
    { "stillpoint-status", echo_cb, NULL, SP_CMD_ALLOWED_WHILE_FROZEN },
    { 0 },
};
static const SpCommandTable table = { commands };

/* serialize(v) must parse back to an equal value and serialize to the very same text. */
static void check_round_trip(const SpJson *v)
{
    SpJsonLimits lim = { .max_depth = SP_JSON_DEFAULT_MAX_DEPTH, .max_size = SIZE_MAX };
    size_t len = 0, len2 = 0;
    char *text = sp_json_serialize(v, &len), *text2;
    SpJson *back = NULL, *copy;
    SpJsonError err;

    if (!text)
        return; /* out of memory */
    CHECK(strlen(text) == len);
    CHECK(sp_json_parse(text, len, &lim, &back, &err) == SP_OK);
    CHECK(sp_json_equal(v, back));
    text2 = sp_json_serialize(back, &len2);
    CHECK(text2 && len2 == len && memcmp(text, text2, len) == 0);
    copy = sp_json_copy(v);
    CHECK(sp_json_equal(copy, v));
    free(text);
    free(text2);
    sp_json_free(back);
    sp_json_free(copy);
}

static void check_parse(const uint8_t *data, size_t size)
{
    SpJson *v = NULL;
    SpJsonError err;
    int r = sp_json_parse((const char *)data, size, NULL, &v, &err);

    CHECK(r == err.status);
    CHECK(r <= SP_OK && r >= SP_E_UNEXPECTED);
    CHECK((r == SP_OK) == (v != NULL));
    CHECK(r == SP_OK || err.offset <= size);
    if (v)
        check_round_trip(v);
    sp_json_free(v);
}

/* Differential check of the UTF-8 validator against the string parser. */
static void check_utf8(const uint8_t *data, size_t size)
{
    char *quoted;
    SpJson *v = NULL;

    if (size > 4096 || memchr(data, '"', size) || memchr(data, '\\', size))
        return;
    for (size_t i = 0; i < size; i++)
        if (data[i] < 0x20)
            return;
    quoted = malloc(size + 2);
    if (!quoted)
        return;
    quoted[0] = '"';
    memcpy(quoted + 1, data, size);
    quoted[size + 1] = '"';
    CHECK((sp_json_parse(quoted, size + 2, NULL, &v, NULL) == SP_OK) ==
          sp_utf8_valid((const char *)data, size));
    sp_json_free(v);
    free(quoted);
}

/* What the framer produced, folded into a hash, so two feeds can be compared cheaply. */
typedef struct {
    uint64_t hash;
    size_t frames;
    bool frozen;
} FrameLog;

static void mix(FrameLog *log, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        log->hash = (log->hash ^ b[i]) * 1099511628211ull;
}

/* Every object frame goes through the agent's path: parse, dispatch, serialize the reply. */
static void serve(const SpFrame *frame, bool frozen)
{
    SpJson *msg = NULL, *reply;
    SpJsonError err;
    unsigned flags = 0;
    int r = sp_json_parse(frame->data, frame->len, NULL, &msg, &err);

    reply = r == SP_OK ? sp_command_dispatch(&table, NULL, msg, frozen, &flags)
                       : sp_command_reply_for_bad_input(r, err.message);
    if (reply) {
        const SpJson *ret = NULL;
        const char *klass = NULL, *code = NULL;
        SpRequest req;
        CHECK(sp_reply_parse(reply, &ret, &klass, NULL, &code) == SP_OK);
        CHECK((ret == NULL) != (klass == NULL));
        CHECK(!(flags & SP_CMD_NO_REPLY) || ret);
        /* Every error of a stillpoint- command has a code, and only those have one. */
        if (klass && msg && sp_request_parse(msg, &req, NULL) == SP_OK)
            CHECK((code != NULL) == (strncmp(req.execute, SP_EXTENSION_PREFIX,
                                              strlen(SP_EXTENSION_PREFIX)) == 0));
        check_round_trip(reply);
    }
    sp_json_free(reply);
    sp_json_free(msg);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    FrameLog *log = userdata;

    mix(log, &frame->kind, sizeof(frame->kind));
    mix(log, &frame->status, sizeof(frame->status));
    mix(log, &frame->len, sizeof(frame->len));
    log->frames++;
    if (frame->kind == SP_FRAME_OBJECT) {
        CHECK(frame->len >= 2 && frame->data[0] == '{' && frame->len <= 512);
        mix(log, frame->data, frame->len);
        serve(frame, log->frozen);
    }
}

/* Feeding all at once or in odd-sized chunks must produce the same frames. */
static void check_framer(const uint8_t *data, size_t size)
{
    FrameLog whole = { .hash = 14695981039346656037ull, .frozen = size & 1 };
    FrameLog chunked = whole;
    size_t step = size ? 1 + data[0] % 13 : 1;
    SpFramer *f = sp_framer_new(512); /* small limit, so the fuzzer reaches the skip path */

    if (!f)
        return;
    CHECK(sp_framer_feed(f, data, size, frame_cb, &whole) == SP_OK);
    CHECK(sp_framer_pending(f) <= 512);
    sp_framer_reset(f);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        CHECK(sp_framer_feed(f, data + off, n, frame_cb, &chunked) == SP_OK);
    }
    CHECK(whole.hash == chunked.hash && whole.frames == chunked.frames);
    sp_framer_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size);
    check_utf8(data, size);
    check_framer(data, size);
    return 0;
}
