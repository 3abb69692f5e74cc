/* forward: one forwarded request = one fresh connection to qemu-ga's private socket (so a late
 * answer to a request that timed out can never be taken for the next one's), the request with
 * an id of ours, one reply read through a framer bounded by max-reply-bytes, all on the main
 * loop and under one deadline. */
#include "forward.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>
#include "stillpoint/protocol.h"

/* qemu-ga answers nothing when guest-shutdown and guest-suspend-* succeed, only when they fail
 * (after its shutdown or suspend helper exited): wait this long for such an error. */
#define SP_FORWARD_NO_REPLY_WAIT_MS 2000
#define SP_FORWARD_READ_CHUNK 4096
/* qemu-ga serves one client at a time and its listen backlog is short: while it still works on
 * an earlier request (one that timed out here), connections are refused. Try again this often
 * until the deadline. */
#define SP_FORWARD_CONNECT_RETRY_MS 100

/* Commands that let the host run programs, read or write files, or set passwords and keys in
 * the guest: forwarded only when the administrator allows their class. */
static const char *const exec_commands[] = {"guest-exec", "guest-exec-status", NULL};
static const char *const file_commands[] = {"guest-file-open", "guest-file-close",
                                            "guest-file-read", "guest-file-write",
                                            "guest-file-seek", "guest-file-flush", NULL};
static const char *const password_commands[] = {"guest-set-user-password", NULL};
static const char *const ssh_key_commands[] = {"guest-ssh-get-authorized-keys",
                                               "guest-ssh-add-authorized-keys",
                                               "guest-ssh-remove-authorized-keys", NULL};
static const char *const no_reply_commands[] = {"guest-shutdown", "guest-suspend-disk",
                                                "guest-suspend-ram", "guest-suspend-hybrid", NULL};

typedef struct {
    const char *const *commands;
    const char *key;            /* its switch in [qemu-ga] */
} Restricted;

struct SpForward {
    char *socket;
    gint64 timeout_ms;
    gsize max_reply;
    const SpCommandTable *known;
    gboolean allowed[4];         /* per restricted class, in the order of restricted[] */
    GArray *entries;             /* SpCommand, the forwarded ones, NULL-terminated */
    SpCommandTable table;
    SpForwardReplyFn reply_fn;
    void *data;
    GPtrArray *jobs;             /* Job in flight */
    gint64 next_id;
};

static const Restricted restricted[] = {
    {exec_commands, "allow-exec"},
    {file_commands, "allow-file"},
    {password_commands, "allow-password"},
    {ssh_key_commands, "allow-ssh-keys"},
};

typedef struct {
    SpForward *f;                /* NULL once the forward is freed */
    gint refs;
    guint64 request;
    char *execute;
    SpJson *client_id;           /* the request's "id", echoed */
    gint64 qga_id;
    gboolean no_reply, done;
    GCancellable *cancel;
    GSocketClient *client;
    GSocketConnection *conn;
    SpFramer *framer;
    char *out;
    gsize out_len;
    guint8 buf[SP_FORWARD_READ_CHUNK];
    guint timer;
    guint retry;                 /* the next connection attempt */
} Job;

static int restricted_class(const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(restricted); i++)
        if (g_strv_contains(restricted[i].commands, name))
            return (int)i;
    return -1;
}

/* ---- the table of forwarded commands ---- */

static void add_entry(SpForward *f, const char *name)
{
    SpCommand e = {g_strdup(name), NULL, NULL, 0};

    if (sp_command_find(f->known, name) || sp_command_find(&f->table, name))
        return g_free((char *)e.name); /* never the agent's own (freeze!); once each */
    if (g_strv_contains(no_reply_commands, name))
        e.flags |= SP_CMD_NO_REPLY;
    g_array_insert_val(f->entries, f->entries->len - 1, e);
    f->table.commands = (const SpCommand *)(void *)f->entries->data;
}

