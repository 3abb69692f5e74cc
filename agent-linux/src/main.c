/* stillpoint-agent: the Linux guest agent — answers the host's quiescing commands over
 * virtio-serial, vsock or a unix socket, and never leaves the guest frozen. */
#define _GNU_SOURCE
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "backend-linux.h"
#include "config.h"
#include "forward.h"
#include "log.h"
#include "state.h"
#include "stillpoint/agent-commands.h"
#include "transport.h"

#ifndef SP_AGENT_VERSION
#define SP_AGENT_VERSION "0.1.0"
#endif

typedef struct {
    SpLinuxBackend *backend;
    SpWriters *writers;
    SpAgentCommands *commands;
    SpForward *forward;        /* NULL: nothing forwarded to qemu-ga */
    SpTransport *transport;
    GMainLoop *loop;
} Agent;

typedef struct {
    char *config_path;
    char **virtio;
    char **unix_sockets;
    char **vsock;
    char *state_dir;
    gint64 default_lease_ms;
    int ready_fd;
    gboolean verbose;
    gboolean version;
} Options;

static SpJson *request_cb(unsigned channel, guint64 request, const SpJson *message,
                          unsigned *ret_flags, void *data)
{
    Agent *a = data;
    SpJson *reply = NULL;

    /* The standard commands the agent leaves to qemu-ga, then its own. */
    switch (sp_forward_dispatch(a->forward, message, sp_linux_backend_is_frozen(a->backend),
                                request, &reply)) {
    case SP_FORWARD_ANSWERED:
        return reply;
    case SP_FORWARD_PENDING:
        *ret_flags |= SP_TRANSPORT_PENDING;
        return NULL;
    case SP_FORWARD_NOT_MINE:
        break;
    }
    return sp_agent_commands_dispatch(a->commands, channel, message, ret_flags);
}

static void forward_reply_cb(guint64 request, SpJson *reply, unsigned flags, void *data)
{
    Agent *a = data;
    sp_transport_reply(a->transport, request, reply, flags);
}

static void hangup_cb(unsigned channel, void *data)
{
    Agent *a = data;
    sp_linux_backend_channel_closed(a->backend, channel);
}

