/* The QMP client against a scripted fake QMP server on a real unix socket: greeting and
 * capabilities, replies matched by id (a late reply is never taken for the next command's), a
 * stuck QEMU not costing every cleanup command its full deadline,
 * events queued, QMP errors, and a socket that is not QMP. Plus the journal form of a plan. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stillpoint/coordinator.h"
#include "stillpoint/driver.h"
#include "stillpoint/framer.h"
#include "stillpoint/message.h"
#include "stillpoint/qmp.h"

/* Returns the raw text to send for a request (its id already serialized in id_json). */
typedef char *(*FakeHandler)(const char *execute, const char *id_json, guint *delay_ms);

typedef struct {
    char *dir;
    char *path;
    int listen_fd;
    GThread *thread;
    FakeHandler handler;
    const char *greeting;
} Fake;

typedef struct {
    Fake *fake;
    int fd;
} FrameCtx;

static void fake_frame_cb(const SpFrame *frame, void *userdata)
{
    FrameCtx *fc = userdata;
    g_autoptr(SpJson) msg = NULL;
    g_autofree char *id_json = NULL;
    g_autofree char *reply = NULL;
    guint delay_ms = 0;

    if (frame->kind != SP_FRAME_OBJECT ||
        sp_json_parse(frame->data, frame->len, NULL, &msg, NULL) != SP_OK)
        return;
    id_json = sp_json_object_get(msg, "id") != NULL
                  ? sp_json_serialize(sp_json_object_get(msg, "id"), NULL)
                  : g_strdup("null");
    reply = fc->fake->handler(sp_json_object_get_string(msg, "execute"), id_json, &delay_ms);
    if (delay_ms > 0)
        g_usleep(delay_ms * 1000);
    if (reply != NULL && write(fc->fd, reply, strlen(reply)) < 0)
        return;
}

static gpointer fake_thread(gpointer data)
{
    Fake *fake = data;
    FrameCtx fc = {.fake = fake};
    SpFramer *framer = sp_framer_new(0);
    char buf[4096];
    ssize_t n;

    fc.fd = accept(fake->listen_fd, NULL, NULL);
    if (fc.fd >= 0 && write(fc.fd, fake->greeting, strlen(fake->greeting)) < 0)
        goto out;
    while (fc.fd >= 0 && (n = read(fc.fd, buf, sizeof(buf))) > 0)
        sp_framer_feed(framer, buf, (size_t)n, fake_frame_cb, &fc);
out:
    if (fc.fd >= 0)
        close(fc.fd);
    sp_framer_free(framer);
    return NULL;
}

static const char qmp_greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
    "\"capabilities\": [\"oob\"]}}\r\n";

static Fake *fake_start(FakeHandler handler, const char *greeting)
{
    Fake *fake = g_new0(Fake, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    fake->dir = g_dir_make_tmp("sp-qmp-XXXXXX", NULL);
    fake->path = g_build_filename(fake->dir, "qmp.sock", NULL);
    fake->handler = handler;
    fake->greeting = greeting;
    g_strlcpy(addr.sun_path, fake->path, sizeof(addr.sun_path));
    fake->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fake->listen_fd, 1), 0);
    fake->thread = g_thread_new("fake-qmp", fake_thread, fake);
    return fake;
}

static void fake_stop(Fake *fake)
{
    g_thread_join(fake->thread);
    close(fake->listen_fd);
    g_unlink(fake->path);
    g_rmdir(fake->dir);
    g_free(fake->path);
    g_free(fake->dir);
    g_free(fake);
}

static char *qemu_handler(const char *execute, const char *id, guint *delay_ms)
{
    if (g_strcmp0(execute, "qmp_capabilities") == 0)
        return g_strdup_printf("{\"return\": {}, \"id\": %s}\r\n", id);
    if (g_strcmp0(execute, "query-status") == 0)
        /* Events may come before a reply: they are kept, not taken for it. */
        return g_strdup_printf(
            "{\"event\": \"BLOCK_JOB_READY\", \"data\": {\"device\": \"j1\"}}\r\n"
            "{\"event\": \"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"j0\"}}\r\n"
            "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %s}\r\n",
            id);
    if (g_strcmp0(execute, "slow") == 0) {
        *delay_ms = 300;
        return g_strdup_printf("{\"return\": \"slow\", \"id\": %s}\r\n", id);
    }
    if (g_strcmp0(execute, "fast") == 0)
        return g_strdup_printf("{\"return\": \"fast\", \"id\": %s}\r\n", id);
    if (g_strcmp0(execute, "hang") == 0) { /* QEMU stuck for 3 s; what is sent meanwhile waits */
        *delay_ms = 3000;
        return g_strdup_printf("{\"return\": \"hang\", \"id\": %s}\r\n", id);
    }
    if (g_strcmp0(execute, "slower") == 0) {
        *delay_ms = 2500;
        return g_strdup_printf("{\"return\": \"slower\", \"id\": %s}\r\n", id);
    }
    if (g_strcmp0(execute, "query-block") == 0)
        return g_strdup_printf(
            "{\"return\": [{\"device\": \"\", "
            "\"qdev\": \"/machine/peripheral/vda/virtio-backend\", "
            "\"inserted\": {\"file\": \"/img/a.qcow2\", \"drv\": \"qcow2\", \"ro\": false, "
            "\"image\": {\"virtual-size\": 1024}}}], \"id\": %s}\r\n",
            id);
    if (g_strcmp0(execute, "emit") == 0)
        return g_strdup_printf(
            "{\"return\": {}, \"id\": %s}\r\n"
            "{\"event\": \"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"j2\"}}\r\n",
            id);
    return g_strdup_printf("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The "
                           "command %s has not been found\"}, \"id\": %s}\r\n",
                           execute, id);
}

