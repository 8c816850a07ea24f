/* SPDX-License-Identifier: MIT */
/*
 * The queue's window (MySQL store): the ledger holds the first rows of the queue, not all of it, and
 * is refilled from the database as it drains. Separate from the core because it is the one part of
 * the queue that reads the store, and its bookkeeping (what the last read left out, whether a read
 * can bring anything new) concerns nothing else.
 */
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "front/dispatcher-internal.h"
#include "front/dispatcher.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

/* A record left the queue for a run: a read of the window may bring something new again, and must
 * when this was the last record in memory of a name the last read left out (its next rows). */
void dispatcher_refill_took(Dispatcher *d, const TaskRecord *t) {
        d->refill_idle = false;
        if (t->task && paused_tasks_find(&d->window_skip, t->task) &&
            ledger_queued_of_name(d->ledger, t) == 0 && !ledger_task_paused(d->ledger, t->task)) {
                (void) paused_tasks_remove(&d->window_skip, t->task);
                d->refill_forced = true;
        }
}

/* The window holds the first rows of the queue; a submission that arrives when it is full waits in the
 * database, as the rows past the window do: its record leaves memory once its insert has committed.
 * Alone, the node keeps its row (claimed), so that a claim of the window brings it back in the
 * queue's order and its submitter's count keeps it meanwhile; with other nodes alive the row is let
 * go (dispatcher-stdin.c), for any node with room to claim (the counts are read again then:
 * cluster.c). A claim of this node's that read the row before it was let go cannot run it twice:
 * the start's write is fenced on the row being this node's. Only a due record of a name without a
 * concurrency limit that nobody waits on and no launch holds goes: a delayed one could be due before
 * the window drains, and the rows of a limited name may pass to the node that comes to own the name,
 * which this node's count would not see. A submission of higher priority than the records in memory
 * waits for the next claim, which comes once those that can start have drained to half the window. */
bool dispatcher_refill_spill(Dispatcher *d, TaskRecord *t, uint64_t now) {
        const TaskDef *def;

        if (!d->store || !t->past_window || t->state != TASK_QUEUED || t->run_after > now ||
            t->parent_id != 0)
                return false;
        def = dispatcher_record_def(d, t);
        /* Its insert's hold went as it committed; a stdin read for a launch is the only other one
         * (dispatcher_holds() walks every hold: not for each commit while none is read). */
        if (!def || def->concurrency > 0 || (d->n_stdin_reading > 0 && dispatcher_holds(d, t->id)) ||
            ledger_unload(d->ledger, t) < 0)
                return false;
        d->queue_more = d->queue_beyond = true;
        d->refill_idle = false;
        d->spilled = true; /* a read in flight may have missed it */
        return true;
}

/* Decided as it is submitted, in the order of the submissions: past a full window, or behind rows the
 * database holds past the window (queue_beyond), a submission waits in the database, since the rows
 * before it in the queue's order do. (Decided at the commit instead, a burst of submissions
 * committed together would keep its last ones in memory and leave its first ones out.) */
void dispatcher_submitted(Dispatcher *d, TaskRecord *t) {
        LedgerStats st;

        if (!d->store)
                return;
        ledger_stats(d->ledger, &st);
        t->past_window = d->queue_beyond || st.queued > d->window;
}

typedef struct Refill {
        Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
        uint64_t sent_at;       /* CLOCK_REALTIME: when the claim was queued */
} Refill;

/* Whether the ledger's old record of a row just claimed is stale: it finished before the claim was
 * queued (so the claim saw its writes), and the row is queued again since (another node retried it,
 * or queued it again after a lost run). A record that finished after is the newer one (a cancel
 * whose write came after the claim's read). */
static bool stale_copy(const TaskRecord *old, uint64_t sent_at) {
        return task_state_is_final(old->state) && old->finished_at < sent_at;
}

static int on_refill_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Dispatcher *d = userdata;

        d->refill_retry = sd_event_source_disable_unref(d->refill_retry);
        dispatcher_kick(d);
        return 0;
}

