/* flush: syncfs of what a freeze would freeze, without freezing (stillpoint-flush), on worker
 * threads and bounded by SP_FLUSH_DEADLINE_MS. */
#pragma once
#include <glib.h>
#include "freezer.h"
#include "planner.h"
#include "stillpoint/freeze-backend.h"

/* 0, or -1 with err set (flush-failed, flush-timeout); ret is filled either way. */
int sp_flush_plan(const SpFsOps *ops, void *userdata, const SpFreezePlan *plan,
                  SpBackendFlushResult *ret, SpBackendError *err);
