/* session: read from the transport, frame, dispatch, reply; on hang-up the backend thaws what
 * this peer froze with stillpoint-freeze (design rule 2; a standard freeze only with
 * standard_thaw_on_hangup), then wait for the next peer. */
#include "session.h"
#include <stdlib.h>
#include <string.h>
#include "log.h"

/* Read buffer: a frame may span many reads; the framer bounds what it keeps. */
#define SP_AGENT_READ_CHUNK 4096

static void send_reply(SpSession *session, SpJson *reply, unsigned flags)
{
    size_t len = 0;
    char *text = sp_json_serialize(reply, &len); /* NULL for no reply */
    sp_json_free(reply);
    if (!text)
        return;
    /* guest-sync-delimited: 0xFF first, so the host can discard stale bytes up to it. */
    static const char delimiter = (char)0xFF;
    SpPeerTransport *t = session->transport;
    if ((flags & SP_CMD_DELIMITED_REPLY) && t->ops->write(t, &delimiter, 1) < 0)
        session->write_failed = true;
    text[len] = '\n'; /* replaces the NUL: replies are newline-terminated */
    if (!session->write_failed && t->ops->write(t, text, len + 1) < 0)
        session->write_failed = true;
    free(text);
}

void sp_session_handle_frame(SpSession *session, const SpFrame *frame)
{
    if (frame->kind == SP_FRAME_RESYNC)
        return;
    if (frame->kind == SP_FRAME_ERROR) {
        send_reply(session, sp_command_reply_for_bad_input(frame->status, NULL), 0);
        return;
    }
    SpJson *message = NULL;
    SpJsonError jerr = { 0 };
    SpJsonLimits limits = { 0 };
    int r = sp_json_parse(frame->data, frame->len, &limits, &message, &jerr);
    if (r < 0) {
        send_reply(session, sp_command_reply_for_bad_input(r, jerr.message), 0);
        return;
    }
    unsigned flags = 0;
    SpJson *reply = sp_agent_commands_dispatch(session->commands, session->channel, message,
                                               &flags);
    sp_json_free(message);
    if (!(flags & SP_CMD_NO_REPLY))
        send_reply(session, reply, flags);
    else
        sp_json_free(reply);
}

static void frame_cb(const SpFrame *frame, void *userdata)
{
    sp_session_handle_frame(userdata, frame);
}

/* One peer's session; returns when it hangs up, a write fails, or stop. */
static void serve_peer(SpSession *session)
{
    char buf[SP_AGENT_READ_CHUNK];
    sp_framer_reset(session->framer);
    session->write_failed = false;
    session->channel++;
    for (;;) {
        int n = session->transport->ops->read(session->transport, buf, sizeof(buf),
                                              session->stop);
        if (n <= 0)
            break;
        sp_framer_feed(session->framer, buf, (size_t)n, frame_cb, session);
        if (session->write_failed)
            break;
    }
    session->transport->ops->hangup(session->transport);
    sp_windows_backend_channel_closed(session->backend, session->channel,
                                      WaitForSingleObject(session->stop, 0) == WAIT_OBJECT_0);
}

int sp_session_serve(SpSession *session)
{
    session->framer = sp_framer_new(0);
    int r = 0;
    while (WaitForSingleObject(session->stop, 0) != WAIT_OBJECT_0) {
        if (session->transport->ops->wait_peer(session->transport, session->stop) < 0) {
            r = WaitForSingleObject(session->stop, 0) == WAIT_OBJECT_0 ? 0 : -1;
            break;
        }
        sp_log(SP_LOG_DEBUG, "%s: peer connected", session->transport->ops->name);
        serve_peer(session);
        sp_log(SP_LOG_DEBUG, "%s: peer gone", session->transport->ops->name);
    }
    sp_framer_free(session->framer);
    session->framer = NULL;
    return r;
}
