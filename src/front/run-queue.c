/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front/run-queue.h"
#include "front/task-node.h"
#include "shared/util.h"

/* Empty groups kept for reuse before they are dropped: a task name that keeps emptying and filling
 * its queue should not cost an allocation each time, but many distinct commands must not pile up. */
#define GROUPS_EMPTY_KEEP 64

#define ACTIVE_CAP_MIN 16

/* Tasks of one task name (or one raw command) that may run now, best first. */
struct RunGroup {
        TaskHeap heap;
        uint64_t hash;
        size_t active_idx; /* index in RunQueue.active while the heap is non-empty */
        bool is_cmd;
        char name[];
};

static bool ready_less(const TaskRecord *a, const TaskRecord *b) {
        if (a->priority != b->priority)
                return a->priority > b->priority;
        return a->id < b->id;
}

static bool delayed_less(const TaskRecord *a, const TaskRecord *b) {
        if (a->run_after != b->run_after)
                return a->run_after < b->run_after;
        return a->id < b->id;
}

static uint64_t group_hash(const void *e, const void *userdata) {
        return ((const RunGroup *) e)->hash;
}

static const char *record_group_name(const TaskRecord *t, bool *ret_is_cmd) {
        *ret_is_cmd = !t->task;
        return t->task ? t->task : t->cmd;
}

static RunGroup *group_find(const RunQueue *q, const TaskRecord *t, uint64_t *ret_hash) {
        bool is_cmd;
        const char *name = record_group_name(t, &is_cmd);
        uint64_t h = hash_string(&q->key, name, is_cmd);
        const HashTable *g = &q->groups;

        if (ret_hash)
                *ret_hash = h;
        if (!g->slots)
                return NULL;
        for (size_t i = h & g->mask; g->slots[i]; i = (i + 1) & g->mask) {
                RunGroup *group = g->slots[i];
                if (group->hash == h && group->is_cmd == is_cmd && streq(group->name, name))
                        return group;
        }
        return NULL;
}

/* Finds or creates t's group; a new group starts empty (not in `active`). */
static int group_get(RunQueue *q, const TaskRecord *t, RunGroup **ret) {
        bool is_cmd;
        const char *name = record_group_name(t, &is_cmd);
        uint64_t h;
        RunGroup *g = group_find(q, t, &h);
        size_t len;
        int r;

        if (g) {
                *ret = g;
                return 0;
        }
        r = hash_table_reserve(&q->groups, q->groups.n + 1, group_hash, NULL);
        if (r < 0)
                return r;
        len = strlen(name);
        g = calloc(1, sizeof(RunGroup) + len + 1);
        if (!g)
                return -ENOMEM;
        memcpy(g->name, name, len + 1);
        g->hash = h;
        g->is_cmd = is_cmd;
        hash_table_add(&q->groups, h, g);
        q->n_empty_groups++;
        *ret = g;
        return 0;
}

static void group_free(RunGroup *g) {
        task_heap_done(&g->heap);
        free(g);
}

/* Drops every empty group. Rebuilds the table from the active ones; skipped if that cannot be
 * allocated (empty groups only cost memory, never time in run_queue_next()). */
static void groups_prune(RunQueue *q) {
        HashTable fresh = {};
        size_t want = q->n_active ? q->n_active : 1;

        if (hash_table_reserve(&fresh, want, group_hash, NULL) < 0)
                return;
        for (size_t i = 0; i < q->n_active; i++)
                hash_table_add(&fresh, q->active[i]->hash, q->active[i]);
        for (size_t i = 0; i <= q->groups.mask; i++) {
                RunGroup *g = q->groups.slots[i];
                if (g && g->heap.n == 0)
                        group_free(g);
        }
        hash_table_done(&q->groups);
        q->groups = fresh;
        q->n_empty_groups = 0;
}

static int active_reserve(RunQueue *q) {
        RunGroup **a;
        size_t cap;

        if (q->n_active < q->active_cap)
                return 0;
        cap = q->active_cap ? q->active_cap * 2 : ACTIVE_CAP_MIN;
        a = realloc(q->active, cap * sizeof(RunGroup *));
        if (!a)
                return -ENOMEM;
        q->active = a;
        q->active_cap = cap;
        return 0;
}

static void group_deactivate(RunQueue *q, RunGroup *g) {
        RunGroup *last = q->active[--q->n_active];

        q->active[g->active_idx] = last;
        last->active_idx = g->active_idx;
        q->n_empty_groups++;
        if (q->n_empty_groups > GROUPS_EMPTY_KEEP)
                groups_prune(q);
}

static void ready_push(RunQueue *q, RunGroup *g, TaskRecord *t) {
        if (g->heap.n == 0) {
                g->active_idx = q->n_active;
                q->active[q->n_active++] = g;
                q->n_empty_groups--;
        }
        task_heap_push(&g->heap, t, ready_less);
        task_node(t)->where = TASK_NODE_READY;
}

