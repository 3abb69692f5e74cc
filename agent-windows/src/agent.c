/* The agent's session loop: read from the transport, frame, dispatch, reply; on hang-up thaw
 * what this peer froze with stillpoint-freeze (design rule 2; a standard freeze only with
 * standard_thaw_on_hangup), then wait for the next peer. */
#include "agent.h"
#include <stdlib.h>
#include <string.h>
#include "log.h"

/* Read buffer: a frame may span many reads; the framer bounds what it keeps. */
#define SP_AGENT_READ_CHUNK 4096

static void send_reply(SpAgent *agent, SpJson *reply, unsigned flags)
{
    size_t len = 0;
    char *text = reply ? sp_json_serialize(reply, &len) : NULL;
    sp_json_free(reply);
    if (!text) {
        sp_log(SP_LOG_ERROR, "out of memory building a reply");
        return;
    }
    /* guest-sync-delimited: 0xFF first, so the host can discard stale bytes up to it. */
    static const char delimiter = (char)0xFF;
    if ((flags & SP_CMD_DELIMITED_REPLY) && agent->transport->ops->write(agent->transport,
                                                                      &delimiter, 1) < 0)
        agent->write_failed = true;
    text[len] = '\n'; /* replaces the NUL: replies are newline-terminated */
    if (!agent->write_failed && agent->transport->ops->write(agent->transport, text, len + 1) < 0)
        agent->write_failed = true;
    free(text);
}

void sp_agent_handle_frame(SpAgent *agent, const SpFrame *frame)
{
    if (frame->kind == SP_FRAME_RESYNC)
        return;
    if (frame->kind == SP_FRAME_ERROR) {
        send_reply(agent, sp_command_reply_for_bad_input(frame->status, NULL), 0);
        return;
    }
    SpJson *message = NULL;
    SpJsonError jerr = { 0 };
    SpJsonLimits limits = { 0 };
    int r = sp_json_parse(frame->data, frame->len, &limits, &message, &jerr);
    if (r < 0) {
        send_reply(agent, sp_command_reply_for_bad_input(r, jerr.message), 0);
        return;
    }
    bool frozen = sp_vss_freezer_state(agent->freezer) != SP_VSS_STATE_THAWED;
    unsigned flags = 0;
    SpJson *reply = sp_command_dispatch(&sp_agent_commands, agent, message, frozen, &flags);
    sp_json_free(message);
    if (!(flags & SP_CMD_NO_REPLY))
        send_reply(agent, reply, flags);
    else
        sp_json_free(reply);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    sp_agent_handle_frame(userdata, frame);
}

/* One peer's session; returns when it hangs up, a write fails, or stop. */
static void serve_peer(SpAgent *agent)
{
    char buf[SP_AGENT_READ_CHUNK];
    sp_framer_reset(agent->framer);
    agent->write_failed = false;
    for (;;) {
        int n = agent->transport->ops->read(agent->transport, buf, sizeof(buf), agent->stop);
        if (n <= 0)
            break;
        if (sp_framer_feed(agent->framer, buf, (size_t)n, frame_cb, agent) < 0) {
            sp_log(SP_LOG_ERROR, "out of memory framing input");
            break;
        }
        if (agent->write_failed)
            break;
    }
    agent->transport->ops->hangup(agent->transport);
    if (sp_vss_freezer_state(agent->freezer) != SP_VSS_STATE_THAWED) {
        bool stopping = WaitForSingleObject(agent->stop, 0) == WAIT_OBJECT_0;
        if (!stopping && agent->standard_freeze && !agent->standard_thaw_on_hangup) {
            /* As on Linux: the next connection thaws it, or the lease or VSS's limit does. */
            sp_log(SP_LOG_INFO, "the host hung up while the volumes were frozen by a standard "
                                "command: keeping the freeze");
            return;
        }
        sp_log(SP_LOG_WARNING, "%s while the volumes were frozen: thawing",
               stopping ? "stopping" : "the host hung up");
        sp_vss_freezer_end(agent->freezer, stopping ? SP_VSS_END_STOPPED : SP_VSS_END_HANGUP);
    }
}

int sp_agent_serve(SpAgent *agent)
{
    agent->framer = sp_framer_new(0);
    if (!agent->framer)
        return -1;
    int r = 0;
    while (WaitForSingleObject(agent->stop, 0) != WAIT_OBJECT_0) {
        if (agent->transport->ops->wait_peer(agent->transport, agent->stop) < 0) {
            r = WaitForSingleObject(agent->stop, 0) == WAIT_OBJECT_0 ? 0 : -1;
            break;
        }
        sp_log(SP_LOG_DEBUG, "%s: peer connected", agent->transport->ops->name);
        serve_peer(agent);
        sp_log(SP_LOG_DEBUG, "%s: peer gone", agent->transport->ops->name);
    }
    sp_framer_free(agent->framer);
    agent->framer = NULL;
    return r;
}
