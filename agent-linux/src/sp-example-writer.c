/* sp-example-writer: an example application writer for stillpoint-agent. It keeps a SQLite
 * database consistent in checkpoints: on Freeze it checkpoints the database to its main file
 * and takes the write lock (BEGIN IMMEDIATE), so no other process can change it while the
 * guest is frozen; on Thaw it records the freeze in the database and lets go.
 * See README "Writing an application writer". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <sqlite3.h>
#include "sp-agent1-generated.h"

#define AGENT_NAME "org.stillpoint.Agent1"
#define AGENT_PATH "/org/stillpoint/Agent1"
#define WRITER_PATH "/org/stillpoint/ExampleWriter"
#define REGISTER_TIMEOUT_MS 5000
/* Never hold the lock longer than this without a Thaw (the agent died, or forgot us). */
#define HOLD_MAX_MS_DEFAULT 120000

typedef struct {
    char *database;
    char *name;
    char *log_path;
    char *fail_in;     /* testing: answer this phase with an error */
    char *exit_in;     /* testing: exit (as a crash would) in this phase, without answering */
    char *delay_in;    /* testing: answer this phase only after delay_ms */
    int delay_ms;
    int hold_max_ms;
    int ready_fd;
} Options;

typedef struct {
    Options o;
    GMainLoop *loop;
    GDBusConnection *bus;
    SpWriter1 *skeleton;
    sqlite3 *db;
    gboolean holding;
    guint hold_timer;
    FILE *log;
    guint seq;
    int status;        /* exit status */
} Writer;

/* One line per call, "SEQ PHASE EPOCH MONOTONIC_US [DETAIL]": the tests check the order. The
 * log must not live on a filesystem the agent freezes. */
static void log_event(Writer *w, const char *phase, guint64 epoch, const char *detail)
{
    if (!w->log)
        return;
    fprintf(w->log, "%u %s %" G_GUINT64_FORMAT " %" G_GINT64_FORMAT "%s%s\n", ++w->seq, phase,
            epoch, g_get_monotonic_time(), detail ? " " : "", detail ? detail : "");
    fflush(w->log);
}

static gboolean exec_sql(Writer *w, const char *sql, GError **error)
{
    char *msg = NULL;

    if (sqlite3_exec(w->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s: %s", w->o.database, sql,
                    msg ? msg : sqlite3_errmsg(w->db));
        sqlite3_free(msg);
        return FALSE;
    }
    return TRUE;
}

static void release(Writer *w, const char *why)
{
    g_autoptr(GError) error = NULL;

    if (!w->holding)
        return;
    if (!exec_sql(w, "COMMIT", &error))
        g_warning("%s", error->message);
    w->holding = FALSE;
    g_clear_handle_id(&w->hold_timer, g_source_remove);
    g_message("released %s (%s)", w->o.database, why);
}

static gboolean hold_expired_cb(gpointer data)
{
    Writer *w = data;
    w->hold_timer = 0;
    release(w, "no Thaw within the hold limit");
    return G_SOURCE_REMOVE;
}

/* Testing knobs: crash, fail, or answer late. Returns TRUE when the call was answered here. */
static gboolean misbehave(Writer *w, const char *phase, GDBusMethodInvocation *inv)
{
    if (g_strcmp0(w->o.exit_in, phase) == 0) {
        log_event(w, "exit", 0, phase);
        _exit(3);
    }
    if (g_strcmp0(w->o.fail_in, phase) == 0) {
        g_dbus_method_invocation_return_dbus_error(inv, "org.stillpoint.ExampleWriter.Error.Failed",
                                                   "failing on purpose (--fail-in)");
        return TRUE;
    }
    if (g_strcmp0(w->o.delay_in, phase) == 0)
        g_usleep((gulong)w->o.delay_ms * 1000);
    return FALSE;
}

static gboolean handle_prepare_cb(SpWriter1 *s, GDBusMethodInvocation *inv, guint64 epoch,
                                  guint timeout_ms, gpointer data)
{
    Writer *w = data;

    log_event(w, "prepare", epoch, NULL);
    if (misbehave(w, "prepare", inv))
        return TRUE;
    sp_writer1_complete_prepare(s, inv);
    return TRUE;
}

/* Everything that writes happens here, before the filesystems are frozen: afterwards any
 * write would block until the thaw. */
