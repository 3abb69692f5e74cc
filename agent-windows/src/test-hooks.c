/* The Windows agent's test switches (test-hooks.h). Everything that selects the fake VSS backend
 * is between the #ifdef below: a shipped build (SP_TEST_HOOKS off) compiles only the no-ops, and
 * the fake backend's source is not part of it at all (agent-windows/CMakeLists.txt). */
#include "test-hooks.h"
#include <stdlib.h>
#include <string.h>
#include "log.h"

#ifdef SP_TEST_HOOKS

static bool fake_vss;
static char *fake_spec;

bool sp_test_hooks_option(const char *arg)
{
    if (strcmp(arg, "--fake-vss") == 0) {
        fake_vss = true;
        return true;
    }
    if (strncmp(arg, "--fake-vss=", 11) == 0) {
        fake_vss = true;
        free(fake_spec);
        fake_spec = _strdup(arg + 11);
        return true;
    }
    return false;
}

void sp_test_hooks_environment(void)
{
    const char *env = getenv("STILLPOINT_VSS");
    if (env && strcmp(env, "fake") == 0)
        fake_vss = true;
    env = getenv("STILLPOINT_FAKE_VSS");
    if (env && !fake_spec) {
        fake_vss = true;
        fake_spec = _strdup(env);
    }
}

const char *sp_test_hooks_usage(void)
{
    return "Test build only (SP_TEST_HOOKS):\n"
           "  --fake-vss[=SPEC]    simulate VSS (writers and provider) instead of using it:\n"
           "                       for tests, e.g. under wine, which has no VSS. Also\n"
           "                       STILLPOINT_VSS=fake and STILLPOINT_FAKE_VSS=SPEC, SPEC being\n"
           "                       commit-delay-ms=N,hold-limit-ms=N,failing-writer=NAME,\n"
           "                       fail=STEP,fail-hr=HEX,volumes=N\n";
}

bool sp_test_hooks_backend(SpVssBackend **ret)
{
    SpVssFakeConfig config = { 0 };
    *ret = NULL;
    if (!fake_vss)
        return true;
    if (fake_spec && !sp_vss_fake_config_parse(fake_spec, &config)) {
        sp_log(SP_LOG_ERROR, "bad fake VSS spec (see --help)");
        return false;
    }
    sp_log(SP_LOG_WARNING, "VSS backend: FAKE (simulated writers and provider, nothing is "
                           "really frozen; for tests only)");
    *ret = sp_vss_backend_fake_new(&config);
    return *ret != NULL;
}

#else

bool sp_test_hooks_option(const char *arg)
{
    return false;
}

void sp_test_hooks_environment(void)
{
}

const char *sp_test_hooks_usage(void)
{
    return "";
}

bool sp_test_hooks_backend(SpVssBackend **ret)
{
    *ret = NULL;
    return true;
}

#endif
