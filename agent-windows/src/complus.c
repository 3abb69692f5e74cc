/* COM+ catalog calls (ICOMAdminCatalog2) for installing the provider DLL. Untestable under wine,
 * which has no COM+ catalog: tested by --install on a Windows VM (README.md). */
#define COBJMACROS
#include <initguid.h> /* the catalog's GUIDs are not in mingw-w64's libuuid */
#include "complus.h"
#include <comadmin.h>
#include <oleauto.h>
#include <stdbool.h>
#include <wchar.h>

/* A catalog collection by name ("Applications"), populated. */
static HRESULT open_collection(ICOMAdminCatalog2 *catalog, const wchar_t *name,
                               ICatalogCollection **ret)
{
    BSTR bname = SysAllocString(name);
    IDispatch *disp = NULL;
    HRESULT hr = bname ? ICOMAdminCatalog2_GetCollection(catalog, bname, &disp) : E_OUTOFMEMORY;
    SysFreeString(bname);
    if (SUCCEEDED(hr)) {
        hr = IDispatch_QueryInterface(disp, &IID_ICatalogCollection, (void **)ret);
        IDispatch_Release(disp);
    }
    if (SUCCEEDED(hr)) {
        hr = ICatalogCollection_Populate(*ret);
        if (FAILED(hr))
            ICatalogCollection_Release(*ret);
    }
    return hr;
}

static HRESULT open_catalog(ICOMAdminCatalog2 **ret)
{
    return CoCreateInstance(&CLSID_COMAdminCatalog, NULL, CLSCTX_INPROC_SERVER,
                            &IID_ICOMAdminCatalog2, (void **)ret);
}

/* Removes every application named app from the populated collection. */
static HRESULT remove_named(ICatalogCollection *apps, const wchar_t *app)
{
    LONG count = 0;
    HRESULT hr = ICatalogCollection_get_Count(apps, &count);
    for (LONG i = count - 1; SUCCEEDED(hr) && i >= 0; i--) {
        IDispatch *disp = NULL;
        ICatalogObject *obj = NULL;
        VARIANT name;
        VariantInit(&name);
        hr = ICatalogCollection_get_Item(apps, i, &disp);
        if (SUCCEEDED(hr)) {
            hr = IDispatch_QueryInterface(disp, &IID_ICatalogObject, (void **)&obj);
            IDispatch_Release(disp);
        }
        if (SUCCEEDED(hr)) {
            hr = ICatalogObject_get_Name(obj, &name);
            ICatalogObject_Release(obj);
        }
        if (SUCCEEDED(hr) && V_VT(&name) == VT_BSTR && wcscmp(V_BSTR(&name), app) == 0)
            hr = ICatalogCollection_Remove(apps, i);
        VariantClear(&name);
    }
    LONG changes = 0;
    return SUCCEEDED(hr) ? ICatalogCollection_SaveChanges(apps, &changes) : hr;
}

static HRESULT put_string(ICatalogObject *obj, const wchar_t *prop, const wchar_t *value)
{
    BSTR bprop = SysAllocString(prop);
    VARIANT v;
    VariantInit(&v);
    V_VT(&v) = VT_BSTR;
    V_BSTR(&v) = SysAllocString(value);
    HRESULT hr = bprop && V_BSTR(&v) ? ICatalogObject_put_Value(obj, bprop, v) : E_OUTOFMEMORY;
    VariantClear(&v);
    SysFreeString(bprop);
    return hr;
}

static HRESULT put_long(ICatalogObject *obj, const wchar_t *prop, LONG value)
{
    BSTR bprop = SysAllocString(prop);
    VARIANT v;
    VariantInit(&v);
    V_VT(&v) = VT_I4;
    V_I4(&v) = value;
    HRESULT hr = bprop ? ICatalogObject_put_Value(obj, bprop, v) : E_OUTOFMEMORY;
    SysFreeString(bprop);
    return hr;
}

static HRESULT put_bool(ICatalogObject *obj, const wchar_t *prop, bool value)
{
    BSTR bprop = SysAllocString(prop);
    VARIANT v;
    VariantInit(&v);
    V_VT(&v) = VT_BOOL;
    V_BOOL(&v) = value ? VARIANT_TRUE : VARIANT_FALSE;
    HRESULT hr = bprop ? ICatalogObject_put_Value(obj, bprop, v) : E_OUTOFMEMORY;
    SysFreeString(bprop);
    return hr;
}

/* A new server application: out of process, as LocalSystem (the provider must open the agent's
 * events, which only SYSTEM and Administrators may), no role checks (VSS is the only caller). */
static HRESULT add_application(ICatalogCollection *apps, const wchar_t *app)
{
    IDispatch *disp = NULL;
    ICatalogObject *obj = NULL;
    HRESULT hr = ICatalogCollection_Add(apps, &disp);
    if (SUCCEEDED(hr)) {
        hr = IDispatch_QueryInterface(disp, &IID_ICatalogObject, (void **)&obj);
        IDispatch_Release(disp);
    }
    if (FAILED(hr))
        return hr;
    hr = put_string(obj, L"Name", app);
    if (SUCCEEDED(hr))
        hr = put_string(obj, L"Description", L"stillpoint: holds VSS's frozen window while the "
                                             L"hypervisor host takes a checkpoint");
    if (SUCCEEDED(hr))
        hr = put_long(obj, L"Activation", COMAdminActivationLocal);
    if (SUCCEEDED(hr))
        hr = put_string(obj, L"Identity", L"NT Authority\\LocalSystem");
    if (SUCCEEDED(hr))
        hr = put_bool(obj, L"ApplicationAccessChecksEnabled", false);
    ICatalogObject_Release(obj);
    LONG changes = 0;
    return SUCCEEDED(hr) ? ICatalogCollection_SaveChanges(apps, &changes) : hr;
}

HRESULT sp_complus_install(const wchar_t *app, const wchar_t *dll)
{
    ICOMAdminCatalog2 *catalog = NULL;
    ICatalogCollection *apps = NULL;
    HRESULT hr = open_catalog(&catalog);
    if (SUCCEEDED(hr))
        hr = open_collection(catalog, L"Applications", &apps);
    if (SUCCEEDED(hr))
        hr = remove_named(apps, app); /* a re-install starts clean */
    if (SUCCEEDED(hr))
        hr = add_application(apps, app);
    if (SUCCEEDED(hr)) {
        BSTR bapp = SysAllocString(app), bdll = SysAllocString(dll), empty = SysAllocString(L"");
        hr = bapp && bdll && empty
                 ? ICOMAdminCatalog2_InstallComponent(catalog, bapp, bdll, empty, empty)
                 : E_OUTOFMEMORY;
        SysFreeString(bapp);
        SysFreeString(bdll);
        SysFreeString(empty);
    }
    if (apps)
        ICatalogCollection_Release(apps);
    if (catalog)
        ICOMAdminCatalog2_Release(catalog);
    return hr;
}

HRESULT sp_complus_uninstall(const wchar_t *app)
{
    ICOMAdminCatalog2 *catalog = NULL;
    ICatalogCollection *apps = NULL;
    HRESULT hr = open_catalog(&catalog);
    if (SUCCEEDED(hr))
        hr = open_collection(catalog, L"Applications", &apps);
    if (SUCCEEDED(hr))
        hr = remove_named(apps, app);
    if (apps)
        ICatalogCollection_Release(apps);
    if (catalog)
        ICOMAdminCatalog2_Release(catalog);
    return hr;
}
