/* libFuzzer target for the Linux agent's command dispatch: the real command table over the real
 * Linux freeze backend (planner, freezer, lease, state file), with the system calls faked — no
 * FIFREEZE ever reaches the host. Requests come framed as on the wire, the way the transport
 * feeds them; the first byte picks a fault for the fake filesystems.
 *
 * Input: byte 0 = fault (bits 0-2: kind, bits 3-6: which filesystem, bit 7: thaw-on-hangup off);
 * the rest is a request stream. Each 0xFF byte ends the current channel (its host hangs up) and
 * what follows comes from a new one, so hang-up thaws are reached too.
 *
 * Properties: every request gets a well-formed reply; stillpoint- errors carry a code; when the
 * agent says it is thawed, nothing it froze is still frozen; it never thaws a filesystem someone
 * else froze; every directory it opens is closed again. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backend-linux.h"
#include "stillpoint/agent-commands.h"
#include "config.h"
#include "freezer.h"
#include "mountinfo.h"
#include "stillpoint/protocol.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* A guest: root on a partition, data on a whole disk mounted twice, a loop device on it, a
 * read-only filesystem, overlayfs, vfat and the pseudo filesystems. Devices are not real nodes. */
static const char guest_mountinfo[] =
    "22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "26 28 0:24 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,mode=755\n"
    "28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/sp-fuzz/vda1 rw\n"
    "40 28 254:16 / /srv rw,relatime shared:20 - xfs /dev/sp-fuzz/vdb rw\n"
    "41 40 7:0 / /srv/vm rw,relatime shared:21 - ext4 /dev/sp-fuzz/loop0 rw\n"
    "43 28 254:32 / /opt ro,relatime shared:23 - ext4 /dev/sp-fuzz/vdc ro\n"
    "44 28 254:16 /shared /data rw,relatime shared:24 - xfs /dev/sp-fuzz/vdb rw\n"
    "45 28 0:47 / /var/lib/docker/merged rw,relatime - overlay overlay rw,lowerdir=/l\n"
    "46 28 254:2 / /boot/efi rw,relatime shared:30 - vfat /dev/sp-fuzz/vda2 rw\n"
    "47 28 254:48 / /var/lib/pg rw,noatime shared:31 - ext4 /dev/sp-fuzz/vdd rw\n";

enum { FAULT_NONE, FAULT_OPEN, FAULT_SYNCFS, FAULT_NOTSUP, FAULT_BUSY, FAULT_EIO, FAULT_STALE,
       FAULT_THAWED_BEHIND };

#define MAX_SB 32
#define FD_BASE 100000 /* never a real descriptor */

typedef struct {
    dev_t dev;
    bool frozen;
    bool by_other; /* frozen by another tool before the agent came */
} FakeSb;

static struct {
    char dir[64];
    char mountinfo[128];
    char state_dir[128];
    char sysfs[128];
    SpMountTable *table;
    FakeSb sb[MAX_SB];
    size_t n_sb;
    unsigned fault, fault_sb;
    int open_fds;
    bool verbose; /* SP_FUZZ_VERBOSE=1: print the replies (to read what an input does) */
    bool input_says_null;
} fake;

static FakeSb *sb_of(dev_t dev)
{
    for (size_t i = 0; i < fake.n_sb; i++)
        if (fake.sb[i].dev == dev)
            return &fake.sb[i];
    return NULL;
}

static bool faulty(dev_t dev, unsigned kind)
{
    return fake.fault == kind && sb_of(dev) == &fake.sb[fake.fault_sb];
}

static const SpMount *mount_of_fd(int fd)
{
    CHECK(fd >= FD_BASE && (size_t)(fd - FD_BASE) < fake.table->n_mounts);
    return &fake.table->mounts[fd - FD_BASE];
}

static int fake_open_dir(const char *path, void *userdata)
{
    const SpMount *m = sp_mount_table_find(fake.table, path);

    if (!m)
        return -ENOENT;
    if (faulty(sp_mount_dev(m), FAULT_OPEN))
        return -EACCES;
    fake.open_fds++;
    return FD_BASE + (int)(m - fake.table->mounts);
}

static int fake_fstat_dev(int fd, dev_t *ret, void *userdata)
{
    dev_t dev = sp_mount_dev(mount_of_fd(fd));

    /* Remounted between planning and opening: another filesystem is there now. */
    *ret = faulty(dev, FAULT_STALE) ? makedev(250, 250) : dev;
    return 0;
}

static int fake_syncfs(int fd, void *userdata)
{
    return faulty(sp_mount_dev(mount_of_fd(fd)), FAULT_SYNCFS) ? -EIO : 0;
}

