/* SPDX-License-Identifier: MIT */
/*
 * The service: the table of operations of the client protocol, and what they all share: the Service
 * itself, the answer helpers, reading a record through the store, and the checks of the peer's rights
 * (service_lookup_owned(), service_require_admin()), which stay here so that authorization is in one
 * place. The operations are in service-submit.c, service-tasks.c, service-report.c and
 * service-control.c, which see these helpers through service-internal.h; answers that come later are
 * calls (service-call.c); the reload round is service-reload.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-event.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/seed-refusals.h"
#include "front/service-call.h"
#include "front/service-internal.h"
#include "front/service-reload.h"
#include "front/service.h"
#include "front/utf8.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

#ifndef ASYNCTASK_VERSION
#define ASYNCTASK_VERSION "0.1.0"
#endif

void service_changed(Service *s) {
        if (s->hooks.changed)
                s->hooks.changed(s->hooks.userdata);
}

/* --- answers --- */

int service_answer_error(ServiceAnswer *a, ErrorCode code, const char *fmt, ...) {
        ErrorReply e = {.code = code};
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        a->refused = code;
        a->line = response_error(&e, &a->len);
        return a->line ? 0 : -ENOMEM;
}

int service_answer_obj(ServiceAnswer *a, cJSON *obj) {
        if (!obj)
                return -ENOMEM;
        a->line = response_finish(obj, &a->len);
        return a->line ? 0 : -ENOMEM;
}

/* {"ok":true,"id":N,"state":"..."} plus optional extras. */
cJSON *service_ok_id_state(uint64_t id, TaskState state) {
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
int service_add_paused_flag(const Service *s, cJSON *obj, const TaskRecord *t) {
        if (t->state != TASK_QUEUED || !ledger_task_paused(s->ledger, t->task))
                return 0;
        return cJSON_AddTrueToObject(obj, "paused") ? 0 : -ENOMEM;
}

/* Client strings echoed in messages: the valid UTF-8 prefix, cut at 64 bytes. */
const char *service_quoted(const char *s, char *buf, size_t size) {
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
        /* A wait on an every_host parent polls the database: when it ends (CLOCK_MONOTONIC; 0 before
         * the first poll), and the next pause. */
        uint64_t wait_until;
        uint64_t poll_usec;
        /* The finished record this node kept whose row is read to see whether it is stale, or 0
         * (service_copy_may_be_stale()). Only that record may be let go for the row: another record
         * of the read may have changed here after the read was asked, its write still queued. */
        uint64_t copy_id;
} Rerun;

/* A wait on an every_host parent reads it again after 100 ms, then twice as long each time, at most
 * every second: prompt for short runs, light for long ones. */
#define FAMILY_POLL_FIRST_USEC (100 * USEC_PER_MSEC)
#define FAMILY_POLL_MAX_USEC   USEC_PER_SEC

static void rerun_free(void *p) {
        Rerun *x = p;

        request_done(&x->req);
        free(x);
}

void service_answer_call_error(ServiceCall *c, ErrorCode code, const char *message) {
        ErrorReply e = {.code = code};
        size_t len = 0;
        char *line;

        snprintf(e.message, sizeof(e.message), "%s", message);
        line = response_error(&e, &len);
        service_call_answer(c, line, len);
}

/* Whether a row read is this host's to keep in its ledger: a queued or running row it has claimed.
 * A row another host holds, a queued row nobody has claimed (a claim brings it, if this host takes it),
 * and a finished row (which any host may retry) are answered from the read and not kept: another
 * host may change the row, and a copy here would not see it. */
static bool holds_row(const Service *s, const TaskRecord *t) {
        return !task_state_is_final(t->state) && t->node && streq(t->node, s->cfg->node);
}

/* Hands the records read that this host holds to the ledger (those it has already stay as they are);
 * *ret_remote: the first of the others, left in result. */
static void adopt_read(Service *s, StoreRead *result, TaskRecord **ret_remote) {
        for (size_t i = 0; i < result->n_records; i++) {
                TaskRecord *t = result->records[i];

                if (ledger_get(s->ledger, t->id))
                        continue;
                if (!holds_row(s, t)) {
                        if (!*ret_remote)
                                *ret_remote = t;
                        continue;
                }
                if (ledger_adopt(s->ledger, t) >= 0) {
                        result->records[i] = NULL;
                        if (t->state == TASK_QUEUED)
                                dispatcher_kick(s->dispatcher);
                }
        }
        /* Finished records read in count against max_records like the others. */
        dispatcher_kick(s->dispatcher);
}

/* The finished record copy_id this node kept, against its row as read: a copy the row no longer
 * agrees with (another node queued or ran it again, or forgot it, or the leader purged it) is let go,
 * so that the row answers. The copy was final when the read was asked, so its own writes were
 * committed before the read. */
static void settle_copy(Service *s, const StoreRead *result, uint64_t copy_id) {
        TaskRecord *kept = ledger_get(s->ledger, copy_id);
        const TaskRecord *row = NULL;

        if (!kept || !task_state_is_final(kept->state))
                return;
        for (size_t i = 0; i < result->n_records && !row; i++)
                if (result->records[i] && result->records[i]->id == copy_id)
                        row = result->records[i];
        if (!row || row->state != kept->state || row->attempts != kept->attempts ||
            (row->node && !streq(row->node, s->cfg->node)))
                (void) ledger_drop(s->ledger, kept);
}

static int rerun_read_again(ServiceCall *c, void *userdata) {
        Rerun *x = userdata;

        return store_read_task(x->s->store, x->req.id, service_call_read_done, c);
}

/* The read found an every_host parent, which no ledger holds: answered from the read, or read again
 * later while a wait goes on. */
static void rerun_family(ServiceCall *c, Rerun *x, StoreRead *result) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (x->wait_until == 0) {
                x->wait_until =
                        now + (x->req.has_timeout ? x->req.timeout_usec : WAIT_SEC_MAX * USEC_PER_SEC);
                x->poll_usec = FAMILY_POLL_FIRST_USEC;
        }
        if (service_family_answer(x->s, c, x->id, &x->req, result, now >= x->wait_until) != 1)
                return;
        if (service_call_read_later(c,
                                    x->wait_until - now < x->poll_usec ? x->wait_until - now : x->poll_usec,
                                    rerun_read_again) < 0) {
                service_answer_call_error(c, ERR_INTERNAL, "cannot wait for the task");
                return;
        }
        x->poll_usec = 2 * x->poll_usec < FAMILY_POLL_MAX_USEC ? 2 * x->poll_usec : FAMILY_POLL_MAX_USEC;
}

