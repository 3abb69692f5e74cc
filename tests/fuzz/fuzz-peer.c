/* The scripted peer of fuzz-peer.h: one thread per connection, blocking I/O. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz-peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct FuzzPeer {
    char dir[64];
    char path[128];
    int listen_fd;
    GThread *thread;
    const uint8_t *data;
    size_t size;
};

bool fuzz_peer_input_says_null;

static char peer_dirs[4][64];
static int n_peer_dirs;

static void remove_dirs(void)
{
    for (int i = 0; i < n_peer_dirs; i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/peer.sock", peer_dirs[i]);
        unlink(path);
        rmdir(peer_dirs[i]);
    }
}

FuzzPeer *fuzz_peer_new(const char *name)
{
    FuzzPeer *peer = g_new0(FuzzPeer, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    snprintf(peer->dir, sizeof(peer->dir), "/tmp/sp-fuzz-%s-XXXXXX", name);
    CHECK(mkdtemp(peer->dir) != NULL);
    snprintf(peer->path, sizeof(peer->path), "%s/peer.sock", peer->dir);
    CHECK(n_peer_dirs < 4);
    if (n_peer_dirs == 0)
        atexit(remove_dirs);
    g_strlcpy(peer_dirs[n_peer_dirs++], peer->dir, sizeof(peer_dirs[0]));
    g_strlcpy(addr.sun_path, peer->path, sizeof(addr.sun_path));
    peer->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(peer->listen_fd >= 0);
    CHECK(bind(peer->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    CHECK(listen(peer->listen_fd, 4) == 0);
    return peer;
}

const char *fuzz_peer_path(const FuzzPeer *peer)
{
    return peer->path;
}

static gpointer peer_thread(gpointer userdata)
{
    FuzzPeer *peer = userdata;
    GByteArray *received = g_byte_array_new();
    size_t off = 0;
    uint8_t buf[4096];
    ssize_t n;
    int fd = accept4(peer->listen_fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return received;
    while (off < peer->size) {
        n = send(fd, peer->data + off, peer->size - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the client gave up early */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    while ((n = recv(fd, buf, sizeof(buf), 0)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        g_byte_array_append(received, buf, (guint)n);
    }
    close(fd);
    return received;
}

void fuzz_peer_start(FuzzPeer *peer, const uint8_t *data, size_t size)
{
    peer->data = data;
    peer->size = size;
    fuzz_peer_input_says_null = memmem(data, size, "(null)", 6) != NULL;
    peer->thread = g_thread_new("fuzz-peer", peer_thread, peer);
}

GByteArray *fuzz_peer_wait(FuzzPeer *peer)
{
    GByteArray *received = g_thread_join(peer->thread);
    peer->thread = NULL;
    return received;
}
