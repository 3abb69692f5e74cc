/* commands: every command's replies and argument errors, against a fake freeze backend. */
#define _GNU_SOURCE
#include "agent-test.h"

#include "commands.h"
#include "stillpoint/protocol.h"

typedef struct {
    bool frozen;
    int freezes, thaws, flushes;
    SpFreezeRequest last;       /* names not kept */
    char last_names[4][64];
    int64_t last_thaw_epoch;
    bool last_thaw_standard;
    const char *fail_code;      /* next freeze/thaw fails with this code */
} FakeBackend;

static int fake_freeze(void *self, const SpFreezeRequest *req, SpFreezeResult *ret, SpBackendError *err)
{
    FakeBackend *b = self;

    b->freezes++;
    b->last = *req;
    for (size_t i = 0; i < req->n_names && i < 4; i++)
        snprintf(b->last_names[i], sizeof(b->last_names[i]), "%s", req->names[i]);
    b->last.names = NULL;
    if (b->fail_code) {
        err->code = b->fail_code;
        snprintf(err->desc, sizeof(err->desc), "failed to freeze /srv: Input/output error");
        return -1;
    }
    b->frozen = true;
    ret->frozen = calloc(2, sizeof(SpFsEntry));
    ret->n_frozen = 2;
    ret->frozen[0] = (SpFsEntry){strdup("/srv"), strdup("xfs"), strdup("/dev/vdb"), strdup("5e1f-u"), strdup("data")};
    ret->frozen[1] = (SpFsEntry){strdup("/"), strdup("ext4"), NULL, NULL, NULL};
    ret->skipped = calloc(1, sizeof(SpSkipEntry));
    ret->n_skipped = 1;
    ret->skipped[0] = (SpSkipEntry){strdup("/mnt/b"), strdup("xfs"), "same-filesystem", strdup("/srv")};
    ret->writers = calloc(2, sizeof(SpWriterReport));
    ret->n_writers = 2;
    ret->writers[0] = (SpWriterReport){strdup("db"), "freeze", "ok", NULL, 7, NULL, NULL};
    ret->writers[1] = (SpWriterReport){strdup("mail"), "prepare", "timeout", strdup("Timeout was reached"), 500, NULL, NULL};
    ret->epoch = 41;
    ret->lease_ms = req->lease_ms ? req->lease_ms : 60000;
    return 0;
}

static int fake_thaw(void *self, int64_t epoch, bool standard, SpThawResult *ret, SpBackendError *err)
{
    FakeBackend *b = self;

    b->thaws++;
    b->last_thaw_epoch = epoch;
    b->last_thaw_standard = standard;
    if (b->fail_code) {
        err->code = b->fail_code;
        snprintf(err->desc, sizeof(err->desc), "no filesystems are frozen");
        return -1;
    }
    *ret = (SpThawResult){.epoch = 41, .n_thawed = b->frozen ? 2 : 0, .consistent = true,
                          .reason = "requested", .held_ms = 12};
    ret->writers = calloc(1, sizeof(SpWriterReport));
    ret->n_writers = 1;
    ret->writers[0] = (SpWriterReport){strdup("db"), "freeze", "ok", NULL, 7, "ok", NULL};
    b->frozen = false;
    return 0;
}

static void fake_status(void *self, SpFreezeStatus *ret)
{
    FakeBackend *b = self;
    memset(ret, 0, sizeof(*ret));
    static SpWriterReport writers[] = {{"db", "freeze", "ok", NULL, 7, "failed", "disk full"}};

    ret->frozen = b->frozen;
    ret->epoch = 41;
    ret->writers = writers;
    ret->n_writers = 1;
}

static SpJson *fake_fsinfo(void *self, SpBackendError *err)
{
    return sp_json_new_array();
}

static int fake_flush(void *self, const SpFreezeRequest *req, SpFlushResult *ret, SpBackendError *err)
{
    FakeBackend *b = self;

    b->flushes++;
    b->last = *req;
    for (size_t i = 0; i < req->n_names && i < 4; i++)
        snprintf(b->last_names[i], sizeof(b->last_names[i]), "%s", req->names[i]);
    b->last.names = NULL;
    if (b->fail_code) {
        err->code = b->fail_code;
        snprintf(err->desc, sizeof(err->desc), "failed to syncfs /srv: Input/output error");
        return -1;
    }
    ret->n_flushed = 2;
    ret->ms = 9;
    return 0;
}

static const SpFreezeBackendOps fake_ops = {fake_freeze, fake_thaw, fake_status, fake_fsinfo,
                                            fake_flush};

typedef struct {
    FakeBackend backend;
    SpCommands commands;
} Fixture;

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    f->commands.backend = (SpFreezeBackend){&fake_ops, &f->backend};
    f->commands.version = "9.9.9";
    f->commands.default_lease_ms = 60000;
    f->commands.min_lease_ms = 100;
    f->commands.max_lease_ms = 3600000;
    f->commands.thaw_on_hangup = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Send request text, return the reply's serialization (static buffer). */