static void rerun_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        Rerun *x = userdata;
        ServiceAnswer a = service_call_forward_answer(c);
        int r;

        if (result->error < 0) {
                service_answer_call_error(c, ERR_UNAVAILABLE,
                                          "the store is unavailable; cannot look the task up");
                return;
        }
        if (service_family_parent(&x->req, result)) {
                rerun_family(c, x, result);
                return;
        }
        if (x->copy_id != 0)
                settle_copy(x->s, result, x->copy_id);
        adopt_read(x->s, result, &a.remote);
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

int service_read_asked(ServiceAnswer *a, ServiceCall *c, int r) {
        if (r < 0) {
                service_call_read_abandon(c);
                return service_answer_error(a, ERR_UNAVAILABLE, "the store is unavailable: %s",
                                            strerror(-r));
        }
        a->call = c;
        return 0;
}

/* Whether req, whose record (by task_id, or by key) is not in memory, must be read through first. */
bool service_must_read_through(const Service *s, const ServiceAnswer *a) {
        return s->store && !a->store_read && !a->detach;
}

/* A finished record this node keeps of its run: another node, alive, may have run it again or
 * forgotten it since. */
bool service_copy_may_be_stale(Service *s, const ServiceAnswer *a, const TaskRecord *t) {
        return t != a->remote && task_state_is_final(t->state) && service_must_read_through(s, a) &&
               dispatcher_shares_queue(s->dispatcher);
}

/* Reads the record of task_id (or, when key is set, of the peer's key) from the store, then runs req
 * again. a->call is set. */
int service_read_through(Service *s, const Identity *id, const Request *req, ServiceAnswer *a,
                         uint64_t task_id, const char *key) {
        Rerun *x = calloc(1, sizeof(*x));
        TaskRecord *kept = key ? NULL : ledger_get(s->ledger, task_id);
        ServiceCall *c;
        int r;

        if (!x)
                return -ENOMEM;
        x->s = s;
        x->id = id;
        /* A finished record kept here: its row is read to see whether the copy is stale. */
        if (kept && task_state_is_final(kept->state))
                x->copy_id = task_id;
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
        return service_read_asked(a, c, r);
}

/* --- lookups and authorization --- */

TaskRecord *service_get(Service *s, const ServiceAnswer *a, uint64_t task_id) {
        TaskRecord *t = ledger_get(s->ledger, task_id);

        if (!t && a->remote && a->remote->id == task_id)
                t = a->remote;
        return t;
}

