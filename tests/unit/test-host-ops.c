/* The tree edits behind delete and rename (store) and checkpoint lookup, on a real SQLite file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "../../host/lib/fields.h"
#include "stillpoint/ops.h"
#include "stillpoint/store.h"

typedef struct {
    char *dir;
    SpStore *store;
    int64_t vm_id;
    int64_t id[3]; /* a <- b <- c, c current */
} Fixture;

static int64_t add_cp(SpStore *store, int64_t vm_id, const char *name, const char *image,
                      const char *overlay)
{
    g_autoptr(SpCheckpoint) cp = g_new0(SpCheckpoint, 1);
    SpCheckpointDisk *d = g_new0(SpCheckpointDisk, 1);
    g_autoptr(GError) error = NULL;
    int64_t id = 0;
    cp->vm_id = vm_id;
    cp->name = g_strdup(name);
    cp->type = g_strdup("production");
    cp->consistency = g_strdup("application");
    cp->disks = g_ptr_array_new_with_free_func((GDestroyNotify)sp_checkpoint_disk_free);
    d->disk = g_strdup("vda");
    d->node = g_strdup("n");
    d->image = g_strdup(image);
    d->overlay = g_strdup(overlay);
    d->image_format = g_strdup("qcow2");
    g_ptr_array_add(cp->disks, d);
    assert_true(sp_store_checkpoint_add(store, cp, 0, &id, &error));
    return id;
}

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    SpVm vm = {.name = (char *)"web", .qmp_socket = (char *)"", .driver = (char *)"qemu"};
    f->dir = g_dir_make_tmp("sp-ops-XXXXXX", &error);
    path = g_build_filename(f->dir, "store.db", NULL);
    f->store = sp_store_open(path, &error);
    assert_non_null(f->store);
    assert_true(sp_store_vm_add(f->store, &vm, &f->vm_id, &error));
    f->id[0] = add_cp(f->store, f->vm_id, "a", "/i/base", "/i/a");
    f->id[1] = add_cp(f->store, f->vm_id, "b", "/i/a", "/i/b");
    f->id[2] = add_cp(f->store, f->vm_id, "c", "/i/b", "/i/c");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    g_autofree char *path = g_build_filename(f->dir, "store.db", NULL);
    sp_store_close(f->store);
    g_unlink(path);
    for (const char *const *s = (const char *const[]){"-wal", "-shm", NULL}; *s; s++) {
        g_autofree char *p = g_strconcat(path, *s, NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f);
    return 0;
}

static SpVm *get_vm(Fixture *f)
{
    return sp_store_vm_get(f->store, "web", NULL);
}

static void test_remove_moves_children_up_and_current_to_parent(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(SpVm) vm = NULL;

    /* An inner checkpoint: its child moves up to its parent. */
    assert_true(sp_store_checkpoint_remove(f->store, f->id[1], &error));
    list = sp_store_checkpoint_list(f->store, f->vm_id, &error);
    assert_int_equal(list->len, 2);
    assert_int_equal(((SpCheckpoint *)g_ptr_array_index(list, 1))->parent, f->id[0]);
    /* The current one: its parent becomes current. */
    assert_true(sp_store_checkpoint_remove(f->store, f->id[2], &error));
    vm = get_vm(f);
    assert_int_equal(vm->current, f->id[0]);
    /* The last one: no current checkpoint. */
    assert_true(sp_store_checkpoint_remove(f->store, f->id[0], &error));
    sp_vm_free(g_steal_pointer(&vm));
    vm = get_vm(f);
    assert_int_equal(vm->current, 0);
}

static void test_rolled_back_tree_edit_changes_nothing(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(SpVm) vm = NULL;

    assert_true(sp_store_transaction_begin(f->store, &error));
    assert_true(sp_store_checkpoint_set_disk_image(f->store, f->id[2], "vda", "/i/a", &error));
    assert_true(sp_store_checkpoint_remove(f->store, f->id[2], &error));
    sp_store_transaction_rollback(f->store);
    list = sp_store_checkpoint_list(f->store, f->vm_id, &error);
    assert_int_equal(list->len, 3);
    assert_string_equal(
        ((SpCheckpointDisk *)g_ptr_array_index(
             ((SpCheckpoint *)g_ptr_array_index(list, 2))->disks, 0))->image,
        "/i/b");
    vm = get_vm(f);
    assert_int_equal(vm->current, f->id[2]);
}

static void expect_rename_error(Fixture *f, const char *name, gint code)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVm) vm = get_vm(f);
    g_autoptr(SpCheckpoint) cp = NULL;
    assert_false(sp_op_rename(f->store, vm, "a", name, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, code));
    g_clear_error(&error);
    cp = sp_op_find_checkpoint(f->store, vm, "a", &error);
    assert_non_null(cp); /* unchanged */
}

