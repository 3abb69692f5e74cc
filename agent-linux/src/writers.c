/* writers: the registry of application writers and the rounds of calls to them. Incoming
 * registrations are served on the main loop; the rounds run on a private main context, so a
 * freeze never re-enters the agent's command dispatch while it waits for writers. */
#include "writers.h"

#include <stdlib.h>
#include <string.h>
#include "sp-agent1-generated.h"

G_DEFINE_QUARK(sp-writers-error-quark, sp_writers_error)

#define SP_WRITERS_KEEPALIVE_MS 250
/* Without a bus (the agent started before dbus-daemon, or it restarted), try again this often. */
#define SP_WRITERS_RETRY_S 5
/* Where GDBus finds the system bus when DBUS_SYSTEM_BUS_ADDRESS is not set. */
#define SP_WRITERS_DEFAULT_BUS_SOCKET "/var/run/dbus/system_bus_socket"
#define SP_WRITERS_ERROR_PREFIX "org.stillpoint.Agent1.Error."

typedef struct {
    char *name;
    char *owner;            /* unique bus name of the registering connection */
    char *path;
    guint watch;            /* name watch on owner */
} Registration;

/* A writer taking part in one freeze: a copy, so that one unregistered mid-freeze is still
 * told Thaw. */
typedef struct {
    char *name, *owner, *path;
    SpWriterReport report;
    guint *pending;
    gint64 started_us;
    gboolean thawing;
    /* It left the bus between Freeze and answering Thaw: what it held while frozen is not known
     * to have held (seen by the name watch, or by its Thaw call). */
    gboolean left_while_frozen;
} Participant;

struct SpWriters {
    gint64 timeout_ms;
    gboolean abort_on_failure;
    guint owner_id;
    guint retry_id;
    gboolean off_logged;    /* "writers are off" said once per outage */
    GDBusConnection *bus;
    SpAgent1 *skeleton;
    GPtrArray *registry;    /* Registration, in registration order */
    GPtrArray *round;       /* Participant of the current or last freeze */
    gboolean holding;       /* the round's writers are frozen: between Freeze and Thaw */
    void (*keepalive)(void *data);
    void *keepalive_data;
};

static void registration_free(Registration *r)
{
    if (r->watch)
        g_bus_unwatch_name(r->watch);
    g_free(r->name);
    g_free(r->owner);
    g_free(r->path);
    g_free(r);
}

static void participant_free(Participant *p)
{
    g_free(p->name);
    g_free(p->owner);
    g_free(p->path);
    g_free(p->report.message);
    g_free(p->report.thaw_message);
    g_free(p);
}

static Registration *find(SpWriters *w, const char *name, guint *ret_index)
{
    for (guint i = 0; i < w->registry->len; i++) {
        Registration *r = w->registry->pdata[i];
        if (strcmp(r->name, name) == 0) {
            if (ret_index)
                *ret_index = i;
            return r;
        }
    }
    return NULL;
}

/* ---- the registry (main loop) ---- */

typedef struct {
    SpWriters *w;
    char *owner;
} VanishData;

static void vanish_data_free(VanishData *v)
{
    g_free(v->owner);
    g_free(v);
}

/* A writer that crashed (or left) while it held its application frozen. */
static void participant_left(Participant *p)
{
    p->left_while_frozen = TRUE;
    p->report.result = "vanished";
    g_free(p->report.message);
    p->report.message = g_strdup("left the bus before it answered Thaw");
    g_warning("writer %s left the bus before it answered Thaw: this freeze is not consistent",
              p->name);
}

/* Like fwupd's client list: a connection that leaves the bus takes its writers with it. */
static void owner_vanished_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    VanishData *v = data;
    SpWriters *w = v->w;
    g_autofree char *owner = g_strdup(v->owner);  /* v dies with the last watch removed */

    for (guint i = w->registry->len; i > 0; i--) {
        Registration *r = w->registry->pdata[i - 1];
        if (strcmp(r->owner, owner) == 0) {
            g_message("writer %s (%s) left the bus: forgotten", r->name, owner);
            g_ptr_array_remove_index(w->registry, i - 1);
        }
    }
    for (guint i = 0; w->holding && i < w->round->len; i++) {
        Participant *p = w->round->pdata[i];
        if (strcmp(p->owner, owner) == 0 && !p->left_while_frozen)
            participant_left(p);
    }
}

