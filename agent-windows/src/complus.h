/* The provider DLL as a COM+ server application, the way VSS software providers are installed:
 * VSS activates it out of process, running as LocalSystem. */
#pragma once
#include <windows.h>

/* Creates (or re-creates) the COM+ application named app and installs dll into it; COM+ calls
 * the DLL's DllRegisterServer, which registers the provider with VSS. */
HRESULT sp_complus_install(const wchar_t *app, const wchar_t *dll);
/* Removes the application (S_OK when there is none). */
HRESULT sp_complus_uninstall(const wchar_t *app);
