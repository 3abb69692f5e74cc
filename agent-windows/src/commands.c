/* The agent's command table: the standard qemu-ga fsfreeze commands answered as qemu-ga does,
 * and the stillpoint- extensions, all on the VSS freezer. */
#include "agent.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"

/* Stable codes of the stillpoint- errors (protocol/PROTOCOL.md, "Error codes"). */
#define CODE_ALREADY_FROZEN "already-frozen"
#define CODE_NOT_FROZEN "not-frozen"
#define CODE_BAD_LEASE "invalid-lease"
#define CODE_BAD_MOUNTPOINT "invalid-mountpoint"
#define CODE_EPOCH "epoch-mismatch"
#define CODE_FREEZE_FAILED "freeze-failed"

static SpAgent *agent_of(void *ctx) { return ctx; }

static void to_utf8(const wchar_t *w, char *ret, size_t size)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, ret, (int)size, NULL, NULL);
    if (n <= 0)
        ret[0] = '\0';
}

/* Freezer failures, as qemu-ga words them for the standard commands, with a code for ours. */
static void freezer_error(SpCommandError *err, const SpVssError *verr, bool extension)
{
    const char *code = CODE_FREEZE_FAILED;
    switch (verr->code) {
    case SP_VSS_E_BUSY: code = CODE_ALREADY_FROZEN; break;
    case SP_VSS_E_NOT_FROZEN: code = CODE_NOT_FROZEN; break;
    case SP_VSS_E_BAD_VOLUME: code = CODE_BAD_MOUNTPOINT; break;
    case SP_VSS_E_EPOCH: code = CODE_EPOCH; break;
    default: break;
    }
    sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, extension ? code : NULL, "%s",
                         verr->desc);
}

/* guest-sync and guest-sync-delimited echo the id. */
static SpJson *cmd_sync(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_copy(sp_json_object_get(args, "id"));
}

static SpJson *cmd_ping(void *ctx, const SpJson *args, SpCommandError *err)
{
    return NULL;
}

static SpJson *cmd_info(void *ctx, const SpJson *args, SpCommandError *err)
{
    bool frozen = sp_vss_freezer_state(agent_of(ctx)->freezer) != SP_VSS_STATE_THAWED;
    SpJson *ret = sp_json_new_object(), *list = sp_json_new_array();
    if (!ret || !list) {
        sp_json_free(ret);
        sp_json_free(list);
        return NULL;
    }
    for (const SpCommand *c = sp_agent_commands.commands; c->name; c++) {
        SpJson *entry = sp_json_new_object();
        sp_json_object_set_string(entry, "name", c->name);
        sp_json_object_set_bool(entry, "enabled",
                                !frozen || (c->flags & SP_CMD_ALLOWED_WHILE_FROZEN));
        sp_json_object_set_bool(entry, "success-response", !(c->flags & SP_CMD_NO_REPLY));
        sp_json_array_append(list, entry);
    }
    sp_json_object_set_string(ret, "version", SP_AGENT_VERSION);
    sp_json_object_set(ret, "supported_commands", list);
    return ret;
}

static SpJson *cmd_fsfreeze_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    bool frozen = sp_vss_freezer_state(agent_of(ctx)->freezer) != SP_VSS_STATE_THAWED;
    return sp_json_new_string(frozen ? "frozen" : "thawed");
}

/* Copies a JSON list of mount points into wide strings; NULL on allocation failure. */
static wchar_t **mounts_from_json(const SpJson *list, size_t *ret_n)
{
    size_t n = sp_json_array_len(list);
    wchar_t **mounts = calloc(n + 1, sizeof(*mounts));
    for (size_t i = 0; mounts && i < n; i++) {
        const char *s = sp_json_get_string(sp_json_array_get(list, i));
        int len = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
        mounts[i] = len > 0 ? calloc((size_t)len, sizeof(wchar_t)) : NULL;
        if (!mounts[i]) {
            for (size_t j = 0; j < i; j++)
                free(mounts[j]);
            free(mounts);
            return NULL;
        }
        MultiByteToWideChar(CP_UTF8, 0, s, -1, mounts[i], len);
    }
    *ret_n = n;
    return mounts;
}

