/* The verdict's parts without an agent: guest text escaped for the terminal, and the guest's
 * filesystem lists mapped onto the checkpoint's disks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "stillpoint/driver.h"
#include "stillpoint/guest-text.h"
#include "stillpoint/verdict.h"

static void assert_escaped(const char *in, const char *want)
{
    g_autofree char *out = sp_guest_text(in);
    assert_string_equal(out, want);
}

static void test_control_characters_are_escaped(void **state)
{
    assert_escaped("plain /mnt/data \\ ok", "plain /mnt/data \\ ok");
    /* ESC sequences: clear screen, set the window title, a CSI that moves the cursor. */
    assert_escaped("\x1b[2J\x1b]0;owned\x07", "\\x1b[2J\\x1b]0;owned\\x07");
    assert_escaped("done\rERROR\n\tx\x7f", "done\\x0dERROR\\x0a\\x09x\\x7f");
    /* C1 controls (U+009B is a one-byte CSI) and bytes that are not UTF-8. */
    assert_escaped("a\xc2\x9b" "31mb\xc2\x85", "a\\x9b31mb\\x85");
    assert_escaped("bad\xff\xfe utf8 \xc3", "bad\\xff\\xfe utf8 \\xc3");
    /* Printable UTF-8 stays; a right-to-left override does not. */
    assert_escaped("café \xe2\x80\xae" "gpj.exe", "café \\u{202e}gpj.exe");
    assert_escaped(NULL, "(null)");
}

static void test_escaping_twice_changes_nothing(void **state)
{
    g_autofree char *once = sp_guest_text("\x1b[31mred\xc2\x9b\xff");
    g_autofree char *twice = sp_guest_text(once);
    assert_string_equal(once, twice);
    assert_null(strchr(once, '\x1b'));
}

/* ---- coverage ---- */

static GPtrArray *disks_new(const char *name, const char *serial, ...)
{
    GPtrArray *disks = g_ptr_array_new();
    va_list ap;
    va_start(ap, serial);
    while (name != NULL) {
        SpPlanDisk *pd = g_new0(SpPlanDisk, 1);
        pd->disk = g_new0(SpDisk, 1);
        pd->disk->name = g_strdup(name);
        pd->disk->serial = g_strdup(serial);
        g_ptr_array_add(disks, pd);
        name = va_arg(ap, const char *);
        serial = name != NULL ? va_arg(ap, const char *) : NULL;
    }
    va_end(ap);
    return disks;
}

static void disks_free(GPtrArray *disks)
{
    for (guint i = 0; i < disks->len; i++) {
        SpPlanDisk *pd = g_ptr_array_index(disks, i);
        sp_disk_free(pd->disk);
        g_free(pd);
    }
    g_ptr_array_free(disks, TRUE);
}

static SpJson *json(const char *text)
{
    SpJson *v = NULL;
    assert_int_equal(sp_json_parse(text, strlen(text), NULL, &v, NULL), SP_OK);
    return v;
}

/* The verdict of coverage for fsinfo and freeze reply (NULL: qemu-ga, n_frozen counts). */
static char *coverage(GPtrArray *disks, const char *fsinfo, const char *reply, guint n_frozen)
{
    g_autoptr(SpJson) fs = json(fsinfo);
    g_autoptr(SpJson) r = reply != NULL ? json(reply) : NULL;
    return sp_verdict_coverage(disks, fs, r, n_frozen);
}

#define FS_ROOT "{\"mountpoint\": \"/\", \"type\": \"ext4\", \"name\": \"vda1\", " \
                "\"disk\": [{\"serial\": \"A\"}]}"
#define FS_DATA "{\"mountpoint\": \"/data\", \"type\": \"xfs\", \"name\": \"vdb1\", " \
                "\"disk\": [{\"serial\": \"B\"}]}"

static void test_every_filesystem_frozen_is_covered(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", "vdb", "B", NULL);
    g_autofree char *why = coverage(disks, "[" FS_ROOT ", " FS_DATA "]",
                                    "{\"frozen\": [{\"mountpoint\": \"/data\"}, "
                                    "{\"mountpoint\": \"/\"}], \"skipped\": []}", 2);
    assert_null(why);
    disks_free(disks);
}

