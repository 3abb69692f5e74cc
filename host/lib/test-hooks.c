/* The host's test switches (test-hooks.h). Compiled to no-ops without SP_TEST_HOOKS, so a shipped
 * binary neither reads these variables nor contains their names. */
#include "test-hooks.h"

#include <signal.h>

#ifdef SP_TEST_HOOKS

static guint64 env_uint(const char *variable)
{
    const char *v = g_getenv(variable);
    return v != NULL ? g_ascii_strtoull(v, NULL, 10) : 0;
}

void sp_test_crash_point(const char *step)
{
    if (g_strcmp0(g_getenv("STILLPOINT_TEST_CRASH_AT"), step) == 0)
        raise(SIGKILL);
}

gboolean sp_test_fail_at(const char *step)
{
    return g_strcmp0(g_getenv("STILLPOINT_TEST_FAIL_AT"), step) == 0;
}

gint64 sp_test_commit_speed(void)
{
    return (gint64)MIN(env_uint("STILLPOINT_TEST_COMMIT_SPEED"), (guint64)G_MAXINT64);
}

static const struct {
    const char *variable;
    gboolean may_lengthen;
} deadlines[] = {
    [SP_TEST_DEADLINE_AGENT_FREEZE] = {"STILLPOINT_AGENT_FREEZE_TIMEOUT_MS", FALSE},
    [SP_TEST_DEADLINE_HOOK] = {"STILLPOINT_HOOK_TIMEOUT_MS", TRUE},
    [SP_TEST_DEADLINE_QEMU_IMG] = {"STILLPOINT_TEST_QEMU_IMG_TIMEOUT_MS", FALSE},
    [SP_TEST_DEADLINE_JOB] = {"STILLPOINT_TEST_JOB_TIMEOUT_MS", FALSE},
    [SP_TEST_DEADLINE_AUTHORIZE] = {"STILLPOINT_TEST_AUTHORIZE_TIMEOUT_MS", FALSE},
};

guint sp_test_deadline_ms(SpTestDeadline which, guint default_ms)
{
    guint64 v;
    g_return_val_if_fail((guint)which < G_N_ELEMENTS(deadlines), default_ms);
    v = env_uint(deadlines[which].variable);
    if (v == 0 || v >= G_MAXUINT)
        return default_ms;
    return v < default_ms || deadlines[which].may_lengthen ? (guint)v : default_ms;
}

gboolean sp_test_hooks_enabled(void)
{
    return TRUE;
}

#else

void sp_test_crash_point(const char *step)
{
    (void)step;
}

gboolean sp_test_fail_at(const char *step)
{
    (void)step;
    return FALSE;
}

gint64 sp_test_commit_speed(void)
{
    return 0;
}

guint sp_test_deadline_ms(SpTestDeadline which, guint default_ms)
{
    (void)which;
    return default_ms;
}

gboolean sp_test_hooks_enabled(void)
{
    return FALSE;
}

#endif
