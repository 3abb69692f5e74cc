/* agent-freeze: the freeze, thaw and flush commands, standard and stillpoint-: their argument
 * checks, the lease bounds, and what a standard thaw says about a freeze that ended by itself. */
#include "agent-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const SpFreezeBackendOps *ops(const SpAgentCommands *c)
{
    return c->config.backend.ops;
}

/* Backend failure → a QGA GenericError; stillpoint- commands carry its code (the dispatcher
 * drops it for standard commands). */
static void backend_error(SpCommandError *err, const SpBackendError *be)
{
    sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, be->code, "%s", be->desc);
}

/* A string list argument as a NULL-terminated array of borrowed strings. */
static const char **string_list(const SpJson *list, size_t *ret_n)
{
    size_t n = sp_json_array_len(list);
    const char **names = sp_calloc(n + 1, sizeof(*names));

    for (size_t i = 0; i < n; i++)
        names[i] = sp_json_get_string(sp_json_array_get(list, i));
    *ret_n = n;
    return names;
}

/* ---- standard qemu-ga commands ---- */

static void note_standard_end(SpAgentCommands *c);

static SpJson *standard_freeze(SpAgentCommands *c, const SpJson *mountpoints, SpCommandError *err)
{
    SpFreezeRequest req = {.kind = SP_SELECT_ALL, .lease_ms = c->config.default_lease_ms,
                           .channel = c->channel, .standard = true};
    SpBackendFreezeResult res = {0};
    SpBackendError be = {0};
    const char **names = NULL;
    SpJson *reply;

    if (mountpoints) {
        names = string_list(mountpoints, &req.n_names);
        req.kind = SP_SELECT_MOUNTPOINTS;
        req.names = names;
    }
    note_standard_end(c);
    if (ops(c)->freeze(c->config.backend.self, &req, &res, &be) < 0) {
        free(names);
        backend_error(err, &be);
        return NULL;
    }
    if (res.n_frozen > 0)
        c->standard_epoch = res.epoch;
    reply = sp_json_new_int((int64_t)res.n_frozen);
    sp_backend_freeze_result_clear(&res);
    free(names);
    return reply;
}

SpJson *sp_agent_cmd_fsfreeze_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    return standard_freeze(ctx, NULL, err);
}

SpJson *sp_agent_cmd_fsfreeze_freeze_list(void *ctx, const SpJson *args, SpCommandError *err)
{
    return standard_freeze(ctx, sp_json_object_get(args, "mountpoints"), err);
}

/* A freeze that did not hold until the thaw that ended it: why, in words a qemu-ga client shows
 * its user (the first one is qemu-ga's own Windows wording). */
static void ended_error(const SpAgentCommands *c, const SpBackendThawResult *t, bool before,
                        SpCommandError *err)
{
    const char *when = before ? "had already thawed the filesystems" : "did not hold";

    if (strcmp(t->reason, "hold-limit") == 0)
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL,
                             "couldn't hold writes: fsfreeze is limited up to %lld seconds",
                             (long long)(c->config.hold_limit_ms / 1000));
    else if (strcmp(t->reason, "lease-expired") == 0)
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL,
                             "the freeze's lease expired after %lld ms and the agent %s: a "
                             "snapshot taken since the freeze is not consistent",
                             (long long)t->held_ms, when);
    else
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL,
                             "the freeze %s (%s%s%s): a snapshot taken since the freeze is not "
                             "consistent", when, t->reason, t->failed_writer ? ", writer " : "",
                             t->failed_writer ? t->failed_writer : "");
}

/* Notes how the last standard freeze ended by itself, while the backend still reports it as its
 * last thaw: called before every freeze (which replaces that record) and every standard thaw. */
static void note_standard_end(SpAgentCommands *c)
{
    SpBackendStatus st;

    if (c->standard_epoch == 0 || c->standard_end.epoch == c->standard_epoch)
        return;
    ops(c)->status(c->config.backend.self, &st);
    if (st.frozen || !st.has_last_thaw || st.last_thaw.epoch != c->standard_epoch ||
        !st.last_thaw.reason || strcmp(st.last_thaw.reason, "requested") == 0)
        return;
    c->standard_end.epoch = c->standard_epoch;
    c->standard_end.reason = st.last_thaw.reason;
    c->standard_end.held_ms = st.last_thaw.held_ms;
    snprintf(c->standard_end.failed_writer, sizeof(c->standard_end.failed_writer), "%s",
             st.last_thaw.failed_writer ? st.last_thaw.failed_writer : "");
}

