/* stillpointd: the checkpoint coordinator on the system bus (org.stillpoint.Coordinator1).
 * Each method asks the authority (polkit) for its action first, then runs the same library
 * calls as the CLI on a worker thread, emitting Progress as it goes. */
#include <errno.h>
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon-authority.h"
#include "daemon-ops.h"
#include "sp-coordinator1-generated.h"
#include "stillpoint/schedule.h"
#include "stillpoint/store.h"

#define SP_DAEMON_BUS_NAME "org.stillpoint.Coordinator1"
#define SP_DAEMON_OBJECT_PATH "/org/stillpoint/Coordinator1"
#define SP_DAEMON_ERROR "org.stillpoint.Coordinator1.Error."
/* Jobs running at once; more are refused (Busy). A job slot is taken only once polkit has
 * said yes, so callers without a role cannot take them. */
#define SP_DAEMON_MAX_JOBS 8
/* Calls of one uid in progress at once (asking polkit or running), root excepted: one user
 * cannot hold what another needs (README "stillpointd"). */
#define SP_DAEMON_MAX_CALLS_PER_UID 2
#define SP_DAEMON_BUS_TIMEOUT_MS 5000

typedef struct {
    GMainLoop *loop;
    SpAuthority *authority;
    GDBusConnection *bus;
    guint registration;       /* the object on the bus; 0 before */
    char *store_path;
    char *unit_dir;           /* schedules' units: SP_SCHEDULE_UNIT_DIR, or --unit-dir */
    int ready_fd;
    guint calls;              /* in progress: identifying, authorizing or running */
    guint jobs;               /* running on a worker thread */
    GHashTable *uid_calls;    /* uid -> calls in progress */
    GHashTable *watchers;     /* unique bus name -> its g_bus_watch_name id (Watch) */
    GCancellable *stop;       /* cancelled on SIGTERM: pending questions end at once */
    gboolean stopping;
    int status;
} Daemon;

/* What polkit is told a call is about (SpAuthorityDetails): the method's first argument. */
typedef enum { ON_NOTHING, ON_VM, ON_GROUP } Detail;
/* What watchers (Watch) are told once a method has succeeded: nothing, VmAdded(vm),
 * VmRemoved(vm), CheckpointsChanged(vm), or that of each member a group checkpoint's reply names. */
typedef enum { NO_CHANGE, VM_ADDED, VM_REMOVED, CPS_CHANGED, GROUP_CPS_CHANGED } Change;

/* Which polkit action each method needs (org.stillpoint.policy; the README's role table says
 * the same, and e2e/daemon/role-table compares them), what Progress calls its operation (NULL:
 * quick) and what a refusal says ("not authorized to ..."). */
