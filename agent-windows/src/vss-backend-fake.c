/* The fake VSS backend: simulates writers and the software provider in-process, with the same
 * threading as the real thing (the provider holds on its own thread until release or its limit),
 * so the freeze sequencing is tested under wine. */
#include "vss-backend.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fake_writers[] = { "System Writer", "Registry Writer", "SqlServerWriter" };
#define N_FAKE_WRITERS (sizeof(fake_writers) / sizeof(fake_writers[0]))

typedef struct {
    SpVssBackend base;
    SpVssFakeConfig config;
    char calls[1024];
    bool in_session;
    HANDLE frozen;       /* manual-reset: the provider's "frozen" */
    HANDLE released;     /* manual-reset: the agent's release */
    HANDLE expired;      /* manual-reset: the provider let go on its own */
    HANDLE provider;     /* the provider thread; its exit is DoSnapshotSet's completion */
    HRESULT snapshot_hr;
    bool frozen_writer_failed;
    SpVssBackupType backup_type;
} FakeBackend;

static FakeBackend *fake(SpVssBackend *b) { return (FakeBackend *)b; }

/* Records the call and says whether the config makes it fail. */
static HRESULT fake_call(FakeBackend *f, const char *name)
{
    size_t used = strlen(f->calls);
    snprintf(f->calls + used, sizeof(f->calls) - used, "%s%s", used ? "," : "", name);
    if (f->config.fail_step && strcmp(f->config.fail_step, name) == 0)
        return f->config.fail_hr ? f->config.fail_hr : E_FAIL;
    return S_OK;
}

static HRESULT fake_list_volumes(SpVssBackend *b, SpVssVolume *ret, size_t max, size_t *ret_n)
{
    FakeBackend *f = fake(b);
    size_t n = f->config.n_volumes ? f->config.n_volumes : 2;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++) {
        memset(&ret[i], 0, sizeof(ret[i]));
        swprintf(ret[i].name, SP_VSS_VOLUME_MAX, L"\\\\?\\Volume{fake-%02u}\\", (unsigned)i);
        swprintf(ret[i].mount, MAX_PATH, L"%c:\\", (wchar_t)(L'C' + i));
        wcscpy(ret[i].fstype, i == 0 ? L"NTFS" : L"ReFS");
        ret[i].n_disks = 1;
        snprintf(ret[i].disks[0].serial, SP_VSS_SERIAL_MAX, "fake-disk-%u", (unsigned)i);
        snprintf(ret[i].disks[0].bus_type, sizeof(ret[i].disks[0].bus_type), "scsi");
        ret[i].disks[0].bus = 0;
        ret[i].disks[0].target = (int)i;
        ret[i].disks[0].unit = 0;
        ret[i].disks[0].number = (unsigned)i;
    }
    *ret_n = n;
    return S_OK;
}

static HRESULT fake_init_for_backup(SpVssBackend *b, SpVssBackupType type)
{
    FakeBackend *f = fake(b);
    f->in_session = true;
    f->backup_type = type;
    f->frozen_writer_failed = false;
    f->snapshot_hr = S_OK;
    ResetEvent(f->frozen);
    ResetEvent(f->released);
    ResetEvent(f->expired);
    return fake_call(f, "init_for_backup");
}

static HRESULT fake_gather_writer_metadata(SpVssBackend *b, DWORD timeout_ms)
{
    return fake_call(fake(b), "gather_writer_metadata");
}

static HRESULT fake_start_snapshot_set(SpVssBackend *b)
{
    return fake_call(fake(b), "start_snapshot_set");
}

static HRESULT fake_add_volume(SpVssBackend *b, const wchar_t *volume)
{
    return fake_call(fake(b), "add_volume");
}

static HRESULT fake_prepare_for_backup(SpVssBackend *b, DWORD timeout_ms)
{
    return fake_call(fake(b), "prepare_for_backup");
}

