/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The launcher's runs: those in flight (launched, until the executor reports their end) and finished
 * ones whose result the front has not acknowledged yet. Sorted by id, so the replay to a (re)connected
 * front goes in id order and can resume after any id. Pure bookkeeping: no I/O, no logging.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/run-result.h"

typedef struct Run {
        uint64_t id;
        /* The config entry it runs: a task's name, or for a listed command the command itself; NULL for
         * a run the executor found left from before (its task is not known). */
        char *task;
        bool is_command;
        char *unit; /* NULL until the executor reports the start */
        /* The task's latest progress text, NULL before any; what was last sent of it is the front's. */
        char *progress;
        bool progress_pending;       /* changed since it was last sent (held back by the rate limit) */
        uint64_t progress_sent_usec; /* CLOCK_MONOTONIC of the last send; 0 never */
        bool finished;
        RunResult result; /* once finished */
} Run;

typedef struct RunTable {
        Run **runs; /* sorted by id */
        size_t n_runs, cap_runs;
        size_t n_finished;
} RunTable;

Run *run_table_find(const RunTable *t, uint64_t id);
/* The run with the lowest id above id, or NULL. */
Run *run_table_next_after(const RunTable *t, uint64_t id);

/* Adds a run in flight. task may be NULL (a run found left from before). Returns 0 and *ret (owned by
 * the table), -EEXIST if the id is taken, or -ENOMEM. */
int run_table_add(RunTable *t, uint64_t id, const char *task, bool is_command, Run **ret);
/* Records the run's result: from now on it is held until acknowledged. */
void run_table_finish(RunTable *t, Run *run, const RunResult *result);
/* Records the unit the run started as. Returns 0 or -ENOMEM (then the old unit stays). */
int run_table_set_unit(Run *run, const char *unit);
/* Takes text as the run's progress. Returns 1 when it differs from the one held (progress_pending is
 * then set), 0 when it is the same (text is freed). */
int run_table_set_progress(Run *run, char *text);
void run_table_remove(RunTable *t, uint64_t id);
/* Frees every run; the table is then empty and may be used again. */
void run_table_done(RunTable *t);

static inline size_t run_table_running(const RunTable *t) {
        return t->n_runs - t->n_finished;
}
static inline size_t run_table_unacknowledged(const RunTable *t) {
        return t->n_finished;
}
/* Runs in flight of one task (or command), for its "concurrency". */
size_t run_table_running_task(const RunTable *t, const char *task, bool is_command);

/* For logs: the task's name, "command", or "?" for a run found left from before. */
const char *run_log_name(const Run *run);
