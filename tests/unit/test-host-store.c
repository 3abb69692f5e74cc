/* The checkpoint store against a real SQLite file in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <sqlite3.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "stillpoint/backup.h"
#include "stillpoint/store.h"

typedef struct {
    char *dir;
    char *path;
    SpStore *store;
} Fixture;

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("sp-store-XXXXXX", &error);
    assert_non_null(f->dir);
    f->path = g_build_filename(f->dir, "sub", "store.db", NULL);
    f->store = sp_store_open(f->path, &error);
    assert_null(error);
    assert_non_null(f->store);
    *state = f;
    return 0;
}

static void rm_rf(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            rm_rf(p);
        else
            g_unlink(p);
    }
    g_rmdir(dir);
}

static int teardown(void **state)
{
    Fixture *f = *state;
    sp_store_close(f->store);
    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->path);
    g_free(f);
    return 0;
}

static int64_t add_vm(SpStore *store, const char *name)
{
    SpVm vm = {.name = (char *)name, .qmp_socket = (char *)"/run/qmp.sock",
               .agent_socket = (char *)"/run/agent.sock", .driver = (char *)"qemu"};
    g_autoptr(GError) error = NULL;
    int64_t id = 0;
    assert_true(sp_store_vm_add(store, &vm, &id, &error));
    assert_null(error);
    return id;
}

static SpCheckpoint *make_checkpoint(int64_t vm_id, const char *name, const char *image,
                                     const char *overlay)
{
    SpCheckpoint *cp = g_new0(SpCheckpoint, 1);
    SpCheckpointDisk *d = g_new0(SpCheckpointDisk, 1);
    cp->vm_id = vm_id;
    cp->name = g_strdup(name);
    cp->type = g_strdup("production");
    cp->consistency = g_strdup("application");
    cp->disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_checkpoint_disk_free);
    d->disk = g_strdup("virtio0");
    d->node = g_strdup("disk0");
    d->image = g_strdup(image);
    d->overlay = g_strdup(overlay);
    d->overlay_node = g_strdup("sp-1-0");
    d->image_format = g_strdup("qcow2");
    g_ptr_array_add(cp->disks, d);
    return cp;
}

static void test_vm_add_get_list_remove(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVm) vm = NULL;
    g_autoptr(GPtrArray) vms = NULL;
    SpVm dup = {.name = (char *)"web", .qmp_socket = (char *)"/x", .driver = (char *)"qemu"};

    add_vm(f->store, "web");
    add_vm(f->store, "db");
    vm = sp_store_vm_get(f->store, "web", &error);
    assert_non_null(vm);
    assert_string_equal(vm->qmp_socket, "/run/qmp.sock");
    assert_string_equal(vm->agent_socket, "/run/agent.sock");
    assert_int_equal(vm->current, 0);

    assert_false(sp_store_vm_add(f->store, &dup, NULL, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_EXISTS));
    g_clear_error(&error);

    vms = sp_store_vm_list(f->store, &error);
    assert_int_equal(vms->len, 2);
    assert_string_equal(((SpVm *)g_ptr_array_index(vms, 0))->name, "db");

    assert_true(sp_store_vm_remove(f->store, "db", FALSE, &error));
    assert_null(sp_store_vm_get(f->store, "db", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

/* vm add --disk: the hook driver's disks are recorded with the VM, in order, and come back. */
static void test_vm_disks_are_recorded_in_order(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    const char *specs[] = {"root=/dev/vg0/web,serial=WEB0", "data=/dev/vg0/web-data,,x,format=qcow2",
                           NULL};
    g_autoptr(GPtrArray) disks = sp_vm_disks_parse(specs, &error);
    SpVm vm = {.name = (char *)"lvm", .driver = (char *)"hook", .hook_command = (char *)"true"};
    g_autoptr(SpVm) got = NULL;
    g_autoptr(GPtrArray) vms = NULL;
    SpVmDisk *d;

    assert_non_null(disks);
    vm.disks = disks;
    assert_true(sp_store_vm_add(f->store, &vm, NULL, &error));
    got = sp_store_vm_get(f->store, "lvm", &error);
    assert_non_null(got);
    assert_int_equal(got->disks->len, 2);
    d = g_ptr_array_index(got->disks, 0);
    assert_string_equal(d->name, "root");
    assert_string_equal(d->path, "/dev/vg0/web");
    assert_string_equal(d->serial, "WEB0");
    assert_string_equal(d->format, "raw");
    d = g_ptr_array_index(got->disks, 1);
    assert_string_equal(d->path, "/dev/vg0/web-data,x");
    assert_null(d->serial);
    assert_string_equal(d->format, "qcow2");
    vms = sp_store_vm_list(f->store, &error);
    assert_int_equal(((SpVm *)g_ptr_array_index(vms, 0))->disks->len, 2);
    /* Removing the VM removes its disks' records with it. */
    assert_true(sp_store_vm_remove(f->store, "lvm", FALSE, &error));
    assert_true(sp_store_vm_add(f->store, &vm, NULL, &error));
}

