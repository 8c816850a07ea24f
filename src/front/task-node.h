/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the ledger keeps for each record it holds, behind TaskRecord.priv: its place in the run queue
 * (run-queue.h, task-heap.h), its place among the finished records (the oldest go first past
 * max_records), and its watches and lifetime (ledger.c). One small struct for all of them so that a
 * packed record carries a single 32-byte node.
 */

#include <stdbool.h>
#include <stdint.h>

#include "front/task-record.h"

/* Where a queued record waits (TaskNode.where). */
enum {
        TASK_NODE_NOT_QUEUED,
        TASK_NODE_READY,   /* in its group's heap: may run now */
        TASK_NODE_DELAYED, /* in the delay heap: run_after not reached when last looked */
};

/* How a record was allocated (TaskNode.kind). */
enum {
        TASK_NODE_PACKED,  /* ledger_submit(): record, node and strings in one allocation */
        TASK_NODE_ADOPTED, /* ledger_adopt(): strings and node separately allocated */
};

struct LedgerWatch;

typedef struct TaskNode {
        struct LedgerWatch *watches; /* not yet fired */
        /* A final record: its neighbours in its list of finished records (ledger.c), oldest first. */
        TaskRecord *finished_prev, *finished_next;
        uint32_t heap_idx; /* position in the heap named by `where` */
        uint8_t where;
        uint8_t kind;
        uint8_t firing; /* depth of watch callbacks running for this record: it must stay allocated */
        bool doomed;    /* removed from the ledger while its watches were firing: free afterwards */
} TaskNode;

static inline TaskNode *task_node(const TaskRecord *t) {
        return t->priv;
}
