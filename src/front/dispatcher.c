/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher's core: the queue pass that starts runnable tasks within max_running and each
 * task's concurrency, the launch (with the store's "running" committed first), a run's result applied
 * to the ledger and written to the store, the timer for delayed and backed-off tasks, and the
 * object's life. The launcher's messages, the queue's window, retention and alerts are in their own
 * dispatcher-*.c files (see front/dispatcher-internal.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "front/dispatcher-internal.h"
#include "front/dispatcher.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/util.h"

void dispatcher_changed(Dispatcher *d) {
        if (d->events.changed)
                d->events.changed(d->userdata);
}

static const char *record_key(const TaskRecord *t) {
        return t->task ? t->task : t->cmd ? t->cmd : "";
}

const char *dispatcher_record_name(const TaskRecord *t) {
        return t->task ? t->task : "command";
}

const TaskDef *dispatcher_record_def(const Dispatcher *d, const TaskRecord *t) {
        if (t->task)
                return config_find_task(d->cfg, t->task);
        if (t->cmd)
                return config_find_command(d->cfg, t->cmd);
        return NULL;
}

static RunCount *count_find(Dispatcher *d, const char *key) {
        for (size_t i = 0; i < d->n_counts; i++)
                if (streq(d->counts[i].key, key))
                        return &d->counts[i];
        return NULL;
}

static unsigned count_get(Dispatcher *d, const char *key) {
        RunCount *c = count_find(d, key);
        return c ? c->n : 0;
}

int dispatcher_running_add(Dispatcher *d, const TaskRecord *t) {
        const char *key = record_key(t);
        RunCount *c = count_find(d, key);

        if (!c) {
                RunCount *p = realloc(d->counts, (d->n_counts + 1) * sizeof(*p));
                char *k;

                if (!p)
                        return -ENOMEM;
                d->counts = p;
                k = strdup(key);
                if (!k)
                        return -ENOMEM;
                c = &d->counts[d->n_counts++];
                *c = (RunCount){.key = k};
        }
        c->n++;
        d->n_running++;
        return 0;
}

static void running_remove(Dispatcher *d, const TaskRecord *t) {
        RunCount *c = count_find(d, record_key(t));

        if (d->n_running > 0)
                d->n_running--;
        if (!c)
                return;
        if (c->n > 0)
                c->n--;
        if (c->n == 0) {
                free(c->key);
                *c = d->counts[--d->n_counts];
        }
}

StopRequest *dispatcher_stop_find(Dispatcher *d, uint64_t id) {
        for (size_t i = 0; i < d->n_stops; i++)
                if (d->stops[i].id == id)
                        return &d->stops[i];
        return NULL;
}

static void stop_forget(Dispatcher *d, uint64_t id) {
        StopRequest *s = dispatcher_stop_find(d, id);

        if (s)
                *s = d->stops[--d->n_stops];
}

bool dispatcher_holds(const Dispatcher *d, uint64_t id) {
        for (size_t i = 0; i < d->n_held; i++)
                if (d->held[i] == id)
                        return true;
        return false;
}

void dispatcher_send_ack(Dispatcher *d, uint64_t id) {
        LauncherMsg m = {.type = LMSG_ACK, .id = id};
        int r;

        r = launcher_link_send(d->link, &m);
        /* Not connected: the launcher sends the result again on reconnect and we ack it then. */
        if (r < 0 && r != -ENOTCONN)
                log_warning_errno(r, "Cannot ack the result of task %llu to the launcher: %m",
                                  (unsigned long long) id);
}

/* A write handed to the store, listed until the store answers it. */
void dispatcher_write_link(Dispatcher *d, PendingWrite *w) {
        w->next = d->writes;
        if (w->next)
                w->next->prev = w;
        d->writes = w;
        d->n_writes++;
}

static void write_unlink(Dispatcher *d, PendingWrite *w) {
        if (w->prev)
                w->prev->next = w->next;
        else
                d->writes = w->next;
        if (w->next)
                w->next->prev = w->prev;
        d->n_writes--;
}

static void launch_written(Dispatcher *d, uint64_t id, int error);

/* The fence held a write back: the row is no longer this node's at this attempt (this node was taken
 * for dead, and another queued, failed or took the task). The database's outcome stands; this front
 * lets go of the record, and a result the launcher holds is acked, as nobody is to write it. */
static void lost_to_another_node(Dispatcher *d, PendingWrite *w) {
        TaskRecord *t = ledger_get(d->ledger, w->id);

        log_task_event(
                LOG_WARNING, MESSAGE_ID_TASK_LOST, w->id, t ? t->task : NULL, t ? t->unit : NULL,
                "Task %llu is no longer this node's: another node has taken it (this node was taken for "
                "dead); %s here.",
                (unsigned long long) w->id,
                w->ack_id      ? "its result is not recorded"
                : w->launch_id ? "it is not started"
                               : "it is dropped");
        if (w->ack_id != 0)
                dispatcher_send_ack(d, w->ack_id);
        if (!t)
                return;
        if (t->state == TASK_RUNNING)
                running_remove(d, t);
        stop_forget(d, w->id);
        (void) ledger_drop(d->ledger, t);
        dispatcher_changed(d);
        dispatcher_kick(d);
}

void dispatcher_write_done(int error, void *userdata) {
        PendingWrite *w = userdata;
        Dispatcher *d = w->dispatcher;

        if (d && error == -ESTALE) {
                write_unlink(d, w);
                lost_to_another_node(d, w);
        } else if (d) {
                write_unlink(d, w);
                /* -ESHUTDOWN: given up as the front stops, the store said how many. */
                if (error < 0 && error != -ESHUTDOWN)
                        log_warning_errno(error, "Store write for task %llu failed: %m",
                                          (unsigned long long) (w->ack_id ? w->ack_id : w->launch_id));
                if (error >= 0 && w->ack_id != 0)
                        /* The result is durable: the launcher may let go of it. */
                        dispatcher_send_ack(d, w->ack_id);
                if (w->launch_id != 0)
                        launch_written(d, w->launch_id, error);
                if (w->alert_id != 0)
                        dispatcher_alert_written(d, w->alert_id, error);
        }
        free(w);
}

/* Whether a launch waits for its "running" state to be committed. */
bool dispatcher_launch_waits_for_write(const Dispatcher *d, uint64_t id) {
        for (const PendingWrite *w = d->writes; w; w = w->next)
                if (w->launch_id == id)
                        return true;
        return false;
}

/* Writes t through the store (if there is one); then acks ack_id (0: none) to the launcher. Without a
 * store the ack goes out at once. */
static int persist_and(Dispatcher *d, const TaskRecord *t, uint64_t ack_id, uint64_t launch_id) {
        PendingWrite *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return log_error_errno(ENOMEM, "Cannot write task %llu to the store: %m",
                                       (unsigned long long) t->id);
        w->dispatcher = d;
        w->id = t->id;
        w->ack_id = ack_id;
        w->launch_id = launch_id;
        /* Fenced: another node may have taken the task while this one was taken for dead. */
        r = store_update_run(d->store, t, dispatcher_write_done, w);
        if (r < 0) {
                /* Not acked: the launcher keeps the result and sends it again on the next connect. */
                log_error_errno(r, "Cannot write task %llu to the store: %m", (unsigned long long) t->id);
                free(w);
                return r;
        }
        dispatcher_write_link(d, w);
        return 0;
}

void dispatcher_persist(Dispatcher *d, const TaskRecord *t, uint64_t ack_id) {
        if (!d->store) {
                if (ack_id != 0)
                        dispatcher_send_ack(d, ack_id);
                return;
        }
        (void) persist_and(d, t, ack_id, 0);
}

/* running -> finished (or queued again for another attempt). ack: the launcher holds this result. */
void dispatcher_finish_run(Dispatcher *d, TaskRecord *t, const RunResult *result, bool ack) {
        const TaskDef *def = dispatcher_record_def(d, t);
        uint64_t backoff = def ? config_task_backoff_sec(def, t->attempts) : 0;
        uint64_t id = t->id;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        running_remove(d, t);
        stop_forget(d, id);

        if (streq(result->result, "lost"))
                log_task_event(LOG_WARNING, MESSAGE_ID_TASK_LOST, id, t->task, t->unit,
                               "Task %llu (%s) attempt %u was lost: %s.", (unsigned long long) id,
                               dispatcher_record_name(t), t->attempts,
                               result->error[0] ? result->error : "no result");
        metrics_run_finished(d->metrics, t->task, result->result,
                             t->started_at && now > t->started_at ? now - t->started_at : 0);

        r = ledger_mark_finished(d->ledger, t, result, now, backoff);
        if (r < 0) {
                log_task(LOG_ERR, id, t->task, t->unit, "Cannot record the result of task %llu: %s",
                         (unsigned long long) id, strerror(-r));
                return;
        }

        if (t->state == TASK_QUEUED)
                log_task(LOG_NOTICE, id, t->task, t->unit,
                         "Task %llu (%s) attempt %u ended with result '%s'%s%s; retrying in %llu s.",
                         (unsigned long long) id, dispatcher_record_name(t), t->attempts, result->result,
                         result->error[0] ? ": " : "", result->error, (unsigned long long) backoff);
        else if (t->state == TASK_FAILED)
                log_task_event(LOG_WARNING, MESSAGE_ID_TASK_FAILED, id, t->task, t->unit,
                               "Task %llu (%s) failed for good after %u attempt(s): result '%s'%s%s.",
                               (unsigned long long) id, dispatcher_record_name(t), t->attempts,
                               result->result, result->error[0] ? ", " : "", result->error);
        else
                log_task(LOG_INFO, id, t->task, t->unit,
                         "Task %llu (%s) %s after %u attempt(s): result '%s'%s%s.", (unsigned long long) id,
                         dispatcher_record_name(t), task_state_to_string(t->state), t->attempts,
                         result->result, result->error[0] ? ", " : "", result->error);

        dispatcher_persist(d, t, ack ? id : 0);
        if (t->state == TASK_FAILED)
                dispatcher_alert_submit(d, t);
        dispatcher_kick(d);
        dispatcher_changed(d);
}

void dispatcher_finish_without_run(Dispatcher *d, TaskRecord *t, const char *result, const char *fmt, ...) {
        RunResult r = {};
        va_list ap;

        snprintf(r.result, sizeof(r.result), "%s", result);
        va_start(ap, fmt);
        (void) vsnprintf(r.error, sizeof(r.error), fmt, ap);
        va_end(ap);
        dispatcher_finish_run(d, t, &r, false);
}

/* Whether t's task name lets a run of it start now: not paused, below its concurrency limit. */
bool dispatcher_name_can_start(const TaskRecord *t, void *userdata) {
        Dispatcher *d = userdata;
        const TaskDef *def;

        /* Asked about the best record of each task name only: a paused name with a long queue costs
         * one lookup per pass, however many records wait behind it. */
        if (ledger_task_paused(d->ledger, t->task))
                return false;
        def = dispatcher_record_def(d, t);
        if (!def)
                return true; /* picked so that it can be failed, below */
        if (d->store && !config_task_runs_on(def, d->cfg->node))
                return false; /* its "hosts" leave this node out: another claims it */
        if (d->store && def->concurrency > 0 && t->task && !dispatcher_owns(d, t->task))
                return false; /* its limit is kept by the node that owns the name */
        return def->concurrency == 0 || count_get(d, record_key(t)) < def->concurrency;
}

static bool can_start(const TaskRecord *t, void *userdata) {
        Dispatcher *d = userdata;

        return !dispatcher_holds(d, t->id) && dispatcher_name_can_start(t, d);
}

static void send_launch(Dispatcher *d, TaskRecord *t);

static void launch(Dispatcher *d, TaskRecord *t, uint64_t now) {
        const TaskDef *def = dispatcher_record_def(d, t);
        int r;

        /* Queued since it was due: submitted, backed off, or retried. */
        metrics_run_started(d->metrics, t->task, now > t->run_after ? now - t->run_after : 0);
        r = ledger_mark_running(d->ledger, t, now);
        if (r < 0) {
                log_task(LOG_ERR, t->id, t->task, NULL, "Cannot start task %llu: %s",
                         (unsigned long long) t->id, strerror(-r));
                return;
        }
        r = dispatcher_running_add(d, t);
        if (r < 0)
                log_error_errno(r, "Cannot count running task %llu: %m", (unsigned long long) t->id);
        dispatcher_refill_took(d, t);

        if (!def) {
                /* Removed from the config by a reload after it was queued: no attempt can succeed. */
                (void) ledger_mark_last_attempt(d->ledger, t);
                if (t->task)
                        dispatcher_finish_without_run(d, t, "rejected", "task '%s' is no longer configured",
                                                      t->task);
                else
                        dispatcher_finish_without_run(d, t, "rejected",
                                                      "command is no longer on the commands list");
                return;
        }

        (void) ledger_mark_launching(d->ledger, t);
        /* With a durable store, "running" is committed before the launcher is asked: a crash in
         * between then shows the run as lost (counted as an attempt) rather than queued, so a task
         * never runs twice unless it has attempts left. */
        if (d->store && persist_and(d, t, 0, t->id) >= 0)
                return;
        send_launch(d, t);
}

static void send_launch(Dispatcher *d, TaskRecord *t) {
        LauncherMsg m;
        int r;

        m = (LauncherMsg){
                .type = LMSG_LAUNCH,
                .id = t->id,
                .attempt = t->attempts,
                .task = t->task,
                .cmd = t->cmd,
                .args = t->args,
                .n_args = t->n_args,
                .stdin_data = t->stdin_data,
                .stdin_len = t->stdin_len,
                .submitter = t->submitter,
        };
        r = launcher_link_send(d->link, &m);
        if (r < 0) {
                dispatcher_finish_without_run(d, t, "lost", "could not send the launch to the launcher: %s",
                                              strerror(-r));
                return;
        }
        dispatcher_stdin_launched(d, t);

        log_task(LOG_DEBUG, t->id, t->task, NULL, "Launching task %llu (%s), attempt %u of %u.",
                 (unsigned long long) t->id, dispatcher_record_name(t), t->attempts, t->max_attempts);
}

static void launch_written(Dispatcher *d, uint64_t id, int error) {
        TaskRecord *t = ledger_get(d->ledger, id);

        /* Meanwhile the run may have been settled otherwise (lost at a reconnect, forgotten). */
        if (!t || t->state != TASK_RUNNING || !t->launch_pending)
                return;
        if (dispatcher_stop_find(d, id)) {
                dispatcher_finish_without_run(d, t, "cancelled", "cancelled before it started");
                return;
        }
        /* The front stops, and the database could not take the start: it is not launched, and no
         * attempt is spent. The row is still queued; the next front (or another host) claims it. */
        if (error == -ESHUTDOWN)
                return;
        if (error < 0) {
                /* Not launched: a run the row does not know of would run again after a restart. The
                 * write was refused for good (a change the database cannot take is not retried); the
                 * attempt ends here, and the task runs again if it has one left. */
                dispatcher_finish_without_run(d, t, "rejected",
                                              "its start could not be recorded in the database: %s",
                                              strerror(-error));
                return;
        }
        send_launch(d, t);
}

/* Not while draining: a pass then moves nothing out of the delay heap, so a record due there (one
 * adopted as queued at the start) would fire the timer at once, again and again, and keep every
 * source of a lower priority (the listeners) from running. Undrain kicks a pass. */
static void arm_wakeup(Dispatcher *d) {
        uint64_t next = d->ready && !d->draining ? ledger_next_wakeup(d->ledger) : UINT64_MAX;

        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(d->wakeup, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(d->wakeup, next);
        (void) sd_event_source_set_enabled(d->wakeup, SD_EVENT_ONESHOT);
}

/* A failed record dropped past max_records is the one an admin might still have wanted: say which. */
static void on_record_dropped(const TaskRecord *t, void *userdata) {
        if (t->state == TASK_FAILED)
                log_task(LOG_NOTICE, t->id, t->task, NULL,
                         "Task %llu (failed) dropped from memory: more than max_records finished records.",
                         (unsigned long long) t->id);
}

void dispatcher_trim(Dispatcher *d) {
        ledger_set_max_finished(d->ledger, d->cfg->max_records);
        if (ledger_trim(d->ledger, on_record_dropped, d) > 0)
                dispatcher_changed(d);
}

static int on_pass(sd_event_source *s, void *userdata) {
        Dispatcher *d = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        unsigned launched = 0;
        bool changed = false;

        dispatcher_trim(d);

        if (d->ready && !d->draining) {
                /* Records held for a stdin read take a slot: they launch next. */
                while (d->n_running + d->n_stdin_reading < d->cfg->max_running &&
                       launcher_link_can_launch(d->link)) {
                        TaskRecord *t;

                        /* Bounded per pass so a huge backlog cannot hold the loop; the rest follows. */
                        if (launched >= RUNNING_MAX) {
                                dispatcher_kick(d);
                                break;
                        }
                        t = ledger_next_runnable(d->ledger, now, can_start, d);
                        if (!t)
                                break;
                        launched++;
                        if (dispatcher_stdin_wanted(d, t))
                                continue;
                        launch(d, t, now);
                        changed = true;
                }
        }
        dispatcher_stdin_read(d);
        dispatcher_stdin_drop_stored(d);
        /* After the launches: a name they brought to its concurrency limit no longer counts as able
         * to start. */
        dispatcher_refill_queue(d);
        arm_wakeup(d);
        if (changed)
                dispatcher_changed(d);
        return 0;
}

static int on_wakeup(sd_event_source *s, uint64_t usec, void *userdata) {
        dispatcher_kick(userdata);
        return 0;
}

/* Records already running when we start (loaded from a durable store) count against the limits. */
static int count_existing_runs(Dispatcher *d) {
        LedgerStats st;
        _cleanup_free_ TaskRecord **out = NULL;
        size_t n;

        ledger_stats(d->ledger, &st);
        if (st.running == 0)
                return 0;
        out = calloc(st.running, sizeof(*out));
        if (!out)
                return -ENOMEM;
        n = ledger_list(d->ledger, TASK_RUNNING, st.running, out);
        for (size_t i = 0; i < n; i++) {
                int r = dispatcher_running_add(d, out[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int dispatcher_new(sd_event *event, Ledger *ledger, Store *store, LauncherLink *link, const Config *cfg,
                   const DispatcherEvents *events, void *userdata, Dispatcher **ret) {
        Dispatcher *d;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->event = sd_event_ref(event);
        d->ledger = ledger;
        d->store = store;
        d->link = link;
        d->cfg = cfg;
        if (events)
                d->events = *events;
        d->userdata = userdata;
        d->window = STORE_QUEUE_WINDOW;
        d->purges_store = true;

        r = sd_event_add_defer(event, &d->pass, on_pass, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->pass, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(event, &d->wakeup, CLOCK_REALTIME, 0, USEC_PER_MSEC, on_wakeup, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->wakeup, SD_EVENT_OFF);
        if (r >= 0)
                r = dispatcher_purge_start(d);
        if (r >= 0)
                r = count_existing_runs(d);
        if (r < 0) {
                dispatcher_free(d);
                return r;
        }
        /* Records loaded at start may be past max_records: the first pass trims them. The store's queue
         * may go on past the window loaded at start. */
        d->queue_more = d->queue_beyond = store != NULL;
        dispatcher_kick(d);

        *ret = d;
        return 0;
}

Dispatcher *dispatcher_free(Dispatcher *d) {
        if (!d)
                return NULL;
        /* Writes still in the store's queue complete without us (or are dropped with the store). */
        for (PendingWrite *w = d->writes; w; w = w->next)
                w->dispatcher = NULL;
        dispatcher_purge_stop(d);
        dispatcher_refill_stop(d);
        dispatcher_stdin_stop(d);
        sd_event_source_disable_unref(d->pass);
        sd_event_source_disable_unref(d->wakeup);
        for (size_t i = 0; i < d->n_counts; i++)
                free(d->counts[i].key);
        free(d->counts);
        free(d->reported);
        free(d->stops);
        free(d->held);
        sd_event_unref(d->event);
        free(d);
        return NULL;
}

void dispatcher_set_metrics(Dispatcher *d, Metrics *m) {
        d->metrics = m;
}

void dispatcher_set_config(Dispatcher *d, const Config *cfg) {
        d->cfg = cfg;
        dispatcher_kick(d);
}

void dispatcher_kick(Dispatcher *d) {
        (void) sd_event_source_set_enabled(d->pass, SD_EVENT_ONESHOT);
}

int dispatcher_hold(Dispatcher *d, uint64_t id) {
        uint64_t *p = realloc(d->held, (d->n_held + 1) * sizeof(*p));

        if (!p)
                return -ENOMEM;
        d->held = p;
        d->held[d->n_held++] = id;
        return 0;
}

void dispatcher_release(Dispatcher *d, uint64_t id) {
        for (size_t i = 0; i < d->n_held; i++)
                if (d->held[i] == id) {
                        d->held[i] = d->held[--d->n_held];
                        dispatcher_kick(d);
                        return;
                }
}

void dispatcher_set_draining(Dispatcher *d, bool draining) {
        d->draining = draining;
        dispatcher_kick(d);
        dispatcher_changed(d);
}

bool dispatcher_draining(const Dispatcher *d) {
        return d->draining;
}

unsigned dispatcher_n_running(const Dispatcher *d) {
        return d->n_running;
}

unsigned dispatcher_n_pending_writes(const Dispatcher *d) {
        return d->n_writes;
}