/* guest-fsfreeze-thaw of a thawed guest: 0, as qemu-ga — except once after the last standard
 * freeze ended by itself (lease, hang-up, a platform limit), even when other freezes came and
 * went since: libvirt or Proxmox would record the snapshot they took meanwhile as quiesced. */
static SpJson *standard_thaw_after_end(SpAgentCommands *c, SpCommandError *err)
{
    SpBackendThawResult ended = {0};

    note_standard_end(c);
    if (c->standard_epoch == 0 || c->standard_end_reported == c->standard_epoch ||
        c->standard_end.epoch != c->standard_epoch)
        return sp_json_new_int(0);
    c->standard_end_reported = c->standard_epoch;
    ended.epoch = c->standard_end.epoch;
    ended.reason = c->standard_end.reason;
    ended.held_ms = c->standard_end.held_ms;
    ended.failed_writer = c->standard_end.failed_writer[0] ? c->standard_end.failed_writer : NULL;
    ended_error(c, &ended, true, err);
    return NULL;
}

SpJson *sp_agent_cmd_fsfreeze_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgentCommands *c = ctx;
    SpBackendThawResult res = {0};
    SpBackendError be = {0};
    SpBackendStatus st;
    SpJson *reply = NULL;

    ops(c)->status(c->config.backend.self, &st);
    if (!st.frozen)
        return standard_thaw_after_end(c, err);
    if (!sp_agent_owner_may_thaw_standard(c, &st, err))
        return NULL;
    if (ops(c)->thaw(c->config.backend.self, 0, true, &res, &be) < 0) {
        backend_error(err, &be);
        return NULL;
    }
    if (res.epoch == c->standard_epoch)
        c->standard_end_reported = res.epoch;
    /* The freeze ended now, but not because of this request (a platform failure at thaw). */
    if (res.reason && strcmp(res.reason, "requested") != 0)
        ended_error(c, &res, false, err);
    else
        reply = sp_json_new_int((int64_t)res.n_thawed);
    sp_backend_thaw_result_clear(&res);
    return reply;
}

/* ---- stillpoint- extensions ---- */

static bool check_names(const SpJson *list, const char *what, SpCommandError *err)
{
    if (list && sp_json_array_len(list) == 0) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_ERROR_CODE_INVALID_ARGUMENTS,
                             "'%s' is empty: omit it to freeze every filesystem", what);
        return false;
    }
    for (size_t i = 0; list && i < sp_json_array_len(list); i++) {
        const SpJson *item = sp_json_array_get(list, i);
        const char *s = sp_json_get_string(item);
        if (!s || !*s || strlen(s) != sp_json_get_string_len(item)) {
            sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_ERROR_CODE_INVALID_ARGUMENTS,
                                 "'%s' item %zu is empty or contains NUL", what, i);
            return false;
        }
    }
    return true;
}

/* The selection of stillpoint-freeze and -flush: mountpoints, disks, or (neither) all. Sets
 * *ret_names (free()) when there is a list. */
static bool read_selection(const SpJson *args, SpFreezeRequest *req, const char ***ret_names,
                           SpCommandError *err)
{
    const SpJson *mps = sp_json_object_get(args, "mountpoints");
    const SpJson *disks = sp_json_object_get(args, "disks");
    const SpJson *list = mps ? mps : disks;

    *ret_names = NULL;
    if (mps && disks) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_ERROR_CODE_INVALID_ARGUMENTS,
                             "give 'mountpoints' or 'disks', not both");
        return false;
    }
    if (!check_names(mps, "mountpoints", err) || !check_names(disks, "disks", err))
        return false;
    if (!list)
        return true;
    *ret_names = string_list(list, &req->n_names);
    req->names = *ret_names;
    req->kind = mps ? SP_SELECT_MOUNTPOINTS : SP_SELECT_DISKS;
    return true;
}

static bool read_lease(const SpAgentCommands *c, const SpJson *args, SpFreezeRequest *req,
                       SpCommandError *err)
{
    req->lease_ms = sp_json_object_get_int(args, "lease-ms", c->config.default_lease_ms);
    if (req->lease_ms < c->config.min_lease_ms || req->lease_ms > c->config.max_lease_ms) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_LEASE_OUT_OF_RANGE,
                             "'lease-ms' must be between %lld and %lld",
                             (long long)c->config.min_lease_ms, (long long)c->config.max_lease_ms);
        return false;
    }
    return true;
}

