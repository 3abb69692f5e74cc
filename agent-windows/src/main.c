/* stillpoint-agent.exe: the Windows guest agent. Options, the backend choice, and the run
 * function shared by the console and the service. */
#include <winsock2.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "session.h"
#include "log.h"
#include "service.h"
#include "state-dir.h"
#include "test-hooks.h"
#include "transport.h"
#include "vss-backend.h"
#include "vss-freezer.h"
#include "wide.h"

typedef struct {
    bool console, service, install, uninstall, verbose;
    const char *tcp;
    wchar_t *device;
    SpVssBackupType backup_type;
    DWORD lease_ms;
    bool standard_thaw_on_hangup;
} Options;

static Options options;
/* The running freezer, for stop requests that arrive on another thread (console, SCM). */
static SpVssFreezer *running_freezer;
static SRWLOCK running_lock = SRWLOCK_INIT; /* the freezer is not freed under a stop request */

/* A stop abandons a freeze still in progress (writers can take a minute); one already held is
 * thawed by the session loop as it ends. */
static void on_stop(void)
{
    AcquireSRWLockShared(&running_lock);
    if (running_freezer)
        sp_vss_freezer_cancel(running_freezer, SP_VSS_END_STOPPED);
    ReleaseSRWLockShared(&running_lock);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: stillpoint-agent.exe [OPTIONS]\n"
            "The stillpoint guest agent for Windows: VSS-consistent freezes for the host, over\n"
            "the qemu guest agent protocol.\n\n"
            "  --console            run in this console (the default without --service)\n"
            "  --service            run under the service control manager\n"
            "  --install            install and start the service, register the VSS provider\n"
            "  --uninstall          stop and remove the service, unregister the provider\n"
            "  --device PATH        virtio-serial port (default %ls)\n"
            "  --tcp 127.0.0.1:PORT serve loopback TCP instead (PORT 0 picks one and prints it)\n"
            "  --backup-type TYPE   copy (default: leaves application backup chains alone) or full\n"
            "  --lease-ms N         lease of the standard guest-fsfreeze-* commands (default %u;\n"
            "                       VSS holds writes for at most %u ms whatever the lease)\n"
            "  --standard-thaw-on-hangup\n"
            "                       a hang-up also thaws a guest-fsfreeze-freeze(-list) (default:\n"
            "                       only a stillpoint-freeze; the lease and VSS bound the other)\n"
            "  --verbose            debug logging\n"
            "  --help, --version\n"
            "%s",
            SP_VIRTIO_SERIAL_PATH, SP_AGENT_DEFAULT_LEASE_MS, SP_VSS_FLUSH_HOLD_LIMIT_MS,
            sp_test_hooks_usage());
}

/* Needs an argument: returns it, or NULL after complaining. */
static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "stillpoint-agent: %s needs a value (see --help)\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* The options that only switch something on: the switch of o that a names, or NULL. */
static bool *flag_option(Options *o, const char *a)
{
    static const struct {
        const char *name;
        size_t offset;
    } flags[] = {
        { "--console", offsetof(Options, console) },
        { "--service", offsetof(Options, service) },
        { "--install", offsetof(Options, install) },
        { "--uninstall", offsetof(Options, uninstall) },
        { "--standard-thaw-on-hangup", offsetof(Options, standard_thaw_on_hangup) },
        { "--verbose", offsetof(Options, verbose) },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(a, flags[i].name) == 0)
            return (bool *)((char *)o + flags[i].offset);
    return NULL;
}

/* 0 = go on, 1 = exit 0 (help/version), -1 = exit 2 (bad usage). */
static int parse_options(int argc, char **argv, Options *o)
{
    o->backup_type = SP_VSS_BT_COPY;
    o->lease_ms = SP_AGENT_DEFAULT_LEASE_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool *flag = flag_option(o, a);
        if (flag) {
            *flag = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("stillpoint-agent %s (protocol %s)\n", SP_AGENT_VERSION, SP_PROTOCOL_VERSION);
            return 1;
        } else if (sp_test_hooks_option(a)) {
            continue;
        } else if (strcmp(a, "--tcp") == 0) {
            if (!(o->tcp = option_value(argc, argv, &i)))
                return -1;
        } else if (strcmp(a, "--device") == 0) {
            if (!(v = option_value(argc, argv, &i)))
                return -1;
            o->device = sp_wide_from_utf8(v);
        } else if (strcmp(a, "--backup-type") == 0) {
            if (!(v = option_value(argc, argv, &i)))
                return -1;
            if (strcmp(v, "copy") == 0) {
                o->backup_type = SP_VSS_BT_COPY;
            } else if (strcmp(v, "full") == 0) {
                o->backup_type = SP_VSS_BT_FULL;
            } else {
                fprintf(stderr, "stillpoint-agent: --backup-type is copy or full, not '%s'\n", v);
                return -1;
            }
        } else if (strcmp(a, "--lease-ms") == 0) {
            if (!(v = option_value(argc, argv, &i)))
                return -1;
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *end || n < SP_AGENT_MIN_LEASE_MS || n > SP_AGENT_MAX_LEASE_MS) {
                fprintf(stderr, "stillpoint-agent: --lease-ms must be %u..%u, not '%s'\n",
                        SP_AGENT_MIN_LEASE_MS, SP_AGENT_MAX_LEASE_MS, v);
                return -1;
            }
            o->lease_ms = (DWORD)n;
        } else {
            fprintf(stderr, "stillpoint-agent: unknown option '%s' (see --help)\n", a);
            return -1;
        }
    }
    int modes = o->console + o->service + o->install + o->uninstall;
    if (modes > 1) {
        fprintf(stderr, "stillpoint-agent: --console, --service, --install and --uninstall "
                        "exclude each other\n");
        return -1;
    }
    sp_test_hooks_environment();
    return 0;
}

