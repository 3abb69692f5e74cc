/* config: read agent.conf. Sections [transports], [agent], [freeze], [hooks], [writers],
 * [qemu-ga]; see data/agent.conf. */
#include "config.h"

#include "state.h"

#include <stddef.h>

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

/* Every key of agent.conf, once: how it is read, where it lands, and (for durations and sizes)
 * its range. Loading, freeing and the check for unknown keys all walk this one list. */
typedef enum {
    KEY_BOOL,    /* gboolean; a value that is not a boolean is an error */
    KEY_INT,     /* gint64 within [min, max] */
    KEY_STRING,  /* char *; an empty value switches the feature off */
    KEY_LIST,    /* char ** */
    KEY_OWN,     /* read by its own code below (vsock-ports, on-failure) */
} KeyKind;

/* max of default-lease-ms: whatever max-lease-ms (read before it) says. */
#define UP_TO_MAX_LEASE (-1)

typedef struct {
    const char *group, *key;
    KeyKind kind;
    size_t offset;
    gint64 min, max;
} ConfigKey;

#define KEY(g, k, kind, field) { g, k, kind, offsetof(SpConfig, field), 0, 0 }
#define RANGE(g, k, field, min, max) { g, k, KEY_INT, offsetof(SpConfig, field), min, max }

static const ConfigKey config_keys[] = {
    KEY("transports", "virtio-ports", KEY_LIST, virtio_ports),
    KEY("transports", "unix-sockets", KEY_LIST, unix_sockets),
    KEY("transports", "vsock-ports", KEY_OWN, vsock_ports),
    KEY("agent", "state-dir", KEY_STRING, state_dir),
    KEY("agent", "verbose", KEY_BOOL, verbose),
    RANGE("freeze", "max-lease-ms", max_lease_ms, SP_MIN_LEASE_MS, G_MAXINT32),
    RANGE("freeze", "default-lease-ms", default_lease_ms, SP_MIN_LEASE_MS, UP_TO_MAX_LEASE),
    RANGE("hooks", "timeout-ms", hook_timeout_ms, 1, G_MAXINT32),
    KEY("freeze", "exclude-mountpoints", KEY_LIST, exclude_mountpoints),
    KEY("freeze", "exclude-types", KEY_LIST, exclude_types),
    KEY("freeze", "thaw-on-hangup", KEY_BOOL, thaw_on_hangup),
    KEY("freeze", "standard-thaw-on-hangup", KEY_BOOL, standard_thaw_on_hangup),
    KEY("hooks", "fsfreeze-hook", KEY_STRING, hook_path),
    KEY("hooks", "fsfreeze-hook-dir", KEY_STRING, hook_dir),
    KEY("writers", "enabled", KEY_BOOL, writers),
    RANGE("writers", "timeout-ms", writers_timeout_ms, 1, G_MAXINT32),
    KEY("writers", "on-failure", KEY_OWN, writers_abort),
    KEY("qemu-ga", "socket", KEY_STRING, qga_socket),
    KEY("qemu-ga", "commands", KEY_LIST, qga_commands),
    KEY("qemu-ga", "allow-exec", KEY_BOOL, qga_allow_exec),
    KEY("qemu-ga", "allow-file", KEY_BOOL, qga_allow_file),
    KEY("qemu-ga", "allow-password", KEY_BOOL, qga_allow_password),
    KEY("qemu-ga", "allow-ssh-keys", KEY_BOOL, qga_allow_ssh_keys),
    RANGE("qemu-ga", "timeout-ms", qga_timeout_ms, 1, G_MAXINT32),
    RANGE("qemu-ga", "max-reply-bytes", qga_max_reply, 64, SP_QGA_MAX_REPLY_MAX),
};

static void *field_of(SpConfig *c, const ConfigKey *k)
{
    return (char *)c + k->offset;
}

void sp_config_free(SpConfig *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(config_keys); i++) {
        const ConfigKey *k = &config_keys[i];
        if (k->kind == KEY_STRING)
            g_free(*(char **)field_of(c, k));
        else if (k->kind == KEY_LIST)
            g_strfreev(*(char ***)field_of(c, k));
    }
    g_free(c->vsock_ports);
    g_free(c);
}

