/* blockdev: sysfs walks from a filesystem's dev_t to its disks, on a fake sysfs tree built in a
 * temporary directory (partitions, LVM on md on two disks, a loop device). */
#define _GNU_SOURCE
#include "agent-test.h"

#include <sys/sysmacros.h>
#include <unistd.h>
#include "blockdev.h"

static char root[256];

static void put(const char *rel, const char *content)
{
    char path[512];
    g_autofree char *dir = NULL;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    dir = g_path_get_dirname(path);
    assert_int_equal(g_mkdir_with_parents(dir, 0755), 0);
    if (content)
        assert_true(g_file_set_contents(path, content, -1, NULL));
    else
        assert_int_equal(g_mkdir_with_parents(path, 0755), 0);
}

static void link_to(const char *rel, const char *target)
{
    char path[512];
    g_autofree char *dir = NULL;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    dir = g_path_get_dirname(path);
    assert_int_equal(g_mkdir_with_parents(dir, 0755), 0);
    assert_int_equal(symlink(target, path), 0);
}

#define VDA "devices/pci0000:00/0000:00:05.0/virtio2/block/vda"
#define VDB "devices/pci0000:00/0000:00:06.0/virtio3/block/vdb"
#define SDA "devices/pci0000:00/0000:00:07.0/virtio4/host0/target0:0:3/0:0:3:2/block/sda"
#define MD0 "devices/virtual/block/md0"
#define DM0 "devices/virtual/block/dm-0"
#define LOOP0 "devices/virtual/block/loop0"

static int setup(void **state)
{
    snprintf(root, sizeof(root), "/tmp/sp-test-sysfs-XXXXXX");
    assert_non_null(mkdtemp(root));
    /* vda with partition vda1; vdb whole; sda on virtio-scsi with a partition. */
    put(VDA "/serial", "QM-ROOT\n");
    put(VDA "/vda1/partition", "1\n");
    link_to("dev/block/254:1", "../../" VDA "/vda1");
    put(VDB "/serial", "QM-DATA\n");
    link_to("dev/block/254:16", "../../" VDB);
    put(SDA "/device/wwid", "naa.5000c5000000001\n");
    put(SDA "/sda1/partition", "1\n");
    /* md0 over vdb and sda1; dm-0 (LVM) over md0. */
    put(MD0 "/slaves", NULL);
    link_to(MD0 "/slaves/vdb", "../../../../../" VDB);
    link_to(MD0 "/slaves/sda1", "../../../../../" SDA "/sda1");
    put(DM0 "/slaves", NULL);
    link_to(DM0 "/slaves/md0", "../../md0");
    link_to("dev/block/253:0", "../../" DM0);
    /* loop0 backed by a file: the fixture directory itself stands in for it. */
    {
        char backing[512];
        snprintf(backing, sizeof(backing), "%s\n", root);
        put(LOOP0 "/loop/backing_file", backing);
    }
    link_to("dev/block/7:0", "../../" LOOP0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static const SpBlockdevDisk *disk_named(GPtrArray *disks, const char *name)
{
    for (guint i = 0; i < disks->len; i++)
        if (strcmp(((SpBlockdevDisk *)disks->pdata[i])->name, name) == 0)
            return disks->pdata[i];
    fail_msg("no disk %s", name);
    return NULL;
}

static void test_partition_maps_to_its_disk_with_serial_and_pci_address(void **state)
{
    g_autoptr(GPtrArray) disks = sp_blockdev_disks(root, makedev(254, 1));
    const SpBlockdevDisk *d;
    g_autofree char *name = sp_blockdev_name(root, makedev(254, 1));

    assert_string_equal(name, "vda1");
    assert_int_equal(disks->len, 1);
    d = disks->pdata[0];
    assert_string_equal(d->name, "vda");
    assert_string_equal(d->dev, "/dev/vda");
    assert_string_equal(d->serial, "QM-ROOT");
    assert_string_equal(d->bus_type, "virtio");
    assert_int_equal(d->pci_domain, 0);
    assert_int_equal(d->pci_bus, 0);
    assert_int_equal(d->pci_slot, 5);
    assert_int_equal(d->pci_function, 0);
}

static void test_lvm_on_md_maps_to_every_member_disk(void **state)
{
    g_autoptr(GPtrArray) disks = sp_blockdev_disks(root, makedev(253, 0));
    const SpBlockdevDisk *sda;

    assert_int_equal(disks->len, 2);
    assert_string_equal(disk_named(disks, "vdb")->serial, "QM-DATA");
    sda = disk_named(disks, "sda");
    assert_string_equal(sda->bus_type, "scsi");
    assert_string_equal(sda->serial, "naa.5000c5000000001");
    assert_int_equal(sda->target, 3);
    assert_int_equal(sda->unit, 2);
    assert_int_equal(sda->pci_slot, 7);
}

static void test_unknown_device_has_no_disks(void **state)
{
    g_autoptr(GPtrArray) disks = sp_blockdev_disks(root, makedev(8, 99));
    g_autofree char *name = sp_blockdev_name(root, makedev(8, 99));

    assert_int_equal(disks->len, 0);
    assert_null(name);
}

static void test_loop_device_reports_its_backing_file(void **state)
{
    g_autoptr(GPtrArray) loop = sp_blockdev_loop_backing(root, makedev(7, 0));
    g_autoptr(GPtrArray) disk = sp_blockdev_loop_backing(root, makedev(254, 1));
    g_autoptr(GPtrArray) anon = sp_blockdev_loop_backing(root, makedev(0, 42));

    assert_int_equal(loop->len, 1);
    assert_string_equal(loop->pdata[0], root);
    assert_int_equal(disk->len, 0);
    assert_int_equal(anon->len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_maps_to_its_disk_with_serial_and_pci_address),
        cmocka_unit_test(test_lvm_on_md_maps_to_every_member_disk),
        cmocka_unit_test(test_unknown_device_has_no_disks),
        cmocka_unit_test(test_loop_device_reports_its_backing_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
