/* sp-fake-agent: a guest agent stand-in for the host's sequencing tests without a guest. It speaks
 * the real protocol (libstillpoint-protocol's framer and command table), freezes nothing, and
 * appends every command it runs to a log so tests can check the order (freeze ... thaw).
 *   sp-fake-agent --socket PATH --log FILE [--qga] [--freeze-delay-ms N] [--hang-on-freeze]
 *                 [--fail-freeze] [--max-lease-ms N] [--backend NAME] [--hostile]
 * --fail-freeze: every freeze fails (an application writer refused), nothing stays frozen.
 * --backend: the freeze backend its capabilities name (default "fifreeze", as the real Linux
 * agent: the host's sequencing tests expect application-consistent checkpoints from it).
 * --hostile: its error texts and thaw reason carry terminal escape sequences (ESC, CSI, OSC,
 * CR, C1), as a hostile guest's would.
 * guest-get-fsinfo lists no filesystem: every disk holds none, and the verdict rests on the
 * backend and the thaw.
 * --max-lease-ms: the longest lease it grants (default 600000), advertised in its capabilities;
 * a freeze's reply says the lease granted, as the real agent's does.
 * --qga: answer like a stock qemu-ga (no stillpoint- commands). A stillpoint fake thaws when the
 * host hangs up, as the real agent does; a qga fake stays frozen, as qemu-ga does. */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "stillpoint/protocol.h"

static struct {
    FILE *log;
    bool qga;
    int freeze_delay_ms;
    bool fail_freeze;
    long long max_lease_ms;
    const char *backend;
    bool hostile;
    bool frozen;
    int64_t epoch;
    struct timespec frozen_at;
} fake;

/* Clears the screen, retitles the terminal, returns the cursor, a one-byte C1 CSI. */
#define HOSTILE_TEXT "fake: \x1b[2J\x1b]0;owned\x07\rwriter \xc2\x9b" "31mrefused"

static void log_line(const char *what)
{
    fprintf(fake.log, "%s\n", what);
    fflush(fake.log);
}

static SpJson *cmd_sync(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_new_int(sp_json_object_get_int(args, "id", 0));
}

static SpJson *cmd_ping(void *ctx, const SpJson *args, SpCommandError *err)
{
    return NULL;
}

static SpJson *cmd_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_new_string(fake.frozen ? "frozen" : "thawed");
}

static void do_freeze(void)
{
    if (fake.freeze_delay_ms > 0)
        usleep((useconds_t)fake.freeze_delay_ms * 1000);
    fake.frozen = true;
    fake.epoch++;
    clock_gettime(CLOCK_MONOTONIC, &fake.frozen_at);
    log_line("freeze");
}

static void do_thaw(const char *how)
{
    if (fake.frozen)
        log_line(how);
    fake.frozen = false;
}

static bool freeze_refused(SpCommandError *err)
{
    if (!fake.fail_freeze)
        return false;
    if (fake.freeze_delay_ms > 0)
        usleep((useconds_t)fake.freeze_delay_ms * 1000);
    log_line("freeze-failed");
    sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL, "%s",
                         fake.hostile ? HOSTILE_TEXT : "fake: a writer refused to freeze");
    return true;
}

static SpJson *cmd_fsfreeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    if (freeze_refused(err))
        return NULL;
    do_freeze();
    return sp_json_new_int(1);
}

static SpJson *cmd_fsthaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    bool was = fake.frozen;
    do_thaw("thaw");
    return sp_json_new_int(was ? 1 : 0);
}

static SpJson *cmd_fsinfo(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_new_array();
}

static SpJson *cmd_caps(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpJson *o = sp_json_new_object();
    SpJson *f = sp_json_new_object();
    sp_json_object_set_string(o, "agent", "sp-fake-agent");
    sp_json_object_set_int(f, "min-lease-ms", 1000);
    sp_json_object_set_int(f, "max-lease-ms", fake.max_lease_ms);
    sp_json_object_set_string(f, "backend", fake.backend);
    sp_json_object_set(o, "freeze", f);
    return o;
}

static SpJson *cmd_sp_freeze(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpJson *o = sp_json_new_object();
    SpJson *frozen = sp_json_new_array();
    char line[64];
    long long lease = sp_json_object_get_int(args, "lease-ms", 0);
    if (freeze_refused(err)) {
        sp_json_free(o);
        sp_json_free(frozen);
        return NULL;
    }
    do_freeze();
    snprintf(line, sizeof(line), "lease-ms %lld", lease);
    log_line(line);
    sp_json_object_set_int(o, "lease-ms", lease > 0 && lease < fake.max_lease_ms
                                              ? lease : fake.max_lease_ms);
    SpJson *entry = sp_json_new_object();
    sp_json_object_set_string(entry, "mountpoint", "/fake");
    sp_json_object_set_string(entry, "type", "ext4");
    sp_json_array_append(frozen, entry);
    sp_json_object_set_int(o, "epoch", fake.epoch);
    sp_json_object_set(o, "frozen", frozen);
    sp_json_object_set(o, "skipped", sp_json_new_array());
    return o;
}

static SpJson *cmd_sp_thaw(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpJson *o = sp_json_new_object();
    struct timespec now;
    bool held = fake.frozen && sp_json_object_get_int(args, "epoch", 0) == fake.epoch;
    clock_gettime(CLOCK_MONOTONIC, &now);
    do_thaw("thaw");
    sp_json_object_set_int(o, "epoch", fake.epoch);
    sp_json_object_set_bool(o, "consistent", held);
    sp_json_object_set_string(o, "reason", fake.hostile ? HOSTILE_TEXT : "requested");
    sp_json_object_set_int(o, "held-ms", (now.tv_sec - fake.frozen_at.tv_sec) * 1000 +
                                             (now.tv_nsec - fake.frozen_at.tv_nsec) / 1000000);
    return o;
}

