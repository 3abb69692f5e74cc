/* The agent client against a scripted fake agent on a real unix socket: sync past stale data,
 * resync after a timeout, stillpoint detection and the qemu-ga fallback. */
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

#include "stillpoint/agent.h"
#include "stillpoint/framer.h"
#include "stillpoint/message.h"

/* A fake agent: answers each request with what handler returns (raw bytes, may be NULL = no
 * answer), after delay_ms. Runs in a thread until the client hangs up. */
typedef char *(*FakeHandler)(const char *execute, const SpJson *args, guint *delay_ms);

typedef struct {
    char *dir;
    char *path;
    int listen_fd;
    GThread *thread;
    FakeHandler handler;
    GMutex lock;
    GPtrArray *seen; /* "execute args-json" lines */
} Fake;

typedef struct {
    Fake *fake;
    int fd;
} FrameCtx;

static void fake_frame_cb(const SpFrame *frame, void *userdata)
{
    FrameCtx *fc = userdata;
    g_autoptr(SpJson) msg = NULL;
    SpRequest req;
    g_autofree char *reply = NULL;
    g_autofree char *args_text = NULL;
    guint delay_ms = 0;

    if (frame->kind != SP_FRAME_OBJECT)
        return;
    if (sp_json_parse(frame->data, frame->len, NULL, &msg, NULL) != SP_OK ||
        sp_request_parse(msg, &req, NULL) != SP_OK)
        return;
    args_text = req.arguments != NULL ? sp_json_serialize(req.arguments, NULL) : g_strdup("{}");
    g_mutex_lock(&fc->fake->lock);
    g_ptr_array_add(fc->fake->seen, g_strdup_printf("%s %s", req.execute, args_text));
    g_mutex_unlock(&fc->fake->lock);
    reply = fc->fake->handler(req.execute, req.arguments, &delay_ms);
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
    while (fc.fd >= 0 && (n = read(fc.fd, buf, sizeof(buf))) > 0)
        sp_framer_feed(framer, buf, (size_t)n, fake_frame_cb, &fc);
    if (fc.fd >= 0)
        close(fc.fd);
    sp_framer_free(framer);
    return NULL;
}

static Fake *fake_start(FakeHandler handler)
{
    Fake *fake = g_new0(Fake, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    fake->dir = g_dir_make_tmp("sp-agent-XXXXXX", NULL);
    fake->path = g_build_filename(fake->dir, "agent.sock", NULL);
    fake->handler = handler;
    fake->seen = g_ptr_array_new_with_free_func(g_free);
    g_mutex_init(&fake->lock);
    g_strlcpy(addr.sun_path, fake->path, sizeof(addr.sun_path));
    fake->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fake->listen_fd, 1), 0);
    fake->thread = g_thread_new("fake-agent", fake_thread, fake);
    return fake;
}

static void fake_stop(Fake *fake)
{
    /* The client has hung up by now (the agent was freed); the thread sees EOF. */
    g_thread_join(fake->thread);
    close(fake->listen_fd);
    g_unlink(fake->path);
    g_rmdir(fake->dir);
    g_ptr_array_unref(fake->seen);
    g_mutex_clear(&fake->lock);
    g_free(fake->path);
    g_free(fake->dir);
    g_free(fake);
}

static gboolean fake_saw(Fake *fake, const char *line)
{
    gboolean found = FALSE;
    g_mutex_lock(&fake->lock);
    for (guint i = 0; i < fake->seen->len; i++)
        found |= g_strcmp0(g_ptr_array_index(fake->seen, i), line) == 0;
    g_mutex_unlock(&fake->lock);
    return found;
}

/* Answers guest-sync-delimited as qemu-ga does: 0xFF, then the id. */
static char *sync_reply(const SpJson *args)
{
    return g_strdup_printf("\xff{\"return\": %" G_GINT64_FORMAT "}\n",
                           sp_json_object_get_int(args, "id", 0));
}

static char *qemu_ga_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0) {
        /* Stale bytes from an earlier client come first: they must be skipped. */
        g_autofree char *sync = sync_reply(args);
        return g_strconcat("{\"return\": 7}\n{\"garb", sync, NULL);
    }
    if (g_strcmp0(execute, "guest-fsfreeze-freeze") == 0)
        return g_strdup("{\"return\": 2}\n");
    if (g_strcmp0(execute, "guest-fsfreeze-status") == 0)
        return g_strdup("{\"return\": \"frozen\"}\n");
    if (g_strcmp0(execute, "guest-fsfreeze-thaw") == 0)
        return g_strdup("{\"return\": 2}\n");
    return g_strdup_printf("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command "
                           "%s has not been found\"}}\n",
                           execute);
}

