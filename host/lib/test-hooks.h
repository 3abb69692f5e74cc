/* The host's test switches, in one place: fault injection and deadline overrides read from the
 * environment. They exist only in builds configured with SP_TEST_HOOKS (scripts/test); in any
 * other build every function here is inert and no environment variable is read. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* STILLPOINT_TEST_CRASH_AT=step: the process kills itself (SIGKILL) when it reaches step. */
void sp_test_crash_point(const char *step);
/* STILLPOINT_TEST_FAIL_AT=step: that step fails for real where it can be made to. */
gboolean sp_test_fail_at(const char *step);
/* STILLPOINT_TEST_COMMIT_SPEED=bytes/s: live merges run throttled (0 = not set). */
gint64 sp_test_commit_speed(void);
/* Deadlines the tests may change (the variable names live only in test-hooks.c). */
typedef enum {
    SP_TEST_DEADLINE_AGENT_FREEZE, /* STILLPOINT_AGENT_FREEZE_TIMEOUT_MS: only shortens */
    SP_TEST_DEADLINE_HOOK,         /* STILLPOINT_HOOK_TIMEOUT_MS: replaces the VM's */
    SP_TEST_DEADLINE_QEMU_IMG,     /* STILLPOINT_TEST_QEMU_IMG_TIMEOUT_MS: only shortens */
    SP_TEST_DEADLINE_JOB,          /* STILLPOINT_TEST_JOB_TIMEOUT_MS: only shortens */
    SP_TEST_DEADLINE_AUTHORIZE,    /* STILLPOINT_TEST_AUTHORIZE_TIMEOUT_MS: only shortens */
} SpTestDeadline;
/* default_ms, or what the test asked for instead. */
guint sp_test_deadline_ms(SpTestDeadline which, guint default_ms);
/* Whether this build has the switches (for the tests that check both kinds of build). */
gboolean sp_test_hooks_enabled(void);

G_END_DECLS
