/* Shared by the tree operations: checkpoint lookup, qemu-img with progress, the running VM's
 * block graph, QMP block jobs. */
#include "op-util.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <gio/gunixinputstream.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stillpoint/channel.h"
#include "stillpoint/driver.h"
#include "stillpoint/guest-text.h"
#include "stillpoint/store.h"
#include "image-path.h"

#define JOB_POLL_MS 250

void sp_progress_vsay(SpProgressFn progress, gpointer user_data, const char *fmt, va_list ap)
{
    g_autofree char *msg = NULL;
    if (progress == NULL)
        return;
    msg = g_strdup_vprintf(fmt, ap);
    progress(msg, user_data);
}

void sp_op_say(const SpOpReport *report, const char *fmt, ...)
{
    va_list ap;
    if (report == NULL)
        return;
    va_start(ap, fmt);
    sp_progress_vsay(report->progress, report->user_data, fmt, ap);
    va_end(ap);
}

SpJson *sp_op_plan_parse(const char *text, const char *what, const SpJson **ret_disks,
                         GError **error)
{
    g_autoptr(SpJson) root = NULL;
    if (sp_json_parse(text, strlen(text), NULL, &root, NULL) != SP_OK ||
        (*ret_disks = sp_json_object_get(root, "disks")) == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "journal entry is not a valid %s", what);
        return NULL;
    }
    return g_steal_pointer(&root);
}

char *sp_op_plan_serialize(SpJson *root, SpJson *disks)
{
    sp_json_object_set(root, "disks", disks);
    return sp_json_serialize(root, NULL);
}

static GPtrArray *plan_disks(const SpOpPlanForm *form, gconstpointer plan)
{
    return *(GPtrArray *const *)((const char *)plan + form->disks_offset);
}

gpointer sp_op_plan_new(const SpOpPlanForm *form)
{
    gpointer plan = g_malloc0(form->size);
    *(GPtrArray **)((char *)plan + form->disks_offset) = g_ptr_array_new();
    return plan;
}

void sp_op_plan_free(const SpOpPlanForm *form, gpointer plan)
{
    GPtrArray *disks;
    if (plan == NULL)
        return;
    disks = plan_disks(form, plan);
    for (guint i = 0; i < disks->len; i++)
        sp_fields_free(form->disk_fields, form->disk_n, g_ptr_array_index(disks, i));
    g_ptr_array_unref(disks);
    sp_fields_free(form->fields, form->n, plan);
}

char *sp_op_plan_write(const SpOpPlanForm *form, gconstpointer plan)
{
    g_autoptr(SpJson) root = sp_json_new_object();
    SpJson *arr = sp_json_new_array();
    GPtrArray *disks = plan_disks(form, plan);
    sp_fields_to_json(root, form->fields, form->n, plan);
    for (guint i = 0; i < disks->len; i++) {
        SpJson *o = sp_json_new_object();
        sp_fields_to_json(o, form->disk_fields, form->disk_n, g_ptr_array_index(disks, i));
        sp_json_array_append(arr, o);
    }
    return sp_op_plan_serialize(root, arr);
}

gpointer sp_op_plan_read(const SpOpPlanForm *form, const char *text, GError **error)
{
    const SpJson *arr = NULL;
    g_autoptr(SpJson) root = sp_op_plan_parse(text, form->what, &arr, error);
    gpointer plan;
    GPtrArray *disks;
    if (root == NULL)
        return NULL;
    plan = sp_op_plan_new(form);
    disks = plan_disks(form, plan);
    sp_fields_from_json(root, form->fields, form->n, plan);
    for (size_t i = 0; i < sp_json_array_len(arr); i++) {
        gpointer d = form->new_disk();
        sp_fields_from_json(sp_json_array_get(arr, i), form->disk_fields, form->disk_n, d);
        g_ptr_array_add(disks, d);
        if (!form->disk_ok(d)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "journal entry is not a valid %s (disk %u)", form->what, (guint)i);
            sp_op_plan_free(form, plan);
            return NULL;
        }
    }
    return plan;
}

