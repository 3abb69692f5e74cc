/* The host's QMP and guest agent clients against hostile peers: slow-loris replies, endless
 * lines, floods, invalid UTF-8, replies to the wrong id, a greeting that never comes, a hang-up
 * mid-reply. Whatever the peer does, the client returns by its deadline (plus slack for a loaded
 * machine), with a clear error, in bounded memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <string.h>

#include "hostile-peer.h"
#include "stillpoint/agent.h"
#include "stillpoint/qmp.h"

#define TIMEOUT_MS 800
#define SLACK_MS 1500 /* a loaded machine under ASan */

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
    "\"capabilities\": []}}\r\n";

static gint64 now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

#define assert_within(start, ms) assert_in_range(now_ms() - (start), 0, (ms) + SLACK_MS)
#define HOSTILE_VERBOSE (g_getenv("SP_HOSTILE_VERBOSE") != NULL)

/* ---- QMP scripts ---- */

static gint64 request_id(const SpJson *req)
{
    return sp_json_object_get_int(req, "id", -1);
}

/* Greeting and capabilities as QEMU gives them; returns the next request (owned), or NULL. */
static SpJson *qmp_negotiate(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) caps = NULL;
    g_autofree char *reply = NULL;

    if (!hostile_peer_send(fd, greeting, strlen(greeting)))
        return NULL;
    caps = hostile_peer_read(peer, fd);
    if (caps == NULL)
        return NULL;
    reply = g_strdup_printf("{\"return\": {}, \"id\": %" G_GINT64_FORMAT "}\r\n", request_id(caps));
    if (!hostile_peer_send(fd, reply, strlen(reply)))
        return NULL;
    return hostile_peer_read(peer, fd);
}

static void qmp_silent(HostilePeer *peer, int fd)
{
    hostile_peer_drain(peer, fd);
}

static void qmp_slow_greeting(HostilePeer *peer, int fd)
{
    hostile_peer_trickle(peer, fd, greeting, 100);
}

/* The greeting just before the deadline, then silence. */
static void qmp_late_greeting(HostilePeer *peer, int fd)
{
    g_usleep((TIMEOUT_MS - 200) * 1000);
    if (hostile_peer_send(fd, greeting, strlen(greeting)))
        hostile_peer_drain(peer, fd);
}

static void qmp_slow_reply(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);
    g_autofree char *reply = NULL;

    if (req == NULL)
        return;
    reply = g_strdup_printf("{\"return\": {\"status\": \"running\"}, \"id\": %" G_GINT64_FORMAT
                            "}\r\n", request_id(req));
    hostile_peer_trickle(peer, fd, reply, 100);
}

static void qmp_endless_line(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);
    static const char start[] = "{\"return\": \"";
    char chunk[65536];

    if (req == NULL || !hostile_peer_send(fd, start, strlen(start)))
        return;
    memset(chunk, 'a', sizeof(chunk));
    hostile_peer_flood(peer, fd, chunk, sizeof(chunk));
}

static void qmp_invalid_utf8_then_valid(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);
    g_autofree char *bad = NULL;
    g_autofree char *good = NULL;

    if (req == NULL)
        return;
    bad = g_strdup_printf("{\"return\": \"\xc3\x28\xff\xfe\", \"id\": %" G_GINT64_FORMAT "}\n"
                          "\xc0\xaf\xed\xa0\x80{\"return\": \"\xed\xa0\x80\", \"id\": %" G_GINT64_FORMAT
                          "}\n",
                          request_id(req), request_id(req));
    good = g_strdup_printf("{\"return\": \"ok\", \"id\": %" G_GINT64_FORMAT "}\n", request_id(req));
    if (hostile_peer_send(fd, bad, strlen(bad)) && hostile_peer_send(fd, good, strlen(good)))
        hostile_peer_drain(peer, fd);
}

static void qmp_invalid_utf8_only(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);
    g_autofree char *bad = NULL;

    if (req == NULL)
        return;
    bad = g_strdup_printf("{\"return\": \"\xc3\x28\", \"id\": %" G_GINT64_FORMAT "}\n",
                          request_id(req));
    if (hostile_peer_send(fd, bad, strlen(bad)))
        hostile_peer_drain(peer, fd);
}

static void qmp_wrong_id_trickle(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);

    for (gint64 i = 1; req != NULL && !hostile_peer_stopping(peer); i++) {
        g_autofree char *reply = g_strdup_printf("{\"return\": {}, \"id\": %" G_GINT64_FORMAT "}\n",
                                                 request_id(req) + i);
        if (!hostile_peer_send(fd, reply, strlen(reply)))
            return;
        g_usleep(20 * 1000);
    }
}

