/* config: the shipped example parses to the defaults; values and range errors are honoured. */
#include "agent-test.h"

#include <glib/gstdio.h>
#include <unistd.h>
#include "config.h"

static char *write_conf(const char *text)
{
    char *path = NULL;
    int fd = g_file_open_tmp("sp-test-agent-XXXXXX.conf", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static void test_shipped_example_gives_the_defaults(void **state)
{
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    assert_true(sp_config_load(c, SP_AGENT_DATA_DIR "/agent.conf", TRUE, &e));
    assert_null(c->virtio_ports);
    assert_int_equal(c->default_lease_ms, SP_DEFAULT_LEASE_MS);
    assert_int_equal(c->max_lease_ms, SP_MAX_LEASE_MS);
    assert_true(c->thaw_on_hangup);
    assert_false(c->standard_thaw_on_hangup); /* qemu-ga semantics for guest-fsfreeze-* */
    assert_string_equal(c->state_dir, "/run/stillpoint");
    assert_string_equal(c->hook_path, SP_HOOK_PATH_DEFAULT);
    assert_int_equal(g_strv_length(c->exclude_mountpoints), 0);
    assert_true(c->writers);
    assert_int_equal(c->writers_timeout_ms, SP_WRITERS_TIMEOUT_MS);
    assert_true(c->writers_abort); /* a failed writer fails the freeze unless told otherwise */
    /* Forwarding to the qemu-ga beside the agent is on; exec and the like are off. */
    assert_string_equal(c->qga_socket, SP_QGA_SOCKET_DEFAULT);
    assert_true(g_strv_contains((const char *const *)c->qga_commands, "guest-network-get-interfaces"));
    assert_true(g_strv_contains((const char *const *)c->qga_commands, "guest-shutdown"));
    assert_false(g_strv_contains((const char *const *)c->qga_commands, "guest-exec"));
    assert_false(c->qga_allow_exec || c->qga_allow_file || c->qga_allow_password ||
                 c->qga_allow_ssh_keys);
    assert_int_equal(c->qga_timeout_ms, SP_QGA_TIMEOUT_MS_DEFAULT);
    assert_int_equal(c->qga_max_reply, SP_QGA_MAX_REPLY_DEFAULT);
}

/* The list agent.conf shows commented out is the built-in one. */
static void test_shipped_example_lists_the_default_forwarded_commands(void **state)
{
    g_autofree char *text = NULL;
    g_autofree char *path = NULL;
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;
    const char *line;

    assert_true(g_file_get_contents(SP_AGENT_DATA_DIR "/agent.conf", &text, NULL, NULL));
    line = strstr(text, "\n#commands=");
    assert_non_null(line);
    g_autofree char *uncommented = g_strndup(line + 2, strcspn(line + 2, "\n"));
    g_autofree char *conf = g_strdup_printf("[qemu-ga]\n%s\n", uncommented);
    path = write_conf(conf);
    assert_true(sp_config_load(c, path, TRUE, &e));
    assert_true(g_strv_equal((const char *const *)c->qga_commands, sp_config_qga_default_commands));
    g_unlink(path);
}

static void test_qemu_ga_values_are_read_and_checked(void **state)
{
    g_autofree char *path = write_conf("[qemu-ga]\nsocket=\ncommands=guest-get-time\nallow-exec=true\n"
                                       "timeout-ms=1500\nmax-reply-bytes=4096\n");
    g_autofree char *big = write_conf("[qemu-ga]\nmax-reply-bytes=99999999\n");
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    assert_true(sp_config_load(c, path, TRUE, &e));
    assert_null(c->qga_socket); /* empty: nothing is forwarded */
    assert_int_equal(g_strv_length(c->qga_commands), 1);
    assert_true(c->qga_allow_exec);
    assert_false(c->qga_allow_file);
    assert_int_equal(c->qga_timeout_ms, 1500);
    assert_int_equal(c->qga_max_reply, 4096);
    assert_false(sp_config_load(c, big, TRUE, &e));
    assert_non_null(strstr(e->message, "[qemu-ga] max-reply-bytes"));
    g_unlink(path);
    g_unlink(big);
}

static void test_writers_values_are_read_and_checked(void **state)
{
    g_autofree char *path = write_conf("[writers]\nenabled=false\ntimeout-ms=1500\non-failure=continue\n");
    g_autofree char *bad = write_conf("[writers]\non-failure=ignore\n");
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    assert_true(sp_config_load(c, path, TRUE, &e));
    assert_false(c->writers);
    assert_int_equal(c->writers_timeout_ms, 1500);
    assert_false(c->writers_abort);
    assert_false(sp_config_load(c, bad, TRUE, &e));
    assert_non_null(strstr(e->message, "on-failure = ignore: use abort or continue"));
    assert_non_null(strstr(e->message, bad));
    g_unlink(path);
    g_unlink(bad);
}

static void test_values_are_read(void **state)
{
    g_autofree char *path = write_conf(
        "[transports]\nvirtio-ports=/dev/vport0p1;/dev/vport0p2\nvsock-ports=1234\nunix-sockets=/run/a.sock\n"
        "[agent]\nstate-dir=/run/sp-test\n"
        "[freeze]\ndefault-lease-ms=5000\nmax-lease-ms=10000\nexclude-mountpoints=/mnt/*;/srv\n"
        "exclude-types=vfat\nthaw-on-hangup=false\nstandard-thaw-on-hangup=true\n"
        "[hooks]\nfsfreeze-hook=\ntimeout-ms=250\n");
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    assert_true(sp_config_load(c, path, TRUE, &e));
    assert_int_equal(g_strv_length(c->virtio_ports), 2);
    assert_string_equal(c->virtio_ports[1], "/dev/vport0p2");
    assert_int_equal(c->n_vsock_ports, 1);
    assert_int_equal(c->vsock_ports[0], 1234);
    assert_string_equal(c->unix_sockets[0], "/run/a.sock");
    assert_string_equal(c->state_dir, "/run/sp-test");
    assert_int_equal(c->default_lease_ms, 5000);
    assert_int_equal(c->max_lease_ms, 10000);
    assert_string_equal(c->exclude_mountpoints[0], "/mnt/*");
    assert_string_equal(c->exclude_types[0], "vfat");
    assert_false(c->thaw_on_hangup);
    assert_true(c->standard_thaw_on_hangup);
    assert_null(c->hook_path); /* empty value: no hook */
    assert_int_equal(c->hook_timeout_ms, 250);
    g_unlink(path);
}

static void test_out_of_range_lease_names_file_and_key(void **state)
{
    g_autofree char *path = write_conf("[freeze]\nmax-lease-ms=1000\ndefault-lease-ms=5000\n");
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    assert_false(sp_config_load(c, path, TRUE, &e));
    assert_non_null(strstr(e->message, path));
    assert_non_null(strstr(e->message, "default-lease-ms"));
    g_unlink(path);
}

static void test_unknown_key_is_an_error(void **state)
{
    g_autofree char *path = write_conf("[freeze]\nexclude-mountpoint=/srv\n");
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    /* A typo must not silently freeze what was meant to be excluded. */
    assert_false(sp_config_load(c, path, TRUE, &e));
    assert_non_null(strstr(e->message, "exclude-mountpoint"));
    assert_non_null(strstr(e->message, path));
    g_unlink(path);
}

static void test_missing_file_is_an_error_only_when_required(void **state)
{
    g_autoptr(SpConfig) c = sp_config_new();
    g_autoptr(GError) e = NULL;

    assert_true(sp_config_load(c, "/nonexistent/agent.conf", FALSE, &e));
    assert_false(sp_config_load(c, "/nonexistent/agent.conf", TRUE, &e));
    assert_true(g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_example_gives_the_defaults),
        cmocka_unit_test(test_values_are_read),
        cmocka_unit_test(test_writers_values_are_read_and_checked),
        cmocka_unit_test(test_qemu_ga_values_are_read_and_checked),
        cmocka_unit_test(test_shipped_example_lists_the_default_forwarded_commands),
        cmocka_unit_test(test_out_of_range_lease_names_file_and_key),
        cmocka_unit_test(test_unknown_key_is_an_error),
        cmocka_unit_test(test_missing_file_is_an_error_only_when_required),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