static int fake_freeze(int fd, void *userdata)
{
    dev_t dev = sp_mount_dev(mount_of_fd(fd));
    FakeSb *sb = sb_of(dev);

    CHECK(sb != NULL);
    if (sb->frozen)
        return -EBUSY;
    if (faulty(dev, FAULT_NOTSUP))
        return -EOPNOTSUPP;
    if (faulty(dev, FAULT_EIO))
        return -EIO;
    sb->frozen = true;
    return 0;
}

static int fake_thaw(int fd, void *userdata)
{
    dev_t dev = sp_mount_dev(mount_of_fd(fd));
    FakeSb *sb = sb_of(dev);

    CHECK(sb != NULL);
    CHECK(!sb->by_other); /* never thaw another tool's freeze behind its back */
    if (faulty(dev, FAULT_THAWED_BEHIND))
        sb->frozen = false; /* someone thawed it during the window */
    if (!sb->frozen)
        return -EINVAL;
    sb->frozen = false;
    return 0;
}

static void fake_close(int fd, void *userdata)
{
    (void)mount_of_fd(fd);
    fake.open_fds--;
}

static const SpFsOps fake_ops = {fake_open_dir, fake_fstat_dev, fake_syncfs,
                                 fake_freeze, fake_thaw, fake_close};

static void write_file(const char *path, const char *content)
{
    g_autofree char *dir = g_path_get_dirname(path);

    CHECK(g_mkdir_with_parents(dir, 0755) == 0);
    CHECK(g_file_set_contents(path, content, -1, NULL));
}

static void link_to(const char *rel, const char *target)
{
    g_autofree char *path = g_build_filename(fake.sysfs, rel, NULL);
    g_autofree char *dir = g_path_get_dirname(path);

    CHECK(g_mkdir_with_parents(dir, 0755) == 0);
    CHECK(symlink(target, path) == 0);
}

