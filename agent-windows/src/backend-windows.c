/* backend-windows: SpFreezeBackend over the VSS freezer. Mount points and serials select volumes;
 * a VSS status becomes a stable code; VSS writers are reported in the Linux agent's words where
 * they mean the same (PROTOCOL.md "The Windows agent"). */
#include "backend-windows.h"

#include <bcrypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "wide.h"

struct SpWindowsBackend {
    SpVssFreezer *freezer;          /* borrowed */
    bool standard_thaw_on_hangup;
    bool standard;                  /* the freeze held (or last made) came from a standard command */
    unsigned channel;               /* the channel that made it */
    /* What the last status call handed out (owned here, valid until the next call). */
    SpFsEntry *status_fs;
    size_t n_status_fs;
    SpBackendThawResult status_last;
};

/* A freezer status as a stable code (PROTOCOL.md "Error codes"). */
static void freezer_error(SpBackendError *err, const SpVssError *verr)
{
    const char *code = SP_CODE_FREEZE_FAILED;

    switch (verr->code) {
    case SP_VSS_E_BUSY: code = SP_CODE_ALREADY_FROZEN; break;
    case SP_VSS_E_NOT_FROZEN: code = SP_CODE_NOT_FROZEN; break;
    case SP_VSS_E_BAD_VOLUME: code = SP_CODE_UNKNOWN_MOUNTPOINT; break;
    case SP_VSS_E_EPOCH: code = SP_CODE_EPOCH_MISMATCH; break;
    default: break;
    }
    sp_backend_error_set(err, code, "%s", verr->desc);
}

static void mounts_free(wchar_t **mounts)
{
    for (size_t i = 0; mounts && mounts[i]; i++)
        free(mounts[i]);
    free(mounts);
}

static bool list_volumes(SpWindowsBackend *b, SpVssVolume *volumes, size_t *ret_n,
                         SpBackendError *err)
{
    if (sp_vss_freezer_list_volumes(b->freezer, volumes, SP_VSS_MAX_VOLUMES, ret_n) < 0) {
        sp_backend_error_set(err, SP_CODE_DISCOVERY_FAILED, "cannot list the volumes");
        return false;
    }
    return true;
}

/* The requested mount points as wide strings (NULL-terminated); a standard freeze-list drops
 * those that are not a snapshottable volume, as qemu-ga ignores what is not mounted. */
static bool mounts_of_names(SpWindowsBackend *b, const SpFreezeRequest *req, wchar_t ***ret,
                            size_t *ret_n, SpBackendError *err)
{
    SpVssVolume volumes[SP_VSS_MAX_VOLUMES];
    size_t n_volumes = 0, n = 0;
    wchar_t **mounts = calloc(req->n_names + 1, sizeof(*mounts));

    if (!mounts || (req->standard && !list_volumes(b, volumes, &n_volumes, err))) {
        if (!mounts)
            sp_backend_error_set(err, SP_CODE_FREEZE_FAILED, "out of memory");
        free(mounts);
        return false;
    }
    for (size_t i = 0; i < req->n_names; i++) {
        wchar_t *w = sp_wide_from_utf8(req->names[i]);
        bool known = !req->standard;
        for (size_t v = 0; w && !known && v < n_volumes; v++)
            known = sp_vss_mount_matches(volumes[v].mount, w);
        if (known && w)
            mounts[n++] = w;
        else
            free(w);
    }
    *ret = mounts;
    *ret_n = n;
    return true;
}

/* The mount points of every volume on the disks with these serials (the host knows its disks
 * by the serial it gave them). An unknown serial is an error, as on Linux. */