static void qmp_wrong_id_flood(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);
    g_autoptr(GString) chunk = g_string_new(NULL);

    if (req == NULL)
        return;
    while (chunk->len < 60000)
        g_string_append_printf(chunk, "{\"return\": {}, \"id\": %" G_GINT64_FORMAT "}\n"
                               "{\"event\": \"RESUME\"}\n", request_id(req) + 1);
    hostile_peer_flood(peer, fd, chunk->str, chunk->len);
}

static void qmp_close_mid_reply(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = qmp_negotiate(peer, fd);
    static const char half[] = "{\"return\": {\"status\": \"runn";

    if (req != NULL)
        hostile_peer_send(fd, half, strlen(half));
}

/* ---- QMP tests ---- */

static void test_qmp_greeting_that_never_comes_times_out(void **state)
{
    HostilePeer *peer = hostile_peer_start(qmp_silent);
    g_autoptr(GError) error = NULL;
    gint64 start = now_ms();
    SpQmp *qmp = sp_qmp_connect(hostile_peer_path(peer), TIMEOUT_MS, &error);

    assert_null(qmp);
    assert_within(start, TIMEOUT_MS);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_non_null(strstr(error->message, "no QMP greeting"));
    hostile_peer_stop(peer);
}

static void test_qmp_slow_loris_greeting_times_out(void **state)
{
    HostilePeer *peer = hostile_peer_start(qmp_slow_greeting);
    g_autoptr(GError) error = NULL;
    gint64 start = now_ms();
    SpQmp *qmp = sp_qmp_connect(hostile_peer_path(peer), TIMEOUT_MS, &error);

    assert_null(qmp);
    assert_within(start, TIMEOUT_MS);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    hostile_peer_stop(peer);
}

static void test_qmp_connect_is_bounded_by_its_one_timeout(void **state)
{
    HostilePeer *peer = hostile_peer_start(qmp_late_greeting);
    g_autoptr(GError) error = NULL;
    gint64 start = now_ms();
    SpQmp *qmp = sp_qmp_connect(hostile_peer_path(peer), TIMEOUT_MS, &error);

    /* "Connects, reads the greeting and negotiates capabilities, all within timeout_ms." */
    assert_null(qmp);
    assert_in_range(now_ms() - start, TIMEOUT_MS - 50, TIMEOUT_MS + 400);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_non_null(strstr(error->message, "qmp_capabilities"));
    hostile_peer_stop(peer);
}

/* Runs one command against a peer script; returns its result, the error and how long it took. */
static SpJson *qmp_run(HostileScript script, guint timeout_ms, GError **error, gint64 *ret_ms)
{
    HostilePeer *peer = hostile_peer_start(script);
    SpQmp *qmp = sp_qmp_connect(hostile_peer_path(peer), 5000, error);
    SpJson *ret = NULL;
    gint64 start = now_ms();

    assert_non_null(qmp);
    ret = sp_qmp_execute(qmp, "query-status", NULL, timeout_ms, error);
    *ret_ms = now_ms() - start;
    if (HOSTILE_VERBOSE)
        g_printerr("took %" G_GINT64_FORMAT " ms: %s\n", *ret_ms, *error ? (*error)->message : "ok");
    sp_qmp_free(qmp);
    hostile_peer_stop(peer);
    return ret;
}

static void test_qmp_slow_loris_reply_times_out(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    g_autoptr(SpJson) ret = qmp_run(qmp_slow_reply, TIMEOUT_MS, &error, &ms);

    assert_null(ret);
    assert_in_range(ms, TIMEOUT_MS - 50, TIMEOUT_MS + SLACK_MS);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_non_null(strstr(error->message, "QMP command query-status"));
}

static void test_qmp_endless_line_is_bounded_in_time_and_memory(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    long rss_before = hostile_rss_kib();
    g_autoptr(SpJson) ret = qmp_run(qmp_endless_line, TIMEOUT_MS, &error, &ms);
    long grown_kib = hostile_rss_kib() - rss_before;

    assert_null(ret);
    assert_in_range(ms, 0, TIMEOUT_MS + SLACK_MS);
    /* The client fails at the limit, not at the deadline. */
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE));
    assert_non_null(strstr(error->message, "over the 4 MiB limit"));
    /* One frame of at most SP_CHANNEL_MAX_FRAME is ever held (hostile.cmake keeps ASan's quarantine small). */
    assert_true(grown_kib < 64 * 1024);
}

