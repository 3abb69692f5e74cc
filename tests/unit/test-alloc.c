/* Allocation-failure tests: every allocation the protocol library makes is failed in turn (the
 * allocator is wrapped with ld's --wrap), and each operation must then report SP_E_NOMEM or NULL,
 * never crash, never half-succeed, and never leak (ASan's leak checker runs at exit). */
#include <stdio.h>
#include "protocol-test.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

/* -1: never fail; otherwise the number of allocations still allowed to succeed. */
static long allocs_left = -1;
static bool failed_one;

static bool should_fail(void)
{
    if (allocs_left < 0)
        return false;
    if (allocs_left == 0) {
        failed_one = true;
        return true;
    }
    allocs_left--;
    return false;
}

void *__wrap_malloc(size_t size) { return should_fail() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { return should_fail() ? NULL : __real_realloc(p, size); }

/* Run op with the n-th allocation failing, for n = 0, 1, ... until op runs without a failure. */
#define FOR_EACH_FAILING_ALLOCATION(n)                                                  \
    for (long n = 0, done_ = 0; !done_; n++, done_ = !failed_one, allocs_left = -1)     \
        for (int once_ = (allocs_left = n, failed_one = false, 1); once_; once_ = 0)

static const char doc[] =
    "{\"a\":[1,2,3,{\"b\":\"\\u00e9\\ud83d\\ude00 a string long enough to grow the scratch buffer "
    "more than once, and then some more text\"}],\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,"
    "\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,"
    "\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17,\"d\":0.000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001,"
    "\"n\":null,\"t\":true}";

static void test_parse_reports_nomem_for_every_failing_allocation(void **state)
{
    SpJson *reference = parse_ok(doc);
    long runs = 0;

    FOR_EACH_FAILING_ALLOCATION(n)
    {
        SpJson *v = NULL;
        SpJsonError err;
        int r = sp_json_parse(doc, strlen(doc), NULL, &v, &err);
        if (failed_one) {
            assert_int_equal(r, SP_E_NOMEM);
            assert_null(v);
        } else {
            assert_int_equal(r, SP_OK);
            assert_true(sp_json_equal(v, reference));
        }
        sp_json_free(v);
        runs++;
    }
    assert_true(runs > 40); /* the document really exercises many allocations */
    sp_json_free(reference);
}

static void test_serialize_and_copy_return_null_on_failure(void **state)
{
    SpJson *v = parse_ok(doc);
    char *want = sp_json_serialize(v, NULL);

    FOR_EACH_FAILING_ALLOCATION(n)
    {
        char *s = sp_json_serialize(v, NULL);
        SpJson *c;
        if (s)
            assert_string_equal(s, want);
        free(s);
        c = sp_json_copy(v);
        if (c)
            assert_true(sp_json_equal(c, v));
        sp_json_free(c);
    }
    free(want);
    sp_json_free(v);
}

static void test_builders_free_what_they_were_given_on_failure(void **state)
{
    FOR_EACH_FAILING_ALLOCATION(n)
    {
        SpJson *id = sp_json_new_int(1);
        SpJson *args = sp_json_new_object();
        SpJson *req, *ret, *err;

        if (args)
            sp_json_object_set_string(args, "mode", "x");
        req = sp_request_new("guest-ping", args, id);
        ret = sp_reply_new_return(sp_json_new_string("v"), id);
        err = sp_reply_new_error(NULL, "d", "c", id);
        allocs_left = -1; /* checking the results must not fail */
        if (req && ret && err && id && !failed_one) {
            assert_json_text(req, "{\"execute\":\"guest-ping\",\"arguments\":{\"mode\":\"x\"},\"id\":1}");
            assert_json_text(ret, "{\"return\":\"v\",\"id\":1}");
            assert_json_text(err, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"d\",\"code\":\"c\"},"
                                  "\"id\":1}");
        } else {
            sp_json_free(req);
            sp_json_free(ret);
            sp_json_free(err);
        }
        sp_json_free(id);
    }
}

static SpJson *echo_cb(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_copy(args);
}

static const SpArgSpec echo_args[] = { { "s", SP_ARG_STRING, true }, { 0 } };
static const SpCommand commands[] = {
    { "echo", echo_cb, echo_args, 0 },
    { "stillpoint-echo", echo_cb, echo_args, 0 },
    { 0 },
};
static const SpCommandTable table = { commands };

/* Under memory pressure dispatch may fail (NULL), but whatever it returns must be the right
 * reply, except that a stillpoint- error may lack its code when there was no memory for it. */
static void check_dispatch(const char *request, const char *want, const char *want_without_code)
{
    SpJson *msg = parse_ok(request);

    FOR_EACH_FAILING_ALLOCATION(n)
    {
        SpJson *reply = sp_command_dispatch(&table, NULL, msg, false, NULL);
        char *s = NULL;
        if (reply) {
            allocs_left = -1; /* serializing for the check must not fail */
            s = sp_json_serialize(reply, NULL);
            if (strcmp(s, want) != 0 && !(want_without_code && strcmp(s, want_without_code) == 0))
                fail_msg("allocation %ld failed: got %s", n, s);
        }
        free(s);
        sp_json_free(reply);
    }
    sp_json_free(msg);
}

static void test_dispatch_never_answers_wrongly_under_memory_pressure(void **state)
{
    check_dispatch("{\"execute\":\"echo\",\"arguments\":{\"s\":\"x\"},\"id\":[1]}",
                   "{\"return\":{\"s\":\"x\"},\"id\":[1]}", NULL);
    check_dispatch("{\"execute\":\"echo\",\"arguments\":{\"s\":1}}",
                   "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 's', "
                   "expected: string\"}}",
                   NULL);
    check_dispatch("{\"execute\":\"stillpoint-nope\"}",
                   "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command stillpoint-nope "
                   "has not been found\",\"code\":\"command-not-found\"}}",
                   "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command stillpoint-nope "
                   "has not been found\"}}");
    check_dispatch("{\"execute\":\"stillpoint-echo\",\"arguments\":{\"x\":1}}",
                   "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'x' is unexpected\","
                   "\"code\":\"invalid-arguments\"}}",
                   "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'x' is "
                   "unexpected\"}}");
    assert_json_text(sp_command_reply_for_bad_input(SP_E_UTF8, "x"),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, x\"}}");
}

static void count_cb(const SpFrame *frame, void *userdata)
{
    if (frame->kind == SP_FRAME_OBJECT)
        ++*(int *)userdata;
}

static void test_framer_reports_nomem_and_recovers(void **state)
{
    char big[2000];

    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    FOR_EACH_FAILING_ALLOCATION(n)
    {
        SpFramer *f = sp_framer_new(0);
        int objects = 0, r;
        if (!f)
            continue;
        r = sp_framer_feed(f, big, sizeof(big), count_cb, &objects);
        if (r == SP_OK) {
            assert_int_equal(objects, 1);
        } else {
            assert_int_equal(r, SP_E_NOMEM);
            assert_int_equal(objects, 0);
            assert_int_equal(sp_framer_pending(f), 0); /* partial object dropped */
        }
        sp_framer_free(f);
    }
}

/* A failed assertion longjmps out of a loop: never let its limit leak into the next test. */
static int reset_allocator(void **state)
{
    allocs_left = -1;
    failed_one = false;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse_reports_nomem_for_every_failing_allocation, reset_allocator),
        cmocka_unit_test_setup(test_serialize_and_copy_return_null_on_failure, reset_allocator),
        cmocka_unit_test_setup(test_builders_free_what_they_were_given_on_failure, reset_allocator),
        cmocka_unit_test_setup(test_dispatch_never_answers_wrongly_under_memory_pressure, reset_allocator),
        cmocka_unit_test_setup(test_framer_reports_nomem_and_recovers, reset_allocator),
    };
    return cmocka_run_group_tests_name("unit/protocol/alloc-failure", tests, NULL, NULL);
}
