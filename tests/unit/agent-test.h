/* Helpers shared by the Linux agent's unit tests (cmocka). */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#ifndef SP_FIXTURES_DIR
#error "SP_FIXTURES_DIR must name tests/unit/fixtures"
#endif

/* Path of a fixture file, in a static buffer (tests are single-threaded). */
static inline const char *fixture(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", SP_FIXTURES_DIR, name);
    return path;
}
