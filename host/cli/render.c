/* render: what the stillpoint commands print on stdout, from the documents of document.h —
 * JSON as it is, or text — so the CLI prints the same directly and through stillpointd. */
#include "render.h"

#include "stillpoint/guest-text.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The document's "created" (ISO 8601, UTC) in local time, as the tree shows it. */
static char *format_local(const char *iso)
{
    g_autoptr(GDateTime) t = iso != NULL ? g_date_time_new_from_iso8601(iso, NULL) : NULL;
    g_autoptr(GDateTime) local = t != NULL ? g_date_time_to_local(t) : NULL;
    return local != NULL ? g_date_time_format(local, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
}


static gboolean print_as_json(const SpJson *doc, gboolean json)
{
    g_autofree char *text = NULL;
    if (!json)
        return FALSE;
    text = sp_json_serialize(doc, NULL);
    printf("%s\n", text != NULL ? text : "null");
    return TRUE;
}

static const char *string_or(const SpJson *o, const char *key, const char *fallback)
{
    const char *s = sp_json_object_get_string(o, key);
    return s != NULL ? s : fallback;
}

void sp_cli_print_vm_list(const SpJson *doc, gboolean json)
{
    if (print_as_json(doc, json))
        return;
    if (sp_json_array_len(doc) == 0)
        printf("no VMs registered (add one with 'stillpoint vm add')\n");
    for (size_t i = 0; i < sp_json_array_len(doc); i++) {
        const SpJson *vm = sp_json_array_get(doc, i);
        if (sp_json_object_get_string(vm, "libvirt-domain") != NULL)
            printf("%-20s driver=libvirt domain=%s uri=%s\n", string_or(vm, "name", ""),
                   string_or(vm, "libvirt-domain", ""), string_or(vm, "libvirt-uri", "(default)"));
        else
            printf("%-20s driver=%s qmp=%s agent=%s checkpoint-type=%s\n",
                   string_or(vm, "name", ""), string_or(vm, "driver", ""),
                   string_or(vm, "qmp", ""), string_or(vm, "agent", "(none)"),
                   string_or(vm, "checkpoint-type", "production"));
    }
}

/* Why a checkpoint is not what was asked (it quotes the guest: escaped, also for records an
 * older version stored as they came). */
static void print_reason(const SpJson *cp, const char *prefix)
{
    const char *reason = sp_json_object_get_string(cp, "reason");
    g_autofree char *shown = NULL;
    if (reason == NULL)
        return;
    shown = sp_guest_text(reason);
    printf("%s   why: %s\n", prefix, shown);
}

static void print_tree(const SpJson *cps, int64_t parent, const char *prefix)
{
    g_autoptr(GPtrArray) children = g_ptr_array_new();
    for (size_t i = 0; i < sp_json_array_len(cps); i++) {
        const SpJson *cp = sp_json_array_get(cps, i);
        if (sp_json_object_get_int(cp, "parent", 0) == parent)
            g_ptr_array_add(children, (gpointer)cp);
    }
    for (guint i = 0; i < children->len; i++) {
        const SpJson *cp = g_ptr_array_index(children, i);
        gboolean last = i + 1 == children->len;
        int64_t id = sp_json_object_get_int(cp, "id", 0);
        g_autofree char *when = format_local(sp_json_object_get_string(cp, "created"));
        g_autofree char *size =
            g_format_size((guint64)MAX(sp_json_object_get_int(cp, "overlay-bytes", 0), 0));
        g_autofree char *sub = g_strconcat(prefix, last ? "   " : "│  ", NULL);
        printf("%s%s #%" G_GINT64_FORMAT " %s\n", prefix, last ? "└─" : "├─", id,
               string_or(cp, "name", ""));
        printf("%s%s   %s, %s-consistent, %s, overlay %s%s%s\n", prefix, last ? "  " : "│ ",
               string_or(cp, "type", ""), string_or(cp, "consistency", ""), when, size,
               sp_json_object_get_bool(cp, "missing-files", false) ? ", FILES MISSING" : "",
               sp_json_object_get_bool(cp, "current", false)
                   ? "   <- now (the VM runs on this checkpoint)" : "");
        {
            g_autofree char *line = g_strconcat(prefix, last ? "  " : "│ ", NULL);
            print_reason(cp, line);
        }
        print_tree(cps, id, sub);
    }
}

void sp_cli_print_checkpoint_list(const SpJson *doc, gboolean json)
{
    const SpJson *cps = sp_json_object_get(doc, "checkpoints");
    if (print_as_json(doc, json))
        return;
    printf("%s%s\n", string_or(doc, "vm", ""),
           sp_json_array_len(cps) == 0 ? " (no checkpoints)" : "");
    print_tree(cps, 0, "");
}

static void print_ref(const char *label, const SpJson *ref)
{
    printf("  %-12s #%" G_GINT64_FORMAT " %s\n", label, sp_json_object_get_int(ref, "id", 0),
           string_or(ref, "name", ""));
}

static void print_size_of(const char *label, const char *path, int64_t bytes)
{
    g_autofree char *size = g_format_size((guint64)MAX(bytes, 0));
    printf("      %-8s %s (%s)\n", label, path, bytes < 0 ? "MISSING" : size);
}

void sp_cli_print_checkpoint_show(const SpJson *doc, gboolean json)
{
    const SpJson *parent = sp_json_object_get(doc, "parent-checkpoint");
    const SpJson *children = sp_json_object_get(doc, "children");
    const SpJson *disks = sp_json_object_get(doc, "disks");
    const char *requested = sp_json_object_get_string(doc, "requested");
    const char *reason = sp_json_object_get_string(doc, "reason");
    g_autofree char *when = format_local(sp_json_object_get_string(doc, "created"));

    if (print_as_json(doc, json))
        return;
    printf("checkpoint #%" G_GINT64_FORMAT " %s of VM %s\n", sp_json_object_get_int(doc, "id", 0),
           string_or(doc, "name", ""), string_or(doc, "vm", ""));
    printf("  %-12s %s%s%s%s\n", "type:", string_or(doc, "type", ""),
           requested != NULL ? " (asked: " : "", requested != NULL ? requested : "",
           requested != NULL ? ")" : "");
    printf("  %-12s %s-consistent\n", "consistency:", string_or(doc, "consistency", ""));
    if (reason != NULL) {
        g_autofree char *shown = sp_guest_text(reason); /* it quotes the guest */
        printf("  %-12s %s\n", "reason:", shown);
    }
    printf("  %-12s %s\n", "created:", when);
    printf("  %-12s %s, asked by %s\n", "made by:", string_or(doc, "made-by", "(not recorded)"),
           string_or(doc, "origin", "user"));
    if (sp_json_object_get_string(doc, "state") != NULL)
        printf("  %-12s %s\n", "memory:", sp_json_object_get_string(doc, "state"));
    if (parent != NULL && sp_json_object_get_string(parent, "name") != NULL)
        print_ref("parent:", parent);
    else
        printf("  %-12s none (the first of the tree)\n", "parent:");
    if (sp_json_array_len(children) == 0)
        printf("  %-12s none\n", "children:");
    for (size_t i = 0; i < sp_json_array_len(children); i++)
        print_ref(i == 0 ? "children:" : "", sp_json_array_get(children, i));
    printf("  disks:\n");
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const SpJson *d = sp_json_array_get(disks, i);
        printf("    %s\n", string_or(d, "disk", ""));
        print_size_of("image", string_or(d, "image", ""), sp_json_object_get_int(d, "image-bytes", 0));
        if (sp_json_object_get_string(d, "overlay") != NULL)
            print_size_of("overlay", sp_json_object_get_string(d, "overlay"),
                          sp_json_object_get_int(d, "overlay-bytes", 0));
    }
    if (sp_json_object_get_bool(doc, "missing-files", false))
        printf("  FILES MISSING: an image or the saved memory of this checkpoint is gone\n");
    if (sp_json_object_get_bool(doc, "current", false))
        printf("  now:         the VM's present is built on this checkpoint\n");
}