static const char *call(Fixture *f, const char *request, unsigned *ret_flags)
{
    static char out[8192];
    SpJson *msg = NULL, *reply;
    SpJsonError err;
    unsigned flags = 0;
    char *text;

    if (sp_json_parse(request, strlen(request), NULL, &msg, &err) != SP_OK)
        fail_msg("bad test request %s: %s", request, err.message);
    reply = sp_commands_dispatch(&f->commands, 7, msg, &flags);
    assert_non_null(reply);
    text = sp_json_serialize(reply, NULL);
    snprintf(out, sizeof(out), "%s", text);
    free(text);
    sp_json_free(reply);
    sp_json_free(msg);
    if (ret_flags)
        *ret_flags = flags;
    return out;
}

#define assert_reply(f, request, expected) assert_string_equal(call((f), (request), NULL), (expected))

static void test_ping_sync_and_delimited_sync(void **state)
{
    Fixture *f = *state;
    unsigned flags = 0;

    assert_reply(f, "{\"execute\":\"guest-ping\"}", "{\"return\":{}}");
    assert_reply(f, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":123456789012}}",
                 "{\"return\":123456789012}");
    assert_string_equal(call(f, "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":5}}", &flags),
                        "{\"return\":5}");
    assert_true(flags & SP_CMD_DELIMITED_REPLY);
    assert_reply(f, "{\"execute\":\"guest-ping\",\"id\":\"abc\"}", "{\"return\":{},\"id\":\"abc\"}");
}

static void test_sync_argument_errors_match_qemu_ga(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"guest-sync\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'id' is missing\"}}");
    assert_reply(f, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\"x\"}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'id', expected: integer\"}}");
    assert_reply(f, "{\"execute\":\"guest-ping\",\"arguments\":{\"x\":1}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'x' is unexpected\"}}");
}

static void test_unknown_and_unsupported_commands_are_not_found(void **state)
{
    Fixture *f = *state;

    /* The attack surface is quiescing only: no exec, no file access. */
    assert_reply(f, "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/sh\"}}",
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command guest-exec has not been found\"}}");
    assert_reply(f, "{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/etc/shadow\"}}",
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command guest-file-open has not been found\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-exec\"}",
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command stillpoint-exec has not been found\",\"code\":\"command-not-found\"}}");
}

static void test_standard_freeze_and_thaw_return_counts(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}", "{\"return\":2}");
    assert_true(f->backend.last.standard);
    assert_int_equal(f->backend.last.kind, SP_SELECT_ALL);
    assert_int_equal(f->backend.last.channel, 7);
    assert_int_equal(f->backend.last.lease_ms, 0); /* the configured default */
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-status\"}", "{\"return\":\"frozen\"}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":2}");
    assert_true(f->backend.last_thaw_standard);
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-status\"}", "{\"return\":\"thawed\"}");
}

static void test_freeze_list_passes_mountpoints_and_checks_their_type(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze-list\",\"arguments\":{\"mountpoints\":[\"/srv\",\"/\"]}}",
                 "{\"return\":2}");
    assert_int_equal(f->backend.last.kind, SP_SELECT_MOUNTPOINTS);
    assert_int_equal(f->backend.last.n_names, 2);
    assert_string_equal(f->backend.last_names[0], "/srv");
    f->backend.frozen = false;
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze-list\"}", "{\"return\":2}");
    assert_int_equal(f->backend.last.kind, SP_SELECT_ALL);
    f->backend.frozen = false;
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze-list\",\"arguments\":{\"mountpoints\":\"/srv\"}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'mountpoints', expected: array\"}}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze-list\",\"arguments\":{\"mountpoints\":[\"/\",3]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'mountpoints[1]', expected: string\"}}");
}

static void test_standard_errors_carry_no_code(void **state)
{
    Fixture *f = *state;

    f->backend.fail_code = SP_CODE_FREEZE_FAILED;
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"failed to freeze /srv: Input/output error\"}}");
}

static void test_while_frozen_only_the_allow_list_answers(void **state)
{
    Fixture *f = *state;

    f->backend.frozen = true;
    assert_reply(f, "{\"execute\":\"guest-get-fsinfo\"}",
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Command guest-get-fsinfo has been disabled: the command is not allowed\"}}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}",
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Command guest-fsfreeze-freeze has been disabled: the command is not allowed\"}}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-status\"}", "{\"return\":\"frozen\"}");
    assert_reply(f, "{\"execute\":\"guest-ping\"}", "{\"return\":{}}");
    assert_int_equal(f->backend.freezes, 0);
}

