/* Service plumbing: the SCM dispatcher and control handler, and install/uninstall, which also
 * register the VSS provider DLL that sits next to the exe. */
#include "service.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <objbase.h>
#include "log.h"
#include "complus.h"
#include "provider-ids.h"
#include "state-dir.h"

/* How long the SCM may wait for us to stop: a thaw waits for VSS's BackupComplete. */
#define SP_SERVICE_STOP_WAIT_HINT_MS 30000u

static SERVICE_STATUS_HANDLE status_handle;
static SERVICE_STATUS status;
static HANDLE stop_event;
static SpServiceRunFn run_fn;
static SpServiceStopFn stop_fn;

static void report(DWORD state, DWORD exit_code, DWORD wait_hint)
{
    static DWORD checkpoint = 1;
    status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    status.dwCurrentState = state;
    status.dwWin32ExitCode = exit_code;
    status.dwWaitHint = wait_hint;
    status.dwControlsAccepted = state == SERVICE_START_PENDING
                                    ? 0
                                    : SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN;
    status.dwCheckPoint = state == SERVICE_RUNNING || state == SERVICE_STOPPED ? 0 : checkpoint++;
    SetServiceStatus(status_handle, &status);
}

static DWORD WINAPI control_cb(DWORD control, DWORD type, void *data, void *context)
{
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        report(SERVICE_STOP_PENDING, NO_ERROR, SP_SERVICE_STOP_WAIT_HINT_MS);
        if (stop_fn)
            stop_fn();
        SetEvent(stop_event);
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

static void WINAPI service_main_cb(DWORD argc, wchar_t **argv)
{
    status_handle = RegisterServiceCtrlHandlerExW(SP_SERVICE_NAME, control_cb, NULL);
    if (!status_handle)
        return;
    report(SERVICE_START_PENDING, NO_ERROR, 3000);
    stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!stop_event) {
        report(SERVICE_STOPPED, GetLastError(), 0);
        return;
    }
    report(SERVICE_RUNNING, NO_ERROR, 0);
    int r = run_fn(stop_event);
    CloseHandle(stop_event);
    report(SERVICE_STOPPED, r ? ERROR_SERVICE_SPECIFIC_ERROR : NO_ERROR, 0);
}

int sp_service_dispatch(SpServiceRunFn run, SpServiceStopFn on_stop)
{
    static wchar_t name[] = SP_SERVICE_NAME;
    SERVICE_TABLE_ENTRYW table[] = { { name, service_main_cb }, { NULL, NULL } };
    run_fn = run;
    stop_fn = on_stop;
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD error = GetLastError();
        fprintf(stderr, "stillpoint-agent: --service must be started by the service control "
                        "manager (error %lu); use --console to run in a console\n", error);
        return 1;
    }
    return 0;
}

/* Path of a file next to our exe. */
static bool sibling_path(const wchar_t *file, wchar_t *ret, size_t size)
{
    DWORD n = GetModuleFileNameW(NULL, ret, (DWORD)size);
    if (n == 0 || n >= size)
        return false;
    wchar_t *slash = wcsrchr(ret, L'\\');
    if (!slash || (size_t)(slash - ret) + 1 + wcslen(file) + 1 > size)
        return false;
    wcscpy(slash + 1, file);
    return true;
}