static gboolean valid_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > SP_WRITERS_NAME_MAX)
        return FALSE;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(name[i]) && !strchr("._-", name[i]))
            return FALSE;
    return TRUE;
}

static gboolean handle_register_cb(SpAgent1 *skeleton, GDBusMethodInvocation *inv,
                                   const char *name, const char *path, gpointer data)
{
    SpWriters *w = data;
    const char *sender = g_dbus_method_invocation_get_sender(inv);
    Registration *r = find(w, name, NULL);
    VanishData *v;

    if (!valid_name(name)) {
        g_dbus_method_invocation_return_dbus_error(inv, SP_WRITERS_ERROR_PREFIX "InvalidArgs",
            "a writer name is 1 to 64 characters of A-Z a-z 0-9 . _ -");
        return TRUE;
    }
    if (r && g_strcmp0(r->owner, sender) != 0) {
        g_dbus_method_invocation_return_dbus_error(inv, SP_WRITERS_ERROR_PREFIX "NameTaken",
            "writer name is registered by another connection; choose another name");
        return TRUE;
    }
    if (r) {
        g_free(r->path);
        r->path = g_strdup(path);
    } else {
        if (w->registry->len >= SP_WRITERS_MAX) {
            g_dbus_method_invocation_return_dbus_error(inv, SP_WRITERS_ERROR_PREFIX "TooMany",
                "the agent already has 64 writers registered");
            return TRUE;
        }
        r = g_new0(Registration, 1);
        r->name = g_strdup(name);
        r->owner = g_strdup(sender);
        r->path = g_strdup(path);
        v = g_new0(VanishData, 1);
        v->w = w;
        v->owner = g_strdup(sender);
        r->watch = g_bus_watch_name_on_connection(w->bus, sender, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                  NULL, owner_vanished_cb, v,
                                                  (GDestroyNotify)vanish_data_free);
        g_ptr_array_add(w->registry, r);
    }
    g_message("writer %s registered by %s at %s", name, sender, path);
    sp_agent1_complete_register_writer(skeleton, inv);
    return TRUE;
}

static gboolean handle_unregister_cb(SpAgent1 *skeleton, GDBusMethodInvocation *inv,
                                     const char *name, gpointer data)
{
    SpWriters *w = data;
    guint index;
    Registration *r = find(w, name, &index);

    if (!r || g_strcmp0(r->owner, g_dbus_method_invocation_get_sender(inv)) != 0) {
        g_dbus_method_invocation_return_dbus_error(inv, SP_WRITERS_ERROR_PREFIX "NotRegistered",
            "this connection has no writer of that name");
        return TRUE;
    }
    g_message("writer %s unregistered", name);
    g_ptr_array_remove_index(w->registry, index);
    sp_agent1_complete_unregister_writer(skeleton, inv);
    return TRUE;
}

static gboolean handle_list_cb(SpAgent1 *skeleton, GDBusMethodInvocation *inv, gpointer data)
{
    SpWriters *w = data;
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE("a(sso)"));
    for (guint i = 0; i < w->registry->len; i++) {
        Registration *r = w->registry->pdata[i];
        g_variant_builder_add(&b, "(sso)", r->name, r->owner, r->path);
    }
    sp_agent1_complete_list_writers(skeleton, inv, g_variant_builder_end(&b));
    return TRUE;
}

/* ---- the bus name ---- */

static void bus_acquired_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    SpWriters *w = data;
    g_autoptr(GError) error = NULL;

    /* A restarted dbus-daemon must not take the agent down with it (GDBus's default). */
    g_dbus_connection_set_exit_on_close(bus, FALSE);
    g_set_object(&w->bus, bus);
    if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(w->skeleton), bus,
                                          SP_WRITERS_OBJECT_PATH, &error))
        g_warning("cannot export %s: %s", SP_WRITERS_OBJECT_PATH, error->message);
}

static void name_acquired_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    SpWriters *w = data;

    w->off_logged = FALSE;
    g_message("application writers: serving %s on the system bus", name);
}