gboolean sp_json_file_read(const char *path, SpJson **ret, gboolean *ret_invalid, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    gsize len = 0;

    *ret = NULL;
    *ret_invalid = FALSE;
    if (!g_file_get_contents(path, &text, &len, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (sp_json_parse(text, len, NULL, ret, NULL) != SP_OK || sp_json_type(*ret) != SP_JSON_OBJECT) {
        g_clear_pointer(ret, sp_json_free);
        *ret_invalid = TRUE;
    }
    return TRUE;
}

static int64_t parse_id(const char *ref)
{
    const char *p = ref[0] == '#' ? ref + 1 : ref;
    char *end = NULL;
    gint64 v;
    if (*p == '\0' || !g_ascii_isdigit(*p))
        return 0;
    v = g_ascii_strtoll(p, &end, 10);
    return (end != NULL && *end == '\0' && v > 0) ? v : 0;
}

SpCheckpoint *sp_op_find_checkpoint(SpStore *store, SpVm *vm, const char *ref, GError **error)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(store, vm->id, error);
    g_autoptr(GString) ids = g_string_new(NULL);
    int64_t id = parse_id(ref);
    guint match = G_MAXUINT, n = 0;

    if (cps == NULL)
        return NULL;
    for (guint i = 0; i < cps->len; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        /* '#N' is an id, never a name: a name of that form (older stores) cannot catch it. */
        if (ref[0] != '#' && g_strcmp0(cp->name, ref) == 0) {
            match = i;
            g_string_append_printf(ids, "%s#%" G_GINT64_FORMAT, n++ ? ", " : "", cp->id);
        }
    }
    if (n > 1) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "VM '%s': %u checkpoints are named '%s' (%s); give one by its id, e.g. '#%"
                    G_GINT64_FORMAT "'",
                    vm->name, n, ref,
                    ids->str, ((SpCheckpoint *)g_ptr_array_index(cps, match))->id);
        return NULL;
    }
    for (guint i = 0; n == 0 && id != 0 && i < cps->len; i++) {
        if (((SpCheckpoint *)g_ptr_array_index(cps, i))->id == id) {
            match = i;
            n = 1;
        }
    }
    if (n == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no checkpoint '%s' (see 'stillpoint checkpoint list %s')",
                    vm->name, ref, vm->name);
        return NULL;
    }
    return g_ptr_array_steal_index(cps, match);
}

gboolean sp_op_connect_qmp_if_running(SpVm *vm, SpQmp **ret_qmp, GError **error)
{
    g_autoptr(GError) local = NULL;
    SpQmp *qmp;

    *ret_qmp = NULL;
    if (vm->qmp_socket == NULL || vm->qmp_socket[0] == '\0')
        return TRUE;
    if (!g_file_test(vm->qmp_socket, G_FILE_TEST_EXISTS))
        return TRUE; /* QEMU removes nothing, but a VM never started has no socket */
    qmp = sp_qmp_connect(vm->qmp_socket, SP_QMP_CONNECT_TIMEOUT_MS, &local);
    if (qmp == NULL) {
        /* A socket file nobody listens on: QEMU is gone. Anything else (a timeout: another
         * client holds QMP) must not be taken for "off": qemu-img would then fight QEMU. */
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
            return TRUE;
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "VM '%s': ", vm->name);
        return FALSE;
    }
    *ret_qmp = qmp;
    return TRUE;
}

typedef struct {
    const SpOpReport *report;
    const char *disk;
    GString *line;
} ProgressParse;

