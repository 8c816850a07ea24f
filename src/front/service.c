/* SPDX-License-Identifier: MIT */
/*
 * The service: each operation of the client protocol against the config, the ledger and the
 * dispatcher, with the peer's rights checked. Answers that come later are calls (service-call.c); the
 * reload round is service-reload.c.
 *
 * One file a little over 800 lines, on purpose: it is the table of operations, and every operation
 * checks the peer and builds its answer with the same few private helpers (answer_error(),
 * require_admin(), lookup_owned()); splitting it by operation would make those helpers an interface
 * that any front module could call, which is what keeps authorization in one place.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/seed-refusals.h"
#include "front/service-call.h"
#include "front/service-reload.h"
#include "front/service.h"
#include "front/utf8.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

#ifndef ASYNCTASK_VERSION
#define ASYNCTASK_VERSION "0.1.0"
#endif

struct Service {
        sd_event *event;
        Config *cfg;
        Ledger *ledger;
        Store *store;
        Dispatcher *dispatcher;
        LauncherLink *link;
        ServiceHooks hooks;
        bool shutting_down;

        ServiceCalls calls;
        ServiceReload *reload;
        SeedRefusals *seed_refusals;
        Metrics *metrics; /* borrowed; NULL: not counted */
};

static void service_changed(Service *s) {
        if (s->hooks.changed)
                s->hooks.changed(s->hooks.userdata);
}

/* --- answers --- */

static int answer_error(ServiceAnswer *a, ErrorCode code, const char *fmt, ...) _printf_(3, 4);

static int answer_error(ServiceAnswer *a, ErrorCode code, const char *fmt, ...) {
        ErrorReply e = {.code = code};
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        a->refused = code;
        a->line = response_error(&e, &a->len);
        return a->line ? 0 : -ENOMEM;
}

static int answer_obj(ServiceAnswer *a, cJSON *obj) {
        if (!obj)
                return -ENOMEM;
        a->line = response_finish(obj, &a->len);
        return a->line ? 0 : -ENOMEM;
}

/* {"ok":true,"id":N,"state":"..."} plus optional extras. */
static cJSON *ok_id_state(uint64_t id, TaskState state) {
        cJSON *obj = response_ok();

        if (!obj)
                return NULL;
        if (!cJSON_AddNumberToObject(obj, "id", (double) id) ||
            (state >= 0 && !cJSON_AddStringToObject(obj, "state", task_state_to_string(state)))) {
                cJSON_Delete(obj);
                return NULL;
        }
        return obj;
}

/* A queued record whose task name is paused says so ("paused": true): it waits for a resume. */
static int add_paused_flag(const Service *s, cJSON *obj, const TaskRecord *t) {
        if (t->state != TASK_QUEUED || !ledger_task_paused(s->ledger, t->task))
                return 0;
        return cJSON_AddTrueToObject(obj, "paused") ? 0 : -ENOMEM;
}

/* {"ok":true} with t's record. */
static cJSON *ok_task(const Service *s, const TaskRecord *t) {
        cJSON *obj = response_ok_task(t);

        if (obj && add_paused_flag(s, obj, t) < 0) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return obj;
}

/* Client strings echoed in messages: the valid UTF-8 prefix, cut at 64 bytes. */
static const char *quoted(const char *s, char *buf, size_t size) {
        size_t len = strlen(s), n = utf8_valid_len(s, len);
        const size_t max = 64;

        if (n > max)
                n = utf8_valid_len(s, max);
        if (n >= size)
                n = utf8_valid_len(s, size - 4);
        memcpy(buf, s, n);
        if (n < len)
                memcpy(buf + n, "...", 4);
        else
                buf[n] = '\0';
        return buf;
}

/* --- store writes --- */

static void log_accepted(const TaskRecord *t) {
        log_task(LOG_INFO, t->id, t->task, NULL, "Accepted task %llu (%s) from %s%s.",
                 (unsigned long long) t->id, t->task ? t->task : "command", t->submitter,
                 t->key ? ", with a key" : "");
}

/* The store writes of a submission have completed (error < 0: one failed). It may start now; or it
 * is taken back, so that "unavailable" means nothing was accepted. */
static void submission_settled(uint64_t submitted_id, int error, void *userdata) {
        Service *s = userdata;
        TaskRecord *t = ledger_get(s->ledger, submitted_id);

        dispatcher_release(s->dispatcher, submitted_id);
        if (error < 0 && t && t->state == TASK_QUEUED) {
                log_task(LOG_WARNING, t->id, t->task, NULL,
                         "Task %llu could not be stored; it was not accepted.", (unsigned long long) t->id);
                (void) ledger_forget(s->ledger, t);
                /* Its COMMIT may have landed all the same (the connection was lost before the answer):
                 * the row goes too, once the database answers, so that "unavailable" holds and the
                 * row is neither counted nor run. */
                if (s->store)
                        (void) store_delete(s->store, submitted_id, NULL, NULL);
                service_changed(s);
        } else if (error >= 0 && t)
                log_accepted(t);
}

static int write_update_one(ServiceCall *c, void *ud) {
        return service_call_store_write(c, store_update, ud);
}

static int write_insert_one(ServiceCall *c, void *ud) {
        return service_call_store_write(c, store_insert, ud);
}

static int write_delete_one(ServiceCall *c, void *ud) {
        return service_call_store_delete(c, *(const uint64_t *) ud);
}

/* --- reading through the store ---
 *
 * With the MySQL store the ledger holds running records, a window of the queue and recently finished
 * records; the rest is in the database. A request about a record not in memory reads it (by id, or a
 * submission's idempotency key) into the ledger and runs again: every operation then works on the
 * ledger as before, and the record leaves memory again with the other finished ones (max_records).
 */

