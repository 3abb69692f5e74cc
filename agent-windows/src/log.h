/* The agent's log: stderr in a console, a file under %ProgramData% as a service. While the
 * volumes are frozen nothing is written to disk: lines are held in memory and written after thaw. */
#pragma once
#include <stdbool.h>
#include <wchar.h>

typedef enum { SP_LOG_ERROR, SP_LOG_WARNING, SP_LOG_INFO, SP_LOG_DEBUG } SpLogLevel;

/* path NULL = stderr only. */
void sp_log_open(const wchar_t *path, bool verbose);
void sp_log_close(void);
/* While held, lines go to a bounded memory buffer; releasing writes them out in order. */
void sp_log_hold(bool hold);
void sp_log(SpLogLevel level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(gnu_printf, 2, 3)))
#endif
    ;
