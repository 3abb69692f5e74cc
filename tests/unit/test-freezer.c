/* freezer: FIFREEZE/FITHAW bookkeeping against fake system calls. */
#define _GNU_SOURCE
#include "agent-test.h"

#include <errno.h>
#include <pthread.h>
#include <sys/sysmacros.h>
#include <time.h>
#include "freezer.h"

/* A fake filesystem per fd: fd = 100 + index into the plan's mountpoints. */
#define N_FAKE 8
typedef struct {
    pthread_mutex_t lock;
    const char *paths[N_FAKE];
    dev_t devs[N_FAKE];      /* the superblock each mountpoint is on now */
    int open_err[N_FAKE];
    int freeze_err[N_FAKE];
    int thaw_err[N_FAKE];
    bool frozen[N_FAKE];
    bool open[N_FAKE];
    char log[512];           /* "F1 F0 T0 T1": calls in order */
    int synced;
    int barrier;             /* > 0: each freeze waits until this many are in FIFREEZE at once */
    int inside;
    bool overlapped;
    pthread_cond_t cond;
} Fake;

static int fake_index(Fake *f, const char *path)
{
    for (int i = 0; i < N_FAKE; i++)
        if (f->paths[i] && strcmp(f->paths[i], path) == 0)
            return i;
    return -1;
}

static void fake_log(Fake *f, char op, int i)
{
    size_t len = strlen(f->log);
    snprintf(f->log + len, sizeof(f->log) - len, "%s%c%d", len ? " " : "", op, i);
}

static int fake_open(const char *path, void *ud)
{
    Fake *f = ud;
    int i = fake_index(f, path);
    if (i < 0)
        return -ENOENT;
    if (f->open_err[i])
        return -f->open_err[i];
    f->open[i] = true;
    return 100 + i;
}

static int fake_sb_dev(int fd, dev_t *ret, void *ud)
{
    *ret = ((Fake *)ud)->devs[fd - 100];
    return 0;
}

static int fake_syncfs(int fd, void *ud)
{
    Fake *f = ud;
    pthread_mutex_lock(&f->lock); /* called from the freezer's threads */
    f->synced++;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

/* Wait (bounded) until `barrier` freezes are in flight together: proves they run concurrently. */
static void fake_barrier(Fake *f)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    f->inside++;
    pthread_cond_broadcast(&f->cond);
    while (f->inside < f->barrier)
        if (pthread_cond_timedwait(&f->cond, &f->lock, &deadline) != 0)
            return;
    f->overlapped = true;
}

static int fake_freeze(int fd, void *ud)
{
    Fake *f = ud;
    int i = fd - 100, r = 0;

    pthread_mutex_lock(&f->lock);
    if (f->barrier)
        fake_barrier(f);
    if (f->freeze_err[i])
        r = -f->freeze_err[i];
    else if (f->frozen[i])
        r = -EBUSY;
    else
        f->frozen[i] = true;
    fake_log(f, 'F', i);
    pthread_mutex_unlock(&f->lock);
    return r;
}

static int fake_thaw(int fd, void *ud)
{
    Fake *f = ud;
    int i = fd - 100;
    /* Thaws run on the caller's thread, one at a time. */

    fake_log(f, 'T', i);
    if (f->thaw_err[i])
        return -f->thaw_err[i];
    if (!f->frozen[i])
        return -EINVAL;
    f->frozen[i] = false;
    return 0;
}

static void fake_close(int fd, void *ud)
{
    Fake *f = ud;
    assert_true(f->open[fd - 100]);
    f->open[fd - 100] = false;
}

static const SpFsOps fake_ops = {fake_open, fake_sb_dev, fake_syncfs, fake_freeze, fake_thaw,
                                 fake_close};

/* A plan over n fake filesystems /fs0../fsN, all in wave 0 unless waves says otherwise. */
static SpFreezePlan *make_plan(Fake *f, size_t n, const unsigned *waves)
{
    static const char *const names[N_FAKE] = {"/fs0", "/fs1", "/fs2", "/fs3", "/fs4", "/fs5", "/fs6", "/fs7"};
    SpFreezePlan *p = calloc(1, sizeof(*p));

    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    p->targets = calloc(n, sizeof(*p->targets));
    p->n_targets = n;
    for (size_t i = 0; i < n; i++) {
        f->paths[i] = names[i];
        f->devs[i] = makedev(8, (unsigned)i);
        p->targets[i].dev = f->devs[i];
        p->targets[i].mountpoint = strdup(names[i]);
        p->targets[i].fstype = strdup("ext4");
        p->targets[i].source = strdup("/dev/x");
        p->targets[i].wave = waves ? waves[i] : 0;
    }
    return p;
}

