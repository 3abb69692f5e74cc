/* transport: channels on the GLib main loop. Each channel has its own framer and output queue;
 * all of them share the one freeze state behind the request callback. */
#define _GNU_SOURCE
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "stillpoint/protocol.h"

/* virtio-serial reports POLLHUP for as long as no host is attached; qemu-ga backs off the same
 * way. The host gets the port back within this delay after it reconnects. */
#define SP_VIRTIO_REATTACH_MS 200

typedef enum { CHANNEL_VIRTIO, CHANNEL_CLIENT } ChannelKind;

typedef struct Listener Listener;

typedef struct {
    SpTransport *t;
    ChannelKind kind;
    unsigned id;
    int fd;
    char *name;          /* for log messages: the path, or "unix client 3" */
    guint watch;         /* input */
    guint out_watch;     /* G_IO_OUT while output is pending */
    guint reattach;      /* virtio: timer re-adding the input watch after a hang-up */
    gboolean host_attached; /* virtio: a host has sent us something since the last hang-up */
    SpFramer *framer;
    GByteArray *out;
    Listener *listener;  /* clients: the listener that accepted them */
    guint64 pending;     /* the request whose reply is awaited (input paused), 0 = none */
    GQueue *queued;      /* Frame: what the last read held behind the pending request */
} Channel;

/* A frame copied while a request of its channel is pending. Bounded: input is paused meanwhile,
 * so at most one read's worth waits. */
typedef struct {
    SpFrameKind kind;
    int status;
    char *data;
    size_t len;
} Frame;

static void frame_free(Frame *f)
{
    g_free(f->data);
    g_free(f);
}

struct Listener {
    SpTransport *t;
    int fd;
    gboolean vsock;      /* accepts only the host (sp_transport_vsock_peer_allowed) */
    char *name;
    char *unlink_path;   /* unix sockets: removed on exit */
    guint watch;
    guint n_clients;
};

struct SpTransport {
    SpTransportRequestFn request_fn;
    SpTransportHangupFn hangup_fn;
    void *userdata;
    GPtrArray *channels;   /* Channel* */
    GPtrArray *listeners;  /* Listener* */
    unsigned next_id;
    guint64 next_request;
};

static void channel_free(Channel *c)
{
    if (c->watch)
        g_source_remove(c->watch);
    if (c->out_watch)
        g_source_remove(c->out_watch);
    if (c->reattach)
        g_source_remove(c->reattach);
    if (c->fd >= 0)
        close(c->fd);
    if (c->listener)
        c->listener->n_clients--;
    sp_framer_free(c->framer);
    g_byte_array_unref(c->out);
    g_queue_free_full(c->queued, (GDestroyNotify)frame_free);
    g_free(c->name);
    g_free(c);
}

static void listener_free(Listener *l)
{
    if (l->watch)
        g_source_remove(l->watch);
    if (l->fd >= 0)
        close(l->fd);
    if (l->unlink_path)
        unlink(l->unlink_path);
    g_free(l->unlink_path);
    g_free(l->name);
    g_free(l);
}

SpTransport *sp_transport_new(SpTransportRequestFn request_fn, SpTransportHangupFn hangup_fn,
                              void *userdata)
{
    SpTransport *t = g_new0(SpTransport, 1);
    t->request_fn = request_fn;
    t->hangup_fn = hangup_fn;
    t->userdata = userdata;
    t->channels = g_ptr_array_new_with_free_func((GDestroyNotify)channel_free);
    t->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)listener_free);
    t->next_id = 1;
    t->next_request = 1;
    return t;
}

void sp_transport_free(SpTransport *t)
{
    if (!t)
        return;
    g_ptr_array_unref(t->channels);
    g_ptr_array_unref(t->listeners);
    g_free(t);
}

/* ---- output ---- */

static gboolean channel_out_cb(int fd, GIOCondition cond, gpointer data);

static void channel_flush(Channel *c)
{
    while (c->out->len > 0) {
        ssize_t n = c->kind == CHANNEL_CLIENT ? send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL)
                                              : write(c->fd, c->out->data, c->out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!c->out_watch)
                c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, channel_out_cb, c);
            return;
        }
        if (n <= 0) {
            /* The peer is gone; the input side notices and cleans up. */
            g_debug("%s: write: %s", c->name, g_strerror(errno));
            g_byte_array_set_size(c->out, 0);
            break;
        }
        g_byte_array_remove_range(c->out, 0, (guint)n);
    }
    if (c->out_watch) {
        g_source_remove(c->out_watch);
        c->out_watch = 0;
    }
}

static gboolean channel_out_cb(int fd, GIOCondition cond, gpointer data)
{
    Channel *c = data;
    c->out_watch = 0;
    channel_flush(c);
    return G_SOURCE_REMOVE;
}