static gboolean signal_cb(gpointer data)
{
    Agent *a = data;
    /* Unlike qemu-ga, a stopping agent thaws first: nobody else would. */
    sp_linux_backend_thaw_for_shutdown(a->backend);
    g_main_loop_quit(a->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean parse_options(int *argc, char ***argv, Options *o, GError **error)
{
    const GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_path,
         "Configuration file (default " SP_CONFIG_PATH_DEFAULT ")", "FILE"},
        {"virtio", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &o->virtio,
         "Serve a virtio-serial port (default " SP_VIRTIO_PORT_DEFAULT ")", "PATH"},
        {"unix", 'u', 0, G_OPTION_ARG_FILENAME_ARRAY, &o->unix_sockets,
         "Listen on a unix socket", "PATH"},
        {"vsock", 'v', 0, G_OPTION_ARG_STRING_ARRAY, &o->vsock, "Listen on an AF_VSOCK port", "PORT"},
        {"state-dir", 's', 0, G_OPTION_ARG_FILENAME, &o->state_dir,
         "Where to record frozen filesystems (default " SP_STATE_DIR_DEFAULT "; must not be on a "
         "filesystem the agent freezes)", "DIR"},
        {"default-lease-ms", 'l', 0, G_OPTION_ARG_INT64, &o->default_lease_ms,
         "Lease of the standard guest-fsfreeze-* commands", "MS"},
        {"ready-fd", 0, 0, G_OPTION_ARG_INT, &o->ready_fd,
         "Write \"READY\" to this file descriptor once serving, then close it", "FD"},
        {"verbose", 'V', 0, G_OPTION_ARG_NONE, &o->verbose, "Log debug messages", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &o->version, "Print the version and exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);

    g_option_context_set_summary(ctx, "The stillpoint guest agent: freezes this guest's "
                                 "filesystems for application-consistent checkpoints, and\nthaws "
                                 "them on command, when the freeze's lease runs out, or when the "
                                 "host hangs up.\nSpeaks the QEMU guest agent protocol "
                                 "(guest-fsfreeze-*) and its stillpoint- extensions.");
    g_option_context_set_description(ctx, "Logs go to stderr (held in memory while frozen). See "
                                     "stillpoint-agent(8).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    return g_option_context_parse(ctx, argc, argv, error);
}

static gboolean apply_options(SpConfig *config, const Options *o, GError **error)
{
    gboolean cli_transports = o->virtio || o->unix_sockets || o->vsock;

    if (cli_transports) {
        /* Transports named on the command line replace the configured ones. */
        g_strfreev(config->virtio_ports);
        g_strfreev(config->unix_sockets);
        g_clear_pointer(&config->vsock_ports, g_free);
        config->virtio_ports = g_strdupv(o->virtio);
        config->unix_sockets = g_strdupv(o->unix_sockets);
        config->n_vsock_ports = o->vsock ? g_strv_length(o->vsock) : 0;
        config->vsock_ports = g_new0(int, config->n_vsock_ports + 1);
        for (gsize i = 0; i < config->n_vsock_ports; i++) {
            guint64 port;
            if (!g_ascii_string_to_unsigned(o->vsock[i], 10, 1, G_MAXUINT32 - 1, &port, error)) {
                g_prefix_error(error, "--vsock: ");
                return FALSE;
            }
            config->vsock_ports[i] = (int)port;
        }
    }
    if (!config->virtio_ports && !config->unix_sockets && config->n_vsock_ports == 0) {
        /* qemu-ga's port, and our own when the VM has one (so qemu-ga can keep the other). */
        config->virtio_ports = g_new0(char *, 3);
        config->virtio_ports[0] = g_strdup(SP_VIRTIO_PORT_DEFAULT);
        if (g_file_test(SP_VIRTIO_PORT_OWN, G_FILE_TEST_EXISTS))
            config->virtio_ports[1] = g_strdup(SP_VIRTIO_PORT_OWN);
    }
    if (o->state_dir) {
        g_free(config->state_dir);
        config->state_dir = g_strdup(o->state_dir);
    }
    if (o->default_lease_ms) {
        if (o->default_lease_ms < SP_MIN_LEASE_MS || o->default_lease_ms > config->max_lease_ms) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--default-lease-ms must be between %d and %" G_GINT64_FORMAT,
                        SP_MIN_LEASE_MS, config->max_lease_ms);
            return FALSE;
        }
        config->default_lease_ms = o->default_lease_ms;
    }
    config->verbose |= o->verbose;
    return TRUE;
}

static gboolean start_transports(SpTransport *t, const SpConfig *config, GError **error)
{
    for (guint i = 0; config->virtio_ports && config->virtio_ports[i]; i++)
        if (!sp_transport_add_virtio(t, config->virtio_ports[i], error))
            return FALSE;
    for (guint i = 0; config->unix_sockets && config->unix_sockets[i]; i++)
        if (!sp_transport_add_unix(t, config->unix_sockets[i], error))
            return FALSE;
    for (gsize i = 0; i < config->n_vsock_ports; i++)
        if (!sp_transport_add_vsock(t, (unsigned)config->vsock_ports[i], error))
            return FALSE;
    return TRUE;
}

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (nothing when unset). */
static void sd_notify_send(const char *state)
{
    const char *sock = g_getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    socklen_t len;
    int fd;

    if (!sock || (sock[0] != '/' && sock[0] != '@') || strlen(sock) >= sizeof(addr.sun_path))
        return;
    strcpy(addr.sun_path, sock);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sock));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
        close(fd);
    }
}

