/* config: /etc/stillpoint/agent.conf (GKeyFile) and its defaults. */
#pragma once
#include <glib.h>

/* The install's sysconfdir (CMake: CMAKE_INSTALL_FULL_SYSCONFDIR; /etc for the /usr prefix), so
 * that an agent installed under /usr/local reads the agent.conf installed with it. */
#ifndef SP_SYSCONFDIR
#define SP_SYSCONFDIR "/etc"
#endif
#define SP_CONFIG_PATH_DEFAULT SP_SYSCONFDIR "/stillpoint/agent.conf"
#define SP_VIRTIO_PORT_DEFAULT "/dev/virtio-ports/org.qemu.guest_agent.0"
#define SP_VIRTIO_PORT_OWN "/dev/virtio-ports/org.stillpoint.agent.0"
#define SP_DEFAULT_LEASE_MS 60000      /* long enough for libvirt's freeze→snapshot→thaw */
#define SP_MAX_LEASE_MS (3600 * 1000)  /* nobody needs a guest frozen for more than an hour */
#define SP_MIN_LEASE_MS 100
#define SP_HOOK_TIMEOUT_MS_DEFAULT 30000
#define SP_HOOK_PATH_DEFAULT SP_SYSCONFDIR "/stillpoint/fsfreeze-hook"
#define SP_HOOK_DIR_DEFAULT SP_SYSCONFDIR "/stillpoint/fsfreeze-hook.d"
#define SP_WRITERS_TIMEOUT_MS 10000    /* each writer round (Prepare, Freeze, Thaw) */
/* The stock qemu-ga beside the agent (README "DESIGN: coexisting with qemu-ga"). */
#define SP_QGA_SOCKET_DEFAULT "/run/stillpoint-qemu-ga/qemu-ga.sock"
#define SP_QGA_TIMEOUT_MS_DEFAULT 60000    /* guest-fstrim of a large disk takes a while */
#define SP_QGA_MAX_REPLY_DEFAULT (256 * 1024)
#define SP_QGA_MAX_REPLY_MAX (768 * 1024) /* under the transport's output bound */

typedef struct {
    char **virtio_ports;        /* character devices to serve; NULL-terminated */
    char **unix_sockets;        /* socket paths to listen on */
    int *vsock_ports;           /* ports to listen on (connections from the host only) */
    gsize n_vsock_ports;
    char *state_dir;
    gint64 default_lease_ms;    /* for the standard guest-fsfreeze-* commands */
    gint64 max_lease_ms;
    char **exclude_mountpoints; /* fnmatch patterns */
    char **exclude_types;
    gboolean thaw_on_hangup;    /* the channel of a stillpoint-freeze hangs up → thaw */
    gboolean standard_thaw_on_hangup; /* the same for guest-fsfreeze-*: off, as qemu-ga, because
                                       * some hosts (Proxmox) reconnect for every command */
    char *hook_path;            /* qemu-ga style fsfreeze-hook; NULL = none */
    char *hook_dir;             /* fsfreeze-hook.d; NULL = none */
    gint64 hook_timeout_ms;
    gboolean writers;           /* serve application writers on the system bus (when one runs) */
    gint64 writers_timeout_ms;  /* deadline of each round of calls to the writers */
    gboolean writers_abort;     /* a failed writer fails the freeze (on-failure=abort) */
    /* [qemu-ga]: standard commands the agent forwards to the qemu-ga beside it. */
    char *qga_socket;           /* NULL = no forwarding */
    char **qga_commands;        /* the allow-list (NULL-terminated) */
    gboolean qga_allow_exec, qga_allow_file, qga_allow_password, qga_allow_ssh_keys;
    gint64 qga_timeout_ms;
    gint64 qga_max_reply;
    gboolean verbose;
} SpConfig;

/* The default [qemu-ga] commands list (NULL-terminated). */
extern const char *const sp_config_qga_default_commands[];

/* Defaults, then the file (a missing file is fine unless required). */
SpConfig *sp_config_new(void);
gboolean sp_config_load(SpConfig *config, const char *path, gboolean required, GError **error);
void sp_config_free(SpConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpConfig, sp_config_free)
