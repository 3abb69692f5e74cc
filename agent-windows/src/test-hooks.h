/* The Windows agent's test switches, in one place: the fake VSS backend, chosen with
 * --fake-vss[=SPEC] or the environment (STILLPOINT_VSS=fake, STILLPOINT_FAKE_VSS=SPEC). They
 * exist only in a build with SP_TEST_HOOKS (scripts/test's); without it these functions do
 * nothing, the options are unknown, the variables are ignored and the fake is not in the binary. */
#pragma once
#include <stdbool.h>
#include "vss-backend.h"

/* arg is a test option: takes it and returns true. */
bool sp_test_hooks_option(const char *arg);
/* Reads the environment's switches, after the options (which win). */
void sp_test_hooks_environment(void);
/* The usage lines of the test options ("" without SP_TEST_HOOKS). */
const char *sp_test_hooks_usage(void);
/* In *ret the fake backend when a test chose it, else NULL (the real one is wanted). False when
 * the fake's spec is malformed (logged). */
bool sp_test_hooks_backend(SpVssBackend **ret);