/* A disk given twice by name is refused, and the VM is not half-registered. */
static void test_vm_disks_duplicate_name_registers_nothing(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    const char *specs[] = {"root=/dev/a", "root=/dev/b", NULL};
    g_autoptr(GPtrArray) disks = sp_vm_disks_parse(specs, &error);
    SpVm vm = {.name = (char *)"twice", .driver = (char *)"hook", .hook_command = (char *)"true",
               .disks = disks};

    assert_false(sp_store_vm_add(f->store, &vm, NULL, &error));
    assert_non_null(strstr(error->message, "disk 'root' is given twice"));
    g_clear_error(&error);
    assert_null(sp_store_vm_get(f->store, "twice", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

static void test_vm_disk_spec_errors_name_the_spec(void **state)
{
    const char *bad[][2] = {
        {"root", "expected NAME=PATH"},
        {"root=", "expected NAME=PATH"},
        {"=/dev/x", "a disk's name is"},
        {"-x=/dev/x", "a disk's name is"},
        {"a/b=/dev/x", "a disk's name is"},
        {"root=/dev/x,serial=", "a serial is"},
        {"root=/dev/x,serial=a b", "a serial is"},
        {"root=/dev/x,format=QCOW2", "a format is"},
        {"root=/dev/x,format=raw,format=raw", "given twice"},
        {"root=/dev/x,cache=none", "options are serial=S and format=F"},
        {"root=/dev/x\n", "control characters"},
    };
    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *spec = g_strcompress(bad[i][0]);
        assert_null(sp_vm_disk_parse(spec, &error));
        assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
        if (strstr(error->message, bad[i][1]) == NULL)
            fail_msg("spec '%s': got '%s', expected '%s'", bad[i][0], error->message, bad[i][1]);
    }
}

static void test_vm_name_rejects_path_characters(void **state)
{
    g_autoptr(GError) error = NULL;
    assert_false(sp_vm_name_valid("../etc", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
    g_clear_error(&error);
    assert_false(sp_vm_name_valid("", &error));
    g_clear_error(&error);
    assert_false(sp_vm_name_valid("-vm", &error));
    g_clear_error(&error);
    assert_false(sp_vm_name_valid("vm\n1", &error));
    g_clear_error(&error);
    assert_false(sp_vm_name_valid("vm\x01", &error));
    g_clear_error(&error);
    assert_true(sp_vm_name_valid("vm-1.test_a", &error));
}

static void test_checkpoint_name_limits(void **state)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *hundred = g_strnfill(100, 'a');
    g_autofree char *too_long = g_strnfill(101, 'a');
    /* 100 characters of 2-byte UTF-8 is still 100 characters. */
    GString *accents = g_string_new(NULL);
    for (int i = 0; i < 100; i++)
        g_string_append(accents, "\xc3\xa9");

    assert_true(sp_checkpoint_name_valid(hundred, &error));
    assert_true(sp_checkpoint_name_valid(accents->str, &error));
    assert_false(sp_checkpoint_name_valid(too_long, &error));
    g_clear_error(&error);
    assert_false(sp_checkpoint_name_valid("", &error));
    g_clear_error(&error);
    assert_false(sp_checkpoint_name_valid("a\tb", &error));
    g_clear_error(&error);
    assert_false(sp_checkpoint_name_valid("a\xc2\x85" "b", &error)); /* U+0085 is a control */
    g_clear_error(&error);
    assert_false(sp_checkpoint_name_valid("\xff", &error));
    g_clear_error(&error);
    /* Names reach hooks and unit files: no option look-alike, no line break. */
    assert_false(sp_checkpoint_name_valid("-rf", &error));
    assert_non_null(strstr(error->message, "must not start with '-'"));
    g_clear_error(&error);
    /* '#N' gives a checkpoint by id: a name of that form would catch another's operations. */
    assert_false(sp_checkpoint_name_valid("#0", &error));
    assert_non_null(strstr(error->message, "must not start with '#'"));
    g_clear_error(&error);
    assert_true(sp_checkpoint_name_valid("a#1", &error));
    assert_false(sp_checkpoint_name_valid("a\nb", &error));
    g_clear_error(&error);
    assert_false(sp_checkpoint_name_valid("a\xe2\x80\xa8" "b", &error)); /* U+2028 */
    g_clear_error(&error);
    assert_true(sp_checkpoint_name_valid("a-b", &error));
    g_string_free(accents, TRUE);
}

static void test_checkpoints_form_a_tree_and_track_current(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(SpCheckpoint) a = make_checkpoint(vm_id, "a", "/img/base.qcow2", "/img/a.qcow2");
    g_autoptr(SpCheckpoint) b = make_checkpoint(vm_id, "b", "/img/a.qcow2", "/img/b.qcow2");
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(SpVm) vm = NULL;
    int64_t id_a = 0, id_b = 0;
    gboolean exists = FALSE;

    assert_true(sp_store_checkpoint_add(f->store, a, 0, &id_a, &error));
    assert_true(sp_store_checkpoint_add(f->store, b, 0, &id_b, &error));
    assert_int_equal(a->parent, 0);
    assert_int_equal(b->parent, id_a);

    vm = sp_store_vm_get(f->store, "web", &error);
    assert_int_equal(vm->current, id_b);

    list = sp_store_checkpoint_list(f->store, vm_id, &error);
    assert_int_equal(list->len, 2);
    SpCheckpoint *lb = g_ptr_array_index(list, 1);
    assert_int_equal(lb->parent, id_a);
    assert_string_equal(lb->consistency, "application");
    assert_int_equal(lb->disks->len, 1);
    assert_string_equal(((SpCheckpointDisk *)g_ptr_array_index(lb->disks, 0))->overlay,
                        "/img/b.qcow2");

    assert_true(sp_store_checkpoint_name_exists(f->store, vm_id, "a", &exists, &error));
    assert_true(exists);
    assert_true(sp_store_checkpoint_name_exists(f->store, vm_id, "zz", &exists, &error));
    assert_false(exists);

    /* A VM with checkpoints is only forgotten on purpose. */
    assert_false(sp_store_vm_remove(f->store, "web", FALSE, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_EMPTY));
    g_clear_error(&error);
    assert_true(sp_store_vm_remove(f->store, "web", TRUE, &error));
}

/* Issue 15 item 1: a format is recorded when an image enters the chain and never guessed. */
static void test_image_formats_are_recorded_not_guessed(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(SpCheckpoint) a = make_checkpoint(vm_id, "a", "/img/base.raw", "/img/a.qcow2");
    g_autoptr(SpCheckpoint) b = make_checkpoint(vm_id, "b", "/img/a.qcow2", "/img/b.qcow2");
    g_autoptr(SpCheckpoint) c = make_checkpoint(vm_id, "c", "/img/c.raw", NULL);
    g_autoptr(GPtrArray) list = NULL;
    char *fmt;

    g_free(((SpCheckpointDisk *)g_ptr_array_index(a->disks, 0))->image_format);
    ((SpCheckpointDisk *)g_ptr_array_index(a->disks, 0))->image_format = g_strdup("raw");
    /* b's image is a's overlay: it is already known (qcow2), b says nothing. */
    g_clear_pointer(&((SpCheckpointDisk *)g_ptr_array_index(b->disks, 0))->image_format, g_free);
    assert_true(sp_store_checkpoint_add(f->store, a, 0, NULL, &error));
    assert_true(sp_store_checkpoint_add(f->store, b, 0, NULL, &error));
    assert_null(error);

    fmt = sp_store_image_format(f->store, vm_id, "/img/base.raw", &error);
    assert_string_equal(fmt, "raw");
    g_free(fmt);
    fmt = sp_store_image_format(f->store, vm_id, "/img/a.qcow2", &error);
    assert_string_equal(fmt, "qcow2");
    g_free(fmt);
    /* The first record stays: a later claim cannot turn the raw base into a qcow2. */
    assert_true(sp_store_image_format_record(f->store, vm_id, "/img/base.raw", "qcow2", &error));
    fmt = sp_store_image_format(f->store, vm_id, "/img/base.raw", &error);
    assert_string_equal(fmt, "raw");
    g_free(fmt);
    /* An overlay set later (apply) is recorded as qcow2. */
    assert_true(sp_store_checkpoint_set_disk_overlay(f->store, a->id, "virtio0", "/img/a2.qcow2",
                                                     NULL, &error));
    fmt = sp_store_image_format(f->store, vm_id, "/img/a2.qcow2", &error);
    assert_string_equal(fmt, "qcow2");
    g_free(fmt);

    list = sp_store_checkpoint_list(f->store, vm_id, &error);
    assert_string_equal(
        ((SpCheckpointDisk *)g_ptr_array_index(((SpCheckpoint *)g_ptr_array_index(list, 0))
                                                   ->disks, 0))->image_format, "raw");
    assert_string_equal(
        ((SpCheckpointDisk *)g_ptr_array_index(((SpCheckpoint *)g_ptr_array_index(list, 1))
                                                   ->disks, 0))->image_format, "qcow2");

    /* An unknown image has no format, and a checkpoint of one without a format is refused. */
    assert_null(sp_store_image_format(f->store, vm_id, "/img/unknown", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
    assert_non_null(strstr(error->message, "never guesses"));
    g_clear_error(&error);
    g_clear_pointer(&((SpCheckpointDisk *)g_ptr_array_index(c->disks, 0))->image_format, g_free);
    assert_false(sp_store_checkpoint_add(f->store, c, 0, NULL, &error));
    assert_non_null(strstr(error->message, "no format"));
}

/* A store of schema version 5 learns the formats it can vouch for: overlays and the images of
 * checkpoints with a parent (stillpoint made them, qcow2); a root's image stays unknown. */
static void test_v5_store_migrates_overlay_formats(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(SpCheckpoint) a = make_checkpoint(vm_id, "a", "/img/base.raw", "/img/a.qcow2");
    g_autoptr(SpCheckpoint) b = make_checkpoint(vm_id, "b", "/img/a.qcow2", "/img/b.qcow2");
    sqlite3 *db = NULL;
    char *fmt;

    assert_true(sp_store_checkpoint_add(f->store, a, 0, NULL, &error));
    assert_true(sp_store_checkpoint_add(f->store, b, 0, NULL, &error));
    sp_store_close(f->store);
    /* Back to version 5: no format table. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE image_formats; PRAGMA user_version = 5;",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    f->store = sp_store_open(f->path, &error);
    assert_non_null(f->store);
    fmt = sp_store_image_format(f->store, vm_id, "/img/b.qcow2", &error);
    assert_string_equal(fmt, "qcow2");
    g_free(fmt);
    fmt = sp_store_image_format(f->store, vm_id, "/img/a.qcow2", &error);
    assert_string_equal(fmt, "qcow2");
    g_free(fmt);
    assert_null(sp_store_image_format(f->store, vm_id, "/img/base.raw", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

static void test_journal_done_with_checkpoint_atomically(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(SpCheckpoint) a = make_checkpoint(vm_id, "a", "/img/base.qcow2", "/img/a.qcow2");
    g_autoptr(GPtrArray) open_ops = NULL;
    g_autoptr(GPtrArray) after = NULL;
    g_autoptr(SpOp) op = NULL;
    g_autoptr(GPtrArray) cps = NULL;
    int64_t op_id = 0;

    assert_true(sp_store_op_begin(f->store, vm_id, "create", "{\"x\":1}", &op_id, &error));
    assert_true(sp_store_op_step(f->store, op_id, "overlays-created", &error));
    open_ops = sp_store_op_list_unfinished(f->store, vm_id, &error);
    assert_int_equal(open_ops->len, 1);
    assert_string_equal(((SpOp *)g_ptr_array_index(open_ops, 0))->step, "overlays-created");
    assert_string_equal(((SpOp *)g_ptr_array_index(open_ops, 0))->payload, "{\"x\":1}");

    assert_true(sp_store_checkpoint_add(f->store, a, op_id, NULL, &error));
    after = sp_store_op_list_unfinished(f->store, vm_id, &error);
    assert_int_equal(after->len, 0);
    op = sp_store_op_get(f->store, op_id, &error);
    assert_int_equal(op->state, SP_OP_DONE);
    /* The checkpoint names the operation that made it (a hook's delete finds its snapshot so). */
    cps = sp_store_checkpoint_list(f->store, vm_id, &error);
    assert_int_equal(cps->len, 1);
    assert_int_equal(((SpCheckpoint *)g_ptr_array_index(cps, 0))->op_id, op_id);
}

static void test_v7_store_gains_the_checkpoints_operation(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(SpCheckpoint) a = make_checkpoint(vm_id, "a", "/img/base.qcow2", "/img/a.qcow2");
    g_autoptr(SpCheckpoint) b = make_checkpoint(vm_id, "b", "/img/a.qcow2", "/img/b.qcow2");
    g_autoptr(GPtrArray) cps = NULL;
    sqlite3 *db = NULL;
    int64_t op_id = 0;

    assert_true(sp_store_checkpoint_add(f->store, a, 0, NULL, &error));
    sp_store_close(f->store);
    /* Back to version 7: checkpoints without their operation. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE checkpoints DROP COLUMN op_id; "
                                      "PRAGMA user_version = 7;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    f->store = sp_store_open(f->path, &error);
    assert_non_null(f->store);
    assert_true(sp_store_op_begin(f->store, vm_id, "create", "{}", &op_id, &error));
    assert_true(sp_store_checkpoint_add(f->store, b, op_id, NULL, &error));
    cps = sp_store_checkpoint_list(f->store, vm_id, &error);
    assert_int_equal(cps->len, 2);
    assert_int_equal(((SpCheckpoint *)g_ptr_array_index(cps, 0))->op_id, 0); /* unknown */
    assert_int_equal(((SpCheckpoint *)g_ptr_array_index(cps, 1))->op_id, op_id);
}

static void test_journal_survives_reopen(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(GPtrArray) ops = NULL;
    int64_t op_id = 0;

    assert_true(sp_store_op_begin(f->store, vm_id, "create", "{}", &op_id, &error));
    sp_store_close(f->store);
    f->store = sp_store_open(f->path, &error);
    assert_non_null(f->store);
    ops = sp_store_op_list_unfinished(f->store, vm_id, &error);
    assert_int_equal(ops->len, 1);
    assert_true(sp_store_op_finish(f->store, op_id, SP_OP_ROLLED_BACK, &error));
    g_ptr_array_unref(ops);
    ops = sp_store_op_list_unfinished(f->store, vm_id, &error);
    assert_int_equal(ops->len, 0);
}

static void test_frozen_window_step_is_seen_by_a_recovering_process(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    int64_t vm_id = add_vm(f->store, "web");
    g_autoptr(GPtrArray) ops = NULL;
    g_autoptr(SpOp) op = NULL;
    SpStore *other = NULL;
    int64_t op_id = 0;

    assert_true(sp_store_op_begin(f->store, vm_id, "create", "{}", &op_id, &error));
    assert_true(sp_store_op_step_in_window(f->store, op_id, "snapshotted", &error));
    /* Another process (recovery after a kill -9) reads it without any later write. */
    other = sp_store_open(f->path, &error);
    assert_non_null(other);
    ops = sp_store_op_list_unfinished(other, vm_id, &error);
    assert_int_equal(ops->len, 1);
    assert_string_equal(((SpOp *)g_ptr_array_index(ops, 0))->step, "snapshotted");
    sp_store_close(other);
    /* Ordinary (durable) steps go on afterwards. */
    assert_true(sp_store_op_step(f->store, op_id, "thawed-consistent", &error));
    op = sp_store_op_get(f->store, op_id, &error);
    assert_string_equal(op->step, "thawed-consistent");
}

static void test_second_locker_gets_busy_naming_the_holder(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVmLock) lock = sp_vm_lock_acquire(f->store, "web", &error);
    g_autoptr(SpVmLock) other = NULL;
    int pipefd[2];
    char result = 0;
    pid_t pid;

    assert_non_null(lock);
    /* flock is per open file description: a second process must be refused. */
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    if (pid == 0) {
        g_autoptr(GError) child_error = NULL;
        SpVmLock *l = sp_vm_lock_acquire(f->store, "web", &child_error);
        char r = (l == NULL && g_error_matches(child_error, G_IO_ERROR, G_IO_ERROR_BUSY) &&
                  strstr(child_error->message, "busy") != NULL)
                     ? 'y'
                     : 'n';
        if (write(pipefd[1], &r, 1) != 1)
            _exit(2);
        _exit(0);
    }
    assert_int_equal(read(pipefd[0], &result, 1), 1);
    waitpid(pid, NULL, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_int_equal(result, 'y');

    /* Another VM is independent; releasing lets the next one in. */
    other = sp_vm_lock_acquire(f->store, "db", &error);
    assert_non_null(other);
    sp_vm_lock_release(g_steal_pointer(&lock));
    lock = sp_vm_lock_acquire(f->store, "web", &error);
    assert_non_null(lock);
}

static void test_store_path_resolution(void **state)
{
    g_unsetenv(SP_STORE_ENV);
    assert_string_equal(sp_store_resolve_path(NULL), SP_STORE_DEFAULT_PATH);
    g_setenv(SP_STORE_ENV, "/tmp/env.db", TRUE);
    assert_string_equal(sp_store_resolve_path(NULL), "/tmp/env.db");
    assert_string_equal(sp_store_resolve_path("/tmp/opt.db"), "/tmp/opt.db");
    g_unsetenv(SP_STORE_ENV);
}

/* Backup sessions of the system's store put their NBD socket in /run/stillpoint (root's, not
 * persistent), not in /var/lib beside the store; a private store keeps it beside itself. Either
 * way alone in a directory of its own (stillpointd gives it to its caller). */
static void test_backup_socket_goes_to_run(void **state)
{
    g_autofree char *system = sp_backup_socket_path(SP_STORE_DEFAULT_PATH, "web");
    g_autofree char *private = sp_backup_socket_path("/srv/test/store.db", "web");

    assert_string_equal(system, "/run/stillpoint/web.nbd/nbd.sock");
    assert_string_equal(private, "/srv/test/store.db.web.nbd/nbd.sock");
}

static int bind_unix_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0 && strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* stillpointd gives a session's socket to its caller through its directory's fd: never through
 * a symlink, never a directory that is not its own, nothing for root or a bare socket. */
static void test_backup_socket_given_by_fd(void **state)
{
    g_autofree char *tmp = g_dir_make_tmp("sp-give-XXXXXX", NULL);
    g_autofree char *dir = g_build_filename(tmp, "s.nbd", NULL);
    g_autofree char *sock = g_build_filename(dir, SP_BACKUP_SOCKET_NAME, NULL);
    g_autofree char *link = g_build_filename(tmp, "l.nbd", NULL);
    g_autofree char *via_link = g_build_filename(link, SP_BACKUP_SOCKET_NAME, NULL);
    g_autofree char *bare = g_build_filename(tmp, "bare.sock", NULL);
    struct stat st;
    GError *error = NULL;
    int listener;

    (void)state;
    assert_int_equal(g_mkdir(dir, 0700), 0);
    listener = bind_unix_socket(sock);
    assert_int_equal(symlink(dir, link), 0);
    assert_false(sp_backup_socket_give(via_link, 65534, &error)); /* O_NOFOLLOW */
    g_clear_error(&error);
    assert_true(sp_backup_socket_give(sock, 0, NULL));
    assert_true(sp_backup_socket_give(bare, 65534, NULL));
    if (geteuid() == 0) {
        g_autofree char *file = g_build_filename(tmp, "f.nbd", NULL);
        g_autofree char *not_sock = g_build_filename(file, SP_BACKUP_SOCKET_NAME, NULL);
        g_autofree char *lnk = g_build_filename(tmp, "k.nbd", NULL);
        g_autofree char *sock_link = g_build_filename(lnk, SP_BACKUP_SOCKET_NAME, NULL);

        assert_true(sp_backup_socket_give(sock, 65534, NULL));
        assert_int_equal(lstat(sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode) && st.st_uid == 65534 && (st.st_mode & 0777) == 0600);
        /* The directory stays root's: the caller reaches the socket and can leave nothing. */
        assert_int_equal(stat(dir, &st), 0);
        assert_true(st.st_uid == 0 && (st.st_mode & 0777) == 0711);
        /* The caller's now: not given again. */
        assert_false(sp_backup_socket_give(sock, 65533, &error));
        g_clear_error(&error);
        /* Only a socket is given, never what a symlink in its place points at. */
        assert_int_equal(g_mkdir(file, 0700), 0);
        assert_true(g_file_set_contents(not_sock, "", 0, NULL));
        assert_false(sp_backup_socket_give(not_sock, 65534, &error));
        g_clear_error(&error);
        assert_int_equal(g_mkdir(lnk, 0700), 0);
        assert_int_equal(symlink(not_sock, sock_link), 0);
        assert_false(sp_backup_socket_give(sock_link, 65534, &error));
        assert_int_equal(stat(not_sock, &st), 0);
        assert_true(st.st_uid == 0 && (st.st_mode & 0777) != 0600);
        g_unlink(sock_link);
        g_rmdir(lnk);
        g_unlink(not_sock);
        g_rmdir(file);
    } else {
        assert_false(sp_backup_socket_give(sock, 65534, &error)); /* only root can give */
    }
    g_clear_error(&error);
    close(listener);
    g_unlink(link);
    g_unlink(sock);
    g_rmdir(dir);
    g_rmdir(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vm_add_get_list_remove, setup, teardown),
        cmocka_unit_test(test_vm_name_rejects_path_characters),
        cmocka_unit_test(test_checkpoint_name_limits),
        cmocka_unit_test_setup_teardown(test_checkpoints_form_a_tree_and_track_current, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_v7_store_gains_the_checkpoints_operation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_done_with_checkpoint_atomically, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_window_step_is_seen_by_a_recovering_process,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_locker_gets_busy_naming_the_holder, setup,
                                        teardown),
        cmocka_unit_test(test_store_path_resolution),
        cmocka_unit_test(test_backup_socket_goes_to_run),
        cmocka_unit_test(test_backup_socket_given_by_fd),
        cmocka_unit_test_setup_teardown(test_image_formats_are_recorded_not_guessed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_v5_store_migrates_overlay_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_disks_are_recorded_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_disks_duplicate_name_registers_nothing, setup,
                                        teardown),
        cmocka_unit_test(test_vm_disk_spec_errors_name_the_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
