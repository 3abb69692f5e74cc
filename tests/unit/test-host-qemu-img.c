/* Issue 15: every qemu-img command line names the recorded format of what it opens (one test per
 * call site's builder), a chain whose layers could make QEMU guess a format or open a host file
 * is refused, and qemu-img is killed at its deadline. The last tests run the real qemu-img on a
 * raw image whose first bytes are a qcow2 header naming a host file: the file's marker must never
 * come out. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op-util.h"
#include "qemu-img.h"

#define MARKER "SP-HOST-SECRET-MARKER"

/* Is "opt value" in argv (option immediately followed by its value)? */
static gboolean has_opt(GStrv argv, const char *opt, const char *value)
{
    for (guint i = 0; argv != NULL && argv[i] != NULL && argv[i + 1] != NULL; i++)
        if (strcmp(argv[i], opt) == 0 && strcmp(argv[i + 1], value) == 0)
            return TRUE;
    return FALSE;
}

static guint count(GStrv argv, const char *opt)
{
    guint n = 0;
    for (guint i = 0; argv != NULL && argv[i] != NULL; i++)
        n += strcmp(argv[i], opt) == 0;
    return n;
}

/* op-util.c sp_op_chain_check: each layer read alone with its recorded format. */
static void test_info_names_the_format(void **state)
{
    SpImg raw = {"/img/base.raw", "raw"};
    g_auto(GStrv) argv = sp_img_argv_info(&raw, NULL);
    assert_true(has_opt(argv, "-f", "raw"));
    assert_int_equal(count(argv, "--backing-chain"), 0); /* would open the backing files */
    assert_string_equal(argv[g_strv_length(argv) - 1], "/img/base.raw");
}

/* op-apply.c overlay_written. */
static void test_map_names_the_format(void **state)
{
    SpImg o = {"/img/o.qcow2", "qcow2"};
    g_auto(GStrv) argv = sp_img_argv_map(&o, NULL);
    assert_true(has_opt(argv, "-f", "qcow2"));
    assert_string_equal(argv[0], "map");
}

/* op-export.c copy_disks. */
static void test_convert_names_source_and_output_format(void **state)
{
    SpImg raw = {"/img/base.raw", "raw"};
    g_auto(GStrv) argv = sp_img_argv_convert(&raw, "qcow2", "/out/x.qcow2", NULL);
    assert_true(has_opt(argv, "-f", "raw"));
    assert_true(has_opt(argv, "-O", "qcow2"));
    assert_int_equal(count(argv, "-B"), 0);
}

/* op-delete.c merge_offline. */
static void test_commit_names_top_format(void **state)
{
    SpImg top = {"/img/top.qcow2", "qcow2"}, base = {"/img/base.raw", "raw"};
    g_auto(GStrv) argv = sp_img_argv_commit(&top, &base, NULL);
    assert_true(has_opt(argv, "-f", "qcow2"));
    assert_true(has_opt(argv, "-b", "/img/base.raw"));
    assert_int_equal(count(argv, "-d"), 1);
}

/* op-delete.c rebase_dependents (-u) and stream_disk (safe). */
static void test_rebase_names_both_formats(void **state)
{
    SpImg img = {"/img/c.qcow2", "qcow2"}, base = {"/img/base.raw", "raw"};
    g_auto(GStrv) unsafe = sp_img_argv_rebase(&img, &base, FALSE, NULL);
    g_auto(GStrv) safe = sp_img_argv_rebase(&img, &base, TRUE, NULL);
    assert_true(has_opt(unsafe, "-f", "qcow2") && has_opt(unsafe, "-F", "raw"));
    assert_int_equal(count(unsafe, "-u"), 1);
    assert_true(has_opt(safe, "-f", "qcow2") && has_opt(safe, "-F", "raw"));
    assert_int_equal(count(safe, "-u"), 0);
}

/* driver.c sp_overlay_create (-u, size known) and op-apply.c create_overlays. */
static void test_overlay_create_writes_the_backing_format(void **state)
{
    SpImg base = {"/img/base.raw", "raw"};
    g_auto(GStrv) live = sp_img_argv_create_overlay(&base, "/img/o.qcow2", 1 << 20, NULL);
    g_auto(GStrv) off = sp_img_argv_create_overlay(&base, "/img/o.qcow2", -1, NULL);
    assert_true(has_opt(live, "-F", "raw") && has_opt(live, "-f", "qcow2"));
    assert_int_equal(count(live, "-u"), 1);
    assert_string_equal(live[g_strv_length(live) - 1], "1048576");
    assert_true(has_opt(off, "-F", "raw") && has_opt(off, "-f", "qcow2"));
    assert_int_equal(count(off, "-u"), 0);
}

