/* Tests of the VSS provider DLL's hold logic, without VSS (runs under wine): load the DLL, get
 * the provider from its class factory, and play the agent's side of the named events. */
#define COBJMACROS
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>
#include <vss.h>
#include <vsprov.h>
#include <vsserror.h>
#include "named-events.h"
#include "provider-ids.h"

static int failures;
static const char *current;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,     \
                    current, #cond);                                                   \
            failures++;                                                                \
            return;                                                                    \
        }                                                                              \
    } while (0)

/* CHECK for tests that must free what they hold. */
#define CHECK_OR_DONE(cond)                                                            \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,    \
                    current, #cond);                                                   \
            failures++;                                                                \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

typedef HRESULT(WINAPI *GetClassObjectFn)(REFCLSID, REFIID, void **);

static IClassFactory *factory;
static HANDLE armed, frozen, release_event, expired;

typedef struct {
    IVssProviderCreateSnapshotSet *create;
    HRESULT hr;
    HANDLE token;          /* impersonated while calling, when set */
    HRESULT supported_hr;  /* IsVolumeSupported's, when token is set */
    WINBOOL supported;
} CommitJob;

static DWORD WINAPI commit_cb(void *userdata)
{
    CommitJob *job = userdata;
    if (job->token && !SetThreadToken(NULL, job->token)) {
        job->hr = HRESULT_FROM_WIN32(GetLastError());
        return 0;
    }
    if (job->token) {
        IVssSoftwareSnapshotProvider *p = NULL;
        job->supported = TRUE;
        job->supported_hr = IVssProviderCreateSnapshotSet_QueryInterface(
            job->create, &IID_IVssSoftwareSnapshotProvider, (void **)&p);
        if (SUCCEEDED(job->supported_hr)) {
            job->supported_hr = IVssSoftwareSnapshotProvider_IsVolumeSupported(
                p, (VSS_PWSZ)L"C:\\", &job->supported);
            IVssSoftwareSnapshotProvider_Release(p);
        }
    }
    job->hr = IVssProviderCreateSnapshotSet_CommitSnapshots(job->create, GUID_NULL);
    if (job->token)
        RevertToSelf();
    return 0;
}

/* This process's token with the Administrators group made deny-only: a local user who is
 * neither SYSTEM nor an administrator, as an impersonation token. NULL on failure. */
static HANDLE unprivileged_token(void)
{
    HANDLE process = NULL, restricted = NULL, impersonation = NULL;
    BYTE admins[SECURITY_MAX_SID_SIZE];
    DWORD size = sizeof(admins);
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_DUPLICATE | TOKEN_QUERY, &process) &&
        CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &size)) {
        SID_AND_ATTRIBUTES deny_only = { .Sid = admins };
        if (CreateRestrictedToken(process, 0, 1, &deny_only, 0, NULL, 0, NULL, &restricted))
            DuplicateToken(restricted, SecurityImpersonation, &impersonation);
    }
    if (restricted)
        CloseHandle(restricted);
    if (process)
        CloseHandle(process);
    return impersonation;
}

static bool create_events(void)
{
    armed = sp_named_event_create(SP_EVENT_ARMED);
    frozen = sp_named_event_create(SP_EVENT_FROZEN);
    release_event = sp_named_event_create(SP_EVENT_RELEASE);
    expired = sp_named_event_create(SP_EVENT_EXPIRED);
    return armed && frozen && release_event && expired;
}

static void close_events(void)
{
    HANDLE *all[] = { &armed, &frozen, &release_event, &expired };
    for (size_t i = 0; i < 4; i++)
        if (*all[i]) {
            CloseHandle(*all[i]);
            *all[i] = NULL;
        }
}

static void test_claims_volumes_only_while_armed(void)
{
    IVssSoftwareSnapshotProvider *p = NULL;
    WINBOOL supported = TRUE;
    CHECK(SUCCEEDED(IClassFactory_CreateInstance(factory, NULL, &IID_IVssSoftwareSnapshotProvider,
                                                 (void **)&p)));
    CHECK(SUCCEEDED(IVssSoftwareSnapshotProvider_IsVolumeSupported(p, (VSS_PWSZ)L"C:\\",
                                                                   &supported)));
    CHECK(!supported);
    CHECK(create_events());
    SetEvent(armed);
    CHECK(SUCCEEDED(IVssSoftwareSnapshotProvider_IsVolumeSupported(p, (VSS_PWSZ)L"C:\\",
                                                                   &supported)));
    CHECK(supported);
    /* One object, three interfaces. */
    IVssProviderCreateSnapshotSet *c = NULL;
    CHECK(SUCCEEDED(IVssSoftwareSnapshotProvider_QueryInterface(
        p, &IID_IVssProviderCreateSnapshotSet, (void **)&c)));
    IVssProviderCreateSnapshotSet_Release(c);
    IVssSoftwareSnapshotProvider_Release(p);
    close_events();
}

