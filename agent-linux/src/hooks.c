/* hooks: run freeze/thaw scripts with a timeout, refusing scripts others could have changed. A
 * script is opened once; its directory and the open file are checked, and that open file is what
 * runs (fexecve): whoever swaps the path between the check and the run changes nothing. */
#define _GNU_SOURCE
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test-hooks.h"

#define SP_HOOK_OUTPUT_MAX 4096

G_DEFINE_QUARK(sp-hooks-error-quark, sp_hooks_error)

struct SpHooks {
    GPtrArray *scripts;   /* in freeze order */
    gint64 timeout_ms;
    void (*keepalive)(void *data);
    void *keepalive_data;
    guint n_frozen;       /* how many got "freeze" successfully, for the thaw after a failure */
};

static gboolean owned_by_root_not_shared(const struct stat *st)
{
    return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static gboolean unsafe(const char *path, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static gboolean unsafe(const char *path, GError **error, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_UNSAFE, "hook %s refused: %s", path, why);
    return FALSE;
}

/* The script's directory, opened and checked: whoever can write it can swap the script. */
static int open_directory(const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;

    if (dfd < 0 || fstat(dfd, &st) < 0) {
        g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_SPAWN, "hook %s: its directory %s: %s",
                    path, dir, g_strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    if (!owned_by_root_not_shared(&st)) {
        close(dfd);
        unsafe(path, error, "its directory %s must be owned by root and not writable by group "
               "or others (chown root %s; chmod go-w %s)", dir, dir, dir);
        return -1;
    }
    return dfd;
}

/* The script opened (O_PATH: a FIFO does not block, nothing is read) without following a
 * symlink, and checked as opened: a regular file, owned by root, not writable by group or
 * others (Azure and GCP refuse these too: a script anyone can edit runs as root at freeze
 * time), executable. Returns the descriptor (close-on-exec), or -1 with error set. */
static int open_script(const char *path, GError **error)
{
    g_autofree char *name = g_path_get_basename(path);
    int dfd = open_directory(path, error), fd;
    struct stat st;

    if (dfd < 0)
        return -1;
    fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (fd < 0 || fstat(fd, &st) < 0) {
        g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_SPAWN, "hook %s: %s", path,
                    g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (S_ISLNK(st.st_mode))
        unsafe(path, error, "it is a symbolic link; name the script itself");
    else if (!S_ISREG(st.st_mode))
        unsafe(path, error, "it is not a regular file");
    else if (!owned_by_root_not_shared(&st))
        unsafe(path, error, "it must be owned by root and not writable by group or others "
               "(chown root %s; chmod go-w %s)", path, path);
    else if (!(st.st_mode & S_IXUSR))
        g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_SPAWN, "hook %s is not executable "
                    "(chmod u+x %s)", path, path);
    else
        return fd;
    close(fd);
    return -1;
}

static int cmp_str_cb(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

SpHooks *sp_hooks_new(const char *hook_path, const char *hook_dir, gint64 timeout_ms)
{
    SpHooks *h = g_new0(SpHooks, 1);
    g_autoptr(GDir) dir = NULL;

    h->scripts = g_ptr_array_new_with_free_func(g_free);
    h->timeout_ms = timeout_ms;
    if (hook_path && g_file_test(hook_path, G_FILE_TEST_EXISTS))
        g_ptr_array_add(h->scripts, g_strdup(hook_path));
    if (hook_dir)
        dir = g_dir_open(hook_dir, 0, NULL);
    if (dir) {
        g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
        const char *name;
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *p = g_build_filename(hook_dir, name, NULL);
            /* Like run-parts: skip editor backups and package manager leftovers. */
            if (name[0] == '.' || g_str_has_suffix(name, "~") || g_str_has_suffix(name, ".dpkg-old") ||
                g_str_has_suffix(name, ".rpmsave") || !g_file_test(p, G_FILE_TEST_IS_REGULAR) ||
                !g_file_test(p, G_FILE_TEST_IS_EXECUTABLE))
                continue;
            g_ptr_array_add(found, g_steal_pointer(&p));
        }
        g_ptr_array_sort(found, cmp_str_cb);
        for (guint i = 0; i < found->len; i++)
            g_ptr_array_add(h->scripts, g_strdup(found->pdata[i]));
    }
    return h;
}

void sp_hooks_set_keepalive(SpHooks *h, void (*fn)(void *data), void *data)
{
    h->keepalive = fn;
    h->keepalive_data = data;
}

guint sp_hooks_count(const SpHooks *h)
{
    return h->scripts->len;
}

void sp_hooks_free(SpHooks *h)
{
    if (!h)
        return;
    g_ptr_array_unref(h->scripts);
    g_free(h);
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Runs the checked file itself. A "#!" script is handed to its interpreter as /dev/fd/N, which
 * the interpreter opens: the descriptor must survive the exec (and /dev/fd exist, as on every
 * udev or systemd system). */
static void child_exec(int script_fd, const char *path, const char *action, int out_fd)
{
    const char *argv[] = {path, action, NULL};
    int devnull = open("/dev/null", O_RDONLY);

    setpgid(0, 0);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    if (fcntl(script_fd, F_SETFD, 0) == 0)
        fexecve(script_fd, (char *const *)argv, environ);
    _exit(127);
}

/* Wait for pid until deadline, collecting its output. Returns TRUE when it exited (status set). */
static gboolean wait_child(SpHooks *h, pid_t pid, int out_fd, gint64 deadline_us, GString *output,
                           int *status)
{
    int pidfd = pidfd_open_compat(pid);
    gboolean out_open = TRUE;

    for (;;) {
        struct pollfd pfd[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
        gint64 left = (deadline_us - g_get_monotonic_time()) / 1000;
        /* Without a pidfd (kernels before 5.3) the exit is noticed by polling every 10 ms. */
        int timeout = pidfd < 0 ? (int)MIN(left, 10) : (int)MIN(left, 250);

        if (h->keepalive)
            h->keepalive(h->keepalive_data);

        if (waitpid(pid, status, WNOHANG) == pid)
            break;
        if (left <= 0) {
            if (pidfd >= 0)
                close(pidfd);
            return FALSE;
        }
        if (!out_open)
            pfd[0].fd = -1;
        if (poll(pfd, 2, MAX(timeout, 1)) > 0 && (pfd[0].revents & (POLLIN | POLLHUP))) {
            char buf[512];
            ssize_t n = read(out_fd, buf, sizeof(buf));
            if (n <= 0)
                out_open = FALSE;
            else if (output->len < SP_HOOK_OUTPUT_MAX)
                g_string_append_len(output, buf, MIN((gsize)n, SP_HOOK_OUTPUT_MAX - output->len));
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return TRUE;
}

static gboolean run_script(SpHooks *h, const char *path, const char *action, GError **error)
{
    g_autoptr(GString) output = g_string_new(NULL);
    int pipefd[2] = {-1, -1}, status = 0, script_fd = open_script(path, error);
    pid_t pid = -1;
    gboolean exited;

    if (script_fd < 0)
        return FALSE;
    sp_test_hook("hook-checked", path);
    if (pipe2(pipefd, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_SPAWN, "hook %s %s: %s", path, action,
                    g_strerror(errno));
        if (pipefd[0] >= 0) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        close(script_fd);
        return FALSE;
    }
    if (pid == 0)
        child_exec(script_fd, path, action, pipefd[1]);
    close(script_fd);
    close(pipefd[1]);
    exited = wait_child(h, pid, pipefd[0], g_get_monotonic_time() + h->timeout_ms * 1000, output,
                        &status);
    close(pipefd[0]);
    if (!exited) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_TIMEOUT,
                    "hook %s %s did not finish within %" G_GINT64_FORMAT " ms and was killed",
                    path, action, h->timeout_ms);
        return FALSE;
    }
    g_strchomp(output->str);
    if (output->len > 0)
        g_info("hook %s %s: %s", path, action, output->str);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_set_error(error, SP_HOOKS_ERROR, SP_HOOKS_ERROR_FAILED, "hook %s %s failed (%s %d)", path,
                    action, WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return FALSE;
    }
    return TRUE;
}

static void thaw_first(SpHooks *h, guint n)
{
    for (guint i = n; i > 0; i--) {
        g_autoptr(GError) e = NULL;
        if (!run_script(h, h->scripts->pdata[i - 1], "thaw", &e))
            g_warning("%s", e->message);
    }
}

gboolean sp_hooks_freeze(SpHooks *h, GError **error)
{
    h->n_frozen = 0;
    for (guint i = 0; i < h->scripts->len; i++) {
        if (!run_script(h, h->scripts->pdata[i], "freeze", error)) {
            /* Tell the scripts that did freeze to let go; the failed one gets thaw too, as it
             * may have half-frozen its application. */
            thaw_first(h, i + 1);
            return FALSE;
        }
        h->n_frozen = i + 1;
    }
    return TRUE;
}

gboolean sp_hooks_thaw(SpHooks *h, GError **error)
{
    gboolean ok = TRUE;
    for (guint i = h->scripts->len; i > 0; i--) {
        GError *e = NULL;
        if (!run_script(h, h->scripts->pdata[i - 1], "thaw", &e)) {
            if (ok)
                g_propagate_error(error, e);
            else {
                g_warning("%s", e->message);
                g_error_free(e);
            }
            ok = FALSE;
        }
    }
    h->n_frozen = 0;
    return ok;
}
