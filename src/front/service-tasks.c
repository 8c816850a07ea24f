/* SPDX-License-Identifier: MIT */
/*
 * The operations on tasks that exist already: status, wait, cancel, retry (one task, or every task in
 * a state) and forget, each after service_lookup_owned() or service_require_admin(), with their store
 * writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/service-internal.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

/* {"ok":true} with t's record; with the store, the node that holds or ran it ("node"): the row's
 * for a record read (response_ok_task() has it), this host's for one of its own that has run or runs. */
static cJSON *ok_task(const Service *s, const TaskRecord *t) {
        cJSON *obj = response_ok_task(t);
        bool ran_here = !t->node && s->store && (t->state == TASK_RUNNING || t->started_at);

        if (obj && ((ran_here && !cJSON_AddStringToObject(obj, "node", s->cfg->node)) ||
                    service_add_paused_flag(s, obj, t) < 0)) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return obj;
}

/* --- cancel, retry and forget of a row this host does not hold --- */

typedef struct RemoteChange {
        Service *s;
        StoreRemote change;
        char *by;        /* who asked, for the log */
        char *submitter; /* the row's, and its stdin: for the submitter's unfinished count */
        uint64_t stdin_bytes;
} RemoteChange;

static void remote_change_free(void *p) {
        RemoteChange *x = p;

        free(x->submitter);
        free(x->by);
        free(x);
}

/* The submitter's unfinished count follows a row this host changed without holding it (its start
 * totals counted every unfinished row; see ledger_count_rows()). */
static void count_remote_change(RemoteChange *x) {
        const StoreRemote *ch = &x->change;
        bool was_unfinished = ch->state == TASK_QUEUED || ch->state == TASK_RUNNING;
        int delta = 0;

        if (ch->outcome != STORE_REMOTE_DONE || !x->submitter || ch->change == STORE_REMOTE_RETRY_HERE)
                return; /* a retry here is counted as the ledger queues the record again */
        if (ch->change == STORE_REMOTE_RETRY)
                delta = 1;
        else if (was_unfinished)
                delta = -1; /* cancelled, or forgotten while queued */
        if (delta != 0)
                ledger_row_unfinished(x->s->ledger, x->submitter, delta, x->stdin_bytes);
}

/* A retry of a record this host holds, written to its row: the ledger queues the record again too
 * (unless a claim brought the row back meanwhile), or, when the row had changed on another host,
 * lets go of its stale copy, so that the next look reads the row. */
static void retried_here(RemoteChange *x) {
        const StoreRemote *ch = &x->change;
        TaskRecord *t = ledger_get(x->s->ledger, ch->id);

        if (ch->outcome != STORE_REMOTE_DONE) {
                if (t && task_state_is_final(t->state))
                        (void) ledger_drop(x->s->ledger, t);
                return;
        }
        if (t && task_state_is_final(t->state) &&
            ledger_retry(x->s->ledger, t, now_usec(CLOCK_REALTIME)) >= 0)
                dispatcher_kick(x->s->dispatcher);
        else if (!t && x->submitter)
                ledger_row_unfinished(x->s->ledger, x->submitter, 1, x->stdin_bytes);
        service_changed(x->s);
}

/* A forget of a finished record this host holds, made in the database on the condition that the row
 * is as the record has it: the ledger lets go of the record either way. Deleted, the record is
 * forgotten; otherwise the row is gone or another host ran it again since, and the stale copy is let
 * go, so that the next look reads the row. */
static void forgotten_here(RemoteChange *x) {
        TaskRecord *t = ledger_get(x->s->ledger, x->change.id);

        if (!t || !task_state_is_final(t->state))
                return;
        if (x->change.outcome == STORE_REMOTE_DONE)
                (void) ledger_forget(x->s->ledger, t);
        else
                (void) ledger_drop(x->s->ledger, t);
        service_changed(x->s);
}

