/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A binary heap of task records, best first by the caller's order. Each record's position is kept in
 * its TaskNode (heap_idx), so a record leaves from anywhere in O(log n); a record is in at most one
 * heap at a time. Memory only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "front/task-record.h"

typedef struct TaskHeap {
        TaskRecord **items;
        uint32_t n, cap;
} TaskHeap;

/* Whether a goes before b; one order per heap, the same on every call. */
typedef bool (*TaskHeapLessFn)(const TaskRecord *a, const TaskRecord *b);

/* Makes room for `want` records. -ENOMEM. */
int task_heap_reserve(TaskHeap *h, size_t want);
/* Adds t; after task_heap_reserve() made room. */
void task_heap_push(TaskHeap *h, TaskRecord *t, TaskHeapLessFn less);
/* Removes the record at position i (its TaskNode.heap_idx; 0 is the best). Shrinks after a burst. */
void task_heap_remove(TaskHeap *h, uint32_t i, TaskHeapLessFn less);
/* Frees the array (not the records); the heap is empty and reusable. */
void task_heap_done(TaskHeap *h);

/* The best record, or NULL when empty. */
static inline TaskRecord *task_heap_top(const TaskHeap *h) {
        return h->n > 0 ? h->items[0] : NULL;
}
