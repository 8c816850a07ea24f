/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The ledger: every task record the front knows, its state machine, and the run queue.
 * In memory, no I/O. With the memory store it is the whole truth; with a durable store it is the
 * working set and every change is also written through the store (store.h) before it is
 * acknowledged. Queue order: highest priority first, then oldest id, among queued tasks whose
 * run_after has passed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/protocol.h"
#include "shared/run-result.h"

/* Longest result word a record keeps, NUL included. The words made anywhere are systemd's Result=
 * values (the longest a service can have is "start-limit-hit", 15 bytes) and ours ("cancelled",
 * "rejected", "lost", "resources"); a longer word (only a launcher newer than this front could send
 * one: the launcher protocol allows 31 bytes) is cut to 22 bytes in the record, after the ledger has
 * decided on the whole word. 23 fills TaskResult to 56 bytes with no padding. */
#define TASK_RESULT_BYTES 23
/* Longest error text a record keeps: what RunResult.error holds. */
#define TASK_ERROR_BYTES_MAX (sizeof(((RunResult *) NULL)->error) - 1)

/* A record's copy of a run's RunResult, compact: every finished record keeps one until it is
 * purged, and almost no run has an error text. 56 bytes where a RunResult takes 320. */
typedef struct TaskResult {
        char *error; /* NULL when none (never ""), at most TASK_ERROR_BYTES_MAX bytes; owned */
        unsigned long long cpu_usec;
        unsigned long long memory_peak;
        int exit_status; /* valid when has_exit_status */
        int signal;
        bool has_exit_status;
        char result[TASK_RESULT_BYTES]; /* "" before any run */
} TaskResult;

/* Error text of r, "" when none. */
static inline const char *task_result_error(const TaskResult *r) {
        return r->error ? r->error : "";
}
/* Replaces r->error by the first TASK_ERROR_BYTES_MAX bytes of error (NULL or "" clear it). */
int task_result_set_error(TaskResult *r, const char *error);
/* Sets r->result to word (cut to fit). */
void task_result_set_word(TaskResult *r, const char *word);
/* Fills *ret from a run's result; ret->error is allocated (the caller frees it). -ENOMEM. */
int task_result_from_run(TaskResult *ret, const RunResult *run);

typedef struct TaskRecord {
        uint64_t id;
        char *task;  /* task name; NULL for a raw command */
        char *cmd;   /* raw command; NULL for a task */
        char **args; /* NULL-terminated */
        size_t n_args;
        char *stdin_data; /* may be NULL; may contain NUL bytes */
        size_t stdin_len;
        char *key;       /* idempotency key or NULL */
        char *submitter; /* Identity.submitter */
        int priority;
        TaskState state;
        unsigned attempts;
        unsigned max_attempts;
        char *unit;           /* unit (or "pid:N" for the direct executor) of the last run, or NULL */
        uint64_t created_at;  /* CLOCK_REALTIME usec */
        uint64_t started_at;  /* last run; 0 = never */
        uint64_t finished_at; /* 0 = not finished */
        uint64_t run_after;   /* CLOCK_REALTIME usec; queued tasks wait until then */
        TaskResult last;      /* result of the last run; last.result[0] == 0 before any */
        bool launch_pending;  /* running, but the launcher has not confirmed the start yet */

        /* ledger-private bookkeeping */
        void *priv;
} TaskRecord;

/* Values a submission brings; the ledger copies what it keeps. */
typedef struct TaskSubmission {
        const char *task;
        const char *cmd;
        char *const *args;
        size_t n_args;
        const char *stdin_data;
        size_t stdin_len;
        const char *key;
        const char *submitter;
        int priority;
        unsigned max_attempts;
        uint64_t run_after; /* CLOCK_REALTIME usec; 0 = now */
} TaskSubmission;

typedef struct LedgerStats {
        uint64_t queued, running, succeeded, failed, cancelled;
        uint64_t submitted_total; /* since start */
} LedgerStats;

typedef struct Ledger Ledger;
typedef struct LedgerWatch LedgerWatch;

/* Called when a watched task reaches a final state (or is forgotten: then t->state is unchanged and
 * forgotten is true). The watch is freed by the ledger right after the call. */
typedef void (*LedgerWatchFn)(const TaskRecord *t, bool forgotten, void *userdata);

int ledger_new(Ledger **ret);
Ledger *ledger_free(Ledger *l);

/* Next id to hand out; a durable store sets it after loading (ids never repeat). */
void ledger_set_next_id(Ledger *l, uint64_t next_id);

/* Adds a queued task. If sub->key is set and a record with the same key and submitter exists,
 * returns that one with *ret_existing = true and adds nothing. */
int ledger_submit(Ledger *l, const TaskSubmission *sub, uint64_t now, TaskRecord **ret, bool *ret_existing);

/* Inserts a record loaded from a durable store as-is (id and state kept); takes ownership of t. */
int ledger_adopt(Ledger *l, TaskRecord *t);

TaskRecord *ledger_get(Ledger *l, uint64_t id);

/* The best queued task whose run_after <= now and for which can_start() agrees (concurrency),
 * or NULL. can_start is asked about the best candidate of each task name (or command). */
TaskRecord *ledger_next_runnable(Ledger *l, uint64_t now, bool (*can_start)(const TaskRecord *t, void *ud),
                                 void *ud);

/* Earliest run_after of a queued task that is not runnable yet, or UINT64_MAX. */
uint64_t ledger_next_wakeup(Ledger *l);

/* queued -> running: attempts++, started_at = now, unit cleared. */
int ledger_mark_running(Ledger *l, TaskRecord *t, uint64_t now);

/* running -> succeeded | queued (run_after = now + backoff_sec when attempts < max_attempts) |
 * failed. A "cancelled" result makes it cancelled. Fires watches on a final state. */
int ledger_mark_finished(Ledger *l, TaskRecord *t, const RunResult *r, uint64_t now, uint64_t backoff_sec);

/* queued -> cancelled (fires watches). Running tasks are cancelled by stopping their run; the
 * finished result then says "cancelled". -EBUSY if running, -EALREADY if already final. */
int ledger_cancel(Ledger *l, TaskRecord *t, uint64_t now);

/* failed | cancelled -> queued with attempts reset to 0. -EINVAL for other states. */
int ledger_retry(Ledger *l, TaskRecord *t, uint64_t now);

/* Removes a record that is not running (-EBUSY if it is); fires watches with forgotten = true. */
int ledger_forget(Ledger *l, TaskRecord *t);

/* Up to limit records in a state (or any state if state < 0), by id ascending. Returns count. */
size_t ledger_list(Ledger *l, int state, size_t limit, TaskRecord **out);

/* Drops succeeded/cancelled records finished before `before` (failed ones are kept). Returns count. */
size_t ledger_purge(Ledger *l, uint64_t before);

void ledger_stats(Ledger *l, LedgerStats *ret);

int ledger_watch(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, LedgerWatch **ret);
/* Cancels a watch that has not fired (e.g. the client went away or its wait timed out). */
LedgerWatch *ledger_watch_free(LedgerWatch *w);

void task_record_free(TaskRecord *t);
