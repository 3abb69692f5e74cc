/* daemon-authority-file: the rules-file authority of test builds (SP_TEST_HOOKS): the suite
 * cannot run polkitd (it needs the real system bus and reads actions only from
 * /usr/share/polkit-1), so stillpointd --rules FILE decides with this file behind the same
 * interface. Never in what is installed or packaged. */
#include "daemon-authority.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>

typedef struct {
    SpAuthority parent;
    GKeyFile *rules;
} FileAuthority;

static gboolean caller_in_group(const SpAuthorityCaller *caller, gid_t gid)
{
    for (guint i = 0; caller->gids != NULL && i < caller->gids->len; i++)
        if (g_array_index(caller->gids, guint32, i) == gid)
            return TRUE;
    return FALSE;
}

static gboolean principal_matches(const char *p, const SpAuthorityCaller *caller)
{
    if (g_str_has_prefix(p, "uid:"))
        return g_ascii_strtoull(p + 4, NULL, 10) == caller->uid;
    if (g_str_has_prefix(p, "user:")) {
        struct passwd *pw = getpwnam(p + 5);
        return pw != NULL && pw->pw_uid == caller->uid;
    }
    if (g_str_has_prefix(p, "group:")) {
        struct group *gr = getgrnam(p + 6);
        return gr != NULL && caller_in_group(caller, gr->gr_gid);
    }
    return FALSE;
}

static gboolean file_grants(FileAuthority *fa, const char *group, const char *action_id,
                            const SpAuthorityCaller *caller)
{
    g_auto(GStrv) who = g_key_file_get_string_list(fa->rules, group, action_id, NULL, NULL);

    for (guint i = 0; who && who[i]; i++)
        if (principal_matches(g_strstrip(who[i]), caller))
            return TRUE;
    return FALSE;
}

/* [actions] grants for every VM, [vm:NAME] for that VM only. */
static void file_check(SpAuthority *self, GDBusMethodInvocation *inv,
                       const SpAuthorityCaller *caller, const char *action_id, const SpAuthorityDetails *details,
                       gboolean interactive, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
    FileAuthority *fa = (FileAuthority *)self;
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    g_autofree char *vm_group = details != NULL && details->vm != NULL
                                    ? g_strconcat("vm:", details->vm, NULL) : NULL;

    if (file_grants(fa, "actions", action_id, caller) ||
        (vm_group != NULL && file_grants(fa, vm_group, action_id, caller))) {
        g_task_return_boolean(task, TRUE);
        return;
    }
    g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_NOT_AUTHORIZED,
                            "uid %u is not granted %s%s%s", caller->uid, action_id,
                            vm_group != NULL ? " for VM " : "",
                            vm_group != NULL ? details->vm : "");
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