static void test_an_excluded_filesystem_on_a_checkpointed_disk_is_named(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", "vdb", "B", NULL);
    g_autofree char *why = coverage(disks, "[" FS_ROOT ", " FS_DATA "]",
                                    "{\"frozen\": [{\"mountpoint\": \"/\"}], \"skipped\": "
                                    "[{\"mountpoint\": \"/data\", \"reason\": \"excluded\"}]}", 1);
    assert_string_equal(why, "filesystem /data (xfs) on disk vdb was not frozen: excluded");
    disks_free(disks);
}

static void test_a_filesystem_missing_from_both_lists_counts(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", "vdb", "B", NULL);
    g_autofree char *why = coverage(disks, "[" FS_ROOT ", " FS_DATA "]",
                                    "{\"frozen\": [\"/\"], \"skipped\": []}", 1);
    assert_non_null(strstr(why, "/data (xfs) on disk vdb was not frozen: not in the freeze"));
    disks_free(disks);
}

static void test_bind_mounts_and_read_only_filesystems_are_covered(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", NULL);
    g_autofree char *why = coverage(
        disks,
        "[" FS_ROOT ", {\"mountpoint\": \"/srv\", \"type\": \"ext4\", \"disk\": [{\"serial\": \"A\"}]},"
        " {\"mountpoint\": \"/boot\", \"type\": \"ext4\", \"disk\": [{\"serial\": \"A\"}]}]",
        "{\"frozen\": [{\"mountpoint\": \"/\"}], \"skipped\": ["
        "{\"mountpoint\": \"/srv\", \"reason\": \"same-filesystem\", \"primary\": \"/\"},"
        "{\"mountpoint\": \"/boot\", \"reason\": \"read-only\"}]}", 1);
    assert_null(why);
    disks_free(disks);
}

static void test_a_bind_mount_of_an_unfrozen_filesystem_is_not_covered(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", NULL);
    g_autofree char *why = coverage(
        disks, "[{\"mountpoint\": \"/srv\", \"type\": \"ext4\", \"disk\": [{\"serial\": \"A\"}]}]",
        "{\"frozen\": [], \"skipped\": [{\"mountpoint\": \"/srv\", \"reason\": "
        "\"same-filesystem\", \"primary\": \"/elsewhere\"}]}", 0);
    assert_non_null(why);
    disks_free(disks);
}

static void test_without_serials_an_unfrozen_filesystem_counts(void **state)
{
    /* The host's disk has no serial: which disk /data is on cannot be told. */
    GPtrArray *disks = disks_new("vda", NULL, NULL);
    g_autofree char *why = coverage(disks, "[" FS_DATA "]",
                                    "{\"frozen\": [], \"skipped\": [{\"mountpoint\": \"/data\", "
                                    "\"reason\": \"not-supported\"}]}", 0);
    GPtrArray *serial_disks = disks_new("vda", "A", NULL);
    g_autofree char *why2 = coverage(serial_disks,
                                     "[{\"mountpoint\": \"/x\", \"type\": \"ext4\", \"disk\": [{}]}]",
                                     "{\"frozen\": [], \"skipped\": []}", 0);
    GPtrArray *elsewhere = disks_new("vda", "A", NULL);
    g_autofree char *why3 = coverage(elsewhere, "[" FS_DATA "]",
                                     "{\"frozen\": [], \"skipped\": []}", 0);

    assert_non_null(strstr(why, "on a disk the host cannot tell apart"));
    assert_non_null(strstr(why2, "on a disk the host cannot tell apart"));
    /* Serial B is none of the checkpoint's disks: it still counts (a serial the guest shows
     * differently cannot prove that the filesystem is elsewhere). */
    assert_non_null(strstr(why3, "on a disk the host cannot tell apart"));
    disks_free(disks);
    disks_free(serial_disks);
    disks_free(elsewhere);
}

static void test_a_serial_virtio_cut_short_names_its_disk(void **state)
{
    /* virtio-blk shows the guest the first 20 bytes of a longer serial. */
    GPtrArray *disks = disks_new("vdb", "0123456789abcdefghijKLMN", NULL);
    g_autofree char *why = coverage(
        disks, "[{\"mountpoint\": \"/d\", \"type\": \"ext4\", \"disk\": [{\"serial\": "
               "\"0123456789abcdefghij\"}]}]",
        "{\"frozen\": [], \"skipped\": [{\"mountpoint\": \"/d\", \"reason\": \"excluded\"}]}", 0);

    assert_non_null(strstr(why, "on disk vdb was not frozen: excluded"));
    disks_free(disks);
}

