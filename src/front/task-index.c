/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "front/task-index.h"
#include "shared/util.h"

#define ORDER_CAP_MIN 64
/* Holes in the id order are closed once there are more than this many and they are over half. */
#define ORDER_DEAD_MIN 32

static uint64_t hash_key(const HashKey *k, const char *submitter, const char *key) {
        return hash_string(k, key, hash_string(k, submitter, 0));
}

static uint64_t record_id_hash(const void *e, const void *userdata) {
        return hash_u64(((const TaskRecord *) e)->id);
}

static uint64_t record_key_hash(const void *e, const void *userdata) {
        const TaskIndex *x = userdata;
        const TaskRecord *t = e;

        return hash_key(&x->key, t->submitter, t->key);
}

void task_index_init(TaskIndex *x, const HashKey *key) {
        *x = (TaskIndex){.key = *key};
}

void task_index_done(TaskIndex *x) {
        hash_table_done(&x->by_id);
        hash_table_done(&x->by_key);
        free(x->order);
        *x = (TaskIndex){};
}

TaskRecord *task_index_find_id(const TaskIndex *x, uint64_t id) {
        const HashTable *t = &x->by_id;

        if (!t->slots)
                return NULL;
        for (size_t i = hash_u64(id) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
                TaskRecord *r = t->slots[i];
                if (r->id == id)
                        return r;
        }
        return NULL;
}

TaskRecord *task_index_find_key(const TaskIndex *x, const char *submitter, const char *key) {
        const HashTable *t = &x->by_key;

        if (!t->slots)
                return NULL;
        for (size_t i = hash_key(&x->key, submitter, key) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
                TaskRecord *r = t->slots[i];
                if (streq(r->key, key) && streq(r->submitter, submitter))
                        return r;
        }
        return NULL;
}

/* ---- id order ---- */

static int order_cmp(const void *a, const void *b) {
        uint64_t x = ((const TaskIndexEntry *) a)->id, y = ((const TaskIndexEntry *) b)->id;
        return x < y ? -1 : x > y;
}

static bool order_too_holey(const TaskIndex *x) {
        return x->order_dead > ORDER_DEAD_MIN && x->order_dead > x->order_n / 2;
}

static void order_compact(TaskIndex *x) {
        size_t j = 0;

        for (size_t i = 0; i < x->order_n; i++)
                if (x->order[i].t)
                        x->order[j++] = x->order[i];
        x->order_n = j;
        x->order_dead = 0;
        if (x->order_unsorted) {
                qsort(x->order, x->order_n, sizeof(TaskIndexEntry), order_cmp);
                x->order_unsorted = false;
        }
        if (x->order_cap > ORDER_CAP_MIN && x->order_n < x->order_cap / 4) {
                TaskIndexEntry *o = realloc(x->order, x->order_cap / 2 * sizeof(TaskIndexEntry));
                if (o) {
                        x->order = o;
                        x->order_cap /= 2;
                }
        }
}

static int order_reserve(TaskIndex *x) {
        TaskIndexEntry *o;
        size_t cap;

        if (x->order_n < x->order_cap)
                return 0;
        if (x->order_dead > 0 && !x->pinned) {
                order_compact(x);
                if (x->order_n < x->order_cap)
                        return 0;
        }
        cap = x->order_cap ? x->order_cap * 2 : ORDER_CAP_MIN;
        if (cap > SIZE_MAX / sizeof(TaskIndexEntry))
                return -ENOMEM;
        o = realloc(x->order, cap * sizeof(TaskIndexEntry));
        if (!o)
                return -ENOMEM;
        x->order = o;
        x->order_cap = cap;
        return 0;
}

/* After order_reserve(). */
static void order_append(TaskIndex *x, TaskRecord *t) {
        if (x->order_n > 0 && t->id < x->order_max_id)
                x->order_unsorted = true;
        if (t->id > x->order_max_id)
                x->order_max_id = t->id;
        x->order[x->order_n++] = (TaskIndexEntry){.id = t->id, .t = t};
}

/* Position of t in the order, or order_n. */
static size_t order_find(const TaskIndex *x, const TaskRecord *t) {
        size_t lo = 0, hi = x->order_n;

        if (x->order_unsorted) {
                for (lo = 0; lo < x->order_n && x->order[lo].t != t; lo++)
                        ;
                return lo;
        }
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (x->order[mid].id < t->id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static void order_remove(TaskIndex *x, const TaskRecord *t) {
        size_t i;

        task_index_sort(x);
        i = order_find(x, t);
        if (i >= x->order_n || x->order[i].t != t)
                return;
        x->order[i].t = NULL;
        x->order_dead++;
        if (!x->pinned && order_too_holey(x))
                order_compact(x);
}

void task_index_sort(TaskIndex *x) {
        if (x->order_unsorted && !x->pinned)
                order_compact(x);
}

size_t task_index_after(const TaskIndex *x, uint64_t id) {
        size_t lo = 0, hi = x->order_n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (x->order[mid].id <= id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

void task_index_pin(TaskIndex *x) {
        x->pinned++;
}

void task_index_unpin(TaskIndex *x) {
        x->pinned--;
        if (!x->pinned && (x->order_unsorted || order_too_holey(x)))
                order_compact(x);
}

/* ---- all indexes ---- */

int task_index_reserve(TaskIndex *x, bool keyed) {
        int r;

        r = hash_table_reserve(&x->by_id, x->by_id.n + 1, record_id_hash, x);
        if (r < 0)
                return r;
        if (keyed) {
                r = hash_table_reserve(&x->by_key, x->by_key.n + 1, record_key_hash, x);
                if (r < 0)
                        return r;
        }
        return order_reserve(x);
}

void task_index_add(TaskIndex *x, TaskRecord *t) {
        hash_table_add(&x->by_id, hash_u64(t->id), t);
        if (t->key)
                hash_table_add(&x->by_key, hash_key(&x->key, t->submitter, t->key), t);
        order_append(x, t);
}

void task_index_remove(TaskIndex *x, const TaskRecord *t) {
        hash_table_remove(&x->by_id, hash_u64(t->id), t, record_id_hash, x);
        if (t->key)
                hash_table_remove(&x->by_key, hash_key(&x->key, t->submitter, t->key), t, record_key_hash,
                                  x);
        order_remove(x, t);
}
