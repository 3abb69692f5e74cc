/* The hostile peer of hostile-peer.h: blocking I/O with short poll()s, so a script notices both a
 * client hang-up and hostile_peer_stop quickly. */
#include "hostile-peer.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stillpoint/framer.h"

struct HostilePeer {
    char *dir;
    char *path;
    int listen_fd;
    GThread *thread;
    HostileScript script;
    gint stopping;
    SpFramer *framer;
    GQueue requests; /* of SpJson*: parsed but not yet read */
};

bool hostile_peer_stopping(HostilePeer *peer)
{
    return g_atomic_int_get(&peer->stopping) != 0;
}

static gpointer peer_thread(gpointer data)
{
    HostilePeer *peer = data;
    struct pollfd pfd = {.fd = peer->listen_fd, .events = POLLIN};
    int fd = -1;

    while (!hostile_peer_stopping(peer)) {
        if (poll(&pfd, 1, 50) > 0) {
            fd = accept(peer->listen_fd, NULL, NULL);
            break;
        }
    }
    if (fd >= 0) {
        peer->script(peer, fd);
        close(fd);
    }
    return NULL;
}

HostilePeer *hostile_peer_start(HostileScript script)
{
    HostilePeer *peer = g_new0(HostilePeer, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    peer->dir = g_dir_make_tmp("sp-hostile-XXXXXX", NULL);
    g_assert_nonnull(peer->dir);
    peer->path = g_build_filename(peer->dir, "peer.sock", NULL);
    peer->script = script;
    peer->framer = sp_framer_new(0);
    g_queue_init(&peer->requests);
    g_strlcpy(addr.sun_path, peer->path, sizeof(addr.sun_path));
    peer->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(peer->listen_fd, >=, 0);
    g_assert_cmpint(bind(peer->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(peer->listen_fd, 1), ==, 0);
    peer->thread = g_thread_new("hostile-peer", peer_thread, peer);
    return peer;
}

const char *hostile_peer_path(HostilePeer *peer)
{
    return peer->path;
}

void hostile_peer_stop(HostilePeer *peer)
{
    g_atomic_int_set(&peer->stopping, 1);
    g_thread_join(peer->thread);
    close(peer->listen_fd);
    g_unlink(peer->path);
    g_rmdir(peer->dir);
    g_queue_clear_full(&peer->requests, (GDestroyNotify)sp_json_free);
    sp_framer_free(peer->framer);
    g_free(peer->path);
    g_free(peer->dir);
    g_free(peer);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    HostilePeer *peer = userdata;
    SpJson *msg = NULL;

    if (frame->kind == SP_FRAME_OBJECT &&
        sp_json_parse(frame->data, frame->len, NULL, &msg, NULL) == SP_OK)
        g_queue_push_tail(&peer->requests, msg);
}

/* Waits up to 50 ms for the client; -1 when it hung up, 0 on nothing, 1 when readable. */
static int wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 50);
    if (n <= 0)
        return 0;
    return (pfd.revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

SpJson *hostile_peer_read(HostilePeer *peer, int fd)
{
    char buf[4096];

    while (g_queue_is_empty(&peer->requests)) {
        ssize_t n;
        if (hostile_peer_stopping(peer))
            return NULL;
        if (wait_readable(fd) == 0)
            continue;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return NULL;
        sp_framer_feed(peer->framer, buf, (size_t)n, frame_cb, peer);
    }
    return g_queue_pop_head(&peer->requests);
}

bool hostile_peer_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool hostile_peer_trickle(HostilePeer *peer, int fd, const char *text, guint interval_ms)
{
    for (const char *p = text; *p; p++) {
        if (hostile_peer_stopping(peer) || !hostile_peer_send(fd, p, 1))
            return false;
        g_usleep(interval_ms * 1000);
    }
    return true;
}

void hostile_peer_flood(HostilePeer *peer, int fd, const void *chunk, size_t len)
{
    size_t off = 0; /* the stream stays whole across partial sends */

    while (!hostile_peer_stopping(peer)) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        ssize_t n;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        if (pfd.revents & (POLLHUP | POLLERR))
            return;
        n = send(fd, (const char *)chunk + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return;
        off = (off + (size_t)n) % len;
    }
}

void hostile_peer_drain(HostilePeer *peer, int fd)
{
    char buf[4096];
    while (!hostile_peer_stopping(peer)) {
        if (wait_readable(fd) == 0)
            continue;
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            return;
    }
}

long hostile_rss_kib(void)
{
    g_autofree char *status = NULL;
    const char *line;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
        return 0;
    line = strstr(status, "VmRSS:");
    return line != NULL ? strtol(line + 6, NULL, 10) : 0;
}