/* qemu-img -p prints "    (12.34/100%)" and a carriage return, over and over. */
static void parse_progress_chunk(ProgressParse *pp, const char *buf, gsize n)
{
    for (gsize i = 0; i < n; i++) {
        if (buf[i] != '\r' && buf[i] != '\n') {
            if (pp->line->len < 128)
                g_string_append_c(pp->line, buf[i]);
            continue;
        }
        const char *open = strchr(pp->line->str, '(');
        if (open != NULL && strstr(open, "/100%)") != NULL)
            pp->report->percent(pp->disk, g_ascii_strtod(open + 1, NULL),
                                pp->report->user_data);
        g_string_truncate(pp->line, 0);
    }
}

guint sp_op_deadline_ms(gint64 bytes, SpTestDeadline which)
{
    const char *env = g_getenv(SP_IMAGE_TIMEOUT_ENV);
    guint64 ms;
    if (env != NULL && g_ascii_strtoull(env, NULL, 10) > 0) {
        ms = g_ascii_strtoull(env, NULL, 10) * 1000;
    } else {
        /* 10 min, plus 2 min per GiB: a slow disk moves more than 8 MiB/s. */
        ms = 600000 + (guint64)MAX(bytes, 0) / (1024 * 1024 * 1024) * 120000;
    }
    return sp_test_deadline_ms(which, (guint)MIN(ms, (guint64)G_MAXUINT));
}

/* What qemu-img will read: the files its argv names (the deadline scales with them). */
static gint64 argv_bytes(const char *const *argv)
{
    gint64 total = 0;
    for (guint i = 0; argv[i] != NULL; i++) {
        GStatBuf st;
        if (argv[i][0] == '/' && g_stat(argv[i], &st) == 0 && S_ISREG(st.st_mode))
            total += st.st_size;
    }
    return total;
}

static gboolean read_some(int fd, GString *into, gsize cap, ProgressParse *pp, gboolean *eof)
{
    char buf[4096];
    gssize n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return TRUE;
    if (n <= 0) {
        *eof = TRUE;
        return TRUE;
    }
    if (pp != NULL)
        parse_progress_chunk(pp, buf, (gsize)n);
    if (into != NULL && into->len < cap)
        g_string_append_len(into, buf, MIN((gsize)n, cap - into->len));
    return TRUE;
}

#define REAP_WAIT_US (10 * G_USEC_PER_SEC)

/* Kills qemu-img at the deadline: a FIFO for a backing file, a stuck NFS mount or a huge copy
 * must not hold the VM lock forever. Waits a bounded time for it to go: a process in I/O that
 * cannot be interrupted (a hard NFS mount) ignores SIGKILL until the I/O ends; it is then left
 * to GLib's child watch. FALSE when it has not gone. */
static gboolean kill_and_reap(GSubprocess *proc)
{
    gint64 until = g_get_monotonic_time() + REAP_WAIT_US;

    g_subprocess_force_exit(proc);
    while (g_subprocess_get_identifier(proc) != NULL) {
        if (g_get_monotonic_time() >= until)
            return FALSE;
        g_usleep(10000);
    }
    return TRUE;
}

