/* backend-linux: the Linux freeze backend — plans with mountinfo and sysfs, runs hooks, freezes
 * with FIFREEZE under a lease, records what it froze in the state directory. GLib main loop. */
#pragma once
#include <glib.h>
#include "config.h"
#include "stillpoint/freeze-backend.h"
#include "freezer.h"
#include "writers.h"

/* What stillpoint-capabilities calls this backend (PROTOCOL.md): real FIFREEZE. */
#define SP_LINUX_BACKEND_NAME "fifreeze"

typedef struct SpLinuxBackend SpLinuxBackend;

typedef struct {
    const char *mountinfo_path;  /* NULL = /proc/self/mountinfo */
    const char *sysfs_root;      /* NULL = /sys */
    const SpFsOps *fs_ops;       /* NULL = the real system calls */
    void *fs_ops_userdata;
} SpLinuxBackendOptions;

SpLinuxBackend *sp_linux_backend_new(const SpConfig *config, const SpLinuxBackendOptions *opts);
/* Thaws anything still frozen (reason "shutdown") and frees. */
void sp_linux_backend_free(SpLinuxBackend *backend);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpLinuxBackend, sp_linux_backend_free)

SpFreezeBackend sp_linux_backend_interface(SpLinuxBackend *backend);
gboolean sp_linux_backend_is_frozen(SpLinuxBackend *backend);
guint sp_linux_backend_hook_count(SpLinuxBackend *backend);
/* See sp_hooks_set_keepalive(). */
void sp_linux_backend_set_keepalive(SpLinuxBackend *backend, void (*fn)(void *data), void *data);
/* Application writers to call around every freeze (NULL = none); borrowed. */
void sp_linux_backend_set_writers(SpLinuxBackend *backend, SpWriters *writers);
/* A channel hung up: thaw if it owns the freeze and the config says so. */
void sp_linux_backend_channel_closed(SpLinuxBackend *backend, unsigned channel);
/* Thaw now, for this reason (SIGTERM). */
void sp_linux_backend_thaw_for_shutdown(SpLinuxBackend *backend);
/* At start: thaw what a crashed agent's state file says it froze. Returns how many it thawed. */
int sp_linux_backend_recover(SpLinuxBackend *backend);