static gboolean handle_freeze_cb(SpWriter1 *s, GDBusMethodInvocation *inv, guint64 epoch,
                                 guint timeout_ms, gpointer data)
{
    Writer *w = data;
    g_autoptr(GError) error = NULL;

    if (misbehave(w, "freeze", inv))
        return TRUE;
    release(w, "a new freeze");
    /* In WAL mode move the log into the database file; a no-op otherwise. Then hold the write
     * lock: other connections get SQLITE_BUSY until the thaw. */
    if (!exec_sql(w, "PRAGMA wal_checkpoint(TRUNCATE)", &error) ||
        !exec_sql(w, "BEGIN IMMEDIATE", &error)) {
        g_dbus_method_invocation_return_gerror(inv, error);
        return TRUE;
    }
    w->holding = TRUE;
    w->hold_timer = g_timeout_add((guint)w->o.hold_max_ms, hold_expired_cb, w);
    log_event(w, "freeze", epoch, NULL);
    sp_writer1_complete_freeze(s, inv);
    return TRUE;
}

static gboolean handle_thaw_cb(SpWriter1 *s, GDBusMethodInvocation *inv, guint64 epoch,
                               const char *reason, gboolean consistent, guint timeout_ms,
                               gpointer data)
{
    Writer *w = data;
    g_autofree char *detail = g_strdup_printf("%s %s", reason, consistent ? "consistent" : "inconsistent");
    g_autoptr(GError) error = NULL;
    g_autofree char *sql = NULL;

    log_event(w, "thaw", epoch, detail);
    if (misbehave(w, "thaw", inv))
        return TRUE;
    /* The disks are writable again: record the freeze inside the held transaction. */
    if (w->holding) {
        sql = sqlite3_mprintf("INSERT INTO stillpoint_freezes(epoch, reason, consistent) "
                              "VALUES (%lld, %Q, %d)", (long long)epoch, reason, consistent ? 1 : 0);
        if (!exec_sql(w, sql, &error))
            g_warning("%s", error->message);
        sqlite3_free(g_steal_pointer(&sql));
    }
    release(w, reason);
    sp_writer1_complete_thaw(s, inv);
    return TRUE;
}

static void registered_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    Writer *w = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

    if (!r) {
        g_dbus_error_strip_remote_error(error);
        g_printerr("sp-example-writer: cannot register writer %s with %s: %s\n", w->o.name,
                   AGENT_NAME, error->message);
        w->status = 1;
        g_main_loop_quit(w->loop);
        return;
    }
    g_message("registered as writer %s", w->o.name);
    if (w->o.ready_fd > 0) {
        if (write(w->o.ready_fd, "READY\n", 6) != 6)
            g_warning("--ready-fd: %s", g_strerror(errno));
        close(w->o.ready_fd);
        w->o.ready_fd = 0;
    }
}

/* The agent (re)appeared: (re)register — a restarted agent has forgotten everyone. */
static void agent_appeared_cb(GDBusConnection *bus, const char *name, const char *owner, gpointer data)
{
    Writer *w = data;

    g_dbus_connection_call(bus, AGENT_NAME, AGENT_PATH, AGENT_NAME, "RegisterWriter",
                           g_variant_new("(so)", w->o.name, WRITER_PATH), NULL,
                           G_DBUS_CALL_FLAGS_NONE, REGISTER_TIMEOUT_MS, NULL, registered_cb, w);
}

/* The agent left: nobody will tell us to thaw, so let go now. */
static void agent_vanished_cb(GDBusConnection *bus, const char *name, gpointer data)
{
    release(data, "the agent left the bus");
}

/* Stopping: let go of the database and say goodbye, so the agent stops calling us. */
static gboolean terminate_cb(gpointer data)
{
    Writer *w = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) r = NULL;

    release(w, "stopping");
    r = g_dbus_connection_call_sync(w->bus, AGENT_NAME, AGENT_PATH, AGENT_NAME, "UnregisterWriter",
                                    g_variant_new("(s)", w->o.name), NULL, G_DBUS_CALL_FLAGS_NONE,
                                    REGISTER_TIMEOUT_MS, NULL, &error);
    if (!r)
        g_message("could not unregister %s: %s", w->o.name, error->message);
    log_event(w, "unregistered", 0, NULL);
    w->status = 0;
    g_main_loop_quit(w->loop);
    return G_SOURCE_REMOVE;
}

static gboolean open_database(Writer *w, GError **error)
{
    if (sqlite3_open_v2(w->o.database, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot open database %s: %s",
                    w->o.database, sqlite3_errmsg(w->db));
        return FALSE;
    }
    return exec_sql(w, "CREATE TABLE IF NOT EXISTS stillpoint_freezes(epoch INTEGER, reason TEXT, "
                    "consistent INTEGER, at TEXT DEFAULT CURRENT_TIMESTAMP)", error);
}

