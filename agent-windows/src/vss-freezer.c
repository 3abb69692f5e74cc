/* The freeze state machine: runs the VSS requester sequence through a backend, holds the
 * frozen window under a lease and the flush-and-hold limit, and thaws on its own when either
 * runs out, the host hangs up or the service stops. */
#include "vss-freezer.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct SpVssFreezer {
    SpVssFreezerConfig config;
    SpVssBackend *backend;
    CRITICAL_SECTION op_lock;   /* serializes whole freeze and thaw sequences */
    SRWLOCK state_lock;         /* guards state, deadline and cancel_reason for quick readers */
    SpVssState state;
    SpVssEnd cancel_reason;
    uint64_t epoch, last_epoch;
    ULONGLONG frozen_at, deadline;
    SpVssEnd deadline_end;      /* what running out of the window means: lease or hold limit */
    size_t n_frozen;
    SpVssVolume frozen[SP_VSS_MAX_VOLUMES];
    /* The last thaw. After an automatic one (lease, limit, hang-up) stillpoint-thaw keeps
     * reporting it, consistent:false, as the Linux agent does; guest-fsfreeze-thaw sees it once. */
    bool have_last, last_automatic;
    SpVssThawResult last;
    DWORD window_ms;
    HANDLE cancel;              /* manual-reset: abandon the freeze in progress */
    HANDLE wake;                /* auto-reset: the watchdog re-reads the state */
    HANDLE watchdog;
    bool quit;
    void (*state_cb)(SpVssState state, void *userdata);
    void *state_userdata;
};

