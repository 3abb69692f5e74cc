/* The Windows service: install (service + VSS provider registration), uninstall, and running
 * under the service control manager. */
#pragma once
#include <windows.h>

#define SP_SERVICE_NAME L"stillpoint-agent"
#define SP_SERVICE_DISPLAY_NAME L"stillpoint guest agent"

/* The agent's body: serves until stop is signalled; returns a process exit code. */
typedef int (*SpServiceRunFn)(HANDLE stop);

int sp_service_install(void);   /* exit codes: 0 ok, 1 failure (reported on stderr) */
int sp_service_uninstall(void);
/* Called on the control handler's thread when a stop arrives (before stop is signalled); must
 * return at once. */
typedef void (*SpServiceStopFn)(void);

/* Hands the process to the service control manager; returns when the service stopped. */
int sp_service_dispatch(SpServiceRunFn run, SpServiceStopFn on_stop);
