/* Unit tests of the VSS freeze sequencing against the fake backend (runs under wine: cmocka is
 * not available for mingw, so plain checks, one line per test, exit code = failures). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vss-backend.h"
#include "vss-freezer.h"

static int failures;
static const char *current;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,     \
                    current, #cond);                                                   \
            failures++;                                                                \
            return;                                                                    \
        }                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                 \
    do {                                                                                \
        const char *a_ = (a), *b_ = (b);                                                \
        if (strcmp(a_, b_) != 0) {                                                      \
            fprintf(stderr, "  %s:%d: %s: expected \"%s\"\n  got      \"%s\"\n", __FILE__, \
                    __LINE__, current, b_, a_);                                         \
            failures++;                                                                 \
            return;                                                                     \
        }                                                                               \
    } while (0)

/* A test fixture: the fake backend, a freezer on it, and an event for "thawed again". */
typedef struct {
    SpVssBackend *backend;
    SpVssFreezer *freezer;
    HANDLE thawed;
    HANDLE freezing;
} Fixture;

static void state_cb(SpVssState state, void *userdata)
{
    Fixture *fx = userdata;
    if (state == SP_VSS_STATE_THAWED)
        SetEvent(fx->thawed);
    if (state == SP_VSS_STATE_FREEZING)
        SetEvent(fx->freezing);
}

static void fixture_init(Fixture *fx, const SpVssFakeConfig *fake, DWORD hold_limit_ms)
{
    fx->backend = sp_vss_backend_fake_new(fake);
    SpVssFreezerConfig config = { .backend = fx->backend, .hold_limit_ms = hold_limit_ms,
                                  .frozen_timeout_ms = 5000, .step_timeout_ms = 5000 };
    fx->freezer = sp_vss_freezer_new(&config);
    fx->thawed = CreateEventW(NULL, FALSE, FALSE, NULL);
    fx->freezing = CreateEventW(NULL, FALSE, FALSE, NULL);
    sp_vss_freezer_set_state_cb(fx->freezer, state_cb, fx);
}

static void fixture_fini(Fixture *fx)
{
    sp_vss_freezer_free(fx->freezer);
    if (fx->backend)
        fx->backend->ops->free(fx->backend);
    CloseHandle(fx->thawed);
    CloseHandle(fx->freezing);
}

/* Waits for the agent to thaw on its own (bounded: the tests use windows of ~100 ms). */
static bool wait_thawed(Fixture *fx)
{
    return WaitForSingleObject(fx->thawed, 5000) == WAIT_OBJECT_0;
}

static const char *const full_sequence =
    "init_for_backup,gather_writer_metadata,start_snapshot_set,add_volume,add_volume,"
    "prepare_for_backup,do_snapshot_set,wait_frozen,release,wait_snapshot_set,backup_complete,"
    "writer_statuses,close";

static void test_freeze_thaw_runs_the_vss_sequence_in_order(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    SpVssError err = { 0 };
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr, &err) == SP_VSS_OK);
    CHECK(fr.n_frozen == 2);
    CHECK(fr.epoch > 1700000000000ULL); /* the wall clock in ms: grows across restarts */
    CHECK(fr.hold_limit_ms == SP_VSS_FLUSH_HOLD_LIMIT_MS);
    CHECK(fr.lease_ms == SP_VSS_FLUSH_HOLD_LIMIT_MS);
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_FROZEN);
    SpVssStatusInfo st;
    sp_vss_freezer_status(fx->freezer, &st);
    CHECK(st.state == SP_VSS_STATE_FROZEN && st.epoch == fr.epoch && st.n_frozen == 2);
    CHECK(st.lease_ms == SP_VSS_FLUSH_HOLD_LIMIT_MS && st.remaining_ms <= st.lease_ms);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, &err) == SP_VSS_OK);
    CHECK(tr.consistent);
    sp_vss_freezer_status(fx->freezer, &st);
    CHECK(st.state == SP_VSS_STATE_THAWED && st.have_last && st.last.consistent);
    CHECK(tr.end == SP_VSS_END_NONE);
    CHECK(tr.n_thawed == 2);
    CHECK(tr.n_writers == 3);
    CHECK(tr.epoch == fr.epoch);
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
    CHECK_STR(sp_vss_backend_fake_calls(fx->backend), full_sequence);
}

