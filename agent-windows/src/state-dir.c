/* The agent's state directory (state-dir.h). ProgramData lets every user create a subdirectory
 * there and own it: a user who creates %ProgramData%\stillpoint before the agent does could put a
 * junction or a link in it and have the SYSTEM service write wherever it points. So the agent
 * creates the directory with its own protected DACL, and takes one that is already there only
 * when nobody but SYSTEM, Administrators or the agent's own user owns it or may write it. Every
 * directory and file is checked on the handle that is then used: no reparse point, no second
 * hard link, and the path it was opened at is the path it really is. */
#include "state-dir.h"
#include <aclapi.h>
#include <sddl.h>
#include <shlobj.h>
#include <stdio.h>
#include <wchar.h>

/* Rights that change what a directory holds, a file's content, or who may: a trusted owner aside,
 * nobody may have any of them. (FILE_ADD_FILE and FILE_ADD_SUBDIRECTORY are WRITE_DATA and
 * APPEND_DATA.) */
#define SP_STATE_WRITE_RIGHTS                                                              \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES |          \
     FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL)
#define SP_STATE_PATH_MAX 1024

static void sid_string(PSID sid, char *ret, size_t size)
{
    wchar_t *s = NULL;
    if (sid && ConvertSidToStringSidW(sid, &s)) {
        snprintf(ret, size, "%ls", s);
        LocalFree(s);
    } else {
        snprintf(ret, size, "(none)");
    }
}

/* SYSTEM, Administrators, or the user this process runs as (SYSTEM for the service; under wine,
 * the Unix user). */
static bool trusted(PSID sid)
{
    if (IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinBuiltinAdministratorsSid))
        return true;
    union {
        TOKEN_USER user;
        BYTE bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } buf;
    HANDLE token;
    DWORD n;
    bool self = false;
    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        self = GetTokenInformation(token, TokenUser, &buf, sizeof(buf), &n) &&
               EqualSid(buf.user.User.Sid, sid);
        CloseHandle(token);
    }
    return self;
}

/* The first ACE of dacl through which someone untrusted may write, or an ACE we cannot judge. */
static bool dacl_allows_others(PACL dacl, char *who, size_t size)
{
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *ace;
        if (!GetAce(dacl, i, (void **)&ace))
            continue;
        if (ace->AceType == ACCESS_DENIED_ACE_TYPE)
            continue;
        if (ace->AceType != ACCESS_ALLOWED_ACE_TYPE) {
            snprintf(who, size, "an access-allowed entry of type %u", ace->AceType);
            return true;
        }
        ACCESS_ALLOWED_ACE *allow = (ACCESS_ALLOWED_ACE *)ace;
        PSID sid = (PSID)&allow->SidStart;
        if ((allow->Mask & SP_STATE_WRITE_RIGHTS) && !trusted(sid)) {
            sid_string(sid, who, size);
            return true;
        }
    }
    return false;
}

/* Owned by a trusted account, and writable by trusted accounts only. */
static bool check_security(HANDLE h, const wchar_t *path, char *err, size_t errlen)
{
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    char who[192];
    DWORD e = GetSecurityInfo(h, SE_FILE_OBJECT,
                              OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                              NULL, &dacl, NULL, &sd);
    bool ok = false;
    if (e != ERROR_SUCCESS) {
        snprintf(err, errlen, "%ls: reading its security failed (error %lu)", path, e);
    } else if (!owner || !trusted(owner)) {
        sid_string(owner, who, sizeof(who));
        snprintf(err, errlen, "%ls is owned by %s, not by SYSTEM or Administrators: it was not "
                              "created by stillpoint; remove it", path, who);
    } else if (!dacl) {
        snprintf(err, errlen, "%ls has no DACL: everyone may write it; remove it", path);
    } else if (dacl_allows_others(dacl, who, sizeof(who))) {
        snprintf(err, errlen, "%ls may be written by %s, not only by SYSTEM and Administrators: "
                              "remove it", path, who);
    } else {
        ok = true;
    }
    if (sd)
        LocalFree(sd);
    return ok;
}

/* The path h really is ("\\?\C:\..." stripped to "C:\..."). */
static bool final_path(HANDLE h, wchar_t *ret, size_t size)
{
    DWORD n = GetFinalPathNameByHandleW(h, ret, (DWORD)size, FILE_NAME_NORMALIZED |
                                                             VOLUME_NAME_DOS);
    if (n == 0 || n >= size)
        return false;
    if (wcsncmp(ret, L"\\\\?\\", 4) == 0)
        memmove(ret, ret + 4, (wcslen(ret + 4) + 1) * sizeof(wchar_t));
    return true;
}

/* h, opened at parent_final\name without following a reparse point, is that object itself: no
 * reparse point, a directory or a file with a single link as is_dir says, at that very path
 * (under wine, which follows links even so, the path is what tells). */
