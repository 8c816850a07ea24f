/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The task names an admin paused: queued runs of them wait, running ones finish. A small set kept
 * sorted by name (admins pause a handful of task types, not thousands), each with who paused it and
 * when. Memory only; the ledger holds one, and the stores keep it across restarts.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct PausedTask {
        char *task;
        char *by;       /* the admin's submitter name ("uid:0") */
        uint64_t since; /* CLOCK_REALTIME usec */
} PausedTask;

typedef struct PausedTasks {
        PausedTask *items; /* sorted by task */
        size_t n, cap;
} PausedTasks;

/* Adds task (1), or leaves an entry already there as it is (0). -E2BIG past PAUSED_TASKS_MAX,
 * -ENOMEM. */
int paused_tasks_add(PausedTasks *p, const char *task, const char *by, uint64_t since);
/* Removes task: whether it was there. */
bool paused_tasks_remove(PausedTasks *p, const char *task);
/* The entry of task, or NULL. O(log n). */
const PausedTask *paused_tasks_find(const PausedTasks *p, const char *task);
/* Frees every entry; the set is empty and reusable. */
void paused_tasks_done(PausedTasks *p);
