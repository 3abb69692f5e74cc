/* A qemu-storage-daemon that serves a backup session's NBD exports for a libvirt domain: libvirt
 * owns the domain's monitor, so the frozen images (read-only backing files now, their content
 * fixed until the session ends) are opened a second time, read-only, in a daemon of the session's
 * own, which exports them exactly as the VM's QEMU does for the qemu driver. */
#include "backup-qsd.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>

#define QSD_START_TIMEOUT_MS 10000

SpQmp *sp_qsd_start(const char *qmp_path, const char *pid_path, GError **error)
{
    g_autofree char *chardev = g_strdup_printf("socket,id=sp-mon,path=%s,server=on,wait=off",
                                               qmp_path);
    g_autoptr(GSubprocess) proc = NULL;
    g_autofree char *err_text = NULL;

    g_unlink(qmp_path); /* a stale socket of a daemon that died */
    /* --daemonize returns once the monitor listens; the daemon outlives this process, as the
     * session outlives the command that began it. */
    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            error, "qemu-storage-daemon", "--chardev", chardev, "--monitor",
                            "chardev=sp-mon", "--pidfile", pid_path, "--daemonize", NULL);
    if (proc == NULL) {
        g_prefix_error(error, "starting qemu-storage-daemon (package qemu-system-common): ");
        return NULL;
    }
    if (!g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err_text, error))
        return NULL;
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "qemu-storage-daemon did not start: %s",
                    err_text != NULL ? g_strstrip(err_text) : "");
        return NULL;
    }
    return sp_qmp_connect(qmp_path, QSD_START_TIMEOUT_MS, error);
}

gboolean sp_qsd_open_image(SpQmp *qsd, const char *node, const char *image, const char *format,
                           GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    SpJson *file = sp_json_new_object();
    sp_json_object_set_string(file, "driver", "file");
    sp_json_object_set_string(file, "filename", image);
    sp_json_object_set_string(args, "driver", format != NULL ? format : "qcow2");
    sp_json_object_set_string(args, "node-name", node);
    sp_json_object_set_bool(args, "read-only", true);
    sp_json_object_set(args, "file", file);
    ret = sp_qmp_execute(qsd, "blockdev-add", g_steal_pointer(&args), SP_QMP_DEFAULT_TIMEOUT_MS,
                         error);
    if (ret == NULL) {
        g_prefix_error(error, "opening %s read-only for its NBD export: ", image);
        return FALSE;
    }
    return TRUE;
}

gboolean sp_qsd_stop(const char *qmp_path, const char *pid_path, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SpQmp) qsd = sp_qmp_connect(qmp_path, QSD_START_TIMEOUT_MS, &local);
    g_autofree char *pid_text = NULL;
    pid_t pid = 0;

    if (g_file_get_contents(pid_path, &pid_text, NULL, NULL))
        pid = (pid_t)g_ascii_strtoll(pid_text, NULL, 10);
    if (qsd != NULL)
        sp_json_free(sp_qmp_execute(qsd, "quit", NULL, SP_QMP_DEFAULT_TIMEOUT_MS, NULL));
    /* Gone within the deadline, or made to go: its exports must not outlive the session. */
    for (int i = 0; pid > 0 && i < 100 && kill(pid, 0) == 0; i++)
        g_usleep(50 * 1000);
    if (pid > 0 && kill(pid, 0) == 0 && kill(pid, SIGKILL) != 0 && errno != ESRCH) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                    "stopping qemu-storage-daemon (pid %d): %s", (int)pid, g_strerror(errsv));
        return FALSE;
    }
    g_unlink(qmp_path);
    g_unlink(pid_path);
    return TRUE;
}
