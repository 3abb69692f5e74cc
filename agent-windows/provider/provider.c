/* The provider object: IVssSoftwareSnapshotProvider, IVssProviderCreateSnapshotSet and
 * IVssProviderNotifications on one COM object (three vtables, one reference count). */
#include "provider.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <vsserror.h>
#include "handles.h"
#include "provider-ids.h"

LONG sp_provider_live;

typedef struct {
    IVssSoftwareSnapshotProvider provider;
    IVssProviderCreateSnapshotSet create;
    IVssProviderNotifications notify;
    LONG refs;
} Provider;

#define FROM(iface, member) ((Provider *)((char *)(iface) - offsetof(Provider, member)))

/* ---- IUnknown, shared ---- */

static HRESULT query(Provider *p, REFIID riid, void **ret)
{
    if (!ret)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IVssSoftwareSnapshotProvider))
        *ret = &p->provider;
    else if (IsEqualIID(riid, &IID_IVssProviderCreateSnapshotSet))
        *ret = &p->create;
    else if (IsEqualIID(riid, &IID_IVssProviderNotifications))
        *ret = &p->notify;
    else {
        *ret = NULL;
        return E_NOINTERFACE;
    }
    InterlockedIncrement(&p->refs);
    return S_OK;
}

static ULONG add_ref(Provider *p)
{
    return (ULONG)InterlockedIncrement(&p->refs);
}

static ULONG release(Provider *p)
{
    LONG n = InterlockedDecrement(&p->refs);
    if (n == 0) {
        free(p);
        InterlockedDecrement(&sp_provider_live);
    }
    return (ULONG)n;
}

/* ---- an empty IVssEnumObject: we keep no snapshots to report ---- */

typedef struct {
    IVssEnumObject iface;
    LONG refs;
} EmptyEnum;

