/* The Linux agent's transport against hostile clients on its unix socket: an endless line, invalid
 * UTF-8, 0xFF storms, a client that sends but never reads, more clients than allowed. Meanwhile a
 * well-behaved client must keep getting its answers promptly, and memory stays bounded. The real
 * command table runs behind it, over a fake backend that is never frozen. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "stillpoint/agent-commands.h"
#include "hostile-peer.h"
#include "transport.h"

#define REPLY_MS 1500 /* a well-behaved client's answer, on a loaded machine under ASan */

/* ---- a backend that refuses to freeze ---- */

static int fake_freeze(void *self, const SpFreezeRequest *req, SpBackendFreezeResult *ret,
                       SpBackendError *err)
{
    err->code = SP_CODE_FREEZE_FAILED;
    snprintf(err->desc, sizeof(err->desc), "not in this test");
    return -1;
}

static int fake_thaw(void *self, int64_t epoch, bool standard, SpBackendThawResult *ret,
                     SpBackendError *err)
{
    memset(ret, 0, sizeof(*ret));
    return 0;
}

static void fake_status(void *self, SpBackendStatus *ret)
{
    memset(ret, 0, sizeof(*ret));
}

static SpJson *fake_fsinfo(void *self, SpBackendError *err)
{
    return sp_json_new_array();
}

/* Not random: the tests read the token back. */
static int fake_random(void *self, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(0xa0 + i);
    return 0;
}

static const SpFreezeBackendOps fake_ops = {fake_freeze, fake_thaw, fake_status, fake_fsinfo,
                                            NULL /* no flush */, fake_random};

/* ---- the agent: transport + commands on a main loop thread ---- */

typedef struct {
    char *dir;
    char *path;
    SpAgentCommands *commands;
    SpTransport *transport;
    GMainLoop *loop;
    GThread *thread;
    gint hangups;
} Agent;

static SpJson *request_cb(unsigned channel, guint64 request, const SpJson *message,
                          unsigned *ret_flags, void *userdata)
{
    Agent *a = userdata;
    return sp_agent_commands_dispatch(a->commands, channel, message, ret_flags);
}

static void hangup_cb(unsigned channel, void *userdata)
{
    Agent *a = userdata;
    g_atomic_int_inc(&a->hangups);
}

static gpointer loop_thread(gpointer data)
{
    Agent *a = data;
    g_main_loop_run(a->loop);
    return NULL;
}

static int agent_setup(void **state)
{
    Agent *a = g_new0(Agent, 1);
    g_autoptr(GError) error = NULL;

    a->dir = g_dir_make_tmp("sp-hostile-agent-XXXXXX", NULL);
    a->path = g_build_filename(a->dir, "agent.sock", NULL);
    a->commands = sp_agent_commands_new(&(SpAgentCommandsConfig){
        .backend = {&fake_ops, NULL}, .platform = "linux", .backend_name = "fake",
        .version = "test", .default_lease_ms = 60000, .min_lease_ms = 100,
        .max_lease_ms = 3600000});
    assert_non_null(a->commands);
    a->transport = sp_transport_new(request_cb, hangup_cb, a);
    assert_true(sp_transport_add_unix(a->transport, a->path, &error));
    a->loop = g_main_loop_new(NULL, FALSE);
    a->thread = g_thread_new("agent-loop", loop_thread, a);
    *state = a;
    return 0;
}

static gboolean quit_cb(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

static int agent_teardown(void **state)
{
    Agent *a = *state;

    g_idle_add(quit_cb, a->loop);
    g_thread_join(a->thread);
    sp_transport_free(a->transport);
    sp_agent_commands_free(a->commands);
    g_main_loop_unref(a->loop);
    g_rmdir(a->dir);
    g_free(a->path);
    g_free(a->dir);
    g_free(a);
    return 0;
}

/* ---- vsock: the host only ---- */

/* #15 item 7: with vsock_loopback a guest process connects from CID 1 (a nested VM from its
 * own); only the host's CID may talk to the agent. guest/stillpoint/vsock-loopback-is-refused
 * shows it over a real vsock loopback in the test guest. */
static void test_vsock_accepts_only_the_host(void **state)
{
    assert_true(sp_transport_vsock_peer_allowed(2));
    assert_false(sp_transport_vsock_peer_allowed(1));   /* VMADDR_CID_LOCAL: the guest itself */
    assert_false(sp_transport_vsock_peer_allowed(0));   /* the hypervisor */
    assert_false(sp_transport_vsock_peer_allowed(3));   /* another guest */
    assert_false(sp_transport_vsock_peer_allowed(0xFFFFFFFFu)); /* VMADDR_CID_ANY */
}

/* ---- clients ---- */

static int client_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

/* Reads one line (the reply) within ms; NULL if none came. */
static char *client_read_line(int fd, int ms)
{
    GString *line = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;
    char c;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)MAX((deadline - g_get_monotonic_time()) / 1000, 0);
        if (poll(&pfd, 1, left) <= 0 || recv(fd, &c, 1, 0) != 1) {
            g_string_free(line, TRUE);
            return NULL;
        }
        if (c == '\n')
            return g_string_free(line, FALSE);
        g_string_append_c(line, c);
    }
}