gboolean sp_op_qemu_img_run(const SpOpReport *report, const char *disk, const char *const *argv,
                            guint timeout_ms, char **ret_out, GError **error)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GString) line = g_string_new(NULL), out = g_string_new(NULL),
                       err = g_string_new(NULL);
    gboolean with_progress = report != NULL && report->percent != NULL;
    ProgressParse pp = {.report = report, .disk = disk, .line = line};
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gboolean out_eof = FALSE, err_eof = FALSE;
    int out_fd, err_fd;

    g_ptr_array_add(args, (gpointer) "qemu-img");
    for (guint i = 0; argv[i] != NULL; i++)
        g_ptr_array_add(args, (gpointer)argv[i]);
    g_ptr_array_add(args, NULL);
    proc = g_subprocess_newv((const char *const *)args->pdata,
                             G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             error);
    if (proc == NULL) {
        g_prefix_error(error, "cannot run qemu-img: ");
        return FALSE;
    }
    out_fd = g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(g_subprocess_get_stdout_pipe(proc)));
    err_fd = g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(g_subprocess_get_stderr_pipe(proc)));
    while (!out_eof || !err_eof || g_subprocess_get_identifier(proc) != NULL) {
        gint64 left = deadline - g_get_monotonic_time();
        struct pollfd fds[2] = {{.fd = out_eof ? -1 : out_fd, .events = POLLIN},
                                {.fd = err_eof ? -1 : err_fd, .events = POLLIN}};
        if (left <= 0) {
            g_autofree char *cmd = g_strjoinv(" ", (char **)args->pdata);
            gboolean gone = kill_and_reap(proc);
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "%s did not finish within its deadline of %u s and was killed%s (a "
                        "backing file that is a FIFO or on a hung mount? the deadline is set "
                        "with " SP_IMAGE_TIMEOUT_ENV ")",
                        cmd, timeout_ms / 1000 > 0 ? timeout_ms / 1000 : 1,
                        gone ? "" : ", but it has not exited yet (I/O that cannot be "
                                    "interrupted); it is left behind");
            return FALSE;
        }
        if (out_eof && err_eof) {
            g_usleep(5000); /* both pipes closed: the child is exiting */
            continue;
        }
        if (poll(fds, 2, (int)MIN(left / 1000 + 1, 1000)) < 0 && errno != EINTR) {
            int errsv = errno;
            kill_and_reap(proc);
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                        "reading qemu-img's output: %s", g_strerror(errsv));
            return FALSE;
        }
        if (!out_eof && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            read_some(out_fd, ret_out != NULL ? out : NULL, 64 << 20,
                      with_progress ? &pp : NULL, &out_eof);
        if (!err_eof && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_some(err_fd, err, 4096, NULL, &err_eof);
    }
    if (!g_subprocess_wait(proc, NULL, error))
        return FALSE;
    if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)args->pdata);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed: %s", cmd,
                    err->len > 0 ? g_strstrip(err->str) : "no message");
        return FALSE;
    }
    if (ret_out != NULL)
        *ret_out = g_string_free(g_steal_pointer(&out), FALSE);
    return TRUE;
}

gboolean sp_op_qemu_img(const SpOpReport *report, const char *disk, const char *const *argv,
                        GError **error)
{
    guint ms = sp_op_deadline_ms(argv_bytes(argv), SP_TEST_DEADLINE_QEMU_IMG);
    return sp_op_qemu_img_run(report, disk, argv, ms, NULL, error);
}

gboolean sp_op_qemu_img_output(const char *const *argv, char **ret_out, GError **error)
{
    guint ms = sp_op_deadline_ms(argv_bytes(argv), SP_TEST_DEADLINE_QEMU_IMG);
    return sp_op_qemu_img_run(NULL, NULL, argv, ms, ret_out, error);
}

char *sp_op_format_of(SpStore *store, const SpVm *vm, const char *image, GError **error)
{
    g_autofree char *fmt = sp_store_image_format(store, vm->id, image, error);
    if (fmt != NULL && !sp_img_format_valid(fmt, error)) {
        g_prefix_error(error, "image %s: ", image);
        return NULL;
    }
    /* Whatever qemu-img does next opens image by its path: the path must still be the file
     * the store recorded, in a directory nobody else can swap it in until then. */
    if (fmt == NULL || !sp_image_dir_check_for(image, error) ||
        !sp_store_image_check(store, vm->id, image, error)) {
        g_prefix_error(error, "VM '%s': ", vm->name);
        return NULL;
    }
    return g_steal_pointer(&fmt);
}

gboolean sp_op_image_unchanged(SpStore *store, const SpVm *vm, const char *image,
                               GError **error)
{
    g_autoptr(GError) local = NULL;
    if (image == NULL)
        return TRUE;
    if (sp_image_dir_check_for(image, &local) &&
        sp_store_image_check(store, vm->id, image, &local))
        return TRUE;
    /* Gone: the operation itself says what that means (a delete may still finish). */
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return TRUE;
    g_propagate_prefixed_error(error, g_steal_pointer(&local), "VM '%s': ", vm->name);
    return FALSE;
}

