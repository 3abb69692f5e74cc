/* agent-commands: every command's replies and argument errors of the agents' shared command core,
 * against a fake freeze backend. */
#define _GNU_SOURCE
#include "agent-test.h"

#include "stillpoint/agent-commands.h"
#include "stillpoint/protocol.h"

typedef struct {
    bool frozen;
    int freezes, thaws, flushes;
    SpFreezeRequest last;       /* names not kept */
    char last_names[4][64];
    int64_t last_thaw_epoch;
    bool last_thaw_standard;
    const char *fail_code;      /* next freeze/thaw fails with this code */
    int64_t epoch;              /* of the current or last freeze */
    /* How the last freeze ended, as status reports it (has_last: it ended). */
    bool has_last;
    const char *last_reason;
    const char *thaw_reason;    /* what the next thaw reports; NULL = "requested" */
    bool vss;                   /* results shaped as the Windows backend makes them */
} FakeBackend;

static SpWriterReport writer(const char *name, const char *phase, const char *result,
                             const char *message, int64_t ms, const char *thaw)
{
    return (SpWriterReport){.name = strdup(name), .phase = phase, .result = result,
                            .message = message ? strdup(message) : NULL, .ms = ms,
                            .thaw_result = thaw};
}

static int fake_freeze(void *self, const SpFreezeRequest *req, SpBackendFreezeResult *ret, SpBackendError *err)
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
    b->epoch = b->epoch ? b->epoch + 1 : 41;
    ret->frozen = calloc(2, sizeof(SpFsEntry));
    ret->n_frozen = 2;
    ret->frozen[0] = (SpFsEntry){strdup("/srv"), strdup("xfs"), strdup("/dev/vdb"), strdup("5e1f-u"), strdup("data")};
    ret->frozen[1] = (SpFsEntry){strdup("/"), strdup("ext4"), NULL, NULL, NULL};
    if (b->vss) {
        ret->writers_at_thaw = true;
        ret->hold_limit_ms = 10000;
    } else {
        ret->skipped = calloc(1, sizeof(SpSkipEntry));
        ret->n_skipped = 1;
        ret->skipped[0] = (SpSkipEntry){strdup("/mnt/b"), strdup("xfs"), "same-filesystem", strdup("/srv")};
        ret->writers = calloc(2, sizeof(SpWriterReport));
        ret->n_writers = 2;
        ret->writers[0] = writer("db", "freeze", "ok", NULL, 7, NULL);
        ret->writers[1] = writer("mail", "prepare", "timeout", "Timeout was reached", 500, NULL);
    }
    ret->epoch = b->epoch;
    ret->lease_ms = req->lease_ms;
    return 0;
}

static int fake_thaw(void *self, int64_t epoch, bool standard, SpBackendThawResult *ret, SpBackendError *err)
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
    *ret = (SpBackendThawResult){.epoch = b->epoch ? b->epoch : 41, .n_thawed = b->frozen ? 2 : 0,
                                 .reason = b->thaw_reason ? b->thaw_reason : "requested",
                                 .held_ms = 12};
    ret->consistent = strcmp(ret->reason, "requested") == 0;
    ret->writers = calloc(1, sizeof(SpWriterReport));
    ret->n_writers = 1;
    if (b->vss) {
        ret->writers[0] = writer("SqlServerWriter", "freeze", "timeout",
                                 "error 0x800423f2: VSS_E_WRITERERROR_TIMEOUT", -1, NULL);
        ret->writers[0].state = "failed-at-freeze";
        ret->failed_writer = strdup("SqlServerWriter");
    } else {
        ret->writers[0] = writer("db", "freeze", "ok", NULL, 7, "ok");
    }
    b->frozen = false;
    b->has_last = true;
    b->last_reason = ret->reason;
    return 0;
}

static void fake_status(void *self, SpBackendStatus *ret)
{
    FakeBackend *b = self;
    static SpWriterReport writers[] = {{"db", "freeze", "ok", NULL, 7, "failed", "disk full", NULL}};

    memset(ret, 0, sizeof(*ret));
    ret->frozen = b->frozen;
    ret->epoch = b->epoch ? b->epoch : 41;
    ret->writers = writers;
    ret->n_writers = 1;
    ret->has_last_thaw = b->has_last;
    ret->last_thaw = (SpBackendThawResult){.epoch = ret->epoch, .reason = b->last_reason,
                                           .consistent = b->last_reason &&
                                                         strcmp(b->last_reason, "requested") == 0,
                                           .held_ms = 300};
}

