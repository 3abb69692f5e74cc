/* Unit tests for the streaming framer (protocol/src/framer.c). */
#include <stdio.h>
#include "protocol-test.h"

/* Frames a feed produced, flattened into one string: "O<text>|", "E<status>|", "R|". */
typedef struct {
    char log[4096];
    size_t len;
    size_t objects, errors, resyncs;
    SpFramer *framer;      /* when set, sp_framer_pending is checked inside the callback */
} Seen;

static void record_cb(const SpFrame *frame, void *userdata)
{
    Seen *seen = userdata;
    size_t room = sizeof(seen->log) - seen->len;
    int n = 0;

    switch (frame->kind) {
    case SP_FRAME_OBJECT:
        assert_int_equal(frame->status, SP_OK);
        assert_non_null(frame->data);
        n = snprintf(seen->log + seen->len, room, "O%.*s|", (int)frame->len, frame->data);
        seen->objects++;
        break;
    case SP_FRAME_ERROR:
        assert_null(frame->data);
        assert_int_equal(frame->len, 0);
        n = snprintf(seen->log + seen->len, room, "E%d|", frame->status);
        seen->errors++;
        break;
    case SP_FRAME_RESYNC:
        assert_int_equal(frame->status, SP_OK);
        n = snprintf(seen->log + seen->len, room, "R|");
        seen->resyncs++;
        break;
    }
    assert_true(n > 0 && (size_t)n < room);
    seen->len += (size_t)n;
}

static void feed(SpFramer *f, const char *data, size_t len, Seen *seen)
{
    assert_int_equal(sp_framer_feed(f, data, len, record_cb, seen), SP_OK);
}

/* Feed `in` in one go and return what was seen (static buffer reused per call). */
static const char *frames_of(const char *in, size_t max_frame)
{
    static Seen seen;
    SpFramer *f = sp_framer_new(max_frame);

    memset(&seen, 0, sizeof(seen));
    assert_non_null(f);
    feed(f, in, strlen(in), &seen);
    sp_framer_free(f);
    return seen.log;
}

static void test_object_without_trailing_newline_is_complete(void **state)
{
    assert_string_equal(frames_of("{\"execute\":\"guest-ping\"}", 0),
                        "O{\"execute\":\"guest-ping\"}|");
}

static void test_several_objects_in_one_feed_come_out_in_order(void **state)
{
    assert_string_equal(frames_of("{\"a\":1}{\"b\":[2]}\n  {\"c\":{}}\r\n", 0),
                        "O{\"a\":1}|O{\"b\":[2]}|O{\"c\":{}}|");
}

static void test_whitespace_between_objects_yields_nothing(void **state)
{
    assert_string_equal(frames_of(" \n\r\t \n", 0), "");
}

static void test_braces_and_quotes_inside_strings_do_not_count(void **state)
{
    assert_string_equal(frames_of("{\"a\":\"}{][\\\"}\\\\\"}{\"b\":\"\\\\\"}", 0),
                        "O{\"a\":\"}{][\\\"}\\\\\"}|O{\"b\":\"\\\\\"}|");
}

static void test_object_split_at_every_byte_boundary_is_one_frame(void **state)
{
    const char *obj = "{\"execute\":\"x\",\"arguments\":{\"s\":\"}\\\"{\",\"l\":[1,{}]}}";
    size_t len = strlen(obj);
    char want[256];

    snprintf(want, sizeof(want), "O%s|", obj);
    for (size_t cut = 0; cut <= len; cut++) {
        SpFramer *f = sp_framer_new(0);
        Seen seen = { 0 };
        feed(f, obj, cut, &seen);
        assert_int_equal(seen.objects, cut == len ? 1 : 0);
        assert_int_equal(sp_framer_pending(f), cut == len ? 0 : cut);
        feed(f, obj + cut, len - cut, &seen);
        assert_string_equal(seen.log, want);
        sp_framer_free(f);
    }
}

static void test_one_byte_at_a_time_matches_one_feed(void **state)
{
    const char *in = "{\"a\":\"x\"} junk {\"b\":1}\xff{\"c\":\"\\\"\"}";
    char whole[512];
    SpFramer *f = sp_framer_new(0);
    Seen seen = { 0 };

    snprintf(whole, sizeof(whole), "%s", frames_of(in, 0));
    for (size_t i = 0; in[i]; i++)
        feed(f, in + i, 1, &seen);
    assert_string_equal(seen.log, whole);
    assert_string_equal(whole, "O{\"a\":\"x\"}|E-3|O{\"b\":1}|R|O{\"c\":\"\\\"\"}|");
    sp_framer_free(f);
}

