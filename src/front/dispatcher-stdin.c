/* SPDX-License-Identifier: MIT */
/*
 * Queued tasks' stdin with the MySQL store: it stays in the database until the launch. A submission's
 * copy goes once its insert has committed (unless the pass right after launches it), a launch's once
 * the launcher has it, and the window of the queue is read without it; a record about to be launched
 * is held while its stdin is read by id, those of one pass in one read, and launched by a later pass.
 * A read that fails keeps them held for a second and then lets the pass try again: a launch waits for
 * its stdin, it never goes without. Apart from the core because it is the one part of a launch that
 * reads the store. Without a store nothing here happens (the memory store keeps every stdin).
 */
#include <errno.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "front/dispatcher-internal.h"
#include "front/dispatcher.h"
#include "shared/log.h"
#include "shared/util.h"

/* One read of the stdin of the ids it holds, in flight or waiting to let them go after a failure. */
typedef struct StdinRead {
        Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
        uint64_t *ids;
        size_t n;
        sd_event_source *retry;
        struct StdinRead *prev, *next;
} StdinRead;

static void stdin_read_unlink(Dispatcher *d, StdinRead *x) {
        if (x->prev)
                x->prev->next = x->next;
        else
                d->stdin_reads = x->next;
        if (x->next)
                x->next->prev = x->prev;
        x->prev = x->next = NULL;
}

/* Lets the read's records go (the pass may pick them again) and frees it. */
static void stdin_read_release(StdinRead *x) {
        Dispatcher *d = x->dispatcher;

        if (d) {
                stdin_read_unlink(d, x);
                d->n_stdin_reading -= x->n;
                for (size_t i = 0; i < x->n; i++)
                        dispatcher_release(d, x->ids[i]);
        }
        sd_event_source_disable_unref(x->retry);
        free(x->ids);
        free(x);
}

static int on_stdin_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        stdin_read_release(userdata);
        return 0;
}

/* The read failed (or never went out): the records stay held for a second, then the pass tries again.
 * Without a timer they go at once, and the next pass still reads before it launches. */
static void stdin_read_retry_later(StdinRead *x) {
        int r = sd_event_add_time_relative(x->dispatcher->event, &x->retry, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                           on_stdin_retry, x);
        if (r < 0)
                stdin_read_release(x);
}

static void stdin_read_done(StoreRead *result, void *userdata) {
        StdinRead *x = userdata;
        Dispatcher *d = x->dispatcher;
        size_t missing = 0;

        if (!d || result->error == -ECANCELED) { /* the dispatcher or the store is going away */
                stdin_read_release(x);
                return;
        }
        if (result->error < 0) {
                log_warning_errno(result->error,
                                  "Cannot read the stdin of %zu task(s) to launch: %m; "
                                  "trying again in a second.",
                                  x->n);
                stdin_read_retry_later(x);
                return;
        }
        for (size_t i = 0; i < result->n_records; i++) {
                TaskRecord *row = result->records[i];
                TaskRecord *t = ledger_get(d->ledger, row->id);

                /* Cancelled or forgotten meanwhile: nothing to launch. */
                if (!t || t->state != TASK_QUEUED || !ledger_stdin_in_store(t))
                        continue;
                ledger_set_stdin(d->ledger, t, TAKE_PTR(row->stdin_data), row->stdin_len);
        }
        for (size_t i = 0; i < x->n; i++) {
                TaskRecord *t = ledger_get(d->ledger, x->ids[i]);

                if (t && t->state == TASK_QUEUED && ledger_stdin_in_store(t))
                        missing++;
        }
        if (missing > 0) {
                /* A row the read did not find (deleted behind us): not launched without its stdin. */
                log_warning("The stdin of %zu task(s) to launch was not found in the store; trying again in "
                            "a second.",
                            missing);
                stdin_read_retry_later(x);
                return;
        }
        stdin_read_release(x);
}

