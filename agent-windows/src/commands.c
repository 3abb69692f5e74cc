/* The agent's command table: the standard qemu-ga fsfreeze commands answered as qemu-ga does,
 * and the stillpoint- extensions, all on the VSS freezer. */
#include "agent.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"

/* Stable codes of the stillpoint- errors our handlers raise: the Linux agent's
 * (agent-linux/src/freeze-backend.h). The dispatcher adds its own (command-not-found,
 * command-disabled, invalid-arguments, failed; protocol/PROTOCOL.md "Error codes"). */
#define CODE_INVALID_ARGUMENT "invalid-argument"
#define CODE_ALREADY_FROZEN "already-frozen"
#define CODE_NOT_FROZEN "not-frozen"
#define CODE_EPOCH_MISMATCH "epoch-mismatch"
#define CODE_UNKNOWN_MOUNTPOINT "unknown-mountpoint"
#define CODE_UNKNOWN_DISK "unknown-disk"
#define CODE_LEASE_OUT_OF_RANGE "lease-out-of-range"
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
    case SP_VSS_E_BAD_VOLUME: code = CODE_UNKNOWN_MOUNTPOINT; break;
    case SP_VSS_E_EPOCH: code = CODE_EPOCH_MISMATCH; break;
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
    sp_json_object_set_string(ret, "version", SP_AGENT_QGA_VERSION);
    sp_json_object_set(ret, "supported_commands", list);
    return ret;
}

static SpJson *cmd_fsfreeze_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    bool frozen = sp_vss_freezer_state(agent_of(ctx)->freezer) != SP_VSS_STATE_THAWED;
    return sp_json_new_string(frozen ? "frozen" : "thawed");
}

/* The mount points of a JSON string list as wide strings (NULL-terminated array); with
 * known_only, those that are not a snapshottable volume are dropped (the standard command
 * ignores them, as qemu-ga does). NULL on allocation failure. */