static int service_dispatch(Service *s, const Identity *id, const Request *req, ServiceAnswer *a);

typedef struct Rerun {
        Service *s;
        const Identity *id; /* the connection's: the call ends before it does */
        Request req;
} Rerun;

static void rerun_free(void *p) {
        Rerun *x = p;

        request_done(&x->req);
        free(x);
}

static void answer_call_error(ServiceCall *c, ErrorCode code, const char *message) {
        ErrorReply e = {.code = code};
        size_t len = 0;
        char *line;

        snprintf(e.message, sizeof(e.message), "%s", message);
        line = response_error(&e, &len);
        service_call_answer(c, line, len);
}

/* Hands the records read to the ledger (those it has already stay as they are). */
static void adopt_read(Service *s, StoreRead *result) {
        for (size_t i = 0; i < result->n_records; i++) {
                TaskRecord *t = result->records[i];

                if (ledger_get(s->ledger, t->id))
                        continue;
                if (ledger_adopt(s->ledger, t) >= 0) {
                        result->records[i] = NULL;
                        if (t->state == TASK_QUEUED)
                                dispatcher_kick(s->dispatcher);
                }
        }
        /* Finished records read in count against max_records like the others. */
        dispatcher_kick(s->dispatcher);
}

static void rerun_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        Rerun *x = userdata;
        ServiceAnswer a = service_call_forward_answer(c);
        int r;

        if (result->error < 0) {
                answer_call_error(c, ERR_UNAVAILABLE, "the store is unavailable; cannot look the task up");
                return;
        }
        adopt_read(x->s, result);
        r = service_dispatch(x->s, x->id, &x->req, &a);
        if (r < 0) {
                free(a.line);
                service_call_answer(c, NULL, 0);
                return;
        }
        metrics_refused(x->s->metrics, a.refused);
        if (a.call) {
                service_call_forward(c, a.call);
                return;
        }
        service_call_answer(c, a.line, a.len);
}

/* Whether req, whose record (by task_id, or by key) is not in memory, must be read through first. */
static bool must_read_through(const Service *s, const ServiceAnswer *a) {
        return s->store && !a->store_read && !a->detach;
}

/* Reads the record of task_id (or, when key is set, of the peer's key) from the store, then runs req
 * again. a->call is set. */
static int read_through(Service *s, const Identity *id, const Request *req, ServiceAnswer *a,
                        uint64_t task_id, const char *key) {
        Rerun *x = calloc(1, sizeof(*x));
        ServiceCall *c;
        int r;

        if (!x)
                return -ENOMEM;
        x->s = s;
        x->id = id;
        r = request_copy(req, &x->req);
        if (r < 0) {
                free(x);
                return r;
        }
        c = service_call_read(&s->calls, a, rerun_read_done, x, rerun_free);
        if (!c)
                return -ENOMEM;
        r = key ? store_read_key(s->store, id->submitter, key, service_call_read_done, c)
                : store_read_task(s->store, task_id, service_call_read_done, c);
        if (r < 0) {
                service_call_read_abandon(c);
                return answer_error(a, ERR_UNAVAILABLE, "the store is unavailable: %s", strerror(-r));
        }
        a->call = c;
        return 0;
}

/* --- lookups and authorization --- */

static bool is_admin(const Service *s, const Identity *id) {
        return config_is_admin(s->cfg, id);
}

static void log_refusal(const Identity *id, RequestOp op, const char *what) {
        log_warning("Refused %s %s from %s.", request_op_to_string(op), what, id->description);
}

/* A peer known only by its address shares it with everyone on its host: it may not look tasks up. */
static int refuse_unknown_user(const Identity *id, RequestOp op, const char *what, ServiceAnswer *a) {
        log_refusal(id, op, what);
        return answer_error(
                a, ERR_FORBIDDEN,
                "the user behind this connection is unknown (TCP from %s): it may submit, but not "
                "look tasks up or use keys; use the unix socket or loopback TCP",
                startswith(id->submitter, "tcp:") ? id->submitter + strlen("tcp:") : id->submitter);
}

/* The task a status/wait/cancel is about: it must exist and be the peer's own (or the peer an admin). */
static int lookup_owned(Service *s, const Identity *id, const Request *req, ServiceAnswer *a,
                        TaskRecord **ret) {
        TaskRecord *t;
        char what[64];

        if (!policy_may_look_up(id)) {
                snprintf(what, sizeof(what), "of task %llu", (unsigned long long) req->id);
                return refuse_unknown_user(id, req->op, what, a);
        }
        t = ledger_get(s->ledger, req->id);
        if (!t && must_read_through(s, a))
                return read_through(s, id, req, a, req->id, NULL);
        if (!t)
                return answer_error(a, ERR_NOT_FOUND, "no task with id %llu", (unsigned long long) req->id);
        if (!policy_owns(id, t->submitter) && !is_admin(s, id)) {
                snprintf(what, sizeof(what), "of task %llu", (unsigned long long) req->id);
                log_refusal(id, req->op, what);
                return answer_error(a, ERR_FORBIDDEN, "task %llu belongs to another submitter",
                                    (unsigned long long) req->id);
        }
        *ret = t;
        return 0;
}

static int require_admin(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        if (is_admin(s, id))
                return 1;
        log_refusal(id, req->op, "(admins only)");
        return answer_error(a, ERR_FORBIDDEN, "'%s' is for admins only", request_op_to_string(req->op));
}

/* --- operations --- */

/* What a submit names: its task (or command) definition, the task name (NULL for a command), and
 * how refusals and log lines call it ("of task 'x'"). */
typedef struct SubmitTarget {
        const TaskDef *def;
        const char *task_name;
        char what[160];
} SubmitTarget;

