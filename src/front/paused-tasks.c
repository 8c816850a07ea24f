/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front/paused-tasks.h"
#include "shared/limits.h"
#include "shared/util.h"

/* Index of task, or where it would go (*ret_found false). */
static size_t position(const PausedTasks *p, const char *task, bool *ret_found) {
        size_t lo = 0, hi = p->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(p->items[mid].task, task);

                if (c == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

int paused_tasks_add(PausedTasks *p, const char *task, const char *by, uint64_t since) {
        _cleanup_free_ char *t = NULL, *b = NULL;
        bool found;
        size_t i = position(p, task, &found);

        if (found)
                return 0;
        if (p->n >= PAUSED_TASKS_MAX)
                return -E2BIG;
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 8;
                PausedTask *items = realloc(p->items, cap * sizeof(*items));

                if (!items)
                        return -ENOMEM;
                p->items = items;
                p->cap = cap;
        }
        t = strdup(task);
        b = strdup(by ? by : "");
        if (!t || !b)
                return -ENOMEM;
        memmove(p->items + i + 1, p->items + i, (p->n - i) * sizeof(*p->items));
        p->items[i] = (PausedTask){.task = TAKE_PTR(t), .by = TAKE_PTR(b), .since = since};
        p->n++;
        return 1;
}

bool paused_tasks_remove(PausedTasks *p, const char *task) {
        bool found;
        size_t i = position(p, task, &found);

        if (!found)
                return false;
        free(p->items[i].task);
        free(p->items[i].by);
        memmove(p->items + i, p->items + i + 1, (p->n - i - 1) * sizeof(*p->items));
        p->n--;
        return true;
}

const PausedTask *paused_tasks_find(const PausedTasks *p, const char *task) {
        bool found;
        size_t i = position(p, task, &found);

        return found ? &p->items[i] : NULL;
}

void paused_tasks_done(PausedTasks *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->items[i].task);
                free(p->items[i].by);
        }
        free(p->items);
        *p = (PausedTasks){};
}
