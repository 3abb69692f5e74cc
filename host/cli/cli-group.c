/* The stillpoint CLI's consistency groups: group create|list|remove, and checkpoint create
 * --group (one instant across the group's VMs). */
#include "cli-group.h"

#include <stdio.h>

#include "render.h"
#include "cli.h"
#include "stillpoint/group.h"

static SpStore *open_store(GError **error)
{
    return sp_store_open(sp_store_resolve_path(globals.store_path), error);
}

int sp_cli_group_create(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;

    if (!parse_options("GROUP VM...", "Make a consistency group: its VMs are checkpointed at one "
                                      "instant (checkpoint create --group GROUP).",
                       NULL, &argc, &argv, &error))
        goto fail;
    if (argc < 3) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "group create: expected a group name and at least one VM (see --help)");
        goto fail;
    }
    if ((store = open_store(&error)) == NULL ||
        !sp_group_create(store, argv[1], (const char *const *)argv + 2, &error))
        goto fail;
    if (globals.json) {
        g_autoptr(SpJson) out = sp_json_new_object();
        SpJson *members = sp_json_new_array();
        for (int i = 2; i < argc; i++)
            sp_json_array_append(members, sp_json_new_string(argv[i]));
        sp_json_object_set_string(out, "event", "group-created");
        sp_json_object_set_string(out, "group", argv[1]);
        sp_json_object_set(out, "members", members);
        print_json(out);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int sp_cli_group_remove(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;

    if (!parse_options("GROUP", "Forget a consistency group (its VMs and checkpoints stay).", NULL,
                       &argc, &argv, &error))
        goto fail;
    if (argc != 2) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "group remove: expected one group name");
        goto fail;
    }
    if ((store = open_store(&error)) == NULL || !sp_group_remove(store, argv[1], &error))
        goto fail;
    if (globals.json) {
        g_autoptr(SpJson) out = sp_json_new_object();
        sp_json_object_set_string(out, "event", "group-removed");
        sp_json_object_set_string(out, "group", argv[1]);
        print_json(out);
    }
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int sp_cli_group_list(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = NULL;
    g_autoptr(GHashTable) groups = NULL;
    g_autoptr(SpJson) out = sp_json_new_object();
    g_autoptr(GList) names = NULL;

    if (!parse_options("", "List consistency groups and their VMs.", NULL, &argc, &argv, &error) ||
        (store = open_store(&error)) == NULL || (groups = sp_group_list(store, &error)) == NULL)
        goto fail;
    names = g_list_sort(g_hash_table_get_keys(groups), (GCompareFunc)g_strcmp0);
    for (GList *l = names; l != NULL; l = l->next) {
        GStrv members = g_hash_table_lookup(groups, l->data);
        SpJson *list = sp_json_new_array();
        g_autofree char *joined = g_strjoinv(" ", members);
        for (guint i = 0; members[i] != NULL; i++)
            sp_json_array_append(list, sp_json_new_string(members[i]));
        sp_json_object_set(out, l->data, list);
        if (!globals.json)
            printf("%s: %s\n", (const char *)l->data, joined);
    }
    if (globals.json)
        print_json(out);
    return 0;
fail:
    fprintf(stderr, "stillpoint: %s\n", error->message);
    return 1;
}

int sp_cli_group_checkpoint(const char *group, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SpStore) store = open_store(&error);
    g_autoptr(GPtrArray) cps = NULL;
    g_autoptr(SpJson) doc = NULL;

    if (store == NULL)
        goto fail;
    defer_termination();
    cps = sp_group_checkpoint(store, group, name, NULL, progress_cb, NULL, &error);
    if (cps == NULL || (doc = sp_document_group_checkpoint(store, group, cps, &error)) == NULL)
        goto fail;
    sp_cli_print_group_checkpoint(group, doc, globals.json);
    return 0;
fail:
    fprintf(stderr, "stillpoint: group '%s': %s\n", group, error->message);
    return 1;
}