static void test_default_backup_type_is_copy(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr, NULL) == SP_VSS_OK);
    CHECK(sp_vss_backend_fake_backup_type(fx->backend) == SP_VSS_BT_COPY);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
}

static void test_writer_failing_at_freeze_makes_thaw_inconsistent_naming_it(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr, NULL) == SP_VSS_OK);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
    CHECK(!tr.consistent);
    CHECK(tr.end == SP_VSS_END_WRITER_FAILED);
    CHECK_STR(tr.failed_writer, "SqlServerWriter");
    CHECK(tr.writers[2].state == SP_VSS_WS_FAILED_AT_FREEZE);
}

static void test_provider_hold_timing_out_thaws_and_reports_hold_limit(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 5000, &fr, NULL) == SP_VSS_OK);
    CHECK(wait_thawed(fx));
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
    CHECK(sp_vss_freezer_thaw(fx->freezer, fr.epoch, &tr, NULL) == SP_VSS_OK);
    CHECK(!tr.consistent);
    CHECK(tr.end == SP_VSS_END_HOLD_LIMIT);
}

static void test_hold_limit_caps_a_longer_lease(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 60000, &fr, NULL) == SP_VSS_OK);
    CHECK(fr.lease_ms == 150);
    CHECK(fr.hold_limit_ms == 150);
    CHECK(wait_thawed(fx));
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
    CHECK(!tr.consistent);
    CHECK(tr.end == SP_VSS_END_HOLD_LIMIT);
    CHECK(tr.held_ms <= 150);
}

static void test_thaw_reports_inconsistent_after_lease_expiry(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    SpVssError err = { 0 };
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 100, &fr, NULL) == SP_VSS_OK);
    CHECK(fr.lease_ms == 100);
    CHECK(wait_thawed(fx));
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
    CHECK(!tr.consistent);
    CHECK(tr.end == SP_VSS_END_LEASE_EXPIRED);
    CHECK(tr.n_thawed == 0); /* the agent thawed them, not this call */
    CHECK(tr.held_ms >= 100);
    /* Reported again (as on Linux), but nothing more was thawed; another epoch is refused. */
    CHECK(sp_vss_freezer_thaw(fx->freezer, fr.epoch, &tr, &err) == SP_VSS_OK);
    CHECK(!tr.consistent && tr.end == SP_VSS_END_LEASE_EXPIRED && tr.n_thawed == 0);
    CHECK(sp_vss_freezer_thaw(fx->freezer, fr.epoch + 1, &tr, &err) == SP_VSS_E_EPOCH);
    CHECK_STR(sp_vss_backend_fake_calls(fx->backend), full_sequence);
}

static void test_hangup_while_frozen_thaws_and_is_reported(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 5000, &fr, NULL) == SP_VSS_OK);
    sp_vss_freezer_end(fx->freezer, SP_VSS_END_HANGUP);
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
    CHECK(!tr.consistent);
    CHECK(tr.end == SP_VSS_END_HANGUP);
}

typedef struct {
    Fixture *fx;
    int r;
    SpVssError err;
} FreezeJob;

static DWORD WINAPI freeze_job_cb(void *userdata)
{
    FreezeJob *job = userdata;
    SpVssFreezeResult fr;
    job->r = sp_vss_freezer_freeze(job->fx->freezer, NULL, 0, 5000, &fr, &job->err);
    return 0;
}

/* Starts a freeze on a thread and returns once the sequence is in progress. */
static HANDLE start_freeze(Fixture *fx, FreezeJob *job)
{
    job->fx = fx;
    HANDLE t = CreateThread(NULL, 0, freeze_job_cb, job, 0, NULL);
    if (t && WaitForSingleObject(fx->freezing, 5000) != WAIT_OBJECT_0) {
        WaitForSingleObject(t, INFINITE);
        CloseHandle(t);
        return NULL;
    }
    return t;
}