/* A backing name relative to the image that names it, as QEMU resolves it. */
static char *resolve_backing(const char *image, const char *backing)
{
    g_autofree char *dir = NULL;
    if (g_path_is_absolute(backing))
        return g_canonicalize_filename(backing, NULL);
    dir = g_path_get_dirname(image);
    return g_canonicalize_filename(backing, dir);
}

gboolean sp_op_chain_check(SpStore *store, const SpVm *vm, const SpImg *top, GError **error)
{
    g_autofree char *path = g_strdup(top->path), *format = g_strdup(top->format);

    for (guint depth = 0; depth < 256; depth++) {
        SpImg cur = {.path = path, .format = format};
        g_auto(GStrv) argv = sp_img_argv_info(&cur, error);
        g_autofree char *json = NULL, *next = NULL, *expected = NULL;
        SpImgLayer l = {0};
        gboolean ok;
        if (argv == NULL || !sp_op_qemu_img_output((const char *const *)argv, &json, error) ||
            !sp_img_layer_parse(json, &l, error)) {
            g_prefix_error(error, "checking the chain of %s: ", top->path);
            return FALSE;
        }
        if (l.backing != NULL) {
            next = resolve_backing(path, l.backing);
            expected = sp_store_image_format(store, vm->id, next, NULL);
            /* The layer opened next must be one the store recorded for this VM (every layer
             * of a chain is, when it enters it), and still the recorded file: a header
             * rewritten to name another file (whoever can write the image) is not followed. */
            if (expected == NULL)
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                            "image %s names %s as its backing file, which is not an image "
                            "stillpoint recorded for VM '%s'; refusing to open it",
                            path, next, vm->name);
            if (expected == NULL || !sp_image_dir_check_for(next, error) ||
                !sp_store_image_check(store, vm->id, next, error)) {
                sp_img_layer_clear(&l);
                g_prefix_error(error, "checking the chain of %s: ", top->path);
                return FALSE;
            }
        }
        ok = sp_img_layer_check(&cur, &l, expected, error);
        if (ok && l.backing != NULL) {
            g_free(path);
            g_free(format);
            path = g_steal_pointer(&next);
            format = g_strdup(l.backing_format);
        }
        if (!ok || l.backing == NULL) {
            sp_img_layer_clear(&l);
            return ok;
        }
        sp_img_layer_clear(&l);
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "image %s: its backing chain is too long",
                top->path);
    return FALSE;
}

void sp_live_image_clear(SpLiveImage *li)
{
    g_clear_pointer(&li->node, g_free);
    g_clear_pointer(&li->root_node, g_free);
    li->found = li->active = FALSE;
}

