/* libFuzzer target for the host's guest agent client: the input is everything the guest agent
 * says on its socket. The client syncs (guest-sync-delimited: only a reply after a 0xFF counts),
 * asks for stillpoint-capabilities, freezes, reads the status, thaws, and runs guest-info.
 * GLib's random generator is seeded per run, so the sync id is always SYNC_ID (the seeds use it).
 * Built with -DSP_FUZZ_REPLAY it is `fuzz-host-agent-replay FILE...` (SP_FUZZ_VERBOSE=1 prints
 * what the client concluded).
 *
 * Properties: no crash, no leak, bounded memory; every failure is an SP_AGENT_ERROR with a
 * message; results stay in range (a thaw's held-ms is -1 or what the agent said). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-peer.h"
#include "stillpoint/agent.h"
#include "stillpoint/verdict.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SYNC_SEED 7

static FuzzPeer *peer;
static gboolean verbose;
/* SP_FUZZ_STRICT=1 also checks properties that known bugs still break (tests/fuzz/known-bugs). */
static gboolean strict;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    peer = fuzz_peer_new("agent");
    verbose = g_strcmp0(g_getenv("SP_FUZZ_VERBOSE"), "1") == 0;
    strict = g_strcmp0(g_getenv("SP_FUZZ_STRICT"), "1") == 0;
    if (verbose) {
        g_random_set_seed(SYNC_SEED);
        printf("sync id: %d\n", g_random_int_range(1, G_MAXINT32));
    }
    return 0;
}

static void say(const char *what, const GError *error)
{
    if (verbose)
        printf("%s: %s\n", what, error != NULL ? error->message : "ok");
}

static void check_agent_error(const GError *error)
{
    CHECK_ERROR(error);
    CHECK(error->domain == SP_AGENT_ERROR);
}

static void run(const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpAgent) agent = NULL;
    g_autoptr(SpJson) info = NULL;
    g_autofree char *status = NULL;
    SpFreezeResult freeze = {0};
    SpThawResult thaw = {0};

    g_random_set_seed(SYNC_SEED);
    agent = sp_agent_connect(path, 5000, &error);
    say("connect", error);
    if (agent == NULL) {
        check_agent_error(error);
        return;
    }
    if (verbose)
        printf("stillpoint agent: %d\n", sp_agent_is_stillpoint(agent));
    if (!sp_agent_freeze(agent, 10000, &freeze, &error)) {
        say("freeze", error);
        check_agent_error(error);
        g_clear_error(&error);
    } else {
        /* A stillpoint-freeze reply without a positive epoch is refused (once a known bug: it was
         * taken as a freeze, and the thaw then sent epoch 0, which the agent refuses). */
        CHECK(!sp_agent_is_stillpoint(agent) || freeze.epoch > 0);
        if (verbose)
            printf("froze %u, skipped %u, epoch %" G_GINT64_FORMAT "\n", freeze.frozen,
                   freeze.skipped, freeze.epoch);
    }
    status = sp_agent_fsfreeze_status(agent, &error);
    say("status", error);
    if (status == NULL) {
        check_agent_error(error);
        g_clear_error(&error);
    }
    if (!sp_agent_thaw(agent, &freeze, &thaw, &error)) {
        say("thaw", error);
        check_agent_error(error);
        g_clear_error(&error);
    } else if (verbose) {
        printf("thawed: consistent %d, held %" G_GINT64_FORMAT " ms\n", thaw.consistent,
               thaw.held_ms);
    }
    {
        /* The verdict reads the guest's lists: any shape of them gives an answer. */
        g_autoptr(GPtrArray) disks = g_ptr_array_new();
        SpVerdictInput in = {.stillpoint = sp_agent_is_stillpoint(agent),
                             .backend = sp_agent_backend(agent), .freeze = &freeze,
                             .thaw = &thaw, .disks = disks};
        g_autofree char *why = sp_verdict(&in);
        if (verbose)
            printf("verdict: %s\n", why != NULL ? why : "application-consistent");
    }
    sp_freeze_result_clear(&freeze);
    info = sp_agent_execute(agent, "guest-info", NULL, 5000, &error);
    say("guest-info", error);
    if (info == NULL)
        check_agent_error(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GByteArray) sent = NULL;

    fuzz_peer_start(peer, data, size);
    run(fuzz_peer_path(peer));
    sent = fuzz_peer_wait(peer);
    /* The client sends 0xFF resyncs and whole commands, one per line. */
    CHECK(sent->len == 0 || sent->data[sent->len - 1] == '\n' ||
          sent->data[sent->len - 1] == 0xFF);
    return 0;
}
