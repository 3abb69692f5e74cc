/* forward: the standard commands stillpoint-agent does not implement itself (network interfaces,
 * time, shutdown, osinfo, ...) answered by the stock qemu-ga that runs beside it on a private
 * unix socket, so that installing the agent takes nothing away from the host (README "DESIGN:
 * coexisting with qemu-ga"). An allow-list, a deadline and a reply size bound every call. */
#pragma once
#include <glib.h>
#include "config.h"
#include "stillpoint/command.h"

typedef struct SpForward SpForward;

/* A forwarded request's reply (owned; NULL with SP_CMD_NO_REPLY when none is to be sent). */
typedef void (*SpForwardReplyFn)(guint64 request, SpJson *reply, unsigned flags, void *data);

/* NULL when the configuration forwards nothing ([qemu-ga] socket empty). known: the agent's own
 * commands, which are never forwarded (the freeze commands above all). */
SpForward *sp_forward_new(const SpConfig *config, const SpCommandTable *known,
                          SpForwardReplyFn reply_fn, void *data);
/* Cancels what is in flight; its replies are dropped. Accepts NULL. */
void sp_forward_free(SpForward *forward);

/* The commands forwarded, for guest-info (fn NULL; SP_CMD_NO_REPLY where qemu-ga answers
 * nothing on success). */
const SpCommandTable *sp_forward_commands(const SpForward *forward);

typedef enum {
    SP_FORWARD_NOT_MINE,   /* not a forwarded command: the agent's own dispatch answers */
    SP_FORWARD_ANSWERED,   /* refused here: *ret_reply is the error */
    SP_FORWARD_PENDING,    /* sent to qemu-ga: the reply comes through reply_fn with request */
} SpForwardResult;

/* frozen: forwarded commands are refused while frozen, as qemu-ga refuses them. */
SpForwardResult sp_forward_dispatch(SpForward *forward, const SpJson *message, gboolean frozen,
                                    guint64 request, SpJson **ret_reply);