/* Makes room for one more id in *v (doubling), so that a pass's list costs no copy per entry. */
static bool ids_reserve(uint64_t **v, size_t n, size_t *cap) {
        uint64_t *p;
        size_t want;

        if (n < *cap)
                return true;
        want = *cap ? *cap * 2 : 16;
        p = realloc(*v, want * sizeof(*p));
        if (!p)
                return false;
        *v = p;
        *cap = want;
        return true;
}

bool dispatcher_stdin_wanted(Dispatcher *d, TaskRecord *t) {
        if (!d->store || !ledger_stdin_in_store(t))
                return false;
        if (!ids_reserve(&d->stdin_batch, d->n_stdin_batch, &d->cap_stdin_batch))
                return true; /* left queued, unheld: a later pass tries again */
        if (dispatcher_hold(d, t->id) < 0)
                return true;
        d->stdin_batch[d->n_stdin_batch++] = t->id;
        d->n_stdin_reading++;
        return true;
}

void dispatcher_stdin_read(Dispatcher *d) {
        StdinRead *x;
        int r;

        if (d->n_stdin_batch == 0)
                return;
        x = calloc(1, sizeof(*x));
        if (!x) {
                for (size_t i = 0; i < d->n_stdin_batch; i++)
                        dispatcher_release(d, d->stdin_batch[i]);
                d->n_stdin_reading -= d->n_stdin_batch;
                d->n_stdin_batch = 0;
                return;
        }
        *x = (StdinRead){.dispatcher = d, .ids = TAKE_PTR(d->stdin_batch), .n = d->n_stdin_batch};
        d->n_stdin_batch = d->cap_stdin_batch = 0;
        x->next = d->stdin_reads;
        if (x->next)
                x->next->prev = x;
        d->stdin_reads = x;
        r = store_read_stdin(d->store, x->ids, x->n, stdin_read_done, x);
        if (r < 0) {
                log_warning_errno(r, "Cannot read the stdin of %zu task(s) to launch: %m", x->n);
                stdin_read_retry_later(x);
        }
}

void dispatcher_stdin_stored(Dispatcher *d, uint64_t id) {
        if (!d->store)
                return;
        /* Without room its stdin stays in memory until the launch: costs memory, not correctness. */
        if (ids_reserve(&d->stdin_stored, d->n_stdin_stored, &d->cap_stdin_stored))
                d->stdin_stored[d->n_stdin_stored++] = id;
}

void dispatcher_stdin_drop_stored(Dispatcher *d) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        size_t spilled = 0;

        for (size_t i = 0; i < d->n_stdin_stored; i++) {
                uint64_t id = d->stdin_stored[i];
                TaskRecord *t = ledger_get(d->ledger, id);

                /* Launched by this pass (running): the launch still needs it, and drops it once sent. */
                if (!t || t->state != TASK_QUEUED)
                        continue;
                if (dispatcher_refill_spill(d, t, now))
                        d->stdin_stored[spilled++] = id; /* the whole record went, its stdin with it */
                else
                        ledger_drop_stdin(d->ledger, t);
        }
        if (spilled > 0) {
                log_debug("%zu submission(s) left memory for the database: the window is full.", spilled);
                /* With other nodes alive, any of them with room may run them: their rows are let go. */
                if (d->shared_queue && store_release_queued(d->store, d->stdin_stored, spilled) < 0)
                        log_warning("Cannot let go of %zu queued row(s) for the other nodes; this node runs "
                                    "them.",
                                    spilled);
        }
        free(d->stdin_stored);
        d->stdin_stored = NULL;
        d->n_stdin_stored = d->cap_stdin_stored = 0;
}

void dispatcher_stdin_launched(Dispatcher *d, TaskRecord *t) {
        if (d->store)
                ledger_drop_stdin(d->ledger, t);
}

void dispatcher_stdin_stop(Dispatcher *d) {
        while (d->stdin_reads) {
                StdinRead *x = d->stdin_reads;

                stdin_read_unlink(d, x);
                x->dispatcher = NULL;
                if (x->retry) /* no read in flight: nobody else frees it */
                        stdin_read_release(x);
        }
        free(d->stdin_batch);
        free(d->stdin_stored);
}
