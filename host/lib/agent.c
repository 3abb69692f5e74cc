/* Guest agent client. The channel can hold a stale reply after a timeout (the guest answered
 * late) or garbage from a previous client; guest-sync-delimited puts a 0xFF before its reply, and
 * everything before that byte is dropped, so the stream is in step again. */
#include "stillpoint/agent.h"

#include <gio/gio.h>
#include <string.h>

#include "stillpoint/driver.h"
#include "stillpoint/guest-text.h"
#include "stillpoint/libvirt.h"
#include "stillpoint/message.h"
#include "test-hooks.h"

G_DEFINE_QUARK(sp-agent-error-quark, sp_agent_error)

struct SpAgent {
    SpChannel *ch;       /* the agent's socket; NULL when libvirt owns the channel */
    SpLibvirt *lv;       /* ... then commands go through libvirt */
    gboolean stillpoint;
    gint64 min_lease_ms; /* from stillpoint-capabilities; 0 = unknown */
    gint64 max_lease_ms;
    GStrv commands;      /* stillpoint-capabilities' "commands"; NULL with qemu-ga */
    char *backend;       /* its freeze.backend; NULL when not said */
    gboolean stalled;    /* a command timed out and the agent has not answered since */
};

/* An agent that let a command time out is likely stopped or gone: what follows on this
 * connection (the resync, the status, the thaw) waits briefly, not each its full deadline. A
 * new connection (the coordinator's last thaw attempt) starts patient again; the lease thaws
 * the guest whatever happens here. */
static guint patience(const SpAgent *agent, guint timeout_ms)
{
    return agent->stalled ? MIN(timeout_ms, SP_AGENT_STALLED_TIMEOUT_MS) : timeout_ms;
}

void sp_agent_free(SpAgent *agent)
{
    if (agent == NULL)
        return;
    sp_channel_free(agent->ch);
    sp_libvirt_free(agent->lv);
    g_strfreev(agent->commands);
    g_free(agent->backend);
    g_free(agent);
}

gboolean sp_agent_is_stillpoint(SpAgent *agent)
{
    return agent->stillpoint;
}

const char *sp_agent_backend(SpAgent *agent)
{
    return agent->backend;
}

gboolean sp_agent_has_command(SpAgent *agent, const char *command)
{
    return agent->commands != NULL && g_strv_contains((const char *const *)agent->commands, command);
}

/* One guest-sync-delimited, after a 0xFF that makes the agent drop any partial request. */
static gboolean send_sync(SpAgent *agent, gint64 id, gint64 deadline, GError **error)
{
    static const char ff = '\xff';
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) request = NULL;
    sp_json_object_set_int(args, "id", id);
    request = sp_request_new("guest-sync-delimited", g_steal_pointer(&args), NULL);
    if (!sp_channel_send_raw(agent->ch, &ff, 1, deadline, error) ||
        !sp_channel_send(agent->ch, request, deadline, error)) {
        g_prefix_error(error, "syncing with the guest agent: ");
        return FALSE;
    }
    return TRUE;
}