static void channel_send(Channel *c, SpJson *reply, unsigned flags)
{
    size_t len = 0;
    char *text = sp_json_serialize(reply, &len); /* NULL for no reply */
    static const guint8 delimiter = 0xFF;

    sp_json_free(reply);
    if (!text)
        return;
    if (c->out->len + len + 2 > SP_TRANSPORT_MAX_OUTPUT) {
        /* A peer that sends but never reads cannot make us buffer without bound. */
        g_warning("%s: peer is not reading its replies; dropping one", c->name);
        free(text);
        return;
    }
    if (flags & SP_CMD_DELIMITED_REPLY)
        g_byte_array_append(c->out, &delimiter, 1);
    g_byte_array_append(c->out, (const guint8 *)text, (guint)len);
    g_byte_array_append(c->out, (const guint8 *)"\n", 1);
    free(text);
    channel_flush(c);
}

/* ---- input ---- */

static gboolean channel_in_cb(int fd, GIOCondition cond, gpointer data);

static void input_pause(Channel *c)
{
    if (c->watch) {
        g_source_remove(c->watch);
        c->watch = 0;
    }
}

static void input_resume(Channel *c)
{
    if (!c->watch && !c->reattach && !c->pending)
        c->watch = g_unix_fd_add(c->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, channel_in_cb, c);
}

static void handle_frame(Channel *c, SpFrameKind kind, int status, const char *data, size_t len)
{
    SpJsonError jerr = {0};
    SpJson *message = NULL, *reply;
    unsigned flags = 0;
    guint64 request;

    if (kind == SP_FRAME_RESYNC)
        return;
    if (kind == SP_FRAME_ERROR) {
        channel_send(c, sp_command_reply_for_bad_input(status, NULL), 0);
        return;
    }
    if (sp_json_parse(data, len, NULL, &message, &jerr) < 0) {
        channel_send(c, sp_command_reply_for_bad_input(jerr.status, jerr.message), 0);
        return;
    }
    c->host_attached = TRUE;
    request = c->t->next_request++;
    /* Two statements: flags is only set once the request has run. */
    reply = c->t->request_fn(c->id, request, message, &flags, c->t->userdata);
    sp_json_free(message);
    if (flags & SP_TRANSPORT_PENDING) {
        sp_json_free(reply);
        c->pending = request;
        input_pause(c);
        return;
    }
    channel_send(c, reply, flags);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    Channel *c = userdata;
    Frame *f;

    if (!c->pending) {
        handle_frame(c, frame->kind, frame->status, frame->data, frame->len);
        return;
    }
    f = g_new0(Frame, 1);
    f->kind = frame->kind;
    f->status = frame->status;
    f->data = g_memdup2(frame->data, frame->len);
    f->len = frame->len;
    g_queue_push_tail(c->queued, f);
}

/* Answers what waited behind the pending request, until one is pending again. */
static void drain_queued(Channel *c)
{
    Frame *f;

    while (!c->pending && (f = g_queue_pop_head(c->queued)) != NULL) {
        handle_frame(c, f->kind, f->status, f->data, f->len);
        frame_free(f);
    }
    input_resume(c);
}

void sp_transport_reply(SpTransport *t, guint64 request, SpJson *reply, unsigned flags)
{
    for (guint i = 0; request != 0 && i < t->channels->len; i++) {
        Channel *c = t->channels->pdata[i];
        if (c->pending != request)
            continue;
        c->pending = 0;
        if (flags & SP_CMD_NO_REPLY)
            sp_json_free(reply);
        else
            channel_send(c, reply, flags);
        drain_queued(c);
        return;
    }
    sp_json_free(reply); /* its channel is gone, or hung up since */
}

static gboolean virtio_reattach_cb(gpointer data)
{
    Channel *c = data;
    c->reattach = 0;
    input_resume(c);
    return G_SOURCE_REMOVE;
}

/* The host side went away. For a socket client the channel ends; a virtio port stays ours and
 * waits for the next host. Either way the freeze it owns may be thawed. */
static void channel_hangup(Channel *c)
{
    SpTransport *t = c->t;
    unsigned id = c->id;

    if (c->kind == CHANNEL_VIRTIO) {
        gboolean was_attached = c->host_attached;
        c->host_attached = FALSE;
        sp_framer_reset(c->framer);
        g_byte_array_set_size(c->out, 0);
        /* A reply still to come belongs to the host that left. */
        c->pending = 0;
        g_queue_free_full(c->queued, (GDestroyNotify)frame_free);
        c->queued = g_queue_new();
        c->watch = 0;
        c->reattach = g_timeout_add(SP_VIRTIO_REATTACH_MS, virtio_reattach_cb, c);
        if (was_attached) {
            g_info("%s: host disconnected", c->name);
            t->hangup_fn(id, t->userdata);
        }
        return;
    }
    g_debug("%s: closed", c->name);
    c->watch = 0;
    g_ptr_array_remove(t->channels, c);
    t->hangup_fn(id, t->userdata);
}

