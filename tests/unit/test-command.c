/* Unit tests for the command table and dispatch (protocol/src/command*.c). */
#include <stdio.h>
#include "protocol-test.h"

typedef struct {
    int calls;
    char last_args[256];
} Ctx;

static SpJson *remember_args(Ctx *ctx, const SpJson *args)
{
    char *s = sp_json_serialize(args, NULL);
    assert_non_null(s);
    snprintf(ctx->last_args, sizeof(ctx->last_args), "%s", s);
    free(s);
    ctx->calls++;
    return NULL;
}

static SpJson *ping_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    return remember_args(ctx, args);
}

static SpJson *sync_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    remember_args(ctx, args);
    return sp_json_new_int(sp_json_object_get_int(args, "id", 0));
}

static SpJson *fail_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    remember_args(ctx, args);
    sp_command_error_set(err, NULL, "lease-expired", "lease on %s expired after %d ms", "/", 60000);
    return NULL;
}

static SpJson *fail_with_value_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    remember_args(ctx, args);
    sp_command_error_set(err, SP_ERROR_CLASS_DEVICE_NOT_FOUND, NULL, "no such disk");
    return sp_json_new_string("ignored"); /* must be freed by dispatch (ASan checks) */
}

static SpJson *plain_fail_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    remember_args(ctx, args);
    snprintf(err->desc, sizeof(err->desc), "it broke"); /* no class, no code */
    return NULL;
}

static const SpArgSpec sync_args[] = { { "id", SP_ARG_INT, false }, { 0 } };
static const SpArgSpec typed_args[] = {
    { "s", SP_ARG_STRING, true }, { "i", SP_ARG_INT, true },   { "b", SP_ARG_BOOL, true },
    { "n", SP_ARG_NUMBER, true }, { "l", SP_ARG_STRING_LIST, true }, { "a", SP_ARG_ARRAY, true },
    { "o", SP_ARG_OBJECT, true }, { "any", SP_ARG_ANY, true },  { 0 },
};

static const SpCommand commands[] = {
    { "guest-ping", ping_cb, NULL, SP_CMD_ALLOWED_WHILE_FROZEN },
    { "guest-sync-delimited", sync_cb, sync_args,
      SP_CMD_ALLOWED_WHILE_FROZEN | SP_CMD_DELIMITED_REPLY },
    { "typed", ping_cb, typed_args, 0 },
    { "fails", fail_cb, NULL, SP_CMD_NO_REPLY },
    { "fails-with-value", fail_with_value_cb, NULL, 0 },
    { "quiet", ping_cb, NULL, SP_CMD_NO_REPLY },
    { "stillpoint-freeze", ping_cb, sync_args, 0 },
    { "stillpoint-thaw", fail_cb, NULL, SP_CMD_ALLOWED_WHILE_FROZEN },
    { "stillpoint-status", plain_fail_cb, NULL, SP_CMD_ALLOWED_WHILE_FROZEN },
    { "plain-fail", plain_fail_cb, NULL, 0 },
    { 0 },
};
static const SpCommandTable table = { commands };

/* Dispatch the request text and return the serialized reply (static buffer). */
static const char *dispatch(Ctx *ctx, const char *request, bool frozen, unsigned *ret_flags)
{
    static char out[512];
    SpJson *msg = parse_ok(request);
    SpJson *reply = sp_command_dispatch(&table, ctx, msg, frozen, ret_flags);
    char *s;

    assert_non_null(reply);
    s = sp_json_serialize(reply, NULL);
    snprintf(out, sizeof(out), "%s", s);
    free(s);
    sp_json_free(reply);
    sp_json_free(msg);
    return out;
}

static void test_dispatch_runs_handler_and_echoes_id(void **state)
{
    Ctx ctx = { 0 };
    unsigned flags = 99;

    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-sync-delimited\",\"arguments\":"
                                       "{\"id\":123},\"id\":{\"seq\":1}}",
                                 false, &flags),
                        "{\"return\":123,\"id\":{\"seq\":1}}");
    assert_int_equal(ctx.calls, 1);
    assert_string_equal(ctx.last_args, "{\"id\":123}");
    assert_int_equal(flags, SP_CMD_ALLOWED_WHILE_FROZEN | SP_CMD_DELIMITED_REPLY);
}

static void test_dispatch_handler_returning_null_replies_empty_object(void **state)
{
    Ctx ctx = { 0 };
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-ping\"}", false, NULL),
                        "{\"return\":{}}");
    /* A request without arguments gives the handler an empty object, never NULL. */
    assert_string_equal(ctx.last_args, "{}");
}