/* Finds the target of a submit. Answers a, and leaves ret->def NULL, when there is none. */
static int submit_target(const Config *cfg, const Request *req, ServiceAnswer *a, SubmitTarget *ret) {
        char q[80];

        if (req->task) {
                ret->def = config_find_task(cfg, req->task);
                if (!ret->def)
                        return answer_error(a, ERR_UNKNOWN_TASK, "no task named '%s'",
                                            quoted(req->task, q, sizeof(q)));
                ret->task_name = ret->def->name;
                snprintf(ret->what, sizeof(ret->what), "of task '%s'", ret->task_name);
        } else if (req->cmd) {
                ret->def = config_find_command(cfg, req->cmd);
                if (!ret->def)
                        return answer_error(a, ERR_COMMAND_NOT_ALLOWED,
                                            "command '%s' is not on the commands list",
                                            quoted(req->cmd, q, sizeof(q)));
                snprintf(ret->what, sizeof(ret->what), "of command '%s'", quoted(req->cmd, q, sizeof(q)));
        } else if (req->php_class) {
                const char *mapped = config_find_php_class(cfg, req->php_class);

                if (!mapped)
                        return answer_error(a, ERR_UNKNOWN_TASK, "no task mapped to PHP class '%s'",
                                            quoted(req->php_class, q, sizeof(q)));
                ret->def = config_find_task(cfg, mapped);
                if (!ret->def)
                        return answer_error(a, ERR_UNKNOWN_TASK,
                                            "PHP class '%s' maps to task '%s', which does not exist",
                                            quoted(req->php_class, q, sizeof(q)), mapped);
                ret->task_name = ret->def->name;
                snprintf(ret->what, sizeof(ret->what), "of task '%s' (PHP class '%s')", ret->task_name,
                         quoted(req->php_class, q, sizeof(q)));
        } else
                return answer_error(a, ERR_BAD_REQUEST, "submit needs \"task\" or \"cmd\"");
        return 0;
}

/* 1 when the daemon takes a submission now; otherwise a is answered "unavailable", saying why. */
static int submit_admission(Service *s, ServiceAnswer *a) {
        LedgerStats st;

        if (s->shutting_down)
                return answer_error(a, ERR_UNAVAILABLE, "the daemon is shutting down; nothing was accepted");
        if (!launcher_link_is_connected(s->link))
                return answer_error(a, ERR_UNAVAILABLE,
                                    "the launcher is not connected; nothing was accepted");
        if (s->store && !store_available(s->store))
                return answer_error(a, ERR_UNAVAILABLE, "the store is unavailable; nothing was accepted");
        ledger_stats(s->ledger, &st);
        if (st.queued >= QUEUED_MAX)
                return answer_error(a, ERR_UNAVAILABLE, "the queue is full (%llu tasks queued)",
                                    (unsigned long long) st.queued);
        return 1;
}

/* Per-submitter quotas on unfinished tasks and their stdin bytes: one allowed submitter must not fill
 * the queue or the front's memory. A key that finds an existing task would add nothing, but the key
 * is looked up only later: a submitter at its quota is refused either way. Admins are exempt. 1 to go
 * on; otherwise a is answered "quota_exceeded". */
static int submitter_quota_admission(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        const Config *cfg = s->cfg;
        uint64_t tasks, bytes;

        if (is_admin(s, id))
                return 1;
        ledger_submitter_unfinished(s->ledger, id->submitter, &tasks, &bytes);
        if (tasks >= cfg->max_queued_per_submitter)
                return answer_error(a, ERR_QUOTA_EXCEEDED,
                                    "%s has %llu unfinished tasks, the most allowed "
                                    "(max_queued_per_submitter); nothing was accepted",
                                    id->submitter, (unsigned long long) tasks);
        if (bytes + req->stdin_len > cfg->max_queued_stdin_bytes_per_submitter)
                return answer_error(a, ERR_QUOTA_EXCEEDED,
                                    "%s's unfinished tasks hold %llu bytes of stdin; %zu more would pass "
                                    "max_queued_stdin_bytes_per_submitter (%llu); nothing was accepted",
                                    id->submitter, (unsigned long long) bytes, req->stdin_len,
                                    (unsigned long long) cfg->max_queued_stdin_bytes_per_submitter);
        return 1;
}

static TaskSubmission submission_of(const Request *req, const Identity *id, const SubmitTarget *target,
                                    uint64_t now) {
        return (TaskSubmission){
                .task = target->task_name,
                .cmd = target->task_name ? NULL : req->cmd,
                .args = req->args,
                .n_args = req->n_args,
                .stdin_data = req->stdin_data,
                .stdin_len = req->stdin_len,
                .key = req->key,
                .submitter = id->submitter,
                .priority = req->priority,
                .max_attempts = target->def->max_attempts,
                .run_after = req->delay_sec > 0 ? now + req->delay_sec * USEC_PER_SEC : 0,
        };
}

/* The key named a task submitted before: its id and state, and nothing new. */
static int submit_answer_existing(ServiceAnswer *a, const TaskRecord *t) {
        cJSON *obj = ok_id_state(t->id, t->state);

        if (obj && !cJSON_AddTrueToObject(obj, "existing")) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return answer_obj(a, obj);
}

/* A new record: answered once the store has it (it must not start before), or at once without a
 * store. Taken back when that cannot be arranged. */