static void own_name(SpWriters *w);
static void start(SpWriters *w);

static gboolean retry_cb(gpointer data)
{
    SpWriters *w = data;

    w->retry_id = 0;
    if (w->owner_id)
        g_bus_unown_name(w->owner_id);
    w->owner_id = 0;
    start(w);
    return G_SOURCE_REMOVE;
}

static void name_lost_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    SpWriters *w = data;

    if (!w->off_logged && !bus)
        g_message("no system bus: application writers are off until one runs");
    else if (!w->off_logged)
        g_warning("lost or could not own %s on the system bus (the bus restarted, another agent, "
                  "or the bus policy org.stillpoint.Agent1.conf is not installed): application "
                  "writers are off until it can be owned", name);
    w->off_logged = TRUE;
    /* GDBus does not reconnect by itself. */
    if (w->retry_id == 0)
        w->retry_id = g_timeout_add_seconds(SP_WRITERS_RETRY_S, retry_cb, w);
    /* Whoever registered can no longer be told anything through us. */
    g_ptr_array_set_size(w->registry, 0);
    if (w->bus && g_dbus_interface_skeleton_has_connection(G_DBUS_INTERFACE_SKELETON(w->skeleton), w->bus))
        g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(w->skeleton));
    g_clear_object(&w->bus);
}

SpWriters *sp_writers_new(gint64 timeout_ms, gboolean abort_on_failure)
{
    SpWriters *w = g_new0(SpWriters, 1);

    w->timeout_ms = timeout_ms;
    w->abort_on_failure = abort_on_failure;
    w->registry = g_ptr_array_new_with_free_func((GDestroyNotify)registration_free);
    w->round = g_ptr_array_new_with_free_func((GDestroyNotify)participant_free);
    start(w);
    return w;
}

/* Whether a system bus may be running: the socket GDBus would connect to exists. TRUE too when
 * the address names no socket file (abstract socket, tcp, ...): then only GDBus can tell. */
static gboolean bus_may_run(void)
{
    const char *address = g_getenv("DBUS_SYSTEM_BUS_ADDRESS");
    g_auto(GStrv) entries = NULL;

    if (!address || !*address)
        return g_file_test(SP_WRITERS_DEFAULT_BUS_SOCKET, G_FILE_TEST_EXISTS);
    /* "unix:path=/run/dbus/system_bus_socket;unix:abstract=..." — GDBus tries each in turn. */
    entries = g_strsplit(address, ";", -1);
    for (guint i = 0; entries[i]; i++) {
        const char *path = NULL;
        g_auto(GStrv) keys = NULL;
        g_autofree char *file = NULL;

        if (!*entries[i])
            continue;
        if (!g_str_has_prefix(entries[i], "unix:"))
            return TRUE;
        keys = g_strsplit(entries[i] + strlen("unix:"), ",", -1);
        for (guint k = 0; keys[k] && !path; k++)
            if (g_str_has_prefix(keys[k], "path="))
                path = keys[k] + strlen("path=");
        if (!path)
            return TRUE;
        file = g_uri_unescape_string(path, NULL);
        if (!file || g_file_test(file, G_FILE_TEST_EXISTS))
            return TRUE;
    }
    return FALSE;
}

/* Own the bus name when a bus may run; otherwise look again on the timer, without GDBus: a
 * connection attempt would start GDBus's worker thread and keep its state for nothing. */
static void start(SpWriters *w)
{
    if (bus_may_run()) {
        own_name(w);
        return;
    }
    if (!w->off_logged)
        g_message("no system bus: application writers are off until one runs");
    w->off_logged = TRUE;
    if (w->retry_id == 0)
        w->retry_id = g_timeout_add_seconds(SP_WRITERS_RETRY_S, retry_cb, w);
}

static void own_name(SpWriters *w)
{
    if (!w->skeleton) {
        w->skeleton = sp_agent1_skeleton_new();
        g_signal_connect(w->skeleton, "handle-register-writer", G_CALLBACK(handle_register_cb), w);
        g_signal_connect(w->skeleton, "handle-unregister-writer", G_CALLBACK(handle_unregister_cb),
                         w);
        g_signal_connect(w->skeleton, "handle-list-writers", G_CALLBACK(handle_list_cb), w);
    }
    w->owner_id = g_bus_own_name(G_BUS_TYPE_SYSTEM, SP_WRITERS_BUS_NAME,
                                 G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, bus_acquired_cb,
                                 name_acquired_cb, name_lost_cb, w, NULL);
}

