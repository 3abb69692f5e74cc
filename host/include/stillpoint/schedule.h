/* schedule: a VM's checkpoints on a calendar, as a systemd timer and service written into a unit
 * directory — what `stillpoint schedule create|list|remove` do, directly and through stillpointd.
 * Each returns the document the CLI prints (document.h). systemctl is asked (daemon-reload,
 * enable/disable --now) only when the directory is systemd's and systemd runs; elsewhere the
 * units are only written and read (the tests). */
#pragma once
#include <glib.h>

#include "stillpoint/channel.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

#define SP_SCHEDULE_UNIT_DIR "/etc/systemd/system"

/* systemd runs as the init system (as sd_booted() decides). */
gboolean sp_schedule_systemd_running(void);
/* dir is systemd's and systemd runs: the units there are enabled and their state is shown. */
gboolean sp_schedule_managed(const char *dir);
/* An OnCalendar= spec that is one safe line of a unit and that systemd accepts. */
gboolean sp_schedule_calendar_valid(const char *spec, GError **error);
/* Writes the units of store's VM name into dir: a checkpoint by `cli --store STORE checkpoint
 * create` on calendar, then the retention when keep >= 0; enables the timer when managed.
 * {"event": "schedule-written", "vm", "timer", "enabled", "unit_dir", "systemd_running"}. */
SpJson *sp_schedule_create(SpStore *store, const char *dir, const char *name,
                           const char *calendar, int keep, const char *cli, GError **error);
/* The schedules in dir (only vm's when vm is not NULL): {"systemd": managed, "schedules": [{"vm",
 * "timer", "service", "on_calendar", "keep"?, and when managed "enabled", "timer_state",
 * "next"?, "last"?, "result"?, "exit_status"?}, ...]} in VM name order. */
SpJson *sp_schedule_list(const char *dir, const char *vm, GError **error);
/* Stops, disables (when managed) and deletes vm's units, only if stillpoint wrote them.
 * {"event": "schedule-removed", "vm", "timer", "disabled"}. */
SpJson *sp_schedule_remove(const char *dir, const char *vm, GError **error);

G_END_DECLS
