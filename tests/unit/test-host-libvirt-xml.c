/* libvirt's XML as the libvirt driver reads and edits it, on texts shaped like libvirt's own
 * output: the disks and their backing chains, a snapshot's own description (never the one of the
 * domain its XML embeds), a new snapshot's XML, and a definition's disk pointed at another image
 * (its recorded chain dropped, nested or not). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <string.h>

#include "../../host/lib/libvirt-xml.h"

/* A running domain with a two-level chain on vda, a raw vdb, a CD-ROM and a network disk. */
static const char domain_xml[] =
    "<domain type='qemu' id='3'>\n"
    "  <name>web</name>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/img/web-vda-2.qcow2' index='3'/>\n"
    "      <backingStore type='file' index='2'>\n"
    "        <format type='qcow2'/>\n"
    "        <source file='/img/web-vda-1.qcow2'/>\n"
    "        <backingStore type='file' index='1'>\n"
    "          <format type='qcow2'/>\n"
    "          <source file='/img/web.qcow2'/>\n"
    "          <backingStore/>\n"
    "        </backingStore>\n"
    "      </backingStore>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "      <serial>data0</serial>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/img/logs.raw'/>\n"
    "      <backingStore/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <source file='/iso/install.iso'/>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <source protocol='rbd' name='pool/img'/>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "  </devices>\n"
    "</domain>\n";

static void test_disks_and_their_chains_are_read(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) disks = sp_libvirt_xml_disks(domain_xml, &error);
    SpXmlDisk *vda, *vdb, *cd, *net;

    assert_non_null(disks);
    assert_int_equal(disks->len, 4);
    vda = g_ptr_array_index(disks, 0);
    vdb = g_ptr_array_index(disks, 1);
    cd = g_ptr_array_index(disks, 2);
    net = g_ptr_array_index(disks, 3);
    assert_string_equal(vda->target, "vda");
    assert_string_equal(vda->format, "qcow2");
    assert_string_equal(vda->source, "/img/web-vda-2.qcow2");
    assert_string_equal(vda->serial, "data0");
    /* The chain, top first: the nested backingStores' sources, not the format elements. */
    assert_int_equal(vda->chain->len, 3);
    assert_string_equal(g_ptr_array_index(vda->chain, 1), "/img/web-vda-1.qcow2");
    assert_string_equal(g_ptr_array_index(vda->chain, 2), "/img/web.qcow2");
    assert_string_equal(vdb->format, "raw");
    assert_int_equal(vdb->chain->len, 1);
    assert_null(vdb->serial);
    assert_true(cd->readonly);
    assert_string_equal(cd->device, "cdrom");
    assert_string_equal(net->type, "network");
    assert_string_equal(net->source, ""); /* no file: the caller refuses it */
}

static void test_broken_xml_is_an_error(void **state)
{
    g_autoptr(GError) error = NULL;
    assert_null(sp_libvirt_xml_disks("<domain><devices><disk type='file'>", &error));
    assert_non_null(error);
    assert_non_null(strstr(error->message, "libvirt's <domain> XML is not well-formed"));
    g_clear_error(&error);
    assert_null(sp_libvirt_xml_disks("<domainsnapshot/>", &error));
    assert_non_null(strstr(error->message, "root element is <domainsnapshot>, not <domain>"));
}

static void test_description_is_replaced_or_added(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *replaced = sp_libvirt_xml_with_description(
        "<domainsnapshot><name>s1</name><description>old</description></domainsnapshot>",
        "new's <&>", &error);
    g_autofree char *added = sp_libvirt_xml_with_description(
        "<domainsnapshot><name>s1</name></domainsnapshot>", "x", &error);
    g_autofree char *read = NULL;

    assert_non_null(replaced);
    assert_null(strstr(replaced, "old"));
    assert_true(sp_libvirt_xml_snapshot_description(replaced, &read, &error));
    assert_string_equal(read, "new's <&>");
    assert_string_equal(added, "<domainsnapshot><name>s1</name><description>x</description>"
                               "</domainsnapshot>");
    assert_null(sp_libvirt_xml_with_description("<domainsnapshot/>", "x", &error));
    assert_non_null(strstr(error->message, "has no <name>"));
    g_clear_error(&error);
    assert_null(sp_libvirt_xml_with_description(added, "bell\a", &error));
    assert_non_null(strstr(error->message, "control character"));
}

/* A snapshot libvirt made without a description of its own, of a domain that has one: libvirt's
 * snapshot XML embeds the domain's definition, <description> included. */
static const char snapshot_xml[] =
    "<domainsnapshot>\n"
    "  <name>web-vda-2</name>\n"
    "  <state>disk-snapshot</state>\n"
    "  <creationTime>1700000000</creationTime>\n"
    "  <memory snapshot='no'/>\n"
    "  <disks>\n"
    "    <disk name='vda' snapshot='external' type='file'>\n"
    "      <driver type='qcow2'/>\n"
    "      <source file='/img/web-vda-2.qcow2'/>\n"
    "    </disk>\n"
    "  </disks>\n"
    "  <domain type='qemu'>\n"
    "    <name>web</name>\n"
    "    <description>nightly</description>\n"
    "    <devices/>\n"
    "  </domain>\n"
    "</domainsnapshot>\n";