static wchar_t **mounts_from_json(SpAgent *agent, const SpJson *list, bool known_only,
                                  size_t *ret_n)
{
    SpVssVolume volumes[SP_VSS_MAX_VOLUMES];
    size_t n_volumes = 0, n = 0;
    if (known_only &&
        sp_vss_freezer_list_volumes(agent->freezer, volumes, SP_VSS_MAX_VOLUMES, &n_volumes) < 0)
        n_volumes = 0;
    wchar_t **mounts = calloc(sp_json_array_len(list) + 1, sizeof(*mounts));
    for (size_t i = 0; mounts && i < sp_json_array_len(list); i++) {
        const char *s = sp_json_get_string(sp_json_array_get(list, i));
        int len = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
        wchar_t *w = len > 0 ? calloc((size_t)len, sizeof(wchar_t)) : NULL;
        if (!w) {
            for (size_t j = 0; j < n; j++)
                free(mounts[j]);
            free(mounts);
            return NULL;
        }
        MultiByteToWideChar(CP_UTF8, 0, s, -1, w, len);
        bool known = !known_only;
        for (size_t v = 0; !known && v < n_volumes; v++)
            known = sp_vss_mount_matches(volumes[v].mount, w);
        if (known)
            mounts[n++] = w;
        else
            free(w);
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

/* Runs a freeze of mounts (n 0 = every volume); returns false with err set on failure. A
 * standard freeze (!extension) is remembered as one: a hang-up does not thaw it by default. */
static bool do_freeze(SpAgent *agent, wchar_t **mounts, size_t n, DWORD lease_ms,
                      SpVssFreezeResult *fr, SpCommandError *err, bool extension)
{
    SpVssError verr = { 0 };
    int r = sp_vss_freezer_freeze(agent->freezer, (const wchar_t *const *)mounts, n, lease_ms, fr,
                                  &verr);
    if (r < 0) {
        sp_log(SP_LOG_ERROR, "freeze failed: %s", verr.desc);
        freezer_error(err, &verr, extension);
        return false;
    }
    agent->standard_freeze = !extension;
    sp_log(SP_LOG_INFO, "froze %zu volume(s), epoch %llu, window %lu ms", fr->n_frozen,
           (unsigned long long)fr->epoch, (unsigned long)fr->lease_ms);
    return true;
}

static SpJson *cmd_fsfreeze_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpVssFreezeResult fr;
    if (!do_freeze(agent, NULL, 0, agent->default_lease_ms, &fr, err, false))
        return NULL;
    return sp_json_new_int((int64_t)fr.n_frozen);
}

static SpJson *cmd_fsfreeze_freeze_list(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpVssFreezeResult fr;
    const SpJson *list = sp_json_object_get(args, "mountpoints");
    size_t n = 0;
    wchar_t **mounts = NULL;
    if (list) {
        mounts = mounts_from_json(agent, list, true, &n);
        if (!mounts) {
            sp_command_error_set(err, NULL, NULL, "out of memory");
            return NULL;
        }
        if (n == 0) { /* none of them is mounted: nothing to freeze */
            mounts_free(mounts);
            return sp_json_new_int(0);
        }
    }
    bool ok = do_freeze(agent, mounts, n, agent->default_lease_ms, &fr, err, false);
    mounts_free(mounts);
    return ok ? sp_json_new_int((int64_t)fr.n_frozen) : NULL;
}

/* Thaws and logs the outcome. */
static int do_thaw(SpAgent *agent, uint64_t epoch, SpVssThawResult *tr, SpVssError *verr)
{
    int r = sp_vss_freezer_thaw(agent->freezer, epoch, tr, verr);
    if (r == SP_VSS_OK)
        sp_log(tr->consistent ? SP_LOG_INFO : SP_LOG_WARNING,
               "thaw of epoch %llu after %llu ms: %s%s%s", (unsigned long long)tr->epoch,
               (unsigned long long)tr->held_ms,
               tr->consistent ? "consistent" : sp_vss_end_str(tr->end),
               tr->failed_writer[0] ? ", writer " : "", tr->failed_writer);
    return r;
}

/* The standard thaw fails, as qemu-ga's Windows agent does, when VSS's limit or a writer broke
 * the freeze: the snapshot the host took meanwhile is not consistent. */
static bool standard_thaw_error(const SpVssThawResult *tr, SpCommandError *err)
{
    if (tr->end == SP_VSS_END_HOLD_LIMIT) {
        sp_command_error_set(err, NULL, NULL,
                             "couldn't hold writes: fsfreeze is limited up to %u seconds",
                             SP_VSS_FLUSH_HOLD_LIMIT_MS / 1000);
        return true;
    }
    if (tr->end == SP_VSS_END_WRITER_FAILED || tr->end == SP_VSS_END_SNAPSHOT_FAILED) {
        sp_command_error_set(err, NULL, NULL, "the VSS freeze failed: %s%s%s",
                             sp_vss_end_str(tr->end), tr->failed_writer[0] ? ": writer " : "",
                             tr->failed_writer);
        return true;
    }
    return false;
}

/* qemu-ga: the number of volumes thawed, 0 when nothing was frozen. */
static SpJson *cmd_fsfreeze_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpVssThawResult tr;
    SpVssError verr = { 0 };
    if (sp_vss_freezer_state(agent->freezer) == SP_VSS_STATE_THAWED) {
        if (sp_vss_freezer_take_automatic_thaw(agent->freezer, &tr) &&
            standard_thaw_error(&tr, err))
            return NULL;
        return sp_json_new_int(0);
    }
    int r = do_thaw(agent, 0, &tr, &verr);
    if (r == SP_VSS_E_NOT_FROZEN)
        return sp_json_new_int(0);
    if (r < 0) {
        freezer_error(err, &verr, false);
        return NULL;
    }
    if (standard_thaw_error(&tr, err))
        return NULL;
    return sp_json_new_int((int64_t)tr.n_thawed);
}

/* PROTOCOL.md's DISK. Windows does not say which PCI controller a disk hangs off without
 * SetupAPI; -1 means unknown, as qemu-ga's Windows agent reports it when it cannot tell. */
