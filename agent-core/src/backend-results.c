/* backend-results: what a freeze backend hands the core: its errors, and the results it
 * malloc'd (freed here). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stillpoint/freeze-backend.h"

void sp_backend_error_set(SpBackendError *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
    va_end(ap);
}

void sp_writer_reports_free(SpWriterReport *reports, size_t n)
{
    for (size_t i = 0; reports && i < n; i++) {
        free(reports[i].name);
        free(reports[i].message);
        free(reports[i].thaw_message);
    }
    free(reports);
}

void sp_fs_entry_clear(SpFsEntry *e)
{
    free(e->mountpoint);
    free(e->fstype);
    free(e->device);
    free(e->uuid);
    free(e->label);
}

void sp_backend_freeze_result_clear(SpBackendFreezeResult *r)
{
    for (size_t i = 0; i < r->n_frozen; i++)
        sp_fs_entry_clear(&r->frozen[i]);
    for (size_t i = 0; i < r->n_skipped; i++) {
        free(r->skipped[i].mountpoint);
        free(r->skipped[i].fstype);
        free(r->skipped[i].primary);
    }
    free(r->frozen);
    free(r->skipped);
    sp_writer_reports_free(r->writers, r->n_writers);
    memset(r, 0, sizeof(*r));
}

void sp_backend_thaw_result_clear(SpBackendThawResult *r)
{
    sp_writer_reports_free(r->writers, r->n_writers);
    free(r->failed_writer);
    memset(r, 0, sizeof(*r));
}