static void set_error(SpVssError *err, int code, const char *step, HRESULT hr,
                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void set_error(SpVssError *err, int code, const char *step, HRESULT hr,
                      const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    err->step = step;
    err->hr = hr;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
    va_end(ap);
}

static void set_state(SpVssFreezer *f, SpVssState state)
{
    AcquireSRWLockExclusive(&f->state_lock);
    f->state = state;
    ReleaseSRWLockExclusive(&f->state_lock);
    SetEvent(f->wake);
    if (f->state_cb)
        f->state_cb(state, f->state_userdata);
}

SpVssState sp_vss_freezer_state(SpVssFreezer *f)
{
    AcquireSRWLockShared(&f->state_lock);
    SpVssState s = f->state;
    ReleaseSRWLockShared(&f->state_lock);
    return s;
}

const char *sp_vss_end_str(SpVssEnd end)
{
    switch (end) {
    case SP_VSS_END_NONE: return "none";
    case SP_VSS_END_LEASE_EXPIRED: return "lease-expired";
    case SP_VSS_END_HOLD_LIMIT: return "hold-limit";
    case SP_VSS_END_HANGUP: return "hangup";
    case SP_VSS_END_WRITER_FAILED: return "writer-failed";
    case SP_VSS_END_SNAPSHOT_FAILED: return "snapshot-failed";
    case SP_VSS_END_STOPPED: return "stopped";
    }
    return "unknown";
}

const char *sp_vss_status_str(int status)
{
    switch (status) {
    case SP_VSS_OK: return "ok";
    case SP_VSS_E_BUSY: return "busy";
    case SP_VSS_E_NOT_FROZEN: return "not frozen";
    case SP_VSS_E_BACKEND: return "VSS call failed";
    case SP_VSS_E_TIMEOUT: return "timed out";
    case SP_VSS_E_ABORTED: return "aborted";
    case SP_VSS_E_NO_VOLUMES: return "no volumes";
    case SP_VSS_E_BAD_VOLUME: return "not a snapshottable volume";
    case SP_VSS_E_EPOCH: return "wrong epoch";
    }
    return "unknown";
}

/* Thaws what is held and fills ret. Called with op_lock held and state FROZEN. */
static void finish_thaw(SpVssFreezer *f, SpVssEnd end, SpVssThawResult *ret)
{
    SpVssBackend *b = f->backend;
    DWORD limit = f->config.hold_limit_ms;
    memset(ret, 0, sizeof(*ret));
    ret->epoch = f->epoch;
    ULONGLONG now = GetTickCount64();
    ret->held_ms = now - f->frozen_at;
    /* A requested thaw that lost the race with the deadline is late all the same. */
    if (end == SP_VSS_END_NONE && now > f->deadline)
        end = f->deadline_end;

    /* Release first: the provider holds every write of the volumes until it returns. */
    b->ops->release(b);
    bool expired = false;
    HRESULT hr = b->ops->wait_snapshot_set(b, f->config.step_timeout_ms, &expired);
    ret->snapshot_hr = hr;
    if (expired || ret->held_ms > limit) {
        /* The provider let go at its limit, so the window ended there. */
        if (ret->held_ms > limit)
            ret->held_ms = limit;
        if (end == SP_VSS_END_NONE)
            end = SP_VSS_END_HOLD_LIMIT;
    }
    if (FAILED(hr)) {
        if (end == SP_VSS_END_NONE)
            end = SP_VSS_END_SNAPSHOT_FAILED;
        b->ops->abort(b);
    } else if (FAILED(b->ops->backup_complete(b, f->config.step_timeout_ms))) {
        if (end == SP_VSS_END_NONE)
            end = SP_VSS_END_SNAPSHOT_FAILED;
    }
    if (SUCCEEDED(b->ops->writer_statuses(b, ret->writers, SP_VSS_MAX_WRITERS, &ret->n_writers))) {
        for (size_t i = 0; i < ret->n_writers; i++) {
            if (!sp_vss_writer_state_failed(ret->writers[i].state))
                continue;
            if (!ret->failed_writer[0])
                snprintf(ret->failed_writer, sizeof(ret->failed_writer), "%s",
                         ret->writers[i].name);
            if (end == SP_VSS_END_NONE)
                end = SP_VSS_END_WRITER_FAILED;
        }
    }
    b->ops->close(b);
    ret->end = end;
    ret->consistent = end == SP_VSS_END_NONE;
    ret->n_thawed = f->n_frozen;
    f->n_frozen = 0;
    if (ret != &f->last)
        f->last = *ret;
    f->have_last = true;
    f->last_automatic = ret == &f->last; /* the watchdog, a hang-up or a stop thawed */
    set_state(f, SP_VSS_STATE_THAWED);
}

/* Thaws when the window runs out or the provider lets go; sleeps otherwise. */
static DWORD WINAPI watchdog_thread_cb(void *userdata)
{
    SpVssFreezer *f = userdata;
    for (;;) {
        AcquireSRWLockShared(&f->state_lock);
        bool quit = f->quit, frozen = f->state == SP_VSS_STATE_FROZEN;
        ULONGLONG deadline = f->deadline;
        uint64_t epoch = f->epoch;
        SpVssEnd why = f->deadline_end;
        ReleaseSRWLockShared(&f->state_lock);
        if (quit)
            return 0;
        HANDLE handles[2] = { f->wake, NULL };
        DWORD n = 1, timeout = INFINITE;
        if (frozen) {
            ULONGLONG now = GetTickCount64();
            timeout = deadline > now ? (DWORD)(deadline - now) : 0;
            handles[1] = f->backend->ops->hold_expired_event(f->backend);
            n = handles[1] ? 2 : 1;
        }
        DWORD w = WaitForMultipleObjects(n, handles, FALSE, timeout);
        if (w == WAIT_OBJECT_0)
            continue;
        if (w == WAIT_OBJECT_0 + 1)
            why = SP_VSS_END_HOLD_LIMIT;
        else if (w != WAIT_TIMEOUT)
            return 1;
        EnterCriticalSection(&f->op_lock);
        if (sp_vss_freezer_state(f) == SP_VSS_STATE_FROZEN && f->epoch == epoch)
            finish_thaw(f, why, &f->last);
        LeaveCriticalSection(&f->op_lock);
    }
}

SpVssFreezer *sp_vss_freezer_new(const SpVssFreezerConfig *config)
{
    SpVssFreezer *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->config = *config;
    f->backend = config->backend;
    if (!f->config.backup_type)
        f->config.backup_type = SP_VSS_BT_COPY;
    if (!f->config.hold_limit_ms)
        f->config.hold_limit_ms = SP_VSS_FLUSH_HOLD_LIMIT_MS;
    if (!f->config.frozen_timeout_ms)
        f->config.frozen_timeout_ms = SP_VSS_STEP_TIMEOUT_MS;
    if (!f->config.step_timeout_ms)
        f->config.step_timeout_ms = SP_VSS_STEP_TIMEOUT_MS;
    InitializeCriticalSection(&f->op_lock);
    InitializeSRWLock(&f->state_lock);
    f->cancel = CreateEventW(NULL, TRUE, FALSE, NULL);
    f->wake = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (f->cancel && f->wake)
        f->watchdog = CreateThread(NULL, 0, watchdog_thread_cb, f, 0, NULL);
    if (!f->watchdog) {
        if (f->cancel)
            CloseHandle(f->cancel);
        if (f->wake)
            CloseHandle(f->wake);
        DeleteCriticalSection(&f->op_lock);
        free(f);
        return NULL;
    }
    return f;
}

void sp_vss_freezer_free(SpVssFreezer *f)
{
    if (!f)
        return;
    sp_vss_freezer_end(f, SP_VSS_END_STOPPED);
    AcquireSRWLockExclusive(&f->state_lock);
    f->quit = true;
    ReleaseSRWLockExclusive(&f->state_lock);
    SetEvent(f->wake);
    WaitForSingleObject(f->watchdog, INFINITE);
    CloseHandle(f->watchdog);
    CloseHandle(f->cancel);
    CloseHandle(f->wake);
    DeleteCriticalSection(&f->op_lock);
    free(f);
}

void sp_vss_freezer_set_state_cb(SpVssFreezer *f, void (*cb)(SpVssState state, void *userdata),
                                 void *userdata)
{
    f->state_cb = cb;
    f->state_userdata = userdata;
}

int sp_vss_freezer_list_volumes(SpVssFreezer *f, SpVssVolume *ret, size_t max, size_t *ret_n)
{
    HRESULT hr = f->backend->ops->list_volumes(f->backend, ret, max, ret_n);
    return FAILED(hr) ? SP_VSS_E_BACKEND : SP_VSS_OK;
}

/* "C:", "c:\" and "C:\" name the same mount point. */
bool sp_vss_mount_matches(const wchar_t *mount, const wchar_t *wanted)
{
    size_t a = wcslen(mount), b = wcslen(wanted);
    while (a > 0 && mount[a - 1] == L'\\')
        a--;
    while (b > 0 && wanted[b - 1] == L'\\')
        b--;
    return a == b && _wcsnicmp(mount, wanted, a) == 0;
}

/* Picks the volumes to freeze into f->frozen. */
static int select_volumes(SpVssFreezer *f, const wchar_t *const *mounts, size_t n_mounts,
                          SpVssError *err)
{
    SpVssVolume all[SP_VSS_MAX_VOLUMES];
    size_t n_all = 0;
    HRESULT hr = f->backend->ops->list_volumes(f->backend, all, SP_VSS_MAX_VOLUMES, &n_all);
    if (FAILED(hr)) {
        set_error(err, SP_VSS_E_BACKEND, "list_volumes", hr,
                  "cannot list the volumes: error 0x%08lx", (unsigned long)hr);
        return SP_VSS_E_BACKEND;
    }
    f->n_frozen = 0;
    if (n_mounts == 0) {
        memcpy(f->frozen, all, n_all * sizeof(all[0]));
        f->n_frozen = n_all;
    }
    for (size_t i = 0; i < n_mounts && f->n_frozen < SP_VSS_MAX_VOLUMES; i++) {
        size_t j = 0;
        while (j < n_all && !sp_vss_mount_matches(all[j].mount, mounts[i]))
            j++;
        if (j == n_all) {
            set_error(err, SP_VSS_E_BAD_VOLUME, NULL, S_OK,
                      "mount point '%ls' is not a fixed NTFS or ReFS volume", mounts[i]);
            return SP_VSS_E_BAD_VOLUME;
        }
        f->frozen[f->n_frozen++] = all[j];
    }
    if (f->n_frozen == 0) {
        set_error(err, SP_VSS_E_NO_VOLUMES, NULL, S_OK, "no fixed NTFS or ReFS volume to freeze");
        return SP_VSS_E_NO_VOLUMES;
    }
    return SP_VSS_OK;
}

static const char *cancel_str(SpVssFreezer *f)
{
    return f->cancel_reason == SP_VSS_END_NONE ? "a thaw was requested"
                                               : sp_vss_end_str(f->cancel_reason);
}

static bool cancelled(SpVssFreezer *f)
{
    return WaitForSingleObject(f->cancel, 0) == WAIT_OBJECT_0;
}

/* The VSS errors a user meets, by name, with what to do when there is something to do. */
const char *sp_vss_hresult_str(HRESULT hr)
{
    switch ((unsigned long)hr) {
    case 0x80042301UL: return "VSS_E_BAD_STATE";
    case 0x80042302UL: return "VSS_E_UNEXPECTED";
    case 0x80042304UL:
        return "VSS_E_PROVIDER_NOT_REGISTERED: run 'stillpoint-agent.exe --install'";
    case 0x80042306UL: return "VSS_E_PROVIDER_VETO";
    case 0x8004230CUL: return "VSS_E_VOLUME_NOT_SUPPORTED";
    case 0x8004230EUL: return "VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER";
    case 0x8004230FUL: return "VSS_E_UNEXPECTED_PROVIDER_ERROR";
    case 0x80042313UL: return "VSS_E_FLUSH_WRITES_TIMEOUT";
    case 0x80042314UL: return "VSS_E_HOLD_WRITES_TIMEOUT";
    case 0x80042315UL: return "VSS_E_UNEXPECTED_WRITER_ERROR";
    case 0x80042316UL:
        return "VSS_E_SNAPSHOT_SET_IN_PROGRESS: another backup is running, retry later";
    case 0x80042318UL:
        return "VSS_E_WRITER_INFRASTRUCTURE: see 'vssadmin list writers'";
    case 0x80042319UL: return "VSS_E_WRITER_NOT_RESPONDING: see 'vssadmin list writers'";
    case 0x8004231BUL: return "VSS_E_UNSUPPORTED_CONTEXT";
    case 0x800423F2UL: return "VSS_E_WRITERERROR_TIMEOUT";
    case 0x800423F4UL: return "VSS_E_WRITERERROR_NONRETRYABLE";
    case 0x80070005UL: return "E_ACCESSDENIED: run as SYSTEM or an administrator";
    case 0x80070422UL: return "the VSS service is disabled";
    case 0x80004001UL: return "E_NOTIMPL: no VSS here (wine?)";
    }
    return "";
}

#define STEP(call, name)                                                                    \
    do {                                                                                    \
        if (cancelled(f)) {                                                                 \
            set_error(err, SP_VSS_E_ABORTED, name, E_ABORT,                                 \
                      "freeze abandoned before %s: %s", name, cancel_str(f));               \
            return SP_VSS_E_ABORTED;                                                        \
        }                                                                                   \
        HRESULT step_hr = (call);                                                           \
        if (FAILED(step_hr)) {                                                              \
            const char *why = sp_vss_hresult_str(step_hr);                                  \
            set_error(err, SP_VSS_E_BACKEND, name, step_hr, "VSS %s failed: error 0x%08lx%s%s%s", \
                      name, (unsigned long)step_hr, *why ? " (" : "", why, *why ? ")" : "");    \
            return SP_VSS_E_BACKEND;                                                        \
        }                                                                                   \
    } while (0)

/* The requester's sequence up to the provider's "frozen" signal. */
static int run_freeze_sequence(SpVssFreezer *f, SpVssError *err)
{
    SpVssBackend *b = f->backend;
    STEP(b->ops->init_for_backup(b, f->config.backup_type), "init_for_backup");
    STEP(b->ops->gather_writer_metadata(b, f->config.step_timeout_ms), "gather_writer_metadata");
    STEP(b->ops->start_snapshot_set(b), "start_snapshot_set");
    for (size_t i = 0; i < f->n_frozen; i++)
        STEP(b->ops->add_volume(b, f->frozen[i].name), "add_volume");
    STEP(b->ops->prepare_for_backup(b, f->config.step_timeout_ms), "prepare_for_backup");
    STEP(b->ops->do_snapshot_set(b), "do_snapshot_set");
    HRESULT hr = b->ops->wait_frozen(b, f->config.frozen_timeout_ms, f->cancel);
    if (hr == E_ABORT) {
        set_error(err, SP_VSS_E_ABORTED, "wait_frozen", hr,
                  "freeze abandoned before the provider committed: %s", cancel_str(f));
        return SP_VSS_E_ABORTED;
    }
    if (hr == HRESULT_FROM_WIN32(ERROR_TIMEOUT)) {
        set_error(err, SP_VSS_E_TIMEOUT, "wait_frozen", hr,
                  "writers and provider did not freeze within %lu ms",
                  (unsigned long)f->config.frozen_timeout_ms);
        return SP_VSS_E_TIMEOUT;
    }
    if (FAILED(hr)) {
        const char *why = sp_vss_hresult_str(hr);
        set_error(err, SP_VSS_E_BACKEND, "do_snapshot_set", hr,
                  "VSS snapshot set failed before freezing: error 0x%08lx%s%s%s",
                  (unsigned long)hr, *why ? " (" : "", why, *why ? ")" : "");
        return SP_VSS_E_BACKEND;
    }
    return SP_VSS_OK;
}

/* Epochs only grow, also across agent restarts (PROTOCOL.md): the wall clock in ms, or one more
 * than the last when two freezes fall in the same millisecond or the clock went back. */
static uint64_t next_epoch(uint64_t last)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    uint64_t ticks = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime; /* 100 ns, 1601 */
    uint64_t unix_ms = (ticks - 116444736000000000ULL) / 10000;
    return unix_ms > last ? unix_ms : last + 1;
}

