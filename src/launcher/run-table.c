/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/run-table.h"
#include "shared/util.h"

static size_t lower_bound(const RunTable *t, uint64_t id) {
        size_t lo = 0, hi = t->n_runs;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (t->runs[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

Run *run_table_find(const RunTable *t, uint64_t id) {
        size_t i = lower_bound(t, id);
        return i < t->n_runs && t->runs[i]->id == id ? t->runs[i] : NULL;
}

Run *run_table_next_after(const RunTable *t, uint64_t id) {
        size_t i = id == UINT64_MAX ? t->n_runs : lower_bound(t, id + 1);
        return i < t->n_runs ? t->runs[i] : NULL;
}

static Run *run_free(Run *run) {
        if (!run)
                return NULL;
        free(run->task);
        free(run->unit);
        free(run->progress);
        free(run);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Run *, run_free);

static int reserve_slot(RunTable *t) {
        size_t cap;
        Run **p;

        if (t->n_runs < t->cap_runs)
                return 0;
        cap = t->cap_runs ? t->cap_runs * 2 : 64;
        p = realloc(t->runs, cap * sizeof(*p));
        if (!p)
                return -ENOMEM;
        t->runs = p;
        t->cap_runs = cap;
        return 0;
}

int run_table_add(RunTable *t, uint64_t id, const char *task, bool is_command, Run **ret) {
        _cleanup_(run_freep) Run *run = NULL;
        size_t i = lower_bound(t, id);
        int r;

        if (i < t->n_runs && t->runs[i]->id == id)
                return -EEXIST;
        r = reserve_slot(t);
        if (r < 0)
                return r;
        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->id = id;
        run->is_command = is_command;
        if (task) {
                run->task = strdup(task);
                if (!run->task)
                        return -ENOMEM;
        }
        memmove(t->runs + i + 1, t->runs + i, (t->n_runs - i) * sizeof(*t->runs));
        t->runs[i] = run;
        t->n_runs++;
        *ret = TAKE_PTR(run);
        return 0;
}

void run_table_finish(RunTable *t, Run *run, const RunResult *result) {
        if (!run->finished)
                t->n_finished++;
        run->finished = true;
        run->result = *result;
}

int run_table_set_progress(Run *run, char *text) {
        if (streq_ptr(run->progress, text)) {
                free(text);
                return 0;
        }
        free(run->progress);
        run->progress = text;
        run->progress_pending = true;
        return 1;
}

int run_table_set_unit(Run *run, const char *unit) {
        char *u = strdup(unit);

        if (!u)
                return -ENOMEM;
        free(run->unit);
        run->unit = u;
        return 0;
}

void run_table_remove(RunTable *t, uint64_t id) {
        size_t i = lower_bound(t, id);
        Run *run;

        if (i >= t->n_runs || t->runs[i]->id != id)
                return;
        run = t->runs[i];
        memmove(t->runs + i, t->runs + i + 1, (t->n_runs - i - 1) * sizeof(*t->runs));
        t->n_runs--;
        if (run->finished)
                t->n_finished--;
        run_free(run);
}

void run_table_done(RunTable *t) {
        for (size_t i = 0; i < t->n_runs; i++)
                run_free(t->runs[i]);
        free(t->runs);
        *t = (RunTable){};
}

size_t run_table_running_task(const RunTable *t, const char *task, bool is_command) {
        size_t n = 0;

        /* A linear pass: the table holds at most RUNNING_MAX runs plus a bounded number of results, and
         * this runs once per launch. */
        for (size_t i = 0; i < t->n_runs; i++) {
                const Run *run = t->runs[i];

                if (!run->finished && run->is_command == is_command && streq_ptr(run->task, task))
                        n++;
        }
        return n;
}

const char *run_log_name(const Run *run) {
        if (run->is_command)
                return "command";
        return run->task ? run->task : "?";
}