static void test_commit_signals_frozen_and_holds_until_release(void)
{
    CommitJob job = { 0 };
    CHECK(create_events());
    CHECK(SUCCEEDED(IClassFactory_CreateInstance(factory, NULL, &IID_IVssProviderCreateSnapshotSet,
                                                 (void **)&job.create)));
    HANDLE t = CreateThread(NULL, 0, commit_cb, &job, 0, NULL);
    CHECK(t);
    CHECK(WaitForSingleObject(frozen, 5000) == WAIT_OBJECT_0);
    /* Holding: CommitSnapshots has not returned. */
    CHECK(WaitForSingleObject(t, 200) == WAIT_TIMEOUT);
    SetEvent(release_event);
    CHECK(WaitForSingleObject(t, 5000) == WAIT_OBJECT_0);
    CloseHandle(t);
    CHECK(job.hr == S_OK);
    CHECK(WaitForSingleObject(expired, 0) == WAIT_TIMEOUT);
    IVssProviderCreateSnapshotSet_Release(job.create);
    close_events();
}

/* Never a NULL DACL: anyone could signal "release" and end a freeze early. */
static void test_named_events_are_restricted_to_system_and_administrators(void)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    wchar_t *sddl = NULL;
    CHECK_OR_DONE(create_events());
    DWORD need = 0;
    GetKernelObjectSecurity(release_event, DACL_SECURITY_INFORMATION, NULL, 0, &need);
    CHECK_OR_DONE(need > 0);
    sd = LocalAlloc(LPTR, need);
    CHECK_OR_DONE(sd);
    CHECK_OR_DONE(GetKernelObjectSecurity(release_event, DACL_SECURITY_INFORMATION, sd, need, &need));
    CHECK_OR_DONE(ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1,
                                                               DACL_SECURITY_INFORMATION, &sddl,
                                                               NULL));
    printf("  # release event DACL: %ls\n", sddl);
    CHECK_OR_DONE(wcsncmp(sddl, L"D:P", 3) == 0);          /* present and protected */
    CHECK_OR_DONE(wcsstr(sddl, L";;;SY)") && wcsstr(sddl, L";;;BA)"));
    size_t aces = 0;
    for (const wchar_t *p = sddl; (p = wcschr(p, L'(')) != NULL; p++)
        aces++;
    CHECK_OR_DONE(aces == 2);                              /* nobody else: no WD, no AU, no IU */
done:
    if (sddl)
        LocalFree(sddl);
    if (sd)
        LocalFree(sd);
    close_events();
}

/* The events as the provider's process finds them in COM+: it runs as SYSTEM and can open them
 * whoever calls it. Here the caller is this process's user with its administrator rights taken
 * away, so the events also let that user in: what the caller may do must then come from the
 * provider's own check, not from the events' DACL. */
static bool create_events_open_to_caller(void)
{
    union {
        TOKEN_USER user;
        BYTE bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } buf;
    wchar_t *user = NULL, sddl[256];
    HANDLE token;
    DWORD n;
    bool ok = OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token) &&
              GetTokenInformation(token, TokenUser, &buf, sizeof(buf), &n) &&
              ConvertSidToStringSidW(buf.user.User.Sid, &user);
    PSECURITY_DESCRIPTOR sd = NULL;
    swprintf(sddl, 256, L"%ls(A;;GA;;;%ls)", SP_EVENT_SDDL, ok ? user : L"SY");
    ok = ok && ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd,
                                                                    NULL);
    SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .lpSecurityDescriptor = sd };
    HANDLE *all[] = { &armed, &frozen, &release_event, &expired };
    const wchar_t *names[] = { SP_EVENT_ARMED, SP_EVENT_FROZEN, SP_EVENT_RELEASE,
                               SP_EVENT_EXPIRED };
    for (size_t i = 0; ok && i < 4; i++)
        ok = (*all[i] = CreateEventW(&sa, TRUE, FALSE, names[i])) != NULL;
    if (sd)
        LocalFree(sd);
    if (user)
        LocalFree(user);
    CloseHandle(token);
    return ok;
}

/* A caller who is neither SYSTEM nor an administrator gets E_ACCESSDENIED, and the provider
 * neither signals "frozen" nor holds (before, it did both for anyone who could call it). In
 * process under wine; the COM+ side (another process, its role) only a real Windows run shows. */
