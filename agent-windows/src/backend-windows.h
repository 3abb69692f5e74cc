/* backend-windows: the Windows freeze backend — the shared command core's SpFreezeBackend over
 * the VSS freezer: volumes for filesystems, VSS writers for application writers, VSS's
 * flush-and-hold limit on every lease. */
#pragma once
#include <stdbool.h>
#include "stillpoint/freeze-backend.h"
#include "vss-freezer.h"

typedef struct SpWindowsBackend SpWindowsBackend;

/* freezer is borrowed. standard_thaw_on_hangup: a hang-up also thaws a freeze of the standard
 * guest-fsfreeze-freeze(-list) (a stillpoint-freeze is always thawed). NULL without memory. */
SpWindowsBackend *sp_windows_backend_new(SpVssFreezer *freezer, bool standard_thaw_on_hangup);
void sp_windows_backend_free(SpWindowsBackend *backend);

SpFreezeBackend sp_windows_backend_interface(SpWindowsBackend *backend);
/* The peer of channel hung up (or the service stops): thaw what it froze, as the rules say. */
void sp_windows_backend_channel_closed(SpWindowsBackend *backend, unsigned channel,
                                       bool stopping);
