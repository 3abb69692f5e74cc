/* The stillpoint CLI's schedules and retention: "checkpoint retention VM --keep N" merges away the
 * oldest checkpoints beyond N; "schedule create VM" writes a systemd timer and service that make a
 * checkpoint on a calendar and then apply the retention, and enables the timer when systemd runs;
 * "schedule list" shows each timer's next and last run and the last run's result (systemctl
 * show); "schedule remove VM" disables the timer and deletes both units. */
#include <gio/gio.h>
#include <stdio.h>

#include "cli.h"
#include "stillpoint/backup.h"
#include "stillpoint/ops.h"
#include "stillpoint/retention.h"
#include "stillpoint/schedule.h"

static struct {
    int keep;
    gboolean all;
} retention_opt = {.keep = -1};

const GOptionEntry sp_cli_retention_options[] = {
    {"keep", 0, 0, G_OPTION_ARG_INT, &retention_opt.keep,
     "How many of the schedules' checkpoints to keep (the newest)", "N"},
    {"all", 0, 0, G_OPTION_ARG_NONE, &retention_opt.all,
     "Count and merge every checkpoint, also those users, backups and apply made", NULL},
    G_OPTION_ENTRY_NULL};

static gboolean retention_args(int argc, GError **error)
{
    if (argc == 2 && retention_opt.keep >= 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "checkpoint retention: expected one VM name and --keep N (N >= 0)");
    return FALSE;
}

/* What retention prints, directly and through stillpointd. */
static gboolean retention_done(const char *vm, guint merged)
{
    int keep = retention_opt.keep;

    if (sp_cli_globals.json) {
        g_autoptr(SpJson) out = sp_json_new_object();
        sp_json_object_set_string(out, "event", "retention");
        sp_json_object_set_string(out, "vm", vm);
        sp_json_object_set_int(out, "merged", merged);
        sp_json_object_set_int(out, "keep", keep);
        sp_cli_print_json(out);
    } else if (!sp_cli_globals.quiet) {
        fprintf(stderr, "stillpoint: VM '%s': %u checkpoint(s) merged away, at most %d kept\n",
                vm, merged, keep);
    }
    return TRUE;
}

gboolean sp_cli_retention(int argc, char **argv, GError **error)
{
    g_auto(SpCliVm) v = {0};
    guint merged = 0;

    if (!retention_args(argc, error) || !sp_cli_open_vm(argv[1], TRUE, &v, error))
        return FALSE;
    sp_cli_defer_termination();
    if (!sp_retention_apply(v.store, v.vm, (guint)retention_opt.keep, retention_opt.all,
                            &(SpOpReport){.progress = sp_cli_progress}, &merged, error))
        return FALSE;
    return retention_done(v.vm->name, merged);
}

gboolean sp_cli_retention_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;
    guint32 merged = 0;

    if (!retention_args(argc, error) ||
        (r = sp_daemon_call(c, "ApplyRetention",
                            g_variant_new_parsed("(%s, {'keep': <%u>, 'all': <%b>})", argv[1],
                                                 (guint32)retention_opt.keep, retention_opt.all),
                            error)) == NULL)
        return FALSE;
    g_variant_get(r, "(u)", &merged);
    return retention_done(argv[1], merged);
}

/* ---- schedule create ---- */

static struct {
    char *calendar, *unit_dir;
    int keep;
} create_opt = {.keep = -1};

const GOptionEntry sp_cli_schedule_create_options[] = {
    {"on-calendar", 0, 0, G_OPTION_ARG_STRING, &create_opt.calendar,
     "When, as systemd's OnCalendar= (default daily)", "SPEC"},
    {"keep", 0, 0, G_OPTION_ARG_INT, &create_opt.keep,
     "After each run, merge away the oldest checkpoints beyond N", "N"},
    {"unit-dir", 0, 0, G_OPTION_ARG_FILENAME, &create_opt.unit_dir,
     "Where to write the units (default " SP_SCHEDULE_UNIT_DIR "; elsewhere they are only "
     "written, not enabled; working directly only)", "DIR"},
    G_OPTION_ENTRY_NULL};

