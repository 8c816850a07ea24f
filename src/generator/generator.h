/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What asynctask-generator does, apart from where it logs. For each tasks.d file with a "schedule" it
 * writes, into a systemd generator's output directory, a timer asynctask-schedule-NAME.timer (its
 * calendar expressions, AccuracySec=, RandomizedDelaySec=, Persistent=) wanted by timers.target, and
 * its oneshot service, which submits the task as the run of the slot that is due (`asynctask submit
 * --slot-key`): one task per slot, however often and on however many hosts the slot is submitted.
 *
 * It reads only the keys a timer is made of (config_task_parse_schedule_only()): at boot, users and
 * groups cannot be looked up yet, and a generator must not try. Like the launcher, it reads only files
 * that their owner (root) alone may change: a schedule's submissions are root's. A file it cannot read
 * is skipped, and said why; the others are written all the same.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "shared/config-task.h"

#define GENERATOR_UNIT_PREFIX "asynctask-schedule-"

/* priority: LOG_ERR, LOG_WARNING, ... as syslog(3). */
typedef void (*GeneratorLogFn)(int priority, const char *message, void *userdata);

typedef struct Generator {
        const char *tasks_dir;  /* the tasks.d directory to read */
        const char *output_dir; /* where the units go: the generator's "normal" directory */
        const char *cli_path;   /* the asynctask program the services run */
        uid_t owner; /* who must own tasks.d and its files, writable by no one else: root in production */
        GeneratorLogFn log;
        void *userdata;
} Generator;

/* Writes the units of every scheduled task of g->tasks_dir. Returns how many timers it wrote, or -errno
 * when the output directory cannot be written to (nothing more is tried). */
int generator_run(const Generator *g);

/* The text of a scheduled task's timer and of its service (t from config_task_parse_schedule_only()).
 * NULL on OOM. */
char *generator_timer_text(const TaskDef *t);
char *generator_service_text(const TaskDef *t, const char *cli_path);

/* s as one word of an ExecStart= line that systemd reads back as s, byte for byte: in double quotes,
 * with backslash, quote and control bytes escaped, and '%' and '$' doubled (specifiers and variables
 * are expanded after unquoting). NULL on OOM. */
char *generator_exec_word(const char *s);