bool service_is_admin(const Service *s, const Identity *id) {
        return config_is_admin(s->cfg, id);
}

void service_log_refusal(const Identity *id, RequestOp op, const char *what) {
        log_warning("Refused %s %s from %s.", request_op_to_string(op), what, id->description);
}

/* A peer known only by its address shares it with everyone on its host: it may not look tasks up. */
int service_refuse_unknown_user(const Identity *id, RequestOp op, const char *what, ServiceAnswer *a) {
        service_log_refusal(id, op, what);
        return service_answer_error(
                a, ERR_FORBIDDEN,
                "the user behind this connection is unknown (TCP from %s): it may submit, but not "
                "look tasks up or use keys; use the unix socket or loopback TCP",
                startswith(id->submitter, "tcp:") ? id->submitter + strlen("tcp:") : id->submitter);
}

/* The task a status/wait/cancel is about: it must exist and be the peer's own (or the peer an admin). */
int service_lookup_owned(Service *s, const Identity *id, const Request *req, ServiceAnswer *a,
                         TaskRecord **ret) {
        TaskRecord *t;
        char what[64];

        if (!policy_may_look_up(id)) {
                snprintf(what, sizeof(what), "of task %llu", (unsigned long long) req->id);
                return service_refuse_unknown_user(id, req->op, what, a);
        }
        t = service_get(s, a, req->id);
        if (!t && service_must_read_through(s, a))
                return service_read_through(s, id, req, a, req->id, NULL);
        if (t && service_copy_may_be_stale(s, a, t))
                return service_read_through(s, id, req, a, req->id, NULL);
        if (!t)
                return service_answer_error(a, ERR_NOT_FOUND, "no task with id %llu",
                                            (unsigned long long) req->id);
        if (!policy_owns(id, t->submitter) && !service_is_admin(s, id)) {
                snprintf(what, sizeof(what), "of task %llu", (unsigned long long) req->id);
                service_log_refusal(id, req->op, what);
                return service_answer_error(a, ERR_FORBIDDEN, "task %llu belongs to another submitter",
                                            (unsigned long long) req->id);
        }
        *ret = t;
        return 0;
}

int service_require_admin(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        if (service_is_admin(s, id))
                return 1;
        service_log_refusal(id, req->op, "(admins only)");
        return service_answer_error(a, ERR_FORBIDDEN, "'%s' is for admins only",
                                    request_op_to_string(req->op));
}

static int op_ping(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        cJSON *obj = response_ok();

        if (obj && (!cJSON_AddTrueToObject(obj, "pong") ||
                    !cJSON_AddStringToObject(obj, "version", ASYNCTASK_VERSION))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return service_answer_obj(a, obj);
}

static int op_reload(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r;

        /* Reloading is the service manager's business: root, or whoever the daemon runs as. */
        if (id->kind != PEER_UNIX || (id->uid != 0 && id->uid != geteuid())) {
                service_log_refusal(id, OP_RELOAD, "(root or the daemon's own user only)");
                return service_answer_error(a, ERR_FORBIDDEN,
                                            "'reload' is for root or the daemon's own user only");
        }
        if (s->shutting_down)
                return service_answer_error(a, ERR_UNAVAILABLE, "the daemon is shutting down");

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
                return service_submit_op(s, id, req, a);
        case OP_STATUS:
                return service_tasks_status(s, id, req, a);
        case OP_WAIT:
                return service_tasks_wait(s, id, req, a);
        case OP_CANCEL:
                return service_tasks_cancel(s, id, req, a);
        case OP_RETRY:
                return service_tasks_retry(s, id, req, a);
        case OP_FORGET:
                return service_tasks_forget(s, id, req, a);
        case OP_LIST:
                return service_report_list(s, id, req, a);
        case OP_STATS:
                return service_report_stats(s, id, req, a);
        case OP_PING:
                return op_ping(s, id, req, a);
        case OP_RELOAD:
                return op_reload(s, id, req, a);
        case OP_PAUSE:
                return service_control_pause(s, id, req, a);
        case OP_RESUME:
                return service_control_resume(s, id, req, a);
        case OP_DRAIN:
                return service_control_drain(s, id, req, a);
        case OP_UNDRAIN:
                return service_control_undrain(s, id, req, a);
        case OP_METRICS:
                return service_report_metrics(s, id, req, a);
        default:
                return service_answer_error(a, ERR_BAD_REQUEST, "unknown operation");
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
                .settled = service_submit_settled,
                .drain_answer = service_control_drain_answer,
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