static void mounts_free(wchar_t **mounts)
{
    for (size_t i = 0; mounts && mounts[i]; i++)
        free(mounts[i]);
    free(mounts);
}

/* Runs a freeze; returns false with err set on failure. */
static bool do_freeze(SpAgent *agent, const SpJson *mountpoints, DWORD lease_ms,
                      SpVssFreezeResult *fr, SpCommandError *err, bool extension)
{
    size_t n = 0;
    wchar_t **mounts = NULL;
    if (mountpoints) {
        mounts = mounts_from_json(mountpoints, &n);
        if (!mounts) {
            sp_command_error_set(err, NULL, NULL, "out of memory");
            return false;
        }
    }
    SpVssError verr = { 0 };
    int r = sp_vss_freezer_freeze(agent->freezer, (const wchar_t *const *)mounts, n, lease_ms, fr,
                                  &verr);
    mounts_free(mounts);
    if (r < 0) {
        sp_log(SP_LOG_ERROR, "freeze failed: %s", verr.desc);
        freezer_error(err, &verr, extension);
        return false;
    }
    sp_log(SP_LOG_INFO, "froze %zu volume(s), epoch %llu, window %lu ms", fr->n_frozen,
           (unsigned long long)fr->epoch, (unsigned long)fr->lease_ms);
    return true;
}

static SpJson *cmd_fsfreeze_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpVssFreezeResult fr;
    if (!do_freeze(agent, NULL, agent->default_lease_ms, &fr, err, false))
        return NULL;
    return sp_json_new_int((int64_t)fr.n_frozen);
}

static SpJson *cmd_fsfreeze_freeze_list(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpVssFreezeResult fr;
    const SpJson *list = sp_json_object_get(args, "mountpoints");
    if (!do_freeze(agent, list && sp_json_array_len(list) ? list : NULL, agent->default_lease_ms,
                   &fr, err, false))
        return NULL;
    return sp_json_new_int((int64_t)fr.n_frozen);
}

/* Thaws and logs the outcome. */
static int do_thaw(SpAgent *agent, uint64_t epoch, SpVssThawResult *tr, SpVssError *verr)
{
    int r = sp_vss_freezer_thaw(agent->freezer, epoch, tr, verr);
    if (r == SP_VSS_OK)
        sp_log(tr->consistent ? SP_LOG_INFO : SP_LOG_WARNING,
               "thawed epoch %llu after %llu ms: %s%s%s", (unsigned long long)tr->epoch,
               (unsigned long long)tr->held_ms,
               tr->consistent ? "consistent" : sp_vss_end_str(tr->end),
               tr->failed_writer[0] ? ", writer " : "", tr->failed_writer);
    return r;
}

/* qemu-ga: the number of volumes thawed, 0 when nothing was frozen; a freeze that did not hold
 * (VSS's 10 s limit, a writer) is an error, since the snapshot taken meanwhile is not consistent. */
static SpJson *cmd_fsfreeze_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpVssThawResult tr;
    SpVssError verr = { 0 };
    int r = do_thaw(agent_of(ctx), 0, &tr, &verr);
    if (r == SP_VSS_E_NOT_FROZEN)
        return sp_json_new_int(0);
    if (r < 0) {
        freezer_error(err, &verr, false);
        return NULL;
    }
    if (tr.end == SP_VSS_END_HOLD_LIMIT) {
        sp_command_error_set(err, NULL, NULL,
                             "couldn't hold writes: fsfreeze is limited up to %u seconds",
                             SP_VSS_FLUSH_HOLD_LIMIT_MS / 1000);
        return NULL;
    }
    if (!tr.consistent) {
        sp_command_error_set(err, NULL, NULL, "the freeze did not hold until thaw: %s%s%s",
                             sp_vss_end_str(tr.end), tr.failed_writer[0] ? ": writer " : "",
                             tr.failed_writer);
        return NULL;
    }
    return sp_json_new_int((int64_t)tr.n_thawed);
}