static int submit_answer_new(Service *s, ServiceAnswer *a, TaskRecord *t) {
        int r;

        r = answer_obj(a, ok_id_state(t->id, TASK_QUEUED));
        if (r < 0)
                goto undo;

        if (s->store) {
                r = dispatcher_hold(s->dispatcher, t->id);
                if (r < 0)
                        goto undo;
                r = service_call_after_writes(&s->calls, a, t->id, write_insert_one, t);
                if (r < 0) {
                        dispatcher_release(s->dispatcher, t->id);
                        goto undo;
                }
        } else {
                log_accepted(t);
                dispatcher_kick(s->dispatcher);
        }
        service_changed(s);
        return 0;

undo:
        (void) ledger_forget(s->ledger, t);
        return r;
}

static int op_submit(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        SubmitTarget target = {};
        TaskSubmission sub;
        TaskRecord *t = NULL;
        bool existing = false;
        uint64_t now;
        int r;

        r = submit_target(s->cfg, req, a, &target);
        if (r < 0 || !target.def)
                return r;
        if (!policy_allows(&target.def->allow, id)) {
                if (!a->quiet) /* a seed frame's refusal has its own, rate-limited log line */
                        log_refusal(id, OP_SUBMIT, target.what);
                return answer_error(a, ERR_FORBIDDEN, "not allowed to submit %s", target.what + 3);
        }
        /* A key finds the first task submitted with it: for an address, possibly another user's. */
        if (req->key && !policy_may_look_up(id)) {
                size_t len = strlen(target.what);
                (void) snprintf(target.what + len, sizeof(target.what) - len, " with a key");
                return refuse_unknown_user(id, OP_SUBMIT, target.what, a);
        }
        if (req->n_args > target.def->max_args)
                return answer_error(a, ERR_BAD_REQUEST, "%s takes at most %u argument(s), got %zu",
                                    target.task_name ? target.task_name : "this command",
                                    target.def->max_args, req->n_args);
        r = submit_admission(s, a);
        if (r <= 0)
                return r;
        r = submitter_quota_admission(s, id, req, a);
        if (r <= 0)
                return r;

        /* A key not in memory may name a task the database holds: read it first. */
        if (req->key && !ledger_get_by_key(s->ledger, id->submitter, req->key) && must_read_through(s, a))
                return read_through(s, id, req, a, 0, req->key);

        now = now_usec(CLOCK_REALTIME);
        sub = submission_of(req, id, &target, now);
        r = ledger_submit(s->ledger, &sub, now, &t, &existing);
        if (r < 0) {
                log_error_errno(r, "Cannot queue a submission from %s: %m", id->description);
                return answer_error(a, ERR_INTERNAL, "cannot queue the task: %s", strerror(-r));
        }
        if (existing)
                return submit_answer_existing(a, t);
        return submit_answer_new(s, a, t);
}

static int op_status(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        TaskRecord *t = NULL;
        int r = lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        return answer_obj(a, ok_task(s, t));
}

static int op_wait(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        uint64_t timeout;
        TaskRecord *t = NULL;
        int r = lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        if (task_state_is_final(t->state) || (req->has_timeout && req->timeout_usec == 0) ||
            s->shutting_down)
                return answer_obj(a, response_ok_task(t));
        /* The client has not seen the progress there is now (wait --progress). */
        if (req->has_progress_seen && !streq_ptr(t->progress, req->progress_seen))
                return answer_obj(a, response_ok_task(t));

        /* No timeout given: wait as long as a wait may. */
        timeout = req->has_timeout ? req->timeout_usec : WAIT_SEC_MAX * USEC_PER_SEC;
        if (req->has_progress_seen)
                return service_call_wait_progress(&s->calls, t, timeout, a);
        return service_call_wait(&s->calls, t, timeout, a);
}

