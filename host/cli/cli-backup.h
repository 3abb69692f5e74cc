/* The stillpoint CLI's backup commands (cli-backup.c): backup begin|end|status, hook pre|post. */
#pragma once

int sp_cli_backup_begin(int argc, char **argv);
int sp_cli_backup_end(int argc, char **argv);
int sp_cli_backup_status(int argc, char **argv);
int sp_cli_hook_pre(int argc, char **argv);
int sp_cli_hook_post(int argc, char **argv);
