/* The stillpoint VSS software provider: a COM object VSS loads to commit our snapshot sets.
 * It makes no snapshot (the host does, of the whole disk); its CommitSnapshots holds the frozen
 * window between the agent's named events. */
#pragma once
#define COBJMACROS
#include <windows.h>
#include <vss.h>
#include <vsprov.h>

/* Live objects and server locks: DllCanUnloadNow answers from them. */
extern LONG sp_provider_live;

/* A new provider object, answering riid. */
HRESULT sp_provider_create(REFIID riid, void **ret);

/* S_OK when the caller of the provider method running on this thread is SYSTEM or an
 * Administrator (the COM client impersonated; in-process, this thread's identity), else
 * E_ACCESSDENIED. A call that cannot be attributed is refused. */
HRESULT sp_provider_check_caller(void);