static void test_rename_rules_checked_before_any_change(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVm) vm = get_vm(f);
    g_autofree char *n100 = g_strnfill(100, 'x');
    g_autofree char *n101 = g_strnfill(101, 'x');

    expect_rename_error(f, "", G_IO_ERROR_INVALID_ARGUMENT);
    expect_rename_error(f, n101, G_IO_ERROR_INVALID_ARGUMENT);
    expect_rename_error(f, "a\tb", G_IO_ERROR_INVALID_ARGUMENT);
    expect_rename_error(f, "a\x7f", G_IO_ERROR_INVALID_ARGUMENT);
    expect_rename_error(f, "\xff", G_IO_ERROR_INVALID_ARGUMENT);
    expect_rename_error(f, "#0", G_IO_ERROR_INVALID_ARGUMENT); /* '#N' is an id */
    expect_rename_error(f, "b", G_IO_ERROR_EXISTS);
    assert_true(sp_op_rename(f->store, vm, "a", "y", &error));
    assert_true(sp_op_rename(f->store, vm, "y", n100, &error));
    assert_true(sp_op_rename(f->store, vm, n100, n100, &error)); /* its own name */
    assert_false(sp_op_rename(f->store, vm, "zz", "q", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

static void test_find_by_name_or_id_refuses_ambiguous_names(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVm) vm = get_vm(f);
    g_autofree char *hash = g_strdup_printf("#%" G_GINT64_FORMAT, f->id[1]);
    g_autofree char *bare = g_strdup_printf("%" G_GINT64_FORMAT, f->id[2]);
    g_autoptr(SpCheckpoint) by_hash = sp_op_find_checkpoint(f->store, vm, hash, &error);
    g_autoptr(SpCheckpoint) by_bare = sp_op_find_checkpoint(f->store, vm, bare, &error);
    g_autoptr(SpCheckpoint) none = NULL;

    assert_string_equal(by_hash->name, "b");
    assert_string_equal(by_bare->name, "c");
    /* create does not enforce unique names: a shared one must be given by id. */
    add_cp(f->store, f->vm_id, "a", "/i/c", "/i/d");
    none = sp_op_find_checkpoint(f->store, vm, "a", &error);
    assert_null(none);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
    assert_non_null(strstr(error->message, "give one by its id"));
    g_clear_error(&error);
    none = sp_op_find_checkpoint(f->store, vm, "#999", &error);
    assert_null(none);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

/* A journal record read back from corrupt JSON: a string list with members that are not strings
 * keeps only the strings (never a NULL path for later code to use). */
typedef struct {
    char *name;
    GPtrArray *paths;
} ListRecord;

static void test_corrupt_string_list_keeps_only_strings(void **state)
{
    static const SpField fields[] = {
        SP_FIELD("name", STRING, ListRecord, name),
        SP_FIELD("paths", STRINGS, ListRecord, paths),
    };
    const SpJsonLimits limits = {.max_size = 4096};
    const char *text = "{\"name\":\"d\",\"paths\":[\"/a\",1,null,{},\"/b\"]}";
    g_autoptr(SpJson) doc = NULL;
    SpJsonError jerr = {0};
    ListRecord r = {0};

    (void)state;
    assert_int_equal(sp_json_parse(text, strlen(text), &limits, &doc, &jerr), 0);
    sp_fields_from_json(doc, fields, G_N_ELEMENTS(fields), &r);
    assert_string_equal(r.name, "d");
    assert_int_equal(r.paths->len, 2);
    assert_string_equal(g_ptr_array_index(r.paths, 0), "/a");
    assert_string_equal(g_ptr_array_index(r.paths, 1), "/b");
    sp_fields_clear(fields, G_N_ELEMENTS(fields), &r);
}

/* A name shaped like an id (left by an older store, which took them) never catches '#N': the
 * id wins, and '#0' (a permission probe) finds nothing. */
static void test_hash_argument_is_only_an_id(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    g_autoptr(SpVm) vm = get_vm(f);
    g_autofree char *path = g_build_filename(f->dir, "store.db", NULL);
    g_autofree char *hash = g_strdup_printf("#%" G_GINT64_FORMAT, f->id[1]);
    g_autofree char *sql = g_strdup_printf(
        "UPDATE checkpoints SET name = '%s' WHERE id = %" G_GINT64_FORMAT "; "
        "UPDATE checkpoints SET name = '#0' WHERE id = %" G_GINT64_FORMAT ";",
        hash, f->id[2], f->id[0]);
    g_autoptr(SpCheckpoint) by_hash = NULL, by_zero = NULL;
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    by_hash = sp_op_find_checkpoint(f->store, vm, hash, &error);
    assert_non_null(by_hash);
    assert_int_equal(by_hash->id, f->id[1]);
    by_zero = sp_op_find_checkpoint(f->store, vm, "#0", &error);
    assert_null(by_zero);
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_string_list_keeps_only_strings),
        cmocka_unit_test_setup_teardown(test_hash_argument_is_only_an_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_moves_children_up_and_current_to_parent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_tree_edit_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rename_rules_checked_before_any_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_find_by_name_or_id_refuses_ambiguous_names, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
