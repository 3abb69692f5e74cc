/* Loopback TCP transport, for tests under wine and for hosts that forward a port. Waits on the
 * socket's event and the stop event together, so a service stop never hangs in accept/recv. */
#include <winsock2.h>
#include <ws2tcpip.h>
#include "transport.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"

typedef struct {
    SpPeerTransport base;
    SOCKET listener, peer;
    WSAEVENT listen_event, peer_event;
} TcpTransport;

static TcpTransport *tcp(SpPeerTransport *t) { return (TcpTransport *)t; }

static int tcp_wait_peer(SpPeerTransport *t, HANDLE stop)
{
    TcpTransport *c = tcp(t);
    for (;;) {
        if (sp_transport_wait(c->listen_event, stop) < 0)
            return -1;
        WSANETWORKEVENTS ev;
        WSAEnumNetworkEvents(c->listener, c->listen_event, &ev);
        SOCKET s = accept(c->listener, NULL, NULL);
        if (s == INVALID_SOCKET) {
            int error = WSAGetLastError();
            if (error == WSAEWOULDBLOCK)
                continue;
            sp_log(SP_LOG_ERROR, "tcp: accept failed: error %d", error);
            return -1;
        }
        c->peer = s;
        WSAEventSelect(s, c->peer_event, FD_READ | FD_CLOSE);
        return 0;
    }
}

static int tcp_read(SpPeerTransport *t, void *buf, size_t len, HANDLE stop)
{
    TcpTransport *c = tcp(t);
    for (;;) {
        int n = recv(c->peer, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
        if (n >= 0)
            return n;
        int error = WSAGetLastError();
        if (error != WSAEWOULDBLOCK) {
            /* A reset is a hang-up too. */
            return error == WSAECONNRESET || error == WSAECONNABORTED ? 0 : -1;
        }
        if (sp_transport_wait(c->peer_event, stop) < 0)
            return -1;
        WSANETWORKEVENTS ev;
        WSAEnumNetworkEvents(c->peer, c->peer_event, &ev);
    }
}

static long tcp_write_some(SpPeerTransport *t, const char *p, size_t len)
{
    TcpTransport *c = tcp(t);
    int n = send(c->peer, p, (int)len, 0);

    if (n >= 0 || WSAGetLastError() != WSAEWOULDBLOCK)
        return n;
    /* The peer's window is full: wait until it reads (bounded, a host must read). */
    fd_set w;
    FD_ZERO(&w);
    FD_SET(c->peer, &w);
    struct timeval tv = { .tv_sec = 30 };
    return select(0, NULL, &w, NULL, &tv) > 0 ? 0 : -1;
}

static int tcp_write(SpPeerTransport *t, const void *buf, size_t len)
{
    return sp_transport_write_all(t, buf, len, INT_MAX, tcp_write_some);
}

/* Closes *s and leaves INVALID_SOCKET there, so that closing twice is harmless. */
static void close_socket_at(SOCKET *s)
{
    if (*s != INVALID_SOCKET)
        closesocket(*s);
    *s = INVALID_SOCKET;
}

static void close_event_at(WSAEVENT *e)
{
    if (*e != WSA_INVALID_EVENT)
        WSACloseEvent(*e);
    *e = WSA_INVALID_EVENT;
}

static void tcp_hangup(SpPeerTransport *t)
{
    TcpTransport *c = tcp(t);
    close_socket_at(&c->peer);
    WSAResetEvent(c->peer_event);
}

static void tcp_free(SpPeerTransport *t)
{
    TcpTransport *c = tcp(t);
    if (!c)
        return;
    tcp_hangup(t);
    close_socket_at(&c->listener);
    close_event_at(&c->listen_event);
    close_event_at(&c->peer_event);
    free(c);
    WSACleanup();
}

static const SpPeerTransportOps tcp_ops = {
    .name = "tcp",
    .wait_peer = tcp_wait_peer,
    .read = tcp_read,
    .write = tcp_write,
    .hangup = tcp_hangup,
    .free = tcp_free,
};

/* Splits "HOST:PORT" and checks that HOST is a loopback address. */
static int parse_address(const char *address, struct sockaddr_in *ret, char *errbuf, size_t errlen)
{
    const char *colon = strrchr(address, ':');
    char host[64];
    if (!colon || (size_t)(colon - address) >= sizeof(host)) {
        snprintf(errbuf, errlen, "tcp address '%s' is not HOST:PORT", address);
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    memset(ret, 0, sizeof(*ret));
    ret->sin_family = AF_INET;
    if (!colon[1] || *end || port > 65535 || inet_pton(AF_INET, host, &ret->sin_addr) != 1) {
        snprintf(errbuf, errlen, "tcp address '%s' is not IPv4-ADDRESS:PORT", address);
        return -1;
    }
    if ((ntohl(ret->sin_addr.s_addr) >> 24) != 127) {
        snprintf(errbuf, errlen,
                 "tcp address '%s' is not a loopback address: the TCP transport has no "
                 "authentication, use 127.0.0.1", address);
        return -1;
    }
    ret->sin_port = htons((unsigned short)port);
    return 0;
}

SpPeerTransport *sp_transport_tcp_new(const char *address, unsigned *ret_port, char *errbuf,
                                  size_t errlen)
{
    struct sockaddr_in sa;
    if (parse_address(address, &sa, errbuf, errlen) < 0)
        return NULL;
    WSADATA wsa;
    int error = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (error) {
        snprintf(errbuf, errlen, "WSAStartup failed: error %d", error);
        return NULL;
    }
    TcpTransport *c = calloc(1, sizeof(*c));
    if (!c) {
        WSACleanup();
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    c->base.ops = &tcp_ops;
    c->peer = INVALID_SOCKET;
    c->listen_event = WSACreateEvent();
    c->peer_event = WSACreateEvent();
    c->listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    int len = sizeof(sa);
    if (c->listener == INVALID_SOCKET || c->listen_event == WSA_INVALID_EVENT ||
        c->peer_event == WSA_INVALID_EVENT ||
        bind(c->listener, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(c->listener, 1) != 0 ||
        getsockname(c->listener, (struct sockaddr *)&sa, &len) != 0 ||
        WSAEventSelect(c->listener, c->listen_event, FD_ACCEPT) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: error %d", address, WSAGetLastError());
        tcp_free(&c->base);
        return NULL;
    }
    *ret_port = ntohs(sa.sin_port);
    return &c->base;
}