static void test_the_snapshot_s_own_description_not_its_domain_s(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *own = NULL, *edited = NULL, *again = NULL;

    /* No description of its own: not the embedded domain's "nightly". */
    assert_true(sp_libvirt_xml_snapshot_description(snapshot_xml, &own, &error));
    assert_null(own);
    /* Added to the snapshot, after its name; the domain's description left as it was. */
    edited = sp_libvirt_xml_with_description(snapshot_xml, "cp-monday", &error);
    assert_non_null(edited);
    assert_non_null(strstr(edited, "<name>web-vda-2</name><description>cp-monday</description>"));
    assert_non_null(strstr(edited, "<name>web</name>\n    <description>nightly</description>"));
    assert_true(sp_libvirt_xml_snapshot_description(edited, &again, &error));
    assert_string_equal(again, "cp-monday");
}

static void test_a_new_snapshot_s_xml(void **state)
{
    g_autoptr(GError) error = NULL;
    const char *targets[] = {"vda", "vdb", NULL};
    const char *overlays[] = {"/img/a&b.qcow2", "/img/<c>.qcow2", NULL};
    const char *bad[] = {"/img/\x01.qcow2", "/img/d.qcow2", NULL};
    g_autofree char *xml =
        sp_libvirt_xml_snapshot("s'1", "cp \"1\"", targets, overlays, NULL, &error);
    g_autofree char *with_memory =
        sp_libvirt_xml_snapshot("s2", "cp", targets, overlays, "/img/s2 & co.mem", &error);
    g_autofree char *description = NULL;

    assert_non_null(xml);
    assert_true(sp_libvirt_xml_snapshot_description(xml, &description, &error));
    assert_string_equal(description, "cp \"1\"");
    assert_non_null(strstr(xml, "<name>s'1</name>"));
    assert_non_null(strstr(xml, "<disk name=\"vda\" snapshot=\"external\" type=\"file\">"
                                "<driver type=\"qcow2\"/><source file=\"/img/a&amp;b.qcow2\"/>"
                                "</disk>"));
    assert_non_null(strstr(xml, "<source file=\"/img/&lt;c&gt;.qcow2\"/>"));
    assert_null(strstr(xml, "<memory"));
    /* A standard checkpoint's: the memory saved to a file, before the disks. */
    assert_non_null(strstr(with_memory, "<description>cp</description><memory snapshot=\"external\" "
                                        "file=\"/img/s2 &amp; co.mem\"/><disks>"));
    assert_null(sp_libvirt_xml_snapshot("s1", "cp", targets, bad, NULL, &error));
    assert_non_null(strstr(error->message, "an overlay's path has a control character"));
}

static void test_a_disk_is_pointed_at_a_new_image_and_its_chain_dropped(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);
    g_autofree char *out = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    SpXmlDisk *vda, *vdb;

    g_hash_table_insert(sources, "vda", "/img/web-vda-3 & co.qcow2");
    out = sp_libvirt_xml_point_disks(domain_xml, sources, &error);
    assert_non_null(out);
    /* Still well-formed, vda on the new image alone, everything else as it was. */
    disks = sp_libvirt_xml_disks(out, &error);
    assert_non_null(disks);
    assert_int_equal(disks->len, 4);
    vda = g_ptr_array_index(disks, 0);
    vdb = g_ptr_array_index(disks, 1);
    assert_string_equal(vda->source, "/img/web-vda-3 & co.qcow2");
    assert_int_equal(vda->chain->len, 1);
    assert_string_equal(vda->serial, "data0");
    assert_string_equal(vda->format, "qcow2");
    assert_string_equal(vdb->source, "/img/logs.raw");
    assert_non_null(strstr(out, "<source file=\"/img/web-vda-3 &amp; co.qcow2\" index=\"3\"/>"));
    assert_null(strstr(out, "web-vda-1.qcow2"));
    assert_non_null(strstr(out, "<target dev=\"vda\" bus=\"virtio\"/>"));
}

static void test_a_missing_disk_or_a_disk_without_file_is_refused(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);

    g_hash_table_insert(sources, "vdz", "/img/x.qcow2");
    assert_null(sp_libvirt_xml_point_disks(domain_xml, sources, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
    g_clear_error(&error);
    g_hash_table_remove_all(sources);
    g_hash_table_insert(sources, "vdc", "/img/x.qcow2");
    assert_null(sp_libvirt_xml_point_disks(domain_xml, sources, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disks_and_their_chains_are_read),
        cmocka_unit_test(test_broken_xml_is_an_error),
        cmocka_unit_test(test_description_is_replaced_or_added),
        cmocka_unit_test(test_the_snapshot_s_own_description_not_its_domain_s),
        cmocka_unit_test(test_a_new_snapshot_s_xml),
        cmocka_unit_test(test_a_disk_is_pointed_at_a_new_image_and_its_chain_dropped),
        cmocka_unit_test(test_a_missing_disk_or_a_disk_without_file_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
