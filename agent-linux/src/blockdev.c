/* blockdev: sysfs walks from a dev_t down to the disks the hypervisor provides. */
#define _GNU_SOURCE
#include "blockdev.h"

#include <blkid.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* dm over md over partitions: a real stack is never this deep; a loop in sysfs would be. */
#define SP_BLOCKDEV_MAX_DEPTH 8

void sp_blockdev_disk_free(SpBlockdevDisk *d)
{
    if (!d)
        return;
    g_free(d->name);
    g_free(d->dev);
    g_free(d->serial);
    g_free(d);
}

static char *read_attr(const char *dir, const char *attr)
{
    g_autofree char *p = g_build_filename(dir, attr, NULL);
    char *s = NULL;

    if (!g_file_get_contents(p, &s, NULL, NULL))
        return NULL;
    g_strstrip(s);
    if (*s == '\0') {
        g_free(s);
        return NULL;
    }
    return s;
}

/* /sys/dev/block/M:m resolved to its /sys/devices/... directory. */
static char *dev_dir(const char *sysfs_root, dev_t dev)
{
    g_autofree char *link = g_strdup_printf("%s/dev/block/%u:%u", sysfs_root, major(dev), minor(dev));
    char *real = realpath(link, NULL);
    char *r = real ? g_strdup(real) : NULL;
    free(real);
    return r;
}

char *sp_blockdev_name(const char *sysfs_root, dev_t dev)
{
    g_autofree char *dir = dev_dir(sysfs_root, dev);
    return dir ? g_path_get_basename(dir) : NULL;
}

/* The last component of path that reads as four numbers: a PCI function ("0000:00:05.0", hex)
 * or a SCSI address ("0:0:1:0"). False when there is none. */
static bool last_address(const char *path, bool pci, unsigned v[4])
{
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    bool found = false;

    for (guint i = 0; parts[i]; i++) {
        unsigned a[4];
        char tail;
        int n = pci ? sscanf(parts[i], "%4x:%2x:%2x.%1x%c", &a[0], &a[1], &a[2], &a[3], &tail)
                    : sscanf(parts[i], "%u:%u:%u:%u%c", &a[0], &a[1], &a[2], &a[3], &tail);
        if (n == 4) {
            memcpy(v, a, sizeof(a));
            found = true;
        }
    }
    return found;
}

/* The disk's controller (the last PCI function on the path) and its SCSI address. */
static void parse_addresses(SpBlockdevDisk *d, const char *path)
{
    unsigned pci[4], scsi[4];

    if (last_address(path, true, pci)) {
        d->pci_domain = (int)pci[0];
        d->pci_bus = (int)pci[1];
        d->pci_slot = (int)pci[2];
        d->pci_function = (int)pci[3];
    }
    if (last_address(path, false, scsi)) {
        d->bus = (int)scsi[1];
        d->target = (int)scsi[2];
        d->unit = (int)scsi[3];
    }
}

static const char *bus_type_of(const char *name, const char *path)
{
    if (g_str_has_prefix(name, "vd"))
        return "virtio";
    if (g_str_has_prefix(name, "nvme"))
        return "nvme";
    if (strstr(path, "/ata"))
        return "sata";
    if (strstr(path, "/virtio") && strstr(path, "/host"))
        return "scsi"; /* virtio-scsi */
    if (strstr(path, "/host") && strstr(path, "/target"))
        return "scsi";
    if (strstr(path, "/usb"))
        return "usb";
    return "unknown";
}

static char *disk_serial(const char *dir)
{
    static const char *const attrs[] = {"serial", "device/serial", "device/wwid", NULL};
    for (guint i = 0; attrs[i]; i++) {
        char *s = read_attr(dir, attrs[i]);
        if (s)
            return s;
    }
    return NULL;
}

static SpBlockdevDisk *disk_new(const char *dir)
{
    SpBlockdevDisk *d = g_new0(SpBlockdevDisk, 1);

    d->name = g_path_get_basename(dir);
    d->dev = g_strdup_printf("/dev/%s", d->name);
    d->serial = disk_serial(dir);
    d->pci_domain = d->pci_bus = d->pci_slot = d->pci_function = -1;
    d->bus_type = bus_type_of(d->name, dir);
    parse_addresses(d, dir);
    return d;
}

