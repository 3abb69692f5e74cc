/* daemon-client: `stillpoint --daemon ...` — the same commands, asked of stillpointd over the
 * system bus (polkit decides), with its Progress signals printed as the CLI prints progress. */
#include "daemon-client.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "stillpoint/channel.h"   /* SpJson autoptr */
#include "stillpoint/store.h"

#define BUS_NAME "org.stillpoint.Coordinator1"
#define OBJECT_PATH "/org/stillpoint/Coordinator1"
#define PROBE_TIMEOUT_MS 1000

typedef struct {
    gboolean json, quiet;
    const char *vm;   /* the VM the command is about: only its Progress is ours */
    GDBusConnection *bus;
    GMainLoop *loop;
    GVariant *reply;
    GError *error;
} Client;

/* ---- calls ---- */

static void progress_cb(GDBusConnection *bus, const char *sender, const char *path,
                        const char *iface, const char *signal, GVariant *params, gpointer data)
{
    Client *c = data;
    const char *vm, *op, *message;
    double percent;

    g_variant_get(params, "(&s&s&sd)", &vm, &op, &message, &percent);
    /* stillpointd sends Progress to its caller only; still, only this command's VM is ours
     * (a group checkpoint names the group). */
    if (c->vm != NULL && !g_str_equal(vm, c->vm))
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
    Client *c = data;
    c->reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &c->error);
    g_main_loop_quit(c->loop);
}

/* Calls method; operations may take long (a merge), polkit may ask for a password. */
static GVariant *call(Client *c, const char *method, GVariant *params, GError **error)
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

/* ---- commands ---- */

typedef struct {
    char *qmp, *agent, *driver, *hook, *overlay_dir, *domain, *uri, *name, *group, *type, *policy, *format, *save;
    char *checkpoint_type;
    gint hook_timeout;
    char **disks;
    gboolean force, subtree;
} Opts;

static void opts_clear(Opts *o)
{
    g_free(o->qmp);
    g_free(o->agent);
    g_free(o->driver);
    g_free(o->hook);
    g_free(o->overlay_dir);
    g_free(o->domain);
    g_free(o->uri);
    g_free(o->name);
    g_free(o->group);
    g_free(o->type);
    g_free(o->policy);
    g_free(o->format);
    g_free(o->save);
    g_free(o->checkpoint_type);
    g_strfreev(o->disks);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Opts, opts_clear)

static gboolean parse(int *argc, char ***argv, Opts *o, Client *c, GError **error)
{
    const GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &c->json, "Print the result as JSON", NULL},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &c->quiet, "Do not print progress", NULL},
        {"qmp", 0, 0, G_OPTION_ARG_FILENAME, &o->qmp, "vm add: QMP socket", "SOCKET"},
        {"agent", 0, 0, G_OPTION_ARG_FILENAME, &o->agent, "vm add: agent socket", "SOCKET"},
        {"driver", 0, 0, G_OPTION_ARG_STRING, &o->driver, "vm add: qemu, libvirt or hook",
         "DRIVER"},
        {"domain", 0, 0, G_OPTION_ARG_STRING, &o->domain, "vm add: libvirt domain", "NAME"},
        {"uri", 0, 0, G_OPTION_ARG_STRING, &o->uri, "vm add: libvirt URI", "URI"},
        {"hook-command", 0, 0, G_OPTION_ARG_STRING, &o->hook, "vm add: hook command", "CMD"},
        {"hook-timeout", 0, 0, G_OPTION_ARG_INT, &o->hook_timeout, "vm add: seconds", "S"},
        {"disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->disks, "vm add: a hook driver's disk",
         "NAME=PATH[,serial=S][,format=F]"},
        {"overlay-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->overlay_dir, "vm add: overlays", "DIR"},
        {"checkpoint-type", 0, 0, G_OPTION_ARG_STRING, &o->checkpoint_type,
         "vm add: production, production-only or standard", "TYPE"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &o->force, "vm remove, checkpoint apply", NULL},
        {"name", 0, 0, G_OPTION_ARG_STRING, &o->name, "create: checkpoint name", "NAME"},
        {"group", 0, 0, G_OPTION_ARG_STRING, &o->group, "create: a consistency group", "GROUP"},
        {"type", 0, 0, G_OPTION_ARG_STRING, &o->type,
         "create: production, production-only, standard or crash",
         "TYPE"},
        {"on-quiesce-failure", 0, 0, G_OPTION_ARG_STRING, &o->policy,
         "create: fail, crash or standard", "P"},
        {"subtree", 0, 0, G_OPTION_ARG_NONE, &o->subtree, "delete: with descendants", NULL},
        {"format", 0, 0, G_OPTION_ARG_STRING, &o->format, "export: qcow2 or raw", "FORMAT"},
        {"save-current", 0, 0, G_OPTION_ARG_STRING, &o->save, "apply: keep the present", "NAME"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GOptionContext) ctx = g_option_context_new("COMMAND ...");

    g_option_context_set_summary(ctx, "stillpoint through stillpointd (see stillpoint --help).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    return g_option_context_parse(ctx, argc, argv, error);
}

static GVariant *dict(GVariantBuilder *b)
{
    return g_variant_builder_end(b);   /* leaves b cleared */
}

static void add_s(GVariantBuilder *b, const char *key, const char *value)
{
    if (value != NULL)
        g_variant_builder_add(b, "{sv}", key, g_variant_new_string(value));
}

static gboolean expect(int argc, int n, const char *what, GError **error)
{
    if (argc == n)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: expected %d argument(s)",
                what, n - 2);
    return FALSE;
}

