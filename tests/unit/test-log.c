/* log: nothing reaches stderr while frozen; the held lines (bounded) come out after the thaw. */
#define _GNU_SOURCE
#include "agent-test.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib.h>
#include "log.h"

static int pipe_rd = -1;

/* stderr becomes a pipe we can read without blocking. */
static int setup(void **state)
{
    int p[2];

    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* Large enough for everything the test writes after the thaw. */
    (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    close(p[1]);
    pipe_rd = p[0];
    sp_log_init(FALSE);
    return 0;
}

static GString *drain(void)
{
    GString *out = g_string_new(NULL);
    char buf[65536];
    ssize_t n;

    while ((n = read(pipe_rd, buf, sizeof(buf))) > 0)
        g_string_append_len(out, buf, n);
    return out;
}

static guint count_lines(const char *s)
{
    guint n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_lines_are_held_while_frozen_and_written_after(void **state)
{
    g_autoptr(GString) before = NULL, during = NULL, after = NULL;

    g_message("before the freeze");
    before = drain();
    assert_non_null(strstr(before->str, "notice: before the freeze"));
    sp_log_set_frozen(TRUE);
    g_message("while frozen %d", 1);
    g_warning("while frozen %d", 2);
    during = drain();
    assert_int_equal(during->len, 0);
    assert_int_equal(sp_log_held_count(), 2);
    sp_log_set_frozen(FALSE);
    after = drain();
    assert_non_null(strstr(after->str, "notice: while frozen 1"));
    assert_non_null(strstr(after->str, "warning: while frozen 2"));
    assert_true(strstr(after->str, "frozen 1") < strstr(after->str, "frozen 2"));
    assert_int_equal(sp_log_held_count(), 0);
}

static void test_held_lines_are_bounded_and_drops_counted(void **state)
{
    g_autoptr(GString) after = NULL;

    sp_log_set_frozen(TRUE);
    for (int i = 0; i < SP_LOG_HELD_MAX_LINES + 88; i++)
        g_message("line %d", i);
    assert_int_equal(sp_log_held_count(), SP_LOG_HELD_MAX_LINES);
    sp_log_set_frozen(FALSE);
    after = drain();
    assert_int_equal(count_lines(after->str), SP_LOG_HELD_MAX_LINES + 1);
    assert_non_null(strstr(after->str, "88 log lines dropped while frozen"));
}

static void test_debug_lines_only_when_verbose(void **state)
{
    g_autoptr(GString) out = NULL;

    g_debug("quiet");
    out = drain();
    assert_null(strstr(out->str, "quiet"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_are_held_while_frozen_and_written_after),
        cmocka_unit_test(test_held_lines_are_bounded_and_drops_counted),
        cmocka_unit_test(test_debug_lines_only_when_verbose),
    };
    /* cmocka reports on stdout; stderr is ours. */
    return cmocka_run_group_tests(tests, setup, NULL);
}