gboolean sp_agent_sync(SpAgent *agent, guint timeout_ms, GError **error)
{
    gint64 deadline = sp_deadline_in_ms(patience(agent, timeout_ms));
    gint64 id = 0;
    guint tries = 0, resyncs;

    if (agent->lv != NULL)
        return TRUE; /* libvirt syncs its own channel before every command */
    /* Sent again every SP_AGENT_SYNC_RETRY_MS until the deadline: a request can be lost on a
     * virtio-serial port the agent is just reattaching to (a host that hung up a moment ago).
     * Only the answer to the last try counts: the agent answers every sync in order, so an
     * answer to an earlier one accepted now would leave the later ones' answers to be taken for
     * the next command's. */
    for (;;) {
        gint64 retry = MIN(deadline, sp_deadline_in_ms(SP_AGENT_SYNC_RETRY_MS));
        /* 31 bits: qemu-ga parses the id as an int. */
        id = g_random_int_range(1, G_MAXINT32);
        if (!send_sync(agent, id, deadline, error))
            return FALSE;
        if (tries++ == 0)
            sp_channel_flush(agent->ch);
        resyncs = sp_channel_resync_count(agent->ch);
        for (;;) {
            g_autoptr(GError) local = NULL;
            gboolean last_try = tries == SP_AGENT_SYNC_MAX_TRIES || retry == deadline;
            g_autoptr(SpJson) msg = sp_channel_recv(agent->ch, last_try ? deadline : retry,
                                                    &local);
            if (msg == NULL && last_try) {
                g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE,
                            "guest agent on %s does not answer guest-sync-delimited (%s); is the "
                            "agent running in the guest, and no other client connected to the "
                            "socket?",
                            sp_channel_get_path(agent->ch), local->message);
                return FALSE;
            }
            if (msg == NULL)
                break; /* no answer yet: ask again */
            /* Only a reply after a 0xFF counts; QGA echoes the id as "return". */
            if (sp_channel_resync_count(agent->ch) != resyncs &&
                sp_json_object_get_int(msg, "return", -1) == id) {
                agent->stalled = FALSE;
                return TRUE;
            }
        }
    }
}

/* Asks for stillpoint-capabilities: a stock qemu-ga answers CommandNotFound. */
static gboolean learn_capabilities(SpAgent *agent, guint timeout_ms, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SpJson) caps = sp_agent_execute(agent, "stillpoint-capabilities", NULL, timeout_ms,
                                              &local);
    if (caps != NULL) {
        const SpJson *freeze = sp_json_object_get(caps, "freeze");
        agent->stillpoint = TRUE;
        agent->min_lease_ms = sp_json_object_get_int(freeze, "min-lease-ms", 0);
        agent->max_lease_ms = sp_json_object_get_int(freeze, "max-lease-ms", 0);
        g_free(agent->backend);
        agent->backend = g_strdup(sp_json_object_get_string(freeze, "backend"));
        const SpJson *cmds = sp_json_object_get(caps, "commands");
        GPtrArray *names = g_ptr_array_new();
        for (size_t i = 0; i < sp_json_array_len(cmds); i++) {
            const char *name = sp_json_get_string(sp_json_array_get(cmds, i));
            if (name != NULL)
                g_ptr_array_add(names, g_strdup(name));
        }
        g_ptr_array_add(names, NULL);
        agent->commands = (GStrv)g_ptr_array_free(names, FALSE);
    } else if (g_error_matches(local, SP_AGENT_ERROR, SP_AGENT_ERROR_COMMAND)) {
        agent->stillpoint = FALSE; /* a stock qemu-ga: CommandNotFound */
    } else {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

SpAgent *sp_agent_connect(const char *path, guint timeout_ms, GError **error)
{
    g_autoptr(SpAgent) agent = g_new0(SpAgent, 1);
    g_autoptr(GError) local = NULL;

    agent->ch = sp_channel_connect_unix(path, "agent socket", sp_deadline_in_ms(timeout_ms),
                                        &local);
    if (agent->ch == NULL) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE, "%s", local->message);
        return NULL;
    }
    if (!sp_agent_sync(agent, timeout_ms, error) || !learn_capabilities(agent, timeout_ms, error))
        return NULL;
    return g_steal_pointer(&agent);
}

SpAgent *sp_agent_connect_vm(const SpVm *vm, guint timeout_ms, GError **error)
{
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    if (ops->agent_connect != NULL)
        return ops->agent_connect(vm, timeout_ms, error);
    if (vm->agent_socket == NULL || vm->agent_socket[0] == '\0') {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE,
                    "VM '%s' has no agent socket configured", vm->name);
        return NULL;
    }
    return sp_agent_connect(vm->agent_socket, timeout_ms, error);
}