/* QEMU names a file the way it was opened (maybe through a symlink); the store by real path. */
static gboolean same_file(const char *qemu_name, const char *b)
{
    g_autofree char *a = sp_qmp_local_filename(qemu_name);
    struct stat sa, sb;
    if (a == NULL || b == NULL)
        return FALSE;
    if (strcmp(a, b) == 0)
        return TRUE;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Is filename somewhere in the chain of this image info (query-block's inserted.image)? */
static gboolean chain_has(const SpJson *info, const char *filename, gboolean *ret_top)
{
    *ret_top = TRUE;
    for (guint depth = 0; info != NULL && depth < 1000; depth++) {
        if (same_file(sp_json_object_get_string(info, "filename"), filename))
            return TRUE;
        info = sp_json_object_get(info, "backing-image");
        *ret_top = FALSE;
    }
    return FALSE;
}

gboolean sp_op_node_for_file(SpQmp *qmp, const char *filename, char **ret_node, GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) nodes = NULL;
    sp_json_object_set_bool(args, "flat", true);
    nodes = sp_qmp_execute(qmp, "query-named-block-nodes", g_steal_pointer(&args),
                           SP_QMP_DEFAULT_TIMEOUT_MS, error);
    if (nodes == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(nodes); i++) {
        const SpJson *n = sp_json_array_get(nodes, i);
        const char *drv = sp_json_object_get_string(n, "drv");
        /* The protocol node (drv "file") names the same file: we want the format node. */
        if (same_file(sp_json_object_get_string(n, "file"), filename) &&
            g_strcmp0(drv, "file") != 0 && g_strcmp0(drv, "host_device") != 0) {
            *ret_node = g_strdup(sp_json_object_get_string(n, "node-name"));
            return TRUE;
        }
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "image %s is in the VM's block graph but has no named node", filename);
    return FALSE;
}

gboolean sp_op_live_find(SpQmp *qmp, const char *image, SpLiveImage *ret, GError **error)
{
    g_autoptr(SpJson) blocks = sp_qmp_execute(qmp, "query-block", NULL, SP_QMP_DEFAULT_TIMEOUT_MS,
                                              error);
    memset(ret, 0, sizeof(*ret));
    if (blocks == NULL)
        return FALSE;
    for (size_t i = 0; i < sp_json_array_len(blocks); i++) {
        const SpJson *ins = sp_json_object_get(sp_json_array_get(blocks, i), "inserted");
        gboolean top = FALSE;
        if (ins == NULL || !chain_has(sp_json_object_get(ins, "image"), image, &top))
            continue;
        ret->found = TRUE;
        ret->active = top;
        ret->root_node = g_strdup(sp_json_object_get_string(ins, "node-name"));
        if (!sp_op_node_for_file(qmp, image, &ret->node, error)) {
            sp_live_image_clear(ret);
            return FALSE;
        }
        return TRUE;
    }
    return TRUE;
}

static const SpJson *find_job(const SpJson *jobs, const char *job_id)
{
    for (size_t i = 0; i < sp_json_array_len(jobs); i++) {
        const SpJson *j = sp_json_array_get(jobs, i);
        if (g_strcmp0(sp_json_object_get_string(j, "device"), job_id) == 0)
            return j;
    }
    return NULL;
}

static gboolean job_command(SpQmp *qmp, const char *command, const char *key, const char *job_id,
                            GError **error)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    g_autoptr(SpJson) ret = NULL;
    sp_json_object_set_string(args, key, job_id);
    ret = sp_qmp_execute(qmp, command, g_steal_pointer(&args), SP_QMP_DEFAULT_TIMEOUT_MS, error);
    return ret != NULL;
}

/* A job past its deadline is cancelled (force: an active commit that is ready gives up without
 * pivoting, the VM stays on top) and dismissed once it concluded, so that the next run finds no
 * job and no node held by it. */
static void job_abandon(SpQmp *qmp, const char *job_id)
{
    g_autoptr(SpJson) args = sp_json_new_object();
    gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    sp_json_object_set_string(args, "device", job_id);
    sp_json_object_set_bool(args, "force", true);
    sp_json_free(sp_qmp_execute(qmp, "block-job-cancel", g_steal_pointer(&args),
                                SP_QMP_DEFAULT_TIMEOUT_MS, NULL));
    while (g_get_monotonic_time() < until) {
        g_autoptr(SpJson) jobs = sp_qmp_execute(qmp, "query-block-jobs", NULL,
                                                SP_QMP_DEFAULT_TIMEOUT_MS, NULL);
        const SpJson *job = jobs != NULL ? find_job(jobs, job_id) : NULL;
        if (job == NULL)
            return;
        if (g_strcmp0(sp_json_object_get_string(job, "status"), "concluded") == 0) {
            job_command(qmp, "job-dismiss", "id", job_id, NULL);
            return;
        }
        sp_json_free(sp_qmp_wait_event(qmp, "JOB_STATUS_CHANGE", "id", job_id, JOB_POLL_MS, NULL));
    }
}

