/* schedule: a VM's checkpoints on a calendar as a systemd timer and service (schedule.h). The
 * units are written into a unit directory; systemctl is asked only when that directory is
 * systemd's and systemd runs. */
#include "stillpoint/schedule.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>

#include "stillpoint/store.h"

/* ---- calendar ---- */

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
gboolean sp_schedule_calendar_valid(const char *spec, GError **error)
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

/* ---- systemctl ---- */

#define UNIT_PREFIX "stillpoint-checkpoint-"
#define UNIT_MARK "# Written by 'stillpoint schedule'.\n"
/* systemctl answers at once, or waits for a job (enable --now starts the timer, not the
 * checkpoint); a hung manager must not hang the CLI or stillpointd. */
#define SYSTEMCTL_TIMEOUT_S 30

/* systemd runs as the init system (as sd_booted() decides). */
gboolean sp_schedule_systemd_running(void)
{
    return g_file_test("/run/systemd/system", G_FILE_TEST_IS_DIR);
}

typedef struct {
    GMainLoop *loop;
    GAsyncResult *result;
    gboolean timed_out;
} Wait;

static void communicated_cb(GObject *source, GAsyncResult *res, gpointer data)
{
    Wait *w = data;
    w->result = g_object_ref(res);
    g_main_loop_quit(w->loop);
}

static gboolean deadline_cb(gpointer data)
{
    Wait *w = data;
    w->timed_out = TRUE;
    g_main_loop_quit(w->loop);
    return G_SOURCE_REMOVE;
}

/* Runs systemctl ARGS with a deadline; its stdout in *ret_out (may be NULL). A nonzero exit is
 * an error that carries systemctl's message. */
static gboolean systemctl(const char *const *args, char **ret_out, GError **error)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GSource) timer = NULL;
    g_autofree char *out = NULL, *err = NULL, *cmd = NULL;
    Wait w = {0};
    gboolean ok;

    g_ptr_array_add(argv, (gpointer) "systemctl");
    for (guint i = 0; args[i] != NULL; i++)
        g_ptr_array_add(argv, (gpointer)args[i]);
    g_ptr_array_add(argv, NULL);
    cmd = g_strjoinv(" ", (char **)argv->pdata);
    /* Some timestamps (a timer's LastTriggerUSec, NextElapseUSecRealtime) ignore --timestamp=
     * and come in local time: in UTC they can be read back. */
    g_subprocess_launcher_setenv(launcher, "TZ", "UTC", TRUE);
    proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, error);
    if (proc == NULL) {
        g_prefix_error(error, "cannot run systemctl: ");
        return FALSE;
    }
    g_main_context_push_thread_default(ctx);
    w.loop = g_main_loop_new(ctx, FALSE);
    timer = g_timeout_source_new_seconds(SYSTEMCTL_TIMEOUT_S);
    g_source_set_callback(timer, deadline_cb, &w, NULL);
    g_source_attach(timer, ctx);
    g_subprocess_communicate_utf8_async(proc, NULL, cancel, communicated_cb, &w);
    g_main_loop_run(w.loop);
    if (w.result == NULL) {
        /* Past the deadline: kill it, and let the cancelled read finish before we return. */
        g_subprocess_force_exit(proc);
        g_cancellable_cancel(cancel);
        while (w.result == NULL)
            g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(timer);
    ok = g_subprocess_communicate_utf8_finish(proc, w.result, &out, &err, NULL);
    g_clear_object(&w.result);
    g_main_loop_unref(w.loop);
    g_main_context_pop_thread_default(ctx);
    if (w.timed_out) {
        g_subprocess_wait(proc, NULL, NULL);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    "%s did not finish within %d s and was killed", cmd, SYSTEMCTL_TIMEOUT_S);
        return FALSE;
    }
    if (!ok || !g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed: %s", cmd,
                    err != NULL && *g_strstrip(err) != '\0' ? err : "no message");
        return FALSE;
    }
    if (ret_out != NULL)
        *ret_out = g_steal_pointer(&out);
    return TRUE;
}

