/* The stillpoint CLI's schedules and retention: "checkpoint retention VM --keep N" merges away the
 * oldest checkpoints beyond N; "schedule create VM" writes a systemd timer and service that make a checkpoint on
 * a calendar and then apply the retention. */
#include "cli-schedule.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stillpoint/backup.h"
#include "stillpoint/ops.h"

static gint oldest_first(gconstpointer a, gconstpointer b)
{
    const SpCheckpoint *x = *(SpCheckpoint *const *)a, *y = *(SpCheckpoint *const *)b;
    return x->created_us != y->created_us ? (x->created_us < y->created_us ? -1 : 1)
                                          : (x->id < y->id ? -1 : x->id > y->id);
}

/* The checkpoint an open backup session stands on is not the retention's to merge. */
static int64_t session_checkpoint(SpStore *store, SpVm *vm)
{
    g_autoptr(SpJson) s = sp_backup_status(store, vm, NULL);
    if (s == NULL || g_strcmp0(sp_json_object_get_string(s, "state"), "closed") == 0)
        return 0;
    return sp_json_object_get_int(sp_json_object_get(s, "checkpoint"), "id", 0);
}

/* Retention's own: the checkpoints schedules made, or every one when the user says so (a
 * "before upgrade" is never merged away by a timer). */
static GPtrArray *retention_candidates(SpStore *store, SpVm *vm, gboolean all, GError **error)
{
    g_autoptr(GPtrArray) cps = sp_store_checkpoint_list(store, vm->id, error);
    if (cps == NULL)
        return NULL;
    for (guint i = cps->len; i-- > 0;) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        if (!all && g_strcmp0(cp->origin, SP_ORIGIN_SCHEDULE) != 0)
            g_ptr_array_remove_index(cps, i);
    }
    g_ptr_array_sort(cps, oldest_first);
    return g_steal_pointer(&cps);
}

/* Deletes (merges) the oldest candidates until at most keep remain. */
static gboolean apply_retention(SpStore *store, SpVm *vm, guint keep, gboolean all,
                                guint *ret_deleted, GError **error)
{
    g_autoptr(GPtrArray) cps = retention_candidates(store, vm, all, error);
    SpOpReport report = {.progress = progress_cb};
    int64_t busy = session_checkpoint(store, vm);
    guint n, deleted = 0;
    if (cps == NULL)
        return FALSE;
    n = cps->len;
    for (guint i = 0; i < cps->len && n > keep; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, cp->id);
        if (cp->id == busy)
            continue;
        if (!globals.quiet)
            fprintf(stderr, "stillpoint: retention: merging away checkpoint '%s' (%u kept)\n",
                    cp->name, keep);
        if (!sp_op_delete(store, vm, ref, FALSE, &report, error)) {
            g_prefix_error(error, "retention of VM '%s' (keep %u): ", vm->name, keep);
            return FALSE;
        }
        n--;
        deleted++;
    }
    *ret_deleted = deleted;
    return TRUE;
}

int sp_cli_retention(int argc, char **argv)
{
    int keep = -1;
    gboolean all = FALSE;
    const GOptionEntry entries[] = {
        {"keep", 0, 0, G_OPTION_ARG_INT, &keep,
         "How many of the schedules' checkpoints to keep (the newest)", "N"},
        {"all", 0, 0, G_OPTION_ARG_NONE, &all,
         "Count and merge every checkpoint, also those users, backups and apply made", NULL},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVmLock) lock = NULL;
    g_autoptr(SpVm) vm = NULL;
    guint deleted = 0;

    if (!parse_options("VM", "Merge away the oldest checkpoints the VM's schedules made beyond "
                             "--keep N (with --all: of every checkpoint).", entries,
                       &argc, &argv, &error))
        goto fail;
    if (argc != 2 || keep < 0) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint retention: expected one VM name and --keep N (N >= 0)");
        goto fail;
    }
    if (!open_vm(argv[1], TRUE, &store, &lock, &vm, &error))
        goto fail;
    defer_termination();
    if (!apply_retention(store, vm, (guint)keep, all, &deleted, &error))
        goto fail;
    if (globals.json) {
        g_autoptr(SpJson) out = sp_json_new_object();
        sp_json_object_set_string(out, "event", "retention");
        sp_json_object_set_string(out, "vm", vm->name);
        sp_json_object_set_int(out, "merged", deleted);
        sp_json_object_set_int(out, "keep", keep);
        print_json(out);
    } else if (!globals.quiet) {
        fprintf(stderr, "stillpoint: VM '%s': %u checkpoint(s) merged away, at most %d kept\n",
                vm->name, deleted, keep);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

#define CALENDAR_MAX 256
#define CALENDAR_CHECK_TIMEOUT_MS 5000

typedef struct {
    gboolean done, timed_out;
    gboolean ok;
} CalendarCheck;

static void calendar_waited_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    CalendarCheck *c = data;
    c->ok = g_subprocess_wait_check_finish(G_SUBPROCESS(source), res, NULL);
    c->done = TRUE;
}