/* One of the CLI's own JSON documents (render.h) in a reply. */
static SpJson *parse_document(const char *method, const char *text, GError **error)
{
    const SpJsonLimits limits = {.max_size = 256 * 1024 * 1024};
    SpJsonError jerr = {0};
    SpJson *doc = NULL;

    if (text == NULL || sp_json_parse(text, strlen(text), &limits, &doc, &jerr) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "stillpointd's %s reply is not JSON: %s", method,
                    text == NULL ? "no document" : jerr.message);
        return NULL;
    }
    return doc;
}

/* Calls a method whose reply is (s), one of the CLI's documents. */
static SpJson *call_json(Client *c, const char *method, GVariant *params, GError **error)
{
    g_autoptr(GVariant) r = call(c, method, params, error);
    const char *text;

    if (r == NULL)
        return NULL;
    g_variant_get(r, "(&s)", &text);
    return parse_document(method, text, error);
}

/* Calls a method returning a document and prints it with the same function as the CLI working
 * directly. */
static gboolean call_document(Client *c, const char *method, GVariant *params,
                              void (*print)(const SpJson *doc, gboolean json), GError **error)
{
    g_autoptr(SpJson) doc = call_json(c, method, params, error);

    if (doc == NULL)
        return FALSE;
    print(doc, c->json);
    return TRUE;
}

/* Every command prints on stdout what it prints working on the store directly: the same
 * render.h function, from the same document (which stillpointd returns where only it has the
 * data). Commands that print nothing directly print nothing here either. */
