/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher's side of the launcher link: the link going up (ask for the launcher's runs) and
 * down, the reconciliation of those runs with the ledger, the launcher's messages (started, finished,
 * rejected, running, progress) and the stops of cancelled runs. Separate from the core because it
 * is where the launcher's word is taken in: each message is checked against the ledger here before
 * the core records anything.
 */
#include <errno.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "front/dispatcher-internal.h"
#include "front/dispatcher.h"
#include "shared/log.h"
#include "shared/util.h"

static void send_pending_stops(Dispatcher *d) {
        for (size_t i = 0; i < d->n_stops; i++) {
                LauncherMsg m = {.type = LMSG_STOP, .id = d->stops[i].id};

                if (d->stops[i].sent)
                        continue;
                if (launcher_link_send(d->link, &m) < 0)
                        return;
                d->stops[i].sent = true;
        }
}

void dispatcher_link_up(Dispatcher *d) {
        LauncherMsg m = {.type = LMSG_LIST};
        int r;

        d->ready = false;
        d->reconciling = true;
        d->n_reported = 0;
        r = launcher_link_send(d->link, &m);
        if (r < 0)
                log_warning_errno(r, "Cannot ask the launcher for its runs: %m");
}

void dispatcher_link_down(Dispatcher *d) {
        d->ready = false;
        d->reconciling = false;
        for (size_t i = 0; i < d->n_stops; i++)
                d->stops[i].sent = false;
        (void) sd_event_source_set_enabled(d->wakeup, SD_EVENT_OFF);
        dispatcher_changed(d);
}

bool dispatcher_link_ready(const Dispatcher *d) {
        return d->ready;
}