static void test_guest_info_marks_refused_commands_disabled_while_frozen(void **state)
{
    Fixture *f = *state;
    const char *r;

    r = call(f, "{\"execute\":\"guest-info\"}", NULL);
    assert_non_null(strstr(r, "\"version\":\"" SP_AGENT_QGA_VERSION "\""));
    assert_non_null(strstr(r, "{\"name\":\"guest-get-fsinfo\",\"enabled\":true,\"success-response\":true}"));
    f->backend.frozen = true;
    r = call(f, "{\"execute\":\"guest-info\"}", NULL);
    assert_non_null(strstr(r, "{\"name\":\"guest-get-fsinfo\",\"enabled\":false,\"success-response\":true}"));
    assert_non_null(strstr(r, "{\"name\":\"guest-fsfreeze-thaw\",\"enabled\":true,\"success-response\":true}"));
    assert_non_null(strstr(r, "{\"name\":\"stillpoint-thaw\",\"enabled\":true"));
}

static void test_stillpoint_freeze_reply_names_frozen_and_skipped(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"lease-ms\":5000}}",
                 "{\"return\":{\"epoch\":41,\"lease-ms\":5000,\"frozen\":[{\"mountpoint\":\"/srv\",\"type\":\"xfs\","
                 "\"device\":\"/dev/vdb\",\"uuid\":\"5e1f-u\",\"label\":\"data\"},{\"mountpoint\":\"/\",\"type\":\"ext4\"}],\"skipped\":[{\"mountpoint\":"
                 "\"/mnt/b\",\"type\":\"xfs\",\"reason\":\"same-filesystem\",\"primary\":\"/srv\"}],"
                 "\"writers\":[{\"name\":\"db\",\"phase\":\"freeze\",\"result\":\"ok\",\"ms\":7},"
                 "{\"name\":\"mail\",\"phase\":\"prepare\",\"result\":\"timeout\",\"ms\":500,"
                 "\"message\":\"Timeout was reached\"}]}}");
    assert_false(f->backend.last.standard);
    assert_int_equal(f->backend.last.lease_ms, 5000);
}

static void test_stillpoint_freeze_selects_mountpoints_or_disks(void **state)
{
    Fixture *f = *state;

    call(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"disks\":[\"QM0001\"]}}", NULL);
    assert_int_equal(f->backend.last.kind, SP_SELECT_DISKS);
    assert_string_equal(f->backend.last_names[0], "QM0001");
    f->backend.frozen = false;
    call(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"mountpoints\":[\"/srv\"]}}", NULL);
    assert_int_equal(f->backend.last.kind, SP_SELECT_MOUNTPOINTS);
}

static void test_stillpoint_freeze_argument_errors_have_codes(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"lease-ms\":\"1s\"}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'lease-ms', expected: integer\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"lease-ms\":99}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'lease-ms' must be between 100 and 3600000\",\"code\":\"lease-out-of-range\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"lease-ms\":3600001}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'lease-ms' must be between 100 and 3600000\",\"code\":\"lease-out-of-range\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"mountpoints\":[\"/\"],\"disks\":[\"a\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"give 'mountpoints' or 'disks', not both\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"mountpoints\":[]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'mountpoints' is empty: omit it to freeze every filesystem\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"disks\":[\"\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'disks' item 0 is empty or contains NUL\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"mountpoints\":[\"/a\\u0000b\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'mountpoints' item 0 is empty or contains NUL\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"lease\":5}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'lease' is unexpected\",\"code\":\"invalid-arguments\"}}");
    assert_int_equal(f->backend.freezes, 0);
}

static void test_stillpoint_backend_errors_keep_their_code(void **state)
{
    Fixture *f = *state;

    f->backend.fail_code = SP_CODE_HOOK_FAILED;
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"failed to freeze /srv: Input/output error\",\"code\":\"hook-failed\"}}");
    f->backend.fail_code = SP_CODE_NOT_FROZEN;
    assert_reply(f, "{\"execute\":\"stillpoint-thaw\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"no filesystems are frozen\",\"code\":\"not-frozen\"}}");
}

static void test_stillpoint_thaw_reports_consistency_and_checks_epoch(void **state)
{
    Fixture *f = *state;

    f->backend.frozen = true;
    assert_reply(f, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"epoch\":41}}",
                 "{\"return\":{\"epoch\":41,\"thawed\":2,\"consistent\":true,\"reason\":\"requested\",\"held-ms\":12,"
                 "\"writers\":[{\"name\":\"db\",\"phase\":\"freeze\",\"result\":\"ok\",\"ms\":7,\"thaw\":\"ok\"}]}}");
    assert_int_equal(f->backend.last_thaw_epoch, 41);
    assert_false(f->backend.last_thaw_standard);
    assert_reply(f, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"epoch\":0}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'epoch' must be the positive number stillpoint-freeze returned\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"epoch\":1.5}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'epoch', expected: integer\",\"code\":\"invalid-arguments\"}}");
}