SpAgent *sp_agent_connect_libvirt(const SpVm *vm, guint timeout_ms, GError **error)
{
    g_autoptr(SpAgent) agent = g_new0(SpAgent, 1);
    g_autoptr(GError) local = NULL;

    agent->lv = sp_libvirt_open(vm->libvirt_uri, vm->libvirt_domain, &local);
    if (agent->lv == NULL) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_UNREACHABLE, "%s", local->message);
        return NULL;
    }
    if (!learn_capabilities(agent, timeout_ms, error))
        return NULL;
    return g_steal_pointer(&agent);
}

char *sp_agent_describe_vm(const SpVm *vm)
{
    const SpDriverOps *ops = sp_driver_ops_of(vm);
    if (ops->agent_describe != NULL)
        return ops->agent_describe(vm);
    return g_strdup_printf("on %s", vm->agent_socket);
}

char *sp_agent_describe_libvirt(const SpVm *vm)
{
    return g_strdup_printf("through libvirt (domain '%s')", vm->libvirt_domain);
}

/* One request/reply through libvirt: it owns the channel, the sync and the deadline. */
static SpJson *exchange_libvirt(SpAgent *agent, SpJson *request, guint timeout_ms,
                                GError **error)
{
    char *text = sp_json_serialize(request, NULL);
    g_autofree char *reply = NULL;
    SpJsonLimits limits = {.max_size = SP_CHANNEL_MAX_FRAME};
    SpJson *msg = NULL;
    if (text == NULL)
        g_error("out of memory");
    reply = sp_libvirt_agent_command(agent->lv, text, timeout_ms, error);
    free(text);
    if (reply == NULL)
        return NULL;
    if (sp_json_parse(reply, strlen(reply), &limits, &msg, NULL) != SP_OK) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL,
                    "libvirt passed on a reply that is not valid JSON");
        return NULL;
    }
    return msg;
}

SpJson *sp_agent_execute(SpAgent *agent, const char *command, SpJson *arguments, guint timeout_ms,
                         GError **error)
{
    gint64 deadline;
    g_autoptr(SpJson) request = sp_request_new(command, arguments, NULL);
    g_autoptr(SpJson) reply = NULL;
    g_autoptr(GError) local = NULL;
    const SpJson *ret = NULL;
    const char *klass = NULL, *desc = NULL, *code = NULL;

    timeout_ms = patience(agent, timeout_ms);
    deadline = sp_deadline_in_ms(timeout_ms);
    if (agent->lv != NULL) {
        reply = exchange_libvirt(agent, request, timeout_ms, &local);
        if (reply == NULL) {
            if (local->code == SP_AGENT_ERROR_TIMEOUT)
                agent->stalled = TRUE;
            g_set_error(error, SP_AGENT_ERROR, local->code, "guest agent command %s: %s",
                        command, local->message);
            return NULL;
        }
    } else if (!sp_channel_send(agent->ch, request, deadline, &local) ||
        (reply = sp_channel_recv(agent->ch, deadline, &local)) == NULL) {
        gboolean timeout = g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
        if (timeout) {
            agent->stalled = TRUE;
            /* Best effort: the next command must not read this one's late reply. */
            sp_agent_sync(agent, SP_AGENT_SYNC_TIMEOUT_MS, NULL);
        }
        g_set_error(error, SP_AGENT_ERROR,
                    timeout ? SP_AGENT_ERROR_TIMEOUT : SP_AGENT_ERROR_UNREACHABLE,
                    "guest agent command %s: %s", command, local->message);
        return NULL;
    }
    agent->stalled = FALSE; /* it answers */
    if (sp_reply_parse(reply, &ret, &klass, &desc, &code) != SP_OK) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL,
                    "guest agent command %s: malformed reply", command);
        return NULL;
    }
    if (ret == NULL) {
        /* The guest wrote every byte of it: escaped before it reaches a terminal or a log. */
        g_autofree char *what = sp_guest_text(desc != NULL ? desc
                                                           : (klass != NULL ? klass : "error"));
        g_autofree char *why = code != NULL ? sp_guest_text(code) : NULL;
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_COMMAND,
                    "guest agent command %s failed: %s%s%s%s", command, what,
                    why != NULL ? " (" : "", why != NULL ? why : "", why != NULL ? ")" : "");
        return NULL;
    }
    return sp_json_copy(ret);
}

