/* The stillpoint CLI's consistency-group commands (cli-group.c). */
#pragma once

int sp_cli_group_create(int argc, char **argv);
int sp_cli_group_list(int argc, char **argv);
int sp_cli_group_remove(int argc, char **argv);
/* checkpoint create --group GROUP [--name N]: one checkpoint per member, at one instant. */
int sp_cli_group_checkpoint(const char *group, const char *name);
