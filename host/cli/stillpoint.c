/* stillpoint: the command-line coordinator. Registers VMs and consistency groups; makes, lists,
 * shows and manages checkpoints; backup sessions and backup-job hooks; schedules and retention.
 * Every command is one row of `commands` below: its options, its runner on the store, and its
 * runner through stillpointd (NULL when stillpointd does not offer it).
 *   stillpoint [--store PATH | --daemon] [--json] [-q] vm add|list|set|remove|recover|disks ...
 *   stillpoint ... checkpoint create|list|show|delete|rename|export|apply|resume|retention ...
 *   stillpoint ... group create|list|remove ...
 *   stillpoint ... backup begin|end|status VM | hook pre|post VM
 *   stillpoint ... schedule create|list|remove ... */
#include <gio/gio.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stillpoint/schedule.h"
#include "stillpoint/coordinator.h"

SpCliGlobals sp_cli_globals;
volatile sig_atomic_t sp_cli_interrupted;

static const GOptionEntry global_entries[] = {
    {"store", 0, 0, G_OPTION_ARG_FILENAME, &sp_cli_globals.store_path,
     "Checkpoint store (default $" SP_STORE_ENV " or " SP_STORE_DEFAULT_PATH ")", "PATH"},
    {"json", 0, 0, G_OPTION_ARG_NONE, &sp_cli_globals.json, "Print the result as JSON", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &sp_cli_globals.quiet, "Do not print progress", NULL},
    G_OPTION_ENTRY_NULL};

/* The commands: group, name, --help's parameters and summary, options, the runner on the store,
 * the runner through stillpointd (NULL: not offered there), a failure's prefix (NULL:
 * "stillpoint"). */