static HRESULT STDMETHODCALLTYPE enum_query(IVssEnumObject *This, REFIID riid, void **ret)
{
    if (!ret)
        return E_POINTER;
    if (!IsEqualIID(riid, &IID_IUnknown) && !IsEqualIID(riid, &IID_IVssEnumObject)) {
        *ret = NULL;
        return E_NOINTERFACE;
    }
    *ret = This;
    InterlockedIncrement(&((EmptyEnum *)This)->refs);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE enum_add_ref(IVssEnumObject *This)
{
    return (ULONG)InterlockedIncrement(&((EmptyEnum *)This)->refs);
}

static ULONG STDMETHODCALLTYPE enum_release(IVssEnumObject *This)
{
    LONG n = InterlockedDecrement(&((EmptyEnum *)This)->refs);
    if (n == 0) {
        free(This);
        InterlockedDecrement(&sp_provider_live);
    }
    return (ULONG)n;
}

static HRESULT STDMETHODCALLTYPE enum_next(IVssEnumObject *This, ULONG celt, VSS_OBJECT_PROP *rgelt,
                                           ULONG *fetched)
{
    if (fetched)
        *fetched = 0;
    return S_FALSE;
}

static HRESULT STDMETHODCALLTYPE enum_skip(IVssEnumObject *This, ULONG celt)
{
    return S_FALSE;
}

static HRESULT STDMETHODCALLTYPE enum_reset(IVssEnumObject *This)
{
    return S_OK;
}

static HRESULT new_empty_enum(IVssEnumObject **ret);

static HRESULT STDMETHODCALLTYPE enum_clone(IVssEnumObject *This, IVssEnumObject **ret)
{
    return new_empty_enum(ret);
}

static const IVssEnumObjectVtbl empty_enum_vtbl = {
    enum_query, enum_add_ref, enum_release, enum_next, enum_skip, enum_reset, enum_clone,
};

static HRESULT new_empty_enum(IVssEnumObject **ret)
{
    if (!ret)
        return E_POINTER;
    EmptyEnum *e = calloc(1, sizeof(*e));
    if (!e)
        return E_OUTOFMEMORY;
    e->iface.lpVtbl = (IVssEnumObjectVtbl *)&empty_enum_vtbl;
    e->refs = 1;
    InterlockedIncrement(&sp_provider_live);
    *ret = &e->iface;
    return S_OK;
}

/* ---- IVssSoftwareSnapshotProvider ---- */

/* Each interface's IUnknown methods: the object's own, found from the interface's member. */
#define SP_IUNKNOWN_OF(prefix, Iface, member)                                                  \
    static HRESULT STDMETHODCALLTYPE prefix##_query(Iface *This, REFIID riid, void **ret)      \
    {                                                                                          \
        return query(FROM(This, member), riid, ret);                                           \
    }                                                                                          \
    static ULONG STDMETHODCALLTYPE prefix##_add_ref(Iface *This)                               \
    {                                                                                          \
        return add_ref(FROM(This, member));                                                    \
    }                                                                                          \
    static ULONG STDMETHODCALLTYPE prefix##_release(Iface *This)                               \
    {                                                                                          \
        return release(FROM(This, member));                                                    \
    }

SP_IUNKNOWN_OF(sp, IVssSoftwareSnapshotProvider, provider)

static HRESULT STDMETHODCALLTYPE sp_set_context(IVssSoftwareSnapshotProvider *This, LONG context)
{
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE sp_get_snapshot_properties(IVssSoftwareSnapshotProvider *This,
                                                            VSS_ID id, VSS_SNAPSHOT_PROP *prop)
{
    return VSS_E_OBJECT_NOT_FOUND; /* nothing persists: the snapshot is the host's overlay */
}

static HRESULT STDMETHODCALLTYPE sp_query_objects(IVssSoftwareSnapshotProvider *This, VSS_ID id,
                                                  VSS_OBJECT_TYPE queried,
                                                  VSS_OBJECT_TYPE returned,
                                                  IVssEnumObject **ret)
{
    return new_empty_enum(ret);
}

static HRESULT STDMETHODCALLTYPE sp_delete_snapshots(IVssSoftwareSnapshotProvider *This,
                                                     VSS_ID id, VSS_OBJECT_TYPE type,
                                                     WINBOOL force, LONG *ret_deleted,
                                                     VSS_ID *ret_not_deleted)
{
    if (ret_deleted)
        *ret_deleted = 0;
    if (ret_not_deleted)
        *ret_not_deleted = GUID_NULL;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE sp_begin_prepare(IVssSoftwareSnapshotProvider *This, VSS_ID set,
                                                  VSS_ID snapshot, VSS_PWSZ volume, LONG context)
{
    return S_OK;
}

/* Only while the agent has armed a freeze: otherwise VSS could choose us, a provider that makes
 * no snapshot, for another requester's backup. */
static bool armed(void)
{
    HANDLE event = OpenEventW(SYNCHRONIZE, FALSE, SP_EVENT_ARMED);
    if (!event)
        return false;
    bool on = WaitForSingleObject(event, 0) == WAIT_OBJECT_0;
    CloseHandle(event);
    return on;
}

static HRESULT STDMETHODCALLTYPE sp_is_volume_supported(IVssSoftwareSnapshotProvider *This,
                                                        VSS_PWSZ volume, WINBOOL *ret)
{
    if (!ret)
        return E_POINTER;
    *ret = FALSE;
    HRESULT hr = sp_provider_check_caller();
    if (FAILED(hr))
        return hr;
    *ret = armed();
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE sp_is_volume_snapshotted(IVssSoftwareSnapshotProvider *This,
                                                          VSS_PWSZ volume, WINBOOL *ret_present,
                                                          LONG *ret_compat)
{
    if (!ret_present || !ret_compat)
        return E_POINTER;
    *ret_present = FALSE;
    *ret_compat = 0;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE sp_set_snapshot_property(IVssSoftwareSnapshotProvider *This,
                                                          VSS_ID id, VSS_SNAPSHOT_PROPERTY_ID prop,
                                                          VARIANT value)
{
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE sp_revert(IVssSoftwareSnapshotProvider *This, VSS_ID id)
{
    return E_NOTIMPL; /* reverting is the host's business (stillpoint apply) */
}

static HRESULT STDMETHODCALLTYPE sp_query_revert_status(IVssSoftwareSnapshotProvider *This,
                                                        VSS_PWSZ volume, IVssAsync **ret)
{
    return VSS_E_OBJECT_NOT_FOUND;
}

static const IVssSoftwareSnapshotProviderVtbl provider_vtbl = {
    sp_query, sp_add_ref, sp_release, sp_set_context, sp_get_snapshot_properties,
    sp_query_objects, sp_delete_snapshots, sp_begin_prepare, sp_is_volume_supported,
    sp_is_volume_snapshotted, sp_set_snapshot_property, sp_revert, sp_query_revert_status,
};

/* ---- IVssProviderCreateSnapshotSet: CommitSnapshots holds the window ---- */

SP_IUNKNOWN_OF(cs, IVssProviderCreateSnapshotSet, create)

static HRESULT STDMETHODCALLTYPE cs_ok(IVssProviderCreateSnapshotSet *This, VSS_ID set)
{
    return S_OK;
}

/* VSS calls this with the writers frozen and the volumes' writes held (flush-and-hold): tell the
 * agent, then hold until it releases us or SP_PROVIDER_HOLD_MS pass, whichever comes first.
 * Only for SYSTEM (VSS) or an Administrator: anyone else is refused before any event is touched. */
static HRESULT STDMETHODCALLTYPE cs_commit(IVssProviderCreateSnapshotSet *This, VSS_ID set)
{
    HRESULT denied = sp_provider_check_caller();
    if (FAILED(denied))
        return denied;
    const DWORD access = SYNCHRONIZE | EVENT_MODIFY_STATE;
    HANDLE frozen = OpenEventW(access, FALSE, SP_EVENT_FROZEN);
    HANDLE release_event = OpenEventW(access, FALSE, SP_EVENT_RELEASE);
    HANDLE expired = OpenEventW(access, FALSE, SP_EVENT_EXPIRED);
    HRESULT hr = S_OK;
    if (!frozen || !release_event || !expired) {
        /* No agent: nobody to hold the window for. Veto rather than pretend it was held. */
        hr = VSS_E_PROVIDER_VETO;
    } else if (!SetEvent(frozen)) {
        hr = HRESULT_FROM_WIN32(GetLastError());
    } else if (WaitForSingleObject(release_event, SP_PROVIDER_HOLD_MS) != WAIT_OBJECT_0) {
        /* Return in time for VSS; the agent sees "expired" and reports the freeze inconsistent. */
        SetEvent(expired);
    }
    sp_close_handle(frozen);
    sp_close_handle(release_event);
    sp_close_handle(expired);
    return hr;
}

static HRESULT STDMETHODCALLTYPE cs_post_commit(IVssProviderCreateSnapshotSet *This, VSS_ID set,
                                                LONG count)
{
    return S_OK;
}

static const IVssProviderCreateSnapshotSetVtbl create_vtbl = {
    cs_query, cs_add_ref, cs_release,
    cs_ok,          /* EndPrepareSnapshots */
    cs_ok,          /* PreCommitSnapshots */
    cs_commit,      /* CommitSnapshots */
    cs_post_commit, /* PostCommitSnapshots */
    cs_ok,          /* PreFinalCommitSnapshots */
    cs_ok,          /* PostFinalCommitSnapshots */
    cs_ok,          /* AbortSnapshots: nothing was made, nothing to undo */
};

/* ---- IVssProviderNotifications ---- */

SP_IUNKNOWN_OF(n, IVssProviderNotifications, notify)

static HRESULT STDMETHODCALLTYPE n_on_load(IVssProviderNotifications *This, IUnknown *callback)
{
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE n_on_unload(IVssProviderNotifications *This, WINBOOL force)
{
    return S_OK;
}

static const IVssProviderNotificationsVtbl notify_vtbl = {
    n_query, n_add_ref, n_release, n_on_load, n_on_unload,
};

HRESULT sp_provider_create(REFIID riid, void **ret)
{
    Provider *p = calloc(1, sizeof(*p));
    if (!p)
        return E_OUTOFMEMORY;
    p->provider.lpVtbl = (IVssSoftwareSnapshotProviderVtbl *)&provider_vtbl;
    p->create.lpVtbl = (IVssProviderCreateSnapshotSetVtbl *)&create_vtbl;
    p->notify.lpVtbl = (IVssProviderNotificationsVtbl *)&notify_vtbl;
    p->refs = 1;
    InterlockedIncrement(&sp_provider_live);
    HRESULT hr = query(p, riid, ret);
    release(p); /* the caller's reference, if any, keeps it */
    return hr;
}