static int op_cancel(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        TaskRecord *t = NULL;
        cJSON *obj;
        int r = lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;

        switch (t->state) {
        case TASK_QUEUED:
                r = ledger_cancel(s->ledger, t, now_usec(CLOCK_REALTIME));
                if (r < 0)
                        return answer_error(a, ERR_INTERNAL, "cannot cancel task %llu: %s",
                                            (unsigned long long) t->id, strerror(-r));
                log_task(LOG_INFO, t->id, t->task, NULL, "Task %llu cancelled by %s before it ran.",
                         (unsigned long long) t->id, id->submitter);
                dispatcher_kick(s->dispatcher); /* one more finished record: max_records */
                service_changed(s);
                r = answer_obj(a, ok_id_state(t->id, TASK_CANCELLED));
                if (r < 0)
                        return r;
                return service_call_after_writes(&s->calls, a, 0, write_update_one, t);

        case TASK_RUNNING:
                r = dispatcher_stop_task(s->dispatcher, t);
                if (r < 0)
                        return answer_error(a, ERR_INTERNAL, "cannot stop task %llu: %s",
                                            (unsigned long long) t->id, strerror(-r));
                obj = ok_id_state(t->id, TASK_RUNNING);
                if (obj && !cJSON_AddTrueToObject(obj, "stopping")) {
                        cJSON_Delete(obj);
                        obj = NULL;
                }
                return answer_obj(a, obj);

        default:
                return answer_obj(a, ok_id_state(t->id, t->state));
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
        TaskRecord *t = ledger_get(s->ledger, req->id);
        int r;

        if (!t && must_read_through(s, a))
                return read_through(s, id, req, a, req->id, NULL);
        if (!t)
                return answer_error(a, ERR_NOT_FOUND, "no task with id %llu", (unsigned long long) req->id);
        r = ledger_retry(s->ledger, t, now);
        if (r == -EINVAL)
                return answer_error(a, ERR_BAD_REQUEST,
                                    "task %llu is %s; only failed or cancelled tasks can be retried",
                                    (unsigned long long) t->id, task_state_to_string(t->state));
        if (r < 0)
                return answer_error(a, ERR_INTERNAL, "cannot retry task %llu: %s",
                                    (unsigned long long) t->id, strerror(-r));
        log_task(LOG_INFO, t->id, t->task, NULL, "Task %llu queued again by %s.", (unsigned long long) t->id,
                 id->submitter);
        dispatcher_kick(s->dispatcher);
        service_changed(s);
        r = answer_obj(a, ok_id_state(t->id, TASK_QUEUED));
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
                answer_call_error(c, ERR_UNAVAILABLE,
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
        (void) answer_obj(&a, obj);
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
        if (r < 0) {
                service_call_read_abandon(c);
                return answer_error(a, ERR_UNAVAILABLE, "the store is unavailable: %s", strerror(-r));
        }
        a->call = c;
        return 0;
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
                return answer_error(a, ERR_BAD_REQUEST, "only failed or cancelled tasks can be retried");
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
        r = answer_obj(a, obj);
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_retry_batch, &(RetryBatch){tasks, done});
}

static int op_retry(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (req->has_id)
                return retry_one(s, id, req, a, now_usec(CLOCK_REALTIME));
        if (req->has_state)
                return retry_state(s, id, req, a, now_usec(CLOCK_REALTIME));
        return answer_error(a, ERR_BAD_REQUEST, "retry needs \"id\" or \"state\"");
}

static int op_forget(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        TaskRecord *t;
        uint64_t task_id = req->id;
        cJSON *obj;
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        t = ledger_get(s->ledger, task_id);
        if (!t && must_read_through(s, a))
                return read_through(s, id, req, a, task_id, NULL);
        if (!t)
                return answer_error(a, ERR_NOT_FOUND, "no task with id %llu", (unsigned long long) task_id);
        r = ledger_forget(s->ledger, t);
        if (r == -EBUSY)
                return answer_error(a, ERR_BAD_REQUEST, "task %llu is running; cancel it first",
                                    (unsigned long long) task_id);
        if (r < 0)
                return answer_error(a, ERR_INTERNAL, "cannot forget task %llu: %s",
                                    (unsigned long long) task_id, strerror(-r));
        log_task(LOG_INFO, task_id, NULL, NULL, "Task %llu forgotten by %s.", (unsigned long long) task_id,
                 id->submitter);
        service_changed(s);

        obj = response_ok();
        if (obj && !cJSON_AddNumberToObject(obj, "id", (double) task_id)) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        r = answer_obj(a, obj);
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_delete_one, &task_id);
}

/* {"ok":true,"tasks":[...]} of n records. A record read from the store that the ledger holds too is
 * answered as the ledger has it: a running one's progress is kept in memory only. */
static int answer_tasks(Service *s, ServiceAnswer *a, TaskRecord *const *tasks, size_t n) {
        cJSON *obj, *arr;

        obj = response_ok();
        if (!obj)
                return -ENOMEM;
        arr = cJSON_AddArrayToObject(obj, "tasks");
        if (!arr)
                goto oom;
        for (size_t i = 0; i < n; i++) {
                const TaskRecord *held = ledger_get(s->ledger, tasks[i]->id);
                const TaskRecord *t = held ? held : tasks[i];
                cJSON *item = cJSON_CreateObject();

                if (!item)
                        goto oom;
                cJSON_AddItemToArray(arr, item);
                if (response_add_task(item, t) < 0 || add_paused_flag(s, item, t) < 0)
                        goto oom;
        }
        return answer_obj(a, obj);

oom:
        cJSON_Delete(obj);
        return -ENOMEM;
}

/* "paused": [{"task":..,"by":..,"since":..}], by name. */
static int add_paused_list(cJSON *obj, const PausedTasks *paused) {
        cJSON *arr = cJSON_AddArrayToObject(obj, "paused");

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < paused->n; i++) {
                cJSON *item = cJSON_CreateObject();

                if (!item)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, item);
                if (!cJSON_AddStringToObject(item, "task", paused->items[i].task) ||
                    !cJSON_AddStringToObject(item, "by", paused->items[i].by) ||
                    response_add_time(item, "since", paused->items[i].since) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static void list_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        ServiceAnswer a = {};

        if (result->error < 0) {
                answer_call_error(c, ERR_UNAVAILABLE, "the store is unavailable; cannot list tasks");
                return;
        }
        (void) answer_tasks(userdata, &a, result->records, result->n_records);
        service_call_answer(c, a.line, a.len);
}

static int op_list(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        _cleanup_free_ TaskRecord **tasks = NULL;
        unsigned limit = req->limit > 0 ? req->limit : 100;
        int state = req->has_state ? (int) req->state : -1;
        ServiceCall *c;
        size_t n;
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (limit > LIST_LIMIT_MAX)
                limit = LIST_LIMIT_MAX;
        if (s->store) {
                /* The rows are the truth: every write queued before this read is in them. */
                c = service_call_read(&s->calls, a, list_read_done, s, NULL);
                if (!c)
                        return -ENOMEM;
                r = store_read_page(s->store, state, req->after_id, limit, service_call_read_done, c);
                if (r < 0) {
                        service_call_read_abandon(c);
                        return answer_error(a, ERR_UNAVAILABLE, "the store is unavailable: %s",
                                            strerror(-r));
                }
                a->call = c;
                return 0;
        }
        tasks = calloc(limit, sizeof(*tasks));
        if (!tasks)
                return -ENOMEM;
        n = ledger_list_after(s->ledger, state, req->after_id, limit, tasks);
        return answer_tasks(s, a, tasks, n);
}