static bool mounts_of_disks(SpWindowsBackend *b, const SpFreezeRequest *req, wchar_t ***ret,
                            size_t *ret_n, SpBackendError *err)
{
    SpVssVolume volumes[SP_VSS_MAX_VOLUMES];
    bool picked[SP_VSS_MAX_VOLUMES] = {false};
    size_t n_volumes = 0, n = 0;

    if (!list_volumes(b, volumes, &n_volumes, err))
        return false;
    for (size_t i = 0; i < req->n_names; i++) {
        bool found = false;
        for (size_t v = 0; v < n_volumes; v++)
            for (size_t d = 0; d < volumes[v].n_disks; d++)
                if (strcmp(volumes[v].disks[d].serial, req->names[i]) == 0)
                    found = picked[v] = true;
        if (!found) {
            err->code = SP_CODE_UNKNOWN_DISK;
            snprintf(err->desc, sizeof(err->desc),
                     "no mounted filesystem is on a disk with serial %s", req->names[i]);
            return false;
        }
    }
    wchar_t **mounts = calloc(n_volumes + 1, sizeof(*mounts));
    for (size_t v = 0; mounts && v < n_volumes; v++) {
        if (picked[v] && !(mounts[n++] = _wcsdup(volumes[v].mount))) {
            mounts_free(mounts);
            mounts = NULL;
        }
    }
    if (!mounts) {
        sp_backend_error_set(err, SP_CODE_FREEZE_FAILED, "out of memory");
        return false;
    }
    *ret = mounts;
    *ret_n = n;
    return true;
}

static SpFsEntry volume_entry(const SpVssVolume *v)
{
    SpFsEntry e = {sp_utf8_from_wide(v->mount), sp_utf8_from_wide(v->fstype),
                   sp_utf8_from_wide(v->name), NULL, NULL};
    return e;
}

static void fill_freeze_result(const SpVssFreezeResult *fr, SpBackendFreezeResult *ret)
{
    ret->frozen = calloc(fr->n_frozen + 1, sizeof(*ret->frozen));
    ret->n_frozen = ret->frozen ? fr->n_frozen : 0;
    for (size_t i = 0; i < ret->n_frozen; i++)
        ret->frozen[i] = volume_entry(&fr->frozen[i]);
    ret->epoch = (int64_t)fr->epoch;
    /* The window VSS grants: the lease, capped by the flush-and-hold limit. */
    ret->lease_ms = fr->lease_ms;
    ret->hold_limit_ms = fr->hold_limit_ms;
    ret->writers_at_thaw = true; /* VSS says how its writers did after BackupComplete */
}