static void test_thaw_before_commit_abandons_the_freeze(Fixture *fx)
{
    FreezeJob job = { 0 };
    SpVssThawResult tr;
    SpVssError err = { 0 };
    ULONGLONG start = GetTickCount64();
    HANDLE t = start_freeze(fx, &job);
    CHECK(t);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, &err) == SP_VSS_E_NOT_FROZEN);
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    CHECK(job.r == SP_VSS_E_ABORTED);
    CHECK(GetTickCount64() - start < 3000); /* did not wait for the 5 s commit */
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
    CHECK(strstr(sp_vss_backend_fake_calls(fx->backend), "abort,close") != NULL);
}

static void test_hangup_mid_freeze_abandons_the_freeze(Fixture *fx)
{
    FreezeJob job = { 0 };
    SpVssThawResult tr;
    HANDLE t = start_freeze(fx, &job);
    CHECK(t);
    sp_vss_freezer_end(fx->freezer, SP_VSS_END_HANGUP);
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    CHECK(job.r == SP_VSS_E_ABORTED);
    CHECK(strstr(job.err.desc, "hangup") != NULL);
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_E_NOT_FROZEN);
}

static void test_failed_step_aborts_and_names_the_step(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssError err = { 0 };
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr, &err) == SP_VSS_E_BACKEND);
    CHECK_STR(err.step, "prepare_for_backup");
    CHECK(err.hr == (HRESULT)0x80042318L);
    CHECK(strstr(err.desc, "0x80042318 (VSS_E_WRITER_INFRASTRUCTURE") != NULL);
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
    CHECK_STR(sp_vss_backend_fake_calls(fx->backend),
              "init_for_backup,gather_writer_metadata,start_snapshot_set,add_volume,add_volume,"
              "prepare_for_backup,abort,close");
}

static void test_snapshot_set_failing_before_frozen_is_an_error(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssError err = { 0 };
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr, &err) == SP_VSS_E_BACKEND);
    CHECK_STR(err.step, "do_snapshot_set");
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_THAWED);
}

static void test_second_freeze_is_busy_and_wrong_epoch_is_refused(Fixture *fx)
{
    SpVssFreezeResult fr, fr2;
    SpVssThawResult tr;
    SpVssError err = { 0 };
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr, NULL) == SP_VSS_OK);
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr2, &err) == SP_VSS_E_BUSY);
    CHECK(sp_vss_freezer_thaw(fx->freezer, fr.epoch + 7, &tr, &err) == SP_VSS_E_EPOCH);
    CHECK(sp_vss_freezer_state(fx->freezer) == SP_VSS_STATE_FROZEN);
    CHECK(sp_vss_freezer_thaw(fx->freezer, fr.epoch, &tr, NULL) == SP_VSS_OK);
    CHECK(tr.consistent);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, &err) == SP_VSS_E_NOT_FROZEN);
    CHECK(sp_vss_freezer_freeze(fx->freezer, NULL, 0, 0, &fr2, NULL) == SP_VSS_OK);
    CHECK(fr2.epoch > fr.epoch);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
}

static void test_freeze_list_selects_mount_points(Fixture *fx)
{
    SpVssFreezeResult fr;
    SpVssThawResult tr;
    SpVssError err = { 0 };
    const wchar_t *bad[] = { L"Z:\\" };
    const wchar_t *good[] = { L"d:" };
    CHECK(sp_vss_freezer_freeze(fx->freezer, bad, 1, 0, &fr, &err) == SP_VSS_E_BAD_VOLUME);
    CHECK(strstr(err.desc, "Z:\\") != NULL);
    CHECK(sp_vss_freezer_freeze(fx->freezer, good, 1, 0, &fr, &err) == SP_VSS_OK);
    CHECK(fr.n_frozen == 1);
    CHECK(wcscmp(fr.frozen[0].mount, L"D:\\") == 0);
    CHECK(sp_vss_freezer_thaw(fx->freezer, 0, &tr, NULL) == SP_VSS_OK);
    CHECK(tr.n_thawed == 1);
}

