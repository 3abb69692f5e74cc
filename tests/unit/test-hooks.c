/* hooks: what a freeze hook must be to run, and that what was checked is what runs — a script or
 * directory swapped between the check and the run changes nothing (#16 item 8). Real scripts in
 * a temporary directory; root, because the rules are about root ownership. */
#define _GNU_SOURCE
#include "agent-test.h"

#include <glib/gstdio.h>
#include <sys/stat.h>
#include "hooks.h"
#include "test-hooks.h"

#define NOBODY_UID 65534
#define SCRIPT_TIMEOUT_MS 10000

typedef struct {
    char *dir;        /* the temporary directory (mode 0755, root) */
    char *hook_dir;   /* dir/hooks: where the hook lives */
    char *hook;       /* dir/hooks/fsfreeze-hook */
    char *marker;     /* every run appends "WHO ACTION" here */
    /* What the test callback does when the agent has checked the script. */
    void (*on_checked)(void *fixture);
    gboolean swapped;
} Fixture;

static void write_script(const char *path, const char *who, mode_t mode)
{
    g_autofree char *text = g_strdup_printf("#!/bin/sh\necho \"%s $1\" >> \"$SP_HOOK_MARKER\"\n", who);

    assert_true(g_file_set_contents(path, text, -1, NULL));
    assert_int_equal(chmod(path, mode), 0);
}

static char *marker(Fixture *f)
{
    char *text = NULL;

    if (!g_file_get_contents(f->marker, &text, NULL, NULL))
        return g_strdup("");
    return text;
}

static void checked_cb(const char *point, const char *detail, void *data)
{
    Fixture *f = data;

    if (g_str_equal(point, "hook-checked") && f->on_checked && !f->swapped) {
        f->swapped = TRUE;
        f->on_checked(f);
    }
}

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);

    f->dir = g_dir_make_tmp("sp-hooks-XXXXXX", NULL);
    assert_non_null(f->dir);
    assert_int_equal(chmod(f->dir, 0755), 0);
    f->hook_dir = g_build_filename(f->dir, "hooks", NULL);
    assert_int_equal(g_mkdir(f->hook_dir, 0755), 0);
    f->hook = g_build_filename(f->hook_dir, "fsfreeze-hook", NULL);
    f->marker = g_build_filename(f->dir, "marker", NULL);
    write_script(f->hook, "checked", 0755);
    g_setenv("SP_HOOK_MARKER", f->marker, TRUE);
    sp_test_hooks_set(checked_cb, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

    sp_test_hooks_set(NULL, NULL);
    assert_int_equal(system(cmd), 0);
    g_free(f->dir);
    g_free(f->hook_dir);
    g_free(f->hook);
    g_free(f->marker);
    g_free(f);
    return 0;
}

/* Runs the one hook with "freeze" and returns the error (NULL: it ran and exited 0). */
static GError *freeze(Fixture *f)
{
    g_autoptr(SpHooks) hooks = sp_hooks_new(f->hook, NULL, SCRIPT_TIMEOUT_MS);
    GError *error = NULL;

    assert_int_equal(sp_hooks_count(hooks), 1);
    sp_hooks_freeze(hooks, &error);
    return error;
}

static void assert_refused(Fixture *f, int code, const char *words)
{
    g_autoptr(GError) error = freeze(f);
    g_autofree char *ran = marker(f);

    assert_non_null(error);
    assert_int_equal(error->code, code);
    if (!strstr(error->message, words))
        fail_msg("expected '%s' in: %s", words, error->message);
    assert_string_equal(ran, "");
}

static void test_a_safe_hook_runs_with_its_action(void **state)
{
    Fixture *f = *state;
    g_autoptr(SpHooks) hooks = sp_hooks_new(f->hook, NULL, SCRIPT_TIMEOUT_MS);
    g_autoptr(GError) error = NULL;
    g_autofree char *ran = NULL;

    assert_true(sp_hooks_freeze(hooks, &error));
    assert_true(sp_hooks_thaw(hooks, &error));
    ran = marker(f);
    assert_string_equal(ran, "checked freeze\nchecked thaw\n");
}