static void test_dispatch_handler_error_keeps_class_and_desc(void **state)
{
    Ctx ctx = { 0 };
    unsigned flags = 0;

    /* A standard command answers like qemu-ga: the handler's code is not sent. */
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"fails\",\"id\":1}", false, &flags),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"lease on / expired after "
                        "60000 ms\"},\"id\":1}");
    /* An error is always sent, even by a command that normally has no reply. */
    assert_int_equal(flags, 0);
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"fails-with-value\"}", false, NULL),
                        "{\"error\":{\"class\":\"DeviceNotFound\",\"desc\":\"no such disk\"}}");
}

static void test_dispatch_no_reply_flag_survives_success(void **state)
{
    Ctx ctx = { 0 };
    unsigned flags = 0;

    dispatch(&ctx, "{\"execute\":\"quiet\"}", false, &flags);
    assert_int_equal(flags, SP_CMD_NO_REPLY);
}

static void test_dispatch_unknown_command_is_command_not_found(void **state)
{
    Ctx ctx = { 0 };
    unsigned flags = 99;

    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-exec\",\"id\":\"x\"}", false, &flags),
                        "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command "
                        "guest-exec has not been found\"},\"id\":\"x\"}");
    assert_int_equal(flags, 0);
    assert_int_equal(ctx.calls, 0);
}

static void test_dispatch_name_with_embedded_nul_is_not_found(void **state)
{
    Ctx ctx = { 0 };
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-ping\\u0000x\"}", false, NULL),
                        "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command "
                        "guest-ping has not been found\"}}");
    assert_int_equal(ctx.calls, 0);
}

static void test_dispatch_while_frozen_refuses_commands_off_the_allow_list(void **state)
{
    Ctx ctx = { 0 };

    assert_string_equal(dispatch(&ctx, "{\"execute\":\"typed\",\"id\":5}", true, NULL),
                        "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Command typed has "
                        "been disabled: the command is not allowed\"},\"id\":5}");
    assert_int_equal(ctx.calls, 0);
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-ping\"}", true, NULL),
                        "{\"return\":{}}");
    assert_int_equal(ctx.calls, 1);
}

static void test_dispatch_missing_argument_is_named(void **state)
{
    Ctx ctx = { 0 };
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-sync-delimited\",\"id\":2}", false,
                                 NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'id' is "
                        "missing\"},\"id\":2}");
    assert_int_equal(ctx.calls, 0);
}

static void test_dispatch_wrong_argument_type_names_expected_type(void **state)
{
    static const struct {
        const char *args;
        const char *desc;
    } cases[] = {
        { "{\"s\":1}", "Invalid parameter type for 's', expected: string" },
        { "{\"i\":1.5}", "Invalid parameter type for 'i', expected: integer" },
        { "{\"i\":\"1\"}", "Invalid parameter type for 'i', expected: integer" },
        { "{\"b\":0}", "Invalid parameter type for 'b', expected: boolean" },
        { "{\"n\":\"1\"}", "Invalid parameter type for 'n', expected: number" },
        { "{\"l\":\"/\"}", "Invalid parameter type for 'l', expected: array" },
        { "{\"l\":[\"/\",\"/var\",3]}", "Invalid parameter type for 'l[2]', expected: string" },
        { "{\"a\":{}}", "Invalid parameter type for 'a', expected: array" },
        { "{\"o\":[]}", "Invalid parameter type for 'o', expected: object" },
        { "{\"s\":null}", "Invalid parameter type for 's', expected: string" },
    };
    Ctx ctx = { 0 };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[256], want[256];
        snprintf(req, sizeof(req), "{\"execute\":\"typed\",\"arguments\":%s}", cases[i].args);
        snprintf(want, sizeof(want), "{\"error\":{\"class\":\"GenericError\",\"desc\":\"%s\"}}",
                 cases[i].desc);
        assert_string_equal(dispatch(&ctx, req, false, NULL), want);
    }
    assert_int_equal(ctx.calls, 0);
}

static void test_dispatch_accepts_every_matching_type(void **state)
{
    Ctx ctx = { 0 };
    const char *args = "{\"s\":\"x\",\"i\":-1,\"b\":true,\"n\":2.5,\"l\":[],\"a\":[1,\"x\"],"
                       "\"o\":{},\"any\":null}";
    char req[256];

    snprintf(req, sizeof(req), "{\"execute\":\"typed\",\"arguments\":%s}", args);
    assert_string_equal(dispatch(&ctx, req, false, NULL), "{\"return\":{}}");
    assert_string_equal(ctx.last_args, args);
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"typed\",\"arguments\":{\"n\":3}}", false,
                                 NULL),
                        "{\"return\":{}}");
    assert_int_equal(ctx.calls, 2);
}