static void refill_done(StoreRead *result, void *userdata) {
        Refill *f = userdata;
        Dispatcher *d = f->dispatcher;
        uint64_t sent_at = f->sent_at;
        size_t adopted = 0;

        free(f);
        if (!d)
                return;
        d->refill = NULL;
        if (result->error == -ECANCELED)
                return; /* the store is going away */
        if (result->error < 0) {
                /* Try again in a second (the store says when the database is back). */
                if (!d->refill_retry)
                        (void) sd_event_add_time_relative(d->event, &d->refill_retry, CLOCK_MONOTONIC,
                                                          USEC_PER_SEC, 0, on_refill_retry, d);
                return;
        }
        for (size_t i = 0; i < result->n_records; i++) {
                TaskRecord *t = result->records[i], *old = ledger_get(d->ledger, t->id);

                if (old && stale_copy(old, sent_at) && ledger_drop(d->ledger, old) >= 0) {
                        log_debug("Task %llu: the claimed row replaces the finished record in memory.",
                                  (unsigned long long) t->id);
                        old = NULL;
                }
                if (old || ledger_adopt(d->ledger, t) < 0)
                        continue; /* in memory already: the ledger's is the newer */
                result->records[i] = NULL;
                adopted++;
        }
        /* A full window may have left rows behind; a short one read every queued row, unless rows were
         * queued again in the database while it was in flight (refill_forced: read again). */
        d->queue_more = result->n_records >= d->window || d->refill_forced || d->spilled;
        d->queue_beyond = result->n_records >= d->window || d->spilled;
        /* Nothing new in a full window: read again only once a record left the queue (launch). */
        d->refill_idle = adopted == 0 && !d->refill_forced;
        if (adopted > 0) {
                log_debug("Read %zu queued task(s) from the store into the queue.", adopted);
                dispatcher_changed(d);
        }
        dispatcher_kick(d);
}

typedef struct RefillCount {
        Dispatcher *dispatcher;
        PausedTasks *skip; /* gets the names at their concurrency limit */
} RefillCount;

static bool refill_counts(const TaskRecord *t, void *userdata) {
        RefillCount *c = userdata;

        if (dispatcher_name_can_start(t, c->dispatcher))
                return true;
        /* At its limit (a paused name is in the set already). Past PAUSED_TASKS_MAX names its rows are
         * read, which costs memory, not order. */
        if (t->task)
                (void) paused_tasks_add(c->skip, t->task, "concurrency", 0);
        return false;
}

/* With the store, reads the first rows of the queue when the records in the ledger's window that can
 * start have drained to half and the database may hold more. The rows come in dispatch order, as a
 * claim of the next runnable rows would take them (SELECT ... FOR UPDATE SKIP LOCKED) if several
 * fronts shared the table.
 *
 * Records that cannot start neither count nor are read again: otherwise a paused name (or one at its
 * concurrency limit) with half a window of queued records would keep the rows of every other name
 * out of memory, or fill it. The read leaves out the paused names (their rows come back with the
 * read at resume) and the names at their limit with queued records in memory (those run first as
 * the limit frees up; once a launch takes the last of them, the window is read again). */
