/* agent-replies: the shapes of the stillpoint- replies (PROTOCOL.md), built from what a freeze
 * backend reports; one shape for both agents, with the members only one platform has present
 * only when it reports them. */
#include "agent-internal.h"

#include "stillpoint/protocol.h"

/* A reply's lists (filesystems, writers, skipped mounts) are arrays of one object per item:
 * one loop, with the item's own shape passed in. */
static SpJson *array_of(const void *items, size_t n, size_t item_size,
                        SpJson *(*item_json)(const void *item))
{
    SpJson *a = sp_json_new_array();

    for (size_t i = 0; i < n; i++)
        sp_json_array_append(a, item_json((const char *)items + i * item_size));
    return a;
}

static SpJson *fs_entry_json(const void *item)
{
    const SpFsEntry *e = item;
    SpJson *o = sp_json_new_object();

    sp_json_object_set_string(o, "mountpoint", e->mountpoint);
    sp_json_object_set_string(o, "type", e->fstype);
    sp_json_object_set_optional_string(o, "device", e->device);
    sp_json_object_set_optional_string(o, "uuid", e->uuid);
    sp_json_object_set_optional_string(o, "label", e->label);
    return o;
}

SpJson *sp_agent_fs_list_json(const SpFsEntry *list, size_t n)
{
    return array_of(list, n, sizeof(*list), fs_entry_json);
}

static SpJson *writer_json(const void *item)
{
    const SpWriterReport *w = item;
    SpJson *e = sp_json_new_object();

    sp_json_object_set_string(e, "name", w->name);
    sp_json_object_set_string(e, "phase", w->phase ? w->phase : "prepare");
    sp_json_object_set_string(e, "result", w->result ? w->result : "ok");
    if (w->ms >= 0)
        sp_json_object_set_int(e, "ms", w->ms);
    sp_json_object_set_optional_string(e, "message", w->message);
    sp_json_object_set_optional_string(e, "thaw", w->thaw_result);
    sp_json_object_set_optional_string(e, "thaw-message", w->thaw_message);
    sp_json_object_set_optional_string(e, "state", w->state);
    return e;
}

/* One entry per writer that took part: its last phase and how it went, then its thaw. */
SpJson *sp_agent_writers_json(const SpWriterReport *writers, size_t n)
{
    return array_of(writers, n, sizeof(*writers), writer_json);
}

static SpJson *skip_entry_json(const void *item)
{
    const SpSkipEntry *s = item;
    SpJson *e = sp_json_new_object();

    sp_json_object_set_string(e, "mountpoint", s->mountpoint);
    sp_json_object_set_string(e, "type", s->fstype);
    sp_json_object_set_string(e, "reason", s->reason);
    sp_json_object_set_optional_string(e, "primary", s->primary);
    return e;
}

SpJson *sp_agent_freeze_json(const SpBackendFreezeResult *res, const char *token)
{
    SpJson *o = sp_json_new_object();

    sp_json_object_set_int(o, "epoch", res->epoch);
    sp_json_object_set_optional_string(o, "token", token);
    sp_json_object_set_int(o, "lease-ms", res->lease_ms);
    sp_json_object_set(o, "frozen", sp_agent_fs_list_json(res->frozen, res->n_frozen));
    sp_json_object_set(o, "skipped", array_of(res->skipped, res->n_skipped, sizeof(*res->skipped),
                                              skip_entry_json));
    if (!res->writers_at_thaw)
        sp_json_object_set(o, "writers", sp_agent_writers_json(res->writers, res->n_writers));
    if (res->hold_limit_ms > 0)
        sp_json_object_set_int(o, "hold-limit-ms", res->hold_limit_ms);
    return o;
}

SpJson *sp_agent_thaw_json(const SpBackendThawResult *res, bool with_writers)
{
    SpJson *o = sp_json_new_object();

    sp_json_object_set_int(o, "epoch", res->epoch);
    sp_json_object_set_int(o, "thawed", (int64_t)res->n_thawed);
    sp_json_object_set_bool(o, "consistent", res->consistent);
    sp_json_object_set_string(o, "reason", res->reason ? res->reason : "requested");
    sp_json_object_set_int(o, "held-ms", res->held_ms);
    sp_json_object_set_optional_string(o, "failed-writer", res->failed_writer);
    if (with_writers || res->n_writers > 0)
        sp_json_object_set(o, "writers", sp_agent_writers_json(res->writers, res->n_writers));
    return o;
}

SpJson *sp_agent_status_json(const SpBackendStatus *st)
{
    SpJson *o = sp_json_new_object();

    sp_json_object_set_string(o, "status", st->frozen ? "frozen" : "thawed");
    sp_json_object_set_int(o, "epoch", st->epoch);
    if (st->frozen) {
        sp_json_object_set_int(o, "lease-ms", st->lease_ms);
        sp_json_object_set_int(o, "remaining-ms", st->remaining_ms);
        sp_json_object_set_int(o, "held-ms", st->held_ms);
    }
    sp_json_object_set(o, "frozen", sp_agent_fs_list_json(st->frozen_fs, st->n_frozen_fs));
    if (st->has_last_thaw)
        sp_json_object_set(o, "last-thaw", sp_agent_thaw_json(&st->last_thaw, false));
    sp_json_object_set(o, "writers", sp_agent_writers_json(st->writers, st->n_writers));
    return o;
}

static SpJson *freeze_capabilities_json(const SpAgentCommandsConfig *cfg)
{
    SpJson *f = sp_json_new_object(), *sel = sp_json_new_array();

    sp_json_array_append(sel, sp_json_new_string("all"));
    sp_json_array_append(sel, sp_json_new_string("mountpoints"));
    sp_json_array_append(sel, sp_json_new_string("disks"));
    sp_json_object_set_int(f, "default-lease-ms", cfg->default_lease_ms);
    sp_json_object_set_int(f, "min-lease-ms", cfg->min_lease_ms);
    sp_json_object_set_int(f, "max-lease-ms", cfg->max_lease_ms);
    sp_json_object_set(f, "select", sel);
    sp_json_object_set_bool(f, "thaw-on-hangup", cfg->thaw_on_hangup);
    sp_json_object_set_bool(f, "standard-thaw-on-hangup", cfg->standard_thaw_on_hangup);
    sp_json_object_set_bool(f, "hooks", cfg->hooks);
    sp_json_object_set_bool(f, "writers", cfg->writers);
    if (cfg->hold_limit_ms > 0)
        sp_json_object_set_int(f, "hold-limit-ms", cfg->hold_limit_ms);
    sp_json_object_set_string(f, "backend", cfg->backend_name);
    return f;
}

SpJson *sp_agent_capabilities_json(const SpAgentCommands *c)
{
    SpJson *o = sp_json_new_object(), *cmds = sp_json_new_array();

    for (const SpCommand *cmd = c->table.commands; cmd->name; cmd++)
        sp_json_array_append(cmds, sp_json_new_string(cmd->name));
    sp_json_object_set_string(o, "protocol", SP_PROTOCOL_VERSION);
    sp_json_object_set_string(o, "agent", "stillpoint-agent");
    sp_json_object_set_string(o, "version", c->config.version);
    sp_json_object_set_string(o, "platform", c->config.platform);
    sp_json_object_set(o, "commands", cmds);
    sp_json_object_set(o, "freeze", freeze_capabilities_json(&c->config));
    return o;
}
