/* The agent's state directory under ProgramData and its log file (state-dir.c), under wine, in
 * directories tests/windows/state-dir.sh prepared on the Unix side as another local user could
 * have left them: owned by someone else (another Unix user, which wine reports as ANONYMOUS), a
 * link instead of a directory (wine reports a Unix symlink as a reparse point), writable by
 * everyone (mode 0777, which wine reports as Everyone with write access), and a log file that is
 * a link or a second hard link to a file elsewhere.
 *   test-state-dir.exe BASE   (BASE: the prepared directory, as a Windows path) */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>
#include "state-dir.h"

static int failures;
static const char *current;
static wchar_t base[MAX_PATH];

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,     \
                    current, #cond);                                                   \
            failures++;                                                                \
            return;                                                                    \
        }                                                                              \
    } while (0)

static void path_of(wchar_t *ret, const wchar_t *rel)
{
    swprintf(ret, MAX_PATH, L"%ls\\%ls", base, rel);
}

/* The whole content of a file ("" when it cannot be read), at most size - 1 bytes. */
static void read_all(const wchar_t *rel, char *ret, size_t size)
{
    wchar_t path[MAX_PATH];
    DWORD n = 0;
    path_of(path, rel);
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE || !ReadFile(h, ret, (DWORD)size - 1, &n, NULL))
        n = 0;
    ret[n] = '\0';
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
}

static bool append(const wchar_t *dir, const char *text, char *err, size_t errlen)
{
    HANDLE h = sp_state_file_open_append(dir, SP_STATE_LOG_NAME, err, errlen);
    DWORD n;
    if (h == INVALID_HANDLE_VALUE)
        return false;
    bool ok = WriteFile(h, text, (DWORD)strlen(text), &n, NULL) && n == strlen(text);
    CloseHandle(h);
    return ok;
}

/* prepare(parent) refuses, with a message that contains want. */
static bool refused(const wchar_t *parent_rel, const char *want)
{
    wchar_t parent[MAX_PATH], dir[MAX_PATH];
    char err[1024] = "";
    path_of(parent, parent_rel);
    bool ok = sp_state_dir_prepare(parent, dir, MAX_PATH, err, sizeof(err));
    printf("  # %ls: %s\n", parent_rel, ok ? "accepted" : err);
    return !ok && strstr(err, want) != NULL;
}

static void test_created_for_system_and_administrators_only(void)
{
    wchar_t parent[MAX_PATH], dir[MAX_PATH];
    char err[1024] = "", text[64];
    path_of(parent, L"fresh");
    CHECK(sp_state_dir_prepare(parent, dir, MAX_PATH, err, sizeof(err)));
    CHECK(GetFileAttributesW(dir) & FILE_ATTRIBUTE_DIRECTORY);
    /* Taken again as it is (its own), and the log appends. */
    CHECK(sp_state_dir_prepare(parent, dir, MAX_PATH, err, sizeof(err)));
    CHECK(append(dir, "one\n", err, sizeof(err)));
    CHECK(append(dir, "two\n", err, sizeof(err)));
    read_all(L"fresh\\stillpoint\\agent.log", text, sizeof(text));
    CHECK(strcmp(text, "one\ntwo\n") == 0);
    /* What it asks for: protected, SYSTEM and Administrators, nobody else. (Wine keeps only the
     * Unix mode it maps this to: the Windows DACL itself is a real Windows run's to show.) */
    PSECURITY_DESCRIPTOR sd = NULL;
    wchar_t *sddl = NULL;
    CHECK(ConvertStringSecurityDescriptorToSecurityDescriptorW(SP_STATE_DIR_SDDL,
                                                               SDDL_REVISION_1, &sd, NULL));
    CHECK(ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1,
                                                               DACL_SECURITY_INFORMATION, &sddl,
                                                               NULL));
    printf("  # asked for: %ls\n", sddl);
    CHECK(wcscmp(sddl, L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)") == 0);
    LocalFree(sddl);
    LocalFree(sd);
}

static void test_an_existing_directory_only_readable_by_others_is_taken(void)
{
    CHECK(!refused(L"readable", "")); /* "" matches any message: it must be accepted */
}

static void test_a_directory_owned_by_someone_else_is_refused(void)
{
    CHECK(refused(L"other", "is owned by S-1-5-7, not by SYSTEM or Administrators"));
}

static void test_a_link_instead_of_the_directory_is_refused(void)
{
    char text[64];
    CHECK(refused(L"junction", "is a reparse point"));
    read_all(L"target\\agent.log", text, sizeof(text));
    CHECK(text[0] == '\0'); /* nothing went where it points */
}

static void test_a_directory_everyone_may_write_is_refused(void)
{
    CHECK(refused(L"world", "may be written by S-1-1-0"));
}

/* agent.log in a good directory is a link, or a second hard link, to a file elsewhere. */
static void test_a_log_file_leading_elsewhere_is_refused(void)
{
    wchar_t dir[MAX_PATH];
    char err[1024] = "", text[64];
    path_of(dir, L"loglink\\stillpoint");
    CHECK(!append(dir, "planted\n", err, sizeof(err)));
    printf("  # link: %s\n", err);
    /* Windows sees the link; wine opens its target, whose path then tells. */
    CHECK(strstr(err, "is a reparse point") != NULL || strstr(err, "leads elsewhere") != NULL);
    path_of(dir, L"hardlink\\stillpoint");
    CHECK(!append(dir, "planted\n", err, sizeof(err)));
    printf("  # hard link: %s\n", err);
    CHECK(strstr(err, "is not a plain file (2 links)") != NULL);
    read_all(L"victim.txt", text, sizeof(text));
    CHECK(strcmp(text, "victim\n") == 0);
    read_all(L"victim2.txt", text, sizeof(text));
    CHECK(strcmp(text, "victim\n") == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test-state-dir.exe BASE (see tests/windows/state-dir.sh)\n");
        return 2;
    }
    MultiByteToWideChar(CP_UTF8, 0, argv[1], -1, base, MAX_PATH);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "created_for_system_and_administrators_only",
          test_created_for_system_and_administrators_only },
        { "an_existing_directory_only_readable_by_others_is_taken",
          test_an_existing_directory_only_readable_by_others_is_taken },
        { "a_directory_owned_by_someone_else_is_refused",
          test_a_directory_owned_by_someone_else_is_refused },
        { "a_link_instead_of_the_directory_is_refused",
          test_a_link_instead_of_the_directory_is_refused },
        { "a_directory_everyone_may_write_is_refused",
          test_a_directory_everyone_may_write_is_refused },
        { "a_log_file_leading_elsewhere_is_refused", test_a_log_file_leading_elsewhere_is_refused },
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        int before = failures;
        current = tests[i].name;
        tests[i].fn();
        printf("%s %zu - %s\n", failures == before ? "ok" : "not ok", i + 1, current);
        fflush(stdout);
    }
    printf("# %d of %zu tests failed\n", failures, n);
    return failures ? 1 : 0;
}