static SpJson *fake_fsinfo(void *self, SpBackendError *err)
{
    return sp_json_new_array();
}

static int fake_flush(void *self, const SpFreezeRequest *req, SpBackendFlushResult *ret, SpBackendError *err)
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

/* Not random: the tests read the token back. */
static int fake_random(void *self, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(0xa0 + i);
    return 0;
}

static const SpFreezeBackendOps fake_ops = {fake_freeze, fake_thaw, fake_status, fake_fsinfo,
                                            fake_flush, fake_random};

typedef struct {
    FakeBackend backend;
    SpAgentCommands *commands;
} Fixture;

static SpAgentCommandsConfig fixture_config(Fixture *f, const SpFreezeBackendOps *ops)
{
    return (SpAgentCommandsConfig){
        .backend = {ops, &f->backend}, .platform = "linux", .backend_name = "fifreeze",
        .version = "9.9.9", .default_lease_ms = 60000, .min_lease_ms = 100,
        .max_lease_ms = 3600000, .thaw_on_hangup = true};
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(*f));
    SpAgentCommandsConfig config = fixture_config(f, &fake_ops);

    f->commands = sp_agent_commands_new(&config);
    assert_non_null(f->commands);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;

    sp_agent_commands_free(f->commands);
    free(f);
    return 0;
}

/* The lease token fake_random makes. */
#define TOKEN "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"

/* Send request text on a channel, return the reply's serialization (static buffer). */
static const char *call_on(Fixture *f, unsigned channel, const char *request, unsigned *ret_flags)
{
    static char out[8192];
    SpJson *msg = NULL, *reply;
    SpJsonError err;
    unsigned flags = 0;
    char *text;

    if (sp_json_parse(request, strlen(request), NULL, &msg, &err) != SP_OK)
        fail_msg("bad test request %s: %s", request, err.message);
    reply = sp_agent_commands_dispatch(f->commands, channel, msg, &flags);
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

static const char *call(Fixture *f, const char *request, unsigned *ret_flags)
{
    return call_on(f, 7, request, ret_flags);
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
    assert_int_equal(f->backend.last.lease_ms, 60000); /* the configured default */
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
                 "{\"return\":{\"epoch\":41,\"token\":\"" TOKEN "\",\"lease-ms\":5000,\"frozen\":[{\"mountpoint\":\"/srv\",\"type\":\"xfs\","
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
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"give 'mountpoints' or 'disks', not both\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"mountpoints\":[]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'mountpoints' is empty: omit it to freeze every filesystem\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"disks\":[\"\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'disks' item 0 is empty or contains NUL\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"mountpoints\":[\"/a\\u0000b\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'mountpoints' item 0 is empty or contains NUL\",\"code\":\"invalid-arguments\"}}");
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
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'epoch' must be the positive number stillpoint-freeze returned\",\"code\":\"invalid-arguments\"}}");
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
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"give 'mountpoints' or 'disks', not both\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"disks\":[]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'disks' is empty: omit it to freeze every filesystem\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"mountpoints\":[\"\"]}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"'mountpoints' item 0 is empty or contains NUL\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"mountpoints\":\"/srv\"}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Invalid parameter type for 'mountpoints', expected: array\",\"code\":\"invalid-arguments\"}}");
    assert_reply(f, "{\"execute\":\"stillpoint-flush\",\"arguments\":{\"lease-ms\":1000}}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'lease-ms' is unexpected\",\"code\":\"invalid-arguments\"}}");
    f->backend.frozen = true;
    assert_reply(f, "{\"execute\":\"stillpoint-flush\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"filesystems are frozen (freeze 41): the freeze has flushed them\",\"code\":\"already-frozen\"}}");
    assert_int_equal(f->backend.flushes, 0);
}

/* A backend without flush (the Windows one): no stillpoint-flush at all, as an older agent. */
static void test_flush_is_absent_when_the_backend_cannot_flush(void **state)
{
    Fixture *f = *state;
    static const SpFreezeBackendOps no_flush = {fake_freeze, fake_thaw, fake_status, fake_fsinfo,
                                                NULL, fake_random};
    SpAgentCommandsConfig config = fixture_config(f, &no_flush);

    sp_agent_commands_free(f->commands);
    f->commands = sp_agent_commands_new(&config);
    assert_reply(f, "{\"execute\":\"stillpoint-flush\"}",
                 "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command stillpoint-flush has not been found\",\"code\":\"command-not-found\"}}");
    assert_null(strstr(call(f, "{\"execute\":\"guest-info\"}", NULL), "stillpoint-flush"));
    assert_null(strstr(call(f, "{\"execute\":\"stillpoint-capabilities\"}", NULL), "stillpoint-flush"));
    assert_non_null(strstr(call(f, "{\"execute\":\"guest-info\"}", NULL), "stillpoint-freeze"));
}