/* The tests may shorten the freeze's deadline (to make a slow freeze time out quickly); the thaw
 * keeps its own, so the thaw after such a timeout works. */
static guint freeze_timeout(guint default_ms)
{
    return sp_test_deadline_ms(SP_TEST_DEADLINE_AGENT_FREEZE, default_ms);
}

void sp_freeze_result_clear(SpFreezeResult *result)
{
    g_clear_pointer(&result->reply, sp_json_free);
    g_clear_pointer(&result->fsinfo, sp_json_free);
    g_clear_pointer(&result->fsinfo_error, g_free);
}

/* The guest's filesystems and the disks under them, while it still runs (guest-get-fsinfo is
 * refused while frozen). A failure only costs the verdict: it is kept for its reason. */
void sp_agent_read_fsinfo(SpAgent *agent, SpFreezeResult *r)
{
    g_autoptr(GError) local = NULL;
    r->fsinfo = sp_agent_execute(agent, "guest-get-fsinfo", NULL, SP_AGENT_FSINFO_TIMEOUT_MS,
                                 &local);
    if (r->fsinfo != NULL && sp_json_type(r->fsinfo) != SP_JSON_ARRAY) {
        g_clear_pointer(&r->fsinfo, sp_json_free);
        r->fsinfo_error = g_strdup("guest-get-fsinfo: the answer is not a list");
    } else if (r->fsinfo == NULL) {
        r->fsinfo_error = g_strdup(local->message);
    }
}

gboolean sp_agent_freeze(SpAgent *agent, guint lease_ms, SpFreezeResult *ret, GError **error)
{
    g_autoptr(SpJson) reply = NULL;
    SpFreezeResult r = {0};

    if (ret->fsinfo != NULL || ret->fsinfo_error != NULL) { /* read ahead by the caller */
        r.fsinfo = g_steal_pointer(&ret->fsinfo);
        r.fsinfo_error = g_steal_pointer(&ret->fsinfo_error);
    } else {
        sp_agent_read_fsinfo(agent, &r);
    }
    if (agent->stillpoint) {
        g_autoptr(SpJson) args = sp_json_new_object();
        gint64 lease = lease_ms;
        /* The agent refuses a lease outside its configured range: stay inside it. */
        if (agent->max_lease_ms > 0 && lease > agent->max_lease_ms)
            lease = agent->max_lease_ms;
        if (lease < agent->min_lease_ms)
            lease = agent->min_lease_ms;
        sp_json_object_set_int(args, "lease-ms", lease);
        reply = sp_agent_execute(agent, "stillpoint-freeze", g_steal_pointer(&args),
                                 freeze_timeout(SP_AGENT_FREEZE_TIMEOUT_MS), error);
        if (reply == NULL)
            goto fail;
        r.epoch = sp_json_object_get_int(reply, "epoch", 0);
        /* The agent says what it granted (Windows: at most VSS's hold limit); an agent that
         * does not say granted what was asked. Never more than asked: the deadlines inside the
         * window are cut to fit the lease, and a larger number is not ours to believe. */
        r.lease_ms = sp_json_object_get_int(reply, "lease-ms", lease);
        if (r.lease_ms <= 0 || r.lease_ms > lease)
            r.lease_ms = lease;
        r.frozen = (guint)sp_json_array_len(sp_json_object_get(reply, "frozen"));
        r.skipped = (guint)sp_json_array_len(sp_json_object_get(reply, "skipped"));
        /* Without its epoch the freeze cannot be thawed by stillpoint-thaw: refuse it, so the
         * caller takes the failed-freeze path (which thaws through the standard command). */
        if (r.epoch <= 0) {
            g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL,
                        "guest agent command stillpoint-freeze: the reply has no positive "
                        "epoch");
            goto fail;
        }
        r.reply = g_steal_pointer(&reply);
    } else {
        reply = sp_agent_execute(agent, "guest-fsfreeze-freeze", NULL,
                                 freeze_timeout(SP_AGENT_FREEZE_TIMEOUT_MS), error);
        if (reply == NULL)
            goto fail;
        r.frozen = (guint)MAX(sp_json_get_int(reply), 0);
    }
    *ret = r;
    return TRUE;