int sp_vss_freezer_freeze(SpVssFreezer *f, const wchar_t *const *mounts, size_t n_mounts,
                          DWORD lease_ms, SpVssFreezeResult *ret, SpVssError *err)
{
    EnterCriticalSection(&f->op_lock);
    if (sp_vss_freezer_state(f) != SP_VSS_STATE_THAWED) {
        LeaveCriticalSection(&f->op_lock);
        set_error(err, SP_VSS_E_BUSY, NULL, S_OK, "the volumes are already frozen");
        return SP_VSS_E_BUSY;
    }
    int r = select_volumes(f, mounts, n_mounts, err);
    if (r < 0) {
        LeaveCriticalSection(&f->op_lock);
        return r;
    }
    f->have_last = false; /* a new freeze supersedes the last thaw's report */
    ResetEvent(f->cancel);
    f->cancel_reason = SP_VSS_END_NONE;
    set_state(f, SP_VSS_STATE_FREEZING);
    r = run_freeze_sequence(f, err);
    if (r < 0) {
        f->backend->ops->abort(f->backend);
        f->backend->ops->close(f->backend);
        f->n_frozen = 0;
        set_state(f, SP_VSS_STATE_THAWED);
        LeaveCriticalSection(&f->op_lock);
        return r;
    }

    DWORD limit = f->config.hold_limit_ms;
    DWORD window = lease_ms && lease_ms < limit ? lease_ms : limit;
    AcquireSRWLockExclusive(&f->state_lock);
    f->epoch = next_epoch(f->last_epoch);
    f->last_epoch = f->epoch;
    f->frozen_at = GetTickCount64();
    f->deadline = f->frozen_at + window;
    f->deadline_end = lease_ms && lease_ms < limit ? SP_VSS_END_LEASE_EXPIRED
                                                  : SP_VSS_END_HOLD_LIMIT;
    ReleaseSRWLockExclusive(&f->state_lock);
    set_state(f, SP_VSS_STATE_FROZEN);

    memset(ret, 0, sizeof(*ret));
    ret->n_frozen = f->n_frozen;
    memcpy(ret->frozen, f->frozen, f->n_frozen * sizeof(f->frozen[0]));
    ret->epoch = f->epoch;
    ret->lease_ms = window;
    ret->hold_limit_ms = limit;
    f->window_ms = window;
    LeaveCriticalSection(&f->op_lock);
    return SP_VSS_OK;
}