/* Calls DllRegisterServer or DllUnregisterServer of the provider DLL. */
static HRESULT call_provider(const char *entry)
{
    wchar_t path[MAX_PATH];
    if (!sibling_path(SP_PROVIDER_DLL, path, MAX_PATH))
        return HRESULT_FROM_WIN32(ERROR_FILENAME_EXCED_RANGE);
    HMODULE dll = LoadLibraryExW(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    if (!dll)
        return HRESULT_FROM_WIN32(GetLastError());
    HRESULT (WINAPI *fn)(void) = NULL;
    FARPROC p = GetProcAddress(dll, entry);
    HRESULT hr;
    if (p) {
        memcpy(&fn, &p, sizeof(fn)); /* FARPROC to the real signature without a cast warning */
        hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
        bool com = SUCCEEDED(hr);
        hr = fn();
        if (com)
            CoUninitialize();
    } else {
        hr = HRESULT_FROM_WIN32(GetLastError());
    }
    FreeLibrary(dll);
    return hr;
}

/* The provider DLL as a COM+ server application; COM+ calls its DllRegisterServer, which
 * registers it with VSS. */
static HRESULT register_provider(void)
{
    wchar_t dll[MAX_PATH];
    if (!sibling_path(SP_PROVIDER_DLL, dll, MAX_PATH))
        return HRESULT_FROM_WIN32(ERROR_FILENAME_EXCED_RANGE);
    if (GetFileAttributesW(dll) == INVALID_FILE_ATTRIBUTES)
        return HRESULT_FROM_WIN32(GetLastError());
    HRESULT hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    bool com = SUCCEEDED(hr);
    hr = sp_complus_install(SP_PROVIDER_NAME, dll);
    if (com)
        CoUninitialize();
    return hr;
}

static HRESULT unregister_provider(void)
{
    HRESULT hr = call_provider("DllUnregisterServer");
    HRESULT hr2 = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    bool com = SUCCEEDED(hr2);
    hr2 = sp_complus_uninstall(SP_PROVIDER_NAME);
    if (com)
        CoUninitialize();
    return FAILED(hr) ? hr : hr2;
}

int sp_service_install(void)
{
    wchar_t exe[MAX_PATH], cmdline[MAX_PATH + 16];
    DWORD n = GetModuleFileNameW(NULL, exe, MAX_PATH);
    if (n == 0 || n >= MAX_PATH) {
        fprintf(stderr, "stillpoint-agent: cannot find my own path (error %lu)\n", GetLastError());
        return 1;
    }
    /* The service's log directory, made (or refused) here, where an administrator reads why. */
    char err[1024];
    HANDLE log = sp_state_dir_open_log(err, sizeof(err));
    if (log == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "stillpoint-agent: the service's log: %s\n", err);
        return 1;
    }
    CloseHandle(log);
    HRESULT hr = register_provider();
    if (FAILED(hr)) {
        fprintf(stderr, "stillpoint-agent: registering the VSS provider %ls failed: error "
                        "0x%08lx (is it next to the exe? are you an administrator?)\n",
                SP_PROVIDER_DLL, (unsigned long)hr);
        return 1;
    }
    swprintf(cmdline, sizeof(cmdline) / sizeof(cmdline[0]), L"\"%ls\" --service", exe);
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CREATE_SERVICE);
    if (!scm) {
        fprintf(stderr, "stillpoint-agent: cannot open the service manager (error %lu): run "
                        "as an administrator\n", GetLastError());
        return 1;
    }
    /* After VSS (its provider calls need the VSS service running). */
    static const wchar_t deps[] = L"VSS\0";
    SC_HANDLE svc = CreateServiceW(scm, SP_SERVICE_NAME, SP_SERVICE_DISPLAY_NAME,
                                   SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
                                   SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmdline, NULL, NULL,
                                   deps, NULL, NULL);
    if (!svc) {
        DWORD error = GetLastError();
        CloseServiceHandle(scm);
        fprintf(stderr, "stillpoint-agent: creating service %ls failed: error %lu%s\n",
                SP_SERVICE_NAME, error,
                error == ERROR_SERVICE_EXISTS ? " (already installed: --uninstall first)" : "");
        return 1;
    }
    SERVICE_DESCRIPTIONW desc = { .lpDescription = L"Application-consistent VM checkpoints: "
                                                   L"VSS freeze and thaw for the hypervisor host" };
    ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc);
    StartServiceW(svc, 0, NULL);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    printf("stillpoint-agent: installed and started service %ls, registered %ls\n",
           SP_SERVICE_NAME, SP_PROVIDER_NAME);
    return 0;
}

int sp_service_uninstall(void)
{
    int r = 0;
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = scm ? OpenServiceW(scm, SP_SERVICE_NAME, SERVICE_STOP | DELETE |
                                                              SERVICE_QUERY_STATUS)
                        : NULL;
    if (!svc) {
        fprintf(stderr, "stillpoint-agent: cannot open service %ls (error %lu)\n",
                SP_SERVICE_NAME, GetLastError());
        r = 1;
    } else {
        SERVICE_STATUS st;
        ControlService(svc, SERVICE_CONTROL_STOP, &st);
        if (!DeleteService(svc)) {
            fprintf(stderr, "stillpoint-agent: deleting service %ls failed (error %lu)\n",
                    SP_SERVICE_NAME, GetLastError());
            r = 1;
        }
        CloseServiceHandle(svc);
    }
    if (scm)
        CloseServiceHandle(scm);
    HRESULT hr = unregister_provider();
    if (FAILED(hr)) {
        fprintf(stderr, "stillpoint-agent: unregistering the VSS provider failed: error "
                        "0x%08lx\n", (unsigned long)hr);
        r = 1;
    }
    if (!r)
        printf("stillpoint-agent: uninstalled service %ls and %ls\n", SP_SERVICE_NAME,
               SP_PROVIDER_NAME);
    return r;
}