static void build_table(SpForward *f, const SpConfig *config)
{
    SpCommand end = {NULL, NULL, NULL, 0};

    f->entries = g_array_new(FALSE, TRUE, sizeof(SpCommand));
    g_array_append_val(f->entries, end);
    f->table.commands = (const SpCommand *)(void *)f->entries->data;
    for (guint i = 0; config->qga_commands && config->qga_commands[i]; i++)
        if (restricted_class(config->qga_commands[i]) < 0)
            add_entry(f, config->qga_commands[i]);
    for (guint i = 0; i < G_N_ELEMENTS(restricted); i++)
        for (guint j = 0; f->allowed[i] && restricted[i].commands[j]; j++)
            add_entry(f, restricted[i].commands[j]);
}

SpForward *sp_forward_new(const SpConfig *config, const SpCommandTable *known,
                          SpForwardReplyFn reply_fn, void *data)
{
    SpForward *f;

    if (!config->qga_socket)
        return NULL;
    f = g_new0(SpForward, 1);
    f->socket = g_strdup(config->qga_socket);
    f->timeout_ms = config->qga_timeout_ms;
    f->max_reply = (gsize)config->qga_max_reply;
    f->known = known;
    f->allowed[0] = config->qga_allow_exec;
    f->allowed[1] = config->qga_allow_file;
    f->allowed[2] = config->qga_allow_password;
    f->allowed[3] = config->qga_allow_ssh_keys;
    f->reply_fn = reply_fn;
    f->data = data;
    f->jobs = g_ptr_array_new();
    f->next_id = g_get_real_time(); /* an id qemu-ga echoes; unique per agent run */
    build_table(f, config);
    return f;
}

const SpCommandTable *sp_forward_commands(const SpForward *f)
{
    return &f->table;
}

/* ---- one forwarded request ---- */

static Job *job_ref(Job *job)
{
    job->refs++;
    return job;
}

static void job_unref(Job *job)
{
    if (--job->refs > 0)
        return;
    if (job->timer)
        g_source_remove(job->timer);
    if (job->retry)
        g_source_remove(job->retry);
    g_clear_object(&job->conn);
    g_clear_object(&job->client);
    g_clear_object(&job->cancel);
    sp_framer_free(job->framer);
    sp_json_free(job->client_id);
    g_free(job->execute);
    g_free(job->out);
    g_free(job);
}

/* Hands the reply on, once; whatever is still in flight is cancelled. */
static void finish(Job *job, SpJson *reply, unsigned flags)
{
    SpForward *f = job->f;

    if (job->done) {
        sp_json_free(reply);
        return;
    }
    job->done = TRUE;
    if (job->timer) {
        g_source_remove(job->timer);
        job->timer = 0;
    }
    if (job->retry) {
        g_source_remove(job->retry);
        job->retry = 0;
    }
    g_cancellable_cancel(job->cancel);
    /* Hang up now, not when the cancelled read has wound down: qemu-ga serves one client at a
     * time, and a connection left open would keep the next request out. */
    if (job->conn)
        g_socket_close(g_socket_connection_get_socket(job->conn), NULL);
    if (f) {
        g_ptr_array_remove(f->jobs, job);
        f->reply_fn(job->request, reply, flags, f->data);
    } else {
        sp_json_free(reply);
    }
    job_unref(job); /* the in-flight reference */
}

