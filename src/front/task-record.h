/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A task record: what the front knows of one task (its submission, state and last result), and the
 * compact copy of a run's result it keeps. Plain data, no I/O. Once a record is in the ledger, its
 * fields change only through ledger calls (ledger.h); the functions here build records (a
 * submission packed into one allocation, or a record loaded by a store) and free them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/protocol.h"
#include "shared/run-result.h"
#include "shared/util.h"

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
        /* May contain NUL bytes; a separate allocation (NUL after it) or NULL. With a durable store
         * it is NULL while the row holds it and the record does not need it (queued: it is read
         * back for the launch), and stdin_len still says how long it is. */
        char *stdin_data;
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
        /* A submission past the queue's window (MySQL store): it leaves memory once its insert has
         * committed (dispatcher_submitted()). */
        bool past_window;
        /* The run's latest STATUS= text (its last run's, once finished), or NULL. Memory only: not
         * written to the store (it changes too often to be worth a write). Owned. */
        char *progress;
        /* A record read from a row of the MySQL store: the row's node (the host that holds its claim,
         * or ran it last), or NULL; and whether that claim's lease is live. Not kept in the ledger. */
        char *node;
        bool lease_live;
        /* "every_host" (docs/cluster.md): the parent of this run, or its own id for the parent; 0 for
         * any other task. A parent's node is "*". */
        uint64_t parent_id;

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

/* Whether sub can become a record: a submitter, exactly one of task and cmd, at most TASK_ARGS_MAX
 * args, none NULL. -EINVAL, -E2BIG. */
int task_submission_check(const TaskSubmission *sub);

/* Makes a record of a checked submission in one allocation: the TaskRecord, priv_size zeroed bytes
 * for its owner's bookkeeping (t->priv points there, aligned like a TaskRecord) and a copy of every
 * string of sub but the stdin, which gets an allocation of its own (so that it can go). Only the
 * fields sub names are set; the rest are zero. Free it with
 * task_record_free_packed(). -E2BIG (sizes overflow), -ENOMEM. */
int task_record_new_packed(const TaskSubmission *sub, size_t priv_size, TaskRecord **ret);
/* Frees a record from task_record_new_packed(), with its priv and stdin; NULL is ignored. */
void task_record_free_packed(TaskRecord *t);

/* Frees a record whose strings are separate allocations (as a store loads them) and its unit and
 * result; not t->priv. NULL is ignored. */
void task_record_free(TaskRecord *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TaskRecord *, task_record_free);