static void test_qmp_invalid_utf8_reply_is_dropped_and_the_next_one_taken(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    g_autoptr(SpJson) ret = qmp_run(qmp_invalid_utf8_then_valid, TIMEOUT_MS, &error, &ms);

    assert_non_null(ret);
    assert_string_equal(sp_json_get_string(ret), "ok");
}

static void test_qmp_invalid_utf8_reply_only_times_out(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    g_autoptr(SpJson) ret = qmp_run(qmp_invalid_utf8_only, TIMEOUT_MS, &error, &ms);

    assert_null(ret);
    assert_in_range(ms, 0, TIMEOUT_MS + SLACK_MS);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_non_null(strstr(error->message, "not valid JSON")); /* says why there was no reply */
}

static void test_qmp_replies_to_the_wrong_id_time_out(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    g_autoptr(SpJson) ret = qmp_run(qmp_wrong_id_trickle, TIMEOUT_MS, &error, &ms);

    assert_null(ret);
    assert_in_range(ms, TIMEOUT_MS - 50, TIMEOUT_MS + SLACK_MS);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
}

static void test_qmp_flood_of_wrong_ids_still_times_out(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    g_autoptr(SpJson) ret = qmp_run(qmp_wrong_id_flood, TIMEOUT_MS, &error, &ms);

    /* The peer never lets recv() wait, so only a deadline check between reads stops this (it
     * once took 2-4 times the deadline here, and without bound on a slower client). */
    assert_null(ret);
    assert_in_range(ms, 0, TIMEOUT_MS + 700);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
}

static void test_qmp_hang_up_mid_reply_is_a_closed_connection(void **state)
{
    g_autoptr(GError) error = NULL;
    gint64 ms = 0;
    g_autoptr(SpJson) ret = qmp_run(qmp_close_mid_reply, 5000, &error, &ms);

    assert_null(ret);
    assert_in_range(ms, 0, SLACK_MS); /* at once, not at the deadline */
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED));
    assert_non_null(strstr(error->message, "closed the connection"));
}

/* ---- guest agent scripts ---- */

/* Answers guest-sync-delimited as qemu-ga does; false once the client is gone. */
static bool agent_sync(HostilePeer *peer, int fd, guint interval_ms)
{
    g_autoptr(SpJson) req = hostile_peer_read(peer, fd);
    g_autofree char *reply = NULL;

    if (req == NULL)
        return false;
    reply = g_strdup_printf("\xff{\"return\": %" G_GINT64_FORMAT "}\n",
                            sp_json_object_get_int(sp_json_object_get(req, "arguments"), "id", 0));
    if (interval_ms > 0)
        return hostile_peer_trickle(peer, fd, reply, interval_ms);
    return hostile_peer_send(fd, reply, strlen(reply));
}

static void agent_silent(HostilePeer *peer, int fd)
{
    hostile_peer_drain(peer, fd);
}

static void agent_slow_sync(HostilePeer *peer, int fd)
{
    agent_sync(peer, fd, 100);
}

/* Synced, a stock qemu-ga (no stillpoint-capabilities); returns the next request. */
static SpJson *agent_negotiate(HostilePeer *peer, int fd)
{
    static const char not_found[] =
        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"not found\"}}\n";
    g_autoptr(SpJson) caps = NULL;

    if (!agent_sync(peer, fd, 0) || (caps = hostile_peer_read(peer, fd)) == NULL ||
        !hostile_peer_send(fd, not_found, strlen(not_found)))
        return NULL;
    return hostile_peer_read(peer, fd);
}

static void agent_endless_line(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = agent_negotiate(peer, fd);
    char chunk[65536];

    if (req == NULL || !hostile_peer_send(fd, "{\"return\": \"", 12))
        return;
    memset(chunk, 'a', sizeof(chunk));
    hostile_peer_flood(peer, fd, chunk, sizeof(chunk));
}

static void agent_sync_flood(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = hostile_peer_read(peer, fd);
    static const char chunk[] = "\xff{\"return\": 1}\n\xff\xff\xff{\"return\": \"\xc3\x28\"}\n";

    if (req != NULL)
        hostile_peer_flood(peer, fd, chunk, strlen(chunk));
}

static void agent_close_mid_reply(HostilePeer *peer, int fd)
{
    g_autoptr(SpJson) req = agent_negotiate(peer, fd);

    if (req != NULL)
        hostile_peer_send(fd, "{\"return\": \"fro", 15);
}

/* ---- guest agent tests ---- */