static void test_commit_refused_to_a_caller_not_system_or_administrator(void)
{
    CommitJob job = { 0 };
    BYTE admins[SECURITY_MAX_SID_SIZE];
    DWORD size = sizeof(admins);
    BOOL member = TRUE;
    CHECK(create_events_open_to_caller());
    SetEvent(armed);
    job.token = unprivileged_token();
    CHECK(job.token);
    /* The token really is not an administrator's (so that wine's answer below means something). */
    CHECK(CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &size));
    CHECK(CheckTokenMembership(job.token, admins, &member) && !member);
    CHECK(SUCCEEDED(IClassFactory_CreateInstance(factory, NULL, &IID_IVssProviderCreateSnapshotSet,
                                                 (void **)&job.create)));
    HANDLE t = CreateThread(NULL, 0, commit_cb, &job, 0, NULL);
    CHECK(t);
    DWORD waited = WaitForSingleObject(t, 5000);
    if (waited != WAIT_OBJECT_0) {
        SetEvent(release_event); /* it holds: let it go, then fail */
        WaitForSingleObject(t, SP_PROVIDER_HOLD_MS + 2000);
    }
    CloseHandle(t);
    CloseHandle(job.token);
    IVssProviderCreateSnapshotSet_Release(job.create);
    CHECK(waited == WAIT_OBJECT_0);
    CHECK(job.hr == E_ACCESSDENIED);
    CHECK(WaitForSingleObject(frozen, 0) == WAIT_TIMEOUT);
    CHECK(job.supported_hr == E_ACCESSDENIED && !job.supported);
}

static void test_commit_without_agent_vetoes(void)
{
    IVssProviderCreateSnapshotSet *c = NULL;
    CHECK(SUCCEEDED(IClassFactory_CreateInstance(factory, NULL, &IID_IVssProviderCreateSnapshotSet,
                                                 (void **)&c)));
    CHECK(IVssProviderCreateSnapshotSet_CommitSnapshots(c, GUID_NULL) == VSS_E_PROVIDER_VETO);
    IVssProviderCreateSnapshotSet_Release(c);
}

static void test_commit_lets_go_at_the_hold_limit(void)
{
    CommitJob job = { 0 };
    CHECK(create_events());
    CHECK(SUCCEEDED(IClassFactory_CreateInstance(factory, NULL, &IID_IVssProviderCreateSnapshotSet,
                                                 (void **)&job.create)));
    ULONGLONG start = GetTickCount64();
    HANDLE t = CreateThread(NULL, 0, commit_cb, &job, 0, NULL);
    CHECK(t);
    CHECK(WaitForSingleObject(expired, SP_PROVIDER_HOLD_MS + 2000) == WAIT_OBJECT_0);
    CHECK(WaitForSingleObject(t, 5000) == WAIT_OBJECT_0);
    ULONGLONG took = GetTickCount64() - start;
    CloseHandle(t);
    CHECK(job.hr == S_OK);
    CHECK(took >= SP_PROVIDER_HOLD_MS - 50 && took < 10000); /* inside Windows' 10 s */
    IVssProviderCreateSnapshotSet_Release(job.create);
    close_events();
}

int main(int argc, char **argv)
{
    const wchar_t *dll = L"stillpoint-vss-provider.dll";
    wchar_t path[MAX_PATH];
    if (argc > 1) {
        MultiByteToWideChar(CP_UTF8, 0, argv[1], -1, path, MAX_PATH);
        dll = path;
    }
    HMODULE m = LoadLibraryW(dll);
    FARPROC p = m ? GetProcAddress(m, "DllGetClassObject") : NULL;
    GetClassObjectFn get = NULL;
    const GUID clsid = SP_PROVIDER_CLSID_INIT;
    if (p)
        memcpy(&get, &p, sizeof(get));
    if (!get || FAILED(get(&clsid, &IID_IClassFactory, (void **)&factory))) {
        fprintf(stderr, "cannot load the provider's class factory from %ls (error %lu)\n", dll,
                GetLastError());
        return 1;
    }
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "claims_volumes_only_while_armed", test_claims_volumes_only_while_armed },
        { "commit_signals_frozen_and_holds_until_release",
          test_commit_signals_frozen_and_holds_until_release },
        { "named_events_are_restricted_to_system_and_administrators",
          test_named_events_are_restricted_to_system_and_administrators },
        { "commit_refused_to_a_caller_not_system_or_administrator",
          test_commit_refused_to_a_caller_not_system_or_administrator },
        { "commit_without_agent_vetoes", test_commit_without_agent_vetoes },
        { "commit_lets_go_at_the_hold_limit", test_commit_lets_go_at_the_hold_limit },
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    printf("VSS provider DLL tests, without VSS: the agent's events played by the test (%zu)\n", n);
    for (size_t i = 0; i < n; i++) {
        int before = failures;
        current = tests[i].name;
        tests[i].fn();
        close_events();
        printf("%s %zu - %s\n", failures == before ? "ok" : "not ok", i + 1, current);
        fflush(stdout);
    }
    printf("%s: %d of %zu tests failed\n", failures ? "FAIL" : "PASS", failures, n);
    return failures ? 1 : 0;
}
