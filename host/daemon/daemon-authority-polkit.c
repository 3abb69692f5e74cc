/* daemon-authority-polkit: the polkit authority, asked asynchronously about the caller's bus
 * name (polkit resolves the process and its session itself). */
#include "daemon-authority.h"

#include <polkit/polkit.h>

typedef struct {
    SpAuthority parent;
    PolkitAuthority *authority;   /* NULL: polkitd unreachable, only uid 0 is allowed */
    char *unavailable;            /* why */
} PolkitImpl;

static void checked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    const char *action_id = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(PolkitAuthorizationResult) result =
        polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), res, &error);

    if (result == NULL) {
        g_dbus_error_strip_remote_error(error);
        g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_FAILED,
                                "could not ask polkit about %s: %s", action_id, error->message);
        return;
    }
    if (polkit_authorization_result_get_is_authorized(result)) {
        g_task_return_boolean(task, TRUE);
        return;
    }
    g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_NOT_AUTHORIZED,
                            polkit_authorization_result_get_is_challenge(result)
                                ? "%s needs authentication (call with interactive authorization)"
                                : "polkit refuses %s", action_id);
}

/* Rules see what the call is about: action.lookup("vm") (or "group"). */
static PolkitDetails *details_new(const SpAuthorityDetails *details)
{
    PolkitDetails *d = polkit_details_new();

    if (details != NULL && details->vm != NULL)
        polkit_details_insert(d, "vm", details->vm);
    if (details != NULL && details->group != NULL)
        polkit_details_insert(d, "group", details->group);
    return d;
}

static void polkit_check(SpAuthority *self, GDBusMethodInvocation *inv,
                         const SpAuthorityCaller *caller, const char *action_id, const SpAuthorityDetails *details,
                         gboolean interactive, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
    PolkitImpl *p = (PolkitImpl *)self;
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_autoptr(PolkitSubject) subject = NULL;
    g_autoptr(PolkitDetails) pdetails = NULL;
    PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;

    g_task_set_task_data(task, g_strdup(action_id), g_free);
    if (p->authority == NULL) {
        g_task_return_new_error(task, SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_NOT_AUTHORIZED,
                                "only root may %s: polkit is not available (%s)", action_id,
                                p->unavailable);
        g_object_unref(task);
        return;
    }
    if (interactive)
        flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;
    subject = polkit_system_bus_name_new(g_dbus_method_invocation_get_sender(inv));
    pdetails = details_new(details);
    polkit_authority_check_authorization(p->authority, subject, action_id, pdetails, flags,
                                         cancellable, checked_cb, task);
}

static gboolean polkit_check_finish(SpAuthority *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

static void polkit_free(SpAuthority *self)
{
    PolkitImpl *p = (PolkitImpl *)self;
    g_clear_object(&p->authority);
    g_free(p->unavailable);
    g_free(p);
}

static const SpAuthorityOps polkit_ops = {polkit_check, polkit_check_finish, polkit_free, "polkit"};

SpAuthority *sp_authority_polkit_new(void)
{
    PolkitImpl *p = g_new0(PolkitImpl, 1);
    g_autoptr(GError) error = NULL;

    p->parent.ops = &polkit_ops;
    p->authority = polkit_authority_get_sync(NULL, &error);
    if (p->authority == NULL) {
        p->unavailable = g_strdup(error->message);
        g_warning("polkit is not available (%s): only root may use stillpointd", error->message);
    }
    return &p->parent;
}
