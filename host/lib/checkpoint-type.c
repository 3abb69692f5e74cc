/* checkpoint-type: from what the user asked (or the VM's checkpoint type) to what create does,
 * and who is asking (see checkpoint-type.h). */
#include "stillpoint/checkpoint-type.h"

#include <gio/gio.h>
#include <unistd.h>

static const char *const types[] = {"production", "production-only", "standard", "crash"};

gboolean sp_checkpoint_type_resolve(const SpVm *vm, const char *type, const char *policy,
                                    SpCreateOptions *opts, GError **error)
{
    const char *asked = type != NULL ? type
                        : vm->checkpoint_type != NULL ? vm->checkpoint_type
                                                      : SP_CHECKPOINT_TYPE_DEFAULT;
    guint i;

    for (i = 0; i < G_N_ELEMENTS(types) && g_strcmp0(types[i], asked) != 0; i++)
        ;
    if (i == G_N_ELEMENTS(types)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint create: --type must be production, production-only, standard "
                    "or crash, not '%s'",
                    asked);
        return FALSE;
    }
    if (policy != NULL && g_strcmp0(policy, "fail") != 0 && g_strcmp0(policy, "crash") != 0 &&
        g_strcmp0(policy, "standard") != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint create: --on-quiesce-failure must be fail, crash or standard, "
                    "not '%s'",
                    policy);
        return FALSE;
    }
    if (policy != NULL && g_strcmp0(asked, "production") != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "checkpoint create: --on-quiesce-failure is for production checkpoints; a "
                    "%s checkpoint %s",
                    asked, g_strcmp0(asked, "production-only") == 0 ? "never falls back"
                                                                     : "does not quiesce");
        return FALSE;
    }
    opts->requested = types[i];
    opts->crash_only = g_strcmp0(asked, "crash") == 0;
    opts->standard = g_strcmp0(asked, "standard") == 0;
    /* Hyper-V's production: a standard checkpoint when the guest cannot quiesce, where the
     * driver can make one (the hook driver cannot: then it fails, as production-only). */
    opts->fallback_if_possible = g_strcmp0(asked, "production") == 0 && policy == NULL;
    opts->on_quiesce_failure = g_strcmp0(policy, "crash") == 0 ? SP_QUIESCE_CRASH
                               : g_strcmp0(policy, "standard") == 0 || opts->fallback_if_possible
                                   ? SP_QUIESCE_STANDARD
                                   : SP_QUIESCE_FAIL;
    return TRUE;
}

char *sp_checkpoint_made_by_self(void)
{
    return g_strdup_printf("%s (uid %u)", g_get_user_name(), (unsigned)getuid());
}
