/* test-hooks: the registered test callback (SP_TEST_HOOKS builds only; see test-hooks.h). */
#include "test-hooks.h"

#include <stddef.h>

static SpTestHookFn hook_fn;
static void *hook_data;

void sp_test_hooks_set(SpTestHookFn fn, void *data)
{
    hook_fn = fn;
    hook_data = data;
}

void sp_test_hook(const char *point, const char *detail)
{
    if (hook_fn)
        hook_fn(point, detail, hook_data);
}
