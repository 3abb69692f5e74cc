/* Issue 15 item 3: images are opened and created only in directories nobody else can change,
 * new files are created exclusively, and a recorded image path that now names another file or a
 * symlink is refused (host/lib/image-path.c, and the store's identity records). Real
 * directories, real modes, real renames. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-path.h"
#include "stillpoint/store.h"

typedef struct {
    char *root; /* a 0700 directory of ours under $TMPDIR */
} Fixture;

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    f->root = g_dir_make_tmp("sp-image-path-XXXXXX", NULL);
    assert_non_null(f->root);
    *state = f;
    return 0;
}

static void remove_tree(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;
    while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        GStatBuf st;
        if (g_lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
            g_chmod(child, 0700);
            remove_tree(child);
        } else {
            g_unlink(child);
        }
    }
    g_rmdir(path);
}

static int teardown(void **state)
{
    Fixture *f = *state;
    remove_tree(f->root);
    g_free(f->root);
    g_free(f);
    return 0;
}

static char *make_dir(const char *parent, const char *name, mode_t mode)
{
    char *path = g_build_filename(parent, name, NULL);
    assert_int_equal(g_mkdir(path, 0700), 0);
    assert_int_equal(chmod(path, mode), 0); /* chmod: the umask does not apply */
    return path;
}

static void assert_refused(const char *dir, GIOErrorEnum code, const char *says)
{
    g_autoptr(GError) error = NULL;
    assert_false(sp_image_dir_check(dir, &error));
    assert_non_null(error);
    if (!g_error_matches(error, G_IO_ERROR, code) || strstr(error->message, says) == NULL)
        fail_msg("%s: expected code %d and '%s', got %d: %s", dir, code, says, error->code,
                 error->message);
}

static void test_private_directory_is_accepted(void **state)
{
    Fixture *f = *state;
    g_autofree char *images = make_dir(f->root, "images", 0755);
    g_autoptr(GError) error = NULL;
    assert_true(sp_image_dir_check(f->root, &error));
    assert_true(sp_image_dir_check(images, &error));
    /* The directory of an image, and a path with "." and a trailing slash. */
    g_autofree char *image = g_build_filename(images, "disk.qcow2", NULL);
    g_autofree char *dotted = g_strdup_printf("%s/./images/", f->root);
    assert_true(sp_image_dir_check_for(image, &error));
    assert_true(sp_image_dir_check(dotted, &error));
    assert_null(error);
}

static void test_group_writable_directory_is_refused_with_the_fix(void **state)
{
    Fixture *f = *state;
    g_autofree char *images = make_dir(f->root, "images", 0775);
    g_autofree char *fix = g_strdup_printf("chmod go-w %s", images);
    assert_refused(images, G_IO_ERROR_PERMISSION_DENIED, fix);
    assert_refused(images, G_IO_ERROR_PERMISSION_DENIED, "writable by its group (mode 0775)");
}

/* Sticky keeps others from renaming root's files, not from taking the next overlay's name. */
static void test_sticky_world_writable_directory_is_refused(void **state)
{
    Fixture *f = *state;
    g_autofree char *images = make_dir(f->root, "images", 01777);
    assert_refused(images, G_IO_ERROR_PERMISSION_DENIED, "writable by everyone (mode 1777)");
}

/* /tmp/x (root's, 0755) is safe: in sticky /tmp nobody else renames or removes x. */
static void test_sticky_ancestor_is_accepted_a_writable_one_is_not(void **state)
{
    Fixture *f = *state;
    g_autofree char *sticky = make_dir(f->root, "sticky", 01777);
    g_autofree char *under_sticky = make_dir(sticky, "images", 0755);
    g_autofree char *open_dir = make_dir(f->root, "open", 0777);
    g_autofree char *under_open = make_dir(open_dir, "images", 0755);
    g_autoptr(GError) error = NULL;
    g_autofree char *fix = g_strdup_printf("chmod go-w %s", open_dir);

    assert_true(sp_image_dir_check(under_sticky, &error));
    assert_null(error);
    /* Whoever writes "open" can rename "images" away and put their own in its place. */
    assert_refused(under_open, G_IO_ERROR_PERMISSION_DENIED, fix);
}

