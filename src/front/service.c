/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <cjson/cJSON.h>

#include "shared/limits.h"
#include "shared/log.h"
#include "front/response.h"
#include "front/service.h"
#include "front/utf8.h"
#include "shared/util.h"

#ifndef ASYNCTASK_VERSION
#define ASYNCTASK_VERSION "0.1.0"
#endif

typedef enum CallKind {
        CALL_WAIT,   /* wait: a ledger watch plus a timeout */
        CALL_STORE,  /* the answer is ready but goes out only once the store committed the change */
        CALL_RELOAD, /* reload op: answered when the reload round it belongs to ends */
} CallKind;

struct ServiceCall {
        Service *service;
        CallKind kind;
        ServiceReplyFn reply; /* NULL once the connection went away */
        void *userdata;
        ServiceCall *prev, *next;

        /* CALL_WAIT */
        uint64_t id;
        LedgerWatch *watch;
        sd_event_source *timer;

        /* CALL_STORE */
        char *line;
        size_t len;
        unsigned outstanding;  /* store writes not completed */
        int error;             /* first failed write */
        uint64_t submitted_id; /* a new submission: undone if its insert fails */

        /* CALL_RELOAD */
        unsigned round;
};

struct Service {
        sd_event *event;
        Config *cfg;
        Ledger *ledger;
        Store *store;
        Dispatcher *dispatcher;
        LauncherLink *link;
        ServiceHooks hooks;
        bool shutting_down;

        ServiceCall *calls;
        unsigned n_pending; /* CALL_STORE and CALL_RELOAD calls */

        /* Reload: one round at a time; requests during a round are served by the next one. */
        bool reload_active;
        bool reload_again;
        unsigned reload_round; /* the round running (or last run) */
        Config *reload_cfg;    /* loaded and valid, waiting for the launcher */
        sd_event_source *reload_timer;
        sd_event_source *reload_request; /* deferred start of a round */
        ErrorReply reload_error;         /* why the current round failed */
        unsigned reload_n_errors;
};

/* Where an operation puts its answer: a line now, or a pending call. */
typedef struct Answer {
        ServiceReplyFn reply;
        void *userdata;
        char *line;
        size_t len;
        ServiceCall *call;
} Answer;

static void service_changed(Service *s) {
        if (s->hooks.changed)
                s->hooks.changed(s->hooks.userdata);
}

/* --- answers --- */

static int answer_error(Answer *a, ErrorCode code, const char *fmt, ...) _printf_(3, 4);

static int answer_error(Answer *a, ErrorCode code, const char *fmt, ...) {
        ErrorReply e = {.code = code};
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        a->line = response_error(&e, &a->len);
        return a->line ? 0 : -ENOMEM;
}

