/* The host's test switches (host/lib/test-hooks.c), built twice: as the test suite builds it
 * (SP_TEST_HOOKS) the switches act; built without SP_TEST_HOOKS, as a shipped binary is, the same
 * environment changes nothing and the variables' names are not in the binary at all. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-hooks.h"

/* The names are put together at run time, so that this program's own bytes do not hold them. */
static char *var(const char *suffix)
{
    return g_strconcat("STILLPOINT", suffix, NULL);
}

static void set(const char *suffix, const char *value)
{
    g_autofree char *name = var(suffix);
    g_setenv(name, value, TRUE);
}

static void set_every_switch(void)
{
    set("_TEST_CRASH_AT", "step");
    set("_TEST_FAIL_AT", "transaction");
    set("_TEST_COMMIT_SPEED", "4096");
    set("_AGENT_FREEZE_TIMEOUT_MS", "5");
    set("_HOOK_TIMEOUT_MS", "90000");
    set("_TEST_QEMU_IMG_TIMEOUT_MS", "7");
    set("_TEST_JOB_TIMEOUT_MS", "9");
}

/* Did sp_test_crash_point("step") kill a child process? */
static gboolean crash_point_kills(void)
{
    int status = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sp_test_crash_point("step");
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

#ifdef SP_TEST_HOOKS

static void test_switches_act_in_a_test_build(void **state)
{
    (void)state;
    set_every_switch();
    assert_true(sp_test_hooks_enabled());
    assert_true(crash_point_kills());
    assert_true(sp_test_fail_at("transaction"));
    assert_false(sp_test_fail_at("prepared"));
    assert_int_equal(sp_test_commit_speed(), 4096);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_AGENT_FREEZE, 60000), 5);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_QEMU_IMG, 60000), 7);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_JOB, 60000), 9);
    /* Only the hook's deadline may be made longer; the others only shorter. */
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_HOOK, 30000), 90000);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_QEMU_IMG, 3), 3);
}

#else

static void test_switches_are_inert_without_test_hooks(void **state)
{
    (void)state;
    set_every_switch();
    assert_false(sp_test_hooks_enabled());
    assert_false(crash_point_kills());
    assert_false(sp_test_fail_at("transaction"));
    assert_int_equal(sp_test_commit_speed(), 0);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_AGENT_FREEZE, 60000), 60000);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_HOOK, 30000), 30000);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_QEMU_IMG, 60000), 60000);
    assert_int_equal(sp_test_deadline_ms(SP_TEST_DEADLINE_JOB, 60000), 60000);
}

static void test_variable_names_are_not_in_the_binary(void **state)
{
    g_autofree char *exe = NULL;
    g_autofree char *prefix = var("_TEST_");
    g_autofree char *freeze = var("_AGENT_FREEZE_TIMEOUT_MS");
    g_autofree char *hook = var("_HOOK_TIMEOUT_MS");
    gsize len = 0;
    (void)state;
    assert_true(g_file_get_contents("/proc/self/exe", &exe, &len, NULL));
    assert_null(memmem(exe, len, prefix, strlen(prefix)));
    assert_null(memmem(exe, len, freeze, strlen(freeze)));
    assert_null(memmem(exe, len, hook, strlen(hook)));
}

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifdef SP_TEST_HOOKS
        cmocka_unit_test(test_switches_act_in_a_test_build),
#else
        cmocka_unit_test(test_switches_are_inert_without_test_hooks),
        cmocka_unit_test(test_variable_names_are_not_in_the_binary),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