static void fail(Job *job, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(Job *job, const char *fmt, ...)
{
    g_autofree char *desc = NULL;
    va_list ap;

    va_start(ap, fmt);
    desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_warning("%s", desc);
    finish(job, sp_reply_new_error(SP_ERROR_CLASS_GENERIC, desc, NULL, job->client_id), 0);
}

/* qemu-ga's reply, with the client's id instead of ours. */
static void answer(Job *job, const SpJson *msg)
{
    const SpJson *ret = NULL, *id = sp_json_object_get(msg, "id");
    const char *klass = NULL, *desc = NULL, *code = NULL;

    if (sp_reply_parse(msg, &ret, &klass, &desc, &code) < 0 ||
        (id && (sp_json_type(id) != SP_JSON_INT || sp_json_get_int(id) != job->qga_id))) {
        fail(job, "qemu-ga answered %s with something that is not its reply", job->execute);
        return;
    }
    if (ret)
        finish(job, sp_reply_new_return(sp_json_copy(ret), job->client_id), 0);
    else
        finish(job, sp_reply_new_error(klass ? klass : SP_ERROR_CLASS_GENERIC, desc ? desc : "",
                                       NULL, job->client_id), 0);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    Job *job = userdata;
    SpJsonLimits limits = {.max_size = job->f ? job->f->max_reply : 0};
    SpJson *msg = NULL;

    if (job->done || frame->kind == SP_FRAME_RESYNC)
        return;
    if (frame->kind == SP_FRAME_ERROR && frame->status == SP_E_TOO_LARGE && job->f)
        fail(job, "qemu-ga's reply to %s is larger than %zu bytes: not passed on (raise "
             "max-reply-bytes in [qemu-ga] of agent.conf)", job->execute, job->f->max_reply);
    else if (frame->kind == SP_FRAME_ERROR ||
             sp_json_parse(frame->data, frame->len, &limits, &msg, NULL) < 0)
        fail(job, "qemu-ga answered %s with something that is not JSON", job->execute);
    else
        answer(job, msg);
    sp_json_free(msg);
}

static void read_cb(GObject *source, GAsyncResult *res, gpointer data);

static void read_next(Job *job)
{
    g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(job->conn)), job->buf,
                              sizeof(job->buf), G_PRIORITY_DEFAULT, job->cancel, read_cb,
                              job_ref(job));
}

static void read_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    Job *job = data;
    g_autoptr(GError) error = NULL;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);

    if (job->done)
        ;
    else if (n < 0)
        fail(job, "reading qemu-ga's reply to %s: %s", job->execute, error->message);
    else if (n == 0 && job->no_reply)
        finish(job, NULL, SP_CMD_NO_REPLY); /* it went, as qemu-ga does on success */
    else if (n == 0)
        fail(job, "qemu-ga closed the connection without answering %s", job->execute);
    else if (sp_framer_feed(job->framer, (const char *)job->buf, (gsize)n, frame_cb, job) < 0)
        fail(job, "out of memory reading qemu-ga's reply to %s", job->execute);
    else if (!job->done)
        read_next(job);
    job_unref(job);
}

static void written_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    Job *job = data;
    g_autoptr(GError) error = NULL;

    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error) &&
        !job->done)
        fail(job, "sending %s to qemu-ga: %s", job->execute, error->message);
    else if (!job->done)
        read_next(job);
    job_unref(job);
}

static void connect_now(Job *job);

static gboolean retry_cb(gpointer data)
{
    Job *job = data;

    job->retry = 0;
    connect_now(job);
    return G_SOURCE_REMOVE;
}

static void connected_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    Job *job = data;
    g_autoptr(GError) error = NULL;

    job->conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);
    if (!job->conn && !job->done &&
        (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
         g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
        job->retry = g_timeout_add(SP_FORWARD_CONNECT_RETRY_MS, retry_cb, job); /* busy */
    else if (!job->conn && !job->done)
        fail(job, "%s is answered by qemu-ga, which does not answer on %s: %s (is "
             "qemu-guest-agent installed and running? see stillpoint-agent(8), FORWARDING)",
             job->execute, job->f ? job->f->socket : "its socket", error->message);
    else if (!job->done)
        g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(job->conn)),
                                        job->out, job->out_len, G_PRIORITY_DEFAULT, job->cancel,
                                        written_cb, job_ref(job));
    job_unref(job);
}

static void connect_now(Job *job)
{
    g_autoptr(GSocketAddress) address = g_unix_socket_address_new(job->f->socket);

    g_socket_client_connect_async(job->client, G_SOCKET_CONNECTABLE(address), job->cancel,
                                  connected_cb, job_ref(job));
}

static gboolean deadline_cb(gpointer data)
{
    Job *job = data;

    job->timer = 0;
    if (job->retry && job->f)
        fail(job, "qemu-ga on %s refused every connection for %s within %" G_GINT64_FORMAT
             " ms (not running, or still busy with an earlier command)", job->f->socket,
             job->execute, job->f->timeout_ms);
    else if (job->no_reply)
        finish(job, NULL, SP_CMD_NO_REPLY);
    else if (job->f)
        fail(job, "qemu-ga did not answer %s within %" G_GINT64_FORMAT " ms ([qemu-ga] "
             "timeout-ms in agent.conf)", job->execute, job->f->timeout_ms);
    return G_SOURCE_REMOVE;
}