static const struct {
    const char *method;
    const char *action;
    Detail detail;
    Change change;
    const char *operation;
    const char *refusal;
} actions[] = {
    {"ListVms", "org.stillpoint.read", ON_NOTHING, NO_CHANGE, NULL, "list VMs"},
    {"ListCheckpoints", "org.stillpoint.read", ON_VM, NO_CHANGE, NULL, "list checkpoints"},
    {"ShowCheckpoint", "org.stillpoint.read", ON_VM, NO_CHANGE, NULL, "show checkpoints"},
    {"GetVmDisks", "org.stillpoint.read", ON_VM, NO_CHANGE, NULL, "list a VM's disks"},
    {"ListGroups", "org.stillpoint.read", ON_NOTHING, NO_CHANGE, NULL, "list groups"},
    {"Watch", "org.stillpoint.read", ON_NOTHING, NO_CHANGE, NULL, "watch VMs"},
    {"GetBackupStatus", "org.stillpoint.read", ON_VM, NO_CHANGE, NULL, "read backup sessions"},
    {"AddVm", "org.stillpoint.vm.admin", ON_VM, VM_ADDED, NULL, "register VMs"},
    {"SetVm", "org.stillpoint.vm.admin", ON_VM, NO_CHANGE, NULL, "change VMs"},
    {"RemoveVm", "org.stillpoint.vm.admin", ON_VM, VM_REMOVED, NULL, "remove VMs"},
    {"RecoverVm", "org.stillpoint.vm.admin", ON_VM, CPS_CHANGED, "recover", "recover VMs"},
    {"CreateGroup", "org.stillpoint.vm.admin", ON_GROUP, NO_CHANGE, NULL, "define groups"},
    {"RemoveGroup", "org.stillpoint.vm.admin", ON_GROUP, NO_CHANGE, NULL, "remove groups"},
    {"CreateCheckpoint", "org.stillpoint.checkpoint.create", ON_VM, CPS_CHANGED, "create", "create checkpoints"},
    {"CreateGroupCheckpoint", "org.stillpoint.checkpoint.create", ON_GROUP, GROUP_CPS_CHANGED, "create", "create checkpoints"},
    {"ExportCheckpoint", "org.stillpoint.checkpoint.export", ON_VM, NO_CHANGE, "export", "export checkpoints"},
    {"ApplyCheckpoint", "org.stillpoint.checkpoint.apply", ON_VM, CPS_CHANGED, "apply", "apply checkpoints"},
    {"ResumeCheckpoint", "org.stillpoint.checkpoint.apply", ON_VM, NO_CHANGE, "resume", "resume VMs"},
    {"DeleteCheckpoint", "org.stillpoint.checkpoint.delete", ON_VM, CPS_CHANGED, "delete", "delete checkpoints"},
    {"ApplyRetention", "org.stillpoint.checkpoint.delete", ON_VM, CPS_CHANGED, "retention", "delete checkpoints"},
    {"ListSchedules", "org.stillpoint.read", ON_VM, NO_CHANGE, NULL, "list schedules"},
    {"CreateSchedule", "org.stillpoint.schedule", ON_VM, NO_CHANGE, NULL, "create schedules"},
    {"RemoveSchedule", "org.stillpoint.schedule", ON_VM, NO_CHANGE, NULL, "remove schedules"},
    {"RenameCheckpoint", "org.stillpoint.checkpoint.rename", ON_VM, CPS_CHANGED, NULL, "rename checkpoints"},
    {"BeginBackup", "org.stillpoint.backup", ON_VM, CPS_CHANGED, "backup", "begin backup sessions"},
    {"EndBackup", "org.stillpoint.backup", ON_VM, CPS_CHANGED, "backup", "end backup sessions"},
};

typedef struct {
    Daemon *daemon;
    GDBusMethodInvocation *invocation;
    SpDaemonJob *job;
    const char *action;
    const char *refusal;
    Change change;
    SpAuthorityDetails details;   /* points into job */
    SpAuthorityCaller caller;     /* from the bus */
    gboolean counted;         /* in daemon->uid_calls */
} Call;

static void maybe_quit(Daemon *d)
{
    if (d->stopping && d->calls == 0)
        g_main_loop_quit(d->loop);
}

/* Every call ends here, answered or not. */
static void call_finish(Call *c)
{
    Daemon *d = c->daemon;

    if (c->counted) {
        gpointer key = GUINT_TO_POINTER(c->job->caller_uid);
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(d->uid_calls, key));
        if (n <= 1)
            g_hash_table_remove(d->uid_calls, key);
        else
            g_hash_table_insert(d->uid_calls, key, GUINT_TO_POINTER(n - 1));
    }
    g_object_unref(c->invocation);
    sp_daemon_job_free(c->job);
    g_clear_pointer(&c->caller.gids, g_array_unref);
    g_free(c);
    d->calls--;
    maybe_quit(d);
}

static void call_busy(Call *c, const char *message)
{
    g_dbus_method_invocation_return_dbus_error(c->invocation, SP_DAEMON_ERROR "Busy", message);
    call_finish(c);
}

static void return_error(GDBusMethodInvocation *inv, const GError *e)
{
    const char *name = "Failed";

    if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT) ||
        g_error_matches(e, G_IO_ERROR, G_IO_ERROR_EXISTS))
        name = "InvalidArgs";
    else if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        name = "NotFound";
    else if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_BUSY))
        name = "Busy";
    else if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
        name = "NotAuthorized";
    {
        g_autofree char *full = g_strconcat(SP_DAEMON_ERROR, name, NULL);
        g_dbus_method_invocation_return_dbus_error(inv, full, e->message);
    }
}

/* ---- Progress: from the worker thread to the main loop, to the caller only ---- */

/* Progress names images, overlays, export directories and guest text: a unicast signal to
 * the caller's unique name, which the bus delivers to that connection alone (and the bus
 * policy, org.stillpoint.Coordinator1.conf, lets no one eavesdrop on or forge it). */
typedef struct {
    GDBusConnection *bus;
    char *caller;              /* unique bus name */
    GVariant *params;
} ProgressMsg;

