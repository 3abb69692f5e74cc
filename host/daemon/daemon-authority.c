/* daemon-authority: the common part (who is calling, uid 0 may always — it can use the store
 * directly anyway) and the rules-file authority used by the tests and hosts without polkitd. */
#include "daemon-authority.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>

G_DEFINE_QUARK(sp-authority-error-quark, sp_authority_error)

#define SP_AUTHORITY_BUS_TIMEOUT_MS 5000

typedef struct {
    SpAuthority *authority;
    GDBusMethodInvocation *invocation;
    char *action_id;
} CheckData;

static void check_data_free(CheckData *d)
{
    g_object_unref(d->invocation);
    g_free(d->action_id);
    g_free(d);
}

static void inner_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    CheckData *d = g_task_get_task_data(task);
    GError *error = NULL;

    if (d->authority->ops->check_finish(d->authority, res, &error))
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
    g_object_unref(task);
}

static void credentials_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    GTask *task = user_data;
    CheckData *d = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    g_autoptr(GVariant) creds = NULL;
    guint32 uid, pid;

    if (reply == NULL) {
        g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_FAILED,
                                "cannot identify the caller: %s", error->message);
        g_object_unref(task);
        return;
    }
    g_variant_get(reply, "(@a{sv})", &creds);
    if (!g_variant_lookup(creds, "UnixUserID", "u", &uid) ||
        !g_variant_lookup(creds, "ProcessID", "u", &pid)) {
        g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_FAILED,
                                "the bus did not say who the caller is");
        g_object_unref(task);
        return;
    }
    /* Like fwupd: root is allowed without asking (it could use the store directly). */
    if (uid == 0) {
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    d->authority->ops->check(d->authority, d->invocation, uid, pid, d->action_id,
                             g_task_get_cancellable(task), inner_done_cb, task);
}

void sp_authority_check(SpAuthority *a, GDBusMethodInvocation *invocation, const char *action_id,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    CheckData *d = g_new0(CheckData, 1);

    d->authority = a;
    d->invocation = g_object_ref(invocation);
    d->action_id = g_strdup(action_id);
    g_task_set_task_data(task, d, (GDestroyNotify)check_data_free);
    g_dbus_connection_call(g_dbus_method_invocation_get_connection(invocation), "org.freedesktop.DBus",
                           "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "GetConnectionCredentials",
                           g_variant_new("(s)", g_dbus_method_invocation_get_sender(invocation)),
                           G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                           SP_AUTHORITY_BUS_TIMEOUT_MS, cancellable, credentials_cb, task);
}

gboolean sp_authority_check_finish(SpAuthority *a, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

void sp_authority_free(SpAuthority *a)
{
    if (a != NULL)
        a->ops->free(a);
}

/* ---- the rules file ---- */

typedef struct {
    SpAuthority parent;
    GKeyFile *rules;
} FileAuthority;

/* The supplementary groups and primary group of a live process (/proc/PID/status). */
static gboolean pid_in_group(guint32 pid, gid_t gid)
{
    g_autofree char *path = g_strdup_printf("/proc/%u/status", pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return FALSE;
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        gboolean groups = g_str_has_prefix(lines[i], "Groups:");
        if (!groups && !g_str_has_prefix(lines[i], "Gid:"))
            continue;
        g_auto(GStrv) ids = g_strsplit_set(strchr(lines[i], ':') + 1, " \t", -1);
        /* Gid: real effective saved fs — the effective one counts. */
        for (guint k = 0, n = 0; ids[k]; k++) {
            if (!*ids[k])
                continue;
            if ((groups || n == 1) && g_ascii_strtoull(ids[k], NULL, 10) == gid)
                return TRUE;
            n++;
        }
    }
    return FALSE;
}

static gboolean principal_matches(const char *p, guint32 uid, guint32 pid)
{
    if (g_str_has_prefix(p, "uid:"))
        return g_ascii_strtoull(p + 4, NULL, 10) == uid;
    if (g_str_has_prefix(p, "user:")) {
        struct passwd *pw = getpwnam(p + 5);
        return pw != NULL && pw->pw_uid == uid;
    }
    if (g_str_has_prefix(p, "group:")) {
        struct group *gr = getgrnam(p + 6);
        return gr != NULL && pid_in_group(pid, gr->gr_gid);
    }
    return FALSE;
}

static void file_check(SpAuthority *self, GDBusMethodInvocation *inv, guint32 uid, guint32 pid,
                       const char *action_id, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
    FileAuthority *fa = (FileAuthority *)self;
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    g_auto(GStrv) who = g_key_file_get_string_list(fa->rules, "actions", action_id, NULL, NULL);

    for (guint i = 0; who && who[i]; i++) {
        if (principal_matches(g_strstrip(who[i]), uid, pid)) {
            g_task_return_boolean(task, TRUE);
            return;
        }
    }
    g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_NOT_AUTHORIZED,
                            "uid %u is not granted %s", uid, action_id);
}

static gboolean file_check_finish(SpAuthority *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

static void file_free(SpAuthority *self)
{
    FileAuthority *fa = (FileAuthority *)self;
    g_key_file_unref(fa->rules);
    g_free(fa);
}

static const SpAuthorityOps file_ops = {file_check, file_check_finish, file_free, "rules file"};

SpAuthority *sp_authority_file_new(const char *path, GError **error)
{
    g_autoptr(GKeyFile) rules = g_key_file_new();
    FileAuthority *fa;

    if (!g_key_file_load_from_file(rules, path, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    fa = g_new0(FileAuthority, 1);
    fa->parent.ops = &file_ops;
    fa->rules = g_steal_pointer(&rules);
    return &fa->parent;
}