static void remote_changed(ServiceCall *c, StoreRead *result, void *userdata) {
        RemoteChange *x = userdata;
        const StoreRemote *ch = &x->change;
        unsigned long long id = ch->id;
        ServiceAnswer a = {};
        char message[160];
        cJSON *obj = NULL;

        if (result->error < 0) {
                service_answer_call_error(c, ERR_UNAVAILABLE,
                                          "the store is unavailable; nothing was changed");
                return;
        }
        count_remote_change(x);
        if (ch->change == STORE_REMOTE_RETRY_HERE)
                retried_here(x);
        else if (ch->change == STORE_REMOTE_FORGET_HERE)
                forgotten_here(x);
        if (ch->state_now < 0 && ch->outcome != STORE_REMOTE_DONE) {
                snprintf(message, sizeof(message), "no task with id %llu", id);
                service_answer_call_error(c, ERR_NOT_FOUND, message);
                return;
        }
        if (ch->change != STORE_REMOTE_CANCEL && ch->outcome != STORE_REMOTE_DONE) {
                snprintf(message, sizeof(message), "task %llu is %s now (another node changed it); not %s",
                         id, task_state_to_string(ch->state_now),
                         ch->change == STORE_REMOTE_FORGET || ch->change == STORE_REMOTE_FORGET_HERE
                                 ? "forgotten"
                                 : "queued again");
                service_answer_call_error(c, ERR_BAD_REQUEST, message);
                return;
        }
        switch (ch->change) {
        case STORE_REMOTE_CANCEL:
                obj = service_ok_id_state(ch->id, ch->state_now);
                if (obj && ch->outcome == STORE_REMOTE_REQUESTED &&
                    !cJSON_AddTrueToObject(obj, "stopping")) {
                        cJSON_Delete(obj);
                        obj = NULL;
                }
                if (ch->outcome == STORE_REMOTE_DONE)
                        log_task(LOG_INFO, id, NULL, NULL,
                                 "Task %llu cancelled in the database by %s before it ran.", id, x->by);
                else if (ch->outcome == STORE_REMOTE_REQUESTED)
                        log_task(LOG_INFO, id, NULL, NULL,
                                 "Task %llu: its node was asked by %s to cancel it (at its next heartbeat).",
                                 id, x->by);
                break;
        case STORE_REMOTE_RETRY:
                log_task(LOG_INFO, id, NULL, NULL, "Task %llu queued again in the database by %s.", id,
                         x->by);
                dispatcher_queue_grew(x->s->dispatcher);
                obj = service_ok_id_state(ch->id, TASK_QUEUED);
                break;
        case STORE_REMOTE_RETRY_HERE:
                log_task(LOG_INFO, id, NULL, NULL, "Task %llu queued again by %s.", id, x->by);
                obj = service_ok_id_state(ch->id, TASK_QUEUED);
                break;
        case STORE_REMOTE_FORGET:
        case STORE_REMOTE_FORGET_HERE:
                log_task(LOG_INFO, id, NULL, NULL, "Task %llu forgotten by %s.", id, x->by);
                obj = service_ok_id_state(ch->id, -1);
                break;
        }
        (void) service_answer_obj(&a, obj);
        service_call_answer(c, a.line, a.len);
}

/* Changes t, read from a row this host does not hold, in the database only (store_change_remote()). */
static int change_remote(Service *s, const Identity *id, ServiceAnswer *a, const TaskRecord *t,
                         StoreRemoteChange change) {
        RemoteChange *x = calloc(1, sizeof(*x));
        ServiceCall *c;

        if (!x)
                return -ENOMEM;
        *x = (RemoteChange){
                .s = s,
                .change = {.change = change,
                           .id = t->id,
                           .state = t->state,
                           .attempts = t->attempts,
                           .finished_at = t->finished_at},
                .submitter = t->submitter ? strdup(t->submitter) : NULL,
                .stdin_bytes = t->stdin_len,
                .by = strdup(id->submitter),
        };
        if (!x->by) {
                remote_change_free(x);
                return -ENOMEM;
        }
        c = service_call_read(&s->calls, a, remote_changed, x, remote_change_free);
        if (!c)
                return -ENOMEM;
        service_call_read_changes(c);
        return service_read_asked(a, c,
                                  store_change_remote(s->store, &x->change, service_call_read_done, c));
}

static int write_update_one(ServiceCall *c, void *ud) {
        return service_call_store_write(c, store_update, ud);
}

static int write_delete_one(ServiceCall *c, void *ud) {
        return service_call_store_delete(c, *(const uint64_t *) ud);
}

int service_tasks_status(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        TaskRecord *t = NULL;
        int r = service_lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        return service_answer_obj(a, ok_task(s, t));
}

int service_tasks_wait(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        uint64_t timeout;
        TaskRecord *t = NULL;
        int r = service_lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        if (task_state_is_final(t->state) || (req->has_timeout && req->timeout_usec == 0) ||
            s->shutting_down)
                return service_answer_obj(a, ok_task(s, t));
        /* The client has not seen the progress there is now (wait --progress). */
        if (req->has_progress_seen && !streq_ptr(t->progress, req->progress_seen))
                return service_answer_obj(a, response_ok_task(t));

        /* No timeout given: wait as long as a wait may. */
        timeout = req->has_timeout ? req->timeout_usec : WAIT_SEC_MAX * USEC_PER_SEC;
        /* Another node runs it (or will): its row is polled; its progress is that node's to see. */
        if (t == a->remote)
                return service_call_wait_remote(&s->calls, t, timeout, a);
        if (req->has_progress_seen)
                return service_call_wait_progress(&s->calls, t, timeout, a);
        return service_call_wait(&s->calls, t, timeout, a);
}

