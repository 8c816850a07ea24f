/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "front/dispatcher.h"
#include "front/on-failure.h"
#include "front/store-sql.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/util.h"

/* Runs of one task name (or raw command) in state running, for its "concurrency" limit. */
typedef struct RunCount {
        char *key;
        unsigned n;
} RunCount;

/* A stop the launcher must get for a running task (cancel). sent is cleared when the link drops, so
 * a restarted launcher is asked again. */
typedef struct StopRequest {
        uint64_t id;
        bool sent;
} StopRequest;

/* A store write whose completion still has work to do (the ack of a finished run). Kept in a list so
 * the dispatcher can let go of them if it is freed first. */
typedef struct PendingWrite {
        struct Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
        uint64_t ack_id;               /* 0: nothing to ack */
        uint64_t launch_id;            /* 0: nothing to launch once written */
        uint64_t alert_id;             /* 0: no alert waits for its insert to commit */
        struct PendingWrite *prev, *next;
} PendingWrite;

/* The store's purge in progress: its steps, and what they deleted. */
typedef struct PurgeRun {
        struct Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
        uint64_t before;
        uint64_t rows;
        unsigned steps;
} PurgeRun;

struct Dispatcher {
        sd_event *event;
        Ledger *ledger;
        Store *store;
        LauncherLink *link;
        const Config *cfg;
        DispatcherEvents events;
        void *userdata;

        sd_event_source *pass;   /* deferred, coalesced queue pass */
        sd_event_source *wakeup; /* CLOCK_REALTIME: the next delayed or backed-off task */
        sd_event_source *purge;  /* retention, hourly */

        unsigned n_running;
        RunCount *counts;
        size_t n_counts;

        bool draining;      /* this host starts no new runs (drain) */
        bool reconciling;   /* list sent after a connect; list_end not seen yet */
        bool ready;         /* connected and reconciled: launches may go out */
        uint64_t *reported; /* ids the launcher listed as running during reconciliation */
        size_t n_reported, cap_reported;

        StopRequest *stops;
        size_t n_stops;

        uint64_t *held; /* submitted, store insert not committed yet: do not start */
        size_t n_held;

        PendingWrite *writes;
        unsigned n_writes;

        Metrics *metrics; /* borrowed; NULL: not counted */

        PurgeRun *purge_run; /* a step queued in the store */

        bool queue_more;               /* the store may hold queued rows the ledger has not */
        bool refill_forced;            /* refill however full the window is */
        bool refill_idle;              /* the last read brought nothing new: wait for a launch */
        PausedTasks window_skip;       /* names the last read left out (paused, at their limit) */
        struct Refill *refill;         /* a read of the queue in flight */
        sd_event_source *refill_retry; /* after a failed read */
};

static void dispatcher_changed(Dispatcher *d) {
        if (d->events.changed)
                d->events.changed(d->userdata);
}

static const char *record_key(const TaskRecord *t) {
        return t->task ? t->task : t->cmd ? t->cmd : "";
}

static const char *record_name(const TaskRecord *t) {
        return t->task ? t->task : "command";
}

