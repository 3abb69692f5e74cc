/* Who may drive the provider. It runs as LocalSystem in its COM+ application; a caller who could
 * make it signal "frozen" or run out a hold would decide when the agent believes the guest is
 * consistent. COM+ lets only its role's members (SYSTEM, Administrators) launch and call it
 * (complus.c); this checks the caller again where it matters, on every call that acts. */
#include "provider.h"
#include <stdbool.h>

/* Whether the token this thread now acts with (an impersonated caller's, or the process's)
 * belongs to SYSTEM or to the Administrators group (enabled, not deny-only). */
static bool token_is_trusted(void)
{
    static const WELL_KNOWN_SID_TYPE trusted[] = { WinLocalSystemSid,
                                                   WinBuiltinAdministratorsSid };
    for (size_t i = 0; i < sizeof(trusted) / sizeof(trusted[0]); i++) {
        BYTE sid[SECURITY_MAX_SID_SIZE];
        DWORD size = sizeof(sid);
        BOOL member = FALSE;
        /* A NULL token: the thread's impersonation token, else a copy of the process's. */
        if (CreateWellKnownSid(trusted[i], NULL, sid, &size) &&
            CheckTokenMembership(NULL, sid, &member) && member)
            return true;
    }
    return false;
}

HRESULT sp_provider_check_caller(void)
{
    IServerSecurity *security = NULL;
    HRESULT hr = CoGetCallContext(&IID_IServerSecurity, (void **)&security);
    if (hr == RPC_E_CALL_COMPLETE)
        /* No COM call: called in-process (a test loading the DLL), by this thread's identity. */
        return token_is_trusted() ? S_OK : E_ACCESSDENIED;
    if (FAILED(hr))
        return E_ACCESSDENIED; /* a call we cannot attribute is refused */
    bool trusted = false;
    if (SUCCEEDED(IServerSecurity_ImpersonateClient(security))) {
        trusted = token_is_trusted();
        IServerSecurity_RevertToSelf(security);
    }
    IServerSecurity_Release(security);
    return trusted ? S_OK : E_ACCESSDENIED;
}