static gboolean emit_progress_cb(gpointer data)
{
    ProgressMsg *m = data;
    g_autoptr(GError) error = NULL;

    if (!g_dbus_connection_emit_signal(m->bus, m->caller, SP_DAEMON_OBJECT_PATH,
                                       "org.stillpoint.Coordinator1", "Progress", m->params, &error))
        g_debug("Progress to %s: %s", m->caller, error->message);
    g_object_unref(m->bus);
    g_free(m->caller);
    g_free(m);
    return G_SOURCE_REMOVE;
}

/* On the worker thread; user_data is the Call, alive while its job runs. */
static void job_progress_cb(const SpDaemonJob *job, const char *message, double percent,
                            gpointer user_data)
{
    GDBusMethodInvocation *inv = ((Call *)user_data)->invocation;
    ProgressMsg *m = g_new0(ProgressMsg, 1);

    m->bus = g_object_ref(g_dbus_method_invocation_get_connection(inv));
    m->caller = g_strdup(g_dbus_method_invocation_get_sender(inv));
    m->params = g_variant_new("(sssd)", job->vm ? job->vm : "",
                              job->operation ? job->operation : "", message, percent);
    g_main_context_invoke(NULL, emit_progress_cb, m);
}

/* ---- watchers: VMs and checkpoints as they appear and go, to those who asked ---- */

/* A broadcast would tell every local user the VMs' names: the changes go, as unicast signals
 * like Progress, only to the connections that called Watch (and so hold the read role), until
 * they leave the bus. */
static void watcher_vanished_cb(GDBusConnection *bus, const char *name, gpointer user_data)
{
    Daemon *d = user_data;
    g_hash_table_remove(d->watchers, name);
}

static void watcher_free(gpointer id)
{
    g_bus_unwatch_name(GPOINTER_TO_UINT(id));
}

static void watch_add(Daemon *d, GDBusMethodInvocation *inv)
{
    const char *sender = g_dbus_method_invocation_get_sender(inv);
    guint id;

    if (g_hash_table_contains(d->watchers, sender))
        return;
    id = g_bus_watch_name_on_connection(d->bus, sender, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                        watcher_vanished_cb, d, NULL);
    g_hash_table_insert(d->watchers, g_strdup(sender), GUINT_TO_POINTER(id));
}

static void notify(Daemon *d, const char *signal, const char *vm)
{
    GHashTableIter it;
    gpointer name;

    g_hash_table_iter_init(&it, d->watchers);
    while (g_hash_table_iter_next(&it, &name, NULL))
        g_dbus_connection_emit_signal(d->bus, name, SP_DAEMON_OBJECT_PATH,
                                      "org.stillpoint.Coordinator1", signal,
                                      g_variant_new("(s)", vm), NULL);
}

/* After a method succeeded: what changed, from its table entry (and a group checkpoint's
 * reply, which names each member). */
static void notify_change(Daemon *d, const Call *c, GVariant *reply)
{
    g_autoptr(GVariant) members = NULL;

    if (c->change == VM_ADDED)
        notify(d, "VmAdded", c->job->vm);
    else if (c->change == VM_REMOVED)
        notify(d, "VmRemoved", c->job->vm);
    else if (c->change == CPS_CHANGED)
        notify(d, "CheckpointsChanged", c->job->vm);
    if (c->change != GROUP_CPS_CHANGED)
        return;
    members = g_variant_get_child_value(reply, 0);
    for (gsize i = 0; i < g_variant_n_children(members); i++) {
        g_autoptr(GVariant) boxed = g_variant_get_child_value(members, i);
        g_autoptr(GVariant) cp = g_variant_get_variant(boxed);
        const char *vm;
        if (g_variant_lookup(cp, "vm", "&s", &vm))
            notify(d, "CheckpointsChanged", vm);
    }
}

/* ---- running a job ---- */

static void job_thread_cb(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Call *c = data;
    GError *error = NULL;
    GVariant *reply = sp_daemon_job_run(c->job, &error);

    if (reply == NULL && error == NULL) /* a bug, but the caller must still get an answer */
        error = g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed without a reason",
                            c->job->method);
    if (reply == NULL)
        g_task_return_error(task, error);
    else
        g_task_return_pointer(task, g_variant_ref_sink(reply), (GDestroyNotify)g_variant_unref);
}

static void job_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    Call *c = user_data;
    g_autoptr(GError) error = NULL;
    GVariant *reply = g_task_propagate_pointer(G_TASK(res), &error);

    if (reply == NULL) {
        g_message("%s %s by uid %u failed: %s", c->job->method, c->job->vm ? c->job->vm : "",
                  c->job->caller_uid, error->message);
        return_error(c->invocation, error);
    } else {
        if (g_str_equal(c->job->method, "Watch"))
            watch_add(c->daemon, c->invocation);
        notify_change(c->daemon, c, reply);
        g_dbus_method_invocation_return_value(c->invocation, reply);
        g_variant_unref(reply);
    }
    c->daemon->jobs--;
    call_finish(c);
}