/* `systemctl show` of UNIT's properties, as a table of NAME -> value. */
static GHashTable *unit_show(const char *unit, const char *props, GError **error)
{
    const char *args[] = {"show", "--timestamp=unix", "-p", props, unit, NULL};
    g_autoptr(GHashTable) table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;

    if (!systemctl(args, &out, error))
        return NULL;
    lines = g_strsplit(out, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        char *eq = strchr(lines[i], '=');
        if (eq != NULL)
            g_hash_table_insert(table, g_strndup(lines[i], (gsize)(eq - lines[i])),
                                g_strdup(eq + 1));
    }
    return g_steal_pointer(&table);
}

/* A timestamp of systemctl show (run with TZ=UTC) as ISO 8601 UTC, or NULL when there is none
 * (empty, "n/a"): "@SECONDS" (--timestamp=unix), or "Sun 2026-12-06 20:18:43 UTC" (the
 * properties that ignore --timestamp=). */
static char *systemd_timestamp_iso(const char *value)
{
    g_autoptr(GDateTime) t = NULL;
    g_auto(GStrv) words = NULL;
    if (value == NULL)
        return NULL;
    if (value[0] == '@') {
        char *end = NULL;
        gint64 seconds = g_ascii_strtoll(value + 1, &end, 10);
        if (end != value + 1 && seconds > 0)
            t = g_date_time_new_from_unix_utc(seconds);
    } else {
        words = g_strsplit(value, " ", -1);
        if (g_strv_length(words) == 4 && g_str_equal(words[3], "UTC")) {
            g_autofree char *iso = g_strdup_printf("%sT%sZ", words[1], words[2]);
            t = g_date_time_new_from_iso8601(iso, NULL);
        }
    }
    if (t == NULL)
        return NULL;
    return g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ");
}

/* ---- units ---- */

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

static char *unit_name(const char *vm, const char *suffix)
{
    return g_strdup_printf(UNIT_PREFIX "%s.%s", vm, suffix);
}

static gboolean write_units(const char *dir, const char *vm, const char *calendar, int keep,
                            const char *cli, const char *store_path, GError **error)
{
    g_autofree char *exe = unit_quote(cli);
    g_autofree char *store = unit_quote(store_path);
    g_autofree char *qvm = unit_quote(vm);
    g_autofree char *service_name = unit_name(vm, "service"), *timer_name = unit_name(vm, "timer");
    g_autofree char *service = g_build_filename(dir, service_name, NULL);
    g_autofree char *timer = g_build_filename(dir, timer_name, NULL);
    g_autofree char *retention = keep >= 0 ? g_strdup_printf(
                                                 "ExecStartPost=%s --store %s checkpoint retention %s "
                                                 "--keep %d\n",
                                                 exe, store, qvm, keep)
                                           : g_strdup("");
    g_autofree char *service_text = g_strdup_printf(
        UNIT_MARK
        "[Unit]\n"
        "Description=stillpoint: production checkpoint of VM %s\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "ExecStart=%s --store %s checkpoint create --scheduled %s\n"
        "%s",
        vm, exe, store, qvm, retention);
    g_autofree char *timer_text = g_strdup_printf(UNIT_MARK
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
    return TRUE;
}

/* The value of the first "KEY=" line of a unit file of ours, or NULL. */
static char *unit_value(const char *path, const char *key)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL) || !g_str_has_prefix(text, UNIT_MARK))
        return NULL;
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++)
        if (g_str_has_prefix(lines[i], key) && lines[i][strlen(key)] == '=')
            return g_strdup(lines[i] + strlen(key) + 1);
    return NULL;
}

gboolean sp_schedule_managed(const char *unit_dir)
{
    return g_str_equal(unit_dir, SP_SCHEDULE_UNIT_DIR) && sp_schedule_systemd_running();
}

static gboolean enable_timer(const char *timer, GError **error)
{
    const char *reload[] = {"daemon-reload", NULL};
    const char *enable[] = {"enable", "--now", "--quiet", timer, NULL};
    return systemctl(reload, NULL, error) && systemctl(enable, NULL, error);
}