void run_queue_init(RunQueue *q, const HashKey *key) {
        *q = (RunQueue){.key = *key};
}

void run_queue_done(RunQueue *q) {
        if (q->groups.slots)
                for (size_t i = 0; i <= q->groups.mask; i++)
                        if (q->groups.slots[i])
                                group_free(q->groups.slots[i]);
        hash_table_done(&q->groups);
        free(q->active);
        task_heap_done(&q->delayed);
        *q = (RunQueue){};
}

int run_queue_reserve(RunQueue *q, const TaskRecord *t, uint64_t now) {
        RunGroup *g;
        int r;

        if (t->run_after > now)
                return run_queue_reserve_delayed(q);

        r = group_get(q, t, &g);
        if (r < 0)
                return r;
        r = task_heap_reserve(&g->heap, (size_t) g->heap.n + 1);
        if (r < 0)
                return r;
        if (g->heap.n == 0)
                return active_reserve(q);
        return 0;
}

void run_queue_add(RunQueue *q, TaskRecord *t, uint64_t now) {
        if (t->run_after > now) {
                run_queue_add_delayed(q, t);
                return;
        }
        ready_push(q, group_find(q, t, NULL), t);
}

int run_queue_reserve_delayed(RunQueue *q) {
        return task_heap_reserve(&q->delayed, (size_t) q->delayed.n + 1);
}

void run_queue_add_delayed(RunQueue *q, TaskRecord *t) {
        task_heap_push(&q->delayed, t, delayed_less);
        task_node(t)->where = TASK_NODE_DELAYED;
}

void run_queue_remove(RunQueue *q, TaskRecord *t) {
        TaskNode *n = task_node(t);

        if (n->where == TASK_NODE_READY) {
                RunGroup *g = group_find(q, t, NULL);

                task_heap_remove(&g->heap, n->heap_idx, ready_less);
                if (g->heap.n == 0)
                        group_deactivate(q, g);
        } else if (n->where == TASK_NODE_DELAYED)
                task_heap_remove(&q->delayed, n->heap_idx, delayed_less);
        n->where = TASK_NODE_NOT_QUEUED;
}

/* Moves every delayed record due at `now` into its group. A record whose group cannot be allocated
 * stays in the delay heap and is tried again next time. */
static void promote_due(RunQueue *q, uint64_t now) {
        while (q->delayed.n > 0) {
                TaskRecord *t = q->delayed.items[0];
                RunGroup *g;

                if (t->run_after > now)
                        break;
                if (run_queue_reserve(q, t, now) < 0)
                        break;
                g = group_find(q, t, NULL);
                task_heap_remove(&q->delayed, 0, delayed_less);
                ready_push(q, g, t);
        }
}

TaskRecord *run_queue_next(RunQueue *q, uint64_t now, bool (*can_start)(const TaskRecord *t, void *ud),
                           void *ud) {
        TaskRecord *best = NULL;

        promote_due(q, now);

        /* Ask only about candidates that would beat the best one allowed so far. */
        for (size_t i = 0; i < q->n_active; i++) {
                TaskRecord *c = q->active[i]->heap.items[0];

                if (best && !ready_less(c, best))
                        continue;
                if (can_start && !can_start(c, ud))
                        continue;
                best = c;
        }
        return best;
}

void run_queue_count(const RunQueue *q, bool (*can_start)(const TaskRecord *t, void *ud), void *ud,
                     size_t *ret_able, size_t *ret_waiting) {
        size_t able = q->delayed.n, waiting = 0;

        for (size_t i = 0; i < q->n_active; i++) {
                const TaskHeap *h = &q->active[i]->heap;

                if (can_start(h->items[0], ud))
                        able += h->n;
                else
                        waiting += h->n;
        }
        *ret_able = able;
        *ret_waiting = waiting;
}

size_t run_queue_group_size(const RunQueue *q, const TaskRecord *t) {
        const RunGroup *g = group_find(q, t, NULL);

        return g ? g->heap.n : 0;
}

uint64_t run_queue_oldest_due(const RunQueue *q, uint64_t now) {
        uint64_t oldest = UINT64_MAX;

        for (size_t i = 0; i < q->n_active; i++) {
                const TaskHeap *h = &q->active[i]->heap;
                for (uint32_t k = 0; k < h->n; k++)
                        if (h->items[k]->run_after < oldest)
                                oldest = h->items[k]->run_after;
        }
        /* The delay heap's first record is its earliest; it is due unless it lies ahead. */
        if (q->delayed.n > 0 && q->delayed.items[0]->run_after <= now &&
            q->delayed.items[0]->run_after < oldest)
                oldest = q->delayed.items[0]->run_after;
        return oldest;
}
