/* commands: handlers of the agent's commands. Standard ones reply exactly like qemu-ga (plain
 * QGA errors, no code); stillpoint- ones add a stable "code" to every error. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stillpoint/protocol.h"

void sp_freeze_result_clear(SpFreezeResult *r)
{
    for (size_t i = 0; i < r->n_frozen; i++) {
        free(r->frozen[i].mountpoint);
        free(r->frozen[i].fstype);
        free(r->frozen[i].device);
        free(r->frozen[i].uuid);
        free(r->frozen[i].label);
    }
    for (size_t i = 0; i < r->n_skipped; i++) {
        free(r->skipped[i].mountpoint);
        free(r->skipped[i].fstype);
        free(r->skipped[i].primary);
    }
    free(r->frozen);
    free(r->skipped);
    sp_writer_reports_free(r->writers, r->n_writers);
    memset(r, 0, sizeof(*r));
}

void sp_writer_reports_free(SpWriterReport *reports, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(reports[i].name);
        free(reports[i].message);
        free(reports[i].thaw_message);
    }
    free(reports);
}

static SpJson *fs_entry_json(const SpFsEntry *e)
{
    SpJson *o = sp_json_new_object();
    sp_json_object_set_string(o, "mountpoint", e->mountpoint);
    sp_json_object_set_string(o, "type", e->fstype);
    if (e->device)
        sp_json_object_set_string(o, "device", e->device);
    if (e->uuid)
        sp_json_object_set_string(o, "uuid", e->uuid);
    if (e->label)
        sp_json_object_set_string(o, "label", e->label);
    return o;
}

static SpJson *fs_list_json(const SpFsEntry *list, size_t n)
{
    SpJson *a = sp_json_new_array();
    for (size_t i = 0; i < n; i++)
        sp_json_array_append(a, fs_entry_json(&list[i]));
    return a;
}

/* Backend failure → a QGA GenericError; stillpoint- commands carry its code. */
static void backend_error(SpCommandError *err, const SpBackendError *be, bool with_code)
{
    sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, with_code ? be->code : NULL, "%s", be->desc);
}

/* ---- standard qemu-ga commands ---- */

static SpJson *cmd_ping(void *ctx, const SpJson *args, SpCommandError *err)
{
    return NULL; /* {} */
}

static SpJson *cmd_sync(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_new_int(sp_json_object_get_int(args, "id", 0));
}

static SpJson *cmd_info(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    const SpCommandTable *t = sp_commands_table();
    SpFreezeStatus st;
    SpJson *o = sp_json_new_object(), *list = sp_json_new_array();

    c->backend.ops->status(c->backend.self, &st);
    for (const SpCommand *cmd = t->commands; cmd->name; cmd++) {
        SpJson *e = sp_json_new_object();
        sp_json_object_set_string(e, "name", cmd->name);
        /* While frozen qemu-ga lists the refused commands as disabled. */
        sp_json_object_set_bool(e, "enabled", !st.frozen || (cmd->flags & SP_CMD_ALLOWED_WHILE_FROZEN));
        sp_json_object_set_bool(e, "success-response", !(cmd->flags & SP_CMD_NO_REPLY));
        sp_json_array_append(list, e);
    }
    sp_json_object_set_string(o, "version", SP_AGENT_QGA_VERSION);
    sp_json_object_set(o, "supported_commands", list);
    return o;
}

static SpJson *cmd_fsfreeze_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    SpFreezeStatus st;

    c->backend.ops->status(c->backend.self, &st);
    return sp_json_new_string(st.frozen ? "frozen" : "thawed");
}

/* Collect a string list argument into a NULL-terminated array of borrowed strings. */
static const char **string_list(const SpJson *list, size_t *ret_n)
{
    size_t n = sp_json_array_len(list);
    const char **names = calloc(n + 1, sizeof(*names));

    if (!names)
        return NULL;
    for (size_t i = 0; i < n; i++)
        names[i] = sp_json_get_string(sp_json_array_get(list, i));
    *ret_n = n;
    return names;
}

static SpJson *standard_freeze(SpCommands *c, const SpJson *mountpoints, SpCommandError *err)
{
    SpFreezeRequest req = {.kind = SP_SELECT_ALL, .channel = c->channel, .standard = true};
    SpFreezeResult res = {0};
    SpBackendError be = {0};
    const char **names = NULL;
    SpJson *reply;

    if (mountpoints) {
        names = string_list(mountpoints, &req.n_names);
        if (!names) {
            sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL, "out of memory");
            return NULL;
        }
        req.kind = SP_SELECT_MOUNTPOINTS;
        req.names = names;
    }
    if (c->backend.ops->freeze(c->backend.self, &req, &res, &be) < 0) {
        free(names);
        backend_error(err, &be, false);
        return NULL;
    }
    reply = sp_json_new_int((int64_t)res.n_frozen);
    sp_freeze_result_clear(&res);
    free(names);
    return reply;
}

