/* What the agent command core's files share: the commands object, the handlers of the freeze
 * commands (agent-freeze.c) and the reply shapes (agent-replies.c). */
#pragma once
#include "stillpoint/agent-commands.h"
#include "stillpoint/alloc.h"

/* A lease token: 128 random bits, in hex. */
#define SP_AGENT_TOKEN_BYTES 16
#define SP_AGENT_TOKEN_LEN (2 * SP_AGENT_TOKEN_BYTES)

/* Every command the core knows, plus the terminating entry. */
#define SP_AGENT_MAX_COMMANDS 16

struct SpAgentCommands {
    SpAgentCommandsConfig config;
    SpCommand commands[SP_AGENT_MAX_COMMANDS];  /* those this backend supports */
    SpCommandTable table;
    const SpCommandTable *forwarded;  /* listed by guest-info; answered elsewhere */
    unsigned channel;           /* the channel whose request is being dispatched */
    /* The last freeze a standard command made, and whether a standard thaw has been told that
     * it ended by itself (it is told once: qemu-ga's clients then thaw a thawed guest). */
    int64_t standard_epoch;
    int64_t standard_end_reported;
    /* How that freeze ended by itself, noted before a later freeze replaces the backend's
     * last-thaw record: the standard thaw may arrive after another client's freeze and thaw. */
    struct {
        int64_t epoch;          /* 0 = not noted */
        const char *reason;     /* static */
        int64_t held_ms;
        char failed_writer[128];
    } standard_end;
    /* The freeze stillpoint-freeze made last: who may thaw it (epoch 0 = none). */
    struct {
        int64_t epoch;
        unsigned channel;
        char token[SP_AGENT_TOKEN_LEN + 1];
    } owner;
};

/* ---- handlers (SpCommandFn) of agent-freeze.c ---- */
SpJson *sp_agent_cmd_fsfreeze_freeze(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_fsfreeze_freeze_list(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_fsfreeze_thaw(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_freeze(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_flush(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_thaw(void *ctx, const SpJson *args, SpCommandError *err);

/* ---- who may thaw (agent-owner.c) ---- */
/* A fresh lease token (SP_AGENT_TOKEN_LEN hex digits); false with err set. */
bool sp_agent_owner_new_token(SpAgentCommands *c, char *ret_token, SpCommandError *err);
/* The current channel made freeze epoch with stillpoint-freeze, and token goes with it. */
void sp_agent_owner_set(SpAgentCommands *c, int64_t epoch, const char *token);
/* stillpoint-thaw of epoch (0 = the current freeze), with token (a JSON string, or NULL). */
bool sp_agent_owner_may_thaw(const SpAgentCommands *c, const SpBackendStatus *st, int64_t epoch,
                             const SpJson *token, SpCommandError *err);
/* guest-fsfreeze-thaw: never ends a stillpoint-freeze of another channel. */
bool sp_agent_owner_may_thaw_standard(const SpAgentCommands *c, const SpBackendStatus *st,
                                      SpCommandError *err);

/* ---- reply shapes (agent-replies.c) ---- */
SpJson *sp_agent_fs_list_json(const SpFsEntry *list, size_t n);
SpJson *sp_agent_writers_json(const SpWriterReport *writers, size_t n);
/* token: the lease token of a stillpoint-freeze (NULL: none). */
SpJson *sp_agent_freeze_json(const SpBackendFreezeResult *res, const char *token);
/* with_writers: always list the writers (a thaw's reply); else only when there are some. */
SpJson *sp_agent_thaw_json(const SpBackendThawResult *res, bool with_writers);
SpJson *sp_agent_status_json(const SpBackendStatus *st);
SpJson *sp_agent_capabilities_json(const SpAgentCommands *c);
