/* daemon-client: the CLI's way to stillpointd — the system bus connection, calls (polkit
 * decides), stillpointd's Progress signals printed as the CLI prints progress, and the
 * documents in its replies. The commands' D-Bus runners are beside their direct runners. */
#include "daemon-client.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "render.h"
#include "stillpoint/document-variant.h"

#define BUS_NAME "org.stillpoint.Coordinator1"
#define OBJECT_PATH "/org/stillpoint/Coordinator1"
#define PROBE_TIMEOUT_MS 1000

struct SpDaemonClient {
    gboolean json, quiet;
    const char *subject;   /* the VM (or group) the command is about: only its Progress is ours */
    GDBusConnection *bus;
    GMainLoop *loop;
    GVariant *reply;
    GError *error;
};

/* ---- connection ---- */

static GVariant *bus_call(GDBusConnection *bus, const char *method, GVariant *args,
                          const char *reply_type)
{
    return g_dbus_connection_call_sync(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", method, args,
                                       G_VARIANT_TYPE(reply_type), G_DBUS_CALL_FLAGS_NONE,
                                       PROBE_TIMEOUT_MS, NULL, NULL);
}

/* stillpointd runs, or the bus starts it on the first call (its activation file, through
 * systemd). */
static gboolean daemon_reachable(GDBusConnection *bus)
{
    g_autoptr(GVariant) owned = bus_call(bus, "NameHasOwner", g_variant_new("(s)", BUS_NAME),
                                         "(b)");
    g_autoptr(GVariant) activatable = NULL, list = NULL;
    g_autofree const char **names = NULL;
    gboolean has_owner = FALSE;

    if (owned != NULL)
        g_variant_get(owned, "(b)", &has_owner);
    if (has_owner)
        return TRUE;
    if ((activatable = bus_call(bus, "ListActivatableNames", NULL, "(as)")) == NULL)
        return FALSE;
    list = g_variant_get_child_value(activatable, 0);
    names = g_variant_get_strv(list, NULL); /* points into list */
    return g_strv_contains((const char *const *)names, BUS_NAME);
}

SpDaemonClient *sp_daemon_client_new(GError **error)
{
    g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
    SpDaemonClient *c;

    if (bus == NULL || !daemon_reachable(bus))
        return NULL;
    c = g_new0(SpDaemonClient, 1);
    c->bus = g_steal_pointer(&bus);
    return c;
}

void sp_daemon_client_free(SpDaemonClient *c)
{
    if (c == NULL)
        return;
    g_clear_object(&c->bus);
    g_free(c);
}

void sp_daemon_client_set_subject(SpDaemonClient *c, const char *subject)
{
    c->subject = subject;
}

void sp_daemon_client_set_output(SpDaemonClient *c, gboolean json, gboolean quiet)
{
    c->json = json;
    c->quiet = quiet;
}

/* ---- calls ---- */

static void progress_cb(GDBusConnection *bus, const char *sender, const char *path,
                        const char *iface, const char *signal, GVariant *params, gpointer data)
{
    SpDaemonClient *c = data;
    const char *vm, *op, *message;
    double percent;

    /* Only the name's owner reaches us, but an older GLib may not filter by sender: a
     * Progress of another shape is dropped, not read. */
    if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sssd)")))
        return;
    g_variant_get(params, "(&s&s&sd)", &vm, &op, &message, &percent);
    /* stillpointd sends Progress to its caller only; still, only this command's VM is ours
     * (a group checkpoint names the group). */
    if (c->subject != NULL && !g_str_equal(vm, c->subject))
        return;
    /* A percentage is about the disk named in message: as the CLI shows it directly (with
     * --json, a line on stdout). */
    if (percent >= 0)
        sp_cli_print_percent(message, percent, c->json, c->quiet);
    else if (!c->quiet)
        fprintf(stderr, "stillpoint: %s\n", message);
}

static void reply_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    SpDaemonClient *c = data;
    c->reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &c->error);
    g_main_loop_quit(c->loop);
}

GVariant *sp_daemon_call(SpDaemonClient *c, const char *method, GVariant *params, GError **error)
{
    guint sub = g_dbus_connection_signal_subscribe(c->bus, BUS_NAME, BUS_NAME, "Progress",
                                                   OBJECT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                   progress_cb, c, NULL);

    c->loop = g_main_loop_new(NULL, FALSE);
    g_dbus_connection_call(c->bus, BUS_NAME, OBJECT_PATH, BUS_NAME, method, params, NULL,
                           G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, G_MAXINT, NULL,
                           reply_cb, c);
    g_main_loop_run(c->loop);
    g_dbus_connection_signal_unsubscribe(c->bus, sub);
    g_clear_pointer(&c->loop, g_main_loop_unref);
    if (c->reply == NULL) {
        g_dbus_error_strip_remote_error(c->error);
        g_propagate_error(error, c->error);
        c->error = NULL;
        return NULL;
    }
    return g_steal_pointer(&c->reply);
}

/* The reply's first value is one of the CLI's documents as a typed value
 * (document-variant.h): the document itself again, to print with the direct CLI's functions. */
SpJson *sp_daemon_call_json(SpDaemonClient *c, const char *method, GVariant *params,
                            GError **error)
{
    g_autoptr(GVariant) reply = sp_daemon_call(c, method, params, error);
    g_autoptr(GVariant) value = NULL;
    SpJson *doc;

    if (reply == NULL)
        return NULL;
    if (g_variant_n_children(reply) < 1) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "stillpointd's %s reply holds no document", method);
        return NULL;
    }
    value = g_variant_get_child_value(reply, 0);
    if ((doc = sp_document_from_variant(value, error)) == NULL)
        g_prefix_error(error, "stillpointd's %s reply: ", method);
    return doc;
}

gboolean sp_daemon_call_document(SpDaemonClient *c, const char *method, GVariant *params,
                                 void (*print)(const SpJson *doc, gboolean json), GError **error)
{
    g_autoptr(SpJson) doc = sp_daemon_call_json(c, method, params, error);

    if (doc == NULL)
        return FALSE;
    print(doc, c->json);
    return TRUE;
}

gboolean sp_daemon_query(SpDaemonClient *c, int argc, char **argv, int n, const char *what,
                         const char *method, void (*print)(const SpJson *doc, gboolean json),
                         GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_TUPLE);

    if (!sp_daemon_expect(argc, n, what, error))
        return FALSE;
    for (int i = 1; i < argc; i++)
        g_variant_builder_add(&b, "s", argv[i]);
    return sp_daemon_call_document(c, method, argc > 1 ? g_variant_builder_end(&b) : NULL, print,
                                   error);
}

/* ---- parameters ---- */

/* argc counts the program: n - 1 arguments. */
gboolean sp_daemon_expect(int argc, int n, const char *what, GError **error)
{
    if (argc == n)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: expected %d argument(s)",
                what, n - 1);
    return FALSE;
}

void sp_daemon_add_string(GVariantBuilder *b, const char *key, const char *value)
{
    if (value != NULL)
        g_variant_builder_add(b, "{sv}", key, g_variant_new_string(value));
}