void sp_writers_free(SpWriters *w)
{
    if (!w)
        return;
    if (w->retry_id)
        g_source_remove(w->retry_id);
    if (w->owner_id)
        g_bus_unown_name(w->owner_id);
    g_ptr_array_unref(w->registry);
    g_ptr_array_unref(w->round);
    if (w->bus && g_dbus_interface_skeleton_has_connection(G_DBUS_INTERFACE_SKELETON(w->skeleton), w->bus))
        g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(w->skeleton));
    g_clear_object(&w->skeleton);
    g_clear_object(&w->bus);
    g_free(w);
}

void sp_writers_set_keepalive(SpWriters *w, void (*fn)(void *data), void *data)
{
    w->keepalive = fn;
    w->keepalive_data = data;
}

guint sp_writers_count(const SpWriters *w)
{
    return w->registry->len;
}

/* ---- rounds of calls (private main context) ---- */

static const char *classify(const GError *e)
{
    if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
        g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return "timeout";
    /* The bus answers NoReply for us when the writer disconnects with our call pending. */
    if (g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
        g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
        g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
        g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CLOSED))
        return "vanished";
    return "failed";
}

static void call_done_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    Participant *p = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    const char *result = reply ? "ok" : classify(error);
    char *message = NULL;

    if (error) {
        g_dbus_error_strip_remote_error(error);
        message = g_strdup(error->message);
    }
    /* Thaw found it gone, or it left with the call pending. Which came first, its crash or the
     * host's snapshot, the agent cannot know: the freeze is reported as not consistent. */
    if (p->thawing && !p->left_while_frozen && g_strcmp0(p->report.result, "ok") == 0 &&
        g_str_equal(result, "vanished"))
        participant_left(p);
    if (p->thawing) {
        p->report.thaw_result = result;
        g_free(p->report.thaw_message);
        p->report.thaw_message = message;
    } else {
        p->report.result = result;
        g_free(p->report.message);
        p->report.message = message;
        p->report.ms = (g_get_monotonic_time() - p->started_us) / 1000;
    }
    (*p->pending)--;
}

static gboolean wake_cb(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

/* Call method on every participant selected, concurrently, and wait for all answers. GDBus
 * times each call out after timeout_ms; the cancellable is a backstop a little later. */
static void run_round(SpWriters *w, const char *method, GVariant *params, gboolean thawing,
                      gboolean (*select)(const Participant *p))
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GSource) wake = g_timeout_source_new(SP_WRITERS_KEEPALIVE_MS);
    gint64 backstop_us = g_get_monotonic_time() + (w->timeout_ms + 1000) * 1000;
    guint pending = 0;

    g_variant_ref_sink(params);
    g_main_context_push_thread_default(ctx);
    g_source_set_callback(wake, wake_cb, NULL, NULL);
    g_source_attach(wake, ctx);
    for (guint i = 0; w->bus && i < w->round->len; i++) {
        Participant *p = w->round->pdata[i];
        if (!select(p))
            continue;
        p->pending = &pending;
        p->thawing = thawing;
        p->started_us = g_get_monotonic_time();
        if (!thawing)
            p->report.phase = g_str_equal(method, "Prepare") ? "prepare" : "freeze";
        pending++;
        g_dbus_connection_call(w->bus, p->owner, p->path, SP_WRITERS_WRITER_INTERFACE, method,
                               params, G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NO_AUTO_START,
                               (int)w->timeout_ms, cancel, call_done_cb, p);
    }
    while (pending > 0) {
        if (w->keepalive)
            w->keepalive(w->keepalive_data);
        if (g_get_monotonic_time() > backstop_us)
            g_cancellable_cancel(cancel);
        g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(wake);
    g_main_context_pop_thread_default(ctx);
    g_variant_unref(params);
}

static gboolean select_all(const Participant *p)
{
    return TRUE;
}

static gboolean select_prepared(const Participant *p)
{
    return g_str_equal(p->report.result, "ok");
}