static void test_qemu_ga_fallback_uses_standard_fsfreeze(void **state)
{
    Fake *fake = fake_start(qemu_ga_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake->path, 2000, &error);
    SpFreezeResult fr = {0};
    SpThawResult tr = {0};

    assert_non_null(agent);
    assert_false(sp_agent_is_stillpoint(agent));
    assert_true(sp_agent_freeze(agent, 10000, &fr, &error));
    assert_int_equal(fr.frozen, 2);
    assert_true(sp_agent_thaw(agent, &fr, &tr, &error));
    /* Still frozen right before the thaw: the freeze held. */
    assert_true(tr.consistent);
    assert_true(fake_saw(fake, "guest-fsfreeze-freeze {}"));
    assert_true(fake_saw(fake, "guest-fsfreeze-thaw {}"));
    sp_agent_free(agent);
    fake_stop(fake);
}

static char *stillpoint_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0)
        return sync_reply(args);
    if (g_strcmp0(execute, "stillpoint-capabilities") == 0)
        return g_strdup("{\"return\": {\"version\": \"1\"}}\n");
    if (g_strcmp0(execute, "stillpoint-freeze") == 0)
        return g_strdup("{\"return\": {\"frozen\": [\"/\", \"/data\"], \"skipped\": [], "
                        "\"epoch\": 42}}\n");
    if (g_strcmp0(execute, "stillpoint-thaw") == 0)
        return g_strdup("{\"return\": {\"consistent\": false, \"held-ms\": 1234}}\n");
    return NULL;
}

static void test_stillpoint_agent_gets_leased_freeze_and_epoch_thaw(void **state)
{
    Fake *fake = fake_start(stillpoint_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake->path, 2000, &error);
    SpFreezeResult fr = {0};
    SpThawResult tr = {0};

    assert_non_null(agent);
    assert_true(sp_agent_is_stillpoint(agent));
    assert_true(sp_agent_freeze(agent, 17000, &fr, &error));
    assert_int_equal(fr.epoch, 42);
    assert_int_equal(fr.frozen, 2);
    assert_true(fake_saw(fake, "stillpoint-freeze {\"lease-ms\":17000}"));
    assert_true(sp_agent_thaw(agent, &fr, &tr, &error));
    assert_true(fake_saw(fake, "stillpoint-thaw {\"epoch\":42}"));
    /* The agent's verdict is reported as is: the lease ran out, not consistent. */
    assert_false(tr.consistent);
    assert_int_equal(tr.held_ms, 1234);
    sp_agent_free(agent);
    fake_stop(fake);
}

static char *slow_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0)
        return sync_reply(args);
    if (g_strcmp0(execute, "guest-info") == 0) {
        *delay_ms = 300; /* answers, but after the client's deadline */
        return g_strdup("{\"return\": \"late\"}\n");
    }
    if (g_strcmp0(execute, "guest-ping") == 0)
        return g_strdup("{\"return\": \"pong\"}\n");
    return g_strdup("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}}\n");
}

static void test_timeout_resyncs_so_late_reply_is_not_taken_for_the_next(void **state)
{
    Fake *fake = fake_start(slow_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake->path, 2000, &error);
    g_autoptr(SpJson) info = NULL;
    g_autoptr(SpJson) pong = NULL;

    assert_non_null(agent);
    info = sp_agent_execute(agent, "guest-info", NULL, 100, &error);
    assert_null(info);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_TIMEOUT));
    g_clear_error(&error);
    pong = sp_agent_execute(agent, "guest-ping", NULL, 2000, &error);
    assert_non_null(pong);
    assert_string_equal(sp_json_get_string(pong), "pong");
    sp_agent_free(agent);
    fake_stop(fake);
}

static char *mute_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    return NULL; /* the channel is open but nothing runs in the guest */
}

static void test_silent_agent_is_unreachable(void **state)
{
    Fake *fake = fake_start(mute_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake->path, 200, &error);
    assert_null(agent);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    assert_non_null(strstr(error->message, "guest-sync-delimited"));
    fake_stop(fake);
}

static void test_missing_socket_is_unreachable(void **state)
{
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect("/nonexistent/agent.sock", 200, &error);
    assert_null(agent);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    assert_non_null(strstr(error->message, "/nonexistent/agent.sock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qemu_ga_fallback_uses_standard_fsfreeze),
        cmocka_unit_test(test_stillpoint_agent_gets_leased_freeze_and_epoch_thaw),
        cmocka_unit_test(test_timeout_resyncs_so_late_reply_is_not_taken_for_the_next),
        cmocka_unit_test(test_silent_agent_is_unreachable),
        cmocka_unit_test(test_missing_socket_is_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
