/* agent-commands: the agents' command table and its plain handlers. Standard commands reply
 * exactly like qemu-ga (plain QGA errors, no code); stillpoint- ones add a stable "code" to
 * every error. The freeze commands are in agent-freeze.c, the reply shapes in agent-replies.c. */
#include "agent-internal.h"

#include <stdlib.h>
#include <string.h>
#include "stillpoint/protocol.h"

static SpJson *cmd_ping(void *ctx, const SpJson *args, SpCommandError *err)
{
    return NULL; /* {} */
}

static SpJson *cmd_sync(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_new_int(sp_json_object_get_int(args, "id", 0));
}

static bool is_frozen(SpAgentCommands *c)
{
    SpBackendStatus st;

    c->config.backend.ops->status(c->config.backend.self, &st);
    return st.frozen;
}

static void list_commands(SpJson *list, const SpCommandTable *table, bool frozen)
{
    for (const SpCommand *cmd = table ? table->commands : NULL; cmd && cmd->name; cmd++) {
        SpJson *e = sp_json_new_object();
        sp_json_object_set_string(e, "name", cmd->name);
        /* While frozen qemu-ga lists the refused commands as disabled. */
        sp_json_object_set_bool(e, "enabled", !frozen || (cmd->flags & SP_CMD_ALLOWED_WHILE_FROZEN));
        sp_json_object_set_bool(e, "success-response", !(cmd->flags & SP_CMD_NO_REPLY));
        sp_json_array_append(list, e);
    }
}

static SpJson *cmd_info(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgentCommands *c = ctx;
    bool frozen = is_frozen(c);
    SpJson *o = sp_json_new_object(), *list = sp_json_new_array();

    list_commands(list, &c->table, frozen);
    list_commands(list, c->forwarded, frozen);
    sp_json_object_set_string(o, "version", SP_AGENT_QGA_VERSION);
    sp_json_object_set(o, "supported_commands", list);
    return o;
}

static SpJson *cmd_fsfreeze_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_json_new_string(is_frozen(ctx) ? "frozen" : "thawed");
}

static SpJson *cmd_get_fsinfo(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgentCommands *c = ctx;
    SpBackendError be = {0};
    SpJson *r = c->config.backend.ops->fsinfo(c->config.backend.self, &be);

    if (!r)
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL, "%s", be.desc);
    return r;
}

static SpJson *cmd_capabilities(void *ctx, const SpJson *args, SpCommandError *err)
{
    return sp_agent_capabilities_json(ctx);
}

static SpJson *cmd_status(void *ctx, const SpJson *args, SpCommandError *err)
{
    SpAgentCommands *c = ctx;
    SpBackendStatus st;

    c->config.backend.ops->status(c->config.backend.self, &st);
    return sp_agent_status_json(&st);
}

/* ---- the table ---- */

static const SpArgSpec sync_args[] = {{"id", SP_ARG_INT, false}, {NULL, 0, false}};
static const SpArgSpec freeze_list_args[] = {{"mountpoints", SP_ARG_STRING_LIST, true},
                                             {NULL, 0, false}};
static const SpArgSpec freeze_args[] = {{"mountpoints", SP_ARG_STRING_LIST, true},
                                        {"disks", SP_ARG_STRING_LIST, true},
                                        {"lease-ms", SP_ARG_INT, true},
                                        {NULL, 0, false}};
static const SpArgSpec flush_args[] = {{"mountpoints", SP_ARG_STRING_LIST, true},
                                       {"disks", SP_ARG_STRING_LIST, true},
                                       {NULL, 0, false}};
static const SpArgSpec thaw_args[] = {{"epoch", SP_ARG_INT, true},
                                       {"token", SP_ARG_STRING, true},
                                       {NULL, 0, false}};

enum { FROZEN_OK = SP_CMD_ALLOWED_WHILE_FROZEN };

static const SpCommand all_commands[] = {
    {"guest-sync-delimited", cmd_sync, sync_args, FROZEN_OK | SP_CMD_DELIMITED_REPLY},
    {"guest-sync", cmd_sync, sync_args, FROZEN_OK},
    {"guest-ping", cmd_ping, NULL, FROZEN_OK},
    {"guest-info", cmd_info, NULL, FROZEN_OK},
    {"guest-fsfreeze-status", cmd_fsfreeze_status, NULL, FROZEN_OK},
    {"guest-fsfreeze-freeze", sp_agent_cmd_fsfreeze_freeze, NULL, 0},
    {"guest-fsfreeze-freeze-list", sp_agent_cmd_fsfreeze_freeze_list, freeze_list_args, 0},
    {"guest-fsfreeze-thaw", sp_agent_cmd_fsfreeze_thaw, NULL, FROZEN_OK},
    {"guest-get-fsinfo", cmd_get_fsinfo, NULL, 0},
    /* The extensions answer while frozen: freeze says "already-frozen" itself, with a code. */
    {"stillpoint-capabilities", cmd_capabilities, NULL, FROZEN_OK},
    {"stillpoint-freeze", sp_agent_cmd_freeze, freeze_args, FROZEN_OK},
    {"stillpoint-flush", sp_agent_cmd_flush, flush_args, FROZEN_OK},
    {"stillpoint-thaw", sp_agent_cmd_thaw, thaw_args, FROZEN_OK},
    {"stillpoint-status", cmd_status, NULL, FROZEN_OK},
    {NULL, NULL, NULL, 0},
};

/* A backend without an optional operation has no command for it: the dispatcher then answers
 * command-not-found, as an older agent would, and neither guest-info nor capabilities lists it. */
static bool supported(const SpAgentCommandsConfig *config, const SpCommand *cmd)
{
    if (cmd->fn == sp_agent_cmd_flush)
        return config->backend.ops->flush != NULL;
    return true;
}

SpAgentCommands *sp_agent_commands_new(const SpAgentCommandsConfig *config)
{
    SpAgentCommands *c = sp_calloc(1, sizeof(*c));
    size_t n = 0;

    c->config = *config;
    for (const SpCommand *cmd = all_commands; cmd->name; cmd++)
        if (supported(config, cmd) && n + 1 < SP_AGENT_MAX_COMMANDS)
            c->commands[n++] = *cmd;
    c->table.commands = c->commands;
    return c;
}

void sp_agent_commands_free(SpAgentCommands *c)
{
    free(c);
}

void sp_agent_commands_list_forwarded(SpAgentCommands *c, const SpCommandTable *forwarded)
{
    c->forwarded = forwarded;
}

const SpCommandTable *sp_agent_commands_table(const SpAgentCommands *c)
{
    return &c->table;
}

SpJson *sp_agent_commands_dispatch(SpAgentCommands *c, unsigned channel, const SpJson *message,
                                   unsigned *ret_flags)
{
    c->channel = channel;
    /* The library adds the dispatcher's codes (command-not-found, invalid-arguments, ...) to
     * stillpoint- errors; handlers name their own. */
    return sp_command_dispatch(&c->table, c, message, is_frozen(c), ret_flags);
}