static SpJson *disk_json(const SpVssDisk *d)
{
    SpJson *o = sp_json_new_object(), *pci = sp_json_new_object();
    char dev[32];
    sp_json_object_set_int(pci, "domain", -1);
    sp_json_object_set_int(pci, "bus", -1);
    sp_json_object_set_int(pci, "slot", -1);
    sp_json_object_set_int(pci, "function", -1);
    sp_json_object_set(o, "pci-controller", pci);
    sp_json_object_set_string(o, "bus-type", d->bus_type);
    sp_json_object_set_int(o, "bus", d->bus);
    sp_json_object_set_int(o, "target", d->target);
    sp_json_object_set_int(o, "unit", d->unit);
    if (d->serial[0])
        sp_json_object_set_string(o, "serial", d->serial);
    snprintf(dev, sizeof(dev), "\\\\.\\PhysicalDrive%u", d->number);
    sp_json_object_set_string(o, "dev", dev);
    return o;
}

/* guest-get-fsinfo's entry for a volume. */
static SpJson *fsinfo_json(const SpVssVolume *v)
{
    char buf[MAX_PATH * 3];
    SpJson *o = sp_json_new_object();
    to_utf8(v->name, buf, sizeof(buf));
    sp_json_object_set_string(o, "name", buf);
    to_utf8(v->mount, buf, sizeof(buf));
    sp_json_object_set_string(o, "mountpoint", buf);
    to_utf8(v->fstype, buf, sizeof(buf));
    sp_json_object_set_string(o, "type", buf);
    SpJson *disks = sp_json_new_array();
    for (size_t i = 0; i < v->n_disks; i++)
        sp_json_array_append(disks, disk_json(&v->disks[i]));
    sp_json_object_set(o, "disk", disks);
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
        sp_json_array_append(list, fsinfo_json(&volumes[i]));
    return list;
}

/* ---- stillpoint- extensions: the Linux agent's replies, plus what VSS adds ---- */

static SpJson *cmd_capabilities(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    SpJson *o = sp_json_new_object(), *freeze = sp_json_new_object();
    SpJson *cmds = sp_json_new_array(), *sel = sp_json_new_array();
    for (const SpCommand *c = sp_agent_commands.commands; c->name; c++)
        sp_json_array_append(cmds, sp_json_new_string(c->name));
    sp_json_array_append(sel, sp_json_new_string("all"));
    sp_json_array_append(sel, sp_json_new_string("mountpoints"));
    sp_json_array_append(sel, sp_json_new_string("disks"));
    sp_json_object_set_string(o, "protocol", SP_PROTOCOL_VERSION);
    sp_json_object_set_string(o, "agent", "stillpoint-agent");
    sp_json_object_set_string(o, "version", SP_AGENT_VERSION);
    sp_json_object_set_string(o, "platform", "windows");
    sp_json_object_set(o, "commands", cmds);
    sp_json_object_set_int(freeze, "default-lease-ms", agent->default_lease_ms);
    sp_json_object_set_int(freeze, "min-lease-ms", SP_AGENT_MIN_LEASE_MS);
    sp_json_object_set_int(freeze, "max-lease-ms", SP_AGENT_MAX_LEASE_MS);
    sp_json_object_set(freeze, "select", sel);
    sp_json_object_set_bool(freeze, "thaw-on-hangup", true);
    sp_json_object_set_bool(freeze, "standard-thaw-on-hangup", agent->standard_thaw_on_hangup);
    sp_json_object_set_bool(freeze, "hooks", false);
    sp_json_object_set_bool(freeze, "writers", true);
    /* Windows only: VSS's flush-and-hold limit caps every lease, and which VSS is used. */
    sp_json_object_set_int(freeze, "hold-limit-ms", SP_VSS_FLUSH_HOLD_LIMIT_MS);
    sp_json_object_set_string(freeze, "backend", agent->backend_name);
    sp_json_object_set(o, "freeze", freeze);
    return o;
}

static SpJson *volume_json(const SpVssVolume *v)
{
    char buf[MAX_PATH * 3];
    SpJson *o = sp_json_new_object();
    to_utf8(v->mount, buf, sizeof(buf));
    sp_json_object_set_string(o, "mountpoint", buf);
    to_utf8(v->fstype, buf, sizeof(buf));
    sp_json_object_set_string(o, "type", buf);
    to_utf8(v->name, buf, sizeof(buf));
    sp_json_object_set_string(o, "device", buf);
    return o;
}

