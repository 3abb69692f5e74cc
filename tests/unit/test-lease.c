/* lease: deadlines and the "held continuously" verdict. Times are plain numbers (ms). */
#include "agent-test.h"

#include "lease.h"

static void test_requested_thaw_before_deadline_is_consistent(void **state)
{
    SpLease l;
    int64_t epoch;

    sp_lease_init(&l, 100);
    epoch = sp_lease_begin(&l, 1000, 500, 1, true);
    assert_int_equal(epoch, 100);
    assert_true(l.frozen);
    assert_int_equal(sp_lease_remaining_ms(&l, 1200), 300);
    assert_true(sp_lease_end(&l, 1500, SP_THAW_REQUESTED, false));
    assert_false(l.frozen);
    assert_int_equal(l.last_epoch, 100);
    assert_int_equal(l.last_held_ms, 500);
    assert_int_equal(sp_lease_remaining_ms(&l, 1200), 0);
}

static void test_thaw_reports_inconsistent_after_lease_expiry(void **state)
{
    SpLease l;

    sp_lease_init(&l, 1);
    sp_lease_begin(&l, 0, 500, 1, true);
    assert_false(sp_lease_expired(&l, 499));
    assert_true(sp_lease_expired(&l, 500));
    assert_false(sp_lease_end(&l, 500, SP_THAW_EXPIRED, false));
    assert_int_equal(l.last_reason, SP_THAW_EXPIRED);
    assert_false(l.last_consistent);
    assert_string_equal(sp_thaw_reason_str(l.last_reason), "lease-expired");
}

static void test_requested_thaw_after_deadline_is_inconsistent(void **state)
{
    SpLease l;

    /* The timer has not fired yet, but the deadline has passed: the host was late. */
    sp_lease_init(&l, 1);
    sp_lease_begin(&l, 0, 500, 1, true);
    assert_false(sp_lease_end(&l, 501, SP_THAW_REQUESTED, false));
}

static void test_thaw_by_someone_else_is_inconsistent(void **state)
{
    SpLease l;

    sp_lease_init(&l, 1);
    sp_lease_begin(&l, 0, 500, 1, true);
    assert_false(sp_lease_end(&l, 100, SP_THAW_REQUESTED, true));
    assert_true(l.external_thaw);
}

static void test_hangup_thaws_only_for_the_owner_and_when_enabled(void **state)
{
    SpLease l;

    sp_lease_init(&l, 1);
    assert_false(sp_lease_hangup_thaws(&l, 3)); /* not frozen */
    sp_lease_begin(&l, 0, 500, 3, true);
    assert_true(sp_lease_hangup_thaws(&l, 3));
    assert_false(sp_lease_hangup_thaws(&l, 4));
    assert_false(sp_lease_end(&l, 10, SP_THAW_HANGUP, false));
    assert_string_equal(sp_thaw_reason_str(SP_THAW_HANGUP), "channel-hangup");
    sp_lease_begin(&l, 20, 500, 3, false);
    assert_false(sp_lease_hangup_thaws(&l, 3));
}

static void test_epochs_increase_and_end_is_idempotent(void **state)
{
    SpLease l;

    sp_lease_init(&l, 7);
    assert_int_equal(sp_lease_begin(&l, 0, 100, 1, true), 7);
    assert_true(sp_lease_end(&l, 50, SP_THAW_REQUESTED, false));
    /* A second end (timer racing a thaw) changes nothing. */
    assert_false(sp_lease_end(&l, 60, SP_THAW_EXPIRED, false));
    assert_int_equal(l.last_reason, SP_THAW_REQUESTED);
    assert_true(l.last_consistent);
    assert_int_equal(sp_lease_begin(&l, 100, 100, 1, true), 8);
}

static void test_reason_names_are_stable(void **state)
{
    assert_string_equal(sp_thaw_reason_str(SP_THAW_REQUESTED), "requested");
    assert_string_equal(sp_thaw_reason_str(SP_THAW_SHUTDOWN), "shutdown");
    assert_string_equal(sp_thaw_reason_str(SP_THAW_FAILED), "freeze-failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requested_thaw_before_deadline_is_consistent),
        cmocka_unit_test(test_thaw_reports_inconsistent_after_lease_expiry),
        cmocka_unit_test(test_requested_thaw_after_deadline_is_inconsistent),
        cmocka_unit_test(test_thaw_by_someone_else_is_inconsistent),
        cmocka_unit_test(test_hangup_thaws_only_for_the_owner_and_when_enabled),
        cmocka_unit_test(test_epochs_increase_and_end_is_idempotent),
        cmocka_unit_test(test_reason_names_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