static void test_stillpoint_commands_answer_while_frozen(void **state)
{
    Fixture *f = *state;
    const char *r;

    f->backend.frozen = true;
    r = call(f, "{\"execute\":\"stillpoint-status\"}", NULL);
    assert_non_null(strstr(r, "\"status\":\"frozen\""));
    assert_non_null(strstr(r, "\"writers\":[{\"name\":\"db\",\"phase\":\"freeze\",\"result\":\"ok\","
                              "\"ms\":7,\"thaw\":\"failed\",\"thaw-message\":\"disk full\"}]"));
    r = call(f, "{\"execute\":\"stillpoint-capabilities\"}", NULL);
    assert_non_null(strstr(r, "\"protocol\":\"" SP_PROTOCOL_VERSION "\""));
    assert_non_null(strstr(r, "\"version\":\"9.9.9\""));
    assert_non_null(strstr(r, "\"default-lease-ms\":60000"));
    assert_non_null(strstr(r, "\"select\":[\"all\",\"mountpoints\",\"disks\"]"));
    assert_non_null(strstr(r, "\"stillpoint-freeze\""));
    assert_reply(f, "{\"execute\":\"stillpoint-status\",\"arguments\":{\"verbose\":true}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'verbose' is unexpected\",\"code\":\"invalid-arguments\"}}");
}

static void test_stillpoint_flush_selects_and_reports_what_it_flushed(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"stillpoint-flush\"}", "{\"return\":{\"flushed\":2,\"ms\":9}}");
    assert_int_equal(f->backend.last.kind, SP_SELECT_ALL);
    call(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"disks\":[\"QM0002\"]}}", NULL);
    assert_int_equal(f->backend.last.kind, SP_SELECT_DISKS);
    assert_string_equal(f->backend.last_names[0], "QM0002");
    call(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"mountpoints\":[\"/srv\"]}}", NULL);
    assert_int_equal(f->backend.last.kind, SP_SELECT_MOUNTPOINTS);
    assert_string_equal(f->backend.last_names[0], "/srv");
    assert_int_equal(f->backend.flushes, 3);
    assert_int_equal(f->backend.freezes, 0);
    assert_false(f->backend.frozen);
    assert_non_null(strstr(call(f, "{\"execute\":\"stillpoint-capabilities\"}", NULL),
                           "\"stillpoint-flush\""));
    f->backend.fail_code = SP_CODE_FLUSH_TIMEOUT;
    assert_reply(f, "{\"execute\":\"stillpoint-flush\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"failed to syncfs /srv: Input/output error\",\"code\":\"flush-timeout\"}}");
}

static void test_stillpoint_flush_argument_errors_and_refused_while_frozen(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"mountpoints\":[\"/\"],\"disks\":[\"a\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"give 'mountpoints' or 'disks', not both\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"disks\":[]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'disks' is empty: omit it to freeze every filesystem\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"mountpoints\":[\"\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'mountpoints' item 0 is empty or contains NUL\",\"code\":\"invalid-argument\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"mountpoints\":\"/srv\"}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'mountpoints', expected: array\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"lease-ms\":1000}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'lease-ms' is unexpected\",\"code\":\"invalid-arguments\"}}");
    f->backend.frozen = true;
    assert_reply(f, "{\"execute\":\"stillpoint-flush\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"filesystems are frozen (freeze 41): the freeze has flushed them\",\"code\":\"already-frozen\"}}");
    assert_int_equal(f->backend.flushes, 0);
}

static void test_malformed_requests_get_qga_errors(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"arguments\":{}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input lacks member 'execute'\"}}");
    assert_reply(f, "[1]",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input must be a JSON object\"}}");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ping_sync_and_delimited_sync),
        T(test_sync_argument_errors_match_qemu_ga),
        T(test_unknown_and_unsupported_commands_are_not_found),
        T(test_standard_freeze_and_thaw_return_counts),
        T(test_freeze_list_passes_mountpoints_and_checks_their_type),
        T(test_standard_errors_carry_no_code),
        T(test_while_frozen_only_the_allow_list_answers),
        T(test_guest_info_marks_refused_commands_disabled_while_frozen),
        T(test_stillpoint_freeze_reply_names_frozen_and_skipped),
        T(test_stillpoint_freeze_selects_mountpoints_or_disks),
        T(test_stillpoint_freeze_argument_errors_have_codes),
        T(test_stillpoint_backend_errors_keep_their_code),
        T(test_stillpoint_thaw_reports_consistency_and_checks_epoch),
        T(test_stillpoint_commands_answer_while_frozen),
        T(test_stillpoint_flush_selects_and_reports_what_it_flushed),
        T(test_stillpoint_flush_argument_errors_and_refused_while_frozen),
        T(test_malformed_requests_get_qga_errors),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