static gboolean watchdog_cb(gpointer data)
{
    sd_notify_send("WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

/* Half systemd's watchdog interval; 0 when it is off. */
static guint64 watchdog_half_us;

/* While a hook runs the main loop does not turn; the hook has its own deadline. */
static void hook_keepalive_cb(void *data)
{
    static gint64 last_us;
    gint64 now = g_get_monotonic_time();

    if (watchdog_half_us && (guint64)(now - last_us) >= watchdog_half_us) {
        last_us = now;
        sd_notify_send("WATCHDOG=1");
    }
}

/* Readiness, for systemd (Type=notify) and for tests (--ready-fd): no one has to poll for it.
 * Under WatchdogSec=, a main loop that stops turning (a bug while frozen) gets the agent killed
 * and restarted, and the restarted agent thaws. */
static void notify_ready(int ready_fd)
{
    const char *usec = g_getenv("WATCHDOG_USEC");
    guint64 interval_us = usec ? g_ascii_strtoull(usec, NULL, 10) : 0;

    if (ready_fd > 0) {
        if (write(ready_fd, "READY\n", 6) != 6)
            g_warning("--ready-fd %d: %s", ready_fd, g_strerror(errno));
        close(ready_fd);
    }
    sd_notify_send("READY=1");
    if (interval_us >= 2000) {
        watchdog_half_us = interval_us / 2;
        g_timeout_add_full(G_PRIORITY_HIGH, (guint)MIN(interval_us / 2000, G_MAXUINT), watchdog_cb,
                           NULL, NULL);
    }
}

/* The shared command core over the FIFREEZE backend, with the configuration's bounds. */
static SpAgentCommands *agent_commands_new(const SpConfig *config, SpLinuxBackend *backend,
                                           gboolean writers)
{
    SpAgentCommandsConfig c = {
        .backend = sp_linux_backend_interface(backend),
        .platform = "linux",
        .backend_name = SP_LINUX_BACKEND_NAME,
        .version = SP_AGENT_VERSION,
        .default_lease_ms = config->default_lease_ms,
        .min_lease_ms = SP_MIN_LEASE_MS,
        .max_lease_ms = config->max_lease_ms,
        .thaw_on_hangup = config->thaw_on_hangup,
        .standard_thaw_on_hangup = config->standard_thaw_on_hangup,
        .hooks = sp_linux_backend_hook_count(backend) > 0,
        .writers = writers,
    };
    return sp_agent_commands_new(&c);
}

static int run(const SpConfig *config, int ready_fd)
{
    Agent a = {0};
    g_autoptr(SpTransport) transport = NULL;
    g_autoptr(GError) error = NULL;
    int n;

    a.backend = sp_linux_backend_new(config, NULL);
    n = sp_linux_backend_recover(a.backend);
    if (n > 0)
        g_warning("thawed %d filesystem(s) a previous agent left frozen", n);
    sp_linux_backend_set_keepalive(a.backend, hook_keepalive_cb, NULL);
    if (config->writers) {
        a.writers = sp_writers_new(config->writers_timeout_ms, config->writers_abort);
        sp_writers_set_keepalive(a.writers, hook_keepalive_cb, NULL);
        sp_linux_backend_set_writers(a.backend, a.writers);
    }
    a.commands = agent_commands_new(config, a.backend, a.writers != NULL);
    a.forward = sp_forward_new(config, sp_agent_commands_table(a.commands), forward_reply_cb, &a);
    if (a.forward)
        sp_agent_commands_list_forwarded(a.commands, sp_forward_commands(a.forward));
    a.loop = g_main_loop_new(NULL, FALSE);
    transport = a.transport = sp_transport_new(request_cb, hangup_cb, &a);
    if (!start_transports(transport, config, &error)) {
        g_critical("%s", error->message);
        sp_forward_free(a.forward);
        sp_agent_commands_free(a.commands);
        sp_linux_backend_free(a.backend);
        sp_writers_free(a.writers);
        g_main_loop_unref(a.loop);
        return EXIT_FAILURE;
    }
    g_unix_signal_add(SIGTERM, signal_cb, &a);
    g_unix_signal_add(SIGINT, signal_cb, &a);
    g_unix_signal_add(SIGHUP, signal_cb, &a);
    notify_ready(ready_fd);
    g_message("stillpoint-agent %s serving (default lease %" G_GINT64_FORMAT " ms, state in %s)",
              SP_AGENT_VERSION, config->default_lease_ms, config->state_dir);
    g_main_loop_run(a.loop);
    g_clear_pointer(&transport, sp_transport_free);
    sp_forward_free(a.forward);
    /* The backend thaws (and tells the writers) first. */
    sp_agent_commands_free(a.commands);
    sp_linux_backend_free(a.backend);
    sp_writers_free(a.writers);
    g_main_loop_unref(a.loop);
    g_message("stopped");
    return EXIT_SUCCESS;
}

static void options_clear(Options *o)
{
    g_free(o->config_path);
    g_strfreev(o->virtio);
    g_strfreev(o->unix_sockets);
    g_strfreev(o->vsock);
    g_free(o->state_dir);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Options, options_clear)

int main(int argc, char **argv)
{
    g_auto(Options) o = {0};
    g_autoptr(SpConfig) config = sp_config_new();
    g_autoptr(GError) error = NULL;

    signal(SIGPIPE, SIG_IGN);
    if (!parse_options(&argc, &argv, &o, &error)) {
        fprintf(stderr, "stillpoint-agent: %s (try --help)\n", error->message);
        return 2;
    }
    if (o.version) {
        printf("stillpoint-agent %s\n", SP_AGENT_VERSION);
        return 0;
    }
    if (!sp_config_load(config, o.config_path ? o.config_path : SP_CONFIG_PATH_DEFAULT,
                        o.config_path != NULL, &error) ||
        !apply_options(config, &o, &error)) {
        fprintf(stderr, "stillpoint-agent: %s\n", error->message);
        return 2;
    }
    sp_log_init(config->verbose);
    return run(config, o.ready_fd);
}