int service_tasks_cancel(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        TaskRecord *t = NULL;
        cJSON *obj;
        int r = service_lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        if (t == a->remote && !task_state_is_final(t->state))
                return change_remote(s, id, a, t, STORE_REMOTE_CANCEL);

        switch (t->state) {
        case TASK_QUEUED:
                r = ledger_cancel(s->ledger, t, now_usec(CLOCK_REALTIME));
                if (r < 0)
                        return service_answer_error(a, ERR_INTERNAL, "cannot cancel task %llu: %s",
                                                    (unsigned long long) t->id, strerror(-r));
                log_task(LOG_INFO, t->id, t->task, NULL, "Task %llu cancelled by %s before it ran.",
                         (unsigned long long) t->id, id->submitter);
                dispatcher_kick(s->dispatcher); /* one more finished record: max_records */
                service_changed(s);
                r = service_answer_obj(a, service_ok_id_state(t->id, TASK_CANCELLED));
                if (r < 0)
                        return r;
                return service_call_after_writes(&s->calls, a, 0, write_update_one, t);

        case TASK_RUNNING:
                r = dispatcher_stop_task(s->dispatcher, t);
                if (r < 0)
                        return service_answer_error(a, ERR_INTERNAL, "cannot stop task %llu: %s",
                                                    (unsigned long long) t->id, strerror(-r));
                obj = service_ok_id_state(t->id, TASK_RUNNING);
                if (obj && !cJSON_AddTrueToObject(obj, "stopping")) {
                        cJSON_Delete(obj);
                        obj = NULL;
                }
                return service_answer_obj(a, obj);

        default:
                return service_answer_obj(a, service_ok_id_state(t->id, t->state));
        }
}

typedef struct RetryBatch {
        TaskRecord **tasks;
        size_t n;
} RetryBatch;