static void test_symlink_component_is_refused_naming_the_real_path(void **state)
{
    Fixture *f = *state;
    g_autofree char *real = make_dir(f->root, "real", 0755);
    g_autofree char *link = g_build_filename(f->root, "link", NULL);
    g_autofree char *below = NULL;
    assert_int_equal(symlink(real, link), 0);
    assert_refused(link, G_IO_ERROR_PERMISSION_DENIED, "is a symbolic link");
    assert_refused(link, G_IO_ERROR_PERMISSION_DENIED, real);
    /* Also in the middle of the path. */
    below = make_dir(real, "images", 0755);
    g_free(below);
    below = g_build_filename(link, "images", NULL);
    assert_refused(below, G_IO_ERROR_PERMISSION_DENIED, "is a symbolic link");
}

/* Owner: root or the user stillpoint runs as; anyone else could replace what is in it. */
static void test_directory_of_another_user_is_refused(void **state)
{
    Fixture *f = *state;
    g_autofree char *images = make_dir(f->root, "images", 0755);
    g_autoptr(GError) error = NULL;
    uid_t self = geteuid();
    if (self == 0)
        assert_int_equal(chown(images, 65534, (gid_t)-1), 0); /* nobody's */
    else
        self = self + 1; /* the check, as another user than the directory's owner */
    assert_false(sp_image_dir_check_as(images, self, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED));
    assert_non_null(strstr(error->message, "chown root"));
    assert_non_null(strstr(error->message, "is owned by uid"));
}

static void test_missing_relative_or_not_a_directory_is_refused(void **state)
{
    Fixture *f = *state;
    g_autofree char *missing = g_build_filename(f->root, "missing", NULL);
    g_autofree char *file = g_build_filename(f->root, "file", NULL);
    assert_true(g_file_set_contents(file, "x", 1, NULL));
    assert_refused(missing, G_IO_ERROR_NOT_FOUND, "missing");
    assert_refused(file, G_IO_ERROR_NOT_DIRECTORY, "is not a directory");
    assert_refused("images", G_IO_ERROR_INVALID_ARGUMENT, "not an absolute path");
}

