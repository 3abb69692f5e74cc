/* The agent client against a scripted fake agent on a real unix socket: sync past stale data,
 * resync after a timeout, a stopped agent not costing every later command its full deadline,
 * stillpoint detection and the qemu-ga fallback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <string.h>

#include "host-fake-agent.h"
#include "stillpoint/agent.h"

static char *qemu_ga_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0) {
        /* Stale bytes from an earlier client come first: they must be skipped. */
        g_autofree char *sync = fake_agent_sync_reply(args);
        return g_strconcat("{\"return\": 7}\n{\"garb", sync, NULL);
    }
    if (g_strcmp0(execute, "guest-fsfreeze-freeze") == 0)
        return g_strdup("{\"return\": 2}\n");
    if (g_strcmp0(execute, "guest-get-fsinfo") == 0)
        return g_strdup("{\"return\": []}\n");
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
    FakeAgent *fake = fake_agent_start(qemu_ga_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    SpFreezeResult fr = {0};
    SpThawResult tr = {0};

    assert_non_null(agent);
    assert_false(sp_agent_is_stillpoint(agent));
    assert_true(sp_agent_freeze(agent, 10000, &fr, &error));
    assert_int_equal(fr.frozen, 2);
    assert_true(sp_agent_thaw(agent, &fr, &tr, &error));
    /* Still frozen right before the thaw: the freeze held. */
    assert_true(tr.consistent);
    assert_true(fake_agent_saw(fake, "guest-fsfreeze-freeze {}"));
    assert_true(fake_agent_saw(fake, "guest-fsfreeze-thaw {}"));
    /* The filesystems were listed before the freeze, for the verdict. */
    assert_true(fake_agent_saw(fake, "guest-get-fsinfo {}"));
    assert_non_null(fr.fsinfo);
    assert_null(fr.reply);
    sp_freeze_result_clear(&fr);
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static char *stillpoint_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0)
        return fake_agent_sync_reply(args);
    if (g_strcmp0(execute, "stillpoint-capabilities") == 0)
        return g_strdup("{\"return\": {\"version\": \"1\", \"freeze\": {\"backend\": "
                        "\"fifreeze\"}}}\n");
    if (g_strcmp0(execute, "guest-get-fsinfo") == 0)
        return g_strdup("{\"return\": [{\"mountpoint\": \"/\", \"disk\": []}]}\n");
    if (g_strcmp0(execute, "stillpoint-freeze") == 0)
        return g_strdup("{\"return\": {\"frozen\": [\"/\", \"/data\"], \"skipped\": [], "
                        "\"epoch\": 42}}\n");
    if (g_strcmp0(execute, "stillpoint-thaw") == 0)
        return g_strdup("{\"return\": {\"epoch\": 42, \"consistent\": false, \"held-ms\": 1234, "
                        "\"reason\": \"lease-expired\\u001b[2J\"}}\n");
    return NULL;
}

static void test_stillpoint_agent_gets_leased_freeze_and_epoch_thaw(void **state)
{
    FakeAgent *fake = fake_agent_start(stillpoint_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    SpFreezeResult fr = {0};
    SpThawResult tr = {0};

    assert_non_null(agent);
    assert_true(sp_agent_is_stillpoint(agent));
    assert_true(sp_agent_freeze(agent, 17000, &fr, &error));
    assert_int_equal(fr.epoch, 42);
    assert_int_equal(fr.frozen, 2);
    assert_true(fake_agent_saw(fake, "stillpoint-freeze {\"lease-ms\":17000}"));
    assert_true(sp_agent_thaw(agent, &fr, &tr, &error));
    assert_true(fake_agent_saw(fake, "stillpoint-thaw {\"epoch\":42}"));
    /* The agent's verdict is reported as is: the lease ran out, not consistent. */
    assert_false(tr.consistent);
    assert_int_equal(tr.held_ms, 1234);
    assert_int_equal(tr.epoch, 42);
    assert_string_equal(tr.reason, "lease-expired\\x1b[2J"); /* the guest's text, escaped */
    /* What froze and the fsinfo before it are kept for the verdict; the backend is known. */
    assert_int_equal(sp_json_array_len(sp_json_object_get(fr.reply, "frozen")), 2);
    assert_int_equal(sp_json_array_len(fr.fsinfo), 1);
    assert_string_equal(sp_agent_backend(agent), "fifreeze");
    sp_freeze_result_clear(&fr);
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

/* A thaw reason whose 47th and 48th bytes are one character. */
static char *long_reason_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "stillpoint-thaw") == 0)
        return g_strdup("{\"return\": {\"epoch\": 42, \"consistent\": false, \"reason\": "
                        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\u00e9tc\"}}\n");
    return stillpoint_handler(execute, args, delay_ms);
}