fail:
    sp_freeze_result_clear(&r);
    return FALSE;
}

gboolean sp_agent_flush(SpAgent *agent, guint *ret_flushed, GError **error)
{
    g_autoptr(SpJson) reply = sp_agent_execute(agent, "stillpoint-flush", NULL,
                                               SP_AGENT_FLUSH_TIMEOUT_MS, error);
    if (reply == NULL)
        return FALSE;
    *ret_flushed = (guint)MAX(sp_json_object_get_int(reply, "flushed", 0), 0);
    return TRUE;
}

char *sp_agent_fsfreeze_status(SpAgent *agent, GError **error)
{
    g_autoptr(SpJson) reply = sp_agent_execute(agent, "guest-fsfreeze-status", NULL,
                                               SP_AGENT_SYNC_TIMEOUT_MS, error);
    if (reply == NULL)
        return NULL;
    if (sp_json_get_string(reply) == NULL) {
        g_set_error(error, SP_AGENT_ERROR, SP_AGENT_ERROR_PROTOCOL,
                    "guest-fsfreeze-status: the answer is not a string");
        return NULL;
    }
    return g_strdup(sp_json_get_string(reply));
}

gboolean sp_agent_thaw(SpAgent *agent, const SpFreezeResult *freeze, SpThawResult *ret,
                       GError **error)
{
    g_autoptr(SpJson) reply = NULL;
    SpThawResult r = {.held_ms = -1};

    if (agent->stillpoint) {
        g_autoptr(SpJson) args = sp_json_new_object();
        sp_json_object_set_int(args, "epoch", freeze->epoch);
        reply = sp_agent_execute(agent, "stillpoint-thaw", g_steal_pointer(&args),
                                 SP_AGENT_THAW_TIMEOUT_MS, error);
        if (reply == NULL)
            return FALSE;
        r.consistent = sp_json_object_get_bool(reply, "consistent", FALSE);
        r.held_ms = sp_json_object_get_int(reply, "held-ms", -1);
        r.epoch = sp_json_object_get_int(reply, "epoch", 0);
        if (sp_json_object_get_string(reply, "reason") != NULL) {
            g_autofree char *why = sp_guest_text(sp_json_object_get_string(reply, "reason"));
            const char *valid_end;
            g_strlcpy(r.reason, why, sizeof(r.reason));
            /* Cut on a character boundary: the reason goes into D-Bus strings and the store. */
            if (!g_utf8_validate(r.reason, -1, &valid_end))
                r.reason[valid_end - r.reason] = '\0';
        }
    } else {
        /* qemu-ga never thaws on its own; if it still says frozen, the freeze held. */
        g_autofree char *status = sp_agent_fsfreeze_status(agent, error);
        if (status == NULL)
            return FALSE;
        reply = sp_agent_execute(agent, "guest-fsfreeze-thaw", NULL,
                                 SP_AGENT_THAW_TIMEOUT_MS,
                                 error);
        if (reply == NULL)
            return FALSE;
        r.consistent = g_strcmp0(status, "frozen") == 0;
    }
    *ret = r;
    return TRUE;
}