static void test_capabilities_name_the_platform_and_the_backend(void **state)
{
    Fixture *f = *state;
    SpAgentCommandsConfig config = fixture_config(f, &fake_ops);
    const char *r = call(f, "{\"execute\":\"stillpoint-capabilities\"}", NULL);

    assert_non_null(strstr(r, "\"platform\":\"linux\""));
    assert_non_null(strstr(r, "\"writers\":false,\"backend\":\"fifreeze\"}"));
    assert_null(strstr(r, "hold-limit-ms"));
    sp_agent_commands_free(f->commands);
    config.platform = "windows";
    config.backend_name = "vss";
    config.hold_limit_ms = 10000;
    f->commands = sp_agent_commands_new(&config);
    r = call(f, "{\"execute\":\"stillpoint-capabilities\"}", NULL);
    assert_non_null(strstr(r, "\"platform\":\"windows\""));
    assert_non_null(strstr(r, "\"hold-limit-ms\":10000,\"backend\":\"vss\"}"));
}

/* VSS reports its writers after the snapshot, not at freeze, and caps the lease. */
static void test_vss_shaped_results_keep_their_members(void **state)
{
    Fixture *f = *state;

    f->backend.vss = true;
    assert_reply(f, "{\"execute\":\"stillpoint-freeze\",\"arguments\":{\"lease-ms\":5000}}",
                 "{\"return\":{\"epoch\":41,\"token\":\"" TOKEN "\",\"lease-ms\":5000,\"frozen\":[{\"mountpoint\":\"/srv\",\"type\":\"xfs\","
                 "\"device\":\"/dev/vdb\",\"uuid\":\"5e1f-u\",\"label\":\"data\"},{\"mountpoint\":\"/\",\"type\":\"ext4\"}],"
                 "\"skipped\":[],\"hold-limit-ms\":10000}}");
    f->backend.thaw_reason = "writer-failed";
    assert_reply(f, "{\"execute\":\"stillpoint-thaw\"}",
                 "{\"return\":{\"epoch\":41,\"thawed\":2,\"consistent\":false,\"reason\":\"writer-failed\",\"held-ms\":12,"
                 "\"failed-writer\":\"SqlServerWriter\",\"writers\":[{\"name\":\"SqlServerWriter\",\"phase\":\"freeze\","
                 "\"result\":\"timeout\",\"message\":\"error 0x800423f2: VSS_E_WRITERERROR_TIMEOUT\","
                 "\"state\":\"failed-at-freeze\"}]}}");
    /* The standard thaw of a freeze a writer broke fails: the snapshot is not consistent. */
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}", "{\"return\":2}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"the freeze did not hold (writer-failed, writer "
                 "SqlServerWriter): a snapshot taken since the freeze is not consistent\"}}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":0}");
}

/* The agent thawed a standard freeze by itself: libvirt's or Proxmox's thaw must not be told
 * all went well (they would record a quiesced snapshot), once; later thaws answer 0 as qemu-ga. */
static void test_standard_thaw_after_the_lease_expired_is_an_error_once(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}", "{\"return\":2}");
    f->backend.frozen = false; /* the lease ran out */
    f->backend.has_last = true;
    f->backend.last_reason = "lease-expired";
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"the freeze's lease expired after 300 ms and "
                 "the agent had already thawed the filesystems: a snapshot taken since the freeze is not "
                 "consistent\"}}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":0}");
    assert_int_equal(f->backend.thaws, 0);
    /* A stillpoint-freeze's expiry is the business of its stillpoint-thaw, not of this one. */
    call(f, "{\"execute\":\"stillpoint-freeze\"}", NULL);
    f->backend.frozen = false;
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":0}");
    /* Thawed on request: nothing to report. */
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}", "{\"return\":2}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":2}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":0}");
}

/* #15 item 5: the standard freeze's lease ran out, then another client froze and thawed (the
 * backend's last thaw is now that one's, "requested"): the late standard thaw still fails. */