static const SpCliCommand commands[] = {
    {"vm", "add", "NAME",
     "Register a VM. Its disks are discovered from QMP, or from libvirt's domain XML; for the "
     "hook driver they may be given with --disk.",
     sp_cli_vm_add_options, sp_cli_vm_add, sp_cli_vm_add_dbus, NULL},
    {"vm", "list", "", "List registered VMs.", NULL, sp_cli_vm_list, sp_cli_vm_list_dbus, NULL},
    {"vm", "set", "NAME", "Change a registered VM's settings (as Hyper-V's Set-VM).",
     sp_cli_vm_set_options, sp_cli_vm_set, sp_cli_vm_set_dbus, NULL},
    {"vm", "remove", "NAME", "Forget a VM. Image files are never deleted.",
     sp_cli_vm_remove_options, sp_cli_vm_remove, sp_cli_vm_remove_dbus, NULL},
    {"vm", "recover", "NAME", "Finish or roll back a VM's interrupted operations.",
     sp_cli_vm_recover_options, sp_cli_vm_recover, sp_cli_vm_recover_dbus, NULL},
    {"vm", "disks", "NAME",
     "Show the disks QMP (or libvirt) reports for a VM, and the image each one writes to now.",
     NULL, sp_cli_vm_disks, sp_cli_vm_disks_dbus, NULL},
    {"checkpoint", "create", "VM",
     "Make a checkpoint: freeze the guest, snapshot every disk in one transaction, thaw.",
     sp_cli_checkpoint_create_options, sp_cli_checkpoint_create, sp_cli_checkpoint_create_dbus,
     NULL},
    {"checkpoint", "list", "VM", "Show a VM's checkpoints as a tree.", NULL,
     sp_cli_checkpoint_list, sp_cli_checkpoint_list_dbus, NULL},
    {"checkpoint", "show", "VM CP",
     "Show one checkpoint: its type and why, consistency, who made it, its parent and children, "
     "and each disk's images and sizes.",
     NULL, sp_cli_checkpoint_show, sp_cli_checkpoint_show_dbus, NULL},
    {"checkpoint", "delete", "VM CP",
     "Delete a checkpoint by merging it into its neighbour: the VM's present and the other "
     "checkpoints keep all their data. Live when the VM runs, offline otherwise.",
     sp_cli_checkpoint_delete_options, sp_cli_checkpoint_delete, sp_cli_checkpoint_delete_dbus,
     NULL},
    {"checkpoint", "rename", "VM CP NEW-NAME",
     "Rename a checkpoint: 1-100 characters, no control characters, unique among the VM's "
     "checkpoints.",
     NULL, sp_cli_checkpoint_rename, sp_cli_checkpoint_rename_dbus, NULL},
    {"checkpoint", "export", "VM CP DIR",
     "Write a standalone, flattened copy of every disk at the checkpoint, and manifest.json, "
     "into DIR. Works while the VM runs.",
     sp_cli_checkpoint_export_options, sp_cli_checkpoint_export, sp_cli_checkpoint_export_dbus,
     NULL},
    {"checkpoint", "apply", "VM CP",
     "Revert the VM to a checkpoint. The VM must be off (or --force). Each disk gets a new "
     "overlay on the checkpoint's image, and the stable path <store dir>/vms/VM/DISK.qcow2 is "
     "re-pointed to it: start the VM from those paths.",
     sp_cli_checkpoint_apply_options, sp_cli_checkpoint_apply, sp_cli_checkpoint_apply_dbus,
     NULL},
    {"checkpoint", "resume", "VM",
     "After applying a standard checkpoint: load its saved device and memory state into the "
     "VM's QEMU, started with '-incoming defer' from the stable disk paths, and run it.",
     NULL, sp_cli_checkpoint_resume, sp_cli_checkpoint_resume_dbus, NULL},
    {"backup", "begin", "VM",
     "Begin a backup session: a production checkpoint, and a read-only view of every disk at "
     "that instant (image paths, NBD exports) while the VM runs on.",
     sp_cli_backup_begin_options, sp_cli_backup_begin, sp_cli_backup_begin_dbus, NULL},
    {"backup", "end", "VM",
     "End the VM's backup session: remove the exports, merge the checkpoint back.",
     sp_cli_backup_end_options, sp_cli_backup_end, sp_cli_backup_end_dbus, NULL},
    {"backup", "status", "VM", "Show the VM's backup session (its journal), open or last closed.",
     NULL, sp_cli_backup_status, sp_cli_backup_status_dbus, NULL},
    {"hook", "pre", "VM",
     "Backup job pre script: begin a backup session; prints STILLPOINT_* shell assignments; "
     "exit status 0 = go ahead, 1 = abort the job.",
     sp_cli_hook_pre_options, sp_cli_hook_pre, sp_cli_hook_pre_dbus,
     "stillpoint hook pre: FAILED"},
    {"hook", "post", "VM",
     "Backup job post script: end the backup session (always; the job's --status says whether "
     "the backup counts as the base of the next incremental).",
     sp_cli_hook_post_options, sp_cli_hook_post, sp_cli_hook_post_dbus,
     "stillpoint hook post: FAILED"},
    {"group", "create", "GROUP VM...",
     "Make a consistency group: its VMs are checkpointed at one instant (checkpoint create "
     "--group GROUP).",
     NULL, sp_cli_group_create, sp_cli_group_create_dbus, NULL},
    {"group", "list", "", "List consistency groups and their VMs.", NULL, sp_cli_group_list,
     sp_cli_group_list_dbus, NULL},
    {"group", "remove", "GROUP", "Forget a consistency group (its VMs and checkpoints stay).",
     NULL, sp_cli_group_remove, sp_cli_group_remove_dbus, NULL},
    {"checkpoint", "retention", "VM",
     "Merge away the oldest checkpoints the VM's schedules made beyond --keep N (with --all: of "
     "every checkpoint).",
     sp_cli_retention_options, sp_cli_retention, sp_cli_retention_dbus, NULL},
    {"schedule", "create", "VM",
     "Write a systemd timer and service that make a checkpoint of VM on a calendar (then apply "
     "--keep); when systemd runs, reload it and enable and start the timer.",
     sp_cli_schedule_create_options, sp_cli_schedule_create, sp_cli_schedule_create_dbus, NULL},
    {"schedule", "list", "[VM]",
     "Show the schedules: calendar, retention and, when systemd runs, whether the timer is "
     "enabled, its next run, its last run and that run's result (the journal has its log: "
     "journalctl -u stillpoint-checkpoint-VM).",
     sp_cli_schedule_units_options, sp_cli_schedule_list, sp_cli_schedule_list_dbus, NULL},
    {"schedule", "remove", "VM",
     "Stop and disable the VM's schedule (its timer) and delete its units. The checkpoints it "
     "made stay.",
     sp_cli_schedule_units_options, sp_cli_schedule_remove, sp_cli_schedule_remove_dbus, NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: stillpoint [--store PATH | --daemon] [--json] [-q] COMMAND ...\n"
            "       stillpoint --version\n"
            "\n"
            "Application-consistent checkpoints of virtual machines.\n"
            "\n"
            "Commands:\n"
            "  vm add NAME --qmp SOCKET [--agent SOCKET] [--overlay-dir DIR]\n"
            "         [--checkpoint-type TYPE]\n"
            "  vm add NAME --driver libvirt --domain D [--uri URI] [--overlay-dir DIR]\n"
            "  vm add NAME --driver hook --hook-command CMD [--hook-timeout S] [--agent SOCKET]\n"
            "         [--disk NAME=PATH[,serial=S][,format=F]]... [--qmp SOCKET]\n"
            "                                                    register a VM\n"
            "  vm list                                           list registered VMs\n"
            "  vm set NAME --checkpoint-type production|production-only|standard\n"
            "                                                    what create makes by default\n"
            "  vm remove NAME [--force]                          forget a VM (keeps images)\n"
            "  vm disks NAME                                     the VM's disks (QMP, libvirt)\n"
            "  vm recover NAME [--adopt-running]                 finish or roll back interrupted\n"
            "                                                    operations\n"
            "  checkpoint create VM [--name N]\n"
            "         [--type production|production-only|standard|crash]\n"
            "         [--on-quiesce-failure fail|crash|standard] make a checkpoint\n"
            "  checkpoint list VM                                show the checkpoint tree\n"
            "  checkpoint show VM CP                             one checkpoint in detail\n"
            "  checkpoint delete VM CP [--subtree]               merge a checkpoint away\n"
            "  checkpoint rename VM CP NEW-NAME                  rename (1-100 characters)\n"
            "  checkpoint export VM CP DIR [--format qcow2|raw]  standalone copy of its disks\n"
            "  checkpoint apply VM CP [--save-current NAME] [--force]\n"
            "                                                    revert the (stopped) VM to CP\n"
            "  checkpoint resume VM                              load a standard checkpoint's\n"
            "                                                    memory into QEMU -incoming defer\n"
            "  checkpoint create --group G [--name N]            one instant across a group's VMs\n"
            "  group create G VM... | group list | group remove G consistency groups\n"
            "  checkpoint retention VM --keep N                  merge away the oldest beyond N\n"
            "  schedule create VM [--on-calendar SPEC] [--keep N] [--unit-dir DIR]\n"
            "                                                    a systemd timer for checkpoints,\n"
            "                                                    enabled when systemd runs\n"
            "  schedule list [VM] | schedule remove VM           next/last run and its result;\n"
            "                                                    disable and delete\n"
            "  backup begin VM [--incremental]                   production checkpoint + read-only\n"
            "                                                    NBD export of every disk\n"
            "  backup end VM [--keep] [--failed]                 remove exports, merge back\n"
            "  backup status VM                                  the session (open or last)\n"
            "  hook pre VM [--incremental] | hook post VM [--status N]\n"
            "                                                    a backup job's pre/post script\n"
            "(CP is a checkpoint's name, or its id as #ID)\n"
            "\n"
            "Every command takes --help. The store is $" SP_STORE_ENV " or " SP_STORE_DEFAULT_PATH
            "\nunless --store is given.\n"
            "\n"
            "--daemon: go through stillpointd on the system bus (polkit decides who may do what;\n"
            "every command; schedules then go under " SP_SCHEDULE_UNIT_DIR ", no --unit-dir).\n"
            "Without --store or $" SP_STORE_ENV ", a user who is not root goes through it by itself\n"
            "when it runs; the results are the same as working on the store directly.\n");
}

