/* Named events for the agent ↔ provider handshake. Never a NULL DACL (anyone could signal
 * "release" and end a freeze early): a protected DACL for SYSTEM and Administrators only. */
#include "named-events.h"
#include <sddl.h>
#include "provider-ids.h"

HANDLE sp_named_event_create(const wchar_t *name)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(SP_EVENT_SDDL, SDDL_REVISION_1,
                                                              &sd, NULL))
        return NULL;
    SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .lpSecurityDescriptor = sd,
                               .bInheritHandle = FALSE };
    HANDLE event = CreateEventW(&sa, TRUE, FALSE, name);
    DWORD error = GetLastError(); /* read before LocalFree can change it */
    LocalFree(sd);
    if (event && error == ERROR_ALREADY_EXISTS) {
        CloseHandle(event);
        event = NULL;
    }
    SetLastError(error);
    return event;
}
