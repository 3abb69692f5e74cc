/* COM+ catalog calls (ICOMAdminCatalog2) for installing the provider DLL. Untestable under wine,
 * which has no COM+ catalog: tested by --install on a Windows VM (README.md). */
#define COBJMACROS
#include <initguid.h> /* the catalog's GUIDs are not in mingw-w64's libuuid */
#include "complus.h"
#include <comadmin.h>
#include <oleauto.h>
#include <stdbool.h>
#include <stdio.h>
#include <wchar.h>

/* The application's one role: who may launch it and call into it. */
#define SP_COMPLUS_ROLE L"VSS callers (SYSTEM and Administrators)"

/* The catalog hands out IDispatch: the interface iid of disp (released), when hr succeeded. */
static HRESULT query(HRESULT hr, IDispatch *disp, REFIID iid, void **ret)
{
    if (SUCCEEDED(hr)) {
        hr = IDispatch_QueryInterface(disp, iid, ret);
        IDispatch_Release(disp);
    }
    return hr;
}

/* The collection of disp (released), populated. */
static HRESULT populated(HRESULT hr, IDispatch *disp, ICatalogCollection **ret)
{
    hr = query(hr, disp, &IID_ICatalogCollection, (void **)ret);
    if (SUCCEEDED(hr)) {
        hr = ICatalogCollection_Populate(*ret);
        if (FAILED(hr))
            ICatalogCollection_Release(*ret);
    }
    return hr;
}

/* A catalog collection by name ("Applications"), populated. */
static HRESULT open_collection(ICOMAdminCatalog2 *catalog, const wchar_t *name,
                               ICatalogCollection **ret)
{
    BSTR bname = SysAllocString(name);
    IDispatch *disp = NULL;
    HRESULT hr = bname ? ICOMAdminCatalog2_GetCollection(catalog, bname, &disp) : E_OUTOFMEMORY;
    SysFreeString(bname);
    return populated(hr, disp, ret);
}

/* Releases a catalog interface, if there is one. */
static void release(void *obj)
{
    if (obj)
        IUnknown_Release((IUnknown *)obj);
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
        hr = query(hr, disp, &IID_ICatalogObject, (void **)&obj);
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

/* Sets property prop of obj to v, which it takes (cleared). */
static HRESULT put_value(ICatalogObject *obj, const wchar_t *prop, VARIANT v)
{
    BSTR bprop = SysAllocString(prop);
    HRESULT hr = bprop && (V_VT(&v) != VT_BSTR || V_BSTR(&v))
                     ? ICatalogObject_put_Value(obj, bprop, v)
                     : E_OUTOFMEMORY;
    VariantClear(&v);
    SysFreeString(bprop);
    return hr;
}

static HRESULT put_string(ICatalogObject *obj, const wchar_t *prop, const wchar_t *value)
{
    VARIANT v;
    VariantInit(&v);
    V_VT(&v) = VT_BSTR;
    V_BSTR(&v) = SysAllocString(value);
    return put_value(obj, prop, v);
}

static HRESULT put_long(ICatalogObject *obj, const wchar_t *prop, LONG value)
{
    VARIANT v;
    VariantInit(&v);
    V_VT(&v) = VT_I4;
    V_I4(&v) = value;
    return put_value(obj, prop, v);
}

static HRESULT put_bool(ICatalogObject *obj, const wchar_t *prop, bool value)
{
    VARIANT v;
    VariantInit(&v);
    V_VT(&v) = VT_BOOL;
    V_BOOL(&v) = value ? VARIANT_TRUE : VARIANT_FALSE;
    return put_value(obj, prop, v);
}

/* A new object in the populated collection coll. */
static HRESULT add_object(ICatalogCollection *coll, ICatalogObject **ret)
{
    IDispatch *disp = NULL;
    HRESULT hr = ICatalogCollection_Add(coll, &disp);
    return query(hr, disp, &IID_ICatalogObject, (void **)ret);
}

/* The collection name of parent's object key ("Roles" of an application), populated. */
static HRESULT open_related(ICatalogCollection *parent, const wchar_t *name, VARIANT key,
                            ICatalogCollection **ret)
{
    BSTR bname = SysAllocString(name);
    IDispatch *disp = NULL;
    HRESULT hr = bname ? ICatalogCollection_GetCollection(parent, bname, key, &disp)
                       : E_OUTOFMEMORY;
    SysFreeString(bname);
    return populated(hr, disp, ret);
}

/* A well-known account as COM+ wants it, DOMAIN\name: looked up from its SID, because the
 * names are translated ("VORDEFINIERT\Administratoren"). */
static HRESULT add_member(ICatalogCollection *users, WELL_KNOWN_SID_TYPE type)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    wchar_t name[256], domain[256], account[520];
    DWORD sid_size = sizeof(sid), name_n = 256, domain_n = 256;
    SID_NAME_USE use;
    ICatalogObject *user = NULL;
    if (!CreateWellKnownSid(type, NULL, sid, &sid_size) ||
        !LookupAccountSidW(NULL, sid, name, &name_n, domain, &domain_n, &use))
        return HRESULT_FROM_WIN32(GetLastError());
    swprintf(account, 520, L"%ls\\%ls", domain, name);
    HRESULT hr = add_object(users, &user);
    if (SUCCEEDED(hr)) {
        hr = put_string(user, L"User", account);
        ICatalogObject_Release(user);
    }
    return hr;
}