static int reported_add(Dispatcher *d, uint64_t id) {
        if (d->n_reported == d->cap_reported) {
                size_t cap = d->cap_reported ? d->cap_reported * 2 : 64;
                uint64_t *p = realloc(d->reported, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                d->reported = p;
                d->cap_reported = cap;
        }
        d->reported[d->n_reported++] = id;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static bool was_reported(const Dispatcher *d, uint64_t id) {
        return d->n_reported > 0 &&
               bsearch(&id, d->reported, d->n_reported, sizeof(uint64_t), cmp_u64) != NULL;
}

static void handle_started(Dispatcher *d, const LauncherMsg *m) {
        TaskRecord *t = ledger_get(d->ledger, m->id);

        if (!t || t->state != TASK_RUNNING) {
                log_debug("Launcher reports task %llu started, but it is not running here; ignoring.",
                          (unsigned long long) m->id);
                return;
        }
        (void) ledger_mark_started(d->ledger, t, m->unit);
        log_task(LOG_DEBUG, t->id, t->task, t->unit, "Task %llu (%s) started as %s.",
                 (unsigned long long) t->id, dispatcher_record_name(t), t->unit ? t->unit : "?");
        dispatcher_persist(d, t, 0);
}

static void handle_finished(Dispatcher *d, const LauncherMsg *m) {
        TaskRecord *t = ledger_get(d->ledger, m->id);

        if (!t || t->state != TASK_RUNNING) {
                /* Already recorded (an earlier delivery, or a run this front never knew): just let the
                 * launcher drop it. */
                log_debug("Launcher reports task %llu finished, but it is not running here; acking.",
                          (unsigned long long) m->id);
                if (!t)
                        ledger_set_next_id(d->ledger, m->id + 1);
                dispatcher_send_ack(d, m->id);
                return;
        }
        /* The launcher answered for the run: no start is pending, whatever recording the result does. */
        (void) ledger_mark_started(d->ledger, t, NULL);
        dispatcher_finish_run(d, t, &m->result, true);
}

static void handle_rejected(Dispatcher *d, const LauncherMsg *m) {
        TaskRecord *t = ledger_get(d->ledger, m->id);

        if (!t || t->state != TASK_RUNNING) {
                log_debug("Launcher rejected task %llu, which is not running here; ignoring.",
                          (unsigned long long) m->id);
                return;
        }
        (void) ledger_mark_started(d->ledger, t, NULL);
        dispatcher_finish_without_run(d, t, "rejected", "%s",
                                      m->error ? m->error : "refused by the launcher");
}

static void handle_running(Dispatcher *d, const LauncherMsg *m) {
        TaskRecord *t = ledger_get(d->ledger, m->id);
        int r;

        if (d->reconciling) {
                r = reported_add(d, m->id);
                if (r < 0)
                        log_error_errno(r, "Cannot track the launcher's run list: %m");
        }

        if (!t) {
                /* A run from before a restart with the memory store: leave it alone (its result is
                 * acked and dropped) and never hand out its id again. */
                log_debug("Launcher reports a run of task %llu (%s) that is not in the ledger.",
                          (unsigned long long) m->id, m->unit ? m->unit : "?");
                ledger_set_next_id(d->ledger, m->id + 1);
                return;
        }
        if (t->state == TASK_QUEUED) {
                /* We had given it up (or never saw it start): it is running after all. */
                r = ledger_mark_running(d->ledger, t, now_usec(CLOCK_REALTIME));
                if (r < 0)
                        return;
                (void) dispatcher_running_add(d, t);
                dispatcher_changed(d);
        } else if (t->state != TASK_RUNNING) {
                log_task(LOG_WARNING, t->id, t->task, m->unit,
                         "Launcher reports task %llu running, but it is %s here; leaving the run alone.",
                         (unsigned long long) t->id, task_state_to_string(t->state));
                return;
        }
        /* "starting": the launcher has the launch but not its unit yet; "started" follows. */
        if (m->unit && !streq(m->unit, "starting"))
                (void) ledger_mark_started(d->ledger, t, m->unit);
        dispatcher_persist(d, t, 0);
}

static void handle_list_end(Dispatcher *d) {
        _cleanup_free_ TaskRecord **out = NULL;
        unsigned n_running = d->n_running;
        size_t n = 0;

        if (!d->reconciling)
                return;
        d->reconciling = false;
        if (d->n_reported > 0)
                qsort(d->reported, d->n_reported, sizeof(uint64_t), cmp_u64);
        for (size_t i = 0, unknown = 0; i < d->n_reported; i++) {
                if ((i == 0 || d->reported[i] != d->reported[i - 1]) &&
                    !ledger_get(d->ledger, d->reported[i]))
                        unknown++;
                if (i + 1 == d->n_reported && unknown > 0)
                        log_notice("The launcher still runs %zu task(s) not in the ledger (from before a "
                                   "restart "
                                   "with the memory store); their results will be acknowledged and dropped.",
                                   unknown);
        }

        /* Runs we think are going but the launcher does not know: they ended while it was down (or it
         * never got the launch). Each counts as an attempt; tasks with attempts left are retried. */
        if (n_running > 0) {
                out = calloc(n_running, sizeof(*out));
                if (!out)
                        log_error_errno(ENOMEM, "Cannot reconcile running tasks: %m");
                else
                        n = ledger_list(d->ledger, TASK_RUNNING, n_running, out);
        }
        for (size_t i = 0; i < n; i++) {
                TaskRecord *t = out[i];

                if (t->state != TASK_RUNNING || was_reported(d, t->id) ||
                    dispatcher_launch_waits_for_write(d, t->id))
                        continue;
                (void) ledger_mark_started(d->ledger, t, NULL);
                dispatcher_finish_without_run(d, t, "lost",
                                              "the run was lost (the launcher does not know it)");
        }

        d->n_reported = 0;
        d->ready = true;
        send_pending_stops(d);
        if (d->events.reconciled)
                d->events.reconciled(d->userdata);
        dispatcher_kick(d);
        dispatcher_changed(d);
}

/* A live run's latest STATUS=. The launcher sends it only for a run it has; a record that is not
 * running (any more) has nothing to show it on. */
static void handle_progress(Dispatcher *d, const LauncherMsg *m) {
        TaskRecord *t = ledger_get(d->ledger, m->id);
        int r;

        if (!t || t->state != TASK_RUNNING)
                return;
        r = ledger_set_progress(d->ledger, t, m->text ? m->text : "");
        if (r < 0)
                log_warning_errno(r, "Cannot record the progress of task %llu: %m",
                                  (unsigned long long) m->id);
}

static void handle_reloaded(Dispatcher *d, const LauncherMsg *m) {
        /* Routed to the service by the daemon; nothing to do here. */
}

void dispatcher_handle_message(Dispatcher *d, const LauncherMsg *m) {
        switch (m->type) {
        case LMSG_STARTED:
                handle_started(d, m);
                break;
        case LMSG_FINISHED:
                handle_finished(d, m);
                break;
        case LMSG_REJECTED:
                handle_rejected(d, m);
                break;
        case LMSG_RUNNING:
                handle_running(d, m);
                break;
        case LMSG_LIST_END:
                handle_list_end(d);
                break;
        case LMSG_RELOADED:
                handle_reloaded(d, m);
                break;
        case LMSG_PROGRESS:
                handle_progress(d, m);
                break;
        default:
                log_debug("Ignoring launcher message '%s'.", lmsg_type_to_string(m->type));
                break;
        }
}

int dispatcher_stop_task(Dispatcher *d, TaskRecord *t) {
        StopRequest *s;

        if (t->state != TASK_RUNNING)
                return -ESRCH;
        s = dispatcher_stop_find(d, t->id);
        if (!s) {
                StopRequest *p = realloc(d->stops, (d->n_stops + 1) * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                d->stops = p;
                s = &d->stops[d->n_stops++];
                *s = (StopRequest){.id = t->id};
                log_task(LOG_INFO, t->id, t->task, t->unit, "Stopping task %llu (%s): cancelled.",
                         (unsigned long long) t->id, dispatcher_record_name(t));
        }
        /* Sent once per run; while the link is down (or being reconciled) it goes out when it is ready. */
        if (!s->sent && d->ready) {
                LauncherMsg m = {.type = LMSG_STOP, .id = t->id};
                if (launcher_link_send(d->link, &m) >= 0)
                        s->sent = true;
        }
        return 0;
}
