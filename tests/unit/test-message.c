/* Unit tests for QGA request/reply messages (protocol/src/message.c). */
#include <stdio.h>
#include "protocol-test.h"

/* Parse `text` as a request; returns the status, and the error's desc in desc_out. */
static int request_status(const char *text, char *desc_out, size_t desc_size)
{
    SpJson *msg = parse_ok(text);
    SpRequest req = { .execute = "untouched" };
    SpRequestError err = { 0 };
    int r = sp_request_parse(msg, &req, &err);

    if (r != SP_OK) {
        assert_int_equal(err.status, r);
        assert_string_equal(req.execute, "untouched"); /* output untouched on failure */
        snprintf(desc_out, desc_size, "%s", err.desc);
    }
    sp_json_free(msg);
    return r;
}

static void test_request_parse_borrows_execute_arguments_and_id(void **state)
{
    SpJson *msg = parse_ok("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":7},\"id\":\"abc\"}");
    SpRequest req;
    SpRequestError err;

    assert_int_equal(sp_request_parse(msg, &req, &err), SP_OK);
    assert_string_equal(req.execute, "guest-sync");
    assert_int_equal(sp_json_object_get_int(req.arguments, "id", 0), 7);
    assert_string_equal(sp_json_get_string(req.id), "abc");
    sp_json_free(msg);
}

static void test_request_parse_without_arguments_or_id_gives_null(void **state)
{
    SpJson *msg = parse_ok("{\"execute\":\"guest-ping\"}");
    SpRequest req;

    assert_int_equal(sp_request_parse(msg, &req, NULL), SP_OK);
    assert_null(req.arguments);
    assert_null(req.id);
    sp_json_free(msg);
}

static void test_request_parse_uses_qemu_error_texts(void **state)
{
    char desc[160];

    assert_int_equal(request_status("[1]", desc, sizeof(desc)), SP_E_NOT_OBJECT);
    assert_string_equal(desc, "QMP input must be a JSON object");
    assert_int_equal(request_status("{\"id\":1}", desc, sizeof(desc)), SP_E_MISSING);
    assert_string_equal(desc, "QMP input lacks member 'execute'");
    assert_int_equal(request_status("{\"execute\":1}", desc, sizeof(desc)), SP_E_TYPE);
    assert_string_equal(desc, "QMP input member 'execute' must be a string");
    assert_int_equal(request_status("{\"execute\":\"a\",\"arguments\":[]}", desc, sizeof(desc)),
                     SP_E_TYPE);
    assert_string_equal(desc, "QMP input member 'arguments' must be an object");
    assert_int_equal(request_status("{\"exec-oob\":\"a\"}", desc, sizeof(desc)), SP_E_UNEXPECTED);
    assert_string_equal(desc, "QMP input member 'exec-oob' is unexpected");
}

static void test_request_parse_key_with_embedded_nul_is_not_execute(void **state)
{
    char desc[160];
    assert_int_equal(request_status("{\"execute\\u0000\":\"guest-ping\"}", desc, sizeof(desc)),
                     SP_E_UNEXPECTED);
}

static void test_request_parse_null_message_is_not_object(void **state)
{
    SpRequest req;
    SpRequestError err;

    assert_int_equal(sp_request_parse(NULL, &req, &err), SP_E_NOT_OBJECT);
    assert_int_equal(sp_request_parse(NULL, NULL, NULL), SP_E_INVALID);
}

static void test_request_new_builds_qga_request(void **state)
{
    SpJson *args = sp_json_new_object();
    SpJson *id = sp_json_new_int(42);

    sp_json_object_set_int(args, "id", 5);
    assert_json_text(sp_request_new("guest-sync", args, id),
                     "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5},\"id\":42}");
    assert_json_text(sp_request_new("guest-ping", NULL, NULL), "{\"execute\":\"guest-ping\"}");
    assert_null(sp_request_new(NULL, sp_json_new_object(), NULL)); /* arguments freed */
    sp_json_free(id);
}

static void test_reply_new_return_defaults_to_empty_object(void **state)
{
    SpJson *id = parse_ok("[1,\"x\"]");

    assert_json_text(sp_reply_new_return(NULL, NULL), "{\"return\":{}}");
    assert_json_text(sp_reply_new_return(sp_json_new_int(3), id), "{\"return\":3,\"id\":[1,\"x\"]}");
    sp_json_free(id);
}