/* Abandons a freeze in progress on another thread; returns once it has unwound. */
static void cancel_freezing(SpVssFreezer *f, SpVssEnd why)
{
    AcquireSRWLockExclusive(&f->state_lock);
    bool freezing = f->state == SP_VSS_STATE_FREEZING;
    if (freezing)
        f->cancel_reason = why;
    ReleaseSRWLockExclusive(&f->state_lock);
    if (freezing)
        SetEvent(f->cancel);
}

void sp_vss_freezer_cancel(SpVssFreezer *f, SpVssEnd why)
{
    cancel_freezing(f, why);
}

int sp_vss_freezer_thaw(SpVssFreezer *f, uint64_t epoch, SpVssThawResult *ret, SpVssError *err)
{
    cancel_freezing(f, SP_VSS_END_NONE);
    EnterCriticalSection(&f->op_lock);
    int r = SP_VSS_OK;
    if (sp_vss_freezer_state(f) == SP_VSS_STATE_FROZEN) {
        if (epoch && epoch != f->epoch) {
            set_error(err, SP_VSS_E_EPOCH, NULL, S_OK,
                      "epoch %llu is not the freeze held now (epoch %llu)",
                      (unsigned long long)epoch, (unsigned long long)f->epoch);
            r = SP_VSS_E_EPOCH;
        } else {
            finish_thaw(f, SP_VSS_END_NONE, ret);
        }
    } else if (epoch && f->have_last && epoch != f->last.epoch) {
        set_error(err, SP_VSS_E_EPOCH, NULL, S_OK, "freeze %llu is not the last one (%llu)",
                  (unsigned long long)epoch, (unsigned long long)f->last.epoch);
        r = SP_VSS_E_EPOCH;
    } else if (f->have_last && f->last_automatic) {
        /* Already thawed by the agent itself: say so again, consistent:false. */
        *ret = f->last;
        ret->n_thawed = 0;
    } else {
        set_error(err, SP_VSS_E_NOT_FROZEN, NULL, S_OK, "no volumes are frozen");
        r = SP_VSS_E_NOT_FROZEN;
    }
    LeaveCriticalSection(&f->op_lock);
    return r;
}