/* backup.c sp_backup_changed_extents: the nbd driver is the top, nothing to probe. */
static void test_nbd_bitmap_map_uses_image_opts(void **state)
{
    g_auto(GStrv) argv = sp_img_argv_map_nbd_bitmap("/run/s.sock", "vda", "b1");
    assert_int_equal(count(argv, "--image-opts"), 1);
    assert_non_null(strstr(argv[g_strv_length(argv) - 1], "driver=nbd,"));
}

/* No builder runs without a recorded format, nor with a format stillpoint does not open. */
static void test_builders_refuse_a_missing_or_odd_format(void **state)
{
    SpImg none = {"/img/x", NULL}, odd = {"/img/x", "vmdk"}, ok = {"/img/y", "qcow2"};
    g_autoptr(GError) error = NULL;
    assert_null(sp_img_argv_info(&none, &error));
    assert_non_null(strstr(error->message, "never guesses"));
    g_clear_error(&error);
    assert_null(sp_img_argv_convert(&odd, "raw", "/o", &error));
    g_clear_error(&error);
    assert_null(sp_img_argv_convert(&ok, "json", "/o", &error));
    g_clear_error(&error);
    assert_null(sp_img_argv_rebase(&ok, &none, FALSE, &error));
    g_clear_error(&error);
    assert_null(sp_img_argv_commit(&none, &ok, &error));
    g_clear_error(&error);
    assert_null(sp_img_argv_create_overlay(&none, "/o", -1, &error));
    g_clear_error(&error);
    assert_null(sp_img_argv_map(&odd, &error));
}

static gboolean layer_ok(const char *json, const char *expected, GError **error)
{
    SpImg img = {"/img/o.qcow2", "qcow2"};
    SpImgLayer l = {0};
    gboolean ok = sp_img_layer_parse(json, &l, error) &&
                  sp_img_layer_check(&img, &l, expected, error);
    sp_img_layer_clear(&l);
    return ok;
}

static void test_layer_check_refuses_what_the_host_did_not_make(void **state)
{
    g_autoptr(GError) error = NULL;
    assert_true(layer_ok("{\"virtual-size\":1}", NULL, NULL));
    assert_true(layer_ok("{\"virtual-size\":1,\"backing-filename\":\"/img/b.raw\","
                         "\"backing-filename-format\":\"raw\"}", "raw", NULL));
    /* json: and nbd: backing names */
    assert_false(layer_ok("{\"virtual-size\":1,\"backing-filename\":\"json:{\\\"driver\\\":"
                          "\\\"raw\\\"}\",\"backing-filename-format\":\"raw\"}", NULL, &error));
    assert_non_null(strstr(error->message, "not a plain local file"));
    g_clear_error(&error);
    assert_false(layer_ok("{\"virtual-size\":1,\"backing-filename\":\"nbd:localhost:10809\","
                          "\"backing-filename-format\":\"raw\"}", NULL, &error));
    g_clear_error(&error);
    /* a backing without a format: QEMU would probe it */
    assert_false(layer_ok("{\"virtual-size\":1,\"backing-filename\":\"/img/b.raw\"}", NULL,
                          &error));
    assert_non_null(strstr(error->message, "without its format"));
    g_clear_error(&error);
    /* a backing format other than the store's */
    assert_false(layer_ok("{\"virtual-size\":1,\"backing-filename\":\"/img/b.raw\","
                          "\"backing-filename-format\":\"qcow2\"}", "raw", &error));
    assert_non_null(strstr(error->message, "recorded it as raw"));
    g_clear_error(&error);
    /* an external data file */
    assert_false(layer_ok("{\"virtual-size\":1,\"format-specific\":{\"type\":\"qcow2\",\"data\":"
                          "{\"data-file\":\"/etc/shadow\"}}}", NULL, &error));
    assert_non_null(strstr(error->message, "data file"));
}

/* ---- the real qemu-img ---- */

typedef struct {
    char *dir;
    char *secret;  /* the "host file": MARKER over and over */
    char *hostile; /* raw image whose sector 0 is a qcow2 header naming secret as backing */
} Real;

static void run_ok(const char *cmd)
{
    int status = 0;
    g_autoptr(GError) error = NULL;
    assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, &error));
    assert_true(g_spawn_check_wait_status(status, NULL));
}