/* The first failure of the round, as an error naming the writer. */
static gboolean round_ok(SpWriters *w, GError **error)
{
    for (guint i = 0; i < w->round->len; i++) {
        Participant *p = w->round->pdata[i];
        if (g_str_equal(p->report.result, "ok"))
            continue;
        if (g_str_equal(p->report.result, "timeout"))
            g_set_error(error, SP_WRITERS_ERROR, SP_WRITERS_ERROR_FAILED,
                        "writer %s did not answer %s within %" G_GINT64_FORMAT " ms", p->name,
                        p->report.phase, w->timeout_ms);
        else if (g_str_equal(p->report.result, "vanished"))
            g_set_error(error, SP_WRITERS_ERROR, SP_WRITERS_ERROR_FAILED,
                        "writer %s left the bus during %s", p->name, p->report.phase);
        else
            g_set_error(error, SP_WRITERS_ERROR, SP_WRITERS_ERROR_FAILED, "writer %s failed %s: %s",
                        p->name, p->report.phase, p->report.message);
        return FALSE;
    }
    return TRUE;
}

static void warn_failures(SpWriters *w)
{
    g_autoptr(GError) e = NULL;
    if (!round_ok(w, &e))
        g_warning("%s; going on without it ([writers] on-failure=continue)", e->message);
}

gboolean sp_writers_freeze(SpWriters *w, gint64 epoch, GError **error)
{
    g_ptr_array_set_size(w->round, 0);
    for (guint i = 0; i < w->registry->len; i++) {
        Registration *r = w->registry->pdata[i];
        Participant *p = g_new0(Participant, 1);
        p->name = g_strdup(r->name);
        p->owner = g_strdup(r->owner);
        p->path = g_strdup(r->path);
        p->report.result = "ok";
        g_ptr_array_add(w->round, p);
    }
    if (w->round->len == 0)
        return TRUE;
    run_round(w, "Prepare", g_variant_new("(tu)", (guint64)epoch, (guint32)w->timeout_ms), FALSE,
              select_all);
    if (w->abort_on_failure && !round_ok(w, error))
        goto abort;
    run_round(w, "Freeze", g_variant_new("(tu)", (guint64)epoch, (guint32)w->timeout_ms), FALSE,
              select_prepared);
    if (w->abort_on_failure && !round_ok(w, error))
        goto abort;
    if (!w->abort_on_failure)
        warn_failures(w);
    w->holding = TRUE;
    return TRUE;
abort:
    sp_writers_thaw(w, epoch, "aborted", FALSE);
    return FALSE;
}

void sp_writers_thaw(SpWriters *w, gint64 epoch, const char *reason, gboolean consistent)
{
    if (w->round->len == 0)
        return;
    w->holding = FALSE;
    run_round(w, "Thaw", g_variant_new("(tsbu)", (guint64)epoch, reason, consistent,
                                       (guint32)w->timeout_ms), TRUE, select_all);
    for (guint i = 0; i < w->round->len; i++) {
        Participant *p = w->round->pdata[i];
        if (p->report.thaw_result && !g_str_equal(p->report.thaw_result, "ok"))
            g_warning("writer %s: Thaw %s%s%s", p->name, p->report.thaw_result,
                      p->report.thaw_message ? ": " : "",
                      p->report.thaw_message ? p->report.thaw_message : "");
    }
}

const char *sp_writers_left_while_frozen(const SpWriters *w)
{
    for (guint i = 0; i < w->round->len; i++) {
        const Participant *p = w->round->pdata[i];
        if (p->left_while_frozen)
            return p->name;
    }
    return NULL;
}

SpWriterReport *sp_writers_reports(const SpWriters *w, size_t *ret_n)
{
    SpWriterReport *out = calloc(w->round->len + 1, sizeof(*out));

    for (guint i = 0; out && i < w->round->len; i++) {
        const Participant *p = w->round->pdata[i];
        out[i] = p->report;
        out[i].name = g_strdup(p->name);
        out[i].message = g_strdup(p->report.message);
        out[i].thaw_message = g_strdup(p->report.thaw_message);
    }
    *ret_n = out ? w->round->len : 0;
    return out;
}
