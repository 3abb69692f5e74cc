/* test-hooks: the agent's points where the test suite can step in (between a hook script's check
 * and its run, ...). Compiled only with SP_TEST_HOOKS; in any other build sp_test_hook() is an
 * empty inline function and nothing can be registered. */
#pragma once

#ifdef SP_TEST_HOOKS
typedef void (*SpTestHookFn)(const char *point, const char *detail, void *data);
/* Called at every point reached from now on (NULL: none). */
void sp_test_hooks_set(SpTestHookFn fn, void *data);
void sp_test_hook(const char *point, const char *detail);
#else
static inline void sp_test_hook(const char *point, const char *detail)
{
    (void)point;
    (void)detail;
}
#endif