/* What a walk down a device stack does at a device that is not a partition; leaf: it has no
 * slaves. */
typedef void StackVisit(const char *dir, gboolean leaf, GPtrArray *out);

/* Walks the stack below the device at dir (a partition's disk, a dm or md device's slaves),
 * visiting each device that is not a partition after those below it. */
static void walk_stack(const char *dir, int depth, StackVisit *visit, GPtrArray *out)
{
    g_autofree char *partition = read_attr(dir, "partition");
    g_autofree char *slaves = NULL;
    g_autoptr(GDir) sd = NULL;
    gboolean any = FALSE;
    const char *name;

    if (depth > SP_BLOCKDEV_MAX_DEPTH)
        return;
    if (partition) {
        g_autofree char *parent = g_path_get_dirname(dir);
        walk_stack(parent, depth + 1, visit, out);
        return;
    }
    slaves = g_build_filename(dir, "slaves", NULL);
    sd = g_dir_open(slaves, 0, NULL);
    while (sd && (name = g_dir_read_name(sd)) != NULL) {
        g_autofree char *link = g_build_filename(slaves, name, NULL);
        char *real = realpath(link, NULL);
        if (real) {
            walk_stack(real, depth + 1, visit, out);
            free(real);
            any = TRUE;
        }
    }
    visit(dir, !any, out);
}

/* The disks are the bottom of the stack, each once. */
static void visit_disk(const char *dir, gboolean leaf, GPtrArray *out)
{
    g_autofree char *base = g_path_get_basename(dir);

    if (!leaf)
        return;
    for (guint i = 0; i < out->len; i++)
        if (strcmp(((SpBlockdevDisk *)out->pdata[i])->name, base) == 0)
            return;
    g_ptr_array_add(out, disk_new(dir));
}

GPtrArray *sp_blockdev_disks(const char *sysfs_root, dev_t dev)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)sp_blockdev_disk_free);
    g_autofree char *dir = dev_dir(sysfs_root, dev);

    if (dir)
        walk_stack(dir, 0, visit_disk, out);
    return out;
}

/* A loop device anywhere in the stack names its backing file. */
static void visit_backing(const char *dir, gboolean leaf, GPtrArray *out)
{
    char *backing = read_attr(dir, "loop/backing_file");

    if (backing)
        g_ptr_array_add(out, backing);
}

GPtrArray *sp_blockdev_loop_backing(const char *sysfs_root, dev_t dev)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *dir = NULL;

    if (major(dev) == 0)
        return out;
    dir = dev_dir(sysfs_root, dev);
    if (dir)
        walk_stack(dir, 0, visit_backing, out);
    return out;
}

static char *probe_value(blkid_probe pr, const char *name)
{
    const char *v = NULL;
    if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0 && v)
        return g_strdup(v);
    return NULL;
}

gboolean sp_blockdev_probe(const char *devnode, char **ret_type, char **ret_uuid, char **ret_label)
{
    /* A probe reads the device directly and keeps no cache file: nothing is written. */
    blkid_probe pr = blkid_new_probe_from_filename(devnode);

    if (!pr)
        return FALSE;
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_LABEL);
    if (blkid_do_safeprobe(pr) != 0) {
        blkid_free_probe(pr);
        return FALSE;
    }
    *ret_type = probe_value(pr, "TYPE");
    *ret_uuid = probe_value(pr, "UUID");
    *ret_label = probe_value(pr, "LABEL");
    blkid_free_probe(pr);
    return TRUE;
}

/* The block device under a mount: its own major:minor, or for filesystems with an anonymous
 * one (btrfs) the device node it was mounted from, as qemu-ga resolves it. 0 when none. */
dev_t sp_blockdev_of_mount(const SpMount *m)
{
    struct stat st;

    if (m->major != 0)
        return sp_mount_dev(m);
    if (g_str_has_prefix(m->source, "/dev/") && stat(m->source, &st) == 0 && S_ISBLK(st.st_mode))
        return st.st_rdev;
    return 0;
}