static int answer_stats(Service *s, ServiceAnswer *a, const LedgerStats *st) {
        unsigned conns = s->hooks.n_connections ? s->hooks.n_connections(s->hooks.userdata) : 0;
        cJSON *obj;

        obj = response_ok();
        if (!obj)
                return -ENOMEM;
        if (!cJSON_AddNumberToObject(obj, "queued", (double) st->queued) ||
            !cJSON_AddNumberToObject(obj, "running", (double) st->running) ||
            !cJSON_AddNumberToObject(obj, "succeeded", (double) st->succeeded) ||
            !cJSON_AddNumberToObject(obj, "failed", (double) st->failed) ||
            !cJSON_AddNumberToObject(obj, "cancelled", (double) st->cancelled) ||
            !cJSON_AddNumberToObject(obj, "submitted_total", (double) st->submitted_total) ||
            !cJSON_AddNumberToObject(obj, "seed_refused", (double) seed_refusals_count(s->seed_refusals)) ||
            !cJSON_AddNumberToObject(obj, "connections", (double) conns) ||
            !cJSON_AddStringToObject(obj, "launcher",
                                     launcher_link_is_connected(s->link) ? "connected" : "disconnected") ||
            !cJSON_AddStringToObject(obj, "store", s->store ? "mysql" : "memory") ||
            !cJSON_AddBoolToObject(obj, "draining", dispatcher_draining(s->dispatcher)) ||
            add_paused_list(obj, ledger_paused(s->ledger)) < 0) {
                cJSON_Delete(obj);
                return -ENOMEM;
        }
        return answer_obj(a, obj);
}

/* The ledger's figures with the counts of the rows, which are the truth with a database (running ones
 * are all in memory either way); without its answer, what memory holds. */
static void stats_with_rows(Service *s, const StoreRead *result, LedgerStats *st) {
        ledger_stats(s->ledger, st);
        if (result->error < 0)
                return;
        st->queued = result->counts[TASK_QUEUED];
        st->running = result->counts[TASK_RUNNING];
        st->succeeded = result->counts[TASK_SUCCEEDED];
        st->failed = result->counts[TASK_FAILED];
        st->cancelled = result->counts[TASK_CANCELLED];
}

/* Asks the store for the row counts, answered later through done: true when asked (a->call set),
 * false when there is no store to ask and the caller answers from memory. */
static bool read_row_counts(Service *s, ServiceAnswer *a, ServiceCallReadFn done) {
        ServiceCall *c;

        if (!s->store || !store_available(s->store))
                return false;
        c = service_call_read(&s->calls, a, done, s, NULL);
        if (!c)
                return false;
        if (store_read_counts(s->store, service_call_read_done, c) < 0) {
                service_call_read_abandon(c);
                return false;
        }
        a->call = c;
        return true;
}

static void stats_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        Service *s = userdata;
        ServiceAnswer a = {};
        LedgerStats st;

        stats_with_rows(s, result, &st);
        (void) answer_stats(s, &a, &st);
        service_call_answer(c, a.line, a.len);
}

static int op_stats(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        LedgerStats st;

        if (read_row_counts(s, a, stats_read_done))
                return 0;
        ledger_stats(s->ledger, &st);
        return answer_stats(s, a, &st);
}

/* {"ok":true,"task":NAME,"paused":BOOL} */
static cJSON *ok_paused(const char *task, bool paused) {
        cJSON *obj = response_ok();

        if (obj &&
            (!cJSON_AddStringToObject(obj, "task", task) || !cJSON_AddBoolToObject(obj, "paused", paused))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return obj;
}

static int write_pause(ServiceCall *c, void *ud) {
        return service_call_store_pause(c, ud);
}

static int write_resume(ServiceCall *c, void *ud) {
        return service_call_store_resume(c, ud);
}

static int op_pause(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        const PausedTask *p;
        char q[80];
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        /* Only a configured name: a typo must not look like a pause that holds. */
        if (!config_find_task(s->cfg, req->task))
                return answer_error(a, ERR_UNKNOWN_TASK, "no task named '%s'",
                                    quoted(req->task, q, sizeof(q)));
        r = ledger_pause(s->ledger, req->task, id->submitter, now_usec(CLOCK_REALTIME));
        if (r == -E2BIG)
                return answer_error(a, ERR_BAD_REQUEST,
                                    "%d task names are paused already, the most there may be",
                                    PAUSED_TASKS_MAX);
        if (r < 0)
                return r;
        if (r > 0) {
                log_info("Task '%s' paused by %s: queued runs wait, running ones finish.", req->task,
                         id->submitter);
                dispatcher_paused_changed(s->dispatcher);
                service_changed(s);
        }
        r = answer_obj(a, ok_paused(req->task, true));
        if (r < 0)
                return r;
        /* Written again when it was paused already: harmless, and it heals a write that failed. */
        p = paused_tasks_find(ledger_paused(s->ledger), req->task);
        return service_call_after_writes(&s->calls, a, 0, write_pause, (void *) p);
}

static int op_resume(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        /* Any name: one the config no longer has may still be paused. */
        if (ledger_resume(s->ledger, req->task)) {
                log_info("Task '%s' resumed by %s.", req->task, id->submitter);
                dispatcher_paused_changed(s->dispatcher);
                service_changed(s);
        }
        r = answer_obj(a, ok_paused(req->task, false));
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_resume, req->task);
}

