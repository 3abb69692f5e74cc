/* mountinfo: parsing real-shaped /proc/self/mountinfo files (fixtures/mountinfo/). */
#define _GNU_SOURCE
#include "agent-test.h"

#include <errno.h>
#include <sys/sysmacros.h>
#include "mountinfo.h"

static SpMountTable *read_fixture(const char *name)
{
    char path[512];
    SpMountTable *t = NULL;

    snprintf(path, sizeof(path), "mountinfo/%s", name);
    assert_int_equal(sp_mountinfo_read(fixture(path), &t), 0);
    assert_non_null(t);
    return t;
}

static void test_parse_reads_every_field_of_every_mount(void **state)
{
    SpMountTable *t = read_fixture("debian-vm.mountinfo");
    const SpMount *home;

    assert_int_equal(t->n_mounts, 21);
    assert_int_equal(t->mounts[0].id, 22);
    assert_int_equal(t->mounts[0].parent_id, 28);
    assert_string_equal(t->mounts[0].mountpoint, "/sys");
    assert_string_equal(t->mounts[0].fstype, "sysfs");
    home = sp_mount_table_find(t, "/home");
    assert_non_null(home);
    assert_int_equal(home->major, 253);
    assert_int_equal(home->minor, 0);
    assert_true(sp_mount_dev(home) == makedev(253, 0));
    assert_string_equal(home->root, "/");
    assert_string_equal(home->source, "/dev/mapper/vg0-home");
    assert_string_equal(home->mount_opts, "rw,relatime");
    assert_string_equal(home->super_opts, "rw,attr2,inode64,logbufs=8,logbsize=32k,noquota");
    sp_mount_table_free(t);
}

static void test_parse_keeps_bind_mount_root(void **state)
{
    SpMountTable *t = read_fixture("debian-vm.mountinfo");
    const SpMount *shared = sp_mount_table_find(t, "/srv/shared");

    assert_non_null(shared);
    assert_string_equal(shared->root, "/alice/shared");
    assert_true(sp_mount_dev(shared) == sp_mount_dev(sp_mount_table_find(t, "/home")));
    sp_mount_table_free(t);
}

static void test_parse_unescapes_space_tab_newline_backslash(void **state)
{
    SpMountTable *t = read_fixture("escapes.mountinfo");

    assert_int_equal(t->n_mounts, 5);
    assert_string_equal(t->mounts[1].mountpoint, "/mnt/with space");
    assert_string_equal(t->mounts[2].mountpoint, "/mnt/tab\tand\nnewline");
    assert_string_equal(t->mounts[3].mountpoint, "/mnt/back\\slash");
    assert_string_equal(t->mounts[3].root, "/sub\\dir");
    /* A backslash not followed by three octal digits is kept as it is. */
    assert_string_equal(t->mounts[4].mountpoint, "/mnt/not\\escape");
    sp_mount_table_free(t);
}

static void test_parse_accepts_several_or_no_optional_fields(void **state)
{
    SpMountTable *t = read_fixture("escapes.mountinfo");

    assert_string_equal(t->mounts[3].fstype, "ext4");   /* shared, master, propagate_from */
    assert_string_equal(t->mounts[4].fstype, "ext4");   /* none */
    assert_string_equal(t->mounts[4].source, "/dev/vde");
    sp_mount_table_free(t);
}

static void test_readonly_is_a_superblock_property(void **state)
{
    SpMountTable *t = read_fixture("debian-vm.mountinfo");

    /* A read-only mount of a writable superblock (ro bind) can still be written elsewhere. */
    assert_true(sp_mount_has_opt(sp_mount_table_find(t, "/data")->mount_opts, "ro"));
    assert_false(sp_mount_sb_readonly(sp_mount_table_find(t, "/data")));
    assert_true(sp_mount_sb_readonly(sp_mount_table_find(t, "/archive")));
    assert_true(sp_mount_sb_readonly(sp_mount_table_find(t, "/media/cdrom")));
    assert_false(sp_mount_sb_readonly(sp_mount_table_find(t, "/")));
    sp_mount_table_free(t);
}

static void test_has_opt_matches_whole_options_only(void **state)
{
    assert_true(sp_mount_has_opt("rw,relatime", "rw"));
    assert_true(sp_mount_has_opt("relatime,ro", "ro"));
    assert_false(sp_mount_has_opt("rw,errors=remount-ro", "ro"));
    assert_false(sp_mount_has_opt("", "ro"));
}

static void test_parse_rejects_malformed_lines(void **state)
{
    static const char *const bad[] = {"malformed-no-separator.mountinfo", "malformed-devno.mountinfo",
                                      "malformed-short.mountinfo"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[512];
        SpMountTable *t = NULL;
        snprintf(path, sizeof(path), "mountinfo/%s", bad[i]);
        assert_int_equal(sp_mountinfo_read(fixture(path), &t), -EBADMSG);
        assert_null(t);
    }
}

static void test_parse_text_without_final_newline(void **state)
{
    const char text[] = "28 1 254:1 / / rw - ext4 /dev/vda1 rw";
    SpMountTable *t = NULL;

    assert_int_equal(sp_mountinfo_parse(text, strlen(text), &t), 0);
    assert_int_equal(t->n_mounts, 1);
    assert_string_equal(t->mounts[0].super_opts, "rw");
    sp_mount_table_free(t);
}

static void test_empty_table_and_missing_file(void **state)
{
    SpMountTable *t = read_fixture("empty.mountinfo");

    assert_int_equal(t->n_mounts, 0);
    sp_mount_table_free(t);
    t = NULL;
    assert_int_equal(sp_mountinfo_read(fixture("mountinfo/absent"), &t), -ENOENT);
    assert_null(t);
}

static void test_find_returns_the_topmost_mount(void **state)
{
    const char text[] = "28 1 254:1 / / rw - ext4 /dev/vda1 rw\n"
                        "40 28 254:16 / /mnt rw - ext4 /dev/vdb rw\n"
                        "41 40 254:32 / /mnt rw - xfs /dev/vdc rw\n";
    SpMountTable *t = NULL;

    assert_int_equal(sp_mountinfo_parse(text, strlen(text), &t), 0);
    assert_string_equal(sp_mount_table_find(t, "/mnt")->fstype, "xfs");
    assert_null(sp_mount_table_find(t, "/nope"));
    sp_mount_table_free(t);
}

static void test_live_mountinfo_parses(void **state)
{
    SpMountTable *t = NULL;

    assert_int_equal(sp_mountinfo_read(NULL, &t), 0);
    assert_non_null(sp_mount_table_find(t, "/"));
    sp_mount_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_every_field_of_every_mount),
        cmocka_unit_test(test_parse_keeps_bind_mount_root),
        cmocka_unit_test(test_parse_unescapes_space_tab_newline_backslash),
        cmocka_unit_test(test_parse_accepts_several_or_no_optional_fields),
        cmocka_unit_test(test_readonly_is_a_superblock_property),
        cmocka_unit_test(test_has_opt_matches_whole_options_only),
        cmocka_unit_test(test_parse_rejects_malformed_lines),
        cmocka_unit_test(test_parse_text_without_final_newline),
        cmocka_unit_test(test_empty_table_and_missing_file),
        cmocka_unit_test(test_find_returns_the_topmost_mount),
        cmocka_unit_test(test_live_mountinfo_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
