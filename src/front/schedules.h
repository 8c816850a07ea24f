/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What asynctaskd knows of schedules. It does not run them: asynctask-generator makes a timer of each
 * scheduled task at boot and at `systemctl daemon-reload`, which the unprivileged front cannot ask for.
 * So --check-config has systemd check the calendar expressions, and a reload that changes a schedule
 * says that the timers follow only after a daemon-reload.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/config.h"

/* For each scheduled task of c, asks systemd-analyze whether systemd takes its calendar expressions,
 * and whether its randomized delay (plus the timer's accuracy) is shorter than the time between two of
 * its slots over the next ones after now_usec: a run made later than that would be taken for the next
 * slot's. Each problem goes to on_error with the task's file and key. Returns how many there were;
 * -ENOENT, -EACCES or -EPERM when systemd-analyze cannot be run here (nothing checked: the caller says
 * so); -errno. */
int schedules_check(const Config *c, uint64_t now_usec, ConfigErrorFn on_error, void *userdata);

typedef enum ScheduleChange {
        SCHEDULE_ADDED,   /* scheduled now: a new timer */
        SCHEDULE_CHANGED, /* the timer changes */
        SCHEDULE_REMOVED, /* unscheduled, or gone with its task: the timer is to go */
} ScheduleChange;

typedef void (*SchedulesChangedFn)(const TaskDef *t, ScheduleChange change, void *userdata);

/* Calls changed() for each task whose schedule differs between old and new (t is new's, or old's when
 * the task is gone). Returns how many. */
size_t schedules_diff(const Config *old, const Config *new, SchedulesChangedFn changed, void *userdata);

/* Logs each schedules_diff() with what to do about it: "systemctl daemon-reload", then start a new
 * timer (systemctl start timers.target), or reset one whose file is gone (it fails at the reload). */
void schedules_log_changes(const Config *old, const Config *new);
