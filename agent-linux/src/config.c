/* config: read agent.conf. Sections [transports], [agent], [freeze], [hooks], [writers],
 * [qemu-ga]; see data/agent.conf. */
#include "config.h"

#include "state.h"

/* What hosts use qemu-ga for besides quiescing (libvirt's domifaddr, domtime, shutdown --mode
 * agent, domfstrim, guestinfo, setvcpus; Proxmox's IP display and shutdown): nothing a host
 * could not do to its VM anyway. exec, file, password and ssh-key commands are not in it. */
const char *const sp_config_qga_default_commands[] = {
    "guest-network-get-interfaces", "guest-network-get-route", "guest-get-time",
    "guest-set-time", "guest-shutdown", "guest-suspend-disk", "guest-suspend-ram",
    "guest-suspend-hybrid", "guest-fstrim", "guest-get-osinfo", "guest-get-host-name",
    "guest-get-users", "guest-get-timezone", "guest-get-vcpus", "guest-set-vcpus",
    "guest-get-memory-blocks", "guest-set-memory-blocks", "guest-get-memory-block-info",
    "guest-get-disks", "guest-get-devices", "guest-get-diskstats", "guest-get-cpustats",
    "guest-get-load", NULL,
};

SpConfig *sp_config_new(void)
{
    SpConfig *c = g_new0(SpConfig, 1);
    c->state_dir = g_strdup(SP_STATE_DIR_DEFAULT);
    c->default_lease_ms = SP_DEFAULT_LEASE_MS;
    c->max_lease_ms = SP_MAX_LEASE_MS;
    c->thaw_on_hangup = TRUE;
    c->standard_thaw_on_hangup = FALSE;
    c->hook_timeout_ms = SP_HOOK_TIMEOUT_MS_DEFAULT;
    c->writers = TRUE;
    c->writers_timeout_ms = SP_WRITERS_TIMEOUT_MS;
    c->writers_abort = TRUE;
    /* Used when they exist; an empty value in the file switches them off. */
    c->hook_path = g_strdup(SP_HOOK_PATH_DEFAULT);
    c->hook_dir = g_strdup(SP_HOOK_DIR_DEFAULT);
    c->exclude_mountpoints = g_new0(char *, 1);
    c->exclude_types = g_new0(char *, 1);
    c->qga_socket = g_strdup(SP_QGA_SOCKET_DEFAULT);
    c->qga_commands = g_strdupv((char **)sp_config_qga_default_commands);
    c->qga_timeout_ms = SP_QGA_TIMEOUT_MS_DEFAULT;
    c->qga_max_reply = SP_QGA_MAX_REPLY_DEFAULT;
    return c;
}

void sp_config_free(SpConfig *c)
{
    if (!c)
        return;
    g_strfreev(c->virtio_ports);
    g_strfreev(c->unix_sockets);
    g_free(c->vsock_ports);
    g_free(c->state_dir);
    g_strfreev(c->exclude_mountpoints);
    g_strfreev(c->exclude_types);
    g_free(c->hook_path);
    g_free(c->hook_dir);
    g_free(c->qga_socket);
    g_strfreev(c->qga_commands);
    g_free(c);
}

static gboolean get_ms(GKeyFile *kf, const char *group, const char *key, gint64 min, gint64 max,
                       gint64 *ret, GError **error)
{
    GError *local = NULL;
    gint64 v;

    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    v = g_key_file_get_int64(kf, group, key, &local);
    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    if (v < min || v > max) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] %s = %" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%"
                    G_GINT64_FORMAT, group, key, v, min, max);
        return FALSE;
    }
    *ret = v;
    return TRUE;
}

/* Leaves *ret alone when the key is absent; a value that is not a boolean is an error. */
static gboolean get_bool(GKeyFile *kf, const char *group, const char *key, gboolean *ret,
                         GError **error)
{
    GError *local = NULL;
    gboolean v;

    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    v = g_key_file_get_boolean(kf, group, key, &local);
    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    *ret = v;
    return TRUE;
}

static void replace_list(GKeyFile *kf, const char *group, const char *key, char ***list)
{
    char **v = g_key_file_get_string_list(kf, group, key, NULL, NULL);
    if (v) {
        g_strfreev(*list);
        *list = v;
    }
}

static void replace_string(GKeyFile *kf, const char *group, const char *key, char **s)
{
    char *v = g_key_file_get_string(kf, group, key, NULL);
    if (v) {
        g_free(*s);
        /* An empty value switches the feature off. */
        *s = *v ? v : NULL;
        if (!*s)
            g_free(v);
    }
}

static gboolean load_transports(SpConfig *c, GKeyFile *kf, GError **error)
{
    gsize n = 0;

    replace_list(kf, "transports", "virtio-ports", &c->virtio_ports);
    replace_list(kf, "transports", "unix-sockets", &c->unix_sockets);
    if (g_key_file_has_key(kf, "transports", "vsock-ports", NULL)) {
        GError *local = NULL;
        int *ports = g_key_file_get_integer_list(kf, "transports", "vsock-ports", &n, &local);
        if (local) {
            g_propagate_error(error, local);
            return FALSE;
        }
        g_free(c->vsock_ports);
        c->vsock_ports = ports;
        c->n_vsock_ports = n;
    }
    return TRUE;
}