SpJson *sp_schedule_create(SpStore *store, const char *dir, const char *name,
                           const char *calendar, int keep, const char *cli, GError **error)
{
    g_autoptr(SpJson) doc = sp_json_new_object();
    g_autoptr(SpVm) v = NULL;
    g_autofree char *timer = NULL;
    const char *vm;
    gboolean enabled = FALSE;

    if (!sp_schedule_calendar_valid(calendar, error) ||
        (v = sp_store_vm_get(store, name, error)) == NULL ||
        !write_units(dir, v->name, calendar, keep, cli, sp_store_get_path(store), error))
        return NULL;
    vm = v->name;
    timer = unit_name(vm, "timer");
    if (sp_schedule_managed(dir)) {
        if (!enable_timer(timer, error)) {
            g_prefix_error(error, "schedule of VM '%s': the units are written, but ", vm);
            return NULL;
        }
        enabled = TRUE;
    }
    sp_json_object_set_string(doc, "event", "schedule-written");
    sp_json_object_set_string(doc, "vm", vm);
    sp_json_object_set_string(doc, "timer", timer);
    sp_json_object_set_bool(doc, "enabled", enabled);
    sp_json_object_set_string(doc, "unit_dir", dir);
    sp_json_object_set_bool(doc, "systemd_running", sp_schedule_systemd_running());
    return g_steal_pointer(&doc);
}

/* ---- list ---- */

/* The service's last run: "success", systemd's Result= of a failed one ("exit-code",
 * "timeout", ...), "running", or NULL when it never ran (since boot). */
static const char *last_result(GHashTable *service)
{
    const char *state = g_hash_table_lookup(service, "ActiveState");
    const char *result = g_hash_table_lookup(service, "Result");
    const char *started = g_hash_table_lookup(service, "ExecMainStartTimestamp");
    if (g_strcmp0(state, "activating") == 0 || g_strcmp0(state, "active") == 0)
        return "running";
    if (g_strcmp0(state, "failed") != 0 && (started == NULL || started[0] != '@'))
        return NULL;
    return result != NULL && result[0] != '\0' ? result : NULL;
}

static const char *lookup_or_empty(GHashTable *table, const char *key)
{
    const char *value = g_hash_table_lookup(table, key);
    return value != NULL ? value : "";
}

/* One schedule: from its unit files, and (when systemd runs) its timer's and service's state. */
static SpJson *schedule_entry(const char *dir, const char *vm, GError **error)
{
    g_autofree char *timer = unit_name(vm, "timer"), *service = unit_name(vm, "service");
    g_autofree char *timer_path = g_build_filename(dir, timer, NULL);
    g_autofree char *service_path = g_build_filename(dir, service, NULL);
    g_autofree char *calendar = unit_value(timer_path, "OnCalendar");
    g_autofree char *post = unit_value(service_path, "ExecStartPost");
    g_autoptr(SpJson) e = sp_json_new_object();
    const char *keep = post != NULL ? strstr(post, " --keep ") : NULL;

    sp_json_object_set_string(e, "vm", vm);
    sp_json_object_set_string(e, "timer", timer);
    sp_json_object_set_string(e, "service", service);
    sp_json_object_set_string(e, "on_calendar", calendar != NULL ? calendar : "");
    if (keep != NULL)
        sp_json_object_set_int(e, "keep", g_ascii_strtoll(keep + strlen(" --keep "), NULL, 10));
    if (sp_schedule_managed(dir)) {
        g_autoptr(GHashTable) t = unit_show(timer, "UnitFileState,ActiveState,"
                                                   "NextElapseUSecRealtime,LastTriggerUSec",
                                            error);
        g_autoptr(GHashTable) s = t != NULL ? unit_show(service, "ActiveState,Result,"
                                                                  "ExecMainStartTimestamp,"
                                                                  "ExecMainStatus",
                                                        error)
                                            : NULL;
        g_autofree char *next = NULL, *last = NULL;
        const char *result;
        if (s == NULL)
            return NULL;
        next = systemd_timestamp_iso(g_hash_table_lookup(t, "NextElapseUSecRealtime"));
        last = systemd_timestamp_iso(g_hash_table_lookup(t, "LastTriggerUSec"));
        result = last_result(s);
        sp_json_object_set_string(e, "enabled", lookup_or_empty(t, "UnitFileState"));
        sp_json_object_set_string(e, "timer_state", lookup_or_empty(t, "ActiveState"));
        if (next != NULL)
            sp_json_object_set_string(e, "next", next);
        if (last != NULL)
            sp_json_object_set_string(e, "last", last);
        if (result != NULL)
            sp_json_object_set_string(e, "result", result);
        if (result != NULL && !g_str_equal(result, "success") && !g_str_equal(result, "running"))
            sp_json_object_set_int(e, "exit_status",
                                   g_ascii_strtoll(lookup_or_empty(s, "ExecMainStatus"), NULL, 10));
    }
    return g_steal_pointer(&e);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The VMs that have a schedule (a timer of ours) in dir, sorted. */
static GPtrArray *scheduled_vms(const char *dir, GError **error)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
    const char *name;
    if (d == NULL) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return g_steal_pointer(&vms);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *calendar = NULL;
        if (!g_str_has_prefix(name, UNIT_PREFIX) || !g_str_has_suffix(name, ".timer"))
            continue;
        if ((calendar = unit_value(path, "OnCalendar")) == NULL)
            continue; /* not written by stillpoint */
        g_ptr_array_add(vms, g_strndup(name + strlen(UNIT_PREFIX),
                                       strlen(name) - strlen(UNIT_PREFIX) - strlen(".timer")));
    }
    g_ptr_array_sort(vms, by_name);
    return g_steal_pointer(&vms);
}

