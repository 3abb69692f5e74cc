/* The virtio-serial port of the virtio-win driver, with overlapped I/O so that a service stop
 * interrupts a pending read. The port has no hang-up signal on Windows: the lease thaws when
 * the host goes away mid-freeze. */
#include "transport.h"
#include "handles.h"
#include <stdbool.h>
#include <stdlib.h>
#include "log.h"

/* While the port is missing (driver not installed yet, port not attached), look again this often. */
#define SP_SERIAL_RETRY_MS 5000u
/* After a zero-byte read (host chardev closed) wait this long before reading again. */
#define SP_SERIAL_HANGUP_PAUSE_MS 200u

typedef struct {
    SpPeerTransport base;
    wchar_t *path;
    HANDLE port;
    bool broken; /* the other end is gone for good: reopen rather than read again */
    OVERLAPPED rd, wr;
} SerialTransport;

static SerialTransport *serial(SpPeerTransport *t) { return (SerialTransport *)t; }

static int serial_wait_peer(SpPeerTransport *t, HANDLE stop)
{
    SerialTransport *s = serial(t);
    bool logged = false;
    /* The port stays open across a hang-up (like qemu-ga); only pace the next session. */
    if (s->port != INVALID_HANDLE_VALUE)
        return WaitForSingleObject(stop, SP_SERIAL_HANGUP_PAUSE_MS) == WAIT_OBJECT_0 ? -1 : 0;
    while (s->port == INVALID_HANDLE_VALUE) {
        s->port = CreateFileW(s->path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                              FILE_FLAG_OVERLAPPED, NULL);
        if (s->port != INVALID_HANDLE_VALUE)
            break;
        DWORD error = GetLastError();
        if (!logged)
            sp_log(SP_LOG_WARNING, "cannot open %ls (error %lu); is the virtio-serial port "
                   "org.qemu.guest_agent.0 attached and the virtio-win driver installed? "
                   "retrying every %u s", s->path, error, SP_SERIAL_RETRY_MS / 1000);
        logged = true;
        if (WaitForSingleObject(stop, SP_SERIAL_RETRY_MS) == WAIT_OBJECT_0)
            return -1;
    }
    return 0;
}

/* Waits for overlapped I/O to finish, cancelling it when stop is signalled. */
static int finish_io(SerialTransport *s, OVERLAPPED *ov, HANDLE stop, DWORD *ret_n)
{
    if (sp_transport_wait(ov->hEvent, stop) < 0) {
        CancelIoEx(s->port, ov);
        GetOverlappedResult(s->port, ov, ret_n, TRUE);
        return -1;
    }
    return GetOverlappedResult(s->port, ov, ret_n, FALSE) ? 0 : -1;
}

static int serial_read(SpPeerTransport *t, void *buf, size_t len, HANDLE stop)
{
    SerialTransport *s = serial(t);
    DWORD n = 0;
    ResetEvent(s->rd.hEvent);
    if (!ReadFile(s->port, buf, len > MAXDWORD ? MAXDWORD : (DWORD)len, &n, &s->rd)) {
        DWORD error = GetLastError();
        if (error == ERROR_IO_PENDING && finish_io(s, &s->rd, stop, &n) == 0)
            return (int)n;
        if (error == ERROR_IO_PENDING) {
            if (WaitForSingleObject(stop, 0) == WAIT_OBJECT_0)
                return -1;
            error = GetLastError();
        }
        if (error == ERROR_BROKEN_PIPE || error == ERROR_PIPE_NOT_CONNECTED ||
            error == ERROR_DEVICE_NOT_CONNECTED) {
            s->broken = true; /* a hang-up: the next session reopens the port */
            return 0;
        }
        sp_log(SP_LOG_ERROR, "reading %ls failed: error %lu", s->path, error);
        return -1;
    }
    /* A zero-byte read happens when the host side closes its chardev: treat it as a hang-up. */
    return (int)n;
}

static long serial_write_some(SpPeerTransport *t, const char *p, size_t len)
{
    SerialTransport *s = serial(t);
    DWORD n = 0;

    ResetEvent(s->wr.hEvent);
    if (!WriteFile(s->port, p, (DWORD)len, &n, &s->wr) &&
        (GetLastError() != ERROR_IO_PENDING || finish_io(s, &s->wr, NULL, &n) < 0))
        return -1;
    return (long)n;
}

static int serial_write(SpPeerTransport *t, const void *buf, size_t len)
{
    return sp_transport_write_all(t, buf, len, MAXDWORD, serial_write_some);
}

static void serial_close(SpPeerTransport *t)
{
    SerialTransport *s = serial(t);
    sp_close_handle_at(&s->port);
    s->broken = false;
}

static void serial_hangup(SpPeerTransport *t)
{
    if (serial(t)->broken)
        serial_close(t);
}

static void serial_free(SpPeerTransport *t)
{
    SerialTransport *s = serial(t);
    if (!s)
        return;
    serial_close(t);
    sp_close_handle(s->rd.hEvent);
    sp_close_handle(s->wr.hEvent);
    free(s->path);
    free(s);
}

static const SpPeerTransportOps serial_ops = {
    .name = "virtio-serial",
    .wait_peer = serial_wait_peer,
    .read = serial_read,
    .write = serial_write,
    .hangup = serial_hangup,
    .free = serial_free,
};

SpPeerTransport *sp_transport_serial_new(const wchar_t *path)
{
    SerialTransport *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->base.ops = &serial_ops;
    s->port = INVALID_HANDLE_VALUE;
    s->path = _wcsdup(path);
    s->rd.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    s->wr.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!s->path || !s->rd.hEvent || !s->wr.hEvent) {
        serial_free(&s->base);
        return NULL;
    }
    return &s->base;
}
