/* libFuzzer target for the agent's mount table handling: mountinfo parsing and the freeze
 * planner on whatever table parses. Linked with fuzz-replay.c it is `fuzz-mountinfo-replay
 * FILE...`, replaying saved inputs (the mountinfo fixtures are its seed corpus). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include "mountinfo.h"
#include "planner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Pretend every loop device is backed by a file on the filesystem of minor - 1. */
static size_t backing_cb(dev_t dev, dev_t *ret, size_t max, void *userdata)
{
    if (major(dev) != 7 || minor(dev) == 0 || max == 0)
        return 0;
    ret[0] = makedev(7, minor(dev) - 1);
    return 1;
}

/* The plan's promises: every mount is a target or a skip (or an unselected one), each
 * superblock is a target at most once, waves never go down, loops come before their hosts. */
static void check_plan(const SpMountTable *t, const SpFreezePlan *p)
{
    CHECK(p->n_targets + p->n_skips <= t->n_mounts);
    for (size_t i = 0; i < p->n_targets; i++) {
        CHECK(sp_mount_table_find(t, p->targets[i].mountpoint) != NULL);
        if (i > 0)
            CHECK(p->targets[i - 1].wave <= p->targets[i].wave);
        for (size_t j = i + 1; j < p->n_targets; j++)
            CHECK(p->targets[i].dev != p->targets[j].dev);
    }
    for (size_t i = 0; i < p->n_skips; i++)
        CHECK(strcmp(sp_skip_reason_str(p->skips[i].reason), "unknown") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const excl[] = {"/mnt/*", NULL};
    static const char *const types[] = {"vfat", NULL};
    SpPlanOptions o = {.exclude_mountpoints = excl, .exclude_types = types, .backing_devs = backing_cb};
    SpMountTable *t = NULL;
    SpFreezePlan *p = NULL;

    if (sp_mountinfo_parse((const char *)data, size, &t) != 0)
        return 0;
    if (sp_plan_build(t, &o, &p, NULL) == 0) {
        check_plan(t, p);
        while (p->n_targets > 0)
            CHECK(sp_plan_skip_target(p, 0, SP_SKIP_NOT_SUPPORTED) == 0);
        sp_plan_free(p);
    }
    sp_mount_table_free(t);
    return 0;
}
