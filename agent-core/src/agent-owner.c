/* agent-owner: who may thaw a stillpoint-freeze — the channel that made it, or whoever holds the
 * lease token its reply returned. A guest process that reaches the agent another way (a vsock
 * loopback, a local socket) can then neither thaw the host's freeze early nor learn the token:
 * it is in the freeze reply only, never in a status. Standard freezes (guest-fsfreeze-*) stay
 * thawable from any channel, as qemu-ga's: some hosts connect once per command. */
#include "agent-internal.h"

#include <string.h>

bool sp_agent_owner_new_token(SpAgentCommands *c, char *ret_token, SpCommandError *err)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t bytes[SP_AGENT_TOKEN_BYTES];

    if (c->config.backend.ops->random(c->config.backend.self, bytes, sizeof(bytes)) < 0) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_FREEZE_FAILED,
                             "cannot draw a lease token from the system's random source; "
                             "nothing was frozen");
        return false;
    }
    for (size_t i = 0; i < sizeof(bytes); i++) {
        ret_token[2 * i] = hex[bytes[i] >> 4];
        ret_token[2 * i + 1] = hex[bytes[i] & 15];
    }
    ret_token[SP_AGENT_TOKEN_LEN] = '\0';
    return true;
}

void sp_agent_owner_set(SpAgentCommands *c, int64_t epoch, const char *token)
{
    c->owner.epoch = epoch;
    c->owner.channel = c->channel;
    memcpy(c->owner.token, token, sizeof(c->owner.token));
}

/* Compares in time independent of where the strings differ. */
static bool token_matches(const char *given, size_t len, const char *expected)
{
    unsigned char diff = len != SP_AGENT_TOKEN_LEN;

    for (size_t i = 0; i < SP_AGENT_TOKEN_LEN; i++)
        diff |= (unsigned char)((i < len ? given[i] : 0) ^ expected[i]);
    return diff == 0;
}

/* Whether the thaw of the current channel would end a stillpoint-freeze someone else holds. */
static bool held_by_other(const SpAgentCommands *c, const SpBackendStatus *st, int64_t epoch)
{
    return st->frozen && c->owner.epoch != 0 && c->owner.epoch == st->epoch &&
           (epoch == 0 || epoch == st->epoch) && c->owner.channel != c->channel;
}

bool sp_agent_owner_may_thaw(const SpAgentCommands *c, const SpBackendStatus *st, int64_t epoch,
                             const SpJson *token, SpCommandError *err)
{
    bool frozen_by_owner = st->frozen && c->owner.epoch != 0 && c->owner.epoch == st->epoch &&
                           (epoch == 0 || epoch == st->epoch);

    if (token && frozen_by_owner &&
        !token_matches(sp_json_get_string(token), sp_json_get_string_len(token), c->owner.token)) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_NOT_OWNER,
                             "freeze %lld: 'token' is not the lease token its stillpoint-freeze "
                             "returned; nothing was thawed", (long long)st->epoch);
        return false;
    }
    if (!token && held_by_other(c, st, epoch)) {
        sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, SP_CODE_NOT_OWNER,
                             "freeze %lld was made by stillpoint-freeze on another channel: thaw "
                             "it there, or give the 'token' its reply returned; nothing was thawed",
                             (long long)st->epoch);
        return false;
    }
    return true;
}

bool sp_agent_owner_may_thaw_standard(const SpAgentCommands *c, const SpBackendStatus *st,
                                      SpCommandError *err)
{
    if (!held_by_other(c, st, 0))
        return true;
    sp_command_error_set(err, SP_ERROR_CLASS_GENERIC, NULL,
                         "the filesystems were frozen by stillpoint-freeze on another channel; "
                         "only that channel (or its lease token) thaws them, at the latest when "
                         "its lease runs out");
    return false;
}