static void start_job(Call *c)
{
    GTask *task = g_task_new(NULL, NULL, job_done_cb, c);

    c->daemon->jobs++;
    g_task_set_task_data(task, c, NULL);
    g_task_run_in_thread(task, job_thread_cb);
    g_object_unref(task);
}

/* Authorized: a job slot now, if one is free. */
static void take_slot(Call *c)
{
    Daemon *d = c->daemon;

    if (d->stopping)
        call_busy(c, "stillpointd is stopping");
    else if (d->jobs >= SP_DAEMON_MAX_JOBS)
        call_busy(c, "too many operations at once; retry later");
    else
        start_job(c);
}

/* Hook commands may hold credentials: only a VM administrator sees them in a VM list. */
static void admin_checked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    Call *c = user_data;
    g_autoptr(GError) error = NULL;

    c->job->hide_hook_commands = !sp_authority_check_finish(c->daemon->authority, res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        call_busy(c, "stillpointd is stopping");
    else
        take_slot(c);
}

static gboolean lists_vms(const Call *c)
{
    return g_str_equal(c->job->method, "ListVms");
}

static void authorized_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    Call *c = user_data;
    Daemon *d = c->daemon;
    g_autoptr(GError) error = NULL;

    if (!sp_authority_check_finish(d->authority, res, &error)) {
        g_autofree char *msg = NULL;
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            call_busy(c, "stillpointd is stopping");
            return;
        }
        msg = g_strdup_printf("not authorized to %s: this needs the polkit action %s (%s); ask an "
                              "administrator for that role. Nothing was changed.", c->refusal,
                              c->action, error->message);
        g_message("refused %s %s to uid %u: %s", c->job->method, c->job->vm ? c->job->vm : "",
                  c->job->caller_uid, error->message);
        g_dbus_method_invocation_return_dbus_error(c->invocation, SP_DAEMON_ERROR "NotAuthorized", msg);
        call_finish(c);
        return;
    }
    if (lists_vms(c) && c->job->caller_uid != 0) {
        /* Never a password prompt for this: a no just hides the hook commands. */
        sp_authority_check(d->authority, c->invocation, &c->caller, "org.stillpoint.vm.admin",
                           NULL, TRUE, d->stop, admin_checked_cb, c);
        return;
    }
    take_slot(c);
}

/* Who is calling, from the bus: the uid counts against its limit and is what polkit (or the
 * rules file) and the job see. */
static void credentials_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    Call *c = user_data;
    Daemon *d = c->daemon;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    g_autoptr(GVariant) creds = NULL;
    g_autoptr(GVariant) gids = NULL;
    guint32 uid, pid;
    guint n;

    if (reply != NULL)
        g_variant_get(reply, "(@a{sv})", &creds);
    if (reply == NULL || !g_variant_lookup(creds, "UnixUserID", "u", &uid) ||
        !g_variant_lookup(creds, "ProcessID", "u", &pid)) {
        g_dbus_method_invocation_return_dbus_error(c->invocation, SP_DAEMON_ERROR "Failed",
            "cannot identify the caller: the bus did not say who it is");
        call_finish(c);
        return;
    }
    c->job->caller_uid = uid;
    c->caller.uid = uid;
    c->caller.pid = pid;
    /* Groups as the bus recorded them at connection, not /proc/PID now (the pid may be another
     * process's by then). Without them, group grants do not apply. */
    if ((gids = g_variant_lookup_value(creds, "UnixGroupIDs", G_VARIANT_TYPE("au"))) != NULL) {
        gsize len;
        const guint32 *v = g_variant_get_fixed_array(gids, &len, sizeof(guint32));
        c->caller.gids = g_array_sized_new(FALSE, FALSE, sizeof(guint32), (guint)len);
        g_array_append_vals(c->caller.gids, v, (guint)len);
    }
    n = GPOINTER_TO_UINT(g_hash_table_lookup(d->uid_calls, GUINT_TO_POINTER(uid)));
    if (uid != 0 && n >= SP_DAEMON_MAX_CALLS_PER_UID) {
        g_autofree char *msg = g_strdup_printf(
            "uid %u has %u calls in progress already (at most %u at once); retry when one has "
            "finished", uid, n, SP_DAEMON_MAX_CALLS_PER_UID);
        call_busy(c, msg);
        return;
    }
    g_hash_table_insert(d->uid_calls, GUINT_TO_POINTER(uid), GUINT_TO_POINTER(n + 1));
    c->counted = TRUE;
    sp_authority_check(d->authority, c->invocation, &c->caller, c->action, &c->details, FALSE,
                       d->stop, authorized_cb, c);
}

