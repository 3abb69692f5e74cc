/* SpPeerTransport: where the Windows agent talks to the host, the virtio-serial port
 * (production) or a loopback TCP port (tests, and hosts that forward one). One peer at a time,
 * like qemu-ga (the Linux agent's SpTransport serves many channels at once). */
#pragma once
#include <stddef.h>
#include <windows.h>

typedef struct SpPeerTransport SpPeerTransport;

typedef struct {
    const char *name;
    /* Waits for a peer (TCP: accept; serial: open the port). 0, or -1 when stop is signalled
     * or the transport failed for good. */
    int (*wait_peer)(SpPeerTransport *t, HANDLE stop);
    /* Some bytes (> 0), 0 when the peer hung up, -1 on error or stop. */
    int (*read)(SpPeerTransport *t, void *buf, size_t len, HANDLE stop);
    /* All of buf, or -1. */
    int (*write)(SpPeerTransport *t, const void *buf, size_t len);
    /* Drops the peer (TCP: close the connection). */
    void (*hangup)(SpPeerTransport *t);
    void (*free)(SpPeerTransport *t);
} SpPeerTransportOps;

struct SpPeerTransport {
    const SpPeerTransportOps *ops;
};

/* What both transports do. */

/* Waits for event, or for stop (may be NULL): 0 when event is signalled, -1 otherwise. */
static inline int sp_transport_wait(HANDLE event, HANDLE stop)
{
    HANDLE handles[2] = { event, stop };
    return WaitForMultipleObjects(stop ? 2 : 1, handles, FALSE, INFINITE) == WAIT_OBJECT_0 ? 0
                                                                                           : -1;
}

/* Writes all of buf with write_some (bytes written, at most max at once; -1 on failure). */
typedef long SpWriteSome(SpPeerTransport *t, const char *p, size_t len);

static inline int sp_transport_write_all(SpPeerTransport *t, const void *buf, size_t len,
                                         size_t max, SpWriteSome *write_some)
{
    const char *p = buf;
    while (len > 0) {
        long n = write_some(t, p, len > max ? max : len);
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

#define SP_VIRTIO_SERIAL_PATH L"\\\\.\\Global\\org.qemu.guest_agent.0"

/* "127.0.0.1:PORT"; port 0 picks one. Only loopback addresses are accepted: the TCP
 * transport has no authentication. *ret_port gets the port bound. */
SpPeerTransport *sp_transport_tcp_new(const char *address, unsigned *ret_port, char *errbuf,
                                  size_t errlen);
SpPeerTransport *sp_transport_serial_new(const wchar_t *path);
