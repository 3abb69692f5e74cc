/* daemon-authority: may the caller of a D-Bus method perform a polkit action? One small
 * interface with two implementations: polkit itself (daemon-authority-polkit.c) and a rules
 * file for tests and hosts without polkitd (daemon-authority-file.c). */
#pragma once
#include <gio/gio.h>

G_BEGIN_DECLS

#define SP_AUTHORITY_ERROR (sp_authority_error_quark())
GQuark sp_authority_error_quark(void);
typedef enum {
    SP_AUTHORITY_ERROR_NOT_AUTHORIZED,  /* the answer is no */
    SP_AUTHORITY_ERROR_FAILED,          /* could not ask (no polkitd, unknown caller) */
} SpAuthorityError;

typedef struct SpAuthority SpAuthority;

typedef struct {
    /* Asks about the sender of invocation (uid and pid from the bus; never 0: uid 0 is
     * allowed before asking); callback on the calling thread's main context. */
    void (*check)(SpAuthority *self, GDBusMethodInvocation *invocation, guint32 uid, guint32 pid,
                  const char *action_id, GCancellable *cancellable, GAsyncReadyCallback callback,
                  gpointer user_data);
    gboolean (*check_finish)(SpAuthority *self, GAsyncResult *result, GError **error);
    void (*free)(SpAuthority *self);
    const char *name;   /* "polkit", "rules file" (for the log) */
} SpAuthorityOps;

struct SpAuthority {
    const SpAuthorityOps *ops;
};

/* polkit, asked asynchronously; when polkitd cannot be reached, only uid 0 is allowed. */
SpAuthority *sp_authority_polkit_new(void);
/* A key file: [actions] ACTION-ID = user:NAME;group:NAME;uid:N (who may). uid 0 may always. */
SpAuthority *sp_authority_file_new(const char *path, GError **error);

/* May the sender of invocation (uid and pid as the bus gave them) perform action_id? uid 0 may.
 * Answers within a deadline (longer when the caller allowed interactive authorization);
 * cancellable (the daemon stopping) answers at once. Callback on the main context. */
void sp_authority_check(SpAuthority *a, GDBusMethodInvocation *invocation, guint32 uid,
                        guint32 pid, const char *action_id, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data);
gboolean sp_authority_check_finish(SpAuthority *a, GAsyncResult *result, GError **error);
void sp_authority_free(SpAuthority *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpAuthority, sp_authority_free)

G_END_DECLS