/* Every method comes here, the action chosen by the method's name. */
static gboolean dispatch(Daemon *d, GDBusMethodInvocation *inv)
{
    const char *method = g_dbus_method_invocation_get_method_name(inv);
    GVariant *params = g_dbus_method_invocation_get_parameters(inv);
    Call *c;

    for (gsize i = 0; i < G_N_ELEMENTS(actions); i++) {
        if (!g_str_equal(actions[i].method, method))
            continue;
        if (d->stopping) {
            g_dbus_method_invocation_return_dbus_error(inv, SP_DAEMON_ERROR "Busy",
                                                       "stillpointd is stopping");
            return TRUE;
        }
        c = g_new0(Call, 1);
        c->daemon = d;
        c->invocation = g_object_ref(inv);
        c->action = actions[i].action;
        c->refusal = actions[i].refusal;
        c->change = actions[i].change;
        c->job = g_new0(SpDaemonJob, 1);
        c->job->method = actions[i].method;
        c->job->operation = actions[i].operation;
        c->job->store_path = g_strdup(d->store_path);
        c->job->unit_dir = d->unit_dir;
        c->job->parameters = g_variant_ref(params);
        if (actions[i].detail != ON_NOTHING)   /* the VM or group, first */
            g_variant_get_child(params, 0, "s", &c->job->vm);
        if (actions[i].detail == ON_GROUP)
            c->details.group = c->job->vm;
        else
            c->details.vm = c->job->vm;
        c->job->progress = job_progress_cb;
        c->job->progress_data = c;
        d->calls++;
        g_dbus_connection_call(g_dbus_method_invocation_get_connection(inv), "org.freedesktop.DBus",
                               "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionCredentials",
                               g_variant_new("(s)", g_dbus_method_invocation_get_sender(inv)),
                               G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                               SP_DAEMON_BUS_TIMEOUT_MS, NULL, credentials_cb, c);
        return TRUE;
    }
    return FALSE;
}

/* Every method of the interface (checked against its introspection data by GDBus: a call
 * with other arguments is refused before it gets here). */
static void method_call_cb(GDBusConnection *bus, const char *sender, const char *path,
                           const char *iface, const char *method, GVariant *params,
                           GDBusMethodInvocation *inv, gpointer user_data)
{
    if (!dispatch(user_data, inv))
        g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.UnknownMethod",
                                                   "no such method");
}

/* ---- the bus ---- */

static void bus_acquired_cb(GDBusConnection *bus, const char *name, gpointer user_data)
{
    Daemon *d = user_data;
    g_autoptr(GError) error = NULL;

    static const GDBusInterfaceVTable vtable = {.method_call = method_call_cb};

    g_dbus_connection_set_exit_on_close(bus, FALSE);
    d->bus = g_object_ref(bus);
    d->registration = g_dbus_connection_register_object(
        bus, SP_DAEMON_OBJECT_PATH, sp_coordinator1_interface_info(), &vtable, d, NULL, &error);
    if (d->registration == 0) {
        g_critical("cannot export %s: %s", SP_DAEMON_OBJECT_PATH, error->message);
        d->status = EXIT_FAILURE;
        g_main_loop_quit(d->loop);
    }
}

static void name_acquired_cb(GDBusConnection *bus, const char *name, gpointer user_data)
{
    Daemon *d = user_data;

    g_message("serving %s (store %s, authority: %s)", name, d->store_path, d->authority->ops->name);
    if (d->ready_fd > 0) {
        if (write(d->ready_fd, "READY\n", 6) != 6)
            g_warning("--ready-fd: %s", g_strerror(errno));
        close(d->ready_fd);
        d->ready_fd = 0;
    }
}

static void name_lost_cb(GDBusConnection *bus, const char *name, gpointer user_data)
{
    Daemon *d = user_data;

    g_critical(bus == NULL ? "cannot connect to the system bus" :
               "cannot own %s on the system bus (another stillpointd, or the bus policy "
               "org.stillpoint.Coordinator1.conf is not installed)", name);
    d->status = EXIT_FAILURE;
    d->stopping = TRUE;
    g_cancellable_cancel(d->stop);
    maybe_quit(d);
}

