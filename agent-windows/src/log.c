/* Log lines with a timestamp; held in memory while frozen (design rule 3: nothing touches a
 * frozen disk, and a console can be redirected to a file on a frozen volume). */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include "handles.h"

/* A peer can make us log; the held buffer is bounded and drops lines past it (counted). */
#define SP_LOG_HELD_MAX (64 * 1024)

static SRWLOCK lock = SRWLOCK_INIT;
static HANDLE file = INVALID_HANDLE_VALUE;
static bool verbose_enabled, held;
static char held_buf[SP_LOG_HELD_MAX];
static size_t held_len;
static unsigned long held_dropped;

void sp_log_open(HANDLE log_file, bool verbose)
{
    AcquireSRWLockExclusive(&lock);
    verbose_enabled = verbose;
    file = log_file ? log_file : INVALID_HANDLE_VALUE;
    ReleaseSRWLockExclusive(&lock);
}

void sp_log_close(void)
{
    sp_log_hold(false);
    AcquireSRWLockExclusive(&lock);
    sp_close_handle_at(&file);
    ReleaseSRWLockExclusive(&lock);
}

static void emit(const char *line, size_t len)
{
    fwrite(line, 1, len, stderr);
    fflush(stderr);
    DWORD written;
    if (file != INVALID_HANDLE_VALUE)
        WriteFile(file, line, (DWORD)len, &written, NULL);
}

void sp_log_system(const char *message)
{
    /* No message file is registered: Event Viewer shows the text as the event's data. */
    HANDLE source = RegisterEventSourceW(NULL, L"stillpoint-agent");
    if (!source)
        return;
    const char *strings[] = { message };
    ReportEventA(source, EVENTLOG_ERROR_TYPE, 0, 1, NULL, 1, 0, strings, NULL);
    DeregisterEventSource(source);
}

void sp_log_hold(bool hold)
{
    AcquireSRWLockExclusive(&lock);
    if (held && !hold) {
        emit(held_buf, held_len);
        if (held_dropped) {
            char note[96];
            int n = snprintf(note, sizeof(note), "(%lu log lines dropped while frozen)\n",
                             held_dropped);
            emit(note, (size_t)n);
        }
        held_len = 0;
        held_dropped = 0;
    }
    held = hold;
    ReleaseSRWLockExclusive(&lock);
}

void sp_log(SpLogLevel level, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    if (level == SP_LOG_DEBUG && !verbose_enabled)
        return;
    char line[1024];
    SYSTEMTIME t;
    GetSystemTime(&t);
    int n = snprintf(line, sizeof(line), "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ %s: ", t.wYear,
                     t.wMonth, t.wDay, t.wHour, t.wMinute, t.wSecond, t.wMilliseconds,
                     names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    AcquireSRWLockExclusive(&lock);
    if (!held)
        emit(line, len);
    else if (held_len + len <= sizeof(held_buf))
        memcpy(held_buf + held_len, line, len), held_len += len;
    else
        held_dropped++;
    ReleaseSRWLockExclusive(&lock);
}