static SpJson *cmd_fsfreeze_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    return standard_freeze(ctx, NULL, err);
}

static SpJson *cmd_fsfreeze_freeze_list(void *ctx, const SpJson *args, SpCommandError *err)
{
    return standard_freeze(ctx, sp_json_object_get(args, "mountpoints"), err);
}

static SpJson *cmd_fsfreeze_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    SpThawResult res;
    SpBackendError be = {0};

    if (c->backend.ops->thaw(c->backend.self, 0, true, &res, &be) < 0) {
        backend_error(err, &be, false);
        return NULL;
    }
    sp_writer_reports_free(res.writers, res.n_writers);
    return sp_json_new_int((int64_t)res.n_thawed);
}

static SpJson *cmd_get_fsinfo(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    SpBackendError be = {0};
    SpJson *r = c->backend.ops->fsinfo(c->backend.self, &be);

    if (!r)
        backend_error(err, &be, false);
    return r;
}

/* ---- stillpoint- extensions ---- */

static SpJson *cmd_sp_capabilities(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    SpJson *o = sp_json_new_object(), *freeze = sp_json_new_object(), *sel = sp_json_new_array();
    SpJson *cmds = sp_json_new_array();

    for (const SpCommand *cmd = sp_commands_table()->commands; cmd->name; cmd++)
        sp_json_array_append(cmds, sp_json_new_string(cmd->name));
    sp_json_array_append(sel, sp_json_new_string("all"));
    sp_json_array_append(sel, sp_json_new_string("mountpoints"));
    sp_json_array_append(sel, sp_json_new_string("disks"));
    sp_json_object_set_string(o, "protocol", SP_PROTOCOL_VERSION);
    sp_json_object_set_string(o, "agent", "stillpoint-agent");
    sp_json_object_set_string(o, "version", c->version);
    sp_json_object_set_string(o, "platform", "linux");
    sp_json_object_set(o, "commands", cmds);
    sp_json_object_set_int(freeze, "default-lease-ms", c->default_lease_ms);
    sp_json_object_set_int(freeze, "min-lease-ms", c->min_lease_ms);
    sp_json_object_set_int(freeze, "max-lease-ms", c->max_lease_ms);
    sp_json_object_set(freeze, "select", sel);
    sp_json_object_set_bool(freeze, "thaw-on-hangup", c->thaw_on_hangup);
    sp_json_object_set_bool(freeze, "standard-thaw-on-hangup", c->standard_thaw_on_hangup);
    sp_json_object_set_bool(freeze, "hooks", c->hooks);
    sp_json_object_set_bool(freeze, "writers", c->writers);
    sp_json_object_set(o, "freeze", freeze);
    return o;
}

/* One entry per writer that took part: its last phase and how it went, then its thaw. */
static SpJson *writers_json(const SpWriterReport *w, size_t n)
{
    SpJson *a = sp_json_new_array();

    for (size_t i = 0; i < n; i++) {
        SpJson *e = sp_json_new_object();
        sp_json_object_set_string(e, "name", w[i].name);
        sp_json_object_set_string(e, "phase", w[i].phase ? w[i].phase : "prepare");
        sp_json_object_set_string(e, "result", w[i].result ? w[i].result : "ok");
        sp_json_object_set_int(e, "ms", w[i].ms);
        if (w[i].message)
            sp_json_object_set_string(e, "message", w[i].message);
        if (w[i].thaw_result)
            sp_json_object_set_string(e, "thaw", w[i].thaw_result);
        if (w[i].thaw_message)
            sp_json_object_set_string(e, "thaw-message", w[i].thaw_message);
        sp_json_array_append(a, e);
    }
    return a;
}

static SpJson *freeze_result_json(const SpFreezeResult *res)
{
    SpJson *o = sp_json_new_object(), *skipped = sp_json_new_array();

    for (size_t i = 0; i < res->n_skipped; i++) {
        const SpSkipEntry *s = &res->skipped[i];
        SpJson *e = sp_json_new_object();
        sp_json_object_set_string(e, "mountpoint", s->mountpoint);
        sp_json_object_set_string(e, "type", s->fstype);
        sp_json_object_set_string(e, "reason", s->reason);
        if (s->primary)
            sp_json_object_set_string(e, "primary", s->primary);
        sp_json_array_append(skipped, e);
    }
    sp_json_object_set_int(o, "epoch", res->epoch);
    sp_json_object_set_int(o, "lease-ms", res->lease_ms);
    sp_json_object_set(o, "frozen", fs_list_json(res->frozen, res->n_frozen));
    sp_json_object_set(o, "skipped", skipped);
    sp_json_object_set(o, "writers", writers_json(res->writers, res->n_writers));
    return o;
}

