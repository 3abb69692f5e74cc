/* A scripted fake guest agent: accepts one client after another on a unix socket, frames and
 * parses requests with the protocol library and answers what the test's handler says. */
#include "host-fake-agent.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stillpoint/channel.h"
#include "stillpoint/framer.h"
#include "stillpoint/message.h"

struct FakeAgent {
    char *dir;
    char *path;
    int listen_fd;
    GThread *thread;
    FakeAgentHandler handler;
    GMutex lock;
    GPtrArray *seen;
};

typedef struct {
    FakeAgent *fake;
    int fd;
} FrameCtx;

static void frame_cb(const SpFrame *frame, void *userdata)
{
    FrameCtx *fc = userdata;
    g_autoptr(SpJson) msg = NULL;
    SpRequest req;
    g_autofree char *reply = NULL;
    g_autofree char *args_text = NULL;
    guint delay_ms = 0;

    if (frame->kind != SP_FRAME_OBJECT)
        return;
    if (sp_json_parse(frame->data, frame->len, NULL, &msg, NULL) != SP_OK ||
        sp_request_parse(msg, &req, NULL) != SP_OK)
        return;
    args_text = req.arguments != NULL ? sp_json_serialize(req.arguments, NULL) : g_strdup("{}");
    g_mutex_lock(&fc->fake->lock);
    g_ptr_array_add(fc->fake->seen, g_strdup_printf("%s %s", req.execute, args_text));
    g_mutex_unlock(&fc->fake->lock);
    reply = fc->fake->handler(req.execute, req.arguments, &delay_ms);
    if (delay_ms > 0)
        g_usleep(delay_ms * 1000);
    if (reply != NULL && write(fc->fd, reply, strlen(reply)) < 0)
        return;
}

static gpointer serve_thread(gpointer data)
{
    FakeAgent *fake = data;
    for (;;) {
        FrameCtx fc = {.fake = fake};
        SpFramer *framer;
        char buf[4096];
        ssize_t n;

        fc.fd = accept(fake->listen_fd, NULL, NULL);
        if (fc.fd < 0)
            return NULL; /* fake_agent_stop shut the socket down */
        framer = sp_framer_new(0);
        while ((n = read(fc.fd, buf, sizeof(buf))) > 0)
            sp_framer_feed(framer, buf, (size_t)n, frame_cb, &fc);
        close(fc.fd);
        sp_framer_free(framer);
    }
}

FakeAgent *fake_agent_start(FakeAgentHandler handler)
{
    FakeAgent *fake = g_new0(FakeAgent, 1);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    fake->dir = g_dir_make_tmp("sp-agent-XXXXXX", NULL);
    fake->path = g_build_filename(fake->dir, "agent.sock", NULL);
    fake->handler = handler;
    fake->seen = g_ptr_array_new_with_free_func(g_free);
    g_mutex_init(&fake->lock);
    g_strlcpy(addr.sun_path, fake->path, sizeof(addr.sun_path));
    fake->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    g_assert(listen(fake->listen_fd, 4) == 0);
    fake->thread = g_thread_new("fake-agent", serve_thread, fake);
    return fake;
}

const char *fake_agent_path(FakeAgent *fake)
{
    return fake->path;
}

char *fake_agent_log(FakeAgent *fake)
{
    char *text;
    g_mutex_lock(&fake->lock);
    g_ptr_array_add(fake->seen, NULL);
    text = g_strjoinv("\n", (char **)fake->seen->pdata);
    g_ptr_array_remove_index(fake->seen, fake->seen->len - 1);
    g_mutex_unlock(&fake->lock);
    return text;
}

gboolean fake_agent_saw(FakeAgent *fake, const char *line)
{
    gboolean found = FALSE;
    g_mutex_lock(&fake->lock);
    for (guint i = 0; i < fake->seen->len; i++)
        found |= g_strcmp0(g_ptr_array_index(fake->seen, i), line) == 0;
    g_mutex_unlock(&fake->lock);
    return found;
}

void fake_agent_stop(FakeAgent *fake)
{
    /* Clients have hung up by now; shutting the listening socket down ends accept(). */
    shutdown(fake->listen_fd, SHUT_RDWR);
    g_thread_join(fake->thread);
    close(fake->listen_fd);
    g_unlink(fake->path);
    g_rmdir(fake->dir);
    g_ptr_array_unref(fake->seen);
    g_mutex_clear(&fake->lock);
    g_free(fake->path);
    g_free(fake->dir);
    g_free(fake);
}

char *fake_agent_sync_reply(const SpJson *args)
{
    return g_strdup_printf("\xff{\"return\": %" G_GINT64_FORMAT "}\n",
                           sp_json_object_get_int(args, "id", 0));
}