/* Jobs in flight finish first: one may be between freeze and thaw. Calls still waiting for
 * polkit are answered Busy at once. */
static gboolean signal_cb(gpointer user_data)
{
    Daemon *d = user_data;

    d->stopping = TRUE;
    g_cancellable_cancel(d->stop);
    if (d->jobs > 0)
        g_message("stopping after %u operation(s) in progress", d->jobs);
    maybe_quit(d);
    return G_SOURCE_CONTINUE;
}

/* Schedules' units go where systemd reads them. Test builds take another directory from root
 * (the tests' own, where nothing is enabled); a caller of a method never chooses it. */
static char *choose_unit_dir(char *unit_dir, GError **error)
{
    if (unit_dir == NULL)
        return g_strdup(SP_SCHEDULE_UNIT_DIR);
    if (getuid() != 0) {
        g_free(unit_dir);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "--unit-dir is root's");
        return NULL;
    }
    return unit_dir;
}

int main(int argc, char **argv)
{
    g_autofree char *store = NULL;
    char *unit_dir = NULL;
#ifdef SP_TEST_HOOKS
    g_autofree char *rules = NULL;
#endif
    int ready_fd = 0;
    const GOptionEntry entries[] = {
        {"store", 0, 0, G_OPTION_ARG_FILENAME, &store,
         "Checkpoint store (default $" SP_STORE_ENV " or " SP_STORE_DEFAULT_PATH ")", "PATH"},
#ifdef SP_TEST_HOOKS
        /* The suite's stand-in for polkitd; hidden, since stillpointd(8) documents what ships. */
        {"rules", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &rules,
         "Decide with this rules file instead of polkit ([actions] or [vm:NAME] "
         "ACTION=user:U;group:G;uid:N)",
         "FILE"},
        /* The tests' own directory for schedules' units (nothing is enabled there); hidden
         * likewise. */
        {"unit-dir", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &unit_dir,
         "Write schedules' units here, not enabled (root only)", "DIR"},
#endif
        {"ready-fd", 0, 0, G_OPTION_ARG_INT, &ready_fd,
         "Write READY to this file descriptor once serving", "FD"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_autoptr(GError) error = NULL;
    Daemon d = {0};
    guint owner;

    setlocale(LC_ALL, "");
    signal(SIGPIPE, SIG_IGN);
    g_option_context_set_summary(ctx, "The stillpoint checkpoint coordinator on the system bus "
                                 "(org.stillpoint.Coordinator1), with polkit roles.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "stillpointd: %s (try --help)\n", error->message);
        return 2;
    }
    if ((d.unit_dir = choose_unit_dir(unit_dir, &error)) == NULL) {
        fprintf(stderr, "stillpointd: %s\n", error->message);
        return 2;
    }
    d.store_path = g_strdup(sp_store_resolve_path(store));
    d.ready_fd = ready_fd;
#ifdef SP_TEST_HOOKS
    d.authority = rules ? sp_authority_file_new(rules, &error) : sp_authority_polkit_new();
#else
    d.authority = sp_authority_polkit_new();
#endif
    if (d.authority == NULL) {
        fprintf(stderr, "stillpointd: %s\n", error->message);
        g_free(d.store_path);
        g_free(d.unit_dir);
        return 2;
    }
    d.loop = g_main_loop_new(NULL, FALSE);
    d.uid_calls = g_hash_table_new(NULL, NULL);
    d.watchers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, watcher_free);
    d.stop = g_cancellable_new();
    owner = g_bus_own_name(G_BUS_TYPE_SYSTEM, SP_DAEMON_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                           bus_acquired_cb, name_acquired_cb, name_lost_cb, &d, NULL);
    g_unix_signal_add(SIGTERM, signal_cb, &d);
    g_unix_signal_add(SIGINT, signal_cb, &d);
    g_main_loop_run(d.loop);
    g_bus_unown_name(owner);
    /* Registered only once a bus connection came up. */
    if (d.registration != 0)
        g_dbus_connection_unregister_object(d.bus, d.registration);
    g_clear_object(&d.bus);
    g_main_loop_unref(d.loop);
    g_hash_table_unref(d.uid_calls);
    g_hash_table_unref(d.watchers);
    g_object_unref(d.stop);
    sp_authority_free(d.authority);
    g_free(d.store_path);
    g_free(d.unit_dir);
    return d.status;
}