static void test_connect_negotiates_and_keeps_events(void **state)
{
    Fake *fake = fake_start(qemu_handler, qmp_greeting);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect(fake->path, 2000, &error);
    g_autoptr(SpJson) status = NULL;
    g_autoptr(SpJson) ev = NULL;
    g_autoptr(SpJson) ev2 = NULL;

    assert_non_null(qmp);
    status = sp_qmp_execute(qmp, "query-status", NULL, 2000, &error);
    assert_non_null(status);
    assert_string_equal(sp_json_object_get_string(status, "status"), "running");
    ev = sp_qmp_take_event(qmp, "BLOCK_JOB_COMPLETED");
    assert_non_null(ev);
    assert_string_equal(sp_json_object_get_string(sp_json_object_get(ev, "data"), "device"), "j0");
    assert_null(sp_qmp_take_event(qmp, "BLOCK_JOB_COMPLETED"));
    /* An event that arrives after the reply is waited for, filtered by its data. */
    sp_json_free(sp_qmp_execute(qmp, "emit", NULL, 2000, &error));
    ev2 = sp_qmp_wait_event(qmp, "BLOCK_JOB_COMPLETED", "device", "j2", 2000, &error);
    assert_non_null(ev2);
    sp_json_free(sp_qmp_take_event(qmp, "BLOCK_JOB_READY"));
    sp_qmp_free(qmp);
    fake_stop(fake);
}

static void test_late_reply_is_not_taken_for_the_next_command(void **state)
{
    Fake *fake = fake_start(qemu_handler, qmp_greeting);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect(fake->path, 2000, &error);
    g_autoptr(SpJson) slow = NULL;
    g_autoptr(SpJson) fast = NULL;

    assert_non_null(qmp);
    slow = sp_qmp_execute(qmp, "slow", NULL, 100, &error);
    assert_null(slow);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_non_null(strstr(error->message, "QMP command slow"));
    g_clear_error(&error);
    fast = sp_qmp_execute(qmp, "fast", NULL, 2000, &error);
    assert_non_null(fast);
    assert_string_equal(sp_json_get_string(fast), "fast");
    sp_qmp_free(qmp);
    fake_stop(fake);
}

static void test_after_a_timeout_the_next_commands_wait_briefly_until_qemu_answers(void **state)
{
    Fake *fake = fake_start(qemu_handler, qmp_greeting);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect(fake->path, 2000, &error);
    g_autoptr(SpJson) ok = NULL;
    g_autoptr(SpJson) slower = NULL;
    gint64 start;

    assert_non_null(qmp);
    assert_null(sp_qmp_execute(qmp, "hang", NULL, 200, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    g_clear_error(&error);
    /* QEMU is still stuck: a cleanup command asking for 10 s gives up after the stalled cap. */
    start = g_get_monotonic_time();
    assert_null(sp_qmp_execute(qmp, "fast", NULL, 10000, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_true(g_get_monotonic_time() - start < (SP_QMP_STALLED_TIMEOUT_MS + 500) * 1000);
    g_clear_error(&error);
    /* QEMU answers again (the late replies are dropped): the command gets its reply... */
    ok = sp_qmp_execute(qmp, "fast", NULL, 10000, &error);
    assert_non_null(ok);
    assert_string_equal(sp_json_get_string(ok), "fast");
    /* ... and the next one its full deadline again (2.5 s > the stalled cap). */
    slower = sp_qmp_execute(qmp, "slower", NULL, 10000, &error);
    assert_non_null(slower);
    sp_qmp_free(qmp);
    fake_stop(fake);
}

static void test_qmp_error_names_command_class_and_desc(void **state)
{
    Fake *fake = fake_start(qemu_handler, qmp_greeting);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect(fake->path, 2000, &error);
    g_autoptr(SpJson) ret = NULL;

    assert_non_null(qmp);
    ret = sp_qmp_execute(qmp, "transaction", NULL, 2000, &error);
    assert_null(ret);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_FAILED));
    assert_string_equal(error->message, "QMP command transaction failed: CommandNotFound: The "
                                        "command transaction has not been found");
    sp_qmp_free(qmp);
    fake_stop(fake);
}

static void test_agent_socket_is_not_taken_for_qmp(void **state)
{
    /* A guest agent socket says nothing first; something else may say something else. */
    Fake *fake = fake_start(qemu_handler, "{\"return\": {}}\n");
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect(fake->path, 2000, &error);
    assert_null(qmp);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA));
    assert_non_null(strstr(error->message, "not a QMP greeting"));
    fake_stop(fake);
}

