/* The agent's directory under ProgramData (%ProgramData%\stillpoint), where the service, running
 * as SYSTEM, writes its log; and the files in it, opened without following reparse points. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <windows.h>

#define SP_STATE_DIR_NAME L"stillpoint"
#define SP_STATE_LOG_NAME L"agent.log"
/* Protected (nothing inherited from ProgramData, whose DACL lets users create and own
 * subdirectories): SYSTEM and Administrators full control, inherited by the files; nobody else
 * any access. */
#define SP_STATE_DIR_SDDL L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

/* parent\stillpoint, created with SP_STATE_DIR_SDDL, or the one already there if it is safe: a
 * directory, not a reparse point (a junction would send SYSTEM's writes elsewhere), found at
 * that path once opened, owned by SYSTEM, Administrators or this process's user, and writable
 * by nobody else. Its path in ret (size characters). False with err set (UTF-8) otherwise. */
bool sp_state_dir_prepare(const wchar_t *parent, wchar_t *ret, size_t size, char *err,
                          size_t errlen);
/* dir\name opened for appending (created if needed), refused when it is a reparse point, has
 * another hard link, resolves to another path, or someone else may write it. The handle appends
 * only (FILE_APPEND_DATA); INVALID_HANDLE_VALUE with err set. */
HANDLE sp_state_file_open_append(const wchar_t *dir, const wchar_t *name, char *err,
                                 size_t errlen);
/* The service's log: %ProgramData% from the system's known folder (not from the environment),
 * the directory prepared, agent.log opened. INVALID_HANDLE_VALUE with err set. */
HANDLE sp_state_dir_open_log(char *err, size_t errlen);
