/* SPDX-License-Identifier: MIT */
/*
 * The submit operation, from a JSON request or a seed frame: the target's lookup, its allow list, the
 * admission and per-submitter quotas, and the new record's store write before it may start. Apart
 * from the other operations because it is the one untrusted peers use most, and the longest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/seed-refusals.h"
#include "front/service-internal.h"
#include "front/service.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

static void log_accepted(const TaskRecord *t) {
        log_task(LOG_INFO, t->id, t->task, NULL, "Accepted task %llu (%s) from %s%s.",
                 (unsigned long long) t->id, t->task ? t->task : "command", t->submitter,
                 t->key ? ", with a key" : "");
}

/* The store writes of a submission have completed (error < 0: one failed). It may start now; or it
 * is taken back, so that "unavailable" means nothing was accepted. */
void service_submit_settled(uint64_t submitted_id, int error, void *userdata) {
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
        } else if (error >= 0 && t) {
                log_accepted(t);
                dispatcher_stdin_stored(s->dispatcher, submitted_id);
                if (t->state == TASK_QUEUED && !dispatcher_runs_here(s->dispatcher, t)) {
                        /* Written unclaimed, for the nodes that may run it (docs/cluster.md): this node
                         * does not speak for it; its status is read from the database. */
                        log_task(LOG_INFO, t->id, t->task, NULL,
                                 "Task %llu is left to the other nodes (its \"hosts\" or its owner).",
                                 (unsigned long long) t->id);
                        (void) ledger_forget(s->ledger, t);
                        service_changed(s);
                }
        }
}

static int write_insert_one(ServiceCall *c, void *ud) {
        return service_call_store_write(c, store_insert, ud);
}

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
                        return service_answer_error(a, ERR_UNKNOWN_TASK, "no task named '%s'",
                                                    service_quoted(req->task, q, sizeof(q)));
                ret->task_name = ret->def->name;
                snprintf(ret->what, sizeof(ret->what), "of task '%s'", ret->task_name);
        } else if (req->cmd) {
                ret->def = config_find_command(cfg, req->cmd);
                if (!ret->def)
                        return service_answer_error(a, ERR_COMMAND_NOT_ALLOWED,
                                                    "command '%s' is not on the commands list",
                                                    service_quoted(req->cmd, q, sizeof(q)));
                snprintf(ret->what, sizeof(ret->what), "of command '%s'",
                         service_quoted(req->cmd, q, sizeof(q)));
        } else if (req->php_class) {
                const char *mapped = config_find_php_class(cfg, req->php_class);

                if (!mapped)
                        return service_answer_error(a, ERR_UNKNOWN_TASK, "no task mapped to PHP class '%s'",
                                                    service_quoted(req->php_class, q, sizeof(q)));
                ret->def = config_find_task(cfg, mapped);
                if (!ret->def)
                        return service_answer_error(a, ERR_UNKNOWN_TASK,
                                                    "PHP class '%s' maps to task '%s', which does not exist",
                                                    service_quoted(req->php_class, q, sizeof(q)), mapped);
                ret->task_name = ret->def->name;
                snprintf(ret->what, sizeof(ret->what), "of task '%s' (PHP class '%s')", ret->task_name,
                         service_quoted(req->php_class, q, sizeof(q)));
        } else
                return service_answer_error(a, ERR_BAD_REQUEST, "submit needs \"task\" or \"cmd\"");
        return 0;
}

