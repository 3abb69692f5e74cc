/* The agent's log: stderr in a console, a file under %ProgramData% as a service. While the
 * volumes are frozen nothing is written to disk: lines are held in memory and written after thaw. */
#pragma once
#include <stdbool.h>
#include <windows.h>

typedef enum { SP_LOG_ERROR, SP_LOG_WARNING, SP_LOG_INFO, SP_LOG_DEBUG } SpLogLevel;

/* Lines also go to log_file (which the log then owns and closes); INVALID_HANDLE_VALUE or NULL:
 * stderr only. */
void sp_log_open(HANDLE log_file, bool verbose);
void sp_log_close(void);
/* An error in the Windows Event Log (Application, source "stillpoint-agent"): where a service
 * that cannot write its own log says why. */
void sp_log_system(const char *message);
/* While held, lines go to a bounded memory buffer; releasing writes them out in order. */
void sp_log_hold(bool hold);
void sp_log(SpLogLevel level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(gnu_printf, 2, 3)))
#endif
    ;