static void test_dispatch_unexpected_argument_is_named(void **state)
{
    Ctx ctx = { 0 };

    assert_string_equal(dispatch(&ctx, "{\"execute\":\"typed\",\"arguments\":{\"s\":\"x\","
                                       "\"bogus\":1}}",
                                 false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'bogus' is "
                        "unexpected\"}}");
    /* A command that declares no arguments takes none. */
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-ping\",\"arguments\":{\"x\":1}}",
                                 false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'x' is "
                        "unexpected\"}}");
    assert_int_equal(ctx.calls, 0);
}

static void test_dispatch_bad_envelope_is_generic_error_with_id(void **state)
{
    Ctx ctx = { 0 };

    assert_string_equal(dispatch(&ctx, "[\"guest-ping\"]", false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input must be a "
                        "JSON object\"}}");
    assert_string_equal(dispatch(&ctx, "{\"id\":9}", false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input lacks member "
                        "'execute'\"},\"id\":9}");
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"guest-ping\",\"arguments\":1}", false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input member "
                        "'arguments' must be an object\"}}");
    assert_int_equal(ctx.calls, 0);
}

static void test_dispatch_stillpoint_errors_always_carry_a_code(void **state)
{
    Ctx ctx = { 0 };

    assert_string_equal(dispatch(&ctx, "{\"execute\":\"stillpoint-nope\"}", false, NULL),
                        "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command "
                        "stillpoint-nope has not been found\",\"code\":\"command-not-found\"}}");
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"stillpoint-freeze\",\"id\":1}", true, NULL),
                        "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Command "
                        "stillpoint-freeze has been disabled: the command is not allowed\","
                        "\"code\":\"command-disabled\"},\"id\":1}");
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"stillpoint-freeze\"}", false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'id' is "
                        "missing\",\"code\":\"invalid-arguments\"}}");
    /* The handler's own code is kept; a handler without one gets "failed". */
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"stillpoint-thaw\"}", true, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"lease on / expired "
                        "after 60000 ms\",\"code\":\"lease-expired\"}}");
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"stillpoint-status\"}", false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"it broke\","
                        "\"code\":\"failed\"}}");
    /* Standard commands keep qemu-ga's exact replies, without a code. */
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"plain-fail\"}", false, NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"it broke\"}}");
    assert_string_equal(dispatch(&ctx, "{\"execute\":\"stillpoint-freeze\",\"arguments\":"
                                       "{\"id\":3}}",
                                 false, NULL),
                        "{\"return\":{}}");
}

static void test_reply_for_bad_input_uses_qemu_parser_texts(void **state)
{
    assert_json_text(sp_command_reply_for_bad_input(SP_E_TOO_LARGE, NULL),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON token size limit "
                     "exceeded\"}}");
    assert_json_text(sp_command_reply_for_bad_input(SP_E_DEPTH, "nesting too deep at byte 64"),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON nesting depth limit "
                     "exceeded\"}}");
    assert_json_text(sp_command_reply_for_bad_input(SP_E_UTF8, "invalid UTF-8 at byte 3"),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, invalid "
                     "UTF-8 at byte 3\"}}");
    assert_json_text(sp_command_reply_for_bad_input(SP_E_SYNTAX, NULL),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, syntax "
                     "error\"}}");
}

/* The loop an agent runs: framer -> parser -> dispatch, one reply line per frame. */
typedef struct {
    Ctx ctx;
    char out[2048];
    size_t len;
} Agent;

static void agent_frame_cb(const SpFrame *frame, void *userdata)
{
    Agent *a = userdata;
    SpJson *msg = NULL, *reply = NULL;
    SpJsonError err;
    unsigned flags = 0;
    char *text;

    if (frame->kind == SP_FRAME_RESYNC)
        return;
    if (frame->kind == SP_FRAME_ERROR)
        reply = sp_command_reply_for_bad_input(frame->status, NULL);
    else if (sp_json_parse(frame->data, frame->len, NULL, &msg, &err) != SP_OK)
        reply = sp_command_reply_for_bad_input(err.status, err.message);
    else
        reply = sp_command_dispatch(&table, &a->ctx, msg, false, &flags);
    text = sp_json_serialize(reply, NULL);
    assert_non_null(text);
    a->len += (size_t)snprintf(a->out + a->len, sizeof(a->out) - a->len, "%s%s\n",
                               flags & SP_CMD_DELIMITED_REPLY ? "<FF>" : "", text);
    free(text);
    sp_json_free(reply);
    sp_json_free(msg);
}