/* 1 when the daemon takes a submission now; otherwise a is answered "unavailable", saying why. */
static int submit_admission(Service *s, ServiceAnswer *a) {
        LedgerStats st;

        if (s->shutting_down)
                return service_answer_error(a, ERR_UNAVAILABLE,
                                            "the daemon is shutting down; nothing was accepted");
        if (!launcher_link_is_connected(s->link))
                return service_answer_error(a, ERR_UNAVAILABLE,
                                            "the launcher is not connected; nothing was accepted");
        if (s->store && !store_available(s->store))
                return service_answer_error(a, ERR_UNAVAILABLE,
                                            "the store is unavailable; nothing was accepted");
        ledger_stats(s->ledger, &st);
        if (st.queued >= QUEUED_MAX)
                return service_answer_error(a, ERR_UNAVAILABLE, "the queue is full (%llu tasks queued)",
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

        if (service_is_admin(s, id))
                return 1;
        ledger_submitter_unfinished(s->ledger, id->submitter, &tasks, &bytes);
        if (tasks >= cfg->max_queued_per_submitter)
                return service_answer_error(a, ERR_QUOTA_EXCEEDED,
                                            "%s has %llu unfinished tasks, the most allowed "
                                            "(max_queued_per_submitter); nothing was accepted",
                                            id->submitter, (unsigned long long) tasks);
        if (bytes + req->stdin_len > cfg->max_queued_stdin_bytes_per_submitter)
                return service_answer_error(
                        a, ERR_QUOTA_EXCEEDED,
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
        cJSON *obj = service_ok_id_state(t->id, t->state);

        if (obj && !cJSON_AddTrueToObject(obj, "existing")) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return service_answer_obj(a, obj);
}

/* A new record: answered once the store has it (it must not start before), or at once without a
 * store. Taken back when that cannot be arranged. */
static int submit_answer_new(Service *s, ServiceAnswer *a, TaskRecord *t) {
        int r;

        r = service_answer_obj(a, service_ok_id_state(t->id, TASK_QUEUED));
        if (r < 0)
                goto undo;

        if (s->store) {
                dispatcher_submitted(s->dispatcher, t);
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

/* --- "on": "every_host" (docs/cluster.md) --- */

/* An every_host submission being written: the call that answers it, and the answer once written. */
typedef struct EveryHostSubmit {
        Service *s;
        ServiceCall *c;
        char *task; /* for the log line */
        char *submitter;
        char *line;
        size_t len;
} EveryHostSubmit;

static void every_host_submit_free(void *p) {
        EveryHostSubmit *x = p;

        free(x->task);
        free(x->submitter);
        free(x->line);
        free(x);
}

/* {"ok":true,"id":parent,"state":"running","children":[{"id":..,"node":".."},..]} */
static cJSON *every_host_answer(const StoreEveryHost *f) {
        _cleanup_(cjson_deletep) cJSON *obj = service_ok_id_state(f->parent_id, TASK_RUNNING);
        cJSON *children = obj ? cJSON_AddArrayToObject(obj, "children") : NULL;

        if (!children)
                return NULL;
        for (size_t i = 0; i < f->n; i++) {
                cJSON *child = cJSON_CreateObject();

                if (!child)
                        return NULL;
                if (!cJSON_AddItemToArray(children, child)) {
                        cJSON_Delete(child);
                        return NULL;
                }
                if (!cJSON_AddNumberToObject(child, "id", (double) f->ids[i]) ||
                    !cJSON_AddStringToObject(child, "node", f->nodes[i]))
                        return NULL;
        }
        return TAKE_PTR(obj);
}

static void every_host_written(int error, const StoreEveryHost *f, void *userdata) {
        EveryHostSubmit *x = userdata;
        StoreRead result = {.error = error};

        if (error >= 0) {
                _cleanup_free_ char *nodes = NULL;

                for (size_t i = 0; i < f->n; i++) {
                        char *more = NULL;

                        if (asprintf(&more, "%s%s%s", nodes ? nodes : "", i ? ", " : "", f->nodes[i]) < 0)
                                more = NULL;
                        free(nodes);
                        nodes = more;
                }
                log_task(LOG_INFO, f->parent_id, x->task, NULL,
                         "Accepted task %llu (%s) from %s, to run once on each of %zu node(s): %s.",
                         (unsigned long long) f->parent_id, x->task, x->submitter, f->n,
                         nodes ? nodes : "?");
                x->line = response_finish(every_host_answer(f), &x->len);
                /* This node's run is claimed already: a claim now takes it into the window. */
                dispatcher_queue_grew(x->s->dispatcher);
        }
        service_call_read_done(&result, x->c);
}

static void every_host_answered(ServiceCall *c, StoreRead *result, void *userdata) {
        EveryHostSubmit *x = userdata;

        if (result->error == -EHOSTUNREACH)
                service_answer_call_error(c, ERR_UNAVAILABLE,
                                          "no node that may run it is alive; nothing was accepted");
        else if (result->error < 0 || !x->line)
                service_answer_call_error(c, ERR_UNAVAILABLE,
                                          "the store is unavailable; nothing was accepted");
        else
                service_call_answer(c, TAKE_PTR(x->line), x->len);
}

/* One parent record and a run per live node, written by the store in one transaction; this node's
 * ledger holds none of them until it claims its own run. */
static int submit_every_host(Service *s, const Identity *id, const Request *req, const SubmitTarget *target,
                             ServiceAnswer *a) {
        TaskSubmission sub;
        TaskRecord *t = NULL;
        EveryHostSubmit *x;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        if (req->key)
                return service_answer_error(a, ERR_BAD_REQUEST,
                                            "submissions %s run on every host and take no key",
                                            target->what);
        sub = submission_of(req, id, target, now);
        r = task_record_new_packed(&sub, 0, &t);
        if (r < 0)
                return service_answer_error(a, ERR_INTERNAL, "cannot queue the task: %s", strerror(-r));
        /* What ledger_submit() would set beyond the submission's strings. */
        t->state = TASK_QUEUED;
        t->created_at = now;
        t->priority = sub.priority;
        t->max_attempts = sub.max_attempts;
        t->run_after = sub.run_after;
        x = calloc(1, sizeof(*x));
        if (!x || !(x->task = strdup(target->task_name ? target->task_name : "command")) ||
            !(x->submitter = strdup(id->submitter))) {
                if (x)
                        every_host_submit_free(x);
                task_record_free_packed(t);
                return -ENOMEM;
        }
        x->s = s;
        x->c = service_call_read(&s->calls, a, every_host_answered, x, every_host_submit_free);
        if (!x->c) {
                task_record_free_packed(t);
                return -ENOMEM;
        }
        r = store_submit_every_host(s->store, t, target->def->hosts, target->def->n_hosts,
                                    every_host_written, x);
        return service_read_asked(a, x->c, r);
}

int service_submit_op(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
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
                        service_log_refusal(id, OP_SUBMIT, target.what);
                return service_answer_error(a, ERR_FORBIDDEN, "not allowed to submit %s", target.what + 3);
        }
        /* A key finds the first task submitted with it: for an address, possibly another user's. */
        if (req->key && !policy_may_look_up(id)) {
                size_t len = strlen(target.what);
                (void) snprintf(target.what + len, sizeof(target.what) - len, " with a key");
                return service_refuse_unknown_user(id, OP_SUBMIT, target.what, a);
        }
        if (req->n_args > target.def->max_args)
                return service_answer_error(a, ERR_BAD_REQUEST, "%s takes at most %u argument(s), got %zu",
                                            target.task_name ? target.task_name : "this command",
                                            target.def->max_args, req->n_args);
        r = submit_admission(s, a);
        if (r <= 0)
                return r;
        r = submitter_quota_admission(s, id, req, a);
        if (r <= 0)
                return r;

        if (target.def->every_host && s->store)
                return submit_every_host(s, id, req, &target, a);

        /* A key not in memory may name a task the database holds: read it first. */
        if (req->key && !ledger_get_by_key(s->ledger, id->submitter, req->key) &&
            service_must_read_through(s, a))
                return service_read_through(s, id, req, a, 0, req->key);

        /* The key names a row this host does not hold: that task, as the database has it. */
        if (req->key && a->remote)
                return submit_answer_existing(a, a->remote);

        now = now_usec(CLOCK_REALTIME);
        sub = submission_of(req, id, &target, now);
        r = ledger_submit(s->ledger, &sub, now, &t, &existing);
        if (r == -EAGAIN)
                /* Every id of this node's blocks is used and the next block is not reserved yet. */
                return service_answer_error(a, ERR_UNAVAILABLE, "no task id free yet; try again");
        if (r < 0) {
                log_error_errno(r, "Cannot queue a submission from %s: %m", id->description);
                return service_answer_error(a, ERR_INTERNAL, "cannot queue the task: %s", strerror(-r));
        }
        if (existing)
                return submit_answer_existing(a, t);
        return submit_answer_new(s, a, t);
}

int service_submit_seed(Service *s, const Identity *id, const Request *req, const char *frame, size_t len,
                        ServiceSettledFn settled, void *userdata, ServiceCall **ret_call) {
        ServiceAnswer a = {.reply = seed_submission_answered,
                           .userdata_free = seed_submission_free,
                           .detach = seed_submission_detach,
                           .quiet = true};
        int r;

        a.userdata = seed_submission_new(s->seed_refusals, id->description, frame, len, settled, userdata);
        r = a.userdata ? service_submit_op(s, id, req, &a) : -ENOMEM;
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
