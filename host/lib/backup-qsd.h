/* qemu-storage-daemon as a backup session's NBD server (libvirt driver). */
#pragma once
#include <glib.h>
#include "stillpoint/qmp.h"

/* Starts a daemon whose monitor listens on qmp_path (its pid in pid_path) and connects to it. */
SpQmp *sp_qsd_start(const char *qmp_path, const char *pid_path, GError **error);
/* Opens image read-only as block node node (format: its driver, qcow2 or raw). */
gboolean sp_qsd_open_image(SpQmp *qsd, const char *node, const char *image, const char *format,
                           GError **error);
/* Quits the daemon (killed if it does not go); nothing running is not an error. */
gboolean sp_qsd_stop(const char *qmp_path, const char *pid_path, GError **error);