static void test_agent_loop_answers_every_kind_of_bad_frame(void **state)
{
    static const char stream[] =
        "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":77}}"
        "{\"execute\":\"guest-ping\",\"arguments\":{\"pad\":\"\xff" /* cut by a resync */
        "{\"execute\":\"guest-ping\",\"id\":\"a\0b\"}"              /* NUL byte */
        "{\"execute\":\"guest-ping\",\"id\":\"\xc0\xaf\"}"         /* overlong UTF-8 */
        "{\"execute\":\"guest-ping\",\"id\":{\"x\":1,\"x\":2}}"    /* duplicate key */
        "oops\n"                                                    /* garbage */
        "{\"execute\":\"guest-ping\",\"id\":1}";
    const char *want =
        "<FF>{\"return\":77}\n"
        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, NUL byte in input at "
        "byte 31\"}}\n"
        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, invalid UTF-8 at byte "
        "30\"}}\n"
        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, duplicate object member "
        "at byte 36\"}}\n"
        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, syntax error\"}}\n"
        "{\"return\":{},\"id\":1}\n";
    Agent agent = { 0 };
    SpFramer *f = sp_framer_new(0);

    assert_int_equal(sp_framer_feed(f, stream, sizeof(stream) - 1, agent_frame_cb, &agent), SP_OK);
    assert_string_equal(agent.out, want);
    sp_framer_free(f);
}

static void test_find_and_count_walk_the_table(void **state)
{
    const SpCommandTable empty = { NULL };

    assert_int_equal(sp_command_count(&table), 10);
    assert_int_equal(sp_command_count(&empty), 0);
    assert_int_equal(sp_command_count(NULL), 0);
    assert_ptr_equal(sp_command_find(&table, "typed"), &commands[2]);
    assert_null(sp_command_find(&table, "typ"));
    assert_null(sp_command_find(&table, NULL));
    assert_null(sp_command_find(NULL, "typed"));
}

static void test_command_error_set_formats_and_defaults_class(void **state)
{
    SpCommandError err = { 0 };
    char long_name[600];

    sp_command_error_set(&err, NULL, NULL, "freeze of %s failed: %s", "/srv", "EBUSY");
    assert_string_equal(err.klass, SP_ERROR_CLASS_GENERIC);
    assert_null(err.code);
    assert_string_equal(err.desc, "freeze of /srv failed: EBUSY");
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    sp_command_error_set(&err, SP_ERROR_CLASS_DEVICE_NOT_ACTIVE, "c", "%s", long_name);
    assert_int_equal(strlen(err.desc), sizeof(err.desc) - 1); /* truncated, terminated */
    assert_string_equal(err.code, "c");
    sp_command_error_set(NULL, NULL, NULL, "ignored");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_runs_handler_and_echoes_id),
        cmocka_unit_test(test_dispatch_handler_returning_null_replies_empty_object),
        cmocka_unit_test(test_dispatch_handler_error_keeps_class_and_desc),
        cmocka_unit_test(test_dispatch_no_reply_flag_survives_success),
        cmocka_unit_test(test_dispatch_unknown_command_is_command_not_found),
        cmocka_unit_test(test_dispatch_name_with_embedded_nul_is_not_found),
        cmocka_unit_test(test_dispatch_while_frozen_refuses_commands_off_the_allow_list),
        cmocka_unit_test(test_dispatch_missing_argument_is_named),
        cmocka_unit_test(test_dispatch_wrong_argument_type_names_expected_type),
        cmocka_unit_test(test_dispatch_accepts_every_matching_type),
        cmocka_unit_test(test_dispatch_unexpected_argument_is_named),
        cmocka_unit_test(test_dispatch_bad_envelope_is_generic_error_with_id),
        cmocka_unit_test(test_dispatch_stillpoint_errors_always_carry_a_code),
        cmocka_unit_test(test_reply_for_bad_input_uses_qemu_parser_texts),
        cmocka_unit_test(test_agent_loop_answers_every_kind_of_bad_frame),
        cmocka_unit_test(test_find_and_count_walk_the_table),
        cmocka_unit_test(test_command_error_set_formats_and_defaults_class),
    };
    return cmocka_run_group_tests_name("unit/protocol/command", tests, NULL, NULL);
}