static void options_clear(Options *o)
{
    g_free(o->database);
    g_free(o->name);
    g_free(o->log_path);
    g_free(o->fail_in);
    g_free(o->exit_in);
    g_free(o->delay_in);
}

/* Everything main() set up, on every exit path. */
static void writer_clear(Writer *w)
{
    if (w->db)
        sqlite3_close(w->db);
    g_clear_object(&w->skeleton);
    g_clear_object(&w->bus);
    g_clear_pointer(&w->loop, g_main_loop_unref);
    if (w->log)
        fclose(w->log);
    options_clear(&w->o);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Writer, writer_clear)

static gboolean parse_options(int *argc, char ***argv, Options *o, GError **error)
{
    const GOptionEntry entries[] = {
        {"database", 'd', 0, G_OPTION_ARG_FILENAME, &o->database, "The SQLite database to hold", "PATH"},
        {"name", 'n', 0, G_OPTION_ARG_STRING, &o->name, "Writer name (default sqlite-example)", "NAME"},
        {"log", 'l', 0, G_OPTION_ARG_FILENAME, &o->log_path, "Record every call in this file "
         "(not on a filesystem that is frozen)", "FILE"},
        {"hold-max-ms", 0, 0, G_OPTION_ARG_INT, &o->hold_max_ms, "Release the database after this "
         "long without a Thaw (default 120000)", "MS"},
        {"ready-fd", 0, 0, G_OPTION_ARG_INT, &o->ready_fd, "Write READY here once registered", "FD"},
#ifdef SP_TEST_HOOKS
        /* The suite's fault injection (a writer that fails, crashes or is slow in a phase):
         * compiled into test builds only, never into what is installed. */
        {"fail-in", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &o->fail_in, "Testing", "PHASE"},
        {"exit-in", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &o->exit_in, "Testing", "PHASE"},
        {"delay-in", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &o->delay_in, "Testing", "PHASE"},
        {"delay-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &o->delay_ms, "Testing", "MS"},
#endif
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);

    g_option_context_set_summary(ctx, "An example stillpoint application writer: holds a SQLite "
                                 "database's writes while the guest is frozen.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, argc, argv, error))
        return FALSE;
    if (!o->database) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--database is required");
        return FALSE;
    }
    if (!o->name)
        o->name = g_strdup("sqlite-example");
    if (o->hold_max_ms <= 0)
        o->hold_max_ms = HOLD_MAX_MS_DEFAULT;
    return TRUE;
}

int main(int argc, char **argv)
{
    g_auto(Writer) w = {0};
    g_autoptr(GError) error = NULL;
    guint watch;

    if (!parse_options(&argc, &argv, &w.o, &error)) {
        g_printerr("sp-example-writer: %s (try --help)\n", error->message);
        return 2;
    }
    if (w.o.log_path && !(w.log = fopen(w.o.log_path, "ae"))) {
        g_printerr("sp-example-writer: cannot open %s: %s\n", w.o.log_path, g_strerror(errno));
        return 1;
    }
    if (!open_database(&w, &error) ||
        !(w.bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error))) {
        g_printerr("sp-example-writer: %s\n", error->message);
        return 1;
    }
    w.loop = g_main_loop_new(NULL, FALSE);
    w.skeleton = sp_writer1_skeleton_new();
    g_signal_connect(w.skeleton, "handle-prepare", G_CALLBACK(handle_prepare_cb), &w);
    g_signal_connect(w.skeleton, "handle-freeze", G_CALLBACK(handle_freeze_cb), &w);
    g_signal_connect(w.skeleton, "handle-thaw", G_CALLBACK(handle_thaw_cb), &w);
    if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(w.skeleton), w.bus, WRITER_PATH,
                                          &error)) {
        g_printerr("sp-example-writer: cannot export %s: %s\n", WRITER_PATH, error->message);
        return 1;
    }
    watch = g_bus_watch_name_on_connection(w.bus, AGENT_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                           agent_appeared_cb, agent_vanished_cb, &w, NULL);
    g_unix_signal_add(SIGTERM, terminate_cb, &w);
    g_unix_signal_add(SIGINT, terminate_cb, &w);
    g_main_loop_run(w.loop);
    g_bus_unwatch_name(watch);
    release(&w, "exiting");
    return w.status;
}