static void test_garbage_run_is_one_syntax_error_then_resumes(void **state)
{
    assert_string_equal(frames_of("xyz ]] \n\"str\" 12 {\"a\":1}", 0), "E-3|O{\"a\":1}|");
    assert_string_equal(frames_of("[1]{\"a\":1}x{\"b\":2}", 0), "E-3|O{\"a\":1}|E-3|O{\"b\":2}|");
}

static void test_nul_bytes_between_objects_are_garbage(void **state)
{
    SpFramer *f = sp_framer_new(0);
    Seen seen = { 0 };

    feed(f, "\0\0{}", 4, &seen);
    assert_string_equal(seen.log, "E-3|O{}|");
    sp_framer_free(f);
}

static void test_resync_byte_in_middle_of_object_drops_it(void **state)
{
    SpFramer *f = sp_framer_new(0);
    Seen seen = { 0 };

    feed(f, "{\"execute\":\"gue", 15, &seen);
    assert_int_equal(sp_framer_pending(f), 15);
    feed(f, "\xff", 1, &seen);
    assert_int_equal(sp_framer_pending(f), 0);
    feed(f, "st-ping\"}{\"id\":2}", 17, &seen);
    /* The tail of the broken object is garbage up to the next '{'. */
    assert_string_equal(seen.log, "R|E-3|O{\"id\":2}|");
    sp_framer_free(f);
}

static void test_resync_byte_inside_string_resets_too(void **state)
{
    assert_string_equal(frames_of("{\"a\":\"x\xff{\"b\":1}", 0), "R|O{\"b\":1}|");
}

static void test_resync_byte_between_objects_is_reported(void **state)
{
    assert_string_equal(frames_of("{}\xff\xff{}", 0), "O{}|R|R|O{}|");
    assert_string_equal(frames_of("junk\xff{}", 0), "E-3|R|O{}|");
}

static void test_object_of_exactly_max_frame_bytes_is_delivered(void **state)
{
    assert_string_equal(frames_of("{\"a\":123}", 9), "O{\"a\":123}|");
}

static void test_oversize_object_is_one_error_and_skipped_with_nesting(void **state)
{
    /* 10-byte limit; the big object nests and has braces in strings after the limit. */
    assert_string_equal(frames_of("{\"a\":[{\"b\":\"}}}\"},{}],\"c\":{}}{\"ok\":1}", 10),
                        "E-6|O{\"ok\":1}|");
    assert_string_equal(frames_of("{\"a\":\"0123456789\"}{}", 10), "E-6|O{}|");
    /* The byte that crosses the limit may be the closing brace itself. */
    assert_string_equal(frames_of("{\"a\":1234}{}", 9), "E-6|O{}|");
}

static void test_resync_byte_ends_skipping_of_oversize_object(void **state)
{
    assert_string_equal(frames_of("{\"a\":\"0123456789\xff{\"b\":1}", 10), "E-6|R|O{\"b\":1}|");
}

static void test_mismatched_closer_still_ends_the_frame(void **state)
{
    /* The framer keeps the stream in step; the parser rejects the frame. */
    assert_string_equal(frames_of("{\"a\":1]{}", 0), "O{\"a\":1]|O{}|");
}

/* A 10 MiB line, fed in 4 KiB chunks, must never be buffered: one error, bounded pending. */
static void test_ten_mib_line_is_rejected_with_bounded_memory(void **state)
{
    const size_t total = 10 * 1024 * 1024, chunk = 4096;
    const char *head = "{\"execute\":\"x\",\"arguments\":{\"data\":\"";
    char *buf = malloc(chunk);
    SpFramer *f = sp_framer_new(0);
    Seen seen = { 0 };
    size_t sent = 0, max_pending = 0;

    assert_non_null(buf);
    feed(f, head, strlen(head), &seen);
    memset(buf, 'A', chunk);
    buf[100] = '{'; /* braces inside the string must not disturb the count */
    while (sent < total) {
        feed(f, buf, chunk, &seen);
        sent += chunk;
        if (sp_framer_pending(f) > max_pending)
            max_pending = sp_framer_pending(f);
    }
    feed(f, "\"}}\n{\"execute\":\"guest-ping\"}\n", 29, &seen);
    assert_true(max_pending <= SP_FRAMER_DEFAULT_MAX_FRAME);
    assert_int_equal(sp_framer_pending(f), 0);
    assert_string_equal(seen.log, "E-6|O{\"execute\":\"guest-ping\"}|");
    free(buf);
    sp_framer_free(f);
}

