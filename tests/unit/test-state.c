/* state: the crash-recovery record round-trips, and damaged files are refused. */
#define _GNU_SOURCE
#include "agent-test.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "state.h"

static int setup(void **state)
{
    char tmpl[] = "/tmp/sp-test-state-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    *state = strdup(dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)*state);
    assert_int_equal(system(cmd), 0);
    free(*state);
    return 0;
}

static void write_file(const char *dir, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/" SP_STATE_FILE, dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_state_round_trips_with_awkward_mountpoints(void **state)
{
    const char *dir = *state;
    SpStateFs fs[] = {{makedev(7, 1), (char *)"/srv/vm/in ner"}, {makedev(254, 16), (char *)"/a\\b\nc"}};
    SpState *s = NULL;

    assert_int_equal(sp_state_write(dir, 4242, 99, fs, 2), 0);
    assert_int_equal(sp_state_read(dir, &s), 0);
    assert_int_equal(s->pid, 4242);
    assert_int_equal(s->epoch, 99);
    assert_int_equal(s->n_fs, 2);
    assert_true(s->fs[0].dev == makedev(7, 1));
    assert_string_equal(s->fs[0].mountpoint, "/srv/vm/in ner");
    assert_string_equal(s->fs[1].mountpoint, "/a\\b\nc");
    sp_state_free(s);
}

static void test_state_dir_is_created_with_parents(void **state)
{
    char dir[512];
    struct stat st;
    SpState *s = NULL;

    snprintf(dir, sizeof(dir), "%s/run/stillpoint", (char *)*state);
    assert_int_equal(sp_state_write(dir, 1, 1, NULL, 0), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(sp_state_read(dir, &s), 0);
    assert_int_equal(s->n_fs, 0);
    sp_state_free(s);
}

static void test_missing_state_is_enoent_and_remove_is_idempotent(void **state)
{
    const char *dir = *state;
    SpState *s = NULL;

    assert_int_equal(sp_state_read(dir, &s), -ENOENT);
    assert_int_equal(sp_state_remove(dir), 0);
    assert_int_equal(sp_state_write(dir, 1, 1, NULL, 0), 0);
    assert_int_equal(sp_state_remove(dir), 0);
    assert_int_equal(sp_state_read(dir, &s), -ENOENT);
    assert_null(s);
}

static void test_damaged_state_is_refused(void **state)
{
    const char *dir = *state;
    static const char *const bad[] = {
        "", "something else\n", "stillpoint-agent-state 1\nfs 7:1\n",
        "stillpoint-agent-state 1\nfs x:y /a\n", "stillpoint-agent-state 1\nmystery 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SpState *s = NULL;
        write_file(dir, bad[i]);
        assert_int_equal(sp_state_read(dir, &s), -EBADMSG);
        assert_null(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_round_trips_with_awkward_mountpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_is_created_with_parents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_state_is_enoent_and_remove_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_state_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