void sp_vss_freezer_end(SpVssFreezer *f, SpVssEnd why)
{
    cancel_freezing(f, why);
    EnterCriticalSection(&f->op_lock);
    if (sp_vss_freezer_state(f) == SP_VSS_STATE_FROZEN)
        finish_thaw(f, why, &f->last);
    LeaveCriticalSection(&f->op_lock);
}

void sp_vss_freezer_status(SpVssFreezer *f, SpVssStatusInfo *ret)
{
    memset(ret, 0, sizeof(*ret));
    EnterCriticalSection(&f->op_lock);
    ret->state = sp_vss_freezer_state(f);
    if (ret->state == SP_VSS_STATE_FROZEN) {
        ULONGLONG now = GetTickCount64();
        ret->epoch = f->epoch;
        ret->lease_ms = f->window_ms;
        ret->held_ms = now - f->frozen_at;
        ret->remaining_ms = f->deadline > now ? f->deadline - now : 0;
        ret->n_frozen = f->n_frozen;
        memcpy(ret->frozen, f->frozen, f->n_frozen * sizeof(f->frozen[0]));
    } else if (f->have_last) {
        ret->epoch = f->last.epoch;
    }
    ret->have_last = f->have_last;
    if (f->have_last)
        ret->last = f->last;
    LeaveCriticalSection(&f->op_lock);
}

bool sp_vss_writer_state_failed(int state)
{
    /* VSS_WS_FAILED_AT_IDENTIFY .. VSS_WS_FAILED_AT_BACKUPSHUTDOWN are the failure states. */
    return state >= SP_VSS_WS_FAILED_AT_IDENTIFY && state <= SP_VSS_WS_FAILED_AT_BACKUPSHUTDOWN;
}

const char *sp_vss_writer_state_str(int state)
{
    static const char *const names[] = {
        "unknown", "stable", "waiting-for-freeze", "waiting-for-thaw",
        "waiting-for-post-snapshot", "waiting-for-backup-complete", "failed-at-identify",
        "failed-at-prepare-backup", "failed-at-prepare-snapshot", "failed-at-freeze",
        "failed-at-thaw", "failed-at-post-snapshot", "failed-at-backup-complete",
        "failed-at-pre-restore", "failed-at-post-restore", "failed-at-backup-shutdown",
    };
    return state >= 0 && (size_t)state < sizeof(names) / sizeof(names[0]) ? names[state]
                                                                          : "unknown";
}
