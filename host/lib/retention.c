/* retention: merge away the oldest checkpoints beyond a number to keep (retention.h). */
#include "stillpoint/retention.h"

#include "stillpoint/backup.h"

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

gboolean sp_retention_apply(SpStore *store, SpVm *vm, guint keep, gboolean all,
                            const SpOpReport *report, guint *ret_merged, GError **error)
{
    g_autoptr(GPtrArray) cps = retention_candidates(store, vm, all, error);
    int64_t busy = session_checkpoint(store, vm);
    guint n;

    *ret_merged = 0;
    if (cps == NULL)
        return FALSE;
    n = cps->len;
    for (guint i = 0; i < cps->len && n > keep; i++) {
        SpCheckpoint *cp = g_ptr_array_index(cps, i);
        g_autofree char *ref = g_strdup_printf("#%" G_GINT64_FORMAT, cp->id);
        if (cp->id == busy)
            continue;
        if (report->progress != NULL) {
            g_autofree char *msg = g_strdup_printf("retention: merging away checkpoint '%s' "
                                                   "(%u kept)", cp->name, keep);
            report->progress(msg, report->user_data);
        }
        if (!sp_op_delete(store, vm, ref, FALSE, report, error)) {
            g_prefix_error(error, "retention of VM '%s' (keep %u): ", vm->name, keep);
            return FALSE;
        }
        n--;
        (*ret_merged)++;
    }
    return TRUE;
}