static void test_qemu_ga_is_judged_by_its_count(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", "vdb", "B", NULL);
    /* One device listed twice (a bind mount) is one filesystem. */
    const char *fsinfo = "[" FS_ROOT ", " FS_DATA ", {\"mountpoint\": \"/srv\", \"name\": "
                         "\"vda1\", \"disk\": []}]";
    g_autofree char *all = coverage(disks, fsinfo, NULL, 2);
    g_autofree char *fewer = coverage(disks, fsinfo, NULL, 1);
    assert_null(all);
    assert_non_null(strstr(fewer, "froze 1 of the 2 filesystems"));
    disks_free(disks);
}

static void test_hostile_names_in_the_reason_are_escaped(void **state)
{
    GPtrArray *disks = disks_new("vda", "A", NULL);
    g_autofree char *why = coverage(
        disks, "[{\"mountpoint\": \"/\\u001b[2J\", \"type\": \"x\\u009b\", \"disk\": [{\"serial\": \"A\"}]}]",
        "{\"frozen\": [], \"skipped\": [{\"mountpoint\": \"/\\u001b[2J\", \"reason\": \"\\r\"}]}", 0);
    assert_string_equal(why, "filesystem /\\x1b[2J (x\\x9b) on disk vda was not frozen: \\x0d");
    disks_free(disks);
}

static void test_backend_and_thaw(void **state)
{
    SpFreezeResult freeze = {.epoch = 7};
    SpThawResult held = {.consistent = TRUE, .epoch = 7};
    SpThawResult other = {.consistent = TRUE, .epoch = 8};
    SpThawResult silent = {.consistent = TRUE};
    SpThawResult broke = {.consistent = FALSE, .epoch = 7, .reason = "lease-expired"};
    g_autofree char *fake = sp_verdict_backend(TRUE, "fake");
    g_autofree char *unsaid = sp_verdict_backend(TRUE, NULL);
    g_autofree char *e_other = sp_verdict_thaw(TRUE, &freeze, &other);
    g_autofree char *e_silent = sp_verdict_thaw(TRUE, &freeze, &silent);
    g_autofree char *e_broke = sp_verdict_thaw(TRUE, &freeze, &broke);
    g_autofree char *e_lost = sp_verdict_thaw(TRUE, &freeze, NULL);

    assert_null(sp_verdict_backend(TRUE, "fifreeze"));
    assert_null(sp_verdict_backend(TRUE, "vss"));
    assert_null(sp_verdict_backend(FALSE, NULL)); /* qemu-ga */
    assert_non_null(strstr(fake, "'fake', not a real one"));
    assert_non_null(unsaid);
    assert_null(sp_verdict_thaw(TRUE, &freeze, &held));
    assert_non_null(strstr(e_other, "describes freeze 8"));
    assert_non_null(e_silent);
    assert_non_null(strstr(e_broke, "did not hold until the thaw (lease-expired)"));
    assert_non_null(e_lost);
    /* qemu-ga's thaw names no epoch: its consistent is the status before the thaw. */
    assert_null(sp_verdict_thaw(FALSE, &(SpFreezeResult){0}, &silent));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_escaping_twice_changes_nothing),
        cmocka_unit_test(test_every_filesystem_frozen_is_covered),
        cmocka_unit_test(test_an_excluded_filesystem_on_a_checkpointed_disk_is_named),
        cmocka_unit_test(test_a_filesystem_missing_from_both_lists_counts),
        cmocka_unit_test(test_bind_mounts_and_read_only_filesystems_are_covered),
        cmocka_unit_test(test_a_bind_mount_of_an_unfrozen_filesystem_is_not_covered),
        cmocka_unit_test(test_without_serials_an_unfrozen_filesystem_counts),
        cmocka_unit_test(test_a_serial_virtio_cut_short_names_its_disk),
        cmocka_unit_test(test_qemu_ga_is_judged_by_its_count),
        cmocka_unit_test(test_hostile_names_in_the_reason_are_escaped),
        cmocka_unit_test(test_backend_and_thaw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
