/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The ledger's run queue: which queued record runs next. One priority heap per task name (or raw
 * command) holds the records that may run now, best first (highest priority, then oldest id); one
 * heap by run_after holds those that must wait. Picking the next record looks at the top of each
 * non-empty group only, so it costs O(groups + log n) however long the queue is. Memory only.
 *
 * Every change that can fail comes in two steps: a reserve that allocates, then an add that cannot
 * fail, so that the ledger changes a record's state only once nothing can fail any more.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "front/hash-table.h"
#include "front/task-heap.h"
#include "front/task-record.h"

typedef struct RunGroup RunGroup;

typedef struct RunQueue {
        HashKey key;       /* hashes group names: clients choose raw commands */
        HashTable groups;  /* RunGroup by (is_cmd, name), empty ones included until pruned */
        RunGroup **active; /* groups with a non-empty heap */
        size_t n_active, active_cap;
        size_t n_empty_groups;
        TaskHeap delayed; /* queued records by run_after */
} RunQueue;

void run_queue_init(RunQueue *q, const HashKey *key);
/* Frees the groups and heaps (not the records). */
void run_queue_done(RunQueue *q);

/* Allocates what run_queue_add(q, t, now) needs. -ENOMEM. */
int run_queue_reserve(RunQueue *q, const TaskRecord *t, uint64_t now);
/* Queues t: ready when t->run_after <= now, else delayed. After run_queue_reserve() with the same now. */
void run_queue_add(RunQueue *q, TaskRecord *t, uint64_t now);

/* Allocates what run_queue_add_delayed() needs. -ENOMEM. */
int run_queue_reserve_delayed(RunQueue *q);
/* Queues t in the delay heap whatever its run_after (when the time is not known, as on loading):
 * the next run_queue_next() moves it on once due. */
void run_queue_add_delayed(RunQueue *q, TaskRecord *t);

/* Takes t out of the queue (nothing if it is not queued). */
void run_queue_remove(RunQueue *q, TaskRecord *t);

/* Moves the delayed records due at now to their groups, then returns the best ready record for which
 * can_start() agrees (it is asked about the best of each group at most), or NULL. can_start may be
 * NULL and must not change the queue. */
TaskRecord *run_queue_next(RunQueue *q, uint64_t now, bool (*can_start)(const TaskRecord *t, void *ud),
                           void *ud);

/* The queued records, split by the answer can_start() gives about the best of their group (each group
 * asked once): *ret_able those of groups it accepts, and the delayed ones; *ret_waiting the others.
 * O(groups). */
void run_queue_count(const RunQueue *q, bool (*can_start)(const TaskRecord *t, void *ud), void *ud,
                     size_t *ret_able, size_t *ret_waiting);

/* The ready records of t's group (its task name or command). */
size_t run_queue_group_size(const RunQueue *q, const TaskRecord *t);

/* Earliest run_after among the records due at now (ready, or delayed and due), or UINT64_MAX: how long
 * the queue has kept a task waiting. O(ready records): for a scrape, not for every event. */
uint64_t run_queue_oldest_due(const RunQueue *q, uint64_t now);

/* Earliest run_after in the delay heap, or UINT64_MAX. */
static inline uint64_t run_queue_next_wakeup(const RunQueue *q) {
        return q->delayed.n > 0 ? q->delayed.items[0]->run_after : UINT64_MAX;
}
