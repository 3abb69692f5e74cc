/* Where the agent talks to the host: the virtio-serial port (production), or a loopback TCP
 * port (tests, and hosts that forward one). One peer at a time, like qemu-ga. */
#pragma once
#include <stddef.h>
#include <windows.h>

typedef struct SpTransport SpTransport;

typedef struct {
    const char *name;
    /* Waits for a peer (TCP: accept; serial: open the port). 0, or -1 when stop is signalled
     * or the transport failed for good. */
    int (*wait_peer)(SpTransport *t, HANDLE stop);
    /* Some bytes (> 0), 0 when the peer hung up, -1 on error or stop. */
    int (*read)(SpTransport *t, void *buf, size_t len, HANDLE stop);
    /* All of buf, or -1. */
    int (*write)(SpTransport *t, const void *buf, size_t len);
    /* Drops the peer (TCP: close the connection). */
    void (*hangup)(SpTransport *t);
    void (*free)(SpTransport *t);
} SpTransportOps;

struct SpTransport {
    const SpTransportOps *ops;
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
static inline int sp_transport_write_all(SpTransport *t, const void *buf, size_t len, size_t max,
                                         long (*write_some)(SpTransport *, const char *, size_t))
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
SpTransport *sp_transport_tcp_new(const char *address, unsigned *ret_port, char *errbuf,
                                  size_t errlen);
SpTransport *sp_transport_serial_new(const wchar_t *path);