static void test_reply_new_error_has_class_desc_and_optional_code(void **state)
{
    SpJson *id = sp_json_new_string("r1");

    assert_json_text(sp_reply_new_error(SP_ERROR_CLASS_COMMAND_NOT_FOUND, "gone", NULL, NULL),
                     "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"gone\"}}");
    assert_json_text(sp_reply_new_error(NULL, "lease expired", "lease-expired", id),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"lease expired\","
                     "\"code\":\"lease-expired\"},\"id\":\"r1\"}");
    assert_json_text(sp_reply_new_error(NULL, NULL, NULL, NULL),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"\"}}");
    sp_json_free(id);
}

static void test_reply_parse_classifies_return(void **state)
{
    SpJson *reply = parse_ok("{\"return\":{\"a\":1},\"id\":3}");
    const SpJson *ret = NULL;
    const char *klass = "x", *desc = "x", *code = "x";

    assert_int_equal(sp_reply_parse(reply, &ret, &klass, &desc, &code), SP_OK);
    assert_int_equal(sp_json_object_get_int(ret, "a", 0), 1);
    assert_null(klass);
    assert_null(desc);
    assert_null(code);
    sp_json_free(reply);
}

static void test_reply_parse_classifies_error_with_and_without_code(void **state)
{
    SpJson *reply = parse_ok("{\"error\":{\"class\":\"GenericError\",\"desc\":\"d\",\"code\":\"c\"}}");
    const SpJson *ret = (const SpJson *)1;
    const char *klass = NULL, *desc = NULL, *code = NULL;

    assert_int_equal(sp_reply_parse(reply, &ret, &klass, &desc, &code), SP_OK);
    assert_null(ret);
    assert_string_equal(klass, "GenericError");
    assert_string_equal(desc, "d");
    assert_string_equal(code, "c");
    sp_json_free(reply);
    reply = parse_ok("{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"d\"}}");
    assert_int_equal(sp_reply_parse(reply, NULL, &klass, NULL, &code), SP_OK);
    assert_string_equal(klass, "CommandNotFound");
    assert_null(code);
    sp_json_free(reply);
}

static void test_reply_parse_rejects_malformed_replies(void **state)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        { "[]", SP_E_NOT_OBJECT },
        { "{}", SP_E_MISSING },
        { "{\"id\":1}", SP_E_MISSING },
        { "{\"error\":\"boom\"}", SP_E_TYPE },
        { "{\"error\":{\"class\":\"GenericError\"}}", SP_E_MISSING },
        { "{\"error\":{\"desc\":\"d\"}}", SP_E_MISSING },
        { "{\"error\":{\"class\":1,\"desc\":\"d\"}}", SP_E_TYPE },
        { "{\"error\":{\"class\":\"c\",\"desc\":null}}", SP_E_TYPE },
        { "{\"error\":{\"class\":\"c\",\"desc\":\"d\",\"code\":5}}", SP_E_TYPE },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SpJson *reply = parse_ok(cases[i].text);
        const char *klass = "untouched";
        int r = sp_reply_parse(reply, NULL, &klass, NULL, NULL);
        if (r != cases[i].status)
            fail_msg("%s: status %d, want %d", cases[i].text, r, cases[i].status);
        assert_string_equal(klass, "untouched");
        sp_json_free(reply);
    }
    assert_int_equal(sp_reply_parse(NULL, NULL, NULL, NULL, NULL), SP_E_NOT_OBJECT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_parse_borrows_execute_arguments_and_id),
        cmocka_unit_test(test_request_parse_without_arguments_or_id_gives_null),
        cmocka_unit_test(test_request_parse_uses_qemu_error_texts),
        cmocka_unit_test(test_request_parse_key_with_embedded_nul_is_not_execute),
        cmocka_unit_test(test_request_parse_null_message_is_not_object),
        cmocka_unit_test(test_request_new_builds_qga_request),
        cmocka_unit_test(test_reply_new_return_defaults_to_empty_object),
        cmocka_unit_test(test_reply_new_error_has_class_desc_and_optional_code),
        cmocka_unit_test(test_reply_parse_classifies_return),
        cmocka_unit_test(test_reply_parse_classifies_error_with_and_without_code),
        cmocka_unit_test(test_reply_parse_rejects_malformed_replies),
    };
    return cmocka_run_group_tests_name("unit/protocol/message", tests, NULL, NULL);
}