static void test_standard_thaw_after_the_lease_expired_fails_after_other_freezes(void **state)
{
    Fixture *f = *state;

    assert_reply(f, "{\"execute\":\"guest-fsfreeze-freeze\"}", "{\"return\":2}");
    f->backend.frozen = false; /* the lease ran out */
    f->backend.has_last = true;
    f->backend.last_reason = "lease-expired";
    call(f, "{\"execute\":\"stillpoint-freeze\"}", NULL);
    call(f, "{\"execute\":\"stillpoint-thaw\"}", NULL);
    assert_string_equal(f->backend.last_reason, "requested");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}",
                 "{\"error\":{\"class\":\"GenericError\",\"desc\":\"the freeze's lease expired after 300 ms and "
                 "the agent had already thawed the filesystems: a snapshot taken since the freeze is not "
                 "consistent\"}}");
    assert_reply(f, "{\"execute\":\"guest-fsfreeze-thaw\"}", "{\"return\":0}");
}

/* #15 item 7: a guest process that reaches the agent on another channel (a vsock loopback, a
 * local socket) cannot end the host's stillpoint-freeze; the lease token can. */
static void test_only_the_freezing_channel_or_the_token_thaws_a_stillpoint_freeze(void **state)
{
    Fixture *f = *state;

    call_on(f, 7, "{\"execute\":\"stillpoint-freeze\"}", NULL);
    assert_string_equal(call_on(f, 8, "{\"execute\":\"stillpoint-thaw\"}", NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"freeze 41 was made by stillpoint-freeze on "
                        "another channel: thaw it there, or give the 'token' its reply returned; nothing was "
                        "thawed\",\"code\":\"not-owner\"}}");
    assert_non_null(strstr(call_on(f, 8, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"epoch\":41}}", NULL),
                           "\"code\":\"not-owner\""));
    assert_non_null(strstr(call_on(f, 8, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"token\":"
                                         "\"a0a1a2a3a4a5a6a7a8a9aaabacadaeae\"}}", NULL),
                           "'token' is not the lease token its stillpoint-freeze returned"));
    assert_string_equal(call_on(f, 8, "{\"execute\":\"guest-fsfreeze-thaw\"}", NULL),
                        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"the filesystems were frozen by "
                        "stillpoint-freeze on another channel; only that channel (or its lease token) thaws "
                        "them, at the latest when its lease runs out\"}}");
    assert_int_equal(f->backend.thaws, 0);
    assert_true(f->backend.frozen);
    /* The token thaws from anywhere (a host that reconnected). */
    assert_non_null(strstr(call_on(f, 8, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"token\":\"" TOKEN "\"}}",
                                   NULL), "\"consistent\":true"));
    assert_int_equal(f->backend.thaws, 1);
    /* The channel that froze needs no token; a wrong one is refused even there. */
    call_on(f, 7, "{\"execute\":\"stillpoint-freeze\"}", NULL);
    assert_non_null(strstr(call_on(f, 7, "{\"execute\":\"stillpoint-thaw\",\"arguments\":{\"token\":\"x\"}}", NULL),
                           "\"code\":\"not-owner\""));
    assert_non_null(strstr(call_on(f, 7, "{\"execute\":\"guest-fsfreeze-thaw\"}", NULL), "{\"return\":2}"));
    /* A standard freeze is anyone's to thaw, as with qemu-ga (Proxmox connects per command). */
    call_on(f, 7, "{\"execute\":\"guest-fsfreeze-freeze\"}", NULL);
    assert_string_equal(call_on(f, 8, "{\"execute\":\"guest-fsfreeze-thaw\"}", NULL), "{\"return\":2}");
    call_on(f, 7, "{\"execute\":\"guest-fsfreeze-freeze\"}", NULL);
    assert_non_null(strstr(call_on(f, 9, "{\"execute\":\"stillpoint-thaw\"}", NULL), "\"consistent\":true"));
    /* The token is never shown again. */
    assert_null(strstr(call_on(f, 8, "{\"execute\":\"stillpoint-status\"}", NULL), TOKEN));
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
        T(test_flush_is_absent_when_the_backend_cannot_flush),
        T(test_capabilities_name_the_platform_and_the_backend),
        T(test_vss_shaped_results_keep_their_members),
        T(test_standard_thaw_after_the_lease_expired_is_an_error_once),
        T(test_standard_thaw_after_the_lease_expired_fails_after_other_freezes),
        T(test_only_the_freezing_channel_or_the_token_thaws_a_stillpoint_freeze),
        T(test_malformed_requests_get_qga_errors),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