static void assert_all_closed(const Fake *f)
{
    for (int i = 0; i < N_FAKE; i++)
        assert_false(f->open[i]);
}

static void test_freeze_then_thaw_exactly_what_was_frozen_in_reverse(void **state)
{
    static const unsigned waves[] = {0, 1, 2};
    Fake f;
    SpFreezePlan *p = make_plan(&f, 3, waves);
    SpFreezer fr;
    SpThawReport rep;

    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(f.synced, 3);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 3);
    assert_true(sp_freezer_is_frozen(&fr));
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), 0);
    assert_string_equal(f.log, "F0 F1 F2 T2 T1 T0");
    assert_int_equal(rep.n_thawed, 3);
    assert_int_equal(rep.n_not_frozen, 0);
    assert_false(sp_freezer_is_frozen(&fr));
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_independent_filesystems_all_freeze_in_one_wave(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 5, NULL);
    SpFreezer fr;
    SpThawReport rep;

    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 5);
    for (int i = 0; i < 5; i++)
        assert_true(f.frozen[i]);
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), 0);
    assert_int_equal(rep.n_thawed, 5);
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_a_wave_freezes_concurrently(void **state)
{
    static const unsigned waves[] = {0, 0, 0, 1};
    Fake f;
    SpFreezePlan *p = make_plan(&f, 4, waves);
    SpFreezer fr;
    SpThawReport rep;

    f.barrier = 3; /* the three of wave 0 must be inside FIFREEZE at the same time */
    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    f.inside = 0;
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 4);
    assert_true(f.overlapped);
    /* Wave 1 only starts when wave 0 is done. */
    assert_string_equal(f.log + strlen(f.log) - 2, "F3");
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), 0);
    sp_plan_free(p);
}

static void test_failed_freeze_thaws_what_it_froze_and_names_the_filesystem(void **state)
{
    static const unsigned waves[] = {0, 1, 2};
    Fake f;
    SpFreezePlan *p = make_plan(&f, 3, waves);
    SpFreezer fr;
    SpFreezerFailure fail = {0};

    f.freeze_err[1] = EIO;
    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, &fail), -EIO);
    assert_string_equal(fail.op, "freeze");
    assert_string_equal(fail.mountpoint, "/fs1");
    assert_int_equal(fail.err, EIO);
    /* fs2 is never tried; fs0 is thawed. */
    assert_string_equal(f.log, "F0 F1 T0");
    assert_false(f.frozen[0]);
    assert_false(sp_freezer_is_frozen(&fr));
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_ebusy_means_frozen_by_someone_else_and_is_never_thawed(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 3, NULL);
    SpFreezer fr;
    SpThawReport rep;

    f.frozen[1] = true; /* another tool's freeze */
    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 2);
    assert_int_equal(p->n_targets, 2);
    assert_int_equal(p->n_skips, 1);
    assert_string_equal(p->skips[0].mountpoint, "/fs1");
    assert_int_equal(p->skips[0].reason, SP_SKIP_FROZEN_BY_OTHER);
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), 0);
    assert_true(f.frozen[1]);
    assert_null(strstr(f.log, "T1"));
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_eopnotsupp_is_skipped_as_not_supported(void **state)
{
    static const unsigned waves[] = {0, 1, 1};
    Fake f;
    SpFreezePlan *p = make_plan(&f, 3, waves);
    SpFreezer fr;
    SpThawReport rep;

    f.freeze_err[0] = EOPNOTSUPP;
    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 2);
    assert_int_equal(p->skips[0].reason, SP_SKIP_NOT_SUPPORTED);
    assert_string_equal(p->targets[0].mountpoint, "/fs1");
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), 0);
    assert_int_equal(rep.n_thawed, 2);
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_prepare_refuses_a_mountpoint_that_changed_filesystem(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 2, NULL);
    SpFreezer fr;
    SpFreezerFailure fail = {0};

    f.devs[1] = makedev(9, 9); /* something was mounted over /fs1 since planning */
    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, &fail), -ESTALE);
    assert_string_equal(fail.mountpoint, "/fs1");
    assert_string_equal(fail.op, "open");
    assert_string_equal(f.log, "");
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_prepare_open_failure_freezes_nothing(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 3, NULL);
    SpFreezer fr;
    SpFreezerFailure fail = {0};

    f.open_err[2] = EACCES;
    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, &fail), -EACCES);
    assert_int_equal(fail.err, EACCES);
    assert_string_equal(f.log, "");
    assert_int_equal(f.synced, 0); /* everything is opened before anything is synced */
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_thaw_reports_a_filesystem_thawed_behind_our_back(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 2, NULL);
    SpFreezer fr;
    SpThawReport rep;

    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 2);
    f.frozen[0] = false; /* someone ran fsfreeze -u */
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), 0);
    assert_int_equal(rep.n_thawed, 1);
    assert_int_equal(rep.n_not_frozen, 1);
    sp_plan_free(p);
}