static gboolean load_writers(SpConfig *c, GKeyFile *kf, GError **error)
{
    g_autofree char *on_failure = g_key_file_get_string(kf, "writers", "on-failure", NULL);

    if (!get_bool(kf, "writers", "enabled", &c->writers, error) ||
        !get_ms(kf, "writers", "timeout-ms", 1, G_MAXINT32, &c->writers_timeout_ms, error))
        return FALSE;
    if (on_failure && !g_str_equal(on_failure, "abort") && !g_str_equal(on_failure, "continue")) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[writers] on-failure = %s: use abort or continue", on_failure);
        return FALSE;
    }
    if (on_failure)
        c->writers_abort = g_str_equal(on_failure, "abort");
    return TRUE;
}

static gboolean load_qga(SpConfig *c, GKeyFile *kf, GError **error)
{
    replace_string(kf, "qemu-ga", "socket", &c->qga_socket);
    replace_list(kf, "qemu-ga", "commands", &c->qga_commands);
    return get_bool(kf, "qemu-ga", "allow-exec", &c->qga_allow_exec, error) &&
           get_bool(kf, "qemu-ga", "allow-file", &c->qga_allow_file, error) &&
           get_bool(kf, "qemu-ga", "allow-password", &c->qga_allow_password, error) &&
           get_bool(kf, "qemu-ga", "allow-ssh-keys", &c->qga_allow_ssh_keys, error) &&
           get_ms(kf, "qemu-ga", "timeout-ms", 1, G_MAXINT32, &c->qga_timeout_ms, error) &&
           get_ms(kf, "qemu-ga", "max-reply-bytes", 64, SP_QGA_MAX_REPLY_MAX, &c->qga_max_reply,
                  error);
}

/* A misspelt key would silently fall back to a default (an exclusion that excludes nothing):
 * unknown groups and keys are errors. */
static gboolean check_keys(GKeyFile *kf, GError **error)
{
    static const char *const known[] = {
        "transports/virtio-ports", "transports/vsock-ports", "transports/unix-sockets",
        "agent/state-dir", "agent/verbose",
        "freeze/default-lease-ms", "freeze/max-lease-ms", "freeze/exclude-mountpoints",
        "freeze/exclude-types", "freeze/thaw-on-hangup",
        "freeze/standard-thaw-on-hangup",
        "hooks/fsfreeze-hook", "hooks/fsfreeze-hook-dir", "hooks/timeout-ms",
        "writers/enabled", "writers/timeout-ms", "writers/on-failure",
        "qemu-ga/socket", "qemu-ga/commands", "qemu-ga/allow-exec", "qemu-ga/allow-file",
        "qemu-ga/allow-password", "qemu-ga/allow-ssh-keys", "qemu-ga/timeout-ms",
        "qemu-ga/max-reply-bytes", NULL,
    };
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

    for (guint g = 0; groups[g]; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);
        for (guint k = 0; keys && keys[k]; k++) {
            g_autofree char *name = g_strdup_printf("%s/%s", groups[g], keys[k]);
            if (!g_strv_contains(known, name)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                            "unknown key '%s' in group [%s] (the example agent.conf lists every "
                            "key)", keys[k], groups[g]);
                return FALSE;
            }
        }
    }
    return TRUE;
}

gboolean sp_config_load(SpConfig *c, const char *path, gboolean required, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    GError *local = NULL;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
        if (!required && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_error_free(local);
            return TRUE;
        }
        g_propagate_prefixed_error(error, local, "%s: ", path);
        return FALSE;
    }
    if (!check_keys(kf, error) || !load_transports(c, kf, error))
        goto fail;
    replace_string(kf, "agent", "state-dir", &c->state_dir);
    if (!c->state_dir)
        c->state_dir = g_strdup(SP_STATE_DIR_DEFAULT);
    if (!get_bool(kf, "agent", "verbose", &c->verbose, error) ||
        !get_ms(kf, "freeze", "max-lease-ms", SP_MIN_LEASE_MS, G_MAXINT32, &c->max_lease_ms, error) ||
        !get_ms(kf, "freeze", "default-lease-ms", SP_MIN_LEASE_MS, c->max_lease_ms,
                &c->default_lease_ms, error) ||
        !get_ms(kf, "hooks", "timeout-ms", 1, G_MAXINT32, &c->hook_timeout_ms, error))
        goto fail;
    replace_list(kf, "freeze", "exclude-mountpoints", &c->exclude_mountpoints);
    replace_list(kf, "freeze", "exclude-types", &c->exclude_types);
    if (!get_bool(kf, "freeze", "thaw-on-hangup", &c->thaw_on_hangup, error) ||
        !get_bool(kf, "freeze", "standard-thaw-on-hangup", &c->standard_thaw_on_hangup, error))
        goto fail;
    replace_string(kf, "hooks", "fsfreeze-hook", &c->hook_path);
    replace_string(kf, "hooks", "fsfreeze-hook-dir", &c->hook_dir);
    if (!load_writers(c, kf, error) || !load_qga(c, kf, error))
        goto fail;
    return TRUE;
fail:
    g_prefix_error(error, "%s: ", path);
    return FALSE;
}
