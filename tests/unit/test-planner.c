/* planner: one target per superblock, in a safe order, every skip with its reason. */
#define _GNU_SOURCE
#include "agent-test.h"

#include <errno.h>
#include <sys/sysmacros.h>
#include "planner.h"

static SpMountTable *table_of(const char *name)
{
    char path[512];
    SpMountTable *t = NULL;

    snprintf(path, sizeof(path), "mountinfo/%s", name);
    assert_int_equal(sp_mountinfo_read(fixture(path), &t), 0);
    return t;
}

static SpFreezePlan *plan_of(const SpMountTable *t, const SpPlanOptions *o)
{
    SpFreezePlan *p = NULL;
    assert_int_equal(sp_plan_build(t, o, &p, NULL), 0);
    return p;
}

static const SpPlanSkip *skip_of(const SpFreezePlan *p, const char *mountpoint)
{
    for (size_t i = 0; i < p->n_skips; i++)
        if (strcmp(p->skips[i].mountpoint, mountpoint) == 0)
            return &p->skips[i];
    return NULL;
}

static void assert_skip(const SpFreezePlan *p, const char *mountpoint, const char *reason)
{
    const SpPlanSkip *s = skip_of(p, mountpoint);
    if (!s)
        fail_msg("%s is not skipped", mountpoint);
    assert_string_equal(sp_skip_reason_str(s->reason), reason);
}

