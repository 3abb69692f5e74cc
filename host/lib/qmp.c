/* QMP client. Replies are matched by id so a reply that arrives after its command timed out is
 * dropped instead of being taken for the next command's. Events are kept (bounded) for jobs. */
#include "stillpoint/qmp.h"

#include <gio/gio.h>

#include "stillpoint/guest-text.h"
#include "stillpoint/message.h"

struct SpQmp {
    SpChannel *ch;
    guint64 next_id;
    GQueue events; /* of SpJson* */
    gboolean stalled; /* the last command timed out and QEMU has not answered since */
};

void sp_qmp_free(SpQmp *qmp)
{
    if (qmp == NULL)
        return;
    sp_channel_free(qmp->ch);
    g_queue_clear_full(&qmp->events, (GDestroyNotify)sp_json_free);
    g_free(qmp);
}

static void queue_event(SpQmp *qmp, SpJson *event)
{
    if (g_queue_get_length(&qmp->events) >= SP_QMP_MAX_EVENTS)
        sp_json_free(g_queue_pop_head(&qmp->events));
    g_queue_push_tail(&qmp->events, event);
}

SpQmp *sp_qmp_connect(const char *path, guint timeout_ms, GError **error)
{
    g_autoptr(SpQmp) qmp = g_new0(SpQmp, 1);
    gint64 deadline = sp_deadline_in_ms(timeout_ms);
    g_autoptr(SpJson) greeting = NULL;
    g_autoptr(SpJson) caps = NULL;

    g_queue_init(&qmp->events);
    qmp->ch = sp_channel_connect_unix(path, "QMP socket", deadline, error);
    if (qmp->ch == NULL)
        return NULL;
    greeting = sp_channel_recv(qmp->ch, deadline, error);
    if (greeting == NULL) {
        g_prefix_error(error, "no QMP greeting (QEMU serves one QMP client at a time: is another "
                              "one connected?): ");
        return NULL;
    }
    if (sp_json_object_get(greeting, "QMP") == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "QMP socket %s: the first message is not a QMP greeting (is this the VM's "
                    "QMP socket, not its agent or monitor socket?)",
                    path);
        return NULL;
    }
    /* What is left of timeout_ms: connecting, greeting and negotiating share the one timeout. */
    caps = sp_qmp_execute(qmp, "qmp_capabilities", NULL,
                          (guint)MAX((deadline - g_get_monotonic_time()) / 1000, 0), error);
    if (caps == NULL)
        return NULL;
    return g_steal_pointer(&qmp);
}

static gboolean reply_is_ours(const SpJson *reply, guint64 id)
{
    const SpJson *rid = sp_json_object_get(reply, "id");
    return rid != NULL && sp_json_type(rid) == SP_JSON_INT && (guint64)sp_json_get_int(rid) == id;
}

SpJson *sp_qmp_execute(SpQmp *qmp, const char *command, SpJson *arguments, guint timeout_ms,
                       GError **error)
{
    /* QEMU that let a command time out is likely hung: the cleanup commands that follow (each
     * with its own deadline) would each wait the full time for nothing. */
    gint64 deadline = sp_deadline_in_ms(qmp->stalled ? MIN(timeout_ms, SP_QMP_STALLED_TIMEOUT_MS)
                                                     : timeout_ms);
    guint64 id = ++qmp->next_id;
    g_autoptr(SpJson) id_value = sp_json_new_int((int64_t)id);
    g_autoptr(SpJson) request = sp_request_new(command, arguments, id_value);
    g_autoptr(GError) send_error = NULL;

    if (request == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "QMP command %s: out of memory",
                    command);
        return NULL;
    }
    if (!sp_channel_send(qmp->ch, request, deadline, &send_error)) {
        if (g_error_matches(send_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
            qmp->stalled = TRUE;
        g_propagate_prefixed_error(error, g_steal_pointer(&send_error), "QMP command %s: ",
                                   command);
        return NULL;
    }
    for (;;) {
        g_autoptr(GError) local = NULL;
        g_autoptr(SpJson) msg = sp_channel_recv(qmp->ch, deadline, &local);
        const SpJson *ret = NULL;
        const char *klass = NULL, *desc = NULL, *code = NULL;

        if (msg == NULL) {
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
                qmp->stalled = TRUE;
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "QMP command %s: ",
                                       command);
            return NULL;
        }
        qmp->stalled = FALSE; /* QEMU speaks again */
        if (sp_json_object_get(msg, "event") != NULL) {
            queue_event(qmp, g_steal_pointer(&msg));
            continue;
        }
        if (!reply_is_ours(msg, id))
            continue; /* a late reply to a command that timed out */
        if (sp_reply_parse(msg, &ret, &klass, &desc, &code) != SP_OK) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "QMP command %s: malformed reply", command);
            return NULL;
        }
        if (ret == NULL) {
            /* QEMU's errors quote names and paths a guest may have chosen. */
            g_autofree char *k = sp_guest_text(klass != NULL ? klass : "?");
            g_autofree char *d = sp_guest_text(desc != NULL ? desc : "?");
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "QMP command %s failed: %s: %s",
                        command, k, d);
            return NULL;
        }
        return sp_json_copy(ret);
    }
}

static gboolean event_matches(const SpJson *event, const char *name, const char *key,
                              const char *value)
{
    const SpJson *data = sp_json_object_get(event, "data");
    if (name != NULL && g_strcmp0(sp_json_object_get_string(event, "event"), name) != 0)
        return FALSE;
    if (key != NULL && g_strcmp0(sp_json_object_get_string(data, key), value) != 0)
        return FALSE;
    return TRUE;
}

SpJson *sp_qmp_take_event(SpQmp *qmp, const char *name)
{
    for (GList *l = qmp->events.head; l != NULL; l = l->next) {
        if (event_matches(l->data, name, NULL, NULL)) {
            SpJson *event = l->data;
            g_queue_delete_link(&qmp->events, l);
            return event;
        }
    }
    return NULL;
}

SpJson *sp_qmp_wait_event(SpQmp *qmp, const char *name, const char *key, const char *value,
                          guint timeout_ms, GError **error)
{
    gint64 deadline = sp_deadline_in_ms(timeout_ms);
    for (GList *l = qmp->events.head; l != NULL; l = l->next) {
        if (event_matches(l->data, name, key, value)) {
            SpJson *event = l->data;
            g_queue_delete_link(&qmp->events, l);
            return event;
        }
    }
    for (;;) {
        SpJson *msg = sp_channel_recv(qmp->ch, deadline, error);
        if (msg == NULL) {
            g_prefix_error(error, "waiting for QMP event %s: ", name != NULL ? name : "(any)");
            return NULL;
        }
        if (sp_json_object_get(msg, "event") == NULL) {
            sp_json_free(msg); /* a late reply */
            continue;
        }
        if (event_matches(msg, name, key, value))
            return msg;
        queue_event(qmp, msg);
    }
}
