/* The real VSS backend: an IVssBackupComponents requester whose snapshot set goes to the
 * stillpoint provider, which signals "frozen" and holds through the named events. */
#define COBJMACROS
#include "vss-backend.h"
#include "handles.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <objbase.h>
#include <vss.h>
#include <vswriter.h>
#include <vsbackup.h>
#include <vsserror.h>
#include "named-events.h"
#include "provider-ids.h"

/* How often wait_frozen looks at the snapshot set's progress while waiting for "frozen". */
#define POLL_MS 50u

typedef struct {
    SpVssBackend base;
    bool com_initialized;
    IVssBackupComponents *vss;
    IVssAsync *snapshot;   /* DoSnapshotSet in progress */
    HANDLE armed, frozen, release, expired;
} RealBackend;

static RealBackend *real(SpVssBackend *b) { return (RealBackend *)b; }

static const VSS_ID provider_id = SP_PROVIDER_ID_INIT;

/* Waits for an asynchronous VSS call and releases it; cancels it on timeout. */
static HRESULT wait_async(IVssAsync *async, DWORD timeout_ms)
{
    HRESULT result = S_OK;
    HRESULT hr = IVssAsync_Wait(async, timeout_ms);
    if (SUCCEEDED(hr))
        hr = IVssAsync_QueryStatus(async, &result, NULL);
    if (SUCCEEDED(hr) && result == VSS_S_ASYNC_PENDING) {
        IVssAsync_Cancel(async);
        hr = HRESULT_FROM_WIN32(ERROR_TIMEOUT);
    } else if (SUCCEEDED(hr) && result == VSS_S_ASYNC_CANCELLED) {
        hr = E_ABORT;
    } else if (SUCCEEDED(hr)) {
        hr = result;
    }
    IVssAsync_Release(async);
    return hr;
}

static bool fs_is_snapshottable(const wchar_t *fs)
{
    return _wcsicmp(fs, L"NTFS") == 0 || _wcsicmp(fs, L"ReFS") == 0;
}

static HRESULT real_list_volumes(SpVssBackend *b, SpVssVolume *ret, size_t max, size_t *ret_n)
{
    wchar_t name[SP_VSS_VOLUME_MAX];
    HANDLE find = FindFirstVolumeW(name, SP_VSS_VOLUME_MAX); /* a count of characters */
    if (find == INVALID_HANDLE_VALUE)
        return HRESULT_FROM_WIN32(GetLastError());
    size_t n = 0;
    do {
        SpVssVolume *v = &ret[n];
        DWORD len = 0;
        memset(v, 0, sizeof(*v));
        if (GetDriveTypeW(name) != DRIVE_FIXED)
            continue;
        if (!GetVolumeInformationW(name, NULL, 0, NULL, NULL, NULL, v->fstype,
                                   sizeof(v->fstype) / sizeof(v->fstype[0])) ||
            !fs_is_snapshottable(v->fstype))
            continue;
        /* The first of the volume's mount points; an unmounted volume cannot be named. */
        wchar_t paths[MAX_PATH * 4];
        if (!GetVolumePathNamesForVolumeNameW(name, paths, sizeof(paths) / sizeof(paths[0]),
                                              &len) || !paths[0])
            continue;
        wcsncpy(v->name, name, SP_VSS_VOLUME_MAX - 1);
        wcsncpy(v->mount, paths, MAX_PATH - 1);
        sp_volume_disks(v);
        n++;
    } while (n < max && FindNextVolumeW(find, name, SP_VSS_VOLUME_MAX));
    FindVolumeClose(find);
    *ret_n = n;
    return S_OK;
}

static HRESULT real_init_for_backup(SpVssBackend *b, SpVssBackupType type)
{
    RealBackend *r = real(b);
    ResetEvent(r->frozen);
    ResetEvent(r->release);
    ResetEvent(r->expired);
    SetEvent(r->armed); /* from now until close, our provider claims the volumes */
    HRESULT hr = CreateVssBackupComponents(&r->vss);
    if (FAILED(hr))
        return hr;
    hr = IVssBackupComponents_InitializeForBackup(r->vss, NULL);
    if (SUCCEEDED(hr))
        hr = IVssBackupComponents_SetContext(r->vss, VSS_CTX_BACKUP);
    /* No components selected (every writer takes part), not a bootable-state backup, and
     * COPY by default so that applications' own backup chains are left alone. */
    if (SUCCEEDED(hr))
        hr = IVssBackupComponents_SetBackupState(r->vss, FALSE, FALSE, (VSS_BACKUP_TYPE)type,
                                                 FALSE);
    return hr;
}

