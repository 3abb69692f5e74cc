/* The provider DLL's COM server plumbing: class factory, DllGetClassObject/DllCanUnloadNow, and
 * (un)registration: the COM class under HKLM and the provider with the VSS coordinator. */
#include "provider.h"
#include <olectl.h>
#include <stdbool.h>
#include <vsadmin.h>
#include <vsserror.h>
#include <wchar.h>
#include "provider-ids.h"

static HINSTANCE module;
static const GUID provider_clsid = SP_PROVIDER_CLSID_INIT;
static const VSS_ID provider_id = SP_PROVIDER_ID_INIT;
static const VSS_ID provider_version_id = SP_PROVIDER_VERSION_ID_INIT;

#define CLSID_KEY L"Software\\Classes\\CLSID\\" SP_PROVIDER_CLSID_STR

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, void *reserved);

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, void *reserved)
{
    if (reason == DLL_PROCESS_ATTACH) {
        module = instance;
        DisableThreadLibraryCalls(instance);
    }
    return TRUE;
}

/* ---- the class factory (static: one per process) ---- */

static HRESULT STDMETHODCALLTYPE factory_query(IClassFactory *This, REFIID riid, void **ret)
{
    if (!ret)
        return E_POINTER;
    if (!IsEqualIID(riid, &IID_IUnknown) && !IsEqualIID(riid, &IID_IClassFactory)) {
        *ret = NULL;
        return E_NOINTERFACE;
    }
    *ret = This;
    return S_OK;
}

static ULONG STDMETHODCALLTYPE factory_add_ref(IClassFactory *This)
{
    return 2;
}

static ULONG STDMETHODCALLTYPE factory_release(IClassFactory *This)
{
    return 1;
}

static HRESULT STDMETHODCALLTYPE factory_create(IClassFactory *This, IUnknown *outer, REFIID riid,
                                                void **ret)
{
    if (!ret)
        return E_POINTER;
    *ret = NULL;
    if (outer)
        return CLASS_E_NOAGGREGATION;
    return sp_provider_create(riid, ret);
}

static HRESULT STDMETHODCALLTYPE factory_lock(IClassFactory *This, BOOL lock)
{
    if (lock)
        InterlockedIncrement(&sp_provider_live);
    else
        InterlockedDecrement(&sp_provider_live);
    return S_OK;
}

static const IClassFactoryVtbl factory_vtbl = {
    factory_query, factory_add_ref, factory_release, factory_create, factory_lock,
};
static IClassFactory factory = { (IClassFactoryVtbl *)&factory_vtbl };

STDAPI DllGetClassObject(REFCLSID rclsid, REFIID riid, LPVOID *ppv)
{
    if (!ppv)
        return E_POINTER;
    *ppv = NULL;
    if (!IsEqualCLSID(rclsid, &provider_clsid))
        return CLASS_E_CLASSNOTAVAILABLE;
    return factory_query(&factory, riid, ppv);
}

STDAPI DllCanUnloadNow(void)
{
    return sp_provider_live == 0 ? S_OK : S_FALSE;
}

/* ---- registration ---- */

static HRESULT set_value(HKEY key, const wchar_t *name, const wchar_t *value)
{
    /* RegSetValueExW wants the size in bytes, including the terminating NUL. */
    DWORD bytes = (DWORD)((wcslen(value) + 1) * sizeof(wchar_t));
    LSTATUS st = RegSetValueExW(key, name, 0, REG_SZ, (const BYTE *)value, bytes);
    return HRESULT_FROM_WIN32(st);
}

/* HKLM\Software\Classes\CLSID\{...}\InprocServer32 = this DLL. */
static HRESULT register_class(void)
{
    wchar_t path[MAX_PATH];
    DWORD n = GetModuleFileNameW(module, path, MAX_PATH); /* a count of characters */
    if (n == 0 || n >= MAX_PATH)
        return HRESULT_FROM_WIN32(n ? ERROR_INSUFFICIENT_BUFFER : GetLastError());
    HKEY cls = NULL, server = NULL;
    LSTATUS st = RegCreateKeyExW(HKEY_LOCAL_MACHINE, CLSID_KEY, 0, NULL, 0, KEY_WRITE, NULL, &cls,
                                 NULL);
    if (st != ERROR_SUCCESS)
        return HRESULT_FROM_WIN32(st);
    HRESULT hr = set_value(cls, NULL, SP_PROVIDER_NAME);
    if (SUCCEEDED(hr)) {
        st = RegCreateKeyExW(cls, L"InprocServer32", 0, NULL, 0, KEY_WRITE, NULL, &server, NULL);
        hr = HRESULT_FROM_WIN32(st);
    }
    if (SUCCEEDED(hr))
        hr = set_value(server, NULL, path);
    if (SUCCEEDED(hr))
        hr = set_value(server, L"ThreadingModel", L"Both");
    if (server)
        RegCloseKey(server);
    RegCloseKey(cls);
    return hr;
}

static HRESULT vss_admin(IVssAdmin **ret)
{
    return CoCreateInstance(&CLSID_VSSCoordinator, NULL, CLSCTX_ALL, &IID_IVssAdmin, (void **)ret);
}

STDAPI DllRegisterServer(void)
{
    HRESULT hr = register_class();
    if (FAILED(hr))
        return hr;
    IVssAdmin *admin = NULL;
    hr = vss_admin(&admin);
    if (FAILED(hr))
        return hr;
    hr = IVssAdmin_RegisterProvider(admin, provider_id, provider_clsid, (VSS_PWSZ)SP_PROVIDER_NAME,
                                    VSS_PROV_SOFTWARE, (VSS_PWSZ)SP_PROVIDER_VERSION,
                                    provider_version_id);
    IVssAdmin_Release(admin);
    return hr == VSS_E_PROVIDER_ALREADY_REGISTERED ? S_OK : hr;
}

STDAPI DllUnregisterServer(void)
{
    IVssAdmin *admin = NULL;
    HRESULT hr = vss_admin(&admin);
    if (SUCCEEDED(hr)) {
        hr = IVssAdmin_UnregisterProvider(admin, provider_id);
        IVssAdmin_Release(admin);
        if (hr == VSS_E_PROVIDER_NOT_REGISTERED)
            hr = S_OK;
    }
    LSTATUS st = RegDeleteTreeW(HKEY_LOCAL_MACHINE, CLSID_KEY);
    if (SUCCEEDED(hr) && st != ERROR_SUCCESS && st != ERROR_FILE_NOT_FOUND)
        hr = HRESULT_FROM_WIN32(st);
    return hr;
}