static void test_missing_qmp_socket_names_the_path(void **state)
{
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect("/nonexistent/qmp.sock", 200, &error);
    assert_null(qmp);
    assert_non_null(strstr(error->message, "QMP socket /nonexistent/qmp.sock: cannot connect"));
}

static void test_disk_without_node_name_is_refused_at_discovery(void **state)
{
    Fake *fake = fake_start(qemu_handler, qmp_greeting);
    g_autoptr(GError) error = NULL;
    SpQmp *qmp = sp_qmp_connect(fake->path, 2000, &error);
    g_autoptr(GPtrArray) disks = NULL;

    assert_non_null(qmp);
    /* blockdev-snapshot needs the node: better no checkpoint than one missing a disk. */
    disks = sp_qmp_discover_disks(qmp, &error);
    assert_null(disks);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED));
    assert_non_null(strstr(error->message, "/img/a.qcow2"));
    sp_qmp_free(qmp);
    fake_stop(fake);
}

static void test_plan_round_trips_through_the_journal(void **state)
{
    g_autoptr(SpSnapshotPlan) plan = sp_snapshot_plan_new("web", "before \"upgrade\"");
    g_autoptr(SpSnapshotPlan) back = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    SpPlanDisk *pd = g_new0(SpPlanDisk, 1);
    SpPlanDisk *bd;

    plan->type = g_strdup("production");
    pd->disk = g_new0(SpDisk, 1);
    pd->disk->name = g_strdup("vd-data0");
    pd->disk->node = g_strdup("disk-data0");
    pd->disk->image = g_strdup("/img/data0.qcow2");
    pd->disk->format = g_strdup("qcow2");
    pd->disk->size = 64 << 20;
    pd->disk->serial = g_strdup("data0");
    pd->overlay = g_strdup("/img/web-vd-data0.qcow2");
    pd->overlay_node = g_strdup("sp12345678-0");
    g_ptr_array_add(plan->disks, pd);

    text = sp_snapshot_plan_to_json(plan);
    back = sp_snapshot_plan_from_json(text, &error);
    assert_non_null(back);
    assert_string_equal(back->checkpoint_name, "before \"upgrade\"");
    assert_string_equal(back->type, "production");
    assert_int_equal(back->disks->len, 1);
    bd = g_ptr_array_index(back->disks, 0);
    assert_string_equal(bd->disk->node, "disk-data0");
    assert_int_equal(bd->disk->size, 64 << 20);
    assert_string_equal(bd->overlay_node, "sp12345678-0");
    /* After a crash nobody knows how far it got: recovery must try to undo everything. */
    assert_true(bd->created);
    assert_true(bd->added);

    assert_null(sp_snapshot_plan_from_json("{\"disks\": [", &error));
}

static void test_default_name_is_hyper_v_style(void **state)
{
    g_autoptr(GDateTime) when = g_date_time_new_local(2026, 11, 6, 4, 5, 9);
    g_autofree char *name = sp_checkpoint_default_name("web", when);
    assert_string_equal(name, "web (11/06/2026 - 04:05:09)");
}

static void test_lease_grows_with_disks(void **state)
{
    assert_true(sp_coordinator_lease_ms(2) > sp_coordinator_lease_ms(1));
    assert_int_equal(sp_coordinator_lease_ms(0), sp_coordinator_lease_ms(1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_negotiates_and_keeps_events),
        cmocka_unit_test(test_late_reply_is_not_taken_for_the_next_command),
        cmocka_unit_test(test_after_a_timeout_the_next_commands_wait_briefly_until_qemu_answers),
        cmocka_unit_test(test_qmp_error_names_command_class_and_desc),
        cmocka_unit_test(test_agent_socket_is_not_taken_for_qmp),
        cmocka_unit_test(test_missing_qmp_socket_names_the_path),
        cmocka_unit_test(test_disk_without_node_name_is_refused_at_discovery),
        cmocka_unit_test(test_plan_round_trips_through_the_journal),
        cmocka_unit_test(test_default_name_is_hyper_v_style),
        cmocka_unit_test(test_lease_grows_with_disks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