static HRESULT real_gather_writer_metadata(SpVssBackend *b, DWORD timeout_ms)
{
    RealBackend *r = real(b);
    IVssAsync *async = NULL;
    HRESULT hr = IVssBackupComponents_GatherWriterMetadata(r->vss, &async);
    if (SUCCEEDED(hr))
        hr = wait_async(async, timeout_ms);
    if (SUCCEEDED(hr))
        hr = IVssBackupComponents_FreeWriterMetadata(r->vss);
    return hr;
}

static HRESULT real_start_snapshot_set(SpVssBackend *b)
{
    VSS_ID set_id;
    return IVssBackupComponents_StartSnapshotSet(real(b)->vss, &set_id);
}

static HRESULT real_add_volume(SpVssBackend *b, const wchar_t *volume)
{
    VSS_ID snapshot_id;
    return IVssBackupComponents_AddToSnapshotSet(real(b)->vss, (VSS_PWSZ)volume, provider_id,
                                                 &snapshot_id);
}

static HRESULT real_prepare_for_backup(SpVssBackend *b, DWORD timeout_ms)
{
    IVssAsync *async = NULL;
    HRESULT hr = IVssBackupComponents_PrepareForBackup(real(b)->vss, &async);
    return SUCCEEDED(hr) ? wait_async(async, timeout_ms) : hr;
}

static HRESULT real_do_snapshot_set(SpVssBackend *b)
{
    return IVssBackupComponents_DoSnapshotSet(real(b)->vss, &real(b)->snapshot);
}

static HRESULT real_wait_frozen(SpVssBackend *b, DWORD timeout_ms, HANDLE cancel)
{
    RealBackend *r = real(b);
    ULONGLONG deadline = GetTickCount64() + timeout_ms;
    HANDLE handles[2] = { r->frozen, cancel };
    for (;;) {
        DWORD w = WaitForMultipleObjects(cancel ? 2 : 1, handles, FALSE, POLL_MS);
        if (w == WAIT_OBJECT_0)
            return S_OK;
        if (w == WAIT_OBJECT_0 + 1)
            return E_ABORT;
        if (w != WAIT_TIMEOUT)
            return HRESULT_FROM_WIN32(GetLastError());
        /* The set can end without our provider ever committing (a writer vetoed). */
        HRESULT result = S_OK;
        HRESULT hr = IVssAsync_QueryStatus(r->snapshot, &result, NULL);
        if (FAILED(hr))
            return hr;
        if (result != VSS_S_ASYNC_PENDING)
            return FAILED(result) ? result : VSS_E_BAD_STATE;
        if (GetTickCount64() >= deadline)
            return HRESULT_FROM_WIN32(ERROR_TIMEOUT);
    }
}

static HANDLE real_hold_expired_event(SpVssBackend *b)
{
    return real(b)->expired;
}

static HRESULT real_release(SpVssBackend *b)
{
    return SetEvent(real(b)->release) ? S_OK : HRESULT_FROM_WIN32(GetLastError());
}

static HRESULT real_wait_snapshot_set(SpVssBackend *b, DWORD timeout_ms, bool *ret_hold_expired)
{
    RealBackend *r = real(b);
    if (!r->snapshot)
        return VSS_E_BAD_STATE;
    HRESULT hr = wait_async(r->snapshot, timeout_ms);
    r->snapshot = NULL;
    *ret_hold_expired = WaitForSingleObject(r->expired, 0) == WAIT_OBJECT_0;
    return hr;
}

static HRESULT real_backup_complete(SpVssBackend *b, DWORD timeout_ms)
{
    IVssAsync *async = NULL;
    HRESULT hr = IVssBackupComponents_BackupComplete(real(b)->vss, &async);
    return SUCCEEDED(hr) ? wait_async(async, timeout_ms) : hr;
}

static void bstr_to_utf8(BSTR s, char *ret, size_t size)
{
    /* Both lengths are counts (characters in, bytes out), never sizeof of the other kind. */
    int n = s ? WideCharToMultiByte(CP_UTF8, 0, s, (int)SysStringLen(s), ret, (int)size - 1,
                                    NULL, NULL)
              : 0;
    ret[n > 0 ? n : 0] = '\0';
}

