/* transport: the channels a host reaches the agent through — a virtio-serial port, and unix
 * and AF_VSOCK listening sockets — framing requests in and replies out on the GLib main loop. */
#pragma once
#include <glib.h>
#include "stillpoint/json.h"

typedef struct SpTransport SpTransport;

/* Handle one parsed request from channel; return the reply (owned) and its command flags. */
typedef SpJson *(*SpTransportRequestFn)(unsigned channel, const SpJson *message,
                                         unsigned *ret_flags, void *userdata);
/* The peer of channel went away (socket closed, virtio host side disconnected). */
typedef void (*SpTransportHangupFn)(unsigned channel, void *userdata);

#define SP_TRANSPORT_MAX_CLIENTS 16
#define SP_TRANSPORT_MAX_OUTPUT (1024 * 1024)

SpTransport *sp_transport_new(SpTransportRequestFn request_fn, SpTransportHangupFn hangup_fn,
                              void *userdata);
void sp_transport_free(SpTransport *transport);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTransport, sp_transport_free)

gboolean sp_transport_add_virtio(SpTransport *transport, const char *path, GError **error);
gboolean sp_transport_add_unix(SpTransport *transport, const char *path, GError **error);
/* Connections from any CID but the host's (2) are closed at once: not a guest process over a
 * vsock loopback, nor a nested VM. */
gboolean sp_transport_add_vsock(SpTransport *transport, unsigned port, GError **error);
/* Whether a vsock peer of this CID may talk to the agent: the host only. */
gboolean sp_transport_vsock_peer_allowed(unsigned cid);