static bool check_names(const SpJson *list, const char *what, SpCommandError *err)
{
    if (list && sp_json_array_len(list) == 0) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_INVALID_ARGUMENT,
                             "'%s' is empty: omit it to freeze every filesystem", what);
        return false;
    }
    for (size_t i = 0; list && i < sp_json_array_len(list); i++) {
        const char *s = sp_json_get_string(sp_json_array_get(list, i));
        if (!s || !*s || strlen(s) != sp_json_get_string_len(sp_json_array_get(list, i))) {
            sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_INVALID_ARGUMENT,
                                 "'%s' item %zu is empty or contains NUL", what, i);
            return false;
        }
    }
    return true;
}

static SpJson *cmd_sp_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    const SpJson *mps = sp_json_object_get(args, "mountpoints");
    const SpJson *disks = sp_json_object_get(args, "disks");
    const SpJson *list = mps ? mps : disks;
    SpFreezeRequest req = {.kind = SP_SELECT_ALL, .channel = c->channel};
    SpFreezeResult res = {0};
    SpBackendError be = {0};
    const char **names = NULL;
    SpJson *reply;

    if (mps && disks) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_INVALID_ARGUMENT,
                             "give 'mountpoints' or 'disks', not both");
        return NULL;
    }
    if (!check_names(mps, "mountpoints", err) || !check_names(disks, "disks", err))
        return NULL;
    req.lease_ms = sp_json_object_get_int(args, "lease-ms", 0);
    if (sp_json_object_get(args, "lease-ms") &&
        (req.lease_ms < c->min_lease_ms || req.lease_ms > c->max_lease_ms)) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_LEASE_OUT_OF_RANGE,
                             "'lease-ms' must be between %lld and %lld", (long long)c->min_lease_ms,
                             (long long)c->max_lease_ms);
        return NULL;
    }
    if (list) {
        names = string_list(list, &req.n_names);
        req.names = names;
        req.kind = mps ? SP_SELECT_MOUNTPOINTS : SP_SELECT_DISKS;
    }
    if (c->backend.ops->freeze(c->backend.self, &req, &res, &be) < 0) {
        free(names);
        backend_error(err, &be, true);
        return NULL;
    }
    reply = freeze_result_json(&res);
    sp_freeze_result_clear(&res);
    free(names);
    return reply;
}

/* syncfs the selection without freezing: the host calls it just before stillpoint-freeze so that
 * the flush inside the freeze has little left to write. Not while frozen (the freeze has
 * flushed, and a syncfs would block on the frozen filesystems). */
static SpJson *cmd_sp_flush(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    const SpJson *mps = sp_json_object_get(args, "mountpoints");
    const SpJson *disks = sp_json_object_get(args, "disks");
    const SpJson *list = mps ? mps : disks;
    SpFreezeRequest req = {.kind = SP_SELECT_ALL, .channel = c->channel};
    SpFlushResult res = {0};
    SpBackendError be = {0};
    SpFreezeStatus st;
    const char **names = NULL;
    SpJson *reply;

    if (mps && disks) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_INVALID_ARGUMENT,
                             "give 'mountpoints' or 'disks', not both");
        return NULL;
    }
    if (!check_names(mps, "mountpoints", err) || !check_names(disks, "disks", err))
        return NULL;
    c->backend.ops->status(c->backend.self, &st);
    if (st.frozen) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_ALREADY_FROZEN,
                             "filesystems are frozen (freeze %lld): the freeze has flushed them",
                             (long long)st.epoch);
        return NULL;
    }
    if (!c->backend.ops->flush) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_ERROR_CODE_FAILED,
                             "this platform cannot flush without freezing");
        return NULL;
    }
    if (list) {
        names = string_list(list, &req.n_names);
        req.names = names;
        req.kind = mps ? SP_SELECT_MOUNTPOINTS : SP_SELECT_DISKS;
    }
    if (c->backend.ops->flush(c->backend.self, &req, &res, &be) < 0) {
        free(names);
        backend_error(err, &be, true);
        return NULL;
    }
    free(names);
    reply = sp_json_new_object();
    sp_json_object_set_int(reply, "flushed", (int64_t)res.n_flushed);
    sp_json_object_set_int(reply, "ms", res.ms);
    return reply;
}

static SpJson *thaw_json(const SpThawResult *r)
{
    SpJson *o = sp_json_new_object();
    sp_json_object_set_int(o, "epoch", r->epoch);
    sp_json_object_set_int(o, "thawed", (int64_t)r->n_thawed);
    sp_json_object_set_bool(o, "consistent", r->consistent);
    sp_json_object_set_string(o, "reason", r->reason ? r->reason : "requested");
    sp_json_object_set_int(o, "held-ms", r->held_ms);
    return o;
}