void sp_cli_print_vm_disks(const SpJson *doc, gboolean json)
{
    if (print_as_json(doc, json))
        return;
    for (size_t i = 0; i < sp_json_array_len(doc); i++) {
        const SpJson *d = sp_json_array_get(doc, i);
        printf("%s node=%s format=%s serial=%s image=%s\n", string_or(d, "disk", ""),
               string_or(d, "node", "-"), string_or(d, "format", ""), string_or(d, "serial", "-"),
               string_or(d, "image", ""));
    }
}

void sp_cli_print_vm_added(const SpJson *doc, gboolean json)
{
    print_as_json(doc, json);
}

void sp_cli_print_checkpoint_created(const char *vm, const SpJson *doc, gboolean json)
{
    const char *state = sp_json_object_get_string(doc, "state");
    if (print_as_json(doc, json))
        return;
    if (state != NULL)
        printf("checkpoint %" G_GINT64_FORMAT " '%s' of VM '%s': standard (its memory and "
               "device state are saved in %s)\n",
               sp_json_object_get_int(doc, "id", 0), string_or(doc, "name", ""), vm, state);
    else
        printf("checkpoint %" G_GINT64_FORMAT " '%s' of VM '%s': %s-consistent\n",
               sp_json_object_get_int(doc, "id", 0), string_or(doc, "name", ""), vm,
               string_or(doc, "consistency", ""));
    print_reason(doc, "");
}

