/* fsinfo: guest-get-fsinfo's reply in qemu-ga's shape: every mounted filesystem on a block
 * device, with the disks under it (their serials are how a host maps filesystems to its disks). */
#define _GNU_SOURCE
#include "fsinfo.h"

#include <gio/gio.h>
#include <sys/statvfs.h>
#include "blockdev.h"
#include "mountinfo.h"

static SpJson *disk_json(const SpBlockdevDisk *d)
{
    SpJson *o = sp_json_new_object(), *pci = sp_json_new_object();

    sp_json_object_set_int(pci, "domain", d->pci_domain);
    sp_json_object_set_int(pci, "bus", d->pci_bus);
    sp_json_object_set_int(pci, "slot", d->pci_slot);
    sp_json_object_set_int(pci, "function", d->pci_function);
    sp_json_object_set(o, "pci-controller", pci);
    sp_json_object_set_string(o, "bus-type", d->bus_type);
    sp_json_object_set_int(o, "bus", d->bus);
    sp_json_object_set_int(o, "target", d->target);
    sp_json_object_set_int(o, "unit", d->unit);
    sp_json_object_set_optional_string(o, "serial", d->serial);
    sp_json_object_set_string(o, "dev", d->dev);
    return o;
}

static SpJson *fs_json(const char *sysfs_root, const SpMount *m)
{
    SpJson *o = sp_json_new_object(), *disks = sp_json_new_array();
    g_autofree char *name = sp_blockdev_name(sysfs_root, sp_blockdev_of_mount(m));
    g_autoptr(GPtrArray) list = sp_blockdev_disks(sysfs_root, sp_blockdev_of_mount(m));
    struct statvfs sv;

    sp_json_object_set_string(o, "name", name ? name : m->source);
    sp_json_object_set_string(o, "mountpoint", m->mountpoint);
    sp_json_object_set_string(o, "type", m->fstype);
    if (statvfs(m->mountpoint, &sv) == 0) {
        sp_json_object_set_int(o, "used-bytes", (int64_t)((sv.f_blocks - sv.f_bfree) * sv.f_frsize));
        sp_json_object_set_int(o, "total-bytes", (int64_t)((sv.f_blocks - sv.f_bfree + sv.f_bavail) * sv.f_frsize));
        sp_json_object_set_int(o, "total-bytes-privileged", (int64_t)(sv.f_blocks * sv.f_frsize));
    }
    for (guint i = 0; i < list->len; i++)
        sp_json_array_append(disks, disk_json(list->pdata[i]));
    sp_json_object_set(o, "disk", disks);
    return o;
}

SpJson *sp_fsinfo_read(const char *mountinfo_path, const char *sysfs_root, GError **error)
{
    SpMountTable *table = NULL;
    SpJson *out;
    int r = sp_mountinfo_read(mountinfo_path, &table);

    if (r < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-r), "cannot read the mount table: %s",
                    g_strerror(-r));
        return NULL;
    }
    out = sp_json_new_array();
    /* qemu-ga lists filesystems on real block devices, newest mount first. */
    for (size_t i = table->n_mounts; i > 0; i--) {
        const SpMount *m = &table->mounts[i - 1];
        if (sp_blockdev_of_mount(m) == 0)
            continue;
        sp_json_array_append(out, fs_json(sysfs_root, m));
    }
    sp_mount_table_free(table);
    return out;
}