static const char *create_calendar(void)
{
    return create_opt.calendar != NULL ? create_opt.calendar : "daily";
}

/* What schedule create prints (doc: sp_schedule_create), directly and through stillpointd. */
static void print_written(const SpJson *doc, gboolean json)
{
    const char *timer = sp_json_object_get_string(doc, "timer");

    if (json) {
        g_autoptr(SpJson) out = sp_json_copy(doc);
        sp_json_free(sp_json_object_take(out, "unit_dir"));
        sp_json_free(sp_json_object_take(out, "systemd_running"));
        sp_cli_print_json(out);
    } else if (sp_json_object_get_bool(doc, "enabled", FALSE)) {
        printf("wrote %s and its service, enabled and started the timer (see: stillpoint "
               "schedule list)\n",
               timer);
    } else {
        printf("wrote %s and its service in %s; systemd %s: enable it with: systemctl "
               "daemon-reload && systemctl enable --now %s\n",
               timer, sp_json_object_get_string(doc, "unit_dir"),
               sp_json_object_get_bool(doc, "systemd_running", FALSE)
                   ? "does not read that directory" : "is not running",
               timer);
    }
}

gboolean sp_cli_schedule_create(int argc, char **argv, GError **error)
{
    const char *dir = create_opt.unit_dir != NULL ? create_opt.unit_dir : SP_SCHEDULE_UNIT_DIR;
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpJson) doc = NULL;

    if (!sp_cli_expect(argc, 2, "schedule create", "one VM name (see --help)", error))
        return FALSE;
    if (!sp_schedule_calendar_valid(create_calendar(), error) ||
        (store = sp_cli_open_store(error)) == NULL ||
        (doc = sp_schedule_create(store, dir, argv[1], create_calendar(), create_opt.keep,
                                  self != NULL ? self : "stillpoint", error)) == NULL)
        return FALSE;
    print_written(doc, sp_cli_globals.json);
    return TRUE;
}

/* The unit directory is stillpointd's own: a caller never chooses where root writes units. */
static gboolean no_unit_dir(const char *unit_dir, GError **error)
{
    if (unit_dir == NULL)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "--unit-dir works only directly (as root): stillpointd writes its units where "
                "systemd reads them");
    return FALSE;
}

gboolean sp_cli_schedule_create_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    GVariantBuilder opts;

    if (!sp_cli_expect(argc, 2, "schedule create", "one VM name (see --help)", error) ||
        !no_unit_dir(create_opt.unit_dir, error))
        return FALSE;
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    sp_daemon_add_string(&opts, "on_calendar", create_calendar());
    if (create_opt.keep >= 0)
        g_variant_builder_add(&opts, "{sv}", "keep", g_variant_new_uint32((guint32)create_opt.keep));
    return sp_daemon_call_document(c, "CreateSchedule",
                                   g_variant_new("(sa{sv})", argv[1], &opts), print_written,
                                   error);
}

/* ---- schedule list ---- */

static char *local_time(const char *iso)
{
    g_autoptr(GDateTime) t = iso != NULL ? g_date_time_new_from_iso8601(iso, NULL) : NULL;
    g_autoptr(GDateTime) local = t != NULL ? g_date_time_to_local(t) : NULL;
    return local != NULL ? g_date_time_format(local, "%Y-%m-%d %H:%M:%S") : g_strdup("-");
}