static int real_setup(void **state)
{
    Real *r = g_new0(Real, 1);
    g_autoptr(GString) secret = g_string_new(NULL);
    g_autofree char *hdr = NULL, *cmd = NULL, *hdr_bytes = NULL;
    gsize hdr_len = 0;
    int fd;
    r->dir = g_dir_make_tmp("sp-qemu-img-XXXXXX", NULL);
    r->secret = g_build_filename(r->dir, "secret", NULL);
    r->hostile = g_build_filename(r->dir, "disk.raw", NULL);
    hdr = g_build_filename(r->dir, "hdr.qcow2", NULL);
    while (secret->len < (1 << 20))
        g_string_append(secret, MARKER "\n");
    assert_true(g_file_set_contents(r->secret, secret->str, secret->len, NULL));
    /* What the guest writes to its own raw disk. */
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 -o cluster_size=512 -b %s -F raw %s 1M",
                          r->secret, hdr);
    run_ok(cmd);
    assert_true(g_file_get_contents(hdr, &hdr_bytes, &hdr_len, NULL));
    fd = open(r->hostile, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    assert_int_equal(write(fd, hdr_bytes, hdr_len), (ssize_t)hdr_len);
    close(fd);
    *state = r;
    return 0;
}

static void rm_rf(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(dir);
}

static int real_teardown(void **state)
{
    Real *r = *state;
    rm_rf(r->dir);
    g_free(r->dir);
    g_free(r->secret);
    g_free(r->hostile);
    g_free(r);
    return 0;
}

static gboolean file_has_marker(const char *path)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    return memmem(data, len, MARKER, strlen(MARKER)) != NULL;
}

/* The reproduction: qemu-img without -f reads the host file; with the recorded format it does
 * not, and the copy is the raw disk byte for byte. */
static void test_convert_with_recorded_format_never_reads_the_host_file(void **state)
{
    Real *r = *state;
    g_autofree char *probed = g_build_filename(r->dir, "probed.raw", NULL);
    g_autofree char *out = g_build_filename(r->dir, "out.raw", NULL);
    g_autofree char *cmd = g_strdup_printf("qemu-img convert -O raw %s %s", r->hostile, probed);
    g_autofree char *a = NULL, *b = NULL;
    gsize alen = 0, blen = 0;
    SpImg img = {r->hostile, "raw"};
    g_auto(GStrv) argv = sp_img_argv_convert(&img, "raw", out, NULL);
    g_autoptr(GError) error = NULL;

    run_ok(cmd); /* the old call: the format probed from the guest's bytes */
    assert_true(file_has_marker(probed));

    assert_true(sp_op_qemu_img(NULL, "vda", (const char *const *)argv, &error));
    assert_null(error);
    assert_false(file_has_marker(out));
    assert_true(g_file_get_contents(r->hostile, &a, &alen, NULL));
    assert_true(g_file_get_contents(out, &b, &blen, NULL));
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
}

static void drop_backing_format(const char *qcow2)
{
    static const guchar ext[] = {0xe2, 0x79, 0x2a, 0xca}; /* QCOW2_EXT_MAGIC_BACKING_FORMAT */
    g_autofree char *data = NULL;
    gsize len = 0;
    char *at;
    assert_true(g_file_get_contents(qcow2, &data, &len, NULL));
    at = memmem(data, MIN(len, 4096), ext, sizeof(ext));
    assert_non_null(at);
    at[0] = 0x7e; /* an unknown extension: QEMU skips it */
    assert_true(g_file_set_contents(qcow2, data, len, NULL));
}

/* An overlay stillpoint makes on the raw disk records raw as its backing format, so its chain
 * never re-probes the disk; one without a recorded backing format is refused by the check. */