static gboolean run(Client *c, const char *group, const char *name, int argc, char **argv,
                    Opts *o, GError **error)
{
    g_autoptr(GVariant) r = NULL;
    g_autoptr(SpJson) doc = NULL;
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

    c->vm = argc > 2 ? argv[2] : NULL;
    if (g_str_equal(group, "vm") && g_str_equal(name, "list")) {
        return expect(argc, 2, "vm list", error) &&
               call_document(c, "ListVmsJson", NULL, sp_cli_print_vm_list, error);
    } else if (g_str_equal(group, "vm") && g_str_equal(name, "disks")) {
        return expect(argc, 3, "vm disks", error) &&
               call_document(c, "VmDisksJson", g_variant_new("(s)", argv[2]),
                             sp_cli_print_vm_disks, error);
    } else if (g_str_equal(group, "vm") && g_str_equal(name, "recover")) {
        if (!expect(argc, 3, "vm recover", error) ||
            (r = call(c, "RecoverVm", g_variant_new("(s)", argv[2]), error)) == NULL)
            return FALSE;
        sp_cli_print_json_event(c->json, "recovered", "vm", argv[2], NULL);
        return TRUE;
    } else if (g_str_equal(group, "vm") && g_str_equal(name, "add")) {
        add_s(&b, "qmp-socket", o->qmp);
        add_s(&b, "agent-socket", o->agent);
        add_s(&b, "driver", o->driver);
        add_s(&b, "hook-command", o->hook);
        if (o->overlay_dir != NULL) {
            /* The daemon does not share our working directory. */
            char *absolute = g_canonicalize_filename(o->overlay_dir, NULL);
            g_free(o->overlay_dir);
            o->overlay_dir = absolute;
        }
        add_s(&b, "overlay-dir", o->overlay_dir);
        add_s(&b, "libvirt-domain", o->domain);
        add_s(&b, "libvirt-uri", o->uri);
        add_s(&b, "checkpoint-type", o->checkpoint_type);
        if (o->hook_timeout > 0)
            g_variant_builder_add(&b, "{sv}", "hook-timeout-ms", g_variant_new_int64(o->hook_timeout * 1000LL));
        if (o->disks != NULL)
            g_variant_builder_add(&b, "{sv}", "disks",
                                  g_variant_new_strv((const char *const *)o->disks, -1));
        return expect(argc, 3, "vm add", error) &&
               call_document(c, "AddVm", g_variant_new("(s@a{sv})", argv[2], dict(&b)),
                             sp_cli_print_vm_added, error);
    } else if (g_str_equal(group, "vm") && g_str_equal(name, "remove")) {
        if (!expect(argc, 3, "vm remove", error) ||
            (r = call(c, "RemoveVm", g_variant_new("(sb)", argv[2], o->force), error)) == NULL)
            return FALSE;
        sp_cli_print_json_event(c->json, "vm-removed", "vm", argv[2], NULL);
        return TRUE;
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "list")) {
        return expect(argc, 3, "checkpoint list", error) &&
               call_document(c, "ListCheckpointsJson", g_variant_new("(s)", argv[2]),
                             sp_cli_print_checkpoint_list, error);
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "create") &&
               o->group != NULL) {
        const char *text = NULL;
        c->vm = o->group; /* the group's Progress is ours */
        add_s(&b, "name", o->name);
        if (!expect(argc, 2, "checkpoint create --group", error) ||
            (r = call(c, "CreateGroupCheckpoint", g_variant_new("(s@a{sv})", o->group, dict(&b)),
                      error)) == NULL)
            return FALSE;
        g_variant_get(r, "(&s)", &text);
        if ((doc = parse_document("CreateGroupCheckpoint", text, error)) == NULL)
            return FALSE;
        sp_cli_print_group_checkpoint(o->group, doc, c->json);
        return TRUE;
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "create")) {
        g_autoptr(GVariant) cp = NULL;
        const char *text = NULL;
        add_s(&b, "name", o->name);
        add_s(&b, "type", o->type);
        add_s(&b, "on-quiesce-failure", o->policy);
        if (!expect(argc, 3, "checkpoint create", error) ||
            (r = call(c, "CreateCheckpoint", g_variant_new("(s@a{sv})", argv[2], dict(&b)), error)) == NULL)
            return FALSE;
        cp = g_variant_get_child_value(r, 0);
        g_variant_lookup(cp, "document", "&s", &text);
        if ((doc = parse_document("CreateCheckpoint", text, error)) == NULL)
            return FALSE;
        sp_cli_print_checkpoint_created(argv[2], doc, c->json);
        return TRUE;
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "delete")) {
        if (!expect(argc, 4, "checkpoint delete", error) ||
            (r = call(c, "DeleteCheckpoint", g_variant_new("(ssb)", argv[2], argv[3], o->subtree), error)) == NULL)
            return FALSE;
        sp_cli_print_checkpoint_deleted(argv[2], argv[3], o->subtree, c->json);
        return TRUE;
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "rename")) {
        if (!expect(argc, 5, "checkpoint rename", error) ||
            (r = call(c, "RenameCheckpoint", g_variant_new("(sss)", argv[2], argv[3], argv[4]),
                      error)) == NULL)
            return FALSE;
        sp_cli_print_json_event(c->json, "renamed", "vm", argv[2], "checkpoint", argv[3], "name",
                                argv[4], NULL);
        return TRUE;
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "export")) {
        g_autofree char *dir = NULL;
        const char *manifest;
        if (!expect(argc, 5, "checkpoint export", error))
            return FALSE;
        /* The daemon does not share our working directory. */
        dir = g_canonicalize_filename(argv[4], NULL);
        if ((r = call(c, "ExportCheckpoint", g_variant_new("(ssss)", argv[2], argv[3], dir,
                                                           o->format ? o->format : ""), error)) == NULL)
            return FALSE;
        g_variant_get(r, "(&s)", &manifest);
        sp_cli_print_checkpoint_exported(argv[2], argv[3], manifest, c->json);
        return TRUE;
    } else if (g_str_equal(group, "checkpoint") && g_str_equal(name, "apply")) {
        add_s(&b, "save-current", o->save);
        if (o->force)
            g_variant_builder_add(&b, "{sv}", "force", g_variant_new_boolean(TRUE));
        if (!expect(argc, 4, "checkpoint apply", error) ||
            (doc = call_json(c, "ApplyCheckpoint", g_variant_new("(ss@a{sv})", argv[2], argv[3], dict(&b)), error)) == NULL)
            return FALSE;
        sp_cli_print_checkpoint_applied(argv[2], doc, c->json);
        return TRUE;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "'%s %s' is not available through stillpointd", group, name);
    return FALSE;
}

