/* hooks: qemu-ga's fsfreeze-hook contract (an executable called with "freeze" or "thaw") plus
 * a hook directory, each script with a deadline. */
#pragma once
#include <glib.h>

#define SP_HOOKS_ERROR (sp_hooks_error_quark())
GQuark sp_hooks_error_quark(void);
typedef enum {
    SP_HOOKS_ERROR_FAILED,   /* exited non-zero or was killed by a signal */
    SP_HOOKS_ERROR_TIMEOUT,  /* did not finish in time; killed */
    SP_HOOKS_ERROR_UNSAFE,   /* not owned by root, or writable by group/others */
    SP_HOOKS_ERROR_SPAWN,    /* could not be started */
} SpHooksError;

typedef struct SpHooks SpHooks;

/* hook_path: the single script (may be NULL or absent); hook_dir: its scripts run in name
 * order for "freeze" and in reverse for "thaw" (may be NULL or absent). */
SpHooks *sp_hooks_new(const char *hook_path, const char *hook_dir, gint64 timeout_ms);
void sp_hooks_free(SpHooks *hooks);
guint sp_hooks_count(const SpHooks *hooks); /* scripts found */
/* Called every 250 ms while a script runs (the main loop is not turning then): lets the
 * agent tell systemd's watchdog it is alive through a long hook. */
void sp_hooks_set_keepalive(SpHooks *hooks, void (*fn)(void *data), void *data);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpHooks, sp_hooks_free)

/* Run every freeze hook. When one fails, the hooks that had already been told "freeze" are
 * told "thaw" (so applications release what they hold) and the first error is returned. */
gboolean sp_hooks_freeze(SpHooks *hooks, GError **error);
/* Run every thaw hook, in reverse order. All run even if one fails; the first error is returned. */
gboolean sp_hooks_thaw(SpHooks *hooks, GError **error);