/* Booleans and numbers: one reading, one way of failing; a number must also be in its range. */
static gboolean read_scalar(SpConfig *c, GKeyFile *kf, const ConfigKey *k, GError **error)
{
    gint64 max = k->max == UP_TO_MAX_LEASE ? c->max_lease_ms : k->max;
    GError *local = NULL;
    gint64 v = k->kind == KEY_BOOL ? g_key_file_get_boolean(kf, k->group, k->key, &local)
                                   : g_key_file_get_int64(kf, k->group, k->key, &local);

    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    if (k->kind == KEY_BOOL) {
        *(gboolean *)field_of(c, k) = (gboolean)v;
        return TRUE;
    }
    if (v < k->min || v > max) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[%s] %s = %" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%"
                    G_GINT64_FORMAT, k->group, k->key, v, k->min, max);
        return FALSE;
    }
    *(gint64 *)field_of(c, k) = v;
    return TRUE;
}

static void read_string(SpConfig *c, GKeyFile *kf, const ConfigKey *k)
{
    char **s = field_of(c, k);
    char *v = g_key_file_get_string(kf, k->group, k->key, NULL);

    if (v) {
        g_free(*s);
        /* An empty value switches the feature off. */
        *s = *v ? v : NULL;
        if (!*s)
            g_free(v);
    }
}

static void read_list(SpConfig *c, GKeyFile *kf, const ConfigKey *k)
{
    char ***list = field_of(c, k);
    char **v = g_key_file_get_string_list(kf, k->group, k->key, NULL, NULL);

    if (v) {
        g_strfreev(*list);
        *list = v;
    }
}

/* Reads every key of the table that the file has; an absent key keeps its default. */
static gboolean load_table_keys(SpConfig *c, GKeyFile *kf, GError **error)
{
    for (size_t i = 0; i < G_N_ELEMENTS(config_keys); i++) {
        const ConfigKey *k = &config_keys[i];
        if (!g_key_file_has_key(kf, k->group, k->key, NULL))
            continue;
        if ((k->kind == KEY_INT || k->kind == KEY_BOOL) && !read_scalar(c, kf, k, error))
            return FALSE;
        if (k->kind == KEY_STRING)
            read_string(c, kf, k);
        else if (k->kind == KEY_LIST)
            read_list(c, kf, k);
    }
    return TRUE;
}

static gboolean load_vsock_ports(SpConfig *c, GKeyFile *kf, GError **error)
{
    GError *local = NULL;
    gsize n = 0;
    int *ports;

    if (!g_key_file_has_key(kf, "transports", "vsock-ports", NULL))
        return TRUE;
    ports = g_key_file_get_integer_list(kf, "transports", "vsock-ports", &n, &local);
    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    g_free(c->vsock_ports);
    c->vsock_ports = ports;
    c->n_vsock_ports = n;
    return TRUE;
}

static gboolean load_writers_on_failure(SpConfig *c, GKeyFile *kf, GError **error)
{
    g_autofree char *on_failure = g_key_file_get_string(kf, "writers", "on-failure", NULL);

    if (on_failure && !g_str_equal(on_failure, "abort") && !g_str_equal(on_failure, "continue")) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "[writers] on-failure = %s: use abort or continue", on_failure);
        return FALSE;
    }
    if (on_failure)
        c->writers_abort = g_str_equal(on_failure, "abort");
    return TRUE;
}

static gboolean is_known_key(const char *group, const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(config_keys); i++)
        if (g_str_equal(config_keys[i].group, group) && g_str_equal(config_keys[i].key, key))
            return TRUE;
    return FALSE;
}

/* A misspelt key would silently fall back to a default (an exclusion that excludes nothing):
 * unknown groups and keys are errors. */
static gboolean check_keys(GKeyFile *kf, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

    for (guint g = 0; groups[g]; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);
        for (guint k = 0; keys && keys[k]; k++) {
            if (!is_known_key(groups[g], keys[k])) {
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
    if (!check_keys(kf, error) || !load_vsock_ports(c, kf, error) ||
        !load_table_keys(c, kf, error) || !load_writers_on_failure(c, kf, error))
        goto fail;
    if (!c->state_dir)
        c->state_dir = g_strdup(SP_STATE_DIR_DEFAULT);
    return TRUE;
fail:
    g_prefix_error(error, "%s: ", path);
    return FALSE;
}