static SpVssBackend *make_backend(void)
{
    SpVssBackend *b;
    if (!sp_test_hooks_backend(&b) || b)
        return b; /* a test build's fake, or its bad spec */
    HRESULT hr;
    b = sp_vss_backend_real_new(&hr);
    if (!b)
        sp_log(SP_LOG_ERROR, "cannot start the VSS requester: error 0x%08lx%s", (unsigned long)hr,
               hr == HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)
                   ? " (another stillpoint agent is running)"
                   : hr == HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED)
                         ? " (run as SYSTEM or an administrator)"
                         : "");
    else
        sp_log(SP_LOG_INFO, "VSS backend: vss (real Volume Shadow Copy Service)");
    return b;
}

static SpPeerTransport *make_transport(void)
{
    if (options.tcp) {
        char err[256];
        unsigned port = 0;
        SpPeerTransport *t = sp_transport_tcp_new(options.tcp, &port, err, sizeof(err));
        if (!t) {
            sp_log(SP_LOG_ERROR, "%s", err);
            return NULL;
        }
        /* The test harness waits for this line (and reads the port from it). */
        printf("stillpoint-agent: listening on tcp port %u\n", port);
        fflush(stdout);
        return t;
    }
    return sp_transport_serial_new(options.device ? options.device : SP_VIRTIO_SERIAL_PATH);
}

static void freezer_state_cb(SpVssState state, void *userdata)
{
    /* Nothing is written to disk from "freezing" until thawed. */
    sp_log_hold(state != SP_VSS_STATE_THAWED);
}

/* The shared command core over the VSS backend, with the options' bounds. */
static SpAgentCommands *agent_commands_new(SpWindowsBackend *backend, const char *backend_name)
{
    SpAgentCommandsConfig c = {
        .backend = sp_windows_backend_interface(backend),
        .platform = "windows",
        .backend_name = backend_name,
        .version = SP_AGENT_VERSION,
        .default_lease_ms = options.lease_ms,
        .min_lease_ms = SP_AGENT_MIN_LEASE_MS,
        .max_lease_ms = SP_AGENT_MAX_LEASE_MS,
        .hold_limit_ms = SP_VSS_FLUSH_HOLD_LIMIT_MS,
        .thaw_on_hangup = true,
        .standard_thaw_on_hangup = options.standard_thaw_on_hangup,
        .hooks = false,
        .writers = true, /* VSS writers */
    };
    return sp_agent_commands_new(&c);
}

/* Serves peers on the freezer until stop; 0, or 1 when the transport failed for good. */
static int serve(SpVssFreezer *freezer, const char *backend_name, SpPeerTransport *transport,
                 HANDLE stop)
{
    SpWindowsBackend *backend = sp_windows_backend_new(freezer, options.standard_thaw_on_hangup);
    SpAgentCommands *commands = backend ? agent_commands_new(backend, backend_name) : NULL;
    int r = 1;

    if (commands) {
        SpSession session = {.commands = commands, .backend = backend, .transport = transport,
                             .stop = stop};
        sp_log(SP_LOG_INFO, "stillpoint-agent %s serving on %s", SP_AGENT_VERSION,
               transport->ops->name);
        AcquireSRWLockExclusive(&running_lock);
        running_freezer = freezer;
        ReleaseSRWLockExclusive(&running_lock);
        r = sp_session_serve(&session) < 0 ? 1 : 0;
        AcquireSRWLockExclusive(&running_lock);
        running_freezer = NULL;
        ReleaseSRWLockExclusive(&running_lock);
    } else {
        sp_log(SP_LOG_ERROR, "out of memory");
    }
    sp_agent_commands_free(commands);
    sp_windows_backend_free(backend);
    return r;
}

static int run(HANDLE stop)
{
    int r = 1;
    SpVssBackend *backend = make_backend();
    SpPeerTransport *transport = backend ? make_transport() : NULL;
    SpVssFreezerConfig fconfig = { .backend = backend, .backup_type = options.backup_type };
    SpVssFreezer *freezer = transport ? sp_vss_freezer_new(&fconfig) : NULL;
    if (freezer) {
        sp_vss_freezer_set_state_cb(freezer, freezer_state_cb, NULL);
        r = serve(freezer, backend->ops->name, transport, stop);
    }
    sp_vss_freezer_free(freezer); /* thaws anything still frozen */
    if (transport)
        transport->ops->free(transport);
    if (backend)
        backend->ops->free(backend);
    sp_log(SP_LOG_INFO, "stillpoint-agent stopped");
    return r;
}

static HANDLE console_stop;

static BOOL WINAPI console_ctrl_cb(DWORD type)
{
    on_stop();
    SetEvent(console_stop);
    return TRUE;
}

int main(int argc, char **argv)
{
    int r = parse_options(argc, argv, &options);
    if (r)
        return r > 0 ? 0 : 2;
    if (options.install)
        return sp_service_install();
    if (options.uninstall)
        return sp_service_uninstall();
    if (options.service) {
        char err[1024];
        HANDLE file = sp_state_dir_open_log(err, sizeof(err));
        sp_log_open(file, options.verbose);
        if (file == INVALID_HANDLE_VALUE) /* serve all the same, and say why there is no log */
            sp_log_system(err);
        r = sp_service_dispatch(run, on_stop);
    } else {
        sp_log_open(INVALID_HANDLE_VALUE, options.verbose);
        console_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
        SetConsoleCtrlHandler(console_ctrl_cb, TRUE);
        r = run(console_stop);
    }
    sp_log_close();
    return r;
}
