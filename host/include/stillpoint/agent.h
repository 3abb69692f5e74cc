/* The guest agent client: the protocol over the VM's agent socket, with per-command deadlines and
 * guest-sync-delimited resync after a timeout. Uses the leased stillpoint-freeze/-thaw with a
 * stillpoint agent and falls back to the standard guest-fsfreeze-* with a stock qemu-ga. */
#pragma once
#include <glib.h>
#include "stillpoint/channel.h"
#include "stillpoint/store.h"

G_BEGIN_DECLS

#define SP_AGENT_SYNC_TIMEOUT_MS 5000
#define SP_AGENT_SYNC_RETRY_MS 1500 /* guest-sync-delimited is sent again after this long */
#define SP_AGENT_SYNC_MAX_TRIES 8
#define SP_AGENT_FREEZE_TIMEOUT_MS 60000 /* freezing runs hooks and writers in the guest */
#define SP_AGENT_THAW_TIMEOUT_MS 30000
#define SP_AGENT_FLUSH_TIMEOUT_MS 10000 /* the agent bounds its flush at 5 s */
#define SP_AGENT_FSINFO_TIMEOUT_MS 10000 /* guest-get-fsinfo: statvfs of every mount */
/* After a command timed out, the next ones on that connection wait at most this long until the
 * agent answers again. */
#define SP_AGENT_STALLED_TIMEOUT_MS 2000

/* Errors the coordinator tells apart (domain SP_AGENT_ERROR). */
typedef enum {
    SP_AGENT_ERROR_UNREACHABLE, /* no socket, or nothing answers the sync */
    SP_AGENT_ERROR_TIMEOUT,     /* a command passed its deadline */
    SP_AGENT_ERROR_COMMAND,     /* the agent answered with an error */
    SP_AGENT_ERROR_PROTOCOL,    /* an answer we cannot understand */
} SpAgentError;
#define SP_AGENT_ERROR sp_agent_error_quark()
GQuark sp_agent_error_quark(void);

typedef struct SpAgent SpAgent;

typedef struct {
    gint64 epoch;     /* stillpoint: the lease's epoch; 0 with qemu-ga */
    guint frozen;     /* filesystems frozen */
    guint skipped;    /* filesystems the agent could not freeze (stillpoint only) */
    gint64 lease_ms;  /* stillpoint: the lease granted (maybe less than asked); 0 with qemu-ga */
    /* For the verdict (verdict.h), owned (sp_freeze_result_clear): the stillpoint-freeze reply
     * (its "frozen" and "skipped" lists; NULL with qemu-ga), and guest-get-fsinfo as the guest
     * answered it just before the freeze, or why it did not. */
    SpJson *reply;
    SpJson *fsinfo;
    char *fsinfo_error;
} SpFreezeResult;

void sp_freeze_result_clear(SpFreezeResult *result);

typedef struct {
    gboolean consistent; /* the freeze held continuously until this thaw */
    gint64 held_ms;      /* -1 when the agent does not say */
    gint64 epoch;        /* stillpoint: the freeze the reply describes; 0 when it does not say */
    char reason[48];     /* stillpoint: how the freeze ended (escaped), "" when not said */
} SpThawResult;

/* Connects and syncs (guest-sync-delimited), then asks for stillpoint-capabilities. */
SpAgent *sp_agent_connect(const char *path, guint timeout_ms, GError **error);
/* The VM's agent: as its driver reaches it (SpDriverOps.agent_connect), else on its agent
 * socket. */
SpAgent *sp_agent_connect_vm(const SpVm *vm, guint timeout_ms, GError **error);
/* "on SOCKET" or the driver's description ("through libvirt (domain 'D')"), for progress
 * messages. */
char *sp_agent_describe_vm(const SpVm *vm);
/* The libvirt driver's agent channel: libvirt owns it (and syncs). */
SpAgent *sp_agent_connect_libvirt(const SpVm *vm, guint timeout_ms, GError **error);
char *sp_agent_describe_libvirt(const SpVm *vm);
void sp_agent_free(SpAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpAgent, sp_agent_free)

gboolean sp_agent_is_stillpoint(SpAgent *agent);
/* What freezes in the guest, as stillpoint-capabilities says ("fifreeze", "vss", "fake");
 * NULL with qemu-ga or when the agent does not say. */
const char *sp_agent_backend(SpAgent *agent);
/* Whether stillpoint-capabilities listed this command (FALSE with qemu-ga). */
gboolean sp_agent_has_command(SpAgent *agent, const char *command);
/* Runs a command; returns its "return" value (owned). After a timeout, resyncs the stream so the
 * late reply cannot be taken for the next command's. */
SpJson *sp_agent_execute(SpAgent *agent, const char *command, SpJson *arguments, guint timeout_ms,
                         GError **error);
gboolean sp_agent_sync(SpAgent *agent, guint timeout_ms, GError **error);

/* Asks guest-get-fsinfo (for the verdict; its failure is kept in ret, not an error), then
 * freezes. *ret is filled on success only; clear it with sp_freeze_result_clear. When
 * sp_agent_read_fsinfo already filled ret (a group reads every member's before any freeze, so
 * that the freezes go out together), that answer is used. */
gboolean sp_agent_freeze(SpAgent *agent, guint lease_ms, SpFreezeResult *ret, GError **error);
void sp_agent_read_fsinfo(SpAgent *agent, SpFreezeResult *ret);
gboolean sp_agent_thaw(SpAgent *agent, const SpFreezeResult *freeze, SpThawResult *ret,
                       GError **error);
/* stillpoint-flush: syncfs every filesystem the freeze would freeze, without freezing, so that
 * the freeze that follows has little left to flush. *ret_flushed: how many. */
gboolean sp_agent_flush(SpAgent *agent, guint *ret_flushed, GError **error);
/* "thawed" or "frozen" (guest-fsfreeze-status). */
char *sp_agent_fsfreeze_status(SpAgent *agent, GError **error);

G_END_DECLS