/* The provider's CommitSnapshots: signal frozen, hold until release or the limit. */
static DWORD WINAPI fake_provider_thread_cb(void *userdata)
{
    FakeBackend *f = userdata;
    DWORD limit = f->config.hold_limit_ms ? f->config.hold_limit_ms : SP_VSS_FLUSH_HOLD_LIMIT_MS;
    /* Writers freezing; an abort or release during that time ends the set uncommitted. */
    if (f->config.commit_delay_ms &&
        WaitForSingleObject(f->released, f->config.commit_delay_ms) == WAIT_OBJECT_0) {
        f->snapshot_hr = (HRESULT)0x80042301L; /* VSS_E_BAD_STATE */
        return 0;
    }
    if (f->config.fail_step && strcmp(f->config.fail_step, "commit") == 0) {
        f->snapshot_hr = f->config.fail_hr ? f->config.fail_hr : E_FAIL;
        return 0;
    }
    if (f->config.failing_writer)
        f->frozen_writer_failed = true; /* writers fail at freeze without failing the set */
    SetEvent(f->frozen);
    if (WaitForSingleObject(f->released, limit) == WAIT_TIMEOUT)
        SetEvent(f->expired);
    return 0;
}

static HRESULT fake_do_snapshot_set(SpVssBackend *b)
{
    FakeBackend *f = fake(b);
    HRESULT hr = fake_call(f, "do_snapshot_set");
    if (FAILED(hr))
        return hr;
    f->provider = CreateThread(NULL, 0, fake_provider_thread_cb, f, 0, NULL);
    return f->provider ? S_OK : HRESULT_FROM_WIN32(GetLastError());
}

static HRESULT fake_wait_frozen(SpVssBackend *b, DWORD timeout_ms, HANDLE cancel)
{
    FakeBackend *f = fake(b);
    HRESULT hr = fake_call(f, "wait_frozen");
    if (FAILED(hr))
        return hr;
    HANDLE handles[3] = { f->frozen, f->provider, cancel };
    DWORD n = cancel ? 3 : 2;
    DWORD w = WaitForMultipleObjects(n, handles, FALSE, timeout_ms);
    if (w == WAIT_OBJECT_0)
        return S_OK;
    if (w == WAIT_OBJECT_0 + 1) /* the set completed without freezing: its error */
        return FAILED(f->snapshot_hr) ? f->snapshot_hr : E_UNEXPECTED;
    if (w == WAIT_OBJECT_0 + 2)
        return E_ABORT;
    if (w == WAIT_TIMEOUT)
        return HRESULT_FROM_WIN32(ERROR_TIMEOUT);
    return HRESULT_FROM_WIN32(GetLastError());
}

static HANDLE fake_hold_expired_event(SpVssBackend *b)
{
    return fake(b)->expired;
}

static HRESULT fake_release(SpVssBackend *b)
{
    FakeBackend *f = fake(b);
    SetEvent(f->released);
    return fake_call(f, "release");
}

static HRESULT fake_wait_snapshot_set(SpVssBackend *b, DWORD timeout_ms, bool *ret_hold_expired)
{
    FakeBackend *f = fake(b);
    HRESULT hr = fake_call(f, "wait_snapshot_set");
    if (FAILED(hr))
        return hr;
    if (!f->provider)
        return E_UNEXPECTED;
    if (WaitForSingleObject(f->provider, timeout_ms) != WAIT_OBJECT_0)
        return HRESULT_FROM_WIN32(ERROR_TIMEOUT);
    *ret_hold_expired = WaitForSingleObject(f->expired, 0) == WAIT_OBJECT_0;
    return f->snapshot_hr;
}

static HRESULT fake_backup_complete(SpVssBackend *b, DWORD timeout_ms)
{
    return fake_call(fake(b), "backup_complete");
}

static HRESULT fake_writer_statuses(SpVssBackend *b, SpVssWriterStatus *ret, size_t max,
                                    size_t *ret_n)
{
    FakeBackend *f = fake(b);
    HRESULT hr = fake_call(f, "writer_statuses");
    if (FAILED(hr))
        return hr;
    size_t n = 0;
    for (size_t i = 0; i < N_FAKE_WRITERS && n < max; i++, n++) {
        snprintf(ret[n].name, sizeof(ret[n].name), "%s", fake_writers[i]);
        ret[n].state = SP_VSS_WS_STABLE;
        ret[n].failure = S_OK;
    }
    if (f->config.failing_writer && f->frozen_writer_failed && n < max) {
        /* Any name may fail, also one not in the fixed list. */
        size_t i = 0;
        while (i < n && strcmp(ret[i].name, f->config.failing_writer) != 0)
            i++;
        if (i == n)
            n++;
        snprintf(ret[i].name, sizeof(ret[i].name), "%s", f->config.failing_writer);
        ret[i].state = SP_VSS_WS_FAILED_AT_FREEZE;
        ret[i].failure = (HRESULT)0x800423F2L; /* VSS_E_WRITERERROR_TIMEOUT */
    }
    *ret_n = n;
    return S_OK;
}