static void test_ten_mib_of_garbage_is_one_error(void **state)
{
    const size_t total = 10 * 1024 * 1024, chunk = 65536;
    char *buf = malloc(chunk);
    SpFramer *f = sp_framer_new(0);
    Seen seen = { 0 };

    assert_non_null(buf);
    memset(buf, 'x', chunk);
    for (size_t sent = 0; sent < total; sent += chunk) {
        feed(f, buf, chunk, &seen);
        assert_int_equal(sp_framer_pending(f), 0);
    }
    feed(f, "{}", 2, &seen);
    assert_string_equal(seen.log, "E-3|O{}|");
    free(buf);
    sp_framer_free(f);
}

static void test_reset_drops_partial_object(void **state)
{
    SpFramer *f = sp_framer_new(0);
    Seen seen = { 0 };

    feed(f, "{\"a\":\"{", 7, &seen);
    assert_int_equal(sp_framer_pending(f), 7);
    sp_framer_reset(f);
    assert_int_equal(sp_framer_pending(f), 0);
    feed(f, "{\"b\":2}", 7, &seen);
    assert_string_equal(seen.log, "O{\"b\":2}|");
    sp_framer_reset(NULL);
    sp_framer_free(f);
}

static void test_feed_rejects_bad_arguments_and_allows_null_callback(void **state)
{
    SpFramer *f = sp_framer_new(0);

    assert_int_equal(sp_framer_feed(NULL, "{}", 2, NULL, NULL), SP_E_INVALID);
    assert_int_equal(sp_framer_feed(f, NULL, 2, NULL, NULL), SP_E_INVALID);
    assert_int_equal(sp_framer_feed(f, NULL, 0, NULL, NULL), SP_OK);
    assert_int_equal(sp_framer_feed(f, "x{}\xff{\"a\":\"0", 12, NULL, NULL), SP_OK);
    assert_int_equal(sp_framer_pending(f), 8);
    assert_int_equal(sp_framer_pending(NULL), 0);
    sp_framer_free(f);
    sp_framer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_without_trailing_newline_is_complete),
        cmocka_unit_test(test_several_objects_in_one_feed_come_out_in_order),
        cmocka_unit_test(test_whitespace_between_objects_yields_nothing),
        cmocka_unit_test(test_braces_and_quotes_inside_strings_do_not_count),
        cmocka_unit_test(test_object_split_at_every_byte_boundary_is_one_frame),
        cmocka_unit_test(test_one_byte_at_a_time_matches_one_feed),
        cmocka_unit_test(test_garbage_run_is_one_syntax_error_then_resumes),
        cmocka_unit_test(test_nul_bytes_between_objects_are_garbage),
        cmocka_unit_test(test_resync_byte_in_middle_of_object_drops_it),
        cmocka_unit_test(test_resync_byte_inside_string_resets_too),
        cmocka_unit_test(test_resync_byte_between_objects_is_reported),
        cmocka_unit_test(test_object_of_exactly_max_frame_bytes_is_delivered),
        cmocka_unit_test(test_oversize_object_is_one_error_and_skipped_with_nesting),
        cmocka_unit_test(test_resync_byte_ends_skipping_of_oversize_object),
        cmocka_unit_test(test_mismatched_closer_still_ends_the_frame),
        cmocka_unit_test(test_ten_mib_line_is_rejected_with_bounded_memory),
        cmocka_unit_test(test_ten_mib_of_garbage_is_one_error),
        cmocka_unit_test(test_reset_drops_partial_object),
        cmocka_unit_test(test_feed_rejects_bad_arguments_and_allows_null_callback),
    };
    return cmocka_run_group_tests_name("unit/protocol/framer", tests, NULL, NULL);
}