static void test_fake_config_parses_and_rejects(Fixture *fx)
{
    char ok[] = "commit-delay-ms=5,hold-limit-ms=200,fail=commit,fail-hr=0x80042318,"
                "failing-writer=X W,volumes=3";
    char bad[] = "hold-limit-ms=abc";
    char unknown[] = "colour=blue";
    SpVssFakeConfig c;
    CHECK(sp_vss_fake_config_parse(ok, &c));
    CHECK(c.commit_delay_ms == 5 && c.hold_limit_ms == 200 && c.n_volumes == 3);
    CHECK_STR(c.fail_step, "commit");
    CHECK(c.fail_hr == (HRESULT)0x80042318L);
    CHECK_STR(c.failing_writer, "X W");
    CHECK(!sp_vss_fake_config_parse(bad, &c));
    CHECK(!sp_vss_fake_config_parse(unknown, &c));
}

typedef struct {
    const char *name;
    void (*fn)(Fixture *fx);
    SpVssFakeConfig fake;
    DWORD hold_limit_ms;
} TestCase;

int main(void)
{
    static const TestCase tests[] = {
        { "freeze_thaw_runs_the_vss_sequence_in_order",
          test_freeze_thaw_runs_the_vss_sequence_in_order, { 0 }, 0 },
        { "default_backup_type_is_copy", test_default_backup_type_is_copy, { 0 }, 0 },
        { "writer_failing_at_freeze_makes_thaw_inconsistent_naming_it",
          test_writer_failing_at_freeze_makes_thaw_inconsistent_naming_it,
          { .failing_writer = "SqlServerWriter" }, 0 },
        { "provider_hold_timing_out_thaws_and_reports_hold_limit",
          test_provider_hold_timing_out_thaws_and_reports_hold_limit,
          { .hold_limit_ms = 100 }, 0 },
        { "hold_limit_caps_a_longer_lease", test_hold_limit_caps_a_longer_lease, { 0 }, 150 },
        { "thaw_reports_inconsistent_after_lease_expiry",
          test_thaw_reports_inconsistent_after_lease_expiry, { 0 }, 0 },
        { "hangup_while_frozen_thaws_and_is_reported",
          test_hangup_while_frozen_thaws_and_is_reported, { 0 }, 0 },
        { "thaw_before_commit_abandons_the_freeze", test_thaw_before_commit_abandons_the_freeze,
          { .commit_delay_ms = 5000 }, 0 },
        { "hangup_mid_freeze_abandons_the_freeze", test_hangup_mid_freeze_abandons_the_freeze,
          { .commit_delay_ms = 5000 }, 0 },
        { "failed_step_aborts_and_names_the_step", test_failed_step_aborts_and_names_the_step,
          { .fail_step = "prepare_for_backup", .fail_hr = (HRESULT)0x80042318L }, 0 },
        { "snapshot_set_failing_before_frozen_is_an_error",
          test_snapshot_set_failing_before_frozen_is_an_error, { .fail_step = "commit" }, 0 },
        { "second_freeze_is_busy_and_wrong_epoch_is_refused",
          test_second_freeze_is_busy_and_wrong_epoch_is_refused, { 0 }, 0 },
        { "freeze_list_selects_mount_points", test_freeze_list_selects_mount_points, { 0 }, 0 },
        { "fake_config_parses_and_rejects", test_fake_config_parses_and_rejects, { 0 }, 0 },
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);
    printf("VSS sequencing tests against the FAKE VSS backend (%zu tests)\n", n);
    for (size_t i = 0; i < n; i++) {
        Fixture fx = { 0 };
        int before = failures;
        current = tests[i].name;
        fixture_init(&fx, &tests[i].fake, tests[i].hold_limit_ms);
        if (!fx.backend || !fx.freezer) {
            fprintf(stderr, "  %s: cannot set up the fixture\n", current);
            failures++;
        } else {
            tests[i].fn(&fx);
        }
        fixture_fini(&fx);
        printf("%s %zu - %s\n", failures == before ? "ok" : "not ok", i + 1, current);
        fflush(stdout);
    }
    printf("%s: %d of %zu tests failed\n", failures ? "FAIL" : "PASS", failures, n);
    return failures ? 1 : 0;
}