static bool check_plain(HANDLE h, const wchar_t *path, const wchar_t *parent_final,
                        const wchar_t *name, bool is_dir, char *err, size_t errlen)
{
    BY_HANDLE_FILE_INFORMATION info;
    wchar_t want[SP_STATE_PATH_MAX], have[SP_STATE_PATH_MAX];
    if (!GetFileInformationByHandle(h, &info)) {
        snprintf(err, errlen, "%ls: error %lu", path, GetLastError());
        return false;
    }
    if (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
        snprintf(err, errlen, "%ls is a reparse point (a junction or a link): remove it", path);
        return false;
    }
    if (!!(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != is_dir ||
        (!is_dir && (info.nNumberOfLinks != 1 || GetFileType(h) != FILE_TYPE_DISK))) {
        snprintf(err, errlen, "%ls is not a plain %s (%lu links): remove it", path,
                 is_dir ? "directory" : "file", info.nNumberOfLinks);
        return false;
    }
    have[0] = L'\0';
    if (swprintf(want, SP_STATE_PATH_MAX, L"%ls\\%ls", parent_final, name) < 0 ||
        !final_path(h, have, SP_STATE_PATH_MAX) || _wcsicmp(want, have) != 0) {
        snprintf(err, errlen, "%ls leads elsewhere (%ls): remove it", path, have);
        return false;
    }
    return true;
}

/* The final path of directory dir (following reparse points: the parent is the system's). */
static bool dir_final_path(const wchar_t *dir, wchar_t *ret, size_t size, char *err,
                           size_t errlen)
{
    HANDLE h = CreateFileW(dir, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE |
                                                          FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    bool ok = h != INVALID_HANDLE_VALUE && final_path(h, ret, size);
    if (!ok)
        snprintf(err, errlen, "%ls: cannot open it (error %lu)", dir, GetLastError());
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    return ok;
}

/* Opens parent\name without following a reparse point and checks it (check_plain, and its
 * owner and DACL). access is what the caller will use the handle for. */
static HANDLE open_checked(const wchar_t *parent, const wchar_t *name, bool is_dir,
                           DWORD access, DWORD disposition, char *err, size_t errlen)
{
    wchar_t path[SP_STATE_PATH_MAX], parent_final[SP_STATE_PATH_MAX];
    if (!dir_final_path(parent, parent_final, SP_STATE_PATH_MAX, err, errlen))
        return INVALID_HANDLE_VALUE;
    if (swprintf(path, SP_STATE_PATH_MAX, L"%ls\\%ls", parent, name) < 0) {
        snprintf(err, errlen, "%ls: path too long", parent);
        return INVALID_HANDLE_VALUE;
    }
    /* The path's own attributes first: wine reports a link there but opens its target. */
    DWORD attrs = GetFileAttributesW(path);
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_REPARSE_POINT)) {
        snprintf(err, errlen, "%ls is a reparse point (a junction or a link): remove it", path);
        return INVALID_HANDLE_VALUE;
    }
    DWORD flags = FILE_FLAG_OPEN_REPARSE_POINT | (is_dir ? FILE_FLAG_BACKUP_SEMANTICS
                                                         : FILE_ATTRIBUTE_NORMAL);
    HANDLE h = CreateFileW(path, access | READ_CONTROL | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
                           FILE_SHARE_READ, NULL, disposition, flags, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        snprintf(err, errlen, "%ls: cannot open it (error %lu)", path, GetLastError());
        return INVALID_HANDLE_VALUE;
    }
    if (!check_plain(h, path, parent_final, name, is_dir, err, errlen) ||
        !check_security(h, path, err, errlen)) {
        CloseHandle(h);
        return INVALID_HANDLE_VALUE;
    }
    return h;
}

bool sp_state_dir_prepare(const wchar_t *parent, wchar_t *ret, size_t size, char *err,
                          size_t errlen)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    if (size > SP_STATE_PATH_MAX)
        size = SP_STATE_PATH_MAX; /* open_checked's buffers */
    if (swprintf(ret, size, L"%ls\\%ls", parent, SP_STATE_DIR_NAME) < 0) {
        snprintf(err, errlen, "%ls: path too long", parent);
        return false;
    }
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(SP_STATE_DIR_SDDL, SDDL_REVISION_1,
                                                              &sd, NULL)) {
        snprintf(err, errlen, "the state directory's security descriptor: error %lu",
                 GetLastError());
        return false;
    }
    SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .lpSecurityDescriptor = sd };
    BOOL created = CreateDirectoryW(ret, &sa);
    DWORD error = GetLastError();
    LocalFree(sd);
    if (!created && error != ERROR_ALREADY_EXISTS) {
        snprintf(err, errlen, "%ls: creating it failed (error %lu)", ret, error);
        return false;
    }
    /* Ours or not, it is checked: a directory that already exists may be anybody's. */
    HANDLE h = open_checked(parent, SP_STATE_DIR_NAME, true, 0, OPEN_EXISTING, err, errlen);
    if (h == INVALID_HANDLE_VALUE)
        return false;
    CloseHandle(h);
    return true;
}

HANDLE sp_state_file_open_append(const wchar_t *dir, const wchar_t *name, char *err,
                                 size_t errlen)
{
    /* FILE_APPEND_DATA without FILE_WRITE_DATA: every write goes to the end. */
    return open_checked(dir, name, false, FILE_APPEND_DATA, OPEN_ALWAYS, err, errlen);
}

HANDLE sp_state_dir_open_log(char *err, size_t errlen)
{
    wchar_t *program_data = NULL, dir[SP_STATE_PATH_MAX];
    HRESULT hr = SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, NULL, &program_data);
    HANDLE h = INVALID_HANDLE_VALUE;
    if (FAILED(hr))
        snprintf(err, errlen, "cannot find ProgramData: error 0x%08lx", (unsigned long)hr);
    else if (sp_state_dir_prepare(program_data, dir, SP_STATE_PATH_MAX, err, errlen))
        h = sp_state_file_open_append(dir, SP_STATE_LOG_NAME, err, errlen);
    CoTaskMemFree(program_data);
    return h;
}
