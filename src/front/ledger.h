/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The ledger: every task record the front knows, its state machine, and the run queue.
 * In memory, no I/O. With the memory store it is the whole truth; with a durable store it is the
 * working set and every change is also written through the store (store.h) before it is
 * acknowledged. Queue order: highest priority first, then oldest id, among queued tasks whose
 * run_after has passed.
 *
 * A record in the ledger changes only through the calls below; the dispatcher and the service read
 * its fields. The ledger's parts: task-record (the records), task-index (by id, by key, in id order),
 * run-queue (what runs next).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "front/paused-tasks.h"
#include "front/task-record.h"
#include "shared/protocol.h"
#include "shared/run-result.h"
#include "shared/util.h"

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
DEFINE_TRIVIAL_CLEANUP_FUNC(Ledger *, ledger_free);

/* Next id to hand out; a durable store sets it after loading (ids never repeat). */
void ledger_set_next_id(Ledger *l, uint64_t next_id);

/* Ids from a counter shared by several hosts (docs/cluster.md): blocks of LEDGER_ID_BLOCK. The first
 * block is used at once; one added while ids of the current one are left is kept for when it is used
 * up. ledger_submit() returns -EAGAIN when both are. ids_low is called by a submission that leaves
 * ledger_wants_id_block() true (fewer than half a block left, no spare one): it reserves the next. */
#define LEDGER_ID_BLOCK 10000
void ledger_add_id_block(Ledger *l, uint64_t start, uint64_t end);
bool ledger_wants_id_block(const Ledger *l);
void ledger_set_ids_low(Ledger *l, void (*fn)(void *userdata), void *userdata);

/* Adds a queued task. If sub->key is set and a record with the same key and submitter exists,
 * returns that one with *ret_existing = true and adds nothing. */
int ledger_submit(Ledger *l, const TaskSubmission *sub, uint64_t now, TaskRecord **ret, bool *ret_existing);

/* Inserts a record loaded from a durable store as-is (id and state kept); takes ownership of t. */
int ledger_adopt(Ledger *l, TaskRecord *t);

TaskRecord *ledger_get(Ledger *l, uint64_t id);
/* The record a submitter's idempotency key names, or NULL. */
TaskRecord *ledger_get_by_key(Ledger *l, const char *submitter, const char *key);

/* The best queued task whose run_after <= now and for which can_start() agrees (concurrency),
 * or NULL. can_start is asked about the best candidate of each task name (or command). */
TaskRecord *ledger_next_runnable(Ledger *l, uint64_t now, bool (*can_start)(const TaskRecord *t, void *ud),
                                 void *ud);

/* The queued records: *ret_able those of the task names (or commands) whose best record can_start()
 * accepts, and those not due yet; *ret_waiting the rest (a paused name's, one at its concurrency
 * limit). can_start is asked once per name. */
void ledger_count_queued(Ledger *l, bool (*can_start)(const TaskRecord *t, void *ud), void *ud,
                         size_t *ret_able, size_t *ret_waiting);

/* The queued records of t's task name (or command) that are due, t itself counted if it is one. */
size_t ledger_queued_of_name(Ledger *l, const TaskRecord *t);

/* Earliest run_after of a queued task that is not runnable yet, or UINT64_MAX. */
uint64_t ledger_next_wakeup(Ledger *l);

/* queued -> running: attempts++, started_at = now, unit cleared. */
int ledger_mark_running(Ledger *l, TaskRecord *t, uint64_t now);

/* A running record's launch: ledger_mark_launching() when the launch is on its way to the launcher
 * (launch_pending), ledger_mark_started() when the launcher confirms the run or answers for it
 * otherwise (launch_pending cleared whatever happens); unit, when not NULL, names the run (its unit,
 * or "pid:N"). -EINVAL unless running; -ENOMEM from ledger_mark_started() keeps the old unit. */
int ledger_mark_launching(Ledger *l, TaskRecord *t);
int ledger_mark_started(Ledger *l, TaskRecord *t, const char *unit);

/* Makes the running attempt the last one (max_attempts = attempts): when its task left the config, no
 * later attempt could succeed. -EINVAL unless running. */
int ledger_mark_last_attempt(Ledger *l, TaskRecord *t);

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

/* Removes a record whatever its state, as ledger_forget(): another node has taken its task (its row
 * says so), and this front no longer speaks for it. */
int ledger_drop(Ledger *l, TaskRecord *t);

/* Lets go of a queued record whose row the store holds for this host, and which nobody watches: its
 * row stays this host's and stays counted among its submitter's unfinished tasks (an adopt brings it
 * back, counted already). -EBUSY when it is not queued or is watched. */
int ledger_unload(Ledger *l, TaskRecord *t);

/* Up to limit records in a state (or any state if state < 0), by id ascending. Returns count. */
size_t ledger_list(Ledger *l, int state, size_t limit, TaskRecord **out);
/* The same, of the records whose id is above after_id: a page that follows the last id of the one
 * before. */