static bool refuse_if_frozen(SpAgentCommands *c, const char *why, SpCommandError *err)
{
    SpBackendStatus st;

    ops(c)->status(c->config.backend.self, &st);
    if (!st.frozen)
        return false;
    sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_ALREADY_FROZEN,
                         "filesystems are %s (freeze %lld)%s", why ? "frozen" : "already frozen",
                         (long long)st.epoch, why ? why : "; thaw first");
    return true;
}

typedef SpJson *SelectionCmd(SpAgentCommands *c, const SpJson *args, const SpFreezeRequest *req,
                             SpCommandError *err);

/* Runs cmd on the filesystems args select (mountpoints, disks, or all of them). */
static SpJson *on_selection(SpAgentCommands *c, const SpJson *args, SpCommandError *err,
                            SelectionCmd *cmd)
{
    SpFreezeRequest req = {.kind = SP_SELECT_ALL, .channel = c->channel};
    const char **names = NULL;
    SpJson *reply;

    if (!read_selection(args, &req, &names, err))
        return NULL;
    reply = cmd(c, args, &req, err);
    free(names);
    return reply;
}

static SpJson *freeze_selection(SpAgentCommands *c, const SpJson *args,
                                const SpFreezeRequest *selection, SpCommandError *err)
{
    SpFreezeRequest req = *selection;
    SpBackendFreezeResult res = {0};
    SpBackendError be = {0};
    char token[SP_AGENT_TOKEN_LEN + 1];
    SpJson *reply;

    if (!read_lease(c, args, &req, err) || refuse_if_frozen(c, NULL, err) ||
        !sp_agent_owner_new_token(c, token, err))
        return NULL;
    note_standard_end(c);
    if (ops(c)->freeze(c->config.backend.self, &req, &res, &be) < 0) {
        backend_error(err, &be);
        return NULL;
    }
    sp_agent_owner_set(c, res.epoch, token);
    reply = sp_agent_freeze_json(&res, token);
    sp_backend_freeze_result_clear(&res);
    return reply;
}

SpJson *sp_agent_cmd_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    return on_selection(ctx, args, err, freeze_selection);
}

/* syncfs the selection without freezing: the host calls it just before stillpoint-freeze so that
 * the flush inside the freeze has little left to write. Not while frozen (the freeze has
 * flushed, and a syncfs would block on the frozen filesystems). */
static SpJson *flush_selection(SpAgentCommands *c, const SpJson *args,
                               const SpFreezeRequest *req, SpCommandError *err)
{
    SpBackendFlushResult res = {0};
    SpBackendError be = {0};
    SpJson *reply;

    if (refuse_if_frozen(c, ": the freeze has flushed them", err))
        return NULL;
    if (ops(c)->flush(c->config.backend.self, req, &res, &be) < 0) {
        backend_error(err, &be);
        return NULL;
    }
    reply = sp_json_new_object();
    sp_json_object_set_int(reply, "flushed", (int64_t)res.n_flushed);
    sp_json_object_set_int(reply, "ms", res.ms);
    return reply;
}

SpJson *sp_agent_cmd_flush(void *ctx, const SpJson *args, SpCommandError *err)
{
    return on_selection(ctx, args, err, flush_selection);
}

SpJson *sp_agent_cmd_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgentCommands *c = ctx;
    SpBackendThawResult res = {0};
    SpBackendError be = {0};
    SpBackendStatus st;
    SpJson *reply;
    int64_t epoch = sp_json_object_get_int(args, "epoch", 0);

    if (sp_json_object_get(args, "epoch") && epoch <= 0) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_ERROR_CODE_INVALID_ARGUMENTS,
                             "'epoch' must be the positive number stillpoint-freeze returned");
        return NULL;
    }
    ops(c)->status(c->config.backend.self, &st);
    if (!sp_agent_owner_may_thaw(c, &st, epoch, sp_json_object_get(args, "token"), err))
        return NULL;
    if (ops(c)->thaw(c->config.backend.self, epoch, false, &res, &be) < 0) {
        backend_error(err, &be);
        return NULL;
    }
    reply = sp_agent_thaw_json(&res, true);
    sp_backend_thaw_result_clear(&res);
    return reply;
}