static void test_create_is_exclusive_and_never_follows_a_symlink(void **state)
{
    Fixture *f = *state;
    g_autofree char *path = g_build_filename(f->root, "overlay.qcow2", NULL);
    g_autofree char *planted = g_build_filename(f->root, "planted.qcow2", NULL);
    g_autofree char *victim = g_build_filename(f->root, "victim", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *content = NULL;
    uint64_t dev = 0, ino = 0;
    GStatBuf st;

    assert_true(sp_image_create_exclusive(path, &dev, &ino, &error));
    assert_int_equal(g_lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_ino, ino);
    /* A name that is taken stays untouched. */
    assert_true(g_file_set_contents(path, "theirs", -1, NULL));
    assert_false(sp_image_create_exclusive(path, NULL, NULL, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_EXISTS));
    g_clear_error(&error);
    assert_true(g_file_get_contents(path, &content, NULL, NULL));
    assert_string_equal(content, "theirs");
    /* A dangling symlink planted under the name: nothing is created at its target. */
    assert_int_equal(symlink(victim, planted), 0);
    assert_false(sp_image_create_exclusive(planted, NULL, NULL, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_EXISTS));
    assert_false(g_file_test(victim, G_FILE_TEST_EXISTS));
}

static void test_a_replaced_or_symlinked_image_is_refused(void **state)
{
    Fixture *f = *state;
    g_autofree char *image = g_build_filename(f->root, "disk.qcow2", NULL);
    g_autofree char *other = g_build_filename(f->root, "other", NULL);
    g_autofree char *tmp = g_build_filename(f->root, "tmp", NULL);
    g_autoptr(GError) error = NULL;
    uint64_t dev = 0, ino = 0;

    assert_true(g_file_set_contents(image, "image", -1, NULL));
    assert_true(g_file_set_contents(other, "other", -1, NULL));
    assert_true(sp_image_identify(image, &dev, &ino, &error));
    assert_true(sp_image_same(image, dev, ino, &error));
    assert_null(error);

    /* Replaced by another file (rename over it). */
    assert_true(g_file_set_contents(tmp, "new", -1, NULL));
    assert_int_equal(g_rename(tmp, image), 0);
    assert_false(sp_image_same(image, dev, ino, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG));
    assert_non_null(strstr(error->message, "image path changed outside stillpoint"));
    g_clear_error(&error);

    /* Replaced by a symlink to the very file that was recorded: still refused, never followed. */
    assert_true(sp_image_identify(other, &dev, &ino, &error));
    assert_int_equal(g_unlink(image), 0);
    assert_int_equal(symlink(other, image), 0);
    assert_false(sp_image_same(image, dev, ino, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG));
    assert_non_null(strstr(error->message, "is a symbolic link"));
    g_clear_error(&error);
    assert_false(sp_image_identify(image, NULL, NULL, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE));
}

/* The store keeps each image's identity from when it entered the chain. */
static void test_store_refuses_an_image_that_changed_since_it_was_recorded(void **state)
{
    Fixture *f = *state;
    g_autofree char *db = g_build_filename(f->root, "store.db", NULL);
    g_autofree char *image = g_build_filename(f->root, "disk.raw", NULL);
    g_autofree char *late = g_build_filename(f->root, "late.qcow2", NULL);
    g_autofree char *tmp = g_build_filename(f->root, "tmp", NULL);
    g_autoptr(SpStore) store = sp_store_open(db, NULL);
    g_autoptr(GError) error = NULL;
    SpVm vm = {.name = "web", .qmp_socket = "/run/web.qmp", .driver = "qemu"};
    int64_t vm_id = 0;

    assert_non_null(store);
    assert_true(sp_store_vm_add(store, &vm, &vm_id, &error));
    assert_true(g_file_set_contents(image, "disk", -1, NULL));
    assert_true(sp_store_image_format_record(store, vm_id, image, "raw", &error));
    assert_true(sp_store_image_check(store, vm_id, image, &error));
    assert_null(error);

    assert_true(g_file_set_contents(tmp, "swapped", -1, NULL));
    assert_int_equal(g_rename(tmp, image), 0);
    assert_false(sp_store_image_check(store, vm_id, image, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG));
    g_clear_error(&error);
    /* Recording it again (the next checkpoint create) refuses too: the first record stays. */
    assert_false(sp_store_image_format_record(store, vm_id, image, "raw", &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG));
    g_clear_error(&error);

    /* Recorded before the file existed (as records from older stores): learnt at first use. */
    assert_true(sp_store_image_format_record(store, vm_id, late, "qcow2", &error));
    assert_false(sp_store_image_check(store, vm_id, late, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
    g_clear_error(&error);
    assert_true(g_file_set_contents(late, "late", -1, NULL));
    assert_true(sp_store_image_check(store, vm_id, late, &error));
    assert_true(g_file_set_contents(tmp, "swapped", -1, NULL));
    assert_int_equal(g_rename(tmp, late), 0);
    assert_false(sp_store_image_check(store, vm_id, late, &error));
    assert_true(g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WRONG_ETAG));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_private_directory_is_accepted),
        T(test_group_writable_directory_is_refused_with_the_fix),
        T(test_sticky_world_writable_directory_is_refused),
        T(test_sticky_ancestor_is_accepted_a_writable_one_is_not),
        T(test_symlink_component_is_refused_naming_the_real_path),
        T(test_directory_of_another_user_is_refused),
        T(test_missing_relative_or_not_a_directory_is_refused),
        T(test_create_is_exclusive_and_never_follows_a_symlink),
        T(test_a_replaced_or_symlinked_image_is_refused),
        T(test_store_refuses_an_image_that_changed_since_it_was_recorded),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
