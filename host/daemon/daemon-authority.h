/* daemon-authority: may the caller of a D-Bus method perform a polkit action? One small
 * interface with two implementations: polkit itself (daemon-authority-polkit.c) and, in test
 * builds only (SP_TEST_HOOKS), a rules file (daemon-authority-file.c). */
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

/* Who calls, as the bus recorded it when the caller connected (GetConnectionCredentials): never
 * read again from /proc, where the pid may be another process by now. */
typedef struct {
    guint32 uid;
    guint32 pid;
    GArray *gids;             /* guint32: primary and supplementary groups; NULL: not known */
} SpAuthorityCaller;

/* What the call is about, for rules that grant some VMs and not others: polkit gets them as the
 * details "vm" and "group" (NULL: not given); the rules file has [vm:NAME] groups. */
typedef struct {
    const char *vm;
    const char *group;
} SpAuthorityDetails;

typedef struct {
    /* Asks about the sender of invocation (caller: from the bus; never uid 0, which is
     * allowed before asking); callback on the calling thread's main context. */
    void (*check)(SpAuthority *self, GDBusMethodInvocation *invocation,
                  const SpAuthorityCaller *caller, const char *action_id, const SpAuthorityDetails *details, gboolean interactive,
                  GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
    gboolean (*check_finish)(SpAuthority *self, GAsyncResult *result, GError **error);
    void (*free)(SpAuthority *self);
    const char *name;   /* "polkit", "rules file" (for the log) */
} SpAuthorityOps;

struct SpAuthority {
    const SpAuthorityOps *ops;
};

/* polkit, asked asynchronously; when polkitd cannot be reached, only uid 0 is allowed. */
SpAuthority *sp_authority_polkit_new(void);
/* A key file: [actions] ACTION-ID = user:NAME;group:NAME;uid:N (who may), and [vm:NAME] with
 * the same keys for that VM only. Groups are the caller's as the bus recorded them. uid 0 may
 * always. */
#ifdef SP_TEST_HOOKS
SpAuthority *sp_authority_file_new(const char *path, GError **error);
#endif

/* May the sender of invocation (caller: as the bus gave it) perform action_id on what
 * details name? uid 0 may. Interactive only when the caller set the D-Bus flag and quiet is
 * FALSE; answers within a deadline (longer when interactive); cancellable (the daemon stopping)
 * answers at once. Callback on the main context. */
void sp_authority_check(SpAuthority *a, GDBusMethodInvocation *invocation,
                        const SpAuthorityCaller *caller, const char *action_id, const SpAuthorityDetails *details,
                        gboolean quiet, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
gboolean sp_authority_check_finish(SpAuthority *a, GAsyncResult *result, GError **error);
void sp_authority_free(SpAuthority *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpAuthority, sp_authority_free)

G_END_DECLS