static gboolean calendar_timeout_cb(gpointer data)
{
    ((CalendarCheck *)data)->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

/* systemd-analyze calendar SPEC, within a deadline. FALSE when it cannot be run (not installed):
 * then the character set alone decides. */
static gboolean calendar_ask_systemd(const char *spec, gboolean *ret_valid)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GSource) timer = NULL;
    CalendarCheck c = {0};

    g_main_context_push_thread_default(ctx);
    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                            NULL, "systemd-analyze", "calendar", "--", spec, NULL);
    if (proc != NULL) {
        g_subprocess_wait_async(proc, NULL, calendar_waited_cb, &c);
        timer = g_timeout_source_new(CALENDAR_CHECK_TIMEOUT_MS);
        g_source_set_callback(timer, calendar_timeout_cb, &c, NULL);
        g_source_attach(timer, ctx);
        while (!c.done && !c.timed_out)
            g_main_context_iteration(ctx, TRUE);
        if (!c.done) {
            g_subprocess_force_exit(proc);
            while (!c.done)
                g_main_context_iteration(ctx, TRUE);
        }
        g_source_destroy(timer);
    }
    g_main_context_pop_thread_default(ctx);
    if (proc == NULL || c.timed_out)
        return FALSE;
    *ret_valid = c.ok;
    return TRUE;
}

/* The spec becomes one line of a unit file: no line break or control character can get in (it
 * would add lines to the unit), nor '%' (a specifier) or '"'/'\\'. Only what calendar
 * expressions are made of: letters, digits, space and * : , . / ~ + - _ (time zones such as
 * America/Buenos_Aires). systemd-analyze, when present, then says whether systemd accepts it. */
static gboolean calendar_valid(const char *spec, GError **error)
{
    size_t len = strlen(spec);
    gboolean valid;

    if (len == 0 || len > CALENDAR_MAX) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--on-calendar: give 1 to %d characters", CALENDAR_MAX);
        return FALSE;
    }
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isalnum(spec[i]) && strchr(" *:,./~+-_", spec[i]) == NULL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "--on-calendar: character %u (0x%02x) is not part of a calendar "
                        "expression (letters, digits, space and *:,./~+-_)",
                        (guint)i + 1, (guint)(guchar)spec[i]);
            return FALSE;
        }
    }
    if (spec[0] == '-' || spec[0] == ' ' || spec[len - 1] == ' ') {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--on-calendar '%s': must not start with '-' or a space, nor end with a space",
                    spec);
        return FALSE;
    }
    if (calendar_ask_systemd(spec, &valid) && !valid) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--on-calendar '%s': systemd does not accept it (see systemd-analyze "
                    "calendar, systemd.time(7))", spec);
        return FALSE;
    }
    return TRUE;
}