/* An ISO 8601 UTC time of the list in local time, as checkpoint list prints times. */

SpJson *sp_schedule_list(const char *dir, const char *only_vm, GError **error)
{
    g_autoptr(GPtrArray) vms = scheduled_vms(dir, error);
    g_autoptr(SpJson) list = sp_json_new_array();
    g_autoptr(SpJson) doc = sp_json_new_object();

    if (vms == NULL)
        return NULL;
    for (guint i = 0; i < vms->len; i++) {
        const char *vm = g_ptr_array_index(vms, i);
        SpJson *e;
        if (only_vm != NULL && !g_str_equal(only_vm, vm))
            continue;
        if ((e = schedule_entry(dir, vm, error)) == NULL)
            return NULL;
        sp_json_array_append(list, e);
    }
    sp_json_object_set_bool(doc, "systemd", sp_schedule_managed(dir));
    sp_json_object_set(doc, "schedules", g_steal_pointer(&list));
    return g_steal_pointer(&doc);
}

/* Stops and disables the timer (when managed) and deletes both units. */
static gboolean remove_units(const char *dir, const char *vm, gboolean managed, GError **error)
{
    g_autofree char *timer = unit_name(vm, "timer"), *service = unit_name(vm, "service");
    g_autofree char *timer_path = g_build_filename(dir, timer, NULL);
    g_autofree char *service_path = g_build_filename(dir, service, NULL);
    g_autofree char *calendar = NULL;

    /* Only what stillpoint wrote is removed: a timer of that name an administrator wrote is not. */
    if ((calendar = unit_value(timer_path, "OnCalendar")) == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "VM '%s' has no schedule in %s (see: stillpoint schedule list)", vm, dir);
        return FALSE;
    }
    if (managed) {
        const char *disable[] = {"disable", "--now", "--quiet", timer, NULL};
        if (!systemctl(disable, NULL, error))
            return FALSE;
    }
    if ((g_unlink(timer_path) != 0 && errno != ENOENT) ||
        (g_unlink(service_path) != 0 && errno != ENOENT)) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot delete the units of "
                    "VM '%s' in %s: %s", vm, dir, g_strerror(e));
        return FALSE;
    }
    if (managed) {
        const char *reload[] = {"daemon-reload", NULL};
        /* A failed last run is forgotten with the unit (no "not-found failed" left in lists). */
        const char *reset[] = {"reset-failed", service, NULL};
        g_autoptr(GError) ignored = NULL;
        if (!systemctl(reload, NULL, error))
            return FALSE;
        systemctl(reset, NULL, &ignored);
    }
    return TRUE;
}

SpJson *sp_schedule_remove(const char *dir, const char *vm, GError **error)
{
    gboolean managed = sp_schedule_managed(dir);
    g_autofree char *timer = unit_name(vm, "timer");
    g_autoptr(SpJson) doc = sp_json_new_object();

    if (!sp_vm_name_valid(vm, error) || !remove_units(dir, vm, managed, error))
        return NULL;
    sp_json_object_set_string(doc, "event", "schedule-removed");
    sp_json_object_set_string(doc, "vm", vm);
    sp_json_object_set_string(doc, "timer", timer);
    sp_json_object_set_bool(doc, "disabled", managed);
    return g_steal_pointer(&doc);
}