static void test_a_long_thaw_reason_is_cut_on_a_character(void **state)
{
    FakeAgent *fake = fake_agent_start(long_reason_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    SpFreezeResult fr = {0};
    SpThawResult tr = {0};

    assert_non_null(agent);
    assert_true(sp_agent_freeze(agent, 17000, &fr, &error));
    assert_true(sp_agent_thaw(agent, &fr, &tr, &error));
    /* Valid UTF-8 (it goes into D-Bus strings and the store): the half character is dropped. */
    assert_true(g_utf8_validate(tr.reason, -1, NULL));
    assert_int_equal(strlen(tr.reason), 46);
    sp_freeze_result_clear(&fr);
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static char *flushing_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "stillpoint-capabilities") == 0)
        return g_strdup("{\"return\": {\"version\": \"1\", \"commands\": [\"stillpoint-freeze\", "
                        "\"stillpoint-flush\", \"stillpoint-thaw\"]}}\n");
    if (g_strcmp0(execute, "stillpoint-flush") == 0)
        return g_strdup("{\"return\": {\"flushed\": 3, \"ms\": 12}}\n");
    return stillpoint_handler(execute, args, delay_ms);
}

static void test_flush_is_known_from_the_capabilities(void **state)
{
    FakeAgent *fake = fake_agent_start(flushing_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    guint flushed = 0;

    assert_non_null(agent);
    assert_true(sp_agent_has_command(agent, "stillpoint-flush"));
    assert_false(sp_agent_has_command(agent, "stillpoint-nothing"));
    assert_true(sp_agent_flush(agent, &flushed, &error));
    assert_int_equal(flushed, 3);
    assert_true(fake_agent_saw(fake, "stillpoint-flush {}"));
    sp_agent_free(agent);
    fake_agent_stop(fake);

    /* An agent whose capabilities name no commands (older), and qemu-ga: no flush. */
    fake = fake_agent_start(stillpoint_handler);
    agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    assert_non_null(agent);
    assert_false(sp_agent_has_command(agent, "stillpoint-flush"));
    sp_agent_free(agent);
    fake_agent_stop(fake);
    fake = fake_agent_start(qemu_ga_handler);
    agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    assert_non_null(agent);
    assert_false(sp_agent_has_command(agent, "stillpoint-flush"));
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static char *no_epoch_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "stillpoint-freeze") == 0)
        return g_strdup("{\"return\": {\"frozen\": [\"/\"], \"skipped\": []}}\n");
    return stillpoint_handler(execute, args, delay_ms);
}

static void test_freeze_without_epoch_is_refused(void **state)
{
    FakeAgent *fake = fake_agent_start(no_epoch_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    SpFreezeResult fr = {0};

    assert_non_null(agent);
    /* It could not be thawed by epoch: the caller must take the failed-freeze path. */
    assert_false(sp_agent_freeze(agent, 10000, &fr, &error));
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL));
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static char *slow_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    if (g_strcmp0(execute, "guest-sync-delimited") == 0)
        return fake_agent_sync_reply(args);
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
    FakeAgent *fake = fake_agent_start(slow_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
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
    fake_agent_stop(fake);
}

static char *stuck_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    char *reply = slow_handler(execute, args, delay_ms);
    if (g_strcmp0(execute, "guest-info") == 0)
        *delay_ms = 8000; /* stopped for 8 s: what is sent meanwhile waits behind it */
    return reply;
}