static SpJson *volumes_json(const SpVssVolume *v, size_t n)
{
    SpJson *list = sp_json_new_array();
    for (size_t i = 0; i < n; i++)
        sp_json_array_append(list, volume_json(&v[i]));
    return list;
}

/* The checks the Linux agent makes on a name list, with its words. */
static bool check_names(const SpJson *list, const char *what, SpCommandError *err)
{
    if (list && sp_json_array_len(list) == 0) {
        sp_command_error_set(err, NULL, CODE_INVALID_ARGUMENT,
                             "'%s' is empty: omit it to freeze every filesystem", what);
        return false;
    }
    for (size_t i = 0; list && i < sp_json_array_len(list); i++) {
        const SpJson *item = sp_json_array_get(list, i);
        const char *s = sp_json_get_string(item);
        if (!s || !*s || strlen(s) != sp_json_get_string_len(item)) {
            sp_command_error_set(err, NULL, CODE_INVALID_ARGUMENT,
                                 "'%s' item %zu is empty or contains NUL", what, i);
            return false;
        }
    }
    return true;
}

/* The mount points of every volume on the disks with these serials (the host knows its disks
 * by the serial it gave them). An unknown serial is an error, as on Linux. */
static bool mounts_of_disks(SpAgent *agent, const SpJson *serials, wchar_t ***ret_mounts,
                            size_t *ret_n, SpCommandError *err)
{
    SpVssVolume volumes[SP_VSS_MAX_VOLUMES];
    size_t n_volumes = 0, n = 0;
    if (sp_vss_freezer_list_volumes(agent->freezer, volumes, SP_VSS_MAX_VOLUMES, &n_volumes) < 0) {
        sp_command_error_set(err, NULL, CODE_FREEZE_FAILED, "cannot list the volumes");
        return false;
    }
    bool picked[SP_VSS_MAX_VOLUMES] = { false };
    for (size_t i = 0; i < sp_json_array_len(serials); i++) {
        const char *serial = sp_json_get_string(sp_json_array_get(serials, i));
        bool found = false;
        for (size_t v = 0; v < n_volumes; v++)
            for (size_t d = 0; d < volumes[v].n_disks; d++)
                if (strcmp(volumes[v].disks[d].serial, serial) == 0)
                    found = picked[v] = true;
        if (!found) {
            sp_command_error_set(err, NULL, CODE_UNKNOWN_DISK,
                                 "no mounted filesystem is on a disk with serial %s", serial);
            return false;
        }
    }
    wchar_t **mounts = calloc(n_volumes + 1, sizeof(*mounts));
    for (size_t v = 0; mounts && v < n_volumes; v++) {
        if (!picked[v])
            continue;
        if (!(mounts[n] = _wcsdup(volumes[v].mount))) {
            mounts_free(mounts);
            mounts = NULL;
            break;
        }
        n++;
    }
    if (!mounts) {
        sp_command_error_set(err, NULL, CODE_FREEZE_FAILED, "out of memory");
        return false;
    }
    *ret_mounts = mounts;
    *ret_n = n;
    return true;
}