static gboolean offered(const char *group, const char *name)
{
    static const char *const commands[] = {
        "vm list", "vm add", "vm remove", "vm disks", "vm recover", "checkpoint list",
        "checkpoint create", "checkpoint delete", "checkpoint rename", "checkpoint export",
        "checkpoint apply", NULL,
    };
    g_autofree char *command = g_strdup_printf("%s %s", group ? group : "", name ? name : "");
    return g_strv_contains(commands, command);
}

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

gboolean sp_daemon_client_try(int argc, char **argv, int *ret_status)
{
    gboolean forced = FALSE, direct = FALSE, store = FALSE, help = FALSE;
    g_autoptr(GPtrArray) rest = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_auto(Opts) o = {0};
    Client c = {0};
    const char *group = NULL, *name = NULL;
    int n;
    char **args;

    for (int i = 1, words = 0; i < argc; i++) {
        /* The group and command: the first two words that are not options. */
        if (argv[i][0] != '-' && words < 2) {
            if (words++ == 0)
                group = argv[i];
            else
                name = argv[i];
        }
        forced |= g_str_equal(argv[i], "--daemon");
        store |= g_str_has_prefix(argv[i], "--store");
        help |= g_str_equal(argv[i], "--help") || g_str_equal(argv[i], "-h");
    }
    if (forced && store) {
        fprintf(stderr, "stillpoint: --daemon and --store exclude each other (the daemon uses "
                        "its own store)\n");
        *ret_status = 2;
        return TRUE;
    }
    /* Help is the CLI's own, daemon or not; --daemon is then only left out. */
    if (help)
        return FALSE;
    direct |= store;
    /* An explicit store ($STILLPOINT_STORE too) means that store, directly. */
    direct |= g_getenv(SP_STORE_ENV) != NULL;
    /* What the daemon does not offer (vm disks, backup, group, ...) stays direct. */
    direct |= !offered(group, name);
    if (direct && !forced)
        return FALSE;
    if (!forced && geteuid() == 0)
        return FALSE;   /* root uses the store directly, as before */
    c.bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, forced ? &error : NULL);
    if (c.bus == NULL || !daemon_reachable(c.bus)) {
        g_clear_object(&c.bus);
        if (!forced)
            return FALSE;
        fprintf(stderr, "stillpoint: --daemon: stillpointd is not running on the system bus%s%s\n",
                error ? ": " : "", error ? error->message : "");
        *ret_status = 1;
        return TRUE;
    }
    g_ptr_array_add(rest, argv[0]);
    for (int i = 1; i < argc; i++)
        if (!g_str_equal(argv[i], "--daemon"))
            g_ptr_array_add(rest, argv[i]);
    g_ptr_array_add(rest, NULL);
    n = (int)rest->len - 1;
    args = (char **)rest->pdata;
    if (!parse(&n, &args, &o, &c, &error) || n < 3) {
        fprintf(stderr, "stillpoint: %s\n", error ? error->message : "no command given");
        *ret_status = 2;
        g_object_unref(c.bus);
        return TRUE;
    }
    group = args[1];
    name = args[2];
    /* Shift so that argv[2] is the first argument after the command, as run() expects. */
    *ret_status = run(&c, group, name, n - 1, args + 1, &o, &error) ? 0 : 1;
    if (*ret_status != 0)
        fprintf(stderr, "stillpoint: %s\n", error->message);
    g_object_unref(c.bus);
    return TRUE;
}
