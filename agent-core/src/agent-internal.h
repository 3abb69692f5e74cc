/* What the agent command core's files share: the commands object, the handlers of the freeze
 * commands (agent-freeze.c) and the reply shapes (agent-replies.c). */
#pragma once
#include "stillpoint/agent-commands.h"

/* Every command the core knows, plus the terminating entry. */
#define SP_AGENT_MAX_COMMANDS 16

struct SpAgentCommands {
    SpAgentCommandsConfig config;
    SpCommand commands[SP_AGENT_MAX_COMMANDS];  /* those this backend supports */
    SpCommandTable table;
    unsigned channel;           /* the channel whose request is being dispatched */
    /* The last freeze a standard command made, and whether a standard thaw has been told that
     * it ended by itself (it is told once: qemu-ga's clients then thaw a thawed guest). */
    int64_t standard_epoch;
    int64_t standard_end_reported;
};

/* ---- handlers (SpCommandFn) of agent-freeze.c ---- */
SpJson *sp_agent_cmd_fsfreeze_freeze(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_fsfreeze_freeze_list(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_fsfreeze_thaw(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_freeze(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_flush(void *ctx, const SpJson *args, SpCommandError *err);
SpJson *sp_agent_cmd_thaw(void *ctx, const SpJson *args, SpCommandError *err);

/* ---- reply shapes (agent-replies.c) ---- */
SpJson *sp_agent_fs_list_json(const SpFsEntry *list, size_t n);
SpJson *sp_agent_writers_json(const SpWriterReport *writers, size_t n);
SpJson *sp_agent_freeze_json(const SpBackendFreezeResult *res);
/* with_writers: always list the writers (a thaw's reply); else only when there are some. */
SpJson *sp_agent_thaw_json(const SpBackendThawResult *res, bool with_writers);
SpJson *sp_agent_status_json(const SpBackendStatus *st);
SpJson *sp_agent_capabilities_json(const SpAgentCommands *c);