static gboolean channel_in_cb(int fd, GIOCondition cond, gpointer data)
{
    Channel *c = data;
    guint8 buf[4096];
    ssize_t n;

    if (cond & G_IO_IN) {
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return G_SOURCE_CONTINUE;
        if (n > 0) {
            sp_framer_feed(c->framer, buf, (size_t)n, frame_cb, c);
            return G_SOURCE_CONTINUE;
        }
        if (n < 0)
            g_debug("%s: read: %s", c->name, g_strerror(errno));
    }
    channel_hangup(c);
    return G_SOURCE_REMOVE;
}

static Channel *channel_new(SpTransport *t, ChannelKind kind, int fd, const char *name)
{
    Channel *c = g_new0(Channel, 1);
    c->t = t;
    c->kind = kind;
    c->id = t->next_id++;
    c->fd = fd;
    c->name = g_strdup(name);
    c->framer = sp_framer_new(0);
    c->out = g_byte_array_new();
    c->queued = g_queue_new();
    c->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, channel_in_cb, c);
    g_ptr_array_add(t->channels, c);
    return c;
}

gboolean sp_transport_add_virtio(SpTransport *t, const char *path, GError **error)
{
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
                    "cannot open virtio-serial port %s: %s (is the VM configured with a "
                    "virtserialport of that name?)", path, g_strerror(e));
        return FALSE;
    }
    channel_new(t, CHANNEL_VIRTIO, fd, path);
    g_info("listening on virtio-serial port %s", path);
    return TRUE;
}

/* ---- listening sockets ---- */

gboolean sp_transport_vsock_peer_allowed(unsigned cid)
{
    return cid == VMADDR_CID_HOST;
}

static gboolean listener_accept_cb(int fd, GIOCondition cond, gpointer data)
{
    Listener *l = data;
    g_autofree char *name = NULL;
    struct sockaddr_vm peer = {0};
    socklen_t peer_len = sizeof(peer);
    int cfd = accept4(fd, l->vsock ? (struct sockaddr *)&peer : NULL, l->vsock ? &peer_len : NULL,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
    Channel *c;

    if (cfd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            g_warning("%s: accept: %s", l->name, g_strerror(errno));
        return G_SOURCE_CONTINUE;
    }
    /* With a vsock loopback in the guest (vsock_loopback), any local user could connect from
     * CID 1 and freeze the guest; a nested VM could from its own CID. Only the host may. */
    if (l->vsock && (peer_len < sizeof(peer) || peer.svm_family != AF_VSOCK ||
                     !sp_transport_vsock_peer_allowed(peer.svm_cid))) {
        g_warning("%s: refusing a connection from CID %u: only the host (CID %u) may talk to the "
                  "agent", l->name, peer.svm_cid, (unsigned)VMADDR_CID_HOST);
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    if (l->n_clients >= SP_TRANSPORT_MAX_CLIENTS) {
        g_warning("%s: refusing a client: %d already connected", l->name, SP_TRANSPORT_MAX_CLIENTS);
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    name = g_strdup_printf("%s client %u", l->name, l->t->next_id);
    c = channel_new(l->t, CHANNEL_CLIENT, cfd, name);
    c->listener = l;
    l->n_clients++;
    g_debug("%s: connected", c->name);
    return G_SOURCE_CONTINUE;
}

static Listener *listener_add(SpTransport *t, int fd, const char *name, const char *unlink_path)
{
    Listener *l = g_new0(Listener, 1);
    l->t = t;
    l->fd = fd;
    l->name = g_strdup(name);
    l->unlink_path = g_strdup(unlink_path);
    l->watch = g_unix_fd_add(fd, G_IO_IN, listener_accept_cb, l);
    g_ptr_array_add(t->listeners, l);
    return l;
}

gboolean sp_transport_add_unix(SpTransport *t, const char *path, GError **error)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd, e;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG, "unix socket path %s is too long",
                    path);
        return FALSE;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    (void)unlink(path); /* a stale socket of a previous run */
    /* Only root may talk to the agent: it can freeze the machine. */
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 8) < 0)
        goto fail;
    listener_add(t, fd, path, path);
    g_info("listening on unix socket %s", path);
    return TRUE;
fail:
    e = errno;
    if (fd >= 0)
        close(fd);
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot listen on unix socket %s: %s",
                path, g_strerror(e));
    return FALSE;
}

gboolean sp_transport_add_vsock(SpTransport *t, unsigned port, GError **error)
{
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    g_autofree char *name = g_strdup_printf("vsock port %u", port);
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e;

    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 8) < 0) {
        e = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot listen on %s: %s%s", name,
                    g_strerror(e), e == EAFNOSUPPORT || e == ENODEV
                        ? " (no vsock device: load vmw_vsock_virtio_transport or give the VM a vhost-vsock device)" : "");
        return FALSE;
    }
    listener_add(t, fd, name, NULL)->vsock = TRUE;
    g_info("listening on %s (the host's connections only)", name);
    return TRUE;
}