static int write_retry_batch(ServiceCall *c, void *ud) {
        const RetryBatch *b = ud;

        for (size_t i = 0; i < b->n; i++) {
                int r = service_call_store_write(c, store_update, b->tasks[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* retry {"id":N}: one failed or cancelled task queued again. */
static int retry_one(Service *s, const Identity *id, const Request *req, ServiceAnswer *a, uint64_t now) {
        TaskRecord *t = service_get(s, a, req->id);
        int r;

        if (!t && service_must_read_through(s, a))
                return service_read_through(s, id, req, a, req->id, NULL);
        if (!t)
                return service_answer_error(a, ERR_NOT_FOUND, "no task with id %llu",
                                            (unsigned long long) req->id);
        if (t == a->remote && (t->state == TASK_FAILED || t->state == TASK_CANCELLED))
                return change_remote(s, id, a, t, STORE_REMOTE_RETRY);
        /* With the store, a finished record in memory may be stale: another host may have queued its
         * row again since (and run it). The retry is written on the condition that the row is as
         * this record has it, as for a row another host holds; the ledger follows once it is. */
        if (s->store && (t->state == TASK_FAILED || t->state == TASK_CANCELLED))
                return change_remote(s, id, a, t, STORE_REMOTE_RETRY_HERE);
        r = t == a->remote ? -EINVAL : ledger_retry(s->ledger, t, now);
        if (r == -EINVAL)
                return service_answer_error(a, ERR_BAD_REQUEST,
                                            "task %llu is %s; only failed or cancelled tasks can be retried",
                                            (unsigned long long) t->id, task_state_to_string(t->state));
        if (r < 0)
                return service_answer_error(a, ERR_INTERNAL, "cannot retry task %llu: %s",
                                            (unsigned long long) t->id, strerror(-r));
        log_task(LOG_INFO, t->id, t->task, NULL, "Task %llu queued again by %s.", (unsigned long long) t->id,
                 id->submitter);
        dispatcher_kick(s->dispatcher);
        service_changed(s);
        r = service_answer_obj(a, service_ok_id_state(t->id, TASK_QUEUED));
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_update_one, t);
}

typedef struct RetryRows {
        Service *s;
        size_t in_memory; /* retried in the ledger */
} RetryRows;

static void retry_rows_done(ServiceCall *c, StoreRead *result, void *userdata) {
        RetryRows *x = userdata;
        ServiceAnswer a = {};
        cJSON *obj;

        if (result->error < 0) {
                service_answer_call_error(
                        c, ERR_UNAVAILABLE,
                        "the store is unavailable; the tasks not in memory were not queued again");
                return;
        }
        if (result->rows > 0) {
                log_info("%llu more task(s) queued again in the store.", (unsigned long long) result->rows);
                dispatcher_queue_grew(x->s->dispatcher);
        }
        obj = response_ok();
        if (obj && !cJSON_AddNumberToObject(obj, "retried", (double) (x->in_memory + result->rows))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        (void) service_answer_obj(&a, obj);
        service_call_answer(c, a.line, a.len);
}

/* With the store: the rows of the state that are not in memory are queued again by one statement,
 * after the writes of those retried in memory (which it then no longer finds); the answer counts both.
 * The refill of the queue's window brings them to the ledger. */
static int retry_state_rows(Service *s, const Request *req, ServiceAnswer *a, uint64_t now,
                            TaskRecord **tasks, size_t done) {
        RetryRows *x;
        ServiceCall *c;
        int r;

        for (size_t i = 0; i < done; i++)
                (void) store_update(s->store, tasks[i], NULL, NULL);
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        *x = (RetryRows){.s = s, .in_memory = done};
        c = service_call_read(&s->calls, a, retry_rows_done, x, free);
        if (!c)
                return -ENOMEM;
        r = store_retry_state(s->store, req->state, now, service_call_read_done, c);
        return service_read_asked(a, c, r);
}

/* retry {"state":"failed"} (or "cancelled"): every task in that state queued again. */
static int retry_state(Service *s, const Identity *id, const Request *req, ServiceAnswer *a, uint64_t now) {
        _cleanup_free_ TaskRecord **tasks = NULL;
        LedgerStats st;
        size_t n, done = 0;
        uint64_t count;
        cJSON *obj;
        int r;

        if (req->state != TASK_FAILED && req->state != TASK_CANCELLED)
                return service_answer_error(a, ERR_BAD_REQUEST,
                                            "only failed or cancelled tasks can be retried");
        ledger_stats(s->ledger, &st);
        count = req->state == TASK_FAILED ? st.failed : st.cancelled;
        if (count > 0) {
                tasks = calloc(count, sizeof(*tasks));
                if (!tasks)
                        return -ENOMEM;
        }
        n = count > 0 ? ledger_list(s->ledger, req->state, count, tasks) : 0;
        for (size_t i = 0; i < n; i++)
                if (ledger_retry(s->ledger, tasks[i], now) >= 0)
                        tasks[done++] = tasks[i];
        if (done > 0) {
                log_info("%zu %s task(s) queued again by %s.", done, task_state_to_string(req->state),
                         id->submitter);
                dispatcher_kick(s->dispatcher);
                service_changed(s);
        }
        if (s->store)
                return retry_state_rows(s, req, a, now, tasks, done);
        obj = response_ok();
        if (obj && !cJSON_AddNumberToObject(obj, "retried", (double) done)) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        r = service_answer_obj(a, obj);
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_retry_batch, &(RetryBatch){tasks, done});
}

int service_tasks_retry(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (req->has_id)
                return retry_one(s, id, req, a, now_usec(CLOCK_REALTIME));
        if (req->has_state)
                return retry_state(s, id, req, a, now_usec(CLOCK_REALTIME));
        return service_answer_error(a, ERR_BAD_REQUEST, "retry needs \"id\" or \"state\"");
}

int service_tasks_forget(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        TaskRecord *t;
        uint64_t task_id = req->id;
        cJSON *obj;
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        t = service_get(s, a, task_id);
        if ((!t && service_must_read_through(s, a)) || (t && service_copy_may_be_stale(s, a, t)))
                return service_read_through(s, id, req, a, task_id, NULL);
        if (!t)
                return service_answer_error(a, ERR_NOT_FOUND, "no task with id %llu",
                                            (unsigned long long) task_id);
        if (t == a->remote && t->state == TASK_QUEUED && t->lease_live)
                return service_answer_error(a, ERR_BAD_REQUEST,
                                            "task %llu is queued on node %s; cancel it first",
                                            (unsigned long long) task_id, t->node ? t->node : "?");
        if (t == a->remote && t->state != TASK_RUNNING)
                return change_remote(s, id, a, t, STORE_REMOTE_FORGET);
        /* With the store, as for a retry: the row is deleted on the condition that it is as this
         * finished record has it, so a forget never deletes a run another host made of it since. */
        if (s->store && task_state_is_final(t->state))
                return change_remote(s, id, a, t, STORE_REMOTE_FORGET_HERE);
        r = t == a->remote ? -EBUSY : ledger_forget(s->ledger, t);
        if (r == -EBUSY)
                return service_answer_error(a, ERR_BAD_REQUEST, "task %llu is running; cancel it first",
                                            (unsigned long long) task_id);
        if (r < 0)
                return service_answer_error(a, ERR_INTERNAL, "cannot forget task %llu: %s",
                                            (unsigned long long) task_id, strerror(-r));
        log_task(LOG_INFO, task_id, NULL, NULL, "Task %llu forgotten by %s.", (unsigned long long) task_id,
                 id->submitter);
        service_changed(s);

        obj = response_ok();
        if (obj && !cJSON_AddNumberToObject(obj, "id", (double) task_id)) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        r = service_answer_obj(a, obj);
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_delete_one, &task_id);
}