static HRESULT real_writer_statuses(SpVssBackend *b, SpVssWriterStatus *ret, size_t max,
                                    size_t *ret_n)
{
    RealBackend *r = real(b);
    IVssAsync *async = NULL;
    UINT count = 0;
    HRESULT hr = IVssBackupComponents_GatherWriterStatus(r->vss, &async);
    if (SUCCEEDED(hr))
        hr = wait_async(async, SP_VSS_STEP_TIMEOUT_MS);
    if (SUCCEEDED(hr))
        hr = IVssBackupComponents_GetWriterStatusCount(r->vss, &count);
    size_t n = 0;
    for (UINT i = 0; SUCCEEDED(hr) && i < count && n < max; i++) {
        VSS_ID instance, writer;
        BSTR name = NULL;
        VSS_WRITER_STATE state;
        HRESULT failure = S_OK;
        hr = IVssBackupComponents_GetWriterStatus(r->vss, i, &instance, &writer, &name, &state,
                                                  &failure);
        if (FAILED(hr))
            break;
        bstr_to_utf8(name, ret[n].name, sizeof(ret[n].name));
        SysFreeString(name);
        ret[n].state = (int)state;
        ret[n].failure = failure;
        n++;
    }
    IVssBackupComponents_FreeWriterStatus(r->vss);
    *ret_n = n;
    return hr;
}

static HRESULT real_abort(SpVssBackend *b)
{
    RealBackend *r = real(b);
    SetEvent(r->release); /* a provider still holding must let go */
    return r->vss ? IVssBackupComponents_AbortBackup(r->vss) : S_OK;
}

static void real_close(SpVssBackend *b)
{
    RealBackend *r = real(b);
    if (r->snapshot) {
        SetEvent(r->release);
        IVssAsync_Wait(r->snapshot, SP_VSS_STEP_TIMEOUT_MS);
        IVssAsync_Release(r->snapshot);
        r->snapshot = NULL;
    }
    /* Releasing the components deletes the (non-persistent) snapshots of VSS_CTX_BACKUP. */
    if (r->vss) {
        IVssBackupComponents_Release(r->vss);
        r->vss = NULL;
    }
    ResetEvent(r->armed);
}

static void real_free(SpVssBackend *b)
{
    RealBackend *r = real(b);
    if (!r)
        return;
    real_close(b);
    sp_close_handle(r->armed);
    sp_close_handle(r->frozen);
    sp_close_handle(r->release);
    sp_close_handle(r->expired);
    if (r->com_initialized)
        CoUninitialize();
    free(r);
}

static const SpVssBackendOps real_ops = {
    .name = "vss",
    .list_volumes = real_list_volumes,
    .init_for_backup = real_init_for_backup,
    .gather_writer_metadata = real_gather_writer_metadata,
    .start_snapshot_set = real_start_snapshot_set,
    .add_volume = real_add_volume,
    .prepare_for_backup = real_prepare_for_backup,
    .do_snapshot_set = real_do_snapshot_set,
    .wait_frozen = real_wait_frozen,
    .hold_expired_event = real_hold_expired_event,
    .release = real_release,
    .wait_snapshot_set = real_wait_snapshot_set,
    .backup_complete = real_backup_complete,
    .writer_statuses = real_writer_statuses,
    .abort = real_abort,
    .close = real_close,
    .free = real_free,
};

SpVssBackend *sp_vss_backend_real_new(HRESULT *ret_hr)
{
    RealBackend *r = calloc(1, sizeof(*r));
    if (!r) {
        *ret_hr = E_OUTOFMEMORY;
        return NULL;
    }
    r->base.ops = &real_ops;
    /* Multithreaded: the watchdog thread thaws through the same components. */
    HRESULT hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (SUCCEEDED(hr)) {
        r->com_initialized = true;
        /* VSS calls back into the requester; it needs at least identify-level impersonation. */
        hr = CoInitializeSecurity(NULL, -1, NULL, NULL, RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                                  RPC_C_IMP_LEVEL_IDENTIFY, NULL, EOAC_NONE, NULL);
        if (hr == RPC_E_TOO_LATE)
            hr = S_OK;
    }
    if (SUCCEEDED(hr)) {
        r->armed = sp_named_event_create(SP_EVENT_ARMED);
        if (r->armed)
            r->frozen = sp_named_event_create(SP_EVENT_FROZEN);
        if (r->frozen)
            r->release = sp_named_event_create(SP_EVENT_RELEASE);
        if (r->release)
            r->expired = sp_named_event_create(SP_EVENT_EXPIRED);
        if (!r->expired)
            hr = HRESULT_FROM_WIN32(GetLastError());
    }
    if (FAILED(hr)) {
        real_free(&r->base);
        *ret_hr = hr;
        return NULL;
    }
    *ret_hr = S_OK;
    return &r->base;
}