static void test_overlay_on_hostile_raw_disk_reads_it_as_raw(void **state)
{
    Real *r = *state;
    g_autofree char *overlay = g_build_filename(r->dir, "o.qcow2", NULL);
    g_autofree char *bare = g_build_filename(r->dir, "bare.qcow2", NULL);
    g_autofree char *out = g_build_filename(r->dir, "flat.raw", NULL);
    g_autofree char *json = NULL, *cmd = NULL;
    SpImg base = {r->hostile, "raw"}, top = {overlay, "qcow2"}, b = {bare, "qcow2"};
    g_auto(GStrv) create = sp_img_argv_create_overlay(&base, overlay, -1, NULL);
    g_auto(GStrv) convert = sp_img_argv_convert(&top, "raw", out, NULL);
    g_auto(GStrv) info = NULL;
    SpImgLayer l = {0};
    g_autoptr(GError) error = NULL;

    assert_true(sp_op_qemu_img(NULL, "vda", (const char *const *)create, &error));
    info = sp_img_argv_info(&top, NULL);
    assert_true(sp_op_qemu_img_output((const char *const *)info, &json, &error));
    assert_true(sp_img_layer_parse(json, &l, &error));
    assert_string_equal(l.backing_format, "raw");
    assert_true(sp_img_layer_check(&top, &l, "raw", &error));
    sp_img_layer_clear(&l);
    assert_true(sp_op_qemu_img(NULL, "vda", (const char *const *)convert, &error));
    assert_false(file_has_marker(out));

    /* An overlay whose header names no backing format (as older qemu-img made them): qemu-img
     * would probe the raw disk through it, so the chain check refuses it. Today's qemu-img
     * insists on -F, so the backing format extension is renamed to an unknown one. */
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 -u -b %s -F raw %s 1M", r->hostile, bare);
    run_ok(cmd);
    drop_backing_format(bare);
    g_clear_pointer(&info, g_strfreev);
    g_clear_pointer(&json, g_free);
    info = sp_img_argv_info(&b, NULL);
    assert_true(sp_op_qemu_img_output((const char *const *)info, &json, &error));
    assert_true(sp_img_layer_parse(json, &l, &error));
    assert_false(sp_img_layer_check(&b, &l, NULL, &error));
    assert_non_null(strstr(error->message, "without its format"));
    sp_img_layer_clear(&l);
}

/* Issue 15 item 2: a backing file that is a FIFO blocks qemu-img in open(2); the deadline kills
 * it and says so. */
static void test_qemu_img_is_killed_at_its_deadline(void **state)
{
    Real *r = *state;
    g_autofree char *fifo = g_build_filename(r->dir, "fifo", NULL);
    g_autofree char *overlay = g_build_filename(r->dir, "on-fifo.qcow2", NULL);
    g_autofree char *out = g_build_filename(r->dir, "fifo-out.raw", NULL);
    g_autofree char *cmd = NULL;
    SpImg top = {overlay, "qcow2"};
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) error = NULL;
    gint64 t0;

    assert_int_equal(mkfifo(fifo, 0600), 0);
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 -u -b %s -F raw %s 1M", fifo, overlay);
    run_ok(cmd);
    argv = sp_img_argv_convert(&top, "raw", out, NULL);
    t0 = g_get_monotonic_time();
    assert_false(sp_op_qemu_img_run(NULL, "vda", (const char *const *)argv, 1500, NULL, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_non_null(strstr(error->message, "deadline"));
    assert_true(g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC);
}

/* The default deadline scales with the data and the setting replaces it. */
static void test_deadline_scales_and_is_configurable(void **state)
{
    gint64 gib = (gint64)1 << 30;
    g_unsetenv(SP_IMAGE_TIMEOUT_ENV);
    g_unsetenv("STILLPOINT_TEST_QEMU_IMG_TIMEOUT_MS");
    assert_int_equal(sp_op_deadline_ms(0, SP_TEST_DEADLINE_QEMU_IMG), 600000);
    assert_int_equal(sp_op_deadline_ms(10 * gib, SP_TEST_DEADLINE_QEMU_IMG), 600000 + 1200000);
    g_setenv(SP_IMAGE_TIMEOUT_ENV, "42", TRUE);
    assert_int_equal(sp_op_deadline_ms(10 * gib, SP_TEST_DEADLINE_QEMU_IMG), 42000);
    g_unsetenv(SP_IMAGE_TIMEOUT_ENV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_names_the_format),
        cmocka_unit_test(test_map_names_the_format),
        cmocka_unit_test(test_convert_names_source_and_output_format),
        cmocka_unit_test(test_commit_names_top_format),
        cmocka_unit_test(test_rebase_names_both_formats),
        cmocka_unit_test(test_overlay_create_writes_the_backing_format),
        cmocka_unit_test(test_nbd_bitmap_map_uses_image_opts),
        cmocka_unit_test(test_builders_refuse_a_missing_or_odd_format),
        cmocka_unit_test(test_layer_check_refuses_what_the_host_did_not_make),
        cmocka_unit_test_setup_teardown(test_convert_with_recorded_format_never_reads_the_host_file,
                                        real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_overlay_on_hostile_raw_disk_reads_it_as_raw,
                                        real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_qemu_img_is_killed_at_its_deadline, real_setup,
                                        real_teardown),
        cmocka_unit_test(test_deadline_scales_and_is_configurable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
