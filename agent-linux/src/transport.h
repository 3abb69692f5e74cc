/* transport: the channels a host reaches the agent through — a virtio-serial port, and unix
 * and AF_VSOCK listening sockets — framing requests in and replies out on the GLib main loop. */
#pragma once
#include <glib.h>
#include "stillpoint/json.h"

typedef struct SpTransport SpTransport;

/* Handle one parsed request from channel; return the reply (owned) and its command flags. A
 * handler that answers later sets SP_TRANSPORT_PENDING in *ret_flags (and returns NULL): the
 * reply then comes through sp_transport_reply() with this request number, and the channel reads
 * nothing more until it has (requests are answered in order, one at a time). */
typedef SpJson *(*SpTransportRequestFn)(unsigned channel, guint64 request, const SpJson *message,
                                         unsigned *ret_flags, void *userdata);
/* The peer of channel went away (socket closed, virtio host side disconnected). */
typedef void (*SpTransportHangupFn)(unsigned channel, void *userdata);

#define SP_TRANSPORT_PENDING (1u << 8)   /* beside the SP_CMD_* flags */

#define SP_TRANSPORT_MAX_CLIENTS 16
#define SP_TRANSPORT_MAX_OUTPUT (1024 * 1024)

SpTransport *sp_transport_new(SpTransportRequestFn request_fn, SpTransportHangupFn hangup_fn,
                              void *userdata);
void sp_transport_free(SpTransport *transport);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpTransport, sp_transport_free)

/* The reply to a request that was pending (flags as a handler's; SP_CMD_NO_REPLY: none is sent).
 * Takes reply. Dropped when the channel went away or hung up meanwhile. */
void sp_transport_reply(SpTransport *transport, guint64 request, SpJson *reply, unsigned flags);

gboolean sp_transport_add_virtio(SpTransport *transport, const char *path, GError **error);
gboolean sp_transport_add_unix(SpTransport *transport, const char *path, GError **error);
/* Connections from any CID but the host's (2) are closed at once: not a guest process over a
 * vsock loopback, nor a nested VM. */
gboolean sp_transport_add_vsock(SpTransport *transport, unsigned port, GError **error);
/* Whether a vsock peer of this CID may talk to the agent: the host only. */
gboolean sp_transport_vsock_peer_allowed(unsigned cid);