static SpJson *cmd_sp_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgent *agent = agent_of(ctx);
    const SpJson *mps = sp_json_object_get(args, "mountpoints");
    const SpJson *disks = sp_json_object_get(args, "disks");
    if (mps && disks) {
        sp_command_error_set(err, NULL, CODE_INVALID_ARGUMENT,
                             "give 'mountpoints' or 'disks', not both");
        return NULL;
    }
    if (!check_names(mps, "mountpoints", err) || !check_names(disks, "disks", err))
        return NULL;
    int64_t lease = sp_json_object_get_int(args, "lease-ms", agent->default_lease_ms);
    if (lease < SP_AGENT_MIN_LEASE_MS || lease > SP_AGENT_MAX_LEASE_MS) {
        sp_command_error_set(err, NULL, CODE_LEASE_OUT_OF_RANGE,
                             "'lease-ms' must be between %u and %u", SP_AGENT_MIN_LEASE_MS,
                             SP_AGENT_MAX_LEASE_MS);
        return NULL;
    }
    if (sp_vss_freezer_state(agent->freezer) != SP_VSS_STATE_THAWED) {
        sp_command_error_set(err, NULL, CODE_ALREADY_FROZEN,
                             "the volumes are already frozen: thaw first");
        return NULL;
    }
    size_t n = 0;
    wchar_t **mounts = NULL;
    if (disks && !mounts_of_disks(agent, disks, &mounts, &n, err))
        return NULL;
    if (mps)
        mounts = mounts_from_json(agent, mps, false, &n);
    if ((mps || disks) && !mounts) {
        sp_command_error_set(err, NULL, CODE_FREEZE_FAILED, "out of memory");
        return NULL;
    }
    SpVssFreezeResult fr;
    bool ok = do_freeze(agent, mounts, n, (DWORD)lease, &fr, err, true);
    mounts_free(mounts);
    if (!ok)
        return NULL;
    SpJson *o = sp_json_new_object();
    sp_json_object_set_int(o, "epoch", (int64_t)fr.epoch);
    /* The window VSS grants: the lease, capped by the flush-and-hold limit. */
    sp_json_object_set_int(o, "lease-ms", fr.lease_ms);
    sp_json_object_set(o, "frozen", volumes_json(fr.frozen, fr.n_frozen));
    sp_json_object_set(o, "skipped", sp_json_new_array());
    sp_json_object_set_int(o, "hold-limit-ms", fr.hold_limit_ms);
    return o;
}

/* Where a writer failed, in the Linux agent's phase words (prepare, freeze) where they mean the
 * same, else VSS's own; a writer that did not fail went through freeze, its last phase as on
 * Linux. */
static const char *writer_phase(int state)
{
    switch (state) {
    case SP_VSS_WS_FAILED_AT_IDENTIFY: return "identify";
    case SP_VSS_WS_FAILED_AT_IDENTIFY + 1: /* prepare-backup */
    case SP_VSS_WS_FAILED_AT_IDENTIFY + 2: /* prepare-snapshot */
        return "prepare";
    case SP_VSS_WS_FAILED_AT_FREEZE: return "freeze";
    case SP_VSS_WS_FAILED_AT_THAW: return "thaw";
    case SP_VSS_WS_FAILED_AT_THAW + 1: return "post-snapshot";
    case SP_VSS_WS_FAILED_AT_BACKUP_COMPLETE: return "backup-complete";
    case SP_VSS_WS_FAILED_AT_BACKUP_COMPLETE + 1: return "pre-restore";
    case SP_VSS_WS_FAILED_AT_BACKUP_COMPLETE + 2: return "post-restore";
    case SP_VSS_WS_FAILED_AT_BACKUPSHUTDOWN: return "backup-shutdown";
    default: return "freeze";
    }
}

/* Each VSS writer as the Linux agent reports its writers (name, phase, result, message), plus
 * VSS's own state. VSS does not time each writer: no "ms". */
static SpJson *writers_json(const SpVssThawResult *tr)
{
    SpJson *list = sp_json_new_array();
    for (size_t i = 0; i < tr->n_writers; i++) {
        const SpVssWriterStatus *w = &tr->writers[i];
        SpJson *o = sp_json_new_object();
        bool failed = sp_vss_writer_state_failed(w->state);
        sp_json_object_set_string(o, "name", w->name);
        sp_json_object_set_string(o, "phase", failed ? writer_phase(w->state) : "freeze");
        sp_json_object_set_string(o, "result",
                                  !failed ? "ok"
                                  : (unsigned long)w->failure == 0x800423F2UL ? "timeout"
                                                                              : "failed");
        if (w->failure != S_OK) {
            char msg[160];
            const char *why = sp_vss_hresult_str(w->failure);
            snprintf(msg, sizeof(msg), "error 0x%08lx%s%s", (unsigned long)w->failure,
                     *why ? ": " : "", why);
            sp_json_object_set_string(o, "message", msg);
        }
        sp_json_object_set_string(o, "state", sp_vss_writer_state_str(w->state));
        sp_json_array_append(list, o);
    }
    return list;
}