/* The attacker's move: rename another script over the checked one. */
static void swap_script_cb(void *data)
{
    Fixture *f = data;
    g_autofree char *evil = g_build_filename(f->hook_dir, "evil", NULL);

    write_script(evil, "swapped", 0755);
    assert_int_equal(rename(evil, f->hook), 0);
}

static void test_a_script_swapped_after_the_check_is_not_run(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autofree char *ran = NULL;

    f->on_checked = swap_script_cb;
    error = freeze(f);
    assert_null(error);
    assert_true(f->swapped);
    ran = marker(f);
    /* The file that was checked ran; by path, the swapped one would have. */
    assert_string_equal(ran, "checked freeze\n");
}

/* Or swap the whole directory the script is in. */
static void swap_directory_cb(void *data)
{
    Fixture *f = data;
    g_autofree char *moved = g_build_filename(f->dir, "moved", NULL);

    assert_int_equal(rename(f->hook_dir, moved), 0);
    assert_int_equal(g_mkdir(f->hook_dir, 0777), 0);
    write_script(f->hook, "swapped", 0777);
}

static void test_a_directory_swapped_after_the_check_is_not_used(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autofree char *ran = NULL;

    f->on_checked = swap_directory_cb;
    error = freeze(f);
    assert_null(error);
    ran = marker(f);
    assert_string_equal(ran, "checked freeze\n");
}

static void test_a_symlinked_script_is_refused(void **state)
{
    Fixture *f = *state;
    g_autofree char *target = g_build_filename(f->hook_dir, "real-hook", NULL);

    assert_int_equal(rename(f->hook, target), 0);
    assert_int_equal(symlink(target, f->hook), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "it is a symbolic link");
}

static void test_a_script_others_could_change_is_refused(void **state)
{
    Fixture *f = *state;

    assert_int_equal(chmod(f->hook, 0775), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "must be owned by root and not writable");
    assert_int_equal(chmod(f->hook, 0757), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "must be owned by root and not writable");
    assert_int_equal(chmod(f->hook, 0755), 0);
    assert_int_equal(chown(f->hook, NOBODY_UID, 0), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "must be owned by root and not writable");
}

static void test_a_directory_others_could_change_is_refused(void **state)
{
    Fixture *f = *state;

    assert_int_equal(chmod(f->hook_dir, 0777), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "its directory");
    assert_int_equal(chmod(f->hook_dir, 0755), 0);
    assert_int_equal(chown(f->hook_dir, NOBODY_UID, 0), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "its directory");
}

static void test_a_fifo_is_refused_without_blocking(void **state)
{
    Fixture *f = *state;
    gint64 start = g_get_monotonic_time();

    assert_int_equal(unlink(f->hook), 0);
    assert_int_equal(mkfifo(f->hook, 0755), 0);
    assert_refused(f, SP_HOOKS_ERROR_UNSAFE, "not a regular file");
    assert_true(g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC);
}

static void test_a_script_that_is_not_executable_is_refused(void **state)
{
    Fixture *f = *state;

    assert_int_equal(chmod(f->hook, 0644), 0);
    assert_refused(f, SP_HOOKS_ERROR_SPAWN, "is not executable");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_safe_hook_runs_with_its_action),
        T(test_a_script_swapped_after_the_check_is_not_run),
        T(test_a_directory_swapped_after_the_check_is_not_used),
        T(test_a_symlinked_script_is_refused),
        T(test_a_script_others_could_change_is_refused),
        T(test_a_directory_others_could_change_is_refused),
        T(test_a_fifo_is_refused_without_blocking),
        T(test_a_script_that_is_not_executable_is_refused),
    };
#undef T
    if (geteuid() != 0) {
        printf("unit/agent/hooks: needs root (the rules are about root ownership): skipped\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
