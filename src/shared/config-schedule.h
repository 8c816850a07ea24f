/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A task's schedule, from the keys "schedule", "schedule_args", "schedule_randomized_delay_sec" and
 * "schedule_persistent" of its tasks.d file. The generator makes a timer of it; the front and the
 * CLI compare it with what the generator saw.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "shared/json-reader.h"

/* When a task runs by itself (tasks.d only): asynctask-generator makes a timer of it, whose service
 * submits the task once per slot (docs/operations.md, "Schedules"). */
typedef struct TaskSchedule {
        char **calendars; /* systemd calendar expressions, NULL-terminated; none: not scheduled */
        size_t n_calendars;
        char **args; /* what each scheduled run is submitted with, NULL-terminated */
        size_t n_args;
        uint64_t randomized_delay_sec; /* the timer's RandomizedDelaySec=; 0: none */
        bool persistent;               /* Persistent=: a slot missed while the host was off runs at boot */
} TaskSchedule;

/* Reads the schedule keys of one tasks.d object into sch (left empty when "schedule" is absent);
 * max_args is the task's, read before. Errors go to rd. */
void config_schedule_parse(JsonReader *rd, const cJSON *obj, unsigned max_args, TaskSchedule *sch);

/* Whether a and b are scheduled the same way (both unscheduled counts as the same). */
bool config_schedule_equal(const TaskSchedule *a, const TaskSchedule *b);

void config_schedule_done(TaskSchedule *sch);