static void test_agent_that_never_answers_is_unreachable_by_the_deadline(void **state)
{
    HostilePeer *peer = hostile_peer_start(agent_silent);
    g_autoptr(GError) error = NULL;
    gint64 start = now_ms();
    SpAgent *agent = sp_agent_connect(hostile_peer_path(peer), TIMEOUT_MS, &error);

    assert_null(agent);
    assert_within(start, TIMEOUT_MS);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    assert_non_null(strstr(error->message, "does not answer guest-sync-delimited"));
    hostile_peer_stop(peer);
}

static void test_agent_slow_loris_sync_is_unreachable_by_the_deadline(void **state)
{
    HostilePeer *peer = hostile_peer_start(agent_slow_sync);
    g_autoptr(GError) error = NULL;
    gint64 start = now_ms();
    SpAgent *agent = sp_agent_connect(hostile_peer_path(peer), TIMEOUT_MS, &error);

    assert_null(agent);
    assert_within(start, TIMEOUT_MS);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    hostile_peer_stop(peer);
}

static void test_agent_flood_of_wrong_sync_replies_is_unreachable_by_the_deadline(void **state)
{
    HostilePeer *peer = hostile_peer_start(agent_sync_flood);
    g_autoptr(GError) error = NULL;
    gint64 start = now_ms();
    SpAgent *agent = sp_agent_connect(hostile_peer_path(peer), TIMEOUT_MS, &error);

    assert_null(agent);
    assert_within(start, TIMEOUT_MS);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    hostile_peer_stop(peer);
}

static void test_agent_endless_line_is_bounded_in_time_and_memory(void **state)
{
    HostilePeer *peer = hostile_peer_start(agent_endless_line);
    g_autoptr(GError) error = NULL;
    long rss_before = hostile_rss_kib();
    SpAgent *agent = sp_agent_connect(hostile_peer_path(peer), 5000, &error);
    g_autofree char *status = NULL;
    gint64 start;

    assert_non_null(agent);
    start = now_ms();
    status = sp_agent_fsfreeze_status(agent, &error);
    assert_null(status);
    /* A timed-out command resyncs (SP_AGENT_SYNC_TIMEOUT_MS) before it reports. */
    assert_within(start, SP_AGENT_SYNC_TIMEOUT_MS + SP_AGENT_SYNC_TIMEOUT_MS);
    assert_non_null(error);
    assert_true(error->domain == SP_AGENT_ERROR);
    assert_non_null(strstr(error->message, "limit"));
    assert_true(hostile_rss_kib() - rss_before < 64 * 1024);
    sp_agent_free(agent);
    hostile_peer_stop(peer);
}

static void test_agent_hang_up_mid_reply_is_unreachable_at_once(void **state)
{
    HostilePeer *peer = hostile_peer_start(agent_close_mid_reply);
    g_autoptr(GError) error = NULL;
    SpAgent *agent = sp_agent_connect(hostile_peer_path(peer), 5000, &error);
    g_autofree char *status = NULL;
    gint64 start;

    assert_non_null(agent);
    start = now_ms();
    status = sp_agent_fsfreeze_status(agent, &error);
    assert_null(status);
    assert_within(start, 0);
    assert_true(g_error_matches(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE));
    assert_non_null(strstr(error->message, "closed the connection"));
    sp_agent_free(agent);
    hostile_peer_stop(peer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qmp_greeting_that_never_comes_times_out),
        cmocka_unit_test(test_qmp_slow_loris_greeting_times_out),
        cmocka_unit_test(test_qmp_connect_is_bounded_by_its_one_timeout),
        cmocka_unit_test(test_qmp_slow_loris_reply_times_out),
        cmocka_unit_test(test_qmp_endless_line_is_bounded_in_time_and_memory),
        cmocka_unit_test(test_qmp_invalid_utf8_reply_is_dropped_and_the_next_one_taken),
        cmocka_unit_test(test_qmp_invalid_utf8_reply_only_times_out),
        cmocka_unit_test(test_qmp_replies_to_the_wrong_id_time_out),
        cmocka_unit_test(test_qmp_flood_of_wrong_ids_still_times_out),
        cmocka_unit_test(test_qmp_hang_up_mid_reply_is_a_closed_connection),
        cmocka_unit_test(test_agent_that_never_answers_is_unreachable_by_the_deadline),
        cmocka_unit_test(test_agent_slow_loris_sync_is_unreachable_by_the_deadline),
        cmocka_unit_test(test_agent_flood_of_wrong_sync_replies_is_unreachable_by_the_deadline),
        cmocka_unit_test(test_agent_endless_line_is_bounded_in_time_and_memory),
        cmocka_unit_test(test_agent_hang_up_mid_reply_is_unreachable_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