/* A small sysfs: vda (serial QM-ROOT) with partitions, vdb (QM-DATA), loop0 on a file. */
static void make_sysfs(void)
{
    static const char *const files[][2] = {
        {"devices/pci0000:00/0000:00:05.0/virtio2/block/vda/serial", "QM-ROOT\n"},
        {"devices/pci0000:00/0000:00:05.0/virtio2/block/vda/vda1/partition", "1\n"},
        {"devices/pci0000:00/0000:00:05.0/virtio2/block/vda/vda2/partition", "2\n"},
        {"devices/pci0000:00/0000:00:06.0/virtio3/block/vdb/serial", "QM-DATA\n"},
        {"devices/virtual/block/loop0/loop/backing_file", "/srv/vm/disk.img\n"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(fake.sysfs, files[i][0], NULL);
        write_file(path, files[i][1]);
    }
    link_to("dev/block/254:1", "../../devices/pci0000:00/0000:00:05.0/virtio2/block/vda/vda1");
    link_to("dev/block/254:2", "../../devices/pci0000:00/0000:00:05.0/virtio2/block/vda/vda2");
    link_to("dev/block/254:16", "../../devices/pci0000:00/0000:00:06.0/virtio3/block/vdb");
    link_to("dev/block/7:0", "../../devices/virtual/block/loop0");
}

static void quiet_log_cb(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer userdata)
{
}

static void remove_tree(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", fake.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", fake.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_strlcpy(fake.dir, "/tmp/sp-fuzz-agent-XXXXXX", sizeof(fake.dir));
    CHECK(mkdtemp(fake.dir) != NULL);
    atexit(remove_tree);
    snprintf(fake.mountinfo, sizeof(fake.mountinfo), "%s/mountinfo", fake.dir);
    snprintf(fake.state_dir, sizeof(fake.state_dir), "%s/state", fake.dir);
    snprintf(fake.sysfs, sizeof(fake.sysfs), "%s/sys", fake.dir);
    CHECK(g_mkdir_with_parents(fake.state_dir, 0700) == 0);
    write_file(fake.mountinfo, guest_mountinfo);
    make_sysfs();
    CHECK(sp_mountinfo_parse(guest_mountinfo, strlen(guest_mountinfo), &fake.table) == 0);
    for (size_t i = 0; i < fake.table->n_mounts; i++) {
        dev_t dev = sp_mount_dev(&fake.table->mounts[i]);
        if (!sb_of(dev) && fake.n_sb < MAX_SB)
            fake.sb[fake.n_sb++].dev = dev;
    }
    /* The agent logs through GLib; thousands of runs a second need no log lines. */
    fake.verbose = g_strcmp0(g_getenv("SP_FUZZ_VERBOSE"), "1") == 0;
    if (!fake.verbose)
        g_log_set_default_handler(quiet_log_cb, NULL);
    return 0;
}

typedef struct {
    SpAgentCommands *commands;
    SpLinuxBackend *backend;
    unsigned channel;
} Run;

/* No filesystem is left frozen by the agent while it says it is thawed. */
static void check_frozen_state(SpLinuxBackend *backend)
{
    if (sp_linux_backend_is_frozen(backend))
        return;
    for (size_t i = 0; i < fake.n_sb; i++)
        CHECK(!fake.sb[i].frozen || fake.sb[i].by_other);
}

static void check_reply(const SpJson *message, SpJson *reply, unsigned flags)
{
    const SpJson *ret = NULL;
    const char *klass = NULL, *desc = NULL, *code = NULL;
    SpRequest req;
    size_t len = 0;
    char *text;
    SpJson *back = NULL;

    CHECK(reply != NULL);
    CHECK(sp_reply_parse(reply, &ret, &klass, &desc, &code) == SP_OK);
    CHECK((ret == NULL) != (klass == NULL));
    CHECK(ret || (desc && *desc));
    /* No NULL passed for a %s ("(null)" with glibc), unless the request itself said it. */
    CHECK(ret || fake.input_says_null || !strstr(desc, "(null)"));
    if (klass && message && sp_request_parse(message, &req, NULL) == SP_OK)
        CHECK((code != NULL) == (strncmp(req.execute, SP_EXTENSION_PREFIX,
                                          strlen(SP_EXTENSION_PREFIX)) == 0));
    /* What goes on the wire parses back. */
    text = sp_json_serialize(reply, &len);
    CHECK(text != NULL);
    CHECK(sp_json_parse(text, len, NULL, &back, NULL) == SP_OK);
    if (fake.verbose)
        printf("%s%s\n", flags & SP_CMD_DELIMITED_REPLY ? "\\xff" : "", text);
    sp_json_free(back);
    free(text);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    Run *run = userdata;
    SpJsonError jerr = {0};
    SpJson *message = NULL, *reply;
    unsigned flags = 0;

    switch (frame->kind) {
    case SP_FRAME_RESYNC:
        sp_linux_backend_channel_closed(run->backend, run->channel);
        run->channel++;
        check_frozen_state(run->backend);
        return;
    case SP_FRAME_ERROR:
        reply = sp_command_reply_for_bad_input(frame->status, NULL);
        check_reply(NULL, reply, 0);
        sp_json_free(reply);
        return;
    case SP_FRAME_OBJECT:
        break;
    }
    if (sp_json_parse(frame->data, frame->len, NULL, &message, &jerr) < 0) {
        reply = sp_command_reply_for_bad_input(jerr.status, jerr.message);
    } else {
        reply = sp_agent_commands_dispatch(run->commands, run->channel, message, &flags);
    }
    check_reply(message, reply, flags);
    sp_json_free(reply);
    sp_json_free(message);
    check_frozen_state(run->backend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(SpConfig) config = sp_config_new();
    Run run = {.channel = 1};
    SpFramer *framer;

    if (size < 1)
        return 0;
    fake.fault = data[0] & 7;
    fake.fault_sb = ((data[0] >> 3) & 15) % fake.n_sb;
    for (size_t i = 0; i < fake.n_sb; i++)
        fake.sb[i].frozen = fake.sb[i].by_other = false;
    if (fake.fault == FAULT_BUSY)
        fake.sb[fake.fault_sb].frozen = fake.sb[fake.fault_sb].by_other = true;
    fake.open_fds = 0;
    fake.input_says_null = memmem(data, size, "(null)", 6) != NULL;

    /* No hook scripts of this host, ever; state in the scratch directory. */
    g_clear_pointer(&config->hook_path, g_free);
    g_clear_pointer(&config->hook_dir, g_free);
    g_free(config->state_dir);
    config->state_dir = g_strdup(fake.state_dir);
    config->thaw_on_hangup = !(data[0] & 0x80);

    SpLinuxBackendOptions opts = {.mountinfo_path = fake.mountinfo, .sysfs_root = fake.sysfs,
                                  .fs_ops = &fake_ops};
    run.backend = sp_linux_backend_new(config, &opts);
    run.commands = sp_agent_commands_new(&(SpAgentCommandsConfig){
        .backend = sp_linux_backend_interface(run.backend), .platform = "linux",
        .backend_name = SP_LINUX_BACKEND_NAME, .version = "fuzz",
        .default_lease_ms = config->default_lease_ms, .min_lease_ms = SP_MIN_LEASE_MS,
        .max_lease_ms = config->max_lease_ms, .thaw_on_hangup = config->thaw_on_hangup});
    CHECK(run.commands != NULL);

    framer = sp_framer_new(0);
    CHECK(framer != NULL);
    CHECK(sp_framer_feed(framer, data + 1, size - 1, frame_cb, &run) == SP_OK);
    sp_framer_free(framer);

    /* The agent stops: whatever it holds is thawed, and only that. */
    sp_agent_commands_free(run.commands);
    sp_linux_backend_free(run.backend);
    for (size_t i = 0; i < fake.n_sb; i++)
        CHECK(fake.sb[i].frozen == fake.sb[i].by_other);
    CHECK(fake.open_fds == 0);
    return 0;
}