static void assert_targets(const SpFreezePlan *p, const char *const *expected, size_t n)
{
    assert_int_equal(p->n_targets, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(p->targets[i].mountpoint, expected[i]);
}

static void test_plan_freezes_each_superblock_once_in_reverse_mount_order(void **state)
{
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, NULL);
    static const char *const expected[] = {"/data", "/home", "/var/lib/postgresql", "/boot", "/"};

    assert_targets(p, expected, 5);
    assert_true(p->targets[1].dev == makedev(253, 0));
    assert_string_equal(p->targets[1].fstype, "xfs");
    assert_string_equal(p->targets[1].source, "/dev/mapper/vg0-home");
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_bind_mount_is_frozen_through_its_original(void **state)
{
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, NULL);
    const SpPlanSkip *s = skip_of(p, "/srv/shared");

    assert_non_null(s);
    assert_int_equal(s->reason, SP_SKIP_SAME_FILESYSTEM);
    assert_string_equal(s->primary, "/home");
    assert_null(skip_of(p, "/home")); /* the original is a target, not a skip */
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_plan_skips_what_cannot_be_frozen_with_reasons(void **state)
{
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, NULL);

    assert_skip(p, "/sys", "pseudo");
    assert_skip(p, "/proc", "pseudo");
    assert_skip(p, "/dev", "pseudo");
    assert_skip(p, "/sys/fs/cgroup", "pseudo");
    assert_skip(p, "/run", "memory");
    assert_skip(p, "/dev/shm", "memory");
    assert_skip(p, "/mnt/nfs", "network");
    assert_skip(p, "/mnt/share", "network");
    assert_skip(p, "/mnt/sshfs", "fuse");
    assert_skip(p, "/var/lib/docker/overlay2/abc/merged", "stacked");
    assert_skip(p, "/media/cdrom", "read-only");
    assert_skip(p, "/archive", "read-only");
    assert_int_equal(p->n_targets + p->n_skips, t->n_mounts);
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_plan_excludes_by_mountpoint_pattern_and_type(void **state)
{
    static const char *const mps[] = {"/var/lib/*", "/boot", NULL};
    static const char *const types[] = {"xfs", NULL};
    static const char *const expected[] = {"/data", "/"};
    SpPlanOptions o = {.exclude_mountpoints = mps, .exclude_types = types};
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, &o);

    assert_targets(p, expected, 2);
    assert_skip(p, "/var/lib/postgresql", "excluded");
    assert_skip(p, "/boot", "excluded");
    assert_skip(p, "/home", "excluded");
    assert_skip(p, "/srv/shared", "excluded");
    /* With FNM_PATHNAME the lib pattern does not reach deeper: overlay keeps its own reason. */
    assert_skip(p, "/var/lib/docker/overlay2/abc/merged", "stacked");
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_excluding_a_mountpoint_excludes_its_filesystem_everywhere(void **state)
{
    /* /srv/shared is a bind of /home's filesystem: freezing it would freeze /home. */
    static const char *const mps[] = {"/home", NULL};
    SpPlanOptions o = {.exclude_mountpoints = mps};
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, &o);

    assert_skip(p, "/home", "excluded");
    assert_skip(p, "/srv/shared", "excluded");
    for (size_t i = 0; i < p->n_targets; i++)
        assert_true(p->targets[i].dev != makedev(253, 0));
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_plan_selects_mountpoints(void **state)
{
    static const char *const sel[] = {"/home", "/boot", NULL};
    static const char *const expected[] = {"/home", "/boot"};
    SpPlanOptions o = {.mountpoints = sel};
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, &o);

    assert_targets(p, expected, 2);
    assert_int_equal(p->n_skips, 0); /* what was not asked for is not reported */
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_plan_selecting_a_bind_mount_freezes_its_filesystem(void **state)
{
    static const char *const sel[] = {"/srv/shared", NULL};
    SpPlanOptions o = {.mountpoints = sel};
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = plan_of(t, &o);

    assert_int_equal(p->n_targets, 1);
    assert_string_equal(p->targets[0].mountpoint, "/srv/shared");
    assert_true(p->targets[0].dev == makedev(253, 0));
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_plan_with_unknown_mountpoint_fails_with_enoent(void **state)
{
    static const char *const sel[] = {"/home", "/nowhere", NULL};
    SpPlanOptions o = {.mountpoints = sel};
    SpMountTable *t = table_of("debian-vm.mountinfo");
    SpFreezePlan *p = NULL;
    const char *missing = NULL;

    assert_int_equal(sp_plan_build(t, &o, &p, &missing), -ENOENT);
    assert_null(p);
    assert_string_equal(missing, "/nowhere");
    sp_mount_table_free(t);
}

static bool select_vdb_cb(const SpMount *m, void *userdata)
{
    (*(int *)userdata)++;
    return sp_mount_dev(m) == makedev(254, 16);
}

static void test_plan_selects_by_device(void **state)
{
    int calls = 0;
    SpPlanOptions o = {.select_mount = select_vdb_cb, .select_userdata = &calls};
    SpMountTable *t = table_of("nested-loop.mountinfo");
    SpFreezePlan *p = plan_of(t, &o);

    assert_int_equal(p->n_targets, 1);
    assert_string_equal(p->targets[0].mountpoint, "/srv");
    assert_true(calls > 0);
    sp_plan_free(p);
    sp_mount_table_free(t);
}

/* loop0 (/srv/vm) is a file on /srv; loop1 (/srv/vm/inner) is a file on /srv/vm. */
static size_t backing_cb(dev_t dev, dev_t *ret, size_t max, void *userdata)
{
    if (dev == makedev(7, 0)) {
        ret[0] = makedev(254, 16);
        return 1;
    }
    if (dev == makedev(7, 1)) {
        ret[0] = makedev(7, 0);
        return 1;
    }
    return 0;
}

static void test_loop_backed_filesystem_is_frozen_before_its_host(void **state)
{
    SpPlanOptions o = {.backing_devs = backing_cb};
    SpMountTable *t = table_of("nested-loop.mountinfo");
    SpFreezePlan *p = plan_of(t, &o);
    /* Wave 0 (independent): btrfs, inner, /opt, / ; then /srv/vm; then /srv. */
    static const char *const expected[] = {"/btr", "/opt", "/srv/vm/inner", "/", "/srv/vm", "/srv"};

    assert_targets(p, expected, 6);
    assert_int_equal(p->targets[0].wave, 0);
    assert_int_equal(p->targets[3].wave, 0);
    assert_int_equal(p->targets[4].wave, 1);
    assert_int_equal(p->targets[5].wave, 2);
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_btrfs_on_anonymous_device_is_freezable(void **state)
{
    SpMountTable *t = table_of("nested-loop.mountinfo");
    SpFreezePlan *p = plan_of(t, NULL);

    assert_string_equal(p->targets[0].mountpoint, "/btr");
    assert_null(skip_of(p, "/btr"));
    /* Another subvolume: its own anonymous dev, the same superblock. */
    assert_int_equal(skip_of(p, "/btr-home")->reason, SP_SKIP_SAME_FILESYSTEM);
    assert_string_equal(skip_of(p, "/btr-home")->primary, "/btr");
    sp_plan_free(p);
    sp_mount_table_free(t);
}

/* Tables read while mounts change can be inconsistent (found by fuzz-mountinfo): the plan must
 * still hold each device once and never freeze through a mount it would skip. */
static void test_inconsistent_table_still_plans_each_device_once(void **state)
{
    const char text[] =
        "28 1 254:32 / /archive rw - ext4 /dev/vdc ro\n"
        "42 28 254:48 / /b rw - btrfs /dev/vdd rw\n"
        "45 28 0:36 /home /b-home rw - btrfs /dev/vdd rw\n"
        "46 28 254:32 / /opt rw - btrfs /dev/vdd rw\n"
        "47 28 254:48 / /b rw - weirdfs /dev/vdd rw\n";
    SpMountTable *t = NULL;
    SpFreezePlan *p;

    assert_int_equal(sp_mountinfo_parse(text, strlen(text), &t), 0);
    p = plan_of(t, NULL);
    for (size_t i = 0; i < p->n_targets; i++) {
        assert_string_not_equal(p->targets[i].mountpoint, "/archive");
        for (size_t j = i + 1; j < p->n_targets; j++)
            assert_true(p->targets[i].dev != p->targets[j].dev);
    }
    assert_skip(p, "/archive", "read-only");
    assert_true(p->n_targets + p->n_skips <= t->n_mounts);
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_skip_target_moves_it_to_skips(void **state)
{
    SpMountTable *t = table_of("nested-loop.mountinfo");
    SpFreezePlan *p = plan_of(t, NULL);
    size_t n = p->n_targets;

    assert_string_equal(p->targets[2].mountpoint, "/srv/vm/inner");
    assert_int_equal(sp_plan_skip_target(p, 2, SP_SKIP_FROZEN_BY_OTHER), 0);
    assert_int_equal(p->n_targets, n - 1);
    assert_skip(p, "/srv/vm/inner", "frozen-by-other");
    assert_int_equal(sp_plan_skip_target(p, 99, SP_SKIP_NOT_SUPPORTED), -EINVAL);
    sp_plan_free(p);
    sp_mount_table_free(t);
}

static void test_skip_reason_names_are_stable(void **state)
{
    assert_string_equal(sp_skip_reason_str(SP_SKIP_READ_ONLY), "read-only");
    assert_string_equal(sp_skip_reason_str(SP_SKIP_FROZEN_BY_OTHER), "frozen-by-other");
    assert_string_equal(sp_skip_reason_str(SP_SKIP_NOT_SUPPORTED), "not-supported");
    assert_string_equal(sp_skip_reason_str(SP_SKIP_SAME_FILESYSTEM), "same-filesystem");
    assert_string_equal(sp_skip_reason_str(SP_SKIP_NO_BLOCK_DEVICE), "no-block-device");
    assert_string_equal(sp_skip_reason_str((SpSkipReason)1000), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_freezes_each_superblock_once_in_reverse_mount_order),
        cmocka_unit_test(test_bind_mount_is_frozen_through_its_original),
        cmocka_unit_test(test_plan_skips_what_cannot_be_frozen_with_reasons),
        cmocka_unit_test(test_plan_excludes_by_mountpoint_pattern_and_type),
        cmocka_unit_test(test_excluding_a_mountpoint_excludes_its_filesystem_everywhere),
        cmocka_unit_test(test_plan_selects_mountpoints),
        cmocka_unit_test(test_plan_selecting_a_bind_mount_freezes_its_filesystem),
        cmocka_unit_test(test_plan_with_unknown_mountpoint_fails_with_enoent),
        cmocka_unit_test(test_plan_selects_by_device),
        cmocka_unit_test(test_loop_backed_filesystem_is_frozen_before_its_host),
        cmocka_unit_test(test_btrfs_on_anonymous_device_is_freezable),
        cmocka_unit_test(test_inconsistent_table_still_plans_each_device_once),
        cmocka_unit_test(test_skip_target_moves_it_to_skips),
        cmocka_unit_test(test_skip_reason_names_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