static SpJson *volume_json(const SpVssVolume *v)
{
    char buf[MAX_PATH * 3];
    SpJson *o = sp_json_new_object();
    to_utf8(v->name, buf, sizeof(buf));
    sp_json_object_set_string(o, "name", buf);
    to_utf8(v->mount, buf, sizeof(buf));
    sp_json_object_set_string(o, "mountpoint", buf);
    to_utf8(v->fstype, buf, sizeof(buf));
    sp_json_object_set_string(o, "type", buf);
    sp_json_object_set(o, "disk", sp_json_new_array());
    return o;
}

static SpJson *cmd_get_fsinfo(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpVssVolume volumes[SP_VSS_MAX_VOLUMES];
    size_t n = 0;
    if (sp_vss_freezer_list_volumes(agent_of(ctx)->freezer, volumes, SP_VSS_MAX_VOLUMES, &n) < 0) {
        sp_command_error_set(err, NULL, NULL, "cannot list the volumes");
        return NULL;
    }
    SpJson *list = sp_json_new_array();
    for (size_t i = 0; i < n; i++)
        sp_json_array_append(list, volume_json(&volumes[i]));
    return list;
}

static SpJson *cmd_capabilities(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpJson *ret = sp_json_new_object();
    sp_json_object_set_string(ret, "version", SP_AGENT_VERSION);
    sp_json_object_set_string(ret, "protocol", SP_PROTOCOL_VERSION);
    sp_json_object_set_string(ret, "os", "windows");
    sp_json_object_set_string(ret, "freeze-backend", agent->backend_name);
    sp_json_object_set_bool(ret, "leased-freeze", true);
    sp_json_object_set_bool(ret, "writers", true);
    sp_json_object_set_int(ret, "default-lease-ms", agent->default_lease_ms);
    sp_json_object_set_int(ret, "max-lease-ms", SP_AGENT_MAX_LEASE_MS);
    sp_json_object_set_int(ret, "hold-limit-ms", SP_VSS_FLUSH_HOLD_LIMIT_MS);
    return ret;
}

static SpJson *cmd_sp_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    int64_t lease = sp_json_object_get_int(args, "lease-ms", agent->default_lease_ms);
    if (lease < SP_AGENT_MIN_LEASE_MS || lease > SP_AGENT_MAX_LEASE_MS) {
        sp_command_error_set(err, NULL, CODE_BAD_LEASE,
                             "lease-ms %lld is out of range: it must be %u..%u",
                             (long long)lease, SP_AGENT_MIN_LEASE_MS, SP_AGENT_MAX_LEASE_MS);
        return NULL;
    }
    SpVssFreezeResult fr;
    if (!do_freeze(agent, sp_json_object_get(args, "mountpoints"), (DWORD)lease, &fr, err, true))
        return NULL;
    SpJson *ret = sp_json_new_object(), *frozen = sp_json_new_array();
    char buf[MAX_PATH * 3];
    for (size_t i = 0; i < fr.n_frozen; i++) {
        to_utf8(fr.frozen[i].mount, buf, sizeof(buf));
        sp_json_array_append(frozen, sp_json_new_string(buf));
    }
    sp_json_object_set(ret, "frozen", frozen);
    sp_json_object_set(ret, "skipped", sp_json_new_array());
    sp_json_object_set_int(ret, "epoch", (int64_t)fr.epoch);
    /* The window VSS grants: the lease, capped by the flush-and-hold limit. */
    sp_json_object_set_int(ret, "lease-ms", fr.lease_ms);
    sp_json_object_set_int(ret, "hold-limit-ms", fr.hold_limit_ms);
    return ret;
}

static SpJson *writers_json(const SpVssThawResult *tr)
{
    SpJson *list = sp_json_new_array();
    for (size_t i = 0; i < tr->n_writers; i++) {
        const SpVssWriterStatus *w = &tr->writers[i];
        SpJson *o = sp_json_new_object();
        char hr[16];
        snprintf(hr, sizeof(hr), "0x%08lx", (unsigned long)w->failure);
        sp_json_object_set_string(o, "name", w->name);
        sp_json_object_set_string(o, "state", sp_vss_writer_state_str(w->state));
        sp_json_object_set_bool(o, "failed", sp_vss_writer_state_failed(w->state));
        sp_json_object_set_string(o, "error", hr);
        sp_json_array_append(list, o);
    }
    return list;
}