size_t ledger_list_after(Ledger *l, int state, uint64_t after_id, size_t limit, TaskRecord **out);

/* Drops succeeded/cancelled records finished before `before` (failed ones are kept). Returns count. */
size_t ledger_purge(Ledger *l, uint64_t before);

/* The most final records the ledger keeps (max_records); 0, the default, keeps all. Takes effect at
 * the next ledger_trim(). */
void ledger_set_max_finished(Ledger *l, uint64_t max_finished);

/* Called for each record ledger_trim() drops, before it goes. */
typedef void (*LedgerDroppedFn)(const TaskRecord *t, void *userdata);

/* Drops final records past the bound of ledger_set_max_finished(): the oldest to become final first,
 * succeeded and cancelled ones before failed ones. Queued and running records are never dropped.
 * Not done by the calls that finish a record, whose callers still hold it: the owner calls this at a
 * quiet moment (the dispatcher's pass). Returns how many were dropped. */
size_t ledger_trim(Ledger *l, LedgerDroppedFn dropped, void *userdata);

void ledger_stats(Ledger *l, LedgerStats *ret);

/* How long the queued task that has been due the longest has waited at now (0 when none is due):
 * the age of the queue. O(queued records). */
uint64_t ledger_oldest_queued_age(Ledger *l, uint64_t now);

/* A submitter's unfinished (queued or running) records and the stdin bytes they hold, kept up to date
 * at every change of state: what the per-submitter quotas are checked against. With a durable store
 * they count the rows, most of which memory does not hold: ledger_count_rows() (before the first
 * adopt) makes them start from the store's totals, which it adds with ledger_add_unfinished(); from
 * then on an adopted record is counted already (its row is), and a submission, a change of state
 * and a removal count as before. */
void ledger_count_rows(Ledger *l);
int ledger_add_unfinished(Ledger *l, const char *submitter, uint64_t tasks, uint64_t stdin_bytes);
void ledger_submitter_unfinished(Ledger *l, const char *submitter, uint64_t *ret_tasks,
                                 uint64_t *ret_stdin_bytes);
/* A row memory does not hold went into (+1) or out of (-1) the unfinished ones by this host's doing
 * (a cancel, retry or forget written to the database alone): its submitter's count follows it. */
void ledger_row_unfinished(Ledger *l, const char *submitter, int delta, uint64_t stdin_bytes);
/* Forgets every submitter's count, before ledger_add_unfinished() of the store's totals read again
 * (store_recount_unfinished()). Out of memory, the counts stay as they were. */
void ledger_reset_unfinished(Ledger *l);

int ledger_watch(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, LedgerWatch **ret);
/* As ledger_watch(), and it also fires (forgotten false, t still running) when t's progress changes. */
int ledger_watch_progress(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, LedgerWatch **ret);

/* A record's stdin with a durable store, whose row holds it: ledger_drop_stdin() lets go of the copy
 * in memory (stdin_len stays), ledger_set_stdin() takes back the one read from the row (data, len
 * bytes with a NUL after them; owned by the record from then on; a length other than stdin_len, the
 * row's changed behind us, is counted in its submitter's quota). */
void ledger_drop_stdin(Ledger *l, TaskRecord *t);
void ledger_set_stdin(Ledger *l, TaskRecord *t, char *data, size_t len);
/* Whether t has stdin that is not in memory: it must be read from the store before a launch. */
static inline bool ledger_stdin_in_store(const TaskRecord *t) {
        return t->stdin_len > 0 && !t->stdin_data;
}

/* A running record's progress: text (copied; "" is kept, as a task that cleared its status). Fires
 * the progress watches when it changed. Returns 1 if it changed, 0 if not; -EINVAL unless running,
 * -ENOMEM (the old text stays). A new attempt starts without progress (ledger_mark_running()). */
int ledger_set_progress(Ledger *l, TaskRecord *t, const char *text);
/* Cancels a watch that has not fired (e.g. the client went away or its wait timed out). */
LedgerWatch *ledger_watch_free(LedgerWatch *w);

/* Task names paused by an admin: their queued records stay queued, and the dispatcher starts none of
 * them (it asks ledger_task_paused() about the best record of each task name only, so a paused name
 * with a long queue costs nothing per pass). The stores keep the set across restarts.
 * ledger_pause(): 1 when added, 0 when already paused, -E2BIG past PAUSED_TASKS_MAX, -ENOMEM.
 * ledger_resume(): whether it was paused. */
int ledger_pause(Ledger *l, const char *task, const char *by, uint64_t since);
bool ledger_resume(Ledger *l, const char *task);
/* Whether task (NULL for a raw command: never) is paused. */
bool ledger_task_paused(const Ledger *l, const char *task);
const PausedTasks *ledger_paused(const Ledger *l);