/* {"ok":true,"draining":BOOL,"running":N,"drained":BOOL}: drained when draining and nothing runs. */
static char *drain_answer(size_t *ret_len, void *userdata) {
        Service *s = userdata;
        bool draining = dispatcher_draining(s->dispatcher);
        unsigned running = dispatcher_n_running(s->dispatcher);
        cJSON *obj = response_ok();

        if (obj && (!cJSON_AddBoolToObject(obj, "draining", draining) ||
                    !cJSON_AddNumberToObject(obj, "running", running) ||
                    !cJSON_AddBoolToObject(obj, "drained", draining && running == 0))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return obj ? response_finish(obj, ret_len) : NULL;
}

static void set_draining(Service *s, const Identity *id, bool draining) {
        if (dispatcher_draining(s->dispatcher) == draining)
                return;
        dispatcher_set_draining(s->dispatcher, draining);
        if (draining)
                log_notice("Draining, by %s: this host starts no new runs until 'asynctask undrain'.",
                           id->submitter);
        else
                log_notice("Drain ended by %s: this host takes work again.", id->submitter);
        if (s->hooks.draining_changed)
                s->hooks.draining_changed(draining, s->hooks.userdata);
        service_changed(s);
}

static int op_drain(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (s->shutting_down)
                return answer_error(a, ERR_UNAVAILABLE, "the daemon is shutting down");
        set_draining(s, id, true);
        if (dispatcher_n_running(s->dispatcher) == 0 || !req->has_timeout || req->timeout_usec == 0) {
                a->line = drain_answer(&a->len, s);
                return a->line ? 0 : -ENOMEM;
        }
        return service_call_drain(&s->calls, req->timeout_usec, a);
}

static int op_undrain(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        set_draining(s, id, false);
        /* Whoever waits for the drain learns that it ended. */
        service_calls_drain_done(&s->calls);
        a->line = drain_answer(&a->len, s);
        return a->line ? 0 : -ENOMEM;
}

void service_running_changed(Service *s) {
        if (dispatcher_draining(s->dispatcher) && dispatcher_n_running(s->dispatcher) == 0)
                service_calls_drain_done(&s->calls);
}

void service_restore_draining(Service *s) {
        dispatcher_set_draining(s->dispatcher, true);
        log_notice("This host was draining when asynctaskd stopped, and still is: no new runs start until "
                   "'asynctask undrain'.");
}

/* The metrics answer from st (counts per state) and the queue's oldest due run_after (UINT64_MAX:
 * none is due), as of now. */
static int answer_metrics(Service *s, ServiceAnswer *a, const LedgerStats *st, uint64_t oldest_due,
                          uint64_t now) {
        MetricsGauges g = {
                .oldest_queued_age_usec = oldest_due < now ? now - oldest_due : 0,
                .store_up = !s->store || store_available(s->store),
                .launcher_up = launcher_link_is_connected(s->link),
                .connections = s->hooks.n_connections ? s->hooks.n_connections(s->hooks.userdata) : 0,
        };
        _cleanup_free_ char *text = NULL;
        size_t len;
        cJSON *obj;
        int r;

        g.tasks[TASK_QUEUED] = st->queued;
        g.tasks[TASK_RUNNING] = st->running;
        g.tasks[TASK_SUCCEEDED] = st->succeeded;
        g.tasks[TASK_FAILED] = st->failed;
        g.tasks[TASK_CANCELLED] = st->cancelled;
        g.submitted_total = st->submitted_total;
        r = metrics_format(s->metrics, &g, &text, &len);
        if (r < 0)
                return r;
        obj = response_ok();
        if (obj && !cJSON_AddStringToObject(obj, "text", text)) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return answer_obj(a, obj);
}

/* The run_after of the queued record in the ledger due the longest, UINT64_MAX when none is due. */
static uint64_t oldest_due_in_memory(Service *s, uint64_t now) {
        uint64_t age = ledger_oldest_queued_age(s->ledger, now);

        return age > 0 ? now - age : UINT64_MAX;
}

static void metrics_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        Service *s = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        uint64_t oldest_due = oldest_due_in_memory(s, now);
        ServiceAnswer a = {};
        LedgerStats st;

        stats_with_rows(s, result, &st);
        /* The oldest due row too: it may be outside the window of the queue in memory. */
        if (result->error >= 0 && result->has_oldest_due && result->oldest_due < oldest_due)
                oldest_due = result->oldest_due;
        (void) answer_metrics(s, &a, &st, oldest_due, now);
        service_call_answer(c, a.line, a.len);
}

/* The Prometheus text of the metrics, for anyone who may ask for stats: the task names it shows are
 * those of the configuration files, which every local user can read. */
static int op_metrics(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        LedgerStats st;

        if (read_row_counts(s, a, metrics_read_done))
                return 0;
        ledger_stats(s->ledger, &st);
        return answer_metrics(s, a, &st, oldest_due_in_memory(s, now), now);
}