void sp_cli_print_checkpoint_deleted(const char *vm, const char *ref, gboolean subtree,
                                     gboolean json)
{
    g_autoptr(SpJson) o = sp_json_new_object();
    sp_json_object_set_string(o, "event", "deleted");
    sp_json_object_set_string(o, "checkpoint", ref);
    sp_json_object_set_bool(o, "subtree", subtree);
    if (!print_as_json(o, json))
        printf("deleted checkpoint '%s'%s of VM '%s'\n", ref, subtree ? " and its subtree" : "",
               vm);
}

void sp_cli_print_group_checkpoint(const char *group, const SpJson *doc, gboolean json)
{
    if (print_as_json(doc, json))
        return;
    for (size_t i = 0; i < sp_json_array_len(doc); i++) {
        const SpJson *cp = sp_json_array_get(doc, i);
        printf("checkpoint %" G_GINT64_FORMAT " '%s' of VM '%s' (group '%s'): %s-consistent\n",
               (gint64)sp_json_object_get_int(cp, "id", 0), string_or(cp, "name", ""),
               string_or(cp, "vm", "?"), group, string_or(cp, "consistency", ""));
    }
}

void sp_cli_print_json_event(gboolean json, const char *event, ...)
{
    g_autoptr(SpJson) o = NULL;
    const char *key;
    va_list ap;
    if (!json)
        return;
    o = sp_json_new_object();
    sp_json_object_set_string(o, "event", event);
    va_start(ap, event);
    while ((key = va_arg(ap, const char *)) != NULL)
        sp_json_object_set_string(o, key, va_arg(ap, const char *));
    va_end(ap);
    print_as_json(o, TRUE);
}

void sp_cli_print_checkpoint_exported(const char *vm, const char *ref, const char *manifest,
                                      gboolean json)
{
    g_autoptr(SpJson) o = sp_json_new_object();
    sp_json_object_set_string(o, "event", "exported");
    sp_json_object_set_string(o, "manifest", manifest);
    if (!print_as_json(o, json))
        printf("exported checkpoint '%s' of VM '%s': %s\n", ref, vm, manifest);
}


void sp_cli_print_checkpoint_applied(const char *vm, const SpJson *doc, gboolean json)
{
    const SpJson *disks = sp_json_object_get(doc, "disks");
    const SpJson *links = sp_json_object_get(doc, "links");
    if (sp_json_type(doc) != SP_JSON_OBJECT || print_as_json(doc, json))
        return;
    printf("VM '%s' is at checkpoint '%s'; start it from:\n", vm, string_or(doc, "name", ""));
    for (size_t i = 0; i < sp_json_array_len(disks); i++) {
        const char *disk = string_or(sp_json_array_get(disks, i), "disk", "");
        printf("  %s: %s\n", disk, string_or(links, disk, ""));
    }
    if (sp_json_object_get_string(doc, "libvirt-domain") != NULL)
        printf("(libvirt's definition of domain '%s' names them: virsh start %s)\n",
               string_or(doc, "libvirt-domain", ""), string_or(doc, "libvirt-domain", ""));
    if (sp_json_object_get_string(doc, "state") != NULL &&
        sp_json_object_get_string(doc, "libvirt-domain") != NULL)
        printf("It is a standard checkpoint: 'stillpoint checkpoint resume %s' (instead of virsh "
               "start) restores the domain from its saved memory.\n",
               vm);
    else if (sp_json_object_get_string(doc, "state") != NULL)
        printf("It is a standard checkpoint: start QEMU with the same options plus "
               "'-incoming defer', then run 'stillpoint checkpoint resume %s' to "
               "continue from its saved memory.\n",
               vm);
}

void sp_cli_print_percent(const char *disk, double percent, gboolean json, gboolean quiet)
{
    static int last = -1;
    static char *last_disk;
    int pct = (int)percent;
    if (pct == last && g_strcmp0(disk, last_disk) == 0)
        return;
    last = pct;
    if (g_strcmp0(disk, last_disk) != 0) {
        g_free(last_disk);
        last_disk = g_strdup(disk);
    }
    if (json) {
        g_autoptr(SpJson) o = sp_json_new_object();
        sp_json_object_set_string(o, "event", "progress");
        sp_json_object_set_string(o, "disk", disk);
        sp_json_object_set_int(o, "percent", pct);
        print_as_json(o, TRUE);
        fflush(stdout);
    } else if (!quiet && isatty(STDERR_FILENO)) {
        char bar[41];
        memset(bar, '#', (size_t)(pct * 40 / 100));
        memset(bar + pct * 40 / 100, ' ', (size_t)(40 - pct * 40 / 100));
        bar[40] = '\0';
        fprintf(stderr, "\r%-8s [%s] %3d%%%s", disk, bar, pct, pct >= 100 ? "\n" : "");
    }
}