static void print_schedules(const SpJson *list, gboolean with_state)
{
    if (sp_json_array_len(list) == 0) {
        printf("no schedules\n");
        return;
    }
    if (with_state)
        printf("%-16s %-20s %-5s %-9s %-19s %-19s %s\n", "VM", "CALENDAR", "KEEP", "TIMER",
               "NEXT", "LAST", "RESULT");
    else
        printf("%-16s %-20s %s\n", "VM", "CALENDAR", "KEEP");
    for (size_t i = 0; i < sp_json_array_len(list); i++) {
        const SpJson *e = sp_json_array_get(list, i);
        g_autofree char *keep = sp_json_object_get(e, "keep") != NULL
                                    ? g_strdup_printf("%" G_GINT64_FORMAT,
                                                      sp_json_object_get_int(e, "keep", 0))
                                    : g_strdup("-");
        g_autofree char *next = local_time(sp_json_object_get_string(e, "next"));
        g_autofree char *last = local_time(sp_json_object_get_string(e, "last"));
        const char *result = sp_json_object_get_string(e, "result");
        if (!with_state) {
            printf("%-16s %-20s %s\n", sp_json_object_get_string(e, "vm"),
                   sp_json_object_get_string(e, "on_calendar"), keep);
            continue;
        }
        printf("%-16s %-20s %-5s %-9s %-19s %-19s %s\n", sp_json_object_get_string(e, "vm"),
               sp_json_object_get_string(e, "on_calendar"), keep,
               sp_json_object_get_string(e, "enabled"), next, last,
               result == NULL ? "-" : g_str_equal(result, "success") || g_str_equal(result, "running")
                                          ? result
                                          : "failed");
    }
}

/* What schedule list prints (doc: sp_schedule_list), directly and through stillpointd. */
static void print_list(const SpJson *doc, gboolean json)
{
    if (json)
        sp_cli_print_json(doc);
    else
        print_schedules(sp_json_object_get(doc, "schedules"),
                        sp_json_object_get_bool(doc, "systemd", FALSE));
}

static char *units_dir_opt;

/* schedule list and remove: where the units are. */
const GOptionEntry sp_cli_schedule_units_options[] = {
    {"unit-dir", 0, 0, G_OPTION_ARG_FILENAME, &units_dir_opt,
     "Where the units are (default " SP_SCHEDULE_UNIT_DIR "; working directly only)", "DIR"},
    G_OPTION_ENTRY_NULL};

static const char *units_dir(void)
{
    return units_dir_opt != NULL ? units_dir_opt : SP_SCHEDULE_UNIT_DIR;
}

static gboolean list_args(int argc, GError **error)
{
    return argc == 1 || sp_cli_expect(argc, 2, "schedule list", "at most one VM name", error);
}

gboolean sp_cli_schedule_list(int argc, char **argv, GError **error)
{
    g_autoptr(SpJson) doc = NULL;

    if (!list_args(argc, error) ||
        (doc = sp_schedule_list(units_dir(), argc == 2 ? argv[1] : NULL, error)) == NULL)
        return FALSE;
    print_list(doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_schedule_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    if (!list_args(argc, error) || !no_unit_dir(units_dir_opt, error))
        return FALSE;
    return sp_daemon_call_document(c, "ListSchedules",
                                   g_variant_new("(s)", argc == 2 ? argv[1] : ""), print_list,
                                   error);
}

/* ---- schedule remove ---- */

/* What schedule remove prints (doc: sp_schedule_remove), directly and through stillpointd. */
static void print_removed(const SpJson *doc, gboolean json)
{
    if (json)
        sp_cli_print_json(doc);
    else if (!sp_cli_globals.quiet)
        printf("removed the schedule of VM '%s' (%s%s and its service)\n",
               sp_json_object_get_string(doc, "vm"), sp_json_object_get_string(doc, "timer"),
               sp_json_object_get_bool(doc, "disabled", FALSE) ? " stopped, disabled" : "");
}

gboolean sp_cli_schedule_remove(int argc, char **argv, GError **error)
{
    g_autoptr(SpJson) doc = NULL;

    if (!sp_cli_expect(argc, 2, "schedule remove", "one VM name", error) ||
        (doc = sp_schedule_remove(units_dir(), argv[1], error)) == NULL)
        return FALSE;
    print_removed(doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_schedule_remove_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    if (!sp_cli_expect(argc, 2, "schedule remove", "one VM name", error) ||
        !no_unit_dir(units_dir_opt, error))
        return FALSE;
    return sp_daemon_call_document(c, "RemoveSchedule", g_variant_new("(s)", argv[1]),
                                   print_removed, error);
}
