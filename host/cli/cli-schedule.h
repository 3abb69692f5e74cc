/* The stillpoint CLI's schedules and retention (cli-schedule.c). */
#pragma once

int sp_cli_retention(int argc, char **argv);
int sp_cli_schedule_create(int argc, char **argv);
int sp_cli_schedule_list(int argc, char **argv);
int sp_cli_schedule_remove(int argc, char **argv);