static int answer_obj(Answer *a, cJSON *obj) {
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

static cJSON *ok_record(const TaskRecord *t) {
        cJSON *obj = response_ok();

        if (obj && response_add_task(obj, t) < 0) {
                cJSON_Delete(obj);
                return NULL;
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

/* --- calls --- */

static ServiceCall *call_new(Service *s, CallKind kind, ServiceReplyFn reply, void *userdata) {
        ServiceCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->service = s;
        c->kind = kind;
        c->reply = reply;
        c->userdata = userdata;
        c->next = s->calls;
        if (c->next)
                c->next->prev = c;
        s->calls = c;
        if (kind != CALL_WAIT)
                s->n_pending++;
        return c;
}

static void call_destroy(ServiceCall *c) {
        Service *s = c->service;

        if (c->prev)
                c->prev->next = c->next;
        else
                s->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (c->kind != CALL_WAIT)
                s->n_pending--;
        c->watch = ledger_watch_free(c->watch);
        c->timer = sd_event_source_disable_unref(c->timer);
        free(c->line);
        free(c);
}

/* Hands the answer to the connection (if it is still there) and ends the call. */
static void call_answer(ServiceCall *c, char *line, size_t len) {
        if (c->reply && line)
                c->reply(line, len, c->userdata);
        else {
                if (c->reply)
                        log_error_errno(ENOMEM, "Cannot build a response: %m");
                free(line);
        }
        call_destroy(c);
}

static void call_answer_error(ServiceCall *c, ErrorCode code, const char *fmt, ...) _printf_(3, 4);

static void call_answer_error(ServiceCall *c, ErrorCode code, const char *fmt, ...) {
        ErrorReply e = {.code = code};
        va_list ap;
        char *line;
        size_t len = 0;

        va_start(ap, fmt);
        (void) vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        line = response_error(&e, &len);
        call_answer(c, line, len);
}

bool service_call_is_store_write(const ServiceCall *c) {
        return c && c->kind == CALL_STORE;
}

ServiceCall *service_call_free(ServiceCall *c) {
        if (!c)
                return NULL;
        if (c->kind == CALL_STORE && c->outstanding > 0) {
                /* The store still holds c as its callback's userdata: finish quietly when it reports. */
                c->reply = NULL;
                return NULL;
        }
        call_destroy(c);
        return NULL;
}

/* --- store writes --- */

/* All writes of a store call have completed (or none could start): undo a submission that did not
 * commit, so that "unavailable" means nothing was accepted. Returns the first error. */
static void log_accepted(const TaskRecord *t) {
        log_task(LOG_INFO, t->id, t->task, NULL, "Accepted task %llu (%s) from %s%s.",
                 (unsigned long long) t->id, t->task ? t->task : "command", t->submitter,
                 t->key ? ", with a key" : "");
}

static int store_call_settle(ServiceCall *c) {
        Service *s = c->service;

        if (c->submitted_id != 0) {
                TaskRecord *t = ledger_get(s->ledger, c->submitted_id);

                dispatcher_release(s->dispatcher, c->submitted_id);
                if (c->error < 0 && t && t->state == TASK_QUEUED) {
                        log_task(LOG_WARNING, t->id, t->task, NULL,
                                 "Task %llu could not be stored; it was not accepted.",
                                 (unsigned long long) t->id);
                        (void) ledger_forget(s->ledger, t);
                        service_changed(s);
                } else if (c->error >= 0 && t)
                        log_accepted(t);
        }
        if (c->error < 0)
                log_error_errno(c->error, "Store write failed: %m");
        return c->error;
}

/* A submission that could not be stored was taken back; any other change stands in memory only. */
static const char *store_failed_message(const ServiceCall *c) {
        return c->submitted_id != 0 ? "the store is unavailable; nothing was accepted"
                                    : "the store is unavailable; the change was not recorded";
}

static void store_write_done(int error, void *userdata) {
        ServiceCall *c = userdata;

        if (error < 0 && c->error == 0)
                c->error = error;
        if (--c->outstanding > 0)
                return;
        if (store_call_settle(c) < 0) {
                call_answer_error(c, ERR_UNAVAILABLE, "%s", store_failed_message(c));
                return;
        }
        call_answer(c, TAKE_PTR(c->line), c->len);
}

/* Issues one store write for the call. */
static int call_store(ServiceCall *c, int (*write)(Store *, const TaskRecord *, StoreDoneFn, void *),
                      const TaskRecord *t) {
        int r = write(c->service->store, t, store_write_done, c);

        if (r < 0) {
                if (c->error == 0)
                        c->error = r;
                return r;
        }
        c->outstanding++;
        return 0;
}

/* With a store, the answer (already built in a) waits for the writes that write_fn issues; without
 * one, it goes out now. write_fn returns how many writes it started or a negative errno. */
static int answer_after_writes(Service *s, Answer *a, uint64_t submitted_id,
                               int (*write_fn)(Service *s, ServiceCall *c, void *ud), void *ud) {
        ServiceCall *c;
        int r;

        if (!s->store)
                return 0;

        c = call_new(s, CALL_STORE, a->reply, a->userdata);
        if (!c)
                return -ENOMEM;
        c->line = TAKE_PTR(a->line);
        c->len = a->len;
        c->submitted_id = submitted_id;
        r = write_fn(s, c, ud);
        if (r < 0 && c->error == 0)
                c->error = r;
        if (c->outstanding > 0) {
                a->call = c;
                return 0;
        }

        /* Nothing to wait for: no write was needed, or none could be queued. */
        if (store_call_settle(c) < 0)
                r = answer_error(a, ERR_UNAVAILABLE, "%s", store_failed_message(c));
        else {
                a->line = TAKE_PTR(c->line);
                r = 0;
        }
        call_destroy(c);
        return r;
}

static int write_update_one(Service *s, ServiceCall *c, void *ud) {
        return call_store(c, store_update, ud);
}

static int write_insert_one(Service *s, ServiceCall *c, void *ud) {
        return call_store(c, store_insert, ud);
}

static int write_delete_one(Service *s, ServiceCall *c, void *ud) {
        int r = store_delete(s->store, *(const uint64_t *) ud, store_write_done, c);

        if (r < 0)
                return r;
        c->outstanding++;
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
static int refuse_unknown_user(const Identity *id, RequestOp op, const char *what, Answer *a) {
        log_refusal(id, op, what);
        return answer_error(
                a, ERR_FORBIDDEN,
                "the user behind this connection is unknown (TCP from %s): it may submit, but not "
                "look tasks up or use keys; use the unix socket or loopback TCP",
                startswith(id->submitter, "tcp:") ? id->submitter + strlen("tcp:") : id->submitter);
}

/* The task a status/wait/cancel is about: it must exist and be the peer's own (or the peer an admin). */
static int lookup_owned(Service *s, const Identity *id, const Request *req, Answer *a, TaskRecord **ret) {
        TaskRecord *t;
        char what[64];

        if (!policy_may_look_up(id)) {
                snprintf(what, sizeof(what), "of task %llu", (unsigned long long) req->id);
                return refuse_unknown_user(id, req->op, what, a);
        }
        t = ledger_get(s->ledger, req->id);
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

static int require_admin(Service *s, const Identity *id, const Request *req, Answer *a) {
        if (is_admin(s, id))
                return 1;
        log_refusal(id, req->op, "(admins only)");
        return answer_error(a, ERR_FORBIDDEN, "'%s' is for admins only", request_op_to_string(req->op));
}

/* --- operations --- */

static int op_submit(Service *s, const Identity *id, const Request *req, Answer *a) {
        const Config *cfg = s->cfg;
        const TaskDef *def = NULL;
        const char *task_name = NULL;
        char q[80], what[160];
        TaskSubmission sub;
        TaskRecord *t = NULL;
        bool existing = false;
        LedgerStats st;
        uint64_t now;
        int r;

        if (req->task) {
                def = config_find_task(cfg, req->task);
                if (!def)
                        return answer_error(a, ERR_UNKNOWN_TASK, "no task named '%s'",
                                            quoted(req->task, q, sizeof(q)));
                task_name = def->name;
                snprintf(what, sizeof(what), "of task '%s'", task_name);
        } else if (req->cmd) {
                def = config_find_command(cfg, req->cmd);
                if (!def)
                        return answer_error(a, ERR_COMMAND_NOT_ALLOWED,
                                            "command '%s' is not on the commands list",
                                            quoted(req->cmd, q, sizeof(q)));
                snprintf(what, sizeof(what), "of command '%s'", quoted(req->cmd, q, sizeof(q)));
        } else if (req->php_class) {
                const char *mapped = config_find_php_class(cfg, req->php_class);

                if (!mapped)
                        return answer_error(a, ERR_UNKNOWN_TASK, "no task mapped to PHP class '%s'",
                                            quoted(req->php_class, q, sizeof(q)));
                def = config_find_task(cfg, mapped);
                if (!def)
                        return answer_error(a, ERR_UNKNOWN_TASK,
                                            "PHP class '%s' maps to task '%s', which does not exist",
                                            quoted(req->php_class, q, sizeof(q)), mapped);
                task_name = def->name;
                snprintf(what, sizeof(what), "of task '%s' (PHP class '%s')", task_name,
                         quoted(req->php_class, q, sizeof(q)));
        } else
                return answer_error(a, ERR_BAD_REQUEST, "submit needs \"task\" or \"cmd\"");

        if (!policy_allows(&def->allow, id)) {
                log_refusal(id, OP_SUBMIT, what);
                return answer_error(a, ERR_FORBIDDEN, "not allowed to submit %s", what + 3);
        }
        /* A key finds the first task submitted with it: for an address, possibly another user's. */
        if (req->key && !policy_may_look_up(id)) {
                size_t len = strlen(what);
                (void) snprintf(what + len, sizeof(what) - len, " with a key");
                return refuse_unknown_user(id, OP_SUBMIT, what, a);
        }
        if (req->n_args > def->max_args)
                return answer_error(a, ERR_BAD_REQUEST, "%s takes at most %u argument(s), got %zu",
                                    task_name ? task_name : "this command", def->max_args, req->n_args);

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

        now = now_usec(CLOCK_REALTIME);
        sub = (TaskSubmission){
                .task = task_name,
                .cmd = task_name ? NULL : req->cmd,
                .args = req->args,
                .n_args = req->n_args,
                .stdin_data = req->stdin_data,
                .stdin_len = req->stdin_len,
                .key = req->key,
                .submitter = id->submitter,
                .priority = req->priority,
                .max_attempts = def->max_attempts,
                .run_after = req->delay_sec > 0 ? now + req->delay_sec * USEC_PER_SEC : 0,
        };
        r = ledger_submit(s->ledger, &sub, now, &t, &existing);
        if (r < 0) {
                log_error_errno(r, "Cannot queue a submission from %s: %m", id->description);
                return answer_error(a, ERR_INTERNAL, "cannot queue the task: %s", strerror(-r));
        }

        if (existing) {
                cJSON *obj = ok_id_state(t->id, t->state);

                if (obj && !cJSON_AddTrueToObject(obj, "existing")) {
                        cJSON_Delete(obj);
                        obj = NULL;
                }
                return answer_obj(a, obj);
        }

        r = answer_obj(a, ok_id_state(t->id, TASK_QUEUED));
        if (r < 0)
                goto undo;

        if (s->store) {
                r = dispatcher_hold(s->dispatcher, t->id);
                if (r < 0)
                        goto undo;
                r = answer_after_writes(s, a, t->id, write_insert_one, t);
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

static int op_status(Service *s, const Identity *id, const Request *req, Answer *a) {
        TaskRecord *t = NULL;
        int r = lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        return answer_obj(a, ok_record(t));
}

static void wait_fired(const TaskRecord *t, bool forgotten, void *userdata) {
        ServiceCall *c = userdata;
        size_t len = 0;
        char *line;

        c->watch = NULL; /* the ledger frees it after this returns */
        if (forgotten) {
                call_answer_error(c, ERR_NOT_FOUND, "task %llu was forgotten", (unsigned long long) t->id);
                return;
        }
        line = response_finish(ok_record(t), &len);
        call_answer(c, line, len);
}

static void wait_answer_now(ServiceCall *c) {
        TaskRecord *t = ledger_get(c->service->ledger, c->id);
        size_t len = 0;
        char *line;

        if (!t) {
                call_answer_error(c, ERR_NOT_FOUND, "no task with id %llu", (unsigned long long) c->id);
                return;
        }
        line = response_finish(ok_record(t), &len);
        call_answer(c, line, len);
}

static int wait_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        /* Not an error: the client gets the current state and decides. */
        wait_answer_now(userdata);
        return 0;
}

static int op_wait(Service *s, const Identity *id, const Request *req, Answer *a) {
        TaskRecord *t = NULL;
        ServiceCall *c;
        int r = lookup_owned(s, id, req, a, &t);

        if (r < 0 || !t)
                return r;
        if (task_state_is_final(t->state) || (req->has_timeout && req->timeout_usec == 0) ||
            s->shutting_down)
                return answer_obj(a, ok_record(t));

        c = call_new(s, CALL_WAIT, a->reply, a->userdata);
        if (!c)
                return -ENOMEM;
        c->id = t->id;
        r = ledger_watch(s->ledger, t, wait_fired, c, &c->watch);
        if (r >= 0)
                /* No timeout given: wait as long as a wait may. */
                r = sd_event_add_time_relative(s->event, &c->timer, CLOCK_MONOTONIC,
                                               req->has_timeout ? req->timeout_usec
                                                                : WAIT_SEC_MAX * USEC_PER_SEC,
                                               10 * USEC_PER_MSEC, wait_timeout, c);
        if (r < 0) {
                call_destroy(c);
                return r;
        }
        a->call = c;
        return 0;
}

static int op_cancel(Service *s, const Identity *id, const Request *req, Answer *a) {
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
                service_changed(s);
                r = answer_obj(a, ok_id_state(t->id, TASK_CANCELLED));
                if (r < 0)
                        return r;
                return answer_after_writes(s, a, 0, write_update_one, t);

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

static int write_retry_batch(Service *s, ServiceCall *c, void *ud) {
        const RetryBatch *b = ud;

        for (size_t i = 0; i < b->n; i++) {
                int r = call_store(c, store_update, b->tasks[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int op_retry(Service *s, const Identity *id, const Request *req, Answer *a) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;

        if (req->has_id) {
                TaskRecord *t = ledger_get(s->ledger, req->id);

                if (!t)
                        return answer_error(a, ERR_NOT_FOUND, "no task with id %llu",
                                            (unsigned long long) req->id);
                r = ledger_retry(s->ledger, t, now);
                if (r == -EINVAL)
                        return answer_error(a, ERR_BAD_REQUEST,
                                            "task %llu is %s; only failed or cancelled tasks can be retried",
                                            (unsigned long long) t->id, task_state_to_string(t->state));
                if (r < 0)
                        return answer_error(a, ERR_INTERNAL, "cannot retry task %llu: %s",
                                            (unsigned long long) t->id, strerror(-r));
                log_task(LOG_INFO, t->id, t->task, NULL, "Task %llu queued again by %s.",
                         (unsigned long long) t->id, id->submitter);
                dispatcher_kick(s->dispatcher);
                service_changed(s);
                r = answer_obj(a, ok_id_state(t->id, TASK_QUEUED));
                if (r < 0)
                        return r;
                return answer_after_writes(s, a, 0, write_update_one, t);
        }

        if (req->has_state) {
                _cleanup_free_ TaskRecord **tasks = NULL;
                LedgerStats st;
                size_t n, done = 0;
                uint64_t count;
                cJSON *obj;

                if (req->state != TASK_FAILED && req->state != TASK_CANCELLED)
                        return answer_error(a, ERR_BAD_REQUEST,
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
                        log_info("%zu %s task(s) queued again by %s.", done,
                                 task_state_to_string(req->state), id->submitter);
                        dispatcher_kick(s->dispatcher);
                        service_changed(s);
                }
                obj = response_ok();
                if (obj && !cJSON_AddNumberToObject(obj, "retried", (double) done)) {
                        cJSON_Delete(obj);
                        obj = NULL;
                }
                r = answer_obj(a, obj);
                if (r < 0)
                        return r;
                return answer_after_writes(s, a, 0, write_retry_batch, &(RetryBatch){tasks, done});
        }

        return answer_error(a, ERR_BAD_REQUEST, "retry needs \"id\" or \"state\"");
}

static int op_forget(Service *s, const Identity *id, const Request *req, Answer *a) {
        TaskRecord *t;
        uint64_t task_id = req->id;
        cJSON *obj;
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        t = ledger_get(s->ledger, task_id);
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
        return answer_after_writes(s, a, 0, write_delete_one, &task_id);
}

static int op_list(Service *s, const Identity *id, const Request *req, Answer *a) {
        _cleanup_free_ TaskRecord **tasks = NULL;
        unsigned limit = req->limit > 0 ? req->limit : 100;
        cJSON *obj, *arr;
        size_t n;
        int r = require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (limit > LIST_LIMIT_MAX)
                limit = LIST_LIMIT_MAX;
        tasks = calloc(limit, sizeof(*tasks));
        if (!tasks)
                return -ENOMEM;
        n = ledger_list(s->ledger, req->has_state ? (int) req->state : -1, limit, tasks);

        obj = response_ok();
        if (!obj)
                return -ENOMEM;
        arr = cJSON_AddArrayToObject(obj, "tasks");
        if (!arr)
                goto oom;
        for (size_t i = 0; i < n; i++) {
                cJSON *item = cJSON_CreateObject();

                if (!item)
                        goto oom;
                cJSON_AddItemToArray(arr, item);
                if (response_add_task(item, tasks[i]) < 0)
                        goto oom;
        }
        return answer_obj(a, obj);

oom:
        cJSON_Delete(obj);
        return -ENOMEM;
}

static int op_stats(Service *s, const Identity *id, const Request *req, Answer *a) {
        unsigned conns = s->hooks.n_connections ? s->hooks.n_connections(s->hooks.userdata) : 0;
        LedgerStats st;
        cJSON *obj;

        ledger_stats(s->ledger, &st);
        obj = response_ok();
        if (!obj)
                return -ENOMEM;
        if (!cJSON_AddNumberToObject(obj, "queued", (double) st.queued) ||
            !cJSON_AddNumberToObject(obj, "running", (double) st.running) ||
            !cJSON_AddNumberToObject(obj, "succeeded", (double) st.succeeded) ||
            !cJSON_AddNumberToObject(obj, "failed", (double) st.failed) ||
            !cJSON_AddNumberToObject(obj, "cancelled", (double) st.cancelled) ||
            !cJSON_AddNumberToObject(obj, "submitted_total", (double) st.submitted_total) ||
            !cJSON_AddNumberToObject(obj, "connections", (double) conns) ||
            !cJSON_AddStringToObject(obj, "launcher",
                                     launcher_link_is_connected(s->link) ? "connected" : "disconnected") ||
            !cJSON_AddStringToObject(obj, "store", s->store ? "mysql" : "memory")) {
                cJSON_Delete(obj);
                return -ENOMEM;
        }
        return answer_obj(a, obj);
}

static int op_ping(Service *s, const Identity *id, const Request *req, Answer *a) {
        cJSON *obj = response_ok();

        if (obj && (!cJSON_AddTrueToObject(obj, "pong") ||
                    !cJSON_AddStringToObject(obj, "version", ASYNCTASK_VERSION))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return answer_obj(a, obj);
}

static void reload_start(Service *s);

static int op_reload(Service *s, const Identity *id, const Request *req, Answer *a) {
        ServiceCall *c;

        /* Reloading is the service manager's business: root, or whoever the daemon runs as. */
        if (id->kind != PEER_UNIX || (id->uid != 0 && id->uid != geteuid())) {
                log_refusal(id, OP_RELOAD, "(root or the daemon's own user only)");
                return answer_error(a, ERR_FORBIDDEN, "'reload' is for root or the daemon's own user only");
        }
        if (s->shutting_down)
                return answer_error(a, ERR_UNAVAILABLE, "the daemon is shutting down");

        c = call_new(s, CALL_RELOAD, a->reply, a->userdata);
        if (!c)
                return -ENOMEM;
        c->round = s->reload_round + 1;
        a->call = c;
        log_info("Reload requested by %s.", id->description);
        service_reload(s);
        return 0;
}

int service_handle(Service *s, const Identity *id, const Request *req, ServiceReplyFn reply, void *userdata,
                   ServiceCall **ret_call) {
        Answer a = {.reply = reply, .userdata = userdata};
        int r;

        switch (req->op) {
        case OP_SUBMIT:
                r = op_submit(s, id, req, &a);
                break;
        case OP_STATUS:
                r = op_status(s, id, req, &a);
                break;
        case OP_WAIT:
                r = op_wait(s, id, req, &a);
                break;
        case OP_CANCEL:
                r = op_cancel(s, id, req, &a);
                break;
        case OP_RETRY:
                r = op_retry(s, id, req, &a);
                break;
        case OP_FORGET:
                r = op_forget(s, id, req, &a);
                break;
        case OP_LIST:
                r = op_list(s, id, req, &a);
                break;
        case OP_STATS:
                r = op_stats(s, id, req, &a);
                break;
        case OP_PING:
                r = op_ping(s, id, req, &a);
                break;
        case OP_RELOAD:
                r = op_reload(s, id, req, &a);
                break;
        default:
                r = answer_error(&a, ERR_BAD_REQUEST, "unknown operation");
                break;
        }
        if (r < 0) {
                free(a.line);
                return r;
        }
        if (a.call) {
                *ret_call = a.call;
                return 1;
        }
        if (!a.line)
                return -ENOMEM;
        reply(a.line, a.len, userdata);
        return 0;
}

/* --- reload --- */

static void reload_config_error(const char *file, const char *key, const char *message, void *userdata) {
        Service *s = userdata;

        log_error("%s: %s%s%s", file, key, key[0] ? ": " : "", message);
        if (s->reload_n_errors++ == 0)
                error_reply_set(&s->reload_error, ERR_BAD_REQUEST, "%s: %s%s%s", file, key,
                                key[0] ? ": " : "", message);
}

static void warn_restart_needed(const Config *old, const Config *new) {
        if (!streq_ptr(old->launcher_socket, new->launcher_socket))
                log_warning("\"launcher\" changed to %s; the front keeps using %s until it is restarted.",
                            new->launcher_socket, old->launcher_socket);
        if (old->store_type != new->store_type ||
            !streq_ptr(old->store_option_file, new->store_option_file) ||
            !streq_ptr(old->store_group, new->store_group))
                log_warning("\"store\" changed; the new store settings take effect after a restart.");
}

static void reload_finish(Service *s, bool ok) {
        unsigned round = s->reload_round;
        s->reload_timer = sd_event_source_disable_unref(s->reload_timer);
        s->reload_cfg = config_free(s->reload_cfg);
        s->reload_active = false;

        if (ok)
                log_info("Configuration reloaded from %s: %zu task(s), %zu command(s).", s->cfg->path,
                         s->cfg->n_tasks, s->cfg->n_commands);
        else
                log_error("Reload failed, keeping the previous configuration: %s", s->reload_error.message);
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", ok ? "Configuration reloaded" : "Reload failed");
        if (s->hooks.reloaded)
                s->hooks.reloaded(ok, s->hooks.userdata);

        for (ServiceCall *c = s->calls, *next; c; c = next) {
                next = c->next;
                if (c->kind != CALL_RELOAD || c->round > round)
                        continue;
                if (ok) {
                        size_t len = 0;
                        char *line = response_finish(response_ok(), &len);
                        call_answer(c, line, len);
                } else
                        call_answer_error(c, s->reload_error.code, "%s", s->reload_error.message);
        }

        if (s->reload_again && !s->shutting_down) {
                s->reload_again = false;
                (void) sd_event_source_set_enabled(s->reload_request, SD_EVENT_ONESHOT);
        }
}

static void reload_apply(Service *s) {
        Config *old = s->cfg;

        warn_restart_needed(old, s->reload_cfg);
        s->cfg = TAKE_PTR(s->reload_cfg);
        if (s->hooks.config_changed)
                s->hooks.config_changed(s->cfg, s->hooks.userdata);
        config_free(old);
        reload_finish(s, true);
}

static int reload_launcher_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Service *s = userdata;

        error_reply_set(&s->reload_error, ERR_UNAVAILABLE,
                        "the launcher did not confirm the reload within %llu s; the old configuration stays",
                        (unsigned long long) (RELOAD_LAUNCHER_TIMEOUT_USEC / USEC_PER_SEC));
        reload_finish(s, false);
        return 0;
}

static void reload_start(Service *s) {
        LauncherMsg m = {.type = LMSG_RELOAD};
        int r;

        /* First, so that the service manager knows a reload is under way before anything can fail. */
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%llu",
                          (unsigned long long) now_usec(CLOCK_MONOTONIC));
        s->reload_active = true;
        s->reload_round++;
        s->reload_n_errors = 0;
        s->reload_error = (ErrorReply){.code = ERR_BAD_REQUEST};
        log_info("Reloading configuration from %s.", s->cfg->path);

        r = config_load(s->cfg->path, reload_config_error, s, &s->reload_cfg);
        if (r < 0) {
                if (s->reload_n_errors == 0)
                        error_reply_set(&s->reload_error, ERR_BAD_REQUEST, "cannot load %s: %s",
                                        s->cfg->path, strerror(-r));
                else if (s->reload_n_errors > 1) {
                        size_t len = strlen(s->reload_error.message);
                        snprintf(s->reload_error.message + len, sizeof(s->reload_error.message) - len,
                                 " (and %u more)", s->reload_n_errors - 1);
                }
                reload_finish(s, false);
                return;
        }

        /* The launcher checks launches against its own copy of the config: make it re-read too, and
         * swap ours only once it has. A launcher that is not connected reads it fresh when it starts. */
        if (!launcher_link_is_connected(s->link)) {
                log_info("Launcher not connected; it reads the new configuration when it connects.");
                reload_apply(s);
                return;
        }
        r = launcher_link_send(s->link, &m);
        if (r < 0) {
                if (!launcher_link_is_connected(s->link)) {
                        reload_apply(s);
                        return;
                }
                error_reply_set(&s->reload_error, ERR_INTERNAL, "cannot ask the launcher to reload: %s",
                                strerror(-r));
                reload_finish(s, false);
                return;
        }
        r = sd_event_add_time_relative(s->event, &s->reload_timer, CLOCK_MONOTONIC,
                                       RELOAD_LAUNCHER_TIMEOUT_USEC, 0, reload_launcher_timeout, s);
        if (r < 0) {
                error_reply_set(&s->reload_error, ERR_INTERNAL, "cannot arm the reload timer: %s",
                                strerror(-r));
                reload_finish(s, false);
        }
}

static int on_reload_requested(sd_event_source *source, void *userdata) {
        Service *s = userdata;

        if (!s->reload_active && !s->shutting_down)
                reload_start(s);
        return 0;
}

void service_reload(Service *s) {
        if (s->shutting_down)
                return;
        if (s->reload_active) {
                s->reload_again = true;
                return;
        }
        /* From the event loop, never inside the request that asked: a reload that fails at once must
         * still answer its callers asynchronously, as service_handle() promised. */
        (void) sd_event_source_set_enabled(s->reload_request, SD_EVENT_ONESHOT);
}

void service_launcher_reloaded(Service *s, const char *error) {
        if (!s->reload_active || !s->reload_cfg) {
                log_debug("Launcher reports a reload nobody asked for; ignoring.");
                return;
        }
        if (error) {
                error_reply_set(&s->reload_error, ERR_BAD_REQUEST,
                                "the launcher refused the new configuration: %s", error);
                reload_finish(s, false);
                return;
        }
        reload_apply(s);
}

void service_launcher_down(Service *s) {
        /* It re-reads the config when it starts again, so the reload stands. */
        if (s->reload_active && s->reload_cfg) {
                log_info("Launcher disconnected during the reload; it reads the new configuration when it "
                         "connects.");
                reload_apply(s);
        }
}

/* --- lifecycle --- */

int service_new(sd_event *event, Config *cfg, Ledger *ledger, Store *store, Dispatcher *dispatcher,
                LauncherLink *link, const ServiceHooks *hooks, Service **ret) {
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
        r = sd_event_add_defer(event, &s->reload_request, on_reload_requested, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->reload_request, SD_EVENT_OFF);
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
        while (s->calls)
                call_destroy(s->calls);
        sd_event_source_disable_unref(s->reload_timer);
        sd_event_source_disable_unref(s->reload_request);
        config_free(s->reload_cfg);
        config_free(s->cfg);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

const Config *service_config(const Service *s) {
        return s->cfg;
}

void service_shutdown(Service *s) {
        if (s->shutting_down)
                return;
        s->shutting_down = true;
        s->reload_again = false;

        if (s->reload_active) {
                error_reply_set(&s->reload_error, ERR_UNAVAILABLE, "the daemon is shutting down");
                reload_finish(s, false);
        }
        for (ServiceCall *c = s->calls, *next; c; c = next) {
                next = c->next;
                if (c->kind == CALL_WAIT)
                        wait_answer_now(c);
                else if (c->kind == CALL_RELOAD)
                        call_answer_error(c, ERR_UNAVAILABLE, "the daemon is shutting down");
        }
}

unsigned service_n_pending(const Service *s) {
        return s->n_pending;
}
