/* daemon-authority: the part both authorities share: one check with a deadline, answered once
 * (on the answer, the deadline or the daemon stopping); uid 0 may always (it can use the store
 * directly anyway). */
#include "daemon-authority.h"

#include "../lib/test-hooks.h"

G_DEFINE_QUARK(sp-authority-error-quark, sp_authority_error)

/* How long polkit may take to answer: a caller that holds a check open must not hold it for
 * ever. A person may be typing a password when the caller allowed interactive authorization. */
#define SP_AUTHORITY_DEADLINE_MS 25000
#define SP_AUTHORITY_INTERACTIVE_DEADLINE_MS 120000

/* One check: the outer task returns once, on the inner answer, the deadline or cancellation,
 * whichever comes first; an inner answer that comes later is dropped. */
typedef struct {
    SpAuthority *authority;
    char *action_id;
    GCancellable *inner;      /* cancelled on the deadline or when the caller cancels */
    GCancellable *outer;      /* the caller's, or NULL */
    gulong outer_handler;
    guint deadline_id;
    guint deadline_ms;
    gboolean returned;
} CheckData;

static void check_data_free(CheckData *d)
{
    if (d->deadline_id != 0)
        g_source_remove(d->deadline_id);
    if (d->outer != NULL) {
        g_cancellable_disconnect(d->outer, d->outer_handler);
        g_object_unref(d->outer);
    }
    g_object_unref(d->inner);
    g_free(d->action_id);
    g_free(d);
}

/* Returns the outer task's answer once; then stops the deadline and the inner check. */
static void check_return(GTask *task, GError *error)
{
    CheckData *d = g_task_get_task_data(task);

    if (d->returned) {
        g_clear_error(&error);
        return;
    }
    d->returned = TRUE;
    if (d->deadline_id != 0) {
        g_source_remove(d->deadline_id);
        d->deadline_id = 0;
    }
    if (error == NULL)
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_error(task, error);
    g_cancellable_cancel(d->inner);
}

static void inner_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    CheckData *d = g_task_get_task_data(task);
    GError *error = NULL;

    if (d->authority->ops->check_finish(d->authority, res, &error))
        check_return(task, NULL);
    else
        check_return(task, error);
}

static gboolean deadline_cb(gpointer user_data)
{
    GTask *task = user_data;
    CheckData *d = g_task_get_task_data(task);

    d->deadline_id = 0;
    check_return(task, g_error_new(SP_AUTHORITY_ERROR, SP_AUTHORITY_ERROR_FAILED,
                                   "no answer about %s within %u s", d->action_id,
                                   d->deadline_ms / 1000));
    return G_SOURCE_REMOVE;
}

/* The caller's cancellable (the daemon stopping): answered on the main loop, not from here. */
static gboolean cancelled_idle_cb(gpointer user_data)
{
    GTask *task = user_data;
    check_return(task, g_error_new(G_IO_ERROR, G_IO_ERROR_CANCELLED, "stillpointd is stopping"));
    return G_SOURCE_REMOVE;
}

static void outer_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    g_idle_add_full(G_PRIORITY_DEFAULT, cancelled_idle_cb, g_object_ref(user_data), g_object_unref);
}

void sp_authority_check(SpAuthority *a, GDBusMethodInvocation *invocation,
                        const SpAuthorityCaller *caller, const char *action_id, const SpAuthorityDetails *details,
                        gboolean quiet, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
    CheckData *d = g_new0(CheckData, 1);
    gboolean interactive = !quiet &&
        (g_dbus_message_get_flags(g_dbus_method_invocation_get_message(invocation)) &
         G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;

    d->authority = a;
    d->action_id = g_strdup(action_id);
    d->inner = g_cancellable_new();
    g_task_set_task_data(task, d, (GDestroyNotify)check_data_free);
    /* Like fwupd: root is allowed without asking (it could use the store directly). */
    if (caller->uid == 0) {
        check_return(task, NULL);
        return;
    }
    d->deadline_ms = sp_test_deadline_ms(SP_TEST_DEADLINE_AUTHORIZE,
                                         interactive ? SP_AUTHORITY_INTERACTIVE_DEADLINE_MS
                                                     : SP_AUTHORITY_DEADLINE_MS);
    /* The timeout and the handler hold no reference: check_data_free removes both. */
    d->deadline_id = g_timeout_add(d->deadline_ms, deadline_cb, task);
    if (cancellable != NULL) {
        d->outer = g_object_ref(cancellable);
        d->outer_handler = g_cancellable_connect(cancellable, G_CALLBACK(outer_cancelled_cb),
                                                 task, NULL);
    }
    if (!d->returned)
        a->ops->check(a, invocation, caller, action_id, details, interactive, d->inner,
                      inner_done_cb, g_object_ref(task));
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