/* Why a freeze ended, in the Linux agent's words where they mean the same. */
static const char *end_reason(SpVssEnd end)
{
    switch (end) {
    case SP_VSS_END_NONE: return "requested";
    case SP_VSS_END_HANGUP: return "channel-hangup";
    case SP_VSS_END_STOPPED: return "shutdown";
    default: return sp_vss_end_str(end);
    }
}

static SpJson *thaw_json(const SpVssThawResult *tr)
{
    SpJson *o = sp_json_new_object();
    sp_json_object_set_int(o, "epoch", (int64_t)tr->epoch);
    sp_json_object_set_int(o, "thawed", (int64_t)tr->n_thawed);
    sp_json_object_set_bool(o, "consistent", tr->consistent);
    sp_json_object_set_string(o, "reason", end_reason(tr->end));
    sp_json_object_set_int(o, "held-ms", (int64_t)tr->held_ms);
    if (tr->failed_writer[0])
        sp_json_object_set_string(o, "failed-writer", tr->failed_writer);
    sp_json_object_set(o, "writers", writers_json(tr));
    return o;
}

static SpJson *cmd_sp_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpVssThawResult tr;
    SpVssError verr = { 0 };
    int64_t epoch = sp_json_object_get_int(args, "epoch", 0);
    if (sp_json_object_get(args, "epoch") && epoch <= 0) {
        sp_command_error_set(err, NULL, CODE_INVALID_ARGUMENT,
                             "'epoch' must be the positive number stillpoint-freeze returned");
        return NULL;
    }
    if (do_thaw(agent_of(ctx), (uint64_t)epoch, &tr, &verr) < 0) {
        freezer_error(err, &verr, true);
        return NULL;
    }
    return thaw_json(&tr);
}

static SpJson *cmd_sp_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpVssStatusInfo st;
    sp_vss_freezer_status(agent_of(ctx)->freezer, &st);
    bool frozen = st.state != SP_VSS_STATE_THAWED;
    SpJson *o = sp_json_new_object();
    sp_json_object_set_string(o, "status", frozen ? "frozen" : "thawed");
    sp_json_object_set_int(o, "epoch", (int64_t)st.epoch);
    if (st.state == SP_VSS_STATE_FROZEN) {
        sp_json_object_set_int(o, "lease-ms", (int64_t)st.lease_ms);
        sp_json_object_set_int(o, "remaining-ms", (int64_t)st.remaining_ms);
        sp_json_object_set_int(o, "held-ms", (int64_t)st.held_ms);
    }
    sp_json_object_set(o, "frozen", volumes_json(st.frozen, st.n_frozen));
    if (st.have_last)
        sp_json_object_set(o, "last-thaw", thaw_json(&st.last));
    return o;
}

static const SpArgSpec sync_args[] = { { "id", SP_ARG_INT, false }, { NULL, 0, false } };
static const SpArgSpec freeze_list_args[] = { { "mountpoints", SP_ARG_STRING_LIST, true },
                                              { NULL, 0, false } };
static const SpArgSpec sp_freeze_args[] = { { "mountpoints", SP_ARG_STRING_LIST, true },
                                            { "disks", SP_ARG_STRING_LIST, true },
                                            { "lease-ms", SP_ARG_INT, true },
                                            { NULL, 0, false } };
static const SpArgSpec sp_thaw_args[] = { { "epoch", SP_ARG_INT, true }, { NULL, 0, false } };

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
    /* The extensions answer while frozen: freeze says "already-frozen" itself, with a code. */
    { "stillpoint-capabilities", cmd_capabilities, NULL, FROZEN_OK },
    { "stillpoint-freeze", cmd_sp_freeze, sp_freeze_args, FROZEN_OK },
    { "stillpoint-thaw", cmd_sp_thaw, sp_thaw_args, FROZEN_OK },
    { "stillpoint-status", cmd_sp_status, NULL, FROZEN_OK },
    { NULL, NULL, NULL, 0 },
};

const SpCommandTable sp_agent_commands = { commands };