/* systemd unit text; every argument is quoted for systemd's command-line parser. */
static char *unit_quote(const char *s)
{
    g_autoptr(GString) out = g_string_new("\"");
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(out, '\\');
        if (*p == '%')
            g_string_append_c(out, '%'); /* "%%" is a literal percent in unit files */
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static gboolean write_units(const char *dir, const char *vm, const char *calendar, int keep,
                            const char *store_path, char **ret_timer, GError **error)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *exe = unit_quote(self != NULL ? self : "stillpoint");
    g_autofree char *store = unit_quote(store_path);
    g_autofree char *qvm = unit_quote(vm);
    g_autofree char *base = g_strdup_printf("stillpoint-checkpoint-%s", vm);
    g_autofree char *service = g_strdup_printf("%s/%s.service", dir, base);
    g_autofree char *timer = g_strdup_printf("%s/%s.timer", dir, base);
    g_autofree char *retention = keep >= 0 ? g_strdup_printf(
                                                 "ExecStartPost=%s --store %s checkpoint retention %s "
                                                 "--keep %d\n",
                                                 exe, store, qvm, keep)
                                           : g_strdup("");
    g_autofree char *service_text = g_strdup_printf(
        "# Written by 'stillpoint schedule'.\n"
        "[Unit]\n"
        "Description=stillpoint: production checkpoint of VM %s\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "ExecStart=%s --store %s checkpoint create --scheduled %s\n"
        "%s",
        vm, exe, store, qvm, retention);
    g_autofree char *timer_text = g_strdup_printf("# Written by 'stillpoint schedule'.\n"
                                                  "[Unit]\n"
                                                  "Description=stillpoint: checkpoints of VM %s "
                                                  "(%s)\n"
                                                  "\n"
                                                  "[Timer]\n"
                                                  "OnCalendar=%s\n"
                                                  "Persistent=true\n"
                                                  "\n"
                                                  "[Install]\n"
                                                  "WantedBy=timers.target\n",
                                                  vm, calendar, calendar);
    if (g_mkdir_with_parents(dir, 0755) != 0 ||
        !g_file_set_contents(service, service_text, -1, error) ||
        !g_file_set_contents(timer, timer_text, -1, error)) {
        if (error != NULL && *error == NULL)
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create %s", dir);
        g_prefix_error(error, "schedule of VM '%s': ", vm);
        return FALSE;
    }
    *ret_timer = g_path_get_basename(timer);
    return TRUE;
}

int sp_cli_schedule(int argc, char **argv)
{
    g_autofree char *calendar = NULL, *unit_dir = NULL, *timer = NULL;
    int keep = -1;
    const GOptionEntry entries[] = {
        {"on-calendar", 0, 0, G_OPTION_ARG_STRING, &calendar,
         "When, as systemd's OnCalendar= (default daily)", "SPEC"},
        {"keep", 0, 0, G_OPTION_ARG_INT, &keep,
         "After each run, merge away the oldest checkpoints beyond N", "N"},
        {"unit-dir", 0, 0, G_OPTION_ARG_FILENAME, &unit_dir,
         "Where to write the units (default /etc/systemd/system)", "DIR"},
        G_OPTION_ENTRY_NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpVm) vm = NULL;

    if (!parse_options("VM", "Write a systemd timer and service that make a production "
                             "checkpoint of VM on a calendar (then apply --keep).",
                       entries, &argc, &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "schedule create: expected one VM name (see --help)");
        goto fail;
    }
    if (!calendar_valid(calendar != NULL ? calendar : "daily", &error) ||
        (store = sp_store_open(sp_store_resolve_path(globals.store_path), &error)) == NULL ||
        (vm = sp_store_vm_get(store, argv[1], &error)) == NULL ||
        !write_units(unit_dir != NULL ? unit_dir : "/etc/systemd/system", vm->name,
                     calendar != NULL ? calendar : "daily", keep, sp_store_get_path(store),
                     &timer, &error))
        goto fail;
    if (globals.json) {
        g_autoptr(SpJson) out = sp_json_new_object();
        sp_json_object_set_string(out, "event", "schedule-written");
        sp_json_object_set_string(out, "vm", vm->name);
        sp_json_object_set_string(out, "timer", timer);
        print_json(out);
    } else {
        printf("wrote %s and its service; enable it with: systemctl daemon-reload && systemctl "
               "enable --now %s\n",
               timer, timer);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}