/* A well-behaved client's round trip: guest-ping must be answered within REPLY_MS. */
static void assert_ping_answered(int fd)
{
    static const char ping[] = "{\"execute\": \"guest-ping\"}\n";
    g_autofree char *reply = NULL;

    assert_int_equal(send(fd, ping, strlen(ping), MSG_NOSIGNAL), (ssize_t)strlen(ping));
    reply = client_read_line(fd, REPLY_MS);
    assert_non_null(reply);
    assert_string_equal(reply, "{\"return\":{}}");
}

/* A hostile client: sends chunk again and again (never reading) until stopped. */
typedef struct {
    int fd;
    const char *chunk;
    size_t len;
    gint stop;
    gint sent;   /* bytes; read by the test thread while the flood runs */
} Flood;

static gpointer flood_thread(gpointer data)
{
    Flood *f = data;
    size_t off = 0;

    while (!g_atomic_int_get(&f->stop)) {
        struct pollfd pfd = {.fd = f->fd, .events = POLLOUT};
        ssize_t n;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        n = send(f->fd, f->chunk + off, f->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            break;
        off = (off + (size_t)n) % f->len;
        g_atomic_int_add(&f->sent, (gint)n);
    }
    return NULL;
}

/* A flood must outgrow every buffer before the agent's memory is judged. */
#define FLOOD_MIN_BYTES (256 * 1024)
/* How long a flood may take to get there on a loaded machine (it is usually a fraction of ms). */
#define FLOOD_MAX_MS 60000

/* Floods from a new client for at least ms, and until it sent FLOOD_MIN_BYTES, while a good
 * client pings every 50 ms; returns the hostile client's fd (still open) and checks the agent's
 * memory stayed bounded. */
static int flood_while_pinging(Agent *a, const char *prefix, const char *chunk, size_t len,
                               guint ms)
{
    int good = client_connect(a->path);
    int bad = client_connect(a->path);
    Flood f = {.fd = bad, .chunk = chunk, .len = len};
    GThread *t;
    long rss_before = hostile_rss_kib();
    gint64 start = g_get_monotonic_time(), end = start + (gint64)ms * 1000;

    assert_ping_answered(good);
    if (prefix != NULL)
        assert_int_equal(send(bad, prefix, strlen(prefix), MSG_NOSIGNAL), (ssize_t)strlen(prefix));
    t = g_thread_new("flood", flood_thread, &f);
    while (g_get_monotonic_time() < end ||
           (g_atomic_int_get(&f.sent) <= FLOOD_MIN_BYTES &&
            g_get_monotonic_time() < start + FLOOD_MAX_MS * 1000)) {
        assert_ping_answered(good);
        g_usleep(50 * 1000);
    }
    g_atomic_int_set(&f.stop, 1);
    g_thread_join(t);
    if (g_getenv("SP_HOSTILE_VERBOSE") != NULL)
        g_printerr("hostile client sent %d bytes, agent grew %ld KiB\n", f.sent,
                   hostile_rss_kib() - rss_before);
    assert_true(f.sent > FLOOD_MIN_BYTES); /* it did flood: more than any buffer holds */
    /* Frames are at most 64 KiB, output at most 1 MiB a client. Under ASan, hostile.cmake keeps
     * the quarantine of freed memory small, or it alone would grow by 256 MiB. */
    assert_true(hostile_rss_kib() - rss_before < 64 * 1024);
    assert_ping_answered(good);
    close(good);
    return bad;
}

static void test_endless_line_is_refused_and_others_are_served(void **state)
{
    Agent *a = *state;
    char chunk[65536];
    int bad;
    g_autofree char *reply = NULL;

    memset(chunk, 'a', sizeof(chunk));
    bad = flood_while_pinging(a, "{\"execute\": \"", chunk, sizeof(chunk), 1500);
    /* The oversized request got one error, and the client still gets answers after a 0xFF. */
    reply = client_read_line(bad, REPLY_MS);
    assert_non_null(reply);
    assert_non_null(strstr(reply, "\"error\""));
    assert_int_equal(send(bad, "\xff", 1, MSG_NOSIGNAL), 1);
    assert_ping_answered(bad);
    close(bad);
}

static void test_ff_storm_is_ignored_and_others_are_served(void **state)
{
    Agent *a = *state;
    char chunk[65536];
    int bad;

    memset(chunk, 0xff, sizeof(chunk));
    bad = flood_while_pinging(a, NULL, chunk, sizeof(chunk), 1500);
    /* Nothing to answer in a storm of resyncs: the next request is served as usual. */
    assert_ping_answered(bad);
    close(bad);
}

static void test_client_that_never_reads_cannot_grow_the_agent(void **state)
{
    Agent *a = *state;
    static const char pings[] = "{\"execute\": \"guest-info\"}\n{\"execute\": \"guest-ping\"}\n";
    g_autoptr(GString) chunk = g_string_new(NULL);
    int bad;

    while (chunk->len < 60000)
        g_string_append(chunk, pings);
    bad = flood_while_pinging(a, NULL, chunk->str, chunk->len, 1500);
    close(bad);
}

static void test_invalid_utf8_gets_an_error_and_the_stream_goes_on(void **state)
{
    Agent *a = *state;
    int fd = client_connect(a->path);
    static const char bad[] = "{\"execute\": \"guest-ping\xc3\x28\"}\n"
                              "{\"execute\": \"guest-ping\", \"arguments\": {\"\xed\xa0\x80\": 1}}\n";
    g_autofree char *r1 = NULL;
    g_autofree char *r2 = NULL;

    assert_int_equal(send(fd, bad, strlen(bad), MSG_NOSIGNAL), (ssize_t)strlen(bad));
    r1 = client_read_line(fd, REPLY_MS);
    r2 = client_read_line(fd, REPLY_MS);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_non_null(strstr(r1, "\"error\""));
    assert_non_null(strstr(r2, "\"error\""));
    /* Replies are valid UTF-8 whatever came in. */
    assert_true(g_utf8_validate(r1, -1, NULL) && g_utf8_validate(r2, -1, NULL));
    assert_ping_answered(fd);
    close(fd);
}

static void test_invalid_utf8_storm_is_answered_and_others_are_served(void **state)
{
    Agent *a = *state;
    static const char chunk[] = "\xc3\x28\xa0\xa1{\"\xf0\x28\x8c\x28\": \"\xc0\xaf\"}\xfe\xfe\n";
    int bad = flood_while_pinging(a, NULL, chunk, strlen(chunk), 1500);

    assert_int_equal(send(bad, "\xff", 1, MSG_NOSIGNAL), 1);
    close(bad);
}

static void test_more_clients_than_allowed_are_refused_not_queued(void **state)
{
    Agent *a = *state;
    int fds[SP_TRANSPORT_MAX_CLIENTS + 1];
    char c;
    struct pollfd pfd;

    for (int i = 0; i < SP_TRANSPORT_MAX_CLIENTS; i++) {
        fds[i] = client_connect(a->path);
        assert_ping_answered(fds[i]);
    }
    /* One too many: the agent closes it at once. */
    fds[SP_TRANSPORT_MAX_CLIENTS] = client_connect(a->path);
    pfd = (struct pollfd){.fd = fds[SP_TRANSPORT_MAX_CLIENTS], .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, REPLY_MS), 1);
    assert_int_equal(recv(fds[SP_TRANSPORT_MAX_CLIENTS], &c, 1, 0), 0);
    close(fds[SP_TRANSPORT_MAX_CLIENTS]);
    /* The ones connected are still served; once one leaves, a new one gets in. */
    assert_ping_answered(fds[0]);
    close(fds[1]);
    for (int i = 0; i < 100 && g_atomic_int_get(&a->hangups) == 0; i++)
        g_usleep(10 * 1000);
    fds[1] = client_connect(a->path);
    assert_ping_answered(fds[1]);
    for (int i = 0; i < SP_TRANSPORT_MAX_CLIENTS; i++)
        close(fds[i]);
}

static void quiet_log_cb(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer userdata)
{
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_endless_line_is_refused_and_others_are_served,
                                        agent_setup, agent_teardown),
        cmocka_unit_test(test_vsock_accepts_only_the_host),
        cmocka_unit_test_setup_teardown(test_ff_storm_is_ignored_and_others_are_served,
                                        agent_setup, agent_teardown),
        cmocka_unit_test_setup_teardown(test_client_that_never_reads_cannot_grow_the_agent,
                                        agent_setup, agent_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_gets_an_error_and_the_stream_goes_on,
                                        agent_setup, agent_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_storm_is_answered_and_others_are_served,
                                        agent_setup, agent_teardown),
        cmocka_unit_test_setup_teardown(test_more_clients_than_allowed_are_refused_not_queued,
                                        agent_setup, agent_teardown),
    };
    /* The agent's log lines (a warning per refused client or dropped reply) would drown the
     * test's output. */
    g_log_set_default_handler(quiet_log_cb, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