void dispatcher_refill_queue(Dispatcher *d) {
        const PausedTasks *paused = ledger_paused(d->ledger);
        PausedTasks skip = {};
        RefillCount count = {.dispatcher = d, .skip = &skip};
        size_t able, waiting;
        int r = 0;

        if (!d->store || !d->queue_more || d->refill || d->refill_retry)
                return;
        if (d->refill_idle && !d->refill_forced)
                return;
        for (size_t i = 0; i < paused->n && r >= 0; i++)
                r = paused_tasks_add(&skip, paused->items[i].task, paused->items[i].by,
                                     paused->items[i].since);
        /* Names whose "hosts" leave this node out are claimed by the others. */
        for (size_t i = 0; i < d->cfg->n_tasks && r >= 0; i++) {
                const TaskDef *t = &d->cfg->tasks[i];

                if (!config_task_runs_on(t, d->cfg->node) ||
                    (t->concurrency > 0 && !dispatcher_owns(d, t->name)))
                        r = paused_tasks_add(&skip, t->name, "hosts", 0);
        }
        ledger_count_queued(d->ledger, refill_counts, &count, &able, &waiting);
        if (r < 0 || (able >= d->window / 2 && !d->refill_forced)) {
                paused_tasks_done(&skip);
                return;
        }
        d->refill_forced = false;
        d->refill = calloc(1, sizeof(Refill));
        if (!d->refill) {
                paused_tasks_done(&skip);
                return;
        }
        d->refill->dispatcher = d;
        d->refill->sent_at = now_usec(CLOCK_REALTIME);
        d->spilled = false;
        /* A claim: the rows become this node's in the same transaction (store-cluster.c). */
        r = store_claim_queue(d->store, d->window, &skip, refill_done, d->refill);
        if (r < 0) {
                log_warning_errno(r, "Cannot read the queue from the store: %m");
                free(d->refill);
                d->refill = NULL;
                paused_tasks_done(&skip);
                return;
        }
        paused_tasks_done(&d->window_skip);
        d->window_skip = skip;
}

void dispatcher_queue_grew(Dispatcher *d) {
        d->queue_more = true;
        d->refill_forced = true; /* the rows may be runnable before those in memory */
        dispatcher_kick(d);
}

void dispatcher_set_cluster(Dispatcher *d, bool leader, bool shared, unsigned window) {
        if (window != d->window)
                log_info("This node now claims up to %u queued task(s) at a time.", window);
        d->purges_store = leader;
        d->shared_queue = shared;
        d->window = window;
}

bool dispatcher_shares_queue(const Dispatcher *d) {
        return d->shared_queue;
}

bool dispatcher_owns(const Dispatcher *d, const char *task) {
        for (size_t i = 0; i < d->n_owned; i++)
                if (streq(d->owned[i], task))
                        return true;
        return false;
}

bool dispatcher_runs_here(const Dispatcher *d, const TaskRecord *t) {
        const TaskDef *def;

        if (!d->store || !t->task)
                return true;
        def = config_find_task(d->cfg, t->task);
        return !def || (config_task_runs_on(def, d->cfg->node) &&
                        (def->concurrency == 0 || dispatcher_owns(d, t->task)));
}

void dispatcher_set_owned(Dispatcher *d, char **owned, size_t n_owned) {
        bool changed = n_owned != d->n_owned;

        for (size_t i = 0; i < n_owned && !changed; i++)
                changed = !dispatcher_owns(d, owned[i]);
        if (changed)
                for (size_t i = 0; i < n_owned; i++)
                        if (!dispatcher_owns(d, owned[i]))
                                log_info(
                                        "This node now runs task '%s' (its concurrency holds across nodes).",
                                        owned[i]);
        strv_free(d->owned);
        d->owned = owned;
        d->n_owned = owned ? n_owned : 0;
        if (changed)
                /* Rows of a name now owned are in the database, claimed by nobody. */
                dispatcher_queue_grew(d);
}

void dispatcher_poll_claims(Dispatcher *d) {
        size_t able, waiting;

        if (!d->store || d->draining || d->refill || d->n_running >= d->cfg->max_running)
                return;
        ledger_count_queued(d->ledger, dispatcher_name_can_start, d, &able, &waiting);
        /* Room here and nothing in memory to fill it: rows other nodes left or lost may be there. */
        if (able == 0)
                dispatcher_queue_grew(d);
}

void dispatcher_paused_changed(Dispatcher *d) {
        /* Paused: the window is read again without the name's rows. Resumed: with them, which the
         * window left out while it was paused. */
        dispatcher_queue_grew(d);
}

void dispatcher_refill_stop(Dispatcher *d) {
        strv_free(d->owned);
        d->owned = NULL;
        d->n_owned = 0;
        if (d->refill)
                d->refill->dispatcher = NULL;
        d->refill_retry = sd_event_source_disable_unref(d->refill_retry);
        paused_tasks_done(&d->window_skip);
}