static void interrupt_cb(int sig)
{
    sp_cli_interrupted = sig;
}

/* While a checkpoint is being made, SIGINT/SIGTERM/SIGHUP are held until it is done or rolled
 * back: dying between freeze and thaw would leave a qemu-ga guest frozen. Every step has a
 * deadline, so this delays the exit by a bounded time. */
void sp_cli_defer_termination(void)
{
    struct sigaction sa = {.sa_handler = interrupt_cb, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void sp_cli_progress(const char *message, gpointer user_data)
{
    if (!sp_cli_globals.quiet)
        fprintf(stderr, "stillpoint: %s\n", message);
}

void sp_cli_percent(const char *disk, double percent, gpointer user_data)
{
    sp_cli_print_percent(disk, percent, sp_cli_globals.json, sp_cli_globals.quiet);
}

void sp_cli_print_json(const SpJson *value)
{
    g_autofree char *text = sp_json_serialize(value, NULL);
    printf("%s\n", text != NULL ? text : "null");
}

gboolean sp_cli_expect(int argc, int n, const char *what, const char *expected, GError **error)
{
    if (argc == n)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: expected %s", what,
                expected);
    return FALSE;
}

SpStore *sp_cli_open_store(GError **error)
{
    return sp_store_open(sp_store_resolve_path(sp_cli_globals.store_path), error);
}

void sp_cli_vm_clear(SpCliVm *v)
{
    g_clear_pointer(&v->vm, sp_vm_free);
    g_clear_pointer(&v->lock, sp_vm_lock_release);
    g_clear_pointer(&v->store, sp_store_close);
}

gboolean sp_cli_open_vm(const char *name, gboolean recover, SpCliVm *ret, GError **error)
{
    g_auto(SpCliVm) v = {0};

    if ((v.store = sp_cli_open_store(error)) == NULL ||
        (v.vm = sp_store_vm_get(v.store, name, error)) == NULL ||
        (v.lock = sp_vm_lock_acquire(v.store, name, error)) == NULL)
        return FALSE;
    if (recover && !sp_coordinator_recover(v.store, v.vm, NULL, sp_cli_progress, NULL, error))
        return FALSE;
    *ret = v;
    v = (SpCliVm){0};
    return TRUE;
}

/* ---- the command line ---- */

/* What main learns from one scan of argv. */
typedef struct {
    const char *group, *name;   /* the first two words that are not options */
    gboolean daemon;            /* --daemon */
    gboolean store;             /* --store given */
    gboolean help;              /* --help or -h */
    GPtrArray *rest;            /* argv[0] and the rest for the command's option parser */
} CommandLine;

/* The group and command are the first two non-option words; everything else goes to the
 * command's option parser (so --store/--json may come anywhere). --daemon is main's alone. */
static void scan(int argc, char **argv, CommandLine *cl)
{
    cl->rest = g_ptr_array_new();
    g_ptr_array_add(cl->rest, argv[0]);
    for (int i = 1; i < argc; i++) {
        gboolean takes_value = g_strcmp0(argv[i], "--store") == 0;
        cl->store |= g_str_has_prefix(argv[i], "--store");
        cl->help |= g_str_equal(argv[i], "--help") || g_str_equal(argv[i], "-h");
        if (g_str_equal(argv[i], "--daemon")) {
            cl->daemon = TRUE;
        } else if (argv[i][0] != '-' && cl->group == NULL) {
            cl->group = argv[i];
        } else if (argv[i][0] != '-' && cl->name == NULL) {
            cl->name = argv[i];
        } else {
            g_ptr_array_add(cl->rest, argv[i]);
            if (takes_value && i + 1 < argc)
                g_ptr_array_add(cl->rest, argv[++i]);
        }
    }
}

static const SpCliCommand *find_command(const char *group, const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
        if (g_strcmp0(commands[i].group, group) == 0 && g_strcmp0(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static gboolean known_group(const char *group)
{
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
        if (g_strcmp0(commands[i].group, group) == 0)
            return TRUE;
    return FALSE;
}

/* No such command: the usage for --help (all, or a group's: "stillpoint vm --help"; not for a
 * typo), else what is wrong. */
static int no_command(const CommandLine *cl)
{
    if (cl->help && (cl->group == NULL || (cl->name == NULL && known_group(cl->group)))) {
        usage(stdout);
        return 0;
    }
    if (cl->group == NULL)
        fprintf(stderr, "stillpoint: no command given\n\n");
    else
        fprintf(stderr, "stillpoint: unknown command '%s%s%s'\n\n", cl->group,
                cl->name ? " " : "", cl->name ? cl->name : "");
    usage(stderr);
    return 2;
}

gboolean sp_cli_parse_options(const SpCliCommand *command, int *argc, char ***argv,
                              GError **error)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(command->params);
    g_option_context_add_main_entries(ctx, global_entries, NULL);
    if (command->options != NULL)
        g_option_context_add_main_entries(ctx, command->options, NULL);
    g_option_context_set_summary(ctx, command->summary);
    return g_option_context_parse(ctx, argc, argv, error);
}

/* Through stillpointd when asked (--daemon), or when it is the way in: not root, no --store or
 * $STILLPOINT_STORE, the command offered there, and stillpointd runs (or the bus starts it).
 * Returns FALSE with *ret_status set when --daemon cannot be honoured. */
static gboolean connect_daemon(const SpCliCommand *command, const CommandLine *cl,
                               SpDaemonClient **ret_client, int *ret_status)
{
    g_autoptr(GError) error = NULL;

    *ret_client = NULL;
    if (cl->daemon && cl->store) {
        fprintf(stderr, "stillpoint: --daemon and --store exclude each other (the daemon uses "
                        "its own store)\n");
        *ret_status = 2;
        return FALSE;
    }
    /* Help is the CLI's own, daemon or not; an explicit store means that store, directly;
     * root uses the store directly unless asked. */
    if (cl->help || (!cl->daemon && (cl->store || g_getenv(SP_STORE_ENV) != NULL ||
                                      command->dbus == NULL || geteuid() == 0)))
        return TRUE;
    *ret_client = sp_daemon_client_new(cl->daemon ? &error : NULL);
    if (*ret_client == NULL && cl->daemon) {
        fprintf(stderr, "stillpoint: --daemon: stillpointd is not running on the system bus%s%s\n",
                error ? ": " : "", error ? error->message : "");
        *ret_status = 1;
        return FALSE;
    }
    return TRUE;
}

/* "stillpoint: MESSAGE", or the command's own prefix (a backup job's hook). */
static void print_failure(const SpCliCommand *command, SpDaemonClient *client,
                          const GError *error)
{
    const char *prefix = command->failure != NULL ? command->failure : "stillpoint";
    fprintf(stderr, "%s: %s\n", prefix, error->message);
}

/* Runs the parsed command, through stillpointd when client is not NULL. */
static int run(const SpCliCommand *command, SpDaemonClient *client, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    gboolean ok;

    if (client == NULL) {
        ok = command->direct(argc, argv, &error);
    } else if (command->dbus == NULL) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "'%s %s' is not available through stillpointd", command->group,
                    command->name);
        ok = FALSE;
    } else {
        sp_daemon_client_set_output(client, sp_cli_globals.json, sp_cli_globals.quiet);
        /* The VM the command is about: only its Progress is ours. */
        sp_daemon_client_set_subject(client, argc > 1 ? argv[1] : NULL);
        ok = command->dbus(client, argc, argv, &error);
    }
    if (ok)
        return 0;
    print_failure(command, client, error);
    return 1;
}

int main(int argc, char **argv)
{
    CommandLine cl = {0};
    g_autoptr(GPtrArray) rest = NULL;
    g_autoptr(SpDaemonClient) client = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *prog = NULL;
    const SpCliCommand *command;
    int status, n;
    char **args;

    setlocale(LC_ALL, "");
    scan(argc, argv, &cl);
    rest = cl.rest;
    if (cl.group == NULL && rest->len == 2 && g_strcmp0(rest->pdata[1], "--version") == 0) {
        printf("stillpoint %s\n", SP_VERSION);
        return 0;
    }
    if ((command = find_command(cl.group, cl.name)) == NULL)
        return no_command(&cl);
    if (!connect_daemon(command, &cl, &client, &status))
        return status;
    prog = g_strdup_printf("stillpoint %s %s", cl.group, cl.name);
    g_set_prgname(prog);
    g_ptr_array_add(rest, NULL);
    n = (int)rest->len - 1;
    args = (char **)rest->pdata;
    if (!sp_cli_parse_options(command, &n, &args, &error)) {
        print_failure(command, client, error);
        return client != NULL ? 2 : 1;
    }
    return run(command, client, n, args);
}
