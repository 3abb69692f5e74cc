/* Allocation-failure tests. The protocol library never reports an allocation failure: like GLib,
 * it aborts (stillpoint/alloc.h), so that its 400-odd builder calls in the agents and the host
 * need no check. Here every allocation an operation makes is failed in turn (the allocator is
 * wrapped with ld's --wrap), each time in a child process, which must then die by abort() with
 * "stillpoint: out of memory": an allocation the library made without its aborting allocator
 * would instead come back NULL and end in a crash, a wrong result or an error status. Once no
 * allocation is left to fail, the child checks the operation's result. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "protocol-test.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

/* -1: never fail; otherwise the number of allocations still allowed to succeed. */
static long allocs_left = -1;

static bool should_fail(void)
{
    if (allocs_left < 0)
        return false;
    if (allocs_left == 0)
        return true;
    allocs_left--;
    return false;
}

void *__wrap_malloc(size_t size) { return should_fail() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { return should_fail() ? NULL : __real_realloc(p, size); }

/* An operation under test: true when its result is right. It frees what it made (the child's
 * exit runs valgrind's leak check in the valgrind tree). */
typedef bool (*Op)(void);

enum { CHILD_DONE = 0, CHILD_WRONG = 4 };

/* Runs op in a child whose allocation n fails. True when the child aborted as it must; false
 * when op made fewer than n + 1 allocations and ran to the end with the right result. */
static bool run_with_failing_allocation(Op op, long n)
{
    char out[4096] = "";
    size_t got = 0;
    int fds[2], status;
    ssize_t r;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        allocs_left = n;
        bool right = op();
        allocs_left = -1;
        _exit(right ? CHILD_DONE : CHILD_WRONG);
    }
    close(fds[1]);
    while ((r = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_DONE)
        return false;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("allocation %ld failed: the child did not abort (status 0x%x): %s", n, status,
                 out);
    if (!strstr(out, "stillpoint: out of memory"))
        fail_msg("allocation %ld failed: aborted without saying why: %s", n, out);
    return true;
}

/* The number of allocations op makes, each of which was failed once. */
static long fail_each_allocation(Op op)
{
    long n = 0;

    while (run_with_failing_allocation(op, n))
        n++;
    return n;
}

static const char doc[] =
    "{\"a\":[1,2,3,{\"b\":\"\\u00e9\\ud83d\\ude00 a string long enough to grow the scratch buffer "
    "more than once, and then some more text\"}],\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,"
    "\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,"
    "\"k14\":14,\"k15\":15,\"k16\":16,\"k17\":17,\"d\":0.000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001,"
    "\"n\":null,\"t\":true}";

/* What the children compare with: made by the parent, before any allocation fails. */
static SpJson *reference;
static char *reference_text;

static int make_reference(void **state)
{
    reference = parse_ok(doc);
    reference_text = sp_json_serialize(reference, NULL);
    allocs_left = -1;
    return 0;
}

static int free_reference(void **state)
{
    sp_json_free(reference);
    free(reference_text);
    return 0;
}

static bool op_parse(void)
{
    SpJson *v = NULL;
    SpJsonError err;
    bool right = sp_json_parse(doc, strlen(doc), NULL, &v, &err) == SP_OK &&
                 sp_json_equal(v, reference);

    sp_json_free(v);
    return right;
}

static bool op_serialize(void)
{
    char *s = sp_json_serialize(reference, NULL);
    bool right = strcmp(s, reference_text) == 0;

    free(s);
    return right;
}

static bool op_copy(void)
{
    SpJson *c = sp_json_copy(reference);
    bool right = sp_json_equal(c, reference);

    sp_json_free(c);
    return right;
}

/* v (freed) serializes to want. */
static bool text_is(SpJson *v, const char *want)
{
    char *s = sp_json_serialize(v, NULL);
    bool right = strcmp(s, want) == 0;

    free(s);
    sp_json_free(v);
    return right;
}

static bool op_build(void)
{
    SpJson *id = sp_json_new_int(1);
    SpJson *args = sp_json_new_object();
    bool right;

    sp_json_object_set_string(args, "mode", "x");
    right = text_is(sp_request_new("guest-ping", args, id),
                    "{\"execute\":\"guest-ping\",\"arguments\":{\"mode\":\"x\"},\"id\":1}") &&
            text_is(sp_reply_new_return(sp_json_new_string("v"), id),
                    "{\"return\":\"v\",\"id\":1}") &&
            text_is(sp_reply_new_error(NULL, "d", "c", id),
                    "{\"error\":{\"class\":\"GenericError\",\"desc\":\"d\",\"code\":\"c\"},"
                    "\"id\":1}");
    sp_json_free(id);
    return right;
}

static void test_parse_serialize_copy_abort_at_every_failing_allocation(void **state)
{
    assert_true(fail_each_allocation(op_parse) > 40); /* the document makes many allocations */
    assert_true(fail_each_allocation(op_serialize) > 0);
    assert_true(fail_each_allocation(op_copy) > 40);
}

static void test_builders_abort_at_every_failing_allocation(void **state)
{
    assert_true(fail_each_allocation(op_build) > 10);
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

static const char *const dispatched[][2] = {
    { "{\"execute\":\"echo\",\"arguments\":{\"s\":\"x\"},\"id\":[1]}",
      "{\"return\":{\"s\":\"x\"},\"id\":[1]}" },
    { "{\"execute\":\"echo\",\"arguments\":{\"s\":1}}",
      "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 's', "
      "expected: string\"}}" },
    { "{\"execute\":\"stillpoint-nope\"}",
      "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command stillpoint-nope "
      "has not been found\",\"code\":\"command-not-found\"}}" },
    { "{\"execute\":\"stillpoint-echo\",\"arguments\":{\"x\":1}}",
      "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'x' is unexpected\","
      "\"code\":\"invalid-arguments\"}}" },
};
static SpJson *dispatch_msg;
static const char *dispatch_want;

static bool op_dispatch(void)
{
    return text_is(sp_command_dispatch(&table, NULL, dispatch_msg, false, NULL), dispatch_want);
}

static void test_dispatch_aborts_at_every_failing_allocation(void **state)
{
    for (size_t i = 0; i < sizeof(dispatched) / sizeof(dispatched[0]); i++) {
        dispatch_msg = parse_ok(dispatched[i][0]);
        dispatch_want = dispatched[i][1];
        assert_true(fail_each_allocation(op_dispatch) > 3);
        sp_json_free(dispatch_msg);
    }
    assert_json_text(sp_command_reply_for_bad_input(SP_E_UTF8, "x"),
                     "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error, x\"}}");
}

static void count_cb(const SpFrame *frame, void *userdata)
{
    if (frame->kind == SP_FRAME_OBJECT)
        ++*(int *)userdata;
}

static bool op_frame(void)
{
    char big[2000];
    SpFramer *f = sp_framer_new(0);
    int objects = 0;
    bool right;

    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    right = sp_framer_feed(f, big, sizeof(big), count_cb, &objects) == SP_OK && objects == 1;
    sp_framer_free(f);
    return right;
}

static void test_framer_aborts_at_every_failing_allocation(void **state)
{
    assert_true(fail_each_allocation(op_frame) > 2); /* the framer and its growing buffer */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_serialize_copy_abort_at_every_failing_allocation),
        cmocka_unit_test(test_builders_abort_at_every_failing_allocation),
        cmocka_unit_test(test_dispatch_aborts_at_every_failing_allocation),
        cmocka_unit_test(test_framer_aborts_at_every_failing_allocation),
    };
    return cmocka_run_group_tests_name("unit/protocol/alloc-failure", tests, make_reference,
                                       free_reference);
}