static int backend_freeze(void *self, const SpFreezeRequest *req, SpBackendFreezeResult *ret,
                          SpBackendError *err)
{
    SpWindowsBackend *b = self;
    SpVssFreezeResult fr;
    SpVssError verr = {0};
    wchar_t **mounts = NULL;
    size_t n = 0;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (req->kind == SP_SELECT_DISKS && !mounts_of_disks(b, req, &mounts, &n, err))
        return -1;
    if (req->kind == SP_SELECT_MOUNTPOINTS && !mounts_of_names(b, req, &mounts, &n, err))
        return -1;
    if (req->kind == SP_SELECT_MOUNTPOINTS && n == 0) {
        mounts_free(mounts); /* a standard freeze-list of nothing mounted: nothing to freeze */
        return 0;
    }
    r = sp_vss_freezer_freeze(b->freezer, (const wchar_t *const *)mounts, n,
                              (DWORD)req->lease_ms, &fr, &verr);
    mounts_free(mounts);
    if (r < 0) {
        sp_log(SP_LOG_ERROR, "freeze failed: %s", verr.desc);
        freezer_error(err, &verr);
        return -1;
    }
    b->standard = req->standard;
    b->channel = req->channel;
    sp_log(SP_LOG_INFO, "froze %zu volume(s), epoch %llu, window %lu ms", fr.n_frozen,
           (unsigned long long)fr.epoch, (unsigned long)fr.lease_ms);
    fill_freeze_result(&fr, ret);
    return 0;
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

/* A VSS writer as the Linux agent reports its writers (name, phase, result, message), plus
 * VSS's own state. VSS does not time each writer: no "ms". */
static SpWriterReport writer_report(const SpVssWriterStatus *w)
{
    bool failed = sp_vss_writer_state_failed(w->state);
    SpWriterReport r = {.name = _strdup(w->name), .ms = -1,
                        .state = sp_vss_writer_state_str(w->state)};

    r.phase = failed ? writer_phase(w->state) : "freeze";
    r.result = !failed ? "ok" : (unsigned long)w->failure == 0x800423F2UL ? "timeout" : "failed";
    if (w->failure != S_OK) {
        char msg[160];
        const char *why = sp_vss_hresult_str(w->failure);
        snprintf(msg, sizeof(msg), "error 0x%08lx%s%s", (unsigned long)w->failure,
                 *why ? ": " : "", why);
        r.message = _strdup(msg);
    }
    return r;
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

/* A VSS thaw result in the core's terms; writers and failed_writer malloc'd. */
static void thaw_result(const SpVssThawResult *tr, SpBackendThawResult *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->epoch = (int64_t)tr->epoch;
    ret->n_thawed = tr->n_thawed;
    ret->consistent = tr->consistent;
    ret->reason = end_reason(tr->end);
    ret->held_ms = (int64_t)tr->held_ms;
    ret->writers = calloc(tr->n_writers + 1, sizeof(*ret->writers));
    ret->n_writers = ret->writers ? tr->n_writers : 0;
    for (size_t i = 0; i < ret->n_writers; i++)
        ret->writers[i] = writer_report(&tr->writers[i]);
    if (tr->failed_writer[0])
        ret->failed_writer = _strdup(tr->failed_writer);
}

static int backend_thaw(void *self, int64_t epoch, bool standard, SpBackendThawResult *ret,
                        SpBackendError *err)
{
    SpWindowsBackend *b = self;
    SpVssThawResult tr;
    SpVssError verr = {0};
    int r = sp_vss_freezer_thaw(b->freezer, (uint64_t)epoch, &tr, &verr);

    memset(ret, 0, sizeof(*ret));
    if (r == SP_VSS_E_NOT_FROZEN && standard)
        return 0; /* qemu-ga: thawing a thawed guest thaws 0 */
    if (r < 0) {
        freezer_error(err, &verr);
        return -1;
    }
    sp_log(tr.consistent ? SP_LOG_INFO : SP_LOG_WARNING, "thaw of epoch %llu after %llu ms: %s%s%s",
           (unsigned long long)tr.epoch, (unsigned long long)tr.held_ms,
           tr.consistent ? "consistent" : sp_vss_end_str(tr.end),
           tr.failed_writer[0] ? ", writer " : "", tr.failed_writer);
    thaw_result(&tr, ret);
    return 0;
}

static void status_clear(SpWindowsBackend *b)
{
    SpBackendFreezeResult fs = {.frozen = b->status_fs, .n_frozen = b->n_status_fs};

    sp_backend_freeze_result_clear(&fs);
    b->status_fs = NULL;
    b->n_status_fs = 0;
    sp_backend_thaw_result_clear(&b->status_last);
}

static void backend_status(void *self, SpBackendStatus *ret)
{
    SpWindowsBackend *b = self;
    SpVssStatusInfo st;

    sp_vss_freezer_status(b->freezer, &st);
    status_clear(b);
    memset(ret, 0, sizeof(*ret));
    ret->frozen = st.state != SP_VSS_STATE_THAWED;
    ret->epoch = (int64_t)st.epoch;
    if (st.state == SP_VSS_STATE_FROZEN) {
        ret->lease_ms = (int64_t)st.lease_ms;
        ret->remaining_ms = (int64_t)st.remaining_ms;
        ret->held_ms = (int64_t)st.held_ms;
    }
    b->status_fs = calloc(st.n_frozen + 1, sizeof(*b->status_fs));
    b->n_status_fs = b->status_fs ? st.n_frozen : 0;
    for (size_t i = 0; i < b->n_status_fs; i++)
        b->status_fs[i] = volume_entry(&st.frozen[i]);
    ret->frozen_fs = b->status_fs;
    ret->n_frozen_fs = b->n_status_fs;
    if (st.have_last) {
        thaw_result(&st.last, &b->status_last);
        ret->has_last_thaw = true;
        ret->last_thaw = b->status_last;
        /* VSS's writers are known once the freeze ended: those of the last one. */
        if (!ret->frozen) {
            ret->writers = b->status_last.writers;
            ret->n_writers = b->status_last.n_writers;
        }
    }
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
    SpJson *o = sp_json_new_object(), *disks = sp_json_new_array();
    SpFsEntry e = volume_entry(v);

    sp_json_object_set_string(o, "name", e.device);
    sp_json_object_set_string(o, "mountpoint", e.mountpoint);
    sp_json_object_set_string(o, "type", e.fstype);
    for (size_t i = 0; i < v->n_disks; i++)
        sp_json_array_append(disks, disk_json(&v->disks[i]));
    sp_json_object_set(o, "disk", disks);
    free(e.mountpoint);
    free(e.fstype);
    free(e.device);
    return o;
}

static SpJson *backend_fsinfo(void *self, SpBackendError *err)
{
    SpVssVolume volumes[SP_VSS_MAX_VOLUMES];
    size_t n = 0;
    SpJson *list;

    if (!list_volumes(self, volumes, &n, err))
        return NULL;
    list = sp_json_new_array();
    for (size_t i = 0; i < n; i++)
        sp_json_array_append(list, fsinfo_json(&volumes[i]));
    return list;
}

/* Lease tokens: the system's preferred CSPRNG. */
static int backend_random(void *self, uint8_t *buf, size_t n)
{
    return BCryptGenRandom(NULL, buf, (ULONG)n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0 ? 0 : -1;
}

static const SpFreezeBackendOps windows_ops = {
    .freeze = backend_freeze,
    .thaw = backend_thaw,
    .status = backend_status,
    .fsinfo = backend_fsinfo,
    .flush = NULL, /* the VSS freeze flushes; no stillpoint-flush on Windows */
    .random = backend_random,
};

SpWindowsBackend *sp_windows_backend_new(SpVssFreezer *freezer, bool standard_thaw_on_hangup)
{
    SpWindowsBackend *b = calloc(1, sizeof(*b));

    if (b) {
        b->freezer = freezer;
        b->standard_thaw_on_hangup = standard_thaw_on_hangup;
    }
    return b;
}

void sp_windows_backend_free(SpWindowsBackend *b)
{
    if (!b)
        return;
    status_clear(b);
    free(b);
}

SpFreezeBackend sp_windows_backend_interface(SpWindowsBackend *b)
{
    SpFreezeBackend iface = {&windows_ops, b};
    return iface;
}

void sp_windows_backend_channel_closed(SpWindowsBackend *b, unsigned channel, bool stopping)
{
    if (sp_vss_freezer_state(b->freezer) == SP_VSS_STATE_THAWED)
        return;
    if (!stopping && channel != b->channel)
        return; /* not the channel that froze */
    if (!stopping && b->standard && !b->standard_thaw_on_hangup) {
        /* As on Linux: the next connection thaws it, or the lease or VSS's limit does. */
        sp_log(SP_LOG_INFO, "the host hung up while the volumes were frozen by a standard "
                            "command: keeping the freeze");
        return;
    }
    sp_log(SP_LOG_WARNING, "%s while the volumes were frozen: thawing",
           stopping ? "stopping" : "the host hung up");
    sp_vss_freezer_end(b->freezer, stopping ? SP_VSS_END_STOPPED : SP_VSS_END_HANGUP);
}