enum { OK_FROZEN = SP_CMD_ALLOWED_WHILE_FROZEN };
static const SpArgSpec sync_args[] = {{"id", SP_ARG_INT, false}, {NULL, 0, false}};
static const SpArgSpec freeze_args[] = {{"lease-ms", SP_ARG_INT, true},
                                        {"mountpoints", SP_ARG_STRING_LIST, true},
                                        {"disks", SP_ARG_STRING_LIST, true},
                                        {NULL, 0, false}};
static const SpArgSpec thaw_args[] = {{"epoch", SP_ARG_INT, true}, {NULL, 0, false}};

static const SpCommand qga_commands[] = {
    {"guest-sync-delimited", cmd_sync, sync_args, OK_FROZEN | SP_CMD_DELIMITED_REPLY},
    {"guest-sync", cmd_sync, sync_args, OK_FROZEN},
    {"guest-ping", cmd_ping, NULL, OK_FROZEN},
    {"guest-fsfreeze-status", cmd_status, NULL, OK_FROZEN},
    {"guest-fsfreeze-freeze", cmd_fsfreeze, NULL, 0},
    {"guest-fsfreeze-thaw", cmd_fsthaw, NULL, OK_FROZEN},
    {"guest-get-fsinfo", cmd_fsinfo, NULL, 0},
    {NULL, NULL, NULL, 0},
};

static const SpCommand sp_commands[] = {
    {"guest-sync-delimited", cmd_sync, sync_args, OK_FROZEN | SP_CMD_DELIMITED_REPLY},
    {"guest-sync", cmd_sync, sync_args, OK_FROZEN},
    {"guest-ping", cmd_ping, NULL, OK_FROZEN},
    {"guest-fsfreeze-status", cmd_status, NULL, OK_FROZEN},
    {"guest-fsfreeze-freeze", cmd_fsfreeze, NULL, 0},
    {"guest-fsfreeze-thaw", cmd_fsthaw, NULL, OK_FROZEN},
    {"guest-get-fsinfo", cmd_fsinfo, NULL, 0},
    {"stillpoint-capabilities", cmd_caps, NULL, OK_FROZEN},
    {"stillpoint-freeze", cmd_sp_freeze, freeze_args, OK_FROZEN},
    {"stillpoint-thaw", cmd_sp_thaw, thaw_args, OK_FROZEN},
    {NULL, NULL, NULL, 0},
};

typedef struct {
    int fd;
    const SpCommandTable *table;
} Conn;

static void frame_cb(const SpFrame *frame, void *userdata)
{
    Conn *c = userdata;
    SpJson *msg = NULL;
    SpJson *reply;
    unsigned flags = 0;
    char *text;
    size_t len = 0;

    if (frame->kind != SP_FRAME_OBJECT)
        return;
    if (sp_json_parse(frame->data, frame->len, NULL, &msg, NULL) != SP_OK)
        return;
    fprintf(fake.log, "cmd %s\n", sp_json_object_get_string(msg, "execute"));
    fflush(fake.log);
    reply = sp_command_dispatch(c->table, NULL, msg, fake.frozen, &flags);
    sp_json_free(msg);
    text = sp_json_serialize(reply, &len);
    sp_json_free(reply);
    if (flags & SP_CMD_DELIMITED_REPLY) {
        if (write(c->fd, "\xff", 1) != 1)
            goto out;
    }
    if (write(c->fd, text, len) < 0 || write(c->fd, "\n", 1) < 0)
        goto out;
out:
    free(text);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"log", required_argument, NULL, 'l'},
                                         {"qga", no_argument, NULL, 'q'},
                                         {"freeze-delay-ms", required_argument, NULL, 'd'},
                                         {"fail-freeze", no_argument, NULL, 'f'},
                                         {"max-lease-ms", required_argument, NULL, 'm'},
                                         {"backend", required_argument, NULL, 'b'},
                                         {"hostile", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *log_path = NULL;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    SpCommandTable qga = {qga_commands}, sp = {sp_commands};
    int c, lfd;

    fake.max_lease_ms = 600000;
    fake.backend = "fifreeze";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'l': log_path = optarg; break;
        case 'q': fake.qga = true; break;
        case 'd': fake.freeze_delay_ms = atoi(optarg); break;
        case 'f': fake.fail_freeze = true; break;
        case 'm': fake.max_lease_ms = atoll(optarg); break;
        case 'b': fake.backend = optarg; break;
        case 'h': fake.hostile = true; break;
        default: return 2;
        }
    }
    if (path == NULL || log_path == NULL || strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "usage: sp-fake-agent --socket PATH --log FILE [--qga] "
                        "[--freeze-delay-ms N]\n");
        return 2;
    }
    /* As the real agent: a host that hung up before its reply is not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    fake.log = fopen(log_path, "a");
    if (fake.log == NULL)
        return 1;
    strcpy(addr.sun_path, path);
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 4) != 0) {
        perror("sp-fake-agent: listen");
        return 1;
    }
    for (;;) {
        Conn conn = {.table = fake.qga ? &qga : &sp};
        SpFramer *framer = sp_framer_new(0);
        char buf[4096];
        ssize_t n;
        conn.fd = accept(lfd, NULL, NULL);
        if (conn.fd < 0)
            continue;
        while ((n = read(conn.fd, buf, sizeof(buf))) > 0)
            sp_framer_feed(framer, buf, (size_t)n, frame_cb, &conn);
        close(conn.fd);
        sp_framer_free(framer);
        /* The real agent thaws when the host hangs up; qemu-ga does not. */
        if (!fake.qga)
            do_thaw("hangup-thaw");
    }
}
