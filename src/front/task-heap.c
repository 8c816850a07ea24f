/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "front/task-heap.h"
#include "front/task-node.h"

#define TASK_HEAP_CAP_MIN 16

static inline void heap_set(TaskHeap *h, uint32_t i, TaskRecord *t) {
        h->items[i] = t;
        task_node(t)->heap_idx = i;
}

static void heap_sift_up(TaskHeap *h, uint32_t i, TaskHeapLessFn less) {
        TaskRecord *t = h->items[i];

        while (i > 0) {
                uint32_t parent = (i - 1) / 2;
                if (!less(t, h->items[parent]))
                        break;
                heap_set(h, i, h->items[parent]);
                i = parent;
        }
        heap_set(h, i, t);
}

static void heap_sift_down(TaskHeap *h, uint32_t i, TaskHeapLessFn less) {
        TaskRecord *t = h->items[i];

        for (;;) {
                uint32_t c = 2 * i + 1;

                if (c >= h->n)
                        break;
                if (c + 1 < h->n && less(h->items[c + 1], h->items[c]))
                        c++;
                if (!less(h->items[c], t))
                        break;
                heap_set(h, i, h->items[c]);
                i = c;
        }
        heap_set(h, i, t);
}

int task_heap_reserve(TaskHeap *h, size_t want) {
        TaskRecord **items;
        size_t cap;

        if (want <= h->cap)
                return 0;
        if (want > UINT32_MAX / 2)
                return -ENOMEM;
        cap = h->cap ? (size_t) h->cap * 2 : TASK_HEAP_CAP_MIN;
        while (cap < want)
                cap *= 2;
        items = realloc(h->items, cap * sizeof(TaskRecord *));
        if (!items)
                return -ENOMEM;
        h->items = items;
        h->cap = (uint32_t) cap;
        return 0;
}

void task_heap_push(TaskHeap *h, TaskRecord *t, TaskHeapLessFn less) {
        h->items[h->n] = t;
        task_node(t)->heap_idx = h->n;
        h->n++;
        heap_sift_up(h, h->n - 1, less);
}

void task_heap_remove(TaskHeap *h, uint32_t i, TaskHeapLessFn less) {
        TaskRecord *last = h->items[--h->n];

        if (i < h->n) {
                heap_set(h, i, last);
                if (i > 0 && less(last, h->items[(i - 1) / 2]))
                        heap_sift_up(h, i, less);
                else
                        heap_sift_down(h, i, less);
        }

        /* A queue that drained after a burst gives its memory back; failing to shrink is harmless. */
        if (h->cap > TASK_HEAP_CAP_MIN && h->n < h->cap / 4) {
                TaskRecord **items = realloc(h->items, (size_t) (h->cap / 2) * sizeof(TaskRecord *));
                if (items) {
                        h->items = items;
                        h->cap /= 2;
                }
        }
}

void task_heap_done(TaskHeap *h) {
        free(h->items);
        *h = (TaskHeap){};
}