/* A new object has its key only once its collection is saved: save, then read the key. */
static HRESULT save_and_get_key(ICatalogCollection *coll, ICatalogObject *obj, VARIANT *key)
{
    LONG changes = 0;
    HRESULT hr = ICatalogCollection_SaveChanges(coll, &changes);
    return SUCCEEDED(hr) ? ICatalogObject_get_Key(obj, key) : hr;
}

/* The role SP_COMPLUS_ROLE of the application app_key, whose members are SYSTEM (the VSS
 * service, the provider's only real caller) and Administrators. */
static HRESULT add_callers_role(ICatalogCollection *apps, VARIANT app_key)
{
    ICatalogCollection *roles = NULL, *users = NULL;
    ICatalogObject *role = NULL;
    VARIANT role_key;
    LONG changes = 0;
    VariantInit(&role_key);
    HRESULT hr = open_related(apps, L"Roles", app_key, &roles);
    if (SUCCEEDED(hr))
        hr = add_object(roles, &role);
    if (SUCCEEDED(hr))
        hr = put_string(role, L"Name", SP_COMPLUS_ROLE);
    if (SUCCEEDED(hr))
        hr = save_and_get_key(roles, role, &role_key);
    if (SUCCEEDED(hr))
        hr = open_related(roles, L"UsersInRole", role_key, &users);
    if (SUCCEEDED(hr))
        hr = add_member(users, WinLocalSystemSid);
    if (SUCCEEDED(hr))
        hr = add_member(users, WinBuiltinAdministratorsSid);
    if (SUCCEEDED(hr))
        hr = ICatalogCollection_SaveChanges(users, &changes);
    VariantClear(&role_key);
    release(users);
    release(role);
    release(roles);
    return hr;
}

/* A new server application: out of process, as LocalSystem (the provider must open the agent's
 * events, which only SYSTEM and Administrators may). Access checks on: only members of its role
 * may launch it or call it; a LocalSystem process that anyone could call would let any local
 * user signal "frozen" or end a hold. The provider checks its caller as well (provider.c). */
static HRESULT add_application(ICatalogCollection *apps, const wchar_t *app)
{
    ICatalogObject *obj = NULL;
    VARIANT key;
    VariantInit(&key);
    HRESULT hr = add_object(apps, &obj);
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
        hr = put_bool(obj, L"ApplicationAccessChecksEnabled", true);
    if (SUCCEEDED(hr))
        hr = put_long(obj, L"AccessChecksLevel", COMAdminAccessChecksApplicationLevel);
    if (SUCCEEDED(hr))
        hr = put_long(obj, L"Authentication", COMAdminAuthenticationPacket);
    if (SUCCEEDED(hr))
        hr = save_and_get_key(apps, obj, &key);
    if (SUCCEEDED(hr))
        hr = add_callers_role(apps, key);
    VariantClear(&key);
    ICatalogObject_Release(obj);
    return hr;
}

/* Removes the applications named app; then, with a dll, installs it as app anew. */
static HRESULT replace_application(const wchar_t *app, const wchar_t *dll)
{
    ICOMAdminCatalog2 *catalog = NULL;
    ICatalogCollection *apps = NULL;
    HRESULT hr = open_catalog(&catalog);
    if (SUCCEEDED(hr))
        hr = open_collection(catalog, L"Applications", &apps);
    if (SUCCEEDED(hr))
        hr = remove_named(apps, app); /* a re-install starts clean */
    if (SUCCEEDED(hr) && dll)
        hr = add_application(apps, app);
    if (SUCCEEDED(hr) && dll) {
        BSTR bapp = SysAllocString(app), bdll = SysAllocString(dll), empty = SysAllocString(L"");
        hr = bapp && bdll && empty
                 ? ICOMAdminCatalog2_InstallComponent(catalog, bapp, bdll, empty, empty)
                 : E_OUTOFMEMORY;
        SysFreeString(bapp);
        SysFreeString(bdll);
        SysFreeString(empty);
    }
    release(apps);
    release(catalog);
    return hr;
}

HRESULT sp_complus_install(const wchar_t *app, const wchar_t *dll)
{
    return replace_application(app, dll);
}

HRESULT sp_complus_uninstall(const wchar_t *app)
{
    return replace_application(app, NULL);
}