static int op_ping(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        cJSON *obj = response_ok();

        if (obj && (!cJSON_AddTrueToObject(obj, "pong") ||
                    !cJSON_AddStringToObject(obj, "version", ASYNCTASK_VERSION))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return answer_obj(a, obj);
}

static int op_reload(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r;

        /* Reloading is the service manager's business: root, or whoever the daemon runs as. */
        if (id->kind != PEER_UNIX || (id->uid != 0 && id->uid != geteuid())) {
                log_refusal(id, OP_RELOAD, "(root or the daemon's own user only)");
                return answer_error(a, ERR_FORBIDDEN, "'reload' is for root or the daemon's own user only");
        }
        if (s->shutting_down)
                return answer_error(a, ERR_UNAVAILABLE, "the daemon is shutting down");

        r = service_call_reload(&s->calls, service_reload_next_round(s->reload), a);
        if (r < 0)
                return r;
        log_info("Reload requested by %s.", id->description);
        service_reload(s);
        return 0;
}

static int service_dispatch(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        switch (req->op) {
        case OP_SUBMIT:
                return op_submit(s, id, req, a);
        case OP_STATUS:
                return op_status(s, id, req, a);
        case OP_WAIT:
                return op_wait(s, id, req, a);
        case OP_CANCEL:
                return op_cancel(s, id, req, a);
        case OP_RETRY:
                return op_retry(s, id, req, a);
        case OP_FORGET:
                return op_forget(s, id, req, a);
        case OP_LIST:
                return op_list(s, id, req, a);
        case OP_STATS:
                return op_stats(s, id, req, a);
        case OP_PING:
                return op_ping(s, id, req, a);
        case OP_RELOAD:
                return op_reload(s, id, req, a);
        case OP_PAUSE:
                return op_pause(s, id, req, a);
        case OP_RESUME:
                return op_resume(s, id, req, a);
        case OP_DRAIN:
                return op_drain(s, id, req, a);
        case OP_UNDRAIN:
                return op_undrain(s, id, req, a);
        case OP_METRICS:
                return op_metrics(s, id, req, a);
        default:
                return answer_error(a, ERR_BAD_REQUEST, "unknown operation");
        }
}

int service_handle(Service *s, const Identity *id, const Request *req, ServiceReplyFn reply, void *userdata,
                   ServiceCall **ret_call) {
        ServiceAnswer a = {.reply = reply, .userdata = userdata};
        int r;

        r = service_dispatch(s, id, req, &a);
        if (r < 0) {
                free(a.line);
                return r;
        }
        metrics_refused(s->metrics, a.refused);
        if (a.call) {
                *ret_call = a.call;
                return 1;
        }
        if (!a.line)
                return -ENOMEM;
        reply(a.line, a.len, userdata);
        return 0;
}

int service_submit_seed(Service *s, const Identity *id, const Request *req, const char *frame, size_t len,
                        ServiceSettledFn settled, void *userdata, ServiceCall **ret_call) {
        ServiceAnswer a = {.reply = seed_submission_answered,
                           .userdata_free = seed_submission_free,
                           .detach = seed_submission_detach,
                           .quiet = true};
        int r;

        a.userdata = seed_submission_new(s->seed_refusals, id->description, frame, len, settled, userdata);
        r = a.userdata ? op_submit(s, id, req, &a) : -ENOMEM;
        if (r < 0) {
                log_error_errno(r, "Cannot handle a seed frame from %s: %m", id->description);
                seed_refusals_add(s->seed_refusals, id->description, frame, len, "internal", strerror(-r));
                free(a.line);
                seed_submission_free(a.userdata);
                return r;
        }
        metrics_refused(s->metrics, a.refused);
        if (a.call) {
                *ret_call = a.call;
                return 1;
        }
        /* Answered at once: the caller learns it from the return value, not from settled. */
        seed_submission_answered_at_once(TAKE_PTR(a.line), a.len, a.userdata);
        return 0;
}

void service_refuse_seed(Service *s, const Identity *id, const char *frame, size_t len,
                         const ErrorReply *why) {
        metrics_refused(s->metrics, why->code);
        seed_refusals_add(s->seed_refusals, id->description, frame, len, error_code_to_string(why->code),
                          why->message);
}

/* --- reload --- */

static const Config *reload_current(void *userdata) {
        Service *s = userdata;
        return s->cfg;
}

static void reload_apply(Config *cfg, void *userdata) {
        Service *s = userdata;
        Config *old = s->cfg;

        s->cfg = cfg;
        if (s->hooks.config_changed)
                s->hooks.config_changed(s->cfg, s->hooks.userdata);
        config_free(old);
}

static void reload_finished(bool ok, void *userdata) {
        Service *s = userdata;

        if (s->hooks.reloaded)
                s->hooks.reloaded(ok, s->hooks.userdata);
}

void service_reload(Service *s) {
        service_reload_request(s->reload);
}

void service_launcher_reloaded(Service *s, const char *error) {
        service_reload_launcher_answered(s->reload, error);
}

void service_launcher_down(Service *s) {
        service_reload_launcher_down(s->reload);
}

/* --- lifecycle --- */

int service_new(sd_event *event, Config *cfg, Ledger *ledger, Store *store, Dispatcher *dispatcher,
                LauncherLink *link, const ServiceHooks *hooks, Service **ret) {
        static const ServiceReloadOps reload_ops = {
                .current = reload_current,
                .apply = reload_apply,
                .finished = reload_finished,
        };
        Service *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->cfg = cfg;
        s->ledger = ledger;
        s->store = store;
        s->dispatcher = dispatcher;
        s->link = link;
        if (hooks)
                s->hooks = *hooks;
        s->calls = (ServiceCalls){
                .event = event,
                .ledger = ledger,
                .store = store,
                .settled = submission_settled,
                .drain_answer = drain_answer,
                .userdata = s,
        };
        r = service_reload_new(event, link, &s->calls, &reload_ops, s, &s->reload);
        if (r >= 0)
                r = seed_refusals_new(event, &s->seed_refusals);
        if (r < 0) {
                s->cfg = NULL; /* not taken on failure */
                service_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

Service *service_free(Service *s) {
        if (!s)
                return NULL;
        /* The store is freed first (it does not call back for what it drops), so every call can go. */
        service_calls_done(&s->calls);
        service_reload_free(s->reload);
        seed_refusals_free(s->seed_refusals);
        config_free(s->cfg);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void service_set_metrics(Service *s, Metrics *m) {
        s->metrics = m;
        s->calls.metrics = m;
}

void service_count_refusal(Service *s, ErrorCode code) {
        metrics_refused(s->metrics, code);
}

const Config *service_config(const Service *s) {
        return s->cfg;
}

void service_shutdown(Service *s) {
        if (s->shutting_down)
                return;
        s->shutting_down = true;
        service_reload_shutdown(s->reload);
        service_calls_shutdown(&s->calls);
}

unsigned service_n_pending(const Service *s) {
        return s->calls.n_pending;
}
