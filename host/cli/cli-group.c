/* The stillpoint CLI's consistency groups: group create|list|remove, and checkpoint create
 * --group (one instant across the group's VMs), the last also through stillpointd. */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/group.h"

gboolean sp_cli_group_create(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpJson) out = NULL;
    SpJson *members;

    if (argc < 3) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "group create: expected a group name and at least one VM (see --help)");
        return FALSE;
    }
    if ((store = sp_cli_open_store(error)) == NULL ||
        !sp_group_create(store, argv[1], (const char *const *)argv + 2, error))
        return FALSE;
    if (!sp_cli_globals.json)
        return TRUE;
    out = sp_json_new_object();
    members = sp_json_new_array();
    for (int i = 2; i < argc; i++)
        sp_json_array_append(members, sp_json_new_string(argv[i]));
    sp_json_object_set_string(out, "event", "group-created");
    sp_json_object_set_string(out, "group", argv[1]);
    sp_json_object_set(out, "members", members);
    sp_cli_print_json(out);
    return TRUE;
}

gboolean sp_cli_group_remove(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(SpJson) out = NULL;

    if (!sp_cli_expect(argc, 2, "group remove", "one group name", error) ||
        (store = sp_cli_open_store(error)) == NULL || !sp_group_remove(store, argv[1], error))
        return FALSE;
    if (!sp_cli_globals.json)
        return TRUE;
    out = sp_json_new_object();
    sp_json_object_set_string(out, "event", "group-removed");
    sp_json_object_set_string(out, "group", argv[1]);
    sp_cli_print_json(out);
    return TRUE;
}

gboolean sp_cli_group_list(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;
    g_autoptr(GHashTable) groups = NULL;
    g_autoptr(SpJson) out = sp_json_new_object();
    g_autoptr(GList) names = NULL;

    if ((store = sp_cli_open_store(error)) == NULL ||
        (groups = sp_group_list(store, error)) == NULL)
        return FALSE;
    names = g_list_sort(g_hash_table_get_keys(groups), (GCompareFunc)g_strcmp0);
    for (GList *l = names; l != NULL; l = l->next) {
        GStrv members = g_hash_table_lookup(groups, l->data);
        SpJson *list = sp_json_new_array();
        g_autofree char *joined = g_strjoinv(" ", members);
        for (guint i = 0; members[i] != NULL; i++)
            sp_json_array_append(list, sp_json_new_string(members[i]));
        sp_json_object_set(out, l->data, list);
        if (!sp_cli_globals.json)
            printf("%s: %s\n", (const char *)l->data, joined);
    }
    if (sp_cli_globals.json)
        sp_cli_print_json(out);
    return TRUE;
}

gboolean sp_cli_group_checkpoint(const char *group, const char *name, GError **error)
{
    g_autoptr(SpStore) store = sp_cli_open_store(error);
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(SpJson) doc = NULL;

    if (store != NULL) {
        sp_cli_defer_termination();
        cps = sp_group_checkpoint(store, group, name, NULL, sp_cli_progress, NULL, error);
    }
    if (cps == NULL || (doc = sp_document_group_checkpoint(store, group, cps, error)) == NULL) {
        g_prefix_error(error, "group '%s': ", group);
        return FALSE;
    }
    sp_cli_print_group_checkpoint(group, doc, sp_cli_globals.json);
    return TRUE;
}

gboolean sp_cli_group_checkpoint_dbus(SpDaemonClient *c, const char *group, const char *name,
                                      GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    g_autoptr(SpJson) doc = NULL;

    sp_daemon_client_set_subject(c, group); /* the group's Progress is ours */
    sp_daemon_add_string(&b, "name", name);
    doc = sp_daemon_call_json(c, "CreateGroupCheckpoint",
                              g_variant_new("(s@a{sv})", group, g_variant_builder_end(&b)),
                              error);
    if (doc == NULL)
        return FALSE;
    sp_cli_print_group_checkpoint(group, doc, sp_cli_globals.json);
    return TRUE;
}