gboolean sp_op_block_job_wait(SpQmp *qmp, const char *job_id, const SpOpReport *report,
                              const char *disk, gboolean *ret_gone, GError **error)
{
    gboolean completing = FALSE, first = TRUE;
    double last = -1;
    gint64 deadline = 0;
    guint deadline_ms = 0;

    if (ret_gone != NULL)
        *ret_gone = FALSE;
    for (;;) {
        g_autoptr(SpJson) jobs = sp_qmp_execute(qmp, "query-block-jobs", NULL,
                                                SP_QMP_DEFAULT_TIMEOUT_MS, error);
        const SpJson *job;
        const char *status;
        g_autoptr(SpJson) ev = NULL;
        if (jobs == NULL)
            return FALSE;
        job = find_job(jobs, job_id);
        if (job == NULL) {
            if (first && ret_gone != NULL)
                *ret_gone = TRUE;
            return TRUE;
        }
        if (first) {
            /* The overall deadline, from the job's size when first seen. */
            deadline_ms = sp_op_deadline_ms(sp_json_object_get_int(job, "len", 0),
                                            SP_TEST_DEADLINE_JOB);
            deadline = g_get_monotonic_time() + (gint64)deadline_ms * 1000;
        }
        first = FALSE;
        status = sp_json_object_get_string(job, "status");
        {
            int64_t len = sp_json_object_get_int(job, "len", 0);
            int64_t off = sp_json_object_get_int(job, "offset", 0);
            double pct = len > 0 ? 100.0 * (double)off / (double)len : 0;
            if (report != NULL && report->percent != NULL && pct != last)
                report->percent(disk, pct, report->user_data);
            last = pct;
        }
        if (g_strcmp0(status, "concluded") == 0) {
            const char *err = sp_json_object_get_string(job, "error");
            /* QEMU's job error may quote a path the guest's image named. */
            g_autofree char *msg = err != NULL ? sp_guest_text(err) : NULL;
            if (!job_command(qmp, "job-dismiss", "id", job_id, error))
                return FALSE;
            if (msg != NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "block job %s failed: %s",
                            job_id, msg);
                return FALSE;
            }
            return TRUE;
        }
        if (g_get_monotonic_time() >= deadline) {
            job_abandon(qmp, job_id);
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "block job %s did not finish within its deadline of %u s (%.0f%% done) "
                        "and was cancelled; running the operation again goes on from where it "
                        "stopped (the deadline is set with " SP_IMAGE_TIMEOUT_ENV ")",
                        job_id, deadline_ms / 1000 > 0 ? deadline_ms / 1000 : 1, MAX(last, 0));
            return FALSE;
        }
        if (g_strcmp0(status, "ready") == 0 && !completing) {
            /* An active commit mirrors writes until told to pivot: the VM then runs on base. */
            if (!job_command(qmp, "block-job-complete", "device", job_id, error))
                return FALSE;
            completing = TRUE;
        }
        /* Wakes on the job's next status event, or polls again for progress. */
        ev = sp_qmp_wait_event(qmp, "JOB_STATUS_CHANGE", "id", job_id, JOB_POLL_MS, NULL);
    }
}

gboolean sp_op_unlink(const char *path, GError **error)
{
    if (g_unlink(path) != 0 && errno != ENOENT) {
        int errsv = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), "removing %s: %s", path,
                    g_strerror(errsv));
        return FALSE;
    }
    return TRUE;
}

gboolean sp_op_images_ours(const SpVm *vm, const char *what, GError **error)
{
    if (!sp_driver_ops_of(vm)->opaque_storage)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "VM '%s' uses the hook driver: its checkpoints live in the hook's storage (LVM, "
                "ZFS, a cloud API), which stillpoint cannot %s; do it there ('checkpoint delete' "
                "asks the hook to delete a checkpoint)",
                vm->name, what);
    return FALSE;
}