static void test_thaw_error_is_reported_and_the_rest_still_thawed(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 3, NULL);
    SpFreezer fr;
    SpThawReport rep;

    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 3);
    f.thaw_err[1] = EIO;
    assert_int_equal(sp_freezer_thaw_all(&fr, &rep), -EIO);
    assert_int_equal(rep.n_thawed, 2);
    assert_int_equal(rep.n_failed, 1);
    assert_string_equal(rep.failure.mountpoint, "/fs1");
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_clear_never_leaves_a_filesystem_frozen(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 2, NULL);
    SpFreezer fr;

    sp_freezer_init(&fr, &fake_ops, &f);
    assert_int_equal(sp_freezer_prepare(&fr, p, NULL), 0);
    assert_int_equal(sp_freezer_freeze(&fr, p, NULL), 2);
    sp_freezer_clear(&fr);
    assert_false(f.frozen[0]);
    assert_false(f.frozen[1]);
    assert_all_closed(&f);
    sp_plan_free(p);
}

static void test_thaw_recorded_only_thaws_the_recorded_filesystem(void **state)
{
    Fake f;
    SpFreezePlan *p = make_plan(&f, 2, NULL);

    f.frozen[0] = true;
    f.frozen[1] = true;
    assert_int_equal(sp_freezer_thaw_recorded(&fake_ops, &f, "/fs0", makedev(8, 0)), 1);
    assert_false(f.frozen[0]);
    /* Recorded with another dev: a different filesystem is mounted there now. */
    assert_int_equal(sp_freezer_thaw_recorded(&fake_ops, &f, "/fs1", makedev(8, 7)), 0);
    assert_true(f.frozen[1]);
    assert_int_equal(sp_freezer_thaw_recorded(&fake_ops, &f, "/gone", makedev(8, 1)), 0);
    /* Not frozen any more: nothing to do. */
    assert_int_equal(sp_freezer_thaw_recorded(&fake_ops, &f, "/fs0", makedev(8, 0)), 0);
    assert_all_closed(&f);
    sp_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freeze_then_thaw_exactly_what_was_frozen_in_reverse),
        cmocka_unit_test(test_independent_filesystems_all_freeze_in_one_wave),
        cmocka_unit_test(test_a_wave_freezes_concurrently),
        cmocka_unit_test(test_failed_freeze_thaws_what_it_froze_and_names_the_filesystem),
        cmocka_unit_test(test_ebusy_means_frozen_by_someone_else_and_is_never_thawed),
        cmocka_unit_test(test_eopnotsupp_is_skipped_as_not_supported),
        cmocka_unit_test(test_prepare_refuses_a_mountpoint_that_changed_filesystem),
        cmocka_unit_test(test_prepare_open_failure_freezes_nothing),
        cmocka_unit_test(test_thaw_reports_a_filesystem_thawed_behind_our_back),
        cmocka_unit_test(test_thaw_error_is_reported_and_the_rest_still_thawed),
        cmocka_unit_test(test_clear_never_leaves_a_filesystem_frozen),
        cmocka_unit_test(test_thaw_recorded_only_thaws_the_recorded_filesystem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