/* The request as qemu-ga gets it: the client's arguments, our id. */
static gboolean build_request(Job *job, const SpRequest *req)
{
    SpJson *id = sp_json_new_int(job->qga_id);
    SpJson *msg = sp_request_new(req->execute, req->arguments ? sp_json_copy(req->arguments) : NULL,
                                 id);

    sp_json_free(id);
    job->out = msg ? sp_json_serialize(msg, &job->out_len) : NULL;
    sp_json_free(msg);
    if (!job->out)
        return FALSE;
    job->out[job->out_len++] = '\n'; /* replaces the NUL */
    return TRUE;
}

static void start(SpForward *f, const SpRequest *req, guint64 request)
{
    Job *job = g_new0(Job, 1);
    gint64 wait_ms;

    job->f = f;
    job->refs = 1;
    job->request = request;
    job->execute = g_strdup(req->execute);
    job->client_id = req->id ? sp_json_copy(req->id) : NULL;
    job->qga_id = f->next_id++;
    job->no_reply = g_strv_contains(no_reply_commands, req->execute);
    job->cancel = g_cancellable_new();
    job->framer = sp_framer_new(f->max_reply);
    g_ptr_array_add(f->jobs, job);
    if (!job->framer || !build_request(job, req)) {
        fail(job, "out of memory forwarding %s", job->execute);
        return;
    }
    wait_ms = job->no_reply ? MIN(f->timeout_ms, SP_FORWARD_NO_REPLY_WAIT_MS) : f->timeout_ms;
    job->timer = g_timeout_add((guint)MIN(wait_ms, G_MAXUINT), deadline_cb, job);
    job->client = g_socket_client_new();
    connect_now(job);
}

/* ---- dispatch ---- */

SpForwardResult sp_forward_dispatch(SpForward *f, const SpJson *message, gboolean frozen,
                                    guint64 request, SpJson **ret_reply)
{
    SpRequest req;
    int class;

    *ret_reply = NULL;
    if (!f || sp_request_parse(message, &req, NULL) != SP_OK ||
        strlen(req.execute) != sp_json_get_string_len(sp_json_object_get(message, "execute")))
        return SP_FORWARD_NOT_MINE; /* malformed: the dispatcher says how, as qemu-ga would */
    class = restricted_class(req.execute);
    if (class >= 0 && !f->allowed[class]) {
        /* qemu-ga's class and words for a disabled command, and how to enable it. */
        g_autofree char *desc = g_strdup_printf(
            "Command %s has been disabled: stillpoint-agent forwards it to qemu-ga only with "
            "%s=true in [qemu-ga] of its agent.conf", req.execute, restricted[class].key);
        *ret_reply = sp_reply_new_error(SP_ERROR_CLASS_COMMAND_NOT_FOUND, desc, NULL, req.id);
        return SP_FORWARD_ANSWERED;
    }
    if (!sp_command_find(&f->table, req.execute))
        return SP_FORWARD_NOT_MINE;
    if (frozen) {
        /* qemu-ga's own words for a command refused while frozen. */
        g_autofree char *desc = g_strdup_printf("Command %s has been disabled: the command is "
                                                "not allowed", req.execute);
        *ret_reply = sp_reply_new_error(SP_ERROR_CLASS_COMMAND_NOT_FOUND, desc, NULL, req.id);
        return SP_FORWARD_ANSWERED;
    }
    start(f, &req, request);
    return SP_FORWARD_PENDING;
}

void sp_forward_free(SpForward *f)
{
    if (!f)
        return;
    while (f->jobs->len > 0) {
        Job *job = g_ptr_array_steal_index(f->jobs, f->jobs->len - 1);
        job->f = NULL;
        finish(job, NULL, SP_CMD_NO_REPLY);
    }
    g_ptr_array_unref(f->jobs);
    for (guint i = 0; i + 1 < f->entries->len; i++)
        g_free((char *)g_array_index(f->entries, SpCommand, i).name);
    g_array_unref(f->entries);
    g_free(f->socket);
    g_free(f);
}