/* Our words for why a freeze ended, shared with the Linux agent where they mean the same. */
static const char *end_reason(SpVssEnd end)
{
    switch (end) {
    case SP_VSS_END_NONE: return "requested";
    case SP_VSS_END_HANGUP: return "channel-hangup";
    case SP_VSS_END_STOPPED: return "shutdown";
    default: return sp_vss_end_str(end);
    }
}

static SpJson *cmd_sp_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpVssThawResult tr;
    SpVssError verr = { 0 };
    int64_t epoch = sp_json_object_get_int(args, "epoch", 0);
    if (epoch < 0) {
        sp_command_error_set(err, NULL, CODE_EPOCH, "epoch %lld is not a freeze's epoch",
                             (long long)epoch);
        return NULL;
    }
    if (do_thaw(agent_of(ctx), (uint64_t)epoch, &tr, &verr) < 0) {
        freezer_error(err, &verr, true);
        return NULL;
    }
    SpJson *ret = sp_json_new_object();
    sp_json_object_set_bool(ret, "consistent", tr.consistent);
    sp_json_object_set_int(ret, "held-ms", (int64_t)tr.held_ms);
    sp_json_object_set_int(ret, "epoch", (int64_t)tr.epoch);
    sp_json_object_set_string(ret, "reason", end_reason(tr.end));
    sp_json_object_set_int(ret, "thawed", (int64_t)tr.n_thawed);
    if (tr.failed_writer[0])
        sp_json_object_set_string(ret, "failed-writer", tr.failed_writer);
    sp_json_object_set(ret, "writers", writers_json(&tr));
    return ret;
}

static SpJson *cmd_sp_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpVssState state = sp_vss_freezer_state(agent->freezer);
    SpJson *ret = sp_json_new_object();
    sp_json_object_set_string(ret, "state", state == SP_VSS_STATE_FROZEN     ? "frozen"
                                            : state == SP_VSS_STATE_FREEZING ? "freezing"
                                                                             : "thawed");
    sp_json_object_set_string(ret, "freeze-backend", agent->backend_name);
    return ret;
}

static const SpArgSpec sync_args[] = { { "id", SP_ARG_INT, false }, { NULL } };
static const SpArgSpec freeze_list_args[] = { { "mountpoints", SP_ARG_STRING_LIST, true },
                                              { NULL } };
static const SpArgSpec sp_freeze_args[] = { { "lease-ms", SP_ARG_INT, true },
                                            { "mountpoints", SP_ARG_STRING_LIST, true },
                                            { NULL } };
static const SpArgSpec sp_thaw_args[] = { { "epoch", SP_ARG_INT, true }, { NULL } };

#define FROZEN_OK SP_CMD_ALLOWED_WHILE_FROZEN

static const SpCommand commands[] = {
    { "guest-sync-delimited", cmd_sync, sync_args, FROZEN_OK | SP_CMD_DELIMITED_REPLY },
    { "guest-sync", cmd_sync, sync_args, FROZEN_OK },
    { "guest-ping", cmd_ping, NULL, FROZEN_OK },
    { "guest-info", cmd_info, NULL, FROZEN_OK },
    { "guest-fsfreeze-status", cmd_fsfreeze_status, NULL, FROZEN_OK },
    { "guest-fsfreeze-freeze", cmd_fsfreeze_freeze, NULL, 0 },
    { "guest-fsfreeze-freeze-list", cmd_fsfreeze_freeze_list, freeze_list_args, 0 },
    { "guest-fsfreeze-thaw", cmd_fsfreeze_thaw, NULL, FROZEN_OK },
    { "guest-get-fsinfo", cmd_get_fsinfo, NULL, 0 },
    { "stillpoint-capabilities", cmd_capabilities, NULL, FROZEN_OK },
    { "stillpoint-freeze", cmd_sp_freeze, sp_freeze_args, 0 },
    { "stillpoint-thaw", cmd_sp_thaw, sp_thaw_args, FROZEN_OK },
    { "stillpoint-status", cmd_sp_status, NULL, FROZEN_OK },
    { NULL, NULL, NULL, 0 },
};

const SpCommandTable sp_agent_commands = { commands };