static const TaskDef *record_def(const Dispatcher *d, const TaskRecord *t) {
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

static int running_add(Dispatcher *d, const TaskRecord *t) {
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

static StopRequest *stop_find(Dispatcher *d, uint64_t id) {
        for (size_t i = 0; i < d->n_stops; i++)
                if (d->stops[i].id == id)
                        return &d->stops[i];
        return NULL;
}

static void stop_forget(Dispatcher *d, uint64_t id) {
        StopRequest *s = stop_find(d, id);

        if (s)
                *s = d->stops[--d->n_stops];
}

static bool held(const Dispatcher *d, uint64_t id) {
        for (size_t i = 0; i < d->n_held; i++)
                if (d->held[i] == id)
                        return true;
        return false;
}

static void send_ack(Dispatcher *d, uint64_t id) {
        LauncherMsg m = {.type = LMSG_ACK, .id = id};
        int r;

        r = launcher_link_send(d->link, &m);
        /* Not connected: the launcher sends the result again on reconnect and we ack it then. */
        if (r < 0 && r != -ENOTCONN)
                log_warning_errno(r, "Cannot ack the result of task %llu to the launcher: %m",
                                  (unsigned long long) id);
}

/* A write handed to the store, listed until the store answers it. */
static void write_link(Dispatcher *d, PendingWrite *w) {
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
static void alert_written(Dispatcher *d, uint64_t id, int error);

static void write_done(int error, void *userdata) {
        PendingWrite *w = userdata;
        Dispatcher *d = w->dispatcher;

        if (d) {
                write_unlink(d, w);
                if (error < 0)
                        log_warning_errno(error, "Store write for task %llu failed: %m",
                                          (unsigned long long) (w->ack_id ? w->ack_id : w->launch_id));
                else if (w->ack_id != 0)
                        /* The result is durable: the launcher may let go of it. */
                        send_ack(d, w->ack_id);
                if (w->launch_id != 0)
                        launch_written(d, w->launch_id, error);
                if (w->alert_id != 0)
                        alert_written(d, w->alert_id, error);
        }
        free(w);
}

/* Whether a launch waits for its "running" state to be committed. */
static bool launch_waits_for_write(const Dispatcher *d, uint64_t id) {
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
        w->ack_id = ack_id;
        w->launch_id = launch_id;
        r = store_update(d->store, t, write_done, w);
        if (r < 0) {
                /* Not acked: the launcher keeps the result and sends it again on the next connect. */
                log_error_errno(r, "Cannot write task %llu to the store: %m", (unsigned long long) t->id);
                free(w);
                return r;
        }
        write_link(d, w);
        return 0;
}

static void persist(Dispatcher *d, const TaskRecord *t, uint64_t ack_id) {
        if (!d->store) {
                if (ack_id != 0)
                        send_ack(d, ack_id);
                return;
        }
        (void) persist_and(d, t, ack_id, 0);
}

/* ---- alerts (on_failure) ---- */

/* The alert is durable: it may run. One that did not commit is taken back (nobody would know of it
 * after a restart, and it would run without a record in the store). */
static void alert_written(Dispatcher *d, uint64_t id, int error) {
        TaskRecord *t = ledger_get(d->ledger, id);

        if (error < 0 && t && t->state == TASK_QUEUED) {
                log_task(LOG_ERR, id, t->task, NULL, "Alert task %llu could not be stored; dropping it.",
                         (unsigned long long) id);
                (void) ledger_forget(d->ledger, t);
        }
        dispatcher_release(d, id);
        dispatcher_changed(d);
}

/* Queues alert (held until its insert commits, with a store). */
static int alert_persist(Dispatcher *d, TaskRecord *alert) {
        PendingWrite *w;
        int r;

        if (!d->store)
                return 0;
        r = dispatcher_hold(d, alert->id);
        if (r < 0)
                return r;
        w = calloc(1, sizeof(*w));
        if (!w) {
                dispatcher_release(d, alert->id);
                return -ENOMEM;
        }
        w->dispatcher = d;
        w->alert_id = alert->id;
        r = store_insert(d->store, alert, write_done, w);
        if (r < 0) {
                free(w);
                dispatcher_release(d, alert->id);
                return r;
        }
        write_link(d, w);
        return 0;
}

/* failed has failed for good: submits its on_failure task, if it has one. */
static void submit_alert(Dispatcher *d, const TaskRecord *failed) {
        const char *name = on_failure_task(d->cfg, record_def(d, failed), failed);
        _cleanup_free_ char *record = NULL;
        const TaskDef *def;
        uint64_t tasks = 0, bytes = 0;
        TaskRecord *alert = NULL;
        bool existing = false;
        char id[24];
        char *args[] = {id, NULL};
        size_t len = 0;
        int r;

        if (!name)
                return;
        def = config_find_task(d->cfg, name);
        if (!def) {
                /* Only a config that --check-config refuses gets here. */
                log_task(LOG_ERR, failed->id, failed->task, failed->unit,
                         "Task %llu failed; its on_failure task '%s' is not configured.",
                         (unsigned long long) failed->id, name);
                return;
        }
        /* A storm of failures must not queue alerts without end: they count as one submitter. */
        ledger_submitter_unfinished(d->ledger, ON_FAILURE_SUBMITTER, &tasks, &bytes);
        if (tasks >= d->cfg->max_queued_per_submitter) {
                log_task(LOG_WARNING, failed->id, failed->task, failed->unit,
                         "Task %llu failed; not submitting its alert '%s': %llu alerts are unfinished "
                         "(max_queued_per_submitter).",
                         (unsigned long long) failed->id, name, (unsigned long long) tasks);
                return;
        }
        record = on_failure_stdin(failed, &len);
        if (!record) {
                log_error_errno(ENOMEM, "Cannot submit the alert for task %llu: %m",
                                (unsigned long long) failed->id);
                return;
        }
        (void) snprintf(id, sizeof(id), "%llu", (unsigned long long) failed->id);
        r = ledger_submit(d->ledger,
                          &(TaskSubmission){.task = name,
                                            .args = args,
                                            .n_args = 1,
                                            .stdin_data = record,
                                            .stdin_len = len,
                                            .submitter = ON_FAILURE_SUBMITTER,
                                            .max_attempts = def->max_attempts},
                          now_usec(CLOCK_REALTIME), &alert, &existing);
        if (r >= 0)
                r = alert_persist(d, alert);
        if (r < 0) {
                log_task_internal(LOG_ERR, r, failed->id, failed->task, failed->unit,
                                  "Cannot submit the alert for task %llu: %m",
                                  (unsigned long long) failed->id);
                if (alert)
                        (void) ledger_forget(d->ledger, alert);
                return;
        }
        log_task(LOG_NOTICE, failed->id, failed->task, failed->unit,
                 "Task %llu failed for good; submitted alert task %llu (%s).",
                 (unsigned long long) failed->id, (unsigned long long) alert->id, name);
}

/* running -> finished (or queued again for another attempt). ack: the launcher holds this result. */
static void finish_run(Dispatcher *d, TaskRecord *t, const RunResult *result, bool ack) {
        const TaskDef *def = record_def(d, t);
        uint64_t backoff = def ? config_task_backoff_sec(def, t->attempts) : 0;
        uint64_t id = t->id;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        running_remove(d, t);
        stop_forget(d, id);

        if (streq(result->result, "lost"))
                log_task_event(LOG_WARNING, MESSAGE_ID_TASK_LOST, id, t->task, t->unit,
                               "Task %llu (%s) attempt %u was lost: %s.", (unsigned long long) id,
                               record_name(t), t->attempts, result->error[0] ? result->error : "no result");
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
                         (unsigned long long) id, record_name(t), t->attempts, result->result,
                         result->error[0] ? ": " : "", result->error, (unsigned long long) backoff);
        else if (t->state == TASK_FAILED)
                log_task_event(LOG_WARNING, MESSAGE_ID_TASK_FAILED, id, t->task, t->unit,
                               "Task %llu (%s) failed for good after %u attempt(s): result '%s'%s%s.",
                               (unsigned long long) id, record_name(t), t->attempts, result->result,
                               result->error[0] ? ", " : "", result->error);
        else
                log_task(LOG_INFO, id, t->task, t->unit,
                         "Task %llu (%s) %s after %u attempt(s): result '%s'%s%s.", (unsigned long long) id,
                         record_name(t), task_state_to_string(t->state), t->attempts, result->result,
                         result->error[0] ? ", " : "", result->error);

        persist(d, t, ack ? id : 0);
        if (t->state == TASK_FAILED)
                submit_alert(d, t);
        dispatcher_kick(d);
        dispatcher_changed(d);
}

static void finish_without_run(Dispatcher *d, TaskRecord *t, const char *result, const char *fmt, ...)
        _printf_(4, 5);

static void finish_without_run(Dispatcher *d, TaskRecord *t, const char *result, const char *fmt, ...) {
        RunResult r = {};
        va_list ap;

        snprintf(r.result, sizeof(r.result), "%s", result);
        va_start(ap, fmt);
        (void) vsnprintf(r.error, sizeof(r.error), fmt, ap);
        va_end(ap);
        finish_run(d, t, &r, false);
}

/* Whether t's task name lets a run of it start now: not paused, below its concurrency limit. */
static bool name_can_start(const TaskRecord *t, void *userdata) {
        Dispatcher *d = userdata;
        const TaskDef *def;

        /* Asked about the best record of each task name only: a paused name with a long queue costs
         * one lookup per pass, however many records wait behind it. */
        if (ledger_task_paused(d->ledger, t->task))
                return false;
        def = record_def(d, t);
        if (!def)
                return true; /* picked so that it can be failed, below */
        return def->concurrency == 0 || count_get(d, record_key(t)) < def->concurrency;
}

static bool can_start(const TaskRecord *t, void *userdata) {
        Dispatcher *d = userdata;

        return !held(d, t->id) && name_can_start(t, d);
}

/* A record left the queue for a run: a read of the window may bring something new again, and must
 * when this was the last record in memory of a name the last read left out (its next rows). */
static void window_took(Dispatcher *d, const TaskRecord *t) {
        d->refill_idle = false;
        if (t->task && paused_tasks_find(&d->window_skip, t->task) &&
            ledger_queued_of_name(d->ledger, t) == 0 && !ledger_task_paused(d->ledger, t->task)) {
                (void) paused_tasks_remove(&d->window_skip, t->task);
                d->refill_forced = true;
        }
}

static void send_launch(Dispatcher *d, TaskRecord *t);

static void launch(Dispatcher *d, TaskRecord *t, uint64_t now) {
        const TaskDef *def = record_def(d, t);
        int r;

        /* Queued since it was due: submitted, backed off, or retried. */
        metrics_run_started(d->metrics, t->task, now > t->run_after ? now - t->run_after : 0);
        r = ledger_mark_running(d->ledger, t, now);
        if (r < 0) {
                log_task(LOG_ERR, t->id, t->task, NULL, "Cannot start task %llu: %s",
                         (unsigned long long) t->id, strerror(-r));
                return;
        }
        r = running_add(d, t);
        if (r < 0)
                log_error_errno(r, "Cannot count running task %llu: %m", (unsigned long long) t->id);
        window_took(d, t);

        if (!def) {
                /* Removed from the config by a reload after it was queued: no attempt can succeed. */
                (void) ledger_mark_last_attempt(d->ledger, t);
                if (t->task)
                        finish_without_run(d, t, "rejected", "task '%s' is no longer configured", t->task);
                else
                        finish_without_run(d, t, "rejected", "command is no longer on the commands list");
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
                finish_without_run(d, t, "lost", "could not send the launch to the launcher: %s",
                                   strerror(-r));
                return;
        }

        log_task(LOG_DEBUG, t->id, t->task, NULL, "Launching task %llu (%s), attempt %u of %u.",
                 (unsigned long long) t->id, record_name(t), t->attempts, t->max_attempts);
}

static void launch_written(Dispatcher *d, uint64_t id, int error) {
        TaskRecord *t = ledger_get(d->ledger, id);

        /* Meanwhile the run may have been settled otherwise (lost at a reconnect, forgotten). */
        if (!t || t->state != TASK_RUNNING || !t->launch_pending)
                return;
        if (stop_find(d, id)) {
                finish_without_run(d, t, "cancelled", "cancelled before it started");
                return;
        }
        if (error < 0)
                log_task(LOG_WARNING, id, t->task, NULL,
                         "Task %llu: its start could not be recorded; starting it anyway.",
                         (unsigned long long) id);
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

/* --- the queue's window (MySQL store) --- */

typedef struct Refill {
        Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
} Refill;

static int on_refill_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Dispatcher *d = userdata;

        d->refill_retry = sd_event_source_disable_unref(d->refill_retry);
        dispatcher_kick(d);
        return 0;
}

static void refill_done(StoreRead *result, void *userdata) {
        Refill *f = userdata;
        Dispatcher *d = f->dispatcher;
        size_t adopted = 0;

        free(f);
        if (!d)
                return;
        d->refill = NULL;
        if (result->error < 0) {
                /* Try again in a second (the store says when the database is back). */
                if (!d->refill_retry)
                        (void) sd_event_add_time_relative(d->event, &d->refill_retry, CLOCK_MONOTONIC,
                                                          USEC_PER_SEC, 0, on_refill_retry, d);
                return;
        }
        for (size_t i = 0; i < result->n_records; i++) {
                TaskRecord *t = result->records[i];

                if (ledger_get(d->ledger, t->id) || ledger_adopt(d->ledger, t) < 0)
                        continue; /* in memory already: the ledger's is the newer */
                result->records[i] = NULL;
                adopted++;
        }
        /* A full window may have left rows behind; a short one read every queued row, unless rows were
         * queued again in the database while it was in flight (refill_forced: read again). */
        d->queue_more = result->n_records >= STORE_QUEUE_WINDOW || d->refill_forced;
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

        if (name_can_start(t, c->dispatcher))
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
static void queue_refill(Dispatcher *d) {
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
        ledger_count_queued(d->ledger, refill_counts, &count, &able, &waiting);
        if (r < 0 || (able >= STORE_QUEUE_WINDOW / 2 && !d->refill_forced)) {
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
        r = store_read_queue(d->store, STORE_QUEUE_WINDOW, &skip, refill_done, d->refill);
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

void dispatcher_paused_changed(Dispatcher *d) {
        /* Paused: the window is read again without the name's rows. Resumed: with them, which the
         * window left out while it was paused. */
        dispatcher_queue_grew(d);
}

/* A failed record dropped past max_records is the one an admin might still have wanted: say which. */
static void on_record_dropped(const TaskRecord *t, void *userdata) {
        if (t->state == TASK_FAILED)
                log_task(LOG_NOTICE, t->id, t->task, NULL,
                         "Task %llu (failed) dropped from memory: more than max_records finished records.",
                         (unsigned long long) t->id);
}

static void queue_refill(Dispatcher *d);

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
                while (d->n_running < d->cfg->max_running && launcher_link_can_launch(d->link)) {
                        TaskRecord *t;

                        /* Bounded per pass so a huge backlog cannot hold the loop; the rest follows. */
                        if (launched >= RUNNING_MAX) {
                                dispatcher_kick(d);
                                break;
                        }
                        t = ledger_next_runnable(d->ledger, now, can_start, d);
                        if (!t)
                                break;
                        launch(d, t, now);
                        launched++;
                        changed = true;
                }
        }
        /* After the launches: a name they brought to its concurrency limit no longer counts as able
         * to start. */
        queue_refill(d);
        arm_wakeup(d);
        if (changed)
                dispatcher_changed(d);
        return 0;
}

static int on_wakeup(sd_event_source *s, uint64_t usec, void *userdata) {
        dispatcher_kick(userdata);
        return 0;
}

static void purge_step(Dispatcher *d);

/* A step of the store's purge is committed: another if it deleted a full batch (rows are left). */
static void purge_step_done(int error, uint64_t rows, void *userdata) {
        PurgeRun *p = userdata;
        Dispatcher *d = p->dispatcher;

        if (!d) { /* the dispatcher is gone */
                free(p);
                return;
        }
        d->purge_run = NULL;
        if (error < 0 && error != -ECANCELED) /* cancelled: the store is closing */
                log_warning_errno(error, "Purging old records from the store failed: %m");
        p->rows += rows;
        if (error >= 0 && rows >= STORE_SQL_PURGE_ROWS) {
                d->purge_run = p;
                purge_step(d);
                return;
        }
        if (p->rows > 0)
                log_info("Purged %llu finished row(s) older than %u day(s) from the store, in %u step(s).",
                         (unsigned long long) p->rows, d->cfg->retention_days, p->steps);
        free(p);
}

static void purge_step(Dispatcher *d) {
        PurgeRun *p = d->purge_run;
        int r;

        p->steps++;
        r = store_purge(d->store, p->before, purge_step_done, p);
        if (r < 0) {
                log_warning_errno(r, "Cannot purge old records from the store: %m");
                d->purge_run = NULL;
                free(p);
        }
}

static int on_purge(sd_event_source *s, uint64_t usec, void *userdata) {
        Dispatcher *d = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        uint64_t keep = (uint64_t) d->cfg->retention_days * 24 * 3600 * USEC_PER_SEC;
        uint64_t before = now > keep ? now - keep : 0;
        size_t n;

        n = ledger_purge(d->ledger, before);
        if (n > 0) {
                log_info("Purged %zu finished record(s) older than %u day(s).", n, d->cfg->retention_days);
                dispatcher_changed(d);
        }
        /* In the background, a bounded batch a step; a run still going (a huge backlog) goes on. */
        if (d->store && !d->purge_run) {
                d->purge_run = calloc(1, sizeof(PurgeRun));
                if (d->purge_run) {
                        d->purge_run->dispatcher = d;
                        d->purge_run->before = before;
                        purge_step(d);
                }
        }

        (void) sd_event_source_set_time_relative(s, PURGE_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
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
                int r = running_add(d, out[i]);
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

        r = sd_event_add_defer(event, &d->pass, on_pass, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->pass, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(event, &d->wakeup, CLOCK_REALTIME, 0, USEC_PER_MSEC, on_wakeup, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->wakeup, SD_EVENT_OFF);
        if (r >= 0)
                /* First purge shortly after start (a daemon that was down for days catches up), then
                 * hourly. */
                r = sd_event_add_time_relative(event, &d->purge, CLOCK_MONOTONIC, 2 * USEC_PER_SEC,
                                               USEC_PER_SEC, on_purge, d);
        if (r >= 0)
                r = count_existing_runs(d);
        if (r < 0) {
                dispatcher_free(d);
                return r;
        }
        /* Records loaded at start may be past max_records: the first pass trims them. The store's queue
         * may go on past the window loaded at start. */
        d->queue_more = store != NULL;
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
        if (d->purge_run)
                d->purge_run->dispatcher = NULL;
        if (d->refill)
                d->refill->dispatcher = NULL;
        sd_event_source_disable_unref(d->refill_retry);
        paused_tasks_done(&d->window_skip);
        sd_event_source_disable_unref(d->pass);
        sd_event_source_disable_unref(d->wakeup);
        sd_event_source_disable_unref(d->purge);
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
                 (unsigned long long) t->id, record_name(t), t->unit ? t->unit : "?");
        persist(d, t, 0);
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
                send_ack(d, m->id);
                return;
        }
        /* The launcher answered for the run: no start is pending, whatever recording the result does. */
        (void) ledger_mark_started(d->ledger, t, NULL);
        finish_run(d, t, &m->result, true);
}

static void handle_rejected(Dispatcher *d, const LauncherMsg *m) {
        TaskRecord *t = ledger_get(d->ledger, m->id);

        if (!t || t->state != TASK_RUNNING) {
                log_debug("Launcher rejected task %llu, which is not running here; ignoring.",
                          (unsigned long long) m->id);
                return;
        }
        (void) ledger_mark_started(d->ledger, t, NULL);
        finish_without_run(d, t, "rejected", "%s", m->error ? m->error : "refused by the launcher");
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
                (void) running_add(d, t);
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
        persist(d, t, 0);
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

                if (t->state != TASK_RUNNING || was_reported(d, t->id) || launch_waits_for_write(d, t->id))
                        continue;
                (void) ledger_mark_started(d->ledger, t, NULL);
                finish_without_run(d, t, "lost", "the run was lost (the launcher does not know it)");
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
        s = stop_find(d, t->id);
        if (!s) {
                StopRequest *p = realloc(d->stops, (d->n_stops + 1) * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                d->stops = p;
                s = &d->stops[d->n_stops++];
                *s = (StopRequest){.id = t->id};
                log_task(LOG_INFO, t->id, t->task, t->unit, "Stopping task %llu (%s): cancelled.",
                         (unsigned long long) t->id, record_name(t));
        }
        /* Sent once per run; while the link is down (or being reconciled) it goes out when it is ready. */
        if (!s->sent && d->ready) {
                LauncherMsg m = {.type = LMSG_STOP, .id = t->id};
                if (launcher_link_send(d->link, &m) >= 0)
                        s->sent = true;
        }
        return 0;
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