static SpJson *cmd_sp_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    SpThawResult res;
    SpBackendError be = {0};
    SpJson *reply;
    int64_t epoch = sp_json_object_get_int(args, "epoch", 0);

    if (sp_json_object_get(args, "epoch") && epoch <= 0) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_INVALID_ARGUMENT,
                             "'epoch' must be the positive number stillpoint-freeze returned");
        return NULL;
    }
    if (c->backend.ops->thaw(c->backend.self, epoch, false, &res, &be) < 0) {
        backend_error(err, &be, true);
        return NULL;
    }
    reply = thaw_json(&res);
    sp_json_object_set(reply, "writers", writers_json(res.writers, res.n_writers));
    sp_writer_reports_free(res.writers, res.n_writers);
    return reply;
}

static SpJson *cmd_sp_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpCommands *c = ctx;
    SpFreezeStatus st;
    SpJson *o = sp_json_new_object();

    c->backend.ops->status(c->backend.self, &st);
    sp_json_object_set_string(o, "status", st.frozen ? "frozen" : "thawed");
    sp_json_object_set_int(o, "epoch", st.epoch);
    if (st.frozen) {
        sp_json_object_set_int(o, "lease-ms", st.lease_ms);
        sp_json_object_set_int(o, "remaining-ms", st.remaining_ms);
        sp_json_object_set_int(o, "held-ms", st.held_ms);
    }
    sp_json_object_set(o, "frozen", fs_list_json(st.frozen_fs, st.n_frozen_fs));
    if (st.has_last_thaw)
        sp_json_object_set(o, "last-thaw", thaw_json(&st.last_thaw));
    sp_json_object_set(o, "writers", writers_json(st.writers, st.n_writers));
    return o;
}

/* ---- the table ---- */

static const SpArgSpec sync_args[] = {{"id", SP_ARG_INT, false}, {NULL, 0, false}};
static const SpArgSpec freeze_list_args[] = {{"mountpoints", SP_ARG_STRING_LIST, true},
                                             {NULL, 0, false}};
static const SpArgSpec sp_freeze_args[] = {{"mountpoints", SP_ARG_STRING_LIST, true},
                                           {"disks", SP_ARG_STRING_LIST, true},
                                           {"lease-ms", SP_ARG_INT, true},
                                           {NULL, 0, false}};
static const SpArgSpec sp_flush_args[] = {{"mountpoints", SP_ARG_STRING_LIST, true},
                                          {"disks", SP_ARG_STRING_LIST, true},
                                          {NULL, 0, false}};
static const SpArgSpec sp_thaw_args[] = {{"epoch", SP_ARG_INT, true}, {NULL, 0, false}};

enum { FROZEN_OK = SP_CMD_ALLOWED_WHILE_FROZEN };

static const SpCommand commands[] = {
    {"guest-sync-delimited", cmd_sync, sync_args, FROZEN_OK | SP_CMD_DELIMITED_REPLY},
    {"guest-sync", cmd_sync, sync_args, FROZEN_OK},
    {"guest-ping", cmd_ping, NULL, FROZEN_OK},
    {"guest-info", cmd_info, NULL, FROZEN_OK},
    {"guest-fsfreeze-status", cmd_fsfreeze_status, NULL, FROZEN_OK},
    {"guest-fsfreeze-freeze", cmd_fsfreeze_freeze, NULL, 0},
    {"guest-fsfreeze-freeze-list", cmd_fsfreeze_freeze_list, freeze_list_args, 0},
    {"guest-fsfreeze-thaw", cmd_fsfreeze_thaw, NULL, FROZEN_OK},
    {"guest-get-fsinfo", cmd_get_fsinfo, NULL, 0},
    /* The extensions answer while frozen: freeze says "already-frozen" itself, with a code. */
    {"stillpoint-capabilities", cmd_sp_capabilities, NULL, FROZEN_OK},
    {"stillpoint-freeze", cmd_sp_freeze, sp_freeze_args, FROZEN_OK},
    {"stillpoint-flush", cmd_sp_flush, sp_flush_args, FROZEN_OK},
    {"stillpoint-thaw", cmd_sp_thaw, sp_thaw_args, FROZEN_OK},
    {"stillpoint-status", cmd_sp_status, NULL, FROZEN_OK},
    {NULL, NULL, NULL, 0},
};

static const SpCommandTable table = {commands};

const SpCommandTable *sp_commands_table(void)
{
    return &table;
}

SpJson *sp_commands_dispatch(SpCommands *c, unsigned channel, const SpJson *message,
                             unsigned *ret_flags)
{
    SpFreezeStatus st;

    c->channel = channel;
    c->backend.ops->status(c->backend.self, &st);
    /* The library adds the dispatcher's codes (command-not-found, invalid-arguments, ...) to
     * stillpoint- errors; handlers name their own. */
    return sp_command_dispatch(&table, c, message, st.frozen, ret_flags);
}