static void test_after_a_timeout_the_next_commands_wait_briefly_until_the_agent_answers(
    void **state)
{
    FakeAgent *fake = fake_agent_start(stuck_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 2000, &error);
    g_autoptr(SpJson) pong = NULL;
    gint64 start;

    assert_non_null(agent);
    start = g_get_monotonic_time();
    assert_null(sp_agent_execute(agent, "guest-info", NULL, 200, &error));
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_TIMEOUT));
    g_clear_error(&error);
    /* Still stopped: the resync inside the failed call, this status query (asking for 10 s) and
     * its resync each give up after the stalled cap (3 x 2 s), before the agent wakes. */
    assert_null(sp_agent_execute(agent, "guest-fsfreeze-status", NULL, 10000, &error));
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_TIMEOUT));
    assert_true(g_get_monotonic_time() - start < 7500 * 1000);
    g_clear_error(&error);
    /* Awake again: a resync gets through, and the next command its full deadline. */
    assert_true(sp_agent_sync(agent, 5000, &error) || sp_agent_sync(agent, 5000, &error));
    pong = sp_agent_execute(agent, "guest-ping", NULL, 2000, &error);
    assert_non_null(pong);
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static int syncs_seen;

static char *deaf_once_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    /* The first sync is lost (an agent reattaching to its port as the host connects). */
    if (g_strcmp0(execute, "guest-sync-delimited") == 0 && syncs_seen++ == 0)
        return NULL;
    return slow_handler(execute, args, delay_ms);
}

static void test_a_lost_sync_is_sent_again(void **state)
{
    FakeAgent *fake = NULL;
    g_autoptr(GError) error = NULL;
    SpAgent *agent;

    syncs_seen = 0;
    fake = fake_agent_start(deaf_once_handler);
    agent = sp_agent_connect(fake_agent_path(fake), SP_AGENT_SYNC_TIMEOUT_MS, &error);
    assert_non_null(agent);
    assert_int_equal(syncs_seen, 2);
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static char *slow_once_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    /* The first sync is answered, but late: after the client has sent another. */
    if (g_strcmp0(execute, "guest-sync-delimited") == 0 && syncs_seen++ == 0)
        *delay_ms = SP_AGENT_SYNC_RETRY_MS + 400;
    return slow_handler(execute, args, delay_ms);
}

static void test_a_late_sync_answer_is_not_taken_for_the_next_reply(void **state)
{
    FakeAgent *fake = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpJson) pong = NULL;
    SpAgent *agent;

    syncs_seen = 0;
    fake = fake_agent_start(slow_once_handler);
    agent = sp_agent_connect(fake_agent_path(fake), SP_AGENT_SYNC_TIMEOUT_MS, &error);
    assert_non_null(agent);
    assert_int_equal(syncs_seen, 2);
    /* Both syncs were answered; the next reply must be the ping's, not the second sync's. */
    pong = sp_agent_execute(agent, "guest-ping", NULL, 2000, &error);
    assert_non_null(pong);
    assert_string_equal(sp_json_get_string(pong), "pong");
    sp_agent_free(agent);
    fake_agent_stop(fake);
}

static char *mute_handler(const char *execute, const SpJson *args, guint *delay_ms)
{
    return NULL; /* the channel is open but nothing runs in the guest */
}

static void test_silent_agent_is_unreachable(void **state)
{
    FakeAgent *fake = fake_agent_start(mute_handler);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(fake_agent_path(fake), 200, &error);
    assert_null(agent);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    assert_non_null(strstr(error->message, "guest-sync-delimited"));
    fake_agent_stop(fake);
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
        cmocka_unit_test(test_a_lost_sync_is_sent_again),
        cmocka_unit_test(test_a_late_sync_answer_is_not_taken_for_the_next_reply),
        cmocka_unit_test(test_after_a_timeout_the_next_commands_wait_briefly_until_the_agent_answers),
        cmocka_unit_test(test_stillpoint_agent_gets_leased_freeze_and_epoch_thaw),
        cmocka_unit_test(test_a_long_thaw_reason_is_cut_on_a_character),
        cmocka_unit_test(test_flush_is_known_from_the_capabilities),
        cmocka_unit_test(test_freeze_without_epoch_is_refused),
        cmocka_unit_test(test_timeout_resyncs_so_late_reply_is_not_taken_for_the_next),
        cmocka_unit_test(test_silent_agent_is_unreachable),
        cmocka_unit_test(test_missing_socket_is_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
