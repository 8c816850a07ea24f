/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The ledger's indexes of its records: by id, by (submitter, idempotency key), and in id order for
 * listing and walking. Memory only. Adding is in two steps (task_index_reserve(), then
 * task_index_add(), which cannot fail), so that the ledger changes nothing before it knows a record
 * fits.
 *
 * The id order is an array. A removed record leaves a hole (t == NULL) that is closed later, and a
 * record that comes in below the highest id (ledger_adopt() in any order) makes the array unsorted
 * until then. While a walk is pinned (task_index_pin()), entries do not move: a callback during the
 * walk may add and remove records.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "front/hash-table.h"
#include "front/task-record.h"

typedef struct TaskIndexEntry {
        uint64_t id;
        TaskRecord *t; /* NULL once removed, until compaction */
} TaskIndexEntry;

typedef struct TaskIndex {
        HashKey key; /* hashes idempotency keys: clients choose them */
        HashTable by_id;
        HashTable by_key; /* records with a key, by (submitter, key) */

        TaskIndexEntry *order;
        size_t order_n, order_cap, order_dead;
        uint64_t order_max_id;
        bool order_unsorted; /* a record came in below order_max_id */
        unsigned pinned;     /* walks over `order` running: do not move entries */
} TaskIndex;

void task_index_init(TaskIndex *x, const HashKey *key);
/* Frees the indexes (not the records). */
void task_index_done(TaskIndex *x);

/* Makes room for one more record (keyed: it has an idempotency key). -ENOMEM. */
int task_index_reserve(TaskIndex *x, bool keyed);
/* Adds t; after task_index_reserve(). */
void task_index_add(TaskIndex *x, TaskRecord *t);
/* Removes t from every index (nothing where it is not). */
void task_index_remove(TaskIndex *x, const TaskRecord *t);

TaskRecord *task_index_find_id(const TaskIndex *x, uint64_t id);
TaskRecord *task_index_find_key(const TaskIndex *x, const char *submitter, const char *key);

/* Puts the id order in order, unless a walk is pinned. */
void task_index_sort(TaskIndex *x);
/* The first position in the id order whose id is above id (task_index_len() if none); after
 * task_index_sort(). */
size_t task_index_after(const TaskIndex *x, uint64_t id);
/* Entries stay where they are until the matching unpin; nests. */
void task_index_pin(TaskIndex *x);
/* Ends a pin; the last one closes holes and sorts when worth it. */
void task_index_unpin(TaskIndex *x);

/* The id order: task_index_at(x, i) for i < task_index_len(x), ascending when sorted; NULL where a
 * record was removed. */
static inline size_t task_index_len(const TaskIndex *x) {
        return x->order_n;
}
static inline TaskRecord *task_index_at(const TaskIndex *x, size_t i) {
        return x->order[i].t;
}