static HRESULT fake_abort(SpVssBackend *b)
{
    FakeBackend *f = fake(b);
    SetEvent(f->released); /* an aborted set releases the provider too */
    return fake_call(f, "abort");
}

static void fake_close(SpVssBackend *b)
{
    FakeBackend *f = fake(b);
    if (f->provider) {
        SetEvent(f->released);
        WaitForSingleObject(f->provider, INFINITE);
        CloseHandle(f->provider);
        f->provider = NULL;
    }
    f->in_session = false;
    fake_call(f, "close");
}

static void fake_free(SpVssBackend *b)
{
    FakeBackend *f = fake(b);
    if (!f)
        return;
    if (f->in_session)
        fake_close(b);
    CloseHandle(f->frozen);
    CloseHandle(f->released);
    CloseHandle(f->expired);
    free(f);
}

static const SpVssBackendOps fake_ops = {
    .name = "fake",
    .list_volumes = fake_list_volumes,
    .init_for_backup = fake_init_for_backup,
    .gather_writer_metadata = fake_gather_writer_metadata,
    .start_snapshot_set = fake_start_snapshot_set,
    .add_volume = fake_add_volume,
    .prepare_for_backup = fake_prepare_for_backup,
    .do_snapshot_set = fake_do_snapshot_set,
    .wait_frozen = fake_wait_frozen,
    .hold_expired_event = fake_hold_expired_event,
    .release = fake_release,
    .wait_snapshot_set = fake_wait_snapshot_set,
    .backup_complete = fake_backup_complete,
    .writer_statuses = fake_writer_statuses,
    .abort = fake_abort,
    .close = fake_close,
    .free = fake_free,
};

SpVssBackend *sp_vss_backend_fake_new(const SpVssFakeConfig *config)
{
    FakeBackend *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->base.ops = &fake_ops;
    if (config)
        f->config = *config;
    f->frozen = CreateEventW(NULL, TRUE, FALSE, NULL);
    f->released = CreateEventW(NULL, TRUE, FALSE, NULL);
    f->expired = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!f->frozen || !f->released || !f->expired) {
        fake_free(&f->base);
        return NULL;
    }
    return &f->base;
}

const char *sp_vss_backend_fake_calls(SpVssBackend *b)
{
    return fake(b)->calls;
}

SpVssBackupType sp_vss_backend_fake_backup_type(SpVssBackend *b)
{
    return fake(b)->backup_type;
}

static bool parse_ulong(const char *s, int base, unsigned long *ret)
{
    char *end;
    if (!*s)
        return false;
    unsigned long v = strtoul(s, &end, base);
    if (*end)
        return false;
    *ret = v;
    return true;
}

bool sp_vss_fake_config_parse(char *spec, SpVssFakeConfig *ret)
{
    SpVssFakeConfig c = { 0 };
    for (char *item = spec, *next; item && *item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq)
            return false;
        *eq = '\0';
        const char *key = item, *value = eq + 1;
        unsigned long v = 0;
        if (strcmp(key, "commit-delay-ms") == 0 && parse_ulong(value, 10, &v))
            c.commit_delay_ms = (DWORD)v;
        else if (strcmp(key, "hold-limit-ms") == 0 && parse_ulong(value, 10, &v))
            c.hold_limit_ms = (DWORD)v;
        else if (strcmp(key, "fail-hr") == 0 && parse_ulong(value, 16, &v) && v <= 0xffffffffUL)
            c.fail_hr = (HRESULT)(DWORD)v;
        else if (strcmp(key, "volumes") == 0 && parse_ulong(value, 10, &v) &&
                 v <= SP_VSS_MAX_VOLUMES)
            c.n_volumes = v;
        else if (strcmp(key, "fail") == 0 && *value)
            c.fail_step = value;
        else if (strcmp(key, "failing-writer") == 0 && *value)
            c.failing_writer = value;
        else
            return false;
    }
    *ret = c;
    return true;
}
