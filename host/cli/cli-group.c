/* The stillpoint CLI's consistency groups: group create|list|remove, and checkpoint create
 * --group (one instant across the group's VMs), the last also through stillpointd. */
#include <stdio.h>

#include "cli.h"
#include "stillpoint/group.h"

/* What group create prints (with --json only), directly and through stillpointd. */
static gboolean group_created(int argc, char **argv)
{
    g_autoptr(SpJson) out = NULL;
    SpJson *members;

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

static gboolean expect_members(int argc, GError **error)
{
    if (argc >= 3)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "group create: expected a group name and at least one VM (see --help)");
    return FALSE;
}

gboolean sp_cli_group_create(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;

    if (!expect_members(argc, error) || (store = sp_cli_open_store(error)) == NULL ||
        !sp_group_create(store, argv[1], (const char *const *)argv + 2, error))
        return FALSE;
    return group_created(argc, argv);
}

gboolean sp_cli_group_create_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (!expect_members(argc, error) ||
        (r = sp_daemon_call(c, "CreateGroup",
                            g_variant_new("(s^as)", argv[1], argv + 2), error)) == NULL)
        return FALSE;
    return group_created(argc, argv);
}

/* What group remove prints (with --json only). */
static gboolean group_removed(const char *group)
{
    g_autoptr(SpJson) out = NULL;

    if (!sp_cli_globals.json)
        return TRUE;
    out = sp_json_new_object();
    sp_json_object_set_string(out, "event", "group-removed");
    sp_json_object_set_string(out, "group", group);
    sp_cli_print_json(out);
    return TRUE;
}

gboolean sp_cli_group_remove(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = NULL;

    if (!sp_cli_expect(argc, 2, "group remove", "one group name", error) ||
        (store = sp_cli_open_store(error)) == NULL || !sp_group_remove(store, argv[1], error))
        return FALSE;
    return group_removed(argv[1]);
}

gboolean sp_cli_group_remove_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    g_autoptr(GVariant) r = NULL;

    if (!sp_cli_expect(argc, 2, "group remove", "one group name", error) ||
        (r = sp_daemon_call(c, "RemoveGroup", g_variant_new("(s)", argv[1]), error)) == NULL)
        return FALSE;
    return group_removed(argv[1]);
}

/* group list, from its document (sp_document_group_list): "GROUP: VM VM" a line, or the
 * document. */
static void print_group_list(const SpJson *doc, gboolean json)
{
    if (json) {
        sp_cli_print_json(doc);
        return;
    }
    for (size_t i = 0; i < sp_json_object_len(doc); i++) {
        const SpJson *members = NULL;
        const char *group = sp_json_object_member(doc, i, &members);
        printf("%s:", group);
        for (size_t j = 0; j < sp_json_array_len(members); j++)
            printf(" %s", sp_json_get_string(sp_json_array_get(members, j)));
        printf("\n");
    }
}

gboolean sp_cli_group_list(int argc, char **argv, GError **error)
{
    g_autoptr(SpStore) store = sp_cli_open_store(error);
    g_autoptr(GHashTable) groups = store != NULL ? sp_group_list(store, error) : NULL;
    g_autoptr(SpJson) doc = groups != NULL ? sp_document_group_list(groups) : NULL;

    if (doc != NULL)
        print_group_list(doc, sp_cli_globals.json);
    return doc != NULL;
}

gboolean sp_cli_group_list_dbus(SpDaemonClient *c, int argc, char **argv, GError **error)
{
    return sp_daemon_query(c, argc, argv, 1, "group list", "ListGroups", print_group_list, error);
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
