/* Tests of the virtio-serial transport's overlapped I/O against a named pipe standing in for
 * the port (runs under wine): reads, writes, a stop that interrupts a pending read, and the
 * other end going away (a hang-up, after which the transport reopens the port). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include "transport.h"

static int failures;
static const char *current;
static wchar_t pipe_path[64];

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,     \
                    current, #cond);                                                   \
            failures++;                                                                \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

/* The host's end: a pipe server instance the transport connects to. */
static HANDLE make_server(void)
{
    return CreateNamedPipeW(pipe_path, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_WAIT, 4, 4096,
                            4096, 0, NULL);
}

static bool server_write(HANDLE server, const char *s)
{
    DWORD n = 0;
    return WriteFile(server, s, (DWORD)strlen(s), &n, NULL) && n == strlen(s);
}

typedef struct {
    SpPeerTransport *t;
    HANDLE stop;
    char buf[64];
    int n;
} ReadJob;

static DWORD WINAPI read_cb(void *userdata)
{
    ReadJob *job = userdata;
    job->n = job->t->ops->read(job->t, job->buf, sizeof(job->buf), job->stop);
    return 0;
}

static void test_reads_and_writes_through_the_port(void)
{
    HANDLE stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE server = make_server();
    SpPeerTransport *t = sp_transport_serial_new(pipe_path);
    char buf[64];
    DWORD n = 0;
    CHECK(server != INVALID_HANDLE_VALUE && t);
    CHECK(t->ops->wait_peer(t, stop) == 0);
    CHECK(server_write(server, "{\"execute\":\"guest-ping\"}"));
    int got = t->ops->read(t, buf, sizeof(buf), stop);
    CHECK(got == 24 && memcmp(buf, "{\"execute\":\"guest-ping\"}", 24) == 0);
    CHECK(t->ops->write(t, "{\"return\":{}}\n", 14) == 0);
    CHECK(ReadFile(server, buf, sizeof(buf), &n, NULL) && n == 14);
    CHECK(memcmp(buf, "{\"return\":{}}\n", 14) == 0);
done:
    if (t)
        t->ops->free(t);
    if (server != INVALID_HANDLE_VALUE)
        CloseHandle(server);
    CloseHandle(stop);
}

static void test_stop_interrupts_a_pending_read(void)
{
    HANDLE stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE server = make_server();
    ReadJob job = { .t = sp_transport_serial_new(pipe_path), .stop = stop };
    HANDLE thread = NULL;
    CHECK(server != INVALID_HANDLE_VALUE && job.t);
    CHECK(job.t->ops->wait_peer(job.t, stop) == 0);
    thread = CreateThread(NULL, 0, read_cb, &job, 0, NULL);
    CHECK(thread);
    CHECK(WaitForSingleObject(thread, 200) == WAIT_TIMEOUT); /* blocked: nothing to read */
    SetEvent(stop);
    CHECK(WaitForSingleObject(thread, 5000) == WAIT_OBJECT_0);
    CHECK(job.n == -1);
done:
    if (thread)
        CloseHandle(thread);
    if (job.t)
        job.t->ops->free(job.t);
    if (server != INVALID_HANDLE_VALUE)
        CloseHandle(server);
    CloseHandle(stop);
}

static void test_other_end_gone_is_a_hangup_and_the_port_reopens(void)
{
    HANDLE stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE server = make_server(), server2 = INVALID_HANDLE_VALUE;
    SpPeerTransport *t = sp_transport_serial_new(pipe_path);
    char buf[64];
    CHECK(server != INVALID_HANDLE_VALUE && t);
    CHECK(t->ops->wait_peer(t, stop) == 0);
    CloseHandle(server);
    server = INVALID_HANDLE_VALUE;
    CHECK(t->ops->read(t, buf, sizeof(buf), stop) == 0);
    t->ops->hangup(t);
    server2 = make_server();
    CHECK(server2 != INVALID_HANDLE_VALUE);
    CHECK(t->ops->wait_peer(t, stop) == 0);
    CHECK(server_write(server2, "{}"));
    CHECK(t->ops->read(t, buf, sizeof(buf), stop) == 2);
done:
    if (t)
        t->ops->free(t);
    if (server != INVALID_HANDLE_VALUE)
        CloseHandle(server);
    if (server2 != INVALID_HANDLE_VALUE)
        CloseHandle(server2);
    CloseHandle(stop);
}

int main(void)
{
    swprintf(pipe_path, sizeof(pipe_path) / sizeof(pipe_path[0]),
             L"\\\\.\\pipe\\stillpoint-test-serial-%lu", GetCurrentProcessId());
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "reads_and_writes_through_the_port", test_reads_and_writes_through_the_port },
        { "stop_interrupts_a_pending_read", test_stop_interrupts_a_pending_read },
        { "other_end_gone_is_a_hangup_and_the_port_reopens",
          test_other_end_gone_is_a_hangup_and_the_port_reopens },
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    printf("virtio-serial transport tests, a named pipe standing in for the port (%zu)\n", n);
    for (size_t i = 0; i < n; i++) {
        int before = failures;
        current = tests[i].name;
        tests[i].fn();
        printf("%s %zu - %s\n", failures == before ? "ok" : "not ok", i + 1, current);
        fflush(stdout);
    }
    printf("%s: %d of %zu tests failed\n", failures ? "FAIL" : "PASS", failures, n);
    return failures ? 1 : 0;
}
